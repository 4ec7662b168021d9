/*  =========================================================================
    bench_load - the load generator of bench_throughput.sh

    usage:
      bench_load pole -e ENDPOINT [options]     N clients against poled
      bench_load echo -e ENDPOINT [options]     the same against an echo
      bench_load echo-server -e ENDPOINT        a bare ROUTER that echoes

    options:
      -c N        DEALER clients (1)
      -d SECONDS  measured time (3)
      -u SECONDS  warm-up before it, not counted (0.5)
      -w WINDOW   requests in flight per client (1: a client sends its next
                  event only once the previous one is acknowledged)
      -r RATE     total events per second, paced (open loop); 0 = as fast as
                  the acknowledgements come back (closed loop) (0)
      -s BYTES    length of the note's text (100)
      -m MODE     note: every event is a `note`, which moves nothing (the
                  default); cycle: each client's dossier is taken to
                  study_requested once, then every event changes its state,
                  decline_study and reopen in turn (actor `region`), so that
                  each fires the report's tally triggers (schema 7); window 1
                  only (the next event depends on the last one applied)
      -P PID      the server's pid: its CPU time over the measured window is
                  printed beside ours

    Each client is a DEALER socket of its own (its own connection); one
    thread drives them all with zmq_poll over the N sockets, so that the
    generator stays cheap beside the daemon on a small machine. In `pole`
    mode each client first OPENs a dossier of its own (through the codec of
    libpole), then sends EVENT note text=... on it with no expected version;
    an event counts when its OK reply comes back, and poled sends that reply
    only after the COMMIT that holds it. In `echo` mode the frames are the
    same, and the echo server sends them back as they came.

    The hot path writes the frames with zmq_send on the czmq sockets: at
    tens of thousands of messages a second a zmsg per message would cost
    the generator CPU that the daemon needs. The frames are checked once
    against pole_request_encode at start.

    Latency is from the send of a request to its reply (p50, p99, p99.9,
    max). In paced mode the sends do not wait for replies (up to WINDOW in
    flight per client), and the p99 from the moment each request was due
    (its slot in the schedule) is printed too, so that a generator that
    fell behind would show.

    Output: one line of key=value pairs, for the driver script. A benchmark:
    it prints figures, it asserts nothing.
    =========================================================================
*/

#include "pole/proto.h"

#include <czmq.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#define MAX_CLIENTS 1024
#define MAX_WINDOW  1024

typedef struct {
    zsock_t *sock;
    void *handle;              //  the libzmq socket under the zsock
    int64_t dossier;
    char dossier_text[24];
    uint64_t seq;              //  next request number
    int inflight;
    int64_t due[MAX_WINDOW];   //  ns, by seq % window: when it was due
    int64_t sent[MAX_WINDOW];  //  ... and when it was sent
} client_t;

#include "bench_util.h"

static double
s_cpu_self (void)
{
    struct rusage ru;
    getrusage (RUSAGE_SELF, &ru);
    return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec
           + ru.ru_stime.tv_usec / 1e6;
}

//  CPU seconds of another process (user + system), -1 if unknown
static double
s_cpu_of (int pid)
{
    if (pid <= 0)
        return -1;
    char path[64], buf[1024];
    snprintf (path, sizeof path, "/proc/%d/stat", pid);
    FILE *f = fopen (path, "r");
    if (!f)
        return -1;
    size_t n = fread (buf, 1, sizeof buf - 1, f);
    fclose (f);
    buf[n] = 0;
    char *p = strrchr (buf, ')');
    if (!p)
        return -1;
    unsigned long utime = 0, stime = 0;
    //  after ") ": state(3) ... utime(14) stime(15)
    if (sscanf (p + 2,
                "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu",
                &utime, &stime)
        != 2)
        return -1;
    return (double) (utime + stime) / sysconf (_SC_CLK_TCK);
}

static double
s_pct_us (int64_t *sorted, size_t n, double p)
{
    if (n == 0)
        return 0;
    size_t k = (size_t) (p * (double) n + 0.999999);
    if (k < 1)
        k = 1;
    if (k > n)
        k = n;
    return sorted[k - 1] / 1000.0;
}

//  --------------------------------------------------------------------------
//  The echo server: a ROUTER that sends every message back as it came.

static int
s_echo_server (const char *endpoint)
{
    zsock_t *router = zsock_new (ZMQ_ROUTER);
    //  The options of poled's ROUTER (PROTOCOL.md section 2)
    zsock_set_router_mandatory (router, 1);
    zsock_set_linger (router, 0);
    zsock_set_sndtimeo (router, 0);
    zsock_set_rcvhwm (router, 1000);
    zsock_set_sndhwm (router, 100);
    zsock_set_maxmsgsize (router, 65536);
    if (zsock_attach (router, endpoint, true)) {
        fprintf (stderr, "bench_load: cannot bind %s\n", endpoint);
        return 1;
    }
    void *handle = zsock_resolve (router);
    uint64_t echoed = 0;
    while (!zsys_interrupted) {
        zmq_pollitem_t item = {handle, 0, ZMQ_POLLIN, 0};
        if (zmq_poll (&item, 1, 250) <= 0)
            continue;
        //  Drain what is there, each message sent back frame by frame
        while (!zsys_interrupted) {
            zmq_msg_t part;
            zmq_msg_init (&part);
            if (zmq_msg_recv (&part, handle, ZMQ_DONTWAIT) < 0) {
                zmq_msg_close (&part);
                break;
            }
            int more = zmq_msg_more (&part);
            zmq_msg_send (&part, handle, more ? ZMQ_SNDMORE : 0);
            zmq_msg_close (&part);
            while (more) {
                zmq_msg_init (&part);
                zmq_msg_recv (&part, handle, 0);
                more = zmq_msg_more (&part);
                zmq_msg_send (&part, handle, more ? ZMQ_SNDMORE : 0);
                zmq_msg_close (&part);
            }
            echoed++;
        }
    }
    zsock_destroy (&router);
    fprintf (stderr, "bench_load: echo server echoed %" PRIu64 " messages\n",
             echoed);
    return 0;
}

//  --------------------------------------------------------------------------
//  The clients

static char s_prefix[32];      //  unique per run: request ids never repeat
static char s_text[16384 + 8]; //  "text=..."
static char s_reason[16384 + 16]; //  "reason=...", the same text
static bool s_cycle;            //  -m cycle
static bool s_echo;

static void
s_request_id (char *buf, size_t size, int client, uint64_t seq)
{
    snprintf (buf, size, "%s.%d.%" PRIu64, s_prefix, client, seq);
}

//  Send EVENT note on the client's dossier; 0 or -1
static int
s_send_event (client_t *c, int index, int window, int64_t due)
{
    char rid[64];
    s_request_id (rid, sizeof rid, index, c->seq);
    int64_t sent = s_now_ns ();
    void *h = c->handle;
    int rc = 0;
    rc |= zmq_send (h, "", 0, ZMQ_SNDMORE) < 0;
    rc |= zmq_send (h, POLE_PROTO_SIGNATURE, 6, ZMQ_SNDMORE) < 0;
    rc |= zmq_send (h, "EVENT", 5, ZMQ_SNDMORE) < 0;
    rc |= zmq_send (h, rid, strlen (rid), ZMQ_SNDMORE) < 0;
    //  cycle: decline_study on even requests, reopen on odd ones
    const char *actor = s_cycle ? "region" : "bench";
    const char *event = !s_cycle ? "note"
                        : c->seq % 2 == 0 ? "decline_study"
                                          : "reopen";
    const char *field = s_cycle ? s_reason : s_text;
    rc |= zmq_send (h, actor, strlen (actor), ZMQ_SNDMORE) < 0;
    rc |= zmq_send (h, c->dossier_text, strlen (c->dossier_text), ZMQ_SNDMORE)
          < 0;
    rc |= zmq_send (h, "", 0, ZMQ_SNDMORE) < 0;
    rc |= zmq_send (h, event, strlen (event), ZMQ_SNDMORE) < 0;
    rc |= zmq_send (h, field, strlen (field), 0) < 0;
    if (rc)
        return -1;
    c->due[c->seq % (uint64_t) window] = due;
    c->sent[c->seq % (uint64_t) window] = sent;
    c->seq++;
    c->inflight++;
    return 0;
}

//  Check once that the hand-written frames are what the codec writes
static int
s_check_frames (void)
{
    pole_field_t field = {.key = s_cycle ? "reason" : "text",
                          .value = s_cycle ? s_reason + 7 : s_text + 5};
    pole_request_t req = {.command = POLE_CMD_EVENT,
                          .request_id = "x.0.0",
                          .actor = s_cycle ? "region" : "bench",
                          .dossier = 7,
                          .expected_version = -1,
                          .event = s_cycle ? "decline_study" : "note",
                          .fields = &field,
                          .field_count = 1};
    zmsg_t *msg = pole_request_encode (&req);
    if (!msg)
        return -1;
    const char *expect[] = {POLE_PROTO_SIGNATURE, "EVENT", "x.0.0",
                            req.actor, "7", "", req.event,
                            s_cycle ? s_reason : s_text};
    int rc = zmsg_size (msg) == 8 ? 0 : -1;
    int i = 0;
    for (zframe_t *f = zmsg_first (msg); f && rc == 0;
         f = zmsg_next (msg), i++)
        if (!zframe_streq (f, expect[i]))
            rc = -1;
    zmsg_destroy (&msg);
    return rc;
}

//  One request through the codec, and its reply: the first payload frame
//  (in `first`, of `size`) if OK; 0 or -1
static int
s_call (client_t *c, pole_request_t *req, char *first, size_t size)
{
    zmsg_t *msg = pole_request_encode (req);
    zmsg_pushmem (msg, "", 0);
    if (zmsg_send (&msg, c->sock))
        return -1;
    zmsg_t *answer = zmsg_recv (c->sock);
    if (!answer)
        return -1;
    zframe_t *delimiter = zmsg_pop (answer);
    zframe_destroy (&delimiter);
    pole_reply_t *reply = NULL;
    char reason[256];
    int rc = -1;
    if (pole_reply_decode (answer, &reply, reason, sizeof reason) == 0
        && reply->ok && reply->frame_count >= 1) {
        snprintf (first, size, "%s", reply->frames[0]);
        rc = 0;
    }
    else if (reply)
        fprintf (stderr, "bench_load: %s refused: %s %s %s\n",
                 req->event ? req->event : "OPEN", reply->code,
                 reply->message, reply->rule);
    else
        fprintf (stderr, "bench_load: bad reply: %s\n", reason);
    pole_reply_destroy (&reply);
    zmsg_destroy (&answer);
    return rc;
}

//  OPEN a dossier for the client through the codec (and, for -m cycle,
//  ask for its study, so that decline_study is next); 0 or -1
static int
s_open_dossier (client_t *c, int index)
{
    static const char *pays[] = {"Brest", "Rennes", "Vannes", "Lorient",
                                 "Dinan", "Morlaix", "Auray"};
    char rid[64], holder[64], first[64];
    snprintf (rid, sizeof rid, "%s.open.%d", s_prefix, index);
    snprintf (holder, sizeof holder, "Collectif bench %s n°%d", s_prefix,
              index);
    pole_field_t fields[] = {{.key = "pays", .value = (char *) pays[index % 7]},
                             {.key = "holder", .value = holder},
                             {.key = "holder_type", .value = "ess_actor"}};
    pole_request_t req = {.command = POLE_CMD_OPEN,
                          .request_id = rid,
                          .actor = "bench",
                          .expected_version = -1,
                          .fields = fields,
                          .field_count = 3};
    if (s_call (c, &req, first, sizeof first))
        return -1;
    c->dossier = strtoll (first, NULL, 10);
    if (!s_cycle)
        return 0;
    snprintf (rid, sizeof rid, "%s.study.%d", s_prefix, index);
    pole_field_t amount = {.key = "amount", .value = "20000"};
    pole_request_t study = {.command = POLE_CMD_EVENT,
                            .request_id = rid,
                            .actor = "bench",
                            .dossier = c->dossier,
                            .expected_version = -1,
                            .event = "request_study",
                            .fields = &amount,
                            .field_count = 1};
    return s_call (c, &study, first, sizeof first);
}

typedef struct {
    bool ok;
    int client;
    uint64_t seq;
} s_reply_t;

//  Receive one whole reply if there is one; 1 read, 0 none, -1 error.
//  pole: "" POLE/1 rid OK|ERROR ...; echo: "" POLE/1 EVENT rid ...
static int
s_recv_reply (client_t *c, s_reply_t *out)
{
    int rid_index = s_echo ? 3 : 2, status_index = s_echo ? 2 : 3;
    char buf[256];
    int index = 0, more = 1;
    out->ok = false;
    out->client = -1;
    while (more) {
        int n = zmq_recv (c->handle, buf, sizeof buf - 1,
                          index == 0 ? ZMQ_DONTWAIT : 0);
        if (n < 0)
            return index == 0 ? 0 : -1;
        if (n > (int) sizeof buf - 1)
            n = sizeof buf - 1;
        buf[n] = 0;
        if (index == rid_index) {
            //  PREFIX.CLIENT.SEQ
            size_t plen = strlen (s_prefix);
            if (strncmp (buf, s_prefix, plen) == 0 && buf[plen] == '.') {
                char *end;
                out->client = (int) strtol (buf + plen + 1, &end, 10);
                if (*end == '.')
                    out->seq = strtoull (end + 1, NULL, 10);
                else
                    out->client = -1;
            }
        }
        else if (index == status_index)
            out->ok = s_echo ? streq (buf, "EVENT") : streq (buf, "OK");
        more = zsock_rcvmore (c->sock);
        index++;
    }
    return 1;
}

int
main (int argc, char *argv[])
{
    if (argc < 2) {
        fprintf (stderr, "usage: bench_load pole|echo|echo-server -e ENDPOINT "
                         "[-c N] [-d S] [-u S] [-w W] [-r RATE] [-s BYTES] "
                         "[-P PID]\n");
        return 2;
    }
    const char *mode = argv[1];
    const char *endpoint = NULL;
    int clients = 1, window = 1, text_bytes = 100, server_pid = 0;
    double seconds = 3, warmup = 0.5, rate = 0;
    int opt;
    optind = 2;
    while ((opt = getopt (argc, argv, "e:c:d:u:w:r:s:P:m:")) != -1) {
        switch (opt) {
        case 'e': endpoint = optarg; break;
        case 'c': clients = atoi (optarg); break;
        case 'd': seconds = atof (optarg); break;
        case 'u': warmup = atof (optarg); break;
        case 'w': window = atoi (optarg); break;
        case 'r': rate = atof (optarg); break;
        case 's': text_bytes = atoi (optarg); break;
        case 'P': server_pid = atoi (optarg); break;
        case 'm':
            if (streq (optarg, "cycle"))
                s_cycle = true;
            else if (!streq (optarg, "note")) {
                fprintf (stderr, "bench_load: -m note or -m cycle\n");
                return 2;
            }
            break;
        default: return 2;
        }
    }
    if (!endpoint || clients < 1 || clients > MAX_CLIENTS || window < 1
        || window > MAX_WINDOW || text_bytes < 1 || text_bytes > 16384
        || (s_cycle && (window != 1 || rate > 0))) {
        fprintf (stderr, "bench_load: bad arguments\n");
        return 2;
    }
    zsys_init ();
    zsys_set_sndhwm (10000);
    if (streq (mode, "echo-server"))
        return s_echo_server (endpoint);
    s_echo = streq (mode, "echo");
    if (!s_echo && !streq (mode, "pole")) {
        fprintf (stderr, "bench_load: unknown mode %s\n", mode);
        return 2;
    }
    snprintf (s_prefix, sizeof s_prefix, "b%x%x", (unsigned) getpid (),
              (unsigned) time (NULL));
    strcpy (s_text, "text=");
    for (int i = 0; i < text_bytes; i++)
        s_text[5 + i] = (char) ('a' + i % 26);
    s_text[5 + text_bytes] = 0;
    memcpy (s_reason, "reason=", 7);
    memcpy (s_reason + 7, s_text + 5, (size_t) text_bytes + 1);
    if (s_check_frames ()) {
        fprintf (stderr, "bench_load: the hand-written frames differ from "
                         "pole_request_encode\n");
        return 1;
    }

    client_t *cs = (client_t *) calloc ((size_t) clients, sizeof (client_t));
    zmq_pollitem_t *items
        = (zmq_pollitem_t *) calloc ((size_t) clients, sizeof (zmq_pollitem_t));
    for (int i = 0; i < clients; i++) {
        cs[i].sock = zsock_new (ZMQ_DEALER);
        zsock_set_linger (cs[i].sock, 0);
        zsock_set_sndtimeo (cs[i].sock, 5000);
        zsock_set_rcvtimeo (cs[i].sock, 10000);
        if (zsock_connect (cs[i].sock, "%s", endpoint)) {
            fprintf (stderr, "bench_load: cannot connect %s\n", endpoint);
            return 1;
        }
        cs[i].handle = zsock_resolve (cs[i].sock);
        items[i].socket = cs[i].handle;
        items[i].events = ZMQ_POLLIN;
        if (s_echo)
            cs[i].dossier = i + 1;
        else if (s_open_dossier (&cs[i], i)) {
            fprintf (stderr, "bench_load: client %d could not open a "
                             "dossier\n",
                     i);
            return 1;
        }
        snprintf (cs[i].dossier_text, sizeof cs[i].dossier_text,
                  "%" PRId64, cs[i].dossier);
    }

    //  Latencies of the requests sent within the measured window
    size_t lat_cap = 1 << 16, lat_n = 0;
    int64_t *lat = (int64_t *) malloc (lat_cap * sizeof (int64_t));
    int64_t *lat_due = (int64_t *) malloc (lat_cap * sizeof (int64_t));
    uint64_t acked = 0, errors = 0, stray = 0, sent = 0, blocked = 0;
    int64_t late_max = 0;

    int64_t t0 = s_now_ns ();
    int64_t t_start = t0 + (int64_t) (warmup * 1e9);
    int64_t t_end = t_start + (int64_t) (seconds * 1e9);
    int64_t t_drain = t_end + 5000000000LL;
    double cpu_self_start = 0, cpu_srv_start = 0, cpu_self_end = 0,
           cpu_srv_end = 0;
    bool started = false, ended = false;
    int64_t period = rate > 0 ? (int64_t) (1e9 / rate) : 0;
    int64_t next_due = t0;
    uint64_t k = 0;            //  paced: the next slot in the schedule
    int inflight = 0;

    //  Closed loop: every client starts with a full window
    if (rate <= 0)
        for (int i = 0; i < clients; i++)
            while (cs[i].inflight < window) {
                if (s_send_event (&cs[i], i, window, s_now_ns ()))
                    return 1;
                inflight++;
            }

    while (true) {
        int64_t now = s_now_ns ();
        if (!started && now >= t_start) {
            started = true;
            cpu_self_start = s_cpu_self ();
            cpu_srv_start = s_cpu_of (server_pid);
        }
        if (!ended && now >= t_end) {
            ended = true;
            cpu_self_end = s_cpu_self ();
            cpu_srv_end = s_cpu_of (server_pid);
        }
        if (ended && (inflight == 0 || now >= t_drain))
            break;
        //  Paced: send what is due, each slot on its client in turn
        if (rate > 0 && !ended) {
            while (next_due <= now) {
                int i = (int) (k % (uint64_t) clients);
                if (cs[i].inflight >= window) {
                    blocked++;  //  stays due; latency counts from due
                    break;
                }
                if (s_send_event (&cs[i], i, window, next_due))
                    return 1;
                if (now - next_due > late_max)
                    late_max = now - next_due;
                inflight++;
                sent++;
                k++;
                next_due = t0 + (int64_t) k * period;
            }
        }
        long timeout_ms = 100;
        if (rate > 0 && !ended) {
            int64_t wait = next_due - s_now_ns ();
            timeout_ms = wait <= 0 ? 0 : (long) ((wait + 999999) / 1000000);
        }
        if (zmq_poll (items, clients, timeout_ms) < 0)
            break;
        for (int i = 0; i < clients; i++) {
            if (!(items[i].revents & ZMQ_POLLIN))
                continue;
            s_reply_t r;
            int got;
            while ((got = s_recv_reply (&cs[i], &r)) == 1) {
                int64_t t = s_now_ns ();
                if (r.client != i || cs[i].inflight == 0) {
                    stray++;
                    continue;
                }
                cs[i].inflight--;
                inflight--;
                int64_t due = cs[i].due[r.seq % (uint64_t) window];
                int64_t sent_at = cs[i].sent[r.seq % (uint64_t) window];
                bool counted = due >= t_start && t <= t_end;
                if (counted) {
                    if (r.ok) {
                        acked++;
                        if (lat_n == lat_cap) {
                            lat_cap *= 2;
                            lat = (int64_t *) realloc (
                                lat, lat_cap * sizeof (int64_t));
                            lat_due = (int64_t *) realloc (
                                lat_due, lat_cap * sizeof (int64_t));
                        }
                        lat_due[lat_n] = t - due;
                        lat[lat_n++] = t - sent_at;
                    }
                    else
                        errors++;
                }
                else if (!r.ok)
                    errors++;
                //  Closed loop: the client sends its next one at once
                if (rate <= 0 && t < t_end) {
                    if (s_send_event (&cs[i], i, window, t))
                        return 1;
                    inflight++;
                    if (t >= t_start)
                        sent++;
                }
            }
            if (got < 0) {
                fprintf (stderr, "bench_load: receive failed\n");
                return 1;
            }
        }
    }
    if (!ended) {
        cpu_self_end = s_cpu_self ();
        cpu_srv_end = s_cpu_of (server_pid);
    }
    qsort (lat, lat_n, sizeof (int64_t), s_cmp_i64);
    qsort (lat_due, lat_n, sizeof (int64_t), s_cmp_i64);
    double wall = seconds;
    double cpu_self = cpu_self_end - cpu_self_start;
    double cpu_srv = cpu_srv_start >= 0 && cpu_srv_end >= 0
                         ? cpu_srv_end - cpu_srv_start
                         : -1;
    printf ("mode=%s events=%s clients=%d window=%d rate=%.0f text=%d"
            " seconds=%.2f "
            "acked=%" PRIu64 " errors=%" PRIu64 " stray=%" PRIu64
            " lost=%d blocked=%" PRIu64 " per_s=%.0f p50_us=%.0f p99_us=%.0f "
            "p999_us=%.0f max_us=%.0f due_p99_us=%.0f late_max_us=%.0f "
            "gen_cpu_pct=%.0f "
            "srv_cpu_pct=%.0f\n",
            mode, s_cycle ? "cycle" : "note", clients, window, rate,
            text_bytes, wall, acked, errors,
            stray, inflight, blocked, acked / wall, s_pct_us (lat, lat_n, 0.50),
            s_pct_us (lat, lat_n, 0.99), s_pct_us (lat, lat_n, 0.999),
            lat_n ? lat[lat_n - 1] / 1000.0 : 0,
            s_pct_us (lat_due, lat_n, 0.99), late_max / 1000.0,
            100 * cpu_self / wall, cpu_srv < 0 ? -1 : 100 * cpu_srv / wall);
    for (int i = 0; i < clients; i++)
        zsock_destroy (&cs[i].sock);
    free (cs);
    free (items);
    free (lat);
    free (lat_due);
    return 0;
}
