"""Key files are outside input: scrypt parameters beyond what bcdr writes
are refused before scrypt runs (a planted key file must not cost every open
gigabytes and seconds), and BCDR_SCRYPT_N may only lower the cost, loudly."""
import hashlib
import json
import os
import time

from backup_helpers import PASSWORD, repo  # noqa: F401 (fixture)


def plant_key(repo_path, n, r, p):
    text = json.dumps({"version": 1, "created_us": 1, "host": "planted", "kdf": "scrypt",
                       "n": n, "r": r, "p": p, "salt": "ab" * 32, "data": "cd" * 124})
    name = hashlib.sha256(text.encode()).hexdigest()
    with open(os.path.join(repo_path, "keys", name), "w") as f:
        f.write(text)
    return name


def test_dear_key_files_are_refused_quickly(repo, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "a").write_bytes(b"data" * 1000)
    repo.backup(str(src))
    huge = plant_key(repo.path, 1 << 22, 32, 16)
    # Within the old bounds (1 GiB and seconds of scrypt per open), over the new.
    dear = plant_key(repo.path, 1 << 20, 8, 1)
    # A wrong password tries every key file: the planted ones cost nothing.
    t = time.monotonic()
    r = repo.run("snapshots", env={"BCDR_PASSWORD": "wrong"})
    took = time.monotonic() - t
    assert r.code == 1 and "wrong password" in r.err, r
    assert f"keys/{huge}" in r.err and f"keys/{dear}" in r.err, r
    assert "n=4194304 r=32 p=16" in r.err and "more than bcdr writes" in r.err, r
    assert took < 5, took
    # The repository's own key still opens it.
    r = repo.run("snapshots", "--json")
    assert r.code == 0 and len(r.json()) == 1, r
    # check names them: no password can open them.
    r = repo.run("check")
    assert r.code != 0 and f"keys/{huge}" in r.out + r.err, r


def test_scrypt_n_lowers_only_and_says_so(bcdr, tmp_path):
    env = {"BCDR_PASSWORD": PASSWORD}
    low = tmp_path / "low"
    r = bcdr("init", "--repo", low, env={**env, "BCDR_SCRYPT_N": "1024"})
    assert r.code == 0 and "BCDR_SCRYPT_N=1024" in r.err and "test suite only" in r.err, r
    key = json.load(open(low / "keys" / os.listdir(low / "keys")[0]))
    assert key["n"] == 1024 and key["r"] == 8 and key["p"] == 1, key
    # Raising it is refused (ignored, said), the key gets the default cost.
    high = tmp_path / "high"
    r = bcdr("init", "--repo", high, env={**env, "BCDR_SCRYPT_N": str(1 << 20)})
    assert r.code == 0 and "ignored" in r.err, r
    key = json.load(open(high / "keys" / os.listdir(high / "keys")[0]))
    assert key["n"] == 1 << 15, key
    # Without it, nothing is said.
    plain = tmp_path / "plain"
    r = bcdr("init", "--repo", plain, env=env)
    assert r.code == 0 and "BCDR_SCRYPT_N" not in r.err, r
