"""Hosts as network namespaces for the cluster tests, the soak and the
bench: a bridge in a namespace of its own (the switch), and hosts, each a
namespace with one veth (eth0) on it and an address the caller assigns.
Nothing is created in the machine's own namespace, so nothing here can
reach, or be reached from, anything but the hosts made here; close()
kills every process started on a host and deletes every namespace, and is
safe to call twice.

Processes run on a host with `ip netns exec` (which execs, so the Popen's
pid is the program's); the test's own calls into a host (HTTP to an agent,
a TCP client of the VIP) run on a thread that setns() into it: a thread's
network namespace is its own."""
import ctypes
import os
import re
import signal
import subprocess
import threading

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def available():
    """Whether this process may make namespaces (root, iproute2)."""
    if os.geteuid() != 0:
        return False
    try:
        return subprocess.run(["ip", "netns", "list"], capture_output=True).returncode == 0
    except OSError:
        return False


def sh(*args, check=True):
    r = subprocess.run(list(args), capture_output=True, text=True)
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(args)}: {r.stderr.strip()}")
    return r


def sweep():
    """Removes what a run that was killed (SIGKILL, no close()) left: the
    namespaces named after a process that is gone, and their processes."""
    for name in sh("ip", "netns", "list", check=False).stdout.split():
        m = re.match(r"b(\d+)-", name)
        if not m:
            continue
        try:
            os.kill(int(m.group(1)), 0)
            continue  # its run goes on
        except ProcessLookupError:
            pass
        except PermissionError:
            continue
        for pid in sh("ip", "netns", "pids", name, check=False).stdout.split():
            try:
                os.kill(int(pid), signal.SIGKILL)
            except (ProcessLookupError, ValueError):
                pass
        sh("ip", "netns", "del", name, check=False)


class Lab:
    """A switch and hosts on 10.213.0.0/24 (private to the namespaces)."""

    SUBNET = "10.213.0"

    def __init__(self, tag=None):
        # names are per run (15-byte interface names), so two runs never meet
        self.tag = tag or f"b{os.getpid()}"
        sweep()
        self.switch = f"{self.tag}-sw"
        self.hosts = {}  # name -> (namespace, address, switch-side veth)
        self.procs = []
        sh("ip", "netns", "add", self.switch)
        self.closed = False
        try:
            sh("ip", "-n", self.switch, "link", "add", "br0", "type", "bridge")
            sh("ip", "-n", self.switch, "link", "set", "br0", "up")
        except Exception:
            self.close()
            raise

    def ns(self, host):
        return self.hosts[host][0]

    def ip(self, host):
        return self.hosts[host][1]

    def add_host(self, name, last_octet):
        ns = f"{self.tag}-{name}"
        peer = f"{self.tag}{name}"[:15]
        ip = f"{self.SUBNET}.{last_octet}"
        sh("ip", "netns", "add", ns)
        self.hosts[name] = (ns, ip, peer)
        sh("ip", "-n", self.switch, "link", "add", peer, "type", "veth", "peer", "name", "eth0",
           "netns", ns)
        sh("ip", "-n", self.switch, "link", "set", peer, "master", "br0", "up")
        sh("ip", "-n", ns, "addr", "add", f"{ip}/24", "dev", "eth0")
        sh("ip", "-n", ns, "link", "set", "eth0", "up")
        sh("ip", "-n", ns, "link", "set", "lo", "up")
        return ip

    def cut(self, host):
        """A partition: the host's port leaves the bridge. Its link stays
        up (carrier on, as when a switch further away fails), so nothing on
        the host is told; its frames just go nowhere."""
        sh("ip", "-n", self.switch, "link", "set", self.hosts[host][2], "nomaster")

    def heal(self, host):
        sh("ip", "-n", self.switch, "link", "set", self.hosts[host][2], "master", "br0")

    def addresses(self, host):
        """The IPv4 addresses on the host's eth0."""
        out = sh("ip", "-n", self.ns(host), "-4", "-o", "addr", "show", "dev", "eth0").stdout
        return [f.split()[3] for f in out.splitlines()]

    def argv(self, host, argv):
        return ["ip", "netns", "exec", self.ns(host), *map(str, argv)]

    def popen(self, host, argv, **kw):
        p = subprocess.Popen(self.argv(host, argv), **kw)
        self.procs.append(p)
        return p

    def _enter(self, host):
        """Moves the calling thread into the host's network namespace."""
        fd = os.open(f"/run/netns/{self.ns(host)}", os.O_RDONLY | os.O_CLOEXEC)
        try:
            if _libc.setns(fd, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns")
        finally:
            os.close(fd)

    def call(self, host, fn, *args, **kw):
        """fn(*args, **kw) on a thread inside the host's namespace."""
        out = {}

        def run():
            try:
                self._enter(host)
                out["value"] = fn(*args, **kw)
            except BaseException as e:  # handed to the caller
                out["error"] = e

        t = threading.Thread(target=run, daemon=True)
        t.start()
        t.join()
        if "error" in out:
            raise out["error"]
        return out["value"]

    def thread(self, host, fn, *args):
        """fn(*args) on a daemon thread inside the host, left running."""
        def run():
            self._enter(host)
            fn(*args)

        t = threading.Thread(target=run, daemon=True)
        t.start()
        return t

    def kill_all(self, host):
        """SIGKILL to every process in the host's namespace (its death)."""
        r = sh("ip", "netns", "pids", self.ns(host), check=False)
        for pid in r.stdout.split():
            try:
                os.kill(int(pid), signal.SIGCONT)
                os.kill(int(pid), signal.SIGKILL)
            except (ProcessLookupError, ValueError):
                pass

    def close(self):
        if self.closed:
            return
        self.closed = True
        for p in self.procs:
            if p.poll() is None:
                try:
                    p.send_signal(signal.SIGCONT)
                    p.kill()
                except ProcessLookupError:
                    pass
        for host in list(self.hosts):
            self.kill_all(host)  # what the processes started (a promote's server)
        for p in self.procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        for ns, _, _ in self.hosts.values():
            sh("ip", "netns", "del", ns, check=False)
        sh("ip", "netns", "del", self.switch, check=False)
