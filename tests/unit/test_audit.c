/*  Audit tests: the hash chain written by the store verifies, and each way
    of tampering with the log behind poled's back (an edit, a deletion in
    the middle or at the end, a row added) is reported as such, at the
    right event; the online backup, taken while another thread keeps
    appending through a pole_store_t, is a whole, verifiable copy of
    everything committed before it started.                                */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <pthread.h>
#include <sodium.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <unistd.h>

#include "audit.h"
#include "store.h"

typedef struct {
    char dir[256];
    char path[300];
    pole_store_t *store;
} fixture_t;

static int
s_setup (void **state)
{
    fixture_t *f = (fixture_t *) calloc (1, sizeof (fixture_t));
    snprintf (f->dir, sizeof f->dir, "/tmp/pole-test-audit-XXXXXX");
    assert_non_null (mkdtemp (f->dir));
    snprintf (f->path, sizeof f->path, "%s/pole.db", f->dir);
    char error[512];
    f->store = pole_store_new (f->path, error, sizeof error);
    if (!f->store)
        fail_msg ("store: %s", error);
    *state = f;
    return 0;
}

static int
s_teardown (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    pole_store_destroy (&f->store);
    char command[400];
    snprintf (command, sizeof command, "rm -rf '%s'", f->dir);
    assert_int_equal (system (command), 0);
    free (f);
    return 0;
}

//  Append one event as poled would (a note, or a grant every 7th), at a
//  time that moves on with the number; `n` makes the request id unique
//  (every 5th event has none, as the calendar's).
static int64_t
s_append_one (pole_store_t *store, int64_t n)
{
    char amount[32], id[32], at[32];
    snprintf (amount, sizeof amount, "%" PRId64, 1000 + n);
    snprintf (id, sizeof id, "req-%" PRId64, n);
    snprintf (at, sizeof at, "2010-%02d-%02dT%02d:%02d:00Z",
              (int) (n / 1000 % 12) + 1, (int) (n / 40 % 28) + 1,
              (int) (n % 24), (int) (n % 60));
    bool grant = n % 7 == 0;
    pole_field_t fields[] = {{grant ? "amount" : "text",
                              grant ? amount : "point d'étape \"n\""}};
    return pole_store_event_append (store, n % 13 + 1,
                                    grant ? "grant_study" : "note", fields, 1,
                                    "tester", at, "study_requested",
                                    grant ? "study_funded" : "study_requested",
                                    n % 5 == 0 ? NULL : id);
}

//  `count` events in transactions of `per_commit`, numbered from `from`
static void
s_append (pole_store_t *store, int64_t from, int64_t count, int per_commit)
{
    for (int64_t n = from; n < from + count;) {
        assert_int_equal (pole_store_begin (store), 0);
        for (int i = 0; i < per_commit && n < from + count; i++, n++)
            assert_true (s_append_one (store, n) > 0);
        assert_int_equal (pole_store_commit (store), 0);
    }
}

static void
s_exec (fixture_t *f, const char *sql)
{
    sqlite3 *db = (sqlite3 *) pole_store_handle (f->store);
    char *error = NULL;
    if (sqlite3_exec (db, sql, NULL, NULL, &error) != SQLITE_OK)
        fail_msg ("%s: %s", sql, error);
}

static int64_t
s_scalar (sqlite3 *db, const char *sql)
{
    sqlite3_stmt *stmt;
    assert_int_equal (sqlite3_prepare_v2 (db, sql, -1, &stmt, NULL), SQLITE_OK);
    assert_int_equal (sqlite3_step (stmt), SQLITE_ROW);
    int64_t value = sqlite3_column_int64 (stmt, 0);
    sqlite3_finalize (stmt);
    return value;
}

//  Verify and expect a problem of that kind at that event
static void
s_expect (fixture_t *f, pole_audit_problem_t problem, int64_t seq,
          const char *words)
{
    pole_audit_result_t result;
    assert_int_equal (pole_audit_verify (f->path, &result), 0);
    if (result.problem != problem || result.bad_seq != seq)
        fail_msg ("expected %s at %" PRId64 ", got %s at %" PRId64 ": %s",
                  pole_audit_problem_name (problem), seq,
                  pole_audit_problem_name (result.problem), result.bad_seq,
                  result.message);
    assert_false (result.ok);
    if (words && !strstr (result.message, words))
        fail_msg ("'%s' not in: %s", words, result.message);
}

//  The documented canonical form, spelled out here rather than taken from
//  store.h: a change to it must be a deliberate change to this test too
static void
s_expected_hash (sqlite3 *db, int64_t seq, char hex[65])
{
    sqlite3_stmt *stmt;
    assert_int_equal (
        sqlite3_prepare_v2 (
            db,
            "SELECT ifnull ((SELECT hash FROM events p WHERE p.seq < e.seq"
            " ORDER BY p.seq DESC LIMIT 1), '') || json_array (e.seq,"
            " e.dossier, e.event, e.fields, e.actor, e.at, e.from_state,"
            " e.to_state, e.request_id) FROM events e WHERE e.seq = ?1",
            -1, &stmt, NULL),
        SQLITE_OK);
    sqlite3_bind_int64 (stmt, 1, seq);
    assert_int_equal (sqlite3_step (stmt), SQLITE_ROW);
    unsigned char digest[crypto_hash_sha256_BYTES];
    crypto_hash_sha256 (digest, sqlite3_column_text (stmt, 0),
                        (unsigned long long) sqlite3_column_bytes (stmt, 0));
    sodium_bin2hex (hex, 65, digest, sizeof digest);
    sqlite3_finalize (stmt);
}

static void
test_chain_verifies (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    pole_audit_result_t result;
    //  An empty log verifies
    assert_int_equal (pole_audit_verify (f->path, &result), 0);
    assert_true (result.ok);
    assert_int_equal (result.events, 0);
    assert_int_equal (result.head_seq, 0);

    s_append (f->store, 1, 3000, 50);
    //  A request rolled back to its savepoint takes its link with it, a
    //  whole transaction rolled back too, and the log goes on after both
    assert_int_equal (pole_store_begin (f->store), 0);
    assert_true (s_append_one (f->store, 3001) > 0);
    assert_int_equal (pole_store_savepoint (f->store), 0);
    assert_true (s_append_one (f->store, 3002) > 0);
    pole_store_rollback_savepoint (f->store);
    assert_true (s_append_one (f->store, 3003) > 0);
    assert_int_equal (pole_store_commit (f->store), 0);
    assert_int_equal (pole_store_begin (f->store), 0);
    assert_true (s_append_one (f->store, 3004) > 0);
    pole_store_rollback (f->store);
    //  ... and an append outside a transaction moves the head with it
    assert_int_equal (s_append_one (f->store, 3005), 3003);

    assert_int_equal (pole_audit_verify (f->path, &result), 0);
    if (!result.ok)
        fail_msg ("%s", result.message);
    assert_int_equal (result.problem, POLE_AUDIT_OK);
    assert_int_equal (result.events, 3003);
    assert_int_equal (result.head_seq, 3003);
    assert_string_equal (result.message, "");

    //  The head as the store reports it (for polectl status)
    int64_t seq;
    char hash[65];
    assert_int_equal (pole_store_chain_head (f->store, &seq, hash), 0);
    assert_int_equal (seq, 3003);
    assert_string_equal (hash, result.head_hash);
    assert_true (pole_store_size_bytes (f->store) > 3003 * 100);

    //  The hashes are the documented form: lowercase hex SHA-256 of the
    //  previous hash then json_array of the row's columns but the hash
    sqlite3 *db = (sqlite3 *) pole_store_handle (f->store);
    assert_int_equal (s_scalar (db, "SELECT count(*) FROM events WHERE"
                                    " length (hash) = 64 AND hash NOT GLOB"
                                    " '*[^0-9a-f]*'"),
                      3003);
    int64_t samples[] = {1, 2, 1500, 3002, 3003};
    for (size_t i = 0; i < sizeof samples / sizeof samples[0]; i++) {
        char expected[65], query[80];
        s_expected_hash (db, samples[i], expected);
        snprintf (query, sizeof query, "SELECT hash FROM events WHERE seq = %"
                  PRId64, samples[i]);
        sqlite3_stmt *stmt;
        assert_int_equal (sqlite3_prepare_v2 (db, query, -1, &stmt, NULL),
                          SQLITE_OK);
        assert_int_equal (sqlite3_step (stmt), SQLITE_ROW);
        assert_string_equal ((const char *) sqlite3_column_text (stmt, 0),
                             expected);
        sqlite3_finalize (stmt);
    }
}

//  Known answers, computed outside SQLite (Python's json.dumps with
//  ensure_ascii=False and compact separators, then hashlib.sha256): they
//  pin the canonical form, so that an SQLite whose json_array wrote text
//  differently (and would make every old row fail) is caught here
static void
test_known_answers (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    pole_field_t grant[] = {{"amount", "20000"}};
    assert_int_equal (pole_store_event_append (f->store, 7, "grant_study",
                                               grant, 1, "cres",
                                               "2010-05-03T10:00:00Z", NULL,
                                               "study_funded", "req-1"),
                      1);
    pole_field_t note[] = {{"text", "Trégor-Goëlo \"cité\""}};
    assert_int_equal (pole_store_event_append (f->store, 7, "note", note, 1,
                                               "calendar",
                                               "2010-05-04T00:00:00Z",
                                               "study_funded", "study_funded",
                                               NULL),
                      2);
    //  [1,7,"grant_study","{\"amount\":\"20000\"}","cres",
    //   "2010-05-03T10:00:00Z",null,"study_funded","req-1"]
    int64_t seq;
    char hash[65];
    sqlite3 *db = (sqlite3 *) pole_store_handle (f->store);
    assert_int_equal (
        s_scalar (db, "SELECT hash = 'ef13a7cc9e45ec417d1246f494aa6cee4f46169"
                      "63c0eb7ef22c0e88b0de81531' FROM events WHERE seq = 1"),
        1);
    //  previous hash || [2,7,"note","{\"text\":\"Trégor-Goëlo
    //  \\\"cité\\\"\"}","calendar","2010-05-04T00:00:00Z",
    //  "study_funded","study_funded",null]
    assert_int_equal (pole_store_chain_head (f->store, &seq, hash), 0);
    assert_int_equal (seq, 2);
    assert_string_equal (hash, "3870e064313c7b164583f363001b1de171ae833fe4e7b0"
                               "f3eaa9de8d81420c41");
}

static void
test_altered_row (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    s_append (f->store, 1, 100, 10);
    //  Someone with sqlite3 and the file: the trigger out of the way, one
    //  grant's amount changed
    s_exec (f, "DROP TRIGGER events_no_update;"
               "UPDATE events SET fields = json_set (fields, '$.amount',"
               " '99999') WHERE seq = 42");
    s_expect (f, POLE_AUDIT_ALTERED, 42,
              "event 42 (dossier 4, grant_study, 2010-01-02T18:42:00Z) was"
              " altered after it was written: its content no longer matches"
              " its hash");
}

static void
test_altered_last_row (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    s_append (f->store, 1, 100, 10);
    s_exec (f, "DROP TRIGGER events_no_update;"
               "UPDATE events SET actor = 'region' WHERE seq = 100");
    s_expect (f, POLE_AUDIT_ALTERED, 100, "altered after it was written");
}

static void
test_deleted_rows (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    s_append (f->store, 1, 100, 10);
    s_exec (f, "DROP TRIGGER events_no_delete;"
               "DELETE FROM events WHERE seq = 50");
    s_expect (f, POLE_AUDIT_DELETED, 50,
              "event 50 was deleted from the log: it goes from event 49 to"
              " event 51");
    s_exec (f, "DELETE FROM events WHERE seq IN (51, 52)");
    s_expect (f, POLE_AUDIT_DELETED, 50, "events 50 to 52 were deleted");
    //  The first problem is the one reported
    s_exec (f, "DELETE FROM events WHERE seq = 1");
    s_expect (f, POLE_AUDIT_DELETED, 1,
              "event 1 was deleted from the log: it goes from the start of"
              " the log to event 2");
}

static void
test_inserted_rows (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    s_append (f->store, 1, 100, 10);
    //  A row added at the end with a made-up hash
    s_exec (f, "INSERT INTO events (dossier, event, fields, actor, at,"
               " to_state, hash) VALUES (3, 'grant_study',"
               " '{\"amount\":\"20000\"}', 'region', '2010-12-01T10:00:00Z',"
               " 'study_funded', '" "0123456789abcdef0123456789abcdef"
               "0123456789abcdef0123456789abcdef')");
    s_expect (f, POLE_AUDIT_INSERTED, 101,
              "event 101 (dossier 3, grant_study, 2010-12-01T10:00:00Z) was"
              " added behind poled's back");
    //  ... or with the last row's hash copied, or even a hash computed
    //  the right way: it is after the chain head all the same
    s_exec (f, "DROP TRIGGER events_no_delete;"
               "DELETE FROM events WHERE seq = 101;"
               "INSERT INTO events (seq, dossier, event, fields, actor, at,"
               " to_state, hash) SELECT 101, 3, 'note', '{}', 'x', at,"
               " to_state, hash FROM events WHERE seq = 100");
    s_expect (f, POLE_AUDIT_INSERTED, 101, "added behind poled's back");
    s_exec (f, "DELETE FROM events WHERE seq = 101;"
               "INSERT INTO events (seq, dossier, event, fields, actor, at,"
               " to_state, hash) SELECT 101, 3, 'note', '{}', 'x', at,"
               " to_state, pole_sha256 (hash || json_array (101, 3, 'note',"
               " '{}', 'x', at, NULL, to_state, NULL)) FROM events"
               " WHERE seq = 100");
    s_expect (f, POLE_AUDIT_INSERTED, 101, "the log's chain ends at event 100");

    //  In the middle: a row slipped in between two rows that chain on
    //  each other (event 51, rewritten to chain on 49 once 50 was taken
    //  out, and a forged 50 put in its place)
    s_exec (f, "DELETE FROM events WHERE seq = 101;"
               "DROP TRIGGER events_no_update;"
               "DELETE FROM events WHERE seq = 50;"
               "UPDATE events SET hash = (SELECT pole_sha256 (p.hash ||"
               " json_array (e.seq, e.dossier, e.event, e.fields, e.actor,"
               " e.at, e.from_state, e.to_state, e.request_id)) FROM events p,"
               " events e WHERE p.seq = 49 AND e.seq = 51) WHERE seq = 51;"
               "INSERT INTO events (seq, dossier, event, fields, actor, at,"
               " to_state, hash) VALUES (50, 3, 'grant_study',"
               " '{\"amount\":\"20000\"}', 'region', '2010-12-01T10:00:00Z',"
               " 'study_funded', '" "0123456789abcdef0123456789abcdef"
               "0123456789abcdef0123456789abcdef')");
    s_expect (f, POLE_AUDIT_INSERTED, 50,
              "event 50 (dossier 3, grant_study, 2010-12-01T10:00:00Z) was"
              " inserted behind poled's back: it does not chain on event 49,"
              " and the event after it does");
}

static void
test_truncated_log (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    s_append (f->store, 1, 100, 10);
    s_exec (f, "DROP TRIGGER events_no_delete;"
               "DELETE FROM events WHERE seq = 100");
    s_expect (f, POLE_AUDIT_TRUNCATED, 100,
              "event 100 was deleted from the end of the log: the chain head"
              " records event 100 as the last, the log ends at event 99");
    s_exec (f, "DELETE FROM events WHERE seq >= 98");
    s_expect (f, POLE_AUDIT_TRUNCATED, 98, "events 98 to 100 were deleted");
    s_exec (f, "DELETE FROM events");
    s_expect (f, POLE_AUDIT_TRUNCATED, 1, "events 1 to 100 were deleted");
}

//  Rows cut at the end while poled is stopped, then poled appends again:
//  the new events take numbers never used (as AUTOINCREMENT would), so the
//  cut shows as a gap although the head moved on
static void
test_truncated_then_appended (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    s_append (f->store, 1, 100, 10);
    s_exec (f, "DROP TRIGGER events_no_delete;"
               "DELETE FROM events WHERE seq >= 99");
    pole_store_destroy (&f->store);
    char error[512];
    f->store = pole_store_new (f->path, error, sizeof error);
    assert_non_null (f->store);
    s_append (f->store, 101, 1, 1);
    sqlite3 *db = (sqlite3 *) pole_store_handle (f->store);
    assert_int_equal (s_scalar (db, "SELECT max (seq) FROM events"), 101);
    s_expect (f, POLE_AUDIT_DELETED, 99, "events 99 to 100 were deleted");
}

static void
test_verify_errors (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    pole_audit_result_t result;
    char path[400];
    snprintf (path, sizeof path, "%s/none.db", f->dir);
    assert_int_equal (pole_audit_verify (path, &result), -1);
    assert_false (result.ok);
    assert_non_null (strstr (result.message, "cannot open"));
    //  A database that is not pole's (or not yet migrated)
    snprintf (path, sizeof path, "%s/other.db", f->dir);
    sqlite3 *db;
    assert_int_equal (sqlite3_open (path, &db), SQLITE_OK);
    assert_int_equal (sqlite3_exec (db, "CREATE TABLE t (x)", NULL, NULL, NULL),
                      SQLITE_OK);
    sqlite3_close (db);
    assert_int_equal (pole_audit_verify (path, &result), -1);
    assert_non_null (strstr (result.message, "has no hash chain"));
}


//  --------------------------------------------------------------------------
//  Backup under load

typedef struct {
    pole_store_t *store;
    atomic_bool stop;
    atomic_int_fast64_t committed;      //  last seq committed
    atomic_int commits;
    int failures;
} writer_t;

//  Keeps appending, a few events a transaction, as poled's batches do,
//  until told to stop
static void *
s_writer (void *args)
{
    writer_t *w = (writer_t *) args;
    for (int64_t n = 100000; !atomic_load (&w->stop);) {
        int64_t last = 0;
        if (pole_store_begin (w->store)) {
            w->failures++;
            continue;
        }
        for (int i = 0; i < 5; i++)
            last = s_append_one (w->store, n++);
        if (last < 0 || pole_store_commit (w->store)) {
            pole_store_rollback (w->store);
            w->failures++;
            continue;
        }
        atomic_store (&w->committed, last);
        atomic_fetch_add (&w->commits, 1);
    }
    return NULL;
}

static void
test_backup_under_load (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    //  Enough to make the copy take a while: some 60,000 events
    s_append (f->store, 1, 60000, 5000);
    writer_t writer = {.store = f->store};
    atomic_init (&writer.stop, false);
    atomic_init (&writer.committed, 0);
    atomic_init (&writer.commits, 0);
    pthread_t thread;
    assert_int_equal (pthread_create (&thread, NULL, s_writer, &writer), 0);
    while (atomic_load (&writer.commits) < 20)
        usleep (1000);

    char target[400];
    snprintf (target, sizeof target, "%s/backup.db", f->dir);
    int64_t before = atomic_load (&writer.committed);
    int commits_before = atomic_load (&writer.commits);
    pole_audit_backup_t backup;
    int rc = pole_audit_backup (f->path, target, &backup);
    int commits_during = atomic_load (&writer.commits) - commits_before;
    //  The live log verifies too while it grows
    pole_audit_result_t live;
    assert_int_equal (pole_audit_verify (f->path, &live), 0);
    atomic_store (&writer.stop, true);
    pthread_join (thread, NULL);
    if (rc)
        fail_msg ("backup: %s", backup.error);
    assert_true (live.ok);
    assert_int_equal (writer.failures, 0);
    print_message ("      backup: %" PRId64 " pages, %" PRId64 " bytes, %"
                   PRId64 " events in %" PRId64 " ms, %d restart(s), %d"
                   " commits by the writer meanwhile\n",
                   backup.pages, backup.bytes, backup.events, backup.ms,
                   backup.restarts, commits_during);
    assert_int_equal (backup.restarts, 0);
    assert_true (commits_during > 0);
    assert_string_equal (backup.error, "");
    assert_true (backup.bytes > 0);
    //  Everything committed before the call, contiguous, and the head is
    //  the last row
    assert_true (backup.head_seq >= before);
    assert_int_equal (backup.events, backup.head_seq);
    char temporary[420];
    snprintf (temporary, sizeof temporary, "%s.tmp", target);
    assert_int_not_equal (access (temporary, F_OK), 0);

    sqlite3 *db;
    assert_int_equal (sqlite3_open_v2 (target, &db, SQLITE_OPEN_READONLY, NULL),
                      SQLITE_OK);
    sqlite3_stmt *stmt;
    assert_int_equal (sqlite3_prepare_v2 (db, "PRAGMA integrity_check", -1,
                                          &stmt, NULL),
                      SQLITE_OK);
    assert_int_equal (sqlite3_step (stmt), SQLITE_ROW);
    assert_string_equal ((const char *) sqlite3_column_text (stmt, 0), "ok");
    sqlite3_finalize (stmt);
    assert_int_equal (s_scalar (db, "SELECT count(*) FROM events"),
                      backup.events);
    assert_int_equal (s_scalar (db, "SELECT max (seq) FROM events"),
                      backup.head_seq);
    sqlite3_close (db);
    pole_audit_result_t copy;
    assert_int_equal (pole_audit_verify (target, &copy), 0);
    if (!copy.ok)
        fail_msg ("the copy: %s", copy.message);
    assert_int_equal (copy.head_seq, backup.head_seq);
    assert_string_equal (copy.head_hash, backup.head_hash);

    //  Restored, the copy is a database poled opens and appends to
    char error[512];
    pole_store_t *restored = pole_store_new (target, error, sizeof error);
    assert_non_null (restored);
    s_append (restored, 900000, 3, 3);
    pole_store_destroy (&restored);
    assert_int_equal (pole_audit_verify (target, &copy), 0);
    assert_true (copy.ok);
    assert_int_equal (copy.events, backup.events + 3);
}

static void
test_backup_refusals (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    s_append (f->store, 1, 10, 10);
    pole_audit_backup_t backup;
    char target[400];

    //  A file of that name exists: untouched
    snprintf (target, sizeof target, "%s/exists.db", f->dir);
    FILE *file = fopen (target, "w");
    assert_non_null (file);
    fputs ("precious", file);
    fclose (file);
    assert_int_equal (pole_audit_backup (f->path, target, &backup), -1);
    assert_non_null (strstr (backup.error, "exists"));
    assert_non_null (strstr (backup.error, "never replaces"));
    file = fopen (target, "r");
    char text[16] = "";
    assert_non_null (fgets (text, sizeof text, file));
    fclose (file);
    assert_string_equal (text, "precious");

    //  A directory that does not exist
    snprintf (target, sizeof target, "%s/no/such/dir/b.db", f->dir);
    assert_int_equal (pole_audit_backup (f->path, target, &backup), -1);
    char expected[400];
    snprintf (expected, sizeof expected, "the directory %s/no/such/dir does"
              " not exist", f->dir);
    if (!strstr (backup.error, expected))
        fail_msg ("'%s' not in: %s", expected, backup.error);

    //  A temporary copy left by an interrupted backup is not overwritten
    snprintf (target, sizeof target, "%s/left.db", f->dir);
    char temporary[420];
    snprintf (temporary, sizeof temporary, "%s.tmp", target);
    file = fopen (temporary, "w");
    assert_non_null (file);
    fclose (file);
    assert_int_equal (pole_audit_backup (f->path, target, &backup), -1);
    assert_non_null (strstr (backup.error, "interrupted"));
    assert_int_not_equal (access (target, F_OK), 0);

    //  No such database: nothing is left behind
    char none[400];
    snprintf (none, sizeof none, "%s/none.db", f->dir);
    snprintf (target, sizeof target, "%s/b.db", f->dir);
    assert_int_equal (pole_audit_backup (none, target, &backup), -1);
    assert_non_null (strstr (backup.error, "none.db"));
    assert_int_not_equal (access (target, F_OK), 0);
    snprintf (temporary, sizeof temporary, "%s.tmp", target);
    assert_int_not_equal (access (temporary, F_OK), 0);

    //  And the first backup of a name works
    assert_int_equal (pole_audit_backup (f->path, target, &backup), 0);
    assert_int_equal (backup.events, 10);
}

int
main (void)
{
    zsys_init ();
    zsys_set_logstream (NULL);
    assert_true (sodium_init () >= 0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown (test_chain_verifies, s_setup,
                                         s_teardown),
        cmocka_unit_test_setup_teardown (test_known_answers, s_setup,
                                         s_teardown),
        cmocka_unit_test_setup_teardown (test_altered_row, s_setup,
                                         s_teardown),
        cmocka_unit_test_setup_teardown (test_altered_last_row, s_setup,
                                         s_teardown),
        cmocka_unit_test_setup_teardown (test_deleted_rows, s_setup,
                                         s_teardown),
        cmocka_unit_test_setup_teardown (test_inserted_rows, s_setup,
                                         s_teardown),
        cmocka_unit_test_setup_teardown (test_truncated_log, s_setup,
                                         s_teardown),
        cmocka_unit_test_setup_teardown (test_truncated_then_appended,
                                         s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_verify_errors, s_setup,
                                         s_teardown),
        cmocka_unit_test_setup_teardown (test_backup_under_load, s_setup,
                                         s_teardown),
        cmocka_unit_test_setup_teardown (test_backup_refusals, s_setup,
                                         s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
