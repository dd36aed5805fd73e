"""Failover times measured by the cluster engine, kept in the agent's state and
read by `bcdr model availability` as the switch-over time of the component that
is the cluster service (docs/models.md, "Switch-over time"; docs/cluster.md,
"Failover times"). Real etcd (etcd_servers.py), real agents, real failovers:
kill -9 of the leader's agent, then a switchover."""
import os
import shutil
import subprocess
import time

import pytest

from agent_helpers import Agent
from conftest import SANITIZED
import etcd_servers
from fence import Fence, fence_script, wait_leader

PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"
TTL = 3
SLACK = 2.0 if not SANITIZED else 3.0

pytestmark = pytest.mark.skipif(not os.path.exists(etcd_servers.ETCD),
                                reason="etcd-server is not installed (scripts/bootstrap test)")

TOPOLOGY = """topology:
  service: shop
  requires: [db]
  components:
    - { name: db, mtbf: 1000h, mttr: 1h, replicas: 2, switchover: 30s }
"""


class Member(Agent):
    def __init__(self, tmp_path, name, etcd, fence):
        d = tmp_path / name
        d.mkdir()
        self.member = name
        script = fence_script(d / "fence.sh", fence)
        eps = ", ".join(etcd.endpoints)
        body = (f"checks:\n  - name: up\n    file: {{ path: {d} }}\n"
                f"cluster: {{ name: model, member: {name}, etcd: [{eps}], ttl: {TTL}s }}\n"
                f"services:\n  - name: db\n    healthy: [up]\n"
                f"    promote: [{script}, start]\n    demote: [{script}, stop]\n" + TOPOLOGY)
        super().__init__(d, body, interval="500ms")


def model(bcdr, m, *args):
    r = bcdr("model", "availability", "-c", m.plan, "--json", *args)
    assert r.code == 0, r
    return r.json()["switchover"]


def test_failover_times_reach_the_model(bcdr, tmp_path):
    etcd = etcd_servers.EtcdCluster(tmp_path / "etcd").start()
    fence = Fence(tmp_path / "fence.log")
    ms = {}
    try:
        for n in "ab":
            ms[n] = Member(tmp_path, n, etcd, fence).start()
        first = wait_leader(fence)
        old, new = ms[first[2]], ms[next(n for n in "ab" if n != first[2])]
        # before any failover: the modelled time, nothing measured
        sw = model(bcdr, new)["components"]["db"]
        assert sw["modelled_s"] == 30 and sw["measured"]["count"] == 0, sw
        assert sw["availability_measured"] == sw["availability_modelled"], sw

        killed = time.time()
        old.kill9()
        fence.mark_dead(first[2], first[3])
        nxt = wait_leader(fence, timeout=TTL + SLACK + 1, other_than=first[2])
        took = nxt[0] - killed
        doc = new.wait_for(lambda: new.api("/cluster")["failovers"].get("db"),
                           what="the failover in /api/v1/cluster")
        rec = doc["recent"][-1]
        assert rec["kind"] == "failover" and rec["lease_ended"] is True, rec
        assert (rec["from"], rec["to"], rec["fencing_token"]) == (first[2], nxt[2], nxt[3]), rec
        # measured on the new leader's clock: the lease's ttl, then its look and promote
        assert TTL < rec["seconds"] < TTL + SLACK, rec
        assert 0 <= rec["wait_s"] < 1.5 and 0 <= rec["promote_s"] < 1, rec

        # the model, from the agent's API and from its state database
        via_api = model(bcdr, new, "--agent", new.url)
        via_db = model(bcdr, new, "--state-db", str(new.state_dir / "state.db"))
        dflt = model(bcdr, new)  # the plan's agent.state_dir
        for sw in (via_api, via_db, dflt):
            c = sw["components"]["db"]
            assert c["measured"]["count"] == 1, sw
            assert 0 < c["measured"]["median_s"] < TTL + 2, sw
            assert c["measured"]["median_s"] == c["measured"]["p95_s"] == rec["seconds"], sw
            # 3 s instead of 30 s per failover: less downtime
            assert c["availability_measured"] > c["availability_modelled"], sw
            assert sw["service_availability_measured"] > sw["service_availability_modelled"]
        assert via_api["source"].endswith("/api/v1/cluster"), via_api
        # model measured shows them beside the incidents, from the same state.db
        r = bcdr("model", "measured", "-c", new.plan, "--json")
        assert r.code == 0, r
        assert r.json()["switchover"]["components"]["db"]["measured"]["count"] == 1, r.out
        text = bcdr("model", "availability", "-c", new.plan, "--agent", new.url)
        assert text.code == 0 and "switch-over time, modelled vs measured" in text.out, text
        assert "30.00s" in text.out, text.out

        # cluster status --json, on the new leader's host, and the metrics
        st = bcdr("cluster", "status", "--json", "-c", new.plan)
        assert st.code == 0, st
        assert st.json()["failovers"]["db"]["recent"][-1]["fencing_token"] == nxt[3], st.out
        code, metrics = new.get("/metrics")
        assert code == 200
        assert 'bcdr_cluster_failover_seconds_count{service="db"} 1\n' in metrics, metrics
        assert 'bcdr_cluster_failover_seconds{service="db",quantile="0.5"}' in metrics
        p = subprocess.run([PROMTOOL, "check", "metrics"], input=metrics, capture_output=True,
                           text=True)
        assert p.returncode == 0, p.stdout + p.stderr

        def ready(standby):
            st = bcdr("cluster", "status", "--json", "-c", standby.plan).json()
            return any(x["member"] == standby.member and x["ready"]
                       for x in st["services"][0]["standbys"])

        # the new leader's agent stops: it deletes its key, then revokes its
        # lease, one call apart; read at the deletion's revision, that is no
        # lease that ended, and no ttl is added
        old.start()
        old.wait_for(lambda: ready(old), what="the restarted member ready")
        new.stop()
        rec = old.wait_for(lambda: old.api("/cluster")["failovers"].get("db"),
                           what="the failover after the stop")["recent"][-1]
        assert rec["kind"] == "failover" and rec["lease_ended"] is False, rec
        assert (rec["from"], rec["to"]) == (new.member, old.member), rec
        assert abs(rec["seconds"] - rec["wait_s"] - rec["promote_s"]) < 1e-6, rec
        assert 0 < rec["seconds"] < 1.5, rec
        stop_s = rec["seconds"]

        # the history survives a restart of the agent that kept it
        new.start()
        again = model(bcdr, new, "--agent", new.url)["components"]["db"]["measured"]
        assert again["count"] == 1 and again["median_s"] == via_api["components"]["db"][
            "measured"]["median_s"], again

        # a switchover back is kept apart from the failovers
        new.wait_for(lambda: ready(new), what="the restarted member ready")
        r = bcdr("cluster", "switchover", "db", "--to", new.member, "-c", new.plan)
        assert r.code == 0, r
        new.wait_for(lambda: new.api("/cluster")["failovers"]["db"]["total"] == 2,
                     what="the switchover in the history")
        rec = new.api("/cluster")["failovers"]["db"]["recent"][-1]
        assert rec["kind"] == "switchover" and rec["lease_ended"] is False, rec
        assert 0 < rec["seconds"] < TTL, rec
        sw = model(bcdr, new)["components"]["db"]
        assert sw["measured"]["count"] == 1 and sw["switchovers"]["count"] == 1, sw
        fence.assert_safe()
        print(f"kill -9: promote {took:.2f}s after the kill, failover measured "
              f"{via_api['components']['db']['measured']['median_s']:.2f}s; the leader's "
              f"agent stopping {stop_s:.2f}s; switchover {rec['seconds']:.2f}s")
    finally:
        for m in ms.values():
            m.stop()
        etcd.close()


def test_model_sources_refused(bcdr, write_plan, tmp_path):
    """A source named on the command line that cannot be read fails the
    command; with none, the model runs offline and says nothing was measured."""
    plan = write_plan(f"agent: {{ listen: 127.0.0.1:1, state_dir: {tmp_path}/none }}\n" + TOPOLOGY)
    r = bcdr("model", "availability", "-c", plan, "--json")
    assert r.code == 0 and "does not exist" in r.json()["switchover"]["note"], r
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"not a database" * 100)
    for args, msg in [(("--state-db", str(garbage)), "file is not a database"),
                      (("--state-db", str(tmp_path / "missing.db")), "cannot open"),
                      (("--agent", "http://127.0.0.1:1"), "cannot reach the agent"),
                      (("--agent", "http://x", "--state-db", "y"), "not both")]:
        r = bcdr("model", "availability", "-c", plan, *args)
        assert r.code in (1, 2) and msg in r.err, (args, r)
    # a plan without switch-overs reads nothing, as before
    r = bcdr("model", "availability", "-c", write_plan(TOPOLOGY.replace(", switchover: 30s", "")
                                                       .replace("replicas: 2", "replicas: 1")),
             "--json")
    assert r.code == 0 and "switchover" not in r.json(), r
