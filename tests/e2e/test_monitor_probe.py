"""bcdr probe against real servers, files, processes and programs on this host."""
import os
import signal
import socket
import subprocess
import threading
import time

import pytest

import web_servers


@pytest.fixture
def web():
    """An HTTP server on 127.0.0.1 whose status, body and delay the test sets."""
    srv = web_servers.start()
    yield srv
    web_servers.stop(srv)


@pytest.fixture
def tcp_echo():
    """A TCP server answering 'PONG' to a line 'PING', and nothing else."""
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(16)
    stop = threading.Event()

    def serve():
        lsock.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = lsock.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(2)
                try:
                    data = conn.recv(100)
                    if data.startswith(b"PING"):
                        conn.sendall(b"+PONG\r\n")
                    else:
                        conn.sendall(b"-ERR\r\n")
                except OSError:
                    pass
    t = threading.Thread(target=serve, daemon=True)
    t.start()
    yield lsock.getsockname()[1]
    stop.set()
    t.join()
    lsock.close()


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def probe(bcdr, plan, *names):
    r = bcdr("probe", "-c", plan, "--json", *names)
    assert r.code in (0, 3), r
    results = {c["name"]: c for c in r.json()}
    return r.code, results


def test_http_status_body_latency(bcdr, write_plan, web):
    url = f"http://127.0.0.1:{web.server_port}/health"
    plan = write_plan(f"""
checks:
  - name: web
    http: {{ url: "{url}", expect_status: 200, body: "^ok" }}
    timeout: 2s
    warn: 200ms
    labels: {{ component: web }}
""")
    code, res = probe(bcdr, plan)
    assert code == 0, res
    assert res["web"]["status"] == "ok"
    assert res["web"]["unit"] == "s" and 0 < res["web"]["value"] < 0.2
    assert res["web"]["labels"] == {"component": "web"}
    assert "HTTP 200" in res["web"]["message"]

    web.cfg["status"] = 503
    code, res = probe(bcdr, plan)
    assert code == 3
    assert res["web"]["status"] == "critical"
    assert "HTTP 503 (expected 200)" in res["web"]["message"]

    web.cfg.update(status=200, body=b"degraded\n")
    code, res = probe(bcdr, plan)
    assert res["web"]["status"] == "critical"
    assert "does not match '^ok'" in res["web"]["message"]

    web.cfg.update(body=b"ok\n", delay=0.3)
    code, res = probe(bcdr, plan)
    assert code == 3
    assert res["web"]["status"] == "warning"
    assert res["web"]["value"] >= 0.3


def test_http_timeout_and_refused(bcdr, write_plan, web):
    web.cfg["delay"] = 3
    plan = write_plan(f"""
checks:
  - {{ name: slow, http: "http://127.0.0.1:{web.server_port}/", timeout: 500ms }}
  - {{ name: down, http: "http://127.0.0.1:{free_port()}/" }}
""")
    t0 = time.monotonic()
    code, res = probe(bcdr, plan)
    assert time.monotonic() - t0 < 2.5  # the checks run side by side, each bounded
    assert code == 3
    assert res["slow"]["status"] == "critical" and "timed out" in res["slow"]["message"]
    assert res["slow"]["duration_s"] < 1.5
    assert res["down"]["status"] == "critical"


def test_https_certificate_days_left(bcdr, write_plan, tls_web):
    plan = write_plan(f"""
checks:
  - name: cert
    http: {{ url: "https://127.0.0.1:{tls_web.server_port}/", measure: cert_days, insecure: true }}
    warn: {{ below: 30 }}
    crit: {{ below: 3 }}
""")
    code, res = probe(bcdr, plan)
    assert code == 3, res
    assert res["cert"]["status"] == "warning"
    assert res["cert"]["unit"] == "days"
    assert 9 < res["cert"]["value"] <= 10


def test_https_unverified_certificate_fails(bcdr, write_plan, tls_web):
    plan = write_plan(f"""
checks:
  - {{ name: tls, http: "https://127.0.0.1:{tls_web.server_port}/" }}
""")
    code, res = probe(bcdr, plan)
    assert res["tls"]["status"] == "critical"
    assert "certificate" in res["tls"]["message"].lower()


def test_tcp_connect_send_expect(bcdr, write_plan, tcp_echo):
    plan = write_plan(f"""
checks:
  - {{ name: pong, tcp: {{ port: {tcp_echo}, send: "PING\\r\\n", expect: "^\\\\+PONG" }} }}
  - {{ name: wrong, tcp: {{ port: {tcp_echo}, send: "HELLO\\r\\n", expect: PONG }}, timeout: 1s }}
  - {{ name: closed, tcp: {{ port: {free_port()} }} }}
""")
    code, res = probe(bcdr, plan)
    assert code == 3
    assert res["pong"]["status"] == "ok", res["pong"]
    assert res["pong"]["unit"] == "s"
    assert res["wrong"]["status"] == "critical"
    assert "-ERR" in res["wrong"]["message"]
    assert res["closed"]["status"] == "critical"
    assert "refused" in res["closed"]["message"].lower()


def test_tcp_string_form(bcdr, write_plan, tcp_echo):
    """tcp: HOST:PORT, as a balancer's backend address, against real listeners
    (the echo server on 127.0.0.1 and one on [::1])."""
    v6 = socket.socket(socket.AF_INET6)
    v6.bind(("::1", 0))
    v6.listen(4)
    try:
        plan = write_plan(f"""
checks:
  - {{ name: v4, tcp: "127.0.0.1:{tcp_echo}" }}
  - {{ name: name, tcp: "localhost:{tcp_echo}" }}
  - {{ name: v6, tcp: "[::1]:{v6.getsockname()[1]}" }}
  - {{ name: closed, tcp: "127.0.0.1:{free_port()}" }}
""")
        code, res = probe(bcdr, plan)
    finally:
        v6.close()
    assert res["v4"]["status"] == "ok", res["v4"]
    assert res["name"]["status"] == "ok", res["name"]
    assert res["v6"]["status"] == "ok", res["v6"]
    assert res["closed"]["status"] == "critical"
    r = bcdr("config", "check", "-c", write_plan("checks:\n  - { name: x, tcp: '::1:80' }\n"))
    assert r.code != 0 and "is not HOST:PORT" in r.err, r


def test_file_exists_size_age_mode(bcdr, write_plan, tmp_path):
    f = tmp_path / "data.log"
    f.write_bytes(b"x" * 5000)
    os.chmod(f, 0o640)
    old = time.time() - 7200
    os.utime(f, (old, old))
    plan = write_plan(f"""
checks:
  - {{ name: size, file: "{f}", warn: 4KiB, crit: 1MiB }}
  - {{ name: age, file: {{ path: "{f}", measure: age }}, crit: 1h }}
  - {{ name: mode, file: {{ path: "{f}", mode: "0600" }} }}
  - {{ name: mode-ok, file: {{ path: "{f}", mode: "0640", checksum: true }} }}
  - {{ name: missing, file: "{tmp_path}/nope" }}
""")
    code, res = probe(bcdr, plan)
    assert code == 3
    assert res["size"]["status"] == "warning" and res["size"]["value"] == 5000
    assert res["age"]["status"] == "critical" and 7100 < res["age"]["value"] < 7300
    assert res["mode"]["status"] == "critical" and "0640, expected 0600" in res["mode"]["message"]
    assert res["mode-ok"]["status"] == "ok"
    assert res["missing"]["status"] == "critical"
    assert "does not exist" in res["missing"]["message"]


def test_program_exit_output_timeout(bcdr, write_plan):
    plan = write_plan("""
checks:
  - { name: ok, program: [/bin/echo, hello] }
  - { name: fails, program: [/bin/false] }
  - name: nagios
    program: { argv: [/bin/sh, -c, "echo 'WARNING - disk 91%'; exit 1"], exit_codes: nagios }
  - name: number
    program: { argv: [/bin/echo, "queue=42 items"], measure: output }
    warn: 40
    crit: 100
  - name: match
    program: { argv: [/bin/echo, "all good"], output: "good$" }
  - name: nomatch
    program: { argv: [/bin/echo, "all bad"], output: "good$" }
  - name: hang
    program: [/bin/sleep, "30"]
    timeout: 300ms
  - name: noexec
    program: [/nonexistent/program]
""")
    t0 = time.monotonic()
    code, res = probe(bcdr, plan)
    assert time.monotonic() - t0 < 5
    assert code == 3
    assert res["ok"]["status"] == "ok" and res["ok"]["value"] == 0
    assert "hello" in res["ok"]["message"]
    assert res["fails"]["status"] == "critical" and res["fails"]["value"] == 1
    assert res["nagios"]["status"] == "warning"
    assert "disk 91%" in res["nagios"]["message"]
    assert res["number"]["status"] == "warning" and res["number"]["value"] == 42
    assert res["match"]["status"] == "ok"
    assert res["nomatch"]["status"] == "critical"
    assert res["hang"]["status"] == "critical"
    assert "timed out" in res["hang"]["message"]
    assert res["hang"]["duration_s"] < 2
    assert res["noexec"]["status"] == "unknown"


def test_program_killed_with_its_children(bcdr, write_plan):
    """A program whose child holds the output open is killed with its group."""
    secs = f"31.{os.getpid()}"
    plan = write_plan(f"""
checks:
  - name: forks
    program: [/bin/sh, -c, "sleep {secs} & echo started; wait"]
    timeout: 400ms
""")
    code, res = probe(bcdr, plan)
    assert res["forks"]["status"] == "critical"
    assert "timed out" in res["forks"]["message"]
    time.sleep(0.2)
    ps = subprocess.run(["pgrep", "-f", f"^sleep {secs}$"], capture_output=True, text=True)
    assert ps.stdout.strip() == "", "the child survived: " + ps.stdout


def test_process_by_pidfile_and_match(bcdr, write_plan, tmp_path):
    tag = f"{os.getpid()}.{int(time.time() * 1000) % 100000}"
    proc = subprocess.Popen(["/bin/sleep", f"3000.{tag.replace('.', '')}"])
    try:
        pidfile = tmp_path / "svc.pid"
        pidfile.write_text(f"{proc.pid}\n")
        plan = write_plan(f"""
checks:
  - {{ name: bypid, process: {{ pidfile: "{pidfile}", measure: memory }}, crit: 1GiB }}
  - {{ name: bymatch, process: {{ match: "^/bin/sleep 3000\\\\.{tag.replace('.', '')}$" }} }}
  - {{ name: uptime, process: {{ pidfile: "{pidfile}", measure: uptime }} }}
  - {{ name: cpu, process: {{ pidfile: "{pidfile}", measure: cpu }}, warn: 50 }}
""")
        code, res = probe(bcdr, plan)
        assert code == 0, res
        assert res["bypid"]["unit"] == "bytes" and 0 < res["bypid"]["value"] < 1 << 30
        assert f"pid {proc.pid}" in res["bypid"]["message"]
        assert res["bymatch"]["value"] == 1
        assert 0 <= res["uptime"]["value"] < 60
        assert res["cpu"]["value"] < 50
    finally:
        proc.kill()
        proc.wait()
    code, res = probe(bcdr, plan)
    assert code == 3
    for name in ("bypid", "bymatch", "uptime", "cpu"):
        assert res[name]["status"] == "critical", res[name]
        assert "not running" in res[name]["message"]
    assert res["bymatch"]["value"] == 0


def test_system_metrics(bcdr, write_plan):
    plan = write_plan("""
checks:
  - { name: cpu, system: cpu }
  - { name: load, system: load15 }
  - { name: memory, system: memory, crit: 100 }
  - { name: swap, system: swap }
  - { name: disk, system: disk }
  - { name: inodes, system: "inodes:/" }
  - { name: net, system: "net:lo" }
  - { name: nic, system: "net:nosuchnic0" }
  - { name: io, system: "io:%s" }
""" % _a_block_device())
    code, res = probe(bcdr, plan)
    for name in ("cpu", "memory", "swap", "disk", "inodes"):
        assert res[name]["unit"] == "%", res[name]
        assert 0 <= res[name]["value"] <= 100, res[name]
    assert res["memory"]["value"] > 0
    assert res["disk"]["value"] > 0
    assert res["load"]["value"] >= 0
    assert res["net"]["unit"] == "bytes/s" and res["net"]["value"] >= 0
    assert res["nic"]["status"] == "unknown"
    assert "nosuchnic0" in res["nic"]["message"]
    assert res["io"]["unit"] == "%" and 0 <= res["io"]["value"] <= 100, res["io"]


def _a_block_device():
    with open("/proc/diskstats") as f:
        return f.readline().split()[2]


def test_process_children(bcdr, write_plan, tmp_path):
    secs = f"41.{os.getpid()}"
    proc = subprocess.Popen(["/bin/sh", "-c", f"sleep {secs} & sleep {secs} & wait"],
                            start_new_session=True)
    try:
        pidfile = tmp_path / "parent.pid"
        pidfile.write_text(f"{proc.pid}\n")
        plan = write_plan(f"""
checks:
  - {{ name: kids, process: {{ pidfile: "{pidfile}", measure: children }}, crit: {{ below: 2 }} }}
""")
        deadline = time.monotonic() + 5
        while True:
            code, res = probe(bcdr, plan)
            if res["kids"]["value"] == 2 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert code == 0, res
        assert res["kids"]["value"] == 2
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the shell and its two sleeps
        proc.wait()


def test_text_output_names_and_exit_codes(bcdr, write_plan, tmp_path):
    f = tmp_path / "f"
    f.write_text("x")
    plan = write_plan(f"""
checks:
  - {{ name: here, file: "{f}" }}
  - {{ name: gone, file: "{tmp_path}/gone" }}
  - {{ name: off, file: "{tmp_path}/gone", enabled: false }}
""")
    r = bcdr("probe", "-c", plan)
    assert r.code == 3, r
    lines = r.out.splitlines()
    assert lines[0].split()[:3] == ["STATUS", "CHECK", "VALUE"]
    assert any(line.startswith("ok") and " here " in line for line in lines)
    assert any(line.startswith("critical") and " gone " in line for line in lines)
    assert not any(" off " in line for line in lines)  # disabled: only when named
    r = bcdr("probe", "-c", plan, "here")
    assert r.code == 0, r
    r = bcdr("probe", "-c", plan, "off", "--json")
    assert r.code == 3 and r.json()[0]["name"] == "off"
    r = bcdr("probe", "-c", plan, "nosuch")
    assert r.code == 1 and "no check named 'nosuch'" in r.err


def test_bad_plan_is_refused_with_position(bcdr, write_plan):
    plan = write_plan("checks:\n  - name: x\n    system: cpu\n    warn: lots\n")
    r = bcdr("probe", "-c", plan)
    assert r.code == 1
    assert ":4:11: expected a number" in r.err


def test_backup_freshness_against_rpo(bcdr, write_plan, tmp_path):
    """A backup check reads the job's newest snapshot from its repository."""
    src = tmp_path / "data"
    src.mkdir()
    (src / "a.txt").write_text("hello\n")
    env = {"BCDR_PASSWORD": "pw for the probe test", "BCDR_SCRYPT_N": "1024"}
    plan = write_plan(f"""
repositories:
  - {{ name: local, path: "{tmp_path}/repo" }}
backups:
  - {{ name: docs, repository: local, paths: ["{src}"], rpo: 1h }}
checks:
  - {{ name: docs-fresh, backup: docs }}
  - {{ name: docs-strict, backup: {{ job: docs }}, crit: 0.5s }}
""")
    r = bcdr("init", "-c", plan, "--repo", "local", env=env)
    assert r.code == 0, r
    r = bcdr("probe", "-c", plan, "--json", env=env)
    res = {c["name"]: c for c in r.json()}
    assert r.code == 3
    assert res["docs-fresh"]["status"] == "critical"
    assert "no snapshot yet" in res["docs-fresh"]["message"]
    r = bcdr("backup", "-c", plan, "--job", "docs", env=env)
    assert r.code == 0, r
    r = bcdr("probe", "-c", plan, "--json", "docs-fresh", env=env)
    assert r.code == 0, r
    c = r.json()[0]
    assert c["status"] == "ok" and c["unit"] == "s" and 0 <= c["value"] < 60
    assert "rpo 1h" in c["message"]
    time.sleep(0.6)
    r = bcdr("probe", "-c", plan, "--json", "docs-strict", env=env)
    assert r.code == 3 and r.json()[0]["status"] == "critical"


def test_backup_check_names_a_job(bcdr, write_plan):
    plan = write_plan("checks:\n  - { name: b, backup: nosuch }\n")
    r = bcdr("config", "check", "-c", plan)
    assert r.code == 1
    assert ":2:24: check 'b' watches backup job 'nosuch', which is not in backups:" in r.err


def test_program_gets_no_secrets_from_the_environment(bcdr, write_plan, tmp_path):
    """A program check runs with the minimal environment actions and alert
    receivers get: PATH and friends, not the agent's BCDR_PASSWORD."""
    out = tmp_path / "env.txt"
    plan = write_plan(f"""
checks:
  - name: env
    program: [/bin/sh, -c, "env > '{out}'"]
""")
    secrets = {"BCDR_PASSWORD": "hunter2-probe", "BCDR_PASSWORD_FILE": "/root/pw",
               "AWS_SECRET_ACCESS_KEY": "aws-secret-probe", "BCDR_REPOSITORY": "/srv/repo"}
    r = bcdr("probe", "-c", plan, "--json", env=secrets)
    assert r.code == 0, r
    env = dict(line.split("=", 1) for line in out.read_text().splitlines() if "=" in line)
    assert env.get("PATH") == os.environ["PATH"]
    for key, value in secrets.items():
        assert key not in env, f"{key} reached the program"
        assert value not in out.read_text()
