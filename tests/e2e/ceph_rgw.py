"""A throwaway Ceph RADOS gateway (S3) on 127.0.0.1, all in a temporary
directory: one monitor, one memstore OSD, no manager, radosgw. Up in a few
seconds with paxos_propose_interval 0.05. Facts that make it work: with
memstore `ceph-osd --mkfs` writes no keyring (written here, as vstart.sh
does); pools of size one need mon_allow_pool_size_one and
osd_crush_chooseleaf_type 0 (one host); stop radosgw, then the OSD, then
the monitor."""
import os
import shutil
import signal
import subprocess
import time
import uuid

import pytest

from remote_servers import free_port, wait_port

ACCESS_KEY = "BCDRTESTACCESSKEY01"
SECRET_KEY = "bcdrTestSecretKey0123456789abcdefghijklmn"


class CephRGW:
    def __init__(self, root, device_bytes=2 << 30):
        self.root = str(root)
        self.device_bytes = device_bytes  # memstore: every object is in memory
        self.conf = os.path.join(self.root, "ceph.conf")
        self.procs = {}
        self.mon_port = free_port()
        self.port = free_port()
        self.access_key, self.secret_key = ACCESS_KEY, SECRET_KEY

    def run(self, *argv, check=True, timeout=60):
        r = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout)
        if check and r.returncode != 0:
            raise RuntimeError(f"{argv} failed: {r.stdout} {r.stderr}")
        return r

    def ceph(self, *args, **kw):
        return self.run("ceph", "-c", self.conf, "--connect-timeout", "30", *args, **kw)

    def write_conf(self, fsid):
        d = self.root
        text = f"""[global]
fsid = {fsid}
mon host = [v1:127.0.0.1:{self.mon_port}]
public addr = 127.0.0.1
cluster addr = 127.0.0.1
ms bind ipv6 = false
mon initial members = a
auth cluster required = cephx
auth service required = cephx
auth client required = cephx
keyring = {d}/keyring
run dir = {d}/run
admin socket = {d}/run/$name.asok
log file = {d}/log/$name.log
pid file = {d}/run/$name.pid
crash dir = {d}/crash
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
mon allow pool size one = true
mon warn on pool no redundancy = false
osd crush chooseleaf type = 0
paxos propose interval = 0.05
mon data avail warn = 1
mon data avail crit = 0
mon osd full ratio = .99
mon osd backfillfull ratio = .99
mon osd nearfull ratio = .99
osd failsafe full ratio = .99
mon max pg per osd = 1000
osd objectstore = memstore
memstore device bytes = {self.device_bytes}
osd data = {d}/osd.$id
mon data = {d}/mon.$id
osd max object name len = 460
osd max object namespace len = 64
ms bind msgr2 = false
debug ms = 0
[client.rgw]
rgw frontends = beast endpoint=127.0.0.1:{self.port}
rgw data = {d}/rgw
rgw dns name = localhost
rgw enable usage log = false
keyring = {d}/keyring
"""
        with open(self.conf, "w") as f:
            f.write(text)

    def spawn(self, name, *argv):
        log = open(os.path.join(self.root, "log", f"{name}.out"), "ab")
        self.procs[name] = subprocess.Popen(list(argv), stdout=log, stderr=log)

    def start(self):
        for sub in ("run", "log", "crash", "mon.a", "osd.0", "rgw"):
            os.makedirs(os.path.join(self.root, sub), exist_ok=True)
        fsid = str(uuid.uuid4())
        self.write_conf(fsid)
        kr = os.path.join(self.root, "keyring")
        self.run("ceph-authtool", "--create-keyring", kr, "--gen-key", "-n", "mon.",
                 "--cap", "mon", "allow *")
        self.run("ceph-authtool", kr, "--gen-key", "-n", "client.admin", "--cap", "mon",
                 "allow *", "--cap", "osd", "allow *", "--cap", "mds", "allow *",
                 "--cap", "mgr", "allow *")
        monmap = os.path.join(self.root, "monmap")
        self.run("monmaptool", "--create", "--fsid", fsid, "--addv", "a",
                 f"[v1:127.0.0.1:{self.mon_port}]", monmap)
        self.run("ceph-mon", "-c", self.conf, "--mkfs", "-i", "a", "--monmap", monmap,
                 "--keyring", kr)
        self.spawn("mon", "ceph-mon", "-c", self.conf, "-i", "a", "-f")
        osd_uuid = str(uuid.uuid4())
        osd_dir = os.path.join(self.root, "osd.0")
        secret = self.run("ceph-authtool", "--gen-print-key").stdout.strip()
        new_json = os.path.join(self.root, "osd-new.json")
        with open(new_json, "w") as f:
            f.write('{"cephx_secret": "%s"}' % secret)
        self.ceph("osd", "new", osd_uuid, "-i", new_json)
        self.run("ceph-osd", "-c", self.conf, "-i", "0", "--mkfs", "--key", secret,
                 "--osd-uuid", osd_uuid)
        okr = os.path.join(osd_dir, "keyring")
        with open(okr, "w") as f:
            f.write(f"[osd.0]\n\tkey = {secret}\n")
        self.spawn("osd", "ceph-osd", "-c", self.conf, "-i", "0", "-f", "--keyring", okr)
        rkr = os.path.join(self.root, "rgw.keyring")
        self.run("ceph-authtool", "--create-keyring", rkr, "--gen-key", "-n", "client.rgw")
        self.ceph("auth", "add", "client.rgw", "mon", "allow rw", "osd", "allow rwx",
                  "-i", rkr)
        self.run("ceph-authtool", kr, "--import-keyring", rkr)
        end = time.monotonic() + 120
        while time.monotonic() < end:
            r = self.ceph("osd", "stat", check=False)
            if " 1 up" in r.stdout:
                break
            time.sleep(0.1)
        self.spawn("rgw", "radosgw", "-c", self.conf, "-n", "client.rgw", "-f")
        wait_port(self.port, self.procs["rgw"], timeout=180)
        self.run("radosgw-admin", "-c", self.conf, "user", "create", "--uid", "bcdr",
                 "--display-name", "bcdr", "--access-key", self.access_key,
                 "--secret-key", self.secret_key)
        return self

    def add_user(self, uid, access_key, secret_key):
        self.run("radosgw-admin", "-c", self.conf, "user", "create", "--uid", uid,
                 "--display-name", uid, "--access-key", access_key, "--secret-key", secret_key)

    def s3(self, method, path, body=b"", access_key=None, secret_key=None):
        """One signed request with curl's own SigV4 (for what bcdr does not do:
        bucket policies); returns (status, body)."""
        import hashlib
        access_key = access_key or self.access_key
        secret_key = secret_key or self.secret_key
        r = subprocess.run(
            ["curl", "-s", "-o", "-", "-w", "\n%{http_code}", "-X", method,
             "--aws-sigv4", "aws:amz:us-east-1:s3", "--user", f"{access_key}:{secret_key}",
             "-H", "x-amz-content-sha256: " + hashlib.sha256(body).hexdigest(),
             "--data-binary", "@-", f"{self.endpoint()}{path}"],
            input=body, capture_output=True, timeout=60)
        out, _, code = r.stdout.rpartition(b"\n")
        return int(code or 0), out

    def endpoint(self):
        return f"http://127.0.0.1:{self.port}"

    def stop(self):
        for name in ("rgw", "osd", "mon"):
            p = self.procs.pop(name, None)
            if p and p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()


@pytest.fixture(scope="session")
def ceph_rgw(tmp_path_factory):
    """One RADOS gateway for the whole session; tests use a bucket each."""
    for tool in ("ceph-mon", "ceph-osd", "radosgw", "ceph"):
        if not shutil.which(tool):
            pytest.skip(f"{tool} is not installed (scripts/bootstrap test set)")
    rgw = CephRGW(tmp_path_factory.mktemp("ceph"))
    try:
        rgw.start()
    except Exception:
        rgw.stop()
        raise
    yield rgw
    rgw.stop()
