"""Backup and restore as an operator uses them: init, backup, snapshots,
restore, check, on a small tree with every kind of file."""
import json
import os
import stat
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from backup_helpers import FAST_KDF, PASSWORD, Repo, make_tree, repo, tree_state  # noqa: F401


def test_roundtrip_is_identical(repo, tmp_path):
    src = make_tree(tmp_path / "src")
    summary = repo.backup(str(src))
    assert summary["files_new"] >= 20 and summary["errors"] == 0
    target = tmp_path / "out"
    repo.restore("latest", str(target), "--verify")
    restored = target / str(src).lstrip("/")
    assert tree_state(restored) == tree_state(src)
    # The sparse file came back sparse: far fewer blocks than its size.
    st = os.stat(restored / "dir" / "sparse")
    assert st.st_blocks * 512 < 1 << 20, st
    # The hard link is a hard link again.
    assert os.stat(restored / "dir" / "hard").st_ino == os.stat(restored / "dir" / "text.txt").st_ino
    repo.check("--read-data")


def test_unchanged_files_are_not_read_again(repo, tmp_path):
    src = make_tree(tmp_path / "src")
    first = repo.backup(str(src))
    second = repo.backup(str(src))
    assert second["files_new"] == 0 and second["files_changed"] == 0
    assert second["files_unchanged"] == first["files_new"]
    assert second["bytes_added"] < 64 << 10  # only metadata
    (src / "dir" / "f3.txt").write_bytes(b"changed")
    third = repo.backup(str(src))
    assert third["files_changed"] == 1
    snaps = repo.snapshots()
    assert len(snaps) == 3 and snaps[2]["parent"] == snaps[1]["id"]


def test_deduplication_across_paths(repo, tmp_path):
    a = tmp_path / "a"
    a.mkdir()
    data = os.urandom(2 << 20)
    (a / "one").write_bytes(data)
    first = repo.backup(str(a))
    b = tmp_path / "b"
    b.mkdir()
    (b / "copy").write_bytes(data)
    second = repo.backup(str(b))
    assert first["bytes_added"] >= 2 << 20
    assert second["bytes_added"] < 64 << 10


def test_snapshot_by_prefix_and_include(repo, tmp_path):
    src = make_tree(tmp_path / "src")
    repo.backup(str(src))
    snap = repo.snapshots()[0]["id"]
    target = tmp_path / "out"
    inc = str(src / "dir" / "sub")
    repo.restore(snap[:6], str(target), "--include", inc)
    restored = target / str(src).lstrip("/")
    assert (restored / "dir" / "sub" / "big.bin").exists()
    assert not (restored / "dir" / "text.txt").exists()
    r = repo.run("restore", "ffffffffff", "--target", str(target))
    assert r.code == 1 and "no snapshot 'ffffffffff'" in r.err, r


def test_exclude(repo, tmp_path):
    src = make_tree(tmp_path / "src")
    (src / "dir" / "skip.tmp").write_text("x")
    r = repo.run("backup", str(src), "--exclude", "*.tmp", "--exclude", str(src / "dir" / "sub"))
    assert r.code == 0, r
    target = tmp_path / "out"
    repo.restore("latest", str(target))
    restored = target / str(src).lstrip("/")
    assert not (restored / "dir" / "skip.tmp").exists()
    assert not (restored / "dir" / "sub").exists()
    assert (restored / "dir" / "text.txt").exists()


def test_wrong_password(repo, tmp_path):
    r = repo.run("snapshots", env={"BCDR_PASSWORD": "wrong"})
    assert r.code == 1, r
    assert "wrong password" in r.err


def test_password_file_and_env_repository(bcdr, tmp_path):
    pw = tmp_path / "pw"
    pw.write_text("s3cret\n")
    pw.chmod(0o600)
    env = {"BCDR_REPOSITORY": str(tmp_path / "r"), "BCDR_PASSWORD_FILE": str(pw),
           "BCDR_SCRYPT_N": FAST_KDF}
    assert bcdr("init", env=env).code == 0
    (tmp_path / "f").write_text("x")
    assert bcdr("backup", str(tmp_path / "f"), env=env).code == 0
    r = bcdr("snapshots", "--password-file", str(pw), "--json",
             env={"BCDR_REPOSITORY": str(tmp_path / "r")})
    assert r.code == 0 and len(r.json()) == 1, r
    r = bcdr("snapshots", env={"BCDR_REPOSITORY": str(tmp_path / "r")})
    assert r.code == 1 and "no password" in r.err, r


def test_no_password_source(bcdr, tmp_path):
    r = bcdr("init", "--repo", str(tmp_path / "r"))
    assert r.code == 1 and "no password" in r.err, r


def test_init_refuses_non_empty_directory(bcdr, tmp_path):
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "x").write_text("x")
    r = bcdr("init", "--repo", str(tmp_path / "r"), env={"BCDR_PASSWORD": "p", "BCDR_SCRYPT_N": FAST_KDF})
    assert r.code == 1 and "not empty" in r.err, r


def test_newer_format_is_refused(repo):
    cfg = os.path.join(repo.path, "config")
    data = bytearray(open(cfg, "rb").read())
    data[4] = 2
    open(cfg, "wb").write(data)
    r = repo.run("snapshots")
    assert r.code == 1 and "newer format" in r.err, r


def test_missing_repository(bcdr, tmp_path):
    r = bcdr("snapshots", "--repo", str(tmp_path / "nope"), env={"BCDR_PASSWORD": "p", "BCDR_SCRYPT_N": FAST_KDF})
    assert r.code == 1 and "bcdr init" in r.err, r


def test_json_progress_and_summary(repo, tmp_path):
    src = make_tree(tmp_path / "src")
    r = repo.run("backup", "--json", str(src))
    assert r.code == 0, r
    lines = r.json_lines()
    assert lines[-1]["type"] == "summary"
    assert all(x["type"] in ("progress", "summary") for x in lines)


def test_quiet_in_a_pipe(repo, tmp_path):
    src = make_tree(tmp_path / "src")
    r = repo.run("backup", str(src))
    assert r.code == 0 and "\r" not in r.err and "snapshot" in r.out, r


def test_unreadable_files_are_skipped_and_recorded(bcdr, tmp_path):
    # A directory every user can reach: the test may run bcdr as nobody.
    tmp_path = Path(tempfile.mkdtemp(prefix="bcdr-unreadable-", dir="/tmp"))
    try:
        unreadable(tmp_path)
    finally:
        for root, dirs, _ in os.walk(tmp_path):
            for d in dirs:
                os.chmod(os.path.join(root, d), 0o755)
        shutil.rmtree(tmp_path, ignore_errors=True)


def unreadable(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "ok").write_text("fine")
    (src / "secret").write_text("no")
    os.chmod(src / "secret", 0)
    (src / "closed").mkdir()
    (src / "closed" / "x").write_text("x")
    os.chmod(src / "closed", 0)
    os.chmod(tmp_path, 0o755)
    repo_path = tmp_path / "repo"
    env = {"BCDR_PASSWORD": PASSWORD, "BCDR_SCRYPT_N": FAST_KDF}
    cmd = []
    if os.getuid() == 0:
        # root reads everything: run as nobody, who cannot.
        os.chmod(tmp_path, 0o777)
        cmd = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--"]
    from conftest import BCDR
    base = cmd + [BCDR]
    full_env = dict(os.environ, **env)
    subprocess.run(base + ["init", "--repo", str(repo_path)], env=full_env, check=True,
                   capture_output=True)
    p = subprocess.run(base + ["backup", "--repo", str(repo_path), str(src)], env=full_env,
                       capture_output=True, text=True)
    assert p.returncode == 3, p
    assert "secret" in p.stderr and "closed" in p.stderr
    s = subprocess.run(base + ["snapshots", "--json", "--repo", str(repo_path)], env=full_env,
                       capture_output=True, text=True, check=True)
    assert json.loads(s.stdout)[0]["summary"]["errors"] == 2
    out = tmp_path / "out"
    out.mkdir()
    os.chmod(out, 0o777)
    p = subprocess.run(base + ["restore", "latest", "--repo", str(repo_path), "--target",
                               str(out)], env=full_env, capture_output=True, text=True)
    assert p.returncode == 0, p
    assert (out / str(src).lstrip("/") / "ok").read_text() == "fine"
    os.chmod(src / "closed", 0o755)


def test_help_of_each_command(bcdr):
    for cmd in ("init", "backup", "snapshots", "restore", "check"):
        r = bcdr(cmd, "--help")
        assert r.code == 0 and r.out.startswith(f"usage: bcdr {cmd}"), r
