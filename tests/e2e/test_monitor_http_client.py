"""http checks: plain http:// goes through bcdr's own HTTP/1.1 client
(against nginx and a scripted Python server: keep-alive, the server
closing, chunked bodies, slow and garbage answers, 404, redirects), and the
agent maps libcurl only when a check needs it (https)."""
import os
import shutil
import socket
import socketserver
import subprocess
import threading
import time

import pytest

from agent_helpers import free_port
from alert_servers import WebhookServer


def _maps(pid):
    with open(f"/proc/{pid}/maps") as f:
        return f.read()


def _wait_ok(agent, names):
    def all_ok():
        checks = {c["name"]: c for c in agent.api("/checks")}
        return all(checks.get(n, {}).get("state") == "ok" for n in names) and checks
    return agent.wait_for(all_ok, what=f"{names} ok")


def test_agent_without_https_checks_never_maps_libcurl(agent, tmp_path, scripted):
    (tmp_path / "f").write_text("x")
    pidfile = tmp_path / "p.pid"
    pidfile.write_text(f"{os.getpid()}\n")
    a = agent(f"""checks:
  - {{ name: cpu, system: cpu }}
  - {{ name: f, file: {{ path: {tmp_path}/f }} }}
  - {{ name: p, process: {{ pidfile: {pidfile} }} }}
  - {{ name: web, http: "http://127.0.0.1:{scripted.port}/ok" }}
""").start()
    _wait_ok(a, ["cpu", "f", "p", "web"])
    time.sleep(1.5)  # a few more cycles
    assert "libcurl" not in _maps(a.proc.pid)


def test_https_check_loads_libcurl_on_first_use(agent, tls_web):
    a = agent(f"""checks:
  - name: tls
    http: {{ url: "https://127.0.0.1:{tls_web.server_port}/", insecure: true }}
""").start()
    _wait_ok(a, ["tls"])
    assert "libcurl" in _maps(a.proc.pid)


class _Scripted(socketserver.ThreadingTCPServer):
    """A raw HTTP/1.1 server whose answers are exact bytes chosen by path,
    on keep-alive connections; it counts connections and requests."""
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64  # the probe connects to it from 8 threads at once

    def __init__(self):
        super().__init__(("127.0.0.1", 0), _ScriptedHandler)
        self.port = self.server_address[1]
        self.connections = 0
        self.requests = []


class _ScriptedHandler(socketserver.BaseRequestHandler):
    def handle(self):
        srv = self.server
        srv.connections += 1
        conn = self.request
        conn.settimeout(10)
        data = b""
        served = 0
        while True:
            while b"\r\n\r\n" not in data:
                try:
                    chunk = conn.recv(65536)
                except OSError:
                    return
                if not chunk:
                    return
                data += chunk
            head, _, data = data.partition(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, path, _ = lines[0].split(" ", 2)
            srv.requests.append((method, path, lines[1:]))
            served += 1
            if path == "/ok":
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n")
            elif path == "/close-every-2":
                # keep-alive, then the server drops it without a word
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n")
                if served == 2:
                    return
            elif path == "/chunked":
                conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                             b"7\r\nstatus:\r\n")
                time.sleep(0.05)  # the rest in another segment
                conn.sendall(b"4;ext=1\r\n up\n\r\n0\r\nX-Trailer: 1\r\n\r\n")
            elif path == "/slow":
                time.sleep(10)  # far past the check's timeout, even on a loaded machine
                return
            elif path == "/garbage":
                conn.sendall(b"SSH-2.0-OpenSSH_9.2p1 Debian\r\n")
                return
            elif path == "/missing":
                conn.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
            elif path == "/moved":
                conn.sendall(b"HTTP/1.1 302 Found\r\nLocation: /ok\r\nContent-Length: 0\r\n\r\n")
            elif path == "/headers":
                body = "\n".join(lines[1:]).encode()
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
            elif path == "/old":
                conn.sendall(b"HTTP/1.0 200 OK\r\n\r\nread to the close\n")
                return
            else:
                return


@pytest.fixture
def scripted():
    srv = _Scripted()
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def _probe(bcdr, write_plan, body):
    r = bcdr("probe", "-c", write_plan("checks:\n" + body), "--json")
    assert r.code in (0, 3), r
    return {c["name"]: c for c in r.json()}


def test_http_answers_and_failures(bcdr, write_plan, scripted):
    u = f"http://127.0.0.1:{scripted.port}"
    t0 = time.monotonic()
    res = _probe(bcdr, write_plan, f"""
  - {{ name: ok, http: {{ url: "{u}/ok", body: "^ok$" }} }}
  - {{ name: chunked, http: {{ url: "{u}/chunked", body: "^status: up$" }} }}
  - {{ name: old, http: {{ url: "{u}/old", body: "to the close" }} }}
  - {{ name: slow, http: "{u}/slow", timeout: 500ms }}
  - {{ name: garbage, http: "{u}/garbage" }}
  - {{ name: missing, http: "{u}/missing" }}
  - {{ name: moved, http: "{u}/moved" }}
  - {{ name: moved-expected, http: {{ url: "{u}/moved", expect_status: 200 }} }}
  - {{ name: refused, http: "http://127.0.0.1:{free_port()}/" }}
  - {{ name: head, http: {{ url: "{u}/ok", method: HEAD }} }}
""")
    # The slow server answers after 10 s: the run ends long before, bounded by
    # the slow check's timeout (margins for a loaded machine under ASan).
    assert time.monotonic() - t0 < 8
    for name in ("ok", "chunked", "old", "moved", "head"):
        assert res[name]["status"] == "ok", res[name]
        assert res[name]["unit"] == "s" and 0 < res[name]["value"] < 3
    assert res["ok"]["message"].startswith("HTTP 200 in ")
    assert res["moved"]["message"].startswith("HTTP 302 in ")  # not followed
    assert res["slow"]["status"] == "critical"
    assert res["slow"]["message"] == f"GET {u}/slow: timed out waiting for the response"
    assert res["slow"]["duration_s"] < 4
    assert res["garbage"]["status"] == "critical"
    assert "invalid response: not an HTTP/1 status line" in res["garbage"]["message"]
    assert res["missing"]["status"] == "critical"
    assert res["missing"]["message"] == f"HTTP 404 from {u}/missing"
    assert res["moved-expected"]["message"] == f"HTTP 302 (expected 200) from {u}/moved"
    assert res["refused"]["status"] == "critical"
    assert "Connection refused" in res["refused"]["message"]


def test_http_request_headers(bcdr, write_plan, scripted):
    u = f"http://127.0.0.1:{scripted.port}"
    res = _probe(bcdr, write_plan, f"""
  - name: h
    http: {{ url: "{u}/headers", method: POST, headers: ["X-Token: abc", "Accept: text/plain"] }}
""")
    assert res["h"]["status"] == "ok", res["h"]
    method, path, headers = scripted.requests[-1]
    assert (method, path) == ("POST", "/headers")
    assert f"Host: 127.0.0.1:{scripted.port}" in headers
    assert "X-Token: abc" in headers and "Accept: text/plain" in headers
    assert "Accept: */*" not in headers
    assert "Content-Length: 0" in headers
    assert any(h.startswith("User-Agent: bcdr/") for h in headers)


def _history_ok(a, name):
    detail = a.api(f"/checks/{name}")
    return detail["state"] == "ok" and all(h["state"] == "ok" for h in detail["history"])


def test_agent_keeps_connections_and_reopens_closed_ones(agent, scripted):
    u = f"http://127.0.0.1:{scripted.port}"
    a = agent(f"""checks:
  - {{ name: kept, http: "{u}/ok", interval: 100ms }}
  - {{ name: dropped, http: "{u}/close-every-2", interval: 100ms }}
""").start()
    a.wait_for(lambda: sum(p == "/close-every-2" for _, p, _ in scripted.requests) >= 8,
               what="8 requests to the dropping server")
    n_ok = sum(p == "/ok" for _, p, _ in scripted.requests)
    assert n_ok >= 4
    # /ok on one connection; /close-every-2 on one per two requests
    n_drop = sum(p == "/close-every-2" for _, p, _ in scripted.requests)
    assert scripted.connections <= 1 + (n_drop + 1) // 2 + 1
    assert _history_ok(a, "kept") and _history_ok(a, "dropped")


@pytest.mark.skipif(not (shutil.which("nginx") or os.path.exists("/usr/sbin/nginx")),
                    reason="nginx is not installed")
def test_agent_against_nginx_keepalive_limit(agent, tmp_path):
    """nginx closes a connection after keepalive_requests: the check never
    notices, and every request before that rides the same connection."""
    port = free_port()
    d = tmp_path / "nginx"
    (d / "logs").mkdir(parents=True)
    conf = d / "nginx.conf"
    conf.write_text(f"""
daemon off; master_process off; worker_processes 1; pid {d}/nginx.pid;
error_log {d}/logs/error.log;
events {{ worker_connections 64; }}
http {{
  log_format conn '$connection $connection_requests $status';
  access_log {d}/logs/access.log conn;
  client_body_temp_path {d}; proxy_temp_path {d}; fastcgi_temp_path {d};
  uwsgi_temp_path {d}; scgi_temp_path {d};
  server {{
    listen 127.0.0.1:{port};
    keepalive_requests 3;
    location /health {{ return 200 "ok\n"; }}
  }}
}}
""")
    nginx = subprocess.Popen([shutil.which("nginx") or "/usr/sbin/nginx", "-c", str(conf),
                              "-p", str(d)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                assert time.time() < deadline, (d / "logs" / "error.log").read_text()
                time.sleep(0.05)
        a = agent(f"""checks:
  - name: web
    http: {{ url: "http://127.0.0.1:{port}/health", expect_status: 200, body: "^ok" }}
    interval: 100ms
""").start()
        log = d / "logs" / "access.log"
        a.wait_for(lambda: log.exists() and len(log.read_text().splitlines()) >= 10,
                   what="10 requests")
        rows = [line.split() for line in log.read_text().splitlines()]
        assert all(r[2] == "200" for r in rows)
        counts = {}
        for conn, n, _ in rows:
            counts[conn] = max(counts.get(conn, 0), int(n))
        # every connection but the newest carried nginx's limit of 3
        full = [c for c in counts.values()]
        assert full.count(3) >= len(full) - 1, rows
        assert _history_ok(a, "web")
    finally:
        nginx.kill()
        nginx.wait()


def test_webhook_receiver_without_libcurl_and_cancelled_on_stop(agent, tmp_path):
    """A plain http:// webhook goes through the own client: delivered with no
    libcurl in the agent; hanging, it does not hold up the agent's stop."""
    with WebhookServer() as hook:
        a = agent(f"""checks:
  - {{ name: gone, file: {{ path: {tmp_path}/missing }} }}
alerts:
  receivers:
    - {{ name: hook, webhook: {{ url: "{hook.url}" }} }}
  route: {{ receiver: hook, group_wait: 0s }}
""").start()
        (msg,) = hook.wait(1)
        assert msg["alerts"][0]["labels"]["check"] == "gone"
        assert hook.posts[0]["headers"]["Content-Type"] == "application/json"
        assert "libcurl" not in _maps(a.proc.pid)
        a.stop()
    with WebhookServer(mode="hang", hang_s=30) as hook:
        b = agent(f"""checks:
  - {{ name: gone, file: {{ path: {tmp_path}/missing }} }}
alerts:
  receivers:
    - {{ name: hook, webhook: {{ url: "{hook.url}" }}, timeout: 60s }}
  route: {{ receiver: hook, group_wait: 0s }}
""", port=free_port(), state_dir=tmp_path / "state2", name="plan2.yaml").start()
        hook.wait(1)
        t0 = time.monotonic()
        b.stop()
        assert time.monotonic() - t0 < 5
