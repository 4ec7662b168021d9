/*  =========================================================================
    fuzz_codec - libFuzzer target for the POLE/1 codec (proto/pole_proto.c)

    Every message of the input (fuzz_input.h: byte 0 separates frames,
    byte 1 messages) is decoded both as a request body and as a reply body.
    Besides memory errors (ASan) and undefined behaviour (UBSan), these
    properties of the codec abort the run:

    - decoding never changes the message it reads;
    - a request that decodes, encoded again, decodes to the same request;
    - a request refused -2 has a POLE_ERR_* code, a UTF-8 reason, and the
      error reply the server would build from it (pole_reply_error with the
      request id it read, or "") decodes as a reply;
    - a reply that decodes, built again with pole_reply_ok or
      pole_reply_error, decodes to the same reply.
    =========================================================================
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_input.h"
#include "pole/proto.h"

#define CHECK(cond)                                                         \
    do {                                                                    \
        if (!(cond)) {                                                      \
            fprintf (stderr, "fuzz_codec: %s:%d: check failed: %s\n",       \
                     __FILE__, __LINE__, #cond);                            \
            abort ();                                                       \
        }                                                                   \
    } while (0)

static bool
s_same (const char *a, const char *b)
{
    if (!a || !b)
        return a == b;
    return strcmp (a, b) == 0;
}

//  NULL and "" are the same on the wire (an empty frame)
static bool
s_same_text (const char *a, const char *b)
{
    return s_same (a && *a ? a : NULL, b && *b ? b : NULL);
}

static bool
s_is_error_code (const char *code)
{
    const char *codes[] = {POLE_ERR_BAD_REQUEST, POLE_ERR_UNSUPPORTED_VERSION,
                           POLE_ERR_UNKNOWN_COMMAND, POLE_ERR_NOT_FOUND,
                           POLE_ERR_REFUSED, POLE_ERR_CONFLICT,
                           POLE_ERR_INTERNAL};
    for (size_t index = 0; index < sizeof codes / sizeof codes[0]; index++)
        if (code && strcmp (code, codes[index]) == 0)
            return true;
    return false;
}

//  A digest of a message, to check that decoding left it as it was
static uint64_t
s_digest (zmsg_t *msg)
{
    uint64_t hash = 1469598103934665603ULL ^ zmsg_size (msg);
    for (zframe_t *frame = zmsg_first (msg); frame; frame = zmsg_next (msg)) {
        const uint8_t *data = zframe_data (frame);
        size_t size = zframe_size (frame);
        hash = (hash ^ size) * 1099511628211ULL;
        for (size_t index = 0; index < size; index++)
            hash = (hash ^ data[index]) * 1099511628211ULL;
    }
    return hash;
}

static void
s_check_same_request (const pole_request_t *a, const pole_request_t *b)
{
    CHECK (a->command == b->command);
    CHECK (s_same (a->request_id, b->request_id));
    CHECK (s_same_text (a->actor, b->actor));
    CHECK (a->dossier == b->dossier);
    CHECK (a->expected_version == b->expected_version);
    CHECK (s_same_text (a->event, b->event));
    CHECK (s_same_text (a->target, b->target));
    CHECK (s_same_text (a->value, b->value));
    CHECK (a->days == b->days);
    CHECK (a->field_count == b->field_count);
    for (size_t index = 0; index < a->field_count; index++) {
        CHECK (s_same (a->fields[index].key, b->fields[index].key));
        CHECK (s_same (a->fields[index].value, b->fields[index].value));
    }
}

static void
s_fuzz_request (zmsg_t *msg)
{
    uint64_t before = s_digest (msg);
    pole_request_t *req = NULL;
    const char *code = NULL;
    char reason[256];
    char *request_id = NULL;
    int rc = pole_request_decode (msg, &req, &code, reason, sizeof reason,
                                  &request_id);
    CHECK (s_digest (msg) == before);
    CHECK (rc == 0 || rc == -2);   //  -1 is out of memory only
    if (rc == 0) {
        CHECK (req);
        CHECK (!request_id);
        zmsg_t *again = pole_request_encode (req);
        CHECK (again);
        pole_request_t *req2 = NULL;
        const char *code2 = NULL;
        char reason2[256];
        int rc2 = pole_request_decode (again, &req2, &code2, reason2,
                                       sizeof reason2, NULL);
        if (rc2 != 0)
            fprintf (stderr, "fuzz_codec: re-encoded request refused: %s %s\n",
                     code2 ? code2 : "?", reason2);
        CHECK (rc2 == 0);
        s_check_same_request (req, req2);
        pole_request_destroy (&req2);
        zmsg_destroy (&again);
        pole_request_destroy (&req);
    }
    else {
        CHECK (!req);
        CHECK (s_is_error_code (code));
        CHECK (pole_utf8_valid (reason, strlen (reason)));
        //  The error reply the server sends (daemon/server.c) must be a
        //  valid reply: its message is the decoder's reason
        zmsg_t *error = pole_reply_error (request_id ? request_id : "", code,
                                          reason, NULL);
        CHECK (error);
        pole_reply_t *reply = NULL;
        char reason2[256];
        int rc2 = pole_reply_decode (error, &reply, reason2, sizeof reason2);
        if (rc2 != 0)
            fprintf (stderr, "fuzz_codec: error reply refused: %s\n", reason2);
        CHECK (rc2 == 0);
        CHECK (!reply->ok);
        CHECK (s_same (reply->request_id, request_id ? request_id : ""));
        CHECK (s_same (reply->code, code));
        CHECK (s_same (reply->message, reason));
        pole_reply_destroy (&reply);
        zmsg_destroy (&error);
        zstr_free (&request_id);
    }
}

static void
s_fuzz_reply (zmsg_t *msg)
{
    uint64_t before = s_digest (msg);
    pole_reply_t *reply = NULL;
    char reason[256];
    int rc = pole_reply_decode (msg, &reply, reason, sizeof reason);
    CHECK (s_digest (msg) == before);
    CHECK (rc == 0 || rc == -2);
    //  pole_reply_take agrees with it on every input: the same verdict,
    //  and an OK reply's payload kept byte for byte as decode copied it
    zmsg_t *copy = zmsg_dup (msg);
    CHECK (copy);
    pole_reply_t *taken = NULL;
    char reason_taken[256];
    int rc_taken = pole_reply_take (&copy, &taken, reason_taken,
                                    sizeof reason_taken);
    CHECK (!copy);
    CHECK (rc_taken == rc);
    CHECK (rc != 0 || taken);
    if (rc == 0) {
        CHECK (taken->ok == reply->ok);
        CHECK (s_same (taken->request_id, reply->request_id));
        CHECK (taken->frame_count == 0);
        if (reply->ok) {
            CHECK (taken->payload);
            CHECK (zmsg_size (taken->payload) == reply->frame_count);
            zframe_t *frame = zmsg_first (taken->payload);
            for (size_t index = 0; index < reply->frame_count; index++) {
                CHECK (zframe_size (frame) == strlen (reply->frames[index]));
                CHECK (memcmp (zframe_data (frame), reply->frames[index],
                               zframe_size (frame))
                       == 0);
                frame = zmsg_next (taken->payload);
            }
        }
        else {
            CHECK (!taken->payload);
            CHECK (s_same (taken->code, reply->code));
            CHECK (s_same (taken->message, reply->message));
        }
    }
    else
        CHECK (!taken);
    pole_reply_destroy (&taken);
    if (rc != 0) {
        CHECK (!reply);
        return;
    }
    CHECK (reply && reply->request_id);
    zmsg_t *again
        = reply->ok ? pole_reply_ok (reply->request_id,
                                     (const char **) reply->frames,
                                     reply->frame_count)
                    : pole_reply_error (reply->request_id, reply->code,
                                        reply->message, reply->rule);
    CHECK (again);
    CHECK (zmsg_size (again) == zmsg_size (msg));
    pole_reply_t *reply2 = NULL;
    int rc2 = pole_reply_decode (again, &reply2, reason, sizeof reason);
    CHECK (rc2 == 0);
    CHECK (reply2->ok == reply->ok);
    CHECK (s_same (reply2->request_id, reply->request_id));
    CHECK (reply2->frame_count == reply->frame_count);
    for (size_t index = 0; index < reply->frame_count; index++)
        CHECK (s_same (reply2->frames[index], reply->frames[index]));
    if (!reply->ok) {
        CHECK (s_same (reply2->code, reply->code));
        CHECK (s_same (reply2->message, reply->message));
        CHECK (s_same_text (reply2->rule, reply->rule));
    }
    pole_reply_destroy (&reply2);
    zmsg_destroy (&again);
    pole_reply_destroy (&reply);
}

static void
s_each (zmsg_t *msg, void *arg)
{
    (void) arg;
    s_fuzz_request (msg);
    s_fuzz_reply (msg);
    zmsg_destroy (&msg);
}

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    fuzz_split (data, size, s_each, NULL);
    return 0;
}
