"""The benchmarks' paired runs (bench/pairs.py, bench/backup/run,
bench/remote/run): the order of the tools, the medians of per-pair ratios,
the disk check, and one real run of bench/backup/run on tiny trees."""
import importlib.machinery
import importlib.util
import json
import os
import shutil
import subprocess
import sys

import pytest

from conftest import BCDR, ROOT

sys.path.insert(0, str(ROOT / "bench"))
import pairs  # noqa: E402


def load_remote():
    loader = importlib.machinery.SourceFileLoader("bench_remote", str(ROOT / "bench/remote/run"))
    spec = importlib.util.spec_from_loader("bench_remote", loader)
    mod = importlib.util.module_from_spec(spec)
    loader.exec_module(mod)
    return mod


def run(step, tool, pair, wall, cpu=1.0, rss=10.0, load=1.0):
    return {"step": step, "tool": tool, "pair": pair, "wall": wall, "cpu": cpu, "rss": rss,
            "load": load}


def test_order_rotates_so_each_tool_goes_first_as_often():
    assert [pairs.order(["bcdr", "restic"], p) for p in range(3)] == [
        ["bcdr", "restic"], ["restic", "bcdr"], ["bcdr", "restic"]]
    three = [pairs.order(["bcdr", "restic", "borg"], p)[0] for p in range(6)]
    assert three == ["bcdr", "restic", "borg"] * 2


def test_ratio_is_the_median_of_the_per_pair_ratios():
    # per pair restic / bcdr: 3, 4, 2 -> median 3; the ratio of the medians would be 8 / 2 = 4
    runs = [run("b1", "bcdr", 0, 1, cpu=0.001, rss=50, load=0.5), run("b1", "restic", 0, 3, rss=70),
            run("b1", "bcdr", 1, 2, cpu=2, rss=90), run("b1", "restic", 1, 8, cpu=4, load=3.5),
            run("b1", "bcdr", 2, 10, cpu=3), run("b1", "restic", 2, 20, cpu=6),
            # a restore in the first pair only: paired there, nowhere else
            run("r", "bcdr", 0, 2), run("r", "restic", 0, 5),
            {"step": "size", "tool": "bcdr", "pair": 0, "bytes": 100},
            {"step": "size", "tool": "restic", "pair": 0, "bytes": 150}]
    s = pairs.summarize(runs, ["bcdr", "restic"])
    assert list(s) == ["b1", "r", "size"]
    b1 = s["b1"]
    assert b1["tools"]["bcdr"] == {"wall": 2, "cpu": 2, "rss": 90, "n": 3}
    assert b1["tools"]["restic"]["wall"] == 8
    assert b1["ratios"]["restic"]["wall"] == (3, 2, 4)
    # CPU: 1 / 0.01 (the floor), 4 / 2, 6 / 3
    assert b1["ratios"]["restic"]["cpu"] == (2, 2, 100)
    assert b1["ratios"]["restic"]["pairs"] == 3
    assert b1["load"] == (0.5, 3.5)
    assert s["r"]["ratios"]["restic"] == {"wall": (2.5, 2.5, 2.5), "pairs": 1, "cpu": (1, 1, 1)}
    assert s["size"]["ratios"]["restic"]["bytes"] == (1.5, 1.5, 1.5)
    assert pairs.fmt_ratio((3, 2, 4)) == "3.00 (2.00-4.00)"
    assert pairs.fmt_ratio((2.5, 2.5, 2.5)) == "2.50"
    table = pairs.backup_table(runs, ["bcdr", "restic"])
    assert "| backup 6.1 | 2.00, 2.00 (90) | 8.00, 4.00 (70) | 3.00 (2.00-4.00) |" in table
    assert "| repository MB | 0 | 0 | 1.50 |" in table


def test_disk_plan_names_the_restores_that_fit():
    gb = 1e9
    # 20 GB free, 5 kept, 1 kept besides, 1 while a pair runs: 13 GB for restores of 2.6
    assert pairs.disk_plan(20 * gb, 5 * gb, 2.6 * gb, 1 * gb, 1 * gb, 3, 3) == (3, 3)
    assert pairs.disk_plan(20 * gb, 5 * gb, 2.6 * gb, 1 * gb, 1 * gb, 9, 9) == (None, 5)
    assert pairs.disk_plan(20 * gb, 5 * gb, 2.6 * gb, 1 * gb, 1 * gb, 9, 4) == (4, 5)
    assert pairs.disk_plan(20 * gb, 5 * gb, 0, 1 * gb, 1 * gb, 9, 9) == (9, 9)
    assert pairs.disk_plan(6 * gb, 5 * gb, 2.6 * gb, 1 * gb, 1 * gb, 2, 0) == (None, -1)


def test_remote_keeps_its_json_and_reports_the_paired_ratios(capsys):
    remote = load_remote()
    b_runs = [run("b1", "bcdr", 0, 2, cpu=1, rss=100, load=2), run("b1", "bcdr", 1, 4, cpu=3, rss=120)]
    r_runs = [run("b1", "restic", 0, 6, cpu=2, rss=130), run("b1", "restic", 1, 20, cpu=9, rss=90)]
    b = remote.aggregate([{"b1": (2, 100, 1), "stored": None}, {"b1": (4, 120, 3), "stored": None}],
                         b_runs)
    r = remote.aggregate([{"b1": (6, 130, 2), "stored": None}, {"b1": (20, 90, 9), "stored": None}],
                         r_runs)
    assert b["b1"] == (3, 120, 2) and b["stored"] is None and b["pairs"] == 2
    # totals from the pairs that ran every step (here the one that restored)
    t = remote.aggregate([{"b1": (2, 1, 1), "r": (1, 1, 1), "requests": 90},
                          {"b1": (4, 1, 1), "requests": 10}, {"b1": (3, 1, 1), "requests": 12}], [])
    assert t["requests"] == 90 and t["r"] == (1, 1, 1) and t["b1"] == (3, 1, 1)
    results = {("rest", "direct", "bcdr"): b, ("rest", "direct", "restic"): r}
    args = type("A", (), {"json": True, "steps": ["b1"], "delay": 0.02, "pairs": 2,
                          "restore_pairs": 2})()
    remote.report(args, results, 2.8)
    out = json.loads(capsys.readouterr().out)
    restic = [e for e in out if e["tool"] == "restic"][0]
    assert restic["b1"] == [13, 130, 5.5]  # as before pairs: wall, RSS, CPU
    assert restic["ratios"]["b1"]["wall"] == [4, 3, 5]  # 6 / 2 and 20 / 4
    assert restic["load"]["b1"] == [1, 2]
    args.json = False
    remote.report(args, results, 2.8, load0=1.5)
    table = capsys.readouterr().out
    assert "| rest | direct | backup 6.1 | 3.00, 2.00 (120) | 13.00, 5.50 (130) | " \
           "4.00 (3.00-5.00) | 2.50 (2.00-3.00) | 1.0-2.0 |" in table


def tiny_trees(tmp_path):
    a, b = tmp_path / "trees" / "a", tmp_path / "trees" / "b"
    for i, tree in enumerate((a, b)):
        (tree / "d").mkdir(parents=True)
        for n in range(20 + 10 * i):
            (tree / "d" / f"f{n}").write_bytes(os.urandom(3000 + n))
    fetch = tmp_path / "fetch"
    fetch.write_text(f"#!/bin/sh\necho {a}\necho {b}\n")
    fetch.chmod(0o755)
    return fetch


def backup_run(tmp_path, *args, env=None):
    full = dict(os.environ, BCDR_FETCH_TREES=str(tiny_trees(tmp_path)),
                BCDR_BENCH_WORK=str(tmp_path / "work"), **(env or {}))
    return subprocess.run([str(ROOT / "bench/backup/run"), BCDR, *args], env=full,
                          capture_output=True, text=True, timeout=120)


def test_backup_run_refuses_what_the_disk_cannot_hold(tmp_path):
    r = backup_run(tmp_path, "--pairs", "2", "--peers", "", env={"BCDR_BENCH_RESERVE_GB": "1e9"})
    assert r.returncode != 0
    assert "BCDR_BENCH_RESERVE_GB" in r.stderr and "larger disk" in r.stderr
    assert not (tmp_path / "work").exists() or not any((tmp_path / "work").iterdir())


@pytest.mark.no_sanitizer
@pytest.mark.skipif(not shutil.which("restic"), reason="restic is not installed")
def test_backup_run_alternates_and_keeps_restores_paired(tmp_path):
    r = backup_run(tmp_path, "--pairs", "2", "--restore-pairs", "1", "--peers", "restic",
                   "--steps", "b1,r", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)  # the header went to stderr
    assert "pairs: 2, with restores in the first 1" in r.stderr
    runs = [x for x in out["runs"] if x["tool"] != "baseline"]
    firsts = [[x["tool"] for x in runs if x["pair"] == p and x["step"] == "b1"] for p in (0, 1)]
    assert firsts == [["bcdr", "restic"], ["restic", "bcdr"]]
    restores = [(x["tool"], x["pair"]) for x in runs if x["step"] == "r"]
    assert restores == [("bcdr", 0), ("restic", 0)]
    s = out["summary"]
    assert s["b1"]["ratios"]["restic"]["pairs"] == 2 and s["r"]["ratios"]["restic"]["pairs"] == 1
    assert all(x["load"] >= 0 for x in runs if x["step"] != "size")
    assert s["size"]["tools"]["bcdr"]["n"] == 2


@pytest.mark.skipif(os.geteuid() != 0, reason="a loop device needs root")
def test_fresh_fs_is_a_new_file_system_gone_after(tmp_path):
    fresh, target = str(ROOT / "bench/fresh-fs"), tmp_path / "out"
    subprocess.run([fresh, "mount", str(target), "1"], check=True)
    try:
        assert os.stat(target).st_dev != os.stat(tmp_path).st_dev
        (target / "f").write_bytes(b"x" * 4096)
        assert sorted(os.listdir(target)) == ["f", "lost+found"]
    finally:
        subprocess.run([fresh, "umount", str(target)], check=True)
    assert not target.exists() and not (tmp_path / "out.img").exists()
    # a plain directory (no root) is left as it is
    target.mkdir()
    (target / "kept").write_text("x")
    subprocess.run([fresh, "umount", str(target)], check=True)
    assert (target / "kept").exists()
