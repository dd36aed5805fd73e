"""bcdr lb: algorithms, weights, drain, health, backups, redispatch, slow
start, agent reports, reload - against real servers on 127.0.0.1."""
import signal
import socket
import subprocess
import time

import pytest

from conftest import BCDR
from lbkit import Backend, Balancer, Nginx, ask, counts, free_port, http_get, wait_for, SLOW


@pytest.fixture
def backends():
    made = []

    def make(*names, **kw):
        bs = [Backend(n, **kw) for n in names]
        made.extend(bs)
        return bs
    yield make
    for b in made:
        if not b._stop:
            b.stop()


@pytest.fixture
def balancer(tmp_path):
    made = []

    def make(plan, **kw):
        lb = Balancer(tmp_path, plan, **kw)
        made.append(lb)
        return lb
    yield make
    for lb in made:
        if lb.stopped:
            continue
        assert lb.alive(), lb.logtext()
        assert lb.stop() == 0, lb.logtext()


def plan_for(port, bes, algorithm="roundrobin", extra="", health="{ tcp: {}, interval: 1s }",
             weights=None, backup=()):
    lines = []
    for i, b in enumerate(bes):
        w = weights[i] if weights else 1
        lines.append(f"      - {{ name: {b.name}, address: 127.0.0.1:{b.port}, weight: {w}"
                     f"{', backup: true' if b.name in backup else ''} }}")
    return f"""balancers:
  - name: web
    listen: [127.0.0.1:{port}]
    algorithm: {algorithm}
    health: {health}
{extra}    backends:
""" + "\n".join(lines) + "\n"


def test_config_check_reports_bad_balancer(bcdr, write_plan):
    path = write_plan("balancers:\n  - name: web\n    listen: [127.0.0.1:80]\n"
                      "    backends:\n      - { name: a, address: nowhere }\n")
    r = bcdr("config", "check", "-c", path)
    assert r.code == 1
    assert "bcdr.yaml:5:" in r.err and "'nowhere' is not an address" in r.err
    path = write_plan("balancers:\n  - name: web\n    listen: [127.0.0.1:80]\n"
                      "    algorithm: random\n    backends:\n"
                      "      - { name: a, address: 127.0.0.1:1 }\n")
    r = bcdr("config", "check", "-c", path)
    assert r.code == 1 and "must be one of: roundrobin, leastconn, p2c" in r.err


def test_roundrobin_weights_drain_and_weight(backends, balancer):
    a, b = backends("a", "b")
    port = free_port()
    lb = balancer(plan_for(port, [a, b], weights=[3, 1]), workers=1)
    seen = counts(port, 200)
    # One worker: smooth weighted round robin is exact.
    assert seen == {"a": 150, "b": 50}, seen
    lb.set_cli("web/a", "drain")
    assert lb.state("a") == "drain"
    assert counts(port, 20) == {"b": 20}
    lb.set("web/a", "ready")
    lb.set("web/a", "weight", "1")
    assert counts(port, 40) == {"a": 20, "b": 20}
    r = lb.run("set", "web/nope", "drain")
    assert r.returncode == 1 and "no such balancer/backend" in r.stderr
    r = lb.run("set", "web/a", "sideways")
    assert r.returncode == 2
    st = lb.status_cli()[0]
    assert st["accepted"] == 260 and st["failed"] == 0
    be = {x["name"]: x for x in st["backends"]}
    assert be["a"]["total"] + be["b"]["total"] == 260
    assert be["a"]["bytes_in"] > 0 and be["a"]["bytes_out"] > 0
    assert be["a"]["latency"]["response_p99_ms"] >= 0
    human = lb.run("status")
    assert human.returncode == 0 and "BACKEND" in human.stdout and " drain" not in human.stdout


def test_leastconn_spreads_held_connections(backends, balancer):
    bes = backends("a", "b", "c")
    port = free_port()
    lb = balancer(plan_for(port, bes, algorithm="leastconn"))
    held = []
    for _ in range(30):
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(b"x\n")
        assert s.recv(16)
        held.append(s)
    conns = {b["name"]: b["connections"] for b in lb.status()[0]["backends"]}
    assert conns == {"a": 10, "b": 10, "c": 10}, conns
    for s in held[:10]:
        s.close()
    for s in held[10:]:
        s.close()
    assert wait_for(lambda: lb.status()[0]["connections"] == 0)


def test_p2c_and_first(backends, balancer, tmp_path):
    bes = backends("a", "b", "c")
    port = free_port()
    lb = balancer(plan_for(port, bes, algorithm="p2c"))
    seen = counts(port, 300)
    assert set(seen) == {"a", "b", "c"} and min(seen.values()) > 50, seen
    assert lb.stop() == 0
    port2 = free_port()
    (tmp_path / "f").mkdir()
    lb2 = Balancer(tmp_path / "f", plan_for(port2, bes, algorithm="first"))
    try:
        assert counts(port2, 30) == {"a": 30}
        lb2.set("web/a", "maint")
        assert counts(port2, 10) == {"b": 10}
    finally:
        lb2.stop()


def test_peak_ewma_avoids_the_slow_backend(backends, balancer):
    fast = backends("fast")[0]
    slow = backends("slow", delay=0.05)[0]
    port = free_port()
    balancer(plan_for(port, [fast, slow], algorithm="peak-ewma"))
    seen = counts(port, 120)
    assert seen.get("fast", 0) > 3 * seen.get("slow", 0), seen


def test_maglev_is_sticky_per_client_address(backends, balancer):
    bes = backends("a", "b", "c")
    port = free_port()
    lb = balancer(plan_for(port, bes, algorithm="maglev"))
    first = {}
    for i in range(2, 62):
        src = f"127.0.0.{i}"
        first[src] = ask(port, src=src)
        assert ask(port, src=src) == first[src]
    spread = {v: list(first.values()).count(v) for v in set(first.values())}
    assert set(spread) == {"a", "b", "c"} and min(spread.values()) >= 8, spread
    # Only the clients of a failed backend move.
    lb.set("web/c", "maint")
    for src, was in first.items():
        now = ask(port, src=src)
        assert now != "c"
        if was != "c":
            assert now == was


def test_health_fall_rise_timing_and_backup(backends, balancer):
    a, b, spare = backends("a", "b", "spare")
    port = free_port()
    health = "{ tcp: {}, interval: 200ms, fastinter: 100ms, rise: 2, fall: 3 }"
    lb = balancer(plan_for(port, [a, b, spare], health=health, backup=("spare",)))
    assert counts(port, 20).get("spare", 0) == 0
    t0 = time.monotonic()
    a.stop()
    assert wait_for(lambda: lb.state("a") == "down", 5)
    fell = time.monotonic() - t0
    # fall 3: the first failure at the next check, then two at fastinter.
    assert 0.15 < fell < 1.5 * SLOW, fell
    assert counts(port, 10) == {"b": 10}
    b.stop()
    assert wait_for(lambda: lb.state("b") == "down", 5)
    assert counts(port, 10) == {"spare": 10}  # backup takeover
    t0 = time.monotonic()
    a.start()
    assert wait_for(lambda: lb.state("a") == "up", 5)
    rose = time.monotonic() - t0
    assert rose < 1.0 * SLOW, rose  # rise 2 at fastinter while down
    assert counts(port, 10) == {"a": 10}  # give-back
    lb.run("status")
    events = lb.logtext()
    assert "backend 'a' up -> down" in events and "no primary left" in events


def test_http_health_with_nginx(balancer, tmp_path):
    n1, n2 = Nginx(tmp_path), Nginx(tmp_path)
    port = free_port()
    plan = f"""balancers:
  - name: web
    listen: [127.0.0.1:{port}]
    health: {{ http: {{ path: /health, expect_status: 200 }}, interval: 200ms, fastinter: 100ms }}
    backends:
      - {{ name: n1, address: 127.0.0.1:{n1.port} }}
      - {{ name: n2, address: 127.0.0.1:{n2.port} }}
"""
    try:
        lb = balancer(plan)
        assert wait_for(lambda: lb.backend("n1").get("last_check") == "HTTP status 200", 5)
        bodies = [http_get(port)[1].strip() for _ in range(20)]
        assert 6 <= bodies.count(f"nginx-{n1.port}") <= 14, bodies
        n2.kill()
        assert wait_for(lambda: lb.state("n2") == "down", 5)
        assert {http_get(port)[1].strip() for _ in range(10)} == {f"nginx-{n1.port}"}
    finally:
        n1.kill()
        if n2.proc.poll() is None:
            n2.kill()


def test_http_health_refuses_what_is_not_http(backends, balancer, tmp_path):
    # A TCP server answering lines with its name is up for a tcp check, not
    # for an http one; nginx answering 200 where 204 is expected is down.
    text, = backends("text")
    n = Nginx(tmp_path)
    port = free_port()
    plan = f"""balancers:
  - name: web
    listen: [127.0.0.1:{port}]
    health: {{ http: {{ path: /health, expect_status: 204 }}, interval: 200ms, fastinter: 100ms }}
    backends:
      - {{ name: text, address: 127.0.0.1:{text.port} }}
      - {{ name: nginx, address: 127.0.0.1:{n.port} }}
"""
    try:
        lb = balancer(plan)
        assert wait_for(lambda: lb.state("text") == "down", 10), lb.backend("text")
        assert lb.backend("text")["last_check"] == "not an HTTP response"
        assert wait_for(lambda: lb.state("nginx") == "down", 10), lb.backend("nginx")
        assert lb.backend("nginx")["last_check"] == "HTTP status 200"
    finally:
        n.kill()


def test_redispatch_hides_a_dead_backend(backends, balancer):
    a, b, c = backends("a", "b", "c")
    port = free_port()
    # Checks too slow to notice: only redispatch can save the clients.
    lb = balancer(plan_for(port, [a, b, c], health="{ tcp: {}, interval: 30s }") +
                  "", workers=2)
    counts(port, 9)
    b.stop()
    seen = counts(port, 60)
    assert "" not in seen and "b" not in seen, seen
    st = lb.status()[0]
    assert st["failed"] == 0 and st["redispatched"] >= 1
    assert lb.backend("b")["state"] == "down"  # a failed connect counts at once
    assert lb.backend("b")["connect_errors"] >= 1


def test_established_connections_closed_on_maint_kept_on_drain(backends, balancer):
    a = backends("a")[0]
    port = free_port()
    lb = balancer(plan_for(port, [a]))
    s1 = socket.create_connection(("127.0.0.1", port))
    s1.sendall(b"x\n")
    assert s1.recv(16) == b"a\n"
    lb.set("web/a", "drain")
    s1.sendall(b"y\n")
    assert s1.recv(16) == b"a\n"  # drain keeps it
    lb.set("web/a", "maint")
    s1.settimeout(2)
    try:
        data = s1.recv(16)
    except ConnectionResetError:
        data = b""
    assert data == b""  # closed at once, not at the idle timeout
    s1.close()


def test_slow_start_ramps_a_recovered_backend(backends, balancer):
    a, b = backends("a", "b")
    port = free_port()
    health = "{ tcp: {}, interval: 100ms, fastinter: 50ms, rise: 1, fall: 1 }"
    lb = balancer(plan_for(port, [a, b], health=health, extra="    slow_start: 3s\n"),
                  workers=1)
    a.stop()
    assert wait_for(lambda: lb.state("a") == "down", 5)
    a.start()
    assert wait_for(lambda: lb.state("a") == "up", 5)
    early = counts(port, 60)
    assert early.get("a", 0) < 20, early  # well under half at first
    w = lb.backend("a")["effective_weight"]
    assert 0 < w < 1
    assert wait_for(lambda: lb.backend("a")["effective_weight"] == 1, 6 * SLOW)
    late = counts(port, 40)
    assert late == {"a": 20, "b": 20}, late


def test_agent_reports_scale_weights(backends, balancer):
    a, b = backends("a", "b")
    agent_port = free_port()
    # Both backends are on 127.0.0.1, so one agent answers for both: its
    # word changes both weights alike; a fake agent proves the scaling.
    replies = {"line": b"up 50%\n"}
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", agent_port))
    ls.listen(64)
    stop = []

    def serve():
        ls.settimeout(0.1)
        while not stop:
            try:
                c, _ = ls.accept()
            except socket.timeout:
                continue
            c.sendall(replies["line"])
            c.close()
    import threading
    t = threading.Thread(target=serve, daemon=True)
    t.start()
    port = free_port()
    try:
        health = "{ tcp: {}, interval: 100ms }"
        lb = balancer(plan_for(port, [a, b], health=health, weights=[10, 10],
                               extra=f"    agent_port: {agent_port}\n"))
        assert wait_for(lambda: lb.backend("a")["effective_weight"] == 5, 5)
        assert lb.backend("a")["agent"]["percent"] == 50
        replies["line"] = b"drain\n"
        assert wait_for(lambda: lb.state("a") == "drain" and lb.state("b") == "drain", 5)
        r = socket.create_connection(("127.0.0.1", port))
        r.settimeout(2)
        try:
            r.sendall(b"x\n")
            assert r.recv(16) == b""  # nobody to serve
        except (ConnectionResetError, BrokenPipeError):
            pass
        r.close()
        replies["line"] = b"up 100% maxconn:7\n"
        assert wait_for(lambda: lb.state("a") == "up" and
                        lb.backend("a")["effective_weight"] == 10, 5)
        assert lb.backend("a")["max_conns"] == 7
    finally:
        stop.append(1)
        t.join()
        ls.close()


def test_bcdr_lb_report_answers_agent_checks(tmp_path):
    port = free_port()
    p = subprocess.Popen([BCDR, "lb", "report", "-p", str(port), "-a", "127.0.0.1"],
                         stderr=subprocess.PIPE)
    try:
        def line():
            try:
                with socket.create_connection(("127.0.0.1", port), 1) as s:
                    return s.recv(64).decode()
            except OSError:
                return ""
        got = wait_for(line, 10)
        assert got.startswith("up ") and got.endswith("%\n"), got
        pct = int(got.split()[1].rstrip("%"))
        assert 1 <= pct <= 100
    finally:
        p.terminate()
        assert p.wait(10) == 0


def test_sighup_reloads_backends_keeping_connections(backends, balancer):
    a, b, c = backends("a", "b", "c")
    port = free_port()
    lb = balancer(plan_for(port, [a, b]), workers=1)
    held = socket.create_connection(("127.0.0.1", port))
    held.sendall(b"x\n")
    first = held.recv(16)
    assert first in (b"a\n", b"b\n")
    lb.plan.write_text(plan_for(port, [a, c]))
    lb.proc.send_signal(signal.SIGHUP)
    assert wait_for(lambda: "reloaded the backends" in lb.logtext(), 5)
    assert set(counts(port, 20)) == {"a", "c"}
    held.sendall(b"y\n")
    assert held.recv(16) == first  # the established connection lives on
    held.close()
    names = [x["name"] for x in lb.status()[0]["backends"]]
    assert "c" in names
    lb.plan.write_text("balancers: [ nonsense")
    lb.proc.send_signal(signal.SIGHUP)
    assert wait_for(lambda: "reload refused" in lb.logtext(), 5)
    assert set(counts(port, 10)) == {"a", "c"}


def test_lb_commands_without_a_balancer(bcdr, tmp_path, write_plan):
    r = bcdr("lb", "status", "-S", str(tmp_path / "none.sock"))
    assert r.code == 1 and "no balancer answers" in r.err
    r = bcdr("lb", "-c", write_plan("targets: { rto: 1h }\n"))
    assert r.code == 1 and "no balancers: section" in r.err
    r = bcdr("lb", "--help")
    assert r.code == 0 and "lb set BALANCER/BACKEND" in r.out
    port = free_port()
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", port))
        busy.listen(1)
        r = bcdr("lb", "-c", write_plan(f"balancers:\n  - name: w\n    listen: 127.0.0.1:{port}\n"
                                        "    backends: [ { name: a, address: 127.0.0.1:1 } ]\n"),
                 "-S", str(tmp_path / "x.sock"), "-w", "0")
        assert r.code == 1 and f"cannot listen on '127.0.0.1:{port}'" in r.err
