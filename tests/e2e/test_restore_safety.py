"""Restore stays in its target, whatever the repository or the target holds.

Hostile snapshots are written with the project's own encoder
(tests/tools/craft-snapshot.c: tree_encode, the chunker, packs, index);
after each restore the directories around the target are listed again and
must not have changed. Each case runs with openat2 and with the fallback
walk of O_NOFOLLOW opens (BCDR_TEST_NO_OPENAT2)."""
import hashlib
import json
import os
import stat
import subprocess
from pathlib import Path

import pytest

from backup_helpers import PASSWORD, Repo, repo  # noqa: F401 (fixture)
from conftest import BCDR

CRAFT = Path(BCDR).parent / "tests" / "tools" / "craft-snapshot"
CONTENT = b"restored content\n" * 100


def listing(root, skip=()):
    """Every entry under root (not following symlinks): type, mode, size,
    mtime and content or link target; skip: paths left out (with what is
    under them)."""
    out = {}
    root = Path(root)
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames[:] = [d for d in dirnames if Path(dirpath, d) not in skip]
        for name in dirnames + filenames:
            p = Path(dirpath, name)
            if p in skip:
                continue
            st = os.lstat(p)
            what = (stat.S_IFMT(st.st_mode), st.st_mode & 0o7777, st.st_size, st.st_mtime_ns)
            if stat.S_ISLNK(st.st_mode):
                what += (os.readlink(p),)
            elif stat.S_ISREG(st.st_mode):
                what += (hashlib.sha256(p.read_bytes()).hexdigest(),)
            out[str(p.relative_to(root))] = what
    st = os.lstat(root)
    out["."] = (st.st_mode, st.st_mtime_ns)
    return out


class World:
    """tmp/world/target is the target; tmp/world/outside, tmp/world and tmp
    itself (and tmp's parent, shallowly) are what no restore may touch."""

    def __init__(self, tmp, repo):
        self.tmp = tmp
        self.repo = repo
        self.world = tmp / "world"
        self.outside = self.world / "outside"
        self.target = self.world / "target"
        (self.outside / "cron.d").mkdir(parents=True)
        self.target.mkdir()
        (self.outside / "victim").write_bytes(b"precious\n")
        (self.outside / "cron.d" / "keep").write_bytes(b"keep\n")
        src = tmp / "src"
        src.mkdir()
        (src / "f").write_bytes(CONTENT)
        repo.backup(str(src))
        self.base_file = str(src / "f")[1:]  # its node's path in the base snapshot

    def around(self):
        skip = {self.target, self.tmp / "repo", self.tmp / "spec.json"}
        shallow = sorted(p.name for p in self.tmp.parent.iterdir())
        return listing(self.tmp, skip), shallow

    def craft(self, nodes):
        spec = self.tmp / "spec.json"
        spec.write_text(json.dumps({"base": "latest", "nodes": nodes}))
        env = dict(os.environ, BCDR_PASSWORD=PASSWORD)
        r = subprocess.run([str(CRAFT), self.repo.path, str(spec)], capture_output=True,
                           text=True, env=env, timeout=120)
        assert r.returncode == 0, r.stderr
        return r.stdout.strip()

    def file(self, path):
        return {"type": "file", "path": path, "from": self.base_file}


@pytest.fixture
def world(tmp_path, repo):  # noqa: F811
    assert CRAFT.exists(), f"{CRAFT} is not built (meson -Dtests=enabled)"
    return World(tmp_path, repo)


@pytest.fixture(params=["openat2", "walk"])
def resolve_env(request):
    return {"BCDR_TEST_NO_OPENAT2": "1"} if request.param == "walk" else {}


def restore(world, snap, env, expect):
    before = world.around()
    r = world.repo.run("restore", snap, "--target", str(world.target), env=env)
    after = world.around()
    changed = sorted(k for k in set(before[0]) | set(after[0])
                     if before[0].get(k) != after[0].get(k))
    assert after == before, f"a restore changed something outside its target: {changed} {r}"
    assert r.code == expect, r
    return r


def hostile_cases(w):
    """name -> (nodes, the nodes that must be refused, what must be restored)."""
    out = w.outside
    return {
        "dotdot-file": ([{"type": "dir", "path": "d"}, w.file("../outside/x"),
                         w.file("d/../../escape"), w.file("../../../escape2"),
                         w.file("d/ok")],
                        ["../outside/x", "d/../../escape", "../../../escape2"], ["d/ok"]),
        "dotdot-dir": ([{"type": "dir", "path": "../newdir"},
                        {"type": "dir", "path": "../outside/cron.d"},
                        {"type": "file", "path": "../outside/cron.d/job", "from": w.base_file},
                        w.file("ok")],
                       ["../newdir", "../outside/cron.d", "../outside/cron.d/job"], ["ok"]),
        "dotdot-symlink-unlinks": ([{"type": "symlink", "path": "../outside/victim",
                                     "link": "gotcha"},
                                    {"type": "fifo", "path": "../outside/cron.d/keep"},
                                    w.file("ok")],
                                   ["../outside/victim", "../outside/cron.d/keep"], ["ok"]),
        "write-through-symlink": ([{"type": "symlink", "path": "a", "link": str(out)},
                                   w.file("a/x"),
                                   {"type": "dir", "path": "a/cron.d"},
                                   {"type": "symlink", "path": "r", "link": "../outside"},
                                   w.file("r/victim"),
                                   w.file("ok")],
                                  ["a/x", "a/cron.d", "r/victim"], ["ok", "a", "r"]),
        "hardlink-targets": ([w.file("ok"),
                              {"type": "hardlink", "path": "h1", "link": "../outside/victim"},
                              {"type": "hardlink", "path": "h2",
                               "link": str(out / "victim")},
                              {"type": "hardlink", "path": "h3",
                               "link": "ok/../../outside/victim"},
                              {"type": "hardlink", "path": "h4", "link": "ok"}],
                             ["h1", "h2", "h3"], ["ok", "h4"]),
        "absolute": ([w.file(str(out / "abs")), {"type": "dir", "path": "/"},
                      {"type": "symlink", "path": str(out / "victim"), "link": "x"},
                      w.file("ok")],
                     [str(out / "abs"), "/", str(out / "victim")], ["ok"]),
        "empty-and-dot": ([{"type": "dir", "path": "d"}, w.file("d//e"), w.file("./f"),
                           {"type": "dir", "path": "d/."}, w.file(""), w.file("d/"),
                           w.file("d/ok")],
                          ["d//e", "./f", "d/.", "", "d/"], ["d/ok"]),
        "order": ([w.file("late/x"), {"type": "dir", "path": "late"}, w.file("f"),
                   w.file("f/x"), {"type": "dir", "path": "f"}, w.file("late/ok")],
                  ["late/x", "f/x", "f"], ["late", "late/ok", "f"]),
    }


CASES = ["dotdot-file", "dotdot-dir", "dotdot-symlink-unlinks", "write-through-symlink",
         "hardlink-targets", "absolute", "empty-and-dot", "order"]


@pytest.mark.parametrize("case", CASES)
def test_hostile_snapshot_stays_in_target(world, resolve_env, case):
    nodes, refused, restored = hostile_cases(world)[case]
    snap = world.craft(nodes)
    r = restore(world, snap, resolve_env, expect=3)
    for path in refused:
        assert f"'{path}': skipped, invalid node" in r.err, (path, r.err)
    for path in restored:
        p = world.target / path
        assert os.path.lexists(p), (path, r.err)
        if path in ("ok", "d/ok", "late/ok"):
            assert p.read_bytes() == CONTENT
    assert (world.outside / "victim").read_bytes() == b"precious\n"
    # check names the same nodes as damage.
    c = world.repo.run("check")
    assert c.code != 0, c
    for path in refused:
        assert f"invalid node '{path}'" in c.out + c.err, (path, c)


def test_symlinks_in_the_snapshot_are_made_last_and_not_followed(world, resolve_env):
    """A valid snapshot whose symlinks point out of the target: the links are
    restored as links, nothing is written through them."""
    snap = world.craft([{"type": "dir", "path": "d"},
                        {"type": "symlink", "path": "d/out", "link": str(world.outside)},
                        {"type": "symlink", "path": "d/victim",
                         "link": str(world.outside / "victim")},
                        world.file("d/f"),
                        {"type": "hardlink", "path": "d/g", "link": "d/f"},
                        {"type": "fifo", "path": "d/p"}])
    restore(world, snap, resolve_env, expect=0)
    t = world.target / "d"
    assert os.readlink(t / "out") == str(world.outside)
    assert os.readlink(t / "victim") == str(world.outside / "victim")
    assert (t / "f").read_bytes() == CONTENT
    assert os.stat(t / "g").st_ino == os.stat(t / "f").st_ino
    assert stat.S_ISFIFO(os.lstat(t / "p").st_mode)
    assert world.repo.run("check").code == 0


def test_planted_symlinks_in_a_non_empty_target(world, resolve_env):
    """An honest snapshot into a target someone else prepared: symlinks where
    a directory or a file goes, and a hard link to a file outside, are
    replaced, never followed or written through."""
    snap = world.craft([{"type": "dir", "path": "d"}, world.file("d/f"),
                        {"type": "dir", "path": "e"}, world.file("e/f"),
                        world.file("e/g"), {"type": "dir", "path": "e/sub"},
                        world.file("e/sub/h"), {"type": "symlink", "path": "e/l",
                                                   "link": "f"},
                        {"type": "dir", "path": "x", "mode": 0o40750}])
    t = world.target
    (t / "e").mkdir()
    (t / "keep-me").write_bytes(b"mine\n")
    os.symlink(world.outside, t / "d")                 # a directory's place
    os.symlink(world.outside / "victim", t / "e" / "f")  # a file's place
    os.link(world.outside / "victim", t / "e" / "g")   # written through, it is the victim
    os.symlink(world.outside / "cron.d", t / "e" / "sub")
    os.symlink(world.outside, t / "e" / "l")
    os.symlink(world.outside, t / "x")                 # its mode would go to outside
    restore(world, snap, resolve_env, expect=0)
    assert (t / "keep-me").read_bytes() == b"mine\n"
    for d in ("d", "e/sub", "x"):
        assert stat.S_ISDIR(os.lstat(t / d).st_mode), d
    for f in ("d/f", "e/f", "e/g", "e/sub/h"):
        st = os.lstat(t / f)
        assert stat.S_ISREG(st.st_mode) and st.st_nlink == 1, f
        assert (t / f).read_bytes() == CONTENT
    assert os.readlink(t / "e" / "l") == "f"
    assert stat.S_IMODE(os.lstat(t / "x").st_mode) == 0o750
    assert sorted(p.name for p in world.outside.iterdir()) == ["cron.d", "victim"]


def test_copy_refuses_a_snapshot_with_refused_nodes(world):
    """A copy of a snapshot the tree reader refused nodes of would look
    whole in the destination: copy refuses it and saves nothing there."""
    nodes, _, _ = hostile_cases(world)["dotdot-file"]
    snap = world.craft(nodes)
    dst = Repo(world.repo.bcdr, str(world.tmp / "dst"), world.tmp)
    dst.init()
    r = world.repo.run("copy", snap, "--to-repo", dst.path, env={"BCDR_TO_PASSWORD": PASSWORD})
    assert r.code != 0 and "corrupt" in r.err, r
    assert dst.snapshots() == []


def test_ls_says_it_left_out_refused_nodes(world):
    """ls lists what a restore would make and says how many nodes it left
    out as damage (exit 3), in text and JSON."""
    nodes, refused, _ = hostile_cases(world)["dotdot-file"]
    snap = world.craft(nodes)
    for args in ([], ["--json"]):
        r = world.repo.run("ls", *args, snap)
        assert r.code == 3, r
        assert f"{len(refused)} invalid nodes in snapshot" in r.err, r
        assert "d/ok" in r.out and "escape" not in r.out, r
