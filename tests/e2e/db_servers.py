"""Real database servers for the end-to-end tests, started in temporary
directories on free ports: PostgreSQL (initdb + pg_ctl as the unprivileged
user nobody, since PostgreSQL refuses to run as root) and MariaDB
(mariadb-install-db + mariadbd on a port and a socket of its own)."""
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pg_bin():
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        pytest.skip("PostgreSQL is not installed (scripts/bootstrap test)")
    return Path(found[-1]).parent


class Postgres:
    """A PostgreSQL cluster on 127.0.0.1:port, trust authentication for the
    superuser postgres, TCP only (no socket directory to share)."""

    def __init__(self):
        self.bin = pg_bin()
        # Not under pytest's tmp_path: that is root's, mode 0700.
        self.dir = Path(tempfile.mkdtemp(prefix="bcdr-pg-"))
        self.data = self.dir / "data"
        self.port = free_port()
        self.log = self.dir / "server.log"
        as_root = os.geteuid() == 0
        if as_root:
            shutil.chown(self.dir, "nobody", "nogroup")
        self.prefix = ["runuser", "-u", "nobody", "--"] if as_root else []
        self._run(str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres",
                  "--auth=trust", "-E", "UTF8", "--no-sync")

    def _run(self, *argv):
        p = subprocess.run(self.prefix + list(argv), capture_output=True, text=True,
                           timeout=120, cwd=self.dir)
        assert p.returncode == 0, (argv, p.stdout, p.stderr)
        return p

    def start(self):
        opts = (f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories='' "
                "-c fsync=off -c full_page_writes=off")
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-w",
                  "-t", "120", "-o", opts, "start")
        return self

    def stop(self):
        subprocess.run(self.prefix + [str(self.bin / "pg_ctl"), "-D", str(self.data), "-m",
                                      "immediate", "-w", "stop"], capture_output=True,
                       timeout=60, cwd=self.dir)

    def conn(self):
        return ["-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres"]

    def tool(self, name):
        return str(self.bin / name)

    def psql(self, sql, db="postgres"):
        p = subprocess.run([self.tool("psql"), *self.conn(), "-d", db, "-v", "ON_ERROR_STOP=1",
                            "-qtA", "-c", sql], capture_output=True, text=True, timeout=300)
        assert p.returncode == 0, (sql, p.stderr)
        return p.stdout.strip()

    def close(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


class MariaDB:
    """mariadbd on 127.0.0.1:port and its own socket, as root (--user=root:
    a throwaway datadir), root without a password over the socket."""

    def __init__(self):
        if not shutil.which("mariadb-install-db") or not os.path.exists("/usr/sbin/mariadbd"):
            pytest.skip("MariaDB is not installed (scripts/bootstrap test)")
        self.dir = Path(tempfile.mkdtemp(prefix="bcdr-my-"))
        self.data = self.dir / "data"
        self.sock = self.dir / "mysqld.sock"
        self.port = free_port()
        self.proc = None
        p = subprocess.run(["mariadb-install-db", "--no-defaults", f"--datadir={self.data}",
                            "--user=root", "--auth-root-authentication-method=normal",
                            "--skip-test-db"], capture_output=True, text=True, timeout=300)
        assert p.returncode == 0, p.stdout + p.stderr

    def start(self):
        self.log = open(self.dir / "server.log", "ab")
        self.proc = subprocess.Popen(
            ["/usr/sbin/mariadbd", "--no-defaults", f"--datadir={self.data}", "--user=root",
             f"--port={self.port}", "--bind-address=127.0.0.1", f"--socket={self.sock}",
             f"--pid-file={self.dir / 'pid'}", "--skip-log-bin", "--innodb-buffer-pool-size=64M",
             "--innodb-flush-log-at-trx-commit=0", "--skip-name-resolve"],
            stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 120
        while time.time() < deadline:
            assert self.proc.poll() is None, (self.dir / "server.log").read_text()
            p = subprocess.run(self.client() + ["-e", "select 1"], capture_output=True)
            if p.returncode == 0:
                return self
            time.sleep(0.2)
        raise AssertionError("mariadbd did not come up: " + (self.dir / "server.log").read_text())

    def client(self, tool="mariadb"):
        return [tool, "--no-defaults", f"--socket={self.sock}", "-uroot"]

    def sql(self, sql, db=None):
        p = subprocess.run(self.client() + ["-N", "-B"] + ([db] if db else []) + ["-e", sql],
                           capture_output=True, text=True, timeout=300)
        assert p.returncode == 0, (sql, p.stderr)
        return p.stdout.strip()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()  # a throwaway datadir: no clean shutdown needed
            self.proc.wait()
        if self.proc:
            self.log.close()
        self.proc = None

    def close(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
