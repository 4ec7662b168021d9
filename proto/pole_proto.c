/*  =========================================================================
    pole_proto - the codec of the POLE/1 wire protocol

    This file is the only place that knows how a POLE/1 message is laid
    out on the wire (proto/PROTOCOL.md, sections 3 and 4). poled decodes
    requests and encodes replies with it; polectl does the reverse. Both
    directions go through the same checks, so a client built on this codec
    cannot send what the server would refuse as BAD_REQUEST.

    Decoding never trusts the peer. A frame is a byte string of a known
    size, not a C string: it may contain NUL, it is not NUL-terminated, and
    it may be anything up to ZMQ_MAXMSGSIZE. So every token is checked
    against its grammar on (data, size) before it is copied into a C string,
    and nothing reads past zframe_size. The frame count is checked before
    anything is allocated for fields, so a peer cannot make us allocate more
    than POLE_PROTO_MAX_FRAMES fields.

    As in zproto, a malformed message is -2 with a reason. The reason is a
    sentence that names the frame (frames of the body are numbered from 1,
    the signature being frame 1), because it goes back to the client in the
    ERROR reply and is the only help a client author gets. Reasons are
    plain ASCII: they quote only bytes that have been checked to be
    printable, so that the reply stays valid UTF-8.
    =========================================================================
*/

#include "pole/proto.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  Command names, indexed by pole_command_t. Case matters: the grammar
//  uses %s"..." (case-sensitive strings).
static const char *s_command_names [POLE_CMD_COUNT] = {
    "PING", "OPEN", "EVENT", "SHOW", "LIST", "HISTORY", "REPORT", "OUTBOX",
    "RETRY", "CLOCK", "AGENDA", "STATUS", "VERIFY", "BACKUP"
};

//  Frames of the body that come before the fields, per command. A command
//  that takes no fields has exactly that many frames.
static const struct {
    size_t fixed;               //  signature, command, request id, ...
    bool fields;                //  followed by *field (or *filter)
} s_shape [POLE_CMD_COUNT] = {
    [POLE_CMD_PING]    = { 3, false },
    [POLE_CMD_OPEN]    = { 4, true  },
    [POLE_CMD_EVENT]   = { 7, true  },
    [POLE_CMD_SHOW]    = { 4, false },
    [POLE_CMD_LIST]    = { 3, true  },
    [POLE_CMD_HISTORY] = { 4, false },
    [POLE_CMD_REPORT]  = { 3, true  },
    [POLE_CMD_OUTBOX]  = { 3, true  },
    [POLE_CMD_RETRY]   = { 5, false },
    [POLE_CMD_CLOCK]   = { 6, false },
    [POLE_CMD_AGENDA]  = { 4, false },
    [POLE_CMD_STATUS]  = { 3, false },
    [POLE_CMD_VERIFY]  = { 3, false },
    [POLE_CMD_BACKUP]  = { 4, false }
};

//  Longest key (grammar: %x61-7A *31(...)), event name and error code
#define S_MAX_KEY    32
#define S_MAX_EVENT  32
#define S_MAX_CODE   32
//  Digits in 2^63-1 (9223372036854775807)
#define S_MAX_DIGITS 19

//  A borrowed view of one frame: its bytes and their number. Never a C
//  string.
typedef struct {
    const unsigned char *data;
    size_t size;
} s_view_t;


//  --------------------------------------------------------------------------
//  Small helpers

//  Writes a reason, if the caller gave a buffer for it.

static void
s_reason (char *reason, size_t reason_size, const char *format, ...)
{
    if (!reason || reason_size == 0)
        return;
    va_list args;
    va_start (args, format);
    vsnprintf (reason, reason_size, format, args);
    va_end (args);
}

//  A NUL-terminated copy of a frame's bytes (the bytes have been checked
//  to hold no NUL where that matters). NULL if out of memory.

static char *
s_strndup (const unsigned char *data, size_t size)
{
    char *copy = (char *) malloc (size + 1);
    if (copy) {
        if (size)
            memcpy (copy, data, size);
        copy [size] = 0;
    }
    return copy;
}

//  True if the view holds exactly the C string `text`. memcmp is not given
//  a NULL pointer: an empty frame may have no data.

static bool
s_view_is (s_view_t view, const char *text)
{
    size_t length = strlen (text);
    return view.size == length
        && (length == 0 || memcmp (view.data, text, length) == 0);
}

//  Collects borrowed views of the first `max` frames of `msg` (zmsg has
//  no indexed access). Moves the message's cursor, which is all it
//  changes. Returns the number of frames in the message, which may be
//  more than `max`.

static size_t
s_views (zmsg_t *msg, s_view_t *views, size_t max)
{
    size_t index = 0;
    zframe_t *frame = zmsg_first (msg);
    while (frame && index < max) {
        views [index].data = zframe_data (frame);
        views [index].size = zframe_size (frame);
        index++;
        frame = zmsg_next (msg);
    }
    return zmsg_size (msg);
}

//  request-id = 1*64(%x21-7E); a reply may carry an empty one (a request
//  that had none, PROTOCOL.md section 6), hence `min`.

static bool
s_request_id_valid (s_view_t view, size_t min)
{
    if (view.size < min || view.size > POLE_PROTO_MAX_TOKEN)
        return false;
    for (size_t index = 0; index < view.size; index++)
        if (view.data [index] < 0x21 || view.data [index] > 0x7E)
            return false;
    return true;
}

//  actor = 1*64(utf8-char), without control characters: the actor ends up
//  in logs and in the history, where a newline or an escape sequence
//  could forge lines or drive a terminal.

static bool
s_actor_valid_text (s_view_t view)
{
    if (!pole_utf8_valid ((const char *) view.data, view.size))
        return false;
    for (size_t index = 0; index < view.size; index++) {
        unsigned char byte = view.data [index];
        if (byte < 0x20 || byte == 0x7F)
            return false;               //  C0 controls and DEL
        //  In valid UTF-8, C2 80..C2 9F is exactly U+0080..U+009F, the C1
        //  controls (CSI among them)
        if (byte == 0xC2 && index + 1 < view.size
        &&  view.data [index + 1] <= 0x9F)
            return false;
    }
    return true;
}

//  actor = 1*64(utf8-char): text as above, 1 to 64 bytes

static bool
s_actor_valid (s_view_t view)
{
    return view.size >= 1 && view.size <= POLE_PROTO_MAX_TOKEN
        && s_actor_valid_text (view);
}

//  positive = %x31-39 *18DIGIT, at most 2^63-1. Digits are accumulated
//  with an overflow check, never with strtoll, which would accept signs,
//  spaces and would need a NUL-terminated copy.

static bool
s_parse_positive (s_view_t view, int64_t *value)
{
    if (view.size < 1 || view.size > S_MAX_DIGITS)
        return false;
    if (view.data [0] < '1' || view.data [0] > '9')
        return false;
    int64_t result = 0;
    for (size_t index = 0; index < view.size; index++) {
        unsigned char byte = view.data [index];
        if (byte < '0' || byte > '9')
            return false;
        int digit = byte - '0';
        if (result > (INT64_MAX - digit) / 10)
            return false;               //  does not fit int64
        result = result * 10 + digit;
    }
    *value = result;
    return true;
}

//  number = "0" / positive

static bool
s_parse_number (s_view_t view, int64_t *value)
{
    if (view.size == 1 && view.data [0] == '0') {
        *value = 0;
        return true;
    }
    return s_parse_positive (view, value);
}

//  True if the view is 1..max bytes of [a-z_]: event names, rule ids
//  (with min 0 for an empty rule).

static bool
s_lower_name_valid (s_view_t view, size_t min, size_t max)
{
    if (view.size < min || view.size > max)
        return false;
    for (size_t index = 0; index < view.size; index++) {
        unsigned char byte = view.data [index];
        if (!((byte >= 'a' && byte <= 'z') || byte == '_'))
            return false;
    }
    return true;
}

//  error-code = 1*32(%x41-5A / "_")

static bool
s_code_valid (s_view_t view)
{
    if (view.size < 1 || view.size > S_MAX_CODE)
        return false;
    for (size_t index = 0; index < view.size; index++) {
        unsigned char byte = view.data [index];
        if (!((byte >= 'A' && byte <= 'Z') || byte == '_'))
            return false;
    }
    return true;
}

//  key = %x61-7A *31(%x61-7A / DIGIT / "_")

static bool
s_key_valid (const unsigned char *data, size_t size)
{
    if (size < 1 || size > S_MAX_KEY)
        return false;
    if (data [0] < 'a' || data [0] > 'z')
        return false;
    for (size_t index = 1; index < size; index++) {
        unsigned char byte = data [index];
        if (!((byte >= 'a' && byte <= 'z')
        ||    (byte >= '0' && byte <= '9') || byte == '_'))
            return false;
    }
    return true;
}

//  target = "--dead" / 1*32(DIGIT / "-"): what RETRY queues again, every
//  dead notification or the one of that id (SEQ-K, NOTIFY.md)

static bool
s_target_valid (s_view_t view)
{
    if (s_view_is (view, POLE_RETRY_DEAD))
        return true;
    if (view.size < 1 || view.size > POLE_PROTO_MAX_NOTIFICATION_ID)
        return false;
    for (size_t index = 0; index < view.size; index++) {
        unsigned char byte = view.data [index];
        if (!((byte >= '0' && byte <= '9') || byte == '-'))
            return false;
    }
    return true;
}

//  True if the command takes an actor as frame 4

static bool
s_has_actor (pole_command_t command)
{
    return command == POLE_CMD_OPEN || command == POLE_CMD_EVENT
        || command == POLE_CMD_RETRY || command == POLE_CMD_CLOCK;
}

//  date = 4DIGIT "-" month "-" day, month 01-12, day 01-31: syntax only,
//  the server checks that the day exists (pole_proto_time_parse). Reads
//  the 10 bytes at `data`.

static bool
s_two_digits (const unsigned char *data, int min, int max)
{
    if (data [0] < '0' || data [0] > '9' || data [1] < '0' || data [1] > '9')
        return false;
    int value = (data [0] - '0') * 10 + (data [1] - '0');
    return value >= min && value <= max;
}

static bool
s_date_valid (const unsigned char *data)
{
    for (size_t index = 0; index < 4; index++)
        if (data [index] < '0' || data [index] > '9')
            return false;
    return data [4] == '-' && s_two_digits (data + 5, 1, 12)
        && data [7] == '-' && s_two_digits (data + 8, 1, 31);
}

//  clock-time = date / date "T" hour ":" minute ":" second "Z"

static bool
s_clock_time_valid (s_view_t view)
{
    if (view.size == 10)
        return s_date_valid (view.data);
    if (view.size != 20)
        return false;
    return s_date_valid (view.data)
        && view.data [10] == 'T' && s_two_digits (view.data + 11, 0, 23)
        && view.data [13] == ':' && s_two_digits (view.data + 14, 0, 59)
        && view.data [16] == ':' && s_two_digits (view.data + 17, 0, 59)
        && view.data [19] == 'Z';
}

//  The CLOCK op (frame 5), or NULL if it is none of them

static const char *
s_clock_op (s_view_t view)
{
    static const char *ops [] = {
        POLE_CLOCK_GET, POLE_CLOCK_SET, POLE_CLOCK_ADVANCE, NULL
    };
    for (const char **op = ops; *op; op++)
        if (s_view_is (view, *op))
            return *op;
    return NULL;
}

//  True if the view is a valid value for the CLOCK op; for advance, the
//  number of days goes to *days.

static bool
s_clock_value_valid (const char *op, s_view_t view, int64_t *days)
{
    if (streq (op, POLE_CLOCK_GET))
        return view.size == 0;
    if (streq (op, POLE_CLOCK_SET))
        return s_clock_time_valid (view);
    int64_t number;
    if (!s_parse_positive (view, &number) || number > POLE_CLOCK_MAX_DAYS)
        return false;
    *days = number;
    return true;
}

//  True if the command name can be quoted in a reason: short printable
//  ASCII. Anything else is not echoed back to the client.

static bool
s_quotable (s_view_t view)
{
    return view.size <= 16 && s_request_id_valid (view, 1);
}

//  What frame `index` (1-based) of a request of command `command` holds,
//  for reasons.

static const char *
s_frame_name (pole_command_t command, size_t index)
{
    switch (index) {
        case 1:  return "signature";
        case 2:  return "command";
        case 3:  return "request id";
        case 4:  return s_has_actor (command)? "actor":
                        command == POLE_CMD_AGENDA? "days":
                        command == POLE_CMD_BACKUP? "path": "dossier id";
        case 5:  return command == POLE_CMD_RETRY? "target":
                        command == POLE_CMD_CLOCK? "clock op": "dossier id";
        case 6:  return command == POLE_CMD_CLOCK? "clock value":
                        "expected version";
        case 7:  return "event name";
        default: return "field";
    }
}


//  --------------------------------------------------------------------------
//  Commands

const char *
pole_command_name (int command)
{
    if (command < 0 || command >= POLE_CMD_COUNT)
        return NULL;
    return s_command_names [command];
}

int
pole_command_from_name (const char *name)
{
    if (!name)
        return -1;
    for (int command = 0; command < POLE_CMD_COUNT; command++)
        if (strcmp (name, s_command_names [command]) == 0)
            return command;
    return -1;
}

bool
pole_command_is_mutating (pole_command_t command)
{
    return command == POLE_CMD_OPEN || command == POLE_CMD_EVENT;
}

bool
pole_command_is_write (pole_command_t command)
{
    return command == POLE_CMD_OPEN || command == POLE_CMD_EVENT
        || command == POLE_CMD_RETRY;
}

bool
pole_clock_value_valid (const char *op, const char *value)
{
    if (!op || !value)
        return false;
    s_view_t op_view = { (const unsigned char *) op, strlen (op) };
    s_view_t view = { (const unsigned char *) value, strlen (value) };
    const char *known = s_clock_op (op_view);
    int64_t days;
    return known && s_clock_value_valid (known, view, &days);
}

//  Days since 1970-01-01 of a day of the proleptic Gregorian calendar, and
//  back (H. Hinnant's days_from_civil and civil_from_days), for years
//  0001..9999, where nothing overflows.

static int64_t
s_days_from_civil (int64_t year, int month, int day)
{
    year -= month <= 2;
    int64_t era = (year >= 0? year: year - 399) / 400;
    int64_t year_of_era = year - era * 400;
    int64_t day_of_year = (153 * (month + (month > 2? -3: 9)) + 2) / 5
                        + day - 1;
    int64_t day_of_era = year_of_era * 365 + year_of_era / 4
                       - year_of_era / 100 + day_of_year;
    return era * 146097 + day_of_era - 719468;
}

static void
s_civil_from_days (int64_t days, int64_t *year, int *month, int *day)
{
    days += 719468;
    int64_t era = (days >= 0? days: days - 146096) / 146097;
    int64_t day_of_era = days - era * 146097;
    int64_t year_of_era = (day_of_era - day_of_era / 1460
                        + day_of_era / 36524 - day_of_era / 146096) / 365;
    int64_t day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4
                                        - year_of_era / 100);
    int64_t month_index = (5 * day_of_year + 2) / 153;
    *day = (int) (day_of_year - (153 * month_index + 2) / 5 + 1);
    *month = (int) (month_index < 10? month_index + 3: month_index - 9);
    *year = year_of_era + era * 400 + (*month <= 2);
}

int
pole_proto_time_parse (const char *text, int64_t *seconds)
{
    if (!text || !seconds)
        return -1;
    s_view_t view = { (const unsigned char *) text, strlen (text) };
    if (!s_clock_time_valid (view))
        return -1;
    const char *p = text;
    int64_t year = (p [0] - '0') * 1000 + (p [1] - '0') * 100
                 + (p [2] - '0') * 10 + (p [3] - '0');
    int month = (p [5] - '0') * 10 + (p [6] - '0');
    int day = (p [8] - '0') * 10 + (p [9] - '0');
    static const int month_days [12] = {
        31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31
    };
    bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    if (year < 1 || day > month_days [month - 1]
    ||  (month == 2 && day == 29 && !leap))
        return -1;
    int64_t result = s_days_from_civil (year, month, day) * 86400;
    if (view.size == 20)
        result += ((p [11] - '0') * 10 + (p [12] - '0')) * 3600
                + ((p [14] - '0') * 10 + (p [15] - '0')) * 60
                + ((p [17] - '0') * 10 + (p [18] - '0'));
    *seconds = result;
    return 0;
}

int
pole_proto_time_format (int64_t seconds, char *buffer, size_t size)
{
    //  0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z
    if (!buffer || size < 21
    ||  seconds < -62135596800LL || seconds > 253402300799LL)
        return -1;
    int64_t days = seconds / 86400;
    int64_t rest = seconds % 86400;
    if (rest < 0) {
        rest += 86400;
        days--;
    }
    int64_t year;
    int month, day;
    s_civil_from_days (days, &year, &month, &day);
    snprintf (buffer, size, "%04d-%02d-%02dT%02d:%02d:%02dZ", (int) year,
              month, day, (int) (rest / 3600), (int) (rest / 60 % 60),
              (int) (rest % 60));
    return 0;
}

bool
pole_retry_target_valid (const char *target)
{
    if (!target)
        return false;
    s_view_t view = { (const unsigned char *) target, strlen (target) };
    return s_target_valid (view);
}


//  --------------------------------------------------------------------------
//  UTF-8, as RFC 3629 defines it: no overlong forms, no surrogates
//  (U+D800..U+DFFF), nothing above U+10FFFF, no truncated sequence. NUL is
//  refused too: a value with a NUL would be cut short as a C string and
//  in SQLite, so that what is stored would differ from what was sent.

bool
pole_utf8_valid (const char *text, size_t size)
{
    if (!text)
        return size == 0;
    const unsigned char *bytes = (const unsigned char *) text;
    size_t index = 0;
    while (index < size) {
        //  Eight bytes at a time while they are all 01..7F: a reply's
        //  payload is JSON, mostly ASCII, and byte by byte this loop was
        //  a tenth of polectl's time on a list of 2.3 MB. Subtracting 1
        //  from each byte sets its high bit only for 00 (the borrow) and
        //  leaves it clear for 01..7F; any other byte has it set already.
        //  A word that fails sends one character to the full check below,
        //  then the words start again after it; a false alarm (a borrow
        //  rippling past a zero) costs time, never a wrong answer.
        while (size - index >= 8) {
            uint64_t word;
            memcpy (&word, bytes + index, sizeof word);
            if ((word | (word - 0x0101010101010101ull))
                & 0x8080808080808080ull)
                break;
            index += 8;
        }
        if (index == size)
            break;
        unsigned char lead = bytes [index];
        if (lead == 0)
            return false;
        if (lead < 0x80) {
            index++;
            continue;
        }
        size_t trail;
        uint32_t point, lowest;
        //  C0 and C1 as leads could only encode overlong ASCII; F5..FF
        //  would be above U+10FFFF; 80..BF are continuation bytes
        if (lead >= 0xC2 && lead <= 0xDF) {
            trail = 1;
            point = lead & 0x1F;
            lowest = 0x80;
        }
        else
        if (lead >= 0xE0 && lead <= 0xEF) {
            trail = 2;
            point = lead & 0x0F;
            lowest = 0x800;
        }
        else
        if (lead >= 0xF0 && lead <= 0xF4) {
            trail = 3;
            point = lead & 0x07;
            lowest = 0x10000;
        }
        else
            return false;
        if (size - index - 1 < trail)
            return false;               //  truncated at the end
        for (size_t next = 1; next <= trail; next++) {
            unsigned char byte = bytes [index + next];
            if ((byte & 0xC0) != 0x80)
                return false;
            point = (point << 6) | (byte & 0x3F);
        }
        if (point < lowest)
            return false;               //  overlong
        if (point >= 0xD800 && point <= 0xDFFF)
            return false;               //  surrogate
        if (point > 0x10FFFF)
            return false;
        index += trail + 1;
    }
    return true;
}


//  --------------------------------------------------------------------------
//  Requests

//  Allocates an empty request; NULL if out of memory.

static pole_request_t *
s_request_new (void)
{
    pole_request_t *self = (pole_request_t *) calloc (1, sizeof (pole_request_t));
    if (self)
        self->expected_version = -1;
    return self;
}

void
pole_request_destroy (pole_request_t **self_p)
{
    if (self_p && *self_p) {
        pole_request_t *self = *self_p;
        free (self->request_id);
        free (self->actor);
        free (self->event);
        free (self->target);
        free (self->value);
        //  The fields are owned by a decoded request; pole_field_t says
        //  const because the engine only borrows them
        for (size_t index = 0; index < self->field_count; index++) {
            free ((char *) self->fields [index].key);
            free ((char *) self->fields [index].value);
        }
        free (self->fields);
        free (self);
        *self_p = NULL;
    }
}

//  Decodes field (or filter) frames first .. count into self->fields.
//  Returns NULL, or the error code with the reason written.

static const char *
s_decode_fields (pole_request_t *self, const s_view_t *views, size_t first,
                 size_t count, char *reason, size_t reason_size)
{
    if (first >= count)
        return NULL;
    self->fields = (pole_field_t *) calloc (count - first, sizeof (pole_field_t));
    if (!self->fields) {
        s_reason (reason, reason_size, "out of memory");
        return POLE_ERR_INTERNAL;
    }
    for (size_t index = first; index < count; index++) {
        s_view_t view = views [index];
        size_t number = index + 1;      //  frames are numbered from 1
        const unsigned char *equals = view.size
            ? (const unsigned char *) memchr (view.data, '=', view.size)
            : NULL;
        if (!equals) {
            s_reason (reason, reason_size,
                      "frame %zu (field) is not key=value: it has no '='",
                      number);
            return POLE_ERR_BAD_REQUEST;
        }
        size_t key_size = (size_t) (equals - view.data);
        if (!s_key_valid (view.data, key_size)) {
            s_reason (reason, reason_size,
                      "frame %zu (field) has an invalid key: a key is a "
                      "lowercase letter then at most 31 of a-z, 0-9, _",
                      number);
            return POLE_ERR_BAD_REQUEST;
        }
        //  The key is now known to be short printable ASCII: quotable
        char key [S_MAX_KEY + 1];
        memcpy (key, view.data, key_size);
        key [key_size] = 0;

        const unsigned char *value = equals + 1;
        size_t value_size = view.size - key_size - 1;
        if (value_size > POLE_PROTO_MAX_FIELD) {
            s_reason (reason, reason_size,
                      "frame %zu (field %s): the value is %zu bytes, more "
                      "than %d", number, key, value_size, POLE_PROTO_MAX_FIELD);
            return POLE_ERR_BAD_REQUEST;
        }
        if (!pole_utf8_valid ((const char *) value, value_size)) {
            s_reason (reason, reason_size,
                      "frame %zu (field %s): the value is not valid UTF-8 "
                      "or contains NUL", number, key);
            return POLE_ERR_BAD_REQUEST;
        }
        if (self->command == POLE_CMD_LIST
        &&  strcmp (key, "state") != 0 && strcmp (key, "pays") != 0
        &&  strcmp (key, "overdue") != 0) {
            s_reason (reason, reason_size,
                      "frame %zu (filter %s): LIST filters are state, pays "
                      "and overdue only", number, key);
            return POLE_ERR_BAD_REQUEST;
        }
        if (self->command == POLE_CMD_LIST && strcmp (key, "overdue") == 0
        &&  !(value_size == 1 && value [0] == '1')) {
            s_reason (reason, reason_size,
                      "frame %zu (filter overdue): the only value of the "
                      "overdue filter is %s", number, POLE_LIST_OVERDUE);
            return POLE_ERR_BAD_REQUEST;
        }
        if (self->command == POLE_CMD_REPORT) {
            //  The one REPORT filter: as_of, a day of the calendar
            char day [16] = "";
            int64_t seconds;
            if (value_size == 10)
                memcpy (day, value, 10);
            if (strcmp (key, "as_of") != 0) {
                s_reason (reason, reason_size,
                          "frame %zu (filter %s): the only REPORT filter is "
                          "as_of", number, key);
                return POLE_ERR_BAD_REQUEST;
            }
            if (value_size != 10 || pole_proto_time_parse (day, &seconds)) {
                s_reason (reason, reason_size,
                          "frame %zu (filter as_of): not a day of the "
                          "calendar written YYYY-MM-DD", number);
                return POLE_ERR_BAD_REQUEST;
            }
        }
        if (self->command == POLE_CMD_OUTBOX && strcmp (key, "state") != 0) {
            s_reason (reason, reason_size,
                      "frame %zu (filter %s): the only OUTBOX filter is "
                      "state", number, key);
            return POLE_ERR_BAD_REQUEST;
        }
        for (size_t other = 0; other < self->field_count; other++)
            if (strcmp (self->fields [other].key, key) == 0) {
                s_reason (reason, reason_size,
                          "frame %zu (field %s): the key %s appears twice",
                          number, key, key);
                return POLE_ERR_BAD_REQUEST;
            }
        pole_field_t *field = &self->fields [self->field_count];
        field->key = s_strndup (view.data, key_size);
        field->value = s_strndup (value, value_size);
        //  Counted even if half-built, so that destroy frees what was made
        self->field_count++;
        if (!field->key || !field->value) {
            s_reason (reason, reason_size, "out of memory");
            return POLE_ERR_INTERNAL;
        }
    }
    return NULL;
}

//  Decodes the frames after the request id, for a request whose
//  signature, command and request id are known good. Returns NULL, or the
//  error code with the reason written.

static const char *
s_decode_command (pole_request_t *self, const s_view_t *views, size_t count,
                  char *reason, size_t reason_size)
{
    const char *name = s_command_names [self->command];
    size_t fixed = s_shape [self->command].fixed;
    if (count < fixed) {
        s_reason (reason, reason_size, "%s request has no frame %zu (%s)",
                  name, count + 1, s_frame_name (self->command, count + 1));
        return POLE_ERR_BAD_REQUEST;
    }
    if (!s_shape [self->command].fields && count > fixed) {
        s_reason (reason, reason_size,
                  "%s request has %zu frames; it takes exactly %zu",
                  name, count, fixed);
        return POLE_ERR_BAD_REQUEST;
    }
    //  Frame 4: the actor (OPEN, EVENT, RETRY, CLOCK), the dossier id
    //  (SHOW, HISTORY) or the number of days (AGENDA)
    if (s_has_actor (self->command)) {
        if (!s_actor_valid (views [3])) {
            s_reason (reason, reason_size,
                      "frame 4 (actor) is not 1 to %d bytes of UTF-8 "
                      "text without control characters", POLE_PROTO_MAX_TOKEN);
            return POLE_ERR_BAD_REQUEST;
        }
        self->actor = s_strndup (views [3].data, views [3].size);
        if (!self->actor)
            goto out_of_memory;
    }
    else
    if (self->command == POLE_CMD_SHOW || self->command == POLE_CMD_HISTORY) {
        if (!s_parse_positive (views [3], &self->dossier)) {
            s_reason (reason, reason_size,
                      "frame 4 (dossier id) is not a positive number "
                      "(1 to 9223372036854775807, digits only)");
            return POLE_ERR_BAD_REQUEST;
        }
    }
    else
    if (self->command == POLE_CMD_AGENDA) {
        if (!s_parse_number (views [3], &self->days)
        ||  self->days > POLE_AGENDA_MAX_DAYS) {
            s_reason (reason, reason_size,
                      "frame 4 (days) is not a number from 0 to %d (digits "
                      "only, no leading zero)", POLE_AGENDA_MAX_DAYS);
            self->days = 0;
            return POLE_ERR_BAD_REQUEST;
        }
    }
    else
    if (self->command == POLE_CMD_BACKUP) {
        //  An absolute path on the server: no relative path, whose meaning
        //  would depend on the daemon's working directory
        if (views [3].size < 2 || views [3].size > POLE_PROTO_MAX_PATH
        ||  views [3].data [0] != '/' || !s_actor_valid_text (views [3])) {
            s_reason (reason, reason_size,
                      "frame 4 (path) is not an absolute path of 2 to %d "
                      "bytes of UTF-8 text without control characters",
                      POLE_PROTO_MAX_PATH);
            return POLE_ERR_BAD_REQUEST;
        }
        self->target = s_strndup (views [3].data, views [3].size);
        if (!self->target)
            goto out_of_memory;
    }
    if (self->command == POLE_CMD_EVENT) {
        if (!s_parse_positive (views [4], &self->dossier)) {
            s_reason (reason, reason_size,
                      "frame 5 (dossier id) is not a positive number "
                      "(1 to 9223372036854775807, digits only)");
            return POLE_ERR_BAD_REQUEST;
        }
        if (views [5].size == 0)
            self->expected_version = -1;
        else
        if (!s_parse_number (views [5], &self->expected_version)) {
            s_reason (reason, reason_size,
                      "frame 6 (expected version) is neither empty nor a "
                      "number (digits only, no leading zero)");
            return POLE_ERR_BAD_REQUEST;
        }
        if (!s_lower_name_valid (views [6], 1, S_MAX_EVENT)) {
            s_reason (reason, reason_size,
                      "frame 7 (event name) is not 1 to %d of a-z and _",
                      S_MAX_EVENT);
            return POLE_ERR_BAD_REQUEST;
        }
        self->event = s_strndup (views [6].data, views [6].size);
        if (!self->event)
            goto out_of_memory;
    }
    if (self->command == POLE_CMD_RETRY) {
        if (!s_target_valid (views [4])) {
            s_reason (reason, reason_size,
                      "frame 5 (target) is neither %s nor a notification id "
                      "(1 to %d of 0-9 and -)", POLE_RETRY_DEAD,
                      POLE_PROTO_MAX_NOTIFICATION_ID);
            return POLE_ERR_BAD_REQUEST;
        }
        self->target = s_strndup (views [4].data, views [4].size);
        if (!self->target)
            goto out_of_memory;
    }
    if (self->command == POLE_CMD_CLOCK) {
        const char *op = s_clock_op (views [4]);
        if (!op) {
            s_reason (reason, reason_size,
                      "frame 5 (clock op) is not %s, %s or %s",
                      POLE_CLOCK_GET, POLE_CLOCK_SET, POLE_CLOCK_ADVANCE);
            return POLE_ERR_BAD_REQUEST;
        }
        if (!s_clock_value_valid (op, views [5], &self->days)) {
            if (streq (op, POLE_CLOCK_GET))
                s_reason (reason, reason_size,
                          "frame 6 (clock value) is not empty, as it must "
                          "be for get");
            else
            if (streq (op, POLE_CLOCK_SET))
                s_reason (reason, reason_size,
                          "frame 6 (clock value) is neither a date "
                          "YYYY-MM-DD nor a time YYYY-MM-DDTHH:MM:SSZ");
            else
                s_reason (reason, reason_size,
                          "frame 6 (clock value) is not a number of days "
                          "from 1 to %d (digits only, no leading zero)",
                          POLE_CLOCK_MAX_DAYS);
            return POLE_ERR_BAD_REQUEST;
        }
        self->target = strdup (op);
        self->value = s_strndup (views [5].data, views [5].size);
        if (!self->target || !self->value)
            goto out_of_memory;
    }
    if (s_shape [self->command].fields)
        return s_decode_fields (self, views, fixed, count, reason, reason_size);
    return NULL;

out_of_memory:
    s_reason (reason, reason_size, "out of memory");
    return POLE_ERR_INTERNAL;
}

int
pole_request_decode (zmsg_t *msg, pole_request_t **req_p,
                     const char **code, char *reason, size_t reason_size,
                     char **request_id_p)
{
    const char *unused_code;
    if (!code)
        code = &unused_code;
    *code = NULL;
    s_reason (reason, reason_size, "%s", "");
    if (request_id_p)
        *request_id_p = NULL;
    if (!req_p) {
        *code = POLE_ERR_INTERNAL;
        s_reason (reason, reason_size, "no place for the decoded request");
        return -1;
    }
    *req_p = NULL;
    if (!msg || zmsg_size (msg) == 0) {
        *code = POLE_ERR_BAD_REQUEST;
        s_reason (reason, reason_size, "the request has no frames");
        return -2;
    }
    s_view_t views [POLE_PROTO_MAX_FRAMES];
    size_t count = s_views (msg, views, POLE_PROTO_MAX_FRAMES);
    bool signed_ok = s_view_is (views [0], POLE_PROTO_SIGNATURE);

    pole_request_t *self = s_request_new ();
    if (!self) {
        *code = POLE_ERR_INTERNAL;
        s_reason (reason, reason_size, "out of memory");
        return -1;
    }
    //  Read the request id first, whatever else is wrong, so that the
    //  error reply can carry it: in POLE/1 it is frame 3 of every command,
    //  so an unknown command or too many frames do not hide it. Under
    //  another signature we do not know where it is.
    if (signed_ok && count >= 3 && s_request_id_valid (views [2], 1)) {
        self->request_id = s_strndup (views [2].data, views [2].size);
        if (!self->request_id) {
            *code = POLE_ERR_INTERNAL;
            s_reason (reason, reason_size, "out of memory");
            goto failed;
        }
    }
    if (count > POLE_PROTO_MAX_FRAMES) {
        *code = POLE_ERR_BAD_REQUEST;
        s_reason (reason, reason_size,
                  "the request has %zu frames; at most %d are allowed",
                  count, POLE_PROTO_MAX_FRAMES);
        goto failed;
    }
    if (!signed_ok) {
        *code = POLE_ERR_UNSUPPORTED_VERSION;
        s_reason (reason, reason_size,
                  "frame 1 (signature) is not %s", POLE_PROTO_SIGNATURE);
        goto failed;
    }
    if (count < 2) {
        *code = POLE_ERR_BAD_REQUEST;
        s_reason (reason, reason_size, "the request has no frame 2 (command)");
        goto failed;
    }
    int command = -1;
    for (int index = 0; index < POLE_CMD_COUNT; index++)
        if (s_view_is (views [1], s_command_names [index]))
            command = index;
    if (command < 0) {
        *code = POLE_ERR_UNKNOWN_COMMAND;
        if (s_quotable (views [1]))
            s_reason (reason, reason_size,
                      "frame 2 (command) \"%.*s\" is not a POLE/1 command",
                      (int) views [1].size, (const char *) views [1].data);
        else
            s_reason (reason, reason_size,
                      "frame 2 (command) is not a POLE/1 command");
        goto failed;
    }
    self->command = (pole_command_t) command;
    if (count < 3) {
        *code = POLE_ERR_BAD_REQUEST;
        s_reason (reason, reason_size,
                  "%s request has no frame 3 (request id)",
                  s_command_names [command]);
        goto failed;
    }
    if (!self->request_id) {
        *code = POLE_ERR_BAD_REQUEST;
        s_reason (reason, reason_size,
                  "frame 3 (request id) is not 1 to %d printable ASCII "
                  "characters without space", POLE_PROTO_MAX_TOKEN);
        goto failed;
    }
    *code = s_decode_command (self, views, count, reason, reason_size);
    if (*code)
        goto failed;
    *req_p = self;
    return 0;

failed:
    if (request_id_p && self->request_id)
        *request_id_p = strdup (self->request_id);
    bool out_of_memory = streq (*code, POLE_ERR_INTERNAL);
    pole_request_destroy (&self);
    return out_of_memory? -1: -2;
}

//  Adds a text frame; a NULL string is sent as an empty frame.

static void
s_add_text (zmsg_t *msg, const char *text)
{
    zmsg_addmem (msg, text, text? strlen (text): 0);
}

zmsg_t *
pole_request_encode (const pole_request_t *req)
{
    if (!req || (int) req->command < 0 || req->command >= POLE_CMD_COUNT)
        return NULL;
    zmsg_t *msg = zmsg_new ();
    if (!msg)
        return NULL;
    s_add_text (msg, POLE_PROTO_SIGNATURE);
    s_add_text (msg, s_command_names [req->command]);
    s_add_text (msg, req->request_id);

    char number [32];
    switch (req->command) {
        case POLE_CMD_OPEN:
            s_add_text (msg, req->actor);
            break;
        case POLE_CMD_EVENT:
            s_add_text (msg, req->actor);
            snprintf (number, sizeof (number), "%" PRId64, req->dossier);
            s_add_text (msg, number);
            if (req->expected_version < 0)
                s_add_text (msg, "");   //  empty: no version check
            else {
                snprintf (number, sizeof (number), "%" PRId64,
                          req->expected_version);
                s_add_text (msg, number);
            }
            s_add_text (msg, req->event);
            break;
        case POLE_CMD_RETRY:
            s_add_text (msg, req->actor);
            s_add_text (msg, req->target);
            break;
        case POLE_CMD_CLOCK:
            s_add_text (msg, req->actor);
            s_add_text (msg, req->target);
            s_add_text (msg, req->value);   //  NULL: empty, as for get
            break;
        case POLE_CMD_AGENDA:
            snprintf (number, sizeof (number), "%" PRId64, req->days);
            s_add_text (msg, number);
            break;
        case POLE_CMD_BACKUP:
            s_add_text (msg, req->target);
            break;
        case POLE_CMD_SHOW:
        case POLE_CMD_HISTORY:
            snprintf (number, sizeof (number), "%" PRId64, req->dossier);
            s_add_text (msg, number);
            break;
        default:
            break;
    }
    if (s_shape [req->command].fields && req->fields) {
        for (size_t index = 0; index < req->field_count; index++) {
            const char *key = req->fields [index].key;
            const char *value = req->fields [index].value;
            size_t key_size = key? strlen (key): 0;
            size_t value_size = value? strlen (value): 0;
            zframe_t *frame = zframe_new (NULL, key_size + 1 + value_size);
            if (!frame) {
                zmsg_destroy (&msg);
                return NULL;
            }
            unsigned char *data = zframe_data (frame);
            if (key_size)
                memcpy (data, key, key_size);
            data [key_size] = '=';
            if (value_size)
                memcpy (data + key_size + 1, value, value_size);
            zmsg_append (msg, &frame);
        }
    }
    return msg;
}


//  --------------------------------------------------------------------------
//  Replies

zmsg_t *
pole_reply_ok (const char *request_id, const char **frames,
               size_t frame_count)
{
    zmsg_t *msg = zmsg_new ();
    if (!msg)
        return NULL;
    s_add_text (msg, POLE_PROTO_SIGNATURE);
    s_add_text (msg, request_id);
    s_add_text (msg, "OK");
    for (size_t index = 0; frames && index < frame_count; index++)
        s_add_text (msg, frames [index]);
    return msg;
}

zmsg_t *
pole_reply_error (const char *request_id, const char *code,
                  const char *message, const char *rule)
{
    zmsg_t *msg = zmsg_new ();
    if (!msg)
        return NULL;
    s_add_text (msg, POLE_PROTO_SIGNATURE);
    s_add_text (msg, request_id);
    s_add_text (msg, "ERROR");
    s_add_text (msg, code);
    s_add_text (msg, message);
    s_add_text (msg, rule);             //  NULL: empty, not a REFUSED
    return msg;
}

void
pole_reply_destroy (pole_reply_t **self_p)
{
    if (self_p && *self_p) {
        pole_reply_t *self = *self_p;
        free (self->request_id);
        for (size_t index = 0; index < self->frame_count; index++)
            free (self->frames [index]);
        free (self->frames);
        free (self->code);
        free (self->message);
        free (self->rule);
        zmsg_destroy (&self->payload);
        free (self);
        *self_p = NULL;
    }
}

//  Decodes a reply whose frames are in `views`; an OK reply's payload
//  frames are copied into self->frames if `copy`, else only checked.
//  Returns 0, -2 with the reason written, or -1 if out of memory.

static int
s_reply_decode (pole_reply_t *self, const s_view_t *views, size_t count,
                bool copy, char *reason, size_t reason_size)
{
    if (count < 3) {
        s_reason (reason, reason_size,
                  "the reply has %zu frames; it needs at least 3 "
                  "(signature, request id, status)", count);
        return -2;
    }
    if (count > POLE_PROTO_MAX_FRAMES) {
        s_reason (reason, reason_size,
                  "the reply has %zu frames; at most %d are allowed",
                  count, POLE_PROTO_MAX_FRAMES);
        return -2;
    }
    if (!s_view_is (views [0], POLE_PROTO_SIGNATURE)) {
        s_reason (reason, reason_size,
                  "frame 1 (signature) is not %s", POLE_PROTO_SIGNATURE);
        return -2;
    }
    //  Empty when the server could not read the request's (section 6)
    if (!s_request_id_valid (views [1], 0)) {
        s_reason (reason, reason_size,
                  "frame 2 (request id) is not at most %d printable ASCII "
                  "characters without space", POLE_PROTO_MAX_TOKEN);
        return -2;
    }
    self->request_id = s_strndup (views [1].data, views [1].size);
    if (!self->request_id)
        return -1;

    if (s_view_is (views [2], "OK")) {
        self->ok = true;
        if (count == 3)
            return 0;
        self->frames = copy ? (char **) calloc (count - 3, sizeof (char *))
                            : NULL;
        if (copy && !self->frames)
            return -1;
        for (size_t index = 3; index < count; index++) {
            if (!pole_utf8_valid ((const char *) views [index].data,
                                  views [index].size)) {
                s_reason (reason, reason_size,
                          "frame %zu (payload) is not valid UTF-8 or "
                          "contains NUL", index + 1);
                return -2;
            }
            if (!copy)
                continue;
            char *text = s_strndup (views [index].data, views [index].size);
            if (!text)
                return -1;
            self->frames [self->frame_count++] = text;
        }
        return 0;
    }
    if (s_view_is (views [2], "ERROR")) {
        self->ok = false;
        if (count != 6) {
            s_reason (reason, reason_size,
                      "ERROR reply has %zu frames; it takes exactly 6 "
                      "(signature, request id, ERROR, code, message, rule)",
                      count);
            return -2;
        }
        if (!s_code_valid (views [3])) {
            s_reason (reason, reason_size,
                      "frame 4 (error code) is not 1 to %d of A-Z and _",
                      S_MAX_CODE);
            return -2;
        }
        if (!pole_utf8_valid ((const char *) views [4].data, views [4].size)) {
            s_reason (reason, reason_size,
                      "frame 5 (message) is not valid UTF-8 or contains NUL");
            return -2;
        }
        if (!s_lower_name_valid (views [5], 0, POLE_PROTO_MAX_TOKEN)) {
            s_reason (reason, reason_size,
                      "frame 6 (rule) is not empty nor at most %d of a-z "
                      "and _", POLE_PROTO_MAX_TOKEN);
            return -2;
        }
        self->code = s_strndup (views [3].data, views [3].size);
        self->message = s_strndup (views [4].data, views [4].size);
        self->rule = s_strndup (views [5].data, views [5].size);
        if (!self->code || !self->message || !self->rule)
            return -1;
        return 0;
    }
    s_reason (reason, reason_size, "frame 3 (status) is neither OK nor ERROR");
    return -2;
}

//  The two decoders' common part: 0 with *reply_p set, or -2 (malformed)
//  or -1 (out of memory, or no reply_p) with the reason written. An OK
//  reply's payload frames are copied into frames only if `copy`.

static int
s_reply_from (zmsg_t *msg, bool copy, pole_reply_t **reply_p, char *reason,
              size_t reason_size)
{
    s_reason (reason, reason_size, "%s", "");
    if (!reply_p) {
        s_reason (reason, reason_size, "no place for the decoded reply");
        return -1;
    }
    *reply_p = NULL;
    if (!msg) {
        s_reason (reason, reason_size, "no reply");
        return -2;
    }
    s_view_t views [POLE_PROTO_MAX_FRAMES];
    size_t count = s_views (msg, views, POLE_PROTO_MAX_FRAMES);
    pole_reply_t *self = (pole_reply_t *) calloc (1, sizeof (pole_reply_t));
    int rc = self ? s_reply_decode (self, views, count, copy, reason,
                                    reason_size)
                  : -1;
    if (rc == 0)
        *reply_p = self;
    else {
        if (rc == -1)
            s_reason (reason, reason_size, "out of memory");
        pole_reply_destroy (&self);
    }
    return rc;
}

int
pole_reply_decode (zmsg_t *msg, pole_reply_t **reply_p, char *reason,
                   size_t reason_size)
{
    return s_reply_from (msg, true, reply_p, reason, reason_size);
}

int
pole_reply_take (zmsg_t **msg_p, pole_reply_t **reply_p, char *reason,
                 size_t reason_size)
{
    zmsg_t *msg = msg_p ? *msg_p : NULL;
    if (msg_p)
        *msg_p = NULL;
    int rc = s_reply_from (msg, false, reply_p, reason, reason_size);
    if (rc == 0 && (*reply_p)->ok) {
        //  What is left after signature, request id and status is the
        //  payload, as the decoder has just checked it
        for (int header = 0; header < 3; header++) {
            zframe_t *frame = zmsg_pop (msg);
            zframe_destroy (&frame);
        }
        (*reply_p)->payload = msg;
        msg = NULL;
    }
    zmsg_destroy (&msg);
    return rc;
}


//  --------------------------------------------------------------------------
//  Printing. Like zmsg_print, but a frame from the wire may hold anything,
//  so text is escaped and anything that is not UTF-8 is shown in hex:
//  printing a message must never corrupt a log or drive a terminal.

#define S_PRINT_TEXT 256                //  bytes of text shown per frame
#define S_PRINT_HEX  32                 //  bytes of binary shown per frame

static void
s_print_frame (const unsigned char *data, size_t size, const char *prefix,
               size_t number)
{
    fprintf (stderr, "%s[%03zu] ", prefix, number);
    if (size == 0) {
        fprintf (stderr, "(empty)\n");
        return;
    }
    if (pole_utf8_valid ((const char *) data, size)) {
        size_t shown = size;
        if (shown > S_PRINT_TEXT) {
            shown = S_PRINT_TEXT;
            //  Do not cut a character in two
            while (shown > 0 && (data [shown] & 0xC0) == 0x80)
                shown--;
        }
        fputc ('"', stderr);
        for (size_t index = 0; index < shown; index++) {
            unsigned char byte = data [index];
            if (byte == '\n')
                fputs ("\\n", stderr);
            else
            if (byte == '\t')
                fputs ("\\t", stderr);
            else
            if (byte == '"' || byte == '\\')
                fprintf (stderr, "\\%c", byte);
            else
            if (byte < 0x20 || byte == 0x7F)
                fprintf (stderr, "\\x%02X", byte);
            else
            if (byte == 0xC2 && index + 1 < shown && data [index + 1] <= 0x9F) {
                //  A C1 control (U+0080..U+009F) is escaped too
                fprintf (stderr, "\\u%04X", data [index + 1]);
                index++;
            }
            else
                fputc (byte, stderr);
        }
        fputc ('"', stderr);
        if (shown < size)
            fprintf (stderr, "... (%zu bytes)", size);
    }
    else {
        size_t shown = size > S_PRINT_HEX? S_PRINT_HEX: size;
        fprintf (stderr, "binary ");
        for (size_t index = 0; index < shown; index++)
            fprintf (stderr, "%02X", data [index]);
        if (shown < size)
            fprintf (stderr, "... (%zu bytes)", size);
    }
    fputc ('\n', stderr);
}

void
pole_proto_print (zmsg_t *msg, const char *prefix)
{
    if (!prefix)
        prefix = "";
    if (!msg) {
        fprintf (stderr, "%s(no message)\n", prefix);
        return;
    }
    fprintf (stderr, "%s%zu frames\n", prefix, zmsg_size (msg));
    size_t number = 1;
    zframe_t *frame = zmsg_first (msg);
    while (frame) {
        s_print_frame (zframe_data (frame), zframe_size (frame), prefix,
                       number++);
        frame = zmsg_next (msg);
    }
}
