"""The command line as a user meets it: help, exit codes, plan errors."""
import os


def test_help_lists_commands(bcdr):
    r = bcdr("help")
    assert r.code == 0, r
    assert "config" in r.out and "version" in r.out


def test_no_command_is_usage_error(bcdr):
    r = bcdr()
    assert r.code == 2, r
    assert "usage: bcdr" in r.out


def test_unknown_command(bcdr):
    r = bcdr("frobnicate")
    assert r.code == 2, r
    assert "'frobnicate' is not a bcdr command" in r.err


def test_command_help(bcdr):
    r = bcdr("config", "check", "--help")
    assert r.code == 0, r
    assert r.out.startswith("usage: bcdr config check")


def test_unknown_option_is_usage_error(bcdr):
    r = bcdr("config", "check", "--frob")
    assert r.code == 2, r
    assert "bcdr config check --help" in r.err


def test_version_json(bcdr):
    r = bcdr("version", "--json")
    assert r.code == 0, r
    assert r.json()["version"]


def test_config_check_valid(bcdr, write_plan):
    plan = write_plan("targets: { availability: 99.95%, rto: 15m, rpo: 1h }\n")
    r = bcdr("config", "check", "-c", plan)
    assert r.code == 0, r
    assert "valid" in r.out
    r = bcdr("-c", plan, "--json", "config", "check")
    assert r.code == 0, r
    assert r.json()["valid"] is True


def test_config_check_reports_position(bcdr, write_plan):
    plan = write_plan("targets:\n  availability: 99.95%\n  rpo: soon\n")
    r = bcdr("config", "check", "-c", plan)
    assert r.code == 1, r
    assert f"{plan}:3:8: expected a duration" in r.err


def test_config_unknown_section(bcdr, write_plan):
    plan = write_plan("targetz: {}\n")
    r = bcdr("config", "check", "-c", plan)
    assert r.code == 1, r
    assert f"{plan}:1:1: unknown section 'targetz'" in r.err


def test_default_plan_is_found_in_cwd(bcdr, write_plan, tmp_path):
    write_plan("targets: { rto: 15m }\n")
    r = bcdr("config", "check", cwd=tmp_path)
    assert r.code == 0, r


def test_missing_plan(bcdr, tmp_path):
    r = bcdr("config", "check", "-c", tmp_path / "nope.yaml")
    assert r.code == 1, r
    assert "cannot read the plan" in r.err


def test_garbage_plans_never_crash(bcdr, tmp_path):
    samples = [b"\x00\x01\x02", b"{{{{", b"- - - -", b"a: &x [*x]", b"\xff\xfe bad utf",
               b"targets: " + b"[" * 5000, os.urandom(4096)]
    for i, data in enumerate(samples):
        path = tmp_path / f"garbage{i}.yaml"
        path.write_bytes(data)
        r = bcdr("config", "check", "-c", path)
        assert r.code == 1, (data[:40], r)
        assert "error:" in r.err


# Every command and subcommand but the cluster's (its own loop until its
# subcommands land) takes its options from one table (src/cli/options.c).
COMMANDS = ["init", "backup", "snapshots", "ls", "diff", "restore", "dump", "check", "forget",
            "prune", "stats", "copy", "probe", "agent", "status", "checks", "events",
            "lb", "lb status", "lb set", "lb report", "model availability", "model simulate",
            "model graph", "model measured", "alert test", "alert receivers", "silence add",
            "silence list", "silence expire", "act list", "act reset", "config check",
            "key passwd", "key add", "predict anomalies", "predict forecast"]


def test_every_command_lists_its_options(bcdr):
    for cmd in COMMANDS:
        r = bcdr(*cmd.split(), "--help")
        assert r.code == 0 and r.out.startswith(f"usage: bcdr {cmd}"), r
        assert "\noptions:\n" in r.out and r.out.endswith("  -h, --help        this help\n\n"), r
        assert r.err == "", r
    # the rows of a command's own table, and of the blocks it shares
    out = bcdr("backup", "--help").out
    assert "  -e, --exclude GLOB      skip matching paths (with a '/': the full path,\n" \
           "                          else the name), repeatable\n" in out
    assert "  -r, --repo DIR|URL|NAME   the repository" in out
    assert "      --agent URL       the agent (default: agent.listen of the plan,\n" \
           "                        else 127.0.0.1:8470)\n" in bcdr("events", "--help").out
    # `bcdr help NAME` is the same text
    for cmd in ("backup", "status", "lb", "probe"):
        assert bcdr("help", cmd).out == bcdr(cmd, "--help").out


def test_option_errors_are_usage_errors(bcdr):
    for args, said in [
            (["snapshots", "--frob"], "snapshots: unrecognized option '--frob'"),
            (["restore", "-t"], "restore: option requires an argument -- 't'"),
            (["events", "--follow=1"], "events: option '--follow' doesn't allow an argument"),
            (["model", "simulate", "--years=abc"],
             "bcdr: --years must be a whole number from 2 to 1000000, not 'abc'"),
            (["lb", "-w", "x"], "bcdr: --workers takes 0 to 256, not 'x'"),
            (["lb", "report", "-p", "99999"], "bcdr: --port takes 1 to 65535, not '99999'"),
            (["model", "measured", "--since", "5"],
             "bcdr: --since takes a duration such as 30d or 12h, not '5'"),
            (["predict", "forecast", "--threshold", "x"], "bcdr: --threshold wants a number"),
            (["forget", "--keep-last", "-1"], "--keep-last must be a whole number from 0"),
            (["checks", "a", "b"], "bcdr: unexpected argument 'b'")]:
        r = bcdr(*args)
        assert r.code == 2, r
        assert said in r.err, r
        sub = " ".join(a for a in args[:2] if not a.startswith("-") and a in
                       ("model", "simulate", "measured", "lb", "report", "predict",
                        "forecast", "snapshots", "restore", "events", "forget", "checks"))
        assert f"see 'bcdr {sub} --help'" in r.err, r


def test_operands_after_double_dash(bcdr, tmp_path):
    # "--help" after "--" is a check's name, not the option
    r = bcdr("probe", "-c", tmp_path / "none.yaml", "--", "--help")
    assert r.code == 1 and "cannot read the plan" in r.err, r
