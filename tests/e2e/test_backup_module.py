"""The backup engine is a module, bcdr-backup.so, loaded on first use
(src/backup/module.h): the binary links no libcrypto, libssl or libzstd,
commands that need no repository load nothing, a missing or foreign module
fails with what to do, and an agent maps the engine only when its plan has
backup jobs."""
import json
import os
import shutil
import subprocess
import time

import pytest

from conftest import BCDR, SANITIZED

ENGINE = "bcdr-backup.so"
BACKUP_LIBS = ("libcrypto", "libssl", "libzstd")
PLAN_WITH_BACKUPS = """
repositories:
  - {{ name: local, path: "{repo}", password_file: "{password}" }}
backups:
  - {{ name: docs, repository: local, paths: ["{src}"], schedule: every 1h, rpo: 1h }}
"""


def run_binary(binary, *args, env=None):
    return subprocess.run([str(binary), *map(str, args)], capture_output=True, text=True,
                          timeout=120, env={**os.environ, **(env or {})})


def binary_alone(tmp_path):
    """A copy of bcdr in a directory of its own, without its modules; skips
    when an installed bcdr-backup.so would be found instead."""
    d = tmp_path / "alone"
    d.mkdir()
    shutil.copy(BCDR, d / "bcdr")
    r = run_binary(d / "bcdr", "snapshots", "--repo", tmp_path / "none")
    if "cannot find the backup engine" not in r.stderr:
        pytest.skip(f"an installed {ENGINE} is found: {r.stderr}")
    return d / "bcdr"


def mapped(pid):
    with open(f"/proc/{pid}/maps") as f:
        return f.read()


def test_binary_links_no_crypto_or_compression():
    needed = subprocess.run(["readelf", "-d", BCDR], capture_output=True, text=True,
                            check=True).stdout
    assert "libjansson" in needed  # the listing is the real one
    for lib in BACKUP_LIBS:
        assert lib not in needed, needed


def test_help_and_config_check_without_the_module(tmp_path):
    alone = binary_alone(tmp_path)
    r = run_binary(alone, "help")
    assert r.returncode == 0, r
    assert "init       create a repository" in r.stdout
    assert "restore    restore a snapshot into a directory" in r.stdout
    plan = tmp_path / "bcdr.yaml"
    plan.write_text(PLAN_WITH_BACKUPS.format(repo=tmp_path / "repo", src=tmp_path,
                                             password=tmp_path / "pw"))
    r = run_binary(alone, "config", "check", "-c", plan)
    assert r.returncode == 0, r
    assert "the plan is valid" in r.stdout


@pytest.mark.parametrize("args", [["snapshots", "--repo", "REPO"], ["help", "init"],
                                  ["init", "--help"]])
def test_missing_module_says_what_to_do(tmp_path, args):
    alone = binary_alone(tmp_path)
    r = run_binary(alone, *[str(tmp_path / "repo") if a == "REPO" else a for a in args])
    assert r.returncode == 1, r
    assert f"cannot find the backup engine '{ENGINE}' beside the binary or in '/" in r.stderr
    assert r.stderr.rstrip().endswith(": reinstall bcdr")


def test_a_foreign_module_is_refused(tmp_path):
    d = tmp_path / "foreign"
    d.mkdir()
    shutil.copy(BCDR, d / "bcdr")
    # A shared object that is not the backup engine: the model engine's.
    shutil.copy(os.path.join(os.path.dirname(BCDR), "bcdr-model.so"), d / ENGINE)
    r = run_binary(d / "bcdr", "snapshots", "--repo", tmp_path / "repo")
    assert r.returncode == 1, r
    assert f"'{d / ENGINE}' is not the backup engine of bcdr" in r.stderr
    assert "reinstall bcdr" in r.stderr


def test_commands_run_through_the_module(bcdr, tmp_path):
    env = {"BCDR_PASSWORD": "pw", "BCDR_SCRYPT_N": "1024"}
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.txt").write_text("hello\n")
    repo = tmp_path / "repo"
    r = bcdr("help", "restore")
    assert r.code == 0 and r.out.startswith("usage: bcdr restore SNAP --target DIR"), r
    assert bcdr("init", "-q", "--repo", repo, env=env).code == 0
    assert bcdr("backup", "-q", "--repo", repo, src, env=env).code == 0
    r = bcdr("snapshots", "--json", "--repo", repo, env=env)
    assert r.code == 0 and len(r.json()) == 1, r


def test_agent_maps_the_engine_only_for_backups(agent, bcdr, tmp_path):
    # What the binary's own libraries bring (libcurl links libssl and
    # libcrypto) is not the backup engine's doing.
    ldd = subprocess.run(["ldd", BCDR], capture_output=True, text=True).stdout
    a = agent(f"""
checks:
  - {{ name: passwd, file: {{ path: /etc/passwd, checksum: true }} }}
""").start()
    a.wait_for(lambda: a.api("/checks/passwd")["state"] == "ok", what="the file check")
    maps = mapped(a.proc.pid)
    assert ENGINE not in maps
    for lib in BACKUP_LIBS:
        if lib not in ldd:
            assert lib not in maps, lib
    a.stop()

    src = tmp_path / "src"
    src.mkdir()
    (src / "a.txt").write_text("hello\n")
    password = tmp_path / "pw"
    password.write_text("pw\n")
    password.chmod(0o600)  # a password file others may read is refused
    repo = tmp_path / "repo"
    assert bcdr("init", "-q", "--repo", repo, "--password-file", password,
                env={"BCDR_SCRYPT_N": "1024"}).code == 0
    b = agent(PLAN_WITH_BACKUPS.format(repo=repo, src=src, password=password),
              name="backups.yaml").start()
    b.wait_for(lambda: b.api("/checks/backup:docs")["state"] == "ok",
               timeout=60 if SANITIZED else 30, what="the backup job")
    assert ENGINE in mapped(b.proc.pid)


def test_agent_without_the_module_reports_it(agent, monkeypatch, tmp_path):
    import agent_helpers
    monkeypatch.setattr(agent_helpers, "BCDR", str(binary_alone(tmp_path)))
    a = agent(PLAN_WITH_BACKUPS.format(repo=tmp_path / "repo", src=tmp_path,
                                       password=tmp_path / "pw")).start()
    # The job fails; the age of the newest snapshot is unknown.
    for name, status in (("backup:docs", "critical"), ("rpo:docs", "unknown")):
        c = a.wait_for(lambda: (lambda c: c if "cannot find" in c.get("message", "") else None)(
            a.api(f"/checks/{name}")), what=f"{name} to say why")
        assert c["state"] == status, c
        assert f"cannot find the backup engine '{ENGINE}'" in c["message"], c
        assert c["message"].endswith("reinstall bcdr"), c


def test_install_puts_the_modules_where_the_binary_looks(tmp_path):
    """`meson install` into a DESTDIR: the binary and both modules are
    installed, the modules in the directory the installed binary searches
    (the one its message names)."""
    build = os.path.dirname(BCDR)
    if not os.path.isdir(os.path.join(build, "meson-info")) or not shutil.which("meson"):
        pytest.skip("BCDR_BIN is not in a meson build directory")
    dest = tmp_path / "dest"
    r = subprocess.run(["meson", "install", "-C", build, "--destdir", str(dest), "--no-rebuild",
                        "--quiet"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    installed = json.loads(subprocess.run(["meson", "introspect", build, "--installed"],
                                          capture_output=True, text=True, check=True).stdout)
    paths = {os.path.basename(k): dest / v.lstrip("/") for k, v in installed.items()}
    for name in ("bcdr", ENGINE, "bcdr-model.so"):
        assert paths[name].is_file(), (name, paths[name])
    # The installed binary, run from DESTDIR, finds no module beside it and
    # names the directory it searches: the one the modules were put in.
    r = run_binary(paths["bcdr"], "snapshots", "--repo", tmp_path / "repo")
    if "cannot find the backup engine" not in r.stderr:
        pytest.skip(f"an installed {ENGINE} is found: {r.stderr}")
    searched = r.stderr.split("beside the binary or in '")[1].split("'")[0]
    assert dest / searched.lstrip("/") == paths[ENGINE].parent


def dynamic_symbols(*paths, types="TtWiDdBbRrVv"):
    """The names the paths define in their dynamic symbol tables, of those nm
    types (one nm for all)."""
    out = subprocess.run(["nm", "-D", "--defined-only", *paths], capture_output=True,
                         text=True, check=True).stdout
    return {f[-1].split("@")[0] for f in (line.split() for line in out.splitlines())
            if len(f) == 3 and f[1] in types}


def test_the_binary_exports_only_its_core_and_shadows_no_library():
    """What the executable exports for its modules (src/exports.list) could
    interpose on a library's own function of the same name: none of the
    libraries the binary, its modules and libcurl bring may define one
    (but GnuTLS's hook, which is exported for exactly that). Functions only:
    the executable also holds copies of libc's stdout, optind, ... (copy
    relocations), which is how those are meant to be shared."""
    build = os.path.dirname(BCDR)
    exported = dynamic_symbols(BCDR, types="TtWi")
    assert {"cli_dispatch", "log_msg", "plan_load", "backup_plan_job",
            "topology_find"} <= exported
    assert not any(s.startswith(("curl_", "cmd_", "probe_", "agent_")) for s in exported)
    libs = set()
    for obj in (BCDR, os.path.join(build, ENGINE), os.path.join(build, "bcdr-model.so"),
                "/usr/lib/x86_64-linux-gnu/libcurl.so.4"):
        if not os.path.exists(obj):
            continue
        ldd = subprocess.run(["ldd", obj], capture_output=True, text=True).stdout
        libs |= {line.split("=>")[1].split()[0] for line in ldd.splitlines()
                 if "=>" in line and "/" in line.split("=>")[1]}
    shadowed = exported & dynamic_symbols(*sorted(libs))
    assert shadowed <= {"_gnutls_global_init_skip"}, sorted(shadowed)
