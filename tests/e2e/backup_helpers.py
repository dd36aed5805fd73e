"""Helpers for the backup e2e tests: a repository fixture and tree comparison."""
import hashlib
import os
import stat

import pytest

PASSWORD = "correct horse battery staple"
# Cheap keys for tests (the default costs ~0.1 s of CPU per command).
FAST_KDF = "1024"


class Repo:
    def __init__(self, bcdr, path, tmp):
        self.bcdr = bcdr
        self.path = path
        self.tmp = tmp
        self.env = {"BCDR_PASSWORD": PASSWORD, "BCDR_SCRYPT_N": FAST_KDF}

    def run(self, *args, env=None, **kw):
        e = dict(self.env)
        if env:
            e.update(env)
        return self.bcdr(*args, "--repo", self.path, env=e, **kw)

    def init(self):
        r = self.run("init")
        assert r.code == 0, r
        return r

    def backup(self, *paths, expect=0):
        r = self.run("backup", "--json", *paths)
        assert r.code == expect, r
        return [x for x in r.json_lines() if x.get("type") == "summary"][-1]

    def snapshots(self):
        r = self.run("snapshots", "--json")
        assert r.code == 0, r
        return r.json()

    def restore(self, snap, target, *extra, expect=0):
        r = self.run("restore", snap, "--target", target, *extra)
        assert r.code == expect, r
        return r

    def check(self, *extra, expect=0):
        r = self.run("check", *extra)
        assert r.code == expect, r
        return r


@pytest.fixture
def repo(bcdr, tmp_path):
    r = Repo(bcdr, str(tmp_path / "repo"), tmp_path)
    r.init()
    return r


def tree_state(root):
    """Everything a restore must bring back, per relative path."""
    state = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            rel = os.path.relpath(p, root)
            st = os.lstat(p)
            entry = {"mode": st.st_mode, "uid": st.st_uid, "gid": st.st_gid}
            if stat.S_ISREG(st.st_mode):
                with open(p, "rb") as f:
                    entry["sha"] = hashlib.sha256(f.read()).hexdigest()
                entry["size"] = st.st_size
                entry["mtime"] = st.st_mtime_ns
                entry["nlink"] = st.st_nlink
            elif stat.S_ISLNK(st.st_mode):
                entry["link"] = os.readlink(p)
            elif stat.S_ISDIR(st.st_mode):
                entry["mtime"] = st.st_mtime_ns
            try:
                entry["xattrs"] = {k: os.getxattr(p, k, follow_symlinks=False)
                                   for k in os.listxattr(p, follow_symlinks=False)}
            except OSError:
                pass
            state[rel] = entry
    return state


def make_tree(root, seed=1, files=20):
    """A small tree with every kind of file the engine handles."""
    import random
    rnd = random.Random(seed)
    os.makedirs(root / "dir" / "sub", exist_ok=True)
    for i in range(files):
        size = rnd.choice([0, 1, 100, 5000, 70000, 300000])
        (root / "dir" / f"f{i}.txt").write_bytes(rnd.randbytes(size))
    (root / "dir" / "sub" / "big.bin").write_bytes(rnd.randbytes(3 << 20))
    (root / "dir" / "text.txt").write_text("hello world\n" * 1000)
    os.symlink("text.txt", root / "dir" / "link")
    os.link(root / "dir" / "text.txt", root / "dir" / "hard")
    with open(root / "dir" / "sparse", "wb") as f:
        f.seek(20 << 20)
        f.write(b"end")
    os.chmod(root / "dir" / "f0.txt", 0o640)
    os.utime(root / "dir" / "f1.txt", ns=(1_600_000_000_123_456_789, 1_600_000_000_123_456_789))
    try:
        os.setxattr(root / "dir" / "text.txt", "user.color", b"blue")
    except OSError:
        pass
    os.mkfifo(root / "dir" / "pipe")
    return root
