"""Action limits across agent restarts: "3 within 10m" counts the runs made
before a kill -9, and an escalated action stays escalated through another
kill -9 until its check recovers."""
import time


def lines(path):
    return path.read_text().splitlines() if path.exists() else []


def plan(flag, runs):
    return (
        "checks:\n  - name: site\n"
        f"    file: {{ path: '{flag}' }}\n    actions: [fix]\n"
        "actions:\n  - name: fix\n"
        f"    exec: [/bin/sh, -c, 'echo run >> {runs}']\n"
        "    limit: 3 within 10m\n    retry: 1s\n")


def action(bcdr, a):
    r = bcdr("act", "list", "-c", a.plan, "--json")
    assert r.code == 0, r
    (act,) = r.json()
    return act


def test_limit_window_and_escalation_survive_kill9(agent, tmp_path, bcdr):
    flag, runs = tmp_path / "flag", tmp_path / "runs"
    a = agent(plan(flag, runs), interval="0.2s").start()
    # the check fails (no flag): the action runs at once, then every second
    a.wait_for(lambda: len(lines(runs)) >= 2, timeout=30, what="two runs")
    a.kill9()
    assert len(lines(runs)) == 2

    a.start()
    # two runs from before count: one more, then the limit escalates
    act = a.wait_for(lambda: (lambda x: x if x["state"] == "escalated" else None)(
        action(bcdr, a)), timeout=30, what="the escalation")
    assert act["escalated_by"] == "site"
    assert act["runs_in_window"] == 3
    time.sleep(1.5)  # past the retry: nothing more runs
    assert len(lines(runs)) == 3
    assert [e for e in a.events(kind="action") if e["data"]["event"] == "escalated"]

    a.kill9()
    a.start()
    time.sleep(2.5)  # the check still fails, several retries over
    assert len(lines(runs)) == 3
    act = action(bcdr, a)
    assert act["state"] == "escalated", act
    assert [e for e in a.events(kind="action") if e["data"]["event"] == "skipped"]

    # the check recovers: the escalation ends, and the window with it
    flag.write_text("up")
    a.wait_for(lambda: action(bcdr, a)["state"] == "ready", timeout=30,
               what="the escalation to end")
    resets = [e for e in a.events(kind="action") if e["data"]["event"] == "reset"]
    assert resets and "recovered" in resets[-1]["message"]
    flag.unlink()
    a.wait_for(lambda: len(lines(runs)) == 4, timeout=30, what="acting again")
