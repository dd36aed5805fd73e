"""check --read-data reads packs in parallel, on the repository's
connections for a remote store (here `rclone serve restic`, through a
proxy that adds a WAN delay and counts the requests in flight) and on a
thread per CPU for a local one; damage is found and named all the same,
in the same order, and long runs report progress."""
import os

from backup_helpers import FAST_KDF, PASSWORD, Repo
from remote_servers import fault_proxy, rclone  # noqa: F401 (fixtures)

ENV = {"BCDR_PASSWORD": PASSWORD, "BCDR_SCRYPT_N": FAST_KDF}


def packs(root):
    return sorted(os.path.join(d, f) for d, _, files in os.walk(os.path.join(root, "data"))
                  for f in files)


def problems(r):
    return [(x["type"], x["object"], x["message"]) for x in r.json_lines()
            if x["type"] in ("error", "note")]


def test_parallel_read_data_finds_the_damage(bcdr, rclone, fault_proxy, write_plan, tmp_path):
    repo = Repo(bcdr, rclone.url("repo"), tmp_path)
    repo.init()
    src = tmp_path / "src"
    src.mkdir()
    for i in range(3):  # a few packs per backup: about ten in all
        (src / f"a{i}.bin").write_bytes(os.urandom(300000))
        (src / f"b{i}.bin").write_bytes(os.urandom(200000))
        repo.backup(str(src))
    root = os.path.join(rclone.root, "repo")
    all_packs = packs(root)
    assert len(all_packs) >= 6, all_packs
    # the REST server keeps a local repository's layout: damage two packs
    flipped, cut = all_packs[1], all_packs[-2]
    data = bytearray(open(flipped, "rb").read())
    data[len(data) // 3] ^= 0x10
    open(flipped, "wb").write(data)
    os.truncate(cut, os.path.getsize(cut) - 100)

    proxy = fault_proxy(rclone.port)
    # 0.3 s more for each pack: on one connection the reading takes seconds
    # (progress is shown once a second)
    proxy.set(delay=0.15, delay_match="GET /repo/data/")
    proxy.watch = "GET /repo/data/"
    url = f"rest:http://127.0.0.1:{proxy.port}/repo"
    plan = write_plan(f"""repositories:
  - {{ name: wide, path: '{url}' }}
  - {{ name: one, path: '{url}', connections: 1 }}
  - {{ name: flaky, path: '{url}', retries: 1 }}
""")
    r = bcdr("check", "-c", plan, "--repo", "wide", "--read-data", "--json", env=ENV)
    assert r.code == 3, r
    wide = problems(r)
    assert proxy.max_inflight > 1, proxy.max_inflight  # the packs overlapped
    names = {o for _, o, _ in wide}
    for victim in (flipped, cut):
        assert f"data/{os.path.basename(victim)}" in names, wide
    assert any("does not match its name" in m for _, o, m in wide
               if o.endswith(os.path.basename(flipped))), wide
    summary = r.json_lines()[-1]
    assert summary["type"] == "summary" and summary["packs"] == len(all_packs), summary
    assert summary["errors"] == sum(1 for t, _, _ in wide if t == "error"), summary
    assert summary["bytes_read"] == sum(os.path.getsize(p) for p in all_packs), summary

    # one connection: one pack at a time, the same report in the same order,
    # and progress lines while it takes its seconds
    proxy.max_inflight = 0
    r = bcdr("check", "-c", plan, "--repo", "one", "--read-data", "--json", env=ENV)
    assert r.code == 3, r
    assert proxy.max_inflight == 1, proxy.max_inflight
    assert problems(r) == wide
    progress = [x for x in r.json_lines() if x["type"] == "progress"]
    assert progress and progress[-1]["packs_total"] == len(all_packs), progress
    assert all(p["bytes_total"] == summary["bytes_read"] for p in progress), progress
    assert progress[-1]["packs_done"] < len(all_packs) or len(progress) > 1, progress
    assert r.json_lines()[-1] == summary

    # the same directory as a local repository: a thread per CPU, same report
    r = bcdr("check", "--repo", root, "--read-data", "--json", env=ENV)
    assert r.code == 3 and problems(r) == wide, r
    r = bcdr("check", "--repo", root, "--read-data", env=ENV)
    assert r.code == 3 and os.path.basename(cut) in r.err and "damage found" in r.out, r

    # a store that fails (every read of a pack reset) is no damage of the
    # packs: the check stops with the store's error, blaming none
    proxy.set("reset", every=1, match="GET /repo/data/")
    r = bcdr("check", "-c", plan, "--repo", "flaky", "--read-data", env=ENV)
    assert r.code == 1 and "check failed" in r.err and f"127.0.0.1:{proxy.port}" in r.err, r
    assert "cannot read" not in r.err and "damage" not in r.err, r
