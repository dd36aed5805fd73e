"""check --read-data streams each pack (header first, then its bytes in
2 MiB reads, each blob opened as it is in): a worker holds one read and
one blob's buffers, never a whole 16 MiB pack. Holding the packs, a
2-worker check of this repository peaked 46 MiB above a check without
--read-data; streaming, 16."""
import os

import pytest

from backup_helpers import FAST_KDF, PASSWORD
from test_backup_scale import peak_mib

pytestmark = pytest.mark.no_sanitizer  # ASan's shadow memory and quarantine distort RSS

PACK_MIB = 16  # archiver.h PACK_TARGET: a data pack is at least this


def test_read_data_holds_no_whole_pack(tmp_path):
    src, repo = tmp_path / "src", str(tmp_path / "repo")
    src.mkdir()
    for i in range(4):  # incompressible: four full data packs
        (src / f"f{i}.bin").write_bytes(os.urandom(PACK_MIB << 20))
    env = dict(os.environ, BCDR_PASSWORD=PASSWORD, BCDR_SCRYPT_N=FAST_KDF)
    r = ["--repo", repo]
    peak_mib(["init", *r], env)
    peak_mib(["backup", "-q", *r, str(src)], env)
    packs = sum(len(f) for _, _, f in os.walk(os.path.join(repo, "data")))
    assert packs >= 4, packs
    # a local repository: a worker per CPU, at most one per pack
    workers = min(os.sysconf("SC_NPROCESSORS_ONLN"), packs)
    base = peak_mib(["check", "-q", *r], env)
    read = peak_mib(["check", "-q", "--read-data", *r], env)
    # a worker's read (2 MiB) and blob buffers (three of a chunk, <= 4 MiB)
    # stay under a pack; holding the pack is a pack plus those
    assert read - base < workers * PACK_MIB, (read, base, workers)
