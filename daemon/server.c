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

#include "calendar.h"
#include "clock.h"
#include "outbox.h"
#include "pole/pole.h"
#include "pole/proto.h"

#include <string.h>

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
};

//  One request of a batch while it is being handled.
typedef struct {
    zframe_t *identity;         //  the peer's routing id
    zmsg_t *body;               //  the request body (after the delimiter)
    pole_request_t *req;        //  decoded, or NULL if malformed
    zmsg_t *reply;              //  the reply body, once known
    int64_t seq;                //  the event it appended, 0 if none
    int notified;               //  notifications it wrote to the outbox
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
static zmsg_t *
s_decide_and_write (pole_server_t *self, pole_request_t *req,
                    const char *role, bool *record, int64_t *seq_p,
                    int *notified_p)
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
            self, req, pole_config_role (self->config, req->actor), &record,
            &seq, &notified);
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
        json = pole_store_show_json (self->store, req->dossier, params);
        break;
    case POLE_CMD_HISTORY:
        json = pole_store_history_json (self->store, req->dossier);
        break;
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
        json = pole_store_list_json (self->store, state, pays, overdue,
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
        zmsg_t *reply = item->reply;
        item->reply = NULL;
        zmsg_pushmem (reply, "", 0);
        zmsg_prepend (reply, &item->identity);
        zlist_append (replies, reply);
        s_item_destroy (&item);
    }
    zlist_destroy (&items);
}

//  The socket is readable: drain what is waiting, up to batch_max, without
//  blocking, then handle it as one batch.
static int
s_on_router (zloop_t *loop, zsock_t *router, void *arg)
{
    (void) loop;
    pole_server_t *self = (pole_server_t *) arg;
    int batch_max = pole_config_batch_max (self->config);
    zlist_t *requests = zlist_new ();
    while ((int) zlist_size (requests) < batch_max
           && (zsock_events (router) & ZMQ_POLLIN)) {
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
                zmsg_t *reply = s_decide_and_write (self, &req, "calendar",
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
static int
s_on_tick (zloop_t *loop, int timer_id, void *arg)
{
    (void) loop;
    (void) timer_id;
    (void) arg;
    return zsys_interrupted ? -1 : 0;
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
    zsock_set_maxmsgsize (self->router,
                          pole_config_max_message_size (config));
    //  Inbound: room for bursts of many clients; beyond it libzmq pushes
    //  back on senders (their DEALER blocks or times out), nothing is lost.
    //  Outbound, per peer: a client that sends without reading must not
    //  make poled hold its replies without bound; past 100 queued replies
    //  they are dropped (logged) and the client times out and retries
    zsock_set_rcvhwm (self->router, 1000);
    zsock_set_sndhwm (self->router, 100);
    if (zsock_attach (self->router, endpoints, true)) {
        zsys_error ("server: cannot bind %s: %s", endpoints,
                    zmq_strerror (zmq_errno ()));
        pole_server_destroy (&self);
        return NULL;
    }
    const char *pub = pole_config_notify (config)->pub_endpoint;
    if (pub && *pub) {
        self->publisher = zsock_new (ZMQ_PUB);
        zsock_set_sndhwm (self->publisher, 1000);
        zsock_set_linger (self->publisher, 0);
        if (zsock_attach (self->publisher, pub, true)) {
            zsys_error ("server: cannot bind the live stream on %s: %s", pub,
                        zmq_strerror (zmq_errno ()));
            pole_server_destroy (&self);
            return NULL;
        }
    }
    self->loop = zloop_new ();
    zloop_reader (self->loop, self->router, s_on_router, self);
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
    zsock_destroy (&self->router);
    zsock_destroy (&self->publisher);
    free (self);
    *self_p = NULL;
}

int
pole_server_run (pole_server_t *self)
{
    //  What fell due while the daemon was down fires now, once, late
    s_fire_timers (self);
    s_schedule (self);
    //  zloop_start returns when a signal set zsys_interrupted; handlers
    //  run to completion, so the batch in hand is committed first
    zloop_start (self->loop);
    zsys_info ("server: stopping after %" PRIu64 " requests in %" PRIu64
               " batches",
               self->requests, self->batches);
    return 0;
}

void
pole_server_set_outbox (pole_server_t *self, pole_outbox_t *outbox)
{
    self->outbox = outbox;
}
