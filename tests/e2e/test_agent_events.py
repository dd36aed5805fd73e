"""`bcdr events --follow`: new events stream as they come (JSON lines with
--json), a restart of the agent is waited for and said on stderr, and the
follower ends when its reader goes away. Under it, the long poll
/api/v1/events?after=ID&wait=S: answered when an event comes, empty at its
deadline, bounded, and harmless when its clients leave or the agent stops."""
import json
import queue
import signal
import socket
import subprocess
import threading
import time
import urllib.request

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


def site_agent(agent, tmp_path):
    """A started agent whose check 'site' is ok while the returned flag file
    exists."""
    flag = tmp_path / "flag"
    flag.write_text("up")
    a = agent(plan(flag), interval="0.2s").start()
    a.wait_for(lambda: a.api("/checks/site")["state"] == "ok", what="the check to be ok")
    return a, flag


def test_follow_streams_new_events_across_a_restart(agent, tmp_path):
    a, flag = site_agent(agent, tmp_path)
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


def get_json(url, timeout=30):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.status, json.loads(r.read())


def test_long_poll_answers_when_an_event_comes(agent, tmp_path):
    a, flag = site_agent(agent, tmp_path)
    last = a.events()[-1]["id"]
    # events there already: answered at once, the wait does not apply
    t = time.monotonic()
    status, body = get_json(f"{a.url}/api/v1/events?after=0&wait=30")
    assert status == 200 and body and time.monotonic() - t < 5
    # nothing after the last one: the request waits for the next event
    result = {}

    def poll():
        t0 = time.monotonic()
        result["answer"] = get_json(f"{a.url}/api/v1/events?after={last}&wait=30&kind=state")
        result["took"] = time.monotonic() - t0
    th = threading.Thread(target=poll)
    th.start()
    time.sleep(1.5)
    assert "answer" not in result  # still waiting: no state event yet
    changed = time.monotonic()
    flag.unlink()
    th.join(timeout=WAIT)
    assert "answer" in result, "the long poll did not answer"
    status, body = result["answer"]
    assert status == 200
    assert [e["kind"] for e in body] == ["state"], body
    assert "ok -> critical" in body[0]["message"] and body[0]["id"] > last
    assert result["took"] >= 1.5
    # answered as the event came, not at the end of the 30 s wait
    assert time.monotonic() - changed < (10 if SANITIZED else 5)


def test_long_poll_ends_empty_at_its_deadline(agent, tmp_path):
    a, _ = site_agent(agent, tmp_path)
    last = a.events()[-1]["id"]
    t = time.monotonic()
    status, body = get_json(f"{a.url}/api/v1/events?after={last}&wait=2")
    took = time.monotonic() - t
    assert status == 200 and body == []
    assert 1.8 <= took < 10, took


def test_long_poll_bad_wait_is_a_400(agent, tmp_path):
    a = agent(plan(tmp_path / "flag")).start()
    for query, says in (("after=1&wait=61", "invalid wait '61'"),
                        ("after=1&wait=-1", "invalid wait"),
                        ("after=1&wait=x", "invalid wait 'x'"),
                        ("wait=5", "wait needs after")):
        status, body = a.get(f"/api/v1/events?{query}")
        assert status == 400, (query, status, body)
        assert says in body["error"], (query, body)


def test_long_poll_clients_that_leave_or_a_stop_hurt_nothing(agent, tmp_path):
    a, flag = site_agent(agent, tmp_path)
    last = a.events()[-1]["id"]
    # more waiters than the agent parks (64): the rest are answered at once
    socks = []
    for _ in range(70):
        s = socket.create_connection(("127.0.0.1", a.port))
        s.sendall(f"GET /api/v1/events?after={last}&wait=60 HTTP/1.1\r\n"
                  f"Host: 127.0.0.1\r\n\r\n".encode())
        socks.append(s)
    answered = 0
    time.sleep(3 if SANITIZED else 1)
    for s in socks:
        s.settimeout(0.01)
        try:
            if s.recv(4096).startswith(b"HTTP/1.1 200"):
                answered += 1
        except socket.timeout:
            pass
    assert answered == 6, answered
    for s in socks[:40]:
        s.close()  # these leave while parked
    flag.unlink()  # an event: the parked ones are answered (or dropped if gone)
    a.wait_for(lambda: a.api("/checks/site")["state"] == "critical", what="critical")
    for s in socks[40:64]:
        s.settimeout(WAIT)
        assert s.recv(4096).startswith(b"HTTP/1.1 200")
        s.close()
    # one parked at the stop: the agent stops at once and cleanly, the
    # connection ends (a follower reconnects to the next agent)
    last = a.events()[-1]["id"]
    s = socket.create_connection(("127.0.0.1", a.port))
    s.sendall(f"GET /api/v1/events?after={last + 1000}&wait=60 HTTP/1.1\r\n"
              f"Host: 127.0.0.1\r\n\r\n".encode())
    time.sleep(0.5)
    t = time.monotonic()
    assert a.stop() == 0
    assert time.monotonic() - t < 10
    s.settimeout(5)
    answer = s.recv(4096)
    assert answer == b"" or answer.startswith(b"HTTP/1.1 200"), answer
    s.close()
    for s in socks[64:]:
        s.close()
