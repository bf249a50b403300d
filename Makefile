# Gatehouse: the top-level driver around meson and ninja.
#
#   make / make build   build/gatehouse
#   make run            install run deps, build, init ./data once, serve --dev
#   make test           unit, sanitizer unit, integration (plain + sanitizer),
#                       fuzz smoke run
#   make unit | asan | integration | integration-asan | fuzz | clean
#   make bench          optimised build in build-bench/, then bench/run.sh
#                       (BENCH_REV=<git rev> benchmarks a committed revision
#                       instead of the working tree)
#
# Every recipe stops at the first failing command; test output (meson and
# pytest summaries, cmocka's stderr) is sent to stdout.

ORG    ?= acme
ADMIN  ?= admin
LISTEN ?= 127.0.0.1:8080
DATA   ?= ./data

BUILD      ?= build
ASAN_BUILD ?= build-asan
BENCH_BUILD ?= build-bench
BENCH_REV  ?=
PYTHON     ?= /usr/bin/python3
FUZZ_SECONDS ?= 10

SANITIZER_ENV = ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
		UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := build
.NOTPARALLEL:

.PHONY: build compile run test deps-run deps-test unit asan asan-compile \
	asan-build integration integration-asan fuzz clean bench

build: compile
	@test -x $(BUILD)/gatehouse || \
		{ echo "$(BUILD)/gatehouse was not built" >&2; exit 1; }

# Configures build/ on first use, then compiles whatever exists so far.
compile:
	@command -v meson >/dev/null && command -v ninja >/dev/null || \
		{ echo "meson/ninja missing: run scripts/install-deps.sh run" >&2; exit 1; }
	@if [ ! -f $(BUILD)/build.ninja ]; then meson setup $(BUILD); fi
	ninja -C $(BUILD)

deps-run:
	@scripts/install-deps.sh run

# The browser tests' playwright-core (tests/browser/package-lock.json); it
# drives Debian's chromium and never downloads a browser. The same lock holds
# scimmy, the third-party SCIM implementation of test_scim_conformance.py,
# and openid-client, the relying party of test_oidc_client_npm.py.
deps-test:
	@scripts/install-deps.sh test
	@npm ci --prefix tests/browser --no-audit --no-fund --loglevel=error

run: deps-run
	@$(MAKE) --no-print-directory build
	@if [ ! -f "$(DATA)/directory.db" ]; then \
		GATEHOUSE_LISTEN="$(LISTEN)" $(BUILD)/gatehouse init --data-dir "$(DATA)" \
			--org "$(ORG)" --admin "$(ADMIN)"; \
	else \
		echo "$(DATA) is already initialised; to reset the admin password run:"; \
		echo "  $(BUILD)/gatehouse user reset-password --data-dir $(DATA) --org $(ORG) $(ADMIN)"; \
	fi
	exec $(BUILD)/gatehouse serve --data-dir "$(DATA)" --listen "$(LISTEN)" --dev

test: deps-test
	@$(MAKE) --no-print-directory unit
	@$(MAKE) --no-print-directory asan
	@$(MAKE) --no-print-directory integration
	@$(MAKE) --no-print-directory integration-asan
	@if [ -x scripts/fuzz.sh ]; then \
		$(MAKE) --no-print-directory fuzz FUZZ_SECONDS=10; \
	else \
		echo "scripts/fuzz.sh not present: fuzz smoke run skipped"; \
	fi
	@echo "make test: all suites passed"

unit: compile
	meson test -C $(BUILD) --print-errorlogs 2>&1

asan-compile:
	@if [ ! -f $(ASAN_BUILD)/build.ninja ]; then \
		meson setup $(ASAN_BUILD) -Db_sanitize=address,undefined -Db_lundef=false; \
	fi
	ninja -C $(ASAN_BUILD)

asan-build: asan-compile
	@test -x $(ASAN_BUILD)/gatehouse || \
		{ echo "$(ASAN_BUILD)/gatehouse was not built" >&2; exit 1; }

asan: asan-compile
	$(SANITIZER_ENV) meson test -C $(ASAN_BUILD) --print-errorlogs 2>&1

integration: build
	GATEHOUSE_BIN=$(abspath $(BUILD))/gatehouse \
		$(PYTHON) -m pytest -q tests/integration 2>&1

integration-asan: asan-build
	GATEHOUSE_BIN=$(abspath $(ASAN_BUILD))/gatehouse GATEHOUSE_SANITIZER=1 \
		$(SANITIZER_ENV) $(PYTHON) -m pytest -q tests/integration 2>&1

fuzz:
	@test -x scripts/fuzz.sh || { echo "scripts/fuzz.sh is missing" >&2; exit 1; }
	scripts/fuzz.sh $(FUZZ_SECONDS) 2>&1

# Benchmarks (bench/run.sh): prints one table, raw results in
# bench/results/<timestamp>/. Timings are printed, never asserted.
bench: deps-run
	@bench/deps.sh
	@if [ -n "$(BENCH_REV)" ]; then \
		rm -rf $(BENCH_BUILD)-rev && mkdir -p $(BENCH_BUILD)-rev/src && \
		git archive "$(BENCH_REV)" | tar -x -C $(BENCH_BUILD)-rev/src && \
		meson setup $(BENCH_BUILD)-rev/build $(BENCH_BUILD)-rev/src \
			-Dbuildtype=release -Dtests=false && \
		ninja -C $(BENCH_BUILD)-rev/build; \
	else \
		if [ ! -f $(BENCH_BUILD)/build.ninja ]; then \
			meson setup $(BENCH_BUILD) -Dbuildtype=release -Dtests=false; \
		fi; \
		ninja -C $(BENCH_BUILD); \
	fi
	GATEHOUSE_BIN=$(abspath $(if $(BENCH_REV),$(BENCH_BUILD)-rev/build,$(BENCH_BUILD)))/gatehouse \
		BENCH_REV="$(BENCH_REV)" bench/run.sh

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) build-fuzz
