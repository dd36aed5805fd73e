"""Real receivers on 127.0.0.1 for the alert tests: an SMTP sink (aiosmtpd,
Debian's python3-aiosmtpd) and a webhook server (http.server) that records
what it is sent and can be told to fail or hang."""
import json
import socket
import threading
import time
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from aiosmtpd.controller import Controller

# Fields of the message Alertmanager sends to webhook receivers.
AM_KEYS = {"version", "groupKey", "truncatedAlerts", "status", "receiver", "groupLabels",
           "commonLabels", "commonAnnotations", "externalURL", "alerts"}
AM_ALERT_KEYS = {"status", "labels", "annotations", "startsAt", "endsAt", "generatorURL",
                 "fingerprint"}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def check_am_shape(msg):
    """Asserts msg is shaped like Alertmanager's webhook message (version 4)."""
    assert set(msg) == AM_KEYS, sorted(set(msg) ^ AM_KEYS)
    assert msg["version"] == "4"
    assert msg["status"] in ("firing", "resolved")
    assert isinstance(msg["groupKey"], str) and msg["groupKey"]
    assert isinstance(msg["truncatedAlerts"], int)
    for key in ("groupLabels", "commonLabels", "commonAnnotations"):
        assert isinstance(msg[key], dict)
        assert all(isinstance(v, str) for v in msg[key].values())
    assert msg["alerts"]
    for alert in msg["alerts"]:
        assert set(alert) == AM_ALERT_KEYS, sorted(set(alert) ^ AM_ALERT_KEYS)
        assert alert["status"] in ("firing", "resolved")
        assert alert["labels"]["alertname"]
        assert alert["startsAt"].endswith("Z")
        assert len(alert["fingerprint"]) == 16
        if alert["status"] == "firing":
            assert alert["endsAt"] == "0001-01-01T00:00:00Z"
        else:
            assert alert["endsAt"] >= alert["startsAt"]


class _Mailbox:
    def __init__(self):
        self.messages = []
        self.cond = threading.Condition()

    async def handle_DATA(self, server, session, envelope):
        with self.cond:
            self.messages.append({
                "from": envelope.mail_from,
                "to": list(envelope.rcpt_tos),
                "message": message_from_bytes(envelope.content),
            })
            self.cond.notify_all()
        return "250 OK"


class SmtpSink:
    """aiosmtpd on 127.0.0.1 (or host), without STARTTLS: every mail it
    accepts is in .messages."""

    def __init__(self, host="127.0.0.1"):
        self.host = host
        self.port = free_port()
        self.box = _Mailbox()
        self.controller = Controller(self.box, hostname=host, port=self.port)

    @property
    def url(self):
        return f"smtp://{self.host}:{self.port}"

    @property
    def messages(self):
        with self.box.cond:
            return list(self.box.messages)

    def wait(self, n=1, timeout=20):
        deadline = time.monotonic() + timeout
        with self.box.cond:
            while len(self.box.messages) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"{len(self.box.messages)} mails, expected {n}")
                self.box.cond.wait(left)
            return list(self.box.messages)

    def __enter__(self):
        self.controller.start()
        return self

    def __exit__(self, *exc):
        self.controller.stop()


class WebhookServer:
    """Records every POST body (parsed JSON) with its path. mode: "ok",
    "fail" (HTTP 500) or "hang" (answers after hang_s)."""

    def __init__(self, mode="ok", hang_s=30, port=0):
        self.mode = mode
        self.hang_s = hang_s
        self.posts = []
        self.cond = threading.Condition()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                with outer.cond:
                    outer.posts.append({"path": self.path, "headers": dict(self.headers),
                                        "body": json.loads(body)})
                    outer.cond.notify_all()
                if outer.mode == "hang":
                    time.sleep(outer.hang_s)
                code = 500 if outer.mode == "fail" else 200
                reply = b"boom: receiver down\n" if code == 500 else b"{}"
                try:
                    self.send_response(code)
                    self.send_header("Content-Length", str(len(reply)))
                    self.end_headers()
                    self.wfile.write(reply)
                except OSError:
                    pass

        ThreadingHTTPServer.allow_reuse_address = True
        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}/hook"

    def bodies(self):
        with self.cond:
            return [p["body"] for p in self.posts]

    def wait(self, n=1, timeout=20, pred=None):
        """Waits until n posts (matching pred, when given) have arrived."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                got = [p["body"] for p in self.posts if pred is None or pred(p["body"])]
                if len(got) >= n:
                    return got
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"{len(got)} posts, expected {n}: {self.posts}")
                self.cond.wait(left)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
