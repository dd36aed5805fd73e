"""http checks: the agent maps libcurl only when a check needs it (https),
and plain http:// checks go through bcdr's own HTTP/1.1 client."""
import http.server
import os
import ssl
import subprocess
import threading
import time

import pytest


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        body = b"ok\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def _serve(srv):
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    return srv


@pytest.fixture
def tls_web(tmp_path):
    key, crt = tmp_path / "key.pem", tmp_path / "crt.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "10",
                    "-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(crt)],
                   check=True, capture_output=True)
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(crt), str(key))
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    yield _serve(srv)
    srv.shutdown()
    srv.server_close()


def _maps(pid):
    with open(f"/proc/{pid}/maps") as f:
        return f.read()


def _wait_ok(agent, names):
    def all_ok():
        checks = {c["name"]: c for c in agent.api("/checks")}
        return all(checks.get(n, {}).get("state") == "ok" for n in names) and checks
    return agent.wait_for(all_ok, what=f"{names} ok")


def test_agent_without_https_checks_never_maps_libcurl(agent, tmp_path):
    (tmp_path / "f").write_text("x")
    pidfile = tmp_path / "p.pid"
    pidfile.write_text(f"{os.getpid()}\n")
    a = agent(f"""checks:
  - {{ name: cpu, system: cpu }}
  - {{ name: f, file: {{ path: {tmp_path}/f }} }}
  - {{ name: p, process: {{ pidfile: {pidfile} }} }}
""").start()
    _wait_ok(a, ["cpu", "f", "p"])
    time.sleep(1.5)  # a few more cycles
    assert "libcurl" not in _maps(a.proc.pid)


def test_https_check_loads_libcurl_on_first_use(agent, tls_web):
    a = agent(f"""checks:
  - name: tls
    http: {{ url: "https://127.0.0.1:{tls_web.server_port}/", insecure: true }}
""").start()
    _wait_ok(a, ["tls"])
    assert "libcurl" in _maps(a.proc.pid)
