#!/usr/bin/env bash
# make check-valgrind: integration suites with every poled they start run
# under valgrind's memcheck (tests/integration/polehelp.py,
# POLE_POLED_WRAPPER). A suite fails if a test fails or if valgrind reports,
# for any of its poled processes, an invalid read or write, a use of
# uninitialised memory, a bad free, or a definite or indirect leak (or if
# poled exits 99, valgrind's error status here). polectl is not run under
# valgrind; neither are the few poled runs a test starts itself with
# subprocess (command-line errors in test_restart and test_auth).
#
#   bash tests/integration/run_valgrind.sh BUILD_DIR [SUITE...]
#
# BUILD_DIR holds poled and polectl, built with -O1 -g and without
# sanitizers (the Makefile's check-valgrind builds build-vg/ that way).
# Each suite's output goes to BUILD_DIR/valgrind/SUITE.out and a copy of
# each valgrind log to BUILD_DIR/valgrind/logs/. Suites run one after the
# other (valgrind runs a process's threads on one core; the machine is
# shared). POLE_SLOW_FACTOR (default 20) multiplies poled's readiness and
# stop timeouts in polehelp.
#
# By default every suite (test_*.py) runs, test_crash and test_faults too:
# * test_crash (20 rounds of kill -9 under load) holds at valgrind's speed
#   (seen: 21 kills, 1,182 acknowledged requests in 93 s). Its poled runs
#   end by SIGKILL but the last, so valgrind writes no leak summary for
#   them: they are checked for memory errors only (invalid reads and
#   writes during recovery, ...), the last one for leaks as well.
# * test_faults (disk full, a database locked for 2 s and 7 s, a stalled
#   subscriber, a hanging webhook, a client that never reads) holds too
#   (seen: 86 s); its bounds are generous enough for valgrind's 20-50x.
# On a machine much more loaded than 2 cores shared by a few jobs, those
# two are the first whose timings could give way: name the suites to run
# (VALGRIND_SUITES in the Makefile) to leave them out.
#
# Tests left out under valgrind (SKIP below; VALGRIND_SKIP adds more ids):
# * test_auth.AuthTest.test_plain_client_refused: it wants polectl without
#   keys, against the CURVE endpoint, to say "requires CURVE" (exit 7)
#   within 20 s. libzmq reports the mechanism mismatch to the client only
#   if the server's greeting reaches it before the server drops the
#   connection; otherwise the client sees HANDSHAKE_FAILED_NO_DETAIL,
#   reconnects and tries again. At full speed one of the reconnects wins
#   that race within the 20 s (seen: 2 of 6 first connections do); with
#   poled under valgrind none does (0 of 6), and the test fails about one
#   run in two with exit 5 ("no answer"). That test still runs in
#   `make test` (also on the ASan build); the rest of test_auth runs here.
set -uo pipefail

#  BUILD_DIR as given, from where we were called (make passes build-vg),
#  before moving to the suites' directory
BUILD_DIR=$(cd "${1:?usage: run_valgrind.sh BUILD_DIR [SUITE...]}" && pwd) \
  || { echo "check-valgrind: no build directory $1" >&2; exit 1; }
shift
cd "$(dirname "$0")"
SUITES=("$@")
if [ ${#SUITES[@]} -eq 0 ]; then
  for f in test_*.py; do SUITES+=("${f%.py}"); done
fi
if ! command -v valgrind >/dev/null; then
  echo "check-valgrind: valgrind is needed (apt-get install valgrind)" >&2
  exit 1
fi
for b in poled polectl; do
  if [ ! -x "$BUILD_DIR/$b" ]; then
    echo "check-valgrind: $BUILD_DIR/$b not built" >&2
    exit 1
  fi
done

OUT=$BUILD_DIR/valgrind
rm -rf "$OUT"
mkdir -p "$OUT/logs"
export POLE_BUILD_DIR=$BUILD_DIR
export POLE_SOURCE_DIR=$(cd ../.. && pwd)
export POLE_VALGRIND_LOG_DIR=$OUT/logs
export POLE_POLED_WRAPPER=${POLE_POLED_WRAPPER:-valgrind --leak-check=full \
--errors-for-leak-kinds=definite,indirect --error-exitcode=99 \
--num-callers=40 --track-origins=yes}
PYTHON=/usr/bin/python3
SKIP="test_auth.AuthTest.test_plain_client_refused ${VALGRIND_SKIP:-}"

# python3 -m unittest -v SUITE, less the tests named in $SKIP
run_suite() {
  SKIP=$SKIP $PYTHON - "$1" <<'PY'
import os, sys, unittest
skip = set(os.environ["SKIP"].split())
def tests(suite):
    for t in suite:
        if isinstance(t, unittest.TestSuite):
            yield from tests(t)
        else:
            yield t
loaded = unittest.defaultTestLoader.loadTestsFromName(sys.argv[1])
suite = unittest.TestSuite()
for t in tests(loaded):
    if t.id() in skip:
        print("skipped under valgrind: %s (tests/integration/run_valgrind.sh)"
              % t.id(), file=sys.stderr)
    else:
        suite.addTest(t)
result = unittest.TextTestRunner(verbosity=2).run(suite)
sys.exit(0 if result.wasSuccessful() else 1)
PY
}

echo "check-valgrind: poled under: $POLE_POLED_WRAPPER"
status=0
failed=()
total_start=$SECONDS
for suite in "${SUITES[@]}"; do
  start=$SECONDS
  before=$(ls "$OUT/logs" | wc -l)
  POLE_VALGRIND_TEST=$suite run_suite "$suite" >"$OUT/$suite.out" 2>&1
  rc=$?
  runs=$(( $(ls "$OUT/logs" | wc -l) - before ))
  tests=$(grep -m1 -oE '^Ran [0-9]+ tests?' "$OUT/$suite.out" | grep -oE '[0-9]+' || echo '?')
  if [ $rc -eq 0 ]; then
    verdict=ok
  else
    verdict=FAILED
    status=1
    failed+=("$suite")
  fi
  printf 'check-valgrind: %-15s %-6s %3s tests, %3d poled runs checked, %4ds\n' \
    "$suite" "$verdict" "$tests" "$runs" $((SECONDS - start))
done

# What valgrind said, over every poled run (also those of failed suites)
logs=("$OUT"/logs/*.log)
if [ -e "${logs[0]}" ]; then
  sum() { grep -hoE "$1: [0-9,]+ bytes" "${logs[@]}" | grep -oE '[0-9,]+' \
            | tr -d , | awk '{s += $1} END {print s + 0}'; }
  errors=$(grep -hoE 'ERROR SUMMARY: [0-9,]+' "${logs[@]}" | grep -oE '[0-9,]+$' \
             | tr -d , | awk '{s += $1} END {print s + 0}')
  echo "check-valgrind: ${#logs[@]} poled runs under valgrind:" \
    "$errors errors, definitely lost $(sum 'definitely lost') bytes," \
    "indirectly lost $(sum 'indirectly lost') bytes," \
    "possibly lost $(sum 'possibly lost') bytes;" \
    "$(grep -L 'ERROR SUMMARY' "${logs[@]}" | wc -l) without a summary (SIGKILL)"
  echo "check-valgrind: exit statuses of those runs (count status):" \
    $(printf '%s\n' "${logs[@]##*-exit}" | sort | uniq -c | sed 's/\.log$//' \
      | awk '{printf "%s×%s ", $1, $2}')
fi
echo "check-valgrind: $(( ${#SUITES[@]} - ${#failed[@]} )) of ${#SUITES[@]} suites passed in $((SECONDS - total_start))s; outputs in $OUT"
if [ $status -ne 0 ]; then
  for suite in "${failed[@]}"; do
    echo "---- $suite (tail of $OUT/$suite.out)" >&2
    tail -n 60 "$OUT/$suite.out" >&2
  done
fi
exit $status
