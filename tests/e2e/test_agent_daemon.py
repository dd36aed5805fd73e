"""The agent as a daemon: health, API, state across kill -9, reloads,
a full state_dir, garbage on every endpoint."""
import json
import shutil
import signal
import subprocess
import time

import pytest

from agent_helpers import free_port

PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"


def test_health_status_and_start_event(agent, bcdr):
    a = agent("targets: { availability: 99.9% }\n").start()
    status, text = a.get("/healthz")
    assert status == 200 and text.strip() == "ok"
    st = a.api("/status")
    assert st["degraded"] is False and st["reasons"] == []
    assert st["version"] and st["host"]
    assert st["checks"] == {"ok": 0, "warning": 0, "critical": 0, "unknown": 0}
    assert abs(st["availability"]["target"] - 0.999) < 1e-9
    started = [e for e in a.events(kind="agent") if "started" in e["message"]]
    assert len(started) == 1
    # The CLI reads address and token from the plan.
    r = bcdr("status", "-c", a.plan)
    assert r.code == 0, r
    assert "health    ok" in r.out
    r = bcdr("status", "-c", a.plan, "--json")
    assert r.code == 0 and r.json()["degraded"] is False
    r = bcdr("events", "--agent", a.url, "--kind", "agent", "--json")
    assert r.code == 0, r
    assert any("started" in e["message"] for e in r.json())
    r = bcdr("checks", "--agent", a.url, "--json")
    assert r.code == 0 and r.json() == []


def test_status_gives_modelled_and_measured_availability(agent):
    a = agent("targets: { availability: 99.5% }\n"
              "topology:\n  service: shop\n  requires: [app]\n"
              "  components:\n    - { name: app, mtbf: 999h, mttr: 1h }\n").start()
    avail = a.api("/status")["availability"]
    assert avail["target"] == pytest.approx(0.995)
    assert avail["modelled"] == pytest.approx(0.999, abs=1e-9)
    # Nothing failed yet: measured, when the agent has a window, is perfect
    # and the whole budget is left.
    if avail["measured"] is not None:
        assert avail["measured"] == pytest.approx(1.0)
        assert avail["budget_left_s"] >= 0


def test_metrics_pass_promtool(agent):
    a = agent().start()
    status, text = a.get("/metrics")
    assert status == 200
    assert "bcdr_agent_start_time_seconds" in text and "process_resident_memory_bytes" in text
    p = subprocess.run([PROMTOOL, "check", "metrics"], input=text, capture_output=True, text=True)
    assert p.returncode == 0, p.stdout + p.stderr


def test_cli_without_agent_fails_clearly(bcdr, tmp_path):
    r = bcdr("status", "--agent", f"127.0.0.1:{free_port()}")
    assert r.code == 1, r
    assert "cannot reach the agent" in r.err


def test_listen_taken_is_an_error(agent):
    a = agent().start()
    b = agent(port=a.port, state_dir=a.state_dir.parent / "other", name="b.yaml")
    b.start(wait=False)
    assert b.proc.wait(timeout=10) == 1
    assert "cannot listen on" in b.log.read_text()


def test_kill9_then_restart_keeps_state(agent):
    a = agent().start()
    token = a.token
    first = a.events()
    a.kill9()
    a.start()
    assert a.token == token, "the token survives restarts"
    events = a.events(kind="agent")
    starts = [e for e in events if "started" in e["message"]]
    assert len(starts) == 2, events
    assert [e["id"] for e in first] == [e["id"] for e in a.events()][:len(first)]


def test_sighup_with_bad_plan_keeps_the_old_one(agent, tmp_path):
    a = agent("targets: { availability: 99.9% }\n").start()
    a.write_plan("targets: { availability: 99.9% }\nchecks: [ {\n", raw=False)
    a.signal(signal.SIGHUP)
    ev = a.wait_for(lambda: [e for e in a.events(kind="agent") if "rejected" in e["message"]],
                    what="reload rejected event")
    assert f"{a.plan}:" in ev[0]["message"], ev  # file:line:col
    assert a.proc.poll() is None
    assert a.api("/status")["availability"]["target"] == pytest.approx(0.999)
    # A good plan then takes effect.
    a.write_plan("targets: { availability: 99.5% }\n")
    a.signal(signal.SIGHUP)
    a.wait_for(lambda: a.api("/status")["availability"]["target"] == pytest.approx(0.995),
               what="reloaded target")
    assert a.stop() == 0


def test_sigterm_stops_cleanly(agent):
    a = agent().start()
    assert a.stop() == 0
    assert "stopped" in a.log.read_text()


def test_auth_on_writes(agent):
    a = agent().start()
    assert a.request("POST", "/api/v1/alerts/ack", {"check": "x"})[0] == 401
    assert a.request("POST", "/api/v1/alerts/ack", {"check": "x"}, token="wrong-token")[0] == 403
    # With the token the request reaches the handler (here: no such engine / check).
    status, body = a.request("POST", "/api/v1/alerts/ack", {"check": "x"}, token=a.token)
    assert status not in (401, 403), body


def test_routes_say_what_they_allow(agent):
    """The route table: a method a path does not take is 405 naming the
    allowed ones, a query where none is taken is 400, an unknown path 404."""
    a = agent().start()
    tok = a.token
    for method, path, allowed in [("POST", "/api/v1/status", "GET"),
                                  ("DELETE", "/api/v1/silences", "GET, POST"),
                                  ("GET", "/api/v1/silences/abc", "DELETE"),
                                  ("GET", "/api/v1/actions/x/reset", "POST"),
                                  ("DELETE", "/api/v1/lb/a/b", "POST")]:
        s, body = a.request(method, path, body={} if method == "POST" else None, token=tok)
        assert s == 405 and f"allowed: {allowed})" in body["error"], (method, path, s, body)
    s, body = a.request("GET", "/api/v1/status?x=1", token=tok)
    assert s == 400 and "takes no query string" in body["error"], body
    assert a.request("GET", "/api/v1/events?limit=1", token=tok)[0] == 200
    s, body = a.request("GET", "/api/v1/statusx", token=tok)
    assert s == 404 and "no such API path" in body["error"], body
    s, body = a.request("POST", "/api/v1/actions/x", body={}, token=tok)
    assert s == 404 and "NAME/reset" in body["error"], body
    assert a.request("GET", "/api/v1/checks/", token=tok)[0] == 404


def test_full_state_dir_makes_agent_degraded(agent, tmp_path):
    mnt = tmp_path / "small"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(mnt)],
                      capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        a = agent(state_dir=mnt / "state").start()
        assert a.get("/healthz")[0] == 200
        filler = mnt / "filler"
        subprocess.run(["dd", "if=/dev/zero", f"of={filler}", "bs=4k"], capture_output=True)
        # Reloads write events: the next one meets a full disk.
        def degraded():
            a.signal(signal.SIGHUP)
            time.sleep(0.2)
            s, text = a.get("/healthz")
            return s == 503 and "state" in text and text
        text = a.wait_for(degraded, what="degraded /healthz")
        assert text.startswith("degraded:")
        st = a.api("/status")
        assert st["degraded"] is True and any("state" in r for r in st["reasons"])
        s, m = a.get("/metrics")
        assert "bcdr_agent_degraded 1" in m
        filler.unlink()
        def healthy():
            a.signal(signal.SIGHUP)
            time.sleep(0.2)
            return a.get("/healthz")[0] == 200
        a.wait_for(healthy, what="recovery once space is back")
        assert a.stop() == 0
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


GARBAGE_PATHS = [
    "/api/v1/status", "/api/v1/checks", "/api/v1/checks/x", "/api/v1/events",
    "/api/v1/alerts", "/api/v1/alerts/ack", "/api/v1/silences", "/api/v1/silences/1",
    "/api/v1/incidents", "/api/v1/actions", "/api/v1/actions/x/reset", "/api/v1/lb",
    "/api/v1/lb/a/b", "/healthz", "/metrics", "/",
]
GARBAGE_QUERIES = ["?since=yesterday", "?limit=-1", "?limit=99999999999", "?%zz=1", "?a=1&a=2",
                   "?since=2026-13-45T99:00:00Z", "?" + "x=1&" * 40, "?kind=%00"]
GARBAGE_BODIES = [b"", b"{", b"[]", b"null", b"\x00\xff\xfe", b'{"a":' * 5000,
                  json.dumps({"matchers": "x", "duration_s": -1}).encode(), b"x" * 70000]


def test_garbage_gets_4xx_never_a_crash(agent):
    a = agent().start()
    tok = a.token
    for path in GARBAGE_PATHS:
        for q in GARBAGE_QUERIES:
            s, body = a.request("GET", path + q, token=tok)
            if path in ("/healthz", "/metrics", "/"):
                assert s < 500 or s == 501, (path, q, s, body)
            else:
                assert 400 <= s < 500 or s == 501, (path, q, s, body)
        for method in ("POST", "DELETE", "PUT", "PATCH"):
            for raw in GARBAGE_BODIES:
                s, body = a.request(method, path, raw=raw, token=tok)
                assert 400 <= s < 500 or s == 501, (method, path, raw[:20], s, body)
    # Raw protocol garbage on the socket.
    import socket
    for junk in [b"\x00" * 100 + b"\r\n\r\n", b"GET " + b"A" * 20000 + b" HTTP/1.1\r\n\r\n",
                 b"GET / HTTP/1.1\r\n" + b"X: " + b"y" * 40000 + b"\r\n\r\n",
                 b"POST /api/v1/silences HTTP/1.1\r\nContent-Length: -5\r\n\r\n"]:
        with socket.create_connection(("127.0.0.1", a.port), timeout=5) as s:
            s.sendall(junk)
            try:
                s.recv(100)
            except OSError:
                pass
    assert a.get("/healthz")[0] == 200
    assert a.proc.poll() is None
