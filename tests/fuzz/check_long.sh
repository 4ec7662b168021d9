#!/usr/bin/env bash
# make check-long: build the libFuzzer targets with clang (ASan + UBSan +
# coverage) into BUILD_DIR (default build-fuzz) and run each one for
# FUZZ_SECONDS (default 600), both at once, on its seed corpus. Fails if
# either finds a crash, a leak, a timeout or a failed check; the reproducer
# is then in BUILD_DIR/crashes/TARGET/ (see tests/fuzz/README.md).
#
#   FUZZ_SECONDS=60 bash tests/fuzz/check_long.sh [BUILD_DIR]
#   FUZZ_TARGETS=codec ...      only some targets
#   FUZZ_ARGS="-jobs=4" ...     more libFuzzer options
set -euo pipefail

cd "$(dirname "$0")/../.."
SRC=$PWD
BUILD_DIR=${1:-build-fuzz}
FUZZ_SECONDS=${FUZZ_SECONDS:-600}
FUZZ_TARGETS=${FUZZ_TARGETS:-codec handler}
FUZZ_ARGS=${FUZZ_ARGS:-}

CC_FUZZ=${CC_FUZZ:-$(command -v clang || command -v clang-14 || true)}
if [ -z "$CC_FUZZ" ]; then
  echo "check-long: clang is needed (apt-get install clang libclang-rt-14-dev)" >&2
  exit 1
fi
if ! "$CC_FUZZ" -print-file-name=libclang_rt.fuzzer-x86_64.a 2>/dev/null | grep -q /; then
  echo "check-long: libFuzzer not found (apt-get install libclang-rt-14-dev)" >&2
  exit 1
fi

cmake -S "$SRC" -B "$BUILD_DIR" -DCMAKE_C_COMPILER="$CC_FUZZ" \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPOLE_FUZZ=ON -DPOLE_WERROR=OFF >/dev/null
targets=()
for t in $FUZZ_TARGETS; do targets+=("fuzz_$t"); done
cmake --build "$BUILD_DIR" -j"${JOBS:-2}" --target "${targets[@]}"

# The store of fuzz_handler: on tmpfs, removed at the end
TMP=$(mktemp -d "$( [ -w /dev/shm ] && echo /dev/shm || echo "${TMPDIR:-/tmp}")/pole-check-long-XXXXXX")
trap 'rm -rf "$TMP"' EXIT
export POLE_FUZZ_TMPDIR=$TMP POLE_SOURCE_DIR=$SRC
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

pids=()
for t in $FUZZ_TARGETS; do
  mkdir -p "$BUILD_DIR/corpus/$t" "$BUILD_DIR/crashes/$t"
  log="$BUILD_DIR/fuzz_$t.log"
  echo "check-long: fuzz_$t for ${FUZZ_SECONDS}s (log $log)"
  # New inputs go to the first directory (in the build tree); the seeds in
  # tests/fuzz/corpus are read only
  "$BUILD_DIR/tests/fuzz/fuzz_$t" -max_len=65536 -timeout=60 \
    -max_total_time="$FUZZ_SECONDS" -print_final_stats=1 \
    -artifact_prefix="$BUILD_DIR/crashes/$t/" $FUZZ_ARGS \
    "$BUILD_DIR/corpus/$t" "tests/fuzz/corpus/$t" >"$log" 2>&1 &
  pids+=($!)
done

status=0
i=0
for t in $FUZZ_TARGETS; do
  if wait "${pids[$i]}"; then
    echo "check-long: fuzz_$t: no crash ($(grep -m1 -o 'stat::number_of_executed_units: *[0-9]*' "$BUILD_DIR/fuzz_$t.log" | grep -o '[0-9]*$' || echo '?') runs)"
  else
    status=1
    echo "check-long: fuzz_$t FAILED; reproducer(s):" >&2
    ls -1 "$BUILD_DIR/crashes/$t/" >&2 || true
    grep -E 'ERROR|SUMMARY|check failed|malformed|fuzz_(codec|handler):' "$BUILD_DIR/fuzz_$t.log" | head -20 >&2 || true
  fi
  i=$((i + 1))
done
exit $status
