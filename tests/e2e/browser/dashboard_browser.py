"""A real chromium for the dashboard tests, driven through driver.mjs
(playwright-core). One JSON command per line each way."""
import json
import select
import subprocess
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


class BrowserError(AssertionError):
    pass


class Browser:
    def __init__(self):
        subprocess.run([str(HERE / "setup")], check=True)
        self.profile = tempfile.TemporaryDirectory(prefix="bcdr-chromium-")
        self.proc = subprocess.Popen(
            ["node", str(HERE / "driver.mjs"), self.profile.name], cwd=HERE,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def call(self, op, timeout=30.0, **args):
        self.proc.stdin.write(json.dumps({"op": op, **args}) + "\n")
        self.proc.stdin.flush()
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        line = self.proc.stdout.readline() if ready else ""
        if not line:
            raise BrowserError(f"browser driver gave no answer to {op}: "
                               f"{self.proc.stderr.read() if self.proc.poll() is not None else 'timeout'}")
        answer = json.loads(line)
        if not answer["ok"]:
            raise BrowserError(f"{op} {args}: {answer['error']}")
        return answer.get("value")

    def goto(self, url):
        return self.call("goto", url=url)

    def wait(self, selector, timeout=5.0, state="visible"):
        """Waits for selector; returns the seconds it took."""
        return self.call("wait", timeout=timeout + 30, selector=selector,
                         ms=int(timeout * 1000), state=state) / 1000

    def click(self, selector):
        return self.call("click", selector=selector)

    def fill(self, selector, value):
        return self.call("fill", selector=selector, value=value)

    def select(self, selector, value):
        return self.call("select", selector=selector, value=value)

    def press(self, key):
        return self.call("press", key=key)

    def text(self, selector):
        return self.call("text", selector=selector)

    def count(self, selector):
        return self.call("count", selector=selector)

    def eval(self, expr):
        return self.call("eval", expr=expr)

    def viewport(self, width, height):
        return self.call("viewport", width=width, height=height)

    def scheme(self, scheme):
        return self.call("scheme", scheme=scheme)

    def screenshot(self, path, full_page=True):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        return self.call("screenshot", path=str(path), fullPage=full_page)

    def problems(self):
        """Console errors and uncaught exceptions since the last call."""
        return self.call("problems")

    def requests(self):
        """Requests the page made since the last call: url, method, headers."""
        return self.call("requests")

    def close(self):
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write(json.dumps({"op": "close"}) + "\n")
                self.proc.stdin.flush()
                self.proc.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()
        self.profile.cleanup()


def wait_until(predicate, timeout=5.0, step=0.05):
    """Polls predicate() until it returns a true value; returns it or None."""
    end = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() >= end:
            return value
        time.sleep(step)
