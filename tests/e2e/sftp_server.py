"""A real OpenSSH server for the sftp repository tests, started by the test:
`/usr/sbin/sshd -D -e -f CONFIG` on 127.0.0.1 and a free port, with its own
host key, a generated client key in its AuthorizedKeysFile, and a client
ssh config (known_hosts, identity) that bcdr is given through
BCDR_SSH_COMMAND. Nothing under ~/.ssh is read or written."""
import os
import shutil
import signal
import subprocess
import time

import pytest

from remote_servers import free_port, wait_port

SSHD = "/usr/sbin/sshd"
# in-process: no login shell (whose startup files cost time) per session
SFTP_SERVER = "internal-sftp"


def keygen(path):
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)],
                   check=True, stdout=subprocess.DEVNULL)


def descendants(pid):
    """Every process below pid (sshd's children call setsid(), so a
    process group would not reach them)."""
    children = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(d))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        for c in children.get(p, []):
            out.append(c)
            todo.append(c)
    return out


class Sshd:
    def __init__(self, base, port=None, subsystem=SFTP_SERVER):
        if not os.path.exists(SSHD) or not shutil.which("ssh"):
            pytest.skip("openssh-server/openssh-client are not installed (scripts/bootstrap test set)")
        self.base = str(base)
        self.port = port or free_port()
        self.subsystem = subsystem
        self.proc = None
        os.makedirs(self.base, exist_ok=True)
        self.host_key = os.path.join(self.base, "host_key")
        self.client_key = os.path.join(self.base, "client_key")
        if not os.path.exists(self.host_key):
            keygen(self.host_key)
            keygen(self.client_key)
        self.authorized = os.path.join(self.base, "authorized_keys")
        shutil.copy(self.client_key + ".pub", self.authorized)
        self.known_hosts = os.path.join(self.base, "known_hosts")
        with open(self.host_key + ".pub") as f:
            algo, key = f.read().split()[:2]
        with open(self.known_hosts, "w") as f:
            f.write(f"[127.0.0.1]:{self.port} {algo} {key}\n")
        self.config = os.path.join(self.base, "sshd_config")
        self.client_config = os.path.join(self.base, "ssh_config")
        self.write_configs()
        self.log = os.path.join(self.base, "sshd.log")

    def write_configs(self):
        with open(self.config, "w") as f:
            f.write(f"""ListenAddress 127.0.0.1:{self.port}
HostKey {self.host_key}
PidFile none
AuthorizedKeysFile {self.authorized}
StrictModes no
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
Subsystem sftp {self.subsystem}
LogLevel INFO
""")
        self.write_client_config(self.known_hosts)

    def write_client_config(self, known_hosts):
        with open(self.client_config, "w") as f:
            f.write(f"""Host *
  IdentityFile {self.client_key}
  IdentitiesOnly yes
  UserKnownHostsFile {known_hosts}
  GlobalKnownHostsFile /dev/null
  StrictHostKeyChecking yes
  UpdateHostKeys no
  LogLevel ERROR
""")

    @property
    def ssh_command(self):
        return f"ssh -F {self.client_config}"

    @property
    def env(self):
        return {"BCDR_SSH_COMMAND": self.ssh_command}

    def logins(self):
        """How many sessions the server has accepted so far."""
        with open(self.log, errors="replace") as f:
            return f.read().count("Accepted publickey")

    def url(self, path):
        return f"sftp:127.0.0.1:{self.port}:{path}"

    def start(self):
        # sshd wants its privilege separation directory (Debian's service makes it)
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen([SSHD, "-D", "-e", "-f", self.config],
                                         stdout=log, stderr=log)
        wait_port(self.port, self.proc, timeout=20)
        return self

    def kill(self):
        """kill -9 the server and every session it forked."""
        if self.proc and self.proc.poll() is None:
            for p in [self.proc.pid] + descendants(self.proc.pid):
                try:
                    os.kill(p, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            self.proc.wait()
        self.proc = None

    def restart(self):
        self.kill()
        end = time.monotonic() + 10
        while True:
            try:
                return self.start()
            except RuntimeError:
                if time.monotonic() > end:
                    raise
                time.sleep(0.2)


@pytest.fixture
def sshd(tmp_path):
    server = Sshd(tmp_path / "sshd").start()
    yield server
    server.kill()
