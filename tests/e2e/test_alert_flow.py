"""The whole chain with a real agent: a check fails, the alert engine notifies
real receivers (a webhook server, an SMTP sink), a kill -9 with undelivered
notifications loses none and repeats none, a hanging receiver delays nothing
else, an action restarts a killed process and its limit escalates."""
import os
import signal
import subprocess
import time


from agent_helpers import free_port
from alert_servers import SmtpSink, WebhookServer, check_am_shape


def file_check(flag, name="site", extra=""):
    return (f"checks:\n  - name: {name}\n    file: {{ path: '{flag}' }}\n"
            f"    labels: {{ component: www }}\n{extra}")


def route(receivers, receiver, more=""):
    return ("alerts:\n  external_url: http://bcdr.test:8470\n  receivers:\n" + receivers +
            f"  route: {{ receiver: {receiver}, group_wait: 0s, group_interval: 1s,"
            f" repeat_interval: 1h{more} }}\n")


def for_check(name):
    return lambda body: any(a["labels"].get("check") == name for a in body["alerts"])


def test_failing_check_fires_then_resolves(agent, tmp_path, bcdr):
    flag = tmp_path / "flag"
    flag.write_text("up")
    with WebhookServer() as hook:
        a = agent(file_check(flag) + route(
            f"    - name: hook\n      webhook: {{ url: '{hook.url}' }}\n", "hook")).start()
        time.sleep(1.2)
        assert hook.bodies() == []  # healthy: nobody is told anything
        flag.unlink()
        (firing,) = hook.wait(1, timeout=30, pred=for_check("site"))
        check_am_shape(firing)
        assert firing["status"] == "firing"
        assert firing["receiver"] == "hook"
        assert firing["groupLabels"] == {"check": "site"}
        alert = firing["alerts"][0]
        assert alert["labels"]["alertname"] == "site"
        assert alert["labels"]["severity"] == "critical"
        assert alert["labels"]["component"] == "www"
        assert "does not exist" in alert["annotations"]["summary"]
        assert alert["generatorURL"] == "http://bcdr.test:8470/api/v1/checks/site"
        # the API shows it
        alerts = a.api("/alerts")
        assert [x["state"] for x in alerts if x["labels"]["check"] == "site"] == ["firing"]
        assert a.api("/status")["alerts_firing"] == 1

        flag.write_text("up again")
        resolved = hook.wait(2, timeout=30, pred=for_check("site"))[1]
        check_am_shape(resolved)
        assert resolved["status"] == "resolved"
        assert resolved["alerts"][0]["endsAt"] > resolved["alerts"][0]["startsAt"]
        time.sleep(1.5)
        assert len(hook.bodies()) == 2  # told once each, no repeats
        events = a.events(kind="notification")
        assert sum(1 for e in events if e["data"].get("ok")) == 2


def test_email_reaches_the_sink(agent, tmp_path):
    flag = tmp_path / "flag"
    with SmtpSink() as smtp:
        agent(file_check(flag) + route(
            "    - name: ops\n      email: { to: [ops@example.com], from: bcdr@test,"
            f" smtp: '{smtp.url}' }}\n", "ops")).start()
        (mail,) = smtp.wait(1, timeout=30)
        msg = mail["message"]
        assert mail["to"] == ["ops@example.com"]
        assert msg["Subject"].startswith("[FIRING:1] site")
        assert "does not exist" in msg.get_payload()


def test_kill9_with_pending_notification_delivers_once(agent, tmp_path):
    flag = tmp_path / "flag"
    port = free_port()
    hook_url = f"http://127.0.0.1:{port}/hook"
    a = agent(file_check(flag) + route(
        f"    - name: hook\n      webhook: {{ url: '{hook_url}' }}\n      timeout: 2s\n",
        "hook"))
    a.start()
    # nobody listens: the first attempt fails and the notification waits in the queue
    a.wait_for(lambda: [e for e in a.events(kind="notification") if not e["data"].get("ok")],
               timeout=30, what="a failed delivery")
    a.kill9()
    # the receiver comes back on the same port, then the agent
    with WebhookServer(port=port) as hook:
        a.start()
        got = hook.wait(1, timeout=30, pred=for_check("site"))
        time.sleep(2)
        firing = [b for b in hook.bodies() if b["status"] == "firing"]
        assert len(firing) == 1, hook.bodies()
        check_am_shape(got[0])


def test_hanging_receiver_delays_nothing_else(agent, tmp_path):
    flag = tmp_path / "flag"
    with WebhookServer(mode="hang", hang_s=30) as slow, WebhookServer() as fast:
        a = agent(file_check(flag) + route(
            f"    - name: slow\n      webhook: {{ url: '{slow.url}' }}\n      timeout: 20s\n"
            f"    - name: fast\n      webhook: {{ url: '{fast.url}' }}\n", "slow",
            ", routes: [ { match: { check: '*' }, receiver: slow, continue: true },"
            " { match: { check: '*' }, receiver: fast } ]")).start()
        slow.wait(1, timeout=30)
        t0 = time.monotonic()
        fast.wait(1, timeout=10)
        assert time.monotonic() - t0 < 5
        # the agent keeps serving and probing while the slow receiver hangs
        status, text = a.get("/healthz")
        assert status == 200
        last = a.api("/checks")[0]["last_run"]
        time.sleep(2.2)
        assert a.api("/checks")[0]["last_run"] != last


def test_silence_holds_notifications(agent, tmp_path, bcdr):
    flag = tmp_path / "flag"
    flag.write_text("up")
    with WebhookServer() as hook:
        a = agent(file_check(flag) + route(
            f"    - name: hook\n      webhook: {{ url: '{hook.url}' }}\n", "hook")).start()
        r = bcdr("silence", "add", "-c", a.plan, "--match", "check=site", "--for", "1h")
        assert r.code == 0, r
        flag.unlink()
        a.wait_for(lambda: [x for x in a.api("/alerts") if x["state"] == "firing"],
                   timeout=30, what="the alert to fire")
        time.sleep(1.5)
        assert hook.bodies() == []
        (alert,) = a.api("/alerts")
        assert alert["silenced"] is True
        (silence,) = a.api("/silences")
        r = bcdr("silence", "expire", "-c", a.plan, silence["id"])
        assert r.code == 0, r
        hook.wait(1, timeout=30)


# The pidfile is written whole and renamed into place, as daemons do, so
# the test never reads it half-written.
SERVICE = """\
import os, sys, time
with open(sys.argv[1] + ".tmp", "w") as f:
    f.write(str(os.getpid()))
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
time.sleep(600)
"""


def test_action_restarts_killed_process_then_escalates(agent, tmp_path, bcdr):
    pidfile = tmp_path / "svc.pid"
    script = tmp_path / "svc.py"
    script.write_text(SERVICE)
    start = ["/usr/bin/python3", str(script), str(pidfile)]
    svc = subprocess.Popen(start)
    for _ in range(100):
        if pidfile.exists() and pidfile.read_text():
            break
        time.sleep(0.05)
    started = []
    with WebhookServer() as hook:
        plan = (
            "checks:\n  - name: svc\n"
            f"    process: {{ pidfile: '{pidfile}' }}\n    actions: [restart-svc]\n"
            "actions:\n  - name: restart-svc\n"
            f"    restart: {{ start: [/usr/bin/python3, '{script}', '{pidfile}'],"
            " background: true }\n"
            "    limit: 1 within 10m\n" +
            route(f"    - name: hook\n      webhook: {{ url: '{hook.url}' }}\n", "hook"))
        a = agent(plan).start()
        try:
            time.sleep(0.5)
            old = int(pidfile.read_text())
            svc.kill()
            svc.wait()
            new = a.wait_for(lambda: pidfile.exists() and pidfile.read_text().strip() and
                             int(pidfile.read_text()) != old and int(pidfile.read_text()),
                             timeout=30, what="the action to restart the service")
            started.append(new)
            os.kill(new, 0)  # it runs
            runs = a.wait_for(lambda: [e for e in a.events(kind="action")
                                       if e["data"].get("event") == "run"],
                              timeout=20, what="the action event")
            assert runs[0]["data"]["ok"] is True
            a.wait_for(lambda: a.api("/checks")[0]["state"] == "ok", timeout=20,
                       what="the check to recover")
            # killed again: the limit (1 within 10m) is reached, bcdr escalates
            os.kill(new, signal.SIGKILL)
            esc = hook.wait(1, timeout=30, pred=lambda b: any(
                x["labels"].get("alertname") == "escalation:restart-svc" for x in b["alerts"]))
            check_am_shape(esc[0])
            time.sleep(1.5)
            assert int(pidfile.read_text()) == new  # not restarted again
            r = bcdr("act", "list", "-c", a.plan, "--json")
            assert r.code == 0, r
            (act,) = r.json()
            assert act["state"] == "escalated"
            # the operator resets: it acts again
            r = bcdr("act", "reset", "-c", a.plan, "restart-svc")
            assert r.code == 0, r
            newer = a.wait_for(lambda: int(pidfile.read_text()) != new and
                               int(pidfile.read_text()), timeout=30,
                               what="a restart after the reset")
            started.append(newer)
        finally:
            for pid in started:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
