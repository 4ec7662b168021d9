/*  =========================================================================
    pole_server - poled's request loop: the hot path

    One ROUTER socket, one zloop. Each time the socket is readable the
    server drains up to batch_max requests, applies the mutating ones in
    one transaction (a savepoint each), commits once, answers the reads,
    then sends every reply. That is group commit: many clients share an
    fsync, a lone client pays exactly one.
    =========================================================================
*/
#ifndef POLE_SERVER_H_INCLUDED
#define POLE_SERVER_H_INCLUDED

#include <czmq.h>

#include "pole/config.h"
#include "store.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct _pole_server_t pole_server_t;

/*  Bind the ROUTER on `endpoints` (comma-separated) with the options of
    PROTOCOL.md section 2. The server borrows `config` and `store`.
    Returns NULL (logged) if an endpoint cannot be bound.                  */
pole_server_t *pole_server_new (pole_config_t *config, pole_store_t *store,
                                const char *endpoints, bool verbose);

void pole_server_destroy (pole_server_t **self_p);

/*  The delivery worker to kick after each commit that wrote notifications
    (NULL, the default, kicks nobody). The server takes it: it destroys it,
    and replaces it on a reload (SIGHUP), since the worker reads the
    coordinators of the configuration.                                     */
typedef struct _pole_outbox_t pole_outbox_t;
void pole_server_set_outbox (pole_server_t *self, pole_outbox_t *outbox);

/*  Serve until interrupted (SIGINT/SIGTERM set zsys_interrupted). The
    batch in hand is always finished and committed before returning.       */
int pole_server_run (pole_server_t *self);

/*  Handle one batch of request messages (each [identity][empty][body...])
    as the loop does, appending the replies (each [identity][empty][body])
    to `replies`. Exposed for tests and benchmarks.                         */
void pole_server_handle_batch (pole_server_t *self, zlist_t *requests,
                               zlist_t *replies);

#ifdef __cplusplus
}
#endif

#endif
