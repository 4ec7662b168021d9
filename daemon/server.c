/*  =========================================================================
    pole_server - poled's request loop: the hot path, in one file

    A request goes: ROUTER -> s_on_router (drain a batch) ->
    pole_server_handle_batch -> s_decode_item -> s_apply_mutation (engine
    decides, store writes, in a savepoint) -> one COMMIT for the batch ->
    s_answer_read for the reads -> replies sent.

    Nothing is acknowledged before the COMMIT that holds it has returned:
    replies are built during the batch but sent only after it. If the
    commit fails, every mutating reply of the batch is replaced by
    ERROR INTERNAL, and the client retries with the same request id.
    =========================================================================
*/

#include "server.h"

#include "audit.h"
#include "calendar.h"
#include "clock.h"
#include "outbox.h"
#include "pole/pole.h"
#include "pole/proto.h"

#include <pwd.h>
#include <sqlite3.h>
#include <string.h>
#include <sys/signalfd.h>
#include <systemd/sd-daemon.h>

//  Where a batch came from: the main ROUTER (TCP, with CURVE when
//  authentication is on) or the administrators' local ipc:// ROUTER
typedef enum { S_SOURCE_MAIN = 0, S_SOURCE_LOCAL } s_source_t;

struct _pole_server_t {
    pole_config_t *config;      //  borrowed
    pole_store_t *store;        //  borrowed
    zsock_t *router;
    zsock_t *publisher;         //  live stream, NULL when not configured
    pole_outbox_t *outbox;      //  borrowed; NULL: no delivery worker
    zloop_t *loop;
    bool verbose;
    uint64_t batches;           //  for the shutdown summary
    uint64_t requests;
    int calendar_timer;         //  the zloop timer of the next due date, or 0
    int64_t calendar_backoff;   //  ms before a timer that failed is retried
    int64_t last_event_ms;      //  time of the last event written: the
                                //  log's times never run backwards
    zsock_t *local;             //  administrators' ipc:// ROUTER, or NULL
    zactor_t *auth;             //  zauth (ZAP for CURVE), or NULL when off
    bool authenticated;         //  curve.cert is set: keys say who is who
    s_source_t source;          //  the socket of the batch in hand
    pole_config_t *owned_config;    //  loaded by a reload, else NULL
    int64_t started_ms;         //  monotonic, for the uptime
    int64_t status_due_ms;      //  next systemd STATUS= line
    zactor_t *maint;            //  runs VERIFY and BACKUP off the loop
    zhashx_t *waiting;          //  token -> s_waiter_t: their requesters
    uint64_t next_token;
    char chain_state[32];       //  last verification: "unverified", "ok",
                                //  "running", or the problem found
};

//  A job of the maintenance worker: what to do, and its outcome. Sent
//  through the actor's pipe as the bytes of the struct (one process).
typedef struct {
    pole_command_t command;     //  POLE_CMD_VERIFY or POLE_CMD_BACKUP
    uint64_t token;             //  0: the verification at start
    char database[4096];
    char target[POLE_PROTO_MAX_PATH + 1];
    int rc;
    pole_audit_result_t verify;
    pole_audit_backup_t backup;
} s_job_t;

//  Who waits for a job's answer
typedef struct {
    s_source_t source;
    zframe_t *identity;
    char *request_id;
} s_waiter_t;

static void
s_waiter_destroy (void **item_p)
{
    s_waiter_t *waiter = (s_waiter_t *) *item_p;
    if (waiter) {
        zframe_destroy (&waiter->identity);
        free (waiter->request_id);
        free (waiter);
        *item_p = NULL;
    }
}

//  The maintenance worker: verifications and backups read the whole
//  database, for seconds on a large one; they run here, on connections
//  of their own (audit.c), while the loop keeps serving. One job at a
//  time, in the order asked.
static void
s_maint_actor (zsock_t *pipe, void *args)
{
    (void) args;
    zsock_signal (pipe, 0);
    while (true) {
        zmsg_t *msg = zmsg_recv (pipe);
        if (!msg)
            break;
        char *command = zmsg_popstr (msg);
        zframe_t *frame = zmsg_pop (msg);
        if (command && streq (command, "$TERM")) {
            zstr_free (&command);
            zframe_destroy (&frame);
            zmsg_destroy (&msg);
            break;
        }
        if (frame && zframe_size (frame) == sizeof (s_job_t)) {
            s_job_t *job = (s_job_t *) zframe_data (frame);
            if (job->command == POLE_CMD_VERIFY)
                job->rc = pole_audit_verify (job->database, &job->verify);
            else
                job->rc = pole_audit_backup (job->database, job->target,
                                             &job->backup);
            zsock_send (pipe, "f", frame);
        }
        zstr_free (&command);
        zframe_destroy (&frame);
        zmsg_destroy (&msg);
    }
}

static int s_on_maint (zloop_t *loop, zsock_t *pipe, void *arg);

//  Hand a job to the worker
static void
s_maint_start (pole_server_t *self, pole_command_t command, uint64_t token,
               const char *target)
{
    s_job_t *job = (s_job_t *) zmalloc (sizeof (s_job_t));
    job->command = command;
    job->token = token;
    snprintf (job->database, sizeof job->database, "%s",
              pole_store_path (self->store));
    if (target)
        snprintf (job->target, sizeof job->target, "%s", target);
    zframe_t *frame = zframe_new (job, sizeof *job);
    zsock_send (self->maint, "sf", "JOB", frame);
    zframe_destroy (&frame);
    free (job);
    if (command == POLE_CMD_VERIFY)
        snprintf (self->chain_state, sizeof self->chain_state, "running");
}

//  One request of a batch while it is being handled.
typedef struct {
    zframe_t *identity;         //  the peer's routing id
    zmsg_t *body;               //  the request body (after the delimiter)
    pole_request_t *req;        //  decoded, or NULL if malformed
    zmsg_t *reply;              //  the reply body, once known
    int64_t seq;                //  the event it appended, 0 if none
    int notified;               //  notifications it wrote to the outbox
    //  Who sent it, as the server established it (never as claimed when
    //  authenticated): the actor recorded, the role, and for a holder's
    //  key the holder name whose dossiers it may act on
    char actor[POLE_NAME_MAX];
    const char *role;
    char holder[POLE_NAME_MAX];
    bool authenticated;         //  the authorisation table applies
    bool deferred;              //  answered later (VERIFY, BACKUP)
} s_item_t;

static void
s_item_destroy (s_item_t **item_p)
{
    s_item_t *item = *item_p;
    if (!item)
        return;
    zframe_destroy (&item->identity);
    zmsg_destroy (&item->body);
    pole_request_destroy (&item->req);
    zmsg_destroy (&item->reply);
    free (item);
    *item_p = NULL;
}

//  UTC time of the event, ISO 8601, from the daemon's one clock.
static void
s_now (char *buffer, size_t size, int64_t *now_ms_p)
{
    int64_t now = pole_clock_now_ms ();
    pole_clock_format (now, buffer, size);
    if (now_ms_p)
        *now_ms_p = now;
}

//  A digest of the whole request body: a retry must be the same request,
//  not merely carry the same id.
static char *
s_digest (zmsg_t *body)
{
    zframe_t *encoded = zmsg_encode (body);
    zdigest_t *digest = zdigest_new ();
    zdigest_update (digest, zframe_data (encoded), zframe_size (encoded));
    char *text = strdup (zdigest_string (digest));
    zdigest_destroy (&digest);
    zframe_destroy (&encoded);
    return text;
}

static zmsg_t *
s_error (const pole_request_t *req, const char *code, const char *rule,
         const char *format, ...)
{
    char message[1024];
    va_list args;
    va_start (args, format);
    int length = vsnprintf (message, sizeof message, format, args);
    va_end (args);
    //  Cut at a character boundary: a reply must stay valid UTF-8
    if (length >= (int) sizeof message) {
        size_t end = sizeof message - 1;
        while (end > 0 && ((unsigned char) message[end] & 0xC0) == 0x80)
            end--;
        message[end] = 0;
    }
    return pole_reply_error (req ? req->request_id : "", code, message, rule);
}

//  Decide and write one mutating request. Returns the reply body; sets
//  *record when the outcome is a decision that a retry must get again.
//  Returns NULL on a store failure (the caller rolls the savepoint back).
//  FORBIDDEN: refused by the sender's role, before anything is decided.
//  Not recorded by request id: a key given another role by a reload, or a
//  request sent again on the right connection, is judged afresh.
static zmsg_t *
s_forbidden (const pole_request_t *req, const char *actor, const char *role,
             const char *what)
{
    zsys_warning ("server: %s (role %s) may not %s: FORBIDDEN", actor, role,
                  what);
    return s_error (req, POLE_ERR_FORBIDDEN, NULL,
                    "%s (role %s) may not %s", actor, role, what);
}

//  The roles that may send `event`, in words, for a FORBIDDEN message
static void
s_roles_text (unsigned roles, char *text, size_t size)
{
    text[0] = 0;
    for (int bit = POLE_ROLE_HOLDER; bit <= POLE_ROLE_CALENDAR; bit <<= 1)
        if (roles & (unsigned) bit)
            snprintf (text + strlen (text), size - strlen (text), "%s%s",
                      text[0] ? ", " : "", pole_role_name (bit));
}

//  `role` is the sender's role; with `enforce` (an authenticated sender)
//  the authorisation table applies, and a non-NULL `holder` limits the
//  sender to the dossiers of that holder.
static zmsg_t *
s_decide_and_write (pole_server_t *self, pole_request_t *req,
                    const char *role, bool enforce, const char *holder,
                    bool *record, int64_t *seq_p, int *notified_p)
{
    const pole_params_t *params = pole_config_params (self->config);
    pole_dossier_t dossier;
    memset (&dossier, 0, sizeof dossier);
    int event = POLE_E_OPEN;
    *record = true;

    if (req->command == POLE_CMD_EVENT) {
        int rc = pole_store_dossier_load (self->store, req->dossier, &dossier);
        if (rc < 0)
            return NULL;
        if (rc == 1)
            return s_error (req, POLE_ERR_NOT_FOUND, NULL,
                            "there is no dossier %" PRId64, req->dossier);
        if (req->expected_version >= 0
            && req->expected_version != dossier.version)
            return s_error (req, POLE_ERR_CONFLICT, NULL,
                            "dossier %" PRId64 " is at version %" PRId64
                            ", not %" PRId64 " as expected: read it again",
                            req->dossier, dossier.version,
                            req->expected_version);
        event = pole_event_from_name (req->event);
        if (event < 0 || event == POLE_E_OPEN) {
            char names[512] = "";
            for (int e = POLE_E_OPEN + 1; e < POLE_E_COUNT; e++)
                snprintf (names + strlen (names), sizeof names - strlen (names),
                          "%s%s", e > POLE_E_OPEN + 1 ? ", " : "",
                          pole_event_name (e));
            if (event < 0)
                return s_error (req, POLE_ERR_REFUSED, "unknown_event",
                                "'%s' is not an event of the workflow; the "
                                "events are: %s",
                                req->event, names);
        }
    }
    //  Authorisation, by the role the server established: the event's row
    //  of the table, then a holder's own dossiers only
    if (enforce && event >= 0) {
        unsigned roles = pole_workflow_event_roles ((pole_event_t) event);
        int bit = pole_role_from_name (role);
        char what[POLE_NAME_MAX + 128];
        if (bit < 0 || !(roles & (unsigned) bit)) {
            char allowed[96];
            s_roles_text (roles, allowed, sizeof allowed);
            snprintf (what, sizeof what, "send %s (it is for: %s)",
                      pole_event_name (event), allowed);
            *record = false;
            return s_forbidden (req, req->actor, role, what);
        }
        if (holder && event == POLE_E_OPEN) {
            const char *named
                = pole_fields_get (req->fields, req->field_count, "holder");
            if (named && strcmp (named, holder) != 0) {
                snprintf (what, sizeof what,
                          "open a dossier for another holder than \"%s\"",
                          holder);
                *record = false;
                return s_forbidden (req, req->actor, role, what);
            }
        }
        else if (holder && strcmp (dossier.holder, holder) != 0) {
            snprintf (what, sizeof what,
                      "act on dossier %" PRId64 ", which is not \"%s\"'s",
                      req->dossier, holder);
            *record = false;
            return s_forbidden (req, req->actor, role, what);
        }
    }
    //  The one rule that needs other dossiers: read the count here so that
    //  the engine stays pure
    pole_context_t ctx = {0};
    ctx.role = role;
    const char *pays = NULL;
    if (event == POLE_E_OPEN) {
        const pole_territory_t *territory = pole_pays_lookup (
            params, pole_fields_get (req->fields, req->field_count, "pays"));
        pays = territory ? territory->name : NULL;
    }
    else if (event == POLE_E_REOPEN)
        pays = dossier.pays;
    if (pays) {
        ctx.live_in_pays
            = pole_store_live_in_pays (self->store, pays, dossier.id);
        if (ctx.live_in_pays < 0)
            return NULL;
    }
    //  The log's times never run backwards (reports as of a day rely on
    //  it): a wall clock stepped back, or a real clock after a simulated
    //  one, stamps events with the last time recorded until it catches up
    int64_t now_ms = pole_clock_now_ms ();
    if (now_ms < self->last_event_ms)
        now_ms = self->last_event_ms;
    char at[32];
    pole_clock_format (now_ms, at, sizeof at);
    pole_decision_t decision;
    if (pole_engine_decide (&dossier, (pole_event_t) event, req->fields,
                            req->field_count, params, &ctx,
                            (time_t) (now_ms / 1000), &decision)) {
        if (self->verbose)
            zsys_info ("server: %s refused by rule %s: %s",
                       req->request_id, decision.rule, decision.message);
        return s_error (req, POLE_ERR_REFUSED, decision.rule, "%s",
                        decision.message);
    }
    //  The log keeps the fields as decided: the Pays by its canonical name,
    //  so that replaying the log does not depend on the configuration
    pole_field_t fields[POLE_PROTO_MAX_FRAMES];
    size_t count = req->field_count;
    for (size_t i = 0; i < count && i < POLE_PROTO_MAX_FRAMES; i++) {
        fields[i] = req->fields[i];
        if (event == POLE_E_OPEN && streq (fields[i].key, "pays"))
            fields[i].value = decision.pays;
    }
    pole_state_t from = dossier.state;
    pole_dossier_t before = dossier;
    pole_engine_apply (&dossier, (pole_event_t) event, fields, count,
                       decision.to);
    int rc = event == POLE_E_OPEN
                 ? pole_store_dossier_insert (self->store, &dossier, at)
                 : pole_store_dossier_update (self->store, &dossier, at);
    if (rc)
        return NULL;
    int64_t seq = pole_store_event_append (
        self->store, dossier.id, pole_event_name (event), fields, count,
        req->actor, at, from == POLE_S_NONE ? NULL : pole_state_name (from),
        pole_state_name (dossier.state), req->request_id);
    if (seq < 0)
        return NULL;
    self->last_event_ms = now_ms;
    //  The transactional outbox: the notifications commit with the event
    int notified = pole_outbox_enqueue (self->store, self->config, &dossier,
                                        pole_event_name (event), seq, now_ms);
    if (notified < 0)
        return NULL;
    //  ... and so do the timers it arms or settles
    if (pole_calendar_on_event (self->store,
                                pole_config_calendar (self->config), &before,
                                &dossier, (pole_event_t) event, fields, count,
                                now_ms, at))
        return NULL;
    *seq_p = seq;
    *notified_p = notified;

    char id_text[24], version_text[24], seq_text[24];
    snprintf (id_text, sizeof id_text, "%" PRId64, dossier.id);
    snprintf (version_text, sizeof version_text, "%" PRId64,
              dossier.version);
    snprintf (seq_text, sizeof seq_text, "%" PRId64, seq);
    const char *frames[] = {id_text, pole_state_name (dossier.state),
                            version_text, seq_text, decision.warning};
    if (self->verbose)
        zsys_info ("server: dossier %s %s: %s -> %s (seq %s)", id_text,
                   pole_event_name (event), pole_state_name (from),
                   pole_state_name (dossier.state), seq_text);
    return pole_reply_ok (req->request_id, frames, 5);
}

//  Apply one mutating request inside its own savepoint: a failure undoes
//  this request only, never its neighbours in the batch.
static void
s_apply_mutation (pole_server_t *self, s_item_t *item)
{
    pole_request_t *req = item->req;
    char *digest = s_digest (item->body);
    char *known_digest = NULL;
    zframe_t *known_reply = NULL;

    int rc = pole_store_request_find (self->store, req->request_id,
                                      &known_digest, &known_reply);
    if (rc == 0) {
        if (streq (digest, known_digest)) {
            //  A retry: the first outcome, byte for byte, applied once
            item->reply = zmsg_decode (known_reply);
            if (self->verbose)
                zsys_info ("server: %s is a retry, answered from the record",
                           req->request_id);
        }
        else
            item->reply = s_error (req, POLE_ERR_CONFLICT, NULL,
                                   "request id %s was already used for a "
                                   "different request",
                                   req->request_id);
    }
    else if (rc < 0 || pole_store_savepoint (self->store))
        item->reply = s_error (req, POLE_ERR_INTERNAL, NULL,
                               "the store could not read the request record");
    else {
        bool record = false;
        int64_t seq = 0;
        int notified = 0;
        zmsg_t *reply = s_decide_and_write (
            self, req, item->role, item->authenticated,
            item->holder[0] ? item->holder : NULL, &record, &seq, &notified);
        if (reply && record) {
            zframe_t *encoded = zmsg_encode (reply);
            char at[32];
            s_now (at, sizeof at, NULL);
            if (pole_store_request_save (self->store, req->request_id, digest,
                                         encoded, at))
                zmsg_destroy (&reply);
            zframe_destroy (&encoded);
        }
        if (reply && pole_store_release (self->store) == 0) {
            item->reply = reply;
            item->seq = seq;
            item->notified = notified;
        }
        else {
            zmsg_destroy (&reply);
            pole_store_rollback_savepoint (self->store);
            item->reply = s_error (req, POLE_ERR_INTERNAL, NULL,
                                   "the store failed; nothing was applied");
        }
    }
    zstr_free (&digest);
    zstr_free (&known_digest);
    zframe_destroy (&known_reply);
}

static void s_fire_timers (pole_server_t *self);
static void s_schedule (pole_server_t *self);

//  CLOCK: read the daemon's time, or move the simulated clock forward. A
//  move is kept in the database (a restart keeps the date), then every
//  timer it made due fires before the answer, so that the client sees the
//  calendar's work done.
static void
s_answer_clock (pole_server_t *self, s_item_t *item)
{
    pole_request_t *req = item->req;
    if (!streq (req->target, POLE_CLOCK_GET)) {
        int64_t target = 0;
        if (!pole_clock_is_simulated ()) {
            item->reply = s_error (req, POLE_ERR_REFUSED, "clock",
                                   "the clock is real: only a daemon "
                                   "configured with calendar.clock = "
                                   "\"simulated\" can be moved");
            return;
        }
        if (streq (req->target, POLE_CLOCK_ADVANCE))
            target = pole_clock_now_ms () + req->days * 86400000;
        else if (pole_clock_parse (req->value, &target)) {
            item->reply = s_error (req, POLE_ERR_BAD_REQUEST, NULL,
                                   "'%s' is not a date of the calendar",
                                   req->value);
            return;
        }
        //  Time never runs backwards: a fresh simulated clock (never
        //  moved) may go to any date after the last recorded event; after
        //  that, only forward. A set to the target applied last is a
        //  resend after a lost reply: answered, not refused.
        int64_t last = pole_store_last_event_ms (self->store);
        int64_t last_target = 0;
        int moved = pole_store_setting_get (self->store, "clock_last_target_ms",
                                            &last_target);
        bool resend = moved == 0 && target == last_target
                      && streq (req->target, POLE_CLOCK_SET);
        if (!resend
            && (target < last
                || (moved == 0 && target < pole_clock_now_ms ()))) {
            char when[32];
            pole_clock_format (target < last ? last : pole_clock_now_ms (),
                               when, sizeof when);
            item->reply = s_error (
                req, POLE_ERR_REFUSED, "clock",
                "time never runs backwards: %s %s",
                target < last ? "the last event was recorded at"
                              : "the clock already reads",
                when);
            return;
        }
        if (!resend) {
            //  The move and its record are kept together: a crash between
            //  them must not bring the old date back with the new target
            int64_t previous = pole_clock_offset ();
            pole_clock_set (target);
            if (pole_store_begin (self->store)
                || pole_store_setting_put (self->store,
                                           "clock_last_target_ms", target)
                || pole_store_setting_put (self->store, "clock_offset_ms",
                                           pole_clock_offset ())
                || pole_store_commit (self->store)) {
                pole_store_rollback (self->store);
                pole_clock_configure (true, previous);
                item->reply = s_error (req, POLE_ERR_INTERNAL, NULL,
                                       "the clock's move could not be saved; "
                                       "the clock did not move");
                return;
            }
        }
        char now[32];
        pole_clock_format (pole_clock_now_ms (), now, sizeof now);
        zsys_info ("server: %s moved the simulated clock to %s", req->actor,
                   now);
        s_fire_timers (self);
        s_schedule (self);
        //  Retries and digests on the new date are due now, too
        pole_outbox_kick (self->outbox);
    }
    char now[32];
    pole_clock_format (pole_clock_now_ms (), now, sizeof now);
    const char *frames[]
        = {now, pole_clock_is_simulated () ? "simulated" : "real"};
    item->reply = pole_reply_ok (req->request_id, frames, 2);
}

//  STATUS: one JSON object, made by SQLite (docs/ADMIN.md)
static char *
s_status_json (pole_server_t *self)
{
    sqlite3 *db = (sqlite3 *) pole_store_handle (self->store);
    const char *path = pole_store_path (self->store);
    char now[32];
    pole_clock_format (pole_clock_now_ms (), now, sizeof now);
    sqlite3_stmt *stmt = NULL;
    char *result = NULL;
    if (sqlite3_prepare_v2 (
            db,
            "SELECT json_object ("
            " 'version', ?1,"
            " 'uptime_s', ?2,"
            " 'clock', ?3, 'clock_kind', ?4,"
            " 'authentication', ?5,"
            " 'dossiers', (SELECT count (*) FROM dossiers),"
            " 'live_dossiers', (SELECT count (*) FROM dossiers WHERE state"
            "   NOT IN ('study_declined', 'not_validated', 'withdrawn',"
            "           'closed')),"
            " 'events', (SELECT coalesce (max (seq), 0) FROM events),"
            " 'outbox', json_object ("
            "   'pending', (SELECT count (*) FROM outbox WHERE state = "
            "     'pending'),"
            "   'dead', (SELECT count (*) FROM outbox WHERE state = 'dead'),"
            "   'delivered', (SELECT count (*) FROM outbox WHERE state = "
            "     'delivered')),"
            " 'database', ?6,"
            " 'database_bytes', ?7,"
            " 'requests', ?8, 'batches', ?9,"
            " 'chain_head', json_object ('seq', ?10, 'hash', ?11),"
            " 'chain', ?12)",
            -1, &stmt, NULL)
        == SQLITE_OK) {
        sqlite3_bind_text (stmt, 1, "poled " POLE_VERSION, -1, SQLITE_STATIC);
        sqlite3_bind_int64 (stmt, 2,
                            (zclock_mono () - self->started_ms) / 1000);
        sqlite3_bind_text (stmt, 3, now, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text (stmt, 4,
                           pole_clock_is_simulated () ? "simulated" : "real",
                           -1, SQLITE_STATIC);
        sqlite3_bind_text (stmt, 5, self->authenticated ? "curve" : "off",
                           -1, SQLITE_STATIC);
        sqlite3_bind_text (stmt, 6, path, -1, SQLITE_STATIC);
        sqlite3_bind_int64 (stmt, 7, pole_store_size_bytes (self->store));
        sqlite3_bind_int64 (stmt, 8, (int64_t) self->requests);
        sqlite3_bind_int64 (stmt, 9, (int64_t) self->batches);
        int64_t head_seq = 0;
        char head_hash[65] = "";
        pole_store_chain_head (self->store, &head_seq, head_hash);
        sqlite3_bind_int64 (stmt, 10, head_seq);
        sqlite3_bind_text (stmt, 11, head_hash, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text (stmt, 12, self->chain_state, -1, SQLITE_STATIC);
        if (sqlite3_step (stmt) == SQLITE_ROW)
            result = strdup ((const char *) sqlite3_column_text (stmt, 0));
    }
    sqlite3_finalize (stmt);
    return result;
}

//  Answer a read. Runs after the batch's commit, so it sees it.
static void
s_answer_read (pole_server_t *self, s_item_t *item)
{
    pole_request_t *req = item->req;
    const pole_params_t *params = pole_config_params (self->config);
    char *json = NULL;

    switch (req->command) {
    case POLE_CMD_PING: {
        const char *frames[] = {"poled " POLE_VERSION};
        item->reply = pole_reply_ok (req->request_id, frames, 1);
        return;
    }
    case POLE_CMD_SHOW:
    case POLE_CMD_HISTORY:
        if (item->holder[0]) {
            //  A holder reads its own dossiers only
            pole_dossier_t dossier;
            int rc = pole_store_dossier_load (self->store, req->dossier,
                                              &dossier);
            if (rc == 0 && strcmp (dossier.holder, item->holder) != 0) {
                char what[POLE_NAME_MAX + 64];
                snprintf (what, sizeof what,
                          "read dossier %" PRId64 ", which is not \"%s\"'s",
                          req->dossier, item->holder);
                item->reply = s_forbidden (req, item->actor, item->role, what);
                return;
            }
        }
        json = req->command == POLE_CMD_SHOW
                   ? pole_store_show_json (self->store, req->dossier, params)
                   : pole_store_history_json (self->store, req->dossier);
        break;
    case POLE_CMD_STATUS:
        json = s_status_json (self);
        break;
    case POLE_CMD_VERIFY:
    case POLE_CMD_BACKUP: {
        //  Answered when the worker is done (s_on_maint); meanwhile the
        //  loop serves everyone else
        s_waiter_t *waiter = (s_waiter_t *) zmalloc (sizeof (s_waiter_t));
        waiter->source = self->source;
        waiter->identity = zframe_dup (item->identity);
        waiter->request_id = strdup (req->request_id);
        uint64_t token = ++self->next_token;
        zhashx_insert (self->waiting, (void *) (uintptr_t) token, waiter);
        zsys_info ("server: %s (%s) asked for %s%s%s",
                   item->actor[0] ? item->actor : "a client",
                   item->role,
                   req->command == POLE_CMD_VERIFY ? "a verification of the "
                                                     "event log"
                                                   : "a backup to ",
                   req->command == POLE_CMD_BACKUP ? req->target : "", "");
        s_maint_start (self, req->command, token, req->target);
        item->deferred = true;
        return;
    }
    case POLE_CMD_REPORT:
        json = pole_store_report_json (
            self->store,
            pole_fields_get (req->fields, req->field_count, "as_of"), params);
        break;
    case POLE_CMD_OUTBOX: {
        const char *state
            = pole_fields_get (req->fields, req->field_count, "state");
        if (state && !streq (state, "pending") && !streq (state, "delivered")
            && !streq (state, "dead")) {
            item->reply = s_error (req, POLE_ERR_BAD_REQUEST, NULL,
                                   "'%s' is not a notification state "
                                   "(pending, delivered, dead)",
                                   state);
            return;
        }
        json = pole_store_outbox_json (self->store, state);
        break;
    }
    case POLE_CMD_AGENDA:
        json = pole_store_agenda_json (
            self->store, pole_clock_now_ms () + req->days * 86400000);
        break;
    case POLE_CMD_CLOCK:
        s_answer_clock (self, item);
        return;
    case POLE_CMD_RETRY: {
        //  One UPDATE, durable on its own (synchronous=FULL); queuing a
        //  notification again is idempotent, so it is not recorded
        bool dead = streq (req->target, POLE_RETRY_DEAD);
        int queued = pole_store_outbox_retry (
            self->store, dead ? NULL : req->target, pole_clock_now_ms ());
        if (queued == -2) {
            item->reply = s_error (req, POLE_ERR_NOT_FOUND, NULL,
                                   "there is no notification %s",
                                   req->target);
            return;
        }
        if (queued < 0) {
            item->reply = s_error (req, POLE_ERR_INTERNAL, NULL,
                                   "the store could not queue the "
                                   "notifications again");
            return;
        }
        zsys_info ("server: %s queued %d notification(s) again",
                   req->actor, queued);
        pole_outbox_kick (self->outbox);
        char count[24];
        snprintf (count, sizeof count, "%d", queued);
        const char *frames[] = {count};
        item->reply = pole_reply_ok (req->request_id, frames, 1);
        return;
    }
    case POLE_CMD_LIST: {
        const char *state
            = pole_fields_get (req->fields, req->field_count, "state");
        const char *pays_in
            = pole_fields_get (req->fields, req->field_count, "pays");
        const char *pays = NULL;
        if (state && pole_state_from_name (state) <= POLE_S_NONE) {
            item->reply = s_error (req, POLE_ERR_BAD_REQUEST, NULL,
                                   "'%s' is not a state", state);
            return;
        }
        if (pays_in) {
            const pole_territory_t *territory
                = pole_pays_lookup (params, pays_in);
            if (!territory) {
                item->reply = s_error (req, POLE_ERR_BAD_REQUEST, NULL,
                                       "'%s' is not one of the configured "
                                       "Pays",
                                       pays_in);
                return;
            }
            pays = territory->name;
        }
        bool overdue
            = pole_fields_get (req->fields, req->field_count, "overdue")
              != NULL;
        //  A holder's key lists its own dossiers only
        json = pole_store_list_json (self->store, state, pays, overdue,
                                     item->holder[0] ? item->holder : NULL,
                                     params);
        break;
    }
    default:
        break;
    }
    if (json) {
        const char *frames[] = {json};
        item->reply = pole_reply_ok (req->request_id, frames, 1);
        zstr_free (&json);
    }
    else if (req->command == POLE_CMD_SHOW || req->command == POLE_CMD_HISTORY)
        item->reply = s_error (req, POLE_ERR_NOT_FOUND, NULL,
                               "there is no dossier %" PRId64, req->dossier);
    else
        item->reply = s_error (req, POLE_ERR_INTERNAL, NULL,
                               "the store could not answer");
}

//  Who sent this message. On the local socket: the Unix user at the other
//  end (libzmq reads SO_PEERCRED: Peer-Address ends in ":UID:GID:PID"), an
//  administrator. With CURVE: the key that zauth admitted (User-Id), and
//  its name and role from the keys list. Otherwise authentication is off
//  and the actor the request states is trusted (the roles section gives
//  its role). Returns false if the sender cannot be established (a key
//  that a reload removed from the list while its connection stayed open).
static bool
s_identify (pole_server_t *self, s_item_t *item, zframe_t *frame)
{
    item->role = "holder";
    if (self->source == S_SOURCE_LOCAL) {
        const char *peer = frame ? zframe_meta (frame, "Peer-Address") : NULL;
        long uid = -1;
        if (peer) {
            //  ...:UID:GID:PID: the third field from the end
            const char *scan = peer + strlen (peer);
            int colons = 0;
            while (scan > peer && colons < 3)
                if (*--scan == ':')
                    colons++;
            if (colons == 3)
                uid = strtol (scan + 1, NULL, 10);
        }
        struct passwd entry, *found = NULL;
        char buffer[1024];
        if (uid >= 0
            && getpwuid_r ((uid_t) uid, &entry, buffer, sizeof buffer, &found)
                   == 0
            && found)
            snprintf (item->actor, sizeof item->actor, "%s", found->pw_name);
        else if (uid >= 0)
            snprintf (item->actor, sizeof item->actor, "uid %ld", uid);
        else
            snprintf (item->actor, sizeof item->actor, "local");
        item->role = "admin";
        item->authenticated = true;
        return true;
    }
    if (self->authenticated) {
        const char *user = frame ? zframe_meta (frame, "User-Id") : NULL;
        const pole_key_t *key = pole_config_key_find (self->config, user);
        item->authenticated = true;
        if (!key) {
            snprintf (item->actor, sizeof item->actor, "key %s",
                      user ? user : "(none)");
            return false;
        }
        snprintf (item->actor, sizeof item->actor, "%s", key->name);
        item->role = key->role;
        if (key->holder)
            snprintf (item->holder, sizeof item->holder, "%s", key->holder);
        return true;
    }
    if (item->req && item->req->actor) {
        snprintf (item->actor, sizeof item->actor, "%s", item->req->actor);
        item->role = pole_config_role (self->config, item->req->actor);
    }
    return true;
}

//  Reads and commands by role (docs/ADMIN.md). Events are judged by the
//  authorisation table in s_decide_and_write. Returns NULL if allowed,
//  else what the sender may not do, in words.
static const char *
s_command_forbidden (const s_item_t *item)
{
    if (!item->authenticated)
        return NULL;
    const pole_request_t *req = item->req;
    int bit = pole_role_from_name (item->role);
    unsigned staff = POLE_ROLE_CRES | POLE_ROLE_REGION | POLE_ROLE_ADMIN;
    switch (req->command) {
    case POLE_CMD_AGENDA:
        return (bit & staff) ? NULL
                             : "read the agenda of every dossier (a holder "
                               "reads its own obligations with show)";
    case POLE_CMD_OUTBOX:
        return (bit & staff) ? NULL : "read the notifications";
    case POLE_CMD_RETRY:
        return (bit & (POLE_ROLE_CRES | POLE_ROLE_ADMIN))
                   ? NULL
                   : "queue notifications again";
    case POLE_CMD_CLOCK:
        return streq (req->target, POLE_CLOCK_GET) || bit == POLE_ROLE_ADMIN
                   ? NULL
                   : "move the clock";
    case POLE_CMD_STATUS:
        return (bit & staff) ? NULL : "read the daemon's status";
    case POLE_CMD_VERIFY:
        return (bit & (POLE_ROLE_REGION | POLE_ROLE_ADMIN))
                   ? NULL
                   : "verify the event log";
    case POLE_CMD_BACKUP:
        return bit == POLE_ROLE_ADMIN ? NULL : "back the database up";
    default:
        return NULL;
    }
}

//  Take a request message apart: routing id, delimiter, body; decode the
//  body. A malformed request gets its error reply at once.
static s_item_t *
s_decode_item (pole_server_t *self, zmsg_t *msg)
{
    s_item_t *item = (s_item_t *) zmalloc (sizeof (s_item_t));
    item->identity = zmsg_pop (msg);
    zframe_t *delimiter = zmsg_pop (msg);
    item->body = msg;
    if (!delimiter || zframe_size (delimiter) != 0) {
        zsys_warning ("server: request without the empty delimiter frame, "
                      "answered BAD_REQUEST");
        item->reply = pole_reply_error (
            "", POLE_ERR_BAD_REQUEST,
            "the request must start with an empty delimiter frame "
            "(a DEALER client sends it itself, see PROTOCOL.md section 2)",
            NULL);
        zframe_destroy (&delimiter);
        return item;
    }
    zframe_destroy (&delimiter);

    const char *code = NULL;
    char reason[256];
    char *request_id = NULL;
    if (pole_request_decode (item->body, &item->req, &code, reason,
                             sizeof reason, &request_id)) {
        zsys_warning ("server: malformed request (%s): %s", code, reason);
        item->reply = pole_reply_error (request_id ? request_id : "", code,
                                        reason, NULL);
        zstr_free (&request_id);
    }
    else if (self->verbose)
        zsys_info ("server: %s %s", pole_command_name (item->req->command),
                   item->req->request_id);
    if (!item->req)
        return item;
    if (!s_identify (self, item, zmsg_first (item->body))) {
        item->reply = s_forbidden (item->req, item->actor, "none",
                                   "act: the key is not (or no longer) in "
                                   "the keys list");
        return item;
    }
    //  What the history records is who the server established, never the
    //  actor the request claims
    if (item->authenticated && item->req->actor) {
        char *actor = strdup (item->actor);
        if (actor) {
            free (item->req->actor);
            item->req->actor = actor;
        }
    }
    const char *forbidden = s_command_forbidden (item);
    if (forbidden)
        item->reply = s_forbidden (item->req, item->actor, item->role,
                                   forbidden);
    return item;
}

//  True if a reply body says OK (frame 3)
static bool
s_reply_is_ok (zmsg_t *reply)
{
    zframe_t *status = zmsg_first (reply);
    status = status ? zmsg_next (reply) : NULL;
    status = status ? zmsg_next (reply) : NULL;
    return status && zframe_streq (status, "OK");
}

//  One message on the live stream: topic PAYS/STATE/EVENT, signature, JSON
static void
s_publish (pole_server_t *self, int64_t seq)
{
    if (!self->publisher)
        return;
    char *topic = NULL;
    char *json = pole_store_event_json (self->store, seq, &topic);
    if (!json)
        return;
    zmsg_t *msg = zmsg_new ();
    zmsg_addstr (msg, topic);
    zmsg_addstr (msg, POLE_PROTO_SIGNATURE);
    zmsg_addstr (msg, json);
    //  PUB never blocks: past its high-water mark a slow subscriber loses
    //  messages (PROTOCOL.md); the outbox is what delivers
    zmsg_send (&msg, self->publisher);
    zmsg_destroy (&msg);
    zstr_free (&topic);
    zstr_free (&json);
}

void
pole_server_handle_batch (pole_server_t *self, zlist_t *requests,
                          zlist_t *replies)
{
    zlist_t *items = zlist_new ();
    size_t mutations = 0;
    zmsg_t *msg;
    while ((msg = (zmsg_t *) zlist_pop (requests))) {
        s_item_t *item = s_decode_item (self, msg);
        if (item->req && pole_command_is_mutating (item->req->command))
            mutations++;
        zlist_append (items, item);
    }
    self->batches++;
    self->requests += zlist_size (items);

    //  Phase 1: the mutations, in arrival order, in one transaction
    if (mutations) {
        bool open = pole_store_begin (self->store) == 0;
        for (s_item_t *item = (s_item_t *) zlist_first (items); item;
             item = (s_item_t *) zlist_next (items)) {
            if (item->reply || !pole_command_is_mutating (item->req->command))
                continue;
            if (open) {
                s_apply_mutation (self, item);
                //  On disk full or an I/O error SQLite may roll the whole
                //  transaction back: then nothing of the batch stands, and
                //  nothing more may run outside it
                if (!pole_store_in_transaction (self->store))
                    open = false;
            }
            else
                item->reply = s_error (item->req, POLE_ERR_INTERNAL, NULL,
                                       "the store could not start a "
                                       "transaction; nothing was applied");
        }
        if (open && !pole_store_in_transaction (self->store))
            open = false;   //  rolled back by SQLite itself, see below
        if (!open || pole_store_commit (self->store)) {
            pole_store_rollback (self->store);
            zsys_error ("server: a batch of %zu failed: every "
                        "mutation in it is answered INTERNAL",
                        mutations);
            for (s_item_t *item = (s_item_t *) zlist_first (items); item;
                 item = (s_item_t *) zlist_next (items)) {
                if (!item->req || !pole_command_is_mutating (item->req->command))
                    continue;
                zmsg_destroy (&item->reply);
                item->reply = s_error (item->req, POLE_ERR_INTERNAL, NULL,
                                       "the commit failed; nothing was "
                                       "applied, retry with the same "
                                       "request id");
            }
        }
    }
    //  Phase 2: what follows a commit: the live stream, in commit order,
    //  and a kick to the delivery worker; never for an uncommitted event
    bool notified = false;
    for (s_item_t *item = (s_item_t *) zlist_first (items); item;
         item = (s_item_t *) zlist_next (items))
        if (item->seq > 0 && item->reply && s_reply_is_ok (item->reply)) {
            s_publish (self, item->seq);
            notified = notified || item->notified > 0;
        }
    if (notified)
        pole_outbox_kick (self->outbox);
    //  The batch may have armed or settled timers
    if (mutations)
        s_schedule (self);

    //  Phase 3: the reads, which see what was just committed; then the
    //  replies, in arrival order
    s_item_t *item;
    while ((item = (s_item_t *) zlist_pop (items))) {
        if (!item->reply)
            s_answer_read (self, item);
        if (item->deferred) {
            s_item_destroy (&item);
            continue;
        }
        zmsg_t *reply = item->reply;
        item->reply = NULL;
        zmsg_pushmem (reply, "", 0);
        zmsg_prepend (reply, &item->identity);
        zlist_append (replies, reply);
        s_item_destroy (&item);
    }
    zlist_destroy (&items);
}

//  A JSON object of a finished job, made by SQLite
static char *
s_job_json (pole_server_t *self, const s_job_t *job)
{
    sqlite3 *db = (sqlite3 *) pole_store_handle (self->store);
    sqlite3_stmt *stmt = NULL;
    char *result = NULL;
    const char *sql
        = job->command == POLE_CMD_VERIFY
              ? "SELECT json_object ('ok', json (?1), 'events', ?2,"
                " 'head_seq', ?3, 'head_hash', ?4, 'problem', ?5,"
                " 'seq', ?6, 'message', ?7, 'ms', ?8)"
              : "SELECT json_object ('path', ?1, 'bytes', ?2, 'pages', ?3,"
                " 'events', ?4, 'head_seq', ?5, 'head_hash', ?6, 'ms', ?7,"
                " 'restarts', ?8)";
    if (sqlite3_prepare_v2 (db, sql, -1, &stmt, NULL) != SQLITE_OK)
        return NULL;
    if (job->command == POLE_CMD_VERIFY) {
        const pole_audit_result_t *r = &job->verify;
        char message[1024];
        if (r->ok)
            snprintf (message, sizeof message,
                      "the event log is intact: %" PRId64 " events, chain "
                      "head at seq %" PRId64 " (%s)",
                      r->events, r->head_seq,
                      r->head_hash[0] ? r->head_hash : "empty log");
        else
            snprintf (message, sizeof message, "%s", r->message);
        sqlite3_bind_text (stmt, 1, r->ok ? "true" : "false", -1,
                           SQLITE_STATIC);
        sqlite3_bind_int64 (stmt, 2, r->events);
        sqlite3_bind_int64 (stmt, 3, r->head_seq);
        sqlite3_bind_text (stmt, 4, r->head_hash, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text (stmt, 5, pole_audit_problem_name (r->problem), -1,
                           SQLITE_STATIC);
        if (r->bad_seq > 0)
            sqlite3_bind_int64 (stmt, 6, r->bad_seq);
        sqlite3_bind_text (stmt, 7, message, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64 (stmt, 8, r->ms);
    }
    else {
        const pole_audit_backup_t *b = &job->backup;
        sqlite3_bind_text (stmt, 1, job->target, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64 (stmt, 2, b->bytes);
        sqlite3_bind_int64 (stmt, 3, b->pages);
        sqlite3_bind_int64 (stmt, 4, b->events);
        sqlite3_bind_int64 (stmt, 5, b->head_seq);
        sqlite3_bind_text (stmt, 6, b->head_hash, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64 (stmt, 7, b->ms);
        sqlite3_bind_int (stmt, 8, b->restarts);
    }
    if (sqlite3_step (stmt) == SQLITE_ROW)
        result = strdup ((const char *) sqlite3_column_text (stmt, 0));
    sqlite3_finalize (stmt);
    return result;
}

//  The worker finished a job: log it, and answer whoever asked
static int
s_on_maint (zloop_t *loop, zsock_t *pipe, void *arg)
{
    (void) loop;
    pole_server_t *self = (pole_server_t *) arg;
    zframe_t *frame = NULL;
    if (zsock_recv (pipe, "f", &frame) || !frame
        || zframe_size (frame) != sizeof (s_job_t)) {
        zframe_destroy (&frame);
        return 0;
    }
    const s_job_t *job = (const s_job_t *) zframe_data (frame);
    if (job->command == POLE_CMD_VERIFY) {
        const pole_audit_result_t *r = &job->verify;
        if (job->rc != 0)
            zsys_error ("audit: the event log could not be verified: %s",
                        r->message);
        else if (r->ok)
            zsys_info ("audit: the event log's hash chain verifies: %" PRId64
                       " events, head seq %" PRId64 " %s (%" PRId64 " ms)",
                       r->events, r->head_seq, r->head_hash, r->ms);
        else
            zsys_error ("audit: THE EVENT LOG WAS CHANGED BEHIND THE "
                        "DAEMON'S BACK (%s at seq %" PRId64 "): %s",
                        pole_audit_problem_name (r->problem), r->bad_seq,
                        r->message);
        snprintf (self->chain_state, sizeof self->chain_state, "%s",
                  job->rc ? "error"
                          : r->ok ? "ok" : pole_audit_problem_name (r->problem));
    }
    else if (job->rc == 0)
        zsys_info ("audit: backup written to %s: %" PRId64 " bytes, %" PRId64
                   " events, %" PRId64 " ms",
                   job->target, job->backup.bytes, job->backup.events,
                   job->backup.ms);
    else
        zsys_error ("audit: backup to %s failed: %s", job->target,
                    job->backup.error);

    s_waiter_t *waiter = job->token ? (s_waiter_t *) zhashx_lookup (
                             self->waiting, (void *) (uintptr_t) job->token)
                                    : NULL;
    if (waiter) {
        zmsg_t *reply = NULL;
        pole_request_t req = {.request_id = waiter->request_id};
        if (job->command == POLE_CMD_VERIFY && job->rc)
            reply = s_error (&req, POLE_ERR_INTERNAL, NULL,
                             "the event log could not be verified: %s",
                             job->verify.message);
        else if (job->command == POLE_CMD_BACKUP && job->rc)
            reply = s_error (&req, POLE_ERR_REFUSED, "backup",
                             "no backup was made: %s", job->backup.error);
        else {
            char *json = s_job_json (self, job);
            if (json) {
                const char *frames[] = {json};
                reply = pole_reply_ok (waiter->request_id, frames, 1);
                zstr_free (&json);
            }
            else
                reply = s_error (&req, POLE_ERR_INTERNAL, NULL,
                                 "the answer could not be written");
        }
        zmsg_pushmem (reply, "", 0);
        zmsg_prepend (reply, &waiter->identity);
        zsock_t *socket
            = waiter->source == S_SOURCE_LOCAL ? self->local : self->router;
        if (zmsg_send (&reply, socket)) {
            zsys_warning ("server: the answer to %s could not be delivered: "
                          "the client has gone",
                          waiter->request_id);
            zmsg_destroy (&reply);
        }
        zhashx_delete (self->waiting, (void *) (uintptr_t) job->token);
    }
    zframe_destroy (&frame);
    return 0;
}

//  The socket is readable: drain what is waiting, up to batch_max, without
//  blocking (the socket's receive timeout is 0: zmsg_recv returns NULL
//  once nothing waits), then handle it as one batch. Asking ZMQ_EVENTS
//  before each message, as this loop once did, made libzmq poll its
//  mailbox each time: about one poll and one getpid more per request,
//  a tenth of poled's system calls at 16 clients (RESULTS.md, sitting 4).
static int
s_on_router (zloop_t *loop, zsock_t *router, void *arg)
{
    (void) loop;
    pole_server_t *self = (pole_server_t *) arg;
    self->source = router == self->local ? S_SOURCE_LOCAL : S_SOURCE_MAIN;
    int batch_max = pole_config_batch_max (self->config);
    zlist_t *requests = zlist_new ();
    while ((int) zlist_size (requests) < batch_max) {
        zmsg_t *msg = zmsg_recv (router);
        if (!msg)
            break;
        zlist_append (requests, msg);
    }
    zlist_t *replies = zlist_new ();
    pole_server_handle_batch (self, requests, replies);
    zmsg_t *reply;
    while ((reply = (zmsg_t *) zlist_pop (replies))) {
        //  ROUTER_MANDATORY with a zero send timeout: a peer that has gone
        //  or stopped reading is reported, never waited for
        if (zmsg_send (&reply, router)) {
            zsys_warning ("server: a reply could not be delivered (%s): the "
                          "client has gone or does not read",
                          zmq_strerror (zmq_errno ()));
            zmsg_destroy (&reply);
        }
    }
    zlist_destroy (&replies);
    zlist_destroy (&requests);
    self->source = S_SOURCE_MAIN;
    return 0;
}

//  --------------------------------------------------------------------------
//  The calendar: due timers fire through the same path as a client's
//  event, one transaction per pass, each timer in its own savepoint; its
//  new state and the event it sends commit together, so that a crash
//  before the commit fires it again after the restart, and never twice.

#define S_TIMERS_PER_PASS 64

static void
s_fire_timers (pole_server_t *self)
{
    //  Bounded: a clock moved years ahead opens year after year, each
    //  arming the next; a pass handles what is due, and passes repeat
    for (int pass = 0; pass < 100; pass++) {
        pole_timer_t timers[S_TIMERS_PER_PASS];
        int count = pole_store_timers_due (self->store, pole_clock_now_ms (),
                                           timers, S_TIMERS_PER_PASS);
        if (count <= 0 || pole_store_begin (self->store))
            return;
        zlist_t *published = zlist_new ();
        bool notified = false;
        bool failed = false;
        for (int i = 0; i < count; i++) {
            pole_timer_t *timer = &timers[i];
            pole_dossier_t dossier;
            if (pole_store_savepoint (self->store))
                break;
            bool ok = pole_store_dossier_load (self->store, timer->dossier,
                                               &dossier)
                      == 0;
            pole_calendar_action_t action;
            if (ok) {
                pole_calendar_decide (timer, &dossier, pole_clock_now_ms (),
                                      &action);
                char at[32];
                s_now (at, sizeof at, NULL);
                ok = pole_store_timer_set_state (self->store, timer->id,
                                                 action.timer_state, at)
                     == 0;
            }
            if (ok && action.event != POLE_E_COUNT) {
                //  The calendar is an actor of its own, with its own role.
                //  Its events carry no request id (a client may choose any
                //  id): the timer's new state, in the same transaction, is
                //  what makes the event once-only
                pole_request_t req
                    = {.command = POLE_CMD_EVENT,
                       .request_id = NULL,
                       .actor = (char *) "calendar",
                       .dossier = timer->dossier,
                       .expected_version = -1,
                       .event = (char *) pole_event_name (action.event),
                       .fields = action.fields,
                       .field_count = action.field_count};
                bool record;
                int64_t seq = 0;
                int written = 0;
                zmsg_t *reply
                    = s_decide_and_write (self, &req, "calendar", false, NULL,
                                          &record, &seq, &written);
                ok = reply != NULL;
                if (reply && !s_reply_is_ok (reply))
                    zsys_warning ("calendar: timer %" PRId64 " (%s) of "
                                  "dossier %" PRId64 ": %s refused",
                                  timer->id, timer->kind, timer->dossier,
                                  req.event);
                else if (reply) {
                    zsys_info ("calendar: dossier %" PRId64 ": %s (%s)",
                               timer->dossier, req.event, timer->kind);
                    zlist_append (published, (void *) (intptr_t) seq);
                    notified = notified || written > 0;
                }
                zmsg_destroy (&reply);
            }
            if (ok)
                pole_store_release (self->store);
            else {
                pole_store_rollback_savepoint (self->store);
                zsys_error ("calendar: timer %" PRId64 " could not fire; it "
                            "will be tried again",
                            timer->id);
                failed = true;
            }
        }
        bool committed = pole_store_in_transaction (self->store)
                         && pole_store_commit (self->store) == 0;
        pole_store_rollback (self->store);
        if (committed) {
            for (void *seq = zlist_first (published); seq;
                 seq = zlist_next (published))
                s_publish (self, (int64_t) (intptr_t) seq);
            if (notified)
                pole_outbox_kick (self->outbox);
        }
        zlist_destroy (&published);
        //  A timer that could not fire stays armed: try it again in a
        //  while, not in a hot loop (s_schedule reads the backoff)
        self->calendar_backoff = committed && !failed ? 0 : 1000;
        if (!committed || failed)
            return;
    }
}

static int
s_on_calendar (zloop_t *loop, int timer_id, void *arg)
{
    (void) loop;
    (void) timer_id;
    pole_server_t *self = (pole_server_t *) arg;
    self->calendar_timer = 0;
    s_fire_timers (self);
    s_schedule (self);
    return 0;
}

//  One zloop timer, for the next due date only. Capped at an hour, so that
//  a real clock changed under the daemon (or a suspended machine) is
//  caught up within the hour.
static void
s_schedule (pole_server_t *self)
{
    if (self->calendar_timer) {
        zloop_timer_end (self->loop, self->calendar_timer);
        self->calendar_timer = 0;
    }
    int64_t next = pole_store_timer_next (self->store);
    if (next < 0)
        return;
    int64_t delay = next - pole_clock_now_ms ();
    if (delay < self->calendar_backoff)
        delay = self->calendar_backoff;
    if (delay < 1)
        delay = 1;
    if (delay > 3600000)
        delay = 3600000;
    self->calendar_timer
        = zloop_timer (self->loop, (size_t) delay, 1, s_on_calendar, self);
}

//  A signal that lands between zloop's check of zsys_interrupted and its
//  next poll would otherwise wait for the tickless timeout (up to an hour):
//  this tick bounds the time from SIGTERM to a clean stop.
static void s_reload (pole_server_t *self);
static void s_notify_status (pole_server_t *self);

static int
s_on_tick (zloop_t *loop, int timer_id, void *arg)
{
    (void) loop;
    (void) timer_id;
    pole_server_t *self = (pole_server_t *) arg;
    if (zsys_interrupted)
        return -1;
    if (zclock_mono () >= self->status_due_ms)
        s_notify_status (self);
    //  The bound of the WAL checkpoint (store.h), between two batches,
    //  never inside a COMMIT: the store's checkpointer thread makes the
    //  checkpoints; this catches up when it could not (steady writes), so
    //  that the WAL starts over. An integer comparison when idle.
    pole_store_checkpoint_idle (self->store);
    return 0;
}

//  SIGHUP, read from a signalfd: zloop ends on any signal that interrupts
//  its poll, so poled blocks SIGHUP in every thread (poled.c) and the loop
//  reads it here, as one more event, between two batches
static int
s_on_sighup (zloop_t *loop, zmq_pollitem_t *item, void *arg)
{
    (void) loop;
    pole_server_t *self = (pole_server_t *) arg;
    struct signalfd_siginfo info;
    bool reload = false;
    while (read (item->fd, &info, sizeof info) == sizeof info)
        reload = true;      //  several SIGHUPs before we look: one reload
    if (reload)
        s_reload (self);
    return 0;
}

//  systemd's watchdog, fed from the loop itself: a loop that hangs stops
//  feeding it, and systemd restarts the daemon
static int
s_on_watchdog (zloop_t *loop, int timer_id, void *arg)
{
    (void) loop;
    (void) timer_id;
    (void) arg;
    sd_notify (0, "WATCHDOG=1");
    return 0;
}

//  The one-line summary systemctl status shows, every 10 seconds at most.
//  Without NOTIFY_SOCKET sd_notify does nothing, so nothing is queried.
static void
s_notify_status (pole_server_t *self)
{
    self->status_due_ms = zclock_mono () + 10000;
    if (!getenv ("NOTIFY_SOCKET"))
        return;
    sqlite3 *db = (sqlite3 *) pole_store_handle (self->store);
    sqlite3_stmt *stmt = NULL;
    if (sqlite3_prepare_v2 (
            db,
            "SELECT (SELECT count (*) FROM dossiers),"
            " (SELECT coalesce (max (seq), 0) FROM events),"
            " (SELECT count (*) FROM outbox WHERE state = 'pending'),"
            " (SELECT count (*) FROM outbox WHERE state = 'dead')",
            -1, &stmt, NULL)
            == SQLITE_OK
        && sqlite3_step (stmt) == SQLITE_ROW)
        sd_notifyf (0,
                    "STATUS=%lld dossiers, %lld events, %lld notifications "
                    "pending, %lld dead; %" PRIu64 " requests served",
                    sqlite3_column_int64 (stmt, 0),
                    sqlite3_column_int64 (stmt, 1),
                    sqlite3_column_int64 (stmt, 2),
                    sqlite3_column_int64 (stmt, 3), self->requests);
    sqlite3_finalize (stmt);
}

//  True if every tcp:// endpoint of the comma-separated `endpoints` is on a
//  loopback address: without authentication, nothing else may be bound
static bool
s_loopback_only (const char *endpoints, char *offender, size_t size)
{
    char *list = strdup (endpoints);
    bool ok = true;
    char *saved = NULL;
    for (char *item = strtok_r (list, ",", &saved); item && ok;
         item = strtok_r (NULL, ",", &saved)) {
        if (strncmp (item, "tcp://", 6) != 0)
            continue;
        const char *host = item + 6;
        ok = strncmp (host, "127.", 4) == 0
             || strncmp (host, "localhost:", 10) == 0
             || strncmp (host, "[::1]:", 6) == 0;
        if (!ok)
            snprintf (offender, size, "%s", item);
    }
    free (list);
    return ok;
}

//  zauth, the ZAP handler of czmq, with the configured keys in a certstore
//  held in memory (zauth owns it). Only keys listed are admitted to the
//  CURVE handshake.
static zactor_t *
s_auth_new (pole_config_t *config, bool verbose)
{
    zcertstore_t *store = zcertstore_new (NULL);
    static const byte no_secret[32] = {0};
    for (size_t index = 0; index < pole_config_key_count (config); index++) {
        byte public_key[32];
        if (!zmq_z85_decode (public_key, pole_config_key (config, index)->key))
            continue;   //  checked by the config; never here
        zcert_t *cert = zcert_new_from (public_key, no_secret);
        zcertstore_insert (store, &cert);
    }
    zactor_t *auth = zactor_new (zauth, store);
    if (auth && verbose) {
        zstr_sendx (auth, "VERBOSE", NULL);
        zsock_wait (auth);
    }
    return auth;
}

//  Make a server socket CURVE-only: the server's key pair, and the ZAP
//  domain that zauth serves. With ZAP enforced, a connection that arrives
//  while zauth is being replaced (a reload) is refused rather than let in
//  unauthenticated; the client's libzmq reconnects by itself.
static void
s_secure (zsock_t *socket, zcert_t *cert)
{
    zcert_apply (cert, socket);
    zsock_set_curve_server (socket, 1);
    zsock_set_zap_domain (socket, "pole");
    zsock_set_zap_enforce_domain (socket, 1);
}

//  SIGHUP: read the configuration again. A file that does not load is
//  refused, its reason logged, and the running configuration kept. A good
//  one applies between two batches, so no request is dropped (they wait
//  in the socket): programme parameters, territories, roles, keys and
//  coordinators. Where the daemon listens and its database need a
//  restart, and so does switching authentication on or off.
static void
s_reload (pole_server_t *self)
{
    const char *path = pole_config_path (self->config);
    sd_notifyf (0, "RELOADING=1\nSTATUS=reloading %s\nMONOTONIC_USEC=%" PRIu64,
                path, (uint64_t) zclock_usecs ());
    zsys_info ("server: SIGHUP: reading %s again", path);
    char error[1024];
    pole_config_t *fresh = pole_config_load (path, error, sizeof error);
    const char *refusal = NULL;
    if (!fresh)
        refusal = error;
    else if ((pole_config_curve_cert (fresh) != NULL) != self->authenticated)
        refusal = "curve.cert was added or removed: switching "
                  "authentication on or off needs a restart";
    else if (pole_store_begin (self->store)
             || pole_store_set_territories (self->store,
                                            pole_config_params (fresh))
             || pole_store_commit (self->store)) {
        pole_store_rollback (self->store);
        pole_store_set_territories (self->store,
                                    pole_config_params (self->config));
        refusal = "the territories could not be loaded into the store";
    }
    if (refusal) {
        zsys_error ("server: reload refused, the running configuration is "
                    "kept: %s",
                    refusal);
        pole_config_destroy (&fresh);
        sd_notifyf (0, "READY=1\nSTATUS=reload refused: %.200s", refusal);
        self->status_due_ms = zclock_mono () + 60000;
        return;
    }
    //  poled -l overrides the file; a change needs a restart anyway
    const char *running_local = pole_config_local_endpoint (self->config);
    if (strcmp (pole_config_local_endpoint (fresh), running_local))
        zsys_warning ("server: reload: daemon.local_endpoint changed; it "
                      "takes effect at the next restart");
    pole_config_set_local_endpoint (fresh, running_local);
    //  What only a restart changes: say so, and keep running as bound
    if (strcmp (pole_config_endpoint (fresh), pole_config_endpoint (self->config)))
        zsys_warning ("server: reload: daemon.endpoint changed; it takes "
                      "effect at the next restart");
    if (strcmp (pole_config_database (fresh), pole_config_database (self->config)))
        zsys_warning ("server: reload: daemon.database changed; it takes "
                      "effect at the next restart");
    if (pole_config_calendar (fresh)->simulated
        != pole_config_calendar (self->config)->simulated)
        zsys_warning ("server: reload: calendar.clock changed; it takes "
                      "effect at the next restart");
    //  The live stream stays where it is bound (poled -p included)
    pole_config_set_pub_endpoint (
        fresh, pole_config_notify (self->config)->pub_endpoint);
    //  The delivery worker reads the coordinators: it stops (finishing the
    //  row in hand) before the configuration it borrows goes, and a new one
    //  starts on the new coordinators
    pole_outbox_destroy (&self->outbox);
    if (self->authenticated) {
        zactor_destroy (&self->auth);
        self->auth = s_auth_new (fresh, self->verbose);
    }
    pole_config_t *old = self->owned_config;
    self->config = fresh;
    self->owned_config = fresh;
    pole_config_destroy (&old);
    self->outbox = pole_outbox_new (self->config, pole_store_path (self->store));
    if (!self->outbox)
        zsys_error ("server: reload: the notification worker did not start; "
                    "notifications wait in the outbox until the next reload "
                    "or restart");
    pole_outbox_kick (self->outbox);
    zsys_info ("server: reload done: %zu territories, %zu coordinators, "
               "%zu keys",
               pole_config_params (fresh)->territory_count,
               pole_config_notify (fresh)->coordinator_count,
               pole_config_key_count (fresh));
    sd_notify (0, "READY=1");
    s_notify_status (self);
}

static int
s_token_compare (const void *a, const void *b)
{
    uintptr_t x = (uintptr_t) a, y = (uintptr_t) b;
    return x < y ? -1 : x > y;
}

static size_t
s_token_hash (const void *key)
{
    return (size_t) (uintptr_t) key;
}

pole_server_t *
pole_server_new (pole_config_t *config, pole_store_t *store,
                 const char *endpoints, bool verbose)
{
    pole_server_t *self = (pole_server_t *) zmalloc (sizeof (pole_server_t));
    self->config = config;
    self->store = store;
    self->verbose = verbose;
    self->last_event_ms = pole_store_last_event_ms (store);
    if (self->last_event_ms > pole_clock_now_ms ())
        zsys_warning ("server: the last event was recorded after the clock's "
                      "time; new events are stamped with its time until the "
                      "clock catches up");
    self->router = zsock_new (ZMQ_ROUTER);
    assert (self->router);
    //  Each option is a decision, see PROTOCOL.md section 2
    zsock_set_router_mandatory (self->router, 1);
    zsock_set_linger (self->router, 1000);
    zsock_set_sndtimeo (self->router, 0);
    //  Read only when zloop says readable, and drained until empty
    zsock_set_rcvtimeo (self->router, 0);
    zsock_set_maxmsgsize (self->router,
                          pole_config_max_message_size (config));
    //  Inbound: room for bursts of many clients; beyond it libzmq pushes
    //  back on senders (their DEALER blocks or times out), nothing is lost.
    //  Outbound, per peer: a client that sends without reading must not
    //  make poled hold its replies without bound; past 100 queued replies
    //  they are dropped (logged) and the client times out and retries
    zsock_set_rcvhwm (self->router, 1000);
    zsock_set_sndhwm (self->router, 100);
    self->started_ms = zclock_mono ();
    zcert_t *cert = pole_config_curve_cert (config);
    self->authenticated = cert != NULL;
    if (self->authenticated) {
        self->auth = s_auth_new (config, verbose);
        if (!self->auth) {
            zsys_error ("server: cannot start the ZAP handler (zauth)");
            pole_server_destroy (&self);
            return NULL;
        }
        s_secure (self->router, cert);
        zsys_info ("server: CURVE authentication on %s for %zu keys",
                   endpoints, pole_config_key_count (config));
    }
    else {
        char offender[256] = "";
        if (!s_loopback_only (endpoints, offender, sizeof offender)) {
            zsys_error ("server: authentication is off (no curve.cert), so "
                        "poled binds only loopback and ipc:// endpoints, not "
                        "%s: anyone who can reach it could act as anyone "
                        "(docs/ADMIN.md, Keys)",
                        offender);
            pole_server_destroy (&self);
            return NULL;
        }
        zsys_warning ("server: authentication is off (no curve.cert): the "
                      "actor each request states is trusted");
    }
    if (zsock_attach (self->router, endpoints, true)) {
        zsys_error ("server: cannot bind %s: %s", endpoints,
                    zmq_strerror (zmq_errno ()));
        pole_server_destroy (&self);
        return NULL;
    }
    const char *local = pole_config_local_endpoint (config);
    if (local && *local) {
        //  The administrators' door: same options, no CURVE; the socket
        //  file's permissions (the service's group) are the protection
        self->local = zsock_new (ZMQ_ROUTER);
        zsock_set_router_mandatory (self->local, 1);
        zsock_set_linger (self->local, 1000);
        zsock_set_sndtimeo (self->local, 0);
        zsock_set_rcvtimeo (self->local, 0);
        zsock_set_maxmsgsize (self->local,
                              pole_config_max_message_size (config));
        zsock_set_rcvhwm (self->local, 1000);
        zsock_set_sndhwm (self->local, 100);
        if (zsock_attach (self->local, local, true)) {
            zsys_error ("server: cannot bind the local endpoint %s: %s",
                        local, zmq_strerror (zmq_errno ()));
            pole_server_destroy (&self);
            return NULL;
        }
    }
    const char *pub = pole_config_notify (config)->pub_endpoint;
    if (pub && *pub) {
        self->publisher = zsock_new (ZMQ_PUB);
        zsock_set_sndhwm (self->publisher, 1000);
        zsock_set_linger (self->publisher, 0);
        //  The stream carries the dossiers' events: with authentication
        //  on, subscribers need a listed key too
        if (self->authenticated)
            s_secure (self->publisher, cert);
        if (zsock_attach (self->publisher, pub, true)) {
            zsys_error ("server: cannot bind the live stream on %s: %s", pub,
                        zmq_strerror (zmq_errno ()));
            pole_server_destroy (&self);
            return NULL;
        }
    }
    self->maint = zactor_new (s_maint_actor, NULL);
    self->waiting = zhashx_new ();
    zhashx_set_destructor (self->waiting, s_waiter_destroy);
    //  Keys are tokens (integers), not strings
    zhashx_set_key_destructor (self->waiting, NULL);
    zhashx_set_key_duplicator (self->waiting, NULL);
    zhashx_set_key_comparator (self->waiting, s_token_compare);
    zhashx_set_key_hasher (self->waiting, s_token_hash);
    snprintf (self->chain_state, sizeof self->chain_state, "unverified");
    self->loop = zloop_new ();
    zloop_reader (self->loop, self->router, s_on_router, self);
    zloop_reader (self->loop, zactor_sock (self->maint), s_on_maint, self);
    if (self->local)
        zloop_reader (self->loop, self->local, s_on_router, self);
    zloop_timer (self->loop, 250, 0, s_on_tick, self);
    return self;
}

void
pole_server_destroy (pole_server_t **self_p)
{
    assert (self_p);
    pole_server_t *self = *self_p;
    if (!self)
        return;
    zloop_destroy (&self->loop);
    //  A job in hand is finished first (a backup is never left half-made:
    //  its .tmp file is removed or renamed)
    zactor_destroy (&self->maint);
    zhashx_destroy (&self->waiting);
    zsock_destroy (&self->router);
    zsock_destroy (&self->local);
    zsock_destroy (&self->publisher);
    pole_outbox_destroy (&self->outbox);
    zactor_destroy (&self->auth);
    pole_config_destroy (&self->owned_config);
    free (self);
    *self_p = NULL;
}

int
pole_server_run (pole_server_t *self)
{
    //  What fell due while the daemon was down fires now, once, late
    s_fire_timers (self);
    s_schedule (self);
    //  The WAL is checkpointed off the commit path (store.h): by the
    //  store's checkpointer thread, and bounded from the loop (s_on_tick)
    if (pole_store_checkpointer_start (self->store))
        zsys_warning ("server: no checkpointer thread: the WAL is "
                      "checkpointed from the loop only");
    //  SIGHUP asks for a reload, if the caller blocked it (poled does)
    sigset_t hangup;
    sigemptyset (&hangup);
    sigaddset (&hangup, SIGHUP);
    int signal_fd = signalfd (-1, &hangup, SFD_NONBLOCK | SFD_CLOEXEC);
    if (signal_fd >= 0) {
        zmq_pollitem_t item = {NULL, signal_fd, ZMQ_POLLIN, 0};
        zloop_poller (self->loop, &item, s_on_sighup, self);
    }
    uint64_t watchdog_usec = 0;
    if (sd_watchdog_enabled (0, &watchdog_usec) > 0 && watchdog_usec > 0) {
        size_t every = (size_t) (watchdog_usec / 2000);
        zloop_timer (self->loop, every ? every : 1, 0, s_on_watchdog, self);
    }
    //  The hash chain of the log is verified in the background at each
    //  start: a change made while the daemon was down is logged loudly
    s_maint_start (self, POLE_CMD_VERIFY, 0, NULL);
    //  The database is open, checked and migrated, the sockets are bound:
    //  systemd may start what depends on poled
    sd_notifyf (0, "READY=1\nMAINPID=%lu", (unsigned long) getpid ());
    s_notify_status (self);
    //  zloop_start returns when a signal set zsys_interrupted; handlers
    //  run to completion, so the batch in hand is committed first
    zloop_start (self->loop);
    sd_notify (0, "STOPPING=1\nSTATUS=stopping");
    if (signal_fd >= 0)
        close (signal_fd);
    zsys_info ("server: stopping after %" PRIu64 " requests in %" PRIu64
               " batches",
               self->requests, self->batches);
    return 0;
}

void
pole_server_set_outbox (pole_server_t *self, pole_outbox_t *outbox)
{
    pole_outbox_destroy (&self->outbox);
    self->outbox = outbox;
}
