"""forget, prune, copy, ls, diff, stats, key passwd: the rest of the
repository's life."""
import json
import os
import subprocess
from pathlib import Path

from backup_helpers import FAST_KDF, PASSWORD, Repo, make_tree, repo, tree_state  # noqa: F401
from conftest import BCDR


def du(path):
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(path) for f in fs)


def test_forget_keep_last_and_prune_frees_space(repo, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for i in range(4):
        (src / "data.bin").write_bytes(os.urandom(1 << 20))
        repo.backup(str(src))
    before = du(repo.path)
    r = repo.run("forget", "--keep-last", "2", "--json")
    assert r.code == 0, r
    kinds = [x["type"] for x in r.json_lines()]
    assert kinds.count("remove") == 2 and kinds.count("keep") == 2
    assert len(repo.snapshots()) == 2
    r = repo.run("prune")
    assert r.code == 0, r
    after = du(repo.path)
    assert after < before - (3 << 19), (before, after)
    repo.check("--read-data")
    out = tmp_path / "out"
    repo.restore("latest", str(out))
    assert tree_state(out / str(src).lstrip("/")) == tree_state(src)


def test_forget_by_id_with_prune_and_dry_run(repo, tmp_path):
    a = make_tree(tmp_path / "a", seed=1, files=4)
    b = make_tree(tmp_path / "b", seed=2, files=4)
    repo.backup(str(a))
    repo.backup(str(b))
    first = repo.snapshots()[0]["id"]
    r = repo.run("forget", first[:8], "--dry-run")
    assert r.code == 0 and len(repo.snapshots()) == 2, r
    r = repo.run("forget", first[:8], "--prune")
    assert r.code == 0 and "removed" in r.out, r
    assert len(repo.snapshots()) == 1
    repo.check("--read-data")
    out = tmp_path / "out"
    repo.restore("latest", str(out))
    assert tree_state(out / str(b).lstrip("/")) == tree_state(b)


def test_forget_needs_a_policy(repo):
    r = repo.run("forget")
    assert r.code == 2 and "keep" in r.err, r


def test_prune_removes_leftovers_of_interrupted_runs(repo, tmp_path):
    src = make_tree(tmp_path / "src", files=3)
    repo.backup(str(src))
    # A pack no index lists, as a backup killed before its index leaves.
    junk = os.path.join(repo.path, "data", "ab", "ab" + "0" * 62)
    os.makedirs(os.path.dirname(junk), exist_ok=True)
    open(junk, "wb").write(os.urandom(1000))
    r = repo.run("check")
    assert r.code == 0 and "not in any index" in r.err, r
    assert repo.run("prune").code == 0
    assert not os.path.exists(junk)
    repo.check("--read-data")


def test_copy_to_a_second_repository(repo, bcdr, tmp_path):
    src = make_tree(tmp_path / "src", files=6)
    repo.backup(str(src))
    second = Repo(bcdr, str(tmp_path / "second"), tmp_path)
    second.env = {"BCDR_PASSWORD": "another password", "BCDR_SCRYPT_N": FAST_KDF}
    second.init()
    env = {"BCDR_TO_PASSWORD": "another password"}
    r = repo.run("copy", "latest", "--to-repo", second.path, env=env)
    assert r.code == 0 and "copied" in r.out, r
    r = repo.run("copy", "latest", "--to-repo", second.path, env=env)
    assert r.code == 0 and "already" in r.out, r
    out = tmp_path / "out"
    second.restore("latest", str(out), "--verify")
    assert tree_state(out / str(src).lstrip("/")) == tree_state(src)
    second.check("--read-data")
    # Different keys: the same data has different chunk IDs and files.
    assert set(os.listdir(os.path.join(repo.path, "snapshots"))).isdisjoint(
        os.listdir(os.path.join(second.path, "snapshots")))


def test_ls_and_diff(repo, tmp_path):
    src = make_tree(tmp_path / "src", files=3)
    repo.backup(str(src))
    (src / "dir" / "new.txt").write_text("new")
    os.unlink(src / "dir" / "f0.txt")
    (src / "dir" / "f1.txt").write_bytes(b"different")
    repo.backup(str(src))
    r = repo.run("ls", "latest", str(src / "dir"))
    assert r.code == 0 and "/dir/new.txt" in r.out and "-> text.txt" in r.out, r
    r = repo.run("ls", "latest", "--json")
    paths = {e["path"] for e in r.json()}
    assert str(src / "dir" / "sub" / "big.bin").lstrip("/") in paths
    snaps = repo.snapshots()
    r = repo.run("diff", snaps[0]["id"][:8], snaps[1]["id"][:8])
    assert r.code == 0, r
    assert "+  /" + str(src / "dir" / "new.txt").lstrip("/") in r.out
    assert "-  /" + str(src / "dir" / "f0.txt").lstrip("/") in r.out
    assert "M  /" + str(src / "dir" / "f1.txt").lstrip("/") in r.out
    assert "1 added, 1 removed, 1 modified" in r.out


def test_diff_of_a_stream_out_of_walk_order(repo, tmp_path):
    """diff walks two streams side by side when both are in walk order; one
    that is not (an older bcdr with several backup paths wrote such) is
    matched by path in memory instead, with the same answer."""
    craft = Path(BCDR).parent / "tests" / "tools" / "craft-snapshot"

    def snap(nodes):
        spec = tmp_path / "spec.json"
        spec.write_text(json.dumps({"nodes": nodes}))
        r = subprocess.run([str(craft), repo.path, str(spec)], capture_output=True, text=True,
                           env=dict(os.environ, BCDR_PASSWORD=PASSWORD), timeout=120)
        assert r.returncode == 0, r.stderr
        return r.stdout.strip()

    ordered = snap([{"type": "dir", "path": "a"}, {"type": "file", "path": "a/x"},
                    {"type": "file", "path": "b"}])
    unordered = snap([{"type": "file", "path": "b"}, {"type": "dir", "path": "a"},
                      {"type": "file", "path": "a/x"}, {"type": "file", "path": "c"}])
    # the files' mtimes differ between the two (each crafted "now"): U
    for x, y, mark in ((ordered, unordered, "+"), (unordered, ordered, "-")):
        r = repo.run("diff", x, y)
        assert r.code == 0, r
        lines = sorted(ln for ln in r.out.splitlines() if ln and ln[0] in "+-MTU")
        assert lines == [f"{mark}  /c", "U  /a/x", "U  /b"], r
    r = repo.run("diff", ordered, ordered, "--json")
    assert r.code == 0 and r.json() == [], r


def test_stats(repo, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    data = os.urandom(1 << 20)
    (src / "a").write_bytes(data)
    (src / "b").write_bytes(data)
    repo.backup(str(src))
    r = repo.run("stats", "--json")
    assert r.code == 0, r
    s = r.json()
    assert s["snapshots"] == 1 and s["files"] == 2
    assert s["restore_size"] == 2 << 20
    assert s["unique_size"] < (1 << 20) + (64 << 10)


def test_key_passwd(repo, tmp_path):
    src = make_tree(tmp_path / "src", files=2)
    repo.backup(str(src))
    r = repo.run("key", "passwd", env={"BCDR_NEW_PASSWORD": "new one"})
    assert r.code == 0 and "password changed" in r.out, r
    r = repo.run("snapshots")
    assert r.code == 1 and "wrong password" in r.err, r
    r = repo.run("snapshots", env={"BCDR_PASSWORD": "new one"})
    assert r.code == 0 and "1 snapshot" in r.out, r


def test_prune_writes_the_index_in_bounded_files(repo, tmp_path):
    """prune's new index goes into files of at most 32,768 blobs, as a
    backup's do: none is held whole (at 5 million blobs one file was 225 MB,
    three copies of it in prune's memory) nor too big to read back."""
    src = tmp_path / "src"
    for d in range(40):
        (src / f"d{d:02d}").mkdir(parents=True)
        for f in range(1000):
            (src / f"d{d:02d}" / f"f{f}").write_bytes(b"%d.%d\n" % (d, f))
    repo.backup(str(src))
    for d in range(4):  # some blobs unused after the forget, 36,000 used
        for f in range(1000):
            os.unlink(src / f"d{d:02d}" / f"f{f}")
    repo.backup(str(src))
    first = repo.snapshots()[0]["id"]
    r = repo.run("forget", first, "--prune")
    assert r.code == 0, r
    index = Path(repo.path) / "index"
    sizes = [p.stat().st_size for p in index.iterdir()]
    assert len(sizes) >= 2, sizes  # more than 32,768 blobs stay
    assert max(sizes) < 45 * 32768 + 4096, sizes
    repo.check()  # and the repository reads and checks out with them
