"""Shared fixtures for the end-to-end tests: they drive the real binary."""
import json
import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BCDR = os.environ.get("BCDR_BIN", str(ROOT / "build" / "bcdr"))
SANITIZED = os.environ.get("BCDR_SANITIZED") == "1"


def pytest_configure(config):
    config.addinivalue_line("markers", "no_sanitizer: too slow under ASan; run on the plain build only")


class Result:
    def __init__(self, proc):
        self.code = proc.returncode
        self.out = proc.stdout
        self.err = proc.stderr

    def json(self):
        return json.loads(self.out)

    def json_lines(self):
        return [json.loads(line) for line in self.out.splitlines() if line.strip()]

    def __repr__(self):
        return f"<exit {self.code}\nstdout: {self.out[-2000:]}\nstderr: {self.err[-2000:]}>"


def run(*args, env=None, input=None, timeout=120, cwd=None):
    """Runs bcdr with args; returns a Result (never raises on a non-zero exit)."""
    full_env = dict(os.environ)
    full_env.pop("BCDR_REPOSITORY", None)
    full_env.pop("BCDR_PASSWORD", None)
    full_env.pop("BCDR_PASSWORD_FILE", None)
    if env:
        full_env.update(env)
    proc = subprocess.run([BCDR, *map(str, args)], capture_output=True, text=True,
                          env=full_env, input=input, timeout=timeout, cwd=cwd)
    return Result(proc)


@pytest.fixture
def bcdr():
    return run


@pytest.fixture
def write_plan(tmp_path):
    """Writes a plan file in tmp_path and returns its path."""
    def write(text, name="bcdr.yaml"):
        path = tmp_path / name
        path.write_text(text)
        return path
    return write


@pytest.fixture
def tls_web(tmp_path):
    """An HTTPS server (web_servers.start) with a self-signed certificate
    valid for 10 days."""
    import web_servers
    srv = web_servers.start(tls_dir=tmp_path)
    yield srv
    web_servers.stop(srv)


@pytest.fixture
def agent(tmp_path):
    """Makes agents (agent_helpers.Agent) in tmp_path; stops them all after the test."""
    from agent_helpers import Agent  # it imports this module
    made = []

    def make(body="", **kw):
        a = Agent(tmp_path, body, **kw)
        made.append(a)
        return a
    yield make
    for a in made:
        a.stop()
