#!/usr/bin/env bash
# The reads at scale (docs/REPORT.md: "every figure is computed by SQLite from
# the store, never by loading the dossiers into memory"): poled on a database
# of 100,000 dossiers and 1,000,000 events.
#
# The database is not built through the protocol (far too slow): poled is
# started once on an empty file to create the schema, stopped, and the tables
# `dossiers` and `events` (nothing else) are filled directly with python3's
# sqlite3, one transaction, with a plausible and consistent log: each dossier
# opens (pays, holder, holder_type), walks the lifecycle with from/to states
# (study asked and granted, delivered, validated, pole created, posts asked
# and granted, co-funding, annual reports, the next years opened by the
# calendar; or declined, withdrawn, rejected, closed), with notes on the way,
# at times spread over 2009-2012; its `dossiers` row is the fold of its log.
# The log carries its hash chain (schema 6, daemon/store.h): each row's hash
# is computed by the INSERT itself, as daemon/store.c computes it, with the
# SQL function pole_sha256 registered in python's sqlite3 (hashlib) and the
# same canonical text (json_array over the row's columns, made by SQLite);
# the chain head (table `chain`) is written in the same transaction. poled
# verifies the chain in the background at each start: the script waits for
# that verification, prints its outcome and time, and only then times the
# queries (so that they do not share the disk and the cores with it).
# The file is cached in /tmp, keyed by the schema version (and the size and
# generator version), so that a second run skips the fill.
#
# Then poled runs on a copy and the script measures the start-up time (until
# `polectl ping` answers), the wall time of show, list --pays, history,
# report and report --as-of (median of 5 runs each, polectl included), and
# poled's VmRSS after the queries. A benchmark: it prints figures and the
# targets, it asserts nothing.
#
# usage: tests/bench/bench_report.sh [BUILD_DIR]
#   DOSSIERS (100000), EVENTS (1000000), RUNS (5), BENCH_CACHE_DIR (/tmp)
set -euo pipefail
BUILD=${1:-build}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
case "$BUILD" in /*) BIN=$BUILD ;; *) BIN=$ROOT/$BUILD ;; esac
DOSSIERS=${DOSSIERS:-100000}
EVENTS=${EVENTS:-1000000}
RUNS=${RUNS:-5}
CACHE_DIR=${BENCH_CACHE_DIR:-/tmp}
GENERATOR=3              # bump when the generated data changes (2: hash chain; 3: dossiers moved event by event, for schema 7's tallies)
PY=/usr/bin/python3
TMP=$(mktemp -d /tmp/pole-bench-report.XXXXXX)
PID=
cleanup() {
    if [ -n "$PID" ]; then kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; fi
    rm -rf "$TMP"
}
trap cleanup EXIT

# The shipped configuration, with room for every dossier of a Pays to be
# live at once (the generated data holds thousands of live dossiers per Pays)
sed -e 's/^\( *live_dossiers_per_pays\) = [0-9]*;/\1 = 1000000;/' \
    "$ROOT/config/poled.cfg" >"$TMP/bench.cfg"
grep -q 'live_dossiers_per_pays = 1000000;' "$TMP/bench.cfg" \
    || { echo "bench_report: cannot set live_dossiers_per_pays" >&2; exit 1; }
EP="ipc://$TMP/s"
CTL=("$BIN/polectl" -e "$EP" -t 30 -r 0)

start_poled() {  # start_poled DB: start poled on DB in the background
    "$BIN/poled" -c "$TMP/bench.cfg" -e "$EP" -l "" -p "" -d "$1" >>"$TMP/log" 2>&1 &
    PID=$!
}
stop_poled() {
    kill -TERM "$PID"
    wait "$PID" || { echo "bench_report: poled exited $?; log:" >&2; tail "$TMP/log" >&2; exit 1; }
    PID=
}

# 1. the schema, from poled itself
start_poled "$TMP/empty.db"
for _ in $(seq 150); do
    "$BIN/polectl" -e "$EP" -t 0.2 -r 0 ping >/dev/null 2>&1 && break
    sleep 0.1
done
"$BIN/polectl" -e "$EP" -t 1 -r 0 ping >/dev/null || { echo "bench_report: poled does not start" >&2; cat "$TMP/log" >&2; exit 1; }
stop_poled
SCHEMA=$("$PY" -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute("PRAGMA user_version").fetchone()[0])' "$TMP/empty.db")
CACHE="$CACHE_DIR/pole-bench-report-schema$SCHEMA-g$GENERATOR-${DOSSIERS}x${EVENTS}.db"

# 2. the fill (or the cached file)
if [ -s "$CACHE" ]; then
    echo "bench_report: cached database $CACHE"
else
    echo "bench_report: filling $DOSSIERS dossiers, $EVENTS events (cached in $CACHE)"
    cp "$TMP/empty.db" "$TMP/fill.db"
    "$PY" - "$TMP/fill.db" "$DOSSIERS" "$EVENTS" <<'PYEOF'
import calendar, hashlib, json, random, sqlite3, sys, time

path, N, E = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
t_start = time.perf_counter()
rng = random.Random(20101031)
DAY = 86400
T0 = calendar.timegm((2009, 1, 1, 0, 0, 0))
T_END = calendar.timegm((2012, 12, 31, 23, 59, 59))

PAYS = [("Brest", 29), ("Morlaix", 29), ("Cornouaille", 29),
        ("Centre-Ouest Bretagne", 29), ("Dinan", 22), ("Guingamp", 22),
        ("Saint-Brieuc", 22), ("Trégor-Goëlo", 22), ("Centre Bretagne", 22),
        ("Rennes", 35), ("Brocéliande", 35), ("Fougères", 35),
        ("Saint-Malo", 35), ("Vallons de Vilaine", 35),
        ("Vitré-Porte de Bretagne", 35), ("Redon et Vilaine", 35),
        ("Auray", 56), ("Lorient", 56), ("Ploërmel-Cœur de Bretagne", 56),
        ("Pontivy", 56), ("Vannes", 56)]
CG = {22: "Conseil général des Côtes-d'Armor",
      29: "Conseil général du Finistère",
      35: "Conseil général d'Ille-et-Vilaine",
      56: "Conseil général du Morbihan"}
OTHER_FUNDERS = ["Fondation Crédit Coopératif", "Caisse des Dépôts",
                 "France Active"]
TERMINAL = {"study_declined", "not_validated", "withdrawn", "closed"}

# What each dossier ends as, per 100 dossiers, and the steps that take it
# there (after `open`). Every dossier also gets notes so that the log has
# exactly E events (E / N per dossier on average).
FUNDED = ["legitimate_holder", "request_study", "grant_study"]
FY1 = FUNDED + ["deliver_study", "validate", "create_pole", "request_posts",
                "grant_posts", "add_cofunding"]
FY2 = FY1 + ["file_annual_report", "start_next_year"]
FY3 = FY2 + ["file_annual_report", "start_next_year"]
OPERATING = FY3 + ["file_annual_report", "start_next_year"]
MIX = [  # (count per 100, steps)
    (3, []),                                        # draft
    (4, ["request_study"]),                         # study_requested
    (10, FUNDED),                                   # study_funded
    (3, FUNDED + ["deliver_study"]),                # study_delivered
    (2, FUNDED + ["deliver_study", "validate"]),    # validated
    (3, FY1[:6]),                                   # pole_created
    (3, FY1[:7]),                                   # posts_requested
    (15, FY1), (12, FY2), (10, FY3), (10, OPERATING),
    (5, ["request_study", "decline_study"]),        # study_declined
    (10, ["request_study", "grant_study", "withdraw"]),
    (4, ["request_study", "grant_study", "deliver_study", "reject"]),
    (6, FY2 + ["close"]),                           # closed
]
assert sum(c for c, s in MIX) == 100
TEMPLATES = [steps for c, steps in MIX for _ in range(c)]
BASE = sum(1 + len(s) for s in TEMPLATES)            # events per 100, no note
NOTES = E * 100 // N - BASE                          # notes per 100 dossiers
assert N % 100 == 0 and E * 100 % N == 0 and NOTES >= 0, (BASE, NOTES)

GAP = {  # days after the previous step
    "legitimate_holder": (3, 30), "request_study": (1, 30),
    "grant_study": (15, 60), "decline_study": (15, 60),
    "deliver_study": (120, 300), "validate": (7, 45), "reject": (7, 45),
    "create_pole": (7, 45), "request_posts": (3, 30),
    "grant_posts": (10, 45), "add_cofunding": (10, 120),
    "withdraw": (10, 200), "close": (30, 200),
}


def walk(steps, d, pays, dep):
    """One dossier: its events [(t, event, fields, actor, from, to, rid)]
    relative to t=0, and its row (the fold of the log)."""
    holder_type = rng.choice(("ess_actor", "ess_actor", "collectivite",
                              "pays"))
    holder = {"ess_actor": "Collectif ESS %s n°%d",
              "collectivite": "Communauté de communes %s n°%d",
              "pays": "Conseil de développement %s n°%d"}[holder_type] % (
                  pays, d)
    title = ("Pôle ESS du Pays de %s" % pays) if rng.random() < 0.5 else None
    row = dict(pays=pays, holder=holder, holder_type=holder_type,
               title=title, state="draft", prev_state=None, study_asked=None,
               study_granted=None, posts_asked=None, posts_granted=None,
               funding_year=None, reports_filed=0, mode=None,
               pole_name=None, host=None, cofunding_eur=0)
    fields = {"pays": pays, "holder": holder, "holder_type": holder_type}
    if title:
        fields["title"] = title
    evs = [[0, "open", fields, "holder", None, "draft"]]
    t = rng.randrange(8 * 3600, 18 * 3600)          # office hours
    state, year, year_start = "draft", 0, None
    for step in steps:
        f, actor, to = {}, "holder", state
        if step == "start_next_year":
            t = year_start + 365 * DAY                  # contiguous years
            year_start = t
        else:
            lo, hi = GAP[step] if step != "file_annual_report" else (0, 0)
            if step == "file_annual_report":
                t = year_start + rng.randrange(300, 360) * DAY
            else:
                t += rng.randrange(lo, hi + 1) * DAY
            t += rng.randrange(-3600, 3600)
        if step == "legitimate_holder":
            f, actor = {"advisor": "CRES Bretagne"}, "cres"
        elif step == "request_study":
            row["study_asked"] = a = rng.randrange(8000, 25001, 500)
            f, to = {"amount": str(a)}, "study_requested"
        elif step == "grant_study":
            g = max(5000, row["study_asked"] - rng.choice((0, 0, 0, 2000)))
            row["study_granted"] = g
            f, actor, to = {"amount": str(g)}, "region", "study_funded"
        elif step == "decline_study":
            f, actor, to = ({"reason": "outside the programme"}, "region",
                            "study_declined")
        elif step == "deliver_study":
            f, to = ({"diagnosis": "diagnostic territorial du Pays de "
                      + pays, "priority_actions": "emploi,mobilité,circuits"
                      " courts", "governance": "collégiale"},
                     "study_delivered")
        elif step == "validate":
            f, actor, to = ({"stakeholders": "Scop %d,Association %d,Mutuelle"
                             % (d, d), "stakeholder_types":
                             "cooperative,association,mutuelle"}, "cres",
                            "validated")
        elif step == "reject":
            f, actor, to = ({"reason": "the core group did not validate"},
                            "cres", "not_validated")
        elif step == "create_pole":
            mode = rng.choice(("ex_nihilo", "adossement"))
            row["mode"], row["pole_name"] = mode, "Pôle ESS %s %d" % (pays, d)
            f = {"mode": mode, "name": row["pole_name"]}
            if mode == "adossement":
                row["host"] = f["host"] = "Maison de l'ESS de %s" % pays
            to = "pole_created"
        elif step == "request_posts":
            row["posts_asked"] = p = rng.choice((1, 2))
            f, to = {"posts": str(p)}, "posts_requested"
        elif step == "grant_posts":
            row["posts_granted"] = p = rng.randint(1, row["posts_asked"])
            f, actor, to = {"posts": str(p)}, "region", "funding_year_1"
            row["funding_year"], year, year_start = 1, 1, t
        elif step == "add_cofunding":
            amount = rng.randrange(5000, 40001, 1000)
            row["cofunding_eur"] += amount
            funder = rng.choice((CG[dep], CG[dep], "Pays de " + pays,
                                 rng.choice(OTHER_FUNDERS)))
            # its year: that of the event, known once the dossier is dated
            f, actor = ({"funder": funder, "amount": str(amount),
                         "year": None}, "region")
        elif step == "file_annual_report":
            row["reports_filed"] |= 1 << (year - 1)
            f = {"year": str(year)}
        elif step == "start_next_year":
            actor = "calendar"
            if year < 3:
                year += 1
                row["funding_year"] = year
                to = "funding_year_%d" % year
            else:
                to = "operating"
        elif step == "withdraw":
            f, to = {"reason": "the holder gave up"}, "withdrawn"
        elif step == "close":
            f, actor, to = {"reason": "the pole stopped"}, "region", "closed"
        if to in TERMINAL and state not in TERMINAL:
            row["prev_state"] = state
        evs.append([t, step, f, actor, state, to])
        state = to
    row["state"] = state
    return evs, row


# every dossier, by template; then ids in the order they were opened
t0 = time.perf_counter()
plans = []
for cycle in range(N // 100):
    order = list(range(100))
    rng.shuffle(order)
    for i in order:
        pays, dep = rng.choice(PAYS)
        while True:
            evs, row = walk(TEMPLATES[i], cycle * 100 + i, pays, dep)
            span = evs[-1][0] + 61 * DAY           # room for 2 last notes
            if span < T_END - T0:
                break
        # notes: one for each dossier, and the rest for the first ones
        notes = NOTES // 100 + (1 if i < NOTES % 100 else 0)
        for _ in range(notes):
            k = rng.randrange(1, len(evs) + 1)            # after the open
            lo = evs[k - 1][0]
            hi = evs[k][0] if k < len(evs) else lo + 30 * DAY
            if hi - lo < 2:
                hi = lo + 2
            tn = rng.randrange(lo + 1, hi)
            st = evs[k - 1][5]
            evs.insert(k, [tn, "note", {"text": "point d'étape %d" % k},
                           "cres", st, st])
        opened = T0 + rng.randrange(0, T_END - T0 - span)
        plans.append((opened, evs, row))
plans.sort(key=lambda p: p[0])

iso = lambda t: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))
dossier_rows, log = [], []
for did, (opened, evs, row) in enumerate(plans, 1):
    for k, (t, ev, f, actor, frm, to) in enumerate(evs):
        if ev == "add_cofunding":
            f["year"] = str(time.gmtime(opened + t).tm_year)
        log.append((opened + t, did, k, ev, f, actor, frm, to))
    last = opened + evs[-1][0]
    dossier_rows.append((did, row["pays"], row["holder"], row["holder_type"],
                         row["title"], row["state"], row["prev_state"],
                         len(evs), row["study_asked"], row["study_granted"],
                         row["posts_asked"], row["posts_granted"],
                         row["funding_year"], row["reports_filed"],
                         row["mode"], row["pole_name"], row["host"],
                         row["cofunding_eur"], iso(opened), iso(last)))
del plans
log.sort(key=lambda e: (e[0], e[1], e[2]))           # commit order
assert len(log) == E, len(log)
dumps = json.dumps


def event_rows():
    for seq, (t, did, k, ev, f, actor, frm, to) in enumerate(log, 1):
        yield (seq, did, ev, dumps(f, ensure_ascii=False,
                                   separators=(",", ":")),
               actor, iso(t), frm, to,
               None if actor == "calendar" else "bench-%d-%d" % (did, k))


t1 = time.perf_counter()
db = sqlite3.connect(path, isolation_level=None)
db.execute("PRAGMA synchronous = OFF")          # this fill only
db.execute("PRAGMA cache_size = -262144")


def sha256_hex(text):
    """pole_sha256 (daemon/store.c): the lowercase hex SHA-256 of the UTF-8
    text, NULL for NULL."""
    if text is None:
        return None
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


db.create_function("pole_sha256", 1, sha256_hex, deterministic=True)
db.execute("BEGIN")
# The dossiers are inserted as they were opened (draft, no posts), then
# moved event by event, as poled's UPDATE moves them: the triggers of
# schema 7 keep the report's tallies and their history by day
# (tally_pays_day) from these moves. Their final rows are written last.
# in the log's order: a move before an open that came later
by_id = {r[0]: r for r in dossier_rows}
OPEN = ("INSERT INTO dossiers (id, pays, holder, holder_type, title, state,"
        " prev_state, version, study_asked, study_granted, posts_asked,"
        " posts_granted, funding_year, reports_filed, mode, pole_name, host,"
        " cofunding_eur, opened_at, updated_at) VALUES (?1,?2,?3,?4,?5,"
        "'draft',NULL,1,NULL,NULL,NULL,NULL,NULL,0,NULL,NULL,NULL,0,?19,?19)")
MOVE = ("UPDATE dossiers SET state = ?2, posts_granted = ifnull (?3,"
        " posts_granted), updated_at = ?4 WHERE id = ?1")
for (t, did, k, ev, f, actor, frm, to) in log:
    if ev == "open":
        db.execute(OPEN, by_id[did][:19])
    elif frm != to or ev == "grant_posts":
        db.execute(MOVE, (did, to, f.get("posts") if ev == "grant_posts"
                          else None, iso(t)))
del by_id
db.executemany("UPDATE dossiers SET pays = ?2, holder = ?3, holder_type = ?4,"
               " title = ?5, state = ?6, prev_state = ?7, version = ?8,"
               " study_asked = ?9, study_granted = ?10, posts_asked = ?11,"
               " posts_granted = ?12, funding_year = ?13, reports_filed = ?14,"
               " mode = ?15, pole_name = ?16, host = ?17, cofunding_eur = ?18,"
               " opened_at = ?19, updated_at = ?20 WHERE id = ?1",
               dossier_rows)
# Each row chained to the one before, by the INSERT itself as in
# daemon/store.c (ST_EVENT_APPEND): the values cast to the columns' types,
# then hash = pole_sha256 (previous hash or '' || json_array (the columns
# but the hash, in the order of POLE_STORE_EVENT_CANONICAL))
VALUES = ("CAST (?1 AS INTEGER), CAST (?2 AS INTEGER), CAST (?3 AS TEXT),"
          " CAST (?4 AS TEXT), CAST (?5 AS TEXT), CAST (?6 AS TEXT),"
          " CAST (?7 AS TEXT), CAST (?8 AS TEXT), CAST (?9 AS TEXT)")
db.executemany("INSERT INTO events (seq, dossier, event, fields, actor, at,"
               " from_state, to_state, request_id, hash) VALUES (" + VALUES +
               ", pole_sha256 (ifnull ((SELECT hash FROM events ORDER BY seq"
               " DESC LIMIT 1), '') || json_array (" + VALUES + ")))",
               event_rows())
# the chain head, in the same transaction (ST_CHAIN_UPDATE)
db.execute("INSERT OR REPLACE INTO chain (id, seq, hash) SELECT 1, seq,"
           " ifnull (hash, '') FROM events ORDER BY seq DESC LIMIT 1")
db.execute("COMMIT")
t2 = time.perf_counter()
# consistency: each dossier's row is in the state of its last event
bad = db.execute("SELECT count(*) FROM dossiers d JOIN (SELECT dossier,"
                 " to_state, max(seq) FROM events GROUP BY dossier) l"
                 " ON l.dossier = d.id WHERE l.to_state != d.state").fetchone()
# the report's tallies (schema 7), kept by the triggers as the rows went in,
# agree with the dossiers
bad_tally = db.execute("SELECT count(*) FROM (SELECT pays, state, dossiers,"
                       " posts FROM tally_pays WHERE dossiers != 0 EXCEPT"
                       " SELECT pays, state, count(*), sum (ifnull"
                       " (posts_granted, 0)) FROM dossiers GROUP BY pays,"
                       " state)").fetchone()[0]
tally_diff = list(db.execute(
    "SELECT 'tally', * FROM tally_pays WHERE dossiers != 0 EXCEPT SELECT"
    " 'tally', pays, state, count(*), sum (ifnull (posts_granted, 0)) FROM"
    " dossiers GROUP BY pays, state")) + list(db.execute(
    "SELECT 'dossiers', pays, state, count(*), sum (ifnull (posts_granted,"
    " 0)) FROM dossiers GROUP BY pays, state EXCEPT SELECT 'dossiers', *"
    " FROM tally_pays"))
bad_tally = len(tally_diff)       # both directions, the first counted above
tally_diff += list(db.execute(
    "SELECT 'day', p.*, (SELECT dossiers || '@' || day FROM tally_pays_day h"
    " WHERE h.pays = p.pays AND h.state = p.state ORDER BY day DESC LIMIT 1)"
    " FROM tally_pays p WHERE dossiers IS NOT (SELECT dossiers FROM"
    " tally_pays_day h WHERE h.pays = p.pays AND h.state = p.state ORDER BY"
    " day DESC LIMIT 1)"))
# and the last day of each one's history is where it stands now
bad_tally += db.execute("SELECT count(*) FROM tally_pays p WHERE dossiers IS"
                        " NOT (SELECT dossiers FROM tally_pays_day h WHERE"
                        " h.pays = p.pays AND h.state = p.state ORDER BY day"
                        " DESC LIMIT 1)").fetchone()[0]
counts = db.execute("SELECT (SELECT count(*) FROM dossiers),"
                    " (SELECT count(*) FROM events),"
                    " (SELECT min(at) FROM events),"
                    " (SELECT max(at) FROM events),"
                    " (SELECT count(*) FROM events WHERE hash IS NULL),"
                    " (SELECT seq FROM chain WHERE id = 1)").fetchone()
db.close()
print("  generated in %.1f s, inserted in %.1f s: %d dossiers, %d events, "
      "%s .. %s, %d dossier(s) not matching their last event, %d event(s)"
      " without hash, chain head at seq %s"
      % (t1 - t0, t2 - t1, counts[0], counts[1], counts[2], counts[3],
         bad[0], counts[4], counts[5]))
if bad_tally:
    for r in tally_diff:
        print("   ", r)
    sys.exit("bench_report: %d (Pays, state) tallies do not match the"
             " dossiers" % bad_tally)
if bad[0] or counts[4] or counts[5] != E:
    sys.exit("bench_report: the generated database is not consistent")
PYEOF
    rm -f "$CACHE-wal" "$CACHE-shm"       # of an older file, if any
    mv "$TMP/fill.db" "$CACHE.part"
    mv "$CACHE.part" "$CACHE"
fi

# 3. poled on a copy of it (poled writes to the file it opens)
cp "$CACHE" "$TMP/bench.db"
DB_MB=$(( $(stat -c %s "$TMP/bench.db") / 1048576 ))

"$PY" - "$BIN" "$TMP" "$EP" "$RUNS" "$DB_MB" "$DOSSIERS" "$EVENTS" <<'PYEOF'
import os, signal, sqlite3, statistics, subprocess, sys, time

BIN, TMP, EP, RUNS, DB_MB, N, E = sys.argv[1:8]
RUNS = int(RUNS)
DB = os.path.join(TMP, "bench.db")
CTL = [os.path.join(BIN, "polectl"), "-e", EP, "-t", "60", "-r", "0"]

# a dossier with a long history (operating, 16+ events), for show/history
db = sqlite3.connect(DB)
long_id = db.execute("SELECT id FROM dossiers WHERE state = 'operating'"
                     " ORDER BY version DESC, id LIMIT 1").fetchone()[0]
rennes = db.execute("SELECT count(*) FROM dossiers WHERE pays = 'Rennes'"
                    ).fetchone()[0]
db.close()

log = open(os.path.join(TMP, "log"), "ab")
log_start = log.tell()          # this poled's lines start here
t0 = time.perf_counter()
proc = subprocess.Popen([os.path.join(BIN, "poled"), "-c",
                         os.path.join(TMP, "bench.cfg"), "-e", EP, "-l", "",
                         "-p", "", "-d", DB], stdin=subprocess.DEVNULL, stdout=log,
                        stderr=log)
startup = None
while time.perf_counter() - t0 < 120:
    if proc.poll() is not None:
        sys.exit("bench_report: poled exited %s at start-up" % proc.returncode)
    r = subprocess.run(CTL[:3] + ["-t", "0.1", "-r", "0", "ping"],
                       stdin=subprocess.DEVNULL, capture_output=True)
    if r.returncode == 0:
        startup = time.perf_counter() - t0
        break
if startup is None:
    proc.kill()
    sys.exit("bench_report: poled did not answer within 120 s")

def vm():
    """poled's (VmRSS, VmHWM) in MiB."""
    with open("/proc/%d/status" % proc.pid) as f:
        status = dict(l.split(":", 1) for l in f if ":" in l)
    return tuple(int(status[k].split()[0]) / 1024 for k in ("VmRSS", "VmHWM"))


rss_started = vm()[0]


def chain_verified(timeout=600):
    """Wait for the verification of the hash chain that poled runs in the
    background at start; its log line: (outcome, ms or None)."""
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        log.flush()
        with open(os.path.join(TMP, "log"), "rb") as f:
            f.seek(log_start)
            text = f.read().decode("utf-8", "replace")
        for line in text.splitlines():
            if "audit: the event log's hash chain verifies" in line:
                ms = line.rsplit("(", 1)[-1].split()[0]
                return "intact", int(ms) if ms.isdigit() else None
            if "audit: THE EVENT LOG WAS CHANGED" in line \
                    or "audit: the event log could not be verified" in line:
                return line.split("audit: ", 1)[1][:160], None
        if proc.poll() is not None:
            sys.exit("bench_report: poled exited %s" % proc.returncode)
        time.sleep(0.05)
    return "no outcome within %d s" % timeout, None


t_verify = time.perf_counter()
chain, chain_ms = chain_verified()
verify_wall = time.perf_counter() - t_verify + startup
rss_verified = vm()[0]


def timed(args):
    times, size = [], 0
    for _ in range(RUNS):
        t = time.perf_counter()
        r = subprocess.run(CTL + args, stdin=subprocess.DEVNULL,
                           capture_output=True)
        times.append(time.perf_counter() - t)
        if r.returncode != 0:
            return None, "polectl %s exited %d: %s" % (
                " ".join(args), r.returncode, r.stderr.decode()[:200])
        size = len(r.stdout)
    return statistics.median(times), size


def timed_raw(frames):
    """The same request over the raw protocol, from one REQ socket kept
    open: poled's own time (the round trip over ipc) without polectl's
    start and its decoding of the JSON. Median over RUNS."""
    import uuid
    import zmq
    ctx = zmq.Context.instance()
    s = ctx.socket(zmq.REQ)
    s.setsockopt(zmq.LINGER, 0)
    s.connect(EP)
    times, size = [], 0
    try:
        for _ in range(RUNS):
            rid = uuid.uuid4().hex.encode()
            t = time.perf_counter()
            s.send_multipart([b"POLE/1", frames[0], rid] + frames[1:])
            if not s.poll(60000):
                return None, "no reply"
            reply = s.recv_multipart()
            times.append(time.perf_counter() - t)
            if reply[2] != b"OK":
                return None, repr(reply)[:200]
            size = len(reply[-1])
    finally:
        s.close(0)
    return statistics.median(times), size


rows = []
# (label, polectl's arguments, the same request's frames after the id)
queries = [
    ("show %d" % long_id, ["show", str(long_id)],
     [b"SHOW", str(long_id).encode()]),
    ("list --pays Rennes --json", ["list", "--pays", "Rennes", "--json"],
     [b"LIST", b"pays=Rennes"]),
    ("history %d --json" % long_id, ["history", str(long_id), "--json"],
     [b"HISTORY", str(long_id).encode()]),
    ("report --json", ["report", "--json"], [b"REPORT"]),
    ("report --as-of 2010-10-31 --json",
     ["report", "--as-of", "2010-10-31", "--json"],
     [b"REPORT", b"as_of=2010-10-31"]),
]
results = []
for name, args, frames in queries:
    results.append((name,) + timed(args) + timed_raw(frames))
    if name.startswith("history"):
        rss_reads = vm()[0]               # before any report

rss, hwm = vm()

proc.send_signal(signal.SIGTERM)
try:
    rc = proc.wait(60)
except subprocess.TimeoutExpired:
    proc.kill()
    rc = "killed"

ok = lambda met: "yes" if met else "NO"
print("bench_report: poled on %s dossiers, %s events (database %s MiB), "
      "%s cores, median of %d runs, %s"
      % (N, E, DB_MB, os.cpu_count(), RUNS,
         time.strftime("%Y-%m-%d", time.gmtime())))
print("  %-36s %12s %10s  %s" % ("figure", "measured", "target", "met"))
print("  %-36s %10.0f ms %10s  %s" % ("start-up (until ping answers)",
                                      startup * 1000, "< 1000 ms",
                                      ok(startup < 1.0)))
print("  queries: polectl (its start, the request, its decoding of the reply)"
      "; in brackets, poled alone")
for name, median, size, raw, raw_size in results:
    if median is None:
        print("  %-36s %13s %10s  %s" % (name, "failed", "< 50 ms", size))
        continue
    alone = ("%.1f ms" % (raw * 1000)) if raw is not None else raw_size
    print("  %-36s %10.1f ms %10s  %s   (poled alone %s, met: %s; %d bytes)"
          % (name, median * 1000, "< 50 ms", ok(median < 0.050), alone,
             ok(raw is not None and raw < 0.050), size))
print("  %-36s %9.1f MiB" % ("poled VmRSS after start-up", rss_started))
print("  %-36s %12s   (%s ms in the worker; done %.1f s after the start;"
      " queries timed after it)"
      % ("hash chain verified at start", chain,
         chain_ms if chain_ms is not None else "?", verify_wall))
print("  %-36s %9.1f MiB" % ("poled VmRSS after the verification",
                             rss_verified))
print("  %-36s %9.1f MiB" % ("poled VmRSS after show/list/history",
                             rss_reads))
print("  %-36s %9.1f MiB %10s  %s   (peak VmHWM %.1f MiB)"
      % ("poled VmRSS after the queries", rss, "< 32 MiB", ok(rss < 32), hwm))
print("  (list --pays Rennes returns %d dossiers; poled exited %s on SIGTERM)"
      % (rennes, rc))
PYEOF
