"""bcdr lb's data path, byte for byte: small exchanges (copied through a
buffer) and bulk transfers (spliced) on one connection, a slow reader that
makes the balancer hold data, half-close, and a redispatch that carries the
client's first bytes to the next backend. An echo server on 127.0.0.1 is the
backend; every byte sent must come back, in order."""
import hashlib
import os
import socket
import threading
import time

import pytest

from lbkit import Balancer, free_port, recv_until_eof, wait_for


class Echo:
    """Echoes what it reads; on EOF echoes the rest and closes."""

    def __init__(self):
        self.lsock = socket.socket()
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(128)
        self.port = self.lsock.getsockname()[1]
        self.accepted = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                s, _ = self.lsock.accept()
            except OSError:
                return
            self.accepted += 1
            threading.Thread(target=self._serve, args=(s,), daemon=True).start()

    @staticmethod
    def _serve(s):
        with s:
            while True:
                data = s.recv(1 << 16)
                if not data:
                    break
                s.sendall(data)

    def close(self):
        self.lsock.close()


@pytest.fixture
def echo():
    e = Echo()
    yield e
    e.close()


@pytest.fixture
def balancer(tmp_path):
    made = []

    def make(plan, sub="lb", **kw):
        (tmp_path / sub).mkdir()
        lb = Balancer(tmp_path / sub, plan, **kw)
        made.append(lb)
        return lb
    yield make
    for lb in made:
        assert lb.alive(), lb.logtext()
        assert lb.stop() == 0, lb.logtext()


def plan(port, addresses, extra=""):
    lines = "\n".join(f"      - {{ name: b{i}, address: {a} }}" for i, a in enumerate(addresses))
    return f"""balancers:
  - name: web
    listen: [127.0.0.1:{port}]
    health: {{ tcp: {{}}, interval: 30s }}
{extra}    backends:
{lines}
"""


def recv_exact(s, n):
    data = bytearray()
    while len(data) < n:
        chunk = s.recv(min(1 << 16, n - len(data)))
        assert chunk, f"closed after {len(data)} of {n} bytes"
        data += chunk
    return bytes(data)


def test_small_and_bulk_exchanges_on_one_connection(echo, balancer):
    port = free_port()
    lb = balancer(plan(port, [f"127.0.0.1:{echo.port}"]), workers=1)
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.settimeout(10)
        # Sizes around the copy buffer (4 KiB) and well past it, so each
        # direction switches between copying and splicing, back and forth.
        for size in (1, 100, 4095, 4096, 4097, 1 << 20, 3, 65536 + 17, 10):
            payload = os.urandom(size)
            s.sendall(payload)
            assert recv_exact(s, size) == payload, size
    st = lb.status()[0]
    assert st["backends"][0]["bytes_in"] == st["backends"][0]["bytes_out"]
    assert st["backends"][0]["bytes_in"] == sum((1, 100, 4095, 4096, 4097, 1 << 20, 3,
                                                 65536 + 17, 10))


def test_slow_reader_gets_every_byte(echo, balancer):
    """The client sends 8 MiB and starts reading late and slowly: the
    balancer must hold what the client cannot take and lose nothing."""
    port = free_port()
    balancer(plan(port, [f"127.0.0.1:{echo.port}"]), workers=1)
    payload = os.urandom(8 << 20)
    got = hashlib.sha256()
    n = [0]
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.settimeout(20)

        def reader():
            time.sleep(0.5)
            while n[0] < len(payload):
                chunk = s.recv(1000 if n[0] < (1 << 20) else 1 << 16)
                if not chunk:
                    break
                got.update(chunk)
                n[0] += len(chunk)
        t = threading.Thread(target=reader)
        t.start()
        s.sendall(payload)
        s.shutdown(socket.SHUT_WR)
        t.join(30)
        assert n[0] == len(payload)
        assert got.digest() == hashlib.sha256(payload).digest()
        assert s.recv(16) == b""  # the echo's EOF came through


def test_half_close_passes_eof_both_ways(echo, balancer):
    port = free_port()
    lb = balancer(plan(port, [f"127.0.0.1:{echo.port}"]), workers=1)
    for size in (0, 10, 5000):
        with socket.create_connection(("127.0.0.1", port)) as s:
            s.settimeout(10)
            payload = os.urandom(size)
            s.sendall(payload)
            s.shutdown(socket.SHUT_WR)  # before the backend may even be connected
            data = recv_until_eof(s)
            assert data == payload, size
    assert wait_for(lambda: lb.status()[0]["connections"] == 0, 10)


def test_redispatch_carries_the_first_bytes(echo, balancer):
    """The client's first bytes are read while the connect to a dead backend
    is still in flight; when it fails, the same bytes go to the next one."""
    for size in (5, 4096, 20000):
        dead = [free_port(), free_port()]  # nothing listens there
        port = free_port()
        lb = balancer(plan(port, [f"127.0.0.1:{d}" for d in dead] + [f"127.0.0.1:{echo.port}"],
                           extra="    algorithm: first\n    retries: 3\n"),
                      workers=1, sub=f"r{size}")
        payload = os.urandom(size)
        with socket.create_connection(("127.0.0.1", port)) as s:
            s.settimeout(10)
            s.sendall(payload)
            assert recv_exact(s, size) == payload, size
        st = lb.status()[0]
        assert st["failed"] == 0 and st["redispatched"] == 2, st
        assert [b["connect_errors"] for b in st["backends"]] == [1, 1, 0]
        assert st["backends"][2]["total"] == 1


def test_bulk_transfer_leaves_room_for_others(echo, balancer):
    """A client pushing 32 MiB as fast as it can, through one worker, while
    another does small round trips: both get through, every byte intact,
    and the small ones are not starved."""
    port = free_port()
    balancer(plan(port, [f"127.0.0.1:{echo.port}"]), workers=1)
    payload = os.urandom(32 << 20)
    result = {}

    def bulk():
        with socket.create_connection(("127.0.0.1", port)) as s:
            s.settimeout(30)
            got = hashlib.sha256()
            n = 0

            def reader():
                nonlocal n
                while n < len(payload):
                    chunk = s.recv(1 << 18)
                    if not chunk:
                        break
                    got.update(chunk)
                    n += len(chunk)
            t = threading.Thread(target=reader)
            t.start()
            s.sendall(payload)
            t.join(60)
            result["ok"] = n == len(payload) and got.digest() == hashlib.sha256(payload).digest()
    t = threading.Thread(target=bulk)
    t.start()
    worst = 0.0
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.settimeout(10)
        while t.is_alive():
            t0 = time.monotonic()
            s.sendall(b"ping\n")
            assert recv_exact(s, 5) == b"ping\n"
            worst = max(worst, time.monotonic() - t0)
    t.join()
    assert result.get("ok"), result
    assert worst < 2.0, worst
