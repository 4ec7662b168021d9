/*  =========================================================================
    poled - the pole workflow daemon

    A short main, in Malamute's shape: options, logging, configuration,
    store, server; run until SIGINT/SIGTERM; tear down in reverse order.
    =========================================================================
*/

#include "clock.h"
#include "outbox.h"
#include "pole/config.h"
#include "pole/pole.h"
#include "server.h"
#include "store.h"

#include <curl/curl.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <sodium.h>
#include <sqlite3.h>

static void
s_usage (FILE *out)
{
    fprintf (out,
             "Usage: poled -c FILE [-e ENDPOINTS] [-l ENDPOINT] [-d DATABASE]\n"
             "             [-p ENDPOINT] [-v]\n"
             "       poled -h | -V\n"
             "\n"
             "The pole workflow daemon: keeps one durable state machine per\n"
             "dossier of the ESS-hub programme and serves POLE/1 requests\n"
             "(proto/PROTOCOL.md). Runs in the foreground; logs on stderr.\n"
             "\n"
             "  -c, --config FILE       configuration (libconfig syntax), "
             "required\n"
             "  -e, --endpoint LIST     endpoints to bind, comma-separated\n"
             "                          (overrides daemon.endpoint)\n"
             "  -l, --local-endpoint EP the administrators' ipc:// endpoint\n"
             "                          (overrides daemon.local_endpoint; \"\" "
             "for none)\n"
             "  -d, --database FILE     SQLite database (overrides "
             "daemon.database)\n"
             "  -p, --pub-endpoint EP   live stream of committed events\n"
             "                          (overrides notify.pub_endpoint; \"\" "
             "for none)\n"
             "  -v, --verbose           log every request\n"
             "  -h, --help              this help\n"
             "  -V, --version           print the version\n"
             "\n"
             "SIGINT or SIGTERM: finish the batch in hand, close the database,\n"
             "exit 0. SIGHUP: read the configuration file again (a bad one\n"
             "is refused, logged, and the running one kept). Under systemd\n"
             "(NOTIFY_SOCKET): READY, RELOADING, STOPPING, STATUS, WATCHDOG.\n"
             "Exit 1: configuration, database or endpoint error.\n"
             "Exit 2: bad usage.\n");
}

int
main (int argc, char *argv[])
{
    static const struct option options[]
        = {{"config", required_argument, NULL, 'c'},
           {"endpoint", required_argument, NULL, 'e'},
           {"local-endpoint", required_argument, NULL, 'l'},
           {"database", required_argument, NULL, 'd'},
           {"pub-endpoint", required_argument, NULL, 'p'},
           {"verbose", no_argument, NULL, 'v'},
           {"help", no_argument, NULL, 'h'},
           {"version", no_argument, NULL, 'V'},
           {NULL, 0, NULL, 0}};
    const char *config_path = NULL, *endpoint = NULL, *database = NULL;
    const char *pub_endpoint = NULL;
    const char *local_endpoint = NULL;
    bool verbose = false;
    int opt;
    while ((opt = getopt_long (argc, argv, "c:e:l:d:p:vhV", options, NULL))
           != -1) {
        switch (opt) {
        case 'c': config_path = optarg; break;
        case 'e': endpoint = optarg; break;
        case 'd': database = optarg; break;
        case 'l': local_endpoint = optarg; break;
        case 'p': pub_endpoint = optarg; break;
        case 'v': verbose = true; break;
        case 'h': s_usage (stdout); return 0;
        case 'V': printf ("poled %s (POLE/1)\n", POLE_VERSION); return 0;
        default:
            fprintf (stderr, "Try 'poled --help'.\n");
            return 2;
        }
    }
    if (optind < argc) {
        fprintf (stderr, "poled: unexpected argument '%s'\nTry 'poled --help'.\n",
                 argv[optind]);
        return 2;
    }
    if (!config_path) {
        fprintf (stderr, "poled: -c FILE is required\nTry 'poled --help'.\n");
        return 2;
    }
    //  SIGHUP (reload) is read by the server loop from a signalfd: it is
    //  blocked here, before any thread starts, so that every thread
    //  inherits the mask and none is interrupted by it (zloop stops on an
    //  interrupted poll). Programs poled spawns get an empty mask back.
    sigset_t hangup;
    sigemptyset (&hangup);
    sigaddset (&hangup, SIGHUP);
    pthread_sigmask (SIG_BLOCK, &hangup, NULL);
    zsys_init ();
    zsys_set_logident ("poled");
    zsys_set_logstream (stderr);

    char error[512];
    pole_config_t *config = pole_config_load (config_path, error, sizeof error);
    if (!config) {
        fprintf (stderr, "poled: %s\n", error);
        return 1;
    }
    if (!endpoint)
        endpoint = pole_config_endpoint (config);
    if (!database)
        database = pole_config_database (config);
    if (pub_endpoint)
        pole_config_set_pub_endpoint (config, pub_endpoint);
    if (local_endpoint) {
        if (*local_endpoint && strncmp (local_endpoint, "ipc://", 6) != 0) {
            fprintf (stderr, "poled: -l must be an ipc:// endpoint or \"\"\n");
            pole_config_destroy (&config);
            return 2;
        }
        pole_config_set_local_endpoint (config, local_endpoint);
    }
    //  SQLite's count of its own memory takes a global mutex at every
    //  allocation, and a LIST of a Pays makes tens of thousands of them;
    //  nothing here reads that count (sqlite3_memory_used). It can only be
    //  turned off before SQLite initialises, hence here, first; if
    //  something started SQLite before, poled is only a little slower.
    if (sqlite3_config (SQLITE_CONFIG_MEMSTATUS, 0) != SQLITE_OK)
        zsys_warning ("SQLite was initialised before poled could turn off "
                      "its memory statistics; going on with them");
    //  Both libraries want one initialisation, before any thread uses them
    if (curl_global_init (CURL_GLOBAL_DEFAULT) != 0 || sodium_init () < 0) {
        zsys_error ("cannot initialise libcurl or libsodium");
        pole_config_destroy (&config);
        return 1;
    }

    pole_store_t *store = pole_store_new (database, error, sizeof error);
    if (!store) {
        zsys_error ("%s", error);
        pole_config_destroy (&config);
        return 1;
    }
    //  The one clock: real, or simulated from the offset the database keeps
    bool simulated = pole_config_calendar (config)->simulated;
    int64_t offset = 0;
    if (simulated
        && pole_store_setting_get (store, "clock_offset_ms", &offset) < 0)
        offset = 0;
    pole_clock_configure (simulated, offset);
    if (simulated) {
        char now[32];
        pole_clock_format (pole_clock_now_ms (), now, sizeof now);
        zsys_info ("the clock is simulated: it reads %s", now);
    }
    if (pole_store_set_territories (store, pole_config_params (config))) {
        zsys_error ("cannot load the territories into the store");
        pole_store_destroy (&store);
        pole_config_destroy (&config);
        return 1;
    }
    pole_outbox_t *outbox = pole_outbox_new (config, database);
    if (!outbox) {
        zsys_error ("cannot start the notification worker on %s", database);
        pole_store_destroy (&store);
        pole_config_destroy (&config);
        return 1;
    }
    pole_server_t *server = pole_server_new (config, store, endpoint, verbose);
    if (!server) {
        pole_outbox_destroy (&outbox);
        pole_store_destroy (&store);
        pole_config_destroy (&config);
        return 1;
    }
    zsys_info ("poled %s ready on %s, database %s (%" PRId64
               " dossiers, %" PRId64 " events)",
               POLE_VERSION, endpoint, database,
               pole_store_count (store, "dossiers"),
               pole_store_count (store, "events"));

    pole_server_set_outbox (server, outbox);
    pole_server_run (server);

    pole_server_destroy (&server);  //  and the outbox worker it took
    pole_store_destroy (&store);
    pole_config_destroy (&config);
    curl_global_cleanup ();
    zsys_info ("poled stopped cleanly");
    return 0;
}
