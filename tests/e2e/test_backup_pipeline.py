"""The backup pipeline's hand-overs, each with real files: the walker
thread that runs while the repository opens, packs handed to the writer
thread, and the restore's per-directory batches."""
import os
import random

from backup_helpers import PASSWORD, Repo, make_tree, repo, tree_state  # noqa: F401


def wide_tree(root, dirs=12, per_dir=300, seed=7):
    """Many small files in a few directories (more than one restore batch
    each), nested so that a directory's files are split by a subdirectory,
    and some files with holes between data."""
    rnd = random.Random(seed)
    for d in range(dirs):
        base = root / f"d{d:02}"
        (base / "inner").mkdir(parents=True, exist_ok=True)
        for i in range(per_dir):
            where = base if i % 3 else base / "inner"
            (where / f"f{i:04}.c").write_bytes(rnd.randbytes(rnd.choice([0, 10, 700, 4000])))
    with open(root / "holes", "wb") as f:
        for k in range(4):
            f.seek(k * (1 << 20))
            f.write(rnd.randbytes(100_000))
    os.chmod(root / "d00" / "f0001.c", 0o600)
    return root


def test_many_packs_and_files_roundtrip(repo, tmp_path):
    src = tmp_path / "src"
    wide_tree(src)
    # Incompressible data for several 16 MiB packs per worker: full packs
    # go to the writer thread while the workers go on.
    rnd = random.Random(3)
    for i in range(6):
        (src / f"big{i}.bin").write_bytes(rnd.randbytes(9 << 20))
    summary = repo.backup(str(src))
    assert summary["files_new"] == 12 * 300 + 7 and summary["errors"] == 0, summary
    assert summary["bytes_stored"] > 50 << 20, summary
    packs = [f for _, _, fs in os.walk(os.path.join(repo.path, "data")) for f in fs]
    assert len(packs) >= 4, packs
    repo.check("--read-data")
    out = tmp_path / "out"
    repo.restore("latest", str(out), "--verify")
    restored = out / str(src).lstrip("/")
    assert tree_state(restored) == tree_state(src)
    # Holes between data stay holes.
    st = os.stat(restored / "holes")
    assert st.st_blocks * 512 < 1 << 20, st


def test_unchanged_tree_adds_nothing_and_keeps_every_node(repo, tmp_path):
    src = make_tree(tmp_path / "src")
    wide_tree(src / "wide", dirs=3, per_dir=200)
    first = repo.backup(str(src))
    second = repo.backup(str(src))
    assert second["files_unchanged"] == first["files_new"], second
    assert second["files_new"] == 0 and second["files_changed"] == 0, second
    # No file data is read again: at most the node stream is new (the
    # directories above the path, /tmp among them, change under other work).
    assert second["bytes_added"] < second["bytes_processed"] // 100, second
    snaps = repo.snapshots()
    diff = repo.run("diff", snaps[0]["id"], snaps[1]["id"])
    assert diff.code == 0 and "0 added, 0 removed, 0 modified" in diff.out, diff
    # One file changes, one appears: only they are read.
    (src / "wide" / "d01" / "f0002.c").write_bytes(b"changed")
    (src / "wide" / "d02" / "new.c").write_bytes(b"new")
    third = repo.backup(str(src))
    assert third["files_changed"] == 1 and third["files_new"] == 1, third
    out = tmp_path / "out"
    repo.restore("latest", str(out))
    assert tree_state(out / str(src).lstrip("/")) == tree_state(src)


def test_wrong_password_while_walking_leaves_nothing(repo, tmp_path):
    # The walk starts before the key is tried: a wrong password must stop
    # it and leave the repository as it was.
    src = wide_tree(tmp_path / "src", dirs=4, per_dir=100)
    r = repo.run("backup", str(src), env={"BCDR_PASSWORD": PASSWORD + "x"})
    assert r.code == 1 and "wrong password" in r.err, r
    assert repo.snapshots() == []
    assert os.listdir(os.path.join(repo.path, "locks")) == []


def test_owners_come_back_even_in_a_set_group_id_target(repo, tmp_path):
    # A file the restore creates is skipped by fchown() when it is ours
    # already; a set-group-ID target would give it another group.
    if os.geteuid() != 0:
        import pytest
        pytest.skip("needs root to own files as others")
    src = wide_tree(tmp_path / "src", dirs=2, per_dir=20)
    os.chown(src / "d00" / "f0001.c", 1234, 1235)
    os.chown(src / "d01", 1234, 0)
    repo.backup(str(src))
    for name, setgid in (("plain", False), ("sgid", True)):
        target = tmp_path / name
        target.mkdir()
        if setgid:
            os.chown(target, 0, 4321)
            os.chmod(target, 0o2775)
        repo.restore("latest", str(target))
        assert tree_state(target / str(src).lstrip("/")) == tree_state(src), name


def test_more_directories_than_descriptors(repo, tmp_path):
    """With 64 descriptors the walker keeps at most 16 directories open for
    the workers: the rest of the files are opened by path, and every file
    of 300 directories still comes back."""
    import resource
    import subprocess

    from backup_helpers import FAST_KDF
    from conftest import BCDR

    src = tmp_path / "src"
    rnd = random.Random(3)
    for d in range(300):
        (src / f"d{d:03}" / "sub").mkdir(parents=True)
        for i in range(4):
            (src / f"d{d:03}" / ("sub" if i == 3 else "") / f"f{i}").write_bytes(
                rnd.randbytes(rnd.choice([10, 3000])))
    os.setxattr(src / "d150" / "f1", "user.note", b"kept")
    env = dict(os.environ, BCDR_PASSWORD=PASSWORD, BCDR_SCRYPT_N=FAST_KDF)
    r = subprocess.run([BCDR, "backup", "-q", str(src), "--repo", repo.path], env=env,
                       preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64)),
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    target = tmp_path / "out"
    repo.restore("latest", str(target))
    assert tree_state(target / str(src).lstrip("/")) == tree_state(src)
