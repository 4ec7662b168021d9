#!/usr/bin/env bash
# Idle cost of the calendar: poled with 10,000 armed timers, doing nothing
# for a while, must cost next to no CPU: one zloop timer for the next due
# date, no scan of the database every second (docs/CALENDAR.md).
# Prints the CPU time poled used while idle, beside the same figure with no
# timer at all. A benchmark: it prints figures, it asserts nothing.
set -euo pipefail
BUILD=${1:-build}
IDLE_S=${IDLE_S:-10}
TIMERS=${TIMERS:-10000}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
case "$BUILD" in /*) BIN=$BUILD ;; *) BIN=$ROOT/$BUILD ;; esac
TMP=$(mktemp -d /tmp/pole-bench.XXXXXX)
trap 'kill "$PID" 2>/dev/null || true; rm -rf "$TMP"' EXIT
PY=/usr/bin/python3

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

measure() {  # measure DB: start poled on DB, let it idle, print CPU ms used
    "$BIN/poled" -c "$ROOT/config/poled.cfg" -e "ipc://$TMP/s" -l "" -p "" -d "$1" \
        >"$TMP/log" 2>&1 &
    PID=$!
    until "$BIN/polectl" -e "ipc://$TMP/s" -t 0.5 -r 0 ping >/dev/null 2>&1; do
        sleep 0.1
    done
    local before after hz
    hz=$(getconf CLK_TCK)
    before=$(cpu_ticks "$PID")
    sleep "$IDLE_S"
    after=$(cpu_ticks "$PID")
    kill -TERM "$PID"
    wait "$PID" || true
    echo $(( (after - before) * 1000 / hz ))
}

# An empty database, and one with TIMERS armed timers due in the future
"$BIN/poled" -c "$ROOT/config/poled.cfg" -e "ipc://$TMP/s" -l "" -p "" -d "$TMP/empty.db" \
    >"$TMP/log" 2>&1 &
PID=$!
until "$BIN/polectl" -e "ipc://$TMP/s" -t 0.5 -r 0 ping >/dev/null 2>&1; do sleep 0.1; done
kill -TERM "$PID"; wait "$PID" || true
cp "$TMP/empty.db" "$TMP/timers.db"
"$PY" - "$TMP/timers.db" "$TIMERS" <<'PYEOF'
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1])
now = int(time.time() * 1000)
day = 86400000
rows = [(i, "year_end", 1, now + (i % 365 + 1) * day, now + (i % 365 + 1) * day)
        for i in range(1, int(sys.argv[2]) + 1)]
db.executemany("INSERT INTO timers (dossier, kind, year, due_at, deadline_at, state,"
               " created_at, updated_at) VALUES (?, ?, ?, ?, ?, 'armed',"
               " '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z')", rows)
db.commit()
PYEOF

empty_ms=$(measure "$TMP/empty.db")
timers_ms=$(measure "$TMP/timers.db")
echo "bench_timers: poled idle for ${IDLE_S} s on $(nproc) cores, $(date -u +%Y-%m-%d)"
printf '  %-28s %6s ms CPU\n' "no timer:" "$empty_ms" "$TIMERS armed timers:" "$timers_ms"
echo "  (the calendar arms one zloop timer for the next due date only;"
echo "   the request loop also ticks every 250 ms to notice signals, and every"
echo "   100 ms looks at the WAL's size for the checkpoint's bound)"
