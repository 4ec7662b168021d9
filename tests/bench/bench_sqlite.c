/*  =========================================================================
    bench_sqlite - the storage limit of bench_throughput.sh: the SQLite work
    of one `note` event, as poled does it, with no network and no codec

    usage: bench_sqlite DB [SECONDS] [BATCH] [DOSSIERS] [TEXT_BYTES]
           (3, 16, 16, 100)

    DB must hold poled's schema (the driver starts poled once on the file
    and stops it). The connection is set up as daemon/store.c sets it up
    (WAL, synchronous=FULL, foreign_keys=ON, statements prepared once), then
    DOSSIERS dossiers are inserted and, for SECONDS, transactions of BATCH
    events run, each event as pole_server's s_apply_mutation runs it:

        SELECT the request record (a retry?)   -- ST_REQUEST_FIND
        SAVEPOINT request
        SELECT the dossier row                 -- ST_DOSSIER_LOAD
        SELECT json_set ('{}', '$.text', ?)    -- ST_JSON_SET, fields to JSON
        UPDATE dossiers (all 18 facts)         -- ST_DOSSIER_UPDATE
        INSERT INTO events (JSON fields)       -- ST_EVENT_APPEND
        INSERT INTO requests (digest, blob)    -- ST_REQUEST_SAVE
        RELEASE request

    then COMMIT (one fsync of the WAL) and the calendar's SELECT min (due_at)
    that poled runs after each batch. What is left out: the decoding, the
    SHA-1 digest of the request, the engine's decision and the replies; no
    coordinator is configured, so poled writes no outbox row either.

    Prints one line of key=value pairs: events/s, and the COMMIT time p50 /
    p99. A benchmark: it prints figures, it asserts nothing.
    =========================================================================
*/

#include <inttypes.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int64_t
s_now_ns (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static sqlite3 *s_db;

static sqlite3_stmt *
s_prepare (const char *sql)
{
    sqlite3_stmt *stmt = NULL;
    if (sqlite3_prepare_v3 (s_db, sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt,
                            NULL)
        != SQLITE_OK) {
        fprintf (stderr, "bench_sqlite: %s: %s\n", sql, sqlite3_errmsg (s_db));
        exit (1);
    }
    return stmt;
}

//  Step a statement to its end; exit on error
static void
s_done (sqlite3_stmt *stmt)
{
    int rc;
    while ((rc = sqlite3_step (stmt)) == SQLITE_ROW)
        ;
    if (rc != SQLITE_DONE) {
        fprintf (stderr, "bench_sqlite: %s: %s\n", sqlite3_sql (stmt),
                 sqlite3_errmsg (s_db));
        exit (1);
    }
    sqlite3_reset (stmt);
    sqlite3_clear_bindings (stmt);
}

static int
s_cmp_i64 (const void *a, const void *b)
{
    int64_t x = *(const int64_t *) a, y = *(const int64_t *) b;
    return x < y ? -1 : x > y;
}

#define DOSSIER_COLUMNS                                                      \
    "id, pays, holder, holder_type, title, state, prev_state, version,"      \
    " study_asked, study_granted, posts_asked, posts_granted, funding_year," \
    " reports_filed, mode, pole_name, host, cofunding_eur"

int
main (int argc, char *argv[])
{
    if (argc < 2) {
        fprintf (stderr, "usage: bench_sqlite DB [SECONDS] [BATCH] "
                         "[DOSSIERS] [TEXT_BYTES]\n");
        return 2;
    }
    const char *path = argv[1];
    double seconds = argc > 2 ? atof (argv[2]) : 3;
    int batch = argc > 3 ? atoi (argv[3]) : 16;
    int dossiers = argc > 4 ? atoi (argv[4]) : 16;
    int text_bytes = argc > 5 ? atoi (argv[5]) : 100;
    if (batch < 1 || dossiers < 1 || text_bytes < 1 || text_bytes > 16384)
        return 2;

    if (sqlite3_open_v2 (path, &s_db, SQLITE_OPEN_READWRITE, NULL)
        != SQLITE_OK) {
        fprintf (stderr, "bench_sqlite: %s: %s\n", path,
                 sqlite3_errmsg (s_db));
        return 1;
    }
    sqlite3_busy_timeout (s_db, 5000);
    sqlite3_extended_result_codes (s_db, 1);
    //  daemon/store.c's settings. BENCH_SQLITE_SYNC (FULL) may name another
    //  synchronous mode, to tell the CPU from the disk: not a limit of poled
    const char *sync = getenv ("BENCH_SQLITE_SYNC");
    char pragmas[160];
    snprintf (pragmas, sizeof pragmas,
              "PRAGMA journal_mode = WAL; PRAGMA synchronous = %s;"
              " PRAGMA foreign_keys = ON;",
              sync && *sync ? sync : "FULL");
    //  BENCH_SQLITE_PRAGMAS: more settings to try (e.g. "PRAGMA temp_store
    //  = MEMORY"), for a diagnosis; empty by default, as in poled
    const char *extra = getenv ("BENCH_SQLITE_PRAGMAS");
    if (sqlite3_exec (s_db, pragmas, NULL, NULL, NULL) != SQLITE_OK
        || (extra && *extra
            && sqlite3_exec (s_db, extra, NULL, NULL, NULL) != SQLITE_OK)) {
        fprintf (stderr, "bench_sqlite: %s\n", sqlite3_errmsg (s_db));
        return 1;
    }

    //  The dossiers, one per "client", opened as poled opens them
    char at[32];
    time_t now = time (NULL);
    strftime (at, sizeof at, "%Y-%m-%dT%H:%M:%SZ", gmtime (&now));
    sqlite3_exec (s_db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    sqlite3_stmt *ins = s_prepare (
        "INSERT INTO dossiers (" DOSSIER_COLUMNS ", opened_at, updated_at)"
        " VALUES (NULL, ?1, ?2, 'ess_actor', NULL, 'draft', NULL, 1, NULL,"
        " NULL, NULL, NULL, NULL, 0, NULL, NULL, NULL, 0, ?3, ?3)");
    int64_t *ids = (int64_t *) calloc ((size_t) dossiers, sizeof (int64_t));
    for (int i = 0; i < dossiers; i++) {
        char holder[64];
        snprintf (holder, sizeof holder, "Collectif bench_sqlite %d", i);
        sqlite3_bind_text (ins, 1, "Rennes", -1, SQLITE_STATIC);
        sqlite3_bind_text (ins, 2, holder, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text (ins, 3, at, -1, SQLITE_STATIC);
        s_done (ins);
        ids[i] = sqlite3_last_insert_rowid (s_db);
    }
    sqlite3_finalize (ins);
    sqlite3_exec (s_db, "COMMIT", NULL, NULL, NULL);

    //  The statements of daemon/store.c that a `note` event runs
    sqlite3_stmt *begin = s_prepare ("BEGIN IMMEDIATE");
    sqlite3_stmt *commit = s_prepare ("COMMIT");
    sqlite3_stmt *savepoint = s_prepare ("SAVEPOINT request");
    sqlite3_stmt *release = s_prepare ("RELEASE request");
    sqlite3_stmt *find
        = s_prepare ("SELECT digest, reply FROM requests WHERE request_id = ?1");
    sqlite3_stmt *load = s_prepare ("SELECT " DOSSIER_COLUMNS
                                    " FROM dossiers WHERE id = ?1");
    sqlite3_stmt *json_set = s_prepare ("SELECT json_set (?1, '$.' || ?2, ?3)");
    sqlite3_stmt *update = s_prepare (
        "UPDATE dossiers SET pays = ?2, holder = ?3, holder_type = ?4,"
        " title = ?5, state = ?6, prev_state = ?7, version = ?8,"
        " study_asked = nullif (?9, 0), study_granted = nullif (?10, 0),"
        " posts_asked = nullif (?11, 0), posts_granted = nullif (?12, 0),"
        " funding_year = nullif (?13, 0), reports_filed = ?14, mode = ?15,"
        " pole_name = ?16, host = ?17, cofunding_eur = ?18, updated_at = ?19"
        " WHERE id = ?1");
    sqlite3_stmt *append = s_prepare (
        "INSERT INTO events (dossier, event, fields, actor, at, from_state,"
        " to_state, request_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)");
    sqlite3_stmt *save
        = s_prepare ("INSERT INTO requests (request_id, digest, reply, at)"
                     " VALUES (?1, ?2, ?3, ?4)");
    sqlite3_stmt *timer_next
        = s_prepare ("SELECT min (due_at) FROM timers WHERE state = 'armed'");

    char *text = (char *) malloc ((size_t) text_bytes + 1);
    for (int i = 0; i < text_bytes; i++)
        text[i] = (char) ('a' + i % 26);
    text[text_bytes] = 0;
    //  The reply poled records: POLE/1 rid OK id state version seq warning,
    //  zmsg_encode'd (a byte of length before each frame); about 60 bytes
    unsigned char reply[64];
    memset (reply, 'r', sizeof reply);
    const char *digest = "3f786850e387550fdab836ed7e6dc881de23001b";
    char prefix[32];
    snprintf (prefix, sizeof prefix, "s%x", (unsigned) time (NULL));

    size_t cap = 1 << 14, commits = 0;
    int64_t *commit_ns = (int64_t *) malloc (cap * sizeof (int64_t));
    uint64_t events = 0, seq = 0;
    int64_t commit_total = 0;
    int64_t t_start = s_now_ns ();
    int64_t t_end = t_start + (int64_t) (seconds * 1e9);
    int64_t t = t_start;
    while (t < t_end) {
        s_done (begin);
        for (int b = 0; b < batch; b++, seq++) {
            int64_t id = ids[seq % (uint64_t) dossiers];
            char rid[64];
            snprintf (rid, sizeof rid, "%s.%" PRIu64, prefix, seq);
            time_t wall = time (NULL);
            strftime (at, sizeof at, "%Y-%m-%dT%H:%M:%SZ", gmtime (&wall));

            sqlite3_bind_text (find, 1, rid, -1, SQLITE_TRANSIENT);
            s_done (find);
            s_done (savepoint);

            //  Load the dossier, as pole_store_dossier_load copies it out
            char pays[256] = "", holder[256] = "", state[64] = "";
            int64_t version = 0;
            sqlite3_bind_int64 (load, 1, id);
            if (sqlite3_step (load) == SQLITE_ROW) {
                snprintf (pays, sizeof pays, "%s",
                          (const char *) sqlite3_column_text (load, 1));
                snprintf (holder, sizeof holder, "%s",
                          (const char *) sqlite3_column_text (load, 2));
                snprintf (state, sizeof state, "%s",
                          (const char *) sqlite3_column_text (load, 5));
                version = sqlite3_column_int64 (load, 7);
                for (int col = 8; col < 18; col++)
                    (void) sqlite3_column_text (load, col);
            }
            sqlite3_reset (load);
            sqlite3_clear_bindings (load);

            //  Fields to JSON, by SQLite, as s_fields_json does
            char *json = NULL;
            sqlite3_bind_text (json_set, 1, "{}", -1, SQLITE_STATIC);
            sqlite3_bind_text (json_set, 2, "text", -1, SQLITE_STATIC);
            sqlite3_bind_text (json_set, 3, text, -1, SQLITE_STATIC);
            if (sqlite3_step (json_set) == SQLITE_ROW)
                json = strdup ((const char *) sqlite3_column_text (json_set, 0));
            sqlite3_reset (json_set);
            sqlite3_clear_bindings (json_set);

            sqlite3_bind_int64 (update, 1, id);
            sqlite3_bind_text (update, 2, pays, -1, SQLITE_TRANSIENT);
            sqlite3_bind_text (update, 3, holder, -1, SQLITE_TRANSIENT);
            sqlite3_bind_text (update, 4, "ess_actor", -1, SQLITE_TRANSIENT);
            sqlite3_bind_null (update, 5);
            sqlite3_bind_text (update, 6, state, -1, SQLITE_STATIC);
            sqlite3_bind_int64 (update, 8, version + 1);
            for (int p = 9; p <= 14; p++)
                sqlite3_bind_int64 (update, p, 0);
            sqlite3_bind_null (update, 15);
            sqlite3_bind_null (update, 16);
            sqlite3_bind_null (update, 17);
            sqlite3_bind_int64 (update, 18, 0);
            sqlite3_bind_text (update, 19, at, -1, SQLITE_TRANSIENT);
            s_done (update);

            sqlite3_bind_int64 (append, 1, id);
            sqlite3_bind_text (append, 2, "note", -1, SQLITE_STATIC);
            sqlite3_bind_text (append, 3, json, -1, SQLITE_TRANSIENT);
            sqlite3_bind_text (append, 4, "bench", -1, SQLITE_TRANSIENT);
            sqlite3_bind_text (append, 5, at, -1, SQLITE_TRANSIENT);
            sqlite3_bind_text (append, 6, state, -1, SQLITE_TRANSIENT);
            sqlite3_bind_text (append, 7, state, -1, SQLITE_STATIC);
            sqlite3_bind_text (append, 8, rid, -1, SQLITE_TRANSIENT);
            s_done (append);
            free (json);

            sqlite3_bind_text (save, 1, rid, -1, SQLITE_TRANSIENT);
            sqlite3_bind_text (save, 2, digest, -1, SQLITE_TRANSIENT);
            sqlite3_bind_blob (save, 3, reply, sizeof reply, SQLITE_TRANSIENT);
            sqlite3_bind_text (save, 4, at, -1, SQLITE_TRANSIENT);
            s_done (save);
            s_done (release);
        }
        int64_t c0 = s_now_ns ();
        s_done (commit);
        t = s_now_ns ();
        if (commits == cap) {
            cap *= 2;
            commit_ns = (int64_t *) realloc (commit_ns, cap * sizeof (int64_t));
        }
        commit_ns[commits++] = t - c0;
        commit_total += t - c0;
        s_done (timer_next);
        events += (uint64_t) batch;
    }
    double wall = (t - t_start) / 1e9;
    qsort (commit_ns, commits, sizeof (int64_t), s_cmp_i64);
    printf ("batch=%d dossiers=%d text=%d seconds=%.2f events=%" PRIu64
            " per_s=%.0f commits_per_s=%.0f commit_p50_us=%.0f "
            "commit_p99_us=%.0f commit_max_us=%.0f work_us_per_event=%.1f "
            "synchronous=%s\n",
            batch, dossiers, text_bytes, wall, events, events / wall,
            commits / wall, commit_ns[commits / 2] / 1e3,
            commit_ns[(size_t) (commits * 0.99)] / 1e3,
            commit_ns[commits - 1] / 1e3,
            ((t - t_start) - commit_total) / 1e3 / (double) events,
            sync && *sync ? sync : "FULL");
    sqlite3_stmt *all[] = {begin, commit, savepoint, release, find, load,
                           json_set, update, append, save, timer_next};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        sqlite3_finalize (all[i]);
    sqlite3_close (s_db);
    free (ids);
    free (text);
    free (commit_ns);
    return 0;
}
