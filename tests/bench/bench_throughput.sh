#!/usr/bin/env bash
# Throughput and latency of acknowledged events: poled through the real
# protocol, beside the two limits it cannot beat on this machine.
#
#   1. disk: write 4 KiB + fdatasync, 1000 times, in the directory of the
#      databases (bench_fsync), p50 / p99
#   2. limit (a), storage: the SQLite work of one `note` event, done by
#      daemon/store.c itself (bench_sqlite opens a pole_store_t: same schema,
#      pragmas, statements with the hash chain, a savepoint each, the same
#      WAL checkpointing), transactions of 16, no network. Diagnostic
#      variants beside it: with the checkpoint back inside the COMMIT
#      (wal_autocheckpoint = 1000, as before), with synchronous = OFF (the
#      CPU part alone), and one event per transaction (the floor of the
#      latency run), both ways
#   3. limit (b), transport: a bare ROUTER that echoes each message back,
#      same frames, same client counts (bench_load echo-server / echo)
#   4. poled: CLIENTS DEALER clients (1 4 16 64), each on a dossier it opened
#      first, sending EVENT note text=... and its next one only when the
#      previous is acknowledged (poled acknowledges after the COMMIT), for
#      SECS seconds after a 0.5 s warm-up (bench_load pole); then 16 clients
#      with 8 events in flight each; then 16 clients whose every event moves
#      its dossier (decline_study and reopen in turn, bench_load -m cycle:
#      the report's tally triggers write too). The verdict at 16 clients is the median
#      of ROUNDS interleaved rounds of (SQLite alone, echo, poled): this may
#      run on a machine that others share
#   5. latency: 1,000 events/s in all from 16 clients, paced (open loop),
#      LAT_SECS seconds: p50, p99, p99.9 from the send of each event to its
#      acknowledgement (and the p99 from its scheduled time, which would show
#      a generator that fell behind)
#
# poled runs on a temporary database with config/poled.cfg, but for
# live_dossiers_per_pays (raised so that 64 clients may each open a dossier
# in one of 7 Pays), with `-p ""` (no live stream) and no coordinator (so no
# outbox row). It is restarted for each measurement, on the same database,
# so that its log gives the mean batch (requests per COMMIT).
# Endpoints: ipc:// in the temporary directory, or TRANSPORT=tcp for
# tcp://127.0.0.1. A benchmark: it prints figures and the targets, it
# asserts nothing.
#
# usage: tests/bench/bench_throughput.sh [BUILD_DIR]
#   SECS (3), ROUNDS (3: of the 16-client verdict), LAT_SECS (10), CLIENTS ("1 4 16 64"), TEXT (100 bytes of note),
#   TRANSPORT (ipc), BENCH_DIR (/tmp: the databases and the fdatasync file)
set -euo pipefail
BUILD=${1:-build}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
case "$BUILD" in /*) BIN=$BUILD ;; *) BIN=$ROOT/$BUILD ;; esac
SECS=${SECS:-3}
ROUNDS=${ROUNDS:-3}
LAT_SECS=${LAT_SECS:-10}
CLIENTS=${CLIENTS:-"1 4 16 64"}
TEXT=${TEXT:-100}
TRANSPORT=${TRANSPORT:-ipc}
BENCH_DIR=${BENCH_DIR:-/tmp}
TMP=$(mktemp -d "$BENCH_DIR/pole-bench-tput.XXXXXX")
PID=
cleanup() {
    if [ -n "$PID" ]; then kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; fi
    rm -rf "$TMP"
}
trap cleanup EXIT
die() { echo "bench_throughput: $*" >&2; exit 1; }

# The three programs (tests/bench/CMakeLists.txt), and poled, brought up to
# date: a program left from an older tree would measure that tree (it did
# once: a limit built before its change to the request ids)
B=$BIN/tests/bench
cmake --build "$BIN" --target poled polectl bench_load bench_sqlite bench_fsync >/dev/null \
    || die "cannot build poled and the benchmark programs in $BIN"

if [ "$TRANSPORT" = tcp ]; then
    PORT=${PORT:-$((20000 + RANDOM % 20000))}
    EP="tcp://127.0.0.1:$PORT"
    ECHO_EP="tcp://127.0.0.1:$((PORT + 1))"
else
    EP="ipc://$TMP/poled.sock"
    ECHO_EP="ipc://$TMP/echo.sock"
fi

sed -e 's/^\( *live_dossiers_per_pays\) = [0-9]*;/\1 = 1000000;/' \
    "$ROOT/config/poled.cfg" >"$TMP/bench.cfg"
grep -q 'live_dossiers_per_pays = 1000000;' "$TMP/bench.cfg" \
    || die "cannot set live_dossiers_per_pays"

kv() {  # kv KEY LINE: the value of KEY=... in a bench_* output line
    local k=$1; shift
    tr ' ' '\n' <<<"$*" | sed -n "s/^$k=//p" | head -1
}

start_poled() {  # start_poled DB LOG
    "$BIN/poled" -c "$TMP/bench.cfg" -e "$EP" -l "" -p "" -d "$1" >"$2" 2>&1 &
    PID=$!
    for _ in $(seq 100); do
        "$BIN/polectl" -e "$EP" -t 0.2 -r 0 ping >/dev/null 2>&1 && return 0
        kill -0 "$PID" 2>/dev/null || break
        sleep 0.1
    done
    cat "$2" >&2
    die "poled does not start"
}
stop_poled() {  # stop_poled LOG: sets MEAN_BATCH from poled's summary
    kill -TERM "$PID"
    wait "$PID" || { tail "$1" >&2; die "poled exited $?"; }
    PID=
    MEAN_BATCH=$(sed -n 's/.*stopping after \([0-9]*\) requests in \([0-9]*\) batches.*/\1 \2/p' "$1" \
        | awk '{ if ($2 > 0) printf "%.1f", $1 / $2; else printf "-" }')
}

# What else the machine was doing: load average and pressure (avg10 of
# "some" for CPU and I/O), before and after; other work skews every figure
noise() {
    printf 'load %s, cpu %s%%, io %s%%' "$(cut -d' ' -f1-3 /proc/loadavg)" \
        "$(sed -n 's/^some avg10=\([0-9.]*\).*/\1/p' /proc/pressure/cpu 2>/dev/null || echo '?')" \
        "$(sed -n 's/^some avg10=\([0-9.]*\).*/\1/p' /proc/pressure/io 2>/dev/null || echo '?')"
}
LOAD0=$(noise)
FS=$(df -T "$TMP" | awk 'NR == 2 { print $2 " on " $1 }')

# 1. the disk
FSYNC=$("$B/bench_fsync" "$TMP" 1000)
FS_OVER=$(grep '^way=overwrite' <<<"$FSYNC")
FS_APP=$(grep '^way=append' <<<"$FSYNC")

# 2. the schema from poled itself, then limit (a)
start_poled "$TMP/schema.db" "$TMP/schema.log"
stop_poled "$TMP/schema.log"
sqlite_run() {  # sqlite_run [ENV=...]: bench_sqlite on a fresh copy
    rm -f "$TMP/limit.db"*
    cp "$TMP/schema.db" "$TMP/limit.db"
    env "$@" "$B/bench_sqlite" "$TMP/limit.db" "$SECS" 16 16 "$TEXT"
}
AUTO="PRAGMA wal_autocheckpoint = 1000"   # SQLite's checkpoint, inside COMMIT
SQL=$(sqlite_run)
SQL_AUTO=$(sqlite_run BENCH_SQLITE_PRAGMAS="$AUTO")
SQL_OFF=$(sqlite_run BENCH_SQLITE_SYNC=OFF)
# the storage floor of the latency run: one event per transaction
sqlite_one() {  # sqlite_one [ENV=...]: bench_sqlite, one event per transaction
    rm -f "$TMP/limit.db"*
    cp "$TMP/schema.db" "$TMP/limit.db"
    env "$@" "$B/bench_sqlite" "$TMP/limit.db" "$SECS" 1 16 "$TEXT"
}
SQL_1=$(sqlite_one)
SQL_1_AUTO=$(sqlite_one BENCH_SQLITE_PRAGMAS="$AUTO")

# 3. limit (b): the echo
"$B/bench_load" echo-server -e "$ECHO_EP" 2>"$TMP/echo.log" &
PID=$!
sleep 0.3
declare -A ECHO POLE BATCH
for n in $CLIENTS; do
    ECHO[$n]=$("$B/bench_load" echo -e "$ECHO_EP" -c "$n" -d "$SECS" -s "$TEXT" -P "$PID")
done
ECHO_W8=$("$B/bench_load" echo -e "$ECHO_EP" -c 16 -w 8 -d "$SECS" -s "$TEXT" -P "$PID")
kill -TERM "$PID"; wait "$PID" || true; PID=

# 4. poled
cp "$TMP/schema.db" "$TMP/pole.db"
for n in $CLIENTS; do
    start_poled "$TMP/pole.db" "$TMP/pole-$n.log"
    POLE[$n]=$("$B/bench_load" pole -e "$EP" -c "$n" -d "$SECS" -s "$TEXT" -P "$PID") \
        || die "bench_load failed with $n clients"
    stop_poled "$TMP/pole-$n.log"
    BATCH[$n]=$MEAN_BATCH
done
start_poled "$TMP/pole.db" "$TMP/pole-w8.log"
POLE_W8=$("$B/bench_load" pole -e "$EP" -c 16 -w 8 -d "$SECS" -s "$TEXT" -P "$PID") \
    || die "bench_load failed with 16 clients, 8 in flight each"
stop_poled "$TMP/pole-w8.log"
BATCH_W8=$MEAN_BATCH
# state-changing events: decline_study and reopen in turn on each client's
# dossier (bench_load -m cycle); each moves a dossier, so the report's tally
# triggers (schema 7) write with it, which a note does not
start_poled "$TMP/pole.db" "$TMP/pole-cycle.log"
POLE_CYCLE=$("$B/bench_load" pole -e "$EP" -c 16 -m cycle -d "$SECS" -s "$TEXT" -P "$PID") \
    || die "bench_load -m cycle failed"
stop_poled "$TMP/pole-cycle.log"
BATCH_CYCLE=$MEAN_BATCH

# 4b. the verdict at 16 clients, on a shared machine: ROUNDS rounds of
# (SQLite alone, echo, poled), interleaved so that a burst of other work
# hits the three alike; the first round is the figures above; medians
V_SQL=("$(kv per_s "$SQL")"); V_ECHO=(); V_POLE=()
if [[ " $CLIENTS " == *" 16 "* ]]; then
    V_ECHO=("$(kv per_s "${ECHO[16]}")"); V_POLE=("$(kv per_s "${POLE[16]}")")
    for _ in $(seq 2 "$ROUNDS"); do
        V_SQL+=("$(kv per_s "$(sqlite_run)")")
        "$B/bench_load" echo-server -e "$ECHO_EP" 2>>"$TMP/echo.log" &
        PID=$!
        sleep 0.3
        V_ECHO+=("$(kv per_s "$("$B/bench_load" echo -e "$ECHO_EP" -c 16 -d "$SECS" -s "$TEXT")")")
        kill -TERM "$PID"; wait "$PID" || true; PID=
        start_poled "$TMP/pole.db" "$TMP/pole-v.log"
        V_POLE+=("$(kv per_s "$("$B/bench_load" pole -e "$EP" -c 16 -d "$SECS" -s "$TEXT")")")
        stop_poled "$TMP/pole-v.log"
    done
fi
median() { printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

# 5. latency, paced
start_poled "$TMP/pole.db" "$TMP/pole-lat.log"
LAT=$("$B/bench_load" pole -e "$EP" -c 16 -w 64 -r 1000 -u 1 -d "$LAT_SECS" -s "$TEXT" -P "$PID")
stop_poled "$TMP/pole-lat.log"
BATCH_LAT=$MEAN_BATCH
EVENTS=$(/usr/bin/python3 -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute("SELECT count(*) FROM events").fetchone()[0])' "$TMP/pole.db" 2>/dev/null || echo "?")
LOAD1=$(noise)

# The table
echo "bench_throughput: poled, EVENT note (text $TEXT bytes) over $TRANSPORT, $SECS s per figure, $(nproc) cores, $(date -u +%Y-%m-%d)"
echo "  before: $LOAD0; after: $LOAD1"
echo "  databases on $FS ($TMP)"
printf '  disk, 4 KiB write + fdatasync x1000: overwrite p50 %s us, p99 %s us (max %s);\n' \
    "$(kv p50_us "$FS_OVER")" "$(kv p99_us "$FS_OVER")" "$(kv max_us "$FS_OVER")"
printf '    appending p50 %s us, p99 %s us (max %s)\n' \
    "$(kv p50_us "$FS_APP")" "$(kv p99_us "$FS_APP")" "$(kv max_us "$FS_APP")"
echo
echo "  acknowledged events/s, each client waiting for its ack (window 1):"
printf '  %8s %9s %8s %8s %6s %6s %8s %9s %9s %8s\n' clients poled "ack p50" "ack p99" batch \
    "poled" "gen CPU" "echo" "echo p99" "echo CPU"
for n in $CLIENTS; do
    p=${POLE[$n]}; e=${ECHO[$n]}
    printf '  %8s %9s %5s us %5s us %6s %5s%% %7s%% %9s %6s us %7s%%\n' "$n" "$(kv per_s "$p")" \
        "$(kv p50_us "$p")" "$(kv p99_us "$p")" "${BATCH[$n]}" "$(kv srv_cpu_pct "$p")" \
        "$(kv gen_cpu_pct "$p")" "$(kv per_s "$e")" "$(kv p99_us "$e")" "$(kv srv_cpu_pct "$e")"
done
printf '  %8s %9s %5s us %5s us %6s %5s%% %7s%% %9s %6s us %7s%%\n' "16 x 8" "$(kv per_s "$POLE_W8")" \
    "$(kv p50_us "$POLE_W8")" "$(kv p99_us "$POLE_W8")" "$BATCH_W8" "$(kv srv_cpu_pct "$POLE_W8")" \
    "$(kv gen_cpu_pct "$POLE_W8")" "$(kv per_s "$ECHO_W8")" "$(kv p99_us "$ECHO_W8")" "$(kv srv_cpu_pct "$ECHO_W8")"
printf '  %8s %9s %5s us %5s us %6s %5s%% %7s%% %9s %6s    %7s \n' "16 moves" "$(kv per_s "$POLE_CYCLE")" \
    "$(kv p50_us "$POLE_CYCLE")" "$(kv p99_us "$POLE_CYCLE")" "$BATCH_CYCLE" "$(kv srv_cpu_pct "$POLE_CYCLE")" \
    "$(kv gen_cpu_pct "$POLE_CYCLE")" "-" "-" "-"
echo "  (ack: from send to acknowledgement; batch: requests per COMMIT from poled's own count,"
echo "   OPENs included; CPU: % of one core over the measured seconds, all threads of poled, of"
echo "   the generator, of the echo server; 16 x 8: 16 clients, 8 events in flight each;"
echo "   16 moves: 16 clients, window 1, each event changes its dossier's state (decline_study"
echo "   and reopen in turn), so the report's tally triggers write with it; the other rows send"
echo "   notes, which move nothing;"
echo "   errors: $(for n in $CLIENTS; do printf '%s ' "$(kv errors "${POLE[$n]}")"; done)" \
    "$(kv errors "$POLE_W8") $(kv errors "$POLE_CYCLE"))"
echo
printf '  SQLite alone, transactions of 16, no network: %s events/s (COMMIT p50 %s us, p99 %s us;\n' \
    "$(kv per_s "$SQL")" "$(kv commit_p50_us "$SQL")" "$(kv commit_p99_us "$SQL")"
printf '    %s us of statements per event outside the COMMIT, of which %s us of checkpoint bound;\n' \
    "$(kv work_us_per_event "$SQL")" "$(kv checkpoint_us_per_event "$SQL")"
printf '    largest WAL %s KiB)\n' "$(kv wal_max_kib "$SQL")"
printf '    diagnosis, not limits: with the checkpoint inside the COMMIT (as before) %s events/s\n' \
    "$(kv per_s "$SQL_AUTO")"
printf '    (COMMIT p50 %s us, p99 %s us); synchronous = OFF %s events/s (%s us per event);\n' \
    "$(kv commit_p50_us "$SQL_AUTO")" "$(kv commit_p99_us "$SQL_AUTO")" \
    "$(kv per_s "$SQL_OFF")" "$(kv work_us_per_event "$SQL_OFF")"
printf '    one event per transaction: COMMIT p50 %s us, p99 %s us, max %s us;\n' \
    "$(kv commit_p50_us "$SQL_1")" "$(kv commit_p99_us "$SQL_1")" "$(kv commit_max_us "$SQL_1")"
printf '    the same with the checkpoint inside the COMMIT: p50 %s us, p99 %s us, max %s us\n' \
    "$(kv commit_p50_us "$SQL_1_AUTO")" "$(kv commit_p99_us "$SQL_1_AUTO")" "$(kv commit_max_us "$SQL_1_AUTO")"
echo
if [[ " $CLIENTS " == *" 16 "* ]]; then
    ours=$(median "${V_POLE[@]}"); sq=$(median "${V_SQL[@]}"); ec=$(median "${V_ECHO[@]}")
    echo "  at 16 clients, median of $ROUNDS interleaved rounds (poled ${V_POLE[*]};"
    echo "    SQLite ${V_SQL[*]}; echo ${V_ECHO[*]}):"
    #  The 20,000/s: 16 clients with one event in flight each cannot pass
    #  the storage limit (transactions of at most 16); the same 16 clients
    #  keeping 8 in flight each (row "16 x 8") can. Both are printed, each
    #  with its own verdict.
    awk -v ours="$ours" -v sq="$sq" -v ec="$ec" -v w8="$(kv per_s "$POLE_W8")" \
        -v w8err="$(kv errors "$POLE_W8")" 'BEGIN {
        low = sq < ec ? sq : ec
        printf "                            events/s  ratio to the lower limit\n"
        printf "    poled                   %8d  %.2f\n", ours, ours / low
        printf "    limit (a) SQLite alone  %8d  %.2f%s\n", sq, sq / low, (sq == low ? "  (the lower)" : "")
        printf "    limit (b) ZeroMQ echo   %8d  %.2f%s\n", ec, ec / low, (ec == low ? "  (the lower)" : "")
        half = low / 2
        printf "    target: >= %d (half the lower limit): %s; >= 20000: %s with one event in flight per client,\n", half,
            (ours >= half ? "met" : "NOT met"), (ours >= 20000 ? "met" : "NOT met")
        printf "      %s with 8 in flight per client (16 x 8, one run: %d events/s, %d errors)\n",
            (w8 >= 20000 && w8err == 0 ? "met" : "NOT met"), w8, w8err
    }'
fi
printf '  latency, 1000 events/s paced from 16 clients, %s s: p50 %s us, p99 %s us, p99.9 %s us, max %s us\n' \
    "$LAT_SECS" "$(kv p50_us "$LAT")" "$(kv p99_us "$LAT")" "$(kv p999_us "$LAT")" "$(kv max_us "$LAT")"
printf '    (%s acknowledged, %s errors, batch %s, poled CPU %s%%; p99 from the scheduled time %s us,\n' \
    "$(kv acked "$LAT")" "$(kv errors "$LAT")" "$BATCH_LAT" "$(kv srv_cpu_pct "$LAT")" "$(kv due_p99_us "$LAT")"
printf '    generator late by at most %s us);' "$(kv late_max_us "$LAT")"
awk -v p99="$(kv p99_us "$LAT")" 'BEGIN { printf " target p99 <= 2000 us: %s\n", (p99 <= 2000 ? "met" : "NOT met") }'
echo "  (the database holds $EVENTS events at the end)"
