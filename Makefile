# pole - the two commands: `make demo` and `make test`.
# Both install the Debian packages they need first (scripts/install-deps.sh).

BUILD ?= build
JOBS  ?= 2

.PHONY: all deps build test demo run docs clean format bench

all: build

deps:
	@bash scripts/install-deps.sh

build: deps
	@cmake -S . -B $(BUILD) -DPOLE_WERROR=ON >/dev/null
	@cmake --build $(BUILD) -j$(JOBS)

test: build
	@cd $(BUILD) && ctest --output-on-failure -j$(JOBS)

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
	rm -rf $(BUILD)
