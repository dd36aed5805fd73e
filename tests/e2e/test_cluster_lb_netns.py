"""A balancer as a cluster service with a VIP: two balancer hosts (l1, l2),
each an agent whose plan has a balancer listening on 0.0.0.0:7000 in front
of two backend servers on hosts of their own (b1, b2), and a service `lb`
with the VIP and no promote or demote commands: its leader holds the VIP,
so clients reach that host's balancer. Its health is the balancer's own
status (a usable backend), read from its agent's API. A client host connects to VIP:7000 every 20 ms; each
backend answers its name and the address the connection came from (the
balancer host's), so the test sees which balancer carried it.

The balancers listen on the wildcard, not on the VIP: the standby's
balancer is then ready before it leads, needs no sysctl and no
IP_FREEBIND, and a check of it means the same on both hosts (docs/cluster.md, "A balancer as a service").

The hosts are network namespaces on one bridge, with three etcd members
(netns.py, cluster_lab.py, as test_cluster_netns.py)."""
import os
import subprocess
import time
from pathlib import Path

import pytest

import cluster_lab
import etcd_servers
import netns
from agent_helpers import Agent, stop_all
from conftest import ROOT, SANITIZED

TTL = 3
SLACK = 2.0 if not SANITIZED else 3.0
BACKEND_PORT = 7001
BALANCERS = {"l1": 11, "l2": 12}
BACKENDS = {"b1": 21, "b2": 22}



class Balancer(cluster_lab.Host):
    """An agent on a balancer host: the balancer, and the service `lb`
    whose leader holds the VIP (no commands: the balancer already runs)."""

    def __init__(self, lab, root, name, etcd):
        d = Path(root) / name
        d.mkdir(parents=True, exist_ok=True)
        self.lab, self.name, self.etcd = lab, name, etcd
        Agent.__init__(self, d, self.body("0.0.0.0"), port=8470, interval="250ms")

    def body(self, listen):
        eps = ", ".join(self.etcd.endpoints)
        backends = "".join(f"      - {{ name: {b}, address: {self.lab.ip(b)}:{BACKEND_PORT} }}\n"
                           for b in BACKENDS)
        # healthy while this balancer has a backend to send to: its agent's
        # own API (loopback: no token for reads), not a connect to its port,
        # which a balancer with no backend left still accepts
        check = ("http: { url: http://127.0.0.1:8470/api/v1/lb, "
                 "body: '\"usable_primaries\": ?[1-9]' }")
        return (f"checks:\n  - name: balancer\n    {check}\n"
                f"cluster: {{ name: lab, member: {self.name}, etcd: [{eps}], ttl: {TTL}s }}\n"
                f"services:\n  - name: lb\n    healthy: [balancer]\n"
                f"    vip: {{ address: {cluster_lab.VIP}/24, interface: eth0 }}\n"
                f"balancers:\n  - name: front\n    listen: [{listen}:{cluster_lab.PORT}]\n"
                f"    timeouts: {{ connect: 500ms }}\n"
                f"    backends:\n{backends}")


def via(answer):
    """The balancer host a probe's answer ('b1 10.213.0.11') came through."""
    parts = (answer or "").split()
    by_ip = {f"{netns.Lab.SUBNET}.{octet}": name for name, octet in BALANCERS.items()}
    return by_ip.get(parts[1]) if len(parts) == 2 else None


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    if not os.path.exists(etcd_servers.ETCD):
        pytest.skip("etcd-server is not installed (scripts/bootstrap test)")
    if not netns.available():
        pytest.skip("network namespaces need root")
    root = tmp_path_factory.mktemp("lbnetns")
    lab = netns.Lab()
    etcd = probe = None
    hosts = {}
    try:
        for i in range(3):
            lab.add_host(f"e{i + 1}", i + 1)
        for name, octet in {**BALANCERS, **BACKENDS}.items():
            lab.add_host(name, octet)
        lab.add_host("client", 100)
        etcd = etcd_servers.EtcdCluster(root / "etcd", lab=lab).start()
        for b in BACKENDS:  # each answers its name and who connected
            lab.popen(b, ["socat", f"TCP-LISTEN:{BACKEND_PORT},reuseaddr,fork",
                          f"SYSTEM:echo {b} $SOCAT_PEERADDR"],
                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for name in BALANCERS:
            hosts[name] = Balancer(lab, root, name, etcd).start(wait=False)
        for h in hosts.values():
            h.wait_up()
        probe = cluster_lab.Probe(lab)
        lab.balancers, lab.probe = hosts, probe
        yield lab
    finally:
        if probe:
            probe.close()
        try:
            stop_all(hosts.values())
        finally:
            if etcd:
                etcd.close()
            lab.close()
    assert not [n for n in netns.sh("ip", "netns", "list").stdout.split()
                if n.startswith(lab.tag + "-")], "a namespace was left behind"


def leader(lab, timeout=TTL + SLACK + 5):
    """The one live balancer host holding the VIP, once clients answer
    through it."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        held = [n for n, h in lab.balancers.items() if h.proc.poll() is None and h.has_vip()]
        if len(held) == 1 and via(lab.probe.current()) == held[0]:
            return held[0]
        time.sleep(0.05)
    raise AssertionError(f"no single balancer leads: {lab.probe.changes[-10:]}")


def answers_since(lab, t0):
    with lab.probe.lock:
        return [(t, who) for t, who in lab.probe.changes if t >= t0]


def first_answer_through(lab, host, t0, timeout):
    """When clients first got an answer through host's balancer after t0."""
    deadline = t0 + timeout
    while time.time() < deadline:
        back = next((t for t, who in answers_since(lab, t0) if via(who) == host), None)
        if back:
            return back
        time.sleep(0.02)
    raise AssertionError(f"no answer through {host}: {lab.probe.changes[-10:]}")


def kill_host(lab, name):
    """The host dies: its link cut (no last word leaves it), then kill -9
    of its agent, and so of its balancer."""
    lab.cut(name)
    lab.balancers[name].kill9()
    lab.kill_all(name)


def test_example_plan_is_valid(bcdr):
    """examples/cluster-balancer.yaml, the plan this file runs (with real
    addresses), is one."""
    r = bcdr("config", "check", "-c", ROOT / "examples" / "cluster-balancer.yaml")
    assert r.code == 0, r


def test_kill9_leading_balancer_vip_moves(lab):
    """The leading balancer's host dies (its link cut, kill -9 of its agent
    and so of its balancer): the other becomes leader, takes the VIP, and
    clients get answers through it within ttl + slack, from both backends.
    Revived, the dead host removes the VIP its agent left and stays a
    standby."""
    first = leader(lab)
    other = next(n for n in BALANCERS if n != first)
    t0 = time.time()
    kill_host(lab, first)
    back = first_answer_through(lab, other, t0, TTL + SLACK + 1)
    print(f"\nkill -9 of the leading balancer's host to answers through {other}: "
          f"{back - t0:.2f} s")
    assert back - t0 < TTL + SLACK
    assert lab.balancers[other].has_vip()
    time.sleep(0.5)  # a few more answers: round robin over both backends
    seen = {who.split()[0] for t, who in answers_since(lab, back) if via(who) == other}
    assert seen == set(BACKENDS), lab.probe.changes[-10:]
    assert not [who for t, who in answers_since(lab, back) if who and via(who) != other]

    lab.heal(first)
    lab.balancers[first].start()
    time.sleep(0.5)
    assert not lab.balancers[first].has_vip()  # removed at its start
    assert leader(lab) == other


def test_leading_balancer_loses_its_backends_hands_over(lab):
    """The leading balancer can no longer reach the backends (routes to
    them gone on its host; etcd and the clients still reach it): its
    connects fail, both backends go down, its health check fails, it
    demotes and drops the VIP, and the other balancer serves. Back, it
    stays a standby."""
    first = leader(lab)
    other = next(n for n in BALANCERS if n != first)
    ns = lab.ns(first)
    t0 = time.time()
    for b in BACKENDS:
        netns.sh("ip", "-n", ns, "route", "add", "unreachable", f"{lab.ip(b)}/32")
    try:
        back = first_answer_through(lab, other, t0, TTL + SLACK)
        print(f"\nthe leading balancer's backends unreachable to answers through {other}: "
              f"{back - t0:.2f} s")
        assert not lab.balancers[first].has_vip()
        assert lab.balancers[other].has_vip()
    finally:
        for b in BACKENDS:
            netns.sh("ip", "-n", ns, "route", "del", "unreachable", f"{lab.ip(b)}/32",
                     check=False)
    # its backends come back up on its own checks; it leads no more
    h = lab.balancers[first]
    h.wait_for(lambda: all(b["state"] == "up"
                           for b in h.request("GET", "/api/v1/lb")[1][0]["backends"]),
               what="the old leader's backends back up")
    time.sleep(0.5)
    assert leader(lab) == other


# The slow variants: run by `make soak` (BCDR_SOAK=1), not by `make test`.
soak_only = pytest.mark.skipif(os.environ.get("BCDR_SOAK") != "1",
                               reason="slow: run by make soak (BCDR_SOAK=1)")


@soak_only
def test_soak_balancers_bound_to_the_vip(lab):
    """The other way to listen: on the VIP itself, which the standby can
    bind only with net.ipv4.ip_nonlocal_bind=1 (set here in each balancer
    host's namespace; the agents restart, as a new listener needs). The
    failover is the same."""
    for name, h in lab.balancers.items():
        netns.sh("ip", "netns", "exec", lab.ns(name), "sysctl", "-qw",
                 "net.ipv4.ip_nonlocal_bind=1")
        h.stop()
        h.write_plan(h.body(cluster_lab.VIP))
        h.start()
    first = leader(lab)
    other = next(n for n in BALANCERS if n != first)
    st = lab.balancers[other].request("GET", "/api/v1/lb")[1]
    assert st[0]["listen"] == [f"{cluster_lab.VIP}:{cluster_lab.PORT}"], st
    t0 = time.time()
    kill_host(lab, first)
    back = first_answer_through(lab, other, t0, TTL + SLACK + 1)
    print(f"\nbound to the VIP: kill -9 of the leading balancer's host to answers "
          f"through {other}: {back - t0:.2f} s")
    assert back - t0 < TTL + SLACK
    lab.heal(first)
    lab.balancers[first].start()
