# Thin wrapper over CMake (Ninja) and the presets in CMakePresets.json, so
# that the README's commands stay short. Every target prints the cmake and
# ctest commands it runs; they can be used directly.
#
#   build/          preset default: RelWithDebInfo  (make build, test, demo)
#   build-release/  preset release: Release         (make bench)
#   build-asan/     preset asan:    ASan + UBSan    (make test-asan)
#   build-tsan/     preset tsan:    TSan            (make test-tsan)
#
# The default target is `help`.

SHELL := /bin/bash
.DEFAULT_GOAL := help
.DELETE_ON_ERROR:

CMAKE ?= cmake
CTEST ?= ctest
JOBS  ?= 2

# Debian 12 packages needed to build and test. (libc6-dev is listed because
# gcc only recommends it, and --no-install-recommends skips recommends.)
DEPS := cmake ninja-build pkg-config gcc libc6-dev libevent-dev \
        libcmocka-dev libisal-dev libsqlite3-dev libgraphviz-dev sqlite3 \
        libpcap-dev tshark

TSAN_SUPP := $(CURDIR)/tests/tsan.supp

# Sanitizer settings, also used by .ci/run; the caller's values win.
export ASAN_OPTIONS  ?= detect_leaks=1
export UBSAN_OPTIONS ?= print_stacktrace=1:halt_on_error=1
ifneq ($(wildcard $(TSAN_SUPP)),)
export TSAN_OPTIONS ?= suppressions=$(TSAN_SUPP)
endif

.PHONY: help deps build demo test test-asan test-tsan bench interop clean

help:
	@echo 'msgrsim - make targets (default: help)'
	@echo ''
	@echo '  make demo       install deps, build, run a catalogue scenario with faults'
	@echo '                  on the simulator; prints the verdict and writes its trace'
	@echo '  make test       install deps, build, run all tests (ctest in build/)'
	@echo ''
	@echo '  make deps       install missing Debian packages (as root), or say which'
	@echo '  make build      configure and build everything in build/ (RelWithDebInfo)'
	@echo '  make test-asan  build in build-asan/ with ASan+UBSan and run all tests'
	@echo '  make test-tsan  build in build-tsan/ with TSan and run the tests labelled posix'
	@echo '  make interop    run the tests labelled interop (a real ceph-mon on loopback)'
	@echo '  make bench      Release build in build-release/, run every bench/bench_*,'
	@echo '                  print the table, JSON lines in build/bench/results.jsonl'
	@echo '  make clean      remove build/ build-dev/ build-release/ build-asan/ build-tsan/'
	@echo ''
	@echo 'Variables: JOBS=$(JOBS) (parallel build and test jobs)'

# Checks with dpkg-query; installs what is missing when root, else explains.
deps:
	@if ! command -v dpkg-query >/dev/null 2>&1; then \
	    echo "deps: not a Debian system; make sure these (or equivalents) are installed: $(DEPS)"; \
	    exit 0; \
	fi; \
	missing=""; \
	for p in $(DEPS); do \
	    dpkg-query -W -f='$${Status}\n' "$$p" 2>/dev/null | grep -q '^install ok installed$$' \
	        || missing="$$missing $$p"; \
	done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" -ne 0 ]; then \
	    echo "deps: missing Debian packages:$$missing" >&2; \
	    echo "deps: install them with:" >&2; \
	    echo "  sudo apt-get update && sudo apt-get install -y --no-install-recommends$$missing" >&2; \
	    exit 1; \
	fi; \
	echo "deps: installing:$$missing"; \
	export DEBIAN_FRONTEND=noninteractive; \
	apt-get update && apt-get install -y --no-install-recommends $$missing

# configure a preset's build dir when it has never been configured (or the
# presets changed); afterwards Ninja re-runs cmake by itself when needed.
# (cmake leaves an unchanged build.ninja alone, hence the touch.)
build/build.ninja: CMakePresets.json | deps
	$(CMAKE) --preset default
	@touch $@
build-%/build.ninja: CMakePresets.json | deps
	$(CMAKE) --preset $*
	@touch $@

build: build/build.ninja
	$(CMAKE) --build --preset default -j $(JOBS)

# The main job: the language page's example (lossless peers through a reset
# storm, a partition, a kill, a restart and a rebind) on the simulator,
# traced; then the trace's path and how to look into it.
DEMO_SCN ?= scenarios/catalog/basics/complete-example.scn
demo: build
	@mkdir -p build/demo && rm -f build/demo/trace.db
	./build/tools/msgrsim run $(DEMO_SCN) --trace build/demo/trace.db
	./build/tools/msgrsim report build/demo/trace.db -o build/demo/report
	@echo "open in a browser: file://$(CURDIR)/build/demo/report/index.html"
	@echo
	@echo "look into the trace (sqlite; docs/TRACE.md):"
	@echo "  timeline:  ./build/tools/msgrsim replay build/demo/trace.db --events --conn osd.0-osd.2 | less"
	@echo "  verify:    ./build/tools/msgrsim replay build/demo/trace.db"
	@echo "  query:     sqlite3 build/demo/trace.db 'select * from v_reconnects'"

test: build
	$(CTEST) --preset default -j $(JOBS)

test-asan: build-asan/build.ninja
	$(CMAKE) --build --preset asan -j $(JOBS)
	$(CTEST) --preset asan -j $(JOBS)

test-tsan: build-tsan/build.ninja
	$(CMAKE) --build --preset tsan -j $(JOBS)
	$(CTEST) --preset tsan -j $(JOBS)

interop: build
	$(CTEST) --preset default -L interop

bench: build-release/build.ninja
	$(CMAKE) --build --preset release -j $(JOBS) --target benchmarks
	MSGR_BENCH_DIR=$(CURDIR)/build-release/bench \
	MSGR_BENCH_OUT=$(CURDIR)/build/bench/results.jsonl \
	    bash bench/run_bench.sh

clean:
	rm -rf build build-dev build-release build-asan build-tsan
