"""The fencing checker of the cluster tests (test_cluster.py on 127.0.0.1,
test_cluster_netns.py across network namespaces, scripts/soak-cluster):
every member's promote and demote commands append
`<time> start|stop <member> <token> <reason>` to one file (fence_script),
on one clock; Fence reads it as the timeline of who was active and asserts
that fencing tokens grow with every new leader and that no two leaders were
active at once (docs/cluster.md, "The safety argument")."""
import time


def fence_script(path, fence, on_start="", on_stop=""):
    """The promote/demote command: `path start|stop`. on_start and on_stop
    are shell lines run after the start line is written and before the stop
    line is (a service that starts and stops with the leadership)."""
    # one short line, appended: atomic under O_APPEND
    line = (f"printf '%s %s %s %s %s\\n' \"$(date +%s.%N)\" \"$1\" "
            f"\"$BCDR_MEMBER\" \"$BCDR_FENCING_TOKEN\" \"$BCDR_REASON\" >> {fence.path}\n")
    path.write_text("#!/bin/sh\n"
                    f"if [ \"$1\" = stop ]; then\n{on_stop}\n{line}else\n{line}{on_start}\nfi\n")
    path.chmod(0o755)
    return path


class Fence:
    """The file every promote/demote writes to, read as intervals."""

    def __init__(self, path):
        self.path = path
        path.write_text("")

    def lines(self):
        out = []
        for line in self.path.read_text().splitlines():
            t, what, member, token, *why = line.split(" ")
            out.append((float(t), what, member, int(token), " ".join(why)))
        return out

    def starts(self):
        return [l for l in self.lines() if l[1] == "start"]

    def mark_dead(self, member, token):
        """A member killed with its agent: its service ends with it."""
        with open(self.path, "a") as f:
            f.write(f"{time.time():.9f} stop {member} {token} killed\n")

    def intervals(self):
        """(start, stop or None, member, token) in the order they began."""
        open_ = {}
        done = []
        for t, what, member, token, _ in sorted(self.lines()):
            if what == "start":
                assert (member, token) not in open_, self.lines()
                open_[(member, token)] = t
            else:
                assert (member, token) in open_, f"stop without start: {self.lines()}"
                done.append((open_.pop((member, token)), t, member, token))
        done += [(t, None, m, tok) for (m, tok), t in open_.items()]
        return sorted(done)

    def assert_safe(self, frozen=()):
        """Tokens grow with each leader; no two intervals overlap, except
        where the older one belongs to a frozen member (it could not run its
        demote) and the newer one has the larger token. frozen holds member
        names, or (member, token) for one leadership of theirs."""
        iv = self.intervals()
        tokens = [tok for _, _, _, tok in iv]
        assert tokens == sorted(tokens) and len(set(tokens)) == len(tokens), iv
        for (s1, e1, m1, t1), (s2, e2, m2, t2) in zip(iv, iv[1:]):
            if e1 is None or e1 > s2:
                assert (m1 in frozen or (m1, t1) in frozen) and t2 > t1, \
                    f"two leaders at once: {iv}"
        return iv


def leader_of(fence):
    iv = fence.intervals()
    open_ = [x for x in iv if x[1] is None]
    return open_[-1] if open_ else None


def wait_leader(fence, timeout=10, other_than=None):
    deadline = time.time() + timeout
    while time.time() < deadline:
        cur = leader_of(fence)
        if cur and cur[2] != other_than:
            return cur
        time.sleep(0.05)
    raise AssertionError(f"no leader: {fence.lines()}")
