"""`bcdr events --follow`: new events stream as they come (JSON lines with
--json), a restart of the agent is waited for and said on stderr, and the
follower ends when its reader goes away."""
import json
import queue
import signal
import subprocess
import threading
import time

from conftest import BCDR, SANITIZED

WAIT = 30 if SANITIZED else 15


def default_sigint():
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class Follower:
    def __init__(self, *args):
        # as in a terminal: Ctrl-C is SIGINT with its default action (a test
        # run from a background job would otherwise pass it on ignored)
        self.proc = subprocess.Popen([BCDR, "events", "--follow", *args],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, preexec_fn=default_sigint)
        self.out, self.err = queue.Queue(), queue.Queue()
        for stream, q in ((self.proc.stdout, self.out), (self.proc.stderr, self.err)):
            threading.Thread(target=self._pump, args=(stream, q), daemon=True).start()

    @staticmethod
    def _pump(stream, q):
        for line in stream:
            q.put(line.rstrip("\n"))

    @staticmethod
    def next_matching(q, pred, what):
        deadline = time.monotonic() + WAIT
        seen = []
        while time.monotonic() < deadline:
            try:
                line = q.get(timeout=0.2)
            except queue.Empty:
                continue
            seen.append(line)
            if pred(line):
                return line, seen
        raise AssertionError(f"no {what} within {WAIT}s; saw {seen}")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            self.proc.wait(timeout=10)


def plan(flag):
    return (f"checks:\n  - name: site\n    file: {{ path: '{flag}' }}\n")


def test_follow_streams_new_events_across_a_restart(agent, tmp_path):
    flag = tmp_path / "flag"
    flag.write_text("up")
    a = agent(plan(flag), interval="0.2s").start()
    a.wait_for(lambda: a.api("/checks/site")["state"] == "ok", what="the check to be ok")
    f = Follower("--json", "-c", str(a.plan))
    try:
        ids = []

        def event(kind, check=None, text=""):
            def pred(line):
                e = json.loads(line)
                ids.append(e["id"])
                return e["kind"] == kind and e["check"] == check and text in e["message"]
            return pred
        # what was there: the agent's start
        Follower.next_matching(f.out, event("agent", text="start"), "start event")
        flag.unlink()
        line, _ = Follower.next_matching(f.out, event("state", "site", "ok -> critical"),
                                         "the new state event")
        assert set(json.loads(line)) >= {"id", "time", "kind", "check", "message", "data"}

        a.stop()
        Follower.next_matching(f.err, lambda l: "lost the agent" in l and "reconnecting" in l,
                               "the lost message")
        assert f.proc.poll() is None  # it waits
        a.start()
        Follower.next_matching(f.err, lambda l: "reconnected" in l, "the reconnected message")
        flag.write_text("up")
        Follower.next_matching(f.out, event("state", "site", "-> ok"), "the state after restart")
        assert ids == sorted(set(ids)), ids  # none twice, none out of order
    finally:
        f.stop()
    assert f.proc.returncode == -signal.SIGINT


def test_follow_ends_when_the_reader_goes_away(agent, tmp_path):
    flag = tmp_path / "flag"
    a = agent(plan(flag), interval="0.2s").start()
    f = subprocess.Popen([BCDR, "events", "-f", "--kind", "state", "-c", str(a.plan)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = f.stdout.readline()
        assert "site: " in first and "critical" in first, first
        f.stdout.close()  # like `| head -1`
        f.wait(timeout=10)
        assert f.returncode in (0, -signal.SIGPIPE), f.returncode
    finally:
        if f.poll() is None:
            f.kill()
            f.wait()


def test_follow_bad_filter_is_a_usage_error(agent, tmp_path, bcdr):
    a = agent(plan(tmp_path / "flag")).start()
    r = bcdr("events", "--follow", "--kind", "nonsense", "-c", a.plan)
    assert r.code == 2, r
    assert "invalid kind 'nonsense'" in r.err
