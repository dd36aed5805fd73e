"""Real servers for the remote repository tests, started by the tests on
127.0.0.1: `rclone serve restic` (restic's REST protocol) and a small HTTP
proxy that injects faults (503 throttling, connection resets, stalls, a
dead server, a WAN delay) between bcdr and a server."""
import http.client
import os
import shutil
import signal
import socket
import struct
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc=None, timeout=60):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port} after {timeout} s")


class Rclone:
    """`rclone serve restic` over a directory, on a free port."""

    def __init__(self, root, append_only=False, user=None, password=None, port=None,
                 cert=None, key=None):
        if not shutil.which("rclone"):
            pytest.skip("rclone is not installed (scripts/bootstrap test set)")
        self.root = str(root)
        self.append_only = append_only
        self.user, self.password = user, password
        self.cert, self.key = cert, key
        self.port = port or free_port()
        self.proc = None
        self.log = os.path.join(os.path.dirname(self.root), f"rclone-{self.port}.log")

    def start(self):
        os.makedirs(self.root, exist_ok=True)
        argv = ["rclone", "serve", "restic", "--addr", f"127.0.0.1:{self.port}",
                "--config", "/dev/null", self.root]
        if self.append_only:
            argv.append("--append-only")
        if self.user:
            argv += ["--user", self.user, "--pass", self.password]
        if self.cert:
            argv += ["--cert", self.cert, "--key", self.key]
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(argv, stdout=log, stderr=log)
        wait_port(self.port, self.proc)
        return self

    def url(self, path="repo"):
        scheme = "https" if self.cert else "http"
        return f"rest:{scheme}://127.0.0.1:{self.port}/{path}"

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
        self.proc = None

    def restart(self, append_only=None):
        self.kill()
        if append_only is not None:
            self.append_only = append_only
        return self.start()


@pytest.fixture
def rclone(tmp_path):
    server = Rclone(tmp_path / "rest-root").start()
    yield server
    server.kill()


class FaultProxy:
    """An HTTP/1.1 reverse proxy to 127.0.0.1:upstream. Faults hit the
    requests that match `match` (a substring of "METHOD PATH"):

    - mode "503":   every `every`-th such request gets 503 SlowDown (or the
                    first `count` of them), with Retry-After: `retry_after`
    - mode "reset": every `every`-th such request is answered with a TCP reset
    - mode "stall": the first `count` such requests get no answer at all
    - mode "dead":  every request is reset (a server that is gone)
    - mode "hold":  such requests wait until release() (held is set when
                    the first arrives), then go through
    - mode "cut":   the first `count` such requests whose reply is longer
                    than 1 MiB get their headers and half the body, then a
                    reset (a server that dies mid-stream); with then="dead"
                    the server is gone after the first
    - delay:        seconds added before forwarding each way (a WAN), to
                    the requests that match delay_match (all by default)

    ranges lists the Range header of every request ("" without one).
    max_inflight is the most requests matching `watch` (a substring of
    "METHOD PATH") that were in flight at once; hosts lists the Host
    header of every request, paths their "METHOD PATH".
    """

    def __init__(self, upstream_port):
        self.upstream = upstream_port
        self.mode = None
        self.every = 0
        self.count = 0
        self.match = ""
        self.delay = 0.0
        self.delay_match = ""
        self.retry_after = "0"
        self.lock = threading.Lock()
        self.seen = 0
        self.faults = 0
        self.requests = 0
        self.bytes_up = 0
        self.watch = "GET /"
        self.inflight = 0
        self.max_inflight = 0
        self.hosts = []
        self.paths = []
        self.ranges = []
        self.then = None
        self.stop_event = threading.Event()
        self.held = threading.Event()
        self.released = threading.Event()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def setup(self):
                super().setup()
                # A reply's headers and body go out in two writes: with
                # Nagle the body would wait for the client's delayed ACK,
                # 40 ms a request that no real link adds.
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def handle_one(self):
                proxy.handle(self)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = handle_one

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def set(self, mode=None, every=0, count=0, match="", delay=None, retry_after="0",
            delay_match="", then=None):
        with self.lock:
            self.mode, self.every, self.count, self.match = mode, every, count, match
            self.then = then
            self.retry_after = retry_after
            self.seen = 0
            if delay is not None:
                self.delay = delay
            self.delay_match = delay_match

    def release(self):
        self.released.set()

    def close(self):
        self.released.set()
        self.stop_event.set()
        self.server.shutdown()
        self.server.server_close()

    def take_cut(self):
        with self.lock:
            if self.mode != "cut" or self.count <= 0:
                return False
            self.count -= 1
            self.faults += 1
            if self.then:
                self.mode = self.then
            return True

    def cut(self, h, resp, data):
        h.send_response(resp.status)
        for k, v in resp.getheaders():
            if k.lower() not in ("connection", "keep-alive", "transfer-encoding", "date", "server"):
                h.send_header(k, v)
        h.end_headers()
        h.wfile.write(data[:len(data) // 2])
        h.wfile.flush()
        self.reset(h)

    @staticmethod
    def reset(h):
        h.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        h.close_connection = True
        h.connection.close()

    def handle(self, h):
        n = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(n) if n else b""
        what = f"{h.command} {h.path}"
        fault = None
        with self.lock:
            self.requests += 1
            self.bytes_up += len(body)
            self.hosts.append(h.headers.get("Host", ""))
            self.paths.append(what)
            self.ranges.append(h.headers.get("Range", ""))
            if self.mode == "dead":
                fault = "reset"
            elif self.mode and self.match in what:
                self.seen += 1
                if self.mode in ("503", "reset") and self.every and self.seen % self.every == 0:
                    fault = self.mode
                elif self.mode == "503" and self.count and self.seen <= self.count:
                    fault = "503"
                elif self.mode == "stall" and self.seen <= self.count:
                    fault = "stall"
                elif self.mode == "cut" and self.count > 0:
                    fault = "cut"
                elif self.mode == "hold" and not self.released.is_set():
                    self.held.set()
                    fault = "hold"
            if fault and fault != "cut":
                self.faults += 1
            delay = self.delay if self.delay_match in what else 0.0
            retry_after = self.retry_after
        watched = self.watch in what
        if watched:
            with self.lock:
                self.inflight += 1
                self.max_inflight = max(self.max_inflight, self.inflight)
        try:
            self.forward(h, n, body, fault, delay, retry_after)
        finally:
            if watched:
                with self.lock:
                    self.inflight -= 1

    def forward(self, h, n, body, fault, delay, retry_after):
        if fault == "reset":
            return self.reset(h)
        if fault == "stall":
            self.stop_event.wait(600)
            return self.reset(h)
        if fault == "hold":
            self.released.wait(120)
        if fault == "503":
            msg = b"<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>"
            h.send_response(503)
            h.send_header("Content-Length", str(len(msg)))
            h.send_header("Retry-After", retry_after)
            h.end_headers()
            h.wfile.write(msg)
            return
        if delay:
            time.sleep(delay)
        headers = {k: v for k, v in h.headers.items()
                   if k.lower() not in ("connection", "keep-alive", "transfer-encoding", "expect")}
        conn = http.client.HTTPConnection("127.0.0.1", self.upstream, timeout=300)
        try:
            conn.connect()
            conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn.request(h.command, h.path, body=body if n or h.command in ("POST", "PUT") else None,
                         headers=headers)
            resp = conn.getresponse()
            data = resp.read()
        except OSError:
            return self.reset(h)
        finally:
            conn.close()
        if delay:
            time.sleep(delay)
        if fault == "cut" and len(data) > 1 << 20 and self.take_cut():
            return self.cut(h, resp, data)
        h.send_response(resp.status)
        length = None
        for k, v in resp.getheaders():
            if k.lower() in ("connection", "keep-alive", "transfer-encoding", "date", "server"):
                continue
            if k.lower() == "content-length":
                length = v
                continue
            h.send_header(k, v)
        h.send_header("Content-Length", length if h.command == "HEAD" and length else str(len(data)))
        h.end_headers()
        if h.command != "HEAD":
            h.wfile.write(data)


@pytest.fixture
def fault_proxy():
    proxies = []

    def make(upstream_port):
        p = FaultProxy(upstream_port)
        proxies.append(p)
        return p

    yield make
    for p in proxies:
        p.close()


def self_signed(directory):
    """A certificate for 127.0.0.1 (and its key), valid for two days."""
    cert, key = os.path.join(directory, "cert.pem"), os.path.join(directory, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj",
                    "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-days", "2",
                    "-keyout", key, "-out", cert], check=True, capture_output=True)
    return cert, key
