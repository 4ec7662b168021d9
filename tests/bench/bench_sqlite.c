/*  =========================================================================
    bench_sqlite - the storage limit of bench_throughput.sh: the SQLite work
    of one `note` event, as poled does it, with no network and no codec

    usage: bench_sqlite DB [SECONDS] [BATCH] [DOSSIERS] [TEXT_BYTES]
           (3, 16, 16, 100)

    The work is poled's own, by construction: the database is opened with
    pole_store_new (daemon/store.c: the schema and its migrations, WAL,
    synchronous=FULL, foreign_keys, temp_store=MEMORY, the pole_sha256
    function, the WAL checkpoint policy, every statement prepared once),
    and each event goes through the same pole_store_* calls, in the same
    order, as pole_server_handle_batch makes them for EVENT note (server.c:
    s_apply_mutation, s_decide_and_write):

        pole_store_request_find     SELECT the request record (a retry?)
        pole_store_savepoint        SAVEPOINT request
        pole_store_dossier_load     SELECT the dossier row
        pole_store_dossier_update   UPDATE dossiers (all 18 facts)
        pole_store_event_append     json_set per field, then INSERT INTO
                                    events with the row's hash chained on
                                    the previous row's (pole_sha256)
        pole_store_request_save     INSERT INTO requests (digest, reply)
        pole_store_release          RELEASE request

    BATCH events per transaction (pole_store_begin ... pole_store_commit,
    which writes the chain head, then COMMIT: one fsync of the WAL), then
    pole_store_timer_next, the calendar's SELECT min (due_at) that poled
    runs after each batch. The WAL checkpoint is the store's, as in poled
    (store.h): no checkpoint inside a COMMIT, the checkpointer thread
    started, and pole_store_checkpoint_idle, the bound that poled's loop
    checks every 250 ms, checked here after every transaction (so this
    WAL stays a little smaller than poled's under the same load). DOSSIERS dossiers are opened
    first, each as poled opens one (dossier INSERT + `open` event, one
    transaction). Left out: the decoding, the SHA-1 digest of the request,
    the engine's decision and the replies; no coordinator is configured
    in the benchmark, so poled writes no outbox row and neither does this.

    BENCH_SQLITE_SYNC (FULL) names another synchronous mode and
    BENCH_SQLITE_PRAGMAS more settings, each applied after pole_store_new:
    for a diagnosis, not a limit of poled.

    Prints one line of key=value pairs: events/s, the COMMIT time p50 /
    p99 / max, the statements' time per event outside the COMMIT (and the
    part of it spent on the checkpoint bound), the WAL's largest size seen
    and the pages a COMMIT writes to it on average. A benchmark: it prints
    figures, it asserts nothing.
    =========================================================================
*/

#include "store.h"

#include <inttypes.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "bench_util.h"

static void
s_fail (const char *what)
{
    fprintf (stderr, "bench_sqlite: %s failed\n", what);
    exit (1);
}

static int64_t
s_file_size (const char *path)
{
    struct stat info;
    return stat (path, &info) == 0 ? (int64_t) info.st_size : 0;
}

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
    zsys_init ();
    zsys_set_logstream (stderr);

    char error[512];
    pole_store_t *store = pole_store_new (path, error, sizeof error);
    if (!store) {
        fprintf (stderr, "bench_sqlite: %s\n", error);
        return 1;
    }
    //  The WAL checkpoint as poled runs it: the store's checkpointer
    //  thread, and the bound checked between batches (below)
    if (pole_store_checkpointer_start (store))
        return 1;
    sqlite3 *db = (sqlite3 *) pole_store_handle (store);
    const char *sync = getenv ("BENCH_SQLITE_SYNC");
    const char *extra = getenv ("BENCH_SQLITE_PRAGMAS");
    char pragma[64];
    snprintf (pragma, sizeof pragma, "PRAGMA synchronous = %s",
              sync && *sync ? sync : "FULL");
    if (sqlite3_exec (db, pragma, NULL, NULL, NULL) != SQLITE_OK
        || (extra && *extra
            && sqlite3_exec (db, extra, NULL, NULL, NULL) != SQLITE_OK)) {
        fprintf (stderr, "bench_sqlite: %s\n", sqlite3_errmsg (db));
        return 1;
    }
    char wal_path[4096];
    snprintf (wal_path, sizeof wal_path, "%s-wal", path);

    //  The dossiers, one per "client", opened as poled opens them
    char at[32];
    time_t now = time (NULL);
    strftime (at, sizeof at, "%Y-%m-%dT%H:%M:%SZ", gmtime (&now));
    int64_t *ids = (int64_t *) calloc ((size_t) dossiers, sizeof (int64_t));
    char prefix[32];
    snprintf (prefix, sizeof prefix, "s%x", (unsigned) time (NULL));
    for (int i = 0; i < dossiers; i++) {
        pole_dossier_t d;
        memset (&d, 0, sizeof d);
        snprintf (d.pays, sizeof d.pays, "Rennes");
        snprintf (d.holder, sizeof d.holder, "Collectif bench_sqlite %d", i);
        snprintf (d.holder_type, sizeof d.holder_type, "ess_actor");
        d.state = POLE_S_DRAFT;
        d.version = 1;
        pole_field_t fields[] = {{"pays", d.pays},
                                 {"holder", d.holder},
                                 {"holder_type", d.holder_type}};
        char rid[64];
        snprintf (rid, sizeof rid, "%s.open.%d", prefix, i);
        if (pole_store_begin (store)
            || pole_store_dossier_insert (store, &d, at)
            || pole_store_event_append (store, d.id, "open", fields, 3,
                                        "bench", at, NULL, "draft", rid)
                   < 0
            || pole_store_commit (store))
            s_fail ("open");
        ids[i] = d.id;
    }

    char *text = (char *) malloc ((size_t) text_bytes + 1);
    for (int i = 0; i < text_bytes; i++)
        text[i] = (char) ('a' + i % 26);
    text[text_bytes] = 0;
    //  The reply poled records: POLE/1 rid OK id state version seq warning,
    //  zmsg_encode'd (a byte of length before each frame); about 60 bytes
    unsigned char reply_bytes[64];
    memset (reply_bytes, 'r', sizeof reply_bytes);
    zframe_t *reply = zframe_new (reply_bytes, sizeof reply_bytes);
    const char *digest = "3f786850e387550fdab836ed7e6dc881de23001b";

    size_t cap = 1 << 14, commits = 0;
    int64_t *commit_ns = (int64_t *) malloc (cap * sizeof (int64_t));
    uint64_t events = 0, seq = 0;
    int64_t commit_total = 0, checkpoint_total = 0, wal_max = 0;
    int64_t wal_commits = 0, wal_written = 0;
    int64_t t_start = s_now_ns ();
    int64_t t_end = t_start + (int64_t) (seconds * 1e9);
    int64_t t = t_start;
    while (t < t_end) {
        if (pole_store_begin (store))
            s_fail ("BEGIN");
        for (int b = 0; b < batch; b++, seq++) {
            int64_t id = ids[seq % (uint64_t) dossiers];
            char rid[64];
            //  Shaped as bench_load's clients make them (prefix.client.n,
            //  a dossier per client): an index on the request id then
            //  takes each commit's rows at as many places as poled's does.
            //  With ids in one ascending run (prefix.n, as this program
            //  had them) and schema 7's UNIQUE on the events' request id,
            //  a commit of 16 wrote 38 pages instead of 77, and the limit
            //  did half the writing poled did. Schema 8 (no such index):
            //  59-60 pages against 35, the requests table's key being the
            //  request id too (tests/bench/RESULTS.md, sitting 4)
            snprintf (rid, sizeof rid, "%s.%d.%" PRIu64, prefix,
                      (int) (seq % (uint64_t) dossiers),
                      seq / (uint64_t) dossiers);
            time_t wall = time (NULL);
            strftime (at, sizeof at, "%Y-%m-%dT%H:%M:%SZ", gmtime (&wall));

            char *known_digest = NULL;
            zframe_t *known_reply = NULL;
            if (pole_store_request_find (store, rid, &known_digest,
                                         &known_reply)
                    != 1
                || pole_store_savepoint (store))
                s_fail ("request find / savepoint");
            pole_dossier_t d;
            if (pole_store_dossier_load (store, id, &d) != 0)
                s_fail ("dossier load");
            pole_state_t from = d.state;
            d.version++;                //  what pole_engine_apply does
            pole_field_t fields[] = {{"text", text}};
            if (pole_store_dossier_update (store, &d, at)
                || pole_store_event_append (store, id, "note", fields, 1,
                                            "bench", at,
                                            pole_state_name (from),
                                            pole_state_name (d.state), rid)
                       < 0
                || pole_store_request_save (store, rid, digest, reply, at)
                || pole_store_release (store))
                s_fail ("event");
        }
        int before = pole_store_wal_pages (store);
        int64_t c0 = s_now_ns ();
        if (pole_store_commit (store))
            s_fail ("COMMIT");
        int64_t c1 = s_now_ns ();
        int after = pole_store_wal_pages (store);
        if (after > before) {           //  not started over: the pages
            wal_commits++;              //  this COMMIT wrote
            wal_written += after - before;
        }
        if (commits == cap) {
            cap *= 2;
            commit_ns = (int64_t *) realloc (commit_ns, cap * sizeof (int64_t));
        }
        commit_ns[commits++] = c1 - c0;
        commit_total += c1 - c0;
        (void) pole_store_timer_next (store);
        events += (uint64_t) batch;
        int64_t wal = s_file_size (wal_path);
        if (wal > wal_max)
            wal_max = wal;
        //  The checkpoint's bound, which poled's loop checks between two
        //  batches: counted as statement time, it is on poled's loop too
        int64_t k0 = s_now_ns ();
        pole_store_checkpoint_idle (store);
        t = s_now_ns ();
        checkpoint_total += t - k0;
    }
    double wall = (t - t_start) / 1e9;
    qsort (commit_ns, commits, sizeof (int64_t), s_cmp_i64);
    printf ("batch=%d dossiers=%d text=%d seconds=%.2f events=%" PRIu64
            " per_s=%.0f commits_per_s=%.0f commit_p50_us=%.0f "
            "commit_p99_us=%.0f commit_max_us=%.0f work_us_per_event=%.1f "
            "checkpoint_us_per_event=%.1f wal_max_kib=%" PRId64
            " pages_per_commit=%.1f synchronous=%s\n",
            batch, dossiers, text_bytes, wall, events, events / wall,
            commits / wall, commit_ns[commits / 2] / 1e3,
            commit_ns[(size_t) (commits * 0.99)] / 1e3,
            commit_ns[commits - 1] / 1e3,
            ((t - t_start) - commit_total) / 1e3 / (double) events,
            checkpoint_total / 1e3 / (double) events, wal_max / 1024,
            wal_commits ? (double) wal_written / (double) wal_commits : 0.0,
            sync && *sync ? sync : "FULL");
    zframe_destroy (&reply);
    pole_store_destroy (&store);
    free (ids);
    free (text);
    free (commit_ns);
    return 0;
}
