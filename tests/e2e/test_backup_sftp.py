"""Repositories over sftp, against a real OpenSSH server started by the test
(tests/e2e/sftp_server.py): its own sshd on 127.0.0.1 and a free port, its
own host key, a generated client key, and bcdr given the client's ssh config
through BCDR_SSH_COMMAND."""
import os
import stat
import subprocess
import sys
import time

from backup_helpers import FAST_KDF, PASSWORD, Repo, make_tree, tree_state
from conftest import BCDR
from sftp_server import Sshd, keygen, sshd  # noqa: F401 (fixture)


def sftp_repo(bcdr, server, path, tmp_path):
    repo = Repo(bcdr, server.url(path), tmp_path)
    repo.env.update(server.env)
    return repo


def packs_in(root):
    return [f for _, _, files in os.walk(os.path.join(root, "data")) for f in files
            if ".tmp." not in f]


def plan_for(write_plan, location, **opts):
    extra = "".join(f"    {k}: {v}\n" for k, v in opts.items())
    return write_plan(f"repositories:\n  - name: off\n    path: {location}\n{extra}")


def test_roundtrip_forget_prune_and_copy(bcdr, sshd, tmp_path):
    root = str(tmp_path / "remote" / "repo")
    repo = sftp_repo(bcdr, sshd, root, tmp_path)
    repo.init()
    # init makes the local backend's layout (mkdir -p of the path)
    assert sorted(os.listdir(root)) == ["config", "data", "index", "keys", "locks", "snapshots"]
    src = make_tree(tmp_path / "src")
    for i in range(3):
        (src / f"big{i}.bin").write_bytes(os.urandom(12 << 20))
    logins = sshd.logins()
    first = repo.backup(str(src))
    assert first["bytes_added"] > 36 << 20
    # packs went up on several ssh connections (4 by default), no more
    assert 2 <= sshd.logins() - logins <= 4, sshd.logins() - logins
    # packs live in data/xx/, made on demand; no temporary file is left
    assert packs_in(root)
    for dirpath, _, files in os.walk(root):
        assert not [f for f in files if ".tmp." in f], (dirpath, files)
        if os.path.dirname(dirpath) == os.path.join(root, "data"):
            assert all(f.startswith(os.path.basename(dirpath)) for f in files)
    again = repo.backup(str(src))
    assert again["bytes_added"] < 64 << 10, again
    assert len(repo.snapshots()) == 2
    # all 256 data/xx (listed 32 at a time), and what a listing skips
    for i in range(256):
        os.makedirs(os.path.join(root, "data", f"{i:02x}"), exist_ok=True)
    with open(os.path.join(root, "data", "ff", "ff00.tmp.1234"), "wb") as f:
        f.write(b"half a pack")
    with open(os.path.join(root, "data", "ff", ".hidden"), "wb") as f:
        f.write(b"x")
    r = repo.check("--read-data")
    assert f"{len(packs_in(root)) - 1} packs" in r.out, (r, packs_in(root))
    repo.restore("latest", str(tmp_path / "out"))
    assert tree_state(tmp_path / "out" / os.path.relpath(src, "/")) == tree_state(src)
    # the same directory opens as a local repository: one layout
    local_view = Repo(bcdr, root, tmp_path)
    assert len(local_view.snapshots()) == 2
    # init refuses a location that holds a repository
    r = repo.run("init")
    assert r.code == 1 and "not empty" in r.err, r
    (src / "dir" / "f2.txt").write_bytes(os.urandom(200000))
    repo.backup(str(src))
    r = repo.run("forget", "--keep-last", "1", "--prune")
    assert r.code == 0, r
    assert len(repo.snapshots()) == 1
    repo.check("--read-data")

    # copy from a local repository to the sftp one
    local = Repo(bcdr, str(tmp_path / "local"), tmp_path)
    local.init()
    other = make_tree(tmp_path / "other", seed=7, files=5)
    local.backup(str(other))
    r = local.run("copy", "--to-repo", sshd.url(root), "latest",
                  env={"BCDR_TO_PASSWORD": PASSWORD, **sshd.env})
    assert r.code == 0, r
    assert len(repo.snapshots()) == 2
    repo.check("--read-data")
    target = tmp_path / "out2"
    snap = [s for s in repo.snapshots() if str(other) in s["paths"]][0]
    repo.restore(snap["id"], str(target))
    assert tree_state(target / os.path.relpath(other, "/")) == tree_state(other)


def test_missing_path_and_relative_path(bcdr, sshd, tmp_path):
    r = sftp_repo(bcdr, sshd, str(tmp_path / "nothing"), tmp_path).run("snapshots")
    assert r.code == 1 and "no repository at" in r.err and "bcdr init" in r.err, r
    # a relative path is relative to where the sftp server starts (the
    # login's home; here a directory of the test's, not root's home)
    home = tmp_path / "home"
    home.mkdir()
    server = Sshd(tmp_path / "sshd-home", subsystem=f"internal-sftp -d {home}").start()
    try:
        repo = sftp_repo(bcdr, server, "backups/r1", tmp_path)
        repo.init()
        assert (home / "backups" / "r1" / "config").exists()
        repo.backup(str(make_tree(tmp_path / "src", files=2)))
        assert len(repo.snapshots()) == 1
    finally:
        server.kill()


def big_tree(root, files=3, size=16 << 20):
    root.mkdir()
    for i in range(files):
        (root / f"big{i}.bin").write_bytes(os.urandom(size))
    return root


def start_backup(args, env):
    return subprocess.Popen([BCDR, "backup", *args], env=dict(os.environ, **env),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for_packs(root, proc, n=1):
    end = time.monotonic() + 120
    while len(packs_in(root)) < n and time.monotonic() < end and proc.poll() is None:
        time.sleep(0.01)
    assert proc.poll() is None, "the backup ended before the server could be killed"


def test_server_killed_mid_backup(bcdr, sshd, write_plan, tmp_path):
    """kill -9 of sshd and its sessions: with few retries the backup fails
    with the location in the message and leaves no snapshot; with the
    default ones and the server back within a second it goes on. Either
    way the repository checks clean and the next backup completes."""
    root = str(tmp_path / "r")
    plan = plan_for(write_plan, sshd.url(root), retries=1, connections=2)
    base = ["-c", str(plan), "--repo", "off"]
    env = {"BCDR_PASSWORD": PASSWORD, "BCDR_SCRYPT_N": FAST_KDF, **sshd.env}
    assert bcdr("init", *base, env=env).code == 0
    src = big_tree(tmp_path / "src")
    proc = start_backup([*base, "--json", str(src)], env)
    wait_for_packs(root, proc)
    sshd.kill()
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 1, (out, err)
    assert f"sftp:127.0.0.1:{sshd.port}:" in err, err
    assert "broke" in err or "cannot connect" in err, err
    sshd.restart()
    r = bcdr("snapshots", *base, "--json", env=env)
    assert r.code == 0 and r.json() == [], r
    assert bcdr("check", *base, env=env).code == 0

    # default retries: the server is back before they run out
    repo = sftp_repo(bcdr, sshd, root, tmp_path)
    (src / "more.bin").write_bytes(os.urandom(16 << 20))
    proc = start_backup(["--repo", sshd.url(root), "--json", str(src)], repo.env)
    wait_for_packs(root, proc, len(packs_in(root)) + 1)
    sshd.kill()
    time.sleep(0.5)
    sshd.restart()
    out, err = proc.communicate(timeout=120)
    assert proc.returncode in (0, 1), (out, err)
    if proc.returncode == 1:
        assert "127.0.0.1" in err, err
    snaps = repo.snapshots()
    assert len(snaps) == (1 if proc.returncode == 0 else 0)
    repo.check()
    summary = repo.backup(str(src))
    assert summary["files_new"] + summary["files_changed"] + summary["files_unchanged"] == 4
    repo.check("--read-data")
    repo.restore("latest", str(tmp_path / "out"))
    assert tree_state(tmp_path / "out" / os.path.relpath(src, "/")) == tree_state(src)


JUNK = """#!/bin/sh
printf 'hello, this is a login banner and not sftp\\n'
sleep 1
"""

# A server that answers INIT with a VERSION, and then every request with a
# NAME packet whose count claims far more entries than it holds.
LIAR = """#!{python}
import struct, sys
i, o = sys.stdin.buffer, sys.stdout.buffer
def read():
    n = i.read(4)
    if len(n) < 4:
        sys.exit(0)
    return i.read(struct.unpack(">I", n)[0])
read()
o.write(struct.pack(">IBI", 5, 2, 3)); o.flush()
while True:
    req = read()
    body = struct.pack(">BII", 104, struct.unpack(">I", req[1:5])[0], 0x7fffffff) + b"\\0\\0\\0\\1a"
    o.write(struct.pack(">I", len(body)) + body); o.flush()
"""


def test_a_server_that_sends_garbage(bcdr, tmp_path):
    for name, text in [("junk", JUNK), ("liar", LIAR.format(python=sys.executable))]:
        script = tmp_path / f"{name}.sh"
        script.write_text(text)
        script.chmod(0o755)
        server = Sshd(tmp_path / f"sshd-{name}", subsystem=str(script)).start()
        try:
            repo = sftp_repo(bcdr, server, str(tmp_path / name), tmp_path)
            start = time.monotonic()
            r = repo.run("init")
            assert r.code == 1, r
            assert "does not speak SFTP" in r.err and f"127.0.0.1:{server.port}" in r.err, r
            if name == "junk":
                assert "hello, this is" in r.err, r
            assert time.monotonic() - start < 20  # not retried
            r = repo.run("snapshots")
            assert r.code == 1 and "does not speak SFTP" in r.err, r
        finally:
            server.kill()


def test_ssh_failures_say_what_to_do(bcdr, sshd, write_plan, tmp_path):
    loc = sshd.url(str(tmp_path / "r"))
    repo = sftp_repo(bcdr, sshd, str(tmp_path / "r"), tmp_path)
    repo.init()
    # an unknown host key: not retried, and the message names known_hosts
    empty = tmp_path / "empty_known_hosts"
    empty.write_text("")
    sshd.write_client_config(str(empty))
    start = time.monotonic()
    r = repo.run("snapshots")
    assert r.code == 1, r
    assert "host key" in r.err and "known_hosts" in r.err and loc in r.err, r
    assert f"ssh-keyscan -p {sshd.port} 127.0.0.1" in r.err, r
    assert time.monotonic() - start < 15
    # a key the server does not take
    sshd.write_client_config(sshd.known_hosts)
    other = tmp_path / "other_key"
    keygen(other)
    text = open(sshd.client_config).read().replace(sshd.client_key, str(other))
    open(sshd.client_config, "w").write(text)
    r = repo.run("snapshots")
    assert r.code == 1 and "refused the login" in r.err and "key" in r.err, r
    sshd.write_client_config(sshd.known_hosts)
    assert len(repo.snapshots()) == 0
    # a bad BCDR_SSH_COMMAND, and a missing ssh program
    r = repo.run("snapshots", env={"BCDR_SSH_COMMAND": "ssh -F 'unclosed"})
    assert r.code == 1 and "BCDR_SSH_COMMAND" in r.err, r
    r = repo.run("snapshots", env={"BCDR_SSH_COMMAND": "/nonexistent/ssh"})
    assert r.code == 1 and "BCDR_SSH_COMMAND" in r.err and "openssh-client" in r.err, r
    # nobody listening: retried, then what to do
    from remote_servers import free_port
    plan = plan_for(write_plan, f"sftp:127.0.0.1:{free_port()}:/x", retries=1)
    r = bcdr("snapshots", "-c", plan, "--repo", "off",
             env={"BCDR_PASSWORD": PASSWORD, **sshd.env})
    assert r.code == 1 and "cannot connect" in r.err and "server up" in r.err, r
    assert "tried 2 times" in r.err, r


def test_permissions_of_the_files(bcdr, sshd, tmp_path):
    """Objects are written 0600 and directories 0700, as the local
    backend does: a repository is secret even when encrypted."""
    root = str(tmp_path / "p")
    repo = sftp_repo(bcdr, sshd, root, tmp_path)
    repo.init()
    repo.backup(str(make_tree(tmp_path / "src", files=3)))
    for dirpath, dirs, files in os.walk(root):
        for d in dirs:
            assert stat.S_IMODE(os.stat(os.path.join(dirpath, d)).st_mode) == 0o700
        for f in files:
            assert stat.S_IMODE(os.stat(os.path.join(dirpath, f)).st_mode) == 0o600


def test_ssh_command_from_the_plan(bcdr, sshd, write_plan, tmp_path):
    """The plan's ssh_command reaches ssh without BCDR_SSH_COMMAND, and wins
    over it; a broken one is named as the plan's."""
    root = str(tmp_path / "p")
    plan = plan_for(write_plan, sshd.url(root), ssh_command=f"'{sshd.ssh_command}'")
    base = ["-c", str(plan), "--repo", "off"]
    env = {"BCDR_PASSWORD": PASSWORD, "BCDR_SCRYPT_N": FAST_KDF,
           "BCDR_SSH_COMMAND": "/nonexistent/ssh"}
    assert bcdr("init", *base, env=env).code == 0
    src = make_tree(tmp_path / "src", files=3)
    assert bcdr("backup", *base, str(src), env=env).code == 0
    r = bcdr("snapshots", *base, "--json", env=env)
    assert r.code == 0 and len(r.json()) == 1, r
    bad = plan_for(write_plan, sshd.url(root), ssh_command="\"ssh -F 'unclosed\"")
    r = bcdr("snapshots", "-c", str(bad), "--repo", "off", env=env)
    assert r.code == 1 and "the repository's ssh_command is not a command" in r.err, r


# The sftp server, logging its requests; once ARM exists, the first session
# goes wrong after CUT bytes sent, as the file MODE says: "cut" dies, "id"
# answers a READ with a DATA for no request, "long" with more data than
# asked.
FAULTY = """#!{python}
import os, struct, subprocess, sys, threading
server = ["/usr/lib/openssh/sftp-server", "-e", "-l", "INFO"]
log = open("{base}/sftp.log", "ab")
try:
    armed = os.path.exists("{base}/ARM") and not os.mkdir("{base}/CUT")
except FileExistsError:
    armed = False
mode = open("{base}/MODE").read() if armed else ""
if not armed:
    os.dup2(log.fileno(), 2)
    os.execv(server[0], server)
p = subprocess.Popen(server, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log)
def pump():
    while True:
        b = os.read(0, 65536)
        if not b:
            break
        p.stdin.write(b)
        p.stdin.flush()
threading.Thread(target=pump, daemon=True).start()
out = p.stdout
sent, done = 0, False
while True:
    head = out.read(4)
    if len(head) < 4:
        break
    pkt = out.read(struct.unpack(">I", head)[0])
    if sent >= {cut} and not done and pkt[0] == 103 and len(pkt) > 32768:
        done = True
        if mode == "cut":
            break
        if mode == "id":
            pkt = pkt[:1] + struct.pack(">I", struct.unpack(">I", pkt[1:5])[0] ^ 0x40000000) + pkt[5:]
        if mode == "long":
            n = struct.unpack(">I", pkt[5:9])[0] + 16
            pkt = pkt[:5] + struct.pack(">I", n) + pkt[9:] + bytes(16)
    os.write(1, struct.pack(">I", len(pkt)) + pkt)
    sent += 4 + len(pkt)
p.kill()
os._exit(1)
"""


def faulty_sftp(bcdr, tmp_path, mode):
    """An sshd whose sftp server goes wrong (FAULTY) once armed, and a
    repository on it holding 9 MiB in packs."""
    if not os.path.exists("/usr/lib/openssh/sftp-server"):
        import pytest
        pytest.skip("no /usr/lib/openssh/sftp-server")
    base = tmp_path / "srv"
    base.mkdir()
    script = base / "sftp-server"
    script.write_text(FAULTY.format(python=sys.executable, base=base, cut=256 << 10))
    script.chmod(0o755)
    server = Sshd(tmp_path / "sshd", subsystem=str(script)).start()
    root = str(tmp_path / "r")
    repo = sftp_repo(bcdr, server, root, tmp_path)
    repo.init()
    src = tmp_path / "src"
    src.mkdir()
    for i in range(4):
        (src / f"big{i}").write_bytes(os.urandom(2 << 20))
    for i in range(100):
        (src / f"small{i}").write_bytes(os.urandom(8192))
    repo.backup(str(src))
    (base / "sftp.log").write_text("")
    arm(base, mode)
    return server, repo, root, src, base


def arm(base, mode):
    """The next session goes wrong as mode says."""
    (base / "MODE").write_text(mode)
    if (base / "CUT").exists():
        (base / "CUT").rmdir()
    (base / "ARM").touch()


def test_restore_streams_packs_and_survives_a_dying_session(bcdr, tmp_path):
    """A restore over sftp opens each pack once and reads it in one
    pipelined stream; a session that dies mid-stream is replaced and the
    stream goes on from its last byte: the tree comes back whole."""
    server, repo, root, src, base = faulty_sftp(bcdr, tmp_path, "cut")
    try:
        repo.restore("latest", str(tmp_path / "out"))
        assert (base / "CUT").exists()
        assert tree_state(tmp_path / "out" / os.path.relpath(src, "/")) == tree_state(src)
        log = base / "sftp.log"
        opens = [line for line in log.read_text().splitlines()
                 if "open \"" in line and "/data/" in line and "flags READ" in line]
        packs = packs_in(root)
        # each pack opened once, but the one whose session died (a window
        # by window read opens a pack on each connection: 12 here)
        assert len(opens) <= len(packs) + 2, (opens, packs)
        assert len(set(opens)) < len(opens), opens  # the cut one, again
    finally:
        server.kill()


def test_restore_refuses_a_stream_of_garbage(bcdr, tmp_path):
    """A server that answers a stream's READ with a DATA for no request,
    or with more bytes than asked: the restore fails at once, naming the
    server, and reports nothing restored."""
    server, repo, root, src, base = faulty_sftp(bcdr, tmp_path, "id")
    try:
        for mode in ("id", "long"):
            arm(base, mode)
            start = time.monotonic()
            r = repo.run("restore", "latest", "--target", str(tmp_path / mode))
            assert (base / "CUT").exists(), mode
            assert r.code == 1, (mode, r)
            assert f"127.0.0.1:{server.port}" in r.err, (mode, r)
            assert "restored snapshot" not in r.out, (mode, r)
            assert time.monotonic() - start < 20
    finally:
        server.kill()
