/*  =========================================================================
    test_codec - unit tests of the POLE/1 codec (proto/pole_proto.c)

    Round trips of every command and of both replies, the limits taken
    exactly at their edge, and a table of malformed requests: each one
    says which error code the server must answer, whether the request id
    can still be read (so that the ERROR reply carries it), and which
    frame the reason must name. Every malformed case runs as a test of its
    own, so that a failure names the case.
    =========================================================================
*/

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "pole/proto.h"

#define REASON_SIZE 256


//  --------------------------------------------------------------------------
//  Helpers

//  A message of the given text frames, NULL-terminated.

static zmsg_t *
s_msg_of (const char *const *frames)
{
    zmsg_t *msg = zmsg_new ();
    assert_non_null (msg);
    for (size_t index = 0; frames [index]; index++)
        zmsg_addmem (msg, frames [index], strlen (frames [index]));
    return msg;
}

//  Asserts that `msg` holds exactly these text frames.

static void
s_assert_frames (zmsg_t *msg, const char *const *frames)
{
    size_t count = 0;
    while (frames [count])
        count++;
    assert_int_equal (zmsg_size (msg), count);
    zframe_t *frame = zmsg_first (msg);
    for (size_t index = 0; index < count; index++) {
        assert_non_null (frame);
        assert_int_equal (zframe_size (frame), strlen (frames [index]));
        if (zframe_size (frame) > 0)
            assert_memory_equal (zframe_data (frame), frames [index],
                                 zframe_size (frame));
        frame = zmsg_next (msg);
    }
}

//  Decodes `msg`, which must be a valid request; returns it.

static pole_request_t *
s_decode_ok (zmsg_t *msg)
{
    pole_request_t *req = NULL;
    const char *code = NULL;
    char reason [REASON_SIZE];
    char *request_id = NULL;
    int rc = pole_request_decode (msg, &req, &code, reason, sizeof (reason),
                                  &request_id);
    if (rc != 0)
        fail_msg ("decode failed: %s %s", code, reason);
    assert_null (code);
    assert_null (request_id);
    assert_non_null (req);
    return req;
}

//  Encodes `req`, checks the wire frames, decodes it back and checks that
//  what comes back is what went in.

static void
s_round_trip (const pole_request_t *req, const char *const *wire)
{
    zmsg_t *msg = pole_request_encode (req);
    assert_non_null (msg);
    s_assert_frames (msg, wire);
    pole_request_t *back = s_decode_ok (msg);

    assert_int_equal (back->command, req->command);
    assert_string_equal (back->request_id, req->request_id);
    if (req->actor)
        assert_string_equal (back->actor, req->actor);
    else
        assert_null (back->actor);
    if (req->event)
        assert_string_equal (back->event, req->event);
    else
        assert_null (back->event);
    if (req->target)
        assert_string_equal (back->target, req->target);
    else
        assert_null (back->target);
    //  CLOCK always carries a value frame: NULL goes out as ""
    if (req->value)
        assert_string_equal (back->value, req->value);
    else
    if (req->command == POLE_CMD_CLOCK)
        assert_string_equal (back->value, "");
    else
        assert_null (back->value);
    assert_int_equal (back->days, req->days);
    assert_int_equal (back->dossier, req->dossier);
    assert_int_equal (back->expected_version, req->expected_version);
    assert_int_equal (back->field_count, req->field_count);
    for (size_t index = 0; index < req->field_count; index++) {
        assert_string_equal (back->fields [index].key, req->fields [index].key);
        assert_string_equal (back->fields [index].value,
                             req->fields [index].value);
    }
    pole_request_destroy (&back);
    assert_null (back);
    zmsg_destroy (&msg);
}


//  --------------------------------------------------------------------------
//  Round trips of requests

static void
test_ping_round_trip (void **state)
{
    (void) state;
    pole_request_t req = { .command = POLE_CMD_PING, .request_id = "p-1",
                           .expected_version = -1 };
    const char *wire [] = { "POLE/1", "PING", "p-1", NULL };
    s_round_trip (&req, wire);
}

static void
test_open_round_trip (void **state)
{
    (void) state;
    //  The example of PROTOCOL.md, section 10
    pole_field_t fields [] = {
        { "pays", "dinan" },
        { "holder", "Pays de Dinan" },
        { "holder_type", "pays" }
    };
    pole_request_t req = { .command = POLE_CMD_OPEN, .request_id = "7f3a-1",
                           .actor = "alice", .expected_version = -1,
                           .fields = fields, .field_count = 3 };
    const char *wire [] = { "POLE/1", "OPEN", "7f3a-1", "alice", "pays=dinan",
                            "holder=Pays de Dinan", "holder_type=pays", NULL };
    s_round_trip (&req, wire);
}

static void
test_open_without_fields (void **state)
{
    (void) state;
    //  The grammar allows *field: the engine, not the codec, refuses it
    pole_request_t req = { .command = POLE_CMD_OPEN, .request_id = "o-0",
                           .actor = "Gwénaëlle Le Goff",
                           .expected_version = -1 };
    const char *wire [] = { "POLE/1", "OPEN", "o-0", "Gwénaëlle Le Goff",
                            NULL };
    s_round_trip (&req, wire);
}

static void
test_event_round_trip (void **state)
{
    (void) state;
    pole_field_t fields [] = { { "amount", "20000" } };
    pole_request_t req = { .command = POLE_CMD_EVENT, .request_id = "7f3a-2",
                           .actor = "alice", .dossier = 1,
                           .expected_version = 1, .event = "request_study",
                           .fields = fields, .field_count = 1 };
    const char *wire [] = { "POLE/1", "EVENT", "7f3a-2", "alice", "1", "1",
                            "request_study", "amount=20000", NULL };
    s_round_trip (&req, wire);
}

static void
test_event_without_version (void **state)
{
    (void) state;
    //  expected_version -1 travels as an empty frame and comes back -1;
    //  a value may contain '=' and be empty
    pole_field_t fields [] = {
        { "amount", "30000" },
        { "note", "a=b, c" },
        { "empty", "" }
    };
    pole_request_t req = { .command = POLE_CMD_EVENT, .request_id = "7f3a-3",
                           .actor = "region", .dossier = 1,
                           .expected_version = -1, .event = "grant_study",
                           .fields = fields, .field_count = 3 };
    const char *wire [] = { "POLE/1", "EVENT", "7f3a-3", "region", "1", "",
                            "grant_study", "amount=30000", "note=a=b, c",
                            "empty=", NULL };
    s_round_trip (&req, wire);
}

static void
test_event_version_zero (void **state)
{
    (void) state;
    pole_request_t req = { .command = POLE_CMD_EVENT, .request_id = "v0",
                           .actor = "a", .dossier = INT64_MAX,
                           .expected_version = 0, .event = "note" };
    const char *wire [] = { "POLE/1", "EVENT", "v0", "a",
                            "9223372036854775807", "0", "note", NULL };
    s_round_trip (&req, wire);
}

static void
test_show_round_trip (void **state)
{
    (void) state;
    pole_request_t req = { .command = POLE_CMD_SHOW, .request_id = "s-1",
                           .dossier = 42, .expected_version = -1 };
    const char *wire [] = { "POLE/1", "SHOW", "s-1", "42", NULL };
    s_round_trip (&req, wire);
}

static void
test_list_round_trip (void **state)
{
    (void) state;
    pole_request_t req = { .command = POLE_CMD_LIST, .request_id = "l-1",
                           .expected_version = -1 };
    const char *wire [] = { "POLE/1", "LIST", "l-1", NULL };
    s_round_trip (&req, wire);

    pole_field_t filters [] = { { "state", "draft" }, { "pays", "Trégor-Goëlo" } };
    pole_request_t filtered = { .command = POLE_CMD_LIST, .request_id = "l-2",
                                .expected_version = -1, .fields = filters,
                                .field_count = 2 };
    const char *filtered_wire [] = { "POLE/1", "LIST", "l-2", "state=draft",
                                     "pays=Trégor-Goëlo", NULL };
    s_round_trip (&filtered, filtered_wire);
}

static void
test_list_overdue_round_trip (void **state)
{
    (void) state;
    pole_field_t overdue [] = { { "overdue", POLE_LIST_OVERDUE } };
    pole_request_t req = { .command = POLE_CMD_LIST, .request_id = "l-3",
                           .expected_version = -1, .fields = overdue,
                           .field_count = 1 };
    const char *wire [] = { "POLE/1", "LIST", "l-3", "overdue=1", NULL };
    s_round_trip (&req, wire);

    //  With the other two filters, in any order
    pole_field_t all [] = { { "pays", "dinan" }, { "overdue", "1" },
                            { "state", "funding_year_1" } };
    pole_request_t combined = { .command = POLE_CMD_LIST, .request_id = "l-4",
                                .expected_version = -1, .fields = all,
                                .field_count = 3 };
    const char *combined_wire [] = { "POLE/1", "LIST", "l-4", "pays=dinan",
                                     "overdue=1", "state=funding_year_1",
                                     NULL };
    s_round_trip (&combined, combined_wire);
}

static void
test_clock_round_trip (void **state)
{
    (void) state;
    pole_request_t get = { .command = POLE_CMD_CLOCK, .request_id = "c-1",
                           .actor = "region", .target = POLE_CLOCK_GET,
                           .value = "", .expected_version = -1 };
    const char *get_wire [] = { "POLE/1", "CLOCK", "c-1", "region", "get", "",
                                NULL };
    s_round_trip (&get, get_wire);
    //  A NULL value is sent as the empty frame
    get.value = NULL;
    s_round_trip (&get, get_wire);

    pole_request_t date = { .command = POLE_CMD_CLOCK, .request_id = "c-2",
                            .actor = "Gwénaëlle", .target = POLE_CLOCK_SET,
                            .value = "2012-02-29", .expected_version = -1 };
    const char *date_wire [] = { "POLE/1", "CLOCK", "c-2", "Gwénaëlle", "set",
                                 "2012-02-29", NULL };
    s_round_trip (&date, date_wire);

    pole_request_t time = { .command = POLE_CMD_CLOCK, .request_id = "c-3",
                            .actor = "admin", .target = POLE_CLOCK_SET,
                            .value = "2013-12-31T23:59:59Z",
                            .expected_version = -1 };
    const char *time_wire [] = { "POLE/1", "CLOCK", "c-3", "admin", "set",
                                 "2013-12-31T23:59:59Z", NULL };
    s_round_trip (&time, time_wire);

    //  The decoder gives advance's value as a number too
    pole_request_t one = { .command = POLE_CMD_CLOCK, .request_id = "c-4",
                           .actor = "admin", .target = POLE_CLOCK_ADVANCE,
                           .value = "1", .days = 1, .expected_version = -1 };
    const char *one_wire [] = { "POLE/1", "CLOCK", "c-4", "admin", "advance",
                                "1", NULL };
    s_round_trip (&one, one_wire);
    pole_request_t most = { .command = POLE_CMD_CLOCK, .request_id = "c-5",
                            .actor = "admin", .target = POLE_CLOCK_ADVANCE,
                            .value = "36500", .days = 36500,
                            .expected_version = -1 };
    const char *most_wire [] = { "POLE/1", "CLOCK", "c-5", "admin", "advance",
                                 "36500", NULL };
    s_round_trip (&most, most_wire);
}

static void
test_agenda_round_trip (void **state)
{
    (void) state;
    static const struct {
        int64_t days;
        const char *text;
    } cases [] = { { 0, "0" }, { 90, "90" }, { 3650, "3650" } };
    for (size_t index = 0; index < sizeof (cases) / sizeof (cases [0]);
         index++) {
        pole_request_t req = { .command = POLE_CMD_AGENDA,
                               .request_id = "a-1", .days = cases [index].days,
                               .expected_version = -1 };
        const char *wire [] = { "POLE/1", "AGENDA", "a-1",
                                cases [index].text, NULL };
        s_round_trip (&req, wire);
    }
}

static void
test_admin_round_trip (void **state)
{
    (void) state;
    pole_request_t status = { .command = POLE_CMD_STATUS,
                              .request_id = "s-1", .expected_version = -1 };
    const char *status_wire [] = { "POLE/1", "STATUS", "s-1", NULL };
    s_round_trip (&status, status_wire);
    pole_request_t verify = { .command = POLE_CMD_VERIFY,
                              .request_id = "v-1", .expected_version = -1 };
    const char *verify_wire [] = { "POLE/1", "VERIFY", "v-1", NULL };
    s_round_trip (&verify, verify_wire);
    pole_request_t backup = { .command = POLE_CMD_BACKUP,
                              .request_id = "b-1", .expected_version = -1,
                              .target = "/var/backups/pole/été.db" };
    const char *backup_wire [] = { "POLE/1", "BACKUP", "b-1",
                                   "/var/backups/pole/été.db", NULL };
    s_round_trip (&backup, backup_wire);
}

static void
test_clock_value_valid (void **state)
{
    (void) state;
    assert_true (pole_clock_value_valid ("get", ""));
    assert_false (pole_clock_value_valid ("get", "2012-01-01"));
    assert_true (pole_clock_value_valid ("set", "2012-01-01"));
    assert_true (pole_clock_value_valid ("set", "0000-12-31"));
    assert_true (pole_clock_value_valid ("set", "2012-02-31"));   //  syntax
    assert_true (pole_clock_value_valid ("set", "2012-01-01T00:00:00Z"));
    assert_true (pole_clock_value_valid ("set", "2012-01-01T23:59:59Z"));
    assert_false (pole_clock_value_valid ("set", ""));
    assert_false (pole_clock_value_valid ("set", "2012-13-01"));
    assert_false (pole_clock_value_valid ("set", "2012-00-01"));
    assert_false (pole_clock_value_valid ("set", "2012-01-00"));
    assert_false (pole_clock_value_valid ("set", "2012-01-32"));
    assert_false (pole_clock_value_valid ("set", "2012-1-01"));
    assert_false (pole_clock_value_valid ("set", "12-01-01"));
    assert_false (pole_clock_value_valid ("set", "2012/01/01"));
    assert_false (pole_clock_value_valid ("set", "2012-01-01T24:00:00Z"));
    assert_false (pole_clock_value_valid ("set", "2012-01-01T00:60:00Z"));
    assert_false (pole_clock_value_valid ("set", "2012-01-01T00:00:60Z"));
    assert_false (pole_clock_value_valid ("set", "2012-01-01T00:00:00"));
    assert_false (pole_clock_value_valid ("set", "2012-01-01 00:00:00Z"));
    assert_false (pole_clock_value_valid ("set", "2012-01-01T00:00:00z"));
    assert_false (pole_clock_value_valid ("set", "2012-01-01T00:00:00+01:00"));
    assert_true (pole_clock_value_valid ("advance", "1"));
    assert_true (pole_clock_value_valid ("advance", "36500"));
    assert_false (pole_clock_value_valid ("advance", "0"));
    assert_false (pole_clock_value_valid ("advance", "36501"));
    assert_false (pole_clock_value_valid ("advance", "01"));
    assert_false (pole_clock_value_valid ("advance", "x"));
    assert_false (pole_clock_value_valid ("advance", "-1"));
    assert_false (pole_clock_value_valid ("advance", ""));
    assert_false (pole_clock_value_valid ("reset", ""));
    assert_false (pole_clock_value_valid ("GET", ""));
    assert_false (pole_clock_value_valid (NULL, ""));
    assert_false (pole_clock_value_valid ("get", NULL));
}

static void
test_time_parse_format (void **state)
{
    (void) state;
    static const struct {
        const char *text;
        int64_t seconds;
        const char *formatted;
    } cases [] = {
        { "1970-01-01", 0, "1970-01-01T00:00:00Z" },
        { "1970-01-01T00:00:01Z", 1, "1970-01-01T00:00:01Z" },
        { "1969-12-31T23:59:59Z", -1, "1969-12-31T23:59:59Z" },
        { "2000-02-29", 951782400, "2000-02-29T00:00:00Z" },
        { "2010-10-01T12:34:56Z", 1285936496, "2010-10-01T12:34:56Z" },
        { "2038-01-19T03:14:08Z", 2147483648LL, "2038-01-19T03:14:08Z" },
        { "0001-01-01", -62135596800LL, "0001-01-01T00:00:00Z" },
        { "9999-12-31T23:59:59Z", 253402300799LL, "9999-12-31T23:59:59Z" },
    };
    char buffer [32];
    for (size_t index = 0; index < sizeof (cases) / sizeof (cases [0]);
         index++) {
        int64_t seconds = 42;
        if (pole_proto_time_parse (cases [index].text, &seconds) != 0
        ||  seconds != cases [index].seconds)
            fail_msg ("time case %zu: %s parsed as %lld", index,
                      cases [index].text, (long long) seconds);
        assert_int_equal (pole_proto_time_format (cases [index].seconds,
                                                  buffer, sizeof (buffer)), 0);
        assert_string_equal (buffer, cases [index].formatted);
    }
    //  Days that do not exist, and what the syntax refuses
    int64_t seconds;
    const char *bad [] = { "2011-02-29", "1900-02-29", "2012-04-31",
                           "2012-02-30", "0000-01-01", "2012-13-01",
                           "2012-01-01T24:00:00Z", "2012-01-01T", "", NULL };
    for (size_t index = 0; bad [index]; index++)
        if (pole_proto_time_parse (bad [index], &seconds) != -1)
            fail_msg ("time \"%s\" was accepted", bad [index]);
    assert_int_equal (pole_proto_time_parse ("2012-02-29", &seconds), 0);
    assert_int_equal (pole_proto_time_parse (NULL, &seconds), -1);
    assert_int_equal (pole_proto_time_parse ("2012-01-01", NULL), -1);
    //  Out of range, or no room
    assert_int_equal (pole_proto_time_format (253402300800LL, buffer,
                                              sizeof (buffer)), -1);
    assert_int_equal (pole_proto_time_format (-62135596801LL, buffer,
                                              sizeof (buffer)), -1);
    assert_int_equal (pole_proto_time_format (0, buffer, 20), -1);
    assert_int_equal (pole_proto_time_format (0, NULL, 32), -1);
    //  Every day of four years round-trips, and days follow each other
    int64_t start;
    assert_int_equal (pole_proto_time_parse ("2011-12-31", &start), 0);
    for (int day = 0; day < 4 * 366; day++) {
        int64_t back;
        assert_int_equal (pole_proto_time_format (start + day * 86400 + 3661,
                                                  buffer, sizeof (buffer)), 0);
        assert_int_equal (pole_proto_time_parse (buffer, &back), 0);
        assert_int_equal (back, start + day * 86400 + 3661);
    }
}

static void
test_history_round_trip (void **state)
{
    (void) state;
    pole_request_t req = { .command = POLE_CMD_HISTORY, .request_id = "h-1",
                           .dossier = 7, .expected_version = -1 };
    const char *wire [] = { "POLE/1", "HISTORY", "h-1", "7", NULL };
    s_round_trip (&req, wire);
}

static void
test_report_round_trip (void **state)
{
    (void) state;
    pole_request_t req = { .command = POLE_CMD_REPORT, .request_id = "r-1",
                           .expected_version = -1 };
    const char *wire [] = { "POLE/1", "REPORT", "r-1", NULL };
    s_round_trip (&req, wire);
}

static void
test_outbox_round_trip (void **state)
{
    (void) state;
    pole_request_t req = { .command = POLE_CMD_OUTBOX, .request_id = "ob-1",
                           .expected_version = -1 };
    const char *wire [] = { "POLE/1", "OUTBOX", "ob-1", NULL };
    s_round_trip (&req, wire);

    //  The state's value is the server's to check, not the codec's
    pole_field_t filters [] = { { "state", "dead" } };
    pole_request_t filtered = { .command = POLE_CMD_OUTBOX,
                                .request_id = "ob-2", .expected_version = -1,
                                .fields = filters, .field_count = 1 };
    const char *filtered_wire [] = { "POLE/1", "OUTBOX", "ob-2", "state=dead",
                                     NULL };
    s_round_trip (&filtered, filtered_wire);
}

static void
test_retry_round_trip (void **state)
{
    (void) state;
    pole_request_t req = { .command = POLE_CMD_RETRY, .request_id = "rt-1",
                           .actor = "region", .target = "12-0",
                           .expected_version = -1 };
    const char *wire [] = { "POLE/1", "RETRY", "rt-1", "region", "12-0", NULL };
    s_round_trip (&req, wire);

    pole_request_t dead = { .command = POLE_CMD_RETRY, .request_id = "rt-2",
                            .actor = "Gwénaëlle", .target = POLE_RETRY_DEAD,
                            .expected_version = -1 };
    const char *dead_wire [] = { "POLE/1", "RETRY", "rt-2", "Gwénaëlle",
                                 "--dead", NULL };
    s_round_trip (&dead, dead_wire);

    //  32 bytes of id: the limit
    char target [POLE_PROTO_MAX_NOTIFICATION_ID + 1];
    memset (target, '9', POLE_PROTO_MAX_NOTIFICATION_ID);
    target [POLE_PROTO_MAX_NOTIFICATION_ID] = 0;
    target [10] = '-';
    pole_request_t longest = { .command = POLE_CMD_RETRY, .request_id = "rt-3",
                               .actor = "a", .target = target,
                               .expected_version = -1 };
    const char *longest_wire [] = { "POLE/1", "RETRY", "rt-3", "a", target,
                                    NULL };
    s_round_trip (&longest, longest_wire);
}

static void
test_retry_target_valid (void **state)
{
    (void) state;
    assert_true (pole_retry_target_valid ("--dead"));
    assert_true (pole_retry_target_valid ("12-0"));
    assert_true (pole_retry_target_valid ("7"));
    assert_true (pole_retry_target_valid ("12345678901234567890123456789012"));
    assert_false (pole_retry_target_valid ("123456789012345678901234567890123"));
    assert_false (pole_retry_target_valid (""));
    assert_false (pole_retry_target_valid (NULL));
    assert_false (pole_retry_target_valid ("--DEAD"));
    assert_false (pole_retry_target_valid ("dead"));
    assert_false (pole_retry_target_valid ("12-0 "));
    assert_false (pole_retry_target_valid ("12_0"));
    assert_false (pole_retry_target_valid ("--dead-x"));
}

static void
test_encode_rejects_bad_command (void **state)
{
    (void) state;
    pole_request_t req = { .command = POLE_CMD_COUNT, .request_id = "x" };
    assert_null (pole_request_encode (&req));
    assert_null (pole_request_encode (NULL));
}

//  Decoding reads the message and leaves it whole: the server may need it
//  again (to log it, to compare a retried request).

static void
test_decode_keeps_message (void **state)
{
    (void) state;
    const char *frames [] = { "POLE/1", "SHOW", "k-1", "3", NULL };
    zmsg_t *msg = s_msg_of (frames);
    pole_request_t *first = s_decode_ok (msg);
    pole_request_t *second = s_decode_ok (msg);
    assert_int_equal (zmsg_size (msg), 4);
    assert_int_equal (second->dossier, 3);
    pole_request_destroy (&first);
    pole_request_destroy (&second);
    zmsg_destroy (&msg);
}


//  --------------------------------------------------------------------------
//  Limits, taken exactly at their edge

static void
test_limits_accepted (void **state)
{
    (void) state;
    char request_id [65];
    memset (request_id, '~', 64);
    request_id [64] = 0;
    //  64 bytes of actor: 32 two-byte characters
    char actor [65] = "";
    for (int index = 0; index < 32; index++)
        strcat (actor, "é");
    char event [33];
    memset (event, 'z', 32);
    event [32] = 0;
    char key_field [64];
    memset (key_field, 'k', 32);
    strcpy (key_field + 32, "=v");
    char *value_field = malloc (6 + POLE_PROTO_MAX_FIELD + 1);
    assert_non_null (value_field);
    strcpy (value_field, "value=");
    memset (value_field + 6, 'x', POLE_PROTO_MAX_FIELD);
    value_field [6 + POLE_PROTO_MAX_FIELD] = 0;

    const char *frames [] = { "POLE/1", "EVENT", request_id, actor,
                              "9223372036854775807", "0", event, key_field,
                              value_field, NULL };
    zmsg_t *msg = s_msg_of (frames);
    //  Up to 64 frames in all
    char name [16];
    for (int index = 0; zmsg_size (msg) < POLE_PROTO_MAX_FRAMES; index++) {
        snprintf (name, sizeof (name), "f%d=", index);
        zmsg_addstr (msg, name);
    }
    pole_request_t *req = s_decode_ok (msg);
    assert_string_equal (req->request_id, request_id);
    assert_string_equal (req->actor, actor);
    assert_int_equal (req->dossier, INT64_MAX);
    assert_int_equal (req->expected_version, 0);
    assert_string_equal (req->event, event);
    assert_int_equal (req->field_count, POLE_PROTO_MAX_FRAMES - 7);
    assert_int_equal (strlen (req->fields [1].value), POLE_PROTO_MAX_FIELD);
    pole_request_destroy (&req);
    zmsg_destroy (&msg);
    free (value_field);
}


//  --------------------------------------------------------------------------
//  Malformed requests, one test each

typedef struct {
    const char *name;
    const char *frames [12];        //  text frames, NULL-terminated
    void (*append) (zmsg_t *msg);   //  what text frames cannot express
    const char *code;               //  the POLE_ERR_* expected
    const char *request_id;         //  expected in *request_id_p, or NULL
    const char *reason_has;         //  the reason must contain this
} bad_case_t;

//  Fields until the request has `total` frames

static void
s_fill_to (zmsg_t *msg, size_t total)
{
    char field [16];
    for (int index = 0; zmsg_size (msg) < total; index++) {
        snprintf (field, sizeof (field), "f%d=x", index);
        zmsg_addstr (msg, field);
    }
}

static void
s_append_to_65 (zmsg_t *msg)
{
    s_fill_to (msg, POLE_PROTO_MAX_FRAMES + 1);
}

static void
s_append_long_value (zmsg_t *msg)
{
    size_t size = 5 + POLE_PROTO_MAX_FIELD + 1;
    char *field = malloc (size);
    assert_non_null (field);
    memcpy (field, "note=", 5);
    memset (field + 5, 'x', size - 5);
    zmsg_addmem (msg, field, size);
    free (field);
}

static void
s_append_nul_value (zmsg_t *msg)
{
    zmsg_addmem (msg, "note=a\0b", 8);
}

static void
s_append_nul_request_id (zmsg_t *msg)
{
    zmsg_addmem (msg, "r\0", 2);
}

static void
s_append_nul_command (zmsg_t *msg)
{
    zmsg_addmem (msg, "PING\0", 5);
    zmsg_addstr (msg, "r1");
}

#define EV(d, v, e) "POLE/1", "EVENT", "r1", "alice", d, v, e
#define S65 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define S33 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"

static bad_case_t s_bad [] = {
    //  Envelope: signature, command, request id, frame count
    { "no frames", { NULL }, NULL,
      POLE_ERR_BAD_REQUEST, NULL, "no frames" },
    { "wrong signature", { "POLE/2", "PING", "r1", NULL }, NULL,
      POLE_ERR_UNSUPPORTED_VERSION, NULL, "frame 1 (signature)" },
    { "lowercase signature", { "pole/1", "PING", "r1", NULL }, NULL,
      POLE_ERR_UNSUPPORTED_VERSION, NULL, "frame 1" },
    { "empty signature", { "", "PING", "r1", NULL }, NULL,
      POLE_ERR_UNSUPPORTED_VERSION, NULL, "frame 1" },
    { "signature only", { "POLE/1", NULL }, NULL,
      POLE_ERR_BAD_REQUEST, NULL, "frame 2 (command)" },
    { "unknown command", { "POLE/1", "FETCH", "r1", NULL }, NULL,
      POLE_ERR_UNKNOWN_COMMAND, "r1", "\"FETCH\"" },
    { "lowercase command", { "POLE/1", "ping", "r1", NULL }, NULL,
      POLE_ERR_UNKNOWN_COMMAND, "r1", "frame 2" },
    { "command with NUL", { "POLE/1", NULL }, s_append_nul_command,
      POLE_ERR_UNKNOWN_COMMAND, "r1", "frame 2 (command) is not" },
    { "missing request id", { "POLE/1", "PING", NULL }, NULL,
      POLE_ERR_BAD_REQUEST, NULL, "frame 3 (request id)" },
    { "empty request id", { "POLE/1", "PING", "", NULL }, NULL,
      POLE_ERR_BAD_REQUEST, NULL, "frame 3 (request id)" },
    { "request id with a space", { "POLE/1", "PING", "r 1", NULL }, NULL,
      POLE_ERR_BAD_REQUEST, NULL, "frame 3" },
    { "request id of 65 bytes", { "POLE/1", "PING", S65, NULL }, NULL,
      POLE_ERR_BAD_REQUEST, NULL, "frame 3" },
    { "request id not ASCII", { "POLE/1", "PING", "ré", NULL }, NULL,
      POLE_ERR_BAD_REQUEST, NULL, "frame 3" },
    { "request id with NUL", { "POLE/1", "PING", NULL },
      s_append_nul_request_id, POLE_ERR_BAD_REQUEST, NULL, "frame 3" },
    { "65 frames", { "POLE/1", "OPEN", "r1", "alice", NULL }, s_append_to_65,
      POLE_ERR_BAD_REQUEST, "r1", "65 frames" },
    { "65 frames, wrong signature", { "POLE/9", "OPEN", "r1", NULL },
      s_append_to_65, POLE_ERR_BAD_REQUEST, NULL, "65 frames" },

    //  Frame count per command
    { "PING with an extra frame", { "POLE/1", "PING", "r1", "x", NULL }, NULL,
      POLE_ERR_BAD_REQUEST, "r1", "takes exactly 3" },
    { "REPORT with a filter other than as_of",
      { "POLE/1", "REPORT", "r1", "a=b", NULL },
      NULL, POLE_ERR_BAD_REQUEST, "r1", "the only REPORT filter is as_of" },
    { "REPORT as of a day that does not exist",
      { "POLE/1", "REPORT", "r1", "as_of=2010-02-30", NULL },
      NULL, POLE_ERR_BAD_REQUEST, "r1", "not a day of the calendar" },
    { "REPORT as of a time, not a day",
      { "POLE/1", "REPORT", "r1", "as_of=2010-10-31T00:00:00Z", NULL },
      NULL, POLE_ERR_BAD_REQUEST, "r1", "not a day of the calendar" },
    { "SHOW without dossier", { "POLE/1", "SHOW", "r1", NULL }, NULL,
      POLE_ERR_BAD_REQUEST, "r1", "no frame 4 (dossier id)" },
    { "SHOW with an extra frame", { "POLE/1", "SHOW", "r1", "1", "2", NULL },
      NULL, POLE_ERR_BAD_REQUEST, "r1", "takes exactly 4" },
    { "HISTORY with an extra frame",
      { "POLE/1", "HISTORY", "r1", "1", "state=draft", NULL }, NULL,
      POLE_ERR_BAD_REQUEST, "r1", "takes exactly 4" },
    { "OPEN without actor", { "POLE/1", "OPEN", "r1", NULL }, NULL,
      POLE_ERR_BAD_REQUEST, "r1", "no frame 4 (actor)" },
    { "EVENT without dossier", { "POLE/1", "EVENT", "r1", "alice", NULL },
      NULL, POLE_ERR_BAD_REQUEST, "r1", "no frame 5 (dossier id)" },
    { "EVENT without event name",
      { "POLE/1", "EVENT", "r1", "alice", "1", "", NULL }, NULL,
      POLE_ERR_BAD_REQUEST, "r1", "no frame 7 (event name)" },

    //  Actor
    { "empty actor", { "POLE/1", "OPEN", "r1", "", NULL }, NULL,
      POLE_ERR_BAD_REQUEST, "r1", "frame 4 (actor)" },
    { "actor of 65 bytes", { "POLE/1", "OPEN", "r1", S65, NULL }, NULL,
      POLE_ERR_BAD_REQUEST, "r1", "frame 4 (actor)" },
    { "actor not UTF-8", { "POLE/1", "OPEN", "r1", "al\xffice", NULL }, NULL,
      POLE_ERR_BAD_REQUEST, "r1", "frame 4 (actor)" },
    { "actor in Latin-1", { "POLE/1", "OPEN", "r1", "Ga\xebl", NULL }, NULL,
      POLE_ERR_BAD_REQUEST, "r1", "frame 4 (actor)" },
    { "actor with overlong UTF-8", { "POLE/1", "OPEN", "r1", "a\xc0\xaf" "b", NULL },
      NULL, POLE_ERR_BAD_REQUEST, "r1", "frame 4 (actor)" },
    { "actor with a newline", { "POLE/1", "OPEN", "r1", "alice\nbob", NULL },
      NULL, POLE_ERR_BAD_REQUEST, "r1", "frame 4 (actor)" },
    { "actor with a C1 control", { "POLE/1", "OPEN", "r1", "a\xc2\x9b" "1m", NULL },
      NULL, POLE_ERR_BAD_REQUEST, "r1", "frame 4 (actor)" },
    { "actor with DEL", { "POLE/1", "OPEN", "r1", "a\x7f", NULL },
      NULL, POLE_ERR_BAD_REQUEST, "r1", "frame 4 (actor)" },

    //  Dossier id
    { "dossier 0", { EV ("0", "", "note"), NULL }, NULL,
      POLE_ERR_BAD_REQUEST, "r1", "frame 5 (dossier id) is not a positive" },
    { "dossier -1", { EV ("-1", "", "note"), NULL }, NULL,
      POLE_ERR_BAD_REQUEST, "r1", "frame 5 (dossier id)" },
    { "dossier +1", { EV ("+1", "", "note"), NULL }, NULL,
      POLE_ERR_BAD_REQUEST, "r1", "frame 5 (dossier id)" },
    { "dossier 01", { EV ("01", "", "note"), NULL }, NULL,
      POLE_ERR_BAD_REQUEST, "r1", "frame 5 (dossier id)" },
    { "dossier with a space", { EV (" 1", "", "note"), NULL }, NULL,
      POLE_ERR_BAD_REQUEST, "r1", "frame 5 (dossier id)" },
    { "dossier empty", { EV ("", "", "note"), NULL }, NULL,
      POLE_ERR_BAD_REQUEST, "r1", "frame 5 (dossier id)" },
    { "dossier 99999999999999999999", { EV ("99999999999999999999", "", "note"),
      NULL }, NULL, POLE_ERR_BAD_REQUEST, "r1", "frame 5 (dossier id)" },
    { "dossier 2^63", { EV ("9223372036854775808", "", "note"), NULL }, NULL,
      POLE_ERR_BAD_REQUEST, "r1", "frame 5 (dossier id)" },
    { "SHOW dossier abc", { "POLE/1", "SHOW", "r1", "abc", NULL }, NULL,
      POLE_ERR_BAD_REQUEST, "r1", "frame 4 (dossier id)" },
    { "HISTORY dossier 1.5", { "POLE/1", "HISTORY", "r1", "1.5", NULL }, NULL,
      POLE_ERR_BAD_REQUEST, "r1", "frame 4 (dossier id)" },

    //  Expected version
    { "expected version x", { EV ("1", "x", "note"), NULL }, NULL,
      POLE_ERR_BAD_REQUEST, "r1", "frame 6 (expected version)" },
    { "expected version 00", { EV ("1", "00", "note"), NULL }, NULL,
      POLE_ERR_BAD_REQUEST, "r1", "frame 6 (expected version)" },
    { "expected version -1", { EV ("1", "-1", "note"), NULL }, NULL,
      POLE_ERR_BAD_REQUEST, "r1", "frame 6 (expected version)" },

    //  Event name
    { "event name with uppercase", { EV ("1", "", "Grant_study"), NULL }, NULL,
      POLE_ERR_BAD_REQUEST, "r1", "frame 7 (event name)" },
    { "event name with a digit", { EV ("1", "", "year2"), NULL }, NULL,
      POLE_ERR_BAD_REQUEST, "r1", "frame 7 (event name)" },
    { "empty event name", { EV ("1", "", ""), NULL }, NULL,
      POLE_ERR_BAD_REQUEST, "r1", "frame 7 (event name)" },
    { "event name of 33 bytes", { EV ("1", "", S33), NULL }, NULL,
      POLE_ERR_BAD_REQUEST, "r1", "frame 7 (event name)" },

    //  Fields
    { "field without '='", { EV ("1", "", "note"), "text", NULL }, NULL,
      POLE_ERR_BAD_REQUEST, "r1", "frame 8 (field) is not key=value" },
    { "empty field frame", { EV ("1", "", "note"), "", NULL }, NULL,
      POLE_ERR_BAD_REQUEST, "r1", "frame 8 (field)" },
    { "key with uppercase", { EV ("1", "", "note"), "Text=a", NULL }, NULL,
      POLE_ERR_BAD_REQUEST, "r1", "frame 8 (field) has an invalid key" },
    { "empty key", { EV ("1", "", "note"), "=a", NULL }, NULL,
      POLE_ERR_BAD_REQUEST, "r1", "invalid key" },
    { "key starting with a digit", { "POLE/1", "OPEN", "r1", "alice", "1a=x",
      NULL }, NULL, POLE_ERR_BAD_REQUEST, "r1", "frame 5 (field)" },
    { "key with a hyphen", { "POLE/1", "OPEN", "r1", "alice", "holder-type=x",
      NULL }, NULL, POLE_ERR_BAD_REQUEST, "r1", "invalid key" },
    { "key of 33 bytes", { "POLE/1", "OPEN", "r1", "alice", S33 "=x", NULL },
      NULL, POLE_ERR_BAD_REQUEST, "r1", "invalid key" },
    { "duplicate key", { "POLE/1", "OPEN", "r1", "alice", "pays=dinan",
      "holder=x", "pays=rennes", NULL }, NULL,
      POLE_ERR_BAD_REQUEST, "r1", "frame 7 (field pays): the key pays appears twice" },
    { "value not UTF-8", { EV ("1", "", "note"), "text=caf\xe9", NULL }, NULL,
      POLE_ERR_BAD_REQUEST, "r1", "frame 8 (field text)" },
    { "value with a surrogate", { EV ("1", "", "note"), "text=\xed\xa0\x80",
      NULL }, NULL, POLE_ERR_BAD_REQUEST, "r1", "not valid UTF-8" },
    { "value above U+10FFFF", { EV ("1", "", "note"), "text=\xf4\x90\x80\x80",
      NULL }, NULL, POLE_ERR_BAD_REQUEST, "r1", "not valid UTF-8" },
    { "value with truncated UTF-8", { EV ("1", "", "note"), "text=\xe2\x82",
      NULL }, NULL, POLE_ERR_BAD_REQUEST, "r1", "not valid UTF-8" },
    { "value with NUL", { EV ("1", "", "note"), NULL }, s_append_nul_value,
      POLE_ERR_BAD_REQUEST, "r1", "contains NUL" },
    { "value of 16385 bytes", { EV ("1", "", "note"), NULL },
      s_append_long_value, POLE_ERR_BAD_REQUEST, "r1", "16385 bytes" },

    //  LIST filters
    { "LIST with an unknown filter", { "POLE/1", "LIST", "r1", "holder=x",
      NULL }, NULL, POLE_ERR_BAD_REQUEST, "r1", "frame 4 (filter holder): "
      "LIST filters are state, pays and overdue only" },
    { "LIST with a filter twice", { "POLE/1", "LIST", "r1", "state=draft",
      "state=closed", NULL }, NULL, POLE_ERR_BAD_REQUEST, "r1", "twice" },
    { "LIST with a bare word", { "POLE/1", "LIST", "r1", "draft", NULL }, NULL,
      POLE_ERR_BAD_REQUEST, "r1", "frame 4 (field) is not key=value" },
    { "LIST overdue=2", { "POLE/1", "LIST", "r1", "overdue=2", NULL }, NULL,
      POLE_ERR_BAD_REQUEST, "r1", "frame 4 (filter overdue): the only value" },
    { "LIST overdue=0", { "POLE/1", "LIST", "r1", "state=draft", "overdue=0",
      NULL }, NULL, POLE_ERR_BAD_REQUEST, "r1", "frame 5 (filter overdue)" },
    { "LIST overdue empty", { "POLE/1", "LIST", "r1", "overdue=", NULL }, NULL,
      POLE_ERR_BAD_REQUEST, "r1", "frame 4 (filter overdue)" },
    { "LIST overdue=true", { "POLE/1", "LIST", "r1", "overdue=true", NULL },
      NULL, POLE_ERR_BAD_REQUEST, "r1", "frame 4 (filter overdue)" },
    { "LIST overdue=11", { "POLE/1", "LIST", "r1", "overdue=11", NULL },
      NULL, POLE_ERR_BAD_REQUEST, "r1", "frame 4 (filter overdue)" },
    { "LIST overdue twice", { "POLE/1", "LIST", "r1", "overdue=1",
      "overdue=1", NULL }, NULL, POLE_ERR_BAD_REQUEST, "r1",
      "the key overdue appears twice" },
    { "OUTBOX with an overdue filter", { "POLE/1", "OUTBOX", "r1",
      "overdue=1", NULL }, NULL, POLE_ERR_BAD_REQUEST, "r1",
      "frame 4 (filter overdue): the only OUTBOX filter is state" },

    //  OUTBOX: state is the only filter
    { "OUTBOX with a pays filter", { "POLE/1", "OUTBOX", "r1", "pays=Dinan",
      NULL }, NULL, POLE_ERR_BAD_REQUEST, "r1", "frame 4 (filter pays)" },
    { "OUTBOX with a coordinator filter", { "POLE/1", "OUTBOX", "r1",
      "state=dead", "coordinator=CRES", NULL }, NULL, POLE_ERR_BAD_REQUEST,
      "r1", "frame 5 (filter coordinator): the only OUTBOX filter is state" },
    { "OUTBOX with state twice", { "POLE/1", "OUTBOX", "r1", "state=dead",
      "state=pending", NULL }, NULL, POLE_ERR_BAD_REQUEST, "r1", "twice" },
    { "OUTBOX with a bare word", { "POLE/1", "OUTBOX", "r1", "dead", NULL },
      NULL, POLE_ERR_BAD_REQUEST, "r1", "frame 4 (field) is not key=value" },

    //  RETRY: actor and target
    { "RETRY without actor", { "POLE/1", "RETRY", "r1", NULL }, NULL,
      POLE_ERR_BAD_REQUEST, "r1", "RETRY request has no frame 4 (actor)" },
    { "RETRY without target", { "POLE/1", "RETRY", "r1", "alice", NULL },
      NULL, POLE_ERR_BAD_REQUEST, "r1", "no frame 5 (target)" },
    { "RETRY with an empty actor", { "POLE/1", "RETRY", "r1", "", "12-0",
      NULL }, NULL, POLE_ERR_BAD_REQUEST, "r1", "frame 4 (actor)" },
    { "RETRY with an actor not UTF-8", { "POLE/1", "RETRY", "r1", "a\xff",
      "12-0", NULL }, NULL, POLE_ERR_BAD_REQUEST, "r1", "frame 4 (actor)" },
    { "RETRY with an extra frame", { "POLE/1", "RETRY", "r1", "alice", "12-0",
      "13-0", NULL }, NULL, POLE_ERR_BAD_REQUEST, "r1", "takes exactly 5" },
    { "RETRY with an empty target", { "POLE/1", "RETRY", "r1", "alice", "",
      NULL }, NULL, POLE_ERR_BAD_REQUEST, "r1", "frame 5 (target)" },
    { "RETRY with a word as target", { "POLE/1", "RETRY", "r1", "alice",
      "dead", NULL }, NULL, POLE_ERR_BAD_REQUEST, "r1", "frame 5 (target)" },
    { "RETRY with --DEAD", { "POLE/1", "RETRY", "r1", "alice", "--DEAD",
      NULL }, NULL, POLE_ERR_BAD_REQUEST, "r1", "frame 5 (target)" },
    { "RETRY with a target of 33 bytes", { "POLE/1", "RETRY", "r1", "alice",
      "123456789012345678901234567890123", NULL }, NULL,
      POLE_ERR_BAD_REQUEST, "r1", "frame 5 (target)" },
    { "RETRY with a space in the target", { "POLE/1", "RETRY", "r1", "alice",
      "12 0", NULL }, NULL, POLE_ERR_BAD_REQUEST, "r1", "frame 5 (target)" },
    { "RETRY with a key=value target", { "POLE/1", "RETRY", "r1", "alice",
      "id=12-0", NULL }, NULL, POLE_ERR_BAD_REQUEST, "r1", "frame 5 (target)" },
    { "lowercase retry", { "POLE/1", "retry", "r1", "alice", "12-0", NULL },
      NULL, POLE_ERR_UNKNOWN_COMMAND, "r1", "frame 2" },

    //  CLOCK: actor, op, value
#define CK(op, value) "POLE/1", "CLOCK", "r1", "alice", op, value
    { "CLOCK without actor", { "POLE/1", "CLOCK", "r1", NULL }, NULL,
      POLE_ERR_BAD_REQUEST, "r1", "CLOCK request has no frame 4 (actor)" },
    { "CLOCK without op", { "POLE/1", "CLOCK", "r1", "alice", NULL }, NULL,
      POLE_ERR_BAD_REQUEST, "r1", "CLOCK request has no frame 5 (clock op)" },
    { "CLOCK get without value frame", { "POLE/1", "CLOCK", "r1", "alice",
      "get", NULL }, NULL, POLE_ERR_BAD_REQUEST, "r1",
      "CLOCK request has no frame 6 (clock value)" },
    { "CLOCK with an extra frame", { CK ("get", ""), "x", NULL }, NULL,
      POLE_ERR_BAD_REQUEST, "r1", "takes exactly 6" },
    { "CLOCK with an empty actor", { "POLE/1", "CLOCK", "r1", "", "get", "",
      NULL }, NULL,
      POLE_ERR_BAD_REQUEST, "r1", "frame 4 (actor)" },
    { "CLOCK op reset", { CK ("reset", ""), NULL }, NULL,
      POLE_ERR_BAD_REQUEST, "r1", "frame 5 (clock op) is not get, set or "
      "advance" },
    { "CLOCK op GET", { CK ("GET", ""), NULL }, NULL,
      POLE_ERR_BAD_REQUEST, "r1", "frame 5 (clock op)" },
    { "CLOCK op empty", { CK ("", ""), NULL }, NULL,
      POLE_ERR_BAD_REQUEST, "r1", "frame 5 (clock op)" },
    { "CLOCK op with a space", { CK ("get ", ""), NULL }, NULL,
      POLE_ERR_BAD_REQUEST, "r1", "frame 5 (clock op)" },
    { "CLOCK get with a value", { CK ("get", "2012-01-01"), NULL }, NULL,
      POLE_ERR_BAD_REQUEST, "r1", "frame 6 (clock value) is not empty" },
    { "CLOCK set without a date", { CK ("set", ""), NULL }, NULL,
      POLE_ERR_BAD_REQUEST, "r1", "frame 6 (clock value) is neither a date" },
    { "CLOCK set month 13", { CK ("set", "2012-13-01"), NULL }, NULL,
      POLE_ERR_BAD_REQUEST, "r1", "frame 6 (clock value)" },
    { "CLOCK set month 00", { CK ("set", "2012-00-01"), NULL }, NULL,
      POLE_ERR_BAD_REQUEST, "r1", "frame 6 (clock value)" },
    { "CLOCK set day 32", { CK ("set", "2012-01-32"), NULL }, NULL,
      POLE_ERR_BAD_REQUEST, "r1", "frame 6 (clock value)" },
    { "CLOCK set day 00", { CK ("set", "2012-01-00"), NULL }, NULL,
      POLE_ERR_BAD_REQUEST, "r1", "frame 6 (clock value)" },
    { "CLOCK set one-digit month", { CK ("set", "2012-1-01"), NULL }, NULL,
      POLE_ERR_BAD_REQUEST, "r1", "frame 6 (clock value)" },
    { "CLOCK set two-digit year", { CK ("set", "12-01-01"), NULL }, NULL,
      POLE_ERR_BAD_REQUEST, "r1", "frame 6 (clock value)" },
    { "CLOCK set with slashes", { CK ("set", "2012/01/01"), NULL }, NULL,
      POLE_ERR_BAD_REQUEST, "r1", "frame 6 (clock value)" },
    { "CLOCK set a date and a space", { CK ("set", "2012-01-01 "), NULL },
      NULL, POLE_ERR_BAD_REQUEST, "r1", "frame 6 (clock value)" },
    { "CLOCK set hour 24", { CK ("set", "2012-01-01T24:00:00Z"), NULL }, NULL,
      POLE_ERR_BAD_REQUEST, "r1", "frame 6 (clock value)" },
    { "CLOCK set second 60", { CK ("set", "2012-01-01T23:59:60Z"), NULL },
      NULL, POLE_ERR_BAD_REQUEST, "r1", "frame 6 (clock value)" },
    { "CLOCK set a time without Z", { CK ("set", "2012-01-01T00:00:00"),
      NULL }, NULL, POLE_ERR_BAD_REQUEST, "r1", "frame 6 (clock value)" },
    { "CLOCK set a time with an offset", { CK ("set",
      "2012-01-01T00:00:00+01:00"), NULL }, NULL, POLE_ERR_BAD_REQUEST, "r1",
      "frame 6 (clock value)" },
    { "CLOCK set a number of days", { CK ("set", "30"), NULL }, NULL,
      POLE_ERR_BAD_REQUEST, "r1", "frame 6 (clock value)" },
    { "CLOCK advance 0 days", { CK ("advance", "0"), NULL }, NULL,
      POLE_ERR_BAD_REQUEST, "r1", "frame 6 (clock value) is not a number of "
      "days from 1 to 36500" },
    { "CLOCK advance 36501 days", { CK ("advance", "36501"), NULL }, NULL,
      POLE_ERR_BAD_REQUEST, "r1", "frame 6 (clock value)" },
    { "CLOCK advance x days", { CK ("advance", "x"), NULL }, NULL,
      POLE_ERR_BAD_REQUEST, "r1", "frame 6 (clock value)" },
    { "CLOCK advance 01 days", { CK ("advance", "01"), NULL }, NULL,
      POLE_ERR_BAD_REQUEST, "r1", "frame 6 (clock value)" },
    { "CLOCK advance -1 days", { CK ("advance", "-1"), NULL }, NULL,
      POLE_ERR_BAD_REQUEST, "r1", "frame 6 (clock value)" },
    { "CLOCK advance without days", { CK ("advance", ""), NULL }, NULL,
      POLE_ERR_BAD_REQUEST, "r1", "frame 6 (clock value)" },
    { "CLOCK advance to a date", { CK ("advance", "2012-01-01"), NULL }, NULL,
      POLE_ERR_BAD_REQUEST, "r1", "frame 6 (clock value)" },
    { "lowercase clock", { "POLE/1", "clock", "r1", "alice", "get", "", NULL },
      NULL, POLE_ERR_UNKNOWN_COMMAND, "r1", "frame 2" },
#undef CK

    //  AGENDA: days
    { "AGENDA without days", { "POLE/1", "AGENDA", "r1", NULL }, NULL,
      POLE_ERR_BAD_REQUEST, "r1", "AGENDA request has no frame 4 (days)" },
    { "AGENDA with an extra frame", { "POLE/1", "AGENDA", "r1", "90",
      "overdue=1", NULL }, NULL, POLE_ERR_BAD_REQUEST, "r1",
      "takes exactly 4" },
    { "AGENDA 3651 days", { "POLE/1", "AGENDA", "r1", "3651", NULL }, NULL,
      POLE_ERR_BAD_REQUEST, "r1", "frame 4 (days) is not a number from 0 to "
      "3650" },
    { "AGENDA empty days", { "POLE/1", "AGENDA", "r1", "", NULL }, NULL,
      POLE_ERR_BAD_REQUEST, "r1", "frame 4 (days)" },
    { "AGENDA x days", { "POLE/1", "AGENDA", "r1", "x", NULL }, NULL,
      POLE_ERR_BAD_REQUEST, "r1", "frame 4 (days)" },
    { "AGENDA 090 days", { "POLE/1", "AGENDA", "r1", "090", NULL }, NULL,
      POLE_ERR_BAD_REQUEST, "r1", "frame 4 (days)" },
    { "AGENDA -1 days", { "POLE/1", "AGENDA", "r1", "-1", NULL }, NULL,
      POLE_ERR_BAD_REQUEST, "r1", "frame 4 (days)" },
    { "AGENDA 2^63 days", { "POLE/1", "AGENDA", "r1", "9223372036854775808",
      NULL }, NULL, POLE_ERR_BAD_REQUEST, "r1", "frame 4 (days)" },

    //  STATUS, VERIFY: nothing after the request id; BACKUP: a path
    { "STATUS with an extra frame", { "POLE/1", "STATUS", "r1", "x", NULL },
      NULL, POLE_ERR_BAD_REQUEST, "r1", "takes exactly 3" },
    { "VERIFY with an extra frame", { "POLE/1", "VERIFY", "r1", "x", NULL },
      NULL, POLE_ERR_BAD_REQUEST, "r1", "takes exactly 3" },
    { "BACKUP without a path", { "POLE/1", "BACKUP", "r1", NULL }, NULL,
      POLE_ERR_BAD_REQUEST, "r1", "BACKUP request has no frame 4 (path)" },
    { "BACKUP relative path", { "POLE/1", "BACKUP", "r1", "pole.db", NULL },
      NULL, POLE_ERR_BAD_REQUEST, "r1", "frame 4 (path) is not an absolute" },
    { "BACKUP empty path", { "POLE/1", "BACKUP", "r1", "", NULL }, NULL,
      POLE_ERR_BAD_REQUEST, "r1", "frame 4 (path)" },
    { "BACKUP root only", { "POLE/1", "BACKUP", "r1", "/", NULL }, NULL,
      POLE_ERR_BAD_REQUEST, "r1", "frame 4 (path)" },
    { "BACKUP path with a newline", { "POLE/1", "BACKUP", "r1", "/tmp/a\nb",
      NULL }, NULL, POLE_ERR_BAD_REQUEST, "r1", "frame 4 (path)" },
    { "BACKUP with two paths", { "POLE/1", "BACKUP", "r1", "/a", "/b", NULL },
      NULL, POLE_ERR_BAD_REQUEST, "r1", "takes exactly 4" },
};

#define BAD_COUNT (sizeof (s_bad) / sizeof (s_bad [0]))

static void
test_bad_request (void **state)
{
    const bad_case_t *bad = (const bad_case_t *) *state;
    zmsg_t *msg = s_msg_of (bad->frames);
    if (bad->append)
        bad->append (msg);
    size_t size = zmsg_size (msg);

    pole_request_t *req = (pole_request_t *) 0x1;   //  must be set to NULL
    const char *code = NULL;
    char reason [REASON_SIZE];
    char *request_id = (char *) 0x1;                //  must be set
    int rc = pole_request_decode (msg, &req, &code, reason, sizeof (reason),
                                  &request_id);
    assert_int_equal (rc, -2);
    assert_null (req);
    assert_non_null (code);
    assert_string_equal (code, bad->code);
    if (!strstr (reason, bad->reason_has))
        fail_msg ("reason \"%s\" does not contain \"%s\"", reason,
                  bad->reason_has);
    //  The reason goes back to the client as the ERROR message
    assert_true (pole_utf8_valid (reason, strlen (reason)));
    if (bad->request_id) {
        assert_non_null (request_id);
        assert_string_equal (request_id, bad->request_id);
    }
    else
        assert_null (request_id);
    free (request_id);
    //  The message is left as it was
    assert_int_equal (zmsg_size (msg), size);
    zmsg_destroy (&msg);
}

//  A NULL message, and no room asked for the optional outputs

static void
test_decode_null_outputs (void **state)
{
    (void) state;
    pole_request_t *req = NULL;
    const char *code = NULL;
    char *request_id = NULL;
    assert_int_equal (pole_request_decode (NULL, &req, &code, NULL, 0,
                                           &request_id), -2);
    assert_string_equal (code, POLE_ERR_BAD_REQUEST);
    assert_null (request_id);

    const char *frames [] = { "POLE/1", "NOPE", "r1", NULL };
    zmsg_t *msg = s_msg_of (frames);
    assert_int_equal (pole_request_decode (msg, &req, NULL, NULL, 0, NULL), -2);
    assert_null (req);
    //  A tiny reason buffer is cut short, not overrun
    char reason [8];
    assert_int_equal (pole_request_decode (msg, &req, &code, reason,
                                           sizeof (reason), NULL), -2);
    assert_int_equal (strlen (reason), sizeof (reason) - 1);
    zmsg_destroy (&msg);
}


//  --------------------------------------------------------------------------
//  Replies

static void
test_reply_ok_round_trip (void **state)
{
    (void) state;
    //  PROTOCOL.md section 10: OPEN's five frames, the warning empty
    const char *payload [] = { "1", "draft", "1", "1", "" };
    zmsg_t *msg = pole_reply_ok ("7f3a-1", payload, 5);
    const char *wire [] = { "POLE/1", "7f3a-1", "OK", "1", "draft", "1", "1",
                            "", NULL };
    s_assert_frames (msg, wire);

    pole_reply_t *reply = NULL;
    char reason [REASON_SIZE];
    assert_int_equal (pole_reply_decode (msg, &reply, reason, sizeof (reason)), 0);
    assert_non_null (reply);
    assert_true (reply->ok);
    assert_string_equal (reply->request_id, "7f3a-1");
    assert_int_equal (reply->frame_count, 5);
    for (size_t index = 0; index < 5; index++)
        assert_string_equal (reply->frames [index], payload [index]);
    assert_null (reply->code);
    pole_reply_destroy (&reply);
    assert_null (reply);
    zmsg_destroy (&msg);

    //  No payload, and a UTF-8 JSON payload
    msg = pole_reply_ok ("p", NULL, 0);
    assert_int_equal (pole_reply_decode (msg, &reply, reason, sizeof (reason)), 0);
    assert_true (reply->ok);
    assert_int_equal (reply->frame_count, 0);
    pole_reply_destroy (&reply);
    zmsg_destroy (&msg);

    const char *json [] = { "{\"pays\":\"Trégor-Goëlo\"}" };
    msg = pole_reply_ok ("s", json, 1);
    assert_int_equal (pole_reply_decode (msg, &reply, reason, sizeof (reason)), 0);
    assert_string_equal (reply->frames [0], json [0]);
    pole_reply_destroy (&reply);
    zmsg_destroy (&msg);
}

//  pole_reply_take: the payload kept as received, the rest as decode does
static void
test_reply_take (void **state)
{
    (void) state;
    char reason [REASON_SIZE];
    pole_reply_t *reply = NULL;
    const char *payload [] = { "[{\"pays\":\"Trégor-Goëlo\"}]", "second" };
    zmsg_t *msg = pole_reply_ok ("t-1", payload, 2);
    assert_int_equal (pole_reply_take (&msg, &reply, reason, sizeof reason), 0);
    assert_null (msg);
    assert_true (reply->ok);
    assert_string_equal (reply->request_id, "t-1");
    assert_int_equal (reply->frame_count, 0);
    assert_null (reply->frames);
    assert_non_null (reply->payload);
    assert_int_equal (zmsg_size (reply->payload), 2);
    zframe_t *frame = zmsg_first (reply->payload);
    for (size_t index = 0; index < 2; index++, frame = zmsg_next (reply->payload)) {
        assert_int_equal (zframe_size (frame), strlen (payload [index]));
        assert_memory_equal (zframe_data (frame), payload [index],
                             strlen (payload [index]));
    }
    pole_reply_destroy (&reply);

    //  No payload: an empty message kept
    msg = pole_reply_ok ("t-2", NULL, 0);
    assert_int_equal (pole_reply_take (&msg, &reply, reason, sizeof reason), 0);
    assert_true (reply->ok);
    assert_int_equal (zmsg_size (reply->payload), 0);
    pole_reply_destroy (&reply);

    //  An ERROR is decoded as by pole_reply_decode, with nothing kept
    msg = pole_reply_error ("t-3", POLE_ERR_NOT_FOUND, "there is no dossier 9",
                            "");
    assert_int_equal (pole_reply_take (&msg, &reply, reason, sizeof reason), 0);
    assert_null (msg);
    assert_false (reply->ok);
    assert_string_equal (reply->code, POLE_ERR_NOT_FOUND);
    assert_string_equal (reply->message, "there is no dossier 9");
    assert_null (reply->payload);
    pole_reply_destroy (&reply);

    //  A payload that is not UTF-8, or holds a NUL, is refused all the
    //  same, and the message is consumed
    static const char *bad [] = { "ok\xff", "a\0b" };
    static const size_t bad_size [] = { 3, 3 };
    for (size_t index = 0; index < 2; index++) {
        msg = zmsg_new ();
        zmsg_addstr (msg, "POLE/1");
        zmsg_addstr (msg, "t-4");
        zmsg_addstr (msg, "OK");
        zmsg_addmem (msg, bad [index], bad_size [index]);
        assert_int_equal (pole_reply_take (&msg, &reply, reason, sizeof reason),
                          -2);
        assert_null (msg);
        assert_null (reply);
        assert_non_null (strstr (reason, "frame 4 (payload)"));
    }
    //  No message
    assert_int_equal (pole_reply_take (NULL, &reply, reason, sizeof reason), -2);
    msg = NULL;
    assert_int_equal (pole_reply_take (&msg, &reply, reason, sizeof reason), -2);
    assert_null (reply);
}

static void
test_reply_error_round_trip (void **state)
{
    (void) state;
    const char *message = "the study grant (30000 €) exceeds the study cap (25000 €)";
    zmsg_t *msg = pole_reply_error ("7f3a-3", POLE_ERR_REFUSED, message,
                                    "study_cap");
    const char *wire [] = { "POLE/1", "7f3a-3", "ERROR", "REFUSED", message,
                            "study_cap", NULL };
    s_assert_frames (msg, wire);

    pole_reply_t *reply = NULL;
    char reason [REASON_SIZE];
    assert_int_equal (pole_reply_decode (msg, &reply, reason, sizeof (reason)), 0);
    assert_false (reply->ok);
    assert_string_equal (reply->request_id, "7f3a-3");
    assert_string_equal (reply->code, POLE_ERR_REFUSED);
    assert_string_equal (reply->message, message);
    assert_string_equal (reply->rule, "study_cap");
    assert_int_equal (reply->frame_count, 0);
    pole_reply_destroy (&reply);
    zmsg_destroy (&msg);

    //  No rule: an empty frame. No request id: an empty frame (section 6)
    msg = pole_reply_error (NULL, POLE_ERR_BAD_REQUEST, "no delimiter", NULL);
    const char *bare [] = { "POLE/1", "", "ERROR", "BAD_REQUEST",
                            "no delimiter", "", NULL };
    s_assert_frames (msg, bare);
    assert_int_equal (pole_reply_decode (msg, &reply, reason, sizeof (reason)), 0);
    assert_string_equal (reply->request_id, "");
    assert_string_equal (reply->code, POLE_ERR_BAD_REQUEST);
    assert_string_equal (reply->rule, "");
    pole_reply_destroy (&reply);
    zmsg_destroy (&msg);
}

static void
test_reply_malformed (void **state)
{
    (void) state;
    static const struct {
        const char *frames [8];
        const char *reason_has;
    } bad [] = {
        { { NULL }, "0 frames" },
        { { "POLE/1", "r1", NULL }, "at least 3" },
        { { "POLE/2", "r1", "OK", NULL }, "frame 1 (signature)" },
        { { "POLE/1", "r 1", "OK", NULL }, "frame 2 (request id)" },
        { { "POLE/1", "r1", "MAYBE", NULL }, "neither OK nor ERROR" },
        { { "POLE/1", "r1", "ok", NULL }, "neither OK nor ERROR" },
        { { "POLE/1", "r1", "OK", "caf\xe9", NULL }, "frame 4 (payload)" },
        { { "POLE/1", "r1", "ERROR", "REFUSED", "why", NULL }, "exactly 6" },
        { { "POLE/1", "r1", "ERROR", "REFUSED", "why", "r", "x", NULL },
          "exactly 6" },
        { { "POLE/1", "r1", "ERROR", "refused", "why", "", NULL },
          "frame 4 (error code)" },
        { { "POLE/1", "r1", "ERROR", "", "why", "", NULL },
          "frame 4 (error code)" },
        { { "POLE/1", "r1", "ERROR", "REFUSED", "\xc0\x80", "", NULL },
          "frame 5 (message)" },
        { { "POLE/1", "r1", "ERROR", "REFUSED", "why", "Study cap", NULL },
          "frame 6 (rule)" },
    };
    for (size_t index = 0; index < sizeof (bad) / sizeof (bad [0]); index++) {
        zmsg_t *msg = s_msg_of (bad [index].frames);
        pole_reply_t *reply = (pole_reply_t *) 0x1;
        char reason [REASON_SIZE];
        int rc = pole_reply_decode (msg, &reply, reason, sizeof (reason));
        if (rc != -2 || reply != NULL || !strstr (reason, bad [index].reason_has))
            fail_msg ("reply case %zu: rc %d, reason \"%s\", expected \"%s\"",
                      index, rc, reason, bad [index].reason_has);
        zmsg_destroy (&msg);
    }
    //  Too many frames
    zmsg_t *msg = pole_reply_ok ("r1", NULL, 0);
    while (zmsg_size (msg) <= POLE_PROTO_MAX_FRAMES)
        zmsg_addstr (msg, "x");
    pole_reply_t *reply = NULL;
    char reason [REASON_SIZE];
    assert_int_equal (pole_reply_decode (msg, &reply, reason, sizeof (reason)), -2);
    assert_non_null (strstr (reason, "65 frames"));
    zmsg_destroy (&msg);
    assert_int_equal (pole_reply_decode (NULL, &reply, reason, sizeof (reason)), -2);
    assert_null (reply);
}


//  --------------------------------------------------------------------------
//  UTF-8, commands, destructors, printing

static void
test_utf8 (void **state)
{
    (void) state;
    static const struct {
        const char *text;
        size_t size;
        bool valid;
    } cases [] = {
        { "", 0, true },
        { "plain ASCII", 11, true },
        { "é", 2, true },
        { "€", 3, true },
        { "\xf0\x9f\x98\x80", 4, true },            //  U+1F600
        { "\xf4\x8f\xbf\xbf", 4, true },            //  U+10FFFF
        { "\xed\x9f\xbf", 3, true },                //  U+D7FF
        { "\xee\x80\x80", 3, true },                //  U+E000
        { "\xef\xbf\xbf", 3, true },                //  U+FFFF
        { "a\0b", 3, false },                       //  NUL
        { "\x80", 1, false },                       //  lone continuation
        { "\xbf", 1, false },
        { "\xc0\x80", 2, false },                   //  overlong NUL
        { "\xc1\xbf", 2, false },                   //  overlong
        { "\xe0\x80\xaf", 3, false },               //  overlong '/'
        { "\xe0\x9f\xbf", 3, false },               //  overlong U+07FF
        { "\xf0\x8f\xbf\xbf", 4, false },           //  overlong U+FFFF
        { "\xed\xa0\x80", 3, false },               //  U+D800
        { "\xed\xbf\xbf", 3, false },               //  U+DFFF
        { "\xf4\x90\x80\x80", 4, false },           //  U+110000
        { "\xf5\x80\x80\x80", 4, false },
        { "\xff", 1, false },
        { "\xfe", 1, false },
        { "\xc3", 1, false },                       //  truncated
        { "\xe2\x82", 2, false },                   //  truncated
        { "\xf0\x9f\x98", 3, false },               //  truncated
        { "\xc3\x28", 2, false },                   //  bad continuation
        { "\xe2\x28\xa1", 3, false },
    };
    for (size_t index = 0; index < sizeof (cases) / sizeof (cases [0]); index++)
        if (pole_utf8_valid (cases [index].text, cases [index].size)
            != cases [index].valid)
            fail_msg ("UTF-8 case %zu: expected %s", index,
                      cases [index].valid? "valid": "invalid");
    //  The size is obeyed: a valid prefix of an invalid buffer is valid
    assert_true (pole_utf8_valid ("ab\xff", 2));
    assert_true (pole_utf8_valid (NULL, 0));
    assert_false (pole_utf8_valid (NULL, 1));
    //  Eight bytes are read at a time while they are ASCII: each case
    //  above, at every offset in ASCII of every length around a word, at
    //  both ends, gives the same answer; and every single byte value
    //  there, among ASCII, is judged as alone
    char buffer [64];
    for (size_t index = 0; index < sizeof (cases) / sizeof (cases [0]); index++)
        for (size_t before = 0; before <= 17; before++)
            for (size_t after = 0; after <= 17; after++) {
                size_t size = cases [index].size;
                memset (buffer, 'x', before);
                memcpy (buffer + before, cases [index].text, size);
                memset (buffer + before + size, 'y', after);
                if (pole_utf8_valid (buffer, before + size + after)
                    != cases [index].valid)
                    fail_msg ("UTF-8 case %zu with %zu ASCII bytes before"
                              " and %zu after: expected %s", index, before,
                              after,
                              cases [index].valid? "valid": "invalid");
            }
    for (int byte = 0; byte < 256; byte++)
        for (size_t at = 0; at < 24; at++) {
            memset (buffer, 'a', 24);
            buffer [at] = (char) byte;
            bool alone = byte >= 0x01 && byte <= 0x7f;
            if (pole_utf8_valid (buffer, 24) != alone)
                fail_msg ("byte %02x at %zu: expected %s", byte, at,
                          alone? "valid": "invalid");
        }
    //  A 00 followed by 01 in one word is still refused
    memcpy (buffer, "abcdef\0\x01", 8);
    assert_false (pole_utf8_valid (buffer, 8));
    //  Exactly the bytes given are read: ASCII in buffers of exactly 1 to
    //  24 bytes on the heap, where the ASan build sees one byte more
    for (size_t size = 1; size <= 24; size++) {
        char *exact = (char *) malloc (size);
        assert_non_null (exact);
        memset (exact, 'q', size);
        assert_true (pole_utf8_valid (exact, size));
        exact [size - 1] = (char) 0xc3;     //  a truncated character last
        assert_false (pole_utf8_valid (exact, size));
        free (exact);
    }
}

static void
test_commands (void **state)
{
    (void) state;
    for (int command = 0; command < POLE_CMD_COUNT; command++) {
        const char *name = pole_command_name (command);
        assert_non_null (name);
        assert_int_equal (pole_command_from_name (name), command);
    }
    assert_string_equal (pole_command_name (POLE_CMD_HISTORY), "HISTORY");
    assert_null (pole_command_name (-1));
    assert_null (pole_command_name (POLE_CMD_COUNT));
    assert_int_equal (pole_command_from_name ("ping"), -1);
    assert_int_equal (pole_command_from_name (""), -1);
    assert_int_equal (pole_command_from_name (NULL), -1);
    assert_true (pole_command_is_mutating (POLE_CMD_OPEN));
    assert_true (pole_command_is_mutating (POLE_CMD_EVENT));
    assert_false (pole_command_is_mutating (POLE_CMD_PING));
    assert_false (pole_command_is_mutating (POLE_CMD_SHOW));
    assert_false (pole_command_is_mutating (POLE_CMD_LIST));
    assert_false (pole_command_is_mutating (POLE_CMD_HISTORY));
    assert_false (pole_command_is_mutating (POLE_CMD_REPORT));
    assert_string_equal (pole_command_name (POLE_CMD_OUTBOX), "OUTBOX");
    assert_string_equal (pole_command_name (POLE_CMD_RETRY), "RETRY");
    assert_string_equal (pole_command_name (POLE_CMD_CLOCK), "CLOCK");
    assert_string_equal (pole_command_name (POLE_CMD_AGENDA), "AGENDA");
    //  RETRY writes but is not recorded by request id; neither is CLOCK
    //  (nor counted as a write: that depends on its op)
    assert_false (pole_command_is_mutating (POLE_CMD_OUTBOX));
    assert_false (pole_command_is_mutating (POLE_CMD_RETRY));
    assert_false (pole_command_is_mutating (POLE_CMD_CLOCK));
    assert_false (pole_command_is_mutating (POLE_CMD_AGENDA));
    for (int command = 0; command < POLE_CMD_COUNT; command++)
        assert_int_equal (pole_command_is_write ((pole_command_t) command),
                          command == POLE_CMD_OPEN
                          || command == POLE_CMD_EVENT
                          || command == POLE_CMD_RETRY);
    //  The values of the first commands do not move
    assert_int_equal (POLE_CMD_PING, 0);
    assert_int_equal (POLE_CMD_REPORT, 6);
    assert_int_equal (POLE_CMD_OUTBOX, 7);
    assert_int_equal (POLE_CMD_RETRY, 8);
    assert_int_equal (POLE_CMD_CLOCK, 9);
    assert_int_equal (POLE_CMD_AGENDA, 10);
    assert_int_equal (POLE_CMD_STATUS, 11);
    assert_int_equal (POLE_CMD_VERIFY, 12);
    assert_int_equal (POLE_CMD_BACKUP, 13);
    assert_int_equal (POLE_CMD_COUNT, 14);
    assert_false (pole_command_is_mutating (POLE_CMD_BACKUP));
}

static void
test_destroy_is_safe (void **state)
{
    (void) state;
    pole_request_destroy (NULL);
    pole_reply_destroy (NULL);
    pole_request_t *req = NULL;
    pole_request_destroy (&req);
    pole_reply_t *reply = NULL;
    pole_reply_destroy (&reply);

    const char *frames [] = { "POLE/1", "OPEN", "d1", "alice", "pays=dinan",
                              NULL };
    zmsg_t *msg = s_msg_of (frames);
    req = s_decode_ok (msg);
    pole_request_destroy (&req);
    assert_null (req);
    pole_request_destroy (&req);        //  twice: a no-op
    zmsg_destroy (&msg);

    //  A decoded RETRY owns its target
    const char *retry [] = { "POLE/1", "RETRY", "d2", "alice", "--dead", NULL };
    msg = s_msg_of (retry);
    req = s_decode_ok (msg);
    assert_string_equal (req->actor, "alice");
    assert_string_equal (req->target, "--dead");
    assert_int_equal (req->field_count, 0);
    pole_request_destroy (&req);
    assert_null (req);
    zmsg_destroy (&msg);

    //  A decoded CLOCK owns its op and value
    const char *clock [] = { "POLE/1", "CLOCK", "d3", "alice", "advance",
                             "30", NULL };
    msg = s_msg_of (clock);
    req = s_decode_ok (msg);
    assert_string_equal (req->target, POLE_CLOCK_ADVANCE);
    assert_string_equal (req->value, "30");
    assert_int_equal (req->days, 30);
    pole_request_destroy (&req);
    assert_null (req);
    zmsg_destroy (&msg);

    //  A CLOCK refused on its value leaves nothing behind (valgrind)
    const char *bad_clock [] = { "POLE/1", "CLOCK", "d4", "alice", "set",
                                 "2012-13-01", NULL };
    msg = s_msg_of (bad_clock);
    const char *code = NULL;
    assert_int_equal (pole_request_decode (msg, &req, &code, NULL, 0, NULL),
                      -2);
    assert_null (req);
    zmsg_destroy (&msg);
}

//  pole_proto_print writes to stderr; catch it in a file and check that
//  nothing raw (an escape, a newline inside a frame, bad UTF-8) got out.

static void
test_print_is_text_safe (void **state)
{
    (void) state;
    zmsg_t *msg = zmsg_new ();
    zmsg_addstr (msg, "POLE/1");
    zmsg_addstr (msg, "line one\nline two \x1b[2J");
    zmsg_addmem (msg, "\xff\x00\x1b", 3);
    zmsg_addmem (msg, "", 0);
    zmsg_addstr (msg, "a\xc2\x9b" "b");

    fflush (stderr);
    int saved = dup (STDERR_FILENO);
    assert_true (saved >= 0);
    FILE *capture = tmpfile ();
    assert_non_null (capture);
    assert_true (dup2 (fileno (capture), STDERR_FILENO) >= 0);
    pole_proto_print (msg, "test: ");
    pole_proto_print (NULL, "test: ");
    fflush (stderr);
    assert_true (dup2 (saved, STDERR_FILENO) >= 0);
    close (saved);

    char output [2048];
    rewind (capture);
    size_t size = fread (output, 1, sizeof (output) - 1, capture);
    fclose (capture);
    output [size] = 0;
    assert_true (pole_utf8_valid (output, size));
    assert_null (memchr (output, 0x1b, size));
    assert_null (strstr (output, "\xc2\x9b"));
    assert_non_null (strstr (output, "test: [001] \"POLE/1\""));
    assert_non_null (strstr (output, "line one\\nline two \\x1B[2J"));
    assert_non_null (strstr (output, "binary FF001B"));
    assert_non_null (strstr (output, "[004] (empty)"));
    assert_non_null (strstr (output, "a\\u009Bb"));
    //  One line per frame, a header line, and one for the NULL message
    size_t lines = 0;
    for (size_t index = 0; index < size; index++)
        lines += output [index] == '\n';
    assert_int_equal (lines, 1 + 5 + 1);
    zmsg_destroy (&msg);
}


int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_ping_round_trip),
        cmocka_unit_test (test_open_round_trip),
        cmocka_unit_test (test_open_without_fields),
        cmocka_unit_test (test_event_round_trip),
        cmocka_unit_test (test_event_without_version),
        cmocka_unit_test (test_event_version_zero),
        cmocka_unit_test (test_show_round_trip),
        cmocka_unit_test (test_list_round_trip),
        cmocka_unit_test (test_list_overdue_round_trip),
        cmocka_unit_test (test_clock_round_trip),
        cmocka_unit_test (test_agenda_round_trip),
        cmocka_unit_test (test_admin_round_trip),
        cmocka_unit_test (test_clock_value_valid),
        cmocka_unit_test (test_time_parse_format),
        cmocka_unit_test (test_history_round_trip),
        cmocka_unit_test (test_report_round_trip),
        cmocka_unit_test (test_outbox_round_trip),
        cmocka_unit_test (test_retry_round_trip),
        cmocka_unit_test (test_retry_target_valid),
        cmocka_unit_test (test_encode_rejects_bad_command),
        cmocka_unit_test (test_decode_keeps_message),
        cmocka_unit_test (test_limits_accepted),
        cmocka_unit_test (test_decode_null_outputs),
        cmocka_unit_test (test_reply_ok_round_trip),
        cmocka_unit_test (test_reply_take),
        cmocka_unit_test (test_reply_error_round_trip),
        cmocka_unit_test (test_reply_malformed),
        cmocka_unit_test (test_utf8),
        cmocka_unit_test (test_commands),
        cmocka_unit_test (test_destroy_is_safe),
        cmocka_unit_test (test_print_is_text_safe),
    };
    //  One test per malformed case, named after it
    struct CMUnitTest bad_tests [BAD_COUNT];
    for (size_t index = 0; index < BAD_COUNT; index++)
        bad_tests [index] = (struct CMUnitTest) {
            .name = s_bad [index].name,
            .test_func = test_bad_request,
            .initial_state = &s_bad [index]
        };
    int failed = cmocka_run_group_tests_name ("codec", tests, NULL, NULL);
    failed += cmocka_run_group_tests_name ("malformed requests", bad_tests,
                                           NULL, NULL);
    return failed? 1: 0;
}
