"""Repositories on a REST server (restic's REST protocol v2), against
Debian's `rclone serve restic` started by the test, directly and through a
proxy that injects faults."""
import os
import subprocess
import time

import pytest

from backup_helpers import FAST_KDF, PASSWORD, Repo, make_tree, tree_state
from remote_servers import Rclone, fault_proxy, rclone  # noqa: F401 (fixtures)

ENV = {"BCDR_PASSWORD": PASSWORD, "BCDR_SCRYPT_N": FAST_KDF}


def packs_on(root):
    return [f for _, _, files in os.walk(os.path.join(root, "data")) for f in files]


def plan_for(write_plan, location, **opts):
    extra = "".join(f"    {k}: {v}\n" for k, v in opts.items())
    return write_plan(f"repositories:\n  - name: off\n    path: {location}\n{extra}")


def test_roundtrip_dedup_forget_prune(bcdr, rclone, tmp_path):
    repo = Repo(bcdr, rclone.url("web"), tmp_path)
    repo.init()
    assert os.path.exists(os.path.join(rclone.root, "web", "config"))
    src = make_tree(tmp_path / "src")
    first = repo.backup(str(src))
    assert first["bytes_added"] > 3 << 20
    again = repo.backup(str(src))
    assert again["bytes_added"] < 64 << 10, again
    assert len(repo.snapshots()) == 2
    repo.check("--read-data")
    repo.restore("latest", str(tmp_path / "out"))
    assert tree_state(tmp_path / "out" / os.path.relpath(src, "/")) == tree_state(src)
    # init refuses a location that holds a repository
    r = repo.run("init")
    assert r.code == 1 and "not empty" in r.err, r
    (src / "dir" / "f2.txt").write_bytes(os.urandom(200000))
    repo.backup(str(src))
    r = repo.run("forget", "--keep-last", "1", "--prune")
    assert r.code == 0, r
    assert len(repo.snapshots()) == 1
    repo.check("--read-data")


def test_append_only_server(bcdr, rclone, tmp_path):
    repo = Repo(bcdr, rclone.url("ao"), tmp_path)
    repo.init()
    src = make_tree(tmp_path / "src", files=5)
    repo.backup(str(src))
    rclone.restart(append_only=True)
    (src / "new.bin").write_bytes(os.urandom(100000))
    repo.backup(str(src))
    r = repo.run("forget", "--keep-last", "1")
    assert r.code == 1, r
    assert "append-only" in r.err and "credentials that may delete" in r.err, r
    r = repo.run("forget", "--keep-last", "1", "--prune")
    assert r.code == 1 and "credentials that may delete" in r.err, r
    assert len(repo.snapshots()) == 2
    repo.check()
    # copy into an append-only repository works
    local = Repo(bcdr, str(tmp_path / "local"), tmp_path)
    local.init()
    local.backup(str(src))
    r = local.run("copy", "--to-repo", rclone.url("ao"), "latest", env={"BCDR_TO_PASSWORD": PASSWORD})
    assert r.code == 0, r
    assert len(repo.snapshots()) == 3
    repo.check("--read-data")


def test_basic_auth_and_the_password_stays_secret(bcdr, tmp_path):
    secret = "s3cr3t-Pw-xyz"
    server = Rclone(tmp_path / "root", user="bob", password=secret).start()
    try:
        url = f"rest:http://bob:{secret}@127.0.0.1:{server.port}/r"
        repo = Repo(bcdr, url, tmp_path)
        r = repo.run("init", "--json")
        assert r.code == 0, r
        assert secret not in r.out + r.err and "bob:***@" in r.out, r
        src = make_tree(tmp_path / "src", files=3)
        r = repo.run("backup", "--json", str(src))
        assert r.code == 0 and secret not in r.out + r.err, r
        r = repo.run("snapshots", "--json")
        assert r.code == 0 and len(r.json()) == 1 and secret not in r.out + r.err, r
        # nor in the process's command line, which ps shows
        import subprocess
        from conftest import BCDR
        proc = subprocess.Popen([BCDR, "backup", "--repo", url, str(src)],
                                env=dict(os.environ, **ENV), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
        cmdlines = set()
        while proc.poll() is None:
            try:
                with open(f"/proc/{proc.pid}/cmdline", "rb") as f:
                    cmdlines.add(f.read())
            except OSError:
                pass
            time.sleep(0.01)
        assert proc.returncode == 0
        seen_after_start = [c for c in cmdlines if b"bob:***" in c]
        assert seen_after_start, cmdlines
        bad = Repo(bcdr, f"rest:http://bob:wrong@127.0.0.1:{server.port}/r", tmp_path)
        r = bad.run("snapshots")
        assert r.code == 1 and "refused the credentials" in r.err and "wrong" not in r.err, r
    finally:
        server.kill()


def test_bad_locations_are_refused_before_anything(bcdr, write_plan, tmp_path):
    for loc, why in [("rest:ftp://h/x", "http:// or https://"),
                     ("rest:http://h:99999/x", "port"),
                     ("s3:https://host/ab", "bucket"),
                     ("sftp:-oProxyCommand=x:/p", "'-'"),
                     ("rest:http://h/a/../b", "'..'")]:
        r = bcdr("snapshots", "--repo", loc, env=ENV)
        assert r.code == 2 and "bad repository location" in r.err and why in r.err, (loc, r)
    plan = plan_for(write_plan, "rest:http://h/a?x=1")
    r = bcdr("config", "check", "-c", plan)
    assert r.code != 0 and "bcdr.yaml:3:" in r.err and "query" in r.err, r


def test_unreachable_server_fails_with_what_to_do(bcdr, write_plan, tmp_path):
    from remote_servers import free_port
    plan = plan_for(write_plan, f"rest:http://127.0.0.1:{free_port()}/x", retries=1)
    start = time.monotonic()
    r = bcdr("snapshots", "-c", plan, "--repo", "off", env=ENV)
    assert r.code == 1 and "cannot connect" in r.err and "server up" in r.err, r
    assert time.monotonic() - start < 60


def test_throttling_and_resets_are_retried(bcdr, rclone, fault_proxy, write_plan, tmp_path):
    proxy = fault_proxy(rclone.port)
    loc = f"rest:http://127.0.0.1:{proxy.port}/t"
    plan = plan_for(write_plan, loc, connections=4)
    repo = Repo(bcdr, "off", tmp_path)
    repo.env["BCDR_PLAN"] = str(plan)
    base = ["-c", str(plan)]
    r = bcdr("init", *base, "--repo", "off", env=ENV)
    assert r.code == 0, r
    src = make_tree(tmp_path / "src")
    proxy.set("503", every=3)
    r = bcdr("backup", *base, "--repo", "off", str(src), env=ENV)
    assert r.code == 0, r
    assert proxy.faults >= 3
    proxy.set("reset", every=4)
    (src / "more.bin").write_bytes(os.urandom(5 << 20))
    r = bcdr("backup", *base, "--repo", "off", str(src), env=ENV)
    assert r.code == 0, r
    proxy.set(None)
    r = bcdr("check", *base, "--repo", "off", "--read-data", env=ENV)
    assert r.code == 0, r
    r = bcdr("snapshots", *base, "--repo", "off", "--json", env=ENV)
    assert len(r.json()) == 2


def test_retry_after_is_honoured(bcdr, rclone, fault_proxy, tmp_path):
    """A 503 with Retry-After: 2 is tried again after two seconds, not after
    the backoff's quarter of a second; the backup then completes."""
    proxy = fault_proxy(rclone.port)
    repo = Repo(bcdr, f"rest:http://127.0.0.1:{proxy.port}/ra", tmp_path)
    repo.init()
    src = make_tree(tmp_path / "src", files=3)
    proxy.set("503", count=1, match="POST /ra/snapshots/", retry_after="2")
    t0 = time.monotonic()
    repo.backup(str(src))
    took = time.monotonic() - t0
    assert proxy.faults == 1
    assert took >= 2.0, took
    assert len(repo.snapshots()) == 1


def test_a_stalled_server_times_out_and_is_retried(bcdr, rclone, fault_proxy, write_plan, tmp_path):
    proxy = fault_proxy(rclone.port)
    plan = plan_for(write_plan, f"rest:http://127.0.0.1:{proxy.port}/s", timeout="2s")
    base = ["-c", str(plan), "--repo", "off"]
    assert bcdr("init", *base, env=ENV).code == 0
    src = make_tree(tmp_path / "src", files=3)
    proxy.set("stall", count=2, match="POST /s/data/")
    r = bcdr("backup", *base, str(src), env=ENV)
    assert r.code == 0, r
    assert proxy.faults == 2
    assert bcdr("check", *base, "--read-data", env=ENV).code == 0


def test_throttling_that_never_ends_gives_up_with_a_message(bcdr, rclone, fault_proxy,
                                                             write_plan, tmp_path):
    proxy = fault_proxy(rclone.port)
    plan = plan_for(write_plan, f"rest:http://127.0.0.1:{proxy.port}/g", retries=2)
    base = ["-c", str(plan), "--repo", "off"]
    assert bcdr("init", *base, env=ENV).code == 0
    proxy.set("503", every=1)
    r = bcdr("snapshots", *base, env=ENV)
    assert r.code == 1 and "503" in r.err and "3 times" in r.err and "try again later" in r.err, r


def test_server_killed_mid_backup(bcdr, rclone, tmp_path, write_plan):
    """No snapshot, no damage, and the next backup reuses the packs that
    were uploaded before the server died."""
    plan = plan_for(write_plan, rclone.url("k"), retries=2, connections=2)
    base = ["-c", str(plan), "--repo", "off"]
    assert bcdr("init", *base, env=ENV).code == 0
    src = tmp_path / "src"
    src.mkdir()
    for i in range(6):
        (src / f"big{i}.bin").write_bytes(os.urandom(20 << 20))
    import subprocess
    from conftest import BCDR
    env = dict(os.environ, **ENV)
    proc = subprocess.Popen([BCDR, "backup", *base, "--json", str(src)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    root = os.path.join(rclone.root, "k")
    end = time.monotonic() + 300
    while len(packs_on(root)) < 4 and time.monotonic() < end and proc.poll() is None:
        time.sleep(0.02)
    assert proc.poll() is None, "the backup ended before the server could be killed"
    rclone.kill()
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 1, (out, err)
    assert "127.0.0.1" in err and ("connect" in err or "broke" in err), err
    uploaded = len(packs_on(root))
    rclone.start()
    r = bcdr("snapshots", *base, "--json", env=ENV)
    assert r.code == 0 and r.json() == [], r
    assert bcdr("check", *base, env=ENV).code == 0
    r = bcdr("backup", *base, "--json", str(src), env=ENV)
    assert r.code == 0, r
    summary = [x for x in r.json_lines() if x.get("type") == "summary"][-1]
    total = 6 * (20 << 20)
    # the packs already there were not sent again (but the two that were
    # being written when the server died, which rclone leaves truncated)
    assert summary["bytes_stored"] <= total - (uploaded - 3) * (16 << 20) + (1 << 20), \
        (summary, uploaded)
    r = bcdr("check", *base, "--read-data", env=ENV)
    assert r.code == 0, r


def test_example_plan_with_offsite_repositories(bcdr):
    from conftest import ROOT
    r = bcdr("config", "check", "-c", ROOT / "examples" / "offsite.yaml")
    assert r.code == 0, r


def test_remote_options_are_checked(bcdr, write_plan):
    plan = plan_for(write_plan, "rest:http://127.0.0.1:1/x", connections=100)
    r = bcdr("config", "check", "-c", plan)
    assert r.code != 0 and "connections" in r.err, r


def test_tls_is_verified_and_ca_file_trusts_a_server(bcdr, write_plan, tmp_path):
    from remote_servers import self_signed
    cert, key = self_signed(str(tmp_path))
    server = Rclone(tmp_path / "root", cert=cert, key=key).start()
    try:
        url = server.url("tls")
        r = bcdr("init", "--repo", url, env=ENV)
        assert r.code == 1 and "TLS verification" in r.err and "ca_file" in r.err, r
        plan = plan_for(write_plan, url, ca_file=cert)
        base = ["-c", str(plan), "--repo", "off"]
        assert bcdr("init", *base, env=ENV).code == 0
        src = make_tree(tmp_path / "src", files=3)
        assert bcdr("backup", *base, str(src), env=ENV).code == 0
        assert bcdr("check", *base, "--read-data", env=ENV).code == 0
    finally:
        server.kill()


def test_restore_reads_packs_by_windows(bcdr, rclone, fault_proxy, tmp_path):
    """A restore of 600 small files, whose blobs share a few packs of more
    than a read-ahead window, reads each pack in one streamed GET (restorer-packs.c), not a request per blob or
    per window; check --read-data reads few windows too. What it restores
    is still the tree."""
    proxy = fault_proxy(rclone.port)
    repo = Repo(bcdr, f"rest:http://127.0.0.1:{proxy.port}/w", tmp_path)
    repo.init()
    src = tmp_path / "src"
    src.mkdir()
    for i in range(600):
        (src / f"f{i:03}").write_bytes(os.urandom(16384))
    repo.backup(str(src))
    before = len(proxy.paths)
    repo.restore("latest", str(tmp_path / "out"))
    data_gets = [(p, r) for p, r in zip(proxy.paths[before:], proxy.ranges[before:])
                 if p.startswith("GET /w/data/")]
    assert tree_state(tmp_path / "out" / os.path.relpath(src, "/")) == tree_state(src)
    # one GET per pack: the tree pack's window, one stream per pack of files
    names = [p for p, _ in data_gets]
    assert len(names) == len(set(names)) == len(packs_on(os.path.join(rclone.root, "w"))), \
        data_gets
    before = len(proxy.paths)
    repo.check("--read-data")
    gets = [p for p in proxy.paths[before:] if p.startswith("GET /w/data/") and p[-1] != "/"]
    # each pack: its tail (the header), then the rest in one stream
    assert len(gets) <= 2 * len(packs_on(os.path.join(rclone.root, "w"))), gets


def test_restore_by_packs_makes_every_size_and_directory(bcdr, rclone, tmp_path):
    """The pack-by-pack restore creates each file when its first chunk
    comes, in whatever directory, and still gives each its size: a file
    ending in a hole (only an ftruncate() makes its size), empty files, and
    files of many directories whose chunks share packs."""
    repo = Repo(bcdr, rclone.url("sizes"), tmp_path)
    repo.init()
    src = tmp_path / "src"
    for d in range(12):
        (src / f"d{d}" / "deeper").mkdir(parents=True)
        for i in range(8):
            (src / f"d{d}" / f"f{i}").write_bytes(os.urandom(100 + 997 * i))
            (src / f"d{d}" / "deeper" / f"g{i}").write_bytes(os.urandom(50 * i))
        (src / f"d{d}" / "empty").write_bytes(b"")
    with open(src / "d0" / "hole-at-end", "wb") as f:
        f.write(os.urandom(300000))
        f.truncate(16 << 20)
    repo.backup(str(src))
    out = tmp_path / "out"
    repo.restore("latest", str(out))
    got = out / os.path.relpath(src, "/")
    assert tree_state(got) == tree_state(src)
    st = os.stat(got / "d0" / "hole-at-end")
    assert st.st_size == 16 << 20 and st.st_blocks * 512 < 4 << 20, st


@pytest.mark.skipif(os.geteuid() != 0, reason="mounts a tmpfs")
def test_restore_by_packs_names_each_file_it_cannot_create(bcdr, rclone, tmp_path):
    """A worker that cannot create a file (here: the target is out of
    inodes) says so once for that file, by name, and goes on: the files it
    could create are whole, the restore ends with exit 3."""
    repo = Repo(bcdr, rclone.url("full"), tmp_path)
    repo.init()
    src = tmp_path / "src"
    src.mkdir()
    for i in range(40):
        (src / f"f{i:02}").write_bytes(os.urandom(2000 + i))
    repo.backup(str(src))
    out = tmp_path / "out"
    out.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m,nr_inodes=24", "tmpfs", str(out)],
                   check=True)
    try:
        r = repo.restore("latest", str(out), expect=3)
        got = out / os.path.relpath(src, "/")
        made = sorted(p.name for p in got.iterdir())
        failed = [f"f{i:02}" for i in range(40) if f"f{i:02}" not in made]
        assert made and failed, made
        for name in made:
            assert (got / name).read_bytes() == (src / name).read_bytes()
        for name in failed:
            assert r.err.count(f"/{name}': cannot create: No space left on device") == 1, r.err
    finally:
        subprocess.run(["umount", str(out)], check=True)


def stream_repo(bcdr, rclone, fault_proxy, tmp_path, name):
    """A repository behind a proxy with 12 MiB of files in packs of more
    than 1 MiB (what the proxy cuts)."""
    proxy = fault_proxy(rclone.port)
    repo = Repo(bcdr, f"rest:http://127.0.0.1:{proxy.port}/{name}", tmp_path)
    repo.init()
    src = tmp_path / "src"
    src.mkdir()
    for i in range(6):
        (src / f"big{i}").write_bytes(os.urandom(2 << 20))
    # the same chunks in other files: one blob, written to each
    (src / "copy0").write_bytes((src / "big0").read_bytes())
    (src / "twice1").write_bytes((src / "big1").read_bytes() * 2)
    repo.backup(str(src))
    return proxy, repo, src


def test_restore_resumes_a_stream_cut_mid_pack(bcdr, rclone, fault_proxy, tmp_path):
    """The server resets a pack's stream halfway: the restore asks for the
    rest only (a Range from the last byte it had) and restores the tree,
    every file read back and verified."""
    proxy, repo, src = stream_repo(bcdr, rclone, fault_proxy, tmp_path, "cut")
    proxy.set("cut", count=1, match="GET /cut/data/")
    before = len(proxy.paths)
    r = repo.restore("latest", str(tmp_path / "out"), "--verify")
    assert "verified: 8 files" in r.out, r
    assert proxy.faults == 1
    assert tree_state(tmp_path / "out" / os.path.relpath(src, "/")) == tree_state(src)
    gets = [(p, r) for p, r in zip(proxy.paths[before:], proxy.ranges[before:])
            if p.startswith("GET /cut/data/")]
    names = [p for p, _ in gets]
    resumed = [(p, r) for p, r in gets if names.count(p) > 1]
    # the pack cut, asked twice: the second time from where the first ended
    assert len(resumed) == 2, gets
    (first, r1), (_, r2) = resumed
    start1, end1 = map(int, r1[len("bytes="):].split("-"))
    start2, end2 = map(int, r2[len("bytes="):].split("-"))
    assert end1 == end2 and start1 < start2 < end1, resumed


def test_restore_fails_when_the_server_dies_mid_stream(bcdr, rclone, fault_proxy, write_plan,
                                                       tmp_path):
    """The server dies in the middle of a pack's stream: the restore fails
    with the location and the cause, and says nothing was restored."""
    proxy, repo, src = stream_repo(bcdr, rclone, fault_proxy, tmp_path, "die")
    plan = plan_for(write_plan, repo.path, retries=1)
    proxy.set("cut", count=1, match="GET /die/data/", then="dead")
    start = time.monotonic()
    r = bcdr("restore", "-c", plan, "--repo", "off", "latest", "--target",
             str(tmp_path / "out"), env=ENV)
    assert r.code == 1, r
    assert f"127.0.0.1:{proxy.port}" in r.err and "broke" in r.err, r
    assert "restored snapshot" not in r.out, r
    assert time.monotonic() - start < 20
