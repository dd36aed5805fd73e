"""The dashboard, served by a real agent, in a real browser (Debian's chromium
driven by playwright-core, tests/e2e/browser/). The agent watches a test HTTP
server on 127.0.0.1 that the tests make fail and recover."""
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from conftest import BCDR, ROOT, SANITIZED

sys.path.insert(0, str(Path(__file__).resolve().parent / "browser"))
from dashboard_browser import Browser, wait_until  # noqa: E402

ARTIFACTS = ROOT / "build" / "test-artifacts"
TOKEN = "dashboard-test-token-0123456789abcdef"


class Upstream:
    """The service the plan checks: answers `status` to every GET."""

    def __init__(self):
        self.status = 200
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                body = b"ok\n" if outer.status == 200 else b"broken\n"
                self.send_response(outer.status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


CHECKS = """\
checks:
  - name: web
    interval: 250ms
    timeout: 2s
    labels: {{ component: web }}
    http: http://127.0.0.1:{port}/
  - name: api
    interval: 1s
    labels: {{ component: api }}
    http: http://127.0.0.1:{port}/api
"""


class Agent:
    """`bcdr agent` on 127.0.0.1 with the plan's `checks` (text) appended."""

    def __init__(self, tmp, checks=""):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        state = tmp / "state"
        state.mkdir()
        token = tmp / "token"
        token.write_text(TOKEN + "\n")
        token.chmod(0o600)
        plan = tmp / "bcdr.yaml"
        plan.write_text(f"""\
targets: {{ availability: 99.9% }}
agent:
  listen: 127.0.0.1:{self.port}
  state_dir: {state}
  token_file: {token}
""" + checks)
        self.log_path = tmp / "agent.log"
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen([BCDR, "agent", "-c", str(plan)], stdout=self.log,
                                     stderr=subprocess.STDOUT, cwd=tmp)
        ok = wait_until(self._up, timeout=30 if SANITIZED else 10, step=0.1)
        if not ok:
            self.close()
            pytest.fail(f"the agent did not start: {(tmp / 'agent.log').read_text()[-3000:]}")

    def _up(self):
        if self.proc.poll() is not None:
            return False
        try:
            return self.get("/api/v1/checks") is not None
        except OSError:
            return False

    def request(self, path, method="GET", body=None, token=None):
        headers = {"Accept": "application/json"}
        if token:
            headers["Authorization"] = "Bearer " + token
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        req = urllib.request.Request(self.base + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=10) as res:
                return res.status, res.headers, res.read()
        except urllib.error.HTTPError as e:
            return e.code, e.headers, e.read()

    def get(self, path):
        code, _, body = self.request(path)
        assert code == 200, f"GET {path}: {code} {body[:300]!r}"
        return json.loads(body)

    def check(self, name):
        return next((c for c in self.get("/api/v1/checks") if c["name"] == name), None)

    def close(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


@pytest.fixture(scope="module")
def upstream():
    u = Upstream()
    yield u
    u.close()


@pytest.fixture(scope="module")
def agent(tmp_path_factory, upstream):
    """An agent checking the upstream every 0.25 s."""
    a = Agent(tmp_path_factory.mktemp("dashboard"), CHECKS.format(port=upstream.port))
    if not a.get("/api/v1/checks"):
        a.close()
        pytest.skip("this agent does not run the plan's checks yet (GET /api/v1/checks is [])")
    yield a
    a.close()


@pytest.fixture
def bare_agent(tmp_path):
    """An agent with no checks."""
    a = Agent(tmp_path)
    yield a
    a.close()


@pytest.fixture(scope="module")
def browser():
    b = Browser()
    yield b
    b.close()


def real_problems(browser):
    """Console errors and exceptions, less the browser's own line for an API
    answer of 501: the agent says so for an engine not in this build, and the
    page hides that section (a 501 is still logged by chromium)."""
    return [p for p in browser.problems() if "status of 501" not in p]


def shot(browser, name):
    path = ARTIFACTS / f"dashboard-{name}.png"
    browser.screenshot(path)
    return path


# --- served by the agent (also under ASan) ---------------------------------

def test_agent_serves_the_embedded_dashboard(bare_agent):
    agent = bare_agent
    code, headers, body = agent.request("/")
    assert code == 200
    assert headers["Content-Type"].startswith("text/html")
    assert b"<title>bcdr</title>" in body
    assert b'src="app.js"' in body and b'src="vendor/chart.min.js"' in body
    for path, ctype, needle in [
        ("/app.js", "text/javascript", b"sessionStorage"),
        ("/style.css", "text/css", b"prefers-color-scheme: dark"),
        ("/favicon.svg", "image/svg+xml", b"<svg"),
        ("/vendor/chart.min.js", "text/javascript", b"Chart.js v"),
        ("/index.html?x=1", "text/html", b"<!doctype html>"),
    ]:
        code, headers, body = agent.request(path)
        assert code == 200, path
        assert headers["Content-Type"].startswith(ctype), path
        assert needle in body, path
    # The files are in the binary: identical to web/ in the source tree.
    assert agent.request("/app.js")[2] == (ROOT / "web" / "app.js").read_bytes()
    for missing in ["/nope.html", "/../bcdr.yaml", "/web/app.js", "/vendor/"]:
        assert agent.request(missing)[0] == 404, missing
    # The API is still the API.
    assert isinstance(agent.get("/api/v1/checks"), list)


# --- in the browser --------------------------------------------------------

@pytest.mark.no_sanitizer
def test_pages_load_without_console_errors(agent, browser):
    wait_until(lambda: agent.check("web") and agent.check("web")["state"] == "ok", timeout=10)
    browser.viewport(1280, 900)
    browser.scheme("light")
    browser.goto(agent.base + "/")
    browser.wait('[data-check="web"][data-state="ok"]', timeout=5)
    browser.wait('[data-check="api"]', timeout=5)
    # Read-only by default: no write control until the token is given.
    assert browser.count('main button[data-key^="silence-"]') == 0
    assert browser.text("#live").startswith("live")
    # Keyboard: the first Tab reaches "Skip to content"; a live update (every
    # second) redraws the checks but leaves the focus where it was.
    browser.press("Tab")
    assert browser.eval("document.activeElement.className") == "skip"
    browser.eval("document.querySelector('[data-check=\"web\"] a').focus()")
    time.sleep(2.2)
    assert browser.eval("document.activeElement.dataset.key") == "check-link-web"
    shot(browser, "overview")
    browser.scheme("dark")
    bg = browser.eval("getComputedStyle(document.body).backgroundColor")
    assert bg == "rgb(13, 17, 23)", bg
    shot(browser, "overview-dark")
    browser.scheme("light")

    browser.goto(agent.base + "/#/check/web")
    browser.wait('h1[data-check="web"]')
    browser.wait("#history-chart")
    # The chart has drawn the samples the agent keeps.
    assert wait_until(lambda: browser.eval(
        "Chart.getChart('history-chart')?.data.datasets[0].data.length || 0") > 0, timeout=5)
    shot(browser, "check")

    browser.goto(agent.base + "/#/events")
    browser.wait("#f-kind")
    browser.wait("#ev-list section")
    shot(browser, "events")

    browser.viewport(390, 844)
    browser.goto(agent.base + "/")
    browser.wait('[data-check="web"]')
    # Nothing wider than a phone's screen but the tables' own scrollers.
    assert browser.eval("document.documentElement.scrollWidth") <= 390
    shot(browser, "phone")
    browser.viewport(1280, 900)
    assert real_problems(browser) == []


@pytest.mark.no_sanitizer
def test_failing_check_shows_within_two_seconds_and_recovers(agent, upstream, browser):
    browser.goto(agent.base + "/")
    browser.wait('[data-check="web"][data-state="ok"]', timeout=10)
    try:
        upstream.status = 500
        assert wait_until(lambda: agent.check("web")["state"] == "critical", timeout=10, step=0.02)
        changed = time.monotonic()
        browser.wait('[data-check="web"][data-state="critical"]', timeout=4)
        assert time.monotonic() - changed <= 2.0
        assert browser.text('[data-tile="critical"] .n') != "0"
        shot(browser, "failing")
    finally:
        upstream.status = 200
    assert wait_until(lambda: agent.check("web")["state"] == "ok", timeout=10, step=0.02)
    changed = time.monotonic()
    browser.wait('[data-check="web"][data-state="ok"]', timeout=4)
    assert time.monotonic() - changed <= 2.0

    # The check's page and the timeline show what happened.
    browser.goto(agent.base + "/#/check/web")
    browser.wait('#ck-events [data-kind="state"]', timeout=5)
    browser.goto(agent.base + "/#/events?kind=state&check=web")
    browser.wait('#ev-list [data-kind="state"]', timeout=5)
    kinds = browser.eval("[...document.querySelectorAll('#ev-list [data-kind]')]"
                         ".map(e => e.dataset.kind)")
    assert kinds and set(kinds) == {"state"}
    assert real_problems(browser) == []


@pytest.mark.no_sanitizer
def test_silence_made_in_the_ui_reaches_the_api(agent, browser):
    code, _, body = agent.request("/api/v1/silences")
    if code == 501:
        pytest.skip(f"this agent has no alert engine yet: {body[:200]!r}")
    browser.goto(agent.base + "/")
    browser.wait('[data-check="web"]')
    browser.requests()
    browser.click("#token-button")
    browser.fill("#token-input", TOKEN)
    browser.press("Enter")
    browser.wait('button[data-key="silence-web"]')
    browser.click('button[data-key="silence-web"]')
    browser.wait("#silence-comment")
    # Cancel asks nothing of the agent.
    browser.click('#confirm-dialog [data-close]')
    browser.click('button[data-key="silence-web"]')
    browser.fill("#silence-comment", "maintenance window, from the dashboard test")
    browser.select("#silence-duration", "3600")
    browser.click("#confirm-ok")
    browser.wait('[data-silence]', timeout=5)

    silences = agent.get("/api/v1/silences")
    mine = [s for s in silences if "from the dashboard test" in (s.get("comment") or "")]
    assert len(mine) == 1, silences
    matchers = mine[0]["matchers"]
    if isinstance(matchers, list):
        matchers = {m["name"]: m["value"] for m in matchers}
    assert matchers == {"check": "web"}
    shot(browser, "silenced")

    # The token went only in the Authorization header of the API's requests.
    requests = browser.requests()
    writes = [r for r in requests if r["method"] == "POST"]
    assert len(writes) == 1
    assert writes[0]["headers"].get("authorization") == "Bearer " + TOKEN
    assert not [r["url"] for r in requests if TOKEN in r["url"]]
    agent.log.flush()
    assert TOKEN not in agent.log_path.read_text()
    # Lock again: the token leaves the tab's storage.
    browser.click("#token-button")
    assert browser.eval("sessionStorage.length") == 0
    assert real_problems(browser) == []


@pytest.mark.no_sanitizer
def test_drain_a_backend_from_the_ui(tmp_path, upstream, browser):
    lb_port = free_port()
    agent = Agent(tmp_path, f"""\
balancers:
  - name: web
    listen: [127.0.0.1:{lb_port}]
    backends:
      - {{ name: a, address: 127.0.0.1:{upstream.port} }}
      - {{ name: b, address: 127.0.0.1:{upstream.port} }}
""")
    try:
        browser.goto(agent.base + "/")
        browser.wait('[data-backend="web/a"][data-admin="ready"]', timeout=5)
        assert browser.count('button[data-key="drain-web-a"]') == 0  # read-only
        browser.click("#token-button")
        browser.fill("#token-input", TOKEN)
        browser.press("Enter")
        browser.click('button[data-key="drain-web-a"]')
        browser.wait("#confirm-dialog[open]")
        assert "Drain backend" in browser.text("#confirm-title")
        browser.click("#confirm-ok")
        browser.wait('[data-backend="web/a"][data-admin="drain"]', timeout=5)
        shot(browser, "drained")
        backends = {b["name"]: b for b in agent.get("/api/v1/lb")[0]["backends"]}
        assert backends["a"]["admin"] == "drain" and backends["b"]["admin"] == "ready"
        browser.click("#token-button")
        assert real_problems(browser) == []
    finally:
        agent.close()
