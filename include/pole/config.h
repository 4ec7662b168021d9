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

#include <stddef.h>

#include "pole/engine.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct _pole_config_t pole_config_t;

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

/*  The path the configuration was read from.                             */
const char *pole_config_path (pole_config_t *self);

#ifdef __cplusplus
}
#endif

#endif
