"""The agent's API against DNS rebinding and connection floods, on a real
agent: the Host header must name the listener (its IP, localhost, the host
name, agent.api_hosts; with or without the port), else 421 with the setting
to add; a valid token passes regardless. Connections are capped
(agent.api_max_connections, 128 by default): beyond it they are closed at
once and counted, and once a flood of idle connections goes the API answers
again at once."""
import json
import re
import signal
import socket
import time

import pytest

from agent_helpers import Agent
from conftest import SANITIZED, run


def raw_get(port, path, host=None, token=None, timeout=5.0):
    """GET with exactly this Host header (None: none at all); (status, body)."""
    head = f"GET {path} HTTP/1.1\r\nConnection: close\r\n"
    if host is not None:
        head += f"Host: {host}\r\n"
    if token:
        head += f"Authorization: Bearer {token}\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout) as s:
        s.sendall((head + "\r\n").encode("latin-1"))
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1]) if head else 0
    return status, body.decode(errors="replace")


@pytest.fixture
def agent(tmp_path):
    a = Agent(tmp_path).start()
    yield a
    assert a.stop() == 0


def test_host_must_name_the_listener(agent):
    p = agent.port
    hostname = socket.gethostname()
    for host in (f"127.0.0.1:{p}", "127.0.0.1", "localhost", f"localhost:{p}", "LocalHost.",
                 hostname, f"{hostname}:{p}"):
        status, body = raw_get(p, "/api/v1/status", host)
        assert status == 200, (host, status, body)
    for host in ("rebind.evil.example", f"rebind.evil.example:{p}", f"127.0.0.1:{p + 1}",
                 "127.0.0.2", f"[::1]:{p}", f"localhost:{p}:1", "local host", ""):
        for path in ("/api/v1/status", "/api/v1/events", "/metrics", "/healthz", "/"):
            status, body = raw_get(p, path, host)
            assert status == 421, (host, path, status, body)
        err = json.loads(body)["error"]
        assert "agent.api_hosts" in err and "DNS rebinding" in err, err
    # no Host at all (HTTP/1.0 style), and overlong ones
    status, body = raw_get(p, "/api/v1/status", None)
    assert status == 421 and "without a Host header" in json.loads(body)["error"]
    for n in (300, 8000):
        status, body = raw_get(p, "/api/v1/status", "a" * n)
        assert status == 421, (n, status)
        assert len(json.loads(body)["error"]) < 400
    status, body = raw_get(p, "/api/v1/status", f"localhost:{p}" + "0" * 300)
    assert status == 421
    # the token lets a request through under any name (a rebinding page cannot know it)
    status, body = raw_get(p, "/api/v1/status", "proxy.example", token=agent.token)
    assert status == 200, body
    status, body = raw_get(p, "/api/v1/status", "proxy.example", token="wrong")
    assert status == 421
    assert metric(p, "bcdr_agent_http_misdirected_total") >= 40


def test_api_hosts_names_more(tmp_path):
    a = Agent(tmp_path)
    a.start()
    try:
        assert raw_get(a.port, "/api/v1/status", "bcdr.test")[0] == 421
        # added by a reload: the running agent takes it
        a.write_plan(a.head.replace("interval:", "api_hosts: [bcdr.test, Other.Test], interval:"),
                     raw=True)
        a.signal(signal.SIGHUP)
        a.wait_for(lambda: raw_get(a.port, "/api/v1/status", "bcdr.test")[0] == 200,
                   what="api_hosts after the reload")
        assert raw_get(a.port, "/api/v1/status", f"bcdr.test:{a.port}")[0] == 200
        assert raw_get(a.port, "/api/v1/status", "other.test")[0] == 200
        assert raw_get(a.port, "/api/v1/status", f"bcdr.test:{a.port + 1}")[0] == 421
        assert raw_get(a.port, "/api/v1/status", "evil.bcdr.test")[0] == 421
    finally:
        assert a.stop() == 0
    a.plan.write_text(a.head.replace("interval:", "api_hosts: ['bcdr.test:80'], interval:"))
    r = run("config", "check", "-c", str(a.plan))
    assert r.code != 0 and "api_hosts: 'bcdr.test:80' is not a host name" in r.err, r


def metric(port, name):
    status, text = raw_get(port, "/metrics", f"127.0.0.1:{port}")
    assert status == 200
    return float(re.search(rf"^{name} (\S+)", text, re.M)[1])


def test_connection_flood(agent):
    p = agent.port
    socks = []
    for _ in range(300):
        socks.append(socket.create_connection(("127.0.0.1", p), 5))
    time.sleep(1.5 if SANITIZED else 0.5)
    open_, closed = 0, 0
    for s in socks:
        s.setblocking(False)
        try:
            closed += s.recv(1) == b""
        except BlockingIOError:
            open_ += 1
        except ConnectionResetError:
            closed += 1
    assert open_ <= 128 and closed >= 300 - 128, (open_, closed)
    # at the cap, a new connection is closed at once, not served or left waiting
    with socket.create_connection(("127.0.0.1", p), 5) as s:
        s.sendall(f"GET /api/v1/status HTTP/1.1\r\nHost: 127.0.0.1:{p}\r\n\r\n".encode())
        s.settimeout(5)
        t = time.monotonic()
        try:
            assert s.recv(100) == b""
        except ConnectionResetError:
            pass
        assert time.monotonic() - t < 2
    for s in socks:
        s.close()
    # once they are gone, the API answers at once
    deadline = time.monotonic() + 5
    while True:
        t = time.monotonic()
        try:
            status, body = raw_get(p, "/api/v1/status", f"127.0.0.1:{p}", timeout=2)
        except OSError:
            status = 0
        took = time.monotonic() - t
        if status == 200 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert status == 200 and took < (2 if SANITIZED else 0.5), (status, took)
    assert metric(p, "bcdr_agent_http_connections_refused_total") >= 300 - 128 + 1
    assert metric(p, "bcdr_agent_http_connections") <= 2
