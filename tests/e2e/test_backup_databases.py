"""Databases: dumps from a command stored as a snapshot's file, bcdr dump,
hooks, and drills that load the dump into a scratch database and ask it,
against real PostgreSQL and MariaDB servers the tests start."""
import json
import os
import subprocess
from pathlib import Path

import pytest

from conftest import BCDR, SANITIZED
from db_servers import MariaDB, Postgres, free_port

PW = "database test password"
ENV = {"BCDR_PASSWORD": PW, "BCDR_SCRYPT_N": "1024"}
ROWS = 200_000


@pytest.fixture(scope="module")
def pg():
    srv = Postgres().start()
    srv.psql("create database shop")
    # No autovacuum: a VACUUM fills the free space map, and the new versions
    # of updated rows then land in the free bytes of pages all over the
    # table instead of at its end, so which chunks change would depend on
    # whether autovacuum ran in the seconds between insert and update
    # (docs/backup.md, "Databases").
    srv.psql("create table orders (id serial primary key, customer int not null, "
             "amount numeric(12,2) not null, note text not null) "
             "with (autovacuum_enabled = false)", db="shop")
    srv.psql(f"insert into orders (customer, amount, note) select i % 977, (i % 10000) / 7.0, "
             f"'order ' || i || ' of customer ' || (i % 977) || ', shipped by road' "
             f"from generate_series(1, {ROWS}) i", db="shop")
    yield srv
    srv.close()


def pg_dump(pg, db="shop"):
    return [pg.tool("pg_dump"), *pg.conn(), "--no-owner", db]


def unkeyed(dump):
    """pg_dump's text without its per-run \\restrict key lines (15.14 and later)."""
    return [ln for ln in dump.split(b"\n") if not ln.startswith((b"\\restrict", b"\\unrestrict"))]


def repo_with_password(tmp_path, bcdr):
    repo = tmp_path / "repo"
    pwf = tmp_path / "repo.pass"
    pwf.write_text(PW + "\n")
    pwf.chmod(0o600)
    r = bcdr("init", "--repo", repo, env=ENV)
    assert r.code == 0, r
    return repo, pwf


def snapshots(bcdr, repo):
    r = bcdr("snapshots", "--repo", repo, "--json", env=ENV)
    assert r.code == 0, r
    return r.json()


def data_files(repo):
    return sorted(p.name for p in (repo / "data").rglob("*") if p.is_file())


def test_pg_dump_is_deduplicated_and_dumps_back(pg, bcdr, tmp_path):
    repo, _ = repo_with_password(tmp_path, bcdr)
    r = bcdr("backup", "--repo", repo, "--json", "--stdin-from-command", "--stdin-filename",
             "shop.sql", "--", *pg_dump(pg), env=ENV)
    assert r.code == 0, r
    first = r.json_lines()[-1]
    assert first["files_new"] == 1 and first["bytes_processed"] > 10_000_000, first
    ls = bcdr("ls", "--repo", repo, "--json", "latest", env=ENV).json()
    assert [(n["path"], n["type"], n["mode"]) for n in ls] == [("shop.sql", "file", 0o600)]

    # 1% of the rows change: the newest orders, as in a shop
    pg.psql(f"update orders set amount = amount + 1, note = note || ' (returned)' "
            f"where id > {ROWS - ROWS // 100}", db="shop")
    r = bcdr("backup", "--repo", repo, "--json", "--stdin-from-command", "--stdin-filename",
             "shop.sql", "--", *pg_dump(pg), env=ENV)
    assert r.code == 0, r
    second = r.json_lines()[-1]
    ratio = second["bytes_added"] / first["bytes_added"]
    print(f"\npg_dump of {ROWS} rows: first backup added {first['bytes_added']} bytes "
          f"({first['bytes_stored']} stored), after 1% of the rows changed "
          f"{second['bytes_added']} ({second['bytes_stored']} stored): ratio {ratio:.3f}")
    assert second["bytes_processed"] >= first["bytes_processed"]
    assert ratio < 0.35, (first, second)
    assert len(snapshots(bcdr, repo)) == 2

    # bcdr dump gives back the very bytes pg_dump writes now
    now = subprocess.run(pg_dump(pg), capture_output=True, check=True).stdout
    dumped = subprocess.run([BCDR, "dump", "--repo", str(repo), "latest", "/shop.sql"],
                            capture_output=True, env={**os.environ, **ENV}, timeout=300)
    assert dumped.returncode == 0, dumped.stderr
    assert unkeyed(dumped.stdout) == unkeyed(now)

    # and it loads: bcdr dump | psql into a second database
    pg.psql("drop database if exists shop2")
    pg.psql("create database shop2")
    load = subprocess.run([pg.tool("psql"), *pg.conn(), "-q", "-v", "ON_ERROR_STOP=1", "-d",
                           "shop2"], input=dumped.stdout, capture_output=True, timeout=300)
    assert load.returncode == 0, load.stderr
    assert pg.psql("select count(*), sum(amount) from orders", db="shop2") == \
        pg.psql("select count(*), sum(amount) from orders", db="shop")
    pg.psql("drop database shop2")
    assert bcdr("check", "--repo", repo, "--read-data", env=ENV).code == 0

    # a directory comes out as a tar stream
    tar = subprocess.run([BCDR, "dump", "--repo", str(repo), "latest", "/"],
                         capture_output=True, env={**os.environ, **ENV}, timeout=300)
    assert tar.returncode == 0, tar.stderr
    listing = subprocess.run(["tar", "-tvf", "-"], input=tar.stdout, capture_output=True,
                             check=True).stdout.decode()
    assert "shop.sql" in listing and str(len(now)) in listing
    r = bcdr("dump", "--repo", repo, "latest", "/nosuch.sql", env=ENV)
    assert r.code == 1 and "no '/nosuch.sql' in snapshot" in r.err


def test_stdin_and_usage(bcdr, tmp_path):
    repo, _ = repo_with_password(tmp_path, bcdr)
    data = "".join(f"line {i}\n" for i in range(100_000))
    r = bcdr("backup", "--repo", repo, "--stdin", "--stdin-filename", "lines.txt", input=data,
             env=ENV)
    assert r.code == 0, r
    r = bcdr("dump", "--repo", repo, "latest", "lines.txt", env=ENV)
    assert r.code == 0 and r.out == data
    r = bcdr("backup", "--repo", repo, "--stdin", input="x", env=ENV)
    assert r.code == 0, r
    assert bcdr("dump", "--repo", repo, "latest", "/stdin", env=ENV).out == "x"
    for args, why in [(["--stdin-from-command"], "name the command"),
                      (["--stdin", "--stdin-from-command", "--", "true"], "exclude each other"),
                      (["--stdin-filename", "a"], "names what --stdin"),
                      (["--stdin", "--stdin-filename", "a/b"], "without '/'"),
                      (["--stdin", str(tmp_path)], "no PATH")]:
        r = bcdr("backup", "--repo", repo, *args, input="", env=ENV)
        assert r.code == 2 and why in r.err, (args, r)
    r = bcdr("backup", "--repo", repo, "--stdin-from-command", "--", "/nonexistent/pg_dump",
             env=ENV)
    assert r.code == 1 and "cannot run '/nonexistent/pg_dump'" in r.err


def test_failing_dumps_leave_no_snapshot(pg, bcdr, tmp_path):
    repo, _ = repo_with_password(tmp_path, bcdr)
    assert bcdr("backup", "--repo", repo, "--stdin-from-command", "--stdin-filename", "shop.sql",
                "--", *pg_dump(pg), env=ENV).code == 0
    packs = data_files(repo)
    # pg_dump's output cut half-way by a failure
    half = " ".join(pg_dump(pg)) + " | head -c 3000000; " \
        "echo 'pg_dump: error: connection to server lost' >&2; exit 2"
    r = bcdr("backup", "--repo", repo, "--stdin-from-command", "--stdin-filename", "shop.sql",
             "--", "sh", "-c", half, env=ENV)
    assert r.code == 1, r
    assert "command 'sh' failed (exit status 2)" in r.err, r
    assert "connection to server lost" in r.err and "no snapshot saved" in r.err, r
    # killed in the middle of its output
    r = bcdr("backup", "--repo", repo, "--stdin-from-command", "--", "sh", "-c",
             "head -c 5000000 /dev/urandom; kill -9 $$", env=ENV)
    assert r.code == 1 and "killed by signal 9" in r.err, r
    # the database is down
    r = bcdr("backup", "--repo", repo, "--stdin-from-command", "--",
             pg.tool("pg_dump"), "-h", "127.0.0.1", "-p", str(free_port()), "-U", "postgres",
             "shop", env=ENV)
    assert r.code == 1 and "Connection refused" in r.err, r
    assert len(snapshots(bcdr, repo)) == 1
    assert data_files(repo) == packs  # what the failed runs wrote is gone
    assert bcdr("check", "--repo", repo, "--read-data", env=ENV).code == 0


def children(pid):
    out = []
    for t in Path(f"/proc/{pid}/task").iterdir():
        out += [int(c) for c in (t / "children").read_text().split()]
    return out


def test_kill9_during_a_dump(bcdr, tmp_path):
    """bcdr killed in the middle of a stream: no snapshot, a clean
    repository, and the next backup runs (the dead process's lock is stale)."""
    import signal
    import time
    repo, _ = repo_with_password(tmp_path, bcdr)
    p = subprocess.Popen([BCDR, "backup", "--repo", str(repo), "--stdin-from-command", "--",
                          "sh", "-c", "head -c 30000000 /dev/urandom; exec sleep 600"],
                         env={**os.environ, **ENV}, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE)
    # the dump is being stored: bcdr waits for the command's end of output
    deadline = time.time() + (240 if SANITIZED else 120)
    while time.time() < deadline and not any(
            (Path("/proc") / str(c) / "comm").read_text().strip() == "sleep"
            for c in children(p.pid)):
        assert p.poll() is None, p.stderr.read()
        time.sleep(0.1)
    kids = children(p.pid)
    p.send_signal(signal.SIGKILL)
    p.wait()
    for c in kids:
        os.kill(c, signal.SIGKILL)
    assert snapshots(bcdr, repo) == []
    r = bcdr("check", "--repo", repo, env=ENV)
    assert r.code == 0, r
    r = bcdr("backup", "--repo", repo, "--stdin", input="after the kill\n", env=ENV)
    assert r.code == 0, r
    assert bcdr("dump", "--repo", repo, "latest", "/stdin", env=ENV).out == "after the kill\n"


def test_dump_of_a_directory_is_a_tar_that_extracts(bcdr, tmp_path):
    """Every kind of node, names over ustar's 100 bytes (pax records)."""
    from backup_helpers import make_tree, tree_state
    src = make_tree(tmp_path / "src")
    deep = src / "dir" / ("d" * 120) / ("n" * 130)
    deep.mkdir(parents=True)
    (deep / ("f" * 200)).write_bytes(b"long name\n" * 77)
    os.symlink("x" * 150, deep / "longlink")
    repo, _ = repo_with_password(tmp_path, bcdr)
    assert bcdr("backup", "--repo", repo, src, env=ENV).code == 0
    tar = subprocess.run([BCDR, "dump", "--repo", str(repo), "latest", str(src / "dir")],
                         capture_output=True, env={**os.environ, **ENV}, timeout=300)
    assert tar.returncode == 0, tar.stderr
    out = tmp_path / "out"
    out.mkdir()
    x = subprocess.run(["tar", "-x", "--numeric-owner", "-C", str(out)], input=tar.stdout,
                       capture_output=True)
    assert x.returncode == 0, x.stderr
    got = tree_state(out / str(src / "dir").lstrip("/"))
    want = tree_state(src / "dir")
    for st in list(got.values()) + list(want.values()):
        st.pop("xattrs", None)  # tar streams carry none
        if "mtime" in st:
            st["mtime"] //= 1_000_000_000  # whole seconds in ustar
    assert got == want


def test_disk_full_during_a_dump(bcdr, tmp_path):
    """The repository fills up while helpers compress the stream: exit 1, the
    command is stopped, what was written is removed, and a dump that fits
    still goes in afterwards."""
    from test_backup_faults import can_mount_tmpfs
    mnt = tmp_path / "small"
    mnt.mkdir()
    why = can_mount_tmpfs(mnt)
    if why:
        pytest.skip(why)
    try:
        repo = mnt / "repo"
        assert bcdr("init", "--repo", repo, env=ENV).code == 0
        r = bcdr("backup", "--repo", repo, "--stdin-from-command", "--", "head", "-c",
                 "40000000", "/dev/urandom", env=ENV)
        assert r.code == 1 and "no space left" in r.err, r
        assert snapshots(bcdr, repo) == [] and data_files(repo) == []
        r = bcdr("backup", "--repo", repo, "--stdin-from-command", "--", "head", "-c",
                 "3000000", "/dev/urandom", env=ENV)
        assert r.code == 0, r
        assert bcdr("check", "--repo", repo, "--read-data", env=ENV).code == 0
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def db_plan(tmp_path, repo, pwf, jobs):
    return f"""
repositories:
  - {{ name: local, path: "{repo}", password_file: "{pwf}" }}
backups:
{jobs}
"""


def test_job_hooks_env_and_outcome(pg, bcdr, tmp_path, write_plan):
    repo, pwf = repo_with_password(tmp_path, bcdr)
    dbname = tmp_path / "pgdatabase"
    dbname.write_text("shop\n")
    log = tmp_path / "hooks.log"
    hook = ["sh", "-c", f'echo "$0 $BCDR_JOB $BCDR_OUTCOME $BCDR_SNAPSHOT" >> {log}']
    dump = [pg.tool("pg_dump"), *pg.conn(), "--no-owner"]  # the database from PGDATABASE
    plan = write_plan(db_plan(tmp_path, repo, pwf, f"""
  - name: shop
    repository: local
    command: {json.dumps(dump)}
    filename: shop.sql
    env: {{ PGDATABASE: "{dbname}" }}
    before: {json.dumps(hook + ["before"])}
    after: {json.dumps([hook + ["after"], hook + ["after2"]])}
  - name: frozen
    repository: local
    command: {json.dumps(dump)}
    filename: shop.sql
    env: {{ PGDATABASE: "{dbname}" }}
    before: [[true], [sh, -c, "echo cannot freeze /srv >&2; exit 4"], {json.dumps(hook)}]
    after: {json.dumps(hook + ["after"])}
  - name: nosecret
    repository: local
    command: [true]
    filename: x
    env: {{ PGPASSWORD: "{tmp_path}/missing" }}
"""))
    r = bcdr("backup", "-c", plan, "--job", "shop", "--json", env=ENV)
    assert r.code == 0, r
    snap = r.json_lines()[-1]["snapshot"]
    assert lines(log) == [
        "before shop", f"after shop ok {snap}", f"after2 shop ok {snap}"]
    assert "CREATE TABLE public.orders" in bcdr("dump", "-c", plan, "--repo", "local",
                                                 "latest", "/shop.sql", env=ENV).out
    log.unlink()
    r = bcdr("backup", "-c", plan, "--job", "frozen", env=ENV)
    assert r.code == 1, r
    assert "before hook 'sh' failed (exit status 4): cannot freeze /srv" in r.err, r
    assert "backup not run" in r.err
    assert lines(log) == ["after frozen failed"]  # the third did not run
    r = bcdr("backup", "-c", plan, "--job", "nosecret", env=ENV)
    assert r.code == 1 and f"cannot read '{tmp_path}/missing' for env PGPASSWORD" in r.err, r
    assert len(snapshots(bcdr, repo)) == 1


def lines(path):
    return [ln.rstrip() for ln in path.read_text().splitlines()]


def checkstate(a, name):
    return a.api(f"/checks/{name}")


def test_pg_drill_down_database_and_failed_load_through_the_agent(pg, bcdr, agent, tmp_path):
    repo, pwf = repo_with_password(tmp_path, bcdr)
    psql = [pg.tool("psql"), *pg.conn(), "-v", "ON_ERROR_STOP=1"]
    dead = [pg.tool("pg_dump"), "-h", "127.0.0.1", "-p", str(free_port()), "-U", "postgres",
            "shop"]
    jobs = f"""
  - name: shop
    repository: local
    command: {json.dumps(pg_dump(pg))}
    filename: shop.sql
    rto: 10m
    drill:
      every: daily
      setup: {json.dumps([pg.tool("createdb"), *pg.conn(), "drill_shop"])}
      load: {json.dumps(psql + ["-q", "-d", "drill_shop"])}
      verify: {json.dumps(psql + ["-tA", "-d", "drill_shop", "-c",
                                  "select count(*) from orders"])}
      expect: ">= {ROWS}"
      teardown: {json.dumps([pg.tool("dropdb"), *pg.conn(), "--if-exists", "drill_shop"])}
  - name: badload
    repository: local
    command: {json.dumps(pg_dump(pg))}
    filename: shop.sql
    drill:
      every: daily
      load: {json.dumps(psql + ["-q", "-d", "nosuchdb"])}
  - name: down
    repository: local
    command: {json.dumps(dead)}
    filename: shop.sql
    schedule: every 1h
"""
    a = agent(db_plan(tmp_path, repo, pwf, jobs))
    for job in ("shop", "badload"):
        r = bcdr("backup", "-c", a.plan, "--job", job, env=ENV)
        assert r.code == 0, r
    a.start()
    t = 120 if SANITIZED else 60
    a.wait_for(lambda: checkstate(a, "drill:shop")["state"] == "ok" and
               "verify printed" in checkstate(a, "drill:shop")["message"], timeout=t,
               what="the drill of shop")
    c = checkstate(a, "drill:shop")
    assert f"verify printed '{ROWS}', expect >= {ROWS}" in c["message"], c
    assert "rto 10m" in c["message"], c
    assert "drill_shop" not in pg.psql("select datname from pg_database")  # torn down

    a.wait_for(lambda: checkstate(a, "drill:badload")["state"] == "critical", timeout=t,
               what="the failed load")
    c = checkstate(a, "drill:badload")
    assert "load 'psql' failed (exit status 2)" in c["message"], c
    assert 'database "nosuchdb" does not exist' in c["message"], c

    a.wait_for(lambda: checkstate(a, "backup:down")["state"] == "critical", timeout=t,
               what="the backup of a database that is down")
    c = checkstate(a, "backup:down")
    assert "command 'pg_dump' failed (exit status 1)" in c["message"], c
    assert "Connection refused" in c["message"] and "no snapshot saved" in c["message"], c
    a.wait_for(lambda: any(x["labels"].get("check") == "backup:down" and
                           x["state"] == "firing" for x in a.api("/alerts")),
               timeout=t, what="an alert for the failed backup")
    events = [e["message"] for e in a.events(kind="drill")]
    assert any("drill of 'shop' done" in m for m in events), events
    assert a.stop() == 0


@pytest.mark.no_sanitizer  # mariadb-install-db alone takes 10 s: once per suite is enough
def test_mariadb_dump_and_drill(bcdr, agent, tmp_path):
    db = MariaDB().start()
    try:
        db.sql("create database shop")
        db.sql("create table orders (id int primary key auto_increment, customer int, "
               "note varchar(200)) engine=innodb", db="shop")
        db.sql("insert into orders (customer, note) select seq % 97, concat('order ', seq) "
               "from seq_1_to_20000", db="shop")
        repo, pwf = repo_with_password(tmp_path, bcdr)
        cli = db.client()
        jobs = f"""
  - name: shop
    repository: local
    command: {json.dumps(db.client("mariadb-dump") + ["--single-transaction", "shop"])}
    filename: shop.sql
    drill:
      every: daily
      setup: {json.dumps(cli + ["-e", "create database drill"])}
      load: {json.dumps(cli + ["drill"])}
      verify: {json.dumps(cli + ["-N", "-B", "drill", "-e", "select count(*) from orders"])}
      expect: "= 20000"
      teardown: {json.dumps(cli + ["-e", "drop database if exists drill"])}
  - name: broken
    repository: local
    command: {json.dumps(db.client("mariadb-dump") + ["--single-transaction", "nosuchdb"])}
    filename: shop.sql
"""
        a = agent(db_plan(tmp_path, repo, pwf, jobs))
        r = bcdr("backup", "-c", a.plan, "--job", "shop", env=ENV)
        assert r.code == 0, r
        r = bcdr("backup", "-c", a.plan, "--job", "broken", env=ENV)
        assert r.code == 1 and "Unknown database 'nosuchdb'" in r.err, r
        a.start()
        a.wait_for(lambda: checkstate(a, "drill:shop")["state"] == "ok" and
                   "verify printed" in checkstate(a, "drill:shop")["message"], timeout=60,
                   what="the drill of the MariaDB dump")
        assert "verify printed '20000', expect = 20000" in checkstate(a, "drill:shop")["message"]
        assert "drill" not in db.sql("show databases").split()
        assert a.stop() == 0
    finally:
        db.close()


def test_example_plan_is_valid(bcdr):
    plan = Path(__file__).resolve().parents[2] / "examples" / "postgresql.yaml"
    r = bcdr("config", "check", "-c", plan)
    assert r.code == 0, r
