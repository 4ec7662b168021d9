/*  =========================================================================
    polectl - the command-line client of poled (POLE/1)

    polectl turns one command line into one POLE/1 request, waits for the
    answer and turns it into output and an exit status (docs/CLI.md is the
    contract; proto/PROTOCOL.md the wire).

    The exchange is deliberately simple. One DEALER socket connects to the
    daemon; the request goes out as an empty delimiter frame followed by the
    body the codec makes, exactly as a REQ socket would put it on the wire.
    A DEALER rather than a REQ because a REQ socket cannot resend after a
    lost reply: it would insist on a receive first. If no answer arrives in
    time, the socket is thrown away (so that a connection that went bad is
    made again) and the same request, with the SAME request id, is sent on
    a new one. The server records the outcome of every mutating request by
    its id, so a retry after a lost reply gets the first outcome back
    instead of applying the event twice. A reply that carries another
    request id cannot be ours (an answer to an earlier life of the socket,
    say) and is ignored while we go on waiting until the deadline.

    Local checks catch what the shell user got wrong (an id that is not a
    number, an unknown event, an argument without '=') and report them as
    bad usage (exit 2) before anything is sent. Everything the workflow
    decides (fields, amounts, Pays, states) is left to the daemon, which
    alone knows the configuration and names the rule that refused.

    graph needs no daemon: it prints the workflow table linked into the
    binary. graph ID asks for the dossier's history and highlights its
    path on that table. show asks twice (SHOW, then HISTORY, each with its
    own request id) and prints once both have answered.

    watch is the one command that does not ask: it subscribes to the
    daemon's live stream (a PUB socket, PROTOCOL.md section 11) and prints
    each committed event as it comes, until interrupted. The stream may
    lose messages (a slow subscriber, a late one); watch is for people
    looking, not for anything that must see every event.

    clock advance is not sent as CLOCK advance: that is not recorded by
    request id, so a retry after a lost reply would advance twice. It is a
    CLOCK get, then a CLOCK set to the time got plus N days, which a retry
    cannot apply twice.
    =========================================================================
*/

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <czmq.h>
#include <jansson.h>

#include "pole/pole.h"
#include "pole/proto.h"

//  Exit statuses (docs/CLI.md)
#define POLECTL_EXIT_DONE       0
#define POLECTL_EXIT_REFUSED    1
#define POLECTL_EXIT_USAGE      2
#define POLECTL_EXIT_NOT_FOUND  3
#define POLECTL_EXIT_CONFLICT   4
#define POLECTL_EXIT_NO_ANSWER  5
#define POLECTL_EXIT_ERROR      6
#define POLECTL_EXIT_FORBIDDEN  7

#define POLECTL_DEFAULT_ENDPOINT "tcp://127.0.0.1:5570"
//  The administrators' socket of an installed poled (docs/ADMIN.md): the
//  default when it exists
#define POLECTL_LOCAL_SOCKET     "/run/pole/poled.sock"
#define POLECTL_LOCAL_ENDPOINT   "ipc://" POLECTL_LOCAL_SOCKET
#define POLECTL_DEFAULT_PUB_ENDPOINT "tcp://127.0.0.1:5571"
#define POLECTL_DEFAULT_TIMEOUT  5.0
#define POLECTL_DEFAULT_RETRIES  2
//  Upper bounds that keep the arithmetic on milliseconds far from overflow
#define POLECTL_MAX_TIMEOUT      86400.0
#define POLECTL_MAX_RETRIES      100

//  Frames an EVENT request spends before its fields: signature, command,
//  request id, actor, dossier id, expected version, event name.
#define POLECTL_EVENT_FIXED_FRAMES 7

//  Global options, resolved from the command line and the environment
typedef struct {
    char *endpoint;             //  as the user gave it, without prefix
    char *pub_endpoint;         //  the live stream, for watch
    double timeout;             //  seconds per try
    int retries;                //  tries after the first one
    char *actor;                //  who sends the event
    char *request_id;           //  the one request id of this run
    char request_id_buf [POLE_PROTO_MAX_TOKEN + 1];
    bool timeout_given;         //  -t on the command line
    zcert_t *cert;              //  our key pair (--cert), or NULL: no CURVE
    char server_key [41];       //  the server's public key, Z85
} s_options_t;

typedef struct _s_command_t s_command_t;
typedef int (s_run_fn) (const s_command_t *self, s_options_t *opts,
                        int argc, char *argv []);

//  One command of polectl: its name, how it is called, what it does
struct _s_command_t {
    const char *name;
    const char *synopsis;       //  arguments after the command name
    const char *summary;        //  one line, for the main --help
    const char *options;        //  its options, for COMMAND --help
    s_run_fn *run;
};

//  Long options of polectl itself; also used to point out a global option
//  given after the command.
enum {
    OPT_REQUEST_ID = 256,
    OPT_PAYS,
    OPT_HOLDER,
    OPT_HOLDER_TYPE,
    OPT_TITLE,
    OPT_STATE,
    OPT_JSON,
    OPT_EXPECT_VERSION,
    OPT_MARKDOWN,
    OPT_PUB_ENDPOINT,
    OPT_EVENT,
    OPT_COUNT,
    OPT_DEAD,
    OPT_OVERDUE,
    OPT_DAYS,
    OPT_AS_OF,
    OPT_CSV,
    OPT_SVG
};

static const struct option s_global_options [] = {
    { "endpoint",   required_argument, NULL, 'e' },
    { "timeout",    required_argument, NULL, 't' },
    { "retries",    required_argument, NULL, 'r' },
    { "actor",      required_argument, NULL, 'a' },
    { "request-id", required_argument, NULL, OPT_REQUEST_ID },
    { "pub-endpoint", required_argument, NULL, OPT_PUB_ENDPOINT },
    { "cert",       required_argument, NULL, 'k' },
    { "server-key", required_argument, NULL, 's' },
    { "help",       no_argument,       NULL, 'h' },
    { "version",    no_argument,       NULL, 'V' },
    { NULL, 0, NULL, 0 }
};
static const char *s_global_optstring = "+:e:t:r:a:k:s:hV";

static const s_command_t *s_command_lookup (const char *name);
static void s_print_command_help (const s_command_t *command);


//  --------------------------------------------------------------------------
//  Reporting

//  Print "polectl: MESSAGE" and the one-line hint to --help on stderr;
//  returns the usage exit status so that callers can `return` it.

static int
    s_usage_error (const char *command, const char *format, ...)
    __attribute__ ((format (printf, 2, 3)));

static int
s_usage_error (const char *command, const char *format, ...)
{
    va_list args;
    va_start (args, format);
    fprintf (stderr, "polectl: ");
    vfprintf (stderr, format, args);
    fprintf (stderr, "\n");
    va_end (args);
    if (command)
        fprintf (stderr, "Try 'polectl %s --help' for more information.\n",
                 command);
    else
        fprintf (stderr, "Try 'polectl --help' for more information.\n");
    return POLECTL_EXIT_USAGE;
}


//  A reply we cannot make sense of is an error of its own (exit 6): the
//  daemon and this client disagree about the protocol.

static int
    s_malformed (const char *format, ...)
    __attribute__ ((format (printf, 1, 2)));

static int
s_malformed (const char *format, ...)
{
    va_list args;
    va_start (args, format);
    fprintf (stderr, "polectl: malformed reply: ");
    vfprintf (stderr, format, args);
    fprintf (stderr, "\n");
    va_end (args);
    return POLECTL_EXIT_ERROR;
}


//  True if `name` is one of the global options (long name without dashes,
//  or a short letter), so that we can say where it belongs.

static bool
s_is_global_option (const char *arg, int short_opt)
{
    if (arg && strncmp (arg, "--", 2) == 0) {
        size_t length = strcspn (arg + 2, "=");
        for (const struct option *o = s_global_options; o->name; o++)
            if (strlen (o->name) == length
            &&  strncmp (o->name, arg + 2, length) == 0)
                return true;
        return false;
    }
    return short_opt > 0 && short_opt < 256
        && strchr ("etrahV", short_opt) != NULL;
}


//  getopt_long over a command's own arguments, with our own messages
//  (opterr is off: getopt would name the command as the program). Returns
//  the option, -1 at the end, or '?' once a usage error has been printed.

static int
s_getopt (int argc, char *argv [], const char *optstring,
          const struct option *longopts, const char *command)
{
    int c = getopt_long (argc, argv, optstring, longopts, NULL);
    if (c == '?' || c == ':') {
        const char *arg = argv [optind - 1];
        bool is_long = strncmp (arg, "--", 2) == 0;
        char short_name [3] = { '-', (char) optopt, 0 };
        const char *shown = is_long? arg: short_name;
        if (c == ':')
            s_usage_error (command, "option '%s' needs a value", shown);
        else
        if (command && s_is_global_option (is_long? arg: NULL, optopt))
            s_usage_error (command, "option '%s' goes before the command "
                           "(polectl [OPTIONS] %s ...)", shown, command);
        else
        if (is_long && strchr (arg, '='))
            s_usage_error (command, "option '%s' is unknown or takes no "
                           "value", shown);
        else
            s_usage_error (command, "unknown option '%s'", shown);
        c = '?';
    }
    return c;
}


//  --------------------------------------------------------------------------
//  Checking what the user typed

//  Parse a decimal number: digits only, no sign, no spaces, at most `max`.
//  Leading zeros are accepted; the codec writes the number back in the
//  canonical form of the grammar.

static int
s_parse_number (const char *text, int64_t max, int64_t *value)
{
    if (!text || !*text)
        return -1;
    int64_t result = 0;
    for (const char *p = text; *p; p++) {
        if (*p < '0' || *p > '9')
            return -1;
        int digit = *p - '0';
        if (result > (max - digit) / 10)
            return -1;
        result = result * 10 + digit;
    }
    *value = result;
    return 0;
}


//  The request id grammar: 1 to 64 printable ASCII characters, no space

static bool
s_request_id_valid (const char *text)
{
    size_t length = strlen (text);
    if (length == 0 || length > POLE_PROTO_MAX_TOKEN)
        return false;
    for (const char *p = text; *p; p++)
        if ((unsigned char) *p < 0x21 || (unsigned char) *p > 0x7E)
            return false;
    return true;
}


//  The key grammar: a lower-case letter, then up to 31 lower-case letters,
//  digits or underscores

static bool
s_key_valid (const char *key, size_t length)
{
    if (length == 0 || length > 32 || key [0] < 'a' || key [0] > 'z')
        return false;
    for (size_t i = 1; i < length; i++) {
        char c = key [i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
            return false;
    }
    return true;
}


//  A field value must be UTF-8 and fit in one frame the daemon accepts.
//  Returns NULL if it is fine, else the reason.

static const char *
s_value_problem (const char *value)
{
    size_t length = strlen (value);
    if (length > POLE_PROTO_MAX_FIELD)
        return "is longer than 16384 bytes";
    if (!pole_utf8_valid (value, length))
        return "is not valid UTF-8";
    return NULL;
}


//  --------------------------------------------------------------------------
//  The exchange with poled

//  Once, before the first socket: keep czmq quiet and out of the way.
//  Without a handler SIGINT and SIGTERM keep their default action, so
//  Ctrl-C ends a wait at once (status 130 in the shell); czmq would
//  otherwise swallow the signal and leave us waiting for the deadline.
//  Its log lines, if ever, go to stderr: stdout carries only results.

static void
s_zsys_setup (void)
{
    static bool done = false;
    if (done)
        return;
    zsys_handler_set (NULL);
    zsys_init ();
    zsys_set_logstream (stderr);
    zsys_set_logident ("polectl");
    done = true;
}


//  A fresh DEALER connected to the endpoint(s), or NULL if libzmq refuses
//  the endpoint (a bad transport or a malformed address).

//  With --cert, the socket speaks CURVE as a client: our key pair, and the
//  server's public key that the handshake checks. Set before connecting.

static void
s_secure (const s_options_t *opts, zsock_t *socket)
{
    if (!opts->cert)
        return;
    zcert_apply (opts->cert, socket);
    zsock_set_curve_serverkey (socket, opts->server_key);
}

//  A monitor on `socket` that reports failed handshakes: a key the server
//  does not know, or a server that speaks CURVE to a plain client (or the
//  reverse), is otherwise only a silent timeout. NULL if it cannot be set.
//  A failure without detail (the peer closed the connection during the
//  handshake) is only counted: a daemon killed during the handshake is a
//  try without an answer, which the next try may get.

static zsock_t *
s_monitor (zsock_t *socket)
{
    char *endpoint = zsys_sprintf ("inproc://polectl-monitor-%p",
                                   (void *) socket);
    if (!endpoint)
        return NULL;
    zsock_t *monitor = NULL;
    if (zmq_socket_monitor (zsock_resolve (socket), endpoint,
                            ZMQ_EVENT_HANDSHAKE_FAILED_AUTH |
                                ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
                                ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL) == 0) {
        monitor = zsock_new (ZMQ_PAIR);
        if (monitor && zsock_connect (monitor, "%s", endpoint)) {
            zsock_destroy (&monitor);
        }
    }
    zstr_free (&endpoint);
    return monitor;
}

//  A monitor event arrived: say what it means and return the exit status,
//  or -1, saying nothing, for a failure without detail (s_monitor)

static int
s_handshake_failed (const s_options_t *opts, zsock_t *monitor,
                    const char *endpoint)
{
    zmsg_t *event = zmsg_recv (monitor);
    zframe_t *head = event ? zmsg_first (event) : NULL;
    uint16_t number = 0;
    uint32_t value = 0;
    if (head && zframe_size (head) >= 6) {
        memcpy (&number, zframe_data (head), 2);
        memcpy (&value, zframe_data (head) + 2, 4);
    }
    zmsg_destroy (&event);
    if (number == ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL)
        return -1;
    if (number == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH)
        fprintf (stderr, "polectl: %s refused our key (ZAP status %u): the "
                 "public key of %s is not in the daemon's keys list\n",
                 endpoint, value, "--cert");
    else if (value == ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH && opts->cert)
        fprintf (stderr, "polectl: the handshake with %s failed: the daemon "
                 "does not speak CURVE there; leave --cert and "
                 "--server-key out\n", endpoint);
    else if (value == ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH)
        fprintf (stderr, "polectl: the handshake with %s failed: the daemon "
                 "requires CURVE; give your key pair with --cert (or "
                 "POLE_CERT) and its public key with --server-key (or "
                 "POLE_SERVER_KEY)\n", endpoint);
    else
        fprintf (stderr, "polectl: the handshake with %s failed (ZMTP error "
                 "0x%x)\n", endpoint, value);
    return POLECTL_EXIT_FORBIDDEN;
}

static zsock_t *
s_connect (const s_options_t *opts, int timeout_ms, zsock_t **monitor_p)
{
    zsock_t *dealer = zsock_new (ZMQ_DEALER);
    if (!dealer)
        return NULL;
    //  Nothing we sent matters once we stop waiting for it
    zsock_set_linger (dealer, 0);
    //  A send can only block if the queue is full; never wait longer
    //  than a try lasts
    zsock_set_sndtimeo (dealer, timeout_ms);
    s_secure (opts, dealer);
    *monitor_p = s_monitor (dealer);
    if (zsock_attach (dealer, opts->endpoint, false)) {
        zsock_destroy (monitor_p);
        zsock_destroy (&dealer);
    }
    return dealer;
}


//  Send `body` (the request body, not destroyed) and wait for the reply
//  that carries our request id, retrying as docs/CLI.md says. Returns 0
//  with *reply_p set (OK or ERROR), or an exit status once the problem has
//  been reported.

static int
s_exchange (const s_options_t *opts, zmsg_t *body, bool take,
            pole_reply_t **reply_p)
{
    s_zsys_setup ();
    //  Round up, so that -t 0.0001 still waits a little
    int64_t timeout_ms = (int64_t) (opts->timeout * 1000.0);
    if ((double) timeout_ms < opts->timeout * 1000.0)
        timeout_ms++;
    int tries = opts->retries + 1;
    //  Handshakes that failed without detail, over all tries: alone they
    //  prove nothing, but with a timeout they are the likeliest reason
    int handshakes_failed = 0;

    for (int attempt = 0; attempt < tries; attempt++) {
        //  A new socket for every try: libzmq reconnects by itself, but a
        //  peer that vanished with our request in its queue would never
        //  answer; a new socket starts afresh.
        zsock_t *monitor = NULL;
        zsock_t *dealer = s_connect (opts, (int) timeout_ms, &monitor);
        if (!dealer) {
            fprintf (stderr, "polectl: cannot connect to %s: %s\n",
                     opts->endpoint, zmq_strerror (zmq_errno ()));
            return POLECTL_EXIT_USAGE;
        }
        zmsg_t *request = zmsg_dup (body);
        zmsg_pushmem (request, "", 0);      //  the empty delimiter frame
        int64_t deadline = zclock_mono () + timeout_ms;
        int rc = zmsg_send (&request, dealer);
        zmsg_destroy (&request);
        zpoller_t *poller = zpoller_new (dealer, NULL);
        if (monitor)
            zpoller_add (poller, monitor);

        //  A failed send (queue full for the whole try) is a try without
        //  an answer, like a timeout
        while (rc == 0) {
            int64_t left = deadline - zclock_mono ();
            if (left <= 0)
                break;
            void *which = zpoller_wait (poller, (int) left);
            if (!which) {
                if (zpoller_expired (poller))
                    break;
                if (zmq_errno () == EINTR)
                    continue;       //  a harmless signal: wait on
                fprintf (stderr, "polectl: cannot wait for the reply: %s\n",
                         zmq_strerror (zmq_errno ()));
                zpoller_destroy (&poller);
                zsock_destroy (&monitor);
                zsock_destroy (&dealer);
                return POLECTL_EXIT_ERROR;
            }
            if (which == monitor) {
                int status = s_handshake_failed (opts, monitor,
                                                 opts->endpoint);
                //  Without detail: libzmq reconnects, so wait on
                if (status < 0) {
                    handshakes_failed++;
                    continue;
                }
                zpoller_destroy (&poller);
                zsock_destroy (&monitor);
                zsock_destroy (&dealer);
                return status;
            }
            zmsg_t *msg = zmsg_recv (dealer);
            if (!msg)
                continue;
            //  The envelope as a REQ socket would have taken it off
            zframe_t *delimiter = zmsg_pop (msg);
            bool has_delimiter = delimiter && zframe_size (delimiter) == 0;
            zframe_destroy (&delimiter);
            pole_reply_t *reply = NULL;
            char reason [256] = "no empty delimiter frame";
            int decoded = !has_delimiter ? -2
                        : take
                        ? pole_reply_take (&msg, &reply, reason, sizeof reason)
                        : pole_reply_decode (msg, &reply, reason, sizeof reason);
            zmsg_destroy (&msg);
            if (decoded != 0) {
                zpoller_destroy (&poller);
                zsock_destroy (&monitor);
                zsock_destroy (&dealer);
                return s_malformed ("%s", reason);
            }
            //  An ERROR with an empty request id is the server's answer to
            //  a message it could not even parse: on this socket that can
            //  only be ours.
            bool ours = reply->request_id
                     && (streq (reply->request_id, opts->request_id)
                     || (!reply->ok && *reply->request_id == 0));
            if (!ours) {
                pole_reply_destroy (&reply);
                continue;           //  stale: keep waiting
            }
            zpoller_destroy (&poller);
            zsock_destroy (&monitor);
            zsock_destroy (&dealer);
            *reply_p = reply;
            return 0;
        }
        zpoller_destroy (&poller);
        zsock_destroy (&monitor);
        zsock_destroy (&dealer);
    }
    //  Still a timeout (exit 5): a daemon that died during a handshake
    //  looks the same. The hint names what to check.
    char hint[160] = "";
    if (handshakes_failed)
        snprintf (hint, sizeof hint,
                  "; the connection's security handshake failed %d %s (%s)",
                  handshakes_failed, handshakes_failed == 1 ? "time" : "times",
                  opts->cert ? "is --server-key the daemon's public key?"
                             : "does the daemon require CURVE keys? see "
                               "--cert and --server-key");
    fprintf (stderr, "polectl: no answer from %s within %gs (%d %s)%s\n",
             opts->endpoint, opts->timeout, tries, tries == 1 ? "try" : "tries",
             hint);
    return POLECTL_EXIT_NO_ANSWER;
}


//  Print an ERROR reply and return its exit status (docs/CLI.md)

static int
s_report_error (const pole_reply_t *reply)
{
    const char *code = reply->code? reply->code: "";
    const char *message = reply->message? reply->message: "";
    const char *rule = reply->rule? reply->rule: "";

    if (streq (code, POLE_ERR_REFUSED)) {
        if (*rule)
            fprintf (stderr, "polectl: refused by rule %s: %s\n", rule,
                     message);
        else
            fprintf (stderr, "polectl: refused: %s\n", message);
        return POLECTL_EXIT_REFUSED;
    }
    if (*message)
        fprintf (stderr, "polectl: %s: %s\n", code, message);
    else
        fprintf (stderr, "polectl: %s\n", code);
    if (streq (code, POLE_ERR_NOT_FOUND))
        return POLECTL_EXIT_NOT_FOUND;
    if (streq (code, POLE_ERR_CONFLICT))
        return POLECTL_EXIT_CONFLICT;
    if (streq (code, POLE_ERR_FORBIDDEN))
        return POLECTL_EXIT_FORBIDDEN;
    return POLECTL_EXIT_ERROR;
}


//  Encode the request, exchange it, and sort out the answer. Returns 0 with
//  an OK reply in *reply_p, or an exit status once all has been said. With
//  `take`, an OK reply's payload is kept as received (pole_reply_take)
//  rather than copied into frames.

static int
s_call_as (s_options_t *opts, pole_request_t *request, bool take,
           pole_reply_t **reply_p)
{
    request->request_id = opts->request_id;
    zmsg_t *body = pole_request_encode (request);
    if (!body) {
        fprintf (stderr, "polectl: cannot encode the request\n");
        return POLECTL_EXIT_ERROR;
    }
    pole_reply_t *reply = NULL;
    int rc = s_exchange (opts, body, take, &reply);
    zmsg_destroy (&body);
    if (rc != 0)
        return rc;
    if (!reply->ok) {
        rc = s_report_error (reply);
        pole_reply_destroy (&reply);
        return rc;
    }
    *reply_p = reply;
    return 0;
}

//  s_call_as for the commands that read the payload's frames as C strings

static int
s_call (s_options_t *opts, pole_request_t *request, pole_reply_t **reply_p)
{
    return s_call_as (opts, request, false, reply_p);
}

//  s_call for the reads, whose reply is read through s_payload_view only
//  (its first frame): the payload is kept as received, not copied.

static int
s_read (s_options_t *opts, pole_request_t *request, pole_reply_t **reply_p)
{
    return s_call_as (opts, request, true, reply_p);
}


//  OPEN and EVENT answer "dossier-id state version seq warning"; print the
//  frame the user asked for and the warning, if any.

static int
s_print_outcome (pole_reply_t *reply, size_t frame)
{
    if (reply->frame_count < 5)
        return s_malformed ("%zu payload frames where 5 were expected",
                            reply->frame_count);
    if (*reply->frames [4])
        fprintf (stderr, "polectl: warning: %s\n", reply->frames [4]);
    printf ("%s\n", reply->frames [frame]);
    return POLECTL_EXIT_DONE;
}


//  --------------------------------------------------------------------------
//  Presenting JSON to people

//  Width of UTF-8 text on a terminal, near enough: one column per code
//  point, so that "Trégor-Goëlo" lines up with "Brest".

static size_t
s_display_width (const char *text)
{
    size_t width = 0;
    for (const unsigned char *p = (const unsigned char *) text; *p; p++)
        if ((*p & 0xC0) != 0x80)
            width++;
    return width;
}


static void
s_print_padded (const char *text, size_t width, bool right_align)
{
    size_t used = s_display_width (text);
    size_t pad = used < width? width - used: 0;
    if (right_align)
        printf ("%*s%s", (int) pad, "", text);
    else
        printf ("%s%*s", text, (int) pad, "");
}


//  A JSON value as text for people; NULL for null or a missing value.
//  Arrays become "a, b, c" ("none" if empty). The caller frees.

static char *
s_json_text (const json_t *value)
{
    if (!value || json_is_null (value))
        return NULL;
    if (json_is_string (value))
        return strdup (json_string_value (value));
    if (json_is_integer (value))
        return zsys_sprintf ("%" JSON_INTEGER_FORMAT,
                             json_integer_value (value));
    if (json_is_real (value))
        return zsys_sprintf ("%g", json_real_value (value));
    if (json_is_boolean (value))
        return strdup (json_is_true (value)? "true": "false");
    if (json_is_array (value)) {
        if (json_array_size (value) == 0)
            return strdup ("none");
        char *joined = strdup ("");
        size_t index;
        const json_t *item;
        json_array_foreach (value, index, item) {
            char *text = s_json_text (item);
            char *longer = zsys_sprintf ("%s%s%s", joined, index? ", ": "",
                                         text? text: "null");
            free (text);
            free (joined);
            joined = longer;
            if (!joined)
                break;
        }
        return joined;
    }
    return json_dumps (value, JSON_COMPACT);
}


//  The text of a key of an object, or "-" when it is null or missing, so
//  that a column is never empty. The caller frees.

static char *
s_cell (const json_t *object, const char *key)
{
    char *text = s_json_text (json_object_get (object, key));
    return text? text: strdup ("-");
}


//  A field value for a one-line history entry: quoted when it holds
//  blanks, quotes or line breaks, so that each event stays on one line and
//  reads back unambiguously. The caller frees.

static char *
s_quoted (const char *value)
{
    if (*value && !strpbrk (value, " \t\r\n\"\\"))
        return strdup (value);
    size_t length = strlen (value);
    char *quoted = (char *) malloc (length * 2 + 3);
    if (!quoted)
        return NULL;
    char *out = quoted;
    *out++ = '"';
    for (const char *p = value; *p; p++) {
        switch (*p) {
            case '"':  *out++ = '\\'; *out++ = '"'; break;
            case '\\': *out++ = '\\'; *out++ = '\\'; break;
            case '\n': *out++ = '\\'; *out++ = 'n'; break;
            case '\r': *out++ = '\\'; *out++ = 'r'; break;
            case '\t': *out++ = '\\'; *out++ = 't'; break;
            default:   *out++ = *p;
        }
    }
    *out++ = '"';
    *out = 0;
    return quoted;
}


//  The first payload frame of an OK reply, copied (frames) or taken
//  (payload, not NUL-terminated); false, said, if there is none.

static bool
s_payload_view (const pole_reply_t *reply, const char **data, size_t *size)
{
    zframe_t *first = reply->payload ? zmsg_first (reply->payload) : NULL;
    if (first) {
        *data = (const char *) zframe_data (first);
        *size = zframe_size (first);
        return true;
    }
    if (reply->frame_count >= 1) {
        *data = reply->frames [0];
        *size = strlen (reply->frames [0]);
        return true;
    }
    s_malformed ("no payload frame");
    return false;
}

//  Parse the single JSON payload frame of SHOW, LIST, HISTORY or REPORT.
//  Returns the document, or NULL after reporting a malformed reply.

static json_t *
s_payload_json (const pole_reply_t *reply)
{
    const char *data;
    size_t size;
    if (!s_payload_view (reply, &data, &size))
        return NULL;
    json_error_t error;
    json_t *document = json_loadb (data, size, 0, &error);
    if (!document)
        s_malformed ("payload is not JSON (line %d: %s)", error.line,
                     error.text);
    return document;
}


//  The dossier object's facts, in the order of PROTOCOL.md section 4

static const char *s_dossier_keys [] = {
    "id", "pays", "departement", "holder", "holder_type", "title", "state",
    "version", "study_asked", "study_granted", "posts_asked",
    "posts_granted", "funding_year", "yearly_funding_eur", "reports_filed",
    "mode", "pole_name", "host", "cofunding_eur", "opened_at", "updated_at",
    NULL
};

static bool
s_is_dossier_key (const char *key)
{
    for (const char **k = s_dossier_keys; *k; k++)
        if (streq (*k, key))
            return true;
    return false;
}


//  show: "key: value" lines, nulls skipped; keys a newer daemon may add
//  come last, in the order it sent them.

static int
s_print_dossier (const json_t *dossier)
{
    if (!json_is_object (dossier))
        return s_malformed ("a dossier is not a JSON object");
    for (const char **key = s_dossier_keys; *key; key++) {
        char *text = s_json_text (json_object_get (dossier, *key));
        if (text)
            printf ("%s: %s\n", *key, text);
        free (text);
    }
    const char *key;
    json_t *value;
    json_object_foreach ((json_t *) dossier, key, value) {
        //  The funding plan and the obligations have lines of their own
        //  (s_print_story)
        if (s_is_dossier_key (key) || streq (key, "funding_plan")
        ||  streq (key, "obligations"))
            continue;
        char *text = s_json_text (value);
        if (text)
            printf ("%s: %s\n", key, text);
        free (text);
    }
    return POLECTL_EXIT_DONE;
}


//  list: one line per dossier, "ID  STATE  PAYS  HOLDER", aligned

static int
s_print_list (const json_t *dossiers)
{
    if (!json_is_array (dossiers))
        return s_malformed ("the list of dossiers is not a JSON array");
    static const char *columns [] = { "id", "state", "pays", "holder" };
    size_t width [4] = { 0, 0, 0, 0 };
    size_t index;
    const json_t *dossier;
    json_array_foreach (dossiers, index, dossier) {
        if (!json_is_object (dossier))
            return s_malformed ("a dossier is not a JSON object");
        for (int column = 0; column < 4; column++) {
            char *text = s_cell (dossier, columns [column]);
            size_t used = text? s_display_width (text): 0;
            if (used > width [column])
                width [column] = used;
            free (text);
        }
    }
    json_array_foreach (dossiers, index, dossier) {
        for (int column = 0; column < 4; column++) {
            char *text = s_cell (dossier, columns [column]);
            if (column == 3)
                printf ("  %s\n", text? text: "-");
            else {
                if (column > 0)
                    printf ("  ");
                s_print_padded (text? text: "-", width [column], column == 0);
            }
            free (text);
        }
    }
    return POLECTL_EXIT_DONE;
}


//  history: one line per event,
//  "SEQ  AT  ACTOR  EVENT  FROM -> TO  key=value ...", aligned

static char *
s_history_cell (const json_t *entry, int column)
{
    switch (column) {
        case 0: return s_cell (entry, "seq");
        case 1: return s_cell (entry, "at");
        case 2: return s_cell (entry, "actor");
        case 3: return s_cell (entry, "event");
        default: {
            char *from = s_cell (entry, "from");
            char *to = s_cell (entry, "to");
            char *text = zsys_sprintf ("%s -> %s", from? from: "-",
                                       to? to: "-");
            free (from);
            free (to);
            return text;
        }
    }
}

static int
s_print_history (const json_t *entries)
{
    if (!json_is_array (entries))
        return s_malformed ("the history is not a JSON array");
    size_t width [5] = { 0, 0, 0, 0, 0 };
    size_t index;
    const json_t *entry;
    json_array_foreach (entries, index, entry) {
        if (!json_is_object (entry))
            return s_malformed ("an event of the history is not a JSON object");
        for (int column = 0; column < 5; column++) {
            char *text = s_history_cell (entry, column);
            size_t used = text? s_display_width (text): 0;
            if (used > width [column])
                width [column] = used;
            free (text);
        }
    }
    json_array_foreach (entries, index, entry) {
        const json_t *fields = json_object_get (entry, "fields");
        bool has_fields = json_is_object (fields) && json_object_size (fields);
        for (int column = 0; column < 5; column++) {
            char *text = s_history_cell (entry, column);
            if (column > 0)
                printf ("  ");
            //  The last column is padded only if fields follow it: no
            //  trailing blanks
            if (column == 4 && !has_fields)
                printf ("%s", text? text: "-");
            else
                s_print_padded (text? text: "-", width [column], column == 0);
            free (text);
        }
        const char *key;
        json_t *value;
        bool first = true;
        json_object_foreach ((json_t *) fields, key, value) {
            char *text = s_json_text (value);
            char *quoted = s_quoted (text? text: "");
            printf ("%s%s=%s", first? "  ": " ", key, quoted? quoted: "");
            free (quoted);
            free (text);
            first = false;
        }
        printf ("\n");
    }
    return POLECTL_EXIT_DONE;
}


//  Make text safe to show on one line of a terminal, in place: C0 and C1
//  controls and DEL become spaces. Text from the wire may carry an escape
//  sequence or a line break (an SMTP server's answer in last_error, say).

static char *
s_one_line (char *text)
{
    if (!text)
        return NULL;
    unsigned char *p = (unsigned char *) text;
    for (; *p; p++) {
        if (*p < 0x20 || *p == 0x7F)
            *p = ' ';
        else
        if (*p == 0xC2 && p [1] >= 0x80 && p [1] <= 0x9F) {
            p [0] = ' ';            //  U+0080..U+009F, two bytes
            p [1] = ' ';
            p++;
        }
    }
    return text;
}


//  outbox: one line per notification,
//  "ID  STATE  ATTEMPTS  COORDINATOR  CHANNEL  DOSSIER  EVENT  LAST_ERROR",
//  aligned; the last column is not padded

#define S_OUTBOX_COLUMNS 8

static int
s_print_outbox (const json_t *rows)
{
    if (!json_is_array (rows))
        return s_malformed ("the outbox is not a JSON array");
    static const char *columns [S_OUTBOX_COLUMNS] = {
        "id", "state", "attempts", "coordinator", "channel", "dossier",
        "event", "last_error"
    };
    //  Numbers are right-aligned
    static const bool right [S_OUTBOX_COLUMNS] = {
        false, false, true, false, false, true, false, false
    };
    size_t width [S_OUTBOX_COLUMNS] = { 0 };
    size_t index;
    const json_t *row;
    json_array_foreach (rows, index, row) {
        if (!json_is_object (row))
            return s_malformed ("a notification is not a JSON object");
        for (int column = 0; column < S_OUTBOX_COLUMNS - 1; column++) {
            char *text = s_one_line (s_cell (row, columns [column]));
            size_t used = text? s_display_width (text): 0;
            if (used > width [column])
                width [column] = used;
            free (text);
        }
    }
    json_array_foreach (rows, index, row) {
        for (int column = 0; column < S_OUTBOX_COLUMNS; column++) {
            char *text = s_one_line (s_cell (row, columns [column]));
            if (column > 0)
                printf ("  ");
            if (column == S_OUTBOX_COLUMNS - 1)
                printf ("%s\n", text? text: "-");
            else
                s_print_padded (text? text: "-", width [column],
                                right [column]);
            free (text);
        }
    }
    return POLECTL_EXIT_DONE;
}


//  --------------------------------------------------------------------------
//  report: the figures of the programme (docs/REPORT.md), for people, as
//  CSV, as Markdown, and as an SVG chart

//  The report's value at `key` if it is an integer

static bool
s_json_int (const json_t *object, const char *key, json_int_t *value)
{
    const json_t *item = json_object_get (object, key);
    if (!json_is_integer (item))
        return false;
    *value = json_integer_value (item);
    return true;
}

//  Check the shape of the report, so that the printers can walk it without
//  second thoughts. Keys a newer daemon adds are ignored; the sections an
//  older one lacks are left out. Returns 0, or an exit status once said.

static int
s_report_check (const json_t *report)
{
    if (!json_is_object (report))
        return s_malformed ("the report is not a JSON object");
    static const char *required [] = {
        "dossiers", "poles_running", "studies_under_way", NULL
    };
    for (const char **key = required; *key; key++)
        if (!json_is_integer (json_object_get (report, *key)))
            return s_malformed ("'%s' is missing or not a number", *key);
    static const char *optional [] = {
        "study_granted_eur", "post_funding_eur_per_year", "cofunding_eur", NULL
    };
    for (const char **key = optional; *key; key++) {
        const json_t *value = json_object_get (report, *key);
        if (value && !json_is_integer (value))
            return s_malformed ("'%s' is not a number", *key);
    }
    const json_t *as_of = json_object_get (report, "as_of");
    if (as_of && !json_is_null (as_of) && !json_is_string (as_of))
        return s_malformed ("'as_of' is neither a date nor null");
    static const char *objects [] = { "by_state", "by_departement", "money",
                                      NULL };
    for (const char **key = objects; *key; key++) {
        const json_t *value = json_object_get (report, *key);
        if (value && !json_is_object (value))
            return s_malformed ("'%s' is not a JSON object", *key);
    }
    static const char *arrays [] = { "by_pays", "pays_without_dossier", NULL };
    for (const char **key = arrays; *key; key++) {
        const json_t *value = json_object_get (report, *key);
        if (value && !json_is_array (value))
            return s_malformed ("'%s' is not a JSON array", *key);
    }
    const char *key;
    json_t *value;
    json_object_foreach (json_object_get (report, "by_departement"), key,
                         value)
        if (!json_is_object (value))
            return s_malformed ("'by_departement' of %s is not a JSON object",
                                key);
    size_t index;
    json_array_foreach (json_object_get (report, "by_pays"), index, value)
        if (!json_is_object (value)
        ||  !json_is_string (json_object_get (value, "pays")))
            return s_malformed ("an entry of 'by_pays' is not an object with "
                                "a 'pays'");
    json_array_foreach (json_object_get (report, "pays_without_dossier"),
                        index, value)
        if (!json_is_string (value))
            return s_malformed ("an entry of 'pays_without_dossier' is not a "
                                "string");
    const json_t *money = json_object_get (report, "money");
    static const char *tables [] = {
        "study_grants_by_year", "post_funding_by_year", "cofunding_by_funder",
        "cofunding_by_year", NULL
    };
    for (const char **table = tables; money && *table; table++) {
        const json_t *object = json_object_get (money, *table);
        if (object && !json_is_object (object))
            return s_malformed ("'money.%s' is not a JSON object", *table);
        json_object_foreach ((json_t *) object, key, value)
            if (!json_is_integer (value))
                return s_malformed ("'money.%s' of %s is not a number",
                                    *table, key);
    }
    static const char *totals [] = { "post_funding_eur", "total_eur", NULL };
    for (const char **total = totals; money && *total; total++) {
        const json_t *item = json_object_get (money, *total);
        if (item && !json_is_integer (item))
            return s_malformed ("'money.%s' is not a number", *total);
    }
    return 0;
}

//  The date the report describes, or NULL for now

static const char *
s_report_as_of (const json_t *report)
{
    return json_string_value (json_object_get (report, "as_of"));
}

//  The states of by_state with their counts: those of this build in the
//  order of the lifecycle, then any the daemon knows and this build does
//  not, in its order. Returns how many were written in names/counts (at
//  most `size`).

static size_t
s_report_states (const json_t *by_state, const char **names,
                 json_int_t *counts, size_t size)
{
    size_t used = 0;
    for (int state = POLE_S_NONE + 1; state < POLE_S_COUNT && used < size;
         state++) {
        const char *name = pole_state_name (state);
        const json_t *count = name? json_object_get (by_state, name): NULL;
        if (json_is_integer (count)) {
            names [used] = name;
            counts [used++] = json_integer_value (count);
        }
    }
    const char *key;
    json_t *count;
    json_object_foreach ((json_t *) by_state, key, count) {
        int state = pole_state_from_name (key);
        if ((state <= POLE_S_NONE || state >= POLE_S_COUNT)
        &&  json_is_integer (count) && used < size) {
            names [used] = key;
            counts [used++] = json_integer_value (count);
        }
    }
    return used;
}

#define S_REPORT_MAX_STATES (POLE_S_COUNT + 64)

//  "1 dossier", "3 dossiers"

static const char *
s_plural (json_int_t count, const char *one, const char *many)
{
    return count == 1? one: many;
}


//  For people ---------------------------------------------------------------

//  A money table for people: "LABEL:" then "  KEY: N €" per entry, or
//  "  none"

static void
s_print_money_table (const json_t *money, const char *key, const char *label)
{
    const json_t *table = json_object_get (money, key);
    if (!table)
        return;
    printf ("%s:\n", label);
    if (json_object_size (table) == 0)
        printf ("  none\n");
    const char *name;
    json_t *value;
    json_object_foreach ((json_t *) table, name, value) {
        char *shown = s_one_line (strdup (name));
        printf ("  %s: %" JSON_INTEGER_FORMAT " €\n", shown? shown: "",
                json_integer_value (value));
        free (shown);
    }
}

static int
s_print_report (const json_t *report)
{
    int rc = s_report_check (report);
    if (rc)
        return rc;
    json_int_t value = 0;
    const char *as_of = s_report_as_of (report);
    if (as_of)
        printf ("As of: %s (end of the day, UTC)\n", as_of);
    s_json_int (report, "dossiers", &value);
    printf ("Dossiers: %" JSON_INTEGER_FORMAT "\n", value);
    s_json_int (report, "poles_running", &value);
    printf ("Poles running: %" JSON_INTEGER_FORMAT "\n", value);
    s_json_int (report, "studies_under_way", &value);
    printf ("Studies under way: %" JSON_INTEGER_FORMAT "\n", value);

    //  By state, in the order of the lifecycle, the states that hold some
    const json_t *by_state = json_object_get (report, "by_state");
    if (by_state) {
        const char *names [S_REPORT_MAX_STATES];
        json_int_t counts [S_REPORT_MAX_STATES];
        size_t states = s_report_states (by_state, names, counts,
                                         S_REPORT_MAX_STATES);
        printf ("By state:\n");
        bool any = false;
        for (size_t index = 0; index < states; index++)
            if (counts [index]) {
                printf ("  %s: %" JSON_INTEGER_FORMAT "\n", names [index],
                        counts [index]);
                any = true;
            }
        if (!any)
            printf ("  (no dossier)\n");
    }

    const json_t *by_departement = json_object_get (report, "by_departement");
    if (json_object_size (by_departement)) {
        printf ("By département:\n");
        const char *key;
        json_t *figures;
        json_object_foreach ((json_t *) by_departement, key, figures) {
            json_int_t dossiers = 0, live = 0, running = 0;
            s_json_int (figures, "dossiers", &dossiers);
            s_json_int (figures, "live", &live);
            s_json_int (figures, "poles_running", &running);
            printf ("  %s: %" JSON_INTEGER_FORMAT " %s, %" JSON_INTEGER_FORMAT
                    " live, %" JSON_INTEGER_FORMAT " %s\n", key, dossiers,
                    s_plural (dossiers, "dossier", "dossiers"), live, running,
                    s_plural (running, "pole running", "poles running"));
        }
    }

    const json_t *without = json_object_get (report, "pays_without_dossier");
    if (without) {
        char *text = s_one_line (s_json_text (without));
        printf ("Pays without a dossier: %s\n", text? text: "none");
        free (text);
    }

    if (s_json_int (report, "study_granted_eur", &value))
        printf ("Studies granted: %" JSON_INTEGER_FORMAT " €\n", value);
    if (s_json_int (report, "post_funding_eur_per_year", &value))
        printf ("Post funding: %" JSON_INTEGER_FORMAT " € per year\n", value);
    if (s_json_int (report, "cofunding_eur", &value))
        printf ("Co-funding: %" JSON_INTEGER_FORMAT " €\n", value);

    const json_t *money = json_object_get (report, "money");
    if (money) {
        s_print_money_table (money, "study_grants_by_year",
                             "Study grants by year");
        s_print_money_table (money, "post_funding_by_year",
                             "Post funding by year");
        if (s_json_int (money, "post_funding_eur", &value))
            printf ("  total: %" JSON_INTEGER_FORMAT " €\n", value);
        s_print_money_table (money, "cofunding_by_funder",
                             "Co-funding by funder");
        s_print_money_table (money, "cofunding_by_year", "Co-funding by year");
        if (s_json_int (money, "total_eur", &value))
            printf ("Total: %" JSON_INTEGER_FORMAT " €\n", value);
    }
    return POLECTL_EXIT_DONE;
}


//  CSV ----------------------------------------------------------------------

//  One field of RFC 4180: quoted if it holds a comma, a quote, CR or LF,
//  its quotes doubled

static void
s_csv_field (const char *text)
{
    if (!strpbrk (text, ",\"\r\n")) {
        fputs (text, stdout);
        return;
    }
    putchar ('"');
    for (const char *p = text; *p; p++) {
        if (*p == '"')
            putchar ('"');
        putchar (*p);
    }
    putchar ('"');
}

//  One record "section,key,value" ending in CRLF

static void
s_csv_row (const char *section, const char *key, const char *value)
{
    s_csv_field (section);
    putchar (',');
    s_csv_field (key);
    putchar (',');
    s_csv_field (value);
    fputs ("\r\n", stdout);
}

static void
s_csv_row_int (const char *section, const char *key, json_int_t value)
{
    char text [32];
    snprintf (text, sizeof text, "%" JSON_INTEGER_FORMAT, value);
    s_csv_row (section, key, text);
}

//  A row for every key of an object of integers

static void
s_csv_object (const char *section, const json_t *object)
{
    const char *key;
    json_t *value;
    json_object_foreach ((json_t *) object, key, value)
        s_csv_row_int (section, key, json_integer_value (value));
}

//  The figure `figure` of every département

static void
s_csv_departements (const char *section, const json_t *by_departement,
                    const char *figure)
{
    const char *key;
    json_t *figures;
    json_object_foreach ((json_t *) by_departement, key, figures) {
        json_int_t value = 0;
        s_json_int (figures, figure, &value);
        s_csv_row_int (section, key, value);
    }
}

static int
s_print_report_csv (const json_t *report)
{
    int rc = s_report_check (report);
    if (rc)
        return rc;
    s_csv_row ("section", "key", "value");
    const char *as_of = s_report_as_of (report);
    s_csv_row ("summary", "as_of", as_of? as_of: "");
    static const char *summary [] = {
        "dossiers", "poles_running", "studies_under_way", "study_granted_eur",
        "post_funding_eur_per_year", "cofunding_eur", NULL
    };
    for (const char **key = summary; *key; key++) {
        json_int_t value;
        if (s_json_int (report, *key, &value))
            s_csv_row_int ("summary", *key, value);
    }
    const json_t *by_state = json_object_get (report, "by_state");
    const char *names [S_REPORT_MAX_STATES];
    json_int_t counts [S_REPORT_MAX_STATES];
    size_t states = s_report_states (by_state, names, counts,
                                     S_REPORT_MAX_STATES);
    for (size_t index = 0; index < states; index++)
        s_csv_row_int ("state", names [index], counts [index]);

    const json_t *by_departement = json_object_get (report, "by_departement");
    s_csv_departements ("departement", by_departement, "dossiers");
    s_csv_departements ("departement_live", by_departement, "live");
    s_csv_departements ("departement_running", by_departement,
                        "poles_running");

    size_t index;
    const json_t *item;
    json_array_foreach (json_object_get (report, "by_pays"), index, item) {
        const char *state = json_string_value (json_object_get (item, "state"));
        s_csv_row ("pays", json_string_value (json_object_get (item, "pays")),
                   state? state: "");
    }
    json_array_foreach (json_object_get (report, "pays_without_dossier"),
                        index, item)
        s_csv_row ("pays_without_dossier", json_string_value (item), "");

    const json_t *money = json_object_get (report, "money");
    s_csv_object ("study_grants", json_object_get (money,
                                                   "study_grants_by_year"));
    s_csv_object ("post_funding", json_object_get (money,
                                                   "post_funding_by_year"));
    s_csv_object ("cofunding_funder", json_object_get (money,
                                                       "cofunding_by_funder"));
    s_csv_object ("cofunding_year", json_object_get (money,
                                                     "cofunding_by_year"));
    json_int_t total;
    if (s_json_int (money, "total_eur", &total))
        s_csv_row_int ("total", "total_eur", total);
    return POLECTL_EXIT_DONE;
}


//  Markdown -----------------------------------------------------------------

//  Text for a table cell: the characters Markdown would read as markup
//  escaped ('_' only outside a word: inside one, as in state names, it
//  does not emphasise), line breaks as spaces

static bool
s_md_inside_word (const char *start, const char *p)
{
    return p > start && isalnum ((unsigned char) p [-1])
        && isalnum ((unsigned char) p [1]);
}

static void
s_md_cell (const char *text)
{
    const char *start = text? text: "";
    for (const char *p = start; *p; p++) {
        if (strchr ("\\|*`[]<>#~&", *p)
        ||  (*p == '_' && !s_md_inside_word (start, p)))
            putchar ('\\');
        putchar (*p == '\n' || *p == '\r' || *p == '\t'? ' ': *p);
    }
}

//  A two-column table "| HEADING | € |" of an object of integers

static void
s_md_money (const json_t *money, const char *key, const char *heading,
            const char *column)
{
    const json_t *table = json_object_get (money, key);
    if (!table)
        return;
    printf ("\n## %s\n\n", heading);
    if (json_object_size (table) == 0) {
        printf ("None.\n");
        return;
    }
    printf ("| %s | euros |\n|---|--:|\n", column);
    const char *name;
    json_t *value;
    json_object_foreach ((json_t *) table, name, value) {
        printf ("| ");
        s_md_cell (name);
        printf (" | %" JSON_INTEGER_FORMAT " |\n", json_integer_value (value));
    }
}

static int
s_print_report_markdown (const json_t *report)
{
    int rc = s_report_check (report);
    if (rc)
        return rc;
    const char *as_of = s_report_as_of (report);
    if (as_of)
        printf ("# Rapport / Report, %s\n\n", as_of);
    else
        printf ("# Rapport / Report, now\n\n");
    printf ("Figures %s.\n",
            as_of? "from the event log as it stood at the end of that day "
                   "(UTC)": "as they stand now");

    printf ("\n## Summary\n\n| figure | value |\n|---|--:|\n");
    static const char *keys [] = {
        "dossiers", "poles_running", "studies_under_way", "study_granted_eur",
        "post_funding_eur_per_year", "cofunding_eur", NULL
    };
    static const char *labels [] = {
        "dossiers", "poles running", "studies under way",
        "study grants (euros)", "post funding per year (euros)",
        "co-funding (euros)"
    };
    for (size_t index = 0; keys [index]; index++) {
        json_int_t value;
        if (s_json_int (report, keys [index], &value))
            printf ("| %s | %" JSON_INTEGER_FORMAT " |\n", labels [index],
                    value);
    }
    const json_t *money = json_object_get (report, "money");
    json_int_t total;
    if (s_json_int (money, "total_eur", &total))
        printf ("| total (euros) | %" JSON_INTEGER_FORMAT " |\n", total);

    const json_t *by_state = json_object_get (report, "by_state");
    if (by_state) {
        const char *names [S_REPORT_MAX_STATES];
        json_int_t counts [S_REPORT_MAX_STATES];
        size_t states = s_report_states (by_state, names, counts,
                                         S_REPORT_MAX_STATES);
        printf ("\n## Dossiers by state\n\n| state | dossiers |\n|---|--:|\n");
        for (size_t index = 0; index < states; index++)
            if (counts [index]) {
                printf ("| ");
                s_md_cell (names [index]);
                printf (" | %" JSON_INTEGER_FORMAT " |\n", counts [index]);
            }
    }

    const json_t *by_departement = json_object_get (report, "by_departement");
    if (by_departement) {
        printf ("\n## By département\n\n"
                "| département | dossiers | live | poles running |\n"
                "|---|--:|--:|--:|\n");
        const char *key;
        json_t *figures;
        json_object_foreach ((json_t *) by_departement, key, figures) {
            json_int_t dossiers = 0, live = 0, running = 0;
            s_json_int (figures, "dossiers", &dossiers);
            s_json_int (figures, "live", &live);
            s_json_int (figures, "poles_running", &running);
            printf ("| ");
            s_md_cell (key);
            printf (" | %" JSON_INTEGER_FORMAT " | %" JSON_INTEGER_FORMAT
                    " | %" JSON_INTEGER_FORMAT " |\n", dossiers, live, running);
        }
    }

    const json_t *by_pays = json_object_get (report, "by_pays");
    if (by_pays) {
        printf ("\n## By Pays\n\n"
                "| Pays | département | dossiers | live | state |\n"
                "|---|--:|--:|--:|---|\n");
        size_t index;
        const json_t *item;
        json_array_foreach (by_pays, index, item) {
            printf ("| ");
            s_md_cell (json_string_value (json_object_get (item, "pays")));
            static const char *columns [] = {
                "departement", "dossiers", "live", "state"
            };
            for (int column = 0; column < 4; column++) {
                char *text = s_cell (item, columns [column]);
                printf (" | ");
                s_md_cell (text);
                free (text);
            }
            printf (" |\n");
        }
    }

    const json_t *without = json_object_get (report, "pays_without_dossier");
    if (without) {
        printf ("\n## Pays without a dossier\n\n");
        if (json_array_size (without) == 0)
            printf ("None.\n");
        size_t index;
        const json_t *item;
        json_array_foreach (without, index, item) {
            printf ("- ");
            s_md_cell (json_string_value (item));
            printf ("\n");
        }
    }

    if (money) {
        s_md_money (money, "study_grants_by_year", "Study grants by year",
                    "year");
        s_md_money (money, "post_funding_by_year", "Post funding by year",
                    "year");
        s_md_money (money, "cofunding_by_funder", "Co-funding by funder",
                    "funder");
        s_md_money (money, "cofunding_by_year", "Co-funding by year", "year");
        json_int_t post_funding;
        printf ("\n## Total\n\n| | euros |\n|---|--:|\n");
        json_int_t value;
        if (s_json_int (report, "study_granted_eur", &value))
            printf ("| study grants | %" JSON_INTEGER_FORMAT " |\n", value);
        if (s_json_int (money, "post_funding_eur", &post_funding))
            printf ("| post funding | %" JSON_INTEGER_FORMAT " |\n",
                    post_funding);
        if (s_json_int (report, "cofunding_eur", &value))
            printf ("| co-funding | %" JSON_INTEGER_FORMAT " |\n", value);
        if (s_json_int (money, "total_eur", &total))
            printf ("| **total** | **%" JSON_INTEGER_FORMAT "** |\n", total);
    }
    return POLECTL_EXIT_DONE;
}


//  SVG ----------------------------------------------------------------------

//  Text for XML: &, <, >, " as entities; control characters, which XML 1.0
//  does not allow, as spaces

static void
s_xml_text (FILE *file, const char *text)
{
    for (const unsigned char *p = (const unsigned char *) text; *p; p++) {
        switch (*p) {
            case '&': fputs ("&amp;", file); break;
            case '<': fputs ("&lt;", file); break;
            case '>': fputs ("&gt;", file); break;
            case '"': fputs ("&quot;", file); break;
            default:
                fputc (*p < 0x20 || *p == 0x7F? ' ': *p, file);
        }
    }
}

//  Euros with the thousands apart: "280 000 €"

static void
s_euros_text (json_int_t value, char *buffer, size_t size)
{
    char digits [32];
    snprintf (digits, sizeof digits, "%" JSON_INTEGER_FORMAT,
              value < 0? -value: value);
    size_t length = strlen (digits), used = 0;
    if (value < 0 && used + 1 < size)
        buffer [used++] = '-';
    for (size_t index = 0; index < length && used + 2 < size; index++) {
        if (index && (length - index) % 3 == 0)
            buffer [used++] = ' ';
        buffer [used++] = digits [index];
    }
    snprintf (buffer + used, size - used, " €");
}

#define S_SVG_WIDTH  760
#define S_SVG_LABEL  210            //  right edge of the labels
#define S_SVG_BAR    (S_SVG_LABEL + 10)
#define S_SVG_SPAN   420            //  the longest bar
#define S_SVG_ROW    24

//  One horizontal bar chart at *y, moving *y below it

static void
s_svg_chart (FILE *file, int *y, const char *heading, const char *colour,
             const char **labels, const json_int_t *values,
             const char **texts, size_t count, const char *empty)
{
    fprintf (file, "  <text x=\"20\" y=\"%d\" font-size=\"15\" "
                   "font-weight=\"bold\">", *y);
    s_xml_text (file, heading);
    fprintf (file, "</text>\n");
    *y += 12;
    json_int_t max = 0;
    for (size_t index = 0; index < count; index++)
        if (values [index] > max)
            max = values [index];
    if (count == 0) {
        fprintf (file, "  <text x=\"%d\" y=\"%d\" fill=\"#666666\">",
                 S_SVG_BAR, *y + 16);
        s_xml_text (file, empty);
        fprintf (file, "</text>\n");
        *y += S_SVG_ROW;
    }
    for (size_t index = 0; index < count; index++) {
        int width = max > 0
                  ? (int) ((double) values [index] * S_SVG_SPAN / (double) max)
                  : 0;
        if (width < 1 && values [index] > 0)
            width = 1;
        fprintf (file, "  <text x=\"%d\" y=\"%d\" text-anchor=\"end\">",
                 S_SVG_LABEL, *y + 16);
        s_xml_text (file, labels [index]);
        fprintf (file, "</text>\n");
        fprintf (file, "  <rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"18\" "
                       "fill=\"%s\"/>\n", S_SVG_BAR, *y + 3, width, colour);
        fprintf (file, "  <text x=\"%d\" y=\"%d\">", S_SVG_BAR + width + 6,
                 *y + 16);
        s_xml_text (file, texts [index]);
        fprintf (file, "</text>\n");
        *y += S_SVG_ROW;
    }
    *y += 28;
}

//  Write the chart of the report to `path`: the dossiers per state (the
//  states that hold some) and the post funding per calendar year. Returns
//  0, or an exit status once said.

static int
s_write_svg (const char *path, const json_t *report)
{
    //  The bars, first
    const char *names [S_REPORT_MAX_STATES];
    json_int_t counts [S_REPORT_MAX_STATES];
    size_t states = s_report_states (json_object_get (report, "by_state"),
                                     names, counts, S_REPORT_MAX_STATES);
    const char *state_labels [S_REPORT_MAX_STATES];
    json_int_t state_values [S_REPORT_MAX_STATES];
    char state_texts_buf [S_REPORT_MAX_STATES][24];
    const char *state_texts [S_REPORT_MAX_STATES];
    size_t bars = 0;
    for (size_t index = 0; index < states; index++)
        if (counts [index] > 0) {
            state_labels [bars] = names [index];
            state_values [bars] = counts [index];
            snprintf (state_texts_buf [bars], sizeof state_texts_buf [bars],
                      "%" JSON_INTEGER_FORMAT, counts [index]);
            state_texts [bars] = state_texts_buf [bars];
            bars++;
        }
    const json_t *by_year = json_object_get (json_object_get (report, "money"),
                                             "post_funding_by_year");
    size_t years = json_object_size (by_year);
    const char **year_labels = (const char **) calloc (years + 1,
                                                       sizeof (char *));
    json_int_t *year_values = (json_int_t *) calloc (years + 1,
                                                     sizeof (json_int_t));
    char **year_texts = (char **) calloc (years + 1, sizeof (char *));
    size_t year_count = 0;
    if (year_labels && year_values && year_texts) {
        const char *key;
        json_t *value;
        json_object_foreach ((json_t *) by_year, key, value) {
            if (year_count >= years || !json_is_integer (value))
                continue;
            year_labels [year_count] = key;
            year_values [year_count] = json_integer_value (value);
            year_texts [year_count] = (char *) malloc (48);
            if (year_texts [year_count])
                s_euros_text (year_values [year_count],
                              year_texts [year_count], 48);
            else
                break;
            year_count++;
        }
    }

    int rc = 0;
    FILE *file = fopen (path, "w");
    if (!file)
        rc = -1;
    else {
        const char *as_of = s_report_as_of (report);
        char title [96];
        snprintf (title, sizeof title, "Rapport / Report, %s%s",
                  as_of? "as of ": "", as_of? as_of: "now");
        int height = 70 + 40 + S_SVG_ROW * (int) (bars? bars: 1)
                   + 40 + S_SVG_ROW * (int) (year_count? year_count: 1) + 30;
        fprintf (file, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        fprintf (file, "<svg xmlns=\"http://www.w3.org/2000/svg\" "
                       "width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
                       "font-family=\"Helvetica, Arial, sans-serif\" "
                       "font-size=\"13\">\n",
                 S_SVG_WIDTH, height, S_SVG_WIDTH, height);
        fprintf (file, "  <title>");
        s_xml_text (file, title);
        fprintf (file, "</title>\n");
        fprintf (file, "  <rect width=\"100%%\" height=\"100%%\" "
                       "fill=\"#ffffff\"/>\n");
        fprintf (file, "  <text x=\"20\" y=\"34\" font-size=\"20\" "
                       "font-weight=\"bold\">");
        s_xml_text (file, title);
        fprintf (file, "</text>\n");
        int y = 76;
        s_svg_chart (file, &y, "Dossiers per state", "#4a86c5", state_labels,
                     state_values, state_texts, bars, "no dossier");
        s_svg_chart (file, &y, "Post funding per calendar year", "#d9822b",
                     year_labels, year_values, (const char **) year_texts,
                     year_count, "no post funding");
        fprintf (file, "</svg>\n");
        if (ferror (file))
            rc = -1;
        if (fclose (file) != 0)
            rc = -1;
    }
    int saved = errno;
    for (size_t index = 0; year_texts && index < year_count; index++)
        free (year_texts [index]);
    free (year_labels);
    free (year_values);
    free (year_texts);
    if (rc) {
        fprintf (stderr, "polectl: cannot write %s: %s\n", path,
                 strerror (saved));
        return POLECTL_EXIT_ERROR;
    }
    return 0;
}


//  show: the funding plan, one line per funded year opened,
//  "year 1  opened 2010-01-10  2 posts  70000 €  report filed", and the
//  open obligations, "KIND [year N]  due YYYY-MM-DD  STATE", aligned

#define S_PLAN_COLUMNS 5
#define S_OBLIGATION_COLUMNS 3

//  The day of a time YYYY-MM-DDTHH:MM:SSZ, else the text as it is. The
//  caller frees.

static char *
s_day_of (const json_t *value)
{
    char *text = s_one_line (s_json_text (value));
    int64_t seconds;
    if (text && strlen (text) == 20 && pole_proto_time_parse (text, &seconds) == 0)
        text [10] = 0;
    return text;
}

static char *
s_plan_cell (const json_t *entry, int column)
{
    char *text = NULL, *result = NULL;
    switch (column) {
        case 0:
            text = s_cell (entry, "year");
            result = zsys_sprintf ("year %s", text);
            break;
        case 1:
            text = s_day_of (json_object_get (entry, "opened_at"));
            result = zsys_sprintf ("opened %s", text? text: "-");
            break;
        case 2: {
            const json_t *posts = json_object_get (entry, "posts");
            text = s_cell (entry, "posts");
            result = zsys_sprintf ("%s %s", text,
                                   json_is_integer (posts)
                                   && json_integer_value (posts) == 1
                                   ? "post": "posts");
            break;
        }
        case 3:
            text = s_cell (entry, "amount_eur");
            result = zsys_sprintf ("%s €", text);
            break;
        default:
            text = s_one_line (s_cell (entry, "report"));
            result = zsys_sprintf ("report %s", text);
    }
    free (text);
    return result;
}

static char *
s_obligation_cell (const json_t *entry, int column)
{
    char *text = NULL, *result = NULL;
    switch (column) {
        case 0: {
            char *kind = s_one_line (s_cell (entry, "kind"));
            text = s_json_text (json_object_get (entry, "year"));
            result = text? zsys_sprintf ("%s year %s", kind, text)
                         : strdup (kind? kind: "-");
            free (kind);
            break;
        }
        case 1:
            text = s_day_of (json_object_get (entry, "due"));
            result = zsys_sprintf ("due %s", text? text: "-");
            break;
        default:
            result = s_one_line (s_cell (entry, "state"));
    }
    free (text);
    return result;
}

//  "HEADING:" then one aligned line per entry of the array (two spaces in),
//  or "  none"; `right` says which columns are right-aligned

static void
s_print_entries (const char *heading, const json_t *entries, int columns,
                 char *(*cell) (const json_t *, int), const bool *right)
{
    printf ("%s:\n", heading);
    if (json_array_size (entries) == 0) {
        printf ("  none\n");
        return;
    }
    size_t width [S_PLAN_COLUMNS] = { 0 };
    size_t index;
    const json_t *entry;
    json_array_foreach (entries, index, entry)
        for (int column = 0; column < columns - 1; column++) {
            char *text = cell (entry, column);
            size_t used = text? s_display_width (text): 0;
            if (used > width [column])
                width [column] = used;
            free (text);
        }
    json_array_foreach (entries, index, entry) {
        printf (" ");
        for (int column = 0; column < columns; column++) {
            char *text = cell (entry, column);
            printf (" ");
            if (column == columns - 1)
                printf ("%s\n", text? text: "-");
            else {
                s_print_padded (text? text: "-", width [column],
                                right [column]);
                printf (" ");
            }
            free (text);
        }
    }
}

//  Check that a key of the dossier is absent or an array of objects

static int
s_check_entries (const json_t *dossier, const char *key)
{
    const json_t *entries = json_object_get (dossier, key);
    if (!entries)
        return 0;
    if (!json_is_array (entries))
        return s_malformed ("'%s' is not a JSON array", key);
    size_t index;
    const json_t *entry;
    json_array_foreach (entries, index, entry)
        if (!json_is_object (entry))
            return s_malformed ("an entry of '%s' is not a JSON object", key);
    return 0;
}

//  show without --json: the facts, the funding plan, the obligations,
//  then the history as `polectl history` prints it

static int
s_print_story (const json_t *dossier, const json_t *history)
{
    if (!json_is_object (dossier))
        return s_malformed ("a dossier is not a JSON object");
    if (!json_is_array (history))
        return s_malformed ("the history is not a JSON array");
    size_t index;
    const json_t *entry;
    json_array_foreach (history, index, entry)
        if (!json_is_object (entry))
            return s_malformed ("an event of the history is not a JSON object");
    int rc = s_check_entries (dossier, "funding_plan");
    if (rc == 0)
        rc = s_check_entries (dossier, "obligations");
    if (rc)
        return rc;

    rc = s_print_dossier (dossier);
    if (rc)
        return rc;
    const json_t *plan = json_object_get (dossier, "funding_plan");
    if (plan) {
        static const bool right [S_PLAN_COLUMNS] = {
            false, false, true, true, false
        };
        s_print_entries ("Funding plan", plan, S_PLAN_COLUMNS, s_plan_cell,
                         right);
    }
    const json_t *obligations = json_object_get (dossier, "obligations");
    if (obligations) {
        static const bool right [S_OBLIGATION_COLUMNS] = {
            false, false, false
        };
        s_print_entries ("Obligations", obligations, S_OBLIGATION_COLUMNS,
                         s_obligation_cell, right);
    }
    printf ("History:\n");
    return s_print_history (history);
}


//  The read commands share their ending: with --json the payload exactly
//  as received, else the lines `print` makes of it.
//
//  With --json the payload is not decoded: it is SQLite's JSON, and
//  whatever reads polectl's output parses it anyway. Decoding it only to
//  check it cost four times the daemon's own time on a long list (jansson
//  takes about 100 ms for the 2.3 MB of 4,724 dossiers: RESULTS.md).

static int
s_print_json_payload (pole_reply_t *reply, bool as_json,
                      int (*print) (const json_t *))
{
    if (as_json) {
        const char *data;
        size_t size;
        if (!s_payload_view (reply, &data, &size))
            return POLECTL_EXIT_ERROR;
        fwrite (data, 1, size, stdout);
        fputc ('\n', stdout);
        return POLECTL_EXIT_DONE;
    }
    json_t *document = s_payload_json (reply);
    if (!document)
        return POLECTL_EXIT_ERROR;
    int rc = print (document);
    json_decref (document);
    return rc;
}


//  --------------------------------------------------------------------------
//  Administration: keygen, status, verify, backup (docs/ADMIN.md)

//  A command without options of its own but --help (and --json when
//  `json` is not NULL); returns -1 to go on, else the exit status.

static int
s_simple_options (const s_command_t *self, int argc, char *argv [],
                  bool *json)
{
    static const struct option longopts [] = {
        { "json", no_argument, NULL, OPT_JSON },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };
    int c;
    while ((c = s_getopt (argc, argv, ":h", longopts, self->name)) != -1) {
        if (c == 'h') {
            s_print_command_help (self);
            return POLECTL_EXIT_DONE;
        }
        if (c == OPT_JSON && json) {
            *json = true;
            continue;
        }
        if (c == OPT_JSON)
            return s_usage_error (self->name, "%s: unknown option '--json'",
                                  self->name);
        return POLECTL_EXIT_USAGE;
    }
    return -1;
}

static int
s_cmd_keygen (const s_command_t *self, s_options_t *opts, int argc,
              char *argv [])
{
    (void) opts;
    int rc = s_simple_options (self, argc, argv, NULL);
    if (rc >= 0)
        return rc;
    if (optind + 1 != argc)
        return s_usage_error (self->name, "keygen: give one FILE, the key "
                              "pair to write (FILE and FILE_secret)");
    const char *path = argv [optind];
    char *secret = zsys_sprintf ("%s_secret", path);
    if (!secret)
        return POLECTL_EXIT_ERROR;
    //  Never overwrite a key pair: a key lost is an identity lost
    if (access (path, F_OK) == 0 || access (secret, F_OK) == 0) {
        fprintf (stderr, "polectl: %s or %s exists already; keygen does not "
                 "overwrite a key pair\n", path, secret);
        zstr_free (&secret);
        return POLECTL_EXIT_ERROR;
    }
    s_zsys_setup ();
    zcert_t *cert = zcert_new ();
    char created [32];
    time_t now = time (NULL);
    strftime (created, sizeof created, "%Y-%m-%dT%H:%M:%SZ", gmtime (&now));
    zcert_set_meta (cert, "created-by", "polectl keygen");
    zcert_set_meta (cert, "created-at", "%s", created);
    //  The secret file is readable by its owner only, from its creation
    mode_t previous = umask (077);
    int saved = zcert_save (cert, path);
    umask (previous);
    if (saved == 0)
        chmod (path, 0644);     //  the public half may be read by all
    if (saved != 0) {
        fprintf (stderr, "polectl: cannot write %s and %s: %s\n", path,
                 secret, strerror (errno));
        zcert_destroy (&cert);
        zstr_free (&secret);
        return POLECTL_EXIT_ERROR;
    }
    printf ("%s\n", zcert_public_txt (cert));
    fprintf (stderr, "polectl: wrote %s (public key, printed above: put it "
             "in the daemon's keys list) and %s (secret key, mode 0600: "
             "keep it to yourself)\n", path, secret);
    zcert_destroy (&cert);
    zstr_free (&secret);
    return POLECTL_EXIT_DONE;
}

static void
s_print_pair (const char *label, const json_t *object, const char *key)
{
    char *text = s_json_text (json_object_get (object, key));
    printf ("%-16s %s\n", label, text ? text : "-");
    free (text);
}

static int
s_print_status (const json_t *status)
{
    if (!json_is_object (status))
        return s_malformed ("the status is not a JSON object");
    s_print_pair ("version", status, "version");
    s_print_pair ("uptime (s)", status, "uptime_s");
    s_print_pair ("clock", status, "clock");
    s_print_pair ("clock kind", status, "clock_kind");
    s_print_pair ("authentication", status, "authentication");
    s_print_pair ("dossiers", status, "dossiers");
    s_print_pair ("live dossiers", status, "live_dossiers");
    s_print_pair ("events", status, "events");
    const json_t *outbox = json_object_get (status, "outbox");
    s_print_pair ("outbox pending", outbox, "pending");
    s_print_pair ("outbox dead", outbox, "dead");
    s_print_pair ("outbox delivered", outbox, "delivered");
    s_print_pair ("database", status, "database");
    s_print_pair ("database bytes", status, "database_bytes");
    const json_t *head = json_object_get (status, "chain_head");
    if (head) {
        s_print_pair ("chain head seq", head, "seq");
        s_print_pair ("chain head hash", head, "hash");
    }
    s_print_pair ("requests", status, "requests");
    return POLECTL_EXIT_DONE;
}

static int
s_cmd_status (const s_command_t *self, s_options_t *opts, int argc,
              char *argv [])
{
    bool as_json = false;
    int rc = s_simple_options (self, argc, argv, &as_json);
    if (rc >= 0)
        return rc;
    if (optind < argc)
        return s_usage_error (self->name, "status: unexpected argument '%s'",
                              argv [optind]);
    pole_request_t request = { .command = POLE_CMD_STATUS,
                               .expected_version = -1 };
    pole_reply_t *reply = NULL;
    rc = s_read (opts, &request, &reply);
    if (rc == 0)
        rc = s_print_json_payload (reply, as_json, s_print_status);
    pole_reply_destroy (&reply);
    return rc;
}

//  Verify and backup read the whole database: give them time, unless the
//  user said how long to wait

static void
s_long_timeout (s_options_t *opts)
{
    if (!opts->timeout_given)
        opts->timeout = 600;
}

static int
s_print_verify (const json_t *result)
{
    if (!json_is_object (result))
        return s_malformed ("the verification is not a JSON object");
    const json_t *ok = json_object_get (result, "ok");
    char *message = s_json_text (json_object_get (result, "message"));
    if (json_is_true (ok))
        printf ("%s\n", message ? message : "the event log is intact");
    else
        fprintf (stderr, "polectl: %s\n",
                 message ? message : "the event log was altered");
    free (message);
    return json_is_true (ok) ? POLECTL_EXIT_DONE : POLECTL_EXIT_REFUSED;
}

static int
s_cmd_verify (const s_command_t *self, s_options_t *opts, int argc,
              char *argv [])
{
    bool as_json = false;
    int rc = s_simple_options (self, argc, argv, &as_json);
    if (rc >= 0)
        return rc;
    if (optind < argc)
        return s_usage_error (self->name, "verify: unexpected argument '%s'",
                              argv [optind]);
    s_long_timeout (opts);
    pole_request_t request = { .command = POLE_CMD_VERIFY,
                               .expected_version = -1 };
    pole_reply_t *reply = NULL;
    rc = s_call (opts, &request, &reply);
    if (rc == 0) {
        json_t *document = s_payload_json (reply);
        if (!document)
            rc = POLECTL_EXIT_ERROR;
        else {
            if (as_json)
                printf ("%s\n", reply->frames [0]);
            //  The exit status says intact or not, in both forms
            int status = s_print_verify (as_json ? NULL : document);
            if (as_json)
                status = json_is_true (json_object_get (document, "ok"))
                             ? POLECTL_EXIT_DONE
                             : POLECTL_EXIT_REFUSED;
            rc = status;
            json_decref (document);
        }
    }
    pole_reply_destroy (&reply);
    return rc;
}

static int
s_cmd_backup (const s_command_t *self, s_options_t *opts, int argc,
              char *argv [])
{
    bool as_json = false;
    int rc = s_simple_options (self, argc, argv, &as_json);
    if (rc >= 0)
        return rc;
    if (optind + 1 != argc)
        return s_usage_error (self->name, "backup: give one FILE, where the "
                              "daemon writes the copy");
    //  The daemon writes the file: a relative path means ours, made
    //  absolute here (it is the same machine when it is our directory)
    char *target = NULL;
    if (argv [optind][0] == '/')
        target = strdup (argv [optind]);
    else {
        char cwd [4096];
        if (!getcwd (cwd, sizeof cwd))
            return s_usage_error (self->name, "backup: cannot tell the "
                                  "current directory; give an absolute path");
        target = zsys_sprintf ("%s/%s", cwd, argv [optind]);
    }
    if (!target)
        return POLECTL_EXIT_ERROR;
    if (strlen (target) > POLE_PROTO_MAX_PATH) {
        free (target);
        return s_usage_error (self->name, "backup: the path is longer than "
                              "%d bytes", POLE_PROTO_MAX_PATH);
    }
    s_long_timeout (opts);
    pole_request_t request = { .command = POLE_CMD_BACKUP,
                               .expected_version = -1, .target = target };
    pole_reply_t *reply = NULL;
    rc = s_call (opts, &request, &reply);
    if (rc == 0) {
        json_t *document = s_payload_json (reply);
        if (!document)
            rc = POLECTL_EXIT_ERROR;
        else if (as_json)
            printf ("%s\n", reply->frames [0]);
        else {
            char *path = s_json_text (json_object_get (document, "path"));
            char *bytes = s_json_text (json_object_get (document, "bytes"));
            char *events = s_json_text (json_object_get (document, "events"));
            char *ms = s_json_text (json_object_get (document, "ms"));
            printf ("backup written to %s: %s bytes, %s events, in %s ms\n",
                    path ? path : target, bytes ? bytes : "?",
                    events ? events : "?", ms ? ms : "?");
            free (path);
            free (bytes);
            free (events);
            free (ms);
        }
        json_decref (document);
    }
    pole_reply_destroy (&reply);
    free (target);
    return rc;
}


//  --------------------------------------------------------------------------
//  Help

static void
s_print_usage (void)
{
    printf (
"Usage: polectl [OPTIONS] COMMAND [ARGS]\n"
"\n"
"The client of poled, the daemon that keeps the dossiers of the Région\n"
"Bretagne's ESS-hub programme. It speaks the POLE/1 protocol over ZeroMQ.\n"
"\n"
"Options (before the command):\n"
"  -e, --endpoint EP      the daemon's ZeroMQ endpoint (default\n"
"                         $POLE_ENDPOINT, else " POLECTL_LOCAL_ENDPOINT "\n"
"                         if that socket exists, else\n"
"                         " POLECTL_DEFAULT_ENDPOINT ")\n"
"  -k, --cert FILE        our key pair for CURVE (default $POLE_CERT): FILE\n"
"                         holds the public key, FILE_secret the secret one\n"
"                         (see keygen); needs --server-key\n"
"  -s, --server-key KEY   the daemon's public key, 40 Z85 characters or the\n"
"                         path of its public key file (default\n"
"                         $POLE_SERVER_KEY)\n"
"  -t, --timeout SECONDS  how long to wait for each try (default 5; decimals\n"
"                         allowed)\n"
"  -r, --retries N        tries after the first one times out (default 2);\n"
"                         every try of one command reuses the same request id\n"
"  -a, --actor NAME       who sends the event (default $POLE_ACTOR, else\n"
"                         $USER, else polectl); a daemon with\n"
"                         authentication records the key's name instead\n"
"      --request-id ID    the request id (default: a fresh UUID); a mutating\n"
"                         command sent again with the same id is applied once\n"
"      --pub-endpoint EP  the daemon's live stream, for watch (default\n"
"                         $POLE_PUB_ENDPOINT, else " POLECTL_DEFAULT_PUB_ENDPOINT ")\n"
"  -h, --help             print this help and exit\n"
"  -V, --version          print the version and exit\n"
"\n"
"Commands:\n");
    for (const char *names [] = { "open", "send", "show", "list", "history",
                                  "report", "agenda", "clock", "watch",
                                  "outbox", "graph", "ping", "status",
                                  "verify", "backup", "keygen", NULL },
         **name = names; *name; name++) {
        const s_command_t *command = s_command_lookup (*name);
        char *line = zsys_sprintf ("%s%s%s", command->name,
                                   *command->synopsis? " ": "",
                                   command->synopsis);
        if (line && strlen (line) <= 21)
            printf ("  %-21s  %s\n", line, command->summary);
        else
            printf ("  %s\n  %-21s  %s\n", line? line: command->name, "",
                    command->summary);
        zstr_free (&line);
    }
    printf (
"\n"
"'polectl COMMAND --help' describes a command; 'polectl send --help' lists\n"
"the events and their fields.\n"
"\n"
"Environment:\n"
"  POLE_ENDPOINT      the endpoint when -e is not given\n"
"  POLE_PUB_ENDPOINT  the live stream when --pub-endpoint is not given\n"
"  POLE_ACTOR         the actor when -a is not given\n"
"  POLE_CERT          the key pair when --cert is not given\n"
"  POLE_SERVER_KEY    the daemon's public key when --server-key is not given\n"
"  USER               the actor when neither -a nor POLE_ACTOR is given\n"
"\n"
"Exit status:\n"
"  0  done\n"
"  1  refused by a rule of the workflow or of the clock (REFUSED)\n"
"  2  bad usage\n"
"  3  unknown dossier or notification (NOT_FOUND)\n"
"  4  conflict (CONFLICT): the dossier's version is not the one expected,\n"
"     or the request id was already used for another request\n"
"  5  no answer from poled within the timeout after every retry\n"
"  6  any other error (BAD_REQUEST, UNSUPPORTED_VERSION, UNKNOWN_COMMAND,\n"
"     INTERNAL, malformed reply)\n"
"  7  not allowed: the sender's role may not do this (FORBIDDEN), or the\n"
"     daemon refused our key at the CURVE handshake\n"
"  (verify: 1 when the event log was altered)\n");
}


//  What a field's value looks like, for the help: the choices of an enum
//  as a|b|c, else a placeholder for its kind. The caller frees.

static char *
s_field_placeholder (const pole_field_spec_t *field)
{
    switch (field->kind) {
        case POLE_F_EUROS:
            return strdup ("EUROS");
        case POLE_F_COUNT:
            return strdup ("N");
        case POLE_F_LIST:
            return strdup ("NAME,...");
        case POLE_F_ENUM:
            if (field->choices) {
                char *choices = strdup (field->choices);
                for (char *p = choices; p && *p; p++)
                    if (*p == ',')
                        *p = '|';
                return choices;
            }
            return strdup ("VALUE");
        default:
            return strdup ("TEXT");
    }
}

//  The events that `send` takes, with their fields, from the workflow
//  table itself so that the help never disagrees with the daemon.

static void
s_print_events (void)
{
    printf ("\nEvents (fields: required, [optional]):\n");
    for (int event = POLE_E_OPEN + 1; event < POLE_E_COUNT; event++) {
        const pole_event_spec_t *spec = pole_workflow_event_spec (event);
        if (!spec || !spec->name)
            continue;
        printf ("  %s", spec->name);
        if (spec->summary && *spec->summary)
            printf (": %s", spec->summary);
        printf ("\n");
        bool any = false;
        for (int index = 0; index < POLE_MAX_EVENT_FIELDS; index++) {
            const pole_field_spec_t *field = &spec->fields [index];
            if (!field->name)
                break;
            char *placeholder = s_field_placeholder (field);
            printf ("      %s%s=%s%s", field->required? "": "[",
                    field->name, placeholder? placeholder: "",
                    field->required? "": "]");
            free (placeholder);
            if (field->kind == POLE_F_EUROS)
                printf ("  (whole euros)");
            if (field->kind == POLE_F_LIST && field->choices)
                printf ("  (each one of: %s)", field->choices);
            printf ("\n");
            any = true;
        }
        if (!any)
            printf ("      (no field)\n");
    }
}


static void
s_print_states (void)
{
    printf ("\nStates:");
    for (int state = POLE_S_NONE + 1; state < POLE_S_COUNT; state++) {
        const char *name = pole_state_name (state);
        if (name)
            printf ("%s %s", state == POLE_S_NONE + 1? "": ",", name);
    }
    printf ("\n");
}


static void
s_print_event_names (void)
{
    //  Wrapped before 78 columns
    printf ("\nEvents:");
    size_t column = strlen ("Events:");
    for (int event = POLE_E_OPEN; event < POLE_E_COUNT; event++) {
        const char *name = pole_event_name (event);
        if (!name)
            continue;
        bool last = event == POLE_E_COUNT - 1;
        size_t width = 1 + strlen (name) + (last? 0: 1);
        if (column + width > 78) {
            printf ("\n ");
            column = 1;
        }
        printf (" %s%s", name, last? "": ",");
        column += width;
    }
    printf ("\n");
}


static void
s_print_command_help (const s_command_t *self)
{
    printf ("Usage: polectl [OPTIONS] %s%s%s\n\n%s\n", self->name,
            *self->synopsis? " ": "", self->synopsis, self->summary);
    if (self->options && *self->options)
        printf ("\n%s", self->options);
    if (streq (self->name, "send"))
        s_print_events ();
    if (streq (self->name, "list") || streq (self->name, "watch"))
        s_print_states ();
    if (streq (self->name, "watch"))
        s_print_event_names ();
    printf ("\nSee 'polectl --help' for the options before the command and "
            "the exit statuses.\n");
}


//  --------------------------------------------------------------------------
//  The commands

//  Flag options of the read commands and the common -h/--help

static const struct option s_json_options [] = {
    { "json", no_argument, NULL, OPT_JSON },
    { "help", no_argument, NULL, 'h' },
    { NULL, 0, NULL, 0 }
};


//  Parse the options of a command that takes only --json (and --help) and
//  `wanted` positional arguments. Returns -1 to go on, else an exit status.

static int
s_parse_read_command (const s_command_t *self, int argc, char *argv [],
                      bool *as_json, int wanted)
{
    int c;
    while ((c = s_getopt (argc, argv, ":h", s_json_options,
                          self->name)) != -1) {
        switch (c) {
            case OPT_JSON:
                *as_json = true;
                break;
            case 'h':
                s_print_command_help (self);
                return POLECTL_EXIT_DONE;
            default:
                return POLECTL_EXIT_USAGE;
        }
    }
    int given = argc - optind;
    if (given < wanted)
        return s_usage_error (self->name, "%s: missing dossier ID",
                              self->name);
    if (given > wanted)
        return s_usage_error (self->name, "%s: unexpected argument '%s'",
                              self->name, argv [optind + wanted]);
    return -1;
}


//  A dossier id from the command line: a positive number

static int
s_parse_dossier_id (const s_command_t *self, const char *text, int64_t *id)
{
    if (s_parse_number (text, INT64_MAX, id) != 0 || *id == 0)
        return s_usage_error (self->name, "%s: the dossier ID must be a "
                              "positive number, not '%s'", self->name, text);
    return 0;
}


//  The actor must be what the protocol carries: 1..64 bytes of UTF-8

static int
s_check_actor (const s_options_t *opts)
{
    size_t length = strlen (opts->actor);
    if (length == 0 || length > POLE_PROTO_MAX_TOKEN
    ||  !pole_utf8_valid (opts->actor, length))
        return s_usage_error (NULL, "the actor must be 1 to 64 bytes of "
                              "UTF-8 text, not '%s'", opts->actor);
    return 0;
}


static int
s_cmd_open (const s_command_t *self, s_options_t *opts, int argc,
            char *argv [])
{
    static const struct option longopts [] = {
        { "pays",        required_argument, NULL, OPT_PAYS },
        { "holder",      required_argument, NULL, OPT_HOLDER },
        { "holder-type", required_argument, NULL, OPT_HOLDER_TYPE },
        { "title",       required_argument, NULL, OPT_TITLE },
        { "help",        no_argument,       NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };
    //  The options in the order of the fields they become
    const char *keys [] = { "pays", "holder", "holder_type", "title" };
    const char *names [] = { "--pays", "--holder", "--holder-type", "--title" };
    char *values [4] = { NULL, NULL, NULL, NULL };
    int c;
    while ((c = s_getopt (argc, argv, ":h", longopts, self->name)) != -1) {
        if (c == 'h') {
            s_print_command_help (self);
            return POLECTL_EXIT_DONE;
        }
        if (c < OPT_PAYS || c > OPT_TITLE)
            return POLECTL_EXIT_USAGE;
        int index = c - OPT_PAYS;
        if (values [index])
            return s_usage_error (self->name, "open: %s given twice",
                                  names [index]);
        values [index] = optarg;
    }
    if (optind < argc)
        return s_usage_error (self->name, "open: unexpected argument '%s'",
                              argv [optind]);
    for (int index = 0; index < 3; index++)
        if (!values [index])
            return s_usage_error (self->name, "open: %s is required",
                                  names [index]);

    pole_field_t fields [4];
    size_t field_count = 0;
    for (int index = 0; index < 4; index++) {
        if (!values [index])
            continue;
        const char *problem = s_value_problem (values [index]);
        if (problem)
            return s_usage_error (self->name, "open: the value of %s %s",
                                  names [index], problem);
        fields [field_count].key = keys [index];
        fields [field_count].value = values [index];
        field_count++;
    }
    if (s_check_actor (opts))
        return POLECTL_EXIT_USAGE;

    pole_request_t request = {
        .command = POLE_CMD_OPEN,
        .actor = opts->actor,
        .expected_version = -1,
        .fields = fields,
        .field_count = field_count
    };
    pole_reply_t *reply = NULL;
    int rc = s_call (opts, &request, &reply);
    if (rc == 0)
        rc = s_print_outcome (reply, 0);       //  the new dossier's id
    pole_reply_destroy (&reply);
    return rc;
}


//  Free the keys s_cmd_send copied out of its key=value arguments

static void
s_free_keys (pole_field_t *fields, size_t count)
{
    for (size_t index = 0; index < count; index++)
        free ((void *) fields [index].key);
    free (fields);
}

static int
s_cmd_send (const s_command_t *self, s_options_t *opts, int argc,
            char *argv [])
{
    static const struct option longopts [] = {
        { "expect-version", required_argument, NULL, OPT_EXPECT_VERSION },
        { "help",           no_argument,       NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };
    int64_t expected_version = -1;
    int c;
    while ((c = s_getopt (argc, argv, ":h", longopts, self->name)) != -1) {
        switch (c) {
            case OPT_EXPECT_VERSION:
                if (expected_version >= 0)
                    return s_usage_error (self->name,
                                          "send: --expect-version given twice");
                if (s_parse_number (optarg, INT64_MAX, &expected_version))
                    return s_usage_error (self->name, "send: --expect-version "
                                          "must be a number, not '%s'", optarg);
                break;
            case 'h':
                s_print_command_help (self);
                return POLECTL_EXIT_DONE;
            default:
                return POLECTL_EXIT_USAGE;
        }
    }
    //  GNU getopt has moved the arguments that are not options here, in
    //  their order: ID EVENT key=value...
    char **args = argv + optind;
    int arg_count = argc - optind;
    if (arg_count < 1)
        return s_usage_error (self->name, "send: missing dossier ID and event");
    if (arg_count < 2)
        return s_usage_error (self->name, "send: missing event");

    int64_t dossier;
    if (s_parse_dossier_id (self, args [0], &dossier))
        return POLECTL_EXIT_USAGE;
    int event = pole_event_from_name (args [1]);
    if (event == POLE_E_OPEN)
        return s_usage_error (self->name, "send: a dossier is opened with "
                              "'polectl open', not with send");
    if (event < 0)
        return s_usage_error (self->name, "send: unknown event '%s'", args [1]);

    size_t field_count = (size_t) (arg_count - 2);
    if (field_count > POLE_PROTO_MAX_FRAMES - POLECTL_EVENT_FIXED_FRAMES)
        return s_usage_error (self->name, "send: too many fields (at most %d)",
                              POLE_PROTO_MAX_FRAMES
                              - POLECTL_EVENT_FIXED_FRAMES);
    pole_field_t *fields = (pole_field_t *) calloc (field_count + 1,
                                                    sizeof (pole_field_t));
    if (!fields) {
        fprintf (stderr, "polectl: out of memory\n");
        return POLECTL_EXIT_ERROR;
    }
    for (size_t index = 0; index < field_count; index++) {
        const char *arg = args [2 + index];
        const char *equals = strchr (arg, '=');
        int rc = 0;
        if (!equals)
            rc = s_usage_error (self->name, "send: '%s' is not key=value", arg);
        else
        if (!s_key_valid (arg, (size_t) (equals - arg)))
            rc = s_usage_error (self->name, "send: '%.*s' is not a field name "
                                "(lower-case letters, digits and '_', starting "
                                "with a letter, at most 32)",
                                (int) (equals - arg), arg);
        else
        if (s_value_problem (equals + 1))
            rc = s_usage_error (self->name, "send: the value of %.*s %s",
                                (int) (equals - arg), arg,
                                s_value_problem (equals + 1));
        if (rc == 0) {
            char *key = strndup (arg, (size_t) (equals - arg));
            for (size_t other = 0; key && other < index; other++)
                if (streq (fields [other].key, key))
                    rc = s_usage_error (self->name, "send: field '%s' given "
                                        "twice", key);
            fields [index].key = key;
            fields [index].value = equals + 1;
            if (!key) {
                fprintf (stderr, "polectl: out of memory\n");
                rc = POLECTL_EXIT_ERROR;
            }
        }
        if (rc) {
            s_free_keys (fields, index + 1);
            return rc;
        }
    }
    if (s_check_actor (opts)) {
        s_free_keys (fields, field_count);
        return POLECTL_EXIT_USAGE;
    }

    pole_request_t request = {
        .command = POLE_CMD_EVENT,
        .actor = opts->actor,
        .dossier = dossier,
        .expected_version = expected_version,
        .event = args [1],
        .fields = fields,
        .field_count = field_count
    };
    pole_reply_t *reply = NULL;
    int rc = s_call (opts, &request, &reply);
    if (rc == 0)
        rc = s_print_outcome (reply, 1);       //  the dossier's new state
    pole_reply_destroy (&reply);
    s_free_keys (fields, field_count);
    return rc;
}


//  history: one dossier id, --json

static int
s_cmd_dossier_read (const s_command_t *self, s_options_t *opts, int argc,
                    char *argv [], pole_command_t command,
                    int (*print) (const json_t *))
{
    bool as_json = false;
    int rc = s_parse_read_command (self, argc, argv, &as_json, 1);
    if (rc >= 0)
        return rc;
    int64_t dossier;
    if (s_parse_dossier_id (self, argv [optind], &dossier))
        return POLECTL_EXIT_USAGE;

    pole_request_t request = {
        .command = command,
        .dossier = dossier,
        .expected_version = -1
    };
    pole_reply_t *reply = NULL;
    rc = s_read (opts, &request, &reply);
    if (rc == 0)
        rc = s_print_json_payload (reply, as_json, print);
    pole_reply_destroy (&reply);
    return rc;
}

//  s_call with a request id of its own: for the second request of a
//  command that asks twice (show asks SHOW, then HISTORY)

static int
s_call_fresh (const s_options_t *opts, pole_request_t *request,
              pole_reply_t **reply_p)
{
    s_options_t fresh = *opts;
    zuuid_t *uuid = zuuid_new ();
    if (!uuid) {
        fprintf (stderr, "polectl: cannot make a request id\n");
        return POLECTL_EXIT_ERROR;
    }
    snprintf (fresh.request_id_buf, sizeof fresh.request_id_buf, "%s",
              zuuid_str_canonical (uuid));
    zuuid_destroy (&uuid);
    fresh.request_id = fresh.request_id_buf;
    return s_call (&fresh, request, reply_p);
}

//  show: SHOW, then (without --json) HISTORY; nothing is printed until both
//  have answered

static int
s_cmd_show (const s_command_t *self, s_options_t *opts, int argc,
            char *argv [])
{
    bool as_json = false;
    int rc = s_parse_read_command (self, argc, argv, &as_json, 1);
    if (rc >= 0)
        return rc;
    int64_t dossier;
    if (s_parse_dossier_id (self, argv [optind], &dossier))
        return POLECTL_EXIT_USAGE;

    pole_request_t request = {
        .command = POLE_CMD_SHOW,
        .dossier = dossier,
        .expected_version = -1
    };
    pole_reply_t *reply = NULL;
    rc = s_read (opts, &request, &reply);
    if (as_json) {
        //  The SHOW payload alone, as received
        if (rc == 0)
            rc = s_print_json_payload (reply, true, s_print_dossier);
        pole_reply_destroy (&reply);
        return rc;
    }
    json_t *document = rc == 0? s_payload_json (reply): NULL;
    if (rc == 0 && !document)
        rc = POLECTL_EXIT_ERROR;
    pole_reply_destroy (&reply);
    json_t *history = NULL;
    if (rc == 0) {
        request.command = POLE_CMD_HISTORY;
        rc = s_call_fresh (opts, &request, &reply);
        history = rc == 0? s_payload_json (reply): NULL;
        if (rc == 0 && !history)
            rc = POLECTL_EXIT_ERROR;
        pole_reply_destroy (&reply);
    }
    if (rc == 0)
        rc = s_print_story (document, history);
    json_decref (document);
    json_decref (history);
    return rc;
}

static int
s_cmd_history (const s_command_t *self, s_options_t *opts, int argc,
               char *argv [])
{
    return s_cmd_dossier_read (self, opts, argc, argv, POLE_CMD_HISTORY,
                               s_print_history);
}


static int
s_cmd_list (const s_command_t *self, s_options_t *opts, int argc,
            char *argv [])
{
    static const struct option longopts [] = {
        { "state",   required_argument, NULL, OPT_STATE },
        { "pays",    required_argument, NULL, OPT_PAYS },
        { "overdue", no_argument,       NULL, OPT_OVERDUE },
        { "json",    no_argument,       NULL, OPT_JSON },
        { "help",    no_argument,       NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };
    const char *state = NULL;
    const char *pays = NULL;
    bool overdue = false;
    bool as_json = false;
    int c;
    while ((c = s_getopt (argc, argv, ":h", longopts, self->name)) != -1) {
        switch (c) {
            case OPT_STATE:
                if (state)
                    return s_usage_error (self->name,
                                          "list: --state given twice");
                state = optarg;
                break;
            case OPT_PAYS:
                if (pays)
                    return s_usage_error (self->name,
                                          "list: --pays given twice");
                pays = optarg;
                break;
            case OPT_OVERDUE:
                overdue = true;
                break;
            case OPT_JSON:
                as_json = true;
                break;
            case 'h':
                s_print_command_help (self);
                return POLECTL_EXIT_DONE;
            default:
                return POLECTL_EXIT_USAGE;
        }
    }
    if (optind < argc)
        return s_usage_error (self->name, "list: unexpected argument '%s'",
                              argv [optind]);
    //  The states are part of this build's workflow table; a typo is
    //  caught here. Pays are configuration: only the daemon knows them.
    if (state && pole_state_from_name (state) <= POLE_S_NONE)
        return s_usage_error (self->name, "list: unknown state '%s'", state);
    if (pays && s_value_problem (pays))
        return s_usage_error (self->name, "list: the value of --pays %s",
                              s_value_problem (pays));

    pole_field_t filters [3];
    size_t filter_count = 0;
    if (state) {
        filters [filter_count].key = "state";
        filters [filter_count++].value = state;
    }
    if (pays) {
        filters [filter_count].key = "pays";
        filters [filter_count++].value = pays;
    }
    if (overdue) {
        filters [filter_count].key = "overdue";
        filters [filter_count++].value = POLE_LIST_OVERDUE;
    }
    pole_request_t request = {
        .command = POLE_CMD_LIST,
        .expected_version = -1,
        .fields = filter_count? filters: NULL,
        .field_count = filter_count
    };
    pole_reply_t *reply = NULL;
    int rc = s_read (opts, &request, &reply);
    if (rc == 0)
        rc = s_print_json_payload (reply, as_json, s_print_list);
    pole_reply_destroy (&reply);
    return rc;
}


//  A day of the calendar written YYYY-MM-DD (2013-02-30 is not one)

static bool
s_day_valid (const char *text)
{
    int64_t seconds;
    return strlen (text) == 10 && text [4] == '-' && text [7] == '-'
        && pole_proto_time_parse (text, &seconds) == 0;
}

static int
s_cmd_report (const s_command_t *self, s_options_t *opts, int argc,
              char *argv [])
{
    static const struct option longopts [] = {
        { "as-of",    required_argument, NULL, OPT_AS_OF },
        { "json",     no_argument,       NULL, OPT_JSON },
        { "csv",      no_argument,       NULL, OPT_CSV },
        { "markdown", no_argument,       NULL, OPT_MARKDOWN },
        { "svg",      required_argument, NULL, OPT_SVG },
        { "help",     no_argument,       NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };
    const char *as_of = NULL;
    const char *svg = NULL;
    int format = 0;                     //  0 for people, else the option
    int c;
    while ((c = s_getopt (argc, argv, ":h", longopts, self->name)) != -1) {
        switch (c) {
            case OPT_AS_OF:
                if (as_of)
                    return s_usage_error (self->name,
                                          "report: --as-of given twice");
                if (!s_day_valid (optarg))
                    return s_usage_error (self->name, "report: --as-of must "
                                          "be a day of the calendar, "
                                          "YYYY-MM-DD, not '%s'", optarg);
                as_of = optarg;
                break;
            case OPT_JSON:
            case OPT_CSV:
            case OPT_MARKDOWN:
                if (format == c)
                    return s_usage_error (self->name, "report: an option "
                                          "given twice");
                if (format)
                    return s_usage_error (self->name, "report: --json, --csv "
                                          "and --markdown exclude one "
                                          "another");
                format = c;
                break;
            case OPT_SVG:
                if (svg)
                    return s_usage_error (self->name,
                                          "report: --svg given twice");
                if (!*optarg)
                    return s_usage_error (self->name,
                                          "report: --svg needs a file name");
                svg = optarg;
                break;
            case 'h':
                s_print_command_help (self);
                return POLECTL_EXIT_DONE;
            default:
                return POLECTL_EXIT_USAGE;
        }
    }
    if (optind < argc)
        return s_usage_error (self->name, "report: unexpected argument '%s'",
                              argv [optind]);

    pole_field_t filter = { "as_of", as_of };
    pole_request_t request = {
        .command = POLE_CMD_REPORT,
        .expected_version = -1,
        .fields = as_of? &filter: NULL,
        .field_count = as_of? 1: 0
    };
    pole_reply_t *reply = NULL;
    int rc = s_call (opts, &request, &reply);
    json_t *report = rc == 0? s_payload_json (reply): NULL;
    if (rc == 0 && !report)
        rc = POLECTL_EXIT_ERROR;
    //  The chart first: if it cannot be written, nothing is printed
    if (rc == 0 && svg) {
        rc = s_report_check (report);
        if (rc == 0)
            rc = s_write_svg (svg, report);
    }
    if (rc == 0) {
        switch (format) {
            case OPT_JSON:
                printf ("%s\n", reply->frames [0]);
                break;
            case OPT_CSV:
                rc = s_print_report_csv (report);
                break;
            case OPT_MARKDOWN:
                rc = s_print_report_markdown (report);
                break;
            default:
                rc = s_print_report (report);
        }
    }
    json_decref (report);
    pole_reply_destroy (&reply);
    return rc;
}


//  graph ID: the path of the dossier, from its history

static int
s_print_graph_path (const json_t *history)
{
    if (!json_is_array (history))
        return s_malformed ("the history is not a JSON array");
    size_t steps = json_array_size (history);
    int *states = (int *) calloc (steps + 1, sizeof (int));
    int *events = (int *) calloc (steps + 1, sizeof (int));
    int rc = POLECTL_EXIT_DONE;
    if (!states || !events) {
        fprintf (stderr, "polectl: out of memory\n");
        rc = POLECTL_EXIT_ERROR;
    }
    size_t index;
    const json_t *entry;
    json_array_foreach (history, index, entry) {
        if (rc)
            break;
        const char *event = json_string_value (json_object_get (entry,
                                                                "event"));
        const char *to = json_string_value (json_object_get (entry, "to"));
        events [index] = pole_event_from_name (event);
        states [index] = pole_state_from_name (to);
        //  A name this build does not know would draw a wrong path
        if (events [index] < 0 || states [index] <= POLE_S_NONE)
            rc = s_malformed ("entry %zu of the history (event %s, state "
                              "%s) is not in this build's workflow",
                              index + 1, event? event: "missing",
                              to? to: "missing");
    }
    if (rc == POLECTL_EXIT_DONE)
        pole_workflow_print_dot_path (stdout, states, events, steps);
    free (states);
    free (events);
    return rc;
}

static int
s_cmd_graph (const s_command_t *self, s_options_t *opts, int argc,
             char *argv [])
{
    static const struct option longopts [] = {
        { "markdown", no_argument, NULL, OPT_MARKDOWN },
        { "help",     no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };
    bool markdown = false;
    int c;
    while ((c = s_getopt (argc, argv, ":h", longopts, self->name)) != -1) {
        switch (c) {
            case OPT_MARKDOWN:
                markdown = true;
                break;
            case 'h':
                s_print_command_help (self);
                return POLECTL_EXIT_DONE;
            default:
                return POLECTL_EXIT_USAGE;
        }
    }
    if (optind + 1 < argc)
        return s_usage_error (self->name, "graph: unexpected argument '%s'",
                              argv [optind + 1]);
    if (optind < argc) {
        //  graph ID: the dossier's path, from its history
        if (markdown)
            return s_usage_error (self->name, "graph: --markdown takes no "
                                  "dossier ID");
        int64_t dossier;
        if (s_parse_dossier_id (self, argv [optind], &dossier))
            return POLECTL_EXIT_USAGE;
        pole_request_t request = {
            .command = POLE_CMD_HISTORY,
            .dossier = dossier,
            .expected_version = -1
        };
        pole_reply_t *reply = NULL;
        int rc = s_read (opts, &request, &reply);
        if (rc == 0)
            rc = s_print_json_payload (reply, false, s_print_graph_path);
        pole_reply_destroy (&reply);
        return rc;
    }
    if (markdown)
        pole_workflow_print_markdown (stdout);
    else
        pole_workflow_print_dot (stdout);
    return POLECTL_EXIT_DONE;
}


static int
s_cmd_ping (const s_command_t *self, s_options_t *opts, int argc,
            char *argv [])
{
    static const struct option longopts [] = {
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };
    int c;
    while ((c = s_getopt (argc, argv, ":h", longopts, self->name)) != -1) {
        if (c == 'h') {
            s_print_command_help (self);
            return POLECTL_EXIT_DONE;
        }
        return POLECTL_EXIT_USAGE;
    }
    if (optind < argc)
        return s_usage_error (self->name, "ping: unexpected argument '%s'",
                              argv [optind]);
    pole_request_t request = {
        .command = POLE_CMD_PING,
        .expected_version = -1
    };
    pole_reply_t *reply = NULL;
    int rc = s_call (opts, &request, &reply);
    if (rc == 0) {
        if (reply->frame_count < 1)
            rc = s_malformed ("no payload frame");
        else
            printf ("%s\n", reply->frames [0]);
    }
    pole_reply_destroy (&reply);
    return rc;
}


//  --------------------------------------------------------------------------
//  clock: the daemon's time; clock set, clock advance: move the simulated
//  clock

//  Check a CLOCK reply: "TIME KIND", the time UTC YYYY-MM-DDTHH:MM:SSZ,
//  the kind simulated or real. Returns 0 with the time in *seconds (if
//  asked), else an exit status once reported.

static int
s_clock_reply (const pole_reply_t *reply, int64_t *seconds)
{
    if (reply->frame_count < 2)
        return s_malformed ("%zu payload frames where 2 (time, kind) were "
                            "expected", reply->frame_count);
    int64_t time;
    if (strlen (reply->frames [0]) != 20
    ||  pole_proto_time_parse (reply->frames [0], &time) != 0)
        return s_malformed ("the time is not YYYY-MM-DDTHH:MM:SSZ");
    if (!streq (reply->frames [1], "simulated")
    &&  !streq (reply->frames [1], "real"))
        return s_malformed ("the clock is neither simulated nor real");
    if (seconds)
        *seconds = time;
    return 0;
}

//  Send one CLOCK request; returns 0 with the reply checked, or an exit
//  status once reported.

static int
s_clock_call (s_options_t *opts, const char *op, const char *value,
              pole_reply_t **reply_p, int64_t *seconds)
{
    pole_request_t request = {
        .command = POLE_CMD_CLOCK,
        .actor = opts->actor,
        .target = (char *) op,
        .value = (char *) value,
        .expected_version = -1
    };
    int rc = s_call (opts, &request, reply_p);
    if (rc == 0) {
        rc = s_clock_reply (*reply_p, seconds);
        if (rc)
            pole_reply_destroy (reply_p);
    }
    return rc;
}

static int
s_cmd_clock (const s_command_t *self, s_options_t *opts, int argc,
             char *argv [])
{
    static const struct option longopts [] = {
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };
    int c;
    while ((c = s_getopt (argc, argv, ":h", longopts, self->name)) != -1) {
        if (c == 'h') {
            s_print_command_help (self);
            return POLECTL_EXIT_DONE;
        }
        return POLECTL_EXIT_USAGE;
    }
    char **args = argv + optind;
    int arg_count = argc - optind;
    const char *op = POLE_CLOCK_GET;
    const char *value = "";
    int64_t days = 0;
    if (arg_count > 0) {
        if (streq (args [0], "set")) {
            op = POLE_CLOCK_SET;
            if (arg_count < 2)
                return s_usage_error (self->name, "clock set: missing date "
                                      "(YYYY-MM-DD)");
            int64_t seconds;
            value = args [1];
            if (pole_proto_time_parse (value, &seconds) != 0)
                return s_usage_error (self->name, "clock set: '%s' is not a "
                                      "date YYYY-MM-DD (or a time "
                                      "YYYY-MM-DDTHH:MM:SSZ, UTC)", value);
        }
        else
        if (streq (args [0], "advance")) {
            op = POLE_CLOCK_ADVANCE;
            if (arg_count < 2)
                return s_usage_error (self->name, "clock advance: missing "
                                      "number of days");
            if (s_parse_number (args [1], POLE_CLOCK_MAX_DAYS, &days)
            ||  days == 0)
                return s_usage_error (self->name, "clock advance: the number "
                                      "of days must be from 1 to %d, not "
                                      "'%s'", POLE_CLOCK_MAX_DAYS, args [1]);
        }
        else
            return s_usage_error (self->name, "clock: unexpected argument "
                                  "'%s' (set DATE or advance DAYS)", args [0]);
        if (arg_count > 2)
            return s_usage_error (self->name, "clock %s: unexpected argument "
                                  "'%s'", args [0], args [2]);
    }
    if (s_check_actor (opts))
        return POLECTL_EXIT_USAGE;

    pole_reply_t *reply = NULL;
    char target [32];
    if (streq (op, POLE_CLOCK_ADVANCE)) {
        //  Get, then set: a set resent after a lost reply cannot move the
        //  clock twice, as an advance would. Both carry the run's request
        //  id; each has a socket of its own, so their replies cannot mix.
        int64_t now;
        int rc = s_clock_call (opts, POLE_CLOCK_GET, "", &reply, &now);
        if (rc)
            return rc;
        pole_reply_destroy (&reply);
        if (pole_proto_time_format (now + days * 86400, target,
                                    sizeof target) != 0)
            return s_usage_error (self->name, "clock advance: %" PRId64
                                  " days from now is past the year 9999",
                                  days);
        op = POLE_CLOCK_SET;
        value = target;
    }
    int rc = s_clock_call (opts, op, value, &reply, NULL);
    if (rc == 0)
        printf ("%s  %s\n", reply->frames [0], reply->frames [1]);
    pole_reply_destroy (&reply);
    return rc;
}


//  --------------------------------------------------------------------------
//  agenda: what falls due, and what is overdue

#define S_AGENDA_COLUMNS 6

//  The text of one cell of the agenda: the due date without its time, the
//  others as they come, one line. The caller frees.

static char *
s_agenda_cell (const json_t *row, int column)
{
    static const char *columns [S_AGENDA_COLUMNS] = {
        "due", "dossier", "pays", "kind", "year", "state"
    };
    char *text = s_one_line (s_cell (row, columns [column]));
    int64_t seconds;
    if (column == 0 && text && strlen (text) == 20
    &&  pole_proto_time_parse (text, &seconds) == 0)
        text [10] = 0;              //  YYYY-MM-DD
    return text;
}

//  agenda: one line per timer, "DUE  DOSSIER  PAYS  KIND  YEAR  STATE",
//  aligned; the last column is not padded

static int
s_print_agenda (const json_t *rows)
{
    if (!json_is_array (rows))
        return s_malformed ("the agenda is not a JSON array");
    //  Numbers are right-aligned
    static const bool right [S_AGENDA_COLUMNS] = {
        false, true, false, false, true, false
    };
    size_t width [S_AGENDA_COLUMNS] = { 0 };
    size_t index;
    const json_t *row;
    json_array_foreach (rows, index, row) {
        if (!json_is_object (row))
            return s_malformed ("an entry of the agenda is not a JSON object");
        for (int column = 0; column < S_AGENDA_COLUMNS - 1; column++) {
            char *text = s_agenda_cell (row, column);
            size_t used = text? s_display_width (text): 0;
            if (used > width [column])
                width [column] = used;
            free (text);
        }
    }
    json_array_foreach (rows, index, row) {
        for (int column = 0; column < S_AGENDA_COLUMNS; column++) {
            char *text = s_agenda_cell (row, column);
            if (column > 0)
                printf ("  ");
            if (column == S_AGENDA_COLUMNS - 1)
                printf ("%s\n", text? text: "-");
            else
                s_print_padded (text? text: "-", width [column],
                                right [column]);
            free (text);
        }
    }
    return POLECTL_EXIT_DONE;
}

#define POLECTL_AGENDA_DEFAULT_DAYS 90

static int
s_cmd_agenda (const s_command_t *self, s_options_t *opts, int argc,
              char *argv [])
{
    static const struct option longopts [] = {
        { "days", required_argument, NULL, OPT_DAYS },
        { "json", no_argument,       NULL, OPT_JSON },
        { "help", no_argument,       NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };
    int64_t days = -1;
    bool as_json = false;
    int c;
    while ((c = s_getopt (argc, argv, ":h", longopts, self->name)) != -1) {
        switch (c) {
            case OPT_DAYS:
                if (days >= 0)
                    return s_usage_error (self->name,
                                          "agenda: --days given twice");
                if (s_parse_number (optarg, POLE_AGENDA_MAX_DAYS, &days))
                    return s_usage_error (self->name, "agenda: --days must be "
                                          "a number from 0 to %d, not '%s'",
                                          POLE_AGENDA_MAX_DAYS, optarg);
                break;
            case OPT_JSON:
                as_json = true;
                break;
            case 'h':
                s_print_command_help (self);
                return POLECTL_EXIT_DONE;
            default:
                return POLECTL_EXIT_USAGE;
        }
    }
    if (optind < argc)
        return s_usage_error (self->name, "agenda: unexpected argument '%s'",
                              argv [optind]);
    pole_request_t request = {
        .command = POLE_CMD_AGENDA,
        .days = days < 0? POLECTL_AGENDA_DEFAULT_DAYS: days,
        .expected_version = -1
    };
    pole_reply_t *reply = NULL;
    int rc = s_read (opts, &request, &reply);
    if (rc == 0)
        rc = s_print_json_payload (reply, as_json, s_print_agenda);
    pole_reply_destroy (&reply);
    return rc;
}


//  --------------------------------------------------------------------------
//  outbox: the notifications to coordinators; outbox retry: queue again

static int
s_cmd_outbox_retry (const s_command_t *self, s_options_t *opts, int argc,
                    char *argv [])
{
    static const struct option longopts [] = {
        { "dead", no_argument, NULL, OPT_DEAD },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };
    bool dead = false;
    int c;
    while ((c = s_getopt (argc, argv, ":h", longopts, self->name)) != -1) {
        switch (c) {
            case OPT_DEAD:
                dead = true;
                break;
            case 'h':
                s_print_command_help (self);
                return POLECTL_EXIT_DONE;
            default:
                return POLECTL_EXIT_USAGE;
        }
    }
    const char *id = optind < argc? argv [optind]: NULL;
    if (optind + 1 < argc)
        return s_usage_error (self->name, "outbox retry: unexpected argument "
                              "'%s'", argv [optind + 1]);
    if (dead && id)
        return s_usage_error (self->name, "outbox retry: give a notification "
                              "ID or --dead, not both");
    if (!dead && !id)
        return s_usage_error (self->name, "outbox retry: missing notification "
                              "ID (or --dead)");
    //  "--dead" itself can only come through as an option (after "--" it
    //  is an argument, and not an id)
    if (id && (streq (id, POLE_RETRY_DEAD) || !pole_retry_target_valid (id)))
        return s_usage_error (self->name, "outbox retry: '%s' is not a "
                              "notification ID (SEQ-K, e.g. 12-0)", id);
    if (s_check_actor (opts))
        return POLECTL_EXIT_USAGE;

    pole_request_t request = {
        .command = POLE_CMD_RETRY,
        .actor = opts->actor,
        .target = (char *) (dead? POLE_RETRY_DEAD: id),
        .expected_version = -1
    };
    pole_reply_t *reply = NULL;
    int rc = s_call (opts, &request, &reply);
    if (rc == 0) {
        int64_t queued;
        if (reply->frame_count < 1)
            rc = s_malformed ("no payload frame");
        else
        if (s_parse_number (reply->frames [0], INT64_MAX, &queued))
            rc = s_malformed ("the number of rows queued is not a number");
        else
            printf ("%" PRId64 " notification%s queued again\n", queued,
                    queued == 1? "": "s");
    }
    pole_reply_destroy (&reply);
    return rc;
}

static int
s_cmd_outbox (const s_command_t *self, s_options_t *opts, int argc,
              char *argv [])
{
    //  The subcommand comes first: `outbox retry --dead`, where getopt
    //  would otherwise take --dead as an option of outbox itself
    if (argc > 1 && streq (argv [1], "retry"))
        return s_cmd_outbox_retry (self, opts, argc - 1, argv + 1);

    static const struct option longopts [] = {
        { "state", required_argument, NULL, OPT_STATE },
        { "json",  no_argument,       NULL, OPT_JSON },
        { "help",  no_argument,       NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };
    const char *state = NULL;
    bool as_json = false;
    int c;
    while ((c = s_getopt (argc, argv, ":h", longopts, self->name)) != -1) {
        switch (c) {
            case OPT_STATE:
                if (state)
                    return s_usage_error (self->name,
                                          "outbox: --state given twice");
                state = optarg;
                break;
            case OPT_JSON:
                as_json = true;
                break;
            case 'h':
                s_print_command_help (self);
                return POLECTL_EXIT_DONE;
            default:
                return POLECTL_EXIT_USAGE;
        }
    }
    if (optind < argc) {
        if (streq (argv [optind], "retry"))
            return s_usage_error (self->name, "outbox: 'retry' comes right "
                                  "after 'outbox' (polectl outbox retry "
                                  "ID|--dead)");
        return s_usage_error (self->name, "outbox: unexpected argument '%s'",
                              argv [optind]);
    }
    if (state && !streq (state, "pending") && !streq (state, "delivered")
    &&  !streq (state, "dead"))
        return s_usage_error (self->name, "outbox: --state is pending, "
                              "delivered or dead, not '%s'", state);

    pole_field_t filter = { "state", state };
    pole_request_t request = {
        .command = POLE_CMD_OUTBOX,
        .expected_version = -1,
        .fields = state? &filter: NULL,
        .field_count = state? 1: 0
    };
    pole_reply_t *reply = NULL;
    int rc = s_read (opts, &request, &reply);
    if (rc == 0)
        rc = s_print_json_payload (reply, as_json, s_print_outbox);
    pole_reply_destroy (&reply);
    return rc;
}


//  --------------------------------------------------------------------------
//  watch: the live stream

//  Set by SIGINT and SIGTERM while watch runs: the loop ends and polectl
//  exits 0, as after --count messages.
static volatile sig_atomic_t s_watch_stop = 0;

static void
s_watch_signal (int signum)
{
    (void) signum;
    s_watch_stop = 1;
}

typedef struct {
    const char *pays;           //  as the user typed it, compared forgivingly
    const char *state;          //  exact
    const char *event;          //  exact
    bool as_json;
} s_watch_t;

//  True if the Pays `name` (canonical, from the stream) is the one the
//  user typed, with the forgiving comparison of the daemon: a one-Pays
//  territory list for pole_pays_lookup.

static bool
s_pays_matches (const char *name, const char *typed)
{
    if (!name)
        return false;
    pole_territory_t territory = { name, 0 };
    pole_params_t params;
    pole_params_defaults (&params);
    params.territories = &territory;
    params.territory_count = 1;
    return pole_pays_lookup (&params, typed) != NULL;
}

//  A message of the stream that is skipped: say so on stderr, once per
//  message, and go on

static void
    s_watch_skip (const char *format, ...)
    __attribute__ ((format (printf, 1, 2)));

static void
s_watch_skip (const char *format, ...)
{
    char text [256];
    va_list args;
    va_start (args, format);
    vsnprintf (text, sizeof text, format, args);
    va_end (args);
    fprintf (stderr, "polectl: warning: skipped a malformed message: %s\n",
             s_one_line (text));
}

//  Print one message of the stream if it passes the filters. Returns 1 if
//  it was printed, 0 if not (filtered out or skipped).

static int
s_watch_message (zmsg_t *msg, const s_watch_t *watch)
{
    if (zmsg_size (msg) != 3) {
        s_watch_skip ("%zu frames where 3 were expected", zmsg_size (msg));
        return 0;
    }
    zmsg_first (msg);                   //  the topic: the JSON says it all
    zframe_t *signature = zmsg_next (msg);
    zframe_t *body = zmsg_next (msg);
    if (!zframe_streq (signature, POLE_PROTO_SIGNATURE)) {
        s_watch_skip ("frame 2 is not %s", POLE_PROTO_SIGNATURE);
        return 0;
    }
    const char *data = (const char *) zframe_data (body);
    size_t size = zframe_size (body);
    json_error_t error;
    json_t *event = json_loadb (data, size, 0, &error);
    if (!event) {
        s_watch_skip ("frame 3 is not JSON (column %d: %s)", error.column,
                      error.text);
        return 0;
    }
    if (!json_is_object (event)) {
        s_watch_skip ("frame 3 is not a JSON object");
        json_decref (event);
        return 0;
    }
    const char *pays = json_string_value (json_object_get (event, "pays"));
    const char *to = json_string_value (json_object_get (event, "to"));
    const char *name = json_string_value (json_object_get (event, "event"));
    if ((watch->pays && !s_pays_matches (pays, watch->pays))
    ||  (watch->state && !(to && streq (to, watch->state)))
    ||  (watch->event && !(name && streq (name, watch->event)))) {
        json_decref (event);
        return 0;
    }
    if (watch->as_json) {
        //  As received, unless it spreads over lines: one per line
        if (memchr (data, '\n', size) || memchr (data, '\r', size)) {
            char *compact = json_dumps (event, JSON_COMPACT);
            printf ("%s\n", compact? compact: "{}");
            free (compact);
        }
        else {
            fwrite (data, 1, size, stdout);
            putchar ('\n');
        }
    }
    else {
        //  SEQ  AT  PAYS  DOSSIER  EVENT  FROM -> TO  ACTOR
        static const char *keys [] = {
            "seq", "at", "pays", "dossier", "event", "from", "to", "actor"
        };
        char *cells [8];
        for (int index = 0; index < 8; index++)
            cells [index] = s_one_line (s_cell (event, keys [index]));
        printf ("%s  %s  %s  %s  %s  %s -> %s  %s\n",
                cells [0]? cells [0]: "-", cells [1]? cells [1]: "-",
                cells [2]? cells [2]: "-", cells [3]? cells [3]: "-",
                cells [4]? cells [4]: "-", cells [5]? cells [5]: "-",
                cells [6]? cells [6]: "-", cells [7]? cells [7]: "-");
        for (int index = 0; index < 8; index++)
            free (cells [index]);
    }
    json_decref (event);
    return 1;
}

static int
s_cmd_watch (const s_command_t *self, s_options_t *opts, int argc,
             char *argv [])
{
    static const struct option longopts [] = {
        { "pays",  required_argument, NULL, OPT_PAYS },
        { "state", required_argument, NULL, OPT_STATE },
        { "event", required_argument, NULL, OPT_EVENT },
        { "json",  no_argument,       NULL, OPT_JSON },
        { "count", required_argument, NULL, OPT_COUNT },
        { "help",  no_argument,       NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };
    s_watch_t watch = { NULL, NULL, NULL, false };
    int64_t count = 0;                  //  0: until interrupted
    int c;
    while ((c = s_getopt (argc, argv, ":h", longopts, self->name)) != -1) {
        switch (c) {
            case OPT_PAYS:
                if (watch.pays)
                    return s_usage_error (self->name,
                                          "watch: --pays given twice");
                watch.pays = optarg;
                break;
            case OPT_STATE:
                if (watch.state)
                    return s_usage_error (self->name,
                                          "watch: --state given twice");
                watch.state = optarg;
                break;
            case OPT_EVENT:
                if (watch.event)
                    return s_usage_error (self->name,
                                          "watch: --event given twice");
                watch.event = optarg;
                break;
            case OPT_JSON:
                watch.as_json = true;
                break;
            case OPT_COUNT:
                if (count)
                    return s_usage_error (self->name,
                                          "watch: --count given twice");
                if (s_parse_number (optarg, INT64_MAX, &count) || count == 0)
                    return s_usage_error (self->name, "watch: --count must be "
                                          "a positive number, not '%s'",
                                          optarg);
                break;
            case 'h':
                s_print_command_help (self);
                return POLECTL_EXIT_DONE;
            default:
                return POLECTL_EXIT_USAGE;
        }
    }
    if (optind < argc)
        return s_usage_error (self->name, "watch: unexpected argument '%s'",
                              argv [optind]);
    //  States and events are this build's workflow table: a typo would
    //  silently match nothing, so it is caught here. Pays are the
    //  daemon's configuration; only a name that no Pays could have is.
    if (watch.state && pole_state_from_name (watch.state) <= POLE_S_NONE)
        return s_usage_error (self->name, "watch: unknown state '%s'",
                              watch.state);
    if (watch.event && pole_event_from_name (watch.event) < 0)
        return s_usage_error (self->name, "watch: unknown event '%s'",
                              watch.event);
    if (watch.pays && (s_value_problem (watch.pays)
                   ||  !s_pays_matches (watch.pays, watch.pays)))
        return s_usage_error (self->name, "watch: '%s' cannot be the name of "
                              "a Pays", watch.pays);

    s_zsys_setup ();
    //  A clean end on Ctrl-C or SIGTERM: our handler sets a flag, without
    //  SA_RESTART so that a wait in progress returns at once (EINTR)
    s_watch_stop = 0;
    struct sigaction action;
    memset (&action, 0, sizeof action);
    action.sa_handler = s_watch_signal;
    sigemptyset (&action.sa_mask);
    sigaction (SIGINT, &action, NULL);
    sigaction (SIGTERM, &action, NULL);

    //  Subscribed to everything: a Pays is compared forgivingly here,
    //  which a topic prefix (bytes) could not do
    zsock_t *sub = zsock_new (ZMQ_SUB);
    if (sub) {
        s_secure (opts, sub);
        zsock_set_subscribe (sub, "");
        if (zsock_attach (sub, opts->pub_endpoint, false))
            zsock_destroy (&sub);
    }
    if (!sub) {
        fprintf (stderr, "polectl: cannot connect to %s: %s\n",
                 opts->pub_endpoint, zmq_strerror (zmq_errno ()));
        return POLECTL_EXIT_USAGE;
    }
    zsock_set_linger (sub, 0);
    zpoller_t *poller = zpoller_new (sub, NULL);
    int rc = POLECTL_EXIT_DONE;
    int64_t printed = 0;
    while (!s_watch_stop && (count == 0 || printed < count)) {
        //  A tick, so that a signal landing outside the wait is seen too
        void *which = zpoller_wait (poller, 250);
        if (s_watch_stop)
            break;
        if (!which) {
            if (zpoller_expired (poller) || zmq_errno () == EINTR)
                continue;
            fprintf (stderr, "polectl: cannot wait for the stream: %s\n",
                     zmq_strerror (zmq_errno ()));
            rc = POLECTL_EXIT_ERROR;
            break;
        }
        zmsg_t *msg = zmsg_recv (sub);
        if (!msg)
            continue;
        printed += s_watch_message (msg, &watch);
        zmsg_destroy (&msg);
        //  At once, so that a pipe sees each event as it comes; an output
        //  that has gone is reported by main
        if (fflush (stdout) != 0 || ferror (stdout))
            break;
    }
    zpoller_destroy (&poller);
    zsock_destroy (&sub);
    return rc;
}


static const s_command_t s_commands [] = {
    { "open", "--pays PAYS --holder NAME --holder-type TYPE [--title T]",
      "open a dossier; prints its id",
      "Options:\n"
      "  --pays PAYS         the territory, e.g. 'Pays de Dinan', 'dinan'\n"
      "  --holder NAME       the holder (porteur) of the project\n"
      "  --holder-type TYPE  ess_actor, collectivite or pays\n"
      "  --title T           a title for the project (optional)\n"
      "  -h, --help          print this help\n"
      "\nThe actor (-a) is recorded as the one who opened the dossier. A\n"
      "warning from the daemon goes to stderr as 'polectl: warning: ...'.\n",
      s_cmd_open },
    { "send", "ID EVENT [key=value ...] [--expect-version N]",
      "apply an event to a dossier; prints its new state",
      "Options:\n"
      "  --expect-version N  apply only if the dossier's version is N, else\n"
      "                      fail with CONFLICT (exit 4)\n"
      "  -h, --help          print this help\n"
      "\nAmounts are whole euros (20000). A warning from the daemon goes to\n"
      "stderr as 'polectl: warning: ...'.\n",
      s_cmd_send },
    { "show", "ID [--json]",
      "print one dossier, its funding plan, obligations and history",
      "Options:\n"
      "  --json      the daemon's JSON object as received (SHOW only)\n"
      "  -h, --help  print this help\n"
      "\nPrints the facts, one 'key: value' a line, then\n"
      "  Funding plan:  one line per funded year opened,\n"
      "    year N  opened YYYY-MM-DD  P posts  EUROS €  report filed|due\n"
      "  Obligations:   one line per open timer (as in agenda),\n"
      "    KIND [year N]  due YYYY-MM-DD  armed|waiting|overdue\n"
      "  History:       the lines of 'polectl history ID'\n"
      "It asks SHOW, then HISTORY (with a request id of its own), and prints\n"
      "nothing until both have answered.\n",
      s_cmd_show },
    { "list", "[--state S] [--pays P] [--overdue] [--json]",
      "list the dossiers, by id: ID STATE PAYS HOLDER",
      "Options:\n"
      "  --state S   only the dossiers in state S\n"
      "  --pays P    only the dossiers of Pays P\n"
      "  --overdue   only the dossiers with an overdue obligation (a study\n"
      "              or an annual report past its due date)\n"
      "  --json      the daemon's JSON array as received\n"
      "  -h, --help  print this help\n"
      "\nThe filters combine: --overdue --pays dinan lists the dossier of\n"
      "Dinan if it is overdue.\n",
      s_cmd_list },
    { "history", "ID [--json]",
      "print the events of a dossier, oldest first",
      "Options:\n"
      "  --json      the daemon's JSON array as received\n"
      "  -h, --help  print this help\n"
      "\nOne line per event: SEQ AT ACTOR EVENT FROM -> TO key=value ...\n",
      s_cmd_history },
    { "report", "[--as-of DATE] [--json | --csv | --markdown] [--svg FILE]",
      "print where the programme stands (now, or as of a day)",
      "Options:\n"
      "  --as-of DATE  the programme as it stood at the end of DATE\n"
      "                (YYYY-MM-DD, 23:59:59 UTC), from the event log\n"
      "  --json        the daemon's JSON object as received (with the figures\n"
      "                by département and by Pays)\n"
      "  --csv         one table, RFC 4180 (CRLF), header section,key,value;\n"
      "                sections summary, state, departement, departement_live,\n"
      "                departement_running, pays, pays_without_dossier,\n"
      "                study_grants, post_funding, cofunding_funder,\n"
      "                cofunding_year, total\n"
      "  --markdown    a '# Rapport / Report' document with Markdown tables\n"
      "  --svg FILE    also write a chart to FILE (SVG: dossiers per state,\n"
      "                post funding per calendar year), then print the report\n"
      "                as asked; exit 6 if FILE cannot be written\n"
      "  -h, --help    print this help\n"
      "\nWithout a format: the headline figures, the states that hold\n"
      "dossiers, the départements, the Pays without a dossier, then the\n"
      "money: study grants and post funding by year, co-funding by funder\n"
      "and by year, and the total. See docs/REPORT.md.\n",
      s_cmd_report },
    { "agenda", "[--days N] [--json]",
      "print what falls due soon, and what is overdue",
      "Options:\n"
      "  --days N    the horizon, in days from now: 0 to 3650 (default 90;\n"
      "              0: only what is due or overdue now)\n"
      "  --json      the daemon's JSON array as received\n"
      "  -h, --help  print this help\n"
      "\nOne line per obligation of the programme calendar, by due date:\n"
      "  DUE  DOSSIER  PAYS  KIND  YEAR  STATE\n"
      "DUE is the day (UTC); KIND is study_reminder, study_deadline,\n"
      "year_end, report_reminder or report_due; YEAR is the funding year of\n"
      "a yearly obligation (- for the study's); STATE is armed, waiting or\n"
      "overdue. See docs/CALENDAR.md.\n",
      s_cmd_agenda },
    { "clock", "[set DATE | advance DAYS]",
      "print the daemon's time; move the simulated clock",
      "Options:\n"
      "  -h, --help  print this help\n"
      "\n'polectl clock' prints the daemon's time and its clock:\n"
      "  YYYY-MM-DDTHH:MM:SSZ  simulated|real\n"
      "'clock set DATE' moves the simulated clock to DATE (YYYY-MM-DD, that\n"
      "day at 00:00 UTC, or a time YYYY-MM-DDTHH:MM:SSZ); 'clock advance\n"
      "DAYS' moves it forward by DAYS days (1 to 36500). Both print the new\n"
      "time in the same form. The clock never moves back, and only the\n"
      "simulated clock moves: otherwise the daemon refuses with rule clock\n"
      "(exit 1). 'advance' reads the time, then sets it to that time plus\n"
      "DAYS, so that a retry cannot advance twice. The actor (-a) is who\n"
      "asks.\n",
      s_cmd_clock },
    { "graph", "[ID | --markdown]",
      "print the workflow as Graphviz DOT (or Markdown); ID: a dossier's path",
      "Options:\n"
      "  --markdown  the Markdown tables of docs/WORKFLOW.md instead\n"
      "  -h, --help  print this help\n"
      "\nWithout ID, needs no daemon: the workflow table of this build. With\n"
      "ID, asks the dossier's HISTORY and prints the same digraph with its\n"
      "path highlighted: the states it visited filled (the one it is in\n"
      "darker), each transition it took bold and numbered in order\n"
      "('3: grant_study'), the rest grey; a reopen gets a dashed edge of\n"
      "its own. Render with Graphviz: polectl graph 12 | dot -Tsvg > 12.svg\n",
      s_cmd_graph },
    { "ping", "", "print the daemon's version",
      "Options:\n"
      "  -h, --help  print this help\n",
      s_cmd_ping },
    { "watch", "[--pays P] [--state S] [--event E] [--json] [--count N]",
      "print the events as they are committed (live stream)",
      "Options:\n"
      "  --pays P    only the events of Pays P (forgiving: 'dinan' is Dinan)\n"
      "  --state S   only the events that reach state S\n"
      "  --event E   only the events E\n"
      "  --json      each event as the daemon's JSON object, one per line\n"
      "  --count N   exit after N events printed\n"
      "  -h, --help  print this help\n"
      "\nOne line per event: SEQ  AT  PAYS  DOSSIER  EVENT  FROM -> TO  ACTOR\n"
      "(FROM is - for open). Connects to the daemon's live stream, given by\n"
      "--pub-endpoint before the command (default $POLE_PUB_ENDPOINT, else\n"
      POLECTL_DEFAULT_PUB_ENDPOINT "), and runs until interrupted (Ctrl-C,\n"
      "SIGTERM: exit 0). The stream may lose events (a slow reader, a\n"
      "restart): 'polectl history ID' has them all. A malformed message is\n"
      "skipped with a warning on stderr.\n",
      s_cmd_watch },
    { "outbox", "[--state S] [--json] | retry ID | retry --dead",
      "list the notifications; 'retry' queues them again",
      "Options:\n"
      "  --state S   only the notifications in state S: pending, delivered\n"
      "              or dead\n"
      "  --json      the daemon's JSON array as received\n"
      "  -h, --help  print this help\n"
      "\nOne line per notification:\n"
      "  ID  STATE  ATTEMPTS  COORDINATOR  CHANNEL  DOSSIER  EVENT  LAST_ERROR\n"
      "\n'outbox retry ID' queues the notification ID (SEQ-K, e.g. 12-0) again;\n"
      "'outbox retry --dead' queues every dead one again: state pending,\n"
      "attempts 0, due now. Prints how many were queued (0 for an ID already\n"
      "pending). An unknown ID is NOT_FOUND (exit 3). The actor (-a) is who\n"
      "asks.\n",
      s_cmd_outbox },
    { "status", "[--json]",
      "print the daemon's uptime, counts, outbox and database size",
      "Options:\n"
      "  --json      the daemon's JSON object as received\n"
      "  -h, --help  print this help\n"
      "\nOne line per figure: version, uptime, the clock, whether\n"
      "authentication is on, dossiers (all and live), events, notifications\n"
      "pending, dead and delivered, the database file and its size with its\n"
      "WAL, the head of the event log's hash chain (its last seq and hash:\n"
      "write it down to anchor a later verify) and the requests served.\n"
      "Roles cres, region and admin. See docs/ADMIN.md.\n",
      s_cmd_status },
    { "verify", "[--json]",
      "check the event log's hash chain: exit 1 if a row was altered",
      "Options:\n"
      "  --json      the daemon's JSON object as received\n"
      "  -h, --help  print this help\n"
      "\nThe daemon recomputes the SHA-256 chain of the event log from its\n"
      "first row, on a connection of its own while it keeps serving, and\n"
      "says whether it is intact, or names the first row altered, inserted\n"
      "or deleted behind its back. Exit 0 intact, 1 not intact. Waits up to\n"
      "600 s unless -t is given. Roles region and admin.\n",
      s_cmd_verify },
    { "backup", "FILE [--json]",
      "make an online, consistent copy of the database at FILE",
      "Options:\n"
      "  --json      the daemon's JSON object as received\n"
      "  -h, --help  print this help\n"
      "\nThe daemon copies its database with SQLite's backup API while it\n"
      "keeps serving, into FILE.tmp, then renames it FILE: a file named FILE\n"
      "is always a whole copy. FILE is written BY THE DAEMON, on its machine:\n"
      "a relative path is made absolute from polectl's directory; under\n"
      "systemd the daemon may write only in /var/backups/pole. An existing\n"
      "FILE is refused. Prints the path, size, events and time taken. Waits\n"
      "up to 600 s unless -t is given. Role admin.\n",
      s_cmd_backup },
    { "keygen", "FILE",
      "write a new CURVE key pair: FILE (public) and FILE_secret",
      "Options:\n"
      "  -h, --help  print this help\n"
      "\nNeeds no daemon. Writes a new key pair as czmq certificates: FILE\n"
      "with the public key (mode 0644) and FILE_secret with the secret key\n"
      "(mode 0600), never overwriting either; prints the public key. Put\n"
      "it in the daemon's keys list with a name and a role; use the pair\n"
      "with --cert FILE. The daemon's own pair is made the same way\n"
      "(curve.cert). See docs/ADMIN.md.\n",
      s_cmd_keygen },
    { NULL, NULL, NULL, NULL, NULL }
};

static const s_command_t *
s_command_lookup (const char *name)
{
    for (const s_command_t *command = s_commands; command->name; command++)
        if (streq (command->name, name))
            return command;
    return NULL;
}


//  --------------------------------------------------------------------------
//  main: global options, then the command

//  The first non-empty of the candidates, or NULL

static char *
s_first_set (char *first, char *second)
{
    if (first && *first)
        return first;
    if (second && *second)
        return second;
    return NULL;
}

//  --cert and --server-key (or POLE_CERT, POLE_SERVER_KEY): load our key
//  pair and the daemon's public key. Returns -1 to go on, else the exit
//  status once the problem is told.

static int
s_load_keys (s_options_t *opts, char *cert_path, char *server_key,
             const s_command_t *command)
{
    if (streq (command->name, "keygen") || streq (command->name, "graph"))
        return -1;              //  no daemon, no keys needed
    if (!cert_path)
        cert_path = s_first_set (getenv ("POLE_CERT"), NULL);
    if (!server_key)
        server_key = s_first_set (getenv ("POLE_SERVER_KEY"), NULL);
    if (!cert_path && !server_key)
        return -1;
    if (!cert_path || !server_key)
        return s_usage_error (NULL, "CURVE needs both our key pair (--cert "
                              "or POLE_CERT) and the daemon's public key "
                              "(--server-key or POLE_SERVER_KEY)");
    s_zsys_setup ();
    char *secret = zsys_sprintf ("%s_secret", cert_path);
    bool readable = secret && access (cert_path, R_OK) == 0
                 && access (secret, R_OK) == 0;
    zstr_free (&secret);
    opts->cert = readable? zcert_load (cert_path): NULL;
    static const byte zero [32] = { 0 };
    if (!opts->cert || memcmp (zcert_secret_key (opts->cert), zero, 32) == 0)
        return s_usage_error (NULL, "cannot load the key pair %s and "
                              "%s_secret (make one with 'polectl keygen "
                              "FILE')", cert_path, cert_path);
    byte decoded [32];
    if (strlen (server_key) == 40 && zmq_z85_decode (decoded, server_key))
        snprintf (opts->server_key, sizeof opts->server_key, "%s",
                  server_key);
    else {
        zcert_t *server = access (server_key, R_OK) == 0
                        ? zcert_load (server_key): NULL;
        if (!server)
            return s_usage_error (NULL, "--server-key must be the daemon's "
                                  "public key (40 Z85 characters) or its "
                                  "public key file, not '%s'", server_key);
        snprintf (opts->server_key, sizeof opts->server_key, "%s",
                  zcert_public_txt (server));
        zcert_destroy (&server);
    }
    return -1;
}

int
main (int argc, char *argv [])
{
    static char default_endpoint [] = POLECTL_DEFAULT_ENDPOINT;
    static char default_actor [] = "polectl";
    s_options_t opts = {
        .timeout = POLECTL_DEFAULT_TIMEOUT,
        .retries = POLECTL_DEFAULT_RETRIES
    };
    static char default_pub_endpoint [] = POLECTL_DEFAULT_PUB_ENDPOINT;
    char *endpoint = NULL;
    char *pub_endpoint = NULL;
    char *actor = NULL;
    char *cert_path = NULL;
    char *server_key = NULL;

    opterr = 0;
    int c;
    while ((c = s_getopt (argc, argv, s_global_optstring, s_global_options,
                          NULL)) != -1) {
        switch (c) {
            case 'e':
                endpoint = optarg;
                break;
            case 't': {
                char *end = NULL;
                errno = 0;
                double timeout = strtod (optarg, &end);
                //  Only plain decimals: strtod would also take "inf",
                //  "nan" and hexadecimal
                if (errno || end == optarg || *end
                ||  strspn (optarg, "0123456789.") != strlen (optarg)
                ||  !(timeout > 0) || timeout > POLECTL_MAX_TIMEOUT)
                    return s_usage_error (NULL, "--timeout must be a number of "
                                          "seconds above 0 (at most %g), not "
                                          "'%s'", POLECTL_MAX_TIMEOUT, optarg);
                opts.timeout = timeout;
                opts.timeout_given = true;
                break;
            }
            case 'r': {
                int64_t retries;
                if (s_parse_number (optarg, POLECTL_MAX_RETRIES, &retries))
                    return s_usage_error (NULL, "--retries must be a number "
                                          "from 0 to %d, not '%s'",
                                          POLECTL_MAX_RETRIES, optarg);
                opts.retries = (int) retries;
                break;
            }
            case 'a':
                actor = optarg;
                break;
            case 'k':
                cert_path = optarg;
                break;
            case 's':
                server_key = optarg;
                break;
            case OPT_PUB_ENDPOINT:
                pub_endpoint = optarg;
                break;
            case OPT_REQUEST_ID:
                if (!s_request_id_valid (optarg))
                    return s_usage_error (NULL, "--request-id must be 1 to 64 "
                                          "printable ASCII characters without "
                                          "spaces, not '%s'", optarg);
                opts.request_id = optarg;
                break;
            case 'h':
                s_print_usage ();
                return POLECTL_EXIT_DONE;
            case 'V':
                printf ("polectl %s (%s)\n", POLE_VERSION,
                        POLE_PROTO_SIGNATURE);
                return POLECTL_EXIT_DONE;
            default:
                return POLECTL_EXIT_USAGE;
        }
    }
    if (optind >= argc)
        return s_usage_error (NULL, "no command given");
    const s_command_t *command = s_command_lookup (argv [optind]);
    if (!command)
        return s_usage_error (NULL, "unknown command '%s'", argv [optind]);

    //  On the server, the administrators' socket is the natural default
    static char local_endpoint [] = POLECTL_LOCAL_ENDPOINT;
    opts.endpoint = endpoint? endpoint:
                    s_first_set (getenv ("POLE_ENDPOINT"),
                                 access (POLECTL_LOCAL_SOCKET, F_OK) == 0
                                 ? local_endpoint: default_endpoint);
    if (!*opts.endpoint)
        return s_usage_error (NULL, "the endpoint is empty");
    opts.pub_endpoint = pub_endpoint? pub_endpoint:
                        s_first_set (getenv ("POLE_PUB_ENDPOINT"),
                                     default_pub_endpoint);
    if (!*opts.pub_endpoint)
        return s_usage_error (NULL, "the PUB endpoint is empty");
    int key_rc = s_load_keys (&opts, cert_path, server_key, command);
    if (key_rc >= 0)
        return key_rc;
    //  -a "" is a mistake; an empty variable in the environment is not
    opts.actor = actor? actor:
                 s_first_set (getenv ("POLE_ACTOR"), getenv ("USER"));
    if (!opts.actor)
        opts.actor = default_actor;
    if (!opts.request_id) {
        //  One id for the whole run: every retry must carry it
        zuuid_t *uuid = zuuid_new ();
        if (!uuid) {
            fprintf (stderr, "polectl: cannot make a request id\n");
            return POLECTL_EXIT_ERROR;
        }
        snprintf (opts.request_id_buf, sizeof opts.request_id_buf, "%s",
                  zuuid_str_canonical (uuid));
        zuuid_destroy (&uuid);
        opts.request_id = opts.request_id_buf;
    }

    //  The command parses its own options: start getopt afresh (0 makes
    //  glibc forget the '+' of the global parse), and let it permute, so
    //  that `send 3 note text=x --expect-version 2` works.
    int first = optind;
    optind = 0;
    int rc = command->run (command, &opts, argc - first, argv + first);

    //  A result that did not reach stdout (a full disk, a closed pipe) is
    //  not a success
    if (fflush (stdout) != 0 || ferror (stdout)) {
        fprintf (stderr, "polectl: cannot write the output: %s\n",
                 strerror (errno));
        if (rc == POLECTL_EXIT_DONE)
            rc = POLECTL_EXIT_ERROR;
    }
    zcert_destroy (&opts.cert);
    return rc;
}
