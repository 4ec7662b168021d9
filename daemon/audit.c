/*  =========================================================================
    pole_audit - the hash chain verified, and the online backup

    Verification walks `events` in seq order through one SELECT, hashing in
    C as rows arrive: the canonical text comes from SQLite's json_array (the
    same expression the INSERT used, POLE_STORE_EVENT_CANONICAL), the hash
    from libsodium. Only the row at hand and, when it fails, the one after
    it are looked at, so the walk's memory is SQLite's page cache whatever
    the size of the log.

    Telling an edit from a deletion or an insertion needs the neighbours:
    a row whose content no longer matches its hash is
      - altered when the next row still chains on the stored hash (the
        content changed, the hash was left as written);
      - inserted when the next row chains on the row before it (the row
        was slipped in between two rows that were linked);
    a gap in seq is a deletion, a row after the chain head an insertion,
    and a head beyond the last row (or naming another hash) a truncation.
    When an edit recomputed the row's own hash, the first row that fails is
    the next one, reported as altered: the chain locates a tampering to
    within a row, it cannot tell which of two neighbours was rewritten.

    The backup holds a read transaction on its source connection for the
    whole copy. sqlite3_backup_step uses the transaction it finds open
    instead of opening (and closing) one per step, so every step reads the
    same WAL snapshot: writes committed meanwhile by poled's connection
    neither reach the copy nor restart it, and poled is never blocked (a
    WAL reader does not block the writer; it only keeps the checkpoint
    from passing its snapshot until the copy ends, so the -wal grows by
    what poled writes meanwhile). Without that transaction, each step
    would see poled's last commit and SQLite would start the copy again
    from page 1, possibly for ever under steady load.
    =========================================================================
*/

#include "audit.h"
#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <sqlite3.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

//  Pages copied per backup step: small enough that the destination's
//  writes come in short runs, large enough that the per-step cost is
//  nothing (a 4 KiB page: 1 MiB a step)
#define S_BACKUP_PAGES 256
//  A step that meets a lock (SQLITE_BUSY/LOCKED: poled's connection
//  running a WAL recovery or a checkpoint in truncate mode) is retried
//  after a short sleep, for at most this long in all
#define S_BACKUP_BUSY_MS 30000

const char *
pole_audit_problem_name (pole_audit_problem_t problem)
{
    switch (problem) {
    case POLE_AUDIT_OK: return "ok";
    case POLE_AUDIT_ALTERED: return "altered";
    case POLE_AUDIT_DELETED: return "deleted";
    case POLE_AUDIT_INSERTED: return "inserted";
    case POLE_AUDIT_TRUNCATED: return "truncated";
    }
    return "unknown";
}

//  Open a connection of our own. The busy timeout covers poled holding a
//  lock for a moment (a checkpoint, a WAL recovery at its start).
static sqlite3 *
s_open (const char *path, int flags, char *error, size_t error_size)
{
    sqlite3 *db = NULL;
    int rc = sqlite3_open_v2 (path, &db, flags | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        snprintf (error, error_size, "cannot open %s: %s", path,
                  db ? sqlite3_errmsg (db) : sqlite3_errstr (rc));
        sqlite3_close (db);
        return NULL;
    }
    sqlite3_busy_timeout (db, 5000);
    sqlite3_extended_result_codes (db, 1);
    return db;
}


//  --------------------------------------------------------------------------
//  Verification

//  The columns of the walk, by position
enum { C_SEQ, C_HASH, C_CANONICAL, C_DOSSIER, C_EVENT, C_AT };

static const char *s_walk_sql
    = "SELECT seq, hash, " POLE_STORE_EVENT_CANONICAL ", dossier, event, at"
      " FROM events ORDER BY seq";

//  What is kept of a row once the cursor has moved on: enough to name it
typedef struct {
    int64_t seq;
    bool has_hash;
    char hash[65];
    int64_t dossier;
    char event[64];
    char at[40];
} s_row_t;

static void
s_text (sqlite3_stmt *stmt, int column, char *dest, size_t size)
{
    const unsigned char *text = sqlite3_column_text (stmt, column);
    snprintf (dest, size, "%s", text ? (const char *) text : "");
}

static void
s_row_read (sqlite3_stmt *stmt, s_row_t *row)
{
    row->seq = sqlite3_column_int64 (stmt, C_SEQ);
    row->has_hash = sqlite3_column_type (stmt, C_HASH) == SQLITE_TEXT;
    s_text (stmt, C_HASH, row->hash, sizeof row->hash);
    row->dossier = sqlite3_column_int64 (stmt, C_DOSSIER);
    s_text (stmt, C_EVENT, row->event, sizeof row->event);
    s_text (stmt, C_AT, row->at, sizeof row->at);
}

//  Does the row under the cursor hash to `hash` when chained on
//  `previous`? (Reads its canonical text before the cursor moves.)
static bool
s_chains_on (sqlite3_stmt *stmt, const char *previous, const char *hash)
{
    const unsigned char *canonical = sqlite3_column_text (stmt, C_CANONICAL);
    if (!canonical || !hash || !*hash)
        return false;
    char computed[65];
    pole_store_chain_hash (previous, canonical,
                           (size_t) sqlite3_column_bytes (stmt, C_CANONICAL),
                           computed);
    return streq (computed, hash);
}

//  "event 42 (dossier 7, grant_study, 2010-05-03T10:00:00Z)"
static void
s_describe (const s_row_t *row, char *dest, size_t size)
{
    snprintf (dest, size, "event %" PRId64 " (dossier %" PRId64 ", %s, %s)",
              row->seq, row->dossier, row->event, row->at);
}

static void
s_problem (pole_audit_result_t *result, pole_audit_problem_t problem,
           int64_t seq, const char *format, ...) CHECK_PRINTF (4);

static void
s_problem (pole_audit_result_t *result, pole_audit_problem_t problem,
           int64_t seq, const char *format, ...)
{
    result->ok = false;
    result->problem = problem;
    result->bad_seq = seq;
    va_list args;
    va_start (args, format);
    vsnprintf (result->message, sizeof result->message, format, args);
    va_end (args);
}

//  "event 9" or "events 9 to 12"
static void
s_span (int64_t first, int64_t last, char *dest, size_t size)
{
    if (first == last)
        snprintf (dest, size, "event %" PRId64, first);
    else
        snprintf (dest, size, "events %" PRId64 " to %" PRId64, first, last);
}

//  The row before a problem: "event 8", or the start of the log
static void
s_previous (int64_t seq, char *dest, size_t size)
{
    if (seq > 0)
        snprintf (dest, size, "event %" PRId64, seq);
    else
        snprintf (dest, size, "the start of the log");
}

//  The walk itself, inside the read transaction. 0 walked (a problem or
//  none), -1 an SQLite error.
static int
s_walk (sqlite3 *db, pole_audit_result_t *result, bool head_known)
{
    sqlite3_stmt *walk;
    if (sqlite3_prepare_v2 (db, s_walk_sql, -1, &walk, NULL) != SQLITE_OK)
        return -1;
    char previous[65] = "";     //  the stored hash of the row before
    int64_t previous_seq = 0;
    char name[160], span[64], before[64];
    s_row_t row;
    int rc = sqlite3_step (walk);
    while (rc == SQLITE_ROW) {
        s_row_read (walk, &row);
        s_describe (&row, name, sizeof name);
        int64_t expected = previous_seq + 1;
        if (row.seq != expected) {
            if (head_known && expected > result->head_seq)
                s_problem (result, POLE_AUDIT_INSERTED, row.seq,
                           "%s was added behind poled's back: the log's chain"
                           " ends at event %" PRId64,
                           name, result->head_seq);
            else {
                s_span (expected, row.seq - 1, span, sizeof span);
                s_previous (previous_seq, before, sizeof before);
                s_problem (result, POLE_AUDIT_DELETED, expected,
                           "%s %s deleted from the log: it goes from %s to"
                           " event %" PRId64,
                           span, expected == row.seq - 1 ? "was" : "were",
                           before, row.seq);
            }
            break;
        }
        if (head_known && row.seq > result->head_seq) {
            s_problem (result, POLE_AUDIT_INSERTED, row.seq,
                       "%s was added behind poled's back: the log's chain"
                       " ends at event %" PRId64,
                       name, result->head_seq);
            break;
        }
        if (row.has_hash && s_chains_on (walk, previous, row.hash)) {
            memcpy (previous, row.hash, sizeof previous);
            previous_seq = row.seq;
            result->events++;
            rc = sqlite3_step (walk);
            continue;
        }
        //  The row fails: its neighbour after it tells how
        rc = sqlite3_step (walk);
        if (rc == SQLITE_ROW) {
            bool on_row = row.has_hash && s_chains_on (walk, row.hash,
                                                       (const char *)
                                                       sqlite3_column_text (
                                                           walk, C_HASH));
            bool on_previous = s_chains_on (
                walk, previous,
                (const char *) sqlite3_column_text (walk, C_HASH));
            if (on_row)
                s_problem (result, POLE_AUDIT_ALTERED, row.seq,
                           "%s was altered after it was written: its content"
                           " no longer matches its hash",
                           name);
            else if (on_previous) {
                s_previous (previous_seq, before, sizeof before);
                s_problem (result, POLE_AUDIT_INSERTED, row.seq,
                           "%s was inserted behind poled's back: it does not"
                           " chain on %s, and the event after it does",
                           name, before);
            }
            else
                s_problem (result, POLE_AUDIT_ALTERED, row.seq,
                           "%s was altered or replaced after it was written:"
                           " neither its content nor its hash fits the chain",
                           name);
        }
        else if (rc == SQLITE_DONE) {
            if (head_known && result->head_seq == row.seq
                && streq (result->head_hash, row.hash))
                s_problem (result, POLE_AUDIT_ALTERED, row.seq,
                           "%s was altered after it was written: its content"
                           " no longer matches its hash",
                           name);
            else
                s_problem (result, POLE_AUDIT_ALTERED, row.seq,
                           "%s was altered or replaced after it was written:"
                           " neither its content nor its hash fits the chain",
                           name);
        }
        break;
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        sqlite3_finalize (walk);
        return -1;
    }
    sqlite3_finalize (walk);
    if (result->problem != POLE_AUDIT_OK)
        return 0;

    //  Every row chains: the end of the log must be the recorded head
    if (!head_known) {
        if (previous_seq > 0)
            s_problem (result, POLE_AUDIT_TRUNCATED, previous_seq,
                       "the chain head (the record of the log's last event)"
                       " was deleted: the end of the log cannot be checked");
    }
    else if (previous_seq < result->head_seq) {
        s_span (previous_seq + 1, result->head_seq, span, sizeof span);
        s_previous (previous_seq, before, sizeof before);
        s_problem (result, POLE_AUDIT_TRUNCATED, previous_seq + 1,
                   "%s %s deleted from the end of the log: the chain head"
                   " records event %" PRId64 " as the last, the log ends at"
                   " %s",
                   span,
                   previous_seq + 1 == result->head_seq ? "was" : "were",
                   result->head_seq, before);
    }
    else if (!streq (previous, result->head_hash))
        s_problem (result, POLE_AUDIT_TRUNCATED, previous_seq,
                   "the last event, %" PRId64 ", is not the one the chain"
                   " head records: the end of the log was deleted and"
                   " written again",
                   previous_seq);
    return 0;
}

int
pole_audit_verify (const char *database, pole_audit_result_t *result)
{
    assert (database);
    assert (result);
    memset (result, 0, sizeof *result);
    int64_t started = zclock_mono ();
    int rc = -1;
    sqlite3_stmt *stmt = NULL;
    sqlite3 *db = s_open (database, SQLITE_OPEN_READONLY, result->message,
                          sizeof result->message);
    if (!db || sodium_init () < 0)
        goto done;
    //  One read transaction: the head and the rows of the same snapshot,
    //  while poled goes on appending
    if (sqlite3_exec (db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK
        || sqlite3_prepare_v2 (db,
                               "SELECT (SELECT count(*) FROM sqlite_master"
                               " WHERE type = 'table' AND name = 'chain'),"
                               " (SELECT count(*) FROM sqlite_master"
                               " WHERE type = 'table' AND name = 'events'),"
                               " (SELECT user_version FROM pragma_user_version)",
                               -1, &stmt, NULL)
               != SQLITE_OK
        || sqlite3_step (stmt) != SQLITE_ROW)
        goto sqlfail;
    if (sqlite3_column_int (stmt, 0) == 0 || sqlite3_column_int (stmt, 1) == 0) {
        snprintf (result->message, sizeof result->message,
                  "%s has no hash chain (schema version %d): it is not a"
                  " pole database, or poled has not opened it since it was"
                  " upgraded (poled migrates it at start)",
                  database, sqlite3_column_int (stmt, 2));
        goto done;
    }
    sqlite3_finalize (stmt);
    if (sqlite3_prepare_v2 (db, "SELECT seq, hash FROM chain WHERE id = 1", -1,
                            &stmt, NULL)
        != SQLITE_OK)
        goto sqlfail;
    int step = sqlite3_step (stmt);
    if (step != SQLITE_ROW && step != SQLITE_DONE)
        goto sqlfail;
    bool head_known = step == SQLITE_ROW;
    if (head_known) {
        result->head_seq = sqlite3_column_int64 (stmt, 0);
        s_text (stmt, 1, result->head_hash, sizeof result->head_hash);
    }
    sqlite3_finalize (stmt);
    stmt = NULL;
    result->ok = true;
    if (s_walk (db, result, head_known))
        goto sqlfail;
    rc = 0;
    goto done;
sqlfail:
    result->ok = false;
    snprintf (result->message, sizeof result->message, "reading %s: %s",
              database, sqlite3_errmsg (db));
done:
    sqlite3_finalize (stmt);
    if (db) {
        sqlite3_exec (db, "COMMIT", NULL, NULL, NULL);
        sqlite3_close (db);
    }
    if (rc)
        result->ok = false;
    result->ms = zclock_mono () - started;
    return rc;
}


//  --------------------------------------------------------------------------
//  Backup

//  fsync a file or a directory by its path. 0 or -1 (errno set).
static int
s_sync_path (const char *path, bool directory)
{
    int fd = open (path, (directory ? O_RDONLY | O_DIRECTORY : O_RDWR)
                             | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fsync (fd);
    int saved = errno;
    close (fd);
    errno = saved;
    return rc;
}

//  The directory part of a path, for syncing the rename and for messages.
//  The string is the caller's.
static char *
s_directory (const char *path)
{
    const char *slash = strrchr (path, '/');
    if (!slash)
        return strdup (".");
    if (slash == path)
        return strdup ("/");
    return zsys_sprintf ("%.*s", (int) (slash - path), path);
}

//  Remove the temporary copy and what SQLite may have left beside it
static void
s_remove_partial (const char *temporary)
{
    static const char *suffixes[] = {"", "-journal", "-wal", "-shm"};
    for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
        char *path = zsys_sprintf ("%s%s", temporary, suffixes[i]);
        if (path)
            unlink (path);
        zstr_free (&path);
    }
}

//  The copy checked and described (events, chain head), then made a
//  self-contained file. 0 or -1 with result->error.
static int
s_query_copy (sqlite3 *db, pole_audit_backup_t *result)
{
    sqlite3_stmt *stmt = NULL;
    int rc = -1;
    //  The copy is whole before it is named: quick_check reads every page
    if (sqlite3_prepare_v2 (db, "PRAGMA quick_check", -1, &stmt, NULL)
            != SQLITE_OK
        || sqlite3_step (stmt) != SQLITE_ROW)
        goto done;
    const char *check = (const char *) sqlite3_column_text (stmt, 0);
    if (!check || !streq (check, "ok")) {
        snprintf (result->error, sizeof result->error,
                  "the copy fails its quick_check: %s",
                  check ? check : "no answer");
        goto done;
    }
    sqlite3_finalize (stmt);
    if (sqlite3_prepare_v2 (db,
                            "SELECT (SELECT count(*) FROM events),"
                            " (SELECT seq FROM chain WHERE id = 1),"
                            " (SELECT hash FROM chain WHERE id = 1)",
                            -1, &stmt, NULL)
            != SQLITE_OK
        || sqlite3_step (stmt) != SQLITE_ROW)
        goto done;
    result->events = sqlite3_column_int64 (stmt, 0);
    result->head_seq = sqlite3_column_int64 (stmt, 1);
    s_text (stmt, 2, result->head_hash, sizeof result->head_hash);
    sqlite3_finalize (stmt);
    stmt = NULL;
    //  A backup is one file: the copy leaves WAL mode (poled puts it back
    //  when it opens the file), so that no -wal is needed beside it
    if (sqlite3_exec (db, "PRAGMA journal_mode = DELETE", NULL, NULL, NULL)
        == SQLITE_OK)
        rc = 0;
done:
    if (rc && !*result->error)
        snprintf (result->error, sizeof result->error,
                  "checking the copy: %s", sqlite3_errmsg (db));
    sqlite3_finalize (stmt);
    return rc;
}

//  The copy proper, from a snapshot of `source` into the empty file
//  `temporary`. 0 or -1 with result->error.
static int
s_copy (sqlite3 *source, const char *temporary, pole_audit_backup_t *result)
{
    sqlite3 *dest = s_open (temporary, SQLITE_OPEN_READWRITE, result->error,
                            sizeof result->error);
    if (!dest)
        return -1;
    int rc = -1;
    sqlite3_backup *backup = NULL;
    //  No journal while the copy is written: until it is renamed, the
    //  file is nothing; it is synced once, at the end
    if (sqlite3_exec (dest, "PRAGMA journal_mode = OFF; PRAGMA synchronous"
                            " = OFF",
                      NULL, NULL, NULL)
        != SQLITE_OK)
        goto fail;
    backup = sqlite3_backup_init (dest, "main", source, "main");
    if (!backup)
        goto fail;
    int waited = 0;
    int remaining = -1;
    int step;
    while (true) {
        step = sqlite3_backup_step (backup, S_BACKUP_PAGES);
        //  The copy starts again from page 1 when the source changed under
        //  it: with our snapshot held it does not, and this counts if it
        //  ever did
        int now = sqlite3_backup_remaining (backup);
        if (remaining >= 0 && now > remaining)
            result->restarts++;
        remaining = now;
        if (step == SQLITE_DONE)
            break;
        if (step == SQLITE_OK)
            continue;
        int primary = step & 0xff;
        if ((primary == SQLITE_BUSY || primary == SQLITE_LOCKED)
            && waited < S_BACKUP_BUSY_MS) {
            sqlite3_sleep (10);
            waited += 10;
            continue;
        }
        break;
    }
    result->pages = sqlite3_backup_pagecount (backup);
    int finish = sqlite3_backup_finish (backup);
    if (step != SQLITE_DONE || finish != SQLITE_OK) {
        snprintf (result->error, sizeof result->error,
                  "the copy stopped after %d pages: %s",
                  (int) result->pages - remaining,
                  step != SQLITE_DONE ? sqlite3_errstr (step)
                                      : sqlite3_errmsg (dest));
        goto done;
    }
    rc = s_query_copy (dest, result);
    goto done;
fail:
    snprintf (result->error, sizeof result->error, "writing %s: %s",
              temporary, sqlite3_errmsg (dest));
done:
    if (sqlite3_close (dest) != SQLITE_OK && rc == 0) {
        snprintf (result->error, sizeof result->error, "closing %s: %s",
                  temporary, sqlite3_errmsg (dest));
        rc = -1;
    }
    return rc;
}

int
pole_audit_backup (const char *database, const char *target,
                   pole_audit_backup_t *result)
{
    assert (database);
    assert (target);
    assert (result);
    memset (result, 0, sizeof *result);
    int64_t started = zclock_mono ();
    char *temporary = zsys_sprintf ("%s.tmp", target);
    char *directory = s_directory (target);
    struct stat info;
    sqlite3 *source = NULL;
    bool created = false;
    int rc = -1;
    assert (temporary && directory);
    if (lstat (target, &info) == 0) {
        snprintf (result->error, sizeof result->error,
                  "%s exists: a backup never replaces a file, choose"
                  " another name",
                  target);
        goto done;
    }
    if (stat (database, &info) != 0) {
        snprintf (result->error, sizeof result->error, "cannot read %s: %s",
                  database, strerror (errno));
        goto done;
    }
    //  Claim the temporary name: two backups to the same target must not
    //  write one file (the copy gets the database's permissions)
    int fd = open (temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
                   info.st_mode & 0666);
    if (fd < 0) {
        if (errno == ENOENT)
            snprintf (result->error, sizeof result->error,
                      "cannot write the backup %s: the directory %s does not"
                      " exist",
                      target, directory);
        else if (errno == EEXIST)
            snprintf (result->error, sizeof result->error,
                      "%s exists: another backup to %s is running, or one"
                      " was interrupted (then remove it)",
                      temporary, target);
        else
            snprintf (result->error, sizeof result->error,
                      "cannot write the backup %s: %s", temporary,
                      strerror (errno));
        goto done;
    }
    close (fd);
    created = true;

    source = s_open (database, SQLITE_OPEN_READONLY, result->error,
                     sizeof result->error);
    if (!source)
        goto done;
    //  The snapshot: a read transaction, started by a read, held until the
    //  copy is done (see the top of this file)
    if (sqlite3_exec (source, "BEGIN; SELECT count(*) FROM sqlite_master;",
                      NULL, NULL, NULL)
        != SQLITE_OK) {
        snprintf (result->error, sizeof result->error, "reading %s: %s",
                  database, sqlite3_errmsg (source));
        goto done;
    }
    if (s_copy (source, temporary, result))
        goto done;
    sqlite3_exec (source, "COMMIT", NULL, NULL, NULL);
    sqlite3_close (source);
    source = NULL;

    //  On the disk, then named; the name on the disk too. link() refuses
    //  a target that appeared meanwhile, where rename() would replace it.
    if (s_sync_path (temporary, false)) {
        snprintf (result->error, sizeof result->error, "syncing %s: %s",
                  temporary, strerror (errno));
        goto done;
    }
    if (link (temporary, target) == 0)
        unlink (temporary);
    else if (errno == EEXIST) {
        snprintf (result->error, sizeof result->error,
                  "%s appeared while the backup was written: it is left as"
                  " it is",
                  target);
        goto done;
    }
    else if (lstat (target, &info) == 0) {
        snprintf (result->error, sizeof result->error,
                  "%s appeared while the backup was written: it is left as"
                  " it is",
                  target);
        goto done;
    }
    else if (rename (temporary, target)) {
        //  link() failed otherwise (a file system without hard links):
        //  rename, having looked again
        snprintf (result->error, sizeof result->error,
                  "cannot name the backup %s: %s", target, strerror (errno));
        goto done;
    }
    created = false;
    s_sync_path (directory, true);
    if (stat (target, &info) == 0)
        result->bytes = (int64_t) info.st_size;
    rc = 0;
done:
    if (source) {
        sqlite3_exec (source, "COMMIT", NULL, NULL, NULL);
        sqlite3_close (source);
    }
    if (created)
        s_remove_partial (temporary);
    zstr_free (&temporary);
    zstr_free (&directory);
    result->ms = zclock_mono () - started;
    return rc;
}
