"""Repository locks: a held lock is refreshed (a new lock object with the
current time, the old one removed), a lock not refreshed for the stale age
is ignored and removed, and prune never deletes the packs of a backup that
is still running: held in the middle with SIGSTOP, the backup completes and
its snapshot restores byte for byte (or, when its lock was taken for stale,
it commits nothing)."""
import json
import os
import signal
import socket
import subprocess
import time

from backup_helpers import FAST_KDF, PASSWORD, Repo, repo, tree_state  # noqa: F401
from conftest import BCDR, SANITIZED
from remote_servers import fault_proxy, rclone  # noqa: F401 (fixtures)

REFRESH_MS = 1000  # stale after 6 refreshes: 6 s
STALE_S = 6 * REFRESH_MS / 1000
FAST_LOCKS = {"BCDR_TEST_LOCK_REFRESH_MS": str(REFRESH_MS)}


def locks(repo):
    d = os.path.join(repo.path, "locks")
    out = {}
    for name in os.listdir(d):
        try:
            with open(os.path.join(d, name)) as f:
                out[name] = json.load(f)
        except (OSError, ValueError):
            pass  # removed or being written by the refresher
    return out


def plant_lock(directory, host="elsewhere", age_s=0.0, exclusive=False):
    name = os.urandom(16).hex()
    with open(os.path.join(directory, "locks", name), "w") as f:
        json.dump({"host": host, "pid": 1, "time_us": int((time.time() - age_s) * 1e6),
                   "exclusive": exclusive}, f)
    return name


def packs(repo):
    return sorted(f for _, _, files in os.walk(os.path.join(repo.path, "data")) for f in files
                  if ".tmp" not in f)


def start(repo, *args, env=None, **kw):
    e = dict(os.environ)
    for k in ("BCDR_REPOSITORY", "BCDR_PASSWORD_FILE"):
        e.pop(k, None)
    e.update(repo.env)
    e.update(env or {})
    return subprocess.Popen([BCDR, *args, "--repo", repo.path], env=e, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kw)


def big_tree(root, files=160, size=1 << 20):
    os.makedirs(root / "data", exist_ok=True)
    for i in range(files):
        (root / "data" / f"f{i:03}.bin").write_bytes(os.urandom(size))
    return root


def stop_when_packs(p, repo, before, want=2, timeout=60):
    """SIGSTOPs p once it wrote `want` packs; False if it ended first, or
    saved its snapshot before the signal landed (the tree, ten packs, leaves
    it far from that)."""
    snapshots = os.path.join(repo.path, "snapshots")
    saved = len(os.listdir(snapshots))
    end = time.monotonic() + timeout
    while time.monotonic() < end and p.poll() is None:
        if len(set(packs(repo)) - before) >= want:
            p.send_signal(signal.SIGSTOP)
            return len(os.listdir(snapshots)) == saved
        time.sleep(0.01)
    return False


def test_held_lock_is_refreshed(repo):
    p = start(repo, "backup", "--stdin", "--stdin-filename", "s.bin", env=FAST_LOCKS,
              stdin=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 20
        while not locks(repo) and time.monotonic() < deadline:
            time.sleep(0.05)
        first = locks(repo)
        assert len(first) == 1, first
        time.sleep(3 * REFRESH_MS / 1000)
        later = locks(repo)
        # A new object, a newer time, and the old one gone.
        assert later and not set(later) & set(first), (first, later)
        (old,), (new,) = first.values(), list(later.values())[:1]
        assert new["time_us"] > old["time_us"] and new["pid"] == old["pid"], (old, new)
        p.stdin.write("x" * 1000)
        p.stdin.close()
        assert p.wait(60) == 0
    finally:
        if p.poll() is None:
            p.kill()
    err = p.stderr.read()
    assert f"BCDR_TEST_LOCK_REFRESH_MS={REFRESH_MS}" in err and "test suite only" in err, err
    assert locks(repo) == {}, "unlock removed the refreshed lock"


def test_stale_age(repo):
    # Default: 30 minutes without a refresh. 29 minutes is live...
    fresh = plant_lock(repo.path, age_s=29 * 60)
    r = repo.run("prune")
    assert r.code == 1 and "locked" in r.err and "elsewhere" in r.err, r
    os.unlink(os.path.join(repo.path, "locks", fresh))
    # ...31 minutes is stale: ignored by a backup, removed by prune.
    old = plant_lock(repo.path, age_s=31 * 60, exclusive=True)
    src = repo.tmp / "src"
    src.mkdir()
    (src / "a").write_bytes(b"a" * 100)
    repo.backup(str(src))
    r = repo.run("prune")
    assert r.code == 0, r
    assert old not in locks(repo)
    # The test suite's shorter ages: stale after six refreshes.
    plant_lock(repo.path, age_s=STALE_S + 1, exclusive=True)
    r = repo.run("prune", env=FAST_LOCKS)
    assert r.code == 0 and locks(repo) == {}, r
    # A lock of this host whose process is gone is stale at any age.
    name = os.urandom(16).hex()
    dead = subprocess.Popen(["true"])
    dead.wait()
    with open(os.path.join(repo.path, "locks", name), "w") as f:
        json.dump({"host": socket.gethostname(), "pid": dead.pid,
                   "time_us": int(time.time() * 1e6), "exclusive": True}, f)
    r = repo.run("prune")
    assert r.code == 0 and locks(repo) == {}, r


def test_prune_while_backup_is_stopped(repo, tmp_path):
    """The issue's case: a running backup's lock is live, so forget and
    prune leave its packs alone; resumed, it completes."""
    old = tmp_path / "old"
    old.mkdir()
    (old / "gone.bin").write_bytes(os.urandom(3 << 20))
    repo.backup(str(old))
    src = big_tree(tmp_path / "src")
    before = set(packs(repo))
    p = start(repo, "backup", "--json", str(src), env=FAST_LOCKS)
    try:
        assert stop_when_packs(p, repo, before), "the backup ended before it could be stopped"
        # Held longer than a refresh, shorter than the stale age.
        time.sleep(REFRESH_MS / 1000)
        fresh = set(packs(repo)) - before
        r = repo.run("forget", "--keep-last", "1", "--prune", env=FAST_LOCKS)
        assert r.code == 1 and "locked" in r.err, r
        r = repo.run("prune", env=FAST_LOCKS)
        assert r.code == 1 and "locked" in r.err, r
        assert fresh <= set(packs(repo)), "prune deleted a running backup's packs"
        p.send_signal(signal.SIGCONT)
        out, err = p.communicate(timeout=120)
    finally:
        if p.poll() is None:
            p.send_signal(signal.SIGCONT)
            p.kill()
    assert p.returncode == 0, err
    snaps = repo.snapshots()
    assert len(snaps) == 2
    repo.check("--read-data")
    repo.restore(snaps[-1]["id"], str(tmp_path / "out"))
    assert tree_state(tmp_path / "out" / os.path.relpath(src, "/")) == tree_state(src)
    # Now nothing runs: forget and prune go through.
    r = repo.run("forget", "--keep-last", "1", "--prune")
    assert r.code == 0, r
    repo.check("--read-data")


def test_backup_stopped_past_the_stale_age_commits_nothing(repo, tmp_path):
    """Stopped past the stale age, the backup's lock is taken for stale and
    prune deletes what no snapshot uses; resumed, the backup finds its lock
    gone and commits no snapshot that would point at deleted packs."""
    old = tmp_path / "old"
    old.mkdir()
    (old / "gone.bin").write_bytes(os.urandom(3 << 20))
    repo.backup(str(old))
    src = big_tree(tmp_path / "src")
    before = set(packs(repo))
    p = start(repo, "backup", "--json", str(src), env=FAST_LOCKS)
    try:
        assert stop_when_packs(p, repo, before), "the backup ended before it could be stopped"
        time.sleep(STALE_S + 1)
        r = repo.run("forget", "--keep-last", "1", "--prune", env=FAST_LOCKS)
        assert r.code == 0, r
        assert not (set(packs(repo)) - before), "prune kept a stale backup's packs"
        p.send_signal(signal.SIGCONT)
        out, err = p.communicate(timeout=120)
    finally:
        if p.poll() is None:
            p.send_signal(signal.SIGCONT)
            p.kill()
    assert p.returncode == 1 and "removed as stale" in err, err
    assert len(repo.snapshots()) == 1
    assert locks(repo) == {}
    repo.check("--read-data")
    # The next backup stores it all again.
    repo.backup(str(src))
    snaps = repo.snapshots()
    repo.check("--read-data")
    repo.restore(snaps[-1]["id"], str(tmp_path / "out"))
    assert tree_state(tmp_path / "out" / os.path.relpath(src, "/")) == tree_state(src)


def test_prune_spares_new_packs_while_another_lock_is_live(bcdr, rclone, fault_proxy, tmp_path):
    """A lock that appears while prune runs (a backup whose stale lock came
    back): the packs no index names stay until it is gone."""
    proxy = fault_proxy(rclone.port)
    url = f"rest:http://127.0.0.1:{proxy.port}/r"
    repo = Repo(bcdr, url, tmp_path)
    repo.init()
    src = tmp_path / "src"
    src.mkdir()
    (src / "a").write_bytes(os.urandom(100000))
    repo.backup(str(src))
    root = os.path.join(rclone.root, "r")
    os.makedirs(os.path.join(root, "data", "ab"), exist_ok=True)
    fresh = os.path.join(root, "data", "ab", "ab" + os.urandom(31).hex())
    with open(fresh, "wb") as f:
        f.write(os.urandom(5000))
    # Hold prune once it has its lock and lists the index files.
    proxy.set(mode="hold", match="GET /r/index/")
    e = dict(os.environ, **repo.env)
    p = subprocess.Popen([BCDR, "prune", "--json", "--repo", url], env=e,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proxy.held.wait(60), "prune never listed the index"
        lock = plant_lock(root)
        proxy.release()
        out, err = p.communicate(timeout=60)
    finally:
        proxy.release()
        if p.poll() is None:
            p.kill()
    assert p.returncode == 0, err
    assert json.loads(out)["packs_spared"] == 1, out
    assert os.path.exists(fresh)
    # Once the other lock is gone, prune removes what no index names.
    os.unlink(os.path.join(root, "locks", lock))
    proxy.set()
    r = repo.run("prune", "--json")
    assert r.code == 0 and r.json()["packs_spared"] == 0, r
    assert not os.path.exists(fresh)
