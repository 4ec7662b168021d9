/*  =========================================================================
    pole_store - the durable record of the programme

    What this file holds, and why it is shaped so:

    * `events` is the append-only log: one row per accepted event, with the
      fields as decided (JSON), the actor, the time, the state left and the
      state reached, and the request id that carried it. Triggers refuse
      UPDATE and DELETE on it: a mistake is corrected by a later event.
    * `dossiers` is the log folded by the engine. It is written in the same
      transaction as the event so that a reader never sees one without the
      other, and pole_store_rebuild_check() proves it equals a fresh fold.
    * `requests` keeps, per client-chosen request id, a digest of the
      request and the reply it got, so that a retry gets the first outcome
      byte for byte and is never applied twice.
    * The log is tamper-evident: each row's `hash` chains it to the row
      before (store.h, POLE_STORE_EVENT_CANONICAL), computed by the INSERT
      itself from the table as the transaction sees it, so that a request
      rolled back to its savepoint takes its link of the chain with it.
      `chain` keeps the head (last seq and hash), written at commit, so
      that rows cut from the end of the log are seen as well.

    Durability: WAL mode with synchronous=FULL, so that a commit has reached
    the disk (fsync of the WAL) before poled acknowledges anything; a power
    loss cannot take back an acknowledged event. Reads use the same
    connection: poled is single-threaded, there is one writer.

    Every statement is prepared once, when the store opens.
    =========================================================================
*/

#include "store.h"

#include "pole/proto.h"

#include <pthread.h>
#include <sodium.h>
#include <sqlite3.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

/*  Expressions of migration 7, written out rather than taken from the
    macros the queries use (YEAR_START, below), because a migration that
    has shipped must never change. For the event e: the calendar year of
    the funded year it opens (a year opened late by start_next_year
    began at the end of the previous one, as its timer recorded), and the
    posts of the dossier's latest grant_posts up to it.                    */
#define S_YEAR_START_7                                                       \
    "CASE WHEN e.event = 'start_next_year' THEN min (e.at, ifnull ("          \
    " (SELECT strftime ('%Y-%m-%dT%H:%M:%SZ', t.deadline_at / 1000,"         \
    "   'unixepoch') FROM timers t WHERE t.dossier = e.dossier"              \
    "   AND t.kind = 'year_end' AND t.year = CAST (substr (e.from_state,"    \
    "   14) AS INTEGER) ORDER BY t.id DESC LIMIT 1), e.at)) ELSE e.at END"
/*  Copy the tally_pays row of (row.pays, row.state) into tally_pays_day,
    as the figure of the day of `at`.                                     */
#define S_TALLY_DAY_7(row, at)                                               \
    "INSERT INTO tally_pays_day SELECT pays, state, substr (" at ", 1, 10),"  \
    " dossiers, posts FROM tally_pays WHERE pays = " row ".pays"             \
    " AND state = " row ".state ON CONFLICT DO UPDATE SET"                   \
    " dossiers = excluded.dossiers, posts = excluded.posts;"
/*  For the fill of tally_pays_day, the posts of the dossier's latest
    grant_posts up to e (cmp "<=") or before it ("<"): through a copy of the
    grant_posts events made for it (a seek each), rather than a walk back
    through the dossier's events (on a million events, the migration took
    51 s that way, 18.6 s this way).                                       */
#define S_FILL_POSTS_7(cmp)                                                  \
    "ifnull ((SELECT g.posts FROM temp.grant_posts_7 g"                      \
    " WHERE g.dossier = e.dossier AND g.seq " cmp " e.seq"                   \
    " ORDER BY g.seq DESC LIMIT 1), 0)"
#define S_POSTS_AT_7                                                         \
    "ifnull ((SELECT CAST (json_extract (g.fields, '$.posts') AS INTEGER)"   \
    " FROM events g WHERE g.dossier = e.dossier AND g.event = 'grant_posts'" \
    " AND g.seq <= e.seq ORDER BY g.seq DESC LIMIT 1), 0)"

/*  Schema migrations, in order. Migration k takes user_version k-1 to k.
    Never edit a migration that has shipped: add the next one.            */
static const char *s_migrations[] = {
    /* 1: the log, the dossiers, the requests                              */
    "CREATE TABLE dossiers ("
    "  id INTEGER PRIMARY KEY,"
    "  pays TEXT NOT NULL,"
    "  holder TEXT NOT NULL,"
    "  holder_type TEXT NOT NULL,"
    "  title TEXT,"
    "  state TEXT NOT NULL,"
    "  prev_state TEXT,"
    "  version INTEGER NOT NULL,"
    "  study_asked INTEGER,"
    "  study_granted INTEGER,"
    "  posts_asked INTEGER,"
    "  posts_granted INTEGER,"
    "  funding_year INTEGER,"
    "  reports_filed INTEGER NOT NULL DEFAULT 0,"
    "  mode TEXT,"
    "  pole_name TEXT,"
    "  host TEXT,"
    "  cofunding_eur INTEGER NOT NULL DEFAULT 0,"
    "  opened_at TEXT NOT NULL,"
    "  updated_at TEXT NOT NULL);"
    "CREATE INDEX dossiers_state ON dossiers (state);"
    "CREATE INDEX dossiers_pays ON dossiers (pays);"
    "CREATE TABLE events ("
    "  seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  dossier INTEGER NOT NULL,"
    "  event TEXT NOT NULL,"
    "  fields TEXT NOT NULL CHECK (json_valid (fields)),"
    "  actor TEXT NOT NULL,"
    "  at TEXT NOT NULL,"
    "  from_state TEXT,"
    "  to_state TEXT NOT NULL,"
    "  request_id TEXT UNIQUE);"
    "CREATE INDEX events_dossier ON events (dossier, seq);"
    "CREATE TRIGGER events_no_update BEFORE UPDATE ON events BEGIN"
    "  SELECT RAISE (ABORT, 'the event log is append-only'); END;"
    "CREATE TRIGGER events_no_delete BEFORE DELETE ON events BEGIN"
    "  SELECT RAISE (ABORT, 'the event log is append-only'); END;"
    "CREATE TABLE requests ("
    "  request_id TEXT PRIMARY KEY,"
    "  digest TEXT NOT NULL,"
    "  reply BLOB NOT NULL,"
    "  at TEXT NOT NULL) WITHOUT ROWID;",
    /* 2: reports as of a date read the log by time                        */
    "CREATE INDEX events_at ON events (at);",
    /* 3: the transactional outbox of notifications (docs/NOTIFY.md)       */
    "CREATE TABLE outbox ("
    "  id TEXT PRIMARY KEY,"
    "  seq INTEGER NOT NULL,"
    "  dossier INTEGER NOT NULL,"
    "  coordinator TEXT NOT NULL,"
    "  channel TEXT NOT NULL,"
    "  address TEXT NOT NULL,"
    "  delivery TEXT NOT NULL,"
    "  state TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'dead')),"
    "  attempts INTEGER NOT NULL DEFAULT 0,"
    "  next_at INTEGER NOT NULL,"
    "  last_error TEXT,"
    "  created_at TEXT NOT NULL,"
    "  delivered_at TEXT,"
    "  payload TEXT NOT NULL CHECK (json_valid (payload))) WITHOUT ROWID;"
    "CREATE INDEX outbox_due ON outbox (state, next_at);"
    "CREATE INDEX outbox_order ON outbox (coordinator, dossier, seq);",
    /* 4: the programme calendar (docs/CALENDAR.md) and daemon settings    */
    "CREATE TABLE timers ("
    "  id INTEGER PRIMARY KEY,"
    "  dossier INTEGER NOT NULL,"
    "  kind TEXT NOT NULL,"
    "  year INTEGER,"
    "  due_at INTEGER NOT NULL,"
    "  deadline_at INTEGER NOT NULL,"
    "  state TEXT NOT NULL CHECK (state IN ('armed', 'waiting', 'fired',"
    "    'overdue', 'settled', 'cancelled')),"
    "  created_at TEXT NOT NULL,"
    "  updated_at TEXT NOT NULL);"
    "CREATE INDEX timers_due ON timers (state, due_at);"
    "CREATE INDEX timers_dossier ON timers (dossier, kind, year);"
    "CREATE TABLE settings (key TEXT PRIMARY KEY, value INTEGER NOT NULL)"
    "  WITHOUT ROWID;",
    /* 5: the report reads the log by event (grants, posts, co-funding)    */
    "CREATE INDEX events_event ON events (event, at);",
    /* 6: the hash chain (store.h). The column cannot be NOT NULL (ALTER
       TABLE adds it to rows that exist): the chain of those rows is
       computed by s_chain_existing, which also recreates the trigger
       dropped here, in this same transaction, so that the log is never
       open to updates once the migration has committed.                   */
    "DROP TRIGGER events_no_update;"
    "ALTER TABLE events ADD COLUMN hash TEXT CHECK (hash IS NULL"
    "  OR (length (hash) = 64 AND hash NOT GLOB '*[^0-9a-f]*'));"
    "CREATE TABLE chain ("
    "  id INTEGER PRIMARY KEY CHECK (id = 1),"
    "  seq INTEGER NOT NULL,"
    "  hash TEXT NOT NULL);",
    /* 7: the report's figures kept as the events are written, so that a
       report costs the same with ten dossiers or a million
       (docs/REPORT.md). tally_pays: how many dossiers stand in each
       (Pays, state), and their posts granted; kept by triggers on the
       dossiers table, which the engine's decision updates;
       tally_pays_day: its rows as they stood at the end of each day they
       changed, for the reports as of a day. tally_money:
       the money of each day, by kind (study_grant in euros, post_year in
       posts, cofunding in euros), by the calendar year it counts in and
       by funder; kept by triggers on the log. All three are filled here
       from what exists. Two CHECKs of the events table go, in
       s_cheaper_checks (the code of this migration).                 */
    "CREATE TABLE tally_pays ("
    "  pays TEXT NOT NULL,"
    "  state TEXT NOT NULL,"
    "  dossiers INTEGER NOT NULL,"
    "  posts INTEGER NOT NULL,"
    "  PRIMARY KEY (pays, state)) WITHOUT ROWID;"
    "CREATE TABLE tally_money ("
    "  kind TEXT NOT NULL CHECK (kind IN ('study_grant', 'post_year',"
    "    'cofunding')),"
    "  day TEXT NOT NULL,"
    "  year TEXT NOT NULL,"
    "  funder TEXT NOT NULL,"
    "  amount INTEGER NOT NULL,"
    /* in the order the report sums them: kind, year, funder, then the
       days, which an as-of report cuts */
    "  PRIMARY KEY (kind, year, funder, day)) WITHOUT ROWID;"
    "CREATE TABLE tally_pays_day ("
    "  pays TEXT NOT NULL,"
    "  state TEXT NOT NULL,"
    "  day TEXT NOT NULL,"
    "  dossiers INTEGER NOT NULL,"
    "  posts INTEGER NOT NULL,"
    "  PRIMARY KEY (pays, state, day)) WITHOUT ROWID;"
    "INSERT INTO tally_pays SELECT pays, state, count(*),"
    "  sum (ifnull (posts_granted, 0)) FROM dossiers GROUP BY pays, state;"
    /* the history of tally_pays, from the log: each event that moved a
       dossier takes it (with its posts) out of its state and into the
       next, on the event's day; the rows are the running sums. A Pays is
       set by open and never changes. */
    "CREATE TEMP TABLE grant_posts_7 (dossier INTEGER NOT NULL,"
    "  seq INTEGER NOT NULL, posts INTEGER NOT NULL,"
    "  PRIMARY KEY (dossier, seq)) WITHOUT ROWID;"
    "INSERT INTO temp.grant_posts_7 SELECT dossier, seq, ifnull (CAST"
    "  (json_extract (fields, '$.posts') AS INTEGER), 0) FROM events"
    "  WHERE event = 'grant_posts';"
    "INSERT INTO tally_pays_day SELECT pays, state, day,"
    "  sum (n) OVER win, sum (p) OVER win FROM (SELECT pays, state, day,"
    "  sum (n) AS n, sum (p) AS p FROM ("
    "   SELECT d.pays, e.to_state AS state, substr (e.at, 1, 10) AS day,"
    "    1 AS n, " S_FILL_POSTS_7 ("<=") " AS p"
    "   FROM events e JOIN dossiers d ON d.id = e.dossier"
    "   WHERE e.event = 'open' OR e.from_state IS NOT e.to_state"
    "   UNION ALL"
    "   SELECT d.pays, e.from_state, substr (e.at, 1, 10), -1,"
    "    -" S_FILL_POSTS_7 ("<")
    "   FROM events e JOIN dossiers d ON d.id = e.dossier"
    "   WHERE e.event != 'open' AND e.from_state IS NOT e.to_state)"
    "  GROUP BY pays, state, day)"
    "  WINDOW win AS (PARTITION BY pays, state ORDER BY day);"
    "DROP TABLE temp.grant_posts_7;"
    /* every (Pays, state) of the history in tally_pays, at zero where no
       dossier stands now, as the triggers leave them: the as-of report
       reads the history of the pairs tally_pays lists */
    "INSERT INTO tally_pays SELECT DISTINCT pays, state, 0, 0"
    "  FROM tally_pays_day WHERE true ON CONFLICT DO NOTHING;"
    "INSERT INTO tally_money SELECT 'study_grant', substr (at, 1, 10),"
    "  substr (at, 1, 4), '',"
    "  sum (ifnull (CAST (json_extract (fields, '$.amount') AS INTEGER), 0))"
    "  FROM events WHERE event = 'grant_study' GROUP BY 2, 3;"
    "INSERT INTO tally_money SELECT 'cofunding', substr (at, 1, 10),"
    "  ifnull (json_extract (fields, '$.year'), ''),"
    "  ifnull (json_extract (fields, '$.funder'), ''),"
    "  sum (ifnull (CAST (json_extract (fields, '$.amount') AS INTEGER), 0))"
    "  FROM events WHERE event = 'add_cofunding' GROUP BY 2, 3, 4;"
    "INSERT INTO tally_money SELECT 'post_year', day, year, '', sum (posts)"
    "  FROM (SELECT substr (e.at, 1, 10) AS day, substr (" S_YEAR_START_7
    ", 1, 4) AS year, " S_POSTS_AT_7 " AS posts"
    "  FROM events e WHERE e.event IN ('grant_posts', 'start_next_year')"
    "  AND e.to_state LIKE 'funding_year_%') GROUP BY day, year;"
    /* a dossier opened, moved to another state or Pays, or granted posts */
    /* ... and the rows it changed, as they stand at the end of the day
       (the event's time, which never runs backwards) */
    "CREATE TRIGGER tally_open AFTER INSERT ON dossiers BEGIN"
    "  INSERT INTO tally_pays VALUES (NEW.pays, NEW.state, 1,"
    "    ifnull (NEW.posts_granted, 0)) ON CONFLICT DO UPDATE SET"
    "    dossiers = dossiers + 1, posts = posts + excluded.posts;"
    "  " S_TALLY_DAY_7 ("NEW", "NEW.opened_at") " END;"
    "CREATE TRIGGER tally_move AFTER UPDATE OF pays, state, posts_granted"
    "  ON dossiers WHEN OLD.pays IS NOT NEW.pays OR OLD.state IS NOT"
    "  NEW.state OR OLD.posts_granted IS NOT NEW.posts_granted BEGIN"
    "  UPDATE tally_pays SET dossiers = dossiers - 1,"
    "    posts = posts - ifnull (OLD.posts_granted, 0)"
    "    WHERE pays = OLD.pays AND state = OLD.state;"
    "  INSERT INTO tally_pays VALUES (NEW.pays, NEW.state, 1,"
    "    ifnull (NEW.posts_granted, 0)) ON CONFLICT DO UPDATE SET"
    "    dossiers = dossiers + 1, posts = posts + excluded.posts;"
    "  " S_TALLY_DAY_7 ("OLD", "NEW.updated_at")
    "  " S_TALLY_DAY_7 ("NEW", "NEW.updated_at") " END;"
    /* money: the same expressions as the fill above, for the new row */
    "CREATE TRIGGER tally_study_grant AFTER INSERT ON events"
    "  WHEN NEW.event = 'grant_study' BEGIN"
    "  INSERT INTO tally_money VALUES ('study_grant', substr (NEW.at, 1, 10),"
    "    substr (NEW.at, 1, 4), '',"
    "    ifnull (CAST (json_extract (NEW.fields, '$.amount') AS INTEGER), 0))"
    "    ON CONFLICT DO UPDATE SET amount = amount + excluded.amount; END;"
    "CREATE TRIGGER tally_cofunding AFTER INSERT ON events"
    "  WHEN NEW.event = 'add_cofunding' BEGIN"
    "  INSERT INTO tally_money VALUES ('cofunding', substr (NEW.at, 1, 10),"
    "    ifnull (json_extract (NEW.fields, '$.year'), ''),"
    "    ifnull (json_extract (NEW.fields, '$.funder'), ''),"
    "    ifnull (CAST (json_extract (NEW.fields, '$.amount') AS INTEGER), 0))"
    "    ON CONFLICT DO UPDATE SET amount = amount + excluded.amount; END;"
    "CREATE TRIGGER tally_post_year AFTER INSERT ON events"
    "  WHEN NEW.event IN ('grant_posts', 'start_next_year')"
    "  AND NEW.to_state LIKE 'funding_year_%' BEGIN"
    "  INSERT INTO tally_money SELECT 'post_year', substr (e.at, 1, 10),"
    "    substr (" S_YEAR_START_7 ", 1, 4), '', " S_POSTS_AT_7
    "    FROM events e WHERE e.seq = NEW.seq"
    "    ON CONFLICT DO UPDATE SET amount = amount + excluded.amount; END;",
    /* 8: the events table without `request_id UNIQUE`. The requests
       table's key already holds each request id once, written in the
       event's transaction, and nothing looks an event up by its request
       id: the UNIQUE index only cost every event one more b-tree leaf to
       write, at a random place (a client's ids are its own), a quarter of
       a commit's pages under load (tests/bench/RESULTS.md). SQLite cannot
       drop that index alone: the table is copied into a new one here,
       then s_events_without_unique drops the old one, renames the copy
       and makes its indexes and triggers again, in this transaction: the
       log is never without its append-only triggers once committed.
       Same columns in the same order, same values (the hash chain is
       unchanged), same CHECK on the hash.                                 */
    "CREATE TABLE events_8 ("
    "  seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  dossier INTEGER NOT NULL,"
    "  event TEXT NOT NULL,"
    "  fields TEXT NOT NULL,"
    "  actor TEXT NOT NULL,"
    "  at TEXT NOT NULL,"
    "  from_state TEXT,"
    "  to_state TEXT NOT NULL,"
    "  request_id TEXT,"
    "  hash TEXT CHECK (hash IS NULL OR (length (hash) = 64)));"
    "INSERT INTO events_8 (seq, dossier, event, fields, actor, at,"
    "  from_state, to_state, request_id, hash)"
    "  SELECT seq, dossier, event, fields, actor, at, from_state, to_state,"
    "  request_id, hash FROM events ORDER BY seq;",
};
#define MIGRATION_COUNT (sizeof (s_migrations) / sizeof (s_migrations[0]))

_Static_assert (MIGRATION_COUNT == POLE_STORE_SCHEMA_VERSION,
                "POLE_STORE_SCHEMA_VERSION must equal the migration count");

/*  The JSON of one dossier (PROTOCOL.md, SHOW). ?1 is the yearly amount
    per post. Subquery results lose SQLite's JSON subtype, hence json().   */
#define DOSSIER_JSON                                                         \
    "json_object ('id', d.id, 'pays', d.pays, 'departement', t.departement," \
    " 'holder', d.holder, 'holder_type', d.holder_type, 'title', d.title,"   \
    " 'state', d.state, 'version', d.version,"                               \
    " 'study_asked', d.study_asked, 'study_granted', d.study_granted,"       \
    " 'posts_asked', d.posts_asked, 'posts_granted', d.posts_granted,"       \
    " 'funding_year', d.funding_year,"                                       \
    " 'yearly_funding_eur', d.posts_granted * ?1,"                           \
    " 'reports_filed', json ((SELECT years FROM temp.reports_years"          \
    "   WHERE mask = d.reports_filed & 255)),"                               \
    " 'mode', d.mode, 'pole_name', d.pole_name, 'host', d.host,"             \
    " 'cofunding_eur', d.cofunding_eur,"                                     \
    " 'overdue', json (CASE WHEN EXISTS (SELECT 1 FROM timers o"             \
    "   WHERE o.dossier = d.id AND o.state = 'overdue')"                      \
    "   THEN 'true' ELSE 'false' END),"                                       \
    " 'opened_at', d.opened_at, 'updated_at', d.updated_at)"

#define DOSSIER_FROM                                                         \
    " FROM dossiers d LEFT JOIN temp.territory t ON t.name = d.pays"

/*  The notification as JSON (docs/NOTIFY.md), for the event e of dossier
    d; ?1 is the notification id and ?2 the coordinator (both NULL on the
    live stream, where they are left out by json_remove).                   */
#define NOTICE_JSON                                                          \
    "json_object ('id', ?1, 'seq', e.seq, 'coordinator', ?2,"                \
    " 'dossier', e.dossier, 'pays', d.pays, 'departement', t.departement,"  \
    " 'holder', d.holder, 'title', d.title, 'event', e.event,"               \
    " 'from', e.from_state, 'to', e.to_state, 'actor', e.actor, 'at', e.at," \
    " 'fields', json (e.fields), 'expected_next', json ((SELECT"             \
    "   json_group_array (x.event) FROM temp.expected x"                     \
    "   WHERE x.state = e.to_state)))"

#define NOTICE_FROM                                                          \
    " FROM events e JOIN dossiers d ON d.id = e.dossier"                     \
    " LEFT JOIN temp.territory t ON t.name = d.pays"

#define DOSSIER_COLUMNS                                                      \
    "id, pays, holder, holder_type, title, state, prev_state, version,"      \
    " study_asked, study_granted, posts_asked, posts_granted, funding_year," \
    " reports_filed, mode, pole_name, host, cofunding_eur"

#define LIVE_STATES "(SELECT name FROM temp.state_name WHERE NOT terminal)"

/*  When the funding year opened by event e began: the event's time, but
    for a year opened late by start_next_year, the end of the previous
    year (years are contiguous, docs/CALENDAR.md), as its timer recorded. */
#define YEAR_START(e)                                                        \
    "CASE WHEN " e ".event = 'start_next_year' THEN min (" e ".at, ifnull ("  \
    " (SELECT strftime ('%Y-%m-%dT%H:%M:%SZ', t.deadline_at / 1000,"         \
    "   'unixepoch') FROM timers t WHERE t.dossier = " e ".dossier"          \
    "   AND t.kind = 'year_end' AND t.year = CAST (substr (" e ".from_state," \
    "   14) AS INTEGER) ORDER BY t.id DESC LIMIT 1), " e ".at))"             \
    " ELSE " e ".at END"

/*  The report (docs/REPORT.md), one statement. ?1 is the end of the as-of
    day ("YYYY-MM-DDT23:59:59Z") or NULL for now, ?2 the as-of date as
    asked, ?3 the yearly amount per post.

    The figures come from the tallies kept as events are written (schema
    7), so that a report reads a few hundred rows whatever the size of the
    log: `tally` is how many dossiers stand in each (Pays, state) and
    their posts granted (now: tally_pays; as of a day: for each (Pays,
    state), its last row of tally_pays_day up to that day), `money` the
    euros (posts for post_year) by kind, year and funder of every day up
    to the one asked. Only the state of each Pays' latest live dossier as
    of a day is read from the log (the latest dossiers of the Pays, newest
    first, until one was live that day).                                  */
#define REPORT_SQL                                                           \
    /* the last event of the day: the log's times never run backwards, so  \
       "as it stood at the end of the day" is "up to this sequence" */       \
    "WITH bound AS (SELECT (SELECT seq FROM events WHERE at <= ?1"           \
    "   ORDER BY at DESC, seq DESC LIMIT 1) AS s,"                           \
    /* the newest dossier opened by then (ids grow with the opens) */      \
    "   (SELECT dossier FROM events WHERE event = 'open' AND at <= ?1"       \
    "   ORDER BY at DESC, seq DESC LIMIT 1) AS opened),"                     \
    /* each one a seek into the key of tally_pays_day, backwards */         \
    " tally AS (SELECT pays, state, dossiers, posts FROM tally_pays"         \
    "   WHERE ?1 IS NULL AND dossiers > 0"                                   \
    "   UNION ALL SELECT * FROM (SELECT p.pays, p.state,"                    \
    "   (SELECT h.dossiers FROM tally_pays_day h WHERE h.pays = p.pays"      \
    "    AND h.state = p.state AND h.day <= substr (?1, 1, 10)"              \
    "    ORDER BY h.day DESC LIMIT 1) AS dossiers,"                          \
    "   (SELECT h.posts FROM tally_pays_day h WHERE h.pays = p.pays"         \
    "    AND h.state = p.state AND h.day <= substr (?1, 1, 10)"              \
    "    ORDER BY h.day DESC LIMIT 1) AS posts"                              \
    "   FROM tally_pays p WHERE ?1 IS NOT NULL) WHERE dossiers > 0),"        \
    " running AS (SELECT name FROM temp.state_name WHERE running),"          \
    /* summed once, in the order of tally_money's key (no sort) */         \
    " money AS (SELECT kind, year, funder, sum (amount) AS amount"           \
    "   FROM tally_money WHERE ?1 IS NULL OR day <= substr (?1, 1, 10)"      \
    "   GROUP BY kind, year, funder),"                                       \
    " totals AS (SELECT"                                                     \
    "   (SELECT ifnull (sum (amount), 0) FROM money"                         \
    "    WHERE kind = 'study_grant') AS grants,"                             \
    "   (SELECT ifnull (sum (amount), 0) * ?3 FROM money"                    \
    "    WHERE kind = 'post_year') AS posts,"                                \
    "   (SELECT ifnull (sum (amount), 0) FROM money"                         \
    "    WHERE kind = 'cofunding') AS cofunding)"                            \
    " SELECT json_object ("                                                  \
    " 'as_of', ?2,"                                                          \
    " 'dossiers', (SELECT ifnull (sum (dossiers), 0) FROM tally),"           \
    " 'poles_running', (SELECT ifnull (sum (dossiers), 0) FROM tally"        \
    "   WHERE state IN running),"                                            \
    " 'studies_under_way', (SELECT ifnull (sum (dossiers), 0) FROM tally"    \
    "   WHERE state = 'study_funded'),"                                      \
    " 'by_state', json ((SELECT json_group_object (s.name,"                  \
    "   (SELECT ifnull (sum (dossiers), 0) FROM tally"                       \
    "    WHERE tally.state = s.name))"                                       \
    "   FROM (SELECT name FROM temp.state_name ORDER BY rowid) s)),"         \
    " 'by_departement', json ((SELECT json_group_object (dep,"               \
    "   json_object ('dossiers', n, 'live', l, 'poles_running', r)) FROM"    \
    "   (SELECT t.departement AS dep, ifnull (sum (c.dossiers), 0) AS n,"    \
    "    ifnull (sum (CASE WHEN c.state IN " LIVE_STATES                     \
    "      THEN c.dossiers END), 0) AS l,"                                   \
    "    ifnull (sum (CASE WHEN c.state IN running"                          \
    "      THEN c.dossiers END), 0) AS r"                                    \
    "    FROM temp.territory t LEFT JOIN tally c ON c.pays = t.name"         \
    "    GROUP BY t.departement ORDER BY t.departement))),"                  \
    " 'by_pays', json ((SELECT json_group_array (json_object ("              \
    "   'pays', t.name, 'departement', t.departement,"                       \
    "   'dossiers', (SELECT ifnull (sum (dossiers), 0) FROM tally"           \
    "     WHERE tally.pays = t.name),"                                       \
    "   'live', (SELECT ifnull (sum (dossiers), 0) FROM tally"               \
    "     WHERE tally.pays = t.name AND state IN " LIVE_STATES "),"          \
    /* its latest live dossier: now, through the Pays index, newest first */ \
    "   'state', CASE WHEN ?1 IS NULL THEN (SELECT state FROM dossiers"      \
    "     WHERE pays = t.name AND state IN " LIVE_STATES                     \
    "     ORDER BY id DESC LIMIT 1) ELSE (SELECT l.to_state"                 \
    "     FROM dossiers d JOIN events l ON l.seq = (SELECT max (x.seq)"      \
    "     FROM events x WHERE x.dossier = d.id"                              \
    "     AND x.seq <= (SELECT s FROM bound))"                               \
    "     WHERE d.pays = t.name AND d.id <= (SELECT opened FROM bound)"      \
    "     AND l.to_state IN " LIVE_STATES " ORDER BY d.id DESC LIMIT 1)"     \
    "     END))"                                                             \
    "   FROM (SELECT * FROM temp.territory ORDER BY rowid) t)),"             \
    " 'pays_without_dossier', json ((SELECT json_group_array (t.name) FROM"  \
    "   (SELECT * FROM temp.territory ORDER BY rowid) t WHERE NOT EXISTS"    \
    "   (SELECT 1 FROM tally WHERE tally.pays = t.name))),"                  \
    " 'study_granted_eur', (SELECT grants FROM totals),"                     \
    " 'post_funding_eur_per_year', (SELECT ifnull (sum (posts), 0) * ?3"     \
    "   FROM tally WHERE state LIKE 'funding_year_%'),"                      \
    " 'cofunding_eur', (SELECT cofunding FROM totals),"                      \
    " 'money', json_object ("                                                \
    "   'study_grants_by_year', json ((SELECT json_group_object (year, eur)" \
    "     FROM (SELECT year, sum (amount) AS eur FROM money"                 \
    "     WHERE kind = 'study_grant' GROUP BY year ORDER BY year))),"        \
    "   'post_funding_by_year', json ((SELECT json_group_object (year, eur)" \
    "     FROM (SELECT year, sum (amount) * ?3 AS eur FROM money"            \
    "     WHERE kind = 'post_year' GROUP BY year ORDER BY year))),"          \
    "   'post_funding_eur', (SELECT posts FROM totals),"                     \
    "   'cofunding_by_funder', json ((SELECT json_group_object (funder,"     \
    "     eur) FROM (SELECT funder, sum (amount) AS eur FROM money"          \
    "     WHERE kind = 'cofunding' GROUP BY funder ORDER BY funder))),"      \
    "   'cofunding_by_year', json ((SELECT json_group_object (year, eur)"    \
    "     FROM (SELECT year, sum (amount) AS eur FROM money"                 \
    "     WHERE kind = 'cofunding' GROUP BY year ORDER BY year))),"          \
    "   'total_eur', (SELECT grants + posts + cofunding FROM totals)))"

/*  LIST: the dossiers that pass every filter given (?2 state, ?3 Pays,
    ?4 overdue, ?5 holder), oldest first, one JSON object per row:
    pole_store_list_json joins them into the array. `lead` is one of the
    filters again, written so that SQLite can use its index: a term such
    as "?3 IS NULL OR d.pays = ?3" cannot, and made LIST read all the
    dossiers for each Pays (pole_store_list_json picks the variant).      */
#define LIST_SQL(lead)                                                       \
    "SELECT " DOSSIER_JSON DOSSIER_FROM " WHERE " lead                       \
    " AND (?2 IS NULL OR d.state = ?2) AND (?3 IS NULL OR d.pays = ?3)"      \
    " AND (?4 IS NULL OR EXISTS (SELECT 1 FROM timers o"                     \
    "   WHERE o.dossier = d.id AND o.state = 'overdue'))"                     \
    " AND (?5 IS NULL OR d.holder = ?5)"                                      \
    " ORDER BY d.id"

/*  The next event's seq, and its values as the INSERT binds them.         */
#define S_NEXT_SEQ                                                           \
    "(SELECT max (ifnull ((SELECT max (seq) FROM events), 0), ifnull ("     \
    " (SELECT seq FROM sqlite_sequence WHERE name = 'events'), 0)) + 1)"
#define S_EVENT_VALUES                                                       \
    "CAST (?1 AS INTEGER), CAST (?2 AS TEXT), CAST (?3 AS TEXT),"            \
    " CAST (?4 AS TEXT), CAST (?5 AS TEXT), CAST (?6 AS TEXT),"              \
    " CAST (?7 AS TEXT), CAST (?8 AS TEXT)"

/*  The prepared statements, named after what they do.                     */
typedef enum {
    ST_BEGIN,
    ST_COMMIT,
    ST_ROLLBACK,
    ST_SAVEPOINT,
    ST_RELEASE,
    ST_ROLLBACK_TO,
    ST_DOSSIER_LOAD,
    ST_LIVE_IN_PAYS,
    ST_DOSSIER_INSERT,
    ST_DOSSIER_UPDATE,
    ST_DOSSIER_UPDATE_FACTS,
    ST_EVENT_APPEND,
    ST_JSON_SET,
    ST_REQUEST_FIND,
    ST_REQUEST_SAVE,
    ST_SHOW,
    ST_LIST,
    ST_LIST_IN_PAYS,
    ST_LIST_IN_STATE,
    ST_LIST_OVERDUE,
    ST_HISTORY,
    ST_REPORT,
    ST_COUNT_DOSSIERS,
    ST_COUNT_EVENTS,
    ST_LOG_SCAN,
    ST_DOSSIER_IDS,
    ST_OUTBOX_ADD,
    ST_EVENT_JSON,
    ST_OUTBOX_LIST,
    ST_OUTBOX_RETRY_ID,
    ST_OUTBOX_RETRY_DEAD,
    ST_OUTBOX_EXISTS,
    ST_TIMER_ARM,
    ST_TIMER_SETTLE,
    ST_TIMER_CANCEL_ALL,
    ST_TIMER_REARM_WAITING,
    ST_TIMER_FIND,
    ST_TIMER_DUE,
    ST_TIMER_SET_STATE,
    ST_TIMER_NEXT,
    ST_AGENDA,
    ST_SETTING_GET,
    ST_SETTING_PUT,
    ST_LAST_EVENT_AT,
    ST_CHAIN_UPDATE,
    ST_CHAIN_HEAD,
    ST_PAGE_BYTES,
    ST_MAX
} stmt_id_t;

static const char *s_sql[ST_MAX] = {
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
    [ST_SAVEPOINT] = "SAVEPOINT request",
    [ST_RELEASE] = "RELEASE request",
    [ST_ROLLBACK_TO] = "ROLLBACK TO request",
    [ST_DOSSIER_LOAD] = "SELECT " DOSSIER_COLUMNS " FROM dossiers WHERE id = ?1",
    [ST_LIVE_IN_PAYS] = "SELECT count(*) FROM dossiers WHERE pays = ?1"
                        " AND id != ?2 AND state IN " LIVE_STATES,
    [ST_DOSSIER_INSERT] =
        "INSERT INTO dossiers (" DOSSIER_COLUMNS ", opened_at, updated_at)"
        " VALUES (NULL, ?2, ?3, ?4, ?5, ?6, ?7, ?8, nullif (?9, 0),"
        " nullif (?10, 0), nullif (?11, 0), nullif (?12, 0), nullif (?13, 0),"
        " ?14, ?15, ?16, ?17, ?18, ?19, ?19)",
    [ST_DOSSIER_UPDATE] =
        "UPDATE dossiers SET pays = ?2, holder = ?3, holder_type = ?4,"
        " title = ?5, state = ?6, prev_state = ?7, version = ?8,"
        " study_asked = nullif (?9, 0), study_granted = nullif (?10, 0),"
        " posts_asked = nullif (?11, 0), posts_granted = nullif (?12, 0),"
        " funding_year = nullif (?13, 0), reports_filed = ?14, mode = ?15,"
        " pole_name = ?16, host = ?17, cofunding_eur = ?18, updated_at = ?19"
        " WHERE id = ?1",
    //  The same for an event that leaves the state and the Pays as they
    //  were (a note, co-funding, a report...): SQLite rewrites the entries
    //  of an index whose column is SET, even to its own value, so leaving
    //  the two indexed columns out spares two pages of the WAL per COMMIT
    //  (tests/bench/RESULTS.md). No row when either differs: then the
    //  full UPDATE runs.
    [ST_DOSSIER_UPDATE_FACTS] =
        "UPDATE dossiers SET holder = ?3, holder_type = ?4,"
        " title = ?5, prev_state = ?7, version = ?8,"
        " study_asked = nullif (?9, 0), study_granted = nullif (?10, 0),"
        " posts_asked = nullif (?11, 0), posts_granted = nullif (?12, 0),"
        " funding_year = nullif (?13, 0), reports_filed = ?14, mode = ?15,"
        " pole_name = ?16, host = ?17, cofunding_eur = ?18, updated_at = ?19"
        " WHERE id = ?1 AND pays = ?2 AND state = ?6",
    //  The row and its link of the chain in one statement (INSERT ...
    //  VALUES: an INSERT ... SELECT reading the table it writes would
    //  first copy its row into a temporary table, twice the cost). seq is
    //  chosen here, as AUTOINCREMENT would (never a number used before,
    //  even if the last rows were cut behind poled's back: the gap then
    //  shows), since it is part of what is hashed. The values are cast to
    //  the columns' types, so that what is hashed is what is stored; the
    //  json_array takes them in the order of POLE_STORE_EVENT_CANONICAL
    //  (test_audit checks the hashes against that form).
    [ST_EVENT_APPEND] =
        "INSERT INTO events (seq, dossier, event, fields, actor, at,"
        " from_state, to_state, request_id, hash) VALUES (" S_NEXT_SEQ ","
        " " S_EVENT_VALUES ", pole_sha256 (ifnull ((SELECT hash FROM events"
        " ORDER BY seq DESC LIMIT 1), '') || json_array (" S_NEXT_SEQ ","
        " " S_EVENT_VALUES ")))",
    /* Fields are built into JSON by SQLite, one key at a time; keys are
       [a-z][a-z0-9_]* (the codec enforces it), so a path is safe.         */
    [ST_JSON_SET] = "SELECT json_set (?1, '$.' || ?2, ?3)",
    [ST_REQUEST_FIND] =
        "SELECT digest, reply FROM requests WHERE request_id = ?1",
    [ST_REQUEST_SAVE] = "INSERT INTO requests (request_id, digest, reply, at)"
                        " VALUES (?1, ?2, ?3, ?4)",
    //  SHOW tells the whole story: the facts of LIST, plus the funding
    //  plan by year (from the log) and the open obligations (the timers)
    [ST_SHOW] =
        "SELECT json_set (" DOSSIER_JSON ","
        " '$.funding_plan', json ((SELECT json_group_array (json_object ("
        "   'year', y.k, 'opened_at', y.at, 'calendar_year',"
        "   CAST (substr (y.at, 1, 4) AS INTEGER), 'posts', y.posts,"
        "   'amount_eur', y.posts * ?1, 'report', CASE WHEN"
        "   (d.reports_filed >> (y.k - 1)) & 1 THEN 'filed' ELSE 'due' END))"
        "   FROM (SELECT " YEAR_START ("e") " AS at,"
        "     CAST (substr (e.to_state, 14) AS INTEGER) AS k,"
        "     (SELECT CAST (json_extract (g.fields, '$.posts') AS INTEGER)"
        "      FROM events g WHERE g.dossier = e.dossier"
        "      AND g.event = 'grant_posts' AND g.seq <= e.seq"
        "      ORDER BY g.seq DESC LIMIT 1) AS posts"
        "     FROM events e WHERE e.dossier = d.id"
        "     AND e.event IN ('grant_posts', 'start_next_year')"
        "     AND e.to_state LIKE 'funding_year_%' ORDER BY e.seq) y)),"
        " '$.obligations', json ((SELECT json_group_array (json_object ("
        "   'kind', o.kind, 'year', o.year, 'due', strftime"
        "   ('%Y-%m-%dT%H:%M:%SZ', o.due / 1000, 'unixepoch'),"
        "   'state', o.state)) FROM (SELECT kind, year, state,"
        "   CASE WHEN kind IN ('study_deadline', 'report_due')"
        "   THEN deadline_at ELSE due_at END AS due FROM timers"
        "   WHERE dossier = d.id AND state IN ('armed', 'waiting', 'overdue')"
        "   ORDER BY due, id) o)))" DOSSIER_FROM " WHERE d.id = ?2",
    [ST_LIST] = LIST_SQL ("1"),
    [ST_LIST_IN_PAYS] = LIST_SQL ("d.pays = ?3"),
    [ST_LIST_IN_STATE] = LIST_SQL ("d.state = ?2"),
    [ST_LIST_OVERDUE] = LIST_SQL ("d.id IN (SELECT dossier FROM timers"
                                  " WHERE state = 'overdue')"),
    [ST_HISTORY] =
        "SELECT json_group_array (json (obj)) FROM (SELECT json_patch ("
        " json_object ('seq', e.seq, 'dossier', e.dossier, 'event', e.event,"
        " 'from', e.from_state, 'to', e.to_state, 'actor', e.actor,"
        " 'at', e.at, 'request_id', e.request_id, 'fields', json (e.fields)),"
        " e.fields) AS obj FROM events e WHERE e.dossier = ?1 ORDER BY e.seq)",
    [ST_REPORT] = REPORT_SQL,
    [ST_COUNT_DOSSIERS] = "SELECT count(*) FROM dossiers",
    [ST_COUNT_EVENTS] = "SELECT count(*) FROM events",
    [ST_LOG_SCAN] = "SELECT e.seq, e.dossier, e.event, e.to_state,"
                    " f.key, f.value FROM events e"
                    " LEFT JOIN json_each (e.fields) f ORDER BY e.seq, f.id",
    [ST_DOSSIER_IDS] = "SELECT id FROM dossiers ORDER BY id",
    [ST_OUTBOX_ADD] =
        "INSERT INTO outbox (id, seq, dossier, coordinator, channel, address,"
        " delivery, state, attempts, next_at, created_at, payload)"
        " SELECT ?1, e.seq, e.dossier, ?2, ?3, ?4, ?5, 'pending', 0, ?6, e.at,"
        " " NOTICE_JSON NOTICE_FROM " WHERE e.seq = ?7",
    //  The live stream's message: the notification without id and
    //  coordinator, and its topic PAYS/STATE/EVENT, from one row
    [ST_EVENT_JSON] = "SELECT json_remove (" NOTICE_JSON
                      ", '$.id', '$.coordinator'),"
                      " d.pays || '/' || e.to_state || '/' || e.event"
                      NOTICE_FROM " WHERE e.seq = ?3",
    [ST_OUTBOX_LIST] =
        "SELECT json_group_array (json_object ('id', id, 'seq', seq,"
        " 'dossier', dossier, 'coordinator', coordinator, 'channel', channel,"
        " 'address', address, 'delivery', delivery, 'state', state,"
        " 'attempts', attempts, 'next_at', strftime ('%Y-%m-%dT%H:%M:%SZ',"
        " next_at / 1000, 'unixepoch'), 'last_error', last_error,"
        " 'created_at', created_at, 'delivered_at', delivered_at,"
        " 'event', json_extract (payload, '$.event'),"
        " 'pays', json_extract (payload, '$.pays')))"
        " FROM (SELECT * FROM outbox WHERE ?1 IS NULL OR state = ?1"
        " ORDER BY seq, id)",
    [ST_OUTBOX_RETRY_ID] =
        "UPDATE outbox SET state = 'pending', attempts = 0, next_at = ?2,"
        " last_error = NULL WHERE id = ?1 AND state != 'pending'",
    [ST_OUTBOX_RETRY_DEAD] =
        "UPDATE outbox SET state = 'pending', attempts = 0, next_at = ?1,"
        " last_error = NULL WHERE state = 'dead'",
    [ST_OUTBOX_EXISTS] = "SELECT count(*) FROM outbox WHERE id = ?1",
    [ST_TIMER_ARM] = "INSERT INTO timers (dossier, kind, year, due_at,"
                     " deadline_at, state, created_at, updated_at) VALUES"
                     " (?1, ?2, nullif (?3, 0), ?4, ?5, 'armed', ?6, ?6)",
    //  Open timers are those still armed, waiting or overdue
    [ST_TIMER_SETTLE] = "UPDATE timers SET state = ?4, updated_at = ?5"
                        " WHERE dossier = ?1 AND kind = ?2"
                        " AND (?3 = 0 OR year = ?3)"
                        " AND state IN ('armed', 'waiting', 'overdue')",
    [ST_TIMER_CANCEL_ALL] = "UPDATE timers SET state = 'cancelled',"
                            " updated_at = ?2 WHERE dossier = ?1"
                            " AND state IN ('armed', 'waiting', 'overdue')",
    [ST_TIMER_REARM_WAITING] = "UPDATE timers SET state = 'armed',"
                               " due_at = ?3, updated_at = ?4"
                               " WHERE dossier = ?1 AND kind = 'year_end'"
                               " AND year = ?2 AND state = 'waiting'",
    [ST_TIMER_FIND] = "SELECT deadline_at FROM timers WHERE dossier = ?1"
                      " AND kind = ?2 AND ifnull (year, 0) = ?3"
                      " ORDER BY id DESC LIMIT 1",
    [ST_TIMER_DUE] = "SELECT id, dossier, kind, ifnull (year, 0), due_at,"
                     " deadline_at FROM timers WHERE state = 'armed'"
                     " AND due_at <= ?1 ORDER BY due_at, id LIMIT ?2",
    [ST_TIMER_SET_STATE] = "UPDATE timers SET state = ?2, updated_at = ?3"
                           " WHERE id = ?1",
    [ST_TIMER_NEXT] = "SELECT min (due_at) FROM timers WHERE state = 'armed'",
    [ST_AGENDA] =
        "SELECT json_group_array (json_object ('dossier', dossier,"
        " 'pays', pays, 'kind', kind, 'year', year,"
        " 'due', strftime ('%Y-%m-%dT%H:%M:%SZ', due / 1000, 'unixepoch'),"
        " 'state', state)) FROM (SELECT t.dossier, d.pays, t.kind, t.year,"
        " CASE WHEN t.kind IN ('study_deadline', 'report_due')"
        "   THEN t.deadline_at ELSE t.due_at END AS due, t.state"
        " FROM timers t JOIN dossiers d ON d.id = t.dossier"
        " WHERE (t.state IN ('armed', 'waiting') AND t.due_at <= ?1)"
        " OR t.state = 'overdue' ORDER BY due, t.dossier, t.id)",
    [ST_SETTING_GET] = "SELECT value FROM settings WHERE key = ?1",
    [ST_LAST_EVENT_AT] = "SELECT CAST (strftime ('%s', max (at)) AS INTEGER)"
                         " * 1000 FROM events",
    [ST_SETTING_PUT] = "INSERT INTO settings (key, value) VALUES (?1, ?2)"
                       " ON CONFLICT (key) DO UPDATE SET value = ?2",
    [ST_CHAIN_UPDATE] = "INSERT OR REPLACE INTO chain (id, seq, hash)"
                        " SELECT 1, seq, ifnull (hash, '') FROM events"
                        " ORDER BY seq DESC LIMIT 1",
    [ST_CHAIN_HEAD] = "SELECT seq, hash FROM chain WHERE id = 1",
    [ST_PAGE_BYTES] = "SELECT page_count * page_size"
                      " FROM pragma_page_count (), pragma_page_size ()",
};

struct _pole_store_t {
    sqlite3 *db;
    char *path;
    sqlite3_stmt *stmt[ST_MAX];
    bool appended;              //  events appended in this transaction
    //  The WAL checkpoint (store.h). Written by the loop's thread only:
    int page_size;              //  bytes
    int wal_pages;              //  pages in the WAL at the last commit
    int wal_caught_up;          //  wal_pages when the loop caught up, or -1
    bool wal_pinned;            //  a reader's snapshot held it back (logged)
    int ck_base;                //  wal_pages when the checkpointer was woken
    bool ck_running;            //  the checkpointer thread is started
    pthread_t ck_thread;
    sqlite3 *ck_db;             //  the checkpointer's own connection
    //  Shared with the checkpointer, under ck_mutex:
    pthread_mutex_t ck_mutex;
    pthread_cond_t ck_cond;
    bool ck_wanted;             //  POLE_STORE_CHECKPOINT_PAGES committed
    pthread_cond_t ck_done;     //  it ended its passes (the loop waits)
    bool ck_idle;               //  it waits for a commit, without timeout
    bool ck_hold;               //  the loop checkpoints: no pass now
    bool ck_in_pass;            //  it is checkpointing
    bool ck_stop;
    uint64_t ck_commits;        //  commits seen by the WAL hook
    int ck_pages;               //  pages in the WAL at the last of them
    uint64_t ck_passes;         //  checkpoints it ran
};

//  Run a prepared statement that returns no rows; reset it. 0 or -1.
static int
s_step_done (pole_store_t *self, stmt_id_t id)
{
    sqlite3_stmt *stmt = self->stmt[id];
    int rc = sqlite3_step (stmt);
    sqlite3_reset (stmt);
    sqlite3_clear_bindings (stmt);
    if (rc != SQLITE_DONE) {
        zsys_error ("store: %s: %s", s_sql[id], sqlite3_errmsg (self->db));
        return -1;
    }
    return 0;
}

static void
s_bind_text (sqlite3_stmt *stmt, int index, const char *text)
{
    if (text && *text)
        sqlite3_bind_text (stmt, index, text, -1, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null (stmt, index);
}

static void
s_copy_column (sqlite3_stmt *stmt, int column, char *dest, size_t size)
{
    const unsigned char *text = sqlite3_column_text (stmt, column);
    snprintf (dest, size, "%s", text ? (const char *) text : "");
}

void
pole_store_chain_hash (const char *previous, const void *canonical,
                       size_t size, char hex[65])
{
    unsigned char digest[crypto_hash_sha256_BYTES];
    crypto_hash_sha256_state state;
    crypto_hash_sha256_init (&state);
    if (previous && *previous)
        crypto_hash_sha256_update (&state, (const unsigned char *) previous,
                                   strlen (previous));
    crypto_hash_sha256_update (&state, (const unsigned char *) canonical,
                               size);
    crypto_hash_sha256_final (&state, digest);
    sodium_bin2hex (hex, 65, digest, sizeof digest);
}

//  pole_sha256 (text): the hex SHA-256 of its argument, NULL for NULL. An
//  application function, so that the INSERT hashes its own row: the
//  previous hash is read from the table inside the transaction, never from
//  a copy in memory that a rolled-back savepoint would leave stale.
static void
s_sql_sha256 (sqlite3_context *context, int argc, sqlite3_value **argv)
{
    (void) argc;
    if (sqlite3_value_type (argv[0]) == SQLITE_NULL) {
        sqlite3_result_null (context);
        return;
    }
    const unsigned char *text = sqlite3_value_text (argv[0]);
    if (!text) {
        sqlite3_result_error_nomem (context);
        return;
    }
    char hex[65];
    pole_store_chain_hash (NULL, text, (size_t) sqlite3_value_bytes (argv[0]),
                           hex);
    sqlite3_result_text (context, hex, 64, SQLITE_TRANSIENT);
}

//  Migration 6, after its SQL: the chain of the rows already in the log,
//  in seq order, a thousand rows at a time (a large log is not loaded
//  whole), then the head, then the update trigger back. Runs inside the
//  migration's transaction.
#define S_CHAIN_BATCH 1000

static int
s_chain_existing (sqlite3 *db)
{
    typedef struct {
        int64_t seq;
        char hash[65];
    } link_t;
    link_t *batch = (link_t *) zmalloc (S_CHAIN_BATCH * sizeof (link_t));
    sqlite3_stmt *read = NULL, *write = NULL;
    char previous[65] = "";
    int64_t last = 0;
    int rc = -1;
    if (sqlite3_prepare_v2 (db,
                            "SELECT seq, " POLE_STORE_EVENT_CANONICAL
                            " FROM events WHERE seq > ?1 ORDER BY seq"
                            " LIMIT ?2",
                            -1, &read, NULL)
            != SQLITE_OK
        || sqlite3_prepare_v2 (db, "UPDATE events SET hash = ?2 WHERE seq = ?1",
                               -1, &write, NULL)
               != SQLITE_OK)
        goto done;
    while (true) {
        size_t count = 0;
        sqlite3_bind_int64 (read, 1, last);
        sqlite3_bind_int (read, 2, S_CHAIN_BATCH);
        int step;
        while ((step = sqlite3_step (read)) == SQLITE_ROW) {
            link_t *link = &batch[count++];
            link->seq = sqlite3_column_int64 (read, 0);
            pole_store_chain_hash (previous, sqlite3_column_text (read, 1),
                                   (size_t) sqlite3_column_bytes (read, 1),
                                   link->hash);
            memcpy (previous, link->hash, sizeof previous);
        }
        sqlite3_reset (read);
        if (step != SQLITE_DONE)
            goto done;
        //  The reading statement is reset: the updates below do not run
        //  under a cursor on the same table
        for (size_t i = 0; i < count; i++) {
            sqlite3_bind_int64 (write, 1, batch[i].seq);
            sqlite3_bind_text (write, 2, batch[i].hash, 64, SQLITE_STATIC);
            step = sqlite3_step (write);
            sqlite3_reset (write);
            if (step != SQLITE_DONE)
                goto done;
        }
        if (count > 0)
            last = batch[count - 1].seq;
        if (count < S_CHAIN_BATCH)
            break;
    }
    char sql[200];
    snprintf (sql, sizeof sql,
              "INSERT INTO chain (id, seq, hash) VALUES (1, %" PRId64 ", '%s')",
              last, previous);
    if (sqlite3_exec (db, sql, NULL, NULL, NULL) == SQLITE_OK
        && sqlite3_exec (db,
                         "CREATE TRIGGER events_no_update BEFORE UPDATE ON"
                         " events BEGIN SELECT RAISE (ABORT,"
                         " 'the event log is append-only'); END;",
                         NULL, NULL, NULL)
               == SQLITE_OK)
        rc = 0;
done:
    sqlite3_finalize (read);
    sqlite3_finalize (write);
    free (batch);
    return rc;
}

//  What a migration does beyond its SQL, by the version it reaches (index
//  k for migration k + 1); NULL for most.
typedef int (s_migration_code_fn) (sqlite3 *db);
//  Migration 7's code: two CHECKs of the events table go, because
//  quick_check evaluates every CHECK of every row, and they made each start
//  read the whole log through them (2.6 s of quick_check on a million
//  events, 0.6-0.9 s without them; tests/bench/RESULTS.md):
//  - the GLOB of schema 6's hash CHECK (1.7 us per event written, most of
//    the difference), which said "hexadecimal": the chain's verification, at
//    every start and by VERIFY, recomputes every hash, and a value that is
//    not the hexadecimal SHA-256 of its row fails it. The length stays
//    checked: it is cheap;
//  - json_valid (fields) (about 0.3 s of it): the fields are written by
//    SQLite's json_set only (ST_JSON_SET), and the chain proves each row is
//    as poled wrote it.
//  Loosening a CHECK does not change what is on disk, so SQLite's
//  documented procedure for it edits the table's definition in place
//  (https://sqlite.org/lang_altertable.html, "removing CHECK
//  constraints"), inside the migration's transaction: no copy of the log.
static int
s_cheaper_checks (sqlite3 *db)
{
    static const char *gone[] = {" AND hash NOT GLOB '*[^0-9a-f]*'",
                                 " CHECK (json_valid (fields))"};
    sqlite3_stmt *stmt = NULL;
    int version = -1;
    if (sqlite3_prepare_v2 (db, "PRAGMA schema_version", -1, &stmt, NULL)
            == SQLITE_OK
        && sqlite3_step (stmt) == SQLITE_ROW)
        version = sqlite3_column_int (stmt, 0);
    sqlite3_finalize (stmt);
    stmt = NULL;
    if (version < 0
        || sqlite3_exec (db, "PRAGMA writable_schema = ON", NULL, NULL, NULL)
               != SQLITE_OK
        || sqlite3_prepare_v2 (db,
                               "UPDATE sqlite_schema SET sql = replace (sql,"
                               " ?1, '') WHERE type = 'table'"
                               " AND name = 'events' AND instr (sql, ?1) > 0",
                               -1, &stmt, NULL)
               != SQLITE_OK) {
        sqlite3_finalize (stmt);
        sqlite3_exec (db, "PRAGMA writable_schema = OFF", NULL, NULL, NULL);
        return -1;
    }
    int rc = 0;
    for (size_t k = 0; k < sizeof gone / sizeof gone[0] && rc == 0; k++) {
        sqlite3_bind_text (stmt, 1, gone[k], -1, SQLITE_STATIC);
        if (sqlite3_step (stmt) != SQLITE_DONE || sqlite3_changes (db) != 1)
            rc = -1;
        sqlite3_reset (stmt);
    }
    sqlite3_finalize (stmt);
    if (rc == 0) {
        //  Other connections (and this one) read the schema again
        char sql[64];
        snprintf (sql, sizeof sql, "PRAGMA schema_version = %d", version + 1);
        rc = sqlite3_exec (db, sql, NULL, NULL, NULL) == SQLITE_OK ? 0 : -1;
    }
    if (sqlite3_exec (db, "PRAGMA writable_schema = OFF", NULL, NULL, NULL)
        != SQLITE_OK)
        rc = -1;
    //  The new definition must parse
    if (rc == 0
        && sqlite3_exec (db, "SELECT fields, hash FROM events LIMIT 0", NULL,
                         NULL, NULL)
               != SQLITE_OK)
        rc = -1;
    if (rc)
        zsys_error ("store: the events table is not as schema 6 made it"
                    " (its CHECKs), so migration 7 is not applied and poled"
                    " does not start: restore the file from a backup");
    return rc;
}

//  One statement with one integer bound to ?1, run to its end: 0 or -1
static int
s_exec_int64 (sqlite3 *db, const char *sql, int64_t value)
{
    sqlite3_stmt *stmt = NULL;
    int rc = sqlite3_prepare_v2 (db, sql, -1, &stmt, NULL) == SQLITE_OK
                     && sqlite3_bind_int64 (stmt, 1, value) == SQLITE_OK
                     && sqlite3_step (stmt) == SQLITE_DONE
                 ? 0
                 : -1;
    sqlite3_finalize (stmt);
    return rc;
}

//  Migration 8, after its SQL copied the log into events_8: the indexes
//  and triggers of `events` (all but the UNIQUE's own index) are read from
//  the schema, the old table goes, the copy takes its name, and they are
//  made again from their own SQL, unchanged; AUTOINCREMENT's high mark
//  too. Reading them from the file rather than from this source keeps
//  whatever earlier migrations made, in the form they made it.
static int
s_events_without_unique (sqlite3 *db)
{
    sqlite3_stmt *stmt = NULL;
    zlist_t *again = zlist_new ();
    zlist_autofree (again);
    int64_t high = 0;
    int rc = -1;
    const char *why = NULL;     //  when SQLite itself reported no error
    if (sqlite3_prepare_v2 (db,
                            "SELECT sql FROM sqlite_schema WHERE tbl_name ="
                            " 'events' AND type IN ('index', 'trigger')"
                            " AND sql IS NOT NULL ORDER BY rowid",
                            -1, &stmt, NULL)
        != SQLITE_OK)
        goto done;
    int step;
    while ((step = sqlite3_step (stmt)) == SQLITE_ROW) {
        const char *sql = (const char *) sqlite3_column_text (stmt, 0);
        if (!sql) {             //  out of memory: the list would be short
            step = SQLITE_NOMEM;
            break;
        }
        zlist_append (again, (void *) sql);
    }
    sqlite3_finalize (stmt);
    stmt = NULL;
    //  All of them or nothing: an error mid-read must not drop the table
    if (step != SQLITE_DONE
        || sqlite3_prepare_v2 (db,
                               "SELECT seq FROM sqlite_sequence"
                               " WHERE name = 'events'",
                               -1, &stmt, NULL)
               != SQLITE_OK)
        goto done;
    step = sqlite3_step (stmt);
    if (step == SQLITE_ROW)
        high = sqlite3_column_int64 (stmt, 0);
    else if (step != SQLITE_DONE)
        goto done;
    sqlite3_finalize (stmt);
    stmt = NULL;
    if (sqlite3_exec (db,
                      "DROP TABLE events;"
                      " ALTER TABLE events_8 RENAME TO events;",
                      NULL, NULL, NULL)
        != SQLITE_OK)
        goto done;
    for (const char *sql = (const char *) zlist_first (again); sql;
         sql = (const char *) zlist_next (again))
        if (sqlite3_exec (db, sql, NULL, NULL, NULL) != SQLITE_OK)
            goto done;
    //  The copy's INSERT made the table's row in sqlite_sequence (with
    //  the highest seq copied); the old mark may stand higher
    if (s_exec_int64 (db,
                      "INSERT INTO sqlite_sequence (name, seq)"
                      " SELECT 'events', ?1 WHERE NOT EXISTS (SELECT 1"
                      " FROM sqlite_sequence WHERE name = 'events')",
                      high)
        || s_exec_int64 (db,
                         "UPDATE sqlite_sequence SET seq = max (seq, ?1)"
                         " WHERE name = 'events'",
                         high))
        goto done;
    //  What was read is what stands: every index and trigger made again,
    //  the two that keep the log append-only among them
    if (sqlite3_prepare_v2 (db,
                            "SELECT count(*), count(*) FILTER (WHERE name IN"
                            " ('events_no_update', 'events_no_delete'))"
                            " FROM sqlite_schema WHERE tbl_name = 'events'"
                            " AND type IN ('index', 'trigger')",
                            -1, &stmt, NULL)
            != SQLITE_OK
        || sqlite3_step (stmt) != SQLITE_ROW)
        goto done;
    if (sqlite3_column_int64 (stmt, 0) != (int64_t) zlist_size (again)
        || sqlite3_column_int (stmt, 1) != 2) {
        why = "the indexes and triggers made again are not those read";
        goto done;
    }
    rc = 0;
done:
    if (rc)
        zsys_error ("store: migration 8 (the events table without its"
                    " UNIQUE request id): %s",
                    why ? why : sqlite3_errmsg (db));
    sqlite3_finalize (stmt);
    zlist_destroy (&again);
    return rc;
}

static s_migration_code_fn *s_migration_code[MIGRATION_COUNT] = {
    [5] = s_chain_existing,
    [6] = s_cheaper_checks,
    [7] = s_events_without_unique,
};

//  Apply the migrations the file lacks, each in its own transaction so that
//  a crash mid-upgrade leaves a database at a known version.
static int
s_migrate (sqlite3 *db, char *error, size_t error_size)
{
    sqlite3_stmt *stmt;
    if (sqlite3_prepare_v2 (db, "PRAGMA user_version", -1, &stmt, NULL)
        != SQLITE_OK)
        goto sqlfail;
    int version = 0;
    if (sqlite3_step (stmt) == SQLITE_ROW)
        version = sqlite3_column_int (stmt, 0);
    sqlite3_finalize (stmt);

    if (version > (int) MIGRATION_COUNT) {
        snprintf (error, error_size,
                  "database schema version %d is newer than this poled "
                  "understands (%d): upgrade poled",
                  version, (int) MIGRATION_COUNT);
        return -1;
    }
    for (int k = version; k < (int) MIGRATION_COUNT; k++) {
        //  PRAGMA takes no bound parameter; the number is ours, not input
        char sql[64];
        snprintf (sql, sizeof sql, "PRAGMA user_version = %d", k + 1);
        if (sqlite3_exec (db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK
            || sqlite3_exec (db, s_migrations[k], NULL, NULL, NULL)
                   != SQLITE_OK
            || (s_migration_code[k] && s_migration_code[k](db))
            || sqlite3_exec (db, sql, NULL, NULL, NULL) != SQLITE_OK
            || sqlite3_exec (db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
            snprintf (error, error_size, "migration to schema %d failed: %s",
                      k + 1,
                      sqlite3_errcode (db) == SQLITE_OK
                          ? "its code refused the file (the log says why)"
                          : sqlite3_errmsg (db));
            sqlite3_exec (db, "ROLLBACK", NULL, NULL, NULL);
            return -1;
        }
        zsys_info ("store: database migrated to schema version %d", k + 1);
    }
    return 0;
sqlfail:
    snprintf (error, error_size, "%s", sqlite3_errmsg (db));
    return -1;
}

//  quick_check reads every page: a damaged file is refused at start rather
//  than discovered in the middle of a decision.
static int
s_quick_check (sqlite3 *db, char *error, size_t error_size)
{
    sqlite3_stmt *stmt;
    if (sqlite3_prepare_v2 (db, "PRAGMA quick_check", -1, &stmt, NULL)
        != SQLITE_OK) {
        snprintf (error, error_size, "the database is not usable: %s",
                  sqlite3_errmsg (db));
        return -1;
    }
    int rc = sqlite3_step (stmt);
    const unsigned char *result = sqlite3_column_text (stmt, 0);
    int ok = rc == SQLITE_ROW && result
             && streq ((const char *) result, "ok");
    if (!ok)
        snprintf (error, error_size, "the database is damaged: %s",
                  rc == SQLITE_ROW && result ? (const char *) result
                                             : sqlite3_errmsg (db));
    sqlite3_finalize (stmt);
    return ok ? 0 : -1;
}

//  Configuration tables the reads join against. TEMP: they are rebuilt at
//  each open and never written to the file.
static int
s_create_temp_tables (pole_store_t *self)
{
    if (sqlite3_exec (self->db,
                      "CREATE TEMP TABLE territory (name TEXT PRIMARY KEY,"
                      " departement INTEGER NOT NULL);"
                      "CREATE TEMP TABLE state_name (name TEXT PRIMARY KEY,"
                      " terminal INTEGER NOT NULL, running INTEGER NOT NULL);"
                      "CREATE TEMP TABLE expected (state TEXT NOT NULL,"
                      " event TEXT NOT NULL, PRIMARY KEY (state, event));"
                      //  The years whose annual report is filed, as the
                      //  JSON array a dossier shows, for each of the 256
                      //  values of the mask's eight bits: a dossier's
                      //  array is a lookup, not a json_each and an
                      //  aggregate per row (a tenth of a LIST of a Pays)
                      "CREATE TEMP TABLE reports_years (mask INTEGER"
                      " PRIMARY KEY, years TEXT NOT NULL);"
                      "WITH RECURSIVE m (mask) AS (SELECT 0 UNION ALL"
                      " SELECT mask + 1 FROM m WHERE mask < 255)"
                      " INSERT INTO temp.reports_years SELECT mask,"
                      " (SELECT json_group_array (value) FROM json_each"
                      " ('[1,2,3,4,5,6,7,8]') WHERE (mask >> (value - 1)) & 1)"
                      " FROM m;",
                      NULL, NULL, NULL)
        != SQLITE_OK)
        return -1;
    sqlite3_stmt *stmt;
    if (sqlite3_prepare_v2 (self->db,
                            "INSERT INTO temp.state_name VALUES (?1, ?2, ?3)",
                            -1, &stmt, NULL)
        != SQLITE_OK)
        return -1;
    int rc = 0;
    for (int state = POLE_S_NONE + 1; state < POLE_S_COUNT && rc == 0;
         state++) {
        //  "Running" poles, in the sheet's sense: created and not closed
        bool running = state >= POLE_S_POLE_CREATED
                       && state <= POLE_S_OPERATING;
        sqlite3_bind_text (stmt, 1, pole_state_name (state), -1,
                           SQLITE_STATIC);
        sqlite3_bind_int (stmt, 2, pole_state_is_terminal (state));
        sqlite3_bind_int (stmt, 3, running);
        if (sqlite3_step (stmt) != SQLITE_DONE)
            rc = -1;
        sqlite3_reset (stmt);
    }
    sqlite3_finalize (stmt);
    //  What is expected next in each state: the events the workflow table
    //  accepts there that a person is expected to send
    if (rc == 0
        && sqlite3_prepare_v2 (self->db,
                               "INSERT OR IGNORE INTO temp.expected"
                               " VALUES (?1, ?2)",
                               -1, &stmt, NULL)
               == SQLITE_OK) {
        size_t count;
        const pole_transition_t *rows = pole_workflow_transitions (&count);
        for (size_t i = 0; i < count && rc == 0; i++) {
            if (rows[i].from == POLE_S_NONE
                || !pole_workflow_is_expected_next (rows[i].event))
                continue;
            sqlite3_bind_text (stmt, 1, pole_state_name (rows[i].from), -1,
                               SQLITE_STATIC);
            sqlite3_bind_text (stmt, 2, pole_event_name (rows[i].event), -1,
                               SQLITE_STATIC);
            if (sqlite3_step (stmt) != SQLITE_DONE)
                rc = -1;
            sqlite3_reset (stmt);
        }
        sqlite3_finalize (stmt);
    }
    return rc;
}

//  At open, a glance at the end of the chain (two lookups, not the walk
//  of pole_audit_verify): rows cut from or added to the end of the log
//  while poled was stopped are worth a line in the log at once.
static void
s_chain_glance (pole_store_t *self)
{
    int64_t head_seq, last_seq = 0;
    char head_hash[65], last_hash[65] = "";
    sqlite3_stmt *stmt;
    if (pole_store_chain_head (self, &head_seq, head_hash)
        || sqlite3_prepare_v2 (self->db,
                               "SELECT seq, ifnull (hash, '') FROM events"
                               " ORDER BY seq DESC LIMIT 1",
                               -1, &stmt, NULL)
               != SQLITE_OK)
        return;
    if (sqlite3_step (stmt) == SQLITE_ROW) {
        last_seq = sqlite3_column_int64 (stmt, 0);
        s_copy_column (stmt, 1, last_hash, sizeof last_hash);
    }
    sqlite3_finalize (stmt);
    if (head_seq != last_seq || strcmp (head_hash, last_hash))
        zsys_warning ("store: the event log ends at event %" PRId64
                      " but its chain head records event %" PRId64
                      ": events were cut or added behind poled's back;"
                      " run polectl verify",
                      last_seq, head_seq);
}

//  --------------------------------------------------------------------------
//  The WAL checkpoint, off the commit path (store.h)

//  Passes the checkpointer makes in a row while commits land during them:
//  the first copies what was committed since the last time, the second
//  the few pages committed during the first (and, unless more commits
//  landed, syncs the file: SQLite syncs it when a pass copied everything
//  there was when it began and nothing was committed meanwhile)
#define S_CATCH_UP_PASSES 2
//  How long after a commit the checkpointer passes when fewer than
//  POLE_STORE_CHECKPOINT_PAGES pages were committed
#define S_CHECKPOINTER_IDLE_MS 1000

//  After every commit on poled's connection, with the pages now in the
//  WAL (SQLite's automatic checkpoint is such a hook: this one replaces
//  it). It only counts and, now and then, wakes the checkpointer: an
//  uncontended mutex, no I/O.
static int
s_wal_hook (void *arg, sqlite3 *db, const char *name, int pages)
{
    pole_store_t *self = (pole_store_t *) arg;
    if (pages < self->wal_pages)
        self->ck_base = 0;              //  the WAL started over
    self->wal_pages = pages;
    if (self->ck_running) {
        bool wake = pages - self->ck_base >= POLE_STORE_CHECKPOINT_PAGES;
        if (wake)
            self->ck_base = pages;
        pthread_mutex_lock (&self->ck_mutex);
        self->ck_commits++;
        self->ck_pages = pages;
        if (wake)
            self->ck_wanted = true;
        if (wake || self->ck_idle)
            pthread_cond_signal (&self->ck_cond);
        pthread_mutex_unlock (&self->ck_mutex);
    }
    else if (pages > 4 * POLE_STORE_WAL_BOUND_PAGES)
        //  No checkpointer and no loop (tests, tools): the last resort,
        //  as SQLite's own automatic checkpoint would, in this COMMIT
        sqlite3_wal_checkpoint_v2 (db, name, SQLITE_CHECKPOINT_PASSIVE, NULL,
                                   NULL);
    return SQLITE_OK;
}

//  The checkpointer thread. PASSIVE: it copies what no reader still needs
//  and takes no lock that poled's writes wait for; it never blocks them.
//  While the loop holds it (ck_hold: the loop catches up on the bound) it
//  starts no pass, and ends its passes in hand after the current one.
static void *
s_checkpointer (void *arg)
{
    pole_store_t *self = (pole_store_t *) arg;
    uint64_t done = 0;          //  ck_commits when it last caught up
    bool failed = false;        //  an error was logged
    pthread_mutex_lock (&self->ck_mutex);
    while (!self->ck_stop) {
        if (self->ck_hold || (!self->ck_wanted && self->ck_commits == done)) {
            //  Held, or nothing left behind: sleep until a commit (or
            //  until the loop lets go)
            self->ck_idle = !self->ck_hold;
            pthread_cond_wait (&self->ck_cond, &self->ck_mutex);
            self->ck_idle = false;
            continue;
        }
        if (!self->ck_wanted) {
            //  A few pages left behind: pass within a second
            struct timespec deadline;
            clock_gettime (CLOCK_MONOTONIC, &deadline);
            deadline.tv_sec += S_CHECKPOINTER_IDLE_MS / 1000;
            deadline.tv_nsec += (S_CHECKPOINTER_IDLE_MS % 1000) * 1000000L;
            if (deadline.tv_nsec >= 1000000000L) {
                deadline.tv_sec++;
                deadline.tv_nsec -= 1000000000L;
            }
            int rc = 0;
            while (!self->ck_stop && !self->ck_wanted && !self->ck_hold
                   && rc == 0)
                rc = pthread_cond_timedwait (&self->ck_cond, &self->ck_mutex,
                                             &deadline);
            if (self->ck_stop || self->ck_hold)
                continue;
        }
        self->ck_wanted = false;
        self->ck_in_pass = true;
        uint64_t commits = self->ck_commits;
        pthread_mutex_unlock (&self->ck_mutex);

        bool caught_up = false, held = false;
        int previous = -1, passes = 0;
        for (int pass = 0; pass < S_CATCH_UP_PASSES && !held; pass++) {
            int pages = -1, copied = -1;
            int rc = sqlite3_wal_checkpoint_v2 (self->ck_db, NULL,
                                                SQLITE_CHECKPOINT_PASSIVE,
                                                &pages, &copied);
            passes++;
            if (rc != SQLITE_OK) {
                //  BUSY: another connection is checkpointing right now
                if (rc != SQLITE_BUSY && !failed) {
                    zsys_error ("store: checkpoint: %s",
                                sqlite3_errmsg (self->ck_db));
                    failed = true;
                }
                break;
            }
            failed = false;
            //  `pages` is the WAL as the pass found it: caught up only if
            //  no commit landed since. Under steady writes one always has:
            //  then only the loop can catch up (pole_store_checkpoint_idle)
            //  and these passes keep what it has left to copy small
            pthread_mutex_lock (&self->ck_mutex);
            held = self->ck_hold;
            int live = self->ck_pages;
            pthread_mutex_unlock (&self->ck_mutex);
            if (copied >= pages && live == pages) {
                caught_up = true;
                break;
            }
            //  No progress: a reader's snapshot holds the rest back
            if (copied == previous)
                break;
            previous = copied;
        }
        pthread_mutex_lock (&self->ck_mutex);
        self->ck_in_pass = false;
        self->ck_passes += (uint64_t) passes;
        if (caught_up)
            done = commits;
        if (self->ck_hold)
            pthread_cond_broadcast (&self->ck_done);
    }
    pthread_mutex_unlock (&self->ck_mutex);
    return NULL;
}

//  The loop takes the checkpoint from the thread: once held, the thread
//  has finished its pass in hand (if any) and starts no other
static void
s_checkpointer_hold (pole_store_t *self)
{
    if (!self->ck_running)
        return;
    pthread_mutex_lock (&self->ck_mutex);
    self->ck_hold = true;
    while (self->ck_in_pass)
        pthread_cond_wait (&self->ck_done, &self->ck_mutex);
    pthread_mutex_unlock (&self->ck_mutex);
}

static void
s_checkpointer_release (pole_store_t *self)
{
    if (!self->ck_running)
        return;
    pthread_mutex_lock (&self->ck_mutex);
    self->ck_hold = false;
    pthread_cond_signal (&self->ck_cond);
    pthread_mutex_unlock (&self->ck_mutex);
}

int
pole_store_checkpointer_start (pole_store_t *self)
{
    if (self->ck_running)
        return 0;
    int rc = sqlite3_open_v2 (self->path, &self->ck_db,
                              SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX,
                              NULL);
    //  A first read opens the WAL (and waits out a recovery, if any); the
    //  checkpoint syncs the WAL before copying and the file after
    if (rc == SQLITE_OK) {
        sqlite3_busy_timeout (self->ck_db, 5000);
        rc = sqlite3_exec (self->ck_db,
                           "PRAGMA synchronous = FULL;"
                           " SELECT count(*) FROM sqlite_master;",
                           NULL, NULL, NULL);
    }
    if (rc != SQLITE_OK) {
        zsys_error ("store: the checkpointer cannot open %s: %s", self->path,
                    self->ck_db ? sqlite3_errmsg (self->ck_db)
                                : sqlite3_errstr (rc));
        sqlite3_close (self->ck_db);
        self->ck_db = NULL;
        return -1;
    }
    self->ck_stop = false;
    self->ck_base = self->wal_pages;
    if (pthread_create (&self->ck_thread, NULL, s_checkpointer, self)) {
        zsys_error ("store: cannot start the checkpointer thread");
        sqlite3_close (self->ck_db);
        self->ck_db = NULL;
        return -1;
    }
    self->ck_running = true;
    return 0;
}

static void
s_checkpointer_stop (pole_store_t *self)
{
    if (!self->ck_running)
        return;
    pthread_mutex_lock (&self->ck_mutex);
    self->ck_stop = true;
    pthread_cond_signal (&self->ck_cond);
    pthread_mutex_unlock (&self->ck_mutex);
    pthread_join (self->ck_thread, NULL);
    self->ck_running = false;
    if (sqlite3_close (self->ck_db) != SQLITE_OK)
        zsys_error ("store: close the checkpointer's connection: %s",
                    sqlite3_errmsg (self->ck_db));
    self->ck_db = NULL;
}

//  A PASSIVE checkpoint on poled's connection: the SQLite result code
static int
s_checkpoint (pole_store_t *self, int *pages, int *copied)
{
    *pages = *copied = -1;
    return sqlite3_wal_checkpoint_v2 (self->db, NULL,
                                      SQLITE_CHECKPOINT_PASSIVE, pages,
                                      copied);
}

int
pole_store_checkpoint (pole_store_t *self, int *pages_p, int *copied_p)
{
    int pages, copied;
    int rc = s_checkpoint (self, &pages, &copied);
    if (pages_p)
        *pages_p = pages;
    if (copied_p)
        *copied_p = copied;
    if (rc == SQLITE_BUSY)
        return 1;
    if (rc != SQLITE_OK) {
        zsys_error ("store: checkpoint: %s", sqlite3_errmsg (self->db));
        return -1;
    }
    return copied >= pages ? 0 : 1;
}

int
pole_store_checkpoint_idle (pole_store_t *self)
{
    if (self->wal_pages <= POLE_STORE_WAL_BOUND_PAGES
        || self->wal_pages == self->wal_caught_up
        || !sqlite3_get_autocommit (self->db))
        return 0;
    //  The thread's pass in hand ends first: this one then catches up
    //  with the last commit (unless a reader holds a snapshot)
    s_checkpointer_hold (self);
    int pages, copied;
    int rc = s_checkpoint (self, &pages, &copied);
    s_checkpointer_release (self);
    if (rc == SQLITE_BUSY)
        return 0;               //  another process checkpoints: next time
    if (rc != SQLITE_OK) {
        zsys_error ("store: checkpoint: %s", sqlite3_errmsg (self->db));
        return -1;
    }
    if (copied < pages) {
        if (!self->wal_pinned)
            zsys_warning ("store: the WAL holds %d pages (%d MiB), %d of "
                          "them after a snapshot that a reader still holds "
                          "(a backup or a verification): they are "
                          "checkpointed when it ends",
                          pages,
                          (int) ((int64_t) pages * self->page_size >> 20),
                          pages - copied);
        self->wal_pinned = true;
        return 0;
    }
    if (self->wal_pinned)
        zsys_info ("store: the WAL is checkpointed again (%d pages)", pages);
    self->wal_pinned = false;
    self->wal_caught_up = self->wal_pages;
    return 1;
}

int
pole_store_wal_pages (pole_store_t *self)
{
    return self->wal_pages;
}

uint64_t
pole_store_checkpointer_passes (pole_store_t *self)
{
    pthread_mutex_lock (&self->ck_mutex);
    uint64_t passes = self->ck_passes;
    pthread_mutex_unlock (&self->ck_mutex);
    return passes;
}

pole_store_t *
pole_store_new (const char *path, char *error, size_t error_size)
{
    assert (path);
    pole_store_t *self = (pole_store_t *) zmalloc (sizeof (pole_store_t));
    self->path = strdup (path);
    self->wal_caught_up = -1;
    pthread_mutex_init (&self->ck_mutex, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init (&attr);
    pthread_condattr_setclock (&attr, CLOCK_MONOTONIC);
    pthread_cond_init (&self->ck_cond, &attr);
    pthread_condattr_destroy (&attr);
    pthread_cond_init (&self->ck_done, NULL);

    int rc = sqlite3_open_v2 (path, &self->db,
                              SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE
                                  | SQLITE_OPEN_NOMUTEX,
                              NULL);
    if (rc != SQLITE_OK) {
        snprintf (error, error_size, "cannot open database %s: %s", path,
                  self->db ? sqlite3_errmsg (self->db) : sqlite3_errstr (rc));
        pole_store_destroy (&self);
        return NULL;
    }
    //  Another process (a backup, an administrator's sqlite3) may hold the
    //  lock for a moment: wait rather than fail.
    sqlite3_busy_timeout (self->db, 5000);
    sqlite3_extended_result_codes (self->db, 1);

    if (s_quick_check (self->db, error, error_size)) {
        pole_store_destroy (&self);
        return NULL;
    }
    //  WAL: readers do not block the writer; synchronous=FULL: the WAL is
    //  synced at every commit, so an acknowledged event survives power loss.
    sqlite3_stmt *stmt = NULL;
    const char *mode = NULL;
    if (sqlite3_prepare_v2 (self->db, "PRAGMA journal_mode = WAL", -1, &stmt,
                            NULL)
            == SQLITE_OK
        && sqlite3_step (stmt) == SQLITE_ROW)
        mode = (const char *) sqlite3_column_text (stmt, 0);
    if (!mode || !streq (mode, "wal")) {
        snprintf (error, error_size, "cannot put %s in WAL mode: %s", path,
                  sqlite3_errmsg (self->db));
        sqlite3_finalize (stmt);
        pole_store_destroy (&self);
        return NULL;
    }
    sqlite3_finalize (stmt);
    //  temp_store = MEMORY: each request's savepoint journal stays in
    //  memory instead of a file under /var/tmp, which cost as many writes
    //  as the WAL itself (tests/bench/RESULTS.md)
    //  No checkpoint inside a COMMIT (store.h): wal_autocheckpoint = 0,
    //  and our WAL hook instead of SQLite's
    if (sqlite3_exec (self->db,
                      "PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;"
                      " PRAGMA temp_store = MEMORY;"
                      " PRAGMA wal_autocheckpoint = 0;",
                      NULL, NULL, NULL)
        != SQLITE_OK) {
        snprintf (error, error_size, "%s", sqlite3_errmsg (self->db));
        pole_store_destroy (&self);
        return NULL;
    }
    sqlite3_wal_hook (self->db, s_wal_hook, self);
    //  The chain's hash function, before the migrations (6 uses it) and
    //  the statements that call it are prepared
    if (sodium_init () < 0
        || sqlite3_create_function (self->db, "pole_sha256", 1,
                                    SQLITE_UTF8 | SQLITE_DETERMINISTIC
                                        | SQLITE_INNOCUOUS,
                                    NULL, s_sql_sha256, NULL, NULL)
               != SQLITE_OK) {
        snprintf (error, error_size, "cannot set up the event log's hash: %s",
                  sqlite3_errmsg (self->db));
        pole_store_destroy (&self);
        return NULL;
    }
    if (s_migrate (self->db, error, error_size)) {
        pole_store_destroy (&self);
        return NULL;
    }
    //  journal_size_limit, in bytes of this file's pages: a WAL grown well
    //  past the bound (a reader held a snapshot) is cut back to 4 times
    //  the bound when it starts over. Not to the bound itself: the WAL
    //  passes it by what is committed before the loop catches up (its
    //  tick is 250 ms), and a file cut at every cycle would be grown again
    //  by appends, whose fdatasync also writes the inode
    sqlite3_stmt *size = NULL;
    if (sqlite3_prepare_v2 (self->db, "PRAGMA page_size", -1, &size, NULL)
            == SQLITE_OK
        && sqlite3_step (size) == SQLITE_ROW)
        self->page_size = sqlite3_column_int (size, 0);
    sqlite3_finalize (size);
    char limit[64];
    snprintf (limit, sizeof limit, "PRAGMA journal_size_limit = %" PRId64,
              (int64_t) 4 * POLE_STORE_WAL_BOUND_PAGES * self->page_size);
    if (self->page_size <= 0
        || sqlite3_exec (self->db, limit, NULL, NULL, NULL) != SQLITE_OK) {
        snprintf (error, error_size, "%s", sqlite3_errmsg (self->db));
        pole_store_destroy (&self);
        return NULL;
    }
    if (s_create_temp_tables (self)) {
        snprintf (error, error_size, "%s", sqlite3_errmsg (self->db));
        pole_store_destroy (&self);
        return NULL;
    }
    for (int id = 0; id < ST_MAX; id++) {
        if (sqlite3_prepare_v3 (self->db, s_sql[id], -1,
                                SQLITE_PREPARE_PERSISTENT, &self->stmt[id],
                                NULL)
            != SQLITE_OK) {
            snprintf (error, error_size, "cannot prepare statement %d: %s",
                      id, sqlite3_errmsg (self->db));
            pole_store_destroy (&self);
            return NULL;
        }
    }
    s_chain_glance (self);
    return self;
}

void
pole_store_destroy (pole_store_t **self_p)
{
    assert (self_p);
    pole_store_t *self = *self_p;
    if (!self)
        return;
    s_checkpointer_stop (self);
    for (int id = 0; id < ST_MAX; id++)
        sqlite3_finalize (self->stmt[id]);
    if (self->db) {
        //  A clean close checkpoints the WAL into the main file
        if (sqlite3_close (self->db) != SQLITE_OK)
            zsys_error ("store: close %s: %s", self->path,
                        sqlite3_errmsg (self->db));
    }
    pthread_cond_destroy (&self->ck_cond);
    pthread_cond_destroy (&self->ck_done);
    pthread_mutex_destroy (&self->ck_mutex);
    free (self->path);
    free (self);
    *self_p = NULL;
}

int
pole_store_set_territories (pole_store_t *self, const pole_params_t *params)
{
    if (sqlite3_exec (self->db, "DELETE FROM temp.territory", NULL, NULL,
                      NULL)
        != SQLITE_OK)
        return -1;
    sqlite3_stmt *stmt;
    if (sqlite3_prepare_v2 (self->db,
                            "INSERT INTO temp.territory VALUES (?1, ?2)", -1,
                            &stmt, NULL)
        != SQLITE_OK)
        return -1;
    int rc = 0;
    for (size_t i = 0; i < params->territory_count && rc == 0; i++) {
        sqlite3_bind_text (stmt, 1, params->territories[i].name, -1,
                           SQLITE_STATIC);
        sqlite3_bind_int (stmt, 2, params->territories[i].departement);
        if (sqlite3_step (stmt) != SQLITE_DONE) {
            zsys_error ("store: territory %s: %s", params->territories[i].name,
                        sqlite3_errmsg (self->db));
            rc = -1;
        }
        sqlite3_reset (stmt);
    }
    sqlite3_finalize (stmt);
    return rc;
}

int
pole_store_begin (pole_store_t *self)
{
    self->appended = false;
    return s_step_done (self, ST_BEGIN);
}

int
pole_store_commit (pole_store_t *self)
{
    //  The chain head moves once per transaction, to the last row as the
    //  transaction leaves the log (savepoints rolled back included)
    bool appended = self->appended;
    self->appended = false;
    if ((!appended || s_step_done (self, ST_CHAIN_UPDATE) == 0)
        && s_step_done (self, ST_COMMIT) == 0)
        return 0;
    //  A failed COMMIT may leave the transaction open: end it, so that
    //  nothing of the batch survives
    if (!sqlite3_get_autocommit (self->db))
        s_step_done (self, ST_ROLLBACK);
    return -1;
}

void
pole_store_rollback (pole_store_t *self)
{
    self->appended = false;
    if (!sqlite3_get_autocommit (self->db))
        s_step_done (self, ST_ROLLBACK);
}

int
pole_store_savepoint (pole_store_t *self)
{
    //  Outside a transaction a SAVEPOINT would start one of its own, and
    //  its RELEASE would commit this request alone: refuse
    if (sqlite3_get_autocommit (self->db))
        return -1;
    return s_step_done (self, ST_SAVEPOINT);
}

bool
pole_store_in_transaction (pole_store_t *self)
{
    return !sqlite3_get_autocommit (self->db);
}

int
pole_store_release (pole_store_t *self)
{
    return s_step_done (self, ST_RELEASE);
}

void
pole_store_rollback_savepoint (pole_store_t *self)
{
    //  ROLLBACK TO keeps the savepoint open; RELEASE then closes it
    s_step_done (self, ST_ROLLBACK_TO);
    s_step_done (self, ST_RELEASE);
}

int
pole_store_dossier_load (pole_store_t *self, int64_t id,
                         pole_dossier_t *dossier)
{
    sqlite3_stmt *stmt = self->stmt[ST_DOSSIER_LOAD];
    sqlite3_bind_int64 (stmt, 1, id);
    int rc = sqlite3_step (stmt);
    int result = 1;
    if (rc == SQLITE_ROW) {
        memset (dossier, 0, sizeof *dossier);
        dossier->id = sqlite3_column_int64 (stmt, 0);
        s_copy_column (stmt, 1, dossier->pays, sizeof dossier->pays);
        s_copy_column (stmt, 2, dossier->holder, sizeof dossier->holder);
        s_copy_column (stmt, 3, dossier->holder_type,
                       sizeof dossier->holder_type);
        s_copy_column (stmt, 4, dossier->title, sizeof dossier->title);
        const char *state = (const char *) sqlite3_column_text (stmt, 5);
        const char *prev = (const char *) sqlite3_column_text (stmt, 6);
        int s = state ? pole_state_from_name (state) : -1;
        int p = prev ? pole_state_from_name (prev) : POLE_S_NONE;
        dossier->state = s < 0 ? POLE_S_NONE : (pole_state_t) s;
        dossier->prev_state = p < 0 ? POLE_S_NONE : (pole_state_t) p;
        dossier->version = sqlite3_column_int64 (stmt, 7);
        dossier->study_asked = sqlite3_column_int64 (stmt, 8);
        dossier->study_granted = sqlite3_column_int64 (stmt, 9);
        dossier->posts_asked = sqlite3_column_int (stmt, 10);
        dossier->posts_granted = sqlite3_column_int (stmt, 11);
        dossier->funding_year = sqlite3_column_int (stmt, 12);
        dossier->reports_filed = (unsigned) sqlite3_column_int (stmt, 13);
        s_copy_column (stmt, 14, dossier->mode, sizeof dossier->mode);
        s_copy_column (stmt, 15, dossier->pole_name,
                       sizeof dossier->pole_name);
        s_copy_column (stmt, 16, dossier->host, sizeof dossier->host);
        dossier->cofunding_eur = sqlite3_column_int64 (stmt, 17);
        if (s < 0) {
            zsys_error ("store: dossier %" PRId64 " has unknown state '%s'",
                        id, state ? state : "");
            result = -1;
        }
        else
            result = 0;
    }
    else if (rc != SQLITE_DONE) {
        zsys_error ("store: load dossier %" PRId64 ": %s", id,
                    sqlite3_errmsg (self->db));
        result = -1;
    }
    sqlite3_reset (stmt);
    sqlite3_clear_bindings (stmt);
    return result;
}

int
pole_store_live_in_pays (pole_store_t *self, const char *pays,
                         int64_t except_id)
{
    sqlite3_stmt *stmt = self->stmt[ST_LIVE_IN_PAYS];
    sqlite3_bind_text (stmt, 1, pays, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64 (stmt, 2, except_id);
    int count = -1;
    if (sqlite3_step (stmt) == SQLITE_ROW)
        count = sqlite3_column_int (stmt, 0);
    else
        zsys_error ("store: live in pays: %s", sqlite3_errmsg (self->db));
    sqlite3_reset (stmt);
    sqlite3_clear_bindings (stmt);
    return count;
}

//  Bind a dossier's facts to the insert or the update statement: both use
//  the same parameter numbers, ?1 the id and ?19 the time.
static void
s_bind_dossier (sqlite3_stmt *stmt, const pole_dossier_t *d, const char *at)
{
    if (d->id > 0)
        sqlite3_bind_int64 (stmt, 1, d->id);
    s_bind_text (stmt, 2, d->pays);
    s_bind_text (stmt, 3, d->holder);
    s_bind_text (stmt, 4, d->holder_type);
    s_bind_text (stmt, 5, d->title);
    sqlite3_bind_text (stmt, 6, pole_state_name (d->state), -1, SQLITE_STATIC);
    if (d->prev_state != POLE_S_NONE)
        sqlite3_bind_text (stmt, 7, pole_state_name (d->prev_state), -1,
                           SQLITE_STATIC);
    sqlite3_bind_int64 (stmt, 8, d->version);
    sqlite3_bind_int64 (stmt, 9, d->study_asked);
    sqlite3_bind_int64 (stmt, 10, d->study_granted);
    sqlite3_bind_int (stmt, 11, d->posts_asked);
    sqlite3_bind_int (stmt, 12, d->posts_granted);
    sqlite3_bind_int (stmt, 13, d->funding_year);
    sqlite3_bind_int (stmt, 14, (int) d->reports_filed);
    s_bind_text (stmt, 15, d->mode);
    s_bind_text (stmt, 16, d->pole_name);
    s_bind_text (stmt, 17, d->host);
    sqlite3_bind_int64 (stmt, 18, d->cofunding_eur);
    sqlite3_bind_text (stmt, 19, at, -1, SQLITE_TRANSIENT);
}

int
pole_store_dossier_insert (pole_store_t *self, pole_dossier_t *dossier,
                           const char *at)
{
    dossier->id = 0;
    s_bind_dossier (self->stmt[ST_DOSSIER_INSERT], dossier, at);
    if (s_step_done (self, ST_DOSSIER_INSERT))
        return -1;
    dossier->id = sqlite3_last_insert_rowid (self->db);
    return 0;
}

int
pole_store_dossier_update (pole_store_t *self, const pole_dossier_t *dossier,
                           const char *at)
{
    s_bind_dossier (self->stmt[ST_DOSSIER_UPDATE_FACTS], dossier, at);
    if (s_step_done (self, ST_DOSSIER_UPDATE_FACTS))
        return -1;
    if (sqlite3_changes (self->db) == 1)
        return 0;
    s_bind_dossier (self->stmt[ST_DOSSIER_UPDATE], dossier, at);
    if (s_step_done (self, ST_DOSSIER_UPDATE))
        return -1;
    return sqlite3_changes (self->db) == 1 ? 0 : -1;
}

//  The event's fields as a JSON object, built by SQLite's json_set. The
//  result is the caller's.
static char *
s_fields_json (pole_store_t *self, const pole_field_t *fields, size_t count)
{
    char *json = strdup ("{}");
    sqlite3_stmt *stmt = self->stmt[ST_JSON_SET];
    for (size_t i = 0; i < count && json; i++) {
        sqlite3_bind_text (stmt, 1, json, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text (stmt, 2, fields[i].key, -1, SQLITE_STATIC);
        sqlite3_bind_text (stmt, 3, fields[i].value, -1, SQLITE_STATIC);
        free (json);
        json = NULL;
        if (sqlite3_step (stmt) == SQLITE_ROW
            && sqlite3_column_text (stmt, 0))
            json = strdup ((const char *) sqlite3_column_text (stmt, 0));
        else
            zsys_error ("store: fields to JSON: %s", sqlite3_errmsg (self->db));
        sqlite3_reset (stmt);
        sqlite3_clear_bindings (stmt);
    }
    return json;
}

int64_t
pole_store_event_append (pole_store_t *self, int64_t dossier,
                         const char *event, const pole_field_t *fields,
                         size_t field_count, const char *actor,
                         const char *at, const char *from, const char *to,
                         const char *request_id)
{
    char *json = s_fields_json (self, fields, field_count);
    if (!json)
        return -1;
    //  Outside a transaction (tests, tools) the row and the chain head
    //  still go together: a savepoint of our own is the transaction
    bool own = sqlite3_get_autocommit (self->db);
    if (own
        && sqlite3_exec (self->db, "SAVEPOINT append", NULL, NULL, NULL)
               != SQLITE_OK) {
        free (json);
        return -1;
    }
    sqlite3_stmt *stmt = self->stmt[ST_EVENT_APPEND];
    sqlite3_bind_int64 (stmt, 1, dossier);
    sqlite3_bind_text (stmt, 2, event, -1, SQLITE_STATIC);
    sqlite3_bind_text (stmt, 3, json, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text (stmt, 4, actor, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text (stmt, 5, at, -1, SQLITE_TRANSIENT);
    s_bind_text (stmt, 6, from);
    sqlite3_bind_text (stmt, 7, to, -1, SQLITE_STATIC);
    s_bind_text (stmt, 8, request_id);
    free (json);
    int rc = s_step_done (self, ST_EVENT_APPEND);
    int64_t seq = rc == 0 ? sqlite3_last_insert_rowid (self->db) : -1;
    if (!own) {
        self->appended = self->appended || rc == 0;
        return seq;
    }
    if (rc == 0)
        rc = s_step_done (self, ST_CHAIN_UPDATE);
    if (rc)
        sqlite3_exec (self->db, "ROLLBACK TO append", NULL, NULL, NULL);
    //  RELEASE of the outermost savepoint is the COMMIT: if it fails,
    //  nothing of this append may stay pending
    if (sqlite3_exec (self->db, "RELEASE append", NULL, NULL, NULL)
        != SQLITE_OK) {
        zsys_error ("store: append: %s", sqlite3_errmsg (self->db));
        if (!sqlite3_get_autocommit (self->db))
            s_step_done (self, ST_ROLLBACK);
        rc = -1;
    }
    return rc == 0 ? seq : -1;
}

int
pole_store_request_find (pole_store_t *self, const char *request_id,
                         char **digest, zframe_t **reply)
{
    sqlite3_stmt *stmt = self->stmt[ST_REQUEST_FIND];
    sqlite3_bind_text (stmt, 1, request_id, -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step (stmt);
    int result = 1;
    if (rc == SQLITE_ROW) {
        *digest = strdup ((const char *) sqlite3_column_text (stmt, 0));
        *reply = zframe_new (sqlite3_column_blob (stmt, 1),
                             (size_t) sqlite3_column_bytes (stmt, 1));
        result = 0;
    }
    else if (rc != SQLITE_DONE) {
        zsys_error ("store: find request: %s", sqlite3_errmsg (self->db));
        result = -1;
    }
    sqlite3_reset (stmt);
    sqlite3_clear_bindings (stmt);
    return result;
}

int
pole_store_request_save (pole_store_t *self, const char *request_id,
                         const char *digest, zframe_t *reply, const char *at)
{
    sqlite3_stmt *stmt = self->stmt[ST_REQUEST_SAVE];
    sqlite3_bind_text (stmt, 1, request_id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text (stmt, 2, digest, -1, SQLITE_TRANSIENT);
    sqlite3_bind_blob (stmt, 3, zframe_data (reply), (int) zframe_size (reply),
                       SQLITE_TRANSIENT);
    sqlite3_bind_text (stmt, 4, at, -1, SQLITE_TRANSIENT);
    return s_step_done (self, ST_REQUEST_SAVE);
}

//  Run a read statement whose single row holds one JSON text; the text is
//  the caller's. NULL when there is no row or the value is NULL.
static char *
s_json_row (pole_store_t *self, stmt_id_t id)
{
    sqlite3_stmt *stmt = self->stmt[id];
    char *json = NULL;
    int rc = sqlite3_step (stmt);
    if (rc == SQLITE_ROW && sqlite3_column_text (stmt, 0))
        json = strdup ((const char *) sqlite3_column_text (stmt, 0));
    else if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        zsys_error ("store: %s", sqlite3_errmsg (self->db));
    sqlite3_reset (stmt);
    sqlite3_clear_bindings (stmt);
    return json;
}

char *
pole_store_show_json (pole_store_t *self, int64_t id,
                      const pole_params_t *params)
{
    sqlite3_stmt *stmt = self->stmt[ST_SHOW];
    sqlite3_bind_int64 (stmt, 1, params->post_eur_per_year);
    sqlite3_bind_int64 (stmt, 2, id);
    return s_json_row (self, ST_SHOW);
}

char *
pole_store_list_json (pole_store_t *self, const char *state, const char *pays,
                      bool overdue, const char *holder,
                      const pole_params_t *params)
{
    //  The most selective filter given leads: a Pays holds a 21st of the
    //  dossiers, a state often more
    stmt_id_t id = pays      ? ST_LIST_IN_PAYS
                   : state   ? ST_LIST_IN_STATE
                   : overdue ? ST_LIST_OVERDUE
                             : ST_LIST;
    sqlite3_stmt *stmt = self->stmt[id];
    sqlite3_bind_int64 (stmt, 1, params->post_eur_per_year);
    s_bind_text (stmt, 2, state);
    s_bind_text (stmt, 3, pays);
    if (overdue)
        sqlite3_bind_int (stmt, 4, 1);
    s_bind_text (stmt, 5, holder);
    //  Each object is SQLite's; only the array's brackets and commas are
    //  written here. json_group_array would parse every object again (its
    //  argument must be json () to stay an object) and grow one string in
    //  the aggregate: a third of LIST's time for a Pays of 4,724 dossiers
    //  (tests/bench/RESULTS.md). The rows come in the ORDER BY's order,
    //  which an aggregate's input is not promised to keep. The buffer
    //  doubles: open_memstream's zeroing and copying at each step cost
    //  another tenth.
    size_t size = 0, room = 4096;
    char *json = malloc (room);
    int rc = json ? SQLITE_ROW : SQLITE_NOMEM;
    if (json)
        json[size++] = '[';
    while (rc == SQLITE_ROW && (rc = sqlite3_step (stmt)) == SQLITE_ROW) {
        //  json_object is always text: NULL here is SQLite out of memory,
        //  which must fail the LIST, not turn into a null in its array
        const char *object = (const char *) sqlite3_column_text (stmt, 0);
        size_t length = (size_t) sqlite3_column_bytes (stmt, 0);
        if (!object) {
            rc = SQLITE_NOMEM;
            break;
        }
        //  Room for a comma, the object, and for the closing bracket and
        //  the final NUL should it be the last
        size_t need = size + (size > 1) + length + 2;
        if (need > room) {
            while (need > room)
                room *= 2;
            char *grown = realloc (json, room);
            if (!grown) {
                rc = SQLITE_NOMEM;
                break;
            }
            json = grown;
        }
        if (size > 1)
            json[size++] = ',';
        memcpy (json + size, object, length);
        size += length;
    }
    if (rc == SQLITE_DONE) {
        json[size++] = ']';
        json[size] = '\0';
    }
    else {
        zsys_error ("store: list: %s", rc == SQLITE_NOMEM
                                           ? "out of memory"
                                           : sqlite3_errmsg (self->db));
        free (json);
        json = NULL;
    }
    sqlite3_reset (stmt);
    sqlite3_clear_bindings (stmt);
    return json;
}

char *
pole_store_history_json (pole_store_t *self, int64_t id)
{
    sqlite3_bind_int64 (self->stmt[ST_HISTORY], 1, id);
    char *json = s_json_row (self, ST_HISTORY);
    //  An empty history means no such dossier: every dossier has its open
    if (json && streq (json, "[]"))
        zstr_free (&json);
    return json;
}

char *
pole_store_report_json (pole_store_t *self, const char *as_of,
                        const pole_params_t *params)
{
    sqlite3_stmt *stmt = self->stmt[ST_REPORT];
    if (as_of) {
        char end_of_day[32];
        snprintf (end_of_day, sizeof end_of_day, "%.10sT23:59:59Z", as_of);
        sqlite3_bind_text (stmt, 1, end_of_day, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text (stmt, 2, as_of, -1, SQLITE_TRANSIENT);
    }
    sqlite3_bind_int64 (stmt, 3, params->post_eur_per_year);
    return s_json_row (self, ST_REPORT);
}

int64_t
pole_store_count (pole_store_t *self, const char *table)
{
    stmt_id_t id = streq (table, "events") ? ST_COUNT_EVENTS
                                           : ST_COUNT_DOSSIERS;
    sqlite3_stmt *stmt = self->stmt[id];
    int64_t count = -1;
    if (sqlite3_step (stmt) == SQLITE_ROW)
        count = sqlite3_column_int64 (stmt, 0);
    sqlite3_reset (stmt);
    return count;
}

//  Fold one logged event into the dossiers being rebuilt.
static int
s_rebuild_apply (zhashx_t *rebuilt, int64_t dossier_id, const char *event,
                 const char *to, const pole_field_t *fields, size_t count)
{
    char key[32];
    snprintf (key, sizeof key, "%" PRId64, dossier_id);
    pole_dossier_t *dossier = (pole_dossier_t *) zhashx_lookup (rebuilt, key);
    int e = pole_event_from_name (event);
    int s = pole_state_from_name (to);
    if (e < 0 || s < 0)
        return -1;
    if (!dossier) {
        if (e != POLE_E_OPEN)
            return -1;
        dossier = (pole_dossier_t *) zmalloc (sizeof (pole_dossier_t));
        dossier->id = dossier_id;
        zhashx_insert (rebuilt, key, dossier);
    }
    pole_engine_apply (dossier, (pole_event_t) e, fields, count,
                       (pole_state_t) s);
    return 0;
}

static int
s_dossier_differs (const pole_dossier_t *a, const pole_dossier_t *b,
                   char *diff, size_t size)
{
#define CMP_INT(f)                                                           \
    if (a->f != b->f) {                                                      \
        snprintf (diff, size,                                                \
                  "dossier %" PRId64 ": " #f " is %lld live, %lld rebuilt",  \
                  a->id, (long long) a->f, (long long) b->f);                \
        return 1;                                                            \
    }
#define CMP_STR(f)                                                           \
    if (strcmp (a->f, b->f)) {                                               \
        snprintf (diff, size,                                                \
                  "dossier %" PRId64 ": " #f " is '%s' live, '%s' rebuilt",  \
                  a->id, a->f, b->f);                                        \
        return 1;                                                            \
    }
    CMP_STR (pays) CMP_STR (holder) CMP_STR (holder_type) CMP_STR (title)
    CMP_INT (state) CMP_INT (prev_state) CMP_INT (version)
    CMP_INT (study_asked) CMP_INT (study_granted) CMP_INT (posts_asked)
    CMP_INT (posts_granted) CMP_INT (funding_year) CMP_INT (reports_filed)
    CMP_STR (mode) CMP_STR (pole_name) CMP_STR (host)
    CMP_INT (cofunding_eur)
#undef CMP_INT
#undef CMP_STR
    return 0;
}

int
pole_store_rebuild_check (pole_store_t *self, char *diff, size_t diff_size)
{
    zhashx_t *rebuilt = zhashx_new ();
    zhashx_set_destructor (rebuilt, (zhashx_destructor_fn *) zstr_free);
    int result = 0;
    snprintf (diff, diff_size, "%s", "");

    //  One row per (event, field): gather an event's fields, then apply
    sqlite3_stmt *scan = self->stmt[ST_LOG_SCAN];
    pole_field_t fields[POLE_PROTO_MAX_FRAMES];
    char *keys[POLE_PROTO_MAX_FRAMES], *values[POLE_PROTO_MAX_FRAMES];
    size_t count = 0;
    int64_t seq = -1, dossier_id = 0;
    char event[64] = "", to[64] = "";
    int rc;
    while (result == 0) {
        rc = sqlite3_step (scan);
        int64_t row_seq = rc == SQLITE_ROW ? sqlite3_column_int64 (scan, 0)
                                           : -2;
        if (row_seq != seq && seq != -1) {
            if (s_rebuild_apply (rebuilt, dossier_id, event, to, fields,
                                 count)) {
                snprintf (diff, diff_size,
                          "event %" PRId64 " (%s) cannot be replayed", seq,
                          event);
                result = 1;
            }
            for (size_t i = 0; i < count; i++) {
                free (keys[i]);
                free (values[i]);
            }
            count = 0;
        }
        if (rc != SQLITE_ROW || result)
            break;
        if (row_seq != seq) {
            seq = row_seq;
            dossier_id = sqlite3_column_int64 (scan, 1);
            s_copy_column (scan, 2, event, sizeof event);
            s_copy_column (scan, 3, to, sizeof to);
        }
        if (sqlite3_column_type (scan, 4) != SQLITE_NULL
            && count < POLE_PROTO_MAX_FRAMES) {
            keys[count] = strdup ((const char *) sqlite3_column_text (scan, 4));
            values[count]
                = strdup ((const char *) sqlite3_column_text (scan, 5));
            fields[count].key = keys[count];
            fields[count].value = values[count];
            count++;
        }
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE && result == 0) {
        snprintf (diff, diff_size, "reading the log: %s",
                  sqlite3_errmsg (self->db));
        result = -1;
    }
    sqlite3_reset (scan);

    //  Every live dossier must equal its rebuilt twin, and no more exist
    sqlite3_stmt *ids = self->stmt[ST_DOSSIER_IDS];
    size_t live = 0;
    while (result == 0 && sqlite3_step (ids) == SQLITE_ROW) {
        int64_t id = sqlite3_column_int64 (ids, 0);
        char key[32];
        snprintf (key, sizeof key, "%" PRId64, id);
        pole_dossier_t *twin = (pole_dossier_t *) zhashx_lookup (rebuilt, key);
        pole_dossier_t current;
        live++;
        if (!twin) {
            snprintf (diff, diff_size,
                      "dossier %" PRId64 " is live but not in the log", id);
            result = 1;
        }
        else if (pole_store_dossier_load (self, id, &current) != 0)
            result = -1;
        else
            result = s_dossier_differs (&current, twin, diff, diff_size);
    }
    sqlite3_reset (ids);
    if (result == 0 && live != zhashx_size (rebuilt)) {
        snprintf (diff, diff_size,
                  "the log holds %zu dossiers, the live table %zu",
                  zhashx_size (rebuilt), live);
        result = 1;
    }
    zhashx_destroy (&rebuilt);
    return result;
}

void *
pole_store_handle (pole_store_t *self)
{
    return self->db;
}

int
pole_store_outbox_add (pole_store_t *self, const char *id, int64_t seq,
                       const char *coordinator, const char *channel,
                       const char *address, bool digest, int64_t next_at_ms)
{
    sqlite3_stmt *stmt = self->stmt[ST_OUTBOX_ADD];
    sqlite3_bind_text (stmt, 1, id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text (stmt, 2, coordinator, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text (stmt, 3, channel, -1, SQLITE_STATIC);
    sqlite3_bind_text (stmt, 4, address, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text (stmt, 5, digest ? "digest" : "immediate", -1,
                       SQLITE_STATIC);
    sqlite3_bind_int64 (stmt, 6, next_at_ms);
    sqlite3_bind_int64 (stmt, 7, seq);
    if (s_step_done (self, ST_OUTBOX_ADD))
        return -1;
    return sqlite3_changes (self->db) == 1 ? 0 : -1;
}

char *
pole_store_event_json (pole_store_t *self, int64_t seq, char **topic)
{
    sqlite3_stmt *stmt = self->stmt[ST_EVENT_JSON];
    sqlite3_bind_int64 (stmt, 3, seq);
    char *json = NULL;
    *topic = NULL;
    if (sqlite3_step (stmt) == SQLITE_ROW && sqlite3_column_text (stmt, 0)
        && sqlite3_column_text (stmt, 1)) {
        json = strdup ((const char *) sqlite3_column_text (stmt, 0));
        *topic = strdup ((const char *) sqlite3_column_text (stmt, 1));
    }
    else
        zsys_error ("store: event %" PRId64 " for the live stream: %s", seq,
                    sqlite3_errmsg (self->db));
    sqlite3_reset (stmt);
    sqlite3_clear_bindings (stmt);
    return json;
}

char *
pole_store_outbox_json (pole_store_t *self, const char *state)
{
    s_bind_text (self->stmt[ST_OUTBOX_LIST], 1, state);
    return s_json_row (self, ST_OUTBOX_LIST);
}

int
pole_store_outbox_retry (pole_store_t *self, const char *id, int64_t now_ms)
{
    stmt_id_t which = id ? ST_OUTBOX_RETRY_ID : ST_OUTBOX_RETRY_DEAD;
    sqlite3_stmt *stmt = self->stmt[which];
    if (id) {
        sqlite3_bind_text (stmt, 1, id, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64 (stmt, 2, now_ms);
    }
    else
        sqlite3_bind_int64 (stmt, 1, now_ms);
    if (s_step_done (self, which))
        return -1;
    int queued = sqlite3_changes (self->db);
    if (id && queued == 0) {
        //  Already pending (a retry of RETRY whose reply was lost) is 0;
        //  an id that names nothing is -2
        sqlite3_stmt *exists = self->stmt[ST_OUTBOX_EXISTS];
        sqlite3_bind_text (exists, 1, id, -1, SQLITE_TRANSIENT);
        if (sqlite3_step (exists) != SQLITE_ROW)
            queued = -1;
        else if (sqlite3_column_int (exists, 0) == 0)
            queued = -2;
        sqlite3_reset (exists);
        sqlite3_clear_bindings (exists);
    }
    return queued;
}

const char *
pole_store_path (pole_store_t *self)
{
    return self->path;
}

int
pole_store_chain_head (pole_store_t *self, int64_t *seq, char hash[65])
{
    sqlite3_stmt *stmt = self->stmt[ST_CHAIN_HEAD];
    int rc = sqlite3_step (stmt);
    *seq = 0;
    hash[0] = 0;
    if (rc == SQLITE_ROW) {
        *seq = sqlite3_column_int64 (stmt, 0);
        s_copy_column (stmt, 1, hash, 65);
    }
    else if (rc != SQLITE_DONE)
        zsys_error ("store: chain head: %s", sqlite3_errmsg (self->db));
    sqlite3_reset (stmt);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : -1;
}

int64_t
pole_store_size_bytes (pole_store_t *self)
{
    sqlite3_stmt *stmt = self->stmt[ST_PAGE_BYTES];
    int64_t bytes = -1;
    if (sqlite3_step (stmt) == SQLITE_ROW)
        bytes = sqlite3_column_int64 (stmt, 0);
    sqlite3_reset (stmt);
    //  The WAL may hold pages not yet checkpointed into the main file
    char wal[PATH_MAX];
    struct stat info;
    if (bytes >= 0
        && snprintf (wal, sizeof wal, "%s-wal", self->path) < (int) sizeof wal
        && stat (wal, &info) == 0)
        bytes += (int64_t) info.st_size;
    return bytes;
}


//  --------------------------------------------------------------------------
//  The calendar's timers (docs/CALENDAR.md)

int
pole_store_timer_arm (pole_store_t *self, int64_t dossier, const char *kind,
                      int year, int64_t due_at, int64_t deadline_at,
                      const char *at)
{
    sqlite3_stmt *stmt = self->stmt[ST_TIMER_ARM];
    sqlite3_bind_int64 (stmt, 1, dossier);
    sqlite3_bind_text (stmt, 2, kind, -1, SQLITE_STATIC);
    sqlite3_bind_int (stmt, 3, year);
    sqlite3_bind_int64 (stmt, 4, due_at);
    sqlite3_bind_int64 (stmt, 5, deadline_at);
    sqlite3_bind_text (stmt, 6, at, -1, SQLITE_TRANSIENT);
    return s_step_done (self, ST_TIMER_ARM);
}

int
pole_store_timer_settle (pole_store_t *self, int64_t dossier,
                         const char *kind, int year, const char *state,
                         const char *at)
{
    sqlite3_stmt *stmt = self->stmt[ST_TIMER_SETTLE];
    sqlite3_bind_int64 (stmt, 1, dossier);
    sqlite3_bind_text (stmt, 2, kind, -1, SQLITE_STATIC);
    sqlite3_bind_int (stmt, 3, year);
    sqlite3_bind_text (stmt, 4, state, -1, SQLITE_STATIC);
    sqlite3_bind_text (stmt, 5, at, -1, SQLITE_TRANSIENT);
    if (s_step_done (self, ST_TIMER_SETTLE))
        return -1;
    return sqlite3_changes (self->db);
}

int
pole_store_timer_cancel_all (pole_store_t *self, int64_t dossier,
                             const char *at)
{
    sqlite3_stmt *stmt = self->stmt[ST_TIMER_CANCEL_ALL];
    sqlite3_bind_int64 (stmt, 1, dossier);
    sqlite3_bind_text (stmt, 2, at, -1, SQLITE_TRANSIENT);
    return s_step_done (self, ST_TIMER_CANCEL_ALL);
}

int
pole_store_timer_rearm_waiting (pole_store_t *self, int64_t dossier, int year,
                                int64_t due_at, const char *at)
{
    sqlite3_stmt *stmt = self->stmt[ST_TIMER_REARM_WAITING];
    sqlite3_bind_int64 (stmt, 1, dossier);
    sqlite3_bind_int (stmt, 2, year);
    sqlite3_bind_int64 (stmt, 3, due_at);
    sqlite3_bind_text (stmt, 4, at, -1, SQLITE_TRANSIENT);
    if (s_step_done (self, ST_TIMER_REARM_WAITING))
        return -1;
    return sqlite3_changes (self->db);
}

int
pole_store_timer_find (pole_store_t *self, int64_t dossier, const char *kind,
                       int year, int64_t *due_at)
{
    sqlite3_stmt *stmt = self->stmt[ST_TIMER_FIND];
    sqlite3_bind_int64 (stmt, 1, dossier);
    sqlite3_bind_text (stmt, 2, kind, -1, SQLITE_STATIC);
    sqlite3_bind_int (stmt, 3, year);
    int rc = sqlite3_step (stmt);
    int result = rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? 1 : -1;
    if (rc == SQLITE_ROW)
        *due_at = sqlite3_column_int64 (stmt, 0);
    sqlite3_reset (stmt);
    sqlite3_clear_bindings (stmt);
    return result;
}

int
pole_store_timers_due (pole_store_t *self, int64_t now_ms, pole_timer_t *out,
                       int max)
{
    sqlite3_stmt *stmt = self->stmt[ST_TIMER_DUE];
    sqlite3_bind_int64 (stmt, 1, now_ms);
    sqlite3_bind_int (stmt, 2, max);
    int count = 0;
    int rc;
    while (count < max && (rc = sqlite3_step (stmt)) == SQLITE_ROW) {
        pole_timer_t *timer = &out[count++];
        timer->id = sqlite3_column_int64 (stmt, 0);
        timer->dossier = sqlite3_column_int64 (stmt, 1);
        s_copy_column (stmt, 2, timer->kind, sizeof timer->kind);
        timer->year = sqlite3_column_int (stmt, 3);
        timer->due_at = sqlite3_column_int64 (stmt, 4);
        timer->deadline_at = sqlite3_column_int64 (stmt, 5);
    }
    sqlite3_reset (stmt);
    sqlite3_clear_bindings (stmt);
    return count;
}

int
pole_store_timer_set_state (pole_store_t *self, int64_t id, const char *state,
                            const char *at)
{
    sqlite3_stmt *stmt = self->stmt[ST_TIMER_SET_STATE];
    sqlite3_bind_int64 (stmt, 1, id);
    sqlite3_bind_text (stmt, 2, state, -1, SQLITE_STATIC);
    sqlite3_bind_text (stmt, 3, at, -1, SQLITE_TRANSIENT);
    return s_step_done (self, ST_TIMER_SET_STATE);
}

int64_t
pole_store_timer_next (pole_store_t *self)
{
    sqlite3_stmt *stmt = self->stmt[ST_TIMER_NEXT];
    int64_t next = -1;
    if (sqlite3_step (stmt) == SQLITE_ROW
        && sqlite3_column_type (stmt, 0) != SQLITE_NULL)
        next = sqlite3_column_int64 (stmt, 0);
    sqlite3_reset (stmt);
    return next;
}

char *
pole_store_agenda_json (pole_store_t *self, int64_t until_ms)
{
    sqlite3_bind_int64 (self->stmt[ST_AGENDA], 1, until_ms);
    return s_json_row (self, ST_AGENDA);
}

int
pole_store_setting_get (pole_store_t *self, const char *key, int64_t *value)
{
    sqlite3_stmt *stmt = self->stmt[ST_SETTING_GET];
    sqlite3_bind_text (stmt, 1, key, -1, SQLITE_STATIC);
    int rc = sqlite3_step (stmt);
    int result = rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? 1 : -1;
    if (rc == SQLITE_ROW)
        *value = sqlite3_column_int64 (stmt, 0);
    sqlite3_reset (stmt);
    sqlite3_clear_bindings (stmt);
    return result;
}

int
pole_store_setting_put (pole_store_t *self, const char *key, int64_t value)
{
    sqlite3_stmt *stmt = self->stmt[ST_SETTING_PUT];
    sqlite3_bind_text (stmt, 1, key, -1, SQLITE_STATIC);
    sqlite3_bind_int64 (stmt, 2, value);
    return s_step_done (self, ST_SETTING_PUT);
}

int64_t
pole_store_last_event_ms (pole_store_t *self)
{
    sqlite3_stmt *stmt = self->stmt[ST_LAST_EVENT_AT];
    int64_t last = 0;
    if (sqlite3_step (stmt) == SQLITE_ROW)
        last = sqlite3_column_int64 (stmt, 0);
    sqlite3_reset (stmt);
    return last;
}
