"""The agent running real checks: an HTTP server that fails and recovers,
a process that is killed and restarted by an action, a probe that hangs
while the others keep running; state across a restart; incidents."""
import os
import signal
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from agent_helpers import free_port


class Flaky:
    """An HTTP server on 127.0.0.1 whose /health can be made to fail."""

    def __init__(self):
        self.ok = True
        flaky = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                code = 200 if flaky.ok else 500
                body = b"ok\n" if flaky.ok else b"broken\n"
                self.send_response(code)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def web():
    w = Flaky()
    yield w
    w.close()


def check(a, name):
    return a.api(f"/checks/{name}")


def test_http_check_fails_and_recovers(agent, web):
    a = agent(f"""
checks:
  - name: web
    http: {{ url: "http://127.0.0.1:{web.port}/health", expect_status: 200 }}
    timeout: 2s
    for: 2
    labels: {{ component: frontend }}
""").start()
    a.wait_for(lambda: check(a, "web")["state"] == "ok", what="web ok")
    web.ok = False
    a.wait_for(lambda: check(a, "web")["state"] == "critical", what="web critical")
    alerts = a.api("/alerts")
    assert any(x["labels"]["check"] == "web" and x["state"] == "firing" for x in alerts), alerts
    inc = a.api("/incidents")
    assert len(inc) == 1 and inc[0]["check"] == "web" and inc[0]["component"] == "frontend"
    assert inc[0]["ended_at"] is None
    web.ok = True
    a.wait_for(lambda: check(a, "web")["state"] == "ok", what="web recovered")
    inc = a.api("/incidents")
    assert inc[0]["ended_at"] is not None and inc[0]["duration_s"] > 0
    states = [e["message"] for e in a.events(kind="state", check="web")]
    assert any("ok -> critical" in m for m in states) and any("critical -> ok" in m for m in states)
    detail = check(a, "web")
    assert detail["history"] and {"time", "value", "state"} <= set(detail["history"][0])
    # metrics carry the check
    s, m = a.get("/metrics")
    assert 'bcdr_check_state{check="web",kind="http"} 0' in m


def test_killed_process_is_restarted_by_its_action(agent, tmp_path):
    pidfile = tmp_path / "svc.pid"
    script = tmp_path / "svc.sh"
    script.write_text(f"#!/bin/sh\necho $$ > {pidfile}\nexec sleep 1000\n")
    script.chmod(0o755)
    starts = tmp_path / "starts"
    start = tmp_path / "start.sh"
    start.write_text(f"#!/bin/sh\necho x >> {starts}\n{script} &\n")
    start.chmod(0o755)
    subprocess.run([str(start)], check=True)
    a = agent(f"""
checks:
  - name: svc
    process: {{ pidfile: {pidfile} }}
    actions: [restart-svc]
actions:
  - name: restart-svc
    exec: [{start}]
    limit: 3 within 10m
""").start()
    try:
        a.wait_for(lambda: check(a, "svc")["state"] == "ok", what="svc ok")
        first = int(pidfile.read_text())
        os.kill(first, signal.SIGKILL)
        a.wait_for(lambda: pidfile.exists() and pidfile.read_text().strip() and
                   int(pidfile.read_text()) != first, what="a new pid")
        a.wait_for(lambda: check(a, "svc")["state"] == "ok", what="svc ok again")
        acts = a.events(kind="action")
        assert any("restart-svc" in e["message"] and e["data"].get("exit_status") == 0
                   for e in acts), acts
        assert starts.read_text().count("x") == 2
        listing = a.api("/actions")
        assert listing[0]["name"] == "restart-svc" and listing[0]["runs_in_window"] == 1
    finally:
        try:
            os.kill(int(pidfile.read_text()), signal.SIGKILL)
        except (OSError, ValueError):
            pass


def test_hanging_probe_blocks_nothing(agent, tmp_path):
    f = tmp_path / "f"
    f.write_text("x")
    a = agent(f"""
checks:
  - name: hang
    program: {{ argv: [/bin/sleep, "600"] }}
    timeout: 1m
  - name: file
    file: {{ path: {f} }}
""", interval="200ms").start()
    a.wait_for(lambda: check(a, "file")["state"] == "ok", what="file ok")
    time.sleep(1.5)
    s, m = a.get("/metrics")
    runs = [l for l in m.splitlines() if l.startswith('bcdr_check_runs_total{check="file"')]
    assert runs and float(runs[0].split()[-1]) >= 4, runs
    hang = check(a, "hang")
    assert hang["running"] is True and hang["last_run"] is None
    assert a.get("/healthz")[0] == 200
    probes = children(a.proc.pid, [b"/bin/sleep", b"600"])
    assert probes, "the hung probe should be a child of the agent"
    assert a.stop() == 0  # a hung probe does not hold up shutdown
    # ... nor outlives the agent.
    deadline = time.time() + 5
    while time.time() < deadline and any(os.path.exists(f"/proc/{p}") for p in probes):
        time.sleep(0.1)
    assert not any(os.path.exists(f"/proc/{p}") for p in probes)


def children(parent, argv):
    """Pids of the processes of parent running argv."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            cmd = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0")
            ppid = int(open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        if cmd[:len(argv)] == argv and ppid == parent:
            found.append(int(pid))
    return found


def test_state_survives_kill9(agent, web):
    body = f"""
checks:
  - name: web
    http: {{ url: "http://127.0.0.1:{web.port}/health" }}
"""
    a = agent(body).start()
    web.ok = False
    a.wait_for(lambda: check(a, "web")["state"] == "critical", what="web critical")
    since = check(a, "web")["since"]
    a.kill9()
    a.start()
    time.sleep(1.5)
    w = check(a, "web")
    assert w["state"] == "critical" and w["since"] == since, w
    # still critical: no second transition, one open incident
    trans = [e for e in a.events(kind="state", check="web") if "-> critical" in e["message"]]
    assert len(trans) == 1, trans
    assert len(a.api("/incidents")) == 1


def test_balancer_runs_in_the_agent(agent, web, tmp_path):
    lport, rport = free_port(), free_port()
    a = agent(f"""
balancers:
  - name: front
    listen: [127.0.0.1:{lport}]
    backends:
      - {{ name: one, address: 127.0.0.1:{web.port} }}
""")
    a.head = a.head.replace("interval: 1s }", f"interval: 1s, lb_report_port: {rport} }}")
    a.write_plan(a.plan.read_text().split("\n", 1)[1])
    a.start()
    import urllib.request
    with urllib.request.urlopen(f"http://127.0.0.1:{lport}/health", timeout=5) as r:
        assert r.status == 200 and r.read() == b"ok\n"
    lb = a.api("/lb")
    assert lb[0]["name"] == "front" and lb[0]["backends"][0]["name"] == "one"
    assert a.api("/status")["balancers"][0]["name"] == "front"
    s, body = a.request("POST", "/api/v1/lb/front/one", {"state": "drain"}, token=a.token)
    assert s == 200, body
    s, body = a.request("POST", "/api/v1/lb/front/nope", {"state": "drain"}, token=a.token)
    assert s == 404, body
    s, body = a.request("POST", "/api/v1/lb/front/one", {"state": 5}, token=a.token)
    assert s == 400, body
    assert any("front" in e["message"] for e in a.events(kind="lb"))
    # HAProxy agent-check line on lb_report_port
    import socket
    with socket.create_connection(("127.0.0.1", rport), timeout=5) as sock:
        line = sock.recv(100).decode()
    assert line.endswith("\n") and line.split()[0] in ("up", "down", "drain"), line
