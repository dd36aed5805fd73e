"""bcdr model: the availability model, the Monte Carlo and the dependency
graph of a plan, driven through the real binary."""
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SHOP = ROOT / "examples" / "shop-topology.yaml"

SMALL = """\
targets: { availability: 99.8% }
topology:
  service: shop
  requires: [web, db]
  components:
    - { name: web, mtbf: 1000h, mttr: 1h, replicas: 2, repair_crews: 1 }
    - { name: db, mtbf: 2000h, mttr: 2h }
"""


def test_availability_json(bcdr, write_plan):
    plan = write_plan(SMALL)
    r = bcdr("-c", plan, "model", "availability", "--json")
    assert r.code == 0, r
    j = r.json()
    rho = 1 / 1000
    u_web = 2 * rho ** 2 / (1 + 2 * rho + 2 * rho ** 2)
    a = (1 - u_web) * 2000 / 2002
    assert abs(j["service"]["availability"] - a) < 1e-12
    assert j["service"]["name"] == "shop"
    assert j["components"]["web"]["method"] == "markov chain"
    assert j["components"]["db"]["method"] == "closed form"
    assert j["target"]["met"] is True
    assert abs(j["service"]["downtime_per_year_s"] - (1 - a) * 365 * 86400) < 1e-6
    # The largest saving first: db is the single point of failure.
    assert j["importance"][0]["component"] == "db"
    assert j["importance"][0]["action"] == "add_replica"
    saved = [i["downtime_saved_per_year_s"] for i in j["importance"]]
    assert saved == sorted(saved, reverse=True)


def test_availability_text_and_target_missed(bcdr, write_plan):
    plan = write_plan(SMALL.replace("99.8%", "99.9%"))
    r = bcdr("-c", plan, "model", "availability")
    assert r.code == 3, r  # completed, but the plan misses its target
    assert "service shop: availability 99.89" in r.out
    assert "MISSED by" in r.out


def test_example_plan(bcdr):
    r = bcdr("-c", SHOP, "model", "availability", "--json")
    assert r.code == 0, r
    j = r.json()
    assert set(j["components"]) == {"lb", "app", "cache", "db", "storage", "network",
                                    "payments"}
    assert j["components"]["db"]["method"] == "markov chain"
    assert 0.999 < j["service"]["availability"] < 1


def test_cycle_refused_with_position(bcdr, write_plan):
    plan = write_plan(SMALL.replace("mttr: 2h }", "mttr: 2h, depends_on: [web] }")
                      .replace("repair_crews: 1 }", "repair_crews: 1, depends_on: [db] }"))
    r = bcdr("-c", plan, "model", "availability")
    assert r.code == 1, r
    assert f"{plan}:6:7: dependency cycle web -> db -> web" in r.err or \
        f"{plan}:7:7: dependency cycle" in r.err, r


def test_bad_plans(bcdr, write_plan):
    cases = [
        (SMALL.replace("mtbf: 2000h, ", ""), ":7:7: component 'db' needs 'mtbf' and 'mttr'"),
        (SMALL.replace("mtbf: 2000h", "mtbf: 0h"), ":7:25: component 'db': 'mtbf' must be positive"),
        (SMALL.replace("replicas: 2", "replicas: 2, needs: 3"), "needs 3 replicas but has only 2"),
        (SMALL.replace("[web, db]", "[web, dbx]"), ":4:19: 'requires' names 'dbx'"),
    ]
    for text, want in cases:
        plan = write_plan(text)
        r = bcdr("-c", plan, "model", "availability")
        assert r.code == 1, r
        assert want in r.err, r


def test_no_topology(bcdr, write_plan):
    plan = write_plan("targets: { availability: 99.9% }\n")
    r = bcdr("-c", plan, "model", "availability")
    assert r.code == 1, r
    assert "has no topology: section" in r.err


def test_model_help(bcdr):
    r = bcdr("model", "--help")
    assert r.code == 0, r
    assert "availability" in r.out


def test_simulate_agrees_with_exact(bcdr, write_plan):
    plan = write_plan(SMALL)
    r = bcdr("-c", plan, "model", "simulate", "--years", "2000", "--seed", "42", "--json")
    assert r.code == 0, r
    j = r.json()
    lo, hi = j["service"]["ci95"]
    exact = j["exact"]["availability"]
    assert j["exact"]["comparable"] is True
    # Seeded: deterministic; the tolerance is the run's own interval widened to 99.9%.
    half = (hi - lo) / 2
    assert abs((lo + hi) / 2 - exact) <= half * 3.29 / 1.96, j
    assert j["years"] == 2000 and j["seed"] == 42
    assert j["lifecycles"] > 0
    assert set(j["components"]) == {"web", "db"}
    assert sum(b["years"] for b in j["yearly_downtime_s"]["histogram"]) == 2000
    t = j["target"]
    assert 0 <= t["p_miss_year"] <= 1 and t["p_miss_month_ci95"][0] <= t["p_miss_month"]
    again = bcdr("-c", plan, "model", "simulate", "--years", "2000", "--seed", "42", "--json")
    assert again.json()["service"] == j["service"]


def test_simulate_text_and_usage(bcdr):
    r = bcdr("-c", SHOP, "model", "simulate", "--years", "500")
    assert r.code == 0, r
    assert "500 years simulated" in r.out and "95% interval" in r.out
    assert "assumes exponential" in r.out  # the example has Weibull and lognormal inputs
    for bad in (["--years", "1.5"], ["--seed", "-1"]):
        r = bcdr("-c", SHOP, "model", "simulate", *bad)
        assert r.code == 2, (bad, r)


def test_graph_of_plan(bcdr):
    r = bcdr("-c", SHOP, "model", "graph", "--json")
    assert r.code == 0, r
    j = r.json()
    assert j["service"] == "shop" and j["nodes"] == 8 and j["requirements"] == 7
    assert j["acyclic"] is True and j["cycle"] is None
    # Components without a spare replica are single points of failure.
    assert set(j["spofs"]) == {"cache", "storage", "network", "payments"}
    detail = {n["name"]: n for n in j["node_detail"]}
    assert detail["db"]["idom"] == "shop" and detail["storage"]["idom"] == "db"
    assert detail["app"]["dominated"] == 2  # cache and payments only through app
    rob = j["robustness"]
    assert rob["fraction_removed"][0] == 0 and rob["random_mean"][0] == 1
    assert rob["random_mean"][-1] == 0 and rob["targeted"][-1] == 0
    assert j["cascades"][0]["name"] == "app"


def test_graph_dot(bcdr):
    r = bcdr("-c", SHOP, "model", "graph", "--dot")
    assert r.code == 0, r
    assert r.out.startswith("// bcdr model graph") and 'digraph "shop"' in r.out
    assert r.out.count("->") == 10
    assert 'label="payments\\n1 of 1", style="rounded,filled", fillcolor="#ffd0d0", color=red' \
        in r.out
    r = bcdr("-c", SHOP, "model", "graph", "--dot", "--json")
    assert r.code == 2, r


def test_graph_cycle_shown_not_refused(bcdr, write_plan):
    plan = write_plan(SMALL.replace("mttr: 2h }", "mttr: 2h, depends_on: [web] }")
                      .replace("repair_crews: 1 }", "repair_crews: 1, depends_on: [db] }"))
    r = bcdr("-c", plan, "model", "graph")
    assert r.code == 0, r
    assert "cycle: web -> db -> web" in r.out
    r = bcdr("-c", plan, "model", "simulate")
    assert r.code == 1 and "dependency cycle" in r.err, r


def test_graph_edges_file(bcdr, tmp_path):
    csv = tmp_path / "estate.csv"
    csv.write_text("from,to\nfront,api\napi,db\napi,cache\ndb,disk\ncache,disk\nfront,cdn\n")
    r = bcdr("model", "graph", "--edges", csv, "--json")
    assert r.code == 0, r
    j = r.json()
    assert j["service"] == "front" and j["requirements"] == 5
    assert j["spofs"] == ["api"]  # its loss cuts db, cache, disk off
    r = bcdr("model", "graph", "--edges", csv, "--service", "api", "--json")
    assert r.json()["requirements"] == 3
    r = bcdr("model", "graph", "--edges", csv, "--service", "nope")
    assert r.code == 1 and "'nope' is not a node" in r.err, r
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\nc;d\n")
    r = bcdr("model", "graph", "--edges", bad)
    assert r.code == 1 and f"{bad}:2:4: expected a comma" in r.err, r
    r = bcdr("model", "graph", "--edges", tmp_path / "missing.csv")
    assert r.code == 1 and "cannot read" in r.err, r
    junk = tmp_path / "junk.csv"
    junk.write_bytes(bytes(range(256)) * 8)
    r = bcdr("model", "graph", "--edges", junk)
    assert r.code == 1 and "junk.csv:1:" in r.err, r


def make_state_db(path, rows, agent_start):
    """A state database with the agent's schema (CONTRACTS.md)."""
    import sqlite3
    db = sqlite3.connect(path)
    db.executescript(
        "CREATE TABLE events(id INTEGER PRIMARY KEY, t_us INTEGER NOT NULL, kind TEXT NOT NULL,"
        " check_name TEXT, message TEXT, data TEXT);"
        "CREATE TABLE incidents(id INTEGER PRIMARY KEY, check_name TEXT NOT NULL, component TEXT,"
        " severity TEXT, started_us INTEGER NOT NULL, ended_us INTEGER);")
    db.execute("INSERT INTO events(t_us, kind, message) VALUES(?, 'agent', 'started')",
               (agent_start,))
    db.executemany("INSERT INTO incidents(check_name, component, severity, started_us, ended_us)"
                   " VALUES(?, ?, 'critical', ?, ?)", rows)
    db.commit()
    db.close()


def test_measured_from_state_db(bcdr, write_plan, tmp_path):
    import time
    now = int(time.time() * 1e6)
    day = 86400 * 10**6
    hour = 3600 * 10**6
    start = now - 10 * day
    db = tmp_path / "state.db"
    make_state_db(db, [("http", "web", start + day, start + day + hour),
                       ("http", "web", start + 5 * day, start + 5 * day + 3 * hour),
                       ("pg", "db", start + 5 * day + 2 * hour, start + 5 * day + 4 * hour),
                       ("x", "ghost", start + day, start + day + hour)], start)
    plan = write_plan(SMALL)
    r = bcdr("-c", plan, "model", "measured", "--state-db", db, "--json")
    assert r.code == 0, r
    j = r.json()
    web = j["components"]["web"]
    assert web["outages"] == 2 and abs(web["downtime_s"] - 4 * 3600) < 1
    assert abs(web["mttr_s"] - 2 * 3600) < 1 and web["model_input"] == "measured"
    assert j["components"]["db"]["outages"] == 1
    assert j["unknown_components"] == ["ghost"]
    # The service was down 1h, then 3h + 1h overlapping (4h): 2 outages, 5h.
    obs = j["service"]["observed"]
    assert obs["outages"] == 2 and abs(obs["downtime_s"] - 5 * 3600) < 1
    assert abs(obs["availability"] - (1 - 5 / 240)) < 1e-4
    assert j["service"]["modelled_measured"]["availability"] < \
        j["service"]["modelled_planned"]["availability"]
    assert j["target"]["observed_met"] is False
    r = bcdr("-c", plan, "model", "measured", "--state-db", db)
    assert r.code == 0 and "model, measured inputs" in r.out and "ghost" in r.out, r


def test_measured_errors(bcdr, write_plan, tmp_path):
    plan = write_plan(SMALL)
    r = bcdr("-c", plan, "model", "measured")
    assert r.code == 1 and "has no agent: section" in r.err and "--state-db" in r.err, r
    r = bcdr("-c", plan, "model", "measured", "--state-db", tmp_path / "none.db")
    assert r.code == 1 and "cannot open" in r.err, r
    (tmp_path / "junk.db").write_text("not a database at all, but long enough to look like one")
    r = bcdr("-c", plan, "model", "measured", "--state-db", tmp_path / "junk.db")
    assert r.code == 1 and "junk.db" in r.err, r
    plan = write_plan(f"agent: {{ state_dir: {tmp_path / 'nostate'} }}\n" + SMALL, name="a.yaml")
    r = bcdr("-c", plan, "model", "measured")
    assert r.code == 1 and f"cannot open '{tmp_path / 'nostate'}/state.db'" in r.err, r
    r = bcdr("-c", plan, "model", "measured", "--since", "yesterday")
    assert r.code == 2, r


@pytest.mark.no_sanitizer  # the agent under ASan is covered by its own tests
def test_measured_from_a_real_agent(bcdr, tmp_path):
    """The agent records outages of a check labelled component: web; the
    model reads them back from its state database."""
    import time
    from agent_helpers import Agent
    flag = tmp_path / "web-up"
    flag.write_text("up")
    body = (SMALL +
            "checks:\n"
            "  - name: web-alive\n"
            f"    program: [/usr/bin/test, -e, {flag}]\n"
            "    interval: 100ms\n"
            "    for: 1\n"
            "    labels: { component: web }\n")
    a = Agent(tmp_path, body, interval="100ms")
    a.start()

    def web_open():
        return [i for i in a.api("/incidents")
                if i["check"] == "web-alive" and i["ended_at"] is None]
    try:
        time.sleep(0.5)
        if sum(a.api("/status")["checks"].values()) == 0:
            pytest.skip("this build's agent does not run the plan's checks yet")
        for _ in range(2):
            flag.unlink()
            a.wait_for(web_open, what="an open incident of web-alive")
            time.sleep(0.3)
            flag.write_text("up")
            a.wait_for(lambda: not web_open(), what="the incident closed")
            time.sleep(0.3)
    finally:
        a.stop()
    r = bcdr("-c", a.plan, "model", "measured", "--json")
    assert r.code == 0, r
    web = r.json()["components"]["web"]
    assert web["outages"] == 2, r.out
    assert 0.2 < web["mttr_s"] < 10, r.out
    assert r.json()["service"]["observed"]["outages"] == 2


def test_graph_example_estate(bcdr):
    r = bcdr("model", "graph", "--edges", ROOT / "examples" / "estate-edges.csv",
             "--service", "storefront", "--json")
    assert r.code == 0, r
    j = r.json()
    assert j["nodes"] == 22 and j["requirements"] == 21
    assert j["spofs"][:2] == ["web-lb", "api-gw"]
    assert j["cascades"][0] == {"name": "web-lb", "requirements_lost": 20,
                                "share_left": 1 / 21}
