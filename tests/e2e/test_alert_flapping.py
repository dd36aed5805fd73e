"""Flap detection in the agent: an HTTP server toggled fast makes its check
flap; the webhook receiver is told once that the check flaps (not once per
change), and once more, when it calms down, of the state it settled in."""
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from alert_servers import WebhookServer, check_am_shape


class Toggler:
    """/health answers 200 or 500; toggle() flips it every period seconds
    until settle() fixes it."""

    def __init__(self):
        self.ok = True
        self.stop = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                body = b"ok\n" if outer.ok else b"broken\n"
                self.send_response(200 if outer.ok else 500)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.thread = None

    def toggle(self, period):
        def run():
            while not self.stop.wait(period):
                self.ok = not self.ok
        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()

    def settle(self, ok):
        self.stop.set()
        self.thread.join()
        self.ok = ok

    def close(self):
        self.stop.set()
        self.server.shutdown()
        self.server.server_close()


def plan(port, hook):
    return (
        "checks:\n  - name: flap\n"
        f"    http: {{ url: 'http://127.0.0.1:{port}/health', expect_status: 200 }}\n"
        "    interval: 0.2s\n    timeout: 1s\n    flap: { changes: 4, cycles: 10 }\n"
        "alerts:\n  receivers:\n"
        f"    - name: hook\n      webhook: {{ url: '{hook.url}' }}\n"
        # group_wait leaves time to see the flapping before anything is sent
        "  route: { receiver: hook, group_wait: 3s, group_interval: 1s,"
        " repeat_interval: 1h }\n")


@pytest.mark.parametrize("settled", ["ok", "critical"])
def test_flapping_check_notifies_once_then_the_settled_state(agent, settled):
    web = Toggler()
    try:
        with WebhookServer() as hook:
            a = agent(plan(web.port, hook)).start()
            a.wait_for(lambda: a.api("/checks/flap")["last_run"], what="a first run")
            web.toggle(0.3)
            a.wait_for(lambda: a.api("/checks/flap")["flapping"], timeout=30,
                       what="the check to flap")
            (told,) = hook.wait(1, timeout=30)
            check_am_shape(told)
            assert told["status"] == "firing"
            (alert,) = told["alerts"]
            assert alert["labels"]["flapping"] == "true"
            assert alert["labels"]["severity"] == "critical"
            assert alert["annotations"]["summary"].startswith("flapping: ")
            (shown,) = [x for x in a.api("/alerts") if x["labels"]["check"] == "flap"]
            assert shown["state"] == "firing" and shown["labels"]["flapping"] == "true"
            # it goes on flapping for a while: its changes are events, not news
            time.sleep(2.5)
            assert a.api("/checks/flap")["flapping"] is True
            assert len(hook.bodies()) == 1, hook.bodies()
            assert len(a.events(kind="state", check="flap")) >= 4

            web.settle(settled == "ok")
            a.wait_for(lambda: not a.api("/checks/flap")["flapping"], timeout=30,
                       what="the flapping to stop")
            check = a.api("/checks/flap")
            assert check["state"] == settled
            (_, last) = hook.wait(2, timeout=30)
            check_am_shape(last)
            (alert,) = last["alerts"]
            if settled == "ok":
                # the alert it was told about (flapping) has resolved
                assert last["status"] == "resolved"
                assert alert["labels"]["flapping"] == "true"
            else:
                assert last["status"] == "firing"
                assert "flapping" not in alert["labels"]
                assert alert["labels"]["severity"] == "critical"
                assert "500" in alert["annotations"]["summary"]
            time.sleep(1.5)
            assert len(hook.bodies()) == 2, hook.bodies()
            flaps = a.events(kind="flapping", check="flap")
            assert [e["data"]["flapping"] for e in flaps] in ([True, False], [False, True])
            assert any("settled " + settled in e["message"] for e in flaps)
    finally:
        web.close()


def test_flapping_check_holds_its_actions_until_it_settles(agent, tmp_path):
    """A fix for a check that comes and goes would act on noise: while the
    check flaps its actions are held (one 'held' action event), and they run
    when it settles critical."""
    web = Toggler()
    runs = tmp_path / "runs"
    try:
        a = agent(
            "checks:\n  - name: flap\n"
            f"    http: {{ url: 'http://127.0.0.1:{web.port}/health', expect_status: 200 }}\n"
            "    interval: 0.2s\n    timeout: 1s\n    flap: { changes: 4, cycles: 10 }\n"
            "    actions: [fix]\n"
            "actions:\n  - name: fix\n"
            f"    exec: [/bin/sh, -c, 'echo run >> {runs}']\n"
            "    limit: 100 within 10m\n").start()
        a.wait_for(lambda: a.api("/checks/flap")["last_run"], what="a first run")
        web.toggle(0.3)
        a.wait_for(lambda: a.api("/checks/flap")["flapping"], timeout=30,
                   what="the check to flap")
        held = a.wait_for(lambda: [e for e in a.events(kind="action", check="flap")
                                   if e["data"].get("event") == "held"],
                          timeout=30, what="the held event")
        assert "'fix'" in held[0]["message"] and "flapping" in held[0]["message"]
        # runs there may be came before the flapping was seen: at most one
        # per failure among the 4 changes it takes
        before = len(runs.read_text().splitlines()) if runs.exists() else 0
        assert before <= 2
        time.sleep(2.5)
        assert a.api("/checks/flap")["flapping"] is True
        assert len(a.events(kind="state", check="flap")) >= 4
        assert (len(runs.read_text().splitlines()) if runs.exists() else 0) == before
        assert len([e for e in a.events(kind="action", check="flap")
                    if e["data"].get("event") == "held"]) == 1
        web.settle(False)
        a.wait_for(lambda: not a.api("/checks/flap")["flapping"], timeout=30,
                   what="the flapping to stop")
        assert a.api("/checks/flap")["state"] == "critical"
        a.wait_for(lambda: runs.exists() and len(runs.read_text().splitlines()) > before,
                   timeout=15, what="the action to run once settled critical")
    finally:
        web.close()
