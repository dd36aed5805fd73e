# bcdr: a thin wrapper over meson. `make run` and `make test` work on a fresh
# Debian 12 machine: each first installs what is missing (scripts/bootstrap).

BUILD      ?= build
ASAN_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz
PYTEST     ?= /usr/bin/python3 -m pytest --durations=15
PLAN       ?= examples/demo.yaml
SOAK_FAULTS ?= 52
# Seconds per fuzzer: a smoke run in `make test`, a real one in `make fuzz`.
FUZZ_SMOKE_SECONDS ?= 10
FUZZ_SECONDS       ?= 300

.PHONY: all build run test unit e2e asan fuzz fuzz-smoke soak bench clean bootstrap tests-enabled

all: build

bootstrap:
	@scripts/bootstrap build

# auto: the unit tests when cmocka is installed (see tests-enabled).
MESON_TESTS ?= auto

$(BUILD)/build.ninja:
	meson setup $(BUILD) -Dtests=$(MESON_TESTS) >/dev/null

build: bootstrap $(BUILD)/build.ninja
	@ninja -C $(BUILD) >/dev/null || ninja -C $(BUILD)

$(ASAN_BUILD)/build.ninja:
	meson setup $(ASAN_BUILD) -Dtests=$(MESON_TESTS) -Db_sanitize=address,undefined \
	  -Db_lundef=false >/dev/null

asan: bootstrap $(ASAN_BUILD)/build.ninja
	@ninja -C $(ASAN_BUILD) >/dev/null || ninja -C $(ASAN_BUILD)

$(FUZZ_BUILD)/build.ninja:
	CC=clang meson setup $(FUZZ_BUILD) -Dfuzz=true -Db_sanitize=address,undefined -Db_lundef=false -Dwerror=false >/dev/null

fuzz-build: $(FUZZ_BUILD)/build.ninja
	@ninja -C $(FUZZ_BUILD) >/dev/null || ninja -C $(FUZZ_BUILD)

run: build
	scripts/demo $(BUILD)/bcdr $(PLAN)

# The unit tests need cmocka, a test package, so a plain configure builds
# them only when it is there (meson option `tests`, auto): the targets that
# run them make it required, also in a build dir configured without it
# (`make run` on a fresh machine, then `make test`).
tests-enabled:
	@for b in $(BUILD) $(ASAN_BUILD); do \
	  [ ! -f $$b/build.ninja ] || meson introspect --buildoptions $$b | \
	    grep -q '"name": "tests", "value": "enabled"' || \
	    meson configure $$b -Dtests=enabled >/dev/null; \
	done

# Every test: unit tests in the plain and the sanitized build, end-to-end
# tests against both binaries, and a short run of every fuzzer.
test:
	@scripts/bootstrap test
	@tests/e2e/browser/setup
	@$(MAKE) --no-print-directory tests-enabled
	@$(MAKE) --no-print-directory build asan fuzz-build MESON_TESTS=enabled
	meson test -C $(BUILD) --print-errorlogs
	meson test -C $(ASAN_BUILD) --print-errorlogs
	BCDR_BIN=$(CURDIR)/$(BUILD)/bcdr $(PYTEST) -q tests/e2e
	BCDR_BIN=$(CURDIR)/$(ASAN_BUILD)/bcdr BCDR_SANITIZED=1 $(PYTEST) -q -m 'not no_sanitizer' tests/e2e
	scripts/fuzz $(FUZZ_BUILD) $(FUZZ_SMOKE_SECONDS)

unit:
	@$(MAKE) --no-print-directory tests-enabled
	@$(MAKE) --no-print-directory build asan MESON_TESTS=enabled
	meson test -C $(BUILD) --print-errorlogs
	meson test -C $(ASAN_BUILD) --print-errorlogs

e2e: build
	@tests/e2e/browser/setup
	BCDR_BIN=$(CURDIR)/$(BUILD)/bcdr $(PYTEST) -q tests/e2e

fuzz:
	@scripts/bootstrap test
	@$(MAKE) --no-print-directory fuzz-build
	scripts/fuzz $(FUZZ_BUILD) $(FUZZ_SECONDS)

# The cluster under induced faults, over network namespaces (root): at least
# 50 faults, the invariant (zero double leaders) and the failover times.
soak: build
	@scripts/bootstrap test
	BCDR_BIN=$(CURDIR)/$(BUILD)/bcdr BCDR_SOAK=1 $(PYTEST) -q -s tests/e2e/test_cluster_netns.py \
		tests/e2e/test_cluster_lb_netns.py
	scripts/soak-cluster $(BUILD)/bcdr $(SOAK_FAULTS)

bench: build
	@scripts/bootstrap bench
	bench/run $(BUILD)/bcdr

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD)
