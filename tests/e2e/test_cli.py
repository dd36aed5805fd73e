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
