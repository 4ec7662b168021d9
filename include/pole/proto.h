/*  =========================================================================
    pole_proto - the codec of the POLE/1 wire protocol (proto/PROTOCOL.md)

    One codec, shared by poled and polectl. Decoding never trusts the peer:
    frame counts, frame sizes, UTF-8 and the syntax of every token are
    checked, and a malformed message is reported as -2 with a reason.
    =========================================================================
*/
#ifndef POLE_PROTO_H_INCLUDED
#define POLE_PROTO_H_INCLUDED

#include <czmq.h>
#include <stdint.h>

#include "pole/engine.h"

#ifdef __cplusplus
extern "C" {
#endif

#define POLE_PROTO_SIGNATURE   "POLE/1"
#define POLE_PROTO_MAX_FRAMES  64        /* after the envelope             */
#define POLE_PROTO_MAX_FIELD   16384     /* bytes in one field value       */
#define POLE_PROTO_MAX_TOKEN   64        /* request id, actor, key, ...    */
#define POLE_PROTO_MAX_MESSAGE 65536     /* default ZMQ_MAXMSGSIZE (bytes) */
#define POLE_PROTO_MAX_PATH    4096      /* BACKUP: bytes of the path      */

typedef enum {
    POLE_CMD_PING = 0,
    POLE_CMD_OPEN,
    POLE_CMD_EVENT,
    POLE_CMD_SHOW,
    POLE_CMD_LIST,
    POLE_CMD_HISTORY,
    POLE_CMD_REPORT,
    POLE_CMD_OUTBOX,
    POLE_CMD_RETRY,
    POLE_CMD_CLOCK,
    POLE_CMD_AGENDA,
    POLE_CMD_STATUS,
    POLE_CMD_VERIFY,
    POLE_CMD_BACKUP,
    POLE_CMD_COUNT
} pole_command_t;

/*  The target of RETRY that re-queues every dead notification            */
#define POLE_RETRY_DEAD        "--dead"
#define POLE_PROTO_MAX_NOTIFICATION_ID 32    /* bytes of 0-9 and "-"       */

/*  The operations of CLOCK (PROTOCOL.md section 4), carried in `target`   */
#define POLE_CLOCK_GET         "get"
#define POLE_CLOCK_SET         "set"
#define POLE_CLOCK_ADVANCE     "advance"
#define POLE_CLOCK_MAX_DAYS    36500     /* CLOCK advance: 1 .. this       */
#define POLE_AGENDA_MAX_DAYS   3650      /* AGENDA: 0 .. this              */
/*  The one value of the LIST filter overdue                               */
#define POLE_LIST_OVERDUE      "1"

/*  Error codes of an ERROR reply (PROTOCOL.md, "Error codes")            */
#define POLE_ERR_BAD_REQUEST         "BAD_REQUEST"
#define POLE_ERR_UNSUPPORTED_VERSION "UNSUPPORTED_VERSION"
#define POLE_ERR_UNKNOWN_COMMAND     "UNKNOWN_COMMAND"
#define POLE_ERR_NOT_FOUND           "NOT_FOUND"
#define POLE_ERR_REFUSED             "REFUSED"
#define POLE_ERR_CONFLICT            "CONFLICT"
#define POLE_ERR_INTERNAL            "INTERNAL"
#define POLE_ERR_FORBIDDEN           "FORBIDDEN"

/*  A decoded request. Strings are owned by the request.                   */
typedef struct {
    pole_command_t command;
    char *request_id;
    char *actor;                /* OPEN, EVENT, RETRY, CLOCK               */
    int64_t dossier;            /* EVENT, SHOW, HISTORY                    */
    int64_t expected_version;   /* EVENT: -1 when not given                */
    char *event;                /* EVENT                                   */
    char *target;               /* RETRY: a notification id or "--dead";
                                   BACKUP: the absolute path to write;
                                   CLOCK: the op, POLE_CLOCK_GET, _SET or
                                   _ADVANCE                                */
    char *value;                /* CLOCK: "" for get; for set a date
                                   YYYY-MM-DD or a time
                                   YYYY-MM-DDTHH:MM:SSZ (UTC); for advance
                                   a number of days, 1..36500. Checked for
                                   syntax only: the server checks that the
                                   day exists (pole_proto_time_parse)      */
    int64_t days;               /* AGENDA: 0..3650; CLOCK advance: the
                                   value as a number (set by decode only;
                                   encode sends `value`); else 0           */
    pole_field_t *fields;       /* OPEN, EVENT: fields; LIST, OUTBOX:
                                   filters                                 */
    size_t field_count;
} pole_request_t;

/*  A decoded reply. Strings are owned by the reply.                       */
typedef struct {
    char *request_id;
    bool ok;
    /* ok: the payload frames, in order (see PROTOCOL.md per command), as
       C strings; none when the reply was decoded by pole_reply_take      */
    char **frames;
    size_t frame_count;
    /* ok, from pole_reply_take only: the same frames as received, neither
       copied nor NUL-terminated (zframe_data and zframe_size)            */
    zmsg_t *payload;
    /* !ok                                                                 */
    char *code;                 /* POLE_ERR_*                              */
    char *message;              /* human-readable reason                   */
    char *rule;                 /* REFUSED: the rule id, else ""           */
} pole_reply_t;

const char *pole_command_name (int command);
int pole_command_from_name (const char *name);
/*  True for the commands whose outcome the server records by request id
    (PROTOCOL.md section 7): OPEN and EVENT.                               */
bool pole_command_is_mutating (pole_command_t command);

/*  True for the commands that write to the store: OPEN, EVENT and RETRY.
    RETRY writes (it re-queues notifications) but is not recorded by
    request id: queuing a notification again is idempotent by nature.
    CLOCK is left out because whether it writes depends on its op, which
    this function does not see: CLOCK set and CLOCK advance write the
    simulated clock's offset (get writes nothing), and neither is recorded
    by request id. set is idempotent; advance is NOT (resent after a lost
    reply, it advances twice), so a client that retries SHOULD use set
    (polectl's `clock advance` is a get, then a set).                      */
bool pole_command_is_write (pole_command_t command);

/*  Decode a request body (the frames after the empty delimiter; the
    routing envelope has already been taken off). Returns 0 with *req_p
    set, or -2 if malformed, with `code` (a POLE_ERR_*) and `reason` set,
    and *request_id_p set to the request id if it could be read (so that
    the error reply can carry it), else NULL. Never destroys `msg`.        */
int pole_request_decode (zmsg_t *msg, pole_request_t **req_p,
                         const char **code, char *reason, size_t reason_size,
                         char **request_id_p);

/*  Encode a request into a new message body (no delimiter).               */
zmsg_t *pole_request_encode (const pole_request_t *req);

void pole_request_destroy (pole_request_t **self_p);

/*  Build replies. The frames after the envelope.                          */
zmsg_t *pole_reply_ok (const char *request_id, const char **frames,
                       size_t frame_count);
zmsg_t *pole_reply_error (const char *request_id, const char *code,
                          const char *message, const char *rule);

/*  Decode a reply body. 0 or -2 (malformed, with reason).                 */
int pole_reply_decode (zmsg_t *msg, pole_reply_t **reply_p, char *reason,
                       size_t reason_size);
/*  The same, taking the message: an OK reply's payload frames move into
    reply->payload as received instead of being copied into frames. A
    read's payload can be megabytes (a Pays' list of 4,724 dossiers is
    2.3 MB) and its copy, into memory never touched, was a tenth of
    polectl's time. The frames are checked as by pole_reply_decode. *msg_p
    is NULL after the call, whatever it returns.                          */
int pole_reply_take (zmsg_t **msg_p, pole_reply_t **reply_p, char *reason,
                     size_t reason_size);
void pole_reply_destroy (pole_reply_t **self_p);

/*  True if `target` is a valid RETRY target: POLE_RETRY_DEAD or a
    notification id, 1 to 32 of 0-9 and "-" (PROTOCOL.md section 3).       */
bool pole_retry_target_valid (const char *target);

/*  True if `value` is a valid CLOCK value for `op` (POLE_CLOCK_*), as the
    decoder checks it: empty for get; YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ
    for set (syntax only: month 01-12, day 01-31, hour 00-23, minute and
    second 00-59); a number 1..36500 without leading zero for advance.     */
bool pole_clock_value_valid (const char *op, const char *value);

/*  Parse a UTC time, YYYY-MM-DD (00:00:00) or YYYY-MM-DDTHH:MM:SSZ, into
    seconds since the Epoch. Unlike the decoder, this checks that the day
    exists (no 2025-02-30, 29 February in leap years only). Years 0001 to
    9999. Returns 0, or -1 if `text` is not such a time.                   */
int pole_proto_time_parse (const char *text, int64_t *seconds);

/*  Format seconds since the Epoch as YYYY-MM-DDTHH:MM:SSZ into `buffer`
    (at least 21 bytes). Returns 0, or -1 if the year is not 0001..9999.  */
int pole_proto_time_format (int64_t seconds, char *buffer, size_t size);

/*  True if `text` (of `size` bytes) is valid UTF-8 without NUL.          */
bool pole_utf8_valid (const char *text, size_t size);

/*  Print a message to stderr for debugging, frame by frame.              */
void pole_proto_print (zmsg_t *msg, const char *prefix);

#ifdef __cplusplus
}
#endif

#endif
