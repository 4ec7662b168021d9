/*  =========================================================================
    pole_outbox - who follows what, and the worker that delivers

    Routing (pole_coordinator_follows, pole_outbox_enqueue) runs in the
    request loop, inside the event's transaction. Delivery runs in a czmq
    actor, a thread with its own SQLite connection (WAL lets it read and
    write beside poled's connection; a write waits on busy_timeout).

    The worker's loop: deliver every due immediate row (in sequence order
    per coordinator and dossier: a later row waits while an earlier one of
    the same dossier is pending), then every due digest, prune, and sleep
    until the next due row or a kick from the request loop. Nothing here is
    kept only in memory: a restart reads the rows where they stand.
    =========================================================================
*/

#include "outbox.h"

#include "channel.h"
#include "clock.h"

#include <curl/curl.h>
#include <sqlite3.h>
#include <string.h>

static const char *s_channel_names[] = {"email", "webhook", "command"};

bool
pole_coordinator_follows (const pole_coordinator_t *c, const char *pays,
                          int departement, const char *holder,
                          const char *event)
{
    bool match = c->pays_count == 0;
    for (size_t i = 0; i < c->pays_count && !match; i++)
        match = pays && streq (c->pays[i], pays);
    if (!match)
        return false;
    match = c->departement_count == 0;
    for (size_t i = 0; i < c->departement_count && !match; i++)
        match = c->departements[i] == departement;
    if (!match)
        return false;
    match = c->event_count == 0;
    for (size_t i = 0; i < c->event_count && !match; i++)
        match = event && streq (c->events[i], event);
    if (!match)
        return false;
    match = c->holder_count == 0;
    for (size_t i = 0; i < c->holder_count && !match; i++)
        match = holder && streq (c->holders[i], holder);
    return match;
}

int64_t
pole_outbox_digest_due (const pole_notify_config_t *notify, int64_t now_ms)
{
    if (notify->digest_every_s > 0) {
        int64_t period = (int64_t) notify->digest_every_s * 1000;
        return (now_ms / period + 1) * period;
    }
    //  The next digest_hour:00 UTC strictly after now
    int64_t day = 86400000;
    int64_t today = now_ms - now_ms % day;
    int64_t due = today + (int64_t) notify->digest_hour * 3600000;
    return due > now_ms ? due : due + day;
}

int
pole_outbox_enqueue (pole_store_t *store, pole_config_t *config,
                     const pole_dossier_t *dossier, const char *event,
                     int64_t seq, int64_t now_ms)
{
    const pole_notify_config_t *notify = pole_config_notify (config);
    const pole_territory_t *territory
        = pole_pays_lookup (pole_config_params (config), dossier->pays);
    int departement = territory ? territory->departement : 0;
    int written = 0;
    for (size_t k = 0; k < notify->coordinator_count; k++) {
        const pole_coordinator_t *c = &notify->coordinators[k];
        if (!pole_coordinator_follows (c, dossier->pays, departement,
                                       dossier->holder, event))
            continue;
        //  SEQ-K: stable, stored with the row, never recomputed
        char id[48];
        snprintf (id, sizeof id, "%" PRId64 "-%zu", seq, k);
        int64_t due = c->digest ? pole_outbox_digest_due (notify, now_ms)
                                : now_ms;
        if (pole_store_outbox_add (store, id, seq, c->name,
                                   s_channel_names[c->channel], c->address,
                                   c->digest, due))
            return -1;
        written++;
    }
    return written;
}

//  --------------------------------------------------------------------------
//  The worker

//  Rows in one digest at most: a command gets the digest in its
//  environment, which Linux bounds (128 KiB a string); the rest follows in
//  the next digest, due at once
#define S_DIGEST_MAX "100"

typedef enum {
    W_DUE,
    W_DELIVERED,
    W_FAILED,
    W_DIGEST_COORDINATORS,
    W_DIGEST_ROWS,
    W_DIGEST_ARRAY,
    W_NEXT_DUE,
    W_PRUNE,
    W_MAX
} worker_stmt_t;

//  The columns a notice is read from, after id, coordinator, channel,
//  address, payload, attempts
#define NOTICE_COLUMNS                                                       \
    " json_extract (payload, '$.dossier'), json_extract (payload, '$.pays'),"\
    " json_extract (payload, '$.departement'),"                              \
    " json_extract (payload, '$.holder'), json_extract (payload, '$.title'),"\
    " json_extract (payload, '$.event'), json_extract (payload, '$.from'),"  \
    " json_extract (payload, '$.to'), json_extract (payload, '$.actor'),"    \
    " json_extract (payload, '$.at'),"                                      \
    " (SELECT group_concat (key || '=' || value, ' ')"                       \
    "   FROM json_each (payload, '$.fields'))"

static const char *s_worker_sql[W_MAX] = {
    [W_DUE] = "SELECT id, coordinator, channel, address, payload, attempts,"
              NOTICE_COLUMNS " FROM outbox o WHERE state = 'pending'"
              " AND delivery = 'immediate' AND next_at <= ?1"
              " AND NOT EXISTS (SELECT 1 FROM outbox p"
              "   WHERE p.coordinator = o.coordinator"
              "   AND p.dossier = o.dossier AND p.state = 'pending'"
              "   AND p.seq < o.seq)"
              " ORDER BY seq, id LIMIT 64",
    //  attempts counts failed tries (PROTOCOL.md): a success adds none
    [W_DELIVERED] = "UPDATE outbox SET state = 'delivered',"
                    " delivered_at = ?2, last_error = NULL WHERE id = ?1",
    [W_FAILED] = "UPDATE outbox SET attempts = attempts + 1,"
                 " last_error = ?2, next_at = ?3,"
                 " state = CASE WHEN attempts + 1 >= ?4 THEN 'dead'"
                 " ELSE 'pending' END WHERE id = ?1",
    [W_DIGEST_COORDINATORS] = "SELECT DISTINCT coordinator FROM outbox"
                              " WHERE state = 'pending'"
                              " AND delivery = 'digest' AND next_at <= ?1",
    [W_DIGEST_ROWS] = "SELECT id, coordinator, channel, address, payload,"
                      " attempts," NOTICE_COLUMNS " FROM outbox"
                      " WHERE state = 'pending' AND delivery = 'digest'"
                      " AND next_at <= ?1 AND coordinator = ?2"
                      " ORDER BY seq, id LIMIT " S_DIGEST_MAX,
    [W_DIGEST_ARRAY] = "SELECT json_group_array (json (payload)) FROM"
                       " (SELECT payload FROM outbox WHERE state = 'pending'"
                       " AND delivery = 'digest' AND next_at <= ?1"
                       " AND coordinator = ?2 ORDER BY seq, id"
                       " LIMIT " S_DIGEST_MAX ")",
    //  Only rows that could go now: one waiting behind an earlier sibling
    //  must not wake the worker before that sibling is due
    [W_NEXT_DUE] = "SELECT min (next_at) FROM outbox o WHERE state = 'pending'"
                   " AND NOT EXISTS (SELECT 1 FROM outbox p"
                   "   WHERE p.coordinator = o.coordinator"
                   "   AND p.dossier = o.dossier AND p.state = 'pending'"
                   "   AND p.seq < o.seq)",
    [W_PRUNE] = "DELETE FROM outbox WHERE state = 'delivered'"
                " AND delivered_at < ?1",
};

typedef struct {
    pole_config_t *config;
    char *path;
    sqlite3 *db;
    sqlite3_stmt *stmt[W_MAX];
    unsigned int seed;
    bool opened;            //  set by the thread before it signals ready
    zsock_t *pipe;          //  to the request loop: KICK and $TERM
    bool terminated;        //  $TERM received
} s_worker_t;

//  True once $TERM has arrived; kicks read on the way are dropped (a pass
//  is under way anyway)
static bool
s_terminated (s_worker_t *self)
{
    while (!self->terminated && self->pipe
           && (zsock_events (self->pipe) & ZMQ_POLLIN)) {
        char *command = zstr_recv (self->pipe);
        self->terminated = !command || streq (command, "$TERM");
        zstr_free (&command);
    }
    return self->terminated;
}

//  One row read from the outbox, with its notice. Strings are copies.
typedef struct {
    char *id, *coordinator, *channel, *address, *payload;
    int attempts;
    char *pays, *holder, *title, *event, *from, *to, *actor, *at, *details;
    pole_notice_t notice;
} s_row_t;

static char *
s_column (sqlite3_stmt *stmt, int column)
{
    const unsigned char *text = sqlite3_column_text (stmt, column);
    return text ? strdup ((const char *) text) : NULL;
}

static s_row_t *
s_row_read (sqlite3_stmt *stmt)
{
    s_row_t *row = (s_row_t *) zmalloc (sizeof (s_row_t));
    row->id = s_column (stmt, 0);
    row->coordinator = s_column (stmt, 1);
    row->channel = s_column (stmt, 2);
    row->address = s_column (stmt, 3);
    row->payload = s_column (stmt, 4);
    row->attempts = sqlite3_column_int (stmt, 5);
    row->pays = s_column (stmt, 7);
    row->holder = s_column (stmt, 9);
    row->title = s_column (stmt, 10);
    row->event = s_column (stmt, 11);
    row->from = s_column (stmt, 12);
    row->to = s_column (stmt, 13);
    row->actor = s_column (stmt, 14);
    row->at = s_column (stmt, 15);
    row->details = s_column (stmt, 16);
    row->notice = (pole_notice_t){
        .id = row->id,
        .coordinator = row->coordinator,
        .dossier = sqlite3_column_int64 (stmt, 6),
        .pays = row->pays,
        .departement = sqlite3_column_int (stmt, 8),
        .holder = row->holder,
        .title = row->title,
        .event = row->event,
        .from = row->from,
        .to = row->to,
        .actor = row->actor,
        .at = row->at,
        .details = row->details,
        .json = row->payload,
    };
    return row;
}

static void
s_row_destroy (s_row_t **row_p)
{
    s_row_t *row = *row_p;
    if (!row)
        return;
    char *strings[] = {row->id,     row->coordinator, row->channel,
                       row->address, row->payload,    row->pays,
                       row->holder, row->title,       row->event,
                       row->from,   row->to,          row->actor,
                       row->at,     row->details};
    for (size_t i = 0; i < sizeof strings / sizeof strings[0]; i++)
        free (strings[i]);
    free (row);
    *row_p = NULL;
}

static const pole_coordinator_t *
s_coordinator (s_worker_t *self, const char *name)
{
    const pole_notify_config_t *notify = pole_config_notify (self->config);
    for (size_t k = 0; k < notify->coordinator_count; k++)
        if (streq (notify->coordinators[k].name, name))
            return &notify->coordinators[k];
    return NULL;
}

static pole_channel_settings_t
s_settings (s_worker_t *self)
{
    const pole_notify_config_t *notify = pole_config_notify (self->config);
    return (pole_channel_settings_t){
        .smtp_url = notify->smtp_url,
        .smtp_from = notify->smtp_from,
        .smtp_starttls = notify->smtp_starttls,
        .smtp_username = notify->smtp_username,
        .smtp_password = notify->smtp_password,
        .webhook_timeout_ms = notify->webhook_timeout_ms,
        .command_timeout_ms = notify->command_timeout_ms,
    };
}

//  Send `count` notices (one, or a digest) through the row's channel.
//  `json` is the body: one notification, or the digest's array.
static int
s_send (s_worker_t *self, s_row_t *row, const pole_notice_t *notices,
        size_t count, const char *json, char *error, size_t error_size)
{
    const pole_coordinator_t *c = s_coordinator (self, row->coordinator);
    if (!c) {
        snprintf (error, error_size,
                  "coordinator '%s' is no longer in the configuration",
                  row->coordinator);
        return -1;
    }
    pole_channel_settings_t settings = s_settings (self);
    int rc = -1;
    if (streq (row->channel, "email")) {
        char *subject = pole_notice_subject (notices, count);
        char *body = pole_notice_text (notices, count);
        rc = pole_channel_email (&settings, row->address, row->id, subject,
                                 body, error, error_size);
        free (subject);
        free (body);
    }
    else if (streq (row->channel, "webhook"))
        rc = pole_channel_webhook (&settings, row->address,
                                   c->secret ? c->secret : "", row->id, json,
                                   error, error_size);
    else if (streq (row->channel, "command"))
        rc = pole_channel_command (&settings, row->address, &notices[0],
                                   json, error, error_size);
    else
        snprintf (error, error_size, "unknown channel '%s'", row->channel);
    return rc;
}

static void
s_now_text (int64_t now_ms, char *buffer, size_t size)
{
    time_t now = (time_t) (now_ms / 1000);
    struct tm tm;
    gmtime_r (&now, &tm);
    strftime (buffer, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

//  When a row that failed `attempts` times before is tried again:
//  exponential backoff, capped, with +-20 % jitter so that many rows
//  failing together do not all come back at once
static int64_t
s_retry_at (s_worker_t *self, int attempts, int64_t now_ms)
{
    const pole_notify_config_t *notify = pole_config_notify (self->config);
    double delay = notify->backoff_initial_ms;
    for (int k = 0; k < attempts && delay < notify->backoff_max_ms; k++)
        delay *= 2;
    if (delay > notify->backoff_max_ms)
        delay = notify->backoff_max_ms;
    delay *= 0.8 + 0.4 * ((double) rand_r (&self->seed) / RAND_MAX);
    return now_ms + (int64_t) delay;
}

//  Record the outcome of one attempt at `id`; a failure is tried again at
//  retry_at. The outcome must not be lost: a busy database is waited for
//  (each step waits busy_timeout), since a lost success would send the
//  notification again and a lost failure would retry it at once.
static void
s_record (s_worker_t *self, const char *id, int attempts, int rc,
          const char *error, int64_t now_ms, int64_t retry_at)
{
    const pole_notify_config_t *notify = pole_config_notify (self->config);
    sqlite3_stmt *stmt;
    if (rc == 0) {
        char at[32];
        s_now_text (now_ms, at, sizeof at);
        stmt = self->stmt[W_DELIVERED];
        sqlite3_bind_text (stmt, 1, id, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text (stmt, 2, at, -1, SQLITE_TRANSIENT);
    }
    else {
        stmt = self->stmt[W_FAILED];
        sqlite3_bind_text (stmt, 1, id, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text (stmt, 2, error, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64 (stmt, 3, retry_at);
        sqlite3_bind_int (stmt, 4, notify->max_attempts);
        zsys_warning ("outbox: %s not delivered (attempt %d): %s", id,
                      attempts + 1, error);
    }
    int step = sqlite3_step (stmt);
    for (int tries = 1; tries < 60 && (step == SQLITE_BUSY || step == SQLITE_LOCKED);
         tries++) {
        sqlite3_reset (stmt);
        step = sqlite3_step (stmt);
    }
    if (step != SQLITE_DONE)
        zsys_error ("outbox: recording %s: %s", id, sqlite3_errmsg (self->db));
    sqlite3_reset (stmt);
    sqlite3_clear_bindings (stmt);
}

//  Deliver the due immediate rows. Returns how many were tried.
static int
s_deliver_due (s_worker_t *self, int64_t now_ms)
{
    zlist_t *rows = zlist_new ();
    sqlite3_stmt *stmt = self->stmt[W_DUE];
    sqlite3_bind_int64 (stmt, 1, now_ms);
    while (sqlite3_step (stmt) == SQLITE_ROW)
        zlist_append (rows, s_row_read (stmt));
    sqlite3_reset (stmt);
    //  A row whose earlier sibling (same coordinator and dossier) fails in
    //  this pass must wait for it: remember the failures
    zhashx_t *blocked = zhashx_new ();
    int tried = 0;
    s_row_t *row;
    while ((row = (s_row_t *) zlist_pop (rows))) {
        char key[512];
        snprintf (key, sizeof key, "%s/%" PRId64, row->coordinator,
                  row->notice.dossier);
        if (!zhashx_lookup (blocked, key)) {
            char error[512] = "";
            int rc = s_send (self, row, &row->notice, 1, row->payload, error,
                             sizeof error);
            int64_t now = pole_clock_now_ms ();
            s_record (self, row->id, row->attempts, rc, error, now,
                      s_retry_at (self, row->attempts, now));
            if (rc)
                zhashx_insert (blocked, key, (void *) 1);
            tried++;
        }
        s_row_destroy (&row);
        //  A stop asked while the backlog drains is heard between rows
        if (s_terminated (self)) {
            while ((row = (s_row_t *) zlist_pop (rows)))
                s_row_destroy (&row);
            tried = -1;
        }
    }
    zhashx_destroy (&blocked);
    zlist_destroy (&rows);
    return tried;
}

//  Deliver each coordinator's due digest as one message.
static void
s_deliver_digests (s_worker_t *self, int64_t now_ms)
{
    zlist_t *coordinators = zlist_new ();
    zlist_autofree (coordinators);
    sqlite3_stmt *stmt = self->stmt[W_DIGEST_COORDINATORS];
    sqlite3_bind_int64 (stmt, 1, now_ms);
    while (sqlite3_step (stmt) == SQLITE_ROW)
        zlist_append (coordinators, (char *) sqlite3_column_text (stmt, 0));
    sqlite3_reset (stmt);

    for (char *name = (char *) zlist_first (coordinators); name;
         name = (char *) zlist_next (coordinators)) {
        zlist_t *rows = zlist_new ();
        //  The rows and the array sent must be the same rows: one snapshot
        sqlite3_exec (self->db, "BEGIN", NULL, NULL, NULL);
        stmt = self->stmt[W_DIGEST_ROWS];
        sqlite3_bind_int64 (stmt, 1, now_ms);
        sqlite3_bind_text (stmt, 2, name, -1, SQLITE_TRANSIENT);
        while (sqlite3_step (stmt) == SQLITE_ROW)
            zlist_append (rows, s_row_read (stmt));
        sqlite3_reset (stmt);
        stmt = self->stmt[W_DIGEST_ARRAY];
        sqlite3_bind_int64 (stmt, 1, now_ms);
        sqlite3_bind_text (stmt, 2, name, -1, SQLITE_TRANSIENT);
        char *json = NULL;
        if (sqlite3_step (stmt) == SQLITE_ROW)
            json = s_column (stmt, 0);
        sqlite3_reset (stmt);
        sqlite3_exec (self->db, "COMMIT", NULL, NULL, NULL);

        size_t count = zlist_size (rows);
        if (count > 0 && json) {
            pole_notice_t *notices
                = (pole_notice_t *) zmalloc (count * sizeof (pole_notice_t));
            size_t i = 0;
            for (s_row_t *row = (s_row_t *) zlist_first (rows); row;
                 row = (s_row_t *) zlist_next (rows))
                notices[i++] = row->notice;
            s_row_t *first = (s_row_t *) zlist_first (rows);
            s_row_t *last = (s_row_t *) zlist_last (rows);
            //  The digest is a message of its own: its id names its
            //  members, so that a receiver dropping duplicates by id never
            //  drops a digest that holds a row it has not seen
            char digest_id[128];
            snprintf (digest_id, sizeof digest_id, "digest-%s-%s-%zu",
                      first->id, last->id, count);
            notices[0].id = digest_id;
            char *first_id = first->id;
            first->id = digest_id;
            char error[512] = "";
            int rc = s_send (self, first, notices, count, json, error,
                             sizeof error);
            first->id = first_id;
            //  One message for all: each row records its outcome, and a
            //  failure brings them all back together
            int64_t now = pole_clock_now_ms ();
            int64_t retry_at = s_retry_at (self, first->attempts, now);
            sqlite3_exec (self->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
            for (s_row_t *row = (s_row_t *) zlist_first (rows); row;
                 row = (s_row_t *) zlist_next (rows))
                s_record (self, row->id, row->attempts, rc, error, now,
                          retry_at);
            sqlite3_exec (self->db, "COMMIT", NULL, NULL, NULL);
            free (notices);
        }
        free (json);
        s_row_t *row;
        while ((row = (s_row_t *) zlist_pop (rows)))
            s_row_destroy (&row);
        zlist_destroy (&rows);
    }
    zlist_destroy (&coordinators);
}

static void
s_prune (s_worker_t *self, int64_t now_ms)
{
    const pole_notify_config_t *notify = pole_config_notify (self->config);
    char before[32];
    s_now_text (now_ms - (int64_t) notify->keep_delivered_days * 86400000,
                before, sizeof before);
    sqlite3_stmt *stmt = self->stmt[W_PRUNE];
    sqlite3_bind_text (stmt, 1, before, -1, SQLITE_TRANSIENT);
    if (sqlite3_step (stmt) != SQLITE_DONE)
        zsys_error ("outbox: prune: %s", sqlite3_errmsg (self->db));
    sqlite3_reset (stmt);
}

//  Milliseconds until the next pending row is due (at most a minute, so
//  that pruning runs now and then), 0 if one is due now.
static int
s_wait_ms (s_worker_t *self, int64_t now_ms)
{
    sqlite3_stmt *stmt = self->stmt[W_NEXT_DUE];
    int64_t wait = 60000;
    if (sqlite3_step (stmt) == SQLITE_ROW
        && sqlite3_column_type (stmt, 0) != SQLITE_NULL) {
        int64_t due = sqlite3_column_int64 (stmt, 0);
        wait = due <= now_ms ? 0 : due - now_ms;
    }
    sqlite3_reset (stmt);
    return (int) (wait < 60000 ? wait : 60000);
}

static int
s_worker_open (s_worker_t *self)
{
    if (sqlite3_open_v2 (self->path, &self->db, SQLITE_OPEN_READWRITE, NULL)
        != SQLITE_OK) {
        zsys_error ("outbox: cannot open %s: %s", self->path,
                    sqlite3_errmsg (self->db));
        return -1;
    }
    sqlite3_busy_timeout (self->db, 5000);
    sqlite3_exec (self->db, "PRAGMA synchronous = FULL", NULL, NULL, NULL);
    //  This connection keeps SQLite's automatic checkpoint (unlike the
    //  store's, daemon/store.h "The WAL checkpoint"): the store's
    //  checkpointer counts only the store's commits, so when only this
    //  worker writes (a backlog drained after downtime, retries) nothing
    //  else would bound the WAL. Its checkpoints run in this thread, never
    //  inside an event's COMMIT.
    for (int id = 0; id < W_MAX; id++)
        if (sqlite3_prepare_v2 (self->db, s_worker_sql[id], -1,
                                &self->stmt[id], NULL)
            != SQLITE_OK) {
            zsys_error ("outbox: cannot prepare %d: %s", id,
                        sqlite3_errmsg (self->db));
            return -1;
        }
    return 0;
}

static void
s_worker_close (s_worker_t *self)
{
    for (int id = 0; id < W_MAX; id++)
        sqlite3_finalize (self->stmt[id]);
    if (self->db)
        sqlite3_close (self->db);
}

//  The actor: runs until $TERM.
static void
s_worker_actor (zsock_t *pipe, void *args)
{
    s_worker_t *self = (s_worker_t *) args;
    self->seed = (unsigned int) zclock_time ();
    self->pipe = pipe;
    int rc = s_worker_open (self);
    self->opened = rc == 0;
    zsock_signal (pipe, 0);
    if (rc) {
        s_worker_close (self);
        return;
    }
    zpoller_t *poller = zpoller_new (pipe, NULL);
    //  SIGINT/SIGTERM are the request loop's to handle: the worker stops on
    //  $TERM only, so that a kick is never left without a reader
    zpoller_set_nonstop (poller, true);
    int64_t last_prune = 0;
    while (true) {
        int64_t now = pole_clock_now_ms ();
        //  Deliver until nothing more is due now (a pass takes 64 rows)
        while (s_deliver_due (self, now) == 64)
            now = pole_clock_now_ms ();
        if (s_terminated (self))
            break;
        s_deliver_digests (self, now);
        if (s_terminated (self))
            break;
        if (now - last_prune > 3600000) {
            s_prune (self, now);
            last_prune = now;
        }
        int wait = s_wait_ms (self, pole_clock_now_ms ());
        if (wait == 0)
            wait = 10;  //  a row that failed again just now: breathe
        zsock_t *which = (zsock_t *) zpoller_wait (poller, wait);
        if (which == pipe) {
            //  Kicks pile up while the worker delivers: take them all, one
            //  pass serves them all
            bool term = false;
            while (!term && (zsock_events (pipe) & ZMQ_POLLIN)) {
                char *command = zstr_recv (pipe);
                term = !command || streq (command, "$TERM");
                zstr_free (&command);
            }
            if (term)
                break;
        }
    }
    zpoller_destroy (&poller);
    s_worker_close (self);
}

struct _pole_outbox_t {
    zactor_t *actor;
    s_worker_t worker;
};

pole_outbox_t *
pole_outbox_new (pole_config_t *config, const char *path)
{
    pole_outbox_t *self = (pole_outbox_t *) zmalloc (sizeof (pole_outbox_t));
    self->worker.config = config;
    self->worker.path = strdup (path);
    self->actor = zactor_new (s_worker_actor, &self->worker);
    if (!self->actor || !self->worker.opened) {
        zactor_destroy (&self->actor);
        free (self->worker.path);
        free (self);
        return NULL;
    }
    return self;
}

void
pole_outbox_destroy (pole_outbox_t **self_p)
{
    assert (self_p);
    pole_outbox_t *self = *self_p;
    if (!self)
        return;
    zactor_destroy (&self->actor);
    free (self->worker.path);
    free (self);
    *self_p = NULL;
}

void
pole_outbox_kick (pole_outbox_t *self)
{
    if (!self)
        return;
    //  Never block the request loop: if the pipe is full, the worker has
    //  kicks waiting already, and one is as good as many
    zsock_t *pipe = zactor_sock (self->actor);
    zsock_set_sndtimeo (pipe, 0);
    zstr_send (self->actor, "KICK");
    zsock_set_sndtimeo (pipe, -1);
}
