# pole - the two commands: `make demo` and `make test`.
# Both install the Debian packages they need first (scripts/install-deps.sh).

BUILD ?= build
JOBS  ?= 2

.PHONY: all deps build test sanitize package demo run docs clean format bench

all: build

deps:
	@bash scripts/install-deps.sh

build: deps
	@cmake -S . -B $(BUILD) -DPOLE_WERROR=ON >/dev/null
	@cmake --build $(BUILD) -j$(JOBS)

# The whole suite, then the whole suite again on an AddressSanitizer and
# UndefinedBehaviorSanitizer build (the integration tests then drive the
# sanitized poled: a leak or an error makes it exit non-zero, and fail).
test: build sanitize
	@cd $(BUILD) && ctest --output-on-failure -j$(JOBS)
	@cd $(BUILD)-asan && ASAN_OPTIONS=detect_leaks=1 \
	    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	    ctest --output-on-failure -j$(JOBS)

sanitize: deps
	@cmake -S . -B $(BUILD)-asan -DPOLE_WERROR=ON -DCMAKE_BUILD_TYPE=Debug \
	    -DPOLE_PACKAGE_TESTS=OFF \
	    -DCMAKE_C_FLAGS="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" \
	    -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=address,undefined" >/dev/null
	@cmake --build $(BUILD)-asan -j$(JOBS)

# The Debian package, $(BUILD)/pole_VERSION_ARCH.deb (cmake/Package.cmake):
# poled, polectl, the systemd unit, the manual pages. Install it with
# `dpkg -i` (or `apt install ./$(BUILD)/pole_*.deb`); systemd/README.md.
package: build
	@cd $(BUILD) && cpack -G DEB

demo: build
	@bash scripts/demo.sh $(BUILD)

run: build
	@mkdir -p $(BUILD)/run
	$(BUILD)/poled -c config/poled.cfg -d $(BUILD)/run/pole.db \
	    -l ipc://$(abspath $(BUILD))/run/poled.sock

# Benchmarks: figures printed, nothing asserted (tests/bench/).
bench: build
	@bash tests/bench/bench_timers.sh $(BUILD)
	@bash tests/bench/bench_report.sh $(BUILD)
	@bash tests/bench/bench_throughput.sh $(BUILD)

# Regenerate the documentation that is produced from the workflow table.
docs: build
	@$(BUILD)/polectl graph --markdown > docs/WORKFLOW.md
	@$(BUILD)/polectl graph > docs/workflow.dot

format:
	@clang-format -i $$(git ls-files '*.c' '*.h')

# Every build directory the targets here create: build, sanitize (-asan),
# check-long's fuzzers (-fuzz) and check-valgrind (-vg).
clean:
	rm -rf $(BUILD) $(BUILD)-asan $(BUILD)-fuzz $(BUILD)-vg

# Long checks, not part of `make test`: each libFuzzer target (tests/fuzz/)
# for FUZZ_SECONDS on its corpus, built with clang into $(BUILD)-fuzz/.
# Fails if a crash is found; its reproducer is in $(BUILD)-fuzz/crashes/.
FUZZ_SECONDS ?= 600
.PHONY: check-long
check-long: deps
	@FUZZ_SECONDS=$(FUZZ_SECONDS) JOBS=$(JOBS) bash tests/fuzz/check_long.sh $(BUILD)-fuzz

# Long checks, the SIGKILL crash test (tests/integration/test_crash.py): 20
# rounds of kill -9 under load per run (POLE_CRASH_ROUNDS), CRASH_RUNS runs
# on $(BUILD), each with new random kill moments (its POLE_CRASH_SEED is
# printed, to replay a failure).
CRASH_RUNS ?= 3
CRASH_ROUNDS ?= 20
.PHONY: check-long-crash
check-long: check-long-crash
check-long-crash: build
	@cd tests/integration && for i in $$(seq 1 $(CRASH_RUNS)); do \
	    echo "check-long: crash test, run $$i of $(CRASH_RUNS)"; \
	    POLE_BUILD_DIR=$(abspath $(BUILD)) POLE_SOURCE_DIR=$(CURDIR) \
	        POLE_CRASH_ROUNDS=$(CRASH_ROUNDS) \
	        /usr/bin/python3 -m unittest -v test_crash || exit 1; \
	done

# Long checks, valgrind (memcheck) on the integration tests: poled and
# polectl built with -O1 -g, no sanitizer, into $(BUILD)-vg/, then every
# integration suite (or those named in VALGRIND_SUITES, e.g.
# VALGRIND_SUITES="test_lifecycle test_protocol") with each poled they start
# under valgrind (tests/integration/run_valgrind.sh says what is left out
# and why). Fails if a test fails or valgrind reports an error or a definite
# or indirect leak in poled. Outputs and valgrind logs in
# $(BUILD)-vg/valgrind/. About 10 minutes on 2 cores.
VALGRIND_SUITES ?=
.PHONY: check-valgrind
check-long: check-valgrind
check-valgrind: deps
	@cmake -S . -B $(BUILD)-vg -DPOLE_WERROR=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	    -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O1 -g -fno-omit-frame-pointer" \
	    -DPOLE_PACKAGE_TESTS=OFF >/dev/null
	@cmake --build $(BUILD)-vg -j$(JOBS) --target poled polectl
	@bash tests/integration/run_valgrind.sh $(BUILD)-vg $(VALGRIND_SUITES)
