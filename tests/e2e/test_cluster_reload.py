"""Changes to a running cluster, against two real agents on a real etcd,
each service with a fencing checker of its own (fence.py).

Reloads of a member's plan (docs/cluster.md, "In the agent"): the member
keeps its lease and the leadership of every service whose definition did
not change (db's checker shows it carried on without a gap); a service that
left the plan is demoted and its key released (another member takes it); a
changed one steps down and joins again.

A switchover asked through the agent's API (POST /api/v1/cluster/switchover,
docs/api.md) and from the dashboard's Cluster page (a button, a confirm
dialog): the leader moves with no overlap, the request is withdrawn after.
They share this file's etcd."""
import os
import signal
import sys
from pathlib import Path

import pytest

import etcd_servers
from etcd_servers import etcd  # noqa: F401 (the fixture)
import test_agent_daemon as tad
import test_cluster as tc
from agent_helpers import stop_all
from conftest import SANITIZED
from fence import Fence, fence_script, leader_of, wait_leader

pytestmark = pytest.mark.skipif(not os.path.exists(etcd_servers.ETCD),
                                reason="etcd-server is not installed (scripts/bootstrap test)")


def web_service(script):
    return f"  - name: web\n    promote: [{script}, start]\n    demote: [{script}, stop]\n"


@pytest.fixture
def pair(tmp_path, etcd, request):
    """Members with db (fence) and, unless web=False, web (wfence)."""
    name = "rl-" + request.node.name.replace("test_", "").replace("_", "-")[:36]
    fence, wfence = Fence(tmp_path / "fence.log"), Fence(tmp_path / "web.log")
    wscript = fence_script(tmp_path / "web.sh", wfence)
    made = []

    def make(names, web=True):
        ms = [tc.Member(tmp_path, name, n, etcd, fence, extra=web_service(wscript) if web else "")
              for n in names]
        for m in ms:
            m.start()
            made.append(m)
        return dict(zip(names, ms))

    make.fence, make.wfence, make.wscript = fence, wfence, wscript
    yield make
    stop_all(made)


def reload(m, text):
    """Writes m's plan and waits until the agent has taken it in."""
    mark = max([e["id"] for e in m.events(limit=1)] or [0])
    m.plan.write_text(text)
    m.signal(signal.SIGHUP)
    m.wait_for(lambda: [e for e in m.events(kind="agent", limit=100)
                        if e["id"] > mark and "reloaded" in e["message"]], what="the reload")


def stops(fence):
    return [(l[2], l[3], l[4]) for l in fence.lines() if l[1] == "stop"]


def test_reload_adding_a_service_keeps_the_leader(bcdr, pair):
    ms = pair(["a", "b"], web=False)
    first = wait_leader(pair.fence)
    lead = ms[first[2]]
    tc.fit_members(bcdr, lead, 2)
    for m in ms.values():
        reload(m, m.plan.read_text() + web_service(pair.wscript))
    st = lead.wait_for(lambda: (lambda st: st if [s["name"] for s in st["services"]] == ["db", "web"]
                                and all(s["leader"] for s in st["services"]) else None)(
        tc.status(bcdr, lead)), what="web led")
    db = st["services"][0]
    # the same leadership: same key (create revision), no demote, no promote
    assert db["leader"] == first[2] and db["fencing_token"] == first[3], st
    wait_leader(pair.wfence)
    iv = pair.fence.assert_safe()
    assert iv == [(first[0], None, first[2], first[3])], pair.fence.lines()
    assert lead.api("/cluster")["self"]["services"]["db"]["role"] == "leader"
    assert [e for e in lead.events(kind="cluster", limit=100) if "keeps its lease" in e["message"]]
    assert not [e for e in lead.events(kind="cluster", limit=100) if "joins again" in e["message"]]


def test_reload_removing_a_service_demotes_it(bcdr, pair):
    ms = pair(["a", "b"])
    w, d = wait_leader(pair.wfence), wait_leader(pair.fence)
    old = ms[w[2]]
    other = ms[({"a", "b"} - {w[2]}).pop()]
    tc.fit_members(bcdr, old, 2)
    reload(old, old.plan.read_text().replace(web_service(pair.wscript), ""))
    # its demote ran before the reload ended, then its key went
    assert stops(pair.wfence) == [(w[2], w[3], "it left the plan (reload)")], pair.wfence.lines()
    nxt = wait_leader(pair.wfence, timeout=tc.TTL + tc.SLACK, other_than=old.member)
    assert nxt[2] == other.member and nxt[3] > w[3], pair.wfence.lines()
    pair.wfence.assert_safe()
    # db, whoever leads it, carried on
    assert stops(pair.fence) == [] and leader_of(pair.fence)[3] == d[3], pair.fence.lines()
    st = old.api("/cluster")
    assert list(st["self"]["services"]) == ["db"], st


def test_reload_changing_a_service_steps_it_down(bcdr, pair):
    ms = pair(["a", "b"])
    w, d = wait_leader(pair.wfence), wait_leader(pair.fence)
    old = ms[w[2]]
    tc.fit_members(bcdr, old, 2)
    text = old.plan.read_text()
    changed = text.replace(f"promote: [{pair.wscript}, start]",
                           f"promote: [{pair.wscript}, start, again]")
    assert changed != text
    reload(old, changed)
    assert stops(pair.wfence) == [(w[2], w[3], "its definition changed (reload)")], \
        pair.wfence.lines()
    nxt = old.wait_for(
        lambda: (lambda cur: cur if cur and cur[3] > w[3] else None)(leader_of(pair.wfence)),
        timeout=tc.TTL + tc.SLACK + 5, what="a new leader of web")
    assert nxt[3] > w[3], pair.wfence.lines()
    pair.wfence.assert_safe()
    assert stops(pair.fence) == [] and leader_of(pair.fence)[3] == d[3], pair.fence.lines()


def leader_and_standby(bcdr, pair):
    ms = pair(["a", "b"], web=False)
    first = wait_leader(pair.fence)
    old = ms[first[2]]
    tc.fit_members(bcdr, old, 2)
    return first, old, ms["b" if first[2] == "a" else "a"]


def test_switchover_through_the_api(bcdr, pair):
    first, old, new = leader_and_standby(bcdr, pair)
    path = "/api/v1/cluster/switchover"
    # the token, as every write: none 401, a wrong one 403
    code, body = new.request("POST", path, {"service": "db"})
    assert code == 401, body
    code, body = new.request("POST", path, {"service": "db"}, token="x" * 48)
    assert code == 403, body
    tok = new.token
    for req, want, msg in [({"service": 1}, 400, "the body must be"),
                           ({"service": "db", "to": "a b"}, 400, "the body must be"),
                           ({"service": "nosuch"}, 404, "not in the plan's services"),
                           ({"service": "db", "to": "zz"}, 404, "'zz' is not a live member"),
                           ({"service": "db", "to": old.member}, 409, "leads service 'db' already")]:
        code, body = new.request("POST", path, req, token=tok)
        assert code == want and msg in body["error"], (req, code, body)
    for raw in tad.GARBAGE_BODIES + [b'{"service":"db","to":5}',
                                     b'{"service":"' + b"x" * 65 + b'"}']:
        code, body = new.request("POST", path, raw=raw, token=tok)
        assert code in (400, 413), (raw[:40], code, body)
    assert leader_of(pair.fence) == first and tc.status(bcdr, old)["services"][0][
        "switchover"] is None
    # asked of the standby's agent: any member's API writes the request
    code, body = new.request("POST", path, {"service": "db"}, token=tok)
    assert code == 202, body
    assert body["from"] == old.member and body["to"] == new.member, body
    assert body["previous_token"] == first[3] and body["timeout_s"] >= 30, body
    cur = wait_leader(pair.fence, timeout=tc.TTL + tc.SLACK, other_than=old.member)
    assert cur[2] == new.member and cur[3] > first[3], pair.fence.lines()
    pair.fence.assert_safe()
    assert [l[4] for l in pair.fence.lines() if l[1] == "stop"] == \
        [f"switchover to '{new.member}'"], pair.fence.lines()
    # the wait withdrew the request once the new leader's promote ended
    new.wait_for(lambda: [e for e in new.events(kind="cluster", limit=100)
                          if "leads now" in e["message"]], what="the end of the switchover")
    st = tc.status(bcdr, old)
    assert st["services"][0]["leader"] == new.member and st["services"][0]["switchover"] is None, st


@pytest.mark.skipif(SANITIZED, reason="the page's JS is the same in both builds; its API "
                    "is tested under ASan too")
def test_switchover_from_the_dashboard(bcdr, pair):
    first, old, new = leader_and_standby(bcdr, pair)
    sys.path.insert(0, str(Path(__file__).resolve().parent / "browser"))
    from dashboard_browser import Browser
    b = Browser()
    try:
        b.goto(old.url + "/#/cluster")
        b.wait(f'[data-service="db"][data-leader="{old.member}"]', timeout=10)
        assert b.count('button[data-key="switchover-db"]') == 0  # read-only
        b.click("#token-button")
        b.fill("#token-input", old.token)
        b.press("Enter")
        b.wait('button[data-key="switchover-db"]', timeout=5)
        # cancelled: nothing is asked
        b.click('button[data-key="switchover-db"]')
        b.wait("#confirm-dialog[open]")
        assert "Switch over service" in b.text("#confirm-title")
        b.click("#confirm-dialog [data-close]")
        assert leader_of(pair.fence) == first
        b.click('button[data-key="switchover-db"]')
        b.wait("#switchover-to")
        b.select("#switchover-to", new.member)
        b.click("#confirm-ok")
        b.wait(f'[data-service="db"][data-leader="{new.member}"]', timeout=tc.TTL + tc.SLACK)
        cur = leader_of(pair.fence)
        assert cur[2] == new.member and cur[3] > first[3], pair.fence.lines()
        pair.fence.assert_safe()
        assert b.problems() == []
    finally:
        b.close()
