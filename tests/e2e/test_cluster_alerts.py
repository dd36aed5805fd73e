"""The cluster's alerts as a receiver gets them: real agents on a real
three-member etcd (etcd_servers.py, shared by the module) send to a real
webhook server (alert_servers.py), each agent to a path of its own.

- the leader-changed alert fires on a leader change, with the names and the
  token, and resolves after the plan's leader_changed_hold (2 s here);
- the no-leader alert fires when the only fit member's check fails and
  resolves when it leads again;
- cluster:etcd fires while etcd has no quorum (two of three members frozen:
  connections are accepted, nothing answers, the third cannot commit) and
  resolves when the quorum is back.

Under a sanitizer only the first runs (the time of `make test`); with
BCDR_SOAK=1 all do, and the quorum loss takes etcd's Raft leader with it as
well."""
import datetime
import math
import os
import time

import pytest

import etcd_servers
from etcd_servers import etcd  # noqa: F401 (the fixture)
from agent_helpers import Agent, stop_all
from alert_servers import WebhookServer, check_am_shape
from conftest import SANITIZED
from fence import Fence, fence_script, wait_leader

TTL = 3
HOLD = 2  # seconds: leader_changed_hold
SLACK = 2.0 if not SANITIZED else 4.0
SOAK = os.environ.get("BCDR_SOAK") == "1"

pytestmark = pytest.mark.skipif(not os.path.exists(etcd_servers.ETCD),
                                reason="etcd-server is not installed (scripts/bootstrap test)")
plain_only = pytest.mark.skipif(SANITIZED and not SOAK,
                                reason="the plain build's (BCDR_SOAK=1 runs it sanitized)")


@pytest.fixture(scope="module")
def hook():
    with WebhookServer() as h:
        yield h


class Member(Agent):
    """An agent of cluster `cluster` whose alerts go to hook's /hook/NAME."""

    def __init__(self, tmp_path, cluster, name, etcd, fence, hook):
        d = tmp_path / name
        d.mkdir()
        self.member = name
        self.path = f"/hook/{cluster}/{name}"
        self.healthy = d / "healthy"
        self.healthy.write_text("ok")
        script = fence_script(d / "fence.sh", fence)
        eps = ", ".join(etcd.endpoints)
        url = f"http://127.0.0.1:{hook.port}{self.path}"
        body = (f"checks:\n  - name: up\n    file: {{ path: {self.healthy} }}\n"
                f"cluster: {{ name: {cluster}, member: {name}, etcd: [{eps}], ttl: {TTL}s,"
                f" leader_changed_hold: {HOLD}s }}\n"
                f"services:\n  - name: db\n    healthy: [up]\n"
                f"    promote: [{script}, start]\n    demote: [{script}, stop]\n"
                "alerts:\n  receivers:\n"
                f"    - name: hook\n      webhook: {{ url: '{url}' }}\n"
                "  route: { receiver: hook, group_by: [alertname], group_wait: 0s,"
                " group_interval: 200ms, repeat_interval: 1h }\n")
        super().__init__(d, body, interval="250ms")


@pytest.fixture
def cluster(tmp_path, etcd, hook, request):
    """Starts members of a cluster named after the test; stops them after."""
    name = request.node.name.replace("test_", "").replace("_", "-")[:40]
    fence = Fence(tmp_path / "fence.log")
    made = []

    def make(*names, unfit=()):
        ms = []
        for n in names:
            m = Member(tmp_path, name, n, etcd, fence, hook)
            if n in unfit:
                m.healthy.unlink()  # its check is critical from the start
            ms.append(m.start())
        made.extend(ms)
        return ms if len(ms) > 1 else ms[0]

    make.fence = fence
    make.name = name
    yield make
    stop_all(made)


def alerts(hook, member, alertname, status=None, since=0, text="", **labels):
    """Every alert of that name (and status, labels, text in its summary) in
    the posts member's receiver got (from the since-th post of the hook's
    on), as (message, alert)."""
    out = []
    with hook.cond:
        posts = list(hook.posts)[since:]
    for p in posts:
        if p["path"] != member.path:
            continue
        for a in p["body"]["alerts"]:
            if (a["labels"]["alertname"] == alertname and status in (None, a["status"]) and
                    text in a["annotations"].get("summary", "") and all(a["labels"].get(k) == v for k, v in labels.items())):
                out.append((p["body"], a))
    return out


def wait_alert(hook, member, alertname, status, timeout=10 + SLACK, since=0, text="",
               **labels):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = alerts(hook, member, alertname, status, since, text, **labels)
        if got:
            check_am_shape(got[0][0])
            return got[0]
        time.sleep(0.05)
    raise AssertionError(f"no {status} {alertname} {labels} at {member.path}: "
                         f"{[p['body'] for p in hook.posts if p['path'] == member.path]}\n"
                         f"{member.log.read_text()[-3000:]}")


def parse_ts(s):
    """An RFC 3339 time of the messages (UTC, fractions or not) as epoch."""
    s = s.rstrip("Z")
    whole, _, frac = s.partition(".")
    t = datetime.datetime.strptime(whole, "%Y-%m-%dT%H:%M:%S")
    return t.replace(tzinfo=datetime.timezone.utc).timestamp() + float("0." + (frac or "0"))


CHANGED = "cluster:service:db:leader-changed"
NO_LEADER = "cluster:service:db:no-leader"


def test_leader_changed_fires_and_resolves_after_the_hold(cluster, hook, bcdr):
    a = cluster("a")
    fence = cluster.fence
    first = wait_leader(fence)
    b = cluster("b")
    # a's own first promotion is a change (from nobody): fired, then resolved
    # on its own after the hold
    fired = wait_alert(hook, a, CHANGED, "firing", leader="a")
    done = wait_alert(hook, a, CHANGED, "resolved", leader="a")
    assert done[1]["fingerprint"] == fired[1]["fingerprint"]
    held = parse_ts(done[1]["endsAt"]) - parse_ts(fired[1]["startsAt"])
    assert HOLD - 0.1 <= held <= HOLD + SLACK, held
    b.wait_for(lambda: [s for s in bcdr("cluster", "status", "--json", "-c", b.plan).json()
                        ["services"][0]["standbys"] if s["member"] == "b" and s["ready"]],
               what="b ready")
    # what b found at its start is no change
    assert alerts(hook, b, CHANGED) == []

    # a's check fails: it hands over to b; both tell their receivers
    a.healthy.unlink()
    nxt = wait_leader(fence, timeout=TTL + SLACK + 2, other_than="a")
    assert nxt[2] == "b" and nxt[3] > first[3]
    token = str(nxt[3])
    for m in (a, b):
        fired = wait_alert(hook, m, CHANGED, "firing", leader="b", previous="a",
                           fencing_token=token)
        assert fired[1]["labels"]["severity"] == "warning"
        assert fired[1]["labels"]["cluster"] == cluster.name
        assert "'b' leads now (was 'a')" in fired[1]["annotations"]["summary"]
        done = wait_alert(hook, m, CHANGED, "resolved", timeout=HOLD + SLACK + 2, leader="b")
        assert done[1]["fingerprint"] == fired[1]["fingerprint"]
        held = parse_ts(done[1]["endsAt"]) - parse_ts(fired[1]["startsAt"])
        assert HOLD - 0.1 <= held <= HOLD + SLACK, (m.member, held)
        # resolved in the agent too
        assert [al for al in m.api("/alerts") if al["labels"]["alertname"] == CHANGED and
                al["state"] == "resolved"], m.api("/alerts")
    fence.assert_safe()


def api_alert(m, alertname):
    return next((al for al in m.api("/alerts") if al["labels"]["alertname"] == alertname), None)


@plain_only
def test_no_leader_reaches_the_receiver_and_resolves(cluster, hook):
    fence = cluster.fence
    b = cluster("b", unfit=("b",))
    b.wait_for(lambda: [c for c in b.api("/checks") if c["state"] == "critical"],
               what="b unfit")
    a = cluster("a")
    first = wait_leader(fence)
    # the leader's check fails at once (before a look of it saw its own key,
    # usually): it steps down, and b is not fit either
    a.healthy.unlink()
    a.wait_for(lambda: [l for l in fence.lines() if l[1] == "stop"], what="a demote")
    was = "has no leader (was 'a')"  # not the first look's, before a led
    for m in (a, b):
        m.wait_for(lambda: (lambda al: al and al["state"] == "firing" and
                            was in al["annotations"]["summary"])(api_alert(m, NO_LEADER)),
                   what=f"the no-leader alert of {m.member}")
    fired = {m.member: wait_alert(hook, m, NO_LEADER, "firing", text=was) for m in (a, b)}
    stop = [l for l in fence.lines() if l[1] == "stop"][0]
    assert stop[3] == first[3], fence.lines()
    for m, (_, al) in fired.items():
        assert al["labels"]["severity"] == "critical" and al["labels"]["service"] == "db"
        assert parse_ts(al["startsAt"]) >= math.floor(stop[0])  # not before
    assert len(fence.starts()) == 1, fence.lines()
    # b is fit now: it leads, the alert resolves at both
    b.healthy.write_text("ok")
    nxt = wait_leader(fence, timeout=TTL + SLACK, other_than="a")
    assert nxt[2] == "b" and nxt[3] > first[3]
    for m in (a, b):
        done = wait_alert(hook, m, NO_LEADER, "resolved", text=was)
        assert done[1]["fingerprint"] == fired[m.member][1]["fingerprint"]
        assert parse_ts(done[1]["endsAt"]) <= nxt[0] + 1.0
    fence.assert_safe()


def quorum_lost(etcd, cluster, hook, frozen):
    a = cluster("a")
    fence = cluster.fence
    wait_leader(fence)
    assert alerts(hook, a, "cluster:etcd") == []
    since = len(hook.posts)
    t0 = time.time()
    for m in frozen:
        etcd.stop(m)
    try:
        fired = wait_alert(hook, a, "cluster:etcd", "firing", timeout=TTL * 2 + SLACK)
        took = time.time() - t0
        assert fired[1]["labels"]["severity"] == "critical"
        summary = fired[1]["annotations"]["summary"]
        assert "etcd unreachable or without quorum" in summary, summary
        # what a frozen member and one without quorum both do: accept, and
        # not answer (not a refused connection); every endpoint is named
        assert "timed out" in summary and "refused" not in summary, summary
        assert all(ep in summary for ep in etcd.endpoints), summary
        code, text = a.get("/metrics")
        assert "bcdr_cluster_etcd_reachable 0\n" in text
        # the leader could not renew: it stepped down
        a.wait_for(lambda: [l for l in fence.lines() if l[1] == "stop"], what="a demote")
        # it cannot read the keys: it does not claim there is no leader
        assert [x for x in alerts(hook, a, NO_LEADER, "firing", since=since)
                if parse_ts(x[1]["startsAt"]) >= math.floor(t0)] == []
    finally:
        for m in frozen:
            etcd.cont(m)
    t1 = time.time()
    done = wait_alert(hook, a, "cluster:etcd", "resolved", timeout=TTL * 3 + SLACK)
    assert done[1]["fingerprint"] == fired[1]["fingerprint"]
    back = time.time() - t1
    etcd.wait_healthy()
    fence.assert_safe()
    print(f"quorum lost: cluster:etcd sent after {took:.2f}s ({summary!r}); "
          f"resolved {back:.2f}s after the quorum was back")


@plain_only
def test_etcd_alert_while_quorum_is_lost(etcd, cluster, hook):
    # two followers freeze: the Raft leader left steps down (CheckQuorum)
    leader = etcd.leader()
    quorum_lost(etcd, cluster, hook, [m for m in etcd.members if m is not leader])


@pytest.mark.skipif(not SOAK, reason="slow: BCDR_SOAK=1")
def test_etcd_alert_while_quorum_is_lost_with_its_leader(etcd, cluster, hook):
    """The Raft leader and a follower freeze; on their SIGCONT the old leader
    learns it is none (etcd-io/etcd#15247 is about such a one)."""
    etcd.wait_healthy()
    leader = etcd.leader()
    other = next(m for m in etcd.members if m is not leader)
    quorum_lost(etcd, cluster, hook, [leader, other])
