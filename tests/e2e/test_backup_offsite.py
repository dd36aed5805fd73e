"""3-2-1 in the plan: an agent whose backup job copies each snapshot to a
second local repository and to a REST repository (`rclone serve restic`
started here), an RPO check per copy, a catch-up after the off-site server
was down, and a drill that restores from the off-site copy."""
import os
import random
import re
import signal
import sys
import time
import urllib.request
from pathlib import Path

from backup_helpers import PASSWORD, Repo, make_tree, tree_state
from conftest import SANITIZED
from remote_servers import rclone  # noqa: F401 (fixture)

RPO = 12  # seconds: backups every 2 s keep the job's own RPO met


def state(a, name):
    return a.api(f"/checks/{name}")


def copy_events(a, text):
    return [e for e in a.events(kind="copy") if text in e["message"]]


def test_copies_rpo_per_copy_catch_up_and_drill_from_a_copy(bcdr, agent, rclone, tmp_path):
    pwf = tmp_path / "pw"
    pwf.write_text(PASSWORD)
    pwf.chmod(0o600)  # a secret file others may read is refused
    main = Repo(bcdr, str(tmp_path / "main"), tmp_path)
    near = Repo(bcdr, str(tmp_path / "near"), tmp_path)
    far = Repo(bcdr, rclone.url("far"), tmp_path)
    for r in (main, near, far):
        r.init()
    src = tmp_path / "src"
    src.mkdir()
    for i in range(4):
        (src / f"f{i}.bin").write_bytes(os.urandom(40000))
    body = f"""repositories:
  - {{ name: main, path: '{main.path}', password_file: '{pwf}' }}
  - {{ name: near, path: '{near.path}', password_file: '{pwf}' }}
  - {{ name: far, path: '{far.path}', password_file: '{pwf}', retries: 0, timeout: 5s }}
backups:
  - name: docs
    repository: main
    paths: ['{src}']
    schedule: every 2s
    rpo: {RPO}s
    rto: 5m
    copies: [near, far]
    drill: {{ from: far, every: daily }}
"""
    a = agent(body).start()
    t = 40 if SANITIZED else 20

    # after the first run, both copies hold its snapshot
    a.wait_for(lambda: state(a, "rpo:docs:far")["state"] == "ok" and
               state(a, "rpo:docs:near")["state"] == "ok", timeout=t, what="both copies")
    assert "copy 'far': newest snapshot" in state(a, "rpo:docs:far")["message"]
    assert copy_events(a, "copy of backup job 'docs' to 'far' started")
    assert copy_events(a, "copy of backup job 'docs' to 'far' finished")
    for r in (near, far):
        snaps = r.snapshots()
        assert snaps and all(s["job"] == "docs" for s in snaps), snaps
        r.check()

    # the drill restores from the off-site copy and says so
    a.wait_for(lambda: state(a, "drill:docs")["state"] == "ok" and
               "restored from 'far'" in state(a, "drill:docs")["message"], timeout=t,
               what="the drill from 'far'")
    job = [j for j in a.api("/status")["backups"] if j["name"] == "docs"][0]
    assert job["drill_from"] == "far" and job["last_drill"]["repository"] == "far", job
    assert [c["name"] for c in job["copies"]] == ["near", "far"], job
    assert all(c["rpo_ok"] for c in job["copies"]) and job["rpo_met"], job
    assert [e for e in a.events(kind="drill") if e["data"].get("repository") == "far"]

    # the off-site server dies: its copy misses the RPO, the rest stays ok
    rclone.kill()
    killed = time.time()
    a.wait_for(lambda: state(a, "rpo:docs:far")["state"] == "critical", timeout=RPO + t,
               what="the far copy to miss its RPO")
    assert time.time() - killed > RPO / 2  # the newest copy seen there aged into it
    msg = state(a, "rpo:docs:far")["message"]
    assert "copy 'far'" in msg and "the RPO is missed" in msg, msg
    assert state(a, "rpo:docs")["state"] == "ok", state(a, "rpo:docs")
    assert state(a, "rpo:docs:near")["state"] == "ok", state(a, "rpo:docs:near")
    failed = copy_events(a, "to 'far' failed")
    assert failed and failed[0]["data"]["ok"] is False, failed

    def metrics():
        with urllib.request.urlopen(a.url + "/metrics", timeout=10) as r:
            return r.read().decode()
    # the metric ages the newest snapshot any copy or listing saw there
    a.wait_for(lambda: re.search(r'bcdr_backup_copy_rpo_ok\{job="docs",copy="far"\} 0',
                                 metrics()), timeout=t, what="the far copy's rpo_ok metric")
    metrics = metrics()
    assert re.search(r'bcdr_backup_copy_rpo_ok\{job="docs",copy="near"\} 1', metrics)
    assert re.search(r'bcdr_backup_rpo_ok\{job="docs"\} 1', metrics)
    assert re.search(r'bcdr_backup_rpo_met\{job="docs"\} 0', metrics)
    assert re.search(r'bcdr_backup_copy_last_success_timestamp_seconds\{job="docs",copy="far"\} '
                     r'\d', metrics)
    assert 'bcdr_backup_copy_duration_seconds{job="docs",copy="near"}' in metrics
    job = [j for j in a.api("/status")["backups"] if j["name"] == "docs"][0]
    assert job["rpo_ok"] and not job["rpo_met"], job
    r = bcdr("status", "-c", a.plan)
    assert r.code == 3, r  # a critical check
    assert re.search(r"  copy    far: newest snapshot .* \(rpo MISSED\), last copy FAILED", r.out), r
    assert re.search(r"  copy    near: newest snapshot .* \(rpo ok\), last copy ok", r.out), r
    assert "from 'far'" in r.out, r
    dashboard_shows_the_copies(a)

    # back again: the next run copies what it missed, the check is ok again
    missed = {s["time"] for s in main.snapshots()}
    rclone.start()
    a.wait_for(lambda: state(a, "rpo:docs:far")["state"] == "ok", timeout=t,
               what="the far copy to catch up")
    caught_up = [e for e in copy_events(a, "to 'far' finished") if e["data"]["snapshots"] >= 2]
    assert caught_up, copy_events(a, "to 'far'")
    # a reload while the job runs and copies: the new checks go on copying
    mark = max(e["id"] for e in a.events())
    a.signal(signal.SIGHUP)
    a.wait_for(lambda: [e for e in copy_events(a, "to 'far' finished") if e["id"] > mark] and
               [e for e in a.events(kind="agent") if e["id"] > mark and "reload" in e["message"]],
               timeout=t, what="copies after a reload")
    last_event = max(e["id"] for e in a.events())
    assert a.stop() == 0

    for r in (near, far):
        times = {s["time"] for s in r.snapshots()}
        assert missed <= times, (r.path, sorted(missed - times))
        r.check()

    # the one-shot job does the copies too, and says when one fails
    rclone.kill()
    (src / "new.bin").write_bytes(os.urandom(1000))
    r = bcdr("backup", "-c", a.plan, "--job", "docs", "--json")
    assert r.code == 3, r
    lines = r.json_lines()
    summary = {x["copy"]: x for x in lines if x.get("type") == "copy_summary"}
    assert summary["near"]["ok"] and summary["near"]["snapshots"] == 1, summary
    assert not summary["far"]["ok"] and "far" in summary["far"]["message"], summary
    assert [x for x in lines if x.get("type") == "copy" and x["copy"] == "near"], lines
    r = bcdr("backup", "-c", a.plan, "--job", "docs")
    assert r.code == 3 and "copy to 'near'" in r.out and "copy to 'far' failed" in r.err, r

    # an agent that starts catches up on what far missed before a run is due
    rclone.start()
    a.write_plan(body.replace("schedule: every 2s", "schedule: \"0 0 1 1 *\""))
    a.start()
    a.wait_for(lambda: [e for e in copy_events(a, "to 'far' finished")
                        if e["id"] > last_event and e["data"]["snapshots"] >= 2],
               timeout=t, what="the catch-up at start")
    job = [j for j in a.api("/status")["backups"] if j["name"] == "docs"][0]
    assert job["last_run"] is None, job  # no run was due
    assert "next run scheduled" in state(a, "backup:docs")["message"]
    assert a.stop() == 0
    assert {s["time"] for s in main.snapshots()} <= {s["time"] for s in far.snapshots()}


def dashboard_shows_the_copies(a):
    """The overview's backups panel, in a real chromium (tests/e2e/browser)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent / "browser"))
    from dashboard_browser import Browser
    b = Browser()
    try:
        b.goto(a.url + "/")
        b.wait('[data-backup="docs"] [data-copy="far"] .badge.critical', timeout=10)
        b.wait('[data-backup="docs"] [data-copy="near"] .badge.ok', timeout=5)
        assert "RPO missed" in b.text('[data-backup="docs"] [data-copy="far"]')
        assert "a copy is behind" in b.text('[data-backup="docs"]')
        assert "from far" in b.text('[data-backup="docs"]')
        assert [p for p in b.problems() if "status of 501" not in p] == []
    finally:
        b.close()


def test_the_example_plan_stays_valid_and_its_mistakes_are_caught(bcdr, write_plan):
    from conftest import ROOT
    example = ROOT / "examples" / "offsite.yaml"
    r = bcdr("config", "check", "-c", example, "--json")
    assert r.code == 0 and r.json()["valid"], r
    text = example.read_text()
    assert "copies: [offsite, vault]" in text and "from: offsite" in text
    line = text.splitlines().index("    copies: [offsite, vault]") + 1
    for bad, why in (("[offsite, nowhere]", "copies to 'nowhere', which is not in repositories:"),
                     ("[offsite, local]", "'local' is its own repository"),
                     ("[vault, vault]", "names copy 'vault' twice")):
        plan = write_plan(text.replace("copies: [offsite, vault]", f"copies: {bad}"))
        r = bcdr("config", "check", "-c", plan)
        assert r.code != 0 and f"{plan}:{line}:" in r.err and why in r.err, r
    plan = write_plan(text.replace("copies: [offsite, vault]", "copies: [vault]"))
    r = bcdr("config", "check", "-c", plan)
    assert r.code != 0 and "drill from 'offsite': not the repository of backup job 'etc'" in r.err, r


def test_incremental_copies_restore_byte_for_byte(bcdr, write_plan, tmp_path):
    """A copy after the first takes the chunks of unchanged files from the
    copy of the snapshot before (nothing read again); what it restores is
    still the snapshot, byte for byte, old and new."""
    main = Repo(bcdr, str(tmp_path / "main"), tmp_path)
    far = Repo(bcdr, str(tmp_path / "far"), tmp_path)
    main.init()
    far.init()
    src = make_tree(tmp_path / "src", files=8)
    # Chunk boundaries depend on each repository's chunker key, so only a file
    # many chunks long has a prefix that is unchanged whatever the key.
    large = src / "dir" / "sub" / "large.bin"
    large.write_bytes(random.Random(5).randbytes(16 << 20))
    plan = write_plan(f"""repositories:
  - {{ name: main, path: '{main.path}' }}
  - {{ name: far, path: '{far.path}' }}
backups:
  - {{ name: docs, repository: main, paths: ['{src}'], copies: [far] }}
""")
    states = []
    for step in range(3):
        if step == 1:
            with open(large, "ab") as f:
                f.write(random.Random(7).randbytes(300000))  # its last chunk changes
            (src / "dir" / "f1.txt").unlink()
        if step == 2:
            (src / "dir" / "new.bin").write_bytes(os.urandom(500000))
            os.truncate(src / "dir" / "sub" / "big.bin", 1 << 20)
        r = bcdr("backup", "-c", plan, "--job", "docs", "--json", env=main.env)
        assert r.code == 0, r
        summary = [x for x in r.json_lines() if x.get("type") == "copy_summary"][0]
        assert summary["ok"] and summary["snapshots"] == 1, summary
        if step == 1:  # at most its last chunk (<= 4 MiB) and the tail, not 16 MiB
            assert summary["bytes_copied"] < (4 << 20) + 300000 + (64 << 10), summary
        states.append(tree_state(src))
    far.check("--read-data")
    snaps = far.snapshots()
    assert len(snaps) == 3
    for snap, want in zip(snaps, states):
        out = tmp_path / f"out-{snap['id'][:8]}"
        far.restore(snap["id"], str(out))
        assert tree_state(out / os.path.relpath(src, "/")) == want, snap["id"]


def two_local_repos(bcdr, tmp_path):
    """A password file, repositories main and far (initialised), a tree."""
    pwf = tmp_path / "pw"
    pwf.write_text(PASSWORD)
    pwf.chmod(0o600)
    main = Repo(bcdr, str(tmp_path / "main"), tmp_path)
    far = Repo(bcdr, str(tmp_path / "far"), tmp_path)
    main.init()
    far.init()
    return pwf, main, far, make_tree(tmp_path / "src", files=4)


def test_the_jobs_keep_holds_in_its_copies(bcdr, agent, tmp_path):
    """The agent applies the job's keep: in its copies as in its repository:
    with keep last 2, the copy settles at the two newest snapshots, which
    restore and check clean."""
    pwf, main, far, src = two_local_repos(bcdr, tmp_path)
    a = agent(f"""repositories:
  - {{ name: main, path: '{main.path}', password_file: '{pwf}' }}
  - {{ name: far, path: '{far.path}', password_file: '{pwf}' }}
backups:
  - name: docs
    repository: main
    paths: ['{src}']
    schedule: every 1s
    keep: {{ last: 2 }}
    copies: [far]
""").start()
    t = 60 if SANITIZED else 30
    a.wait_for(lambda: copy_events(a, "older forgotten there"), timeout=t,
               what="a copy that forgot older snapshots")
    a.stop()
    snaps = far.snapshots()
    # two, or three when the agent stopped between a copy and its forget
    assert 2 <= len(snaps) <= 3, snaps
    far.check("--read-data")
    out = tmp_path / "out"
    far.restore(snaps[-1]["id"], str(out))
    assert tree_state(out / os.path.relpath(src, "/")) == tree_state(src)


def test_an_actions_backup_makes_the_copies_and_keeps(bcdr, agent, tmp_path):
    """A backup run by an action (a check failed) is a run of the job like a
    scheduled one: its copies are made, and the job's keep: holds in the
    repository and in each copy. This job has no schedule at all."""
    pwf, main, far, src = two_local_repos(bcdr, tmp_path)
    flag = tmp_path / "flag"
    a = agent(f"""repositories:
  - {{ name: main, path: '{main.path}', password_file: '{pwf}' }}
  - {{ name: far, path: '{far.path}', password_file: '{pwf}' }}
backups:
  - name: docs
    repository: main
    paths: ['{src}']
    keep: {{ last: 1 }}
    copies: [far]
checks:
  - {{ name: site, file: {{ path: '{flag}' }}, actions: [backup-now] }}
actions:
  - {{ name: backup-now, backup: docs, retry: 1s, limit: none }}
""", interval="0.5s").start()
    t = 60 if SANITIZED else 30
    # the check fails (no flag): the action backs up, again every second;
    # each run's snapshot is copied, and the copy forgets the older one
    a.wait_for(lambda: copy_events(a, "older forgotten there"), timeout=t,
               what="a copy after an action's backup that forgot the older one")
    flag.write_text("up")  # no more runs

    def settled():
        job = [j for j in a.api("/status")["backups"] if j["name"] == "docs"][0]
        (c,) = job["copies"]
        return (state(a, "site")["state"] == "ok" and not c["copying"] and
                c["last_copy"]["ok"] and
                {s["time"] for s in main.snapshots()} == {s["time"] for s in far.snapshots()})
    a.wait_for(settled, timeout=t, what="the copy to hold the action's last snapshot")
    runs = [e for e in a.events(kind="action") if e["data"]["event"] == "run"]
    assert runs and all(e["data"]["ok"] for e in runs), runs
    assert "no schedule" in state(a, "backup:docs")["message"]
    assert a.stop() == 0
    assert len(main.snapshots()) == 1 and len(far.snapshots()) == 1
    far.check("--read-data")
    out = tmp_path / "out"
    far.restore("latest", str(out))
    assert tree_state(out / os.path.relpath(src, "/")) == tree_state(src)
