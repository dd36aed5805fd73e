"""Building and running bcdr needs only scripts/bootstrap's `build` set.

A scratch configure of the source tree: every dependency meson resolves
must come (its .pc file and the libraries it links, found with dpkg -S) from
a package of the build set; a configure that cannot see the test packages
(cmocka, as on a fresh machine after `scripts/bootstrap build`) succeeds, and
the build with the tests off compiles everything `make run` needs. Not a
test of the binary under test: it runs once, not again under ASan."""
import json
import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.no_sanitizer


def bootstrap_set(name):
    """The packages of one set, read from scripts/bootstrap itself."""
    src = (ROOT / "scripts" / "bootstrap").read_text()
    start = src.index(f"\n{name}_pkgs=(") + 1
    block = src[start:src.index("\n)", start) + 2]
    out = subprocess.run(["bash", "-c", block + f'\nprintf "%s\\n" "${{{name}_pkgs[@]}}"'],
                         check=True, capture_output=True, text=True).stdout
    return set(out.split())


def owner(path):
    """The Debian package owning path (dpkg -S), without its architecture."""
    path = os.path.normpath(path)
    candidates = [path]
    # Merged /usr: dpkg may know the file under the other name.
    if path.startswith("/usr/lib/"):
        candidates.append(path[len("/usr"):])
    elif path.startswith("/lib/"):
        candidates.append("/usr" + path)
    for p in candidates:
        r = subprocess.run(["dpkg", "-S", p], capture_output=True, text=True)
        if r.returncode == 0:
            return r.stdout.split(":", 1)[0].split(",")[0].strip()
    return None


def meson_setup(builddir, *args, env=None):
    r = subprocess.run(["meson", "setup", str(builddir), str(ROOT), *args],
                       capture_output=True, text=True, env=env)
    assert r.returncode == 0, f"meson setup {' '.join(args)} failed:\n{r.stdout}\n{r.stderr}"
    deps = subprocess.run(["meson", "introspect", "--dependencies", str(builddir)],
                          check=True, capture_output=True, text=True).stdout
    return json.loads(deps)


def dependency_files(dep):
    """The files one resolved dependency comes from: its .pc file and the
    libraries it links by path."""
    files = []
    r = subprocess.run(["pkg-config", "--path", dep["name"]], capture_output=True, text=True)
    if r.returncode == 0:
        files.append(r.stdout.strip())
    files += [a for a in dep["link_args"] if a.startswith("/")]
    return files


@pytest.fixture(scope="module")
def sets():
    build, test = bootstrap_set("build"), bootstrap_set("test")
    assert "meson" in build and "libcmocka-dev" in test
    return build, test


def test_plain_build_needs_only_the_build_set(tmp_path, sets):
    build, test = sets
    deps = meson_setup(tmp_path / "b", "-Dtests=disabled")
    names = {d["name"] for d in deps}
    assert {"libcurl", "sqlite3", "libzstd", "igraph"} <= names, names
    assert "cmocka" not in names
    wrong = []
    for dep in deps:
        if dep["name"] == "threads":
            continue  # -pthread: the compiler and libc
        files = dependency_files(dep)
        if not files:
            wrong.append(f"{dep['name']}: no .pc file or library found")
        for f in files:
            pkg = owner(f)
            if pkg not in build:
                wrong.append(f"{dep['name']}: '{f}' comes from '{pkg}', not in the build set")
    assert not wrong, "\n".join(wrong)

    # Everything `make build` / `make run` builds, with the tests off.
    r = subprocess.run(["ninja", "-C", str(tmp_path / "b")], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-4000:]
    for target in ("bcdr", "bcdr-backup.so", "bcdr-model.so"):
        assert (tmp_path / "b" / target).exists(), target
    # `help init` asks the backup module: it loads from beside the binary.
    v = subprocess.run([str(tmp_path / "b" / "bcdr"), "help", "init"], capture_output=True,
                       text=True)
    assert v.returncode == 0 and "init" in v.stdout, v.stdout + v.stderr


def test_plain_configure_without_test_packages(tmp_path, sets):
    """As on a machine with the build set only: the test packages' .pc files
    hidden from pkg-config and no cmake to find cmocka's config with."""
    build, test = sets
    hidden = set()
    for pkg in test:
        r = subprocess.run(["dpkg", "-L", pkg], capture_output=True, text=True)
        hidden |= {Path(f).name for f in r.stdout.split() if f.endswith(".pc")}
    assert "cmocka.pc" in hidden
    farm = tmp_path / "pkgconfig"
    farm.mkdir()
    pc_path = subprocess.run(["pkg-config", "--variable", "pc_path", "pkg-config"],
                             check=True, capture_output=True, text=True).stdout.strip()
    for d in pc_path.split(":"):
        for pc in Path(d).glob("*.pc") if Path(d).is_dir() else []:
            if pc.name not in hidden and not (farm / pc.name).exists():
                (farm / pc.name).symlink_to(pc)
    native = tmp_path / "native.ini"
    native.write_text("[binaries]\ncmake = '/nonexistent/cmake'\n")
    env = dict(os.environ, PKG_CONFIG_LIBDIR=str(farm))
    env.pop("PKG_CONFIG_PATH", None)
    deps = meson_setup(tmp_path / "b", "--native-file", str(native), env=env)
    names = {d["name"] for d in deps}
    assert "cmocka" not in names and "libcurl" in names, names
    # The same configure with the tests required names what is missing.
    r = subprocess.run(["meson", "setup", str(tmp_path / "c"), str(ROOT), "-Dtests=enabled",
                        "--native-file", str(native)], capture_output=True, text=True, env=env)
    assert r.returncode != 0 and "cmocka" in r.stdout + r.stderr
