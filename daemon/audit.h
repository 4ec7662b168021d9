/*  =========================================================================
    pole_audit - the checks an administrator runs on a live database: the
    hash chain of the event log verified, and an online backup

    Both work on a connection of their own, opened on the file's path, so
    that poled can run them in a background thread while its own
    connection keeps serving: they hold one read transaction (a WAL
    snapshot), which never blocks poled's writes. They keep no state
    between calls and are safe to call from any thread, several at once.
    libsodium must have been initialised (sodium_init()) by the programme.

    What the chain proves, and what it does not: every row's hash covers
    the row and the hash before it, and the chain head (the last seq and
    its hash) is written with the rows; an edit, a deletion or an insertion
    made behind poled's back with SQL is found. The chain has no secret:
    someone who can write the file and knows this scheme can recompute
    every hash after an edit. Comparing the head with one noted elsewhere
    (polectl status, a backup) is what detects that.
    =========================================================================
*/
#ifndef POLE_AUDIT_H_INCLUDED
#define POLE_AUDIT_H_INCLUDED

#include <stdbool.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/*  The first problem found on the chain, in seq order.                    */
typedef enum {
    POLE_AUDIT_OK = 0,
    /*  a row's content no longer matches its hash, and the row after it
        still chains on the stored hash: the row was edited               */
    POLE_AUDIT_ALTERED,
    /*  a gap in seq: rows were removed from the middle of the log         */
    POLE_AUDIT_DELETED,
    /*  a row that does not chain on the one before it while the row after
        it does, or a row after the chain head: it was added               */
    POLE_AUDIT_INSERTED,
    /*  the chain head names a seq or a hash that is not the last row's:
        rows were removed from the end of the log                          */
    POLE_AUDIT_TRUNCATED
} pole_audit_problem_t;

typedef struct {
    bool ok;                    /* the whole chain verifies                */
    int64_t events;             /* rows verified before the problem (all)  */
    int64_t head_seq;           /* the chain head as the database records  */
    char head_hash[65];         /*   it (0 and "" for an empty log)        */
    pole_audit_problem_t problem;
    int64_t bad_seq;            /* the row of the problem (0 if none)      */
    int64_t ms;                 /* time taken                              */
    /*  A sentence for a programme officer, or the error when -1 is
        returned; "" when the chain verifies                               */
    char message[512];
} pole_audit_result_t;

/*  Walk the event log in seq order on a read-only connection, recompute
    the chain and report the first problem in *result. Rows are streamed:
    memory does not grow with the log. Returns 0 when the walk could run
    (result->ok says whether the chain verifies), -1 when the database
    cannot be opened or read (result->message says why).                   */
int pole_audit_verify (const char *database, pole_audit_result_t *result);

/*  The problem's name: "ok", "altered", "deleted", "inserted",
    "truncated".                                                           */
const char *pole_audit_problem_name (pole_audit_problem_t problem);

typedef struct {
    int64_t bytes;              /* size of the copy                        */
    int64_t pages;              /* pages copied                            */
    int64_t events;             /* events in the copy                      */
    int64_t head_seq;           /* the copy's chain head                   */
    char head_hash[65];
    int64_t ms;                 /* time taken                              */
    int restarts;               /* times SQLite restarted the copy (0: the
                                   snapshot held, see audit.c)             */
    char error[512];            /* why it failed, "" on success            */
} pole_audit_backup_t;

/*  Copy the database to `target` while poled keeps writing: SQLite's
    backup API, from a snapshot of the moment the backup starts (every
    event committed before the call is in the copy). The copy is written
    to `target`.tmp, quick-checked, made a self-contained file (rollback
    journal mode, no -wal to carry along), synced, and only then given its
    name: a file named `target` is always a whole backup. Refuses a target
    that exists. Returns 0, or -1 with result->error.                      */
int pole_audit_backup (const char *database, const char *target,
                       pole_audit_backup_t *result);

#ifdef __cplusplus
}
#endif

#endif
