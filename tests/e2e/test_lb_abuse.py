"""bcdr lb under abuse: backends that never answer, reset or half-close;
many idle clients, slowloris, max_conns. After each: the balancer is alive,
its file descriptors are back to where they were, its memory does not grow."""
import socket
import time

import pytest

from conftest import SANITIZED
from lbkit import Backend, Balancer, ask, free_port, wait_for


def flood(port, n):
    """n clients that connect and say nothing. One the balancer refuses is
    reset, which may reach it while connect() still waits to return."""
    socks = []
    for _ in range(n):
        try:
            socks.append(socket.create_connection(("127.0.0.1", port)))
        except ConnectionResetError:
            pass
    return socks


def plan(port, bes, extra="", health="{ tcp: {}, interval: 1s }"):
    lines = "\n".join(f"      - {{ name: {b.name}, address: 127.0.0.1:{b.port} }}" for b in bes)
    return f"""balancers:
  - name: web
    listen: [127.0.0.1:{port}]
    health: {health}
{extra}    backends:
{lines}
"""


@pytest.fixture
def env(tmp_path):
    made = []

    class Env:
        def backend(self, *a, **kw):
            b = Backend(*a, **kw)
            made.append(b)
            return b

        def balancer(self, text, **kw):
            lb = Balancer(tmp_path, text, **kw)
            made.append(lb)
            return lb
    yield Env()
    for m in reversed(made):
        if isinstance(m, Balancer):
            assert m.alive(), m.logtext()
            assert m.stop() == 0, m.logtext()
        elif not m._stop:
            m.stop()


def settle(lb, baseline):
    """Waits until every connection is gone and the fds are back."""
    assert wait_for(lambda: lb.status()[0]["connections"] == 0, 15), lb.status()
    assert wait_for(lambda: lb.fds() <= baseline, 10), (lb.fds(), baseline)


def test_blackhole_backend_is_cut_by_the_idle_timeout(env):
    hole = env.backend("hole", mode="blackhole")
    port = free_port()
    lb = env.balancer(plan(port, [hole], extra="    timeouts: { connect: 1s, idle: 500ms }\n"))
    base = lb.fds()
    socks = []
    for _ in range(20):
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(b"anyone?\n")
        socks.append(s)
    t0 = time.monotonic()
    for s in socks:
        s.settimeout(5)
        try:
            assert s.recv(16) == b""
        except ConnectionResetError:
            pass
    assert time.monotonic() - t0 < 3
    for s in socks:
        s.close()
    settle(lb, base)


def test_resetting_and_half_closing_backends(env):
    rst = env.backend("rst", mode="reset")
    good = env.backend("good")
    port = free_port()
    lb = env.balancer(plan(port, [rst, good], health="{ tcp: {}, interval: 30s }"), workers=1)
    base = lb.fds()
    # A reset after accept is not a failed connect: the client sees it, the
    # balancer survives it.
    results = [ask(port) for _ in range(20)]
    assert results.count("good") >= 10 and set(results) <= {"good", ""}
    # Half-close: the client says EOF, the backend still answers after it.
    lb.set("web/rst", "maint")
    s = socket.create_connection(("127.0.0.1", port))
    s.settimeout(5)
    s.sendall(b"one\n")
    s.shutdown(socket.SHUT_WR)
    data = b""
    while True:
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
    assert data == b"good\nbye good\n"
    s.close()
    settle(lb, base)


def test_many_idle_clients_and_memory(env):
    n = 2000
    b = env.backend("b")
    port = free_port()
    lb = env.balancer(plan(port, [b]), workers=2)
    base = lb.fds()
    rss = []
    for round_ in range(2):
        socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(n)]
        assert wait_for(lambda: lb.status()[0]["connections"] == n, 20), lb.status()[0]
        assert lb.fds() >= base + 2 * n  # idle: two sockets each, no pipes
        assert lb.fds() < base + 2 * n + 100
        assert ask(port) == "b"  # still serving
        for s in socks:
            s.close()
        settle(lb, base)
        rss.append(lb.rss_kib())
    # The second round reuses what the first freed: no growth.
    assert rss[1] - rss[0] < 4096, rss


@pytest.mark.no_sanitizer
def test_ten_thousand_idle_clients(env):
    # 10,000 clients and their backend connections would need 20,000 fds in
    # one process (this machine's hard limit); connect_on_data holds no
    # backend connection for a client that has said nothing.
    n = 10000
    b = env.backend("b")
    port = free_port()
    lb = env.balancer(plan(port, [b], extra="    connect_on_data: true\n    max_conns: 20000\n"))
    base = lb.fds()
    socks = []
    for _ in range(n):
        socks.append(socket.create_connection(("127.0.0.1", port)))
    assert wait_for(lambda: lb.status()[0]["connections"] == n, 30), lb.status()[0]
    assert b.accepted < 50  # health checks only
    assert ask(port) == "b"
    for s in socks:
        s.close()
    settle(lb, base)


def test_slowloris_and_max_conns(env):
    b = env.backend("b")
    port = free_port()
    lb = env.balancer(plan(port, [b], extra="    max_conns: 60\n"
                           "    timeouts: { connect: 1s, idle: 2s }\n"), workers=1)
    base = lb.fds()
    slow = []
    for _ in range(50):
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(b"G")
        slow.append(s)
    # Slow clients take slots, not the balancer: others are still served.
    assert ask(port) == "b"
    for _ in range(3):
        for s in slow:
            s.sendall(b"E")
        time.sleep(0.1)
    assert wait_for(lambda: lb.status()[0]["connections"] == 50, 5)
    # Beyond max_conns: refused at once with a reset, and counted.
    extra = [socket.create_connection(("127.0.0.1", port)) for _ in range(10)]
    t0 = time.monotonic()
    try:
        refused = socket.create_connection(("127.0.0.1", port))
        refused.settimeout(5)
        got = refused.recv(16)
    except ConnectionResetError:  # in recv(), or already in connect()
        got = b""
    assert got == b"" and time.monotonic() - t0 < 1
    assert lb.status()[0]["refused"] >= 1
    # The worker logs the refusal after it resets the client: allow it a moment.
    deadline = time.monotonic() + 5
    while "max_conns 60 reached" not in lb.logtext() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "max_conns 60 reached" in lb.logtext()
    for s in extra + [refused]:
        s.close()
    # Slowloris clients that stop trickling are cut by the idle timeout.
    assert wait_for(lambda: lb.status()[0]["connections"] == 0, 10), lb.status()[0]
    for s in slow:
        s.close()
    settle(lb, base)
    assert ask(port) == "b"


def test_out_of_file_descriptors_then_normal_service(env):
    # A hard RLIMIT_NOFILE of 64: a flood of silent clients (one fd each
    # with connect_on_data) runs the worker out of fds at accept(); it
    # refuses them (the reserve fd's trick) and, once they are gone, serves
    # as before with as many fds as before.
    b = env.backend("b")
    port = free_port()
    lb = env.balancer(f"""balancers:
  - name: web
    listen: [127.0.0.1:{port}]
    connect_on_data: true
    backends:
      - {{ name: b, address: 127.0.0.1:{b.port} }}
""", workers=1, nofile=64)
    assert ask(port) == "b"
    assert wait_for(lambda: lb.status()[0]["connections"] == 0, 10)
    base = lb.fds()
    clients = flood(port, 100)
    assert wait_for(lambda: "out of file descriptors" in lb.logtext(), 20), lb.logtext()
    # Every client the balancer could not hold was reset, none is left queued.
    for s in clients:
        s.settimeout(0.2)
    for s in clients:
        s.close()
    settle(lb, base)
    assert lb.status()[0]["refused"] >= 1
    for _ in range(20):
        assert ask(port) == "b"
    settle(lb, base)
    assert lb.fds() == base
    clients = flood(port, 100)
    for s in clients:
        s.close()
    settle(lb, base)
    assert ask(port) == "b"


def test_garbage_on_the_control_socket(env):
    b = env.backend("b")
    port = free_port()
    lb = env.balancer(plan(port, [b]))
    for junk in [b"\n", b"status now\n", b"set\n", b"set web drain\n", b"set web/b weight -1\n",
                 b"set web/b weight 99999\n", b"x" * 5000 + b"\n", b"\x00\xff\n"]:
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(6)
            s.connect(lb.sock)
            try:
                s.sendall(junk)
                data = s.recv(65536)
            except (ConnectionResetError, BrokenPipeError):
                data = b""
            assert data == b"" or b'"ok":false' in data, (junk[:20], data)
    assert lb.state("b") == "up"
