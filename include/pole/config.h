/*  =========================================================================
    pole_config - poled's configuration, read with libconfig

    Loads config/poled.cfg (or any file given with -c): the programme
    parameters (the sheet's values are the defaults), the 21 Pays and their
    départements, and the daemon's own settings. A file that does not parse
    or holds a wrong value is refused with the file, the line and the
    reason; nothing half-read is ever returned.
    =========================================================================
*/
#ifndef POLE_CONFIG_H_INCLUDED
#define POLE_CONFIG_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>

#include <czmq.h>

#include "pole/engine.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct _pole_config_t pole_config_t;

/*  A coordinator to notify (docs/NOTIFY.md). Strings belong to the config.
    An empty filter matches everything; all given filters must match.      */
typedef enum {
    POLE_CHANNEL_EMAIL = 0,
    POLE_CHANNEL_WEBHOOK,
    POLE_CHANNEL_COMMAND
} pole_channel_kind_t;

typedef struct {
    char *name;
    pole_channel_kind_t channel;
    char *address;              /* e-mail address, URL or program path     */
    char *secret;               /* webhook HMAC key, else NULL             */
    bool digest;                /* delivery = "digest"                     */
    char **pays;                /* canonical territory names               */
    size_t pays_count;
    int *departements;
    size_t departement_count;
    char **events;
    size_t event_count;
    char **holders;
    size_t holder_count;
} pole_coordinator_t;

/*  The calendar group (docs/CALENDAR.md).                               */
typedef struct {
    bool simulated;             /* clock = "simulated"                     */
    int study_deadline_months;
    int study_reminder_days;
    int year_months;
    int report_due_days;
    int report_reminder_days;
} pole_calendar_config_t;

/*  The notify group and the coordinators.                                */
typedef struct {
    char *pub_endpoint;         /* live stream; "" = none                  */
    int max_attempts;
    int backoff_initial_ms;
    int backoff_max_ms;
    int keep_delivered_days;
    int digest_hour;            /* UTC hour of the daily digest            */
    int digest_every_s;         /* > 0: digests every N seconds instead
                                   (tests, demos)                          */
    int webhook_timeout_ms;
    int command_timeout_ms;
    char *smtp_url;
    char *smtp_from;
    bool smtp_starttls;
    char *smtp_username;
    char *smtp_password;
    pole_coordinator_t *coordinators;
    size_t coordinator_count;
} pole_notify_config_t;

/*  A key that may connect over CURVE (the keys list). Strings belong to the
    config; `role` is static: holder, cres, region or admin.               */
typedef struct {
    char *name;                 /* recorded as the actor of its requests  */
    const char *role;
    char *holder;               /* role holder: the holder name of the
                                   dossiers it may act on; else NULL       */
    char *key;                  /* public key, 40 Z85 characters           */
} pole_key_t;

/*  Load and validate `path`. Returns the configuration, or NULL with a
    message "FILE:LINE: reason" (or "FILE: reason" where no line applies)
    written into `error`.                                                  */
pole_config_t *pole_config_load (const char *path, char *error,
                                 size_t error_size);

void pole_config_destroy (pole_config_t **self_p);

/*  Programme parameters; the territories in it belong to the config and
    live as long as it does.                                               */
const pole_params_t *pole_config_params (pole_config_t *self);

/*  daemon.endpoint (default "tcp://127.0.0.1:5570")                      */
const char *pole_config_endpoint (pole_config_t *self);

/*  daemon.database (default "/var/lib/pole/pole.db")                     */
const char *pole_config_database (pole_config_t *self);

/*  daemon.max_message_size in bytes (default 65536, 1024..16777216)       */
int pole_config_max_message_size (pole_config_t *self);

/*  daemon.batch_max: most requests applied in one commit (default 256,
    1..10000)                                                              */
int pole_config_batch_max (pole_config_t *self);

/*  The role of an actor: "cres", "region" or "admin" when roles.* names
    it, else "holder" (DOMAIN.md, Roles).                                  */
const char *pole_config_role (pole_config_t *self, const char *actor);

/*  The notification settings and the coordinators.                       */
const pole_notify_config_t *pole_config_notify (pole_config_t *self);

/*  The calendar settings.                                                */
const pole_calendar_config_t *pole_config_calendar (pole_config_t *self);

/*  Override notify.pub_endpoint (poled -p).                              */
void pole_config_set_pub_endpoint (pole_config_t *self, const char *endpoint);

/*  daemon.local_endpoint: an ipc:// endpoint for the administrators on
    the server, or "" (the default) for none.                              */
const char *pole_config_local_endpoint (pole_config_t *self);

/*  Override daemon.local_endpoint (poled -l).                            */
void pole_config_set_local_endpoint (pole_config_t *self,
                                     const char *endpoint);

/*  curve.cert: the path of the server's key pair, or NULL when
    authentication is off; and the key pair, loaded and checked.          */
const char *pole_config_curve_cert_path (pole_config_t *self);
zcert_t *pole_config_curve_cert (pole_config_t *self);

/*  The keys list, and the key whose public key (Z85) is `public_key`, or
    NULL.                                                                  */
size_t pole_config_key_count (pole_config_t *self);
const pole_key_t *pole_config_key (pole_config_t *self, size_t index);
const pole_key_t *pole_config_key_find (pole_config_t *self,
                                        const char *public_key);

/*  The path the configuration was read from.                             */
const char *pole_config_path (pole_config_t *self);

#ifdef __cplusplus
}
#endif

#endif
