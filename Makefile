# pole - the two commands: `make demo` and `make test`.
# Both install the Debian packages they need first (scripts/install-deps.sh).

BUILD ?= build
JOBS  ?= 2

.PHONY: all deps build test sanitize demo run docs clean format bench

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
	    -DCMAKE_C_FLAGS="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" \
	    -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=address,undefined" >/dev/null
	@cmake --build $(BUILD)-asan -j$(JOBS)

demo: build
	@bash scripts/demo.sh $(BUILD)

run: build
	@mkdir -p $(BUILD)/run
	$(BUILD)/poled -c config/poled.cfg -d $(BUILD)/run/pole.db

# Benchmarks: figures printed, nothing asserted (tests/bench/).
bench: build
	@bash tests/bench/bench_timers.sh $(BUILD)
	@bash tests/bench/bench_report.sh $(BUILD)

# Regenerate the documentation that is produced from the workflow table.
docs: build
	@$(BUILD)/polectl graph --markdown > docs/WORKFLOW.md
	@$(BUILD)/polectl graph > docs/workflow.dot

format:
	@clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD) $(BUILD)-asan
