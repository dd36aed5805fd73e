"""`bcdr alert test RECEIVER` against real receivers: an SMTP sink, a webhook
server that checks Alertmanager's message shape, an Alertmanager-style API,
an exec receiver, a log file; failures and a hanging webhook time out."""
import json
import os
import time

from alert_servers import SmtpSink, WebhookServer, check_am_shape, free_port


def plan_with(write_plan, receivers):
    text = "alerts:\n  receivers:\n" + receivers + "  route: { receiver: first }\n"
    return write_plan(text)


def test_webhook_gets_alertmanager_shape(bcdr, write_plan):
    with WebhookServer() as hook:
        plan = plan_with(write_plan, f"    - name: first\n      webhook: {{ url: '{hook.url}' }}\n")
        r = bcdr("alert", "test", "-c", plan, "first")
        assert r.code == 0, r
        assert "sent a test notification to 'first'" in r.out
        (msg,) = hook.wait(1)
        check_am_shape(msg)
        assert msg["receiver"] == "first"
        assert msg["status"] == "firing"
        assert msg["alerts"][0]["labels"]["alertname"] == "bcdr-test"
        assert hook.posts[0]["headers"]["Content-Type"] == "application/json"


def test_webhook_bearer_token(bcdr, write_plan, tmp_path):
    token = tmp_path / "token"
    token.write_text("s3cret\n")
    token.chmod(0o644)
    with WebhookServer() as hook:
        plan = plan_with(write_plan, f"    - name: first\n      webhook: {{ url: '{hook.url}',"
                         f" bearer_token_file: '{token}' }}\n")
        # a token others may read is refused, and nothing is sent
        r = bcdr("alert", "test", "-c", plan, "first")
        assert r.code == 1 and f"chmod 600 {token}" in r.err, r
        assert not hook.posts
        token.chmod(0o600)
        r = bcdr("alert", "test", "-c", plan, "first")
        assert r.code == 0, r
        hook.wait(1)
        assert hook.posts[0]["headers"]["Authorization"] == "Bearer s3cret"


def test_alertmanager_api(bcdr, write_plan):
    with WebhookServer() as am:
        base = f"http://127.0.0.1:{am.port}"
        plan = plan_with(write_plan, f"    - name: first\n      webhook: {{ url: '{base}',"
                         " alertmanager: true }\n")
        r = bcdr("alert", "test", "-c", plan, "first", "--json")
        assert r.code == 0, r
        assert r.json()["ok"] is True
        am.wait(1)
        post = am.posts[0]
        assert post["path"] == "/api/v2/alerts"
        (alert,) = post["body"]
        assert set(alert) == {"labels", "annotations", "startsAt", "generatorURL"}
        assert alert["labels"]["alertname"] == "bcdr-test"


def test_webhook_failure_is_reported(bcdr, write_plan):
    with WebhookServer(mode="fail") as hook:
        plan = plan_with(write_plan, f"    - name: first\n      webhook: {{ url: '{hook.url}' }}\n")
        r = bcdr("alert", "test", "-c", plan, "first", "--json")
        assert r.code == 1, r
        out = r.json()
        assert out["ok"] is False
        assert "HTTP 500" in out["error"] and "boom: receiver down" in out["error"]
        assert "cannot notify 'first': HTTP 500" in r.err


def test_hanging_webhook_times_out(bcdr, write_plan):
    with WebhookServer(mode="hang", hang_s=20) as hook:
        plan = plan_with(write_plan, f"    - name: first\n      webhook: {{ url: '{hook.url}' }}\n"
                         "      timeout: 1s\n")
        t0 = time.monotonic()
        r = bcdr("alert", "test", "-c", plan, "first")
        took = time.monotonic() - t0
        assert r.code == 1, r
        assert "timed out" in r.err.lower() or "timeout" in r.err.lower(), r
        assert took < 10


def test_nothing_listening(bcdr, write_plan):
    port = free_port()
    plan = plan_with(write_plan, f"    - name: first\n      webhook: http://127.0.0.1:{port}/x\n")
    r = bcdr("alert", "test", "-c", plan, "first")
    assert r.code == 1
    assert f"http://127.0.0.1:{port}/x" in r.err


def test_email_reaches_smtp_sink(bcdr, write_plan):
    with SmtpSink() as smtp:
        plan = plan_with(write_plan, "    - name: first\n      email: { to: [ops@example.com,"
                         f" 'Second <two@example.com>'], from: bcdr@web-1, smtp: '{smtp.url}' }}\n")
        r = bcdr("alert", "test", "-c", plan, "first")
        assert r.code == 0, r
        (mail,) = smtp.wait(1)
        assert mail["from"] == "bcdr@web-1"
        assert mail["to"] == ["ops@example.com", "two@example.com"]
        msg = mail["message"]
        assert msg["Subject"].startswith("[FIRING:1] bcdr-test")
        assert msg["From"] == "bcdr@web-1"
        assert msg["X-Bcdr-Status"] == "firing"
        body = msg.get_payload()
        assert "test notification from bcdr" in body
        assert "severity=info" in body


def test_email_smtp_down(bcdr, write_plan):
    port = free_port()
    plan = plan_with(write_plan, "    - name: first\n      email: { to: [a@b.c], from: x@y.z,"
                     f" smtp: 'smtp://127.0.0.1:{port}' }}\n      timeout: 2s\n")
    r = bcdr("alert", "test", "-c", plan, "first")
    assert r.code == 1
    assert f"smtp://127.0.0.1:{port}" in r.err


def test_exec_gets_environment_and_stdin(bcdr, write_plan, tmp_path):
    out = tmp_path / "out"
    script = tmp_path / "notify.py"
    script.write_text(
        "import json, os, sys\n"
        "msg = json.load(sys.stdin)\n"
        f"open({str(out)!r}, 'w').write(json.dumps({{'env': dict(os.environ), 'msg': msg}}))\n")
    plan = plan_with(write_plan, f"    - name: first\n      exec: [/usr/bin/python3, '{script}']\n")
    r = bcdr("alert", "test", "-c", plan, "first")
    assert r.code == 0, r
    got = json.loads(out.read_text())
    env = got["env"]
    assert env["BCDR_ALERT_STATUS"] == "firing"
    assert env["BCDR_ALERT_NAME"] == "bcdr-test"
    assert env["BCDR_ALERT_SEVERITY"] == "info"
    assert env["BCDR_ALERT_RECEIVER"] == "first"
    assert env["BCDR_ALERT_COUNT"] == "1"
    assert "BCDR_BIN" not in env  # a clean environment, not the caller's
    check_am_shape(got["msg"])


def test_exec_failure_and_no_shell(bcdr, write_plan, tmp_path):
    marker = tmp_path / "marker"
    # a shell would run the `touch`; an argv does not
    plan = plan_with(write_plan, "    - name: first\n      exec: [/bin/echo, 'x; touch "
                     f"{marker}']\n    - name: second\n      exec: [/bin/false]\n")
    assert bcdr("alert", "test", "-c", plan, "first").code == 0
    assert not marker.exists()
    r = bcdr("alert", "test", "-c", plan, "second")
    assert r.code == 1
    assert "exit status 1" in r.err


def test_log_file(bcdr, write_plan, tmp_path):
    log = tmp_path / "alerts.log"
    plan = plan_with(write_plan, f"    - name: first\n      log: {{ path: '{log}' }}\n")
    for _ in range(2):
        assert bcdr("alert", "test", "-c", plan, "first").code == 0
    lines = log.read_text().splitlines()
    assert len(lines) == 2
    check_am_shape(json.loads(lines[1]))


def test_usage_errors(bcdr, write_plan, tmp_path):
    plan = plan_with(write_plan, f"    - name: first\n      log: {{ path: '{tmp_path}/l' }}\n")
    r = bcdr("alert", "test", "-c", plan)
    assert r.code == 2
    r = bcdr("alert", "test", "-c", plan, "nobody")
    assert r.code == 1 and "no receiver 'nobody'" in r.err
    r = bcdr("alert", "receivers", "-c", plan, "--json")
    assert r.code == 0 and r.json()[0]["name"] == "first"
    empty = write_plan("targets: { rto: 1h }\n", name="empty.yaml")
    r = bcdr("alert", "test", "-c", empty, "first")
    assert r.code == 1 and "no alerts: receivers" in r.err


def test_plan_errors_point_at_the_line(bcdr, write_plan):
    plan = write_plan("alerts:\n  receivers:\n    - name: a\n      log: {}\n"
                      "  route:\n    receiver: a\n    routes:\n      - match: { check: web }\n"
                      "        receiver: b\n")
    r = bcdr("config", "check", "-c", plan)
    assert r.code == 1
    assert "bcdr.yaml:8:9: route names unknown receiver 'b'" in r.err, r
