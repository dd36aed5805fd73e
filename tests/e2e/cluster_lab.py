"""A bcdr cluster across network namespaces (netns.Lab), shared by
test_cluster_netns.py, scripts/soak-cluster and bench/cluster: three etcd
members on hosts e1..e3, agents on h1..hN, each leading-or-standby for one
service `web` with a VIP on its eth0, whose promote starts a tiny TCP
server on the VIP that answers the host's name (and whose demote stops it),
and a client host that connects to the VIP. Every promote and demote is
written to one fencing file (fence.py)."""
import socket
import subprocess
import threading
import time
from pathlib import Path

import etcd_servers
from agent_helpers import Agent, stop_all
from conftest import BCDR
from fence import Fence, fence_script
from netns import Lab

VIP = f"{Lab.SUBNET}.50"
PORT = 7000


class Host(Agent):
    """A bcdr agent on a lab host; its HTTP API is reached from inside."""

    def __init__(self, lab, root, name, etcd, fence, ttl, interval="250ms"):
        d = Path(root) / name
        d.mkdir(parents=True, exist_ok=True)
        self.lab, self.name = lab, name
        self.healthy = d / "healthy"
        self.healthy.write_text("ok")
        pid = d / "server.pid"
        # the service: a TCP server on the VIP saying who answers
        server = (f"setsid socat TCP-LISTEN:{PORT},bind={VIP},reuseaddr,fork "
                  f"SYSTEM:'echo {name}' </dev/null >/dev/null 2>&1 &\necho $! > {pid}")
        stop = f"[ -f {pid} ] && kill $(cat {pid}) 2>/dev/null; rm -f {pid}"
        script = fence_script(d / "fence.sh", fence, on_start=server, on_stop=stop)
        eps = ", ".join(etcd.endpoints)
        body = (f"checks:\n  - name: up\n    file: {{ path: {self.healthy} }}\n"
                f"cluster: {{ name: lab, member: {name}, etcd: [{eps}], ttl: {ttl}s }}\n"
                f"services:\n  - name: web\n    healthy: [up]\n"
                f"    promote: [{script}, start]\n    demote: [{script}, stop]\n"
                f"    vip: {{ address: {VIP}/24, interface: eth0 }}\n")
        super().__init__(d, body, port=8470, interval=interval)

    def start(self, wait=True):
        self.logf = open(self.log, "ab")
        self.proc = self.lab.popen(self.name, [BCDR, "agent", "-c", self.plan],
                                   stdout=self.logf, stderr=subprocess.STDOUT)
        if wait:
            self.wait_up()
        return self

    def request(self, *args, **kw):
        return self.lab.call(self.name, super().request, *args, **kw)

    def has_vip(self):
        return f"{VIP}/24" in self.lab.addresses(self.name)


class Probe:
    """The client: connects to VIP:PORT every 20 ms (100 ms timeout) and
    keeps when the answer changed: [(time, host name or None)]."""

    def __init__(self, lab, host="client"):
        self.changes = []
        self.stopping = False
        self.lock = threading.Lock()
        self.thread = lab.thread(host, self._run)

    def _once(self):
        try:
            with socket.create_connection((VIP, PORT), timeout=0.1) as s:
                s.settimeout(0.3)
                return s.recv(64).decode().strip() or None
        except OSError:
            return None

    def _run(self):
        last = object()
        while not self.stopping:
            got = self._once()
            if got != last:
                with self.lock:
                    self.changes.append((time.time(), got))
                last = got
            time.sleep(0.02)

    def current(self):
        with self.lock:
            return self.changes[-1][1] if self.changes else None

    def wait_answer(self, name=None, since=0.0, timeout=10.0, other_than=None):
        """The first time at or after since when the VIP answered name (any
        host but other_than when name is None); AssertionError after timeout."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            with self.lock:
                for t, who in self.changes:
                    if t >= since and who and (who == name if name else who != other_than):
                        return t, who
                # the answer that held at `since` counts from `since`
                before = [c for c in self.changes if c[0] < since]
                if before and before[-1][1] and (before[-1][1] == name if name
                                                 else before[-1][1] != other_than):
                    return since, before[-1][1]
            time.sleep(0.02)
        raise AssertionError(f"the VIP did not answer {name or 'another host'}: {self.changes[-10:]}")

    def close(self):
        self.stopping = True
        self.thread.join(timeout=2)


class ClusterLab:
    """The lab: etcd on e1..e3, agents on h1..h<agents>, a client; close()
    removes all of it."""

    def __init__(self, root, agents=3, ttl=3, start_agents=True):
        self.root = Path(root)
        self.ttl = ttl
        self.lab = Lab()
        self.etcd = None
        self.probe = None
        self.hosts = {}
        try:
            for i in range(3):
                self.lab.add_host(f"e{i + 1}", i + 1)
            for i in range(agents):
                self.lab.add_host(f"h{i + 1}", 11 + i)
            self.lab.add_host("client", 100)
            self.etcd = etcd_servers.EtcdCluster(self.root / "etcd", lab=self.lab).start()
            self.fence = Fence(self.root / "fence.log")
            for i in range(agents):
                name = f"h{i + 1}"
                self.hosts[name] = Host(self.lab, self.root, name, self.etcd, self.fence, ttl)
            if start_agents:
                for h in self.hosts.values():
                    h.start(wait=False)
                for h in self.hosts.values():
                    h.wait_up()
            self.probe = Probe(self.lab)
        except BaseException:
            self.close()
            raise

    def kill_host(self, name):
        """The host dies: its link is cut first (no last word leaves it),
        then its agent gets kill -9 and its server dies with it; the fencing
        file says its service ended."""
        h = self.hosts[name]
        open_ = [iv for iv in self.fence.intervals() if iv[1] is None and iv[2] == name]
        self.lab.cut(name)
        h.kill9()
        self.lab.kill_all(name)
        for iv in open_:
            self.fence.mark_dead(name, iv[3])

    def revive_host(self, name):
        """The host is back, its agent starts; the VIP its dead agent left
        on eth0 is the new agent's to remove."""
        self.lab.heal(name)
        self.hosts[name].start()

    def close(self):
        """Stops everything, removes every namespace; then raises the first
        sanitizer report an agent's log holds, if any."""
        if self.probe:
            self.probe.close()
        try:
            stop_all(self.hosts.values())
        finally:
            if self.etcd:
                self.etcd.close()
            self.lab.close()
