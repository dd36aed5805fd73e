"""Repositories on S3, against a Ceph RADOS gateway started once for the
session (ceph_rgw.py): Signature V4 checked for real, listings across many
continuation pages (v2 and v1), credentials from the environment, a
credentials file and the plan, errors that say what to do, throttling."""
import os

from backup_helpers import FAST_KDF, PASSWORD, Repo, make_tree, tree_state
from ceph_rgw import ceph_rgw  # noqa: F401 (session fixture)
from remote_servers import fault_proxy  # noqa: F401 (fixture)


def creds(rgw):
    return {"AWS_ACCESS_KEY_ID": rgw.access_key, "AWS_SECRET_ACCESS_KEY": rgw.secret_key}


def s3_repo(bcdr, rgw, tmp_path, bucket, prefix="host1"):
    r = Repo(bcdr, f"s3:{rgw.endpoint()}/{bucket}/{prefix}", tmp_path)
    r.env.update(creds(rgw))
    return r


def test_roundtrip_many_pages_and_prune(bcdr, ceph_rgw, tmp_path):
    repo = s3_repo(bcdr, ceph_rgw, tmp_path, "bcdr-roundtrip")
    repo.init()
    src = make_tree(tmp_path / "src")
    first = repo.backup(str(src))
    assert first["bytes_added"] > 3 << 20
    for i in range(4):
        (src / f"n{i}.bin").write_bytes(os.urandom(50000))
        repo.backup(str(src))
    # pages of 2 keys: every listing crosses continuation tokens, then markers
    repo.env["BCDR_S3_PAGE_KEYS"] = "2"
    assert len(repo.snapshots()) == 5
    repo.check("--read-data")
    repo.restore("latest", str(tmp_path / "out"))
    assert tree_state(tmp_path / "out" / os.path.relpath(src, "/")) == tree_state(src)
    r = repo.run("forget", "--keep-last", "2", "--prune")
    assert r.code == 0, r
    assert len(repo.snapshots()) == 2
    repo.check("--read-data")
    r = repo.run("init")
    assert r.code == 1 and "not empty" in r.err, r


def test_list_objects_v1(bcdr, ceph_rgw, tmp_path, write_plan):
    plan = write_plan(f"repositories:\n  - name: off\n    path: s3:{ceph_rgw.endpoint()}/bcdr-v1/x\n"
                      "    list_objects_v1: true\n")
    env = dict(creds(ceph_rgw), BCDR_PASSWORD=PASSWORD, BCDR_SCRYPT_N=FAST_KDF,
               BCDR_S3_PAGE_KEYS="2")
    base = ["-c", str(plan), "--repo", "off"]
    assert bcdr("init", *base, env=env).code == 0
    src = make_tree(tmp_path / "src", files=4)
    for _ in range(3):
        (src / "x.bin").write_bytes(os.urandom(10000))
        assert bcdr("backup", *base, str(src), env=env).code == 0
    r = bcdr("snapshots", *base, "--json", env=env)
    assert r.code == 0 and len(r.json()) == 3, r
    assert bcdr("check", *base, "--read-data", env=env).code == 0


def test_credentials_sources_and_errors(bcdr, ceph_rgw, tmp_path, write_plan):
    repo = s3_repo(bcdr, ceph_rgw, tmp_path, "bcdr-creds")
    repo.init()
    src = make_tree(tmp_path / "src", files=2)
    repo.backup(str(src))
    url = repo.path
    base_env = {"BCDR_PASSWORD": PASSWORD, "BCDR_SCRYPT_N": FAST_KDF,
                "AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "",
                "HOME": str(tmp_path)}
    # a profile of a shared credentials file
    cf = tmp_path / "aws-credentials"
    cf.write_text(f"[default]\naws_access_key_id = nope\naws_secret_access_key = nope\n"
                  f"[backup]\naws_access_key_id = {ceph_rgw.access_key}\n"
                  f"aws_secret_access_key = {ceph_rgw.secret_key}\n")
    env = dict(base_env, AWS_SHARED_CREDENTIALS_FILE=str(cf), AWS_PROFILE="backup")
    r = bcdr("snapshots", "--repo", url, "--json", env=env)
    assert r.code == 0 and len(r.json()) == 1, r
    # the default profile has wrong keys
    env = dict(base_env, AWS_SHARED_CREDENTIALS_FILE=str(cf))
    r = bcdr("snapshots", "--repo", url, env=env)
    assert r.code == 1 and "refused the credentials" in r.err, r
    # none at all
    r = bcdr("snapshots", "--repo", url, env=base_env)
    assert r.code == 1 and "no S3 credentials" in r.err and "AWS_ACCESS_KEY_ID" in r.err, r
    # the plan's key files; a secret readable by others is refused
    kid, sk = tmp_path / "kid", tmp_path / "sk"
    kid.write_text(ceph_rgw.access_key + "\n")
    sk.write_text(ceph_rgw.secret_key + "\n")
    os.chmod(sk, 0o600)
    os.chmod(kid, 0o600)
    plan = write_plan(f"repositories:\n  - name: off\n    path: {url}\n"
                      f"    access_key_id_file: {kid}\n    secret_access_key_file: {sk}\n")
    r = bcdr("snapshots", "-c", plan, "--repo", "off", "--json", env=base_env)
    assert r.code == 0 and len(r.json()) == 1, r
    os.chmod(sk, 0o644)
    r = bcdr("snapshots", "-c", plan, "--repo", "off", env=base_env)
    assert r.code == 1 and "chmod 600" in r.err, r
    # a wrong secret never shows, nor the right one
    env = dict(base_env, AWS_ACCESS_KEY_ID=ceph_rgw.access_key,
               AWS_SECRET_ACCESS_KEY="wrong-secret-value-123")
    r = bcdr("snapshots", "--repo", url, env=env)
    assert r.code == 1 and "SignatureDoesNotMatch" in r.err, r
    assert "wrong-secret-value-123" not in r.err + r.out
    r = repo.run("backup", "--json", str(src))
    assert ceph_rgw.secret_key not in r.out + r.err


def test_missing_bucket_says_so(bcdr, ceph_rgw, tmp_path):
    repo = s3_repo(bcdr, ceph_rgw, tmp_path, "bcdr-nonexistent")
    r = repo.run("snapshots")
    assert r.code == 1 and "bucket 'bcdr-nonexistent' does not exist" in r.err, r


def test_slowdown_and_resets_are_retried(bcdr, ceph_rgw, fault_proxy, tmp_path):
    proxy = fault_proxy(ceph_rgw.port)
    repo = Repo(bcdr, f"s3:http://127.0.0.1:{proxy.port}/bcdr-throttle/h", tmp_path)
    repo.env.update(creds(ceph_rgw))
    repo.init()
    src = make_tree(tmp_path / "src")
    proxy.set("503", every=3)
    repo.backup(str(src))
    assert proxy.faults >= 3
    proxy.set("reset", every=5)
    (src / "more.bin").write_bytes(os.urandom(3 << 20))
    repo.backup(str(src))
    proxy.set(None)
    repo.check("--read-data")
    assert len(repo.snapshots()) == 2


def test_a_key_without_delete_rights(bcdr, ceph_rgw, tmp_path):
    """Backup and copy work with a key that may only add; forget and prune
    say they need other credentials."""
    import json
    owner = s3_repo(bcdr, ceph_rgw, tmp_path, "bcdr-appendonly")
    owner.init()
    ceph_rgw.add_user("writer", "BCDRWRITERKEY0000001", "writerSecret0123456789")
    policy = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"AWS": ["arn:aws:iam:::user/writer"]},
        "Action": ["s3:GetObject", "s3:PutObject", "s3:ListBucket"],
        "Resource": ["arn:aws:s3:::bcdr-appendonly", "arn:aws:s3:::bcdr-appendonly/*"]}]}
    code, body = ceph_rgw.s3("PUT", "/bcdr-appendonly?policy=", json.dumps(policy).encode())
    assert code in (200, 204), body
    writer = Repo(bcdr, owner.path, tmp_path)
    writer.env.update({"AWS_ACCESS_KEY_ID": "BCDRWRITERKEY0000001",
                       "AWS_SECRET_ACCESS_KEY": "writerSecret0123456789"})
    src = make_tree(tmp_path / "src", files=3)
    writer.backup(str(src))
    (src / "x.bin").write_bytes(os.urandom(100000))
    writer.backup(str(src))
    r = writer.run("forget", "--keep-last", "1", "--prune")
    assert r.code == 1 and "credentials that may delete" in r.err, r
    # (RGW gives objects to the key that wrote them: read them with it)
    assert len(writer.snapshots()) == 2
    writer.check("--read-data")


def test_object_lock_keeps_what_prune_removes(bcdr, ceph_rgw, tmp_path):
    """init --object-lock: every object is written with a retention; forget
    and prune hide what they remove (a delete marker), the locked versions
    stay, and deleting one of them through S3 is refused."""
    import re
    import time
    repo = s3_repo(bcdr, ceph_rgw, tmp_path, "bcdr-locked")
    r = repo.run("init", "--object-lock", "1d")
    assert r.code == 0, r
    r = repo.run("init", "--object-lock", "2h")
    assert r.code == 2 and "whole days" in r.err, r
    src = make_tree(tmp_path / "src", files=3)
    repo.backup(str(src))
    first = repo.snapshots()[0]["id"]
    (src / "x.bin").write_bytes(os.urandom(200000))
    repo.backup(str(src))
    def retain_until(key):
        code, body = ceph_rgw.s3("GET", f"/bcdr-locked/{key}?retention=")
        assert code == 200, body
        return re.search(rb"<RetainUntilDate>([^<]*)<", body).group(1)

    before = retain_until("host1/config")
    time.sleep(1.5)  # retention dates have whole seconds
    r = repo.run("forget", "--keep-last", "1", "--prune")
    assert r.code == 0, r
    assert "extended the Object Lock retention" in r.out, r
    # prune extended what is left (kopia's extend-object-locks)
    assert retain_until("host1/config") > before
    assert len(repo.snapshots()) == 1
    repo.check("--read-data")
    code, body = ceph_rgw.s3("GET", "/bcdr-locked?versions=")
    assert code == 200, body
    text = body.decode()
    versions = re.findall(r"<Version>.*?<Key>([^<]*)</Key><VersionId>([^<]*)</VersionId>", text)
    gone = [(k, v) for k, v in versions if f"snapshots/{first}" in k]
    assert gone, text[:2000]
    assert "<DeleteMarker>" in text
    key, vid = gone[0]
    code, body = ceph_rgw.s3("DELETE", f"/bcdr-locked/{key}?versionId={vid}")
    assert code == 403, (code, body)
    # the version is still there
    code, body = ceph_rgw.s3("GET", f"/bcdr-locked/{key}?versionId={vid}")
    assert code == 200 and body[:4] == b"BCDR", (code, body[:200])


def test_virtual_host_style(bcdr, ceph_rgw, fault_proxy, write_plan, tmp_path):
    """virtual_host: true names the bucket in the host (RGW runs with
    rgw_dns_name = localhost; curl finds *.localhost on loopback by itself):
    init, backup, restore and check through it; without the key (auto)
    RGW is addressed path style; damage is found by the parallel check."""
    import re
    proxy = fault_proxy(ceph_rgw.port)  # sees each request's Host and path
    url = f"s3:http://localhost:{proxy.port}/bcdr-vhost/h"
    plan = write_plan(f"""repositories:
  - {{ name: vh, path: '{url}', virtual_host: true }}
  - {{ name: auto, path: '{url}' }}
  - {{ name: ip, path: 's3:http://127.0.0.1:{proxy.port}/bcdr-vhost/h', virtual_host: true }}
""")
    env = dict(creds(ceph_rgw), BCDR_PASSWORD=PASSWORD, BCDR_SCRYPT_N=FAST_KDF)

    def run(repo, *args):
        return bcdr(*args, "-c", plan, "--repo", repo, env=env)
    assert run("vh", "init").code == 0
    src = make_tree(tmp_path / "src", files=6)
    assert run("vh", "backup", str(src)).code == 0
    (src / "new.bin").write_bytes(os.urandom(300000))
    assert run("vh", "backup", str(src)).code == 0
    r = run("vh", "restore", "latest", "--target", str(tmp_path / "out"))
    assert r.code == 0, r
    assert tree_state(tmp_path / "out" / os.path.relpath(src, "/")) == tree_state(src)
    assert run("vh", "check", "--read-data").code == 0
    assert set(proxy.hosts) == {f"bcdr-vhost.localhost:{proxy.port}"}, set(proxy.hosts)
    assert not [p for p in proxy.paths if " /bcdr-vhost" in p], proxy.paths[:5]

    # auto: RGW is no store that wants the bucket in the host
    proxy.hosts.clear()
    proxy.paths.clear()
    r = run("auto", "snapshots", "--json")
    assert r.code == 0 and len(r.json()) == 2, r
    assert set(proxy.hosts) == {f"localhost:{proxy.port}"}, set(proxy.hosts)
    assert all(" /bcdr-vhost/" in p or " /bcdr-vhost?" in p for p in proxy.paths), proxy.paths
    r = run("ip", "snapshots")
    assert r.code != 0 and "not an IP address" in r.err, r

    # a flipped byte in a pack, found by the check's parallel reads
    code, listing = ceph_rgw.s3("GET", "/bcdr-vhost?list-type=2&prefix=h%2Fdata%2F")
    assert code == 200, listing
    keys = re.findall(rb"<Key>([^<]+)</Key>", listing)
    assert len(keys) >= 3, listing
    victim = max(keys, key=lambda k: k.decode()).decode()
    code, body = ceph_rgw.s3("GET", "/bcdr-vhost/" + victim)
    assert code == 200 and body, code
    body = bytearray(body)
    body[len(body) // 2] ^= 1
    assert ceph_rgw.s3("PUT", "/bcdr-vhost/" + victim, bytes(body))[0] == 200
    proxy.watch = "GET /h/data/"
    proxy.max_inflight = 0
    proxy.set(delay=0.05, delay_match="GET /h/data/")
    r = run("vh", "check", "--read-data", "--json")
    assert r.code == 3, r
    errors = [x for x in r.json_lines() if x["type"] == "error"]
    # (a pack of trees also takes its snapshots' trees with it)
    assert {x["object"] for x in errors if x["object"].startswith("data/")} == \
        {"data/" + victim.rsplit("/", 1)[1]}, errors
    assert proxy.max_inflight > 1, proxy.max_inflight


def test_restore_streams_each_pack_once_and_resumes(bcdr, ceph_rgw, fault_proxy, tmp_path):
    """Over S3 a restore reads each pack in one ranged GET; the stream the
    server cuts halfway is asked again from its last byte only (signed
    again with the new Range), and the tree comes back whole."""
    proxy = fault_proxy(ceph_rgw.port)
    repo = Repo(bcdr, f"s3:http://127.0.0.1:{proxy.port}/bcdr-stream/h", tmp_path)
    repo.env.update(creds(ceph_rgw))
    repo.init()
    src = tmp_path / "src"
    src.mkdir()
    for i in range(6):
        (src / f"big{i}").write_bytes(os.urandom(2 << 20))
    for i in range(300):
        (src / f"small{i}").write_bytes(os.urandom(8192))
    repo.backup(str(src))
    packs = {p.split()[1] for p in proxy.paths if p.startswith("PUT /bcdr-stream/h/data/")}
    proxy.set("cut", count=1, match="GET /bcdr-stream/h/data/")
    before = len(proxy.paths)
    repo.restore("latest", str(tmp_path / "out"))
    assert tree_state(tmp_path / "out" / os.path.relpath(src, "/")) == tree_state(src)
    assert proxy.faults == 1
    gets = [(p.split()[1], r) for p, r in zip(proxy.paths[before:], proxy.ranges[before:])
            if p.startswith("GET /bcdr-stream/h/data/")]
    assert {p for p, _ in gets} <= packs
    # one GET per pack, and the cut one's rest
    assert len(gets) == len({p for p, _ in gets}) + 1, gets
