/*  =========================================================================
    fuzz_handler - libFuzzer target for poled's request handler

    Each input (fuzz_input.h: byte 0 separates frames, byte 1 messages) is
    a batch of messages as poled's ROUTER delivers them: the harness puts
    an identity frame ("peer-N") in front of each message, the input gives
    the rest (normally an empty delimiter frame, then the body). The batch
    goes to pole_server_handle_batch, in chunks of daemon.batch_max, as the
    server's loop would. Then, besides ASan/UBSan errors, these abort:

    - a request not answered, or answered twice (one reply per request,
      in arrival order, to the identity that sent it);
    - a reply whose envelope is not [identity][empty], or whose body does
      not decode with pole_reply_decode (the client could not read it);
    - a reply to a request that decodes, not carrying its request id.

    Setup (LLVMFuzzerInitialize): the shipped config/poled.cfg, found from
    $POLE_SOURCE_DIR, else the source tree this was built from, else
    relative to the binary (../../../config/poled.cfg); two coordinators
    (command channel; nothing is delivered: no worker runs) so that the
    outbox fills; no live stream; the simulated clock, so that CLOCK set
    and advance work. The store is a file in a fresh directory under
    $POLE_FUZZ_TMPDIR, else /dev/shm (fsync is free there), else $TMPDIR or
    /tmp. The store and the server are made anew every
    $POLE_FUZZ_RESET_EVERY inputs (default 5000) so that the database stays
    small and a dossier id like 1 keeps meaning something; set it to 1 to
    reproduce a crash from one input alone. $POLE_FUZZ_VERBOSE=1 keeps
    poled's log (silenced by default: it is most of the time spent);
    $POLE_FUZZ_PRINT=1 prints every reply.
    =========================================================================
*/
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "fuzz_input.h"
#include "pole/config.h"
#include "pole/proto.h"
#include "server.h"
#include "store.h"

#define CHECK(cond)                                                         \
    do {                                                                    \
        if (!(cond)) {                                                      \
            fprintf (stderr, "fuzz_handler: %s:%d: check failed: %s\n",     \
                     __FILE__, __LINE__, #cond);                            \
            abort ();                                                       \
        }                                                                   \
    } while (0)

#define MAX_FRAME 65536          /* libzmq drops a larger frame (ZMQ_MAXMSGSIZE) */

static struct {
    char dir[PATH_MAX];
    char db[PATH_MAX + 16];
    pole_config_t *config;
    pole_store_t *store;
    pole_server_t *server;
    long runs;
    long reset_every;
    int generation;
    bool print;
} s_fuzz;

static void
s_die (const char *what, const char *error)
{
    fprintf (stderr, "fuzz_handler: %s: %s\n", what, error);
    exit (1);
}

static void
s_remove_db (void)
{
    const char *suffixes[] = {"", "-wal", "-shm", "-journal"};
    char path[PATH_MAX + 32];
    for (size_t index = 0; index < 4; index++) {
        snprintf (path, sizeof path, "%s%s", s_fuzz.db, suffixes[index]);
        unlink (path);
    }
}

static void
s_close (void)
{
    pole_server_destroy (&s_fuzz.server);
    pole_store_destroy (&s_fuzz.store);
    s_remove_db ();
}

//  A fresh store and server: an empty database, the clock back to now
static void
s_open (void)
{
    s_close ();
    char error[512];
    pole_clock_configure (true, 0);
    s_fuzz.store = pole_store_new (s_fuzz.db, error, sizeof error);
    if (!s_fuzz.store)
        s_die ("store", error);
    if (pole_store_set_territories (s_fuzz.store,
                                    pole_config_params (s_fuzz.config)))
        s_die ("store", "cannot set the territories");
    char endpoint[96];
    snprintf (endpoint, sizeof endpoint, "inproc://fuzz-handler-%d-%d",
              (int) getpid (), s_fuzz.generation++);
    s_fuzz.server = pole_server_new (s_fuzz.config, s_fuzz.store, endpoint,
                                     false);
    if (!s_fuzz.server)
        s_die ("server", endpoint);
}

static void
s_cleanup (void)
{
    s_close ();
    pole_config_destroy (&s_fuzz.config);
    char path[PATH_MAX + 32];
    snprintf (path, sizeof path, "%s/poled.cfg", s_fuzz.dir);
    unlink (path);
    rmdir (s_fuzz.dir);
}

//  config/poled.cfg: $POLE_SOURCE_DIR, the source tree of the build, or
//  relative to the binary (build/tests/fuzz/ -> the source root)
static void
s_find_config (const char *argv0, char *path, size_t size)
{
    const char *source = getenv ("POLE_SOURCE_DIR");
    if (source && *source) {
        snprintf (path, size, "%s/config/poled.cfg", source);
        if (access (path, R_OK) == 0)
            return;
    }
#ifdef POLE_FUZZ_SOURCE_DIR
    snprintf (path, size, "%s/config/poled.cfg", POLE_FUZZ_SOURCE_DIR);
    if (access (path, R_OK) == 0)
        return;
#endif
    char binary[PATH_MAX];
    if (realpath (argv0 ? argv0 : ".", binary)) {
        snprintf (path, size, "%s/../../../config/poled.cfg",
                  dirname (binary));
        if (access (path, R_OK) == 0)
            return;
    }
    s_die ("config/poled.cfg not found",
           "set POLE_SOURCE_DIR to the source tree");
}

int LLVMFuzzerInitialize (int *argc, char ***argv);

int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
    //  libFuzzer handles SIGINT; poled's handler must not take it over
    zsys_handler_set (NULL);
    zsys_init ();
    const char *verbose = getenv ("POLE_FUZZ_VERBOSE");
    if (!verbose || strcmp (verbose, "1") != 0)
        zsys_set_logstream (NULL);
    s_fuzz.print = getenv ("POLE_FUZZ_PRINT") != NULL;
    const char *every = getenv ("POLE_FUZZ_RESET_EVERY");
    s_fuzz.reset_every = every ? atol (every) : 5000;
    if (s_fuzz.reset_every < 1)
        s_fuzz.reset_every = 1;

    const char *base = getenv ("POLE_FUZZ_TMPDIR");
    if (!base || !*base)
        base = access ("/dev/shm", W_OK) == 0 ? "/dev/shm" : NULL;
    if (!base)
        base = getenv ("TMPDIR");
    if (!base || !*base)
        base = "/tmp";
    snprintf (s_fuzz.dir, sizeof s_fuzz.dir, "%s/pole-fuzz-XXXXXX", base);
    if (!mkdtemp (s_fuzz.dir))
        s_die ("mkdtemp", s_fuzz.dir);
    snprintf (s_fuzz.db, sizeof s_fuzz.db, "%s/pole.db", s_fuzz.dir);

    char shipped[PATH_MAX], cfg[PATH_MAX + 16], error[512];
    s_find_config (argc && *argc > 0 ? (*argv)[0] : NULL, shipped,
                   sizeof shipped);
    snprintf (cfg, sizeof cfg, "%s/poled.cfg", s_fuzz.dir);
    FILE *file = fopen (cfg, "w");
    if (!file)
        s_die ("cannot write", cfg);
    fprintf (file,
             "@include \"%s\"\n"
             "coordinators = (\n"
             "  { name = \"CRES\"; channel = \"command\";"
             " address = \"/bin/true\"; },\n"
             "  { name = \"CD35\"; channel = \"command\";"
             " address = \"/bin/true\"; departements = [ 35 ]; }\n"
             ");\n",
             shipped);
    fclose (file);
    s_fuzz.config = pole_config_load (cfg, error, sizeof error);
    if (!s_fuzz.config)
        s_die ("config", error);
    pole_config_set_pub_endpoint (s_fuzz.config, "");
    pole_config_set_local_endpoint (s_fuzz.config, "");
    s_open ();
    atexit (s_cleanup);
    return 0;
}

//  One request of the batch, as the harness sent it
typedef struct {
    char identity[32];
    bool decodes;              //  its body decodes as a request...
    char *request_id;          //  ...with this id, or the one read (or NULL)
} s_sent_t;

typedef struct {
    zlist_t *requests;
    s_sent_t *sent;
    size_t count;
    size_t capacity;
} s_batch_t;

static void
s_add (zmsg_t *msg, void *arg)
{
    s_batch_t *batch = (s_batch_t *) arg;
    //  libzmq would drop a message with a frame above ZMQ_MAXMSGSIZE
    for (zframe_t *frame = zmsg_first (msg); frame; frame = zmsg_next (msg))
        if (zframe_size (frame) > MAX_FRAME) {
            zmsg_destroy (&msg);
            return;
        }
    //  VERIFY and BACKUP are answered later, by the maintenance worker,
    //  not within the batch; and a fuzzed BACKUP would write files at
    //  fuzzed paths. The integration tests drive them (test_audit.py).
    zframe_t *command = zmsg_first (msg);
    if (command && zframe_size (command) == 0)
        command = zmsg_next (msg);
    command = command ? zmsg_next (msg) : NULL;
    if (command && (zframe_streq (command, "VERIFY")
                    || zframe_streq (command, "BACKUP"))) {
        zmsg_destroy (&msg);
        return;
    }
    if (batch->count == batch->capacity) {
        batch->capacity = batch->capacity ? 2 * batch->capacity : 16;
        batch->sent = (s_sent_t *) realloc (
            batch->sent, batch->capacity * sizeof (s_sent_t));
        CHECK (batch->sent);
    }
    s_sent_t *sent = &batch->sent[batch->count];
    memset (sent, 0, sizeof *sent);
    snprintf (sent->identity, sizeof sent->identity, "peer-%zu",
              batch->count);
    batch->count++;

    //  What the server should answer: decode the body ourselves, on a copy
    //  without the delimiter (if there is one)
    zframe_t *first = zmsg_first (msg);
    if (first && zframe_size (first) == 0) {
        zmsg_t *body = zmsg_dup (msg);
        zframe_t *delimiter = zmsg_pop (body);
        zframe_destroy (&delimiter);
        pole_request_t *req = NULL;
        const char *code = NULL;
        char reason[256];
        if (pole_request_decode (body, &req, &code, reason, sizeof reason,
                                 &sent->request_id)
            == 0) {
            sent->decodes = true;
            sent->request_id = strdup (req->request_id);
            pole_request_destroy (&req);
        }
        zmsg_destroy (&body);
    }
    zmsg_pushstr (msg, sent->identity);
    zlist_append (batch->requests, msg);
}

static void
s_check_reply (zmsg_t *reply, const s_sent_t *sent)
{
    CHECK (zmsg_size (reply) >= 2);
    zframe_t *identity = zmsg_pop (reply);
    zframe_t *delimiter = zmsg_pop (reply);
    CHECK (zframe_streq (identity, sent->identity));
    CHECK (zframe_size (delimiter) == 0);
    zframe_destroy (&identity);
    zframe_destroy (&delimiter);
    pole_reply_t *decoded = NULL;
    char reason[256];
    if (pole_reply_decode (reply, &decoded, reason, sizeof reason) != 0) {
        fprintf (stderr, "fuzz_handler: malformed reply to %s: %s\n",
                 sent->identity, reason);
        pole_proto_print (reply, "fuzz_handler: reply ");
        abort ();
    }
    if (s_fuzz.print) {
        char prefix[48];
        snprintf (prefix, sizeof prefix, "%s: ", sent->identity);
        pole_proto_print (reply, prefix);
    }
    if (sent->request_id) {
        if (strcmp (decoded->request_id, sent->request_id) != 0) {
            fprintf (stderr, "fuzz_handler: reply to %s carries request id "
                     "\"%s\", not \"%s\"\n", sent->identity,
                     decoded->request_id, sent->request_id);
            abort ();
        }
    }
    pole_reply_destroy (&decoded);
}

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    if (!s_fuzz.server)
        LLVMFuzzerInitialize (NULL, NULL);
    if (s_fuzz.runs > 0 && s_fuzz.runs % s_fuzz.reset_every == 0)
        s_open ();
    s_fuzz.runs++;

    s_batch_t batch = {zlist_new (), NULL, 0, 0};
    fuzz_split (data, size, s_add, &batch);
    size_t batch_max = (size_t) pole_config_batch_max (s_fuzz.config);
    size_t done = 0;
    while (done < batch.count) {
        //  What the loop drains at once: up to batch_max requests
        zlist_t *chunk = zlist_new ();
        while (zlist_size (chunk) < batch_max && zlist_size (batch.requests))
            zlist_append (chunk, zlist_pop (batch.requests));
        size_t asked = zlist_size (chunk);
        zlist_t *replies = zlist_new ();
        pole_server_handle_batch (s_fuzz.server, chunk, replies);
        CHECK (zlist_size (chunk) == 0);
        if (zlist_size (replies) != asked) {
            fprintf (stderr, "fuzz_handler: %zu requests, %zu replies\n",
                     asked, zlist_size (replies));
            abort ();
        }
        zmsg_t *reply;
        while ((reply = (zmsg_t *) zlist_pop (replies))) {
            s_check_reply (reply, &batch.sent[done++]);
            zmsg_destroy (&reply);
        }
        zlist_destroy (&replies);
        zlist_destroy (&chunk);
    }
    for (size_t index = 0; index < batch.count; index++)
        free (batch.sent[index].request_id);
    free (batch.sent);
    zlist_destroy (&batch.requests);
    return 0;
}
