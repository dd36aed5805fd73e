#!/usr/bin/python3
"""bench/pairs: paired runs of bcdr against its peers, and their summary.

A figure of one run is one draw from a machine shared with other work, and
the tool that runs first sees a different cache and load than the next. So
the benchmarks (bench/backup/run, bench/remote/run) run each step N times
per tool, the tools one after the other in each pair, the order rotated by
one from one pair to the next (with two tools: each goes first in every
other pair). Per step they report the median wall and CPU seconds, the
largest peak RSS, and the median of the per-pair ratios peer / bcdr with
their min and max: a ratio of two runs made back to back under the same
load, so the load cancels out of it more than out of two medians.

Each run is a dict: step, tool, pair (0-based), wall (s), cpu (s, user +
system), rss (MiB), load (1-minute load average right before the run).
A repository size is a dict with step "size", tool, pair and bytes.

As a command: `bench/pairs.py backup-table RUNS.jsonl TOOLS [--json]` prints
bench/backup/run's report from its runs, one JSON object a line.
"""
import json
import shutil
import statistics
import sys

BASE = "bcdr"


def order(tools, pair):
    """The tools in the order they run in pair `pair`."""
    tools = list(tools)
    k = pair % len(tools)
    return tools[k:] + tools[:k]


def loadavg(path="/proc/loadavg"):
    with open(path) as f:
        return float(f.read().split()[0])


def spread(values):
    """(median, min, max) of values, or None without any."""
    values = list(values)
    if not values:
        return None
    return (statistics.median(values), min(values), max(values))


def pair_ratios(runs, step, peer, key, base=BASE):
    """peer / base of `key` in each pair where both ran `step`, by pair."""
    by = {}
    for r in runs:
        if r["step"] == step and r["tool"] in (base, peer):
            by.setdefault(r["pair"], {})[r["tool"]] = r[key]
    out = {}
    for pair, v in sorted(by.items()):
        if base in v and peer in v:
            # CPU: a floor of 10 ms, as a step can take less than the clock's grain
            out[pair] = v[peer] / max(v[base], 0.01 if key == "cpu" else 1e-9)
    return out


def summarize(runs, tools, base=BASE):
    """{step: {"tools": {tool: {wall, cpu, rss, n}}, "ratios": {peer: {wall,
    cpu: (median, min, max), pairs}}, "load": (min, max)}}, steps in the
    order they first ran; sizes under step "size" (median bytes)."""
    steps = []
    for r in runs:
        if r["step"] not in steps:
            steps.append(r["step"])
    out = {}
    for step in steps:
        mine = [r for r in runs if r["step"] == step]
        s = {"tools": {}, "ratios": {}}
        key = "bytes" if step == "size" else "wall"
        for tool in tools:
            t = [r for r in mine if r["tool"] == tool]
            if not t:
                continue
            if step == "size":
                s["tools"][tool] = {"bytes": statistics.median(r["bytes"] for r in t), "n": len(t)}
            else:
                s["tools"][tool] = {"wall": statistics.median(r["wall"] for r in t),
                                    "cpu": statistics.median(r["cpu"] for r in t),
                                    "rss": max(r["rss"] for r in t), "n": len(t)}
        for peer in tools:
            if peer == base or peer not in s["tools"] or base not in s["tools"]:
                continue
            wall = pair_ratios(runs, step, peer, key, base)
            ratio = {"wall" if key == "wall" else "bytes": spread(wall.values()),
                     "pairs": len(wall)}
            if key == "wall":
                ratio["cpu"] = spread(pair_ratios(runs, step, peer, "cpu", base).values())
            s["ratios"][peer] = ratio
        loads = [r["load"] for r in mine if "load" in r]
        if loads:
            s["load"] = (min(loads), max(loads))
        out[step] = s
    return out


def fmt_ratio(r):
    """"3.06" for one pair, "3.06 (2.90-3.20)" for more: median (min-max)."""
    if r is None:
        return "-"
    med, lo, hi = (f"{x:.2f}" for x in r)
    return med if lo == hi else f"{med} ({lo}-{hi})"


def fmt_load(load):
    if not load:
        return "-"
    lo, hi = load
    return f"{lo:.1f}" if lo == hi else f"{lo:.1f}-{hi:.1f}"


def fmt_run(t):
    return f"{t['wall']:.2f}, {t['cpu']:.2f} ({t['rss']:.0f})" if t else "-"


BACKUP_STEPS = (("b1", "backup 6.1"), ("b2", "backup 6.12"), ("b3", "6.12 unchanged"),
                ("r", "restore 6.1"))


def backup_table(runs, tools):
    """bench/backup/run's markdown report: one row a step, then the sizes."""
    pairs = 1 + max((r["pair"] for r in runs if r["tool"] in tools), default=0)
    s = summarize(runs, tools)
    peers = [t for t in tools if t != BASE]
    lines = [f"pairs: {pairs} (each step: the tools one after the other, the order rotated "
             "every pair); seconds and CPU seconds are medians, RSS the largest; "
             "ratios: median of the per-pair ratios (min-max); load: 1-minute load "
             "average before each run (min-max)", ""]
    head = ["step"] + [f"{t} s, CPU s (RSS MiB)" for t in tools]
    head += [f"{p}/{BASE}" for p in peers] + [f"{p}/{BASE} CPU" for p in peers] + ["load"]
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|" + " --- |" * len(head))
    for key, name in BACKUP_STEPS:
        if key not in s:
            continue
        st = s[key]
        row = [name] + [fmt_run(st["tools"].get(t)) for t in tools]
        row += [fmt_ratio(st["ratios"].get(p, {}).get("wall")) for p in peers]
        row += [fmt_ratio(st["ratios"].get(p, {}).get("cpu")) for p in peers]
        row.append(fmt_load(st.get("load")))
        lines.append("| " + " | ".join(row) + " |")
    if "size" in s:
        st = s["size"]
        row = ["repository MB"] + [f"{st['tools'][t]['bytes'] / 1e6:.0f}" if t in st["tools"]
                                   else "-" for t in tools]
        row += [fmt_ratio(st["ratios"].get(p, {}).get("bytes")) for p in peers]
        row += [""] * len(peers) + [""]
        lines.append("| " + " | ".join(row) + " |")
    if "baseline" in [r["tool"] for r in runs]:
        base = {r["step"]: r for r in runs if r["tool"] == "baseline"}
        cp, tz = base.get("cp_a"), base.get("tar_zstd")
        restore = s.get("r", {}).get("tools", {}).get(BASE)
        line = (f"\nbaselines for 6.1: cp -a {cp['wall']:.2f} s, tar | zstd -1 -T2 "
                f"{tz['wall']:.2f} s (load {cp['load']:.1f})")
        if restore:
            line += f"; {BASE} restore / cp -a = {restore['wall'] / cp['wall']:.2f}"
        lines.append(line)
    return "\n".join(lines)


def disk_plan(free, reserve, restore_bytes, per_pair, fixed, pairs, restore_pairs):
    """How many pairs may keep their restores until the end, in free - reserve
    bytes: each such pair keeps restore_bytes, a pair uses per_pair more while
    it runs, fixed is what the run keeps besides. Returns (restore_pairs if
    they fit else None, the most that fit; -1: not even the backups)."""
    room = free - reserve - fixed - per_pair
    if room < 0:
        return None, -1
    fits = pairs if restore_bytes <= 0 else min(pairs, int(room // restore_bytes))
    return (restore_pairs if restore_pairs <= fits else None), fits


def check_disk(path, restore_bytes, per_pair, fixed, pairs, restore_pairs, reserve_gb):
    """Exits with what to do when the run does not fit on path's disk."""
    free = shutil.disk_usage(path).free
    ok, fits = disk_plan(free, reserve_gb * 1e9, restore_bytes, per_pair, fixed, pairs,
                         restore_pairs)
    if ok is not None:
        return
    need = restore_pairs * restore_bytes + per_pair + fixed
    what = (f"pass --restore-pairs {fits} (" + (f"restores in the first {fits} pairs only"
                                                if fits else "no restore step") + "), or "
            if fits >= 0 else "")
    sys.exit(f"bench: {pairs} pairs, {restore_pairs} of them keeping their restores until "
             f"the end, need {need / 1e9:.1f} GB on {path}: {free / 1e9:.1f} GB free, of which "
             f"{reserve_gb:g} GB stay for others (BCDR_BENCH_RESERVE_GB): {what}set "
             "BCDR_BENCH_WORK on a larger disk")


def main(argv):
    if len(argv) >= 3 and argv[0] == "backup-table":
        runs = [json.loads(line) for line in open(argv[1]) if line.strip()]
        tools = argv[2].split(",")
        if "--json" in argv[3:]:
            print(json.dumps({"runs": runs, "summary": summarize(runs, tools)},
                             indent=1))
        else:
            print(backup_table(runs, tools))
        return 0
    if len(argv) == 8 and argv[0] == "check-disk":
        path, rb, pp, fx, n, k, res = argv[1:]
        check_disk(path, float(rb), float(pp), float(fx), int(n), int(k), float(res))
        return 0
    sys.exit("usage: bench/pairs.py backup-table RUNS.jsonl TOOLS [--json]\n"
             "       bench/pairs.py check-disk PATH RESTORE_BYTES PER_PAIR FIXED PAIRS "
             "RESTORE_PAIRS RESERVE_GB")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
