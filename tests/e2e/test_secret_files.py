"""Secret files (a repository's password_file, the agent's token_file):
refused while group or others may read them, with a message that names the
file and says `chmod 600 FILE`; at mode 600 they work, one trailing newline
stripped."""
import subprocess

from agent_helpers import Agent
from backup_helpers import FAST_KDF, PASSWORD
from conftest import BCDR

TOKEN = "t0ken-for-the-secret-files-test"


def test_password_file_mode(bcdr, tmp_path, write_plan):
    pw = tmp_path / "pw"
    pw.write_text(PASSWORD + "\n")
    pw.chmod(0o644)
    repo = tmp_path / "repo"
    env = {"BCDR_SCRYPT_N": FAST_KDF}
    r = bcdr("init", "--repo", repo, "--password-file", pw, env=env)
    assert r.code == 1 and f"chmod 600 {pw}" in r.err and "group or others" in r.err, r
    assert not repo.exists()
    pw.chmod(0o600)
    assert bcdr("init", "--repo", repo, "--password-file", pw, env=env).code == 0
    src = tmp_path / "src"
    src.mkdir()
    (src / "a").write_text("a")
    assert bcdr("backup", "--repo", repo, "--password-file", pw, src).code == 0
    # The same password from the environment: the newline was stripped.
    r = bcdr("snapshots", "--repo", repo, "--json", env={"BCDR_PASSWORD": PASSWORD})
    assert r.code == 0 and len(r.json()) == 1, r
    for mode in (0o640, 0o604, 0o620):
        pw.chmod(mode)
        for how in (("--password-file", pw), ()):
            r = bcdr("snapshots", "--repo", repo, *how,
                     env={} if how else {"BCDR_PASSWORD_FILE": str(pw)})
            assert r.code == 1 and f"chmod 600 {pw}" in r.err, (oct(mode), r)
    # The plan's password_file, through a backup job.
    plan = write_plan(f"repositories:\n  - {{ name: r, path: {repo}, password_file: {pw} }}\n"
                      f"backups:\n  - {{ name: j, repository: r, paths: [{src}] }}\n")
    r = bcdr("backup", "-c", plan, "--job", "j")
    assert r.code == 1 and f"chmod 600 {pw}" in r.err, r
    pw.chmod(0o600)
    r = bcdr("backup", "-c", plan, "--job", "j")
    assert r.code == 0, r


def test_agent_token_file_mode(tmp_path):
    token = tmp_path / "token"
    token.write_text(TOKEN + "\n")
    token.chmod(0o644)
    a = Agent(tmp_path)
    a.head = a.head.replace("interval: 1s }", f"interval: 1s, token_file: {token} }}")
    a.write_plan("")
    silence = {"matchers": {"check": "web"}, "duration_s": 60, "comment": "t"}
    # The agent does not take the token: it runs, and refuses every write.
    a.start()
    try:
        status, _ = a.request("POST", "/api/v1/silences", body=silence, token=TOKEN)
        assert status in (401, 403), status
        log = a.log.read_text()
        assert f"chmod 600 {token}" in log and "API token" in log, log
        # The command line refuses it too.
        r = subprocess.run([BCDR, "checks", "-c", str(a.plan)], capture_output=True, text=True,
                           timeout=30)
        assert r.returncode != 0 and f"chmod 600 {token}" in r.stderr, r
    finally:
        a.proc.terminate()
        a.proc.wait(20)
    token.chmod(0o600)
    a.start()
    try:
        status, body = a.request("POST", "/api/v1/silences", body=silence, token=TOKEN)
        assert status == 200 and "id" in body, (status, body)
        r = subprocess.run([BCDR, "checks", "-c", str(a.plan)], capture_output=True, text=True,
                           timeout=30)
        assert r.returncode == 0, r
    finally:
        a.proc.terminate()
        a.proc.wait(20)
