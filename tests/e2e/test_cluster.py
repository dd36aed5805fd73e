"""The cluster engine against a real three-member etcd (etcd_servers.py) and
real agents on 127.0.0.1, each its own member with its own state dir.

A fencing checker: every member's promote and demote commands append
`<time> start|stop <member> <token>` to one file; the test reads it as the
timeline of who was active, and asserts that the fencing tokens grow with
every new leader and that no two leaders were active at once (with the one
case where a frozen agent could not act in time, where the newer token is
what a downstream system goes by: docs/cluster.md, "What is guaranteed")."""
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agent_helpers import Agent, stop_all
from conftest import SANITIZED
import etcd_servers
from etcd_servers import etcd  # noqa: F401 (the fixture)
from fence import Fence, fence_script, leader_of, wait_leader

PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"
TTL = 3  # seconds: the leases; renewals every 1 s
SLACK = 2.0 if not SANITIZED else 3.0

pytestmark = pytest.mark.skipif(not os.path.exists(etcd_servers.ETCD),
                                reason="etcd-server is not installed (scripts/bootstrap test)")


class Member(Agent):
    def __init__(self, tmp_path, cluster, name, etcd, fence, ttl=TTL, extra="", cluster_extra=""):
        d = tmp_path / name
        d.mkdir()
        self.member = name
        self.healthy = d / "healthy"
        self.healthy.write_text("ok")
        script = fence_script(d / "fence.sh", fence)
        eps = ", ".join(etcd.endpoints)
        body = (f"checks:\n  - name: up\n    file: {{ path: {self.healthy} }}\n"
                f"cluster: {{ name: {cluster}, member: {name}, etcd: [{eps}], ttl: {ttl}s{cluster_extra} }}\n"
                f"services:\n  - name: db\n    healthy: [up]\n"
                f"    promote: [{script}, start]\n    demote: [{script}, stop]\n{extra}")
        super().__init__(d, body, interval="500ms")


def status(bcdr, member):
    r = bcdr("cluster", "status", "--json", "-c", member.plan)
    assert r.code in (0, 3), r
    return r.json()


@pytest.fixture
def cluster(tmp_path, etcd, request):
    """Makes members of a cluster named after the test; stops them after."""
    name = request.node.name.replace("test_", "").replace("_", "-")[:40]
    fence = Fence(tmp_path / "fence.log")
    made = []

    def make(names, via=None, **kw):
        ms = [Member(tmp_path, name, n, via or etcd, fence, **kw) for n in names]
        for m in ms:
            m.start()
            made.append(m)
        return ms

    make.fence = fence
    yield make
    stop_all(made)


def test_fence_checker_refuses_two_leaders(tmp_path):
    """The checker itself can fail: overlaps and stale tokens are caught."""
    f = Fence(tmp_path / "f.log")
    f.path.write_text("1.0 start a 5 \n2.0 stop a 5 x\n2.5 start b 9 \n")
    f.assert_safe()
    f.path.write_text("1.0 start a 5 \n2.5 start b 9 \n3.0 stop a 5 lease\n")
    with pytest.raises(AssertionError):
        f.assert_safe()
    f.assert_safe(frozen={"a"})  # a frozen member, outranked by a newer token
    f.assert_safe(frozen={("a", 5)})  # that one leadership of it
    with pytest.raises(AssertionError):
        f.assert_safe(frozen={("a", 4)})  # another one of it
    f.path.write_text("1.0 start a 9 \n2.0 stop a 9 x\n2.5 start b 5 \n")
    with pytest.raises(AssertionError):
        f.assert_safe()  # a token that went back


def test_plan_errors(bcdr, write_plan):
    good = ("checks:\n  - { name: up, file: { path: /tmp } }\n"
            "cluster: { name: shop, etcd: [http://127.0.0.1:2379], ttl: 5s }\n"
            "services:\n  - { name: db, healthy: [up], promote: [/bin/true] }\n")
    assert bcdr("config", "check", "-c", write_plan(good)).code == 0
    vip = good.replace("promote: [/bin/true]",
                       "promote: [/bin/true], vip: { address: 10.0.0.50/24, interface: eth0 }")
    assert bcdr("config", "check", "-c", write_plan(vip)).code == 0
    for bad, msg in [
        (good.replace("healthy: [up]", "healthy: [down]"), "names check 'down'"),
        (good.replace("name: shop", "name: 'a/b'"), "not a usable name"),
        (good.replace("http://127.0.0.1:2379", "http://u:pw@h:1"), "credentials go in"),
        (good.replace("ttl: 5s", "ttl: 1s"), "'ttl' must be from 2s"),
        (good.replace("cluster:", "clusterx:"), "unknown section"),
        (vip.replace("10.0.0.50/24", "10.0.0.50"), "is not ADDRESS/PREFIX"),
        (vip.replace("10.0.0.50/24", "10.0.0.500/24"), "is not ADDRESS/PREFIX"),
        (vip.replace("10.0.0.50/24", "fd00::50/129"), "is not ADDRESS/PREFIX"),
        (vip.replace("eth0", "eth0:1"), "is not an interface name"),
        (vip.replace("eth0", "a-very-long-interface"), "is not an interface name"),
        (vip.replace(", interface: eth0", ""), "interface"),
        (good.split("cluster:")[0] + "services:" + good.split("services:")[1],
         "services: needs a cluster: section"),
    ]:
        r = bcdr("config", "check", "-c", write_plan(bad))
        assert r.code == 1 and msg in r.err, (bad, r)
        assert ".yaml:" in r.err  # file:line:col


def test_one_leader_status_and_stop(bcdr, cluster):
    a, b, c = cluster(["a", "b", "c"])
    fence = cluster.fence
    first = wait_leader(fence)
    time.sleep(TTL)  # the others keep trying; nobody else may lead
    assert len(fence.starts()) == 1, fence.lines()
    leader = {"a": a, "b": b, "c": c}[first[2]]

    st = status(bcdr, a)
    assert sorted(m["member"] for m in st["members"]) == ["a", "b", "c"], st
    assert all(m["checks"] == {"up": "ok"} for m in st["members"]), st
    (svc,) = st["services"]
    assert svc["leader"] == first[2] and svc["fencing_token"] == first[3], (st, first)
    assert sorted(s["member"] for s in svc["standbys"]) == sorted({"a", "b", "c"} - {first[2]})
    assert all(s["ready"] for s in svc["standbys"]), st
    r = bcdr("cluster", "status", "-c", a.plan)
    assert r.code == 0 and f"leader {first[2]}" in r.out and f"fencing token {first[3]}" in r.out, r

    # the leader's agent stops: it demotes, then lets the key go
    leader.stop()
    nxt = wait_leader(fence, timeout=TTL + SLACK, other_than=first[2])
    iv = fence.assert_safe()
    assert iv[0][1] is not None and nxt[3] > first[3], iv
    st = status(bcdr, a)
    assert sorted(m["member"] for m in st["members"]) == sorted({"a", "b", "c"} - {first[2]})
    # the others lost a member: an event and an alert
    other = next(m for m in (a, b, c) if m is not leader)
    other.wait_for(lambda: [al for al in other.api("/alerts") if al["labels"]["alertname"] ==
                            f"cluster:member:{first[2]}:lost" and al["state"] == "firing"],
                   what="the member-lost alert")
    assert [e for e in other.events(kind="cluster", limit=1000)
            if e["data"].get("event") == "member" and e["data"]["member"] == first[2]]


def test_kill9_leader_fails_over_within_ttl(bcdr, cluster):
    members = dict(zip("ab", cluster(["a", "b"])))
    fence = cluster.fence
    first = wait_leader(fence)
    killed_at = time.time()
    members[first[2]].kill9()
    fence.mark_dead(first[2], first[3])
    nxt = wait_leader(fence, timeout=TTL + SLACK + 1, other_than=first[2])
    took = nxt[0] - killed_at
    assert took <= TTL + SLACK, f"failover took {took:.2f}s"
    fence.assert_safe()
    st = status(bcdr, members[nxt[2]])
    assert st["services"][0]["leader"] == nxt[2]
    # the events of the new leader say so, with the token
    new = members[nxt[2]]
    new.wait_for(lambda: [e for e in new.events(kind="cluster", limit=1000)
                          if e["kind"] == "cluster" and e["data"].get("event") == "promoted"
                          and e["data"].get("fencing_token") == nxt[3]],
                 what="a promoted event with the token")
    print(f"kill -9 failover: {took:.2f}s (ttl {TTL}s)")


def test_sigstop_leader_demotes_on_resume(cluster):
    members = dict(zip("ab", cluster(["a", "b"])))
    fence = cluster.fence
    first = wait_leader(fence)
    old = members[first[2]]
    old.signal(signal.SIGSTOP)
    stopped = time.time()
    nxt = wait_leader(fence, timeout=TTL + SLACK + 1, other_than=first[2])
    assert nxt[0] - stopped <= TTL + SLACK
    time.sleep(0.5)
    resumed = time.time()
    old.signal(signal.SIGCONT)
    # on resuming, the first thing it does is to find its deadline passed
    deadline = time.time() + 5
    while time.time() < deadline:
        stops = [l for l in fence.lines() if l[1] == "stop" and l[2] == first[2]]
        if stops:
            break
        time.sleep(0.05)
    assert stops, fence.lines()
    t, _, _, token, why = stops[0]
    assert token == first[3] and t - resumed < 2.0, (t - resumed, fence.lines())
    print(f"SIGCONT to demote: {t - resumed:.2f}s")
    assert "lease" in why, why
    # frozen, it could not demote before the new leader began: the newer
    # leader's token is the larger, which is what a fenced resource goes by
    iv = fence.assert_safe(frozen={first[2]})
    assert nxt[3] > first[3], iv
    # and it does not come back to lead while the other one does
    time.sleep(TTL)
    assert len(fence.starts()) == 2, fence.lines()


def test_check_critical_hands_over(cluster):
    members = dict(zip("ab", cluster(["a", "b"])))
    fence = cluster.fence
    first = wait_leader(fence)
    members[first[2]].healthy.unlink()
    nxt = wait_leader(fence, timeout=TTL + SLACK + 2, other_than=first[2])
    iv = fence.assert_safe()
    stop = next(x for x in iv if x[3] == first[3])[1]
    assert stop is not None and stop <= nxt[0], iv  # demoted before the other began
    why = [l[4] for l in fence.lines() if l[1] == "stop" and l[3] == first[3]][0]
    assert "checks" in why, why


def test_etcd_member_loss_changes_nothing(bcdr, cluster, etcd):
    # the plan's default ttl: a leader rides out etcd's election (0.5-1 s
    # here) only when it is shorter than ttl/3 (docs/cluster.md, "Timings")
    # a follower first in every client's list: frozen below. (Not the Raft
    # leader: etcd 3.4.23 revokes leases when a frozen leader resumes,
    # etcd-io/etcd#15247; docs/cluster.md, "What is guaranteed".)
    leader = etcd.leader()
    hung = next(m for m in etcd.members if m is not leader)

    class Endpoints:
        endpoints = [hung.client_url] + [m.client_url for m in etcd.members if m is not hung]

    members = dict(zip("ab", cluster(["a", "b"], ttl=5, via=Endpoints)))
    fence = cluster.fence
    first = wait_leader(fence)

    def unchanged():
        time.sleep(5)
        assert [l[1:4] for l in fence.lines()] == [("start", first[2], first[3])], \
            fence.lines()
        t = time.time()
        st = status(bcdr, members["a"])
        assert st["services"][0]["leader"] == first[2]
        assert st["services"][0]["fencing_token"] == first[3]
        return time.time() - t

    # the first endpoint of every client hangs (SIGSTOP: connections are
    # accepted, nothing answers): the calls move on to the next in time
    etcd.stop(hung)
    try:
        took = unchanged()
        assert took < 5, took
        print(f"status with the first endpoint hung: {took:.2f}s")
    finally:
        etcd.cont(hung)
    etcd.wait_healthy()
    # the Raft leader is the harder loss: an election follows
    victim = etcd.leader() or etcd.members[0]
    etcd.kill(victim)
    try:
        unchanged()
    finally:
        etcd.restart(victim)


def test_https_client_certificate_and_password(tmp_path, bcdr):
    tls = etcd_servers.make_tls(tmp_path / "tls")
    e = etcd_servers.EtcdCluster(tmp_path / "etcd-tls", size=1, tls=tls).start()
    m = None
    try:
        url = e.endpoints[0]
        for path, body in [("/v3/auth/user/add", {"name": "root", "password": "s3cret-pw"}),
                           ("/v3/auth/role/add", {"name": "root"}),
                           ("/v3/auth/user/grant", {"user": "root", "role": "root"}),
                           ("/v3/auth/enable", {})]:
            etcd_servers.post(url, path, body, tls)
        pw = tmp_path / "pw"
        pw.write_text("s3cret-pw\n")
        fence = Fence(tmp_path / "fence.log")
        creds = (f", ca_file: {tls['ca']}, cert_file: {tls['client_cert']}, "
                 f"key_file: {tls['client_key']}, username: root, password_file: {pw}")
        m = Member(tmp_path, "tls", "a", e, fence, cluster_extra=creds).start()
        first = wait_leader(fence)
        st = status(bcdr, m)
        assert st["services"][0]["leader"] == "a" and st["etcd"] == url, st

        # a wrong password: refused, and said without the password
        bad = tmp_path / "bad"
        bad.write_text("wrong-pw\n")
        plan = tmp_path / "bad.yaml"
        plan.write_text(m.plan.read_text().replace(str(pw), str(bad)))
        r = bcdr("cluster", "status", "-c", plan)
        assert r.code == 1 and "authentication failed" in r.err, r
        assert "wrong-pw" not in r.err + r.out and "s3cret" not in r.err + r.out
        # without the client certificate: the TLS handshake fails
        plan.write_text(m.plan.read_text().replace(f", cert_file: {tls['client_cert']}, "
                                                   f"key_file: {tls['client_key']}", ""))
        r = bcdr("cluster", "status", "-c", plan)
        assert r.code == 1 and url in r.err, r
        assert [l[1:4] for l in fence.lines()] == [("start", "a", first[3])]
    finally:
        try:
            if m:
                m.stop()
        finally:
            e.close()


def test_unreachable_etcd_is_reported_and_checks_go_on(tmp_path, bcdr):
    class Dead:
        endpoints = [f"http://127.0.0.1:{etcd_servers.free_port()}",
                     f"http://127.0.0.1:{etcd_servers.free_port()}"]

    fence = Fence(tmp_path / "fence.log")
    m = Member(tmp_path, "dead", "a", Dead, fence).start()
    try:
        m.wait_for(lambda: [e for e in m.events(limit=1000) if e["kind"] == "cluster" and
                            "etcd unreachable" in e["message"]], what="an etcd event")
        m.wait_for(lambda: [al for al in m.api("/alerts") if al["labels"]["alertname"] ==
                            "cluster:etcd" and al["state"] == "firing"], what="the etcd alert")
        code, text = m.get("/metrics")
        assert "bcdr_cluster_etcd_reachable 0\n" in text, text
        code, body = m.get("/api/v1/cluster")
        assert code == 200 and body["self"]["etcd_reachable"] is False, body
        # the local checks go on; nobody leads
        m.wait_for(lambda: any(c["name"] == "up" and c["state"] == "ok"
                               for c in m.api("/checks")), what="the check")
        assert fence.lines() == []
        r = bcdr("cluster", "status", "-c", m.plan)
        assert r.code == 1 and "cannot read etcd" in r.err and Dead.endpoints[1] in r.err, r
    finally:
        m.stop()


def test_priority_prefers_the_higher_member(bcdr, tmp_path, etcd):
    import base64
    fence = Fence(tmp_path / "fence.log")
    url = etcd.endpoints[0]
    # someone else leads at first (a key on a lease of the test's)
    lease = etcd_servers.post(url, "/v3/lease/grant", {"TTL": "60"})["ID"]
    b64 = lambda s: base64.b64encode(s.encode()).decode()
    etcd_servers.post(url, "/v3/kv/put", {"key": b64("/prio/services/db/leader"),
                                          "value": b64('{"member":"z"}'), "lease": lease})
    ms = {n: Member(tmp_path, "prio", n, etcd, fence, extra=f"    priority: {p}\n").start()
          for n, p in (("a", 50), ("b", 200))}
    try:
        a = ms["a"]
        a.wait_for(lambda: [m["fit"] for m in status(bcdr, a)["members"]] ==
                   [{"db": True}, {"db": True}], what="two fit members")
        # the key goes: both see it at once, and the lower one waits ttl/3
        etcd_servers.post(url, "/v3/lease/revoke", {"ID": lease})
        first = wait_leader(fence)
        assert first[2] == "b", fence.lines()
        ms["b"].kill9()
        fence.mark_dead("b", first[3])
        nxt = wait_leader(fence, timeout=TTL + SLACK + 1, other_than="b")
        assert nxt[2] == "a"
        fence.assert_safe()
    finally:
        stop_all(ms.values())


def fit_members(bcdr, member, n):
    """Waits until n members are live and fit; the status."""
    return member.wait_for(lambda: (lambda st: st if sum(m["fit"].get("db") is True
                                                          for m in st["members"]) == n else None)(
        status(bcdr, member)), what=f"{n} fit members")


def dashboard_shows_the_cluster(agent, leader, members):
    """The Cluster page in a real chromium (tests/e2e/browser), paused."""
    sys.path.insert(0, str(Path(__file__).resolve().parent / "browser"))
    from dashboard_browser import Browser
    b = Browser()
    try:
        b.goto(agent.url + "/")
        b.wait('[data-nav="cluster"]', timeout=10)  # shown: the agent has a cluster
        b.click('[data-nav="cluster"]')
        b.wait(f'[data-service="db"][data-leader="{leader}"]', timeout=10)
        b.wait("#cl-paused", timeout=5)
        assert "Paused (maintenance)" in b.text("#cl-paused")
        assert b.count("[data-member]") == members
        row = b.text('[data-service="db"]')
        assert "ready" in row and ("leader" in row) == (agent.member == leader), row
        assert "reachable" in b.text("#cl-etcd")
        b.wait("#cl-timeline .timeline li", timeout=5)  # the cluster's events
        assert b.problems() == []
    finally:
        b.close()


def test_switchover_and_pause(bcdr, cluster):
    """A switchover hands the service over with no overlap, only to a live,
    fit member; pause holds every leader in place whatever its checks say."""
    ms = dict(zip("abc", cluster(["a", "b", "c"])))
    fence = cluster.fence
    first = wait_leader(fence)
    old = ms[first[2]]
    x, y = sorted(set(ms) - {first[2]})
    fit_members(bcdr, old, 3)

    def switchover(*args):
        return bcdr("cluster", "switchover", "db", *args, "-c", old.plan)

    # refused: leads already, unknown member, unknown service, an unfit target
    for args, msg in [(("--to", first[2]), "leads service 'db' already"),
                      (("--to", "zz"), "'zz' is not a live member"),
                      ]:
        r = switchover(*args)
        assert r.code == 1 and msg in r.err, r
    r = bcdr("cluster", "switchover", "nosuch", "-c", old.plan)
    assert r.code == 1 and "'nosuch' is not in the plan's services" in r.err, r
    ms[x].healthy.unlink()
    fit_members(bcdr, old, 2)
    r = switchover("--to", x)
    assert r.code == 1 and f"'{x}' is not fit to lead" in r.err, r
    ms[x].healthy.write_text("ok")
    fit_members(bcdr, old, 3)

    # to y: the leader demotes before y promotes; x, as fit, holds back
    r = switchover("--to", y, "--json")
    assert r.code == 0, r
    res = r.json()
    assert res["from"] == first[2] and res["to"] == y and res["previous_token"] == first[3], res
    assert res["fencing_token"] > first[3], res
    cur = leader_of(fence)
    assert cur[2] == y and cur[3] == res["fencing_token"], fence.lines()
    iv = fence.assert_safe()
    assert [m for _, _, m, _ in iv] == [first[2], y], iv
    why = [l[4] for l in fence.lines() if l[1] == "stop"]
    assert why == [f"switchover to '{y}'"], fence.lines()
    st = status(bcdr, old)
    assert st["services"][0]["leader"] == y and st["services"][0]["switchover"] is None, st
    print(f"switchover: {res['took_s']:.2f}s")

    # the agents' view: /api/v1/cluster is the status, with the member itself
    new = ms[y]
    api = new.wait_for(lambda: (lambda j: j if j["self"]["services"]["db"]["role"] == "leader"
                                and j["services"][0]["leader"] == y else None)(
        new.api("/cluster")), what="y leading in its API")
    assert api["self"]["member"] == y, api
    assert sorted(m["member"] for m in api["members"]) == sorted(m["member"] for m in st["members"])
    assert api["self"]["etcd_reachable"] is True and 0 <= api["self"]["renewed_ago_s"] < TTL, api
    # metrics, as promtool likes them, once the member's last look (it polls
    # every TTL/10) came after y's promotion: a look between the demotion and
    # the promotion rightly saw no leader
    for m, leads in ((new, 1), (old, 0)):
        m.wait_for(lambda: m.api("/cluster")["services"][0]["leader"] == y,
                   what="the member seeing y lead")
        code, text = m.get("/metrics")
        assert code == 200 and f'bcdr_cluster_is_leader{{service="db"}} {leads}\n' in text, text
        assert 'bcdr_cluster_service_has_leader{service="db"} 1\n' in text
        assert "bcdr_cluster_members 3\n" in text and "bcdr_cluster_etcd_reachable 1\n" in text
        p = subprocess.run([PROMTOOL, "check", "metrics"], input=text, capture_output=True,
                           text=True)
        assert p.returncode == 0, p.stdout + p.stderr
    # the first leader saw two new leaders: itself (its first look found no
    # key) and y
    code, text = old.get("/metrics")
    assert 'bcdr_cluster_leader_changes_total{service="db"} 2\n' in text, text
    # every member's alert engine got the change, as news with its names
    for m in (old, ms[x]):
        al = m.wait_for(lambda: [a for a in m.api("/alerts") if a["labels"]["alertname"] ==
                                 "cluster:service:db:leader-changed"], what="the alert")
        assert al[0]["state"] == "firing" and al[0]["labels"]["leader"] == y, al
        assert al[0]["labels"]["previous"] == first[2], al

    # without --to: the best fit standby (equal priorities: by name)
    lead2 = min(first[2], x)
    r = switchover()
    assert r.code == 0 and f"'{lead2}' leads now" in r.out, r
    fence.assert_safe()
    old = ms[lead2]

    # maintenance: the leader's checks fail, it stays; nobody switches over
    r = bcdr("cluster", "pause", "-c", old.plan)
    assert r.code == 0 and "paused" in r.out, r
    st = status(bcdr, old)
    assert st["paused"] is True and "@" in st["pause"]["by"] and "?" not in st["pause"]["by"], st
    assert "PAUSED" in bcdr("cluster", "status", "-c", old.plan).out
    old.wait_for(lambda: [e for e in old.events(kind="cluster", limit=1000)
                          if e["data"].get("event") == "paused"], what="the paused event")
    if not SANITIZED:  # the page's JS is the same in both builds; its API is checked above
        dashboard_shows_the_cluster(old, lead2, members=3)
    assert [al for al in old.api("/alerts") if al["labels"]["alertname"] == "cluster:paused"
            and al["state"] == "firing"], old.api("/alerts")
    old.healthy.unlink()
    # its member key says unfit: unpaused, it would have begun to demote by now
    fit_members(bcdr, old, 2)
    time.sleep(0.5)
    assert len(fence.starts()) == 3 and leader_of(fence)[2] == lead2, fence.lines()
    r = switchover("--to", y)
    assert r.code == 1 and "is paused" in r.err, r
    # resumed: the unfit leader steps down, another takes over
    r = bcdr("cluster", "resume", "-c", old.plan, "--json")
    assert r.code == 0 and r.json()["changed"] is True and r.json()["paused"] is False, r
    nxt = wait_leader(fence, timeout=TTL + SLACK, other_than=lead2)
    assert "checks" in [l[4] for l in fence.lines() if l[1] == "stop"][-1], fence.lines()
    fence.assert_safe()
    assert bcdr("cluster", "resume", "-c", old.plan).out.find("was not paused") >= 0
    assert [al for al in old.api("/alerts") if al["labels"]["alertname"] == "cluster:paused"
            and al["state"] == "resolved"]


def test_reload_applies_cluster_changes(bcdr, cluster):
    """SIGHUP: an unchanged services: moves nothing; a new service joins
    while the leader of the old one carries on (test_cluster_reload.py)."""
    (a,) = cluster(["a"])
    fence = cluster.fence
    first = wait_leader(fence)
    a.signal(signal.SIGHUP)
    a.wait_for(lambda: [e for e in a.events(kind="agent", limit=100) if "reloaded" in e["message"]],
               what="the first reload")
    time.sleep(0.6)  # two looks at the cluster
    assert len(fence.lines()) == 1, fence.lines()
    text = a.plan.read_text()
    script = text.split("promote: [")[1].split(",")[0]
    a.plan.write_text(text + f"  - name: web\n    promote: [{script}, start]\n"
                             f"    demote: [{script}, stop]\n")
    a.signal(signal.SIGHUP)
    st = a.wait_for(lambda: (lambda st: st if [s["leader"] for s in st["services"]] == ["a", "a"]
                             else None)(status(bcdr, a)), what="both services led")
    assert [l for l in fence.lines() if l[1] == "stop"] == [], fence.lines()
    assert st["services"][0]["fencing_token"] == first[3], st
    assert [e for e in a.events(kind="cluster", limit=100) if "keeps its lease" in e["message"]]


def test_switchover_needs_a_leader(bcdr, write_plan, etcd):
    """No agent at all: nothing leads, so there is nothing to hand over."""
    plan = write_plan("checks:\n  - { name: up, file: { path: /tmp } }\n"
                      f"cluster: {{ name: nobody, etcd: [{', '.join(etcd.endpoints)}] }}\n"
                      "services:\n  - { name: db, healthy: [up] }\n")
    r = bcdr("cluster", "switchover", "db", "-c", plan)
    assert r.code == 1 and "service 'db' has no leader: nothing to switch over" in r.err, r
    r = bcdr("cluster", "switchover", "-c", plan)
    assert r.code == 2 and "needs a SERVICE" in r.err, r
    r = bcdr("cluster", "switchover", "db", "--timeout", "0s", "-c", plan)
    assert r.code == 2 and "--timeout takes a duration of 1s or more" in r.err, r
    r = bcdr("cluster", "status", "-c", plan)
    assert r.code == 3 and "NO LEADER" in r.out, r


class NameServer:
    """A tiny TCP server on addr:port that answers every connection with its name."""

    def __init__(self, addr, port, name):
        import socket
        import threading
        self.sock = socket.create_server((addr, port))
        self.name = name.encode()
        self.done = False
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while not self.done:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            with c:
                c.sendall(self.name + b"\n")

    def close(self):
        self.done = True
        self.sock.close()


def ask(port):
    """What answers through the balancer on port, or None."""
    import socket
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            s.settimeout(1)
            return s.recv(64).decode().strip() or None
    except OSError:
        return None


def test_balancer_follows_the_leader(bcdr, tmp_path, etcd):
    """A backend `service: db` reaches the member that leads db, wherever it
    is: through the standby's balancer (a remote leader) and the leader's own,
    then, once the leader's agent stops, the new leader; with no leader it is
    down and `bcdr lb status` says why."""
    from agent_helpers import free_port
    fence = Fence(tmp_path / "fence.log")
    port = free_port()
    servers, members = {}, {}
    try:
        for name, addr in (("a", "127.0.0.2"), ("b", "127.0.0.3")):
            servers[name] = NameServer(addr, port, name)
            listen = free_port()
            extra = (f"balancers:\n  - name: front\n    listen: [127.0.0.1:{listen}]\n"
                     f"    backends:\n      - {{ name: db, service: db, port: {port} }}\n")
            m = Member(tmp_path, "lb-follow", name, etcd, fence, extra=extra,
                       cluster_extra=f", address: {addr}")
            m.listen = listen
            members[name] = m.start()
        first = wait_leader(fence)[2]
        other = "b" if first == "a" else "a"
        for via in (first, other):
            members[via].wait_for(lambda: ask(members[via].listen) == first,
                                  what=f"{via}'s balancer reaching the leader {first}")
        st = bcdr("lb", "status", "--json", "-c", members[other].plan)
        (be,) = st.json()[0]["backends"]
        assert be["address"] == f"{'127.0.0.2' if first == 'a' else '127.0.0.3'}:{port}", be

        members[first].stop()
        wait_leader(fence, timeout=TTL + SLACK, other_than=first)
        m = members[other]
        m.wait_for(lambda: ask(m.listen) == other, what="the balancer reaching the new leader")

        # no leader: the backend takes nothing, and says why
        m.healthy.unlink()
        m.wait_for(lambda: "has no leader" in bcdr("lb", "status", "-c", m.plan).out,
                   what="the backend held down")
        st = bcdr("lb", "status", "--json", "-c", m.plan).json()[0]["backends"][0]
        assert st["state"] == "down" and "service 'db' has no leader" in st["held_down"], st
        assert ask(m.listen) is None
    finally:
        try:
            stop_all(members.values())
        finally:
            for s in servers.values():
                s.close()


def test_following_backend_plan_errors(bcdr, write_plan):
    good = ("checks:\n  - { name: up, file: { path: /tmp } }\n"
            "cluster: { name: shop, etcd: [http://127.0.0.1:2379], address: 10.0.0.7 }\n"
            "services:\n  - { name: db, healthy: [up] }\n"
            "balancers:\n  - name: front\n    listen: [127.0.0.1:6432]\n"
            "    backends:\n      - { name: db, service: db, port: 5432 }\n")
    assert bcdr("config", "check", "-c", write_plan(good)).code == 0
    no_cluster = good.split("cluster:")[0] + "balancers:" + good.split("balancers:")[1]
    for bad, msg in [
        (good.replace("service: db, port", "service: db, address: 10.0.0.1:5432, port"),
         "exactly one of address:"),
        (good.replace("service: db, port: 5432", "weight: 1"), "exactly one of address:"),
        (good.replace("service: db, port: 5432", "service: db"), "needs port:"),
        (good.replace("service: db,", "service: web,"), "service 'web' is not in services:"),
        (no_cluster, "service: needs a cluster: section"),
        (good.replace("address: 10.0.0.7", "address: '10.0.0.7:80/x'"), "is not an IP address"),
    ]:
        r = bcdr("config", "check", "-c", write_plan(bad))
        assert r.code == 1 and msg in r.err, (bad, r)


@pytest.mark.no_sanitizer  # timing of the flaps: the plain build is enough
def test_flapping_check_moves_the_service_once(cluster):
    """The leader's health check flaps (its file comes and goes every
    0.3 s, against checks every 0.5 s, for 5 s): it steps down on a
    critical result and the other member, fit throughout, takes over; the
    flapping member, fit again at times, never takes the service back
    while the other leads, and no two leaders overlap."""
    members = dict(zip("ab", cluster(["a", "b"])))
    fence = cluster.fence
    first = wait_leader(fence)
    flapper = members[first[2]]
    end = time.time() + 5
    while time.time() < end:
        if flapper.healthy.exists():
            flapper.healthy.unlink()
        else:
            flapper.healthy.write_text("ok")
        time.sleep(0.3)
    flapper.healthy.write_text("ok")
    nxt = wait_leader(fence, timeout=TTL + SLACK + 2, other_than=first[2])
    time.sleep(1.5)  # the flapper, fit again, must stay a standby
    iv = fence.assert_safe()
    assert [x[2] for x in iv] == [first[2], nxt[2]], iv
    assert leader_of(fence) == nxt, iv
