"""Faults: kill -9 at random moments during backup, forget and prune; a
full disk. Afterwards every snapshot committed before restores
bit-identical and check finds no damage."""
import json
import os
import random
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from backup_helpers import FAST_KDF, PASSWORD, Repo, repo, tree_state  # noqa: F401
from conftest import BCDR, SANITIZED


def mutate(src, rnd, first=False):
    """Changes a few files (or creates the tree): a few MB in ~150 files."""
    if first:
        for d in range(5):
            (src / f"d{d}").mkdir(parents=True)
        for i in range(150):
            (src / f"d{i % 5}" / f"f{i}").write_bytes(rnd.randbytes(rnd.choice([100, 4000, 40000])))
        (src / "big").write_bytes(rnd.randbytes(3 << 20))
        return
    for _ in range(rnd.randint(1, 10)):
        i = rnd.randrange(150)
        (src / f"d{i % 5}" / f"f{i}").write_bytes(rnd.randbytes(rnd.choice([10, 5000, 60000])))
    if rnd.random() < 0.5:
        data = bytearray((src / "big").read_bytes())
        pos = rnd.randrange(len(data))
        data[pos:pos + 1000] = rnd.randbytes(1000)
        (src / "big").write_bytes(bytes(data))


def start(repo, args):
    env = dict(os.environ, BCDR_PASSWORD=PASSWORD, BCDR_SCRYPT_N=FAST_KDF)
    return subprocess.Popen([BCDR, *args, "--repo", repo.path], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def restore_equal(repo, snap_id, expected, tmp):
    out = Path(tempfile.mkdtemp(dir=tmp))
    r = repo.run("restore", snap_id, "--target", str(out))
    assert r.code == 0, r
    got = tree_state(out / expected[0].lstrip("/"))
    shutil.rmtree(out)
    assert got == expected[1], snap_id


def kill_mid_run(p, rnd, durations, kind):
    """Kills p at a random moment of its expected run; True if it was killed
    before it ended. A run that ends first teaches how long such runs take."""
    began = time.monotonic()
    at = began + rnd.uniform(0.1, 0.9) * durations[kind]
    while time.monotonic() < at:
        if p.poll() is not None:
            durations[kind] = max(time.monotonic() - began, 0.005)
            return False
        time.sleep(0.002)
    p.kill()
    return p.wait() == -9


def test_kill_9_at_random_moments(repo, tmp_path):
    rnd = random.Random(int(os.environ.get("BCDR_FAULT_SEED", "7")))
    src = tmp_path / "src"
    mutate(src, rnd, first=True)
    known = {}  # snapshot ID -> (source path, tree state when it was taken)
    repo.backup(str(src))
    state = tree_state(src)
    for s in repo.snapshots():
        known[s["id"]] = (str(src), state)
    target = 6 if SANITIZED else 20
    killed = {"backup": 0, "forget": 0, "prune": 0}
    # How long a run of each kind takes here, learned from runs that ended
    # before their kill: the kill then lands inside the run on a fast
    # machine as on a slow one.
    durations = {k: 0.6 if not SANITIZED else 1.5 for k in killed}
    i = 0
    # Until 20 runs were killed in the middle (a run may finish first).
    while (sum(killed.values()) < target or not all(killed.values())) and i < 4 * target + 8:
        kind = ["backup", "backup", "forget", "prune"][i % 4]
        if kind == "backup":
            mutate(src, rnd)
            args = ["backup", str(src)]
        elif kind == "forget":
            args = ["forget", "--keep-last", "3", "--prune"]
        else:
            args = ["prune"]
        state = tree_state(src)
        if kill_mid_run(start(repo, args), rnd, durations, kind):
            killed[kind] += 1
        # Whatever was committed is whole; whatever was not leaves no damage.
        for s in repo.snapshots():
            if s["id"] not in known:
                assert kind == "backup", s
                known[s["id"]] = (str(src), state)
        r = repo.run("check")
        assert r.code == 0, (i, kind, r)
        # Let the repository move on: a backup that completes.
        if i % 3 == 2:
            mutate(src, rnd)
            state = tree_state(src)
            repo.backup(str(src))
            for s in repo.snapshots():
                known.setdefault(s["id"], (str(src), state))
        i += 1
    assert sum(killed.values()) >= target and all(killed.values()), killed
    r = repo.run("check", "--read-data")
    assert r.code == 0, r
    present = repo.snapshots()
    assert present
    for s in present:
        restore_equal(repo, s["id"], known[s["id"]], tmp_path)
    # Leftovers are only unreferenced data, and prune removes them.
    assert repo.run("prune").code == 0
    r = repo.run("check", "--read-data")
    assert r.code == 0 and "not in any index" not in r.err, r


def can_mount_tmpfs(path):
    if os.getuid() != 0:
        return "needs root to mount a tmpfs"
    p = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=12m", "tmpfs", str(path)],
                       capture_output=True, text=True)
    if p.returncode != 0:
        return "cannot mount a tmpfs here: " + p.stderr.strip()
    return None


@pytest.mark.parametrize("fstype", ["tmpfs", "ramfs"])
def test_packs_on_file_systems_with_and_without_o_direct(bcdr, tmp_path, fstype):
    """Packs go to a local repository by O_DIRECT; tmpfs takes it, ramfs
    refuses it at open and the packs are written through the page cache:
    both give a repository that checks and restores, no temporary left."""
    if os.getuid() != 0:
        pytest.skip("needs root to mount a " + fstype)
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    p = subprocess.run(["mount", "-t", fstype, fstype, str(mnt)], capture_output=True, text=True)
    if p.returncode != 0:
        pytest.skip(f"cannot mount a {fstype} here: {p.stderr.strip()}")
    try:
        repo = Repo(bcdr, str(mnt / "repo"), tmp_path)
        repo.init()
        src = tmp_path / "src"
        src.mkdir()
        rnd = random.Random(5)
        for i in range(3):  # 2, 3 and 4 MiB + a tail: whole blocks and not
            (src / f"f{i}").write_bytes(rnd.randbytes(((i + 2) << 20) + 1000 * i + 7))
        repo.backup(str(src))
        r = repo.run("check", "--read-data")
        assert r.code == 0, r
        out = tmp_path / "out"
        repo.restore("latest", str(out))
        assert tree_state(out / str(src).lstrip("/")) == tree_state(src)
        left = [n for _, _, files in os.walk(mnt) for n in files if ".tmp." in n]
        assert left == []
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_disk_full_during_backup(bcdr, tmp_path):
    mnt = tmp_path / "small"
    mnt.mkdir()
    why = can_mount_tmpfs(mnt)
    if why:
        pytest.skip(why)
    try:
        repo = Repo(bcdr, str(mnt / "repo"), tmp_path)
        repo.init()
        src = tmp_path / "src"
        src.mkdir()
        (src / "small").write_bytes(os.urandom(2 << 20))
        repo.backup(str(src))
        first = tree_state(src)
        (src / "huge").write_bytes(os.urandom(20 << 20))
        r = repo.run("backup", str(src))
        assert r.code == 1, r
        assert "no space left" in r.err, r
        assert len(repo.snapshots()) == 1
        r = repo.run("check", "--read-data")
        assert r.code == 0, r
        out = tmp_path / "out"
        repo.restore("latest", str(out))
        assert tree_state(out / str(src).lstrip("/")) == first
        # The space of the failed run was given back: a smaller backup fits.
        os.unlink(src / "huge")
        (src / "more").write_bytes(os.urandom(2 << 20))
        repo.backup(str(src))
        repo.check("--read-data")
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def stop_when_open(p, opened):
    """Stop process p (SIGSTOP) as soon as opened(paths of its open fds) is
    true, so that the window the test needs cannot pass while it changes the
    tree; the caller sends SIGCONT."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and p.poll() is None:
        try:
            fds = [os.readlink(f"/proc/{p.pid}/fd/{fd}") for fd in os.listdir(f"/proc/{p.pid}/fd")]
        except OSError:
            fds = []
        if opened(fds):
            os.kill(p.pid, signal.SIGSTOP)
            return
        time.sleep(0.001)
    pytest.fail(f"the backup never opened the files the test waits for (exit {p.poll()})")


def test_files_vanishing_during_backup(repo, tmp_path):
    """Files deleted after the walk listed them and before a worker read
    them: each is reported and skipped, the snapshot records it, exit 3,
    and the rest of the snapshot restores."""
    src = tmp_path / "src"
    src.mkdir()
    # Sorted first, two big files per worker keep every worker busy while
    # the small files wait in the queue behind them.
    workers = min(os.cpu_count() or 1, 16)
    for i in range(2 * workers):
        (src / f"a-big-{i:02}").write_bytes(os.urandom(32 << 20))
    for i in range(20):
        (src / f"z-small-{i:02}").write_text(f"small {i}\n")
    env = dict(os.environ, BCDR_PASSWORD=PASSWORD, BCDR_SCRYPT_N=FAST_KDF)
    p = subprocess.Popen([BCDR, "backup", "--json", str(src), "--repo", repo.path], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # A worker reading a big file: the walk has listed the directory.
    stop_when_open(p, lambda fds: any("/a-big-" in f for f in fds))
    gone = [f"z-small-{i:02}" for i in range(0, 20, 2)]
    for name in gone:
        os.unlink(src / name)
    os.kill(p.pid, signal.SIGCONT)
    out, err = p.communicate(timeout=120)
    assert p.returncode == 3, (out, err)
    for name in gone:
        assert name in err, err
    summary = [x for x in map(json.loads, out.splitlines()) if x.get("type") == "summary"][-1]
    assert summary["errors"] == len(gone), summary
    assert repo.snapshots()[-1]["summary"]["errors"] == len(gone)
    target = tmp_path / "out"
    repo.restore("latest", str(target))
    restored = target / str(src).lstrip("/")
    assert sorted(os.listdir(restored)) == sorted(os.listdir(src))
    assert tree_state(restored) == tree_state(src)
    repo.check("--read-data")


def test_directories_renamed_or_removed_during_backup(repo, tmp_path):
    """The workers open files by name in the directory the walk opened: a
    directory renamed after the walk listed it is still read (under the
    names the walk saw), one emptied and removed gives a skip per file, and
    the backup ends with exit 3 and a snapshot that restores."""
    src = tmp_path / "src"
    src.mkdir()
    workers = min(os.cpu_count() or 1, 16)
    for i in range(2 * workers):
        (src / f"a-big-{i:02}").write_bytes(os.urandom(32 << 20))
    for d in ("gone", "moved"):
        (src / d).mkdir()
        for i in range(10):
            (src / d / f"f{i}").write_text(f"{d} {i}\n")
    env = dict(os.environ, BCDR_PASSWORD=PASSWORD, BCDR_SCRYPT_N=FAST_KDF)
    p = subprocess.Popen([BCDR, "backup", "--json", str(src), "--repo", repo.path], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # The walk has listed both directories while every worker is still on
    # a big file, so none has opened a file of 'gone' yet.
    stop_when_open(p, lambda fds: len({f for f in fds if "/a-big-" in f}) >= workers
                   and any(f.endswith("/moved") for f in fds))
    expected = tree_state(src)
    shutil.rmtree(src / "gone")
    os.rename(src / "moved", src / "elsewhere")
    os.kill(p.pid, signal.SIGCONT)
    out, err = p.communicate(timeout=120)
    assert p.returncode == 3, (out, err)
    summary = [x for x in map(json.loads, out.splitlines()) if x.get("type") == "summary"][-1]
    assert summary["errors"] == 10, (summary, err)
    assert all(f"gone/f{i}" in err for i in range(10)), err
    target = tmp_path / "out"
    repo.restore("latest", str(target))
    restored = target / str(src).lstrip("/")
    assert sorted(os.listdir(restored / "moved")) == [f"f{i}" for i in range(10)]
    for i in range(10):
        assert (restored / "moved" / f"f{i}").read_text() == f"moved {i}\n"
    got = tree_state(restored)
    assert {k: v for k, v in got.items() if not k.startswith(("gone", "moved"))} == \
        {k: v for k, v in expected.items() if not k.startswith(("gone", "moved"))}
    repo.check("--read-data")
