"""Damage in the repository is found and named: a flipped byte or a
truncated file in any pack, index, key or snapshot file."""
import os

import pytest

from conftest import SANITIZED

from backup_helpers import make_tree, repo  # noqa: F401


def objects(repo, kind):
    root = os.path.join(repo.path, kind)
    found = []
    for dirpath, _, files in os.walk(root):
        found += [os.path.join(dirpath, f) for f in files]
    return sorted(found)


def flip(path, where=0.5):
    data = bytearray(open(path, "rb").read())
    i = int(len(data) * where)
    data[i] ^= 0x40
    open(path, "wb").write(data)


@pytest.mark.parametrize("kind", ["data", "index", "snapshots", "keys"])
@pytest.mark.parametrize("damage", ["flip", "truncate"] if not SANITIZED else ["flip"])
def test_check_read_data_names_the_damaged_object(repo, tmp_path, kind, damage):
    src = make_tree(tmp_path / "src", files=8)
    repo.backup(str(src))
    repo.check("--read-data")
    victims = objects(repo, kind)
    assert victims, kind
    # The biggest pack holds file data; every other kind has one file here.
    victim = max(victims, key=os.path.getsize)
    if kind == "keys":
        # Damage a second key, so the password still opens the first.
        r = repo.run("key", "add", "--new-password-file", str(pw(tmp_path)))
        assert r.code == 0, r
        victim = (set(objects(repo, kind)) - set(victims)).pop()
    if damage == "flip":
        flip(victim)
    else:
        os.truncate(victim, os.path.getsize(victim) // 2)
    r = repo.run("check", "--read-data")
    name = os.path.basename(victim)
    assert r.code == 3, r
    assert name in r.err, r


def pw(tmp_path):
    p = tmp_path / "second-password"
    p.write_text("second\n")
    p.chmod(0o600)  # a password file others may read is refused
    return p


def test_flipped_config_byte_is_reported(repo):
    flip(os.path.join(repo.path, "config"), 0.9)
    r = repo.run("snapshots")
    assert r.code == 1 and "config is damaged" in r.err, r


def test_restore_names_the_file_of_a_damaged_chunk(repo, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "victim.bin").write_bytes(os.urandom(3 << 20))
    repo.backup(str(src))
    (tmp_path / "src2").mkdir()
    (tmp_path / "src2" / "other.txt").write_text("safe\n")
    repo.backup(str(tmp_path / "src2"))
    pack = max(objects(repo, "data"), key=os.path.getsize)
    flip(pack, 0.3)
    out = tmp_path / "out"
    r = repo.restore("latest", str(out))  # the other snapshot is intact
    snaps = repo.snapshots()
    r = repo.run("restore", snaps[0]["id"], "--target", str(out))
    assert r.code == 3, r
    assert "victim.bin" in r.err and "damaged" in r.err, r
    r = repo.run("check", "--read-data")
    assert r.code == 3 and os.path.basename(pack) in r.err, r


def test_missing_pack_is_reported_without_read_data(repo, tmp_path):
    src = make_tree(tmp_path / "src", files=4)
    repo.backup(str(src))
    pack = max(objects(repo, "data"), key=os.path.getsize)
    os.unlink(pack)
    r = repo.run("check")
    assert r.code == 3 and os.path.basename(pack) in r.err and "missing" in r.err, r
