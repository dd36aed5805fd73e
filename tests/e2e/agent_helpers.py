"""Starting a real `bcdr agent` for the end-to-end tests (shared with the
other engines' agent tests): a free port, a plan, a wait for /healthz."""
import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

from conftest import BCDR, SANITIZED


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Agent:
    """A running agent: its plan, state_dir, URL, token, and the process."""

    def __init__(self, tmp_path, body="", port=None, state_dir=None, interval="1s", name="plan.yaml"):
        self.port = port or free_port()
        self.state_dir = Path(state_dir or tmp_path / "state")
        self.plan = tmp_path / name
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = tmp_path / f"agent-{self.port}.log"
        self.proc = None
        self.head = (f"agent: {{ listen: 127.0.0.1:{self.port}, state_dir: {self.state_dir}, "
                     f"interval: {interval} }}\n")
        self.write_plan(body)

    def write_plan(self, body, raw=False):
        self.plan.write_text(body if raw else self.head + body)

    def start(self, wait=True):
        self.logf = open(self.log, "ab")
        self.proc = subprocess.Popen([BCDR, "agent", "-c", str(self.plan)], stdout=self.logf,
                                     stderr=subprocess.STDOUT)
        if wait:
            self.wait_up()
        return self

    def wait_up(self, timeout=20 if SANITIZED else 10):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"agent exited {self.proc.returncode}: {self.log.read_text()}")
            try:
                self.get("/healthz")
                return
            except OSError:
                time.sleep(0.05)
        raise AssertionError(f"agent did not come up: {self.log.read_text()}")

    @property
    def token(self):
        return (self.state_dir / "token").read_text().strip()

    def request(self, method, path, body=None, token=None, raw=None, headers=None):
        """Returns (status, parsed JSON or text)."""
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        req = urllib.request.Request(self.url + path, data=data, method=method)
        if token:
            req.add_header("Authorization", f"Bearer {token}")
        for k, v in (headers or {}).items():
            req.add_header(k, v)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                status, text = r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            status, text = e.code, e.read().decode()
        try:
            return status, json.loads(text)
        except ValueError:
            return status, text

    def get(self, path, token=None):
        return self.request("GET", path, token=token)

    def api(self, path):
        status, body = self.get("/api/v1" + path)
        assert status == 200, (path, status, body)
        return body

    def events(self, **query):
        q = "&".join(f"{k}={v}" for k, v in query.items())
        return self.api("/events" + (f"?{q}" if q else ""))

    def wait_for(self, predicate, timeout=20 if SANITIZED else 10, what="condition"):
        deadline = time.time() + timeout
        last = None
        while time.time() < deadline:
            last = predicate()
            if last:
                return last
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {what}; last: {last!r}\nlog:\n"
                             f"{self.log.read_text()[-3000:]}")

    def signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc:
            self.logf.close()
            self.assert_clean_log()
        return self.proc.returncode if self.proc else None

    def assert_clean_log(self):
        """Under ASan/UBSan, the agent's log must hold no report."""
        text = self.log.read_text(errors="replace")
        for bad in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"):
            assert bad not in text, text[-4000:]

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self.logf.close()


def stop_all(agents):
    """Stops every agent that runs (a frozen one gets SIGCONT first), even
    when one's log holds a sanitizer report: the first such report is
    raised once all have stopped."""
    errors = []
    for a in agents:
        if a.proc and a.proc.poll() is None:
            a.proc.send_signal(signal.SIGCONT)
            try:
                a.stop()
            except AssertionError as e:
                errors.append(e)
    if errors:
        raise errors[0]
