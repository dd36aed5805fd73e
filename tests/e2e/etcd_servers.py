"""A real three-member etcd cluster on 127.0.0.1 for the cluster engine's
tests (Debian's etcd-server 3.4): free ports, a data directory each under
the test's temporary directory, a wait until every member is healthy, and
one member killed, stopped (SIGSTOP), continued or restarted at will.
With a netns.Lab, each member runs on a host of its own (lab hosts e1..e3,
their addresses, ports 2379 and 2380) instead."""
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

ETCD = shutil.which("etcd") or "/usr/bin/etcd"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_tls(d):
    """A CA, a server certificate for 127.0.0.1 and a client certificate
    signed by it, in d: {ca, cert, key, client_cert, client_key}. The client's
    has no CN: with authentication on, etcd's gateway refuses a client
    certificate with a CN ("CommonName of client sending a request against
    gateway will be ignored")."""
    d = Path(d)
    d.mkdir(parents=True, exist_ok=True)

    def run(*args):
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=d)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "10", "-subj", "/CN=bcdr test CA",
        "-keyout", "ca.key", "-out", "ca.crt")
    (d / "san.cnf").write_text("subjectAltName=IP:127.0.0.1\n")
    for name, subj in (("server", "/CN=127.0.0.1"), ("client", "/O=bcdr test client")):
        run("req", "-newkey", "rsa:2048", "-nodes", "-subj", subj, "-keyout",
            f"{name}.key", "-out", f"{name}.csr")
        run("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
            "-CAcreateserial", "-days", "10", "-extfile", "san.cnf", "-out", f"{name}.crt")
    return {"ca": d / "ca.crt", "cert": d / "server.crt", "key": d / "server.key",
            "client_cert": d / "client.crt", "client_key": d / "client.key"}


def post(url, path, body, tls=None, token=None, timeout=5):
    """One JSON gateway call (for tests that set etcd up)."""
    ctx = None
    if tls:
        ctx = ssl.create_default_context(cafile=str(tls["ca"]))
        ctx.load_cert_chain(str(tls["client_cert"]), str(tls["client_key"]))
    req = urllib.request.Request(url + path, data=json.dumps(body).encode(), method="POST")
    if token:
        req.add_header("Authorization", token)
    with urllib.request.urlopen(req, timeout=timeout, context=ctx) as r:
        return json.loads(r.read())


class Member:
    def __init__(self, root, name, tls=None, lab=None):
        self.name = name
        self.tls = tls
        self.lab = lab
        self.dir = Path(root) / name
        if lab:
            ip, self.client_port, self.peer_port = lab.ip(name), 2379, 2380
        else:
            ip, self.client_port, self.peer_port = "127.0.0.1", free_port(), free_port()
        self.client_url = f"{'https' if tls else 'http'}://{ip}:{self.client_port}"
        self.peer_url = f"http://{ip}:{self.peer_port}"
        self.proc = None
        self.logf = None

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def healthy(self, timeout=1.0):
        if self.lab:
            return self.lab.call(self.name, self._healthy, timeout)
        return self._healthy(timeout)

    def _healthy(self, timeout):
        ctx = None
        if self.tls:
            ctx = ssl.create_default_context(cafile=str(self.tls["ca"]))
            ctx.load_cert_chain(str(self.tls["client_cert"]), str(self.tls["client_key"]))
        try:
            with urllib.request.urlopen(self.client_url + "/health", timeout=timeout,
                                        context=ctx) as r:
                return json.loads(r.read()).get("health") == "true"
        except (OSError, ValueError):
            return False


class EtcdCluster:
    """Three members m1..m3; .endpoints are their client URLs. With tls
    (make_tls()), clients speak https and must show a certificate of the CA."""

    def __init__(self, root, size=3, tls=None, lab=None):
        self.root = Path(root)
        self.tls = tls
        self.lab = lab
        names = [f"e{i + 1}" if lab else f"m{i + 1}" for i in range(size)]
        self.members = [Member(self.root, n, tls, lab) for n in names]
        self.token = f"bcdr-test-{os.getpid()}-{self.members[0].client_port}"

    @property
    def endpoints(self):
        return [m.client_url for m in self.members]

    def _initial_cluster(self):
        return ",".join(f"{m.name}={m.peer_url}" for m in self.members)

    def _spawn(self, m):
        m.dir.mkdir(parents=True, exist_ok=True)
        m.logf = open(m.dir / "etcd.log", "ab")
        # A fast heartbeat keeps elections short after a member is lost; the
        # data is fsynced as in production (tmpfs or not is the machine's).
        m.proc = subprocess.Popen((["ip", "netns", "exec", self.lab.ns(m.name)] if self.lab else []) + [
            ETCD, "--name", m.name, "--data-dir", str(m.dir / "data"),
            "--listen-client-urls", m.client_url, "--advertise-client-urls", m.client_url,
            "--listen-peer-urls", m.peer_url, "--initial-advertise-peer-urls", m.peer_url,
            "--initial-cluster", self._initial_cluster(),
            "--initial-cluster-token", self.token, "--initial-cluster-state", "new",
            "--heartbeat-interval", "50", "--election-timeout", "500",
            "--logger", "zap", "--log-level", "warn",
        ] + ([
            "--cert-file", str(self.tls["cert"]), "--key-file", str(self.tls["key"]),
            "--client-cert-auth", "--trusted-ca-file", str(self.tls["ca"]),
        ] if self.tls else []), stdout=m.logf, stderr=subprocess.STDOUT, start_new_session=True)

    def start(self, timeout=30):
        for m in self.members:
            self._spawn(m)
        self.wait_healthy(timeout)
        return self

    def wait_healthy(self, timeout=30, members=None):
        """Waits until every running member (or those given) says healthy,
        which in etcd means it sees a leader and a quorum."""
        deadline = time.time() + timeout
        want = members or [m for m in self.members if m.alive()]
        while time.time() < deadline:
            for m in want:
                if not m.alive():
                    raise AssertionError(f"etcd {m.name} exited: {self.log(m)}")
            if all(m.healthy() for m in want):
                return
            time.sleep(0.1)
        raise AssertionError("etcd not healthy: " + " | ".join(self.log(m) for m in want))

    def log(self, m):
        try:
            return (m.dir / "etcd.log").read_text(errors="replace")[-2000:]
        except OSError:
            return ""

    def member(self, name):
        return next(m for m in self.members if m.name == name)

    def leader(self):
        """The member that is the Raft leader now, or None."""
        for m in self.members:
            if not m.alive():
                continue
            st = self.lab.call(m.name, self._status, m) if self.lab else self._status(m)
            if st and st.get("leader") and st["leader"] == st.get("header", {}).get("member_id"):
                return m
        return None

    @staticmethod
    def _status(m):
        try:
            req = urllib.request.Request(m.client_url + "/v3/maintenance/status",
                                         data=b"{}", method="POST")
            with urllib.request.urlopen(req, timeout=1) as r:
                return json.loads(r.read())
        except (OSError, ValueError):
            return None

    def kill(self, m):
        """kill -9 one member."""
        if m.alive():
            m.proc.send_signal(signal.SIGKILL)
            m.proc.wait()
        if m.logf:
            m.logf.close()
            m.logf = None

    def stop(self, m):
        """SIGSTOP: the member hangs without closing its sockets."""
        m.proc.send_signal(signal.SIGSTOP)

    def cont(self, m):
        m.proc.send_signal(signal.SIGCONT)

    def restart(self, m, timeout=30):
        """Starts a killed member again on its data directory (it rejoins)."""
        self.kill(m)
        self._spawn(m)
        self.wait_healthy(timeout, members=[m])

    def close(self):
        for m in self.members:
            if m.alive():
                m.proc.send_signal(signal.SIGCONT)
            self.kill(m)


@pytest.fixture(scope="module")
def etcd(tmp_path_factory):
    """A three-member etcd shared by one test module (import it there)."""
    c = EtcdCluster(tmp_path_factory.mktemp("etcd")).start()
    yield c
    c.close()
