/*  =========================================================================
    pole_store - the durable record: SQLite, an append-only event log and
    the current dossiers, updated together

    The event log is the truth; the `dossiers` table is the log folded by
    the engine, kept in the same transaction so that reads are cheap. The
    `requests` table remembers the outcome of every mutating request by its
    client-chosen id, so that a retry is answered, not re-applied.

    Every statement is prepared once, at open. Nothing here decides a rule:
    that is the engine's job; the store only keeps what was decided.
    =========================================================================
*/
#ifndef POLE_STORE_H_INCLUDED
#define POLE_STORE_H_INCLUDED

#include <czmq.h>
#include <stdint.h>

#include "pole/engine.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct _pole_store_t pole_store_t;

/*  The schema version this build writes (PRAGMA user_version).           */
#define POLE_STORE_SCHEMA_VERSION 8

/*  Open (creating if needed) the database at `path`: WAL mode,
    synchronous=FULL, foreign keys on, schema migrated to the current
    version, integrity quick-checked. Returns NULL with a reason in `error`
    if the file cannot be opened, is damaged, or was written by a newer
    version of pole.                                                        */
pole_store_t *pole_store_new (const char *path, char *error,
                              size_t error_size);

/*  Close the database (stopping the checkpointer, then checkpointing the
    WAL). Nulls *self_p.                                                    */
void pole_store_destroy (pole_store_t **self_p);

/*  Replace the list of configured territories the reads join against
    (a TEMP table: configuration, not data).                               */
int pole_store_set_territories (pole_store_t *self,
                                const pole_params_t *params);

/*  Transactions. begin = BEGIN IMMEDIATE (the single writer takes the lock
    at once rather than failing at its first write). A savepoint wraps each
    request of a batch so that one failing request does not undo the
    others. All return 0 or -1.                                            */
int pole_store_begin (pole_store_t *self);
int pole_store_commit (pole_store_t *self);
void pole_store_rollback (pole_store_t *self);
int pole_store_savepoint (pole_store_t *self);
/*  True while a transaction is open. SQLite may roll a whole transaction
    back on its own (disk full, I/O error): the server checks this after
    every request of a batch.                                              */
bool pole_store_in_transaction (pole_store_t *self);
int pole_store_release (pole_store_t *self);
void pole_store_rollback_savepoint (pole_store_t *self);

/*  Load a dossier's current facts. 0 found, 1 no such dossier, -1 error. */
int pole_store_dossier_load (pole_store_t *self, int64_t id,
                             pole_dossier_t *dossier);

/*  Number of live (non-terminal) dossiers in `pays`, not counting
    `except_id` (0 = none). -1 on error.                                   */
int pole_store_live_in_pays (pole_store_t *self, const char *pays,
                             int64_t except_id);

/*  Insert a new dossier (its id is chosen by SQLite and written back into
    dossier->id) or update an existing one. `at` is the event's time.      */
int pole_store_dossier_insert (pole_store_t *self, pole_dossier_t *dossier,
                               const char *at);
int pole_store_dossier_update (pole_store_t *self,
                               const pole_dossier_t *dossier, const char *at);

/*  Append one event to the log. `from` is NULL for open. Returns the new
    sequence number, or -1.                                                */
int64_t pole_store_event_append (pole_store_t *self, int64_t dossier,
                                 const char *event, const pole_field_t *fields,
                                 size_t field_count, const char *actor,
                                 const char *at, const char *from,
                                 const char *to, const char *request_id);

/*  Idempotency. find: 0 with *digest and *reply (both the caller's) when
    the request id is known, 1 when not, -1 on error.                      */
int pole_store_request_find (pole_store_t *self, const char *request_id,
                             char **digest, zframe_t **reply);
int pole_store_request_save (pole_store_t *self, const char *request_id,
                             const char *digest, zframe_t *reply,
                             const char *at);

/*  Reads, as JSON text produced by SQLite (PROTOCOL.md section 4). The
    returned string is the caller's; NULL means not found (show, history)
    or an error (logged).                                                  */
char *pole_store_show_json (pole_store_t *self, int64_t id,
                            const pole_params_t *params);
/*  LIST: the dossiers that pass every filter given (a NULL string or
    false: no such filter; `holder` is the holder's name of a holder's
    key), by id, as one JSON array.                                       */
char *pole_store_list_json (pole_store_t *self, const char *state,
                            const char *pays, bool overdue,
                            const char *holder,
                            const pole_params_t *params);
char *pole_store_history_json (pole_store_t *self, int64_t id);
/*  The report (docs/REPORT.md): now, or with as_of ("YYYY-MM-DD") as the
    event log stood at the end of that day.                                */
char *pole_store_report_json (pole_store_t *self, const char *as_of,
                              const pole_params_t *params);

/*  Counts, for logs and status: dossiers and events. -1 on error.        */
int64_t pole_store_count (pole_store_t *self, const char *table);

/*  Rebuild the dossiers from the event log (engine apply over the log, in
    sequence order) and compare with the live table. Returns 0 if equal,
    1 if they differ (the first difference described in `diff`), -1 on
    error.                                                                 */
int pole_store_rebuild_check (pole_store_t *self, char *diff,
                              size_t diff_size);

/*  The outbox (docs/NOTIFY.md). add: one notification of the event `seq`
    for a coordinator, due at next_at_ms (Unix ms), written in the caller's
    transaction; its payload is built from the event and the dossier.      */
int pole_store_outbox_add (pole_store_t *self, const char *id, int64_t seq,
                           const char *coordinator, const char *channel,
                           const char *address, bool digest,
                           int64_t next_at_ms);

/*  The live-stream JSON of the event `seq` (the notification without id
    and coordinator) and, in *topic, its topic PAYS/STATE/EVENT. Both
    strings are the caller's; NULL on error.                               */
char *pole_store_event_json (pole_store_t *self, int64_t seq, char **topic);

/*  The outbox as a JSON array, optionally only rows in `state`.           */
char *pole_store_outbox_json (pole_store_t *self, const char *state);

/*  Queue again one notification (by id; not one already pending) or, with
    id NULL, every dead one: pending, no attempt, due now. Returns the
    number of rows queued (0 for an id already pending), -2 for an id that
    names no notification, or -1 on error.                                 */
int pole_store_outbox_retry (pole_store_t *self, const char *id,
                             int64_t now_ms);

/*  The database file's path (the delivery worker opens its own
    connection on it).                                                     */
const char *pole_store_path (pole_store_t *self);

/*  The calendar's timers (docs/CALENDAR.md). Times are ms since the epoch
    on poled's clock; `at` is the text time of the change. year 0 = none
    (settle: any year). All run in the caller's transaction.               */
typedef struct {
    int64_t id;
    int64_t dossier;
    char kind[32];
    int year;
    int64_t due_at;
    int64_t deadline_at;        /* the obligation's date                   */
} pole_timer_t;

int pole_store_timer_arm (pole_store_t *self, int64_t dossier,
                          const char *kind, int year, int64_t due_at,
                          int64_t deadline_at, const char *at);
/*  Open timers (armed, waiting, overdue) of that kind -> `state`. Returns
    how many, or -1.                                                       */
int pole_store_timer_settle (pole_store_t *self, int64_t dossier,
                             const char *kind, int year, const char *state,
                             const char *at);
int pole_store_timer_cancel_all (pole_store_t *self, int64_t dossier,
                                 const char *at);
/*  A waiting year_end of `year` armed again, due at `due_at`. Returns how
    many (0 or 1), or -1.                                                  */
int pole_store_timer_rearm_waiting (pole_store_t *self, int64_t dossier,
                                    int year, int64_t due_at, const char *at);
/*  The obligation date (deadline_at) of the latest timer of that kind and
    year: 0, 1 if none, -1 on error.                                       */
int pole_store_timer_find (pole_store_t *self, int64_t dossier,
                           const char *kind, int year, int64_t *due_at);
/*  Up to `max` armed timers due at now_ms, oldest first. Returns count.   */
int pole_store_timers_due (pole_store_t *self, int64_t now_ms,
                           pole_timer_t *out, int max);
int pole_store_timer_set_state (pole_store_t *self, int64_t id,
                                const char *state, const char *at);
/*  The earliest due time of an armed timer, or -1 if none.               */
int64_t pole_store_timer_next (pole_store_t *self);
/*  Open obligations due by until_ms, and every overdue one (AGENDA).      */
char *pole_store_agenda_json (pole_store_t *self, int64_t until_ms);

/*  The time of the last recorded event, in ms (0 if none): a simulated
    clock may not be moved before it.                                      */
int64_t pole_store_last_event_ms (pole_store_t *self);

/*  Daemon settings kept in the database (the simulated clock's offset).
    get: 0, 1 if unset, -1 on error.                                       */
int pole_store_setting_get (pole_store_t *self, const char *key,
                            int64_t *value);
int pole_store_setting_put (pole_store_t *self, const char *key,
                            int64_t value);

/*  The hash chain of the event log (pole_audit_verify checks it).
    Each row of `events` carries `hash`, 64 lowercase hex digits:

        hash = SHA-256 (previous row's hash, or "" for the first row
                        || POLE_STORE_EVENT_CANONICAL of the row)

    The canonical text is produced by SQLite itself (json_array over every
    column but the hash, in this order), so that the INSERT, the migration
    and the verifier on its own connection compute byte-identical text.
    The table `chain` holds the chain head (last seq and its hash), written
    in the same transaction as the events, so that rows deleted at the end
    of the log are seen too.                                               */
#define POLE_STORE_EVENT_CANONICAL                                           \
    "json_array (seq, dossier, event, fields, actor, at, from_state,"        \
    " to_state, request_id)"

/*  SHA-256 of `previous` (a hex hash, or "" / NULL for the first row)
    followed by the `size` bytes of `canonical`, as 64 lowercase hex
    digits and a NUL in `hex`. Pure, safe from any thread (libsodium must
    have been initialised: sodium_init()).                                 */
void pole_store_chain_hash (const char *previous, const void *canonical,
                            size_t size, char hex[65]);

/*  The chain head: the last event's seq and hash as recorded in the same
    transactions as the events (seq 0 and "" for an empty log). 0 or -1.   */
int pole_store_chain_head (pole_store_t *self, int64_t *seq, char hash[65]);

/*  The database's size on disk: page_count x page_size, plus the -wal
    file (which may hold pages not yet checkpointed). -1 on error.         */
int64_t pole_store_size_bytes (pole_store_t *self);

/*  The WAL checkpoint, off the commit path.

    A COMMIT never checkpoints (PRAGMA wal_autocheckpoint = 0). SQLite's
    automatic checkpoint ran inside the COMMIT that took the WAL past 1000
    pages: it copied the pages back into the database file and fsynced it
    before that batch could be acknowledged, and the requests arriving
    meanwhile queued behind it (tests/bench/RESULTS.md). Durability is
    unchanged: synchronous=FULL, the WAL is fsynced by every COMMIT; the
    checkpoint only moves committed pages from the WAL into the file.
    Instead:

    * The checkpointer, a thread of the store with a connection of its own
      (pole_store_checkpointer_start), runs a PASSIVE checkpoint whenever
      POLE_STORE_CHECKPOINT_PAGES pages were committed since its last
      pass, and about once a second while commits left pages behind. A
      PASSIVE checkpoint takes no lock that a writer waits for. It passes
      a second time for what was committed during the first. When no
      commit lands until the next transaction begins (a pause in the
      writes), it has caught up: that transaction starts the WAL over
      from its beginning, so the file is rewritten in place, not grown.
    * Under steady writes (hundreds of commits a second) a commit always
      lands while the checkpointer syncs the database file, and only the
      writer can catch up. pole_store_checkpoint_idle, called by poled's
      loop between batches (its 250 ms tick), is that bound: once the WAL
      holds more than POLE_STORE_WAL_BOUND_PAGES pages, it lets the
      checkpointer's pass in hand end, then checkpoints on poled's own
      connection, where no commit can land meanwhile: it copies the few
      pages the checkpointer has not, syncs the file (a pause of about
      one fsync for the requests that arrive then, once every
      POLE_STORE_WAL_BOUND_PAGES pages instead of once every 1000 in a
      COMMIT), and the next transaction starts the WAL over.
    * A reader that holds an old snapshot (a backup or a verification in
      progress) keeps any checkpoint, whatever its mode, from copying the
      pages committed after that snapshot: the WAL grows by what is
      committed meanwhile (a RESTART or TRUNCATE checkpoint would have to
      stop poled's writes until the reader ends, which it does not do).
      When the reader ends, the next checkpoint catches up, and
      journal_size_limit cuts the file back to 4 x the bound at the
      first commit after the WAL starts over.
    * Without checkpointer and loop (tests, tools, the fuzzer), a COMMIT
      that leaves more than 4 x POLE_STORE_WAL_BOUND_PAGES pages in the
      WAL checkpoints (PASSIVE) as SQLite's automatic checkpoint did, so
      that the WAL never grows without limit for want of a loop.         */
#define POLE_STORE_CHECKPOINT_PAGES 1000
#define POLE_STORE_WAL_BOUND_PAGES 4096

/*  Start the checkpointer thread (once; stopped by pole_store_destroy).
    0, or -1 if its connection cannot be opened (logged).                  */
int pole_store_checkpointer_start (pole_store_t *self);

/*  Between batches, outside a transaction: checkpoint on this connection
    if the WAL holds more than POLE_STORE_WAL_BOUND_PAGES pages. Returns 1
    when it caught up with the last commit (the next transaction starts
    the WAL over), 0 when there was nothing to do or it could not catch
    up (the checkpointer was at it, or a reader holds an old snapshot:
    logged once), -1 on error.                                              */
int pole_store_checkpoint_idle (pole_store_t *self);

/*  A PASSIVE checkpoint now, on this connection (tests, tools): *pages
    and *copied (either may be NULL) get the WAL's pages and how many of
    them are in the database file. 0 caught up, 1 not (a reader, or a
    concurrent checkpoint), -1 on error.                                   */
int pole_store_checkpoint (pole_store_t *self, int *pages, int *copied);

/*  The pages in the WAL as of this connection's last commit (0 after the
    WAL started over and nothing was committed yet), and the checkpoint
    passes run by the checkpointer thread (for tests).                     */
int pole_store_wal_pages (pole_store_t *self);
uint64_t pole_store_checkpointer_passes (pole_store_t *self);

/*  The underlying handle, for tests only.                                */
void *pole_store_handle (pole_store_t *self);

#ifdef __cplusplus
}
#endif

#endif
