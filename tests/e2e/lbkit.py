"""Real servers and a running `bcdr lb` for the balancer's end-to-end tests.

Backends are small TCP servers in this process (one selector thread each):
"name" answers every line with its name (and "bye NAME" after the client's
EOF, so half-close is visible), "blackhole" accepts and never answers,
"reset" accepts and resets. nginx from Debian is started with a config
written here."""
import heapq
import json
import os
import resource
import selectors
import shutil
import socket
import struct
import subprocess
import threading
import time
from pathlib import Path

from conftest import BCDR, SANITIZED


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Backend:
    def __init__(self, name, mode="name", port=None, delay=0.0):
        self.name = name
        self.mode = mode
        self.delay = delay
        self.port = port or free_port()
        self.accepted = 0
        self.conns = set()
        self._stop = False
        self._thread = None
        self.start()

    def start(self):
        self._stop = False
        self.lsock = socket.socket()
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind(("127.0.0.1", self.port))
        self.lsock.listen(4096)
        self.lsock.setblocking(False)
        self.sel = selectors.DefaultSelector()
        self.sel.register(self.lsock, selectors.EVENT_READ, None)
        self.timers = []
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def stop(self):
        """Closes the listener and every connection (a dead backend)."""
        self._stop = True
        self._thread.join(5)
        for s in list(self.conns):
            try:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                s.close()
            except OSError:
                pass
        self.conns.clear()
        self.lsock.close()
        self.sel.close()

    def _drop(self, s):
        try:
            self.sel.unregister(s)
        except (KeyError, ValueError):
            pass
        self.conns.discard(s)
        s.close()

    def _loop(self):
        while not self._stop:
            timeout = 0.05
            if self.timers:
                timeout = max(0, min(timeout, self.timers[0][0] - time.monotonic()))
            for key, _ in self.sel.select(timeout):
                if key.data is None:
                    self._accept()
                else:
                    self._read(key.fileobj)
            now = time.monotonic()
            while self.timers and self.timers[0][0] <= now:
                _, _, s, data = heapq.heappop(self.timers)
                if s in self.conns:
                    try:
                        s.sendall(data)
                    except OSError:
                        self._drop(s)

    def _accept(self):
        while True:
            try:
                s, _ = self.lsock.accept()
            except (BlockingIOError, OSError):
                return
            self.accepted += 1
            if self.mode == "reset":
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                s.close()
                continue
            s.setblocking(False)
            self.conns.add(s)
            if self.mode == "name":
                self.sel.register(s, selectors.EVENT_READ, b"")

    def _read(self, s):
        try:
            data = s.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            self._drop(s)
            return
        key = self.sel.get_key(s)
        if not data:
            try:
                s.sendall(f"bye {self.name}\n".encode())
            except OSError:
                pass
            self._drop(s)
            return
        buf = key.data + data
        lines = buf.count(b"\n")
        rest = buf[buf.rfind(b"\n") + 1:] if lines else buf
        self.sel.modify(s, selectors.EVENT_READ, rest)
        if lines:
            reply = f"{self.name}\n".encode() * lines
            if self.delay:
                heapq.heappush(self.timers, (time.monotonic() + self.delay, id(s), s, reply))
            else:
                try:
                    s.sendall(reply)
                except OSError:
                    self._drop(s)


def ask(port, src=None, timeout=5.0, payload=b"hi\n"):
    """One connection: sends a line, returns the first line of the reply
    (or '' when the connection was closed or reset)."""
    with socket.socket() as s:
        s.settimeout(timeout)
        if src:
            s.bind((src, 0))
        data = b""
        try:
            # A reset can beat the end of connect() when the balancer
            # passes on a backend's reset at once.
            s.connect(("127.0.0.1", port))
            s.sendall(payload)
            while b"\n" not in data:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
        except (ConnectionResetError, BrokenPipeError, socket.timeout):
            return ""
        return data.split(b"\n")[0].decode()


def counts(port, n, **kw):
    seen = {}
    for _ in range(n):
        r = ask(port, **kw)
        seen[r] = seen.get(r, 0) + 1
    return seen


def recv_until_eof(s):
    """Everything the peer sends until it closes its side."""
    data = b""
    while chunk := s.recv(65536):
        data += chunk
    return data


def wait_for(pred, timeout=10.0, step=0.02):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(step)
    return pred()


class Balancer:
    """`bcdr lb` running a plan, with its control socket."""

    def __init__(self, tmp_path, plan, workers=2, env=None, nofile=None):
        self.dir = tmp_path
        self.plan = tmp_path / "lb.yaml"
        self.plan.write_text(plan)
        self.sock = str(tmp_path / "lb.sock")
        self.log = open(tmp_path / "lb.log", "w+")
        self.stopped = False
        full_env = dict(os.environ)
        full_env.update(env or {})

        def limit():
            # Soft and hard: lb_start raises the soft limit to the hard one.
            if nofile:
                resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))
        self.proc = subprocess.Popen(
            [BCDR, "lb", "-c", str(self.plan), "-S", self.sock, "-w", str(workers)],
            stdout=self.log, stderr=subprocess.STDOUT, env=full_env, preexec_fn=limit)
        ok = wait_for(lambda: self.proc.poll() is not None or os.path.exists(self.sock), 20)
        assert ok and self.proc.poll() is None, self.logtext()

    @property
    def pid(self):
        return self.proc.pid

    def logtext(self):
        self.log.flush()
        return Path(self.log.name).read_text()

    def run(self, *args):
        p = subprocess.run([BCDR, "lb", *args, "-S", self.sock], capture_output=True, text=True,
                           timeout=30)
        return p

    def control(self, line):
        """One request on the control socket, as `bcdr lb` sends it."""
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(10)
            s.connect(self.sock)
            s.sendall(line.encode() + b"\n")
            data = recv_until_eof(s)
        return json.loads(data)

    def status(self):
        reply = self.control("status")
        assert reply["ok"], reply
        return reply["balancers"]

    def status_cli(self):
        p = self.run("status", "--json")
        assert p.returncode == 0, p.stderr
        return json.loads(p.stdout)

    def backend(self, name, balancer=0):
        for b in self.status()[balancer]["backends"]:
            if b["name"] == name:
                return b
        raise KeyError(name)

    def state(self, name, balancer=0):
        return self.backend(name, balancer)["state"]

    def set(self, *args):
        reply = self.control("set " + " ".join(args))
        assert reply["ok"], reply
        return reply

    def set_cli(self, *args):
        p = self.run("set", *args)
        assert p.returncode == 0, p.stderr
        return p

    def fds(self):
        return len(os.listdir(f"/proc/{self.pid}/fd"))

    def rss_kib(self):
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return 0

    def alive(self):
        return self.proc.poll() is None

    def stop(self):
        self.stopped = True
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        return self.proc.returncode


class Nginx:
    """nginx from Debian on 127.0.0.1:port answering 'nginx-<port>'."""

    def __init__(self, tmp_path, port=None, body=None):
        self.port = port or free_port()
        self.dir = tmp_path / f"nginx-{self.port}"
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "logs").mkdir(exist_ok=True)
        body = body or f"nginx-{self.port}"
        conf = self.dir / "nginx.conf"
        conf.write_text(f"""
daemon off;
master_process off;
worker_processes 1;
user root;
pid {self.dir}/nginx.pid;
error_log {self.dir}/logs/error.log;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_body_temp_path {self.dir};
  proxy_temp_path {self.dir};
  fastcgi_temp_path {self.dir};
  uwsgi_temp_path {self.dir};
  scgi_temp_path {self.dir};
  server {{
    listen 127.0.0.1:{self.port} reuseport;
    keepalive_requests 1000000;
    location / {{ return 200 "{body}\\n"; }}
    location /health {{ return 200 "ok\\n"; }}
  }}
}}
""")
        self.conf = conf
        self.start()

    def start(self):
        self.proc = subprocess.Popen([shutil.which("nginx") or "/usr/sbin/nginx", "-c",
                                      str(self.conf), "-p", str(self.dir)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        def up():
            try:
                with socket.create_connection(("127.0.0.1", self.port), 0.2):
                    return True
            except OSError:
                return False
        assert wait_for(up, 10), (self.dir / "logs" / "error.log").read_text()

    def kill(self):
        self.proc.kill()
        self.proc.wait()


def http_get(port, path="/", timeout=5.0):
    with socket.create_connection(("127.0.0.1", port), timeout) as s:
        s.sendall(f"GET {path} HTTP/1.0\r\nHost: x\r\n\r\n".encode())
        data = b""
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body.decode()


SLOW = 3 if SANITIZED else 1
