"""Memory does not grow with the number of files: backup, re-backup,
restore, check and ls of 100,000 small files take only a little more peak
RSS than of 20,000. On main 5adba69 (before the streaming trees), 20k
-> 100k in this test: first backup +51 MiB, re-backup +45, restore +26,
check +27, ls +26; with them about +20 (mostly pack buffers reaching their
full 16 MiB, a constant), +8 to +14, +10 (the index's 48 bytes a blob, the
tree reader's 8-16 bytes a node; tree blob buffers that reach the
chunker's maximum, a constant). diff and dump read the node streams
too (before, both loaded whole trees: diff two of them and a path map
each). Peak RSS from /usr/bin/time: a child forked by this
Python would start with its parent's resident pages in ru_maxrss."""
import json
import os
import subprocess
import tempfile

import pytest

from backup_helpers import FAST_KDF, PASSWORD
from conftest import BCDR

# MiB that 80,000 more files may add, per step.
# diff reads two snapshots at once, so it holds two of the widest directory's
# tree buffers (20,000 entries at 100k here), and its growth varied from 7 to
# 19 MiB between runs with the malloc arenas of its reader threads; the whole
# trees it loaded before grew 46.
GROWTH_MAX_MIB = {"backup": 36, "re-backup": 24, "restore": 20, "check": 18, "ls": 18,
                  "diff": 28, "dump": 18}

pytestmark = pytest.mark.no_sanitizer  # ASan's shadow memory and quarantine distort RSS


def make_tree(root, n):
    """n small files: a few wide directories and many of 100."""
    i = 0
    wide = n // 5
    for d in range(-1, n // 100):
        path = os.path.join(root, "wide" if d < 0 else f"d{d // 30:02d}/s{d:04d}")
        os.makedirs(path, exist_ok=True)
        for _ in range(wide if d < 0 else 100):
            if i == n:
                return
            with open(os.path.join(path, f"f{i:06d}"), "wb") as f:
                f.write(b"%d" % i * (i % 50 + 1))
            i += 1


def peak_mib(args, env):
    """Runs bcdr; returns its peak RSS in MiB (asserting success)."""
    with tempfile.NamedTemporaryFile() as rss:
        p = subprocess.run(["/usr/bin/time", "-f", "%M", "-o", rss.name, BCDR, *args],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env,
                           timeout=60)
        assert p.returncode == 0, (args, p.stderr[-2000:])
        return int(open(rss.name).read().split()[-1]) / 1024


def steps(tmp, n):
    src, repo, out = (os.path.join(tmp, f"{x}{n}") for x in ("src", "repo", "out"))
    make_tree(src, n)
    env = dict(os.environ, BCDR_PASSWORD=PASSWORD, BCDR_SCRYPT_N=FAST_KDF)
    r = ["--repo", repo]
    peak_mib(["init", *r], env)
    rss = {
        "backup": peak_mib(["backup", "-q", *r, src], env),
        "re-backup": peak_mib(["backup", "-q", *r, src], env),
        "restore": peak_mib(["restore", "-q", *r, "latest", "--target", out], env),
        "check": peak_mib(["check", "-q", *r], env),
        "ls": peak_mib(["ls", *r, "latest"], env),
    }
    # diff walks both node streams side by side, dump of "/" writes the
    # whole snapshot as tar (to /dev/null): neither holds a tree.
    snaps = json.loads(subprocess.run([BCDR, "snapshots", "--json", *r], env=env,
                                      capture_output=True, check=True).stdout)
    rss["diff"] = peak_mib(["diff", *r, snaps[0]["id"], snaps[1]["id"]], env)
    rss["dump"] = peak_mib(["dump", *r, "latest", "/"], env)
    restored = sum(len(f) for _, _, f in os.walk(out))
    assert restored == n
    return rss


def test_peak_rss_does_not_grow_with_the_file_count(tmp_path):
    small = steps(str(tmp_path), 20000)
    large = steps(str(tmp_path), 100000)
    growth = {k: large[k] - small[k] for k in small}
    print("peak RSS MiB at 20k:", small, "at 100k:", large)
    for step, mib in growth.items():
        assert mib < GROWTH_MAX_MIB[step], (step, small[step], large[step])
