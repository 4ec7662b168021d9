/*  =========================================================================
    pole_outbox - notifications to coordinators: who follows what, and the
    delivery worker

    pole_outbox_enqueue() runs inside the event's transaction (transactional
    outbox): the rows it writes commit or vanish with the event. The worker
    is a czmq actor with its own SQLite connection: it sends due rows
    through the channels (daemon/channel.c), retries with exponential
    backoff and jitter, marks rows delivered or dead, bundles digests and
    prunes old delivered rows. It never blocks the request loop, which only
    kicks it after a commit. docs/NOTIFY.md is the contract.
    =========================================================================
*/
#ifndef POLE_OUTBOX_H_INCLUDED
#define POLE_OUTBOX_H_INCLUDED

#include <czmq.h>

#include "pole/config.h"
#include "store.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct _pole_outbox_t pole_outbox_t;

/*  Start the delivery worker on the database file `path`. The config is
    borrowed and must outlive the worker.                                  */
pole_outbox_t *pole_outbox_new (pole_config_t *config, const char *path);

/*  Stop the worker (it finishes the delivery in hand). Nulls *self_p.    */
void pole_outbox_destroy (pole_outbox_t **self_p);

/*  New rows were committed: look at the outbox now.                      */
void pole_outbox_kick (pole_outbox_t *self);

/*  True if coordinator `c` follows an event `event` of a dossier in
    `pays` (canonical), `departement`, held by `holder`.                   */
bool pole_coordinator_follows (const pole_coordinator_t *c, const char *pays,
                               int departement, const char *holder,
                               const char *event);

/*  Write, in the caller's transaction, one notification of the event
    `seq` per coordinator that follows it. Returns how many, or -1.        */
int pole_outbox_enqueue (pole_store_t *store, pole_config_t *config,
                         const pole_dossier_t *dossier, const char *event,
                         int64_t seq, int64_t now_ms);

/*  When a digest notification created at now_ms falls due: the next
    digest_hour (UTC), or the next multiple of digest_every_s.             */
int64_t pole_outbox_digest_due (const pole_notify_config_t *notify,
                                int64_t now_ms);

#ifdef __cplusplus
}
#endif

#endif
