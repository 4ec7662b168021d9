/*  =========================================================================
    pole_config - poled's configuration, read with libconfig

    The file has three parts: `daemon` (where poled listens and keeps its
    database, how big a request may be, how many requests one commit
    holds), `programme` (the parameters the rules of the engine read; the
    programme sheet's values are the defaults) and `territories` (the Pays
    a dossier may be opened in, with their départements).

    Everything is checked here, once, at start-up, so that the rest of the
    daemon can trust what it reads: every setting must be known (a typo
    such as `max_post = 3` must not silently leave the default of 2 in
    force), of the right type and within its range. The first problem
    found, in the order of the file, is reported as "FILE:LINE: reason",
    the way compilers do, so that an administrator can go straight to it.

    Nothing read from libconfig is kept: every string is copied, so the
    libconfig tree is freed before pole_config_load() returns, and a
    configuration is either complete and valid or not returned at all.
    =========================================================================
*/

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <czmq.h>
#include <libconfig.h>

#include "pole/config.h"

//  Defaults for the daemon group. The programme defaults come from
//  pole_params_defaults() so that the engine and the configuration cannot
//  disagree on what the sheet says.
#define S_DEFAULT_ENDPOINT          "tcp://127.0.0.1:5570"
#define S_DEFAULT_DATABASE          "/var/lib/pole/pole.db"
#define S_DEFAULT_MAX_MESSAGE_SIZE  65536
#define S_DEFAULT_BATCH_MAX         256

//  Amounts in euros have no upper bound in the sheet, but the engine
//  multiplies them (posts x euros x years) in 64 bits: a thousand billion
//  euros is far beyond any programme and keeps every product exact.
#define S_MAX_EUR                   INT64_C (1000000000000)

struct _pole_config_t {
    char *path;                     //  the file it was read from
    char *endpoint;                 //  daemon.endpoint
    char *database;                 //  daemon.database
    int max_message_size;           //  daemon.max_message_size, bytes
    int batch_max;                  //  daemon.batch_max
    pole_params_t params;           //  programme.*; territories below
    pole_territory_t *territories;  //  owned, and so are their names
    size_t territory_count;         //  entries allocated (freed by destroy)
    pole_notify_config_t notify;    //  notify.*, coordinators (owned)
    pole_calendar_config_t calendar;    //  calendar.*
    char **role_actors;             //  roles.*: actor names, owned
    const char **role_names;        //  ... and the role of each (static)
    size_t role_count;
    char *local_endpoint;           //  daemon.local_endpoint, "" = none
    char *curve_cert_path;          //  curve.cert, NULL = authentication off
    zcert_t *curve_cert;            //  ... loaded, with its secret key
    pole_key_t *keys;               //  keys: owned, and so are their strings
    size_t key_count;
};

//  What an error message needs: the file named on the command line and
//  where to write the message.
typedef struct {
    const char *path;
    char *error;
    size_t error_size;
} s_reader_t;


//  --------------------------------------------------------------------------
//  Compare a setting's name; elements of a list have no name (NULL).

static bool
s_streq (const char *name, const char *known)
{
    return name && strcmp (name, known) == 0;
}


//  --------------------------------------------------------------------------
//  Write "FILE:LINE: reason" (or "FILE: reason" when `setting` is NULL or
//  has no line) into the reader's error buffer. Always returns -1 so that
//  callers can `return s_fail (...)`.

static int
s_fail (s_reader_t *reader, const config_setting_t *setting,
        const char *format, ...)
{
    if (!reader->error || reader->error_size == 0)
        return -1;

    //  A setting read through @include belongs to the included file, and
    //  its line number is only meaningful there
    const char *file = reader->path;
    unsigned line = 0;
    if (setting) {
        if (config_setting_source_file (setting))
            file = config_setting_source_file (setting);
        line = config_setting_source_line (setting);
    }
    int written;
    if (line > 0)
        written = snprintf (reader->error, reader->error_size, "%s:%u: ",
                            file, line);
    else
        written = snprintf (reader->error, reader->error_size, "%s: ", file);
    if (written < 0 || (size_t) written >= reader->error_size)
        return -1;

    va_list args;
    va_start (args, format);
    vsnprintf (reader->error + written, reader->error_size - written,
               format, args);
    va_end (args);
    return -1;
}


//  --------------------------------------------------------------------------
//  The type of a setting in the words of the configuration file, for
//  "must be X, not Y" messages.

static const char *
s_type_name (const config_setting_t *setting)
{
    switch (config_setting_type (setting)) {
        case CONFIG_TYPE_GROUP:  return "a group { ... }";
        case CONFIG_TYPE_INT:
        case CONFIG_TYPE_INT64:  return "a whole number";
        case CONFIG_TYPE_FLOAT:  return "a decimal number";
        case CONFIG_TYPE_STRING: return "a string";
        case CONFIG_TYPE_BOOL:   return "a boolean";
        case CONFIG_TYPE_ARRAY:  return "an array [ ... ]";
        case CONFIG_TYPE_LIST:   return "a list ( ... )";
        default:                 return "an unknown type";
    }
}


//  --------------------------------------------------------------------------
//  Read a whole number within [min, max]. `label` is the setting's full
//  name (e.g. "daemon.batch_max"). libconfig gives numbers that do not fit
//  in 32 bits the 64-bit type, and `25000L` is 64-bit too: both are fine.
//  A decimal (2.0) is refused rather than truncated: it is a mistake.

static int
s_get_integer (s_reader_t *reader, const config_setting_t *setting,
               const char *label, int64_t min, int64_t max, int64_t *value)
{
    char range [96];
    if (max == INT_MAX)
        snprintf (range, sizeof range, "at least %" PRId64, min);
    else
        snprintf (range, sizeof range, "from %" PRId64 " to %" PRId64,
                  min, max);

    int type = config_setting_type (setting);
    if (type != CONFIG_TYPE_INT && type != CONFIG_TYPE_INT64)
        return s_fail (reader, setting, "%s must be a whole number %s, not %s",
                       label, range, s_type_name (setting));

    long long number = config_setting_get_int64 (setting);
    if (number < min || number > max)
        return s_fail (reader, setting,
                       "%s must be a whole number %s (found %lld)",
                       label, range, number);
    *value = (int64_t) number;
    return 0;
}


//  --------------------------------------------------------------------------
//  Same, for settings the rest of the daemon keeps in an int.

static int
s_get_int (s_reader_t *reader, const config_setting_t *setting,
           const char *label, int min, int max, int *value)
{
    int64_t number;
    if (s_get_integer (reader, setting, label, min, max, &number))
        return -1;
    *value = (int) number;
    return 0;
}


//  --------------------------------------------------------------------------
//  Read a non-empty string and replace *value with a copy of it.

static int
s_get_string (s_reader_t *reader, const config_setting_t *setting,
              const char *label, char **value)
{
    if (config_setting_type (setting) != CONFIG_TYPE_STRING)
        return s_fail (reader, setting, "%s must be a string, not %s",
                       label, s_type_name (setting));

    const char *text = config_setting_get_string (setting);
    if (!text || !*text)
        return s_fail (reader, setting, "%s must not be empty", label);

    char *copy = strdup (text);
    if (!copy)
        return s_fail (reader, setting, "%s: out of memory", label);
    free (*value);
    *value = copy;
    return 0;
}


//  --------------------------------------------------------------------------
//  Refuse a setting that is not known, listing those that are, so that a
//  misspelt name is easy to put right.

static int
s_unknown (s_reader_t *reader, const config_setting_t *setting,
           const char *group, const char *known)
{
    const char *name = config_setting_name (setting);
    if (group)
        return s_fail (reader, setting,
                       "unknown setting %s.%s (%s knows %s)",
                       group, name ? name : "?", group, known);
    return s_fail (reader, setting, "unknown setting %s (the file holds %s)",
                   name ? name : "?", known);
}


//  --------------------------------------------------------------------------
//  `group` must be a group { ... }: the parts of the file are.

static int
s_expect_group (s_reader_t *reader, const config_setting_t *setting,
                const char *label)
{
    if (config_setting_type (setting) != CONFIG_TYPE_GROUP)
        return s_fail (reader, setting, "%s must be a group { ... }, not %s",
                       label, s_type_name (setting));
    return 0;
}


//  --------------------------------------------------------------------------
//  daemon = { endpoint, database, max_message_size, batch_max }

static int
s_read_daemon (pole_config_t *self, s_reader_t *reader,
               const config_setting_t *group)
{
    if (s_expect_group (reader, group, "daemon"))
        return -1;

    int count = config_setting_length (group);
    for (int index = 0; index < count; index++) {
        config_setting_t *setting = config_setting_get_elem (group, index);
        const char *name = config_setting_name (setting);
        int rc;
        if (s_streq (name, "endpoint")) {
            rc = s_get_string (reader, setting, "daemon.endpoint",
                               &self->endpoint);
            //  A comma-separated list: an empty item ("a,,b" or a trailing
            //  comma) would make poled try to bind "", so say it now
            if (rc == 0) {
                const char *text = self->endpoint;
                size_t length = strlen (text);
                if (text [0] == ',' || text [length - 1] == ','
                ||  strstr (text, ",,"))
                    rc = s_fail (reader, setting,
                                 "daemon.endpoint has an empty item in its "
                                 "comma-separated list \"%s\"", text);
            }
        }
        else
        if (s_streq (name, "local_endpoint")) {
            //  The administrators' door on the server: an ipc:// socket,
            //  whose file permissions are the protection (no CURVE on it)
            rc = 0;
            if (config_setting_type (setting) != CONFIG_TYPE_STRING)
                rc = s_fail (reader, setting,
                             "daemon.local_endpoint must be a string, not %s",
                             s_type_name (setting));
            else {
                const char *text = config_setting_get_string (setting);
                if (*text && strncmp (text, "ipc://", 6) != 0)
                    rc = s_fail (reader, setting,
                                 "daemon.local_endpoint must be an ipc:// "
                                 "endpoint (or \"\" for none), not \"%s\": "
                                 "it is protected by file permissions, "
                                 "which a TCP port does not have", text);
                else {
                    char *copy = strdup (text);
                    if (!copy)
                        rc = s_fail (reader, setting, "out of memory");
                    else {
                        free (self->local_endpoint);
                        self->local_endpoint = copy;
                    }
                }
            }
        }
        else
        if (s_streq (name, "database"))
            rc = s_get_string (reader, setting, "daemon.database",
                               &self->database);
        else
        if (s_streq (name, "max_message_size"))
            rc = s_get_int (reader, setting, "daemon.max_message_size",
                            1024, 16777216, &self->max_message_size);
        else
        if (s_streq (name, "batch_max"))
            rc = s_get_int (reader, setting, "daemon.batch_max",
                            1, 10000, &self->batch_max);
        else
            rc = s_unknown (reader, setting, "daemon",
                            "endpoint, local_endpoint, database, "
                            "max_message_size, batch_max");
        if (rc)
            return -1;
    }
    return 0;
}


//  --------------------------------------------------------------------------
//  programme = { study_cap_eur, max_posts, post_eur_per_year,
//                funding_years, live_dossiers_per_pays }

static int
s_read_programme (pole_config_t *self, s_reader_t *reader,
                  const config_setting_t *group)
{
    if (s_expect_group (reader, group, "programme"))
        return -1;

    pole_params_t *params = &self->params;
    int count = config_setting_length (group);
    for (int index = 0; index < count; index++) {
        config_setting_t *setting = config_setting_get_elem (group, index);
        const char *name = config_setting_name (setting);
        int rc;
        if (s_streq (name, "study_cap_eur"))
            rc = s_get_integer (reader, setting, "programme.study_cap_eur",
                                1, S_MAX_EUR, &params->study_cap_eur);
        else
        if (s_streq (name, "max_posts"))
            rc = s_get_int (reader, setting, "programme.max_posts",
                            1, 10, &params->max_posts);
        else
        if (s_streq (name, "post_eur_per_year"))
            rc = s_get_integer (reader, setting,
                                "programme.post_eur_per_year",
                                1, S_MAX_EUR, &params->post_eur_per_year);
        else
        if (s_streq (name, "funding_years"))
            //  At most 3: the workflow has the states funding_year_1..3
            //  and no more
            rc = s_get_int (reader, setting, "programme.funding_years",
                            1, 3, &params->funding_years);
        else
        if (s_streq (name, "live_dossiers_per_pays"))
            rc = s_get_int (reader, setting,
                            "programme.live_dossiers_per_pays",
                            1, INT_MAX, &params->live_per_pays);
        else
            rc = s_unknown (reader, setting, "programme",
                            "study_cap_eur, max_posts, post_eur_per_year, "
                            "funding_years, live_dossiers_per_pays");
        if (rc)
            return -1;
    }
    return 0;
}


//  --------------------------------------------------------------------------
//  A territory's name is stored as the canonical name of the Pays in every
//  dossier opened there and shown to people: it must hold a visible
//  character, no control character (it goes into line-oriented output),
//  and fit in a dossier's fixed-size field.

static int
s_check_name (s_reader_t *reader, const config_setting_t *setting,
              const char *entry, const char *name)
{
    size_t length = strlen (name);
    if (length == 0 || strspn (name, " \t") == length)
        return s_fail (reader, setting, "%s: name must not be empty", entry);
    if (length >= POLE_NAME_MAX)
        return s_fail (reader, setting,
                       "%s: name is %zu bytes long, at most %d are allowed",
                       entry, length, POLE_NAME_MAX - 1);
    for (const char *scan = name; *scan; scan++)
        if ((unsigned char) *scan < 0x20 || *scan == 0x7f)
            return s_fail (reader, setting,
                           "%s: name must not hold control characters", entry);
    return 0;
}


//  --------------------------------------------------------------------------
//  territories = ( { name = "Brest"; departement = 29; }, ... )
//  Required and non-empty: a daemon that knows no Pays could open no
//  dossier, and an empty default would hide a forgotten list.

static int
s_read_territories (pole_config_t *self, s_reader_t *reader,
                    const config_setting_t *list)
{
    if (config_setting_type (list) != CONFIG_TYPE_LIST)
        return s_fail (reader, list,
                       "territories must be a list ( { name = ...; "
                       "departement = ...; }, ... ), not %s",
                       s_type_name (list));

    int count = config_setting_length (list);
    if (count == 0)
        return s_fail (reader, list,
                       "territories is empty: list the Pays a dossier may be "
                       "opened in");

    self->territories = calloc ((size_t) count, sizeof (pole_territory_t));
    if (!self->territories)
        return s_fail (reader, list, "territories: out of memory");
    self->territory_count = (size_t) count;

    for (int index = 0; index < count; index++) {
        config_setting_t *element = config_setting_get_elem (list, index);
        pole_territory_t *territory = &self->territories [index];
        char entry [48];
        snprintf (entry, sizeof entry, "territories: entry %d", index + 1);

        if (config_setting_type (element) != CONFIG_TYPE_GROUP)
            return s_fail (reader, element,
                           "%s must be a group { name = ...; "
                           "departement = ...; }, not %s",
                           entry, s_type_name (element));

        //  The name is copied into the territory as soon as it is read, so
        //  that destroy frees it whatever fails next
        int fields = config_setting_length (element);
        for (int field = 0; field < fields; field++) {
            config_setting_t *setting =
                config_setting_get_elem (element, field);
            const char *name = config_setting_name (setting);
            if (s_streq (name, "name")) {
                char *text = NULL;
                if (config_setting_type (setting) != CONFIG_TYPE_STRING)
                    return s_fail (reader, setting,
                                   "%s: name must be a string, not %s",
                                   entry, s_type_name (setting));
                if (s_check_name (reader, setting, entry,
                                  config_setting_get_string (setting)))
                    return -1;
                if (s_get_string (reader, setting, "name", &text))
                    return -1;
                territory->name = text;
            }
            else
            if (s_streq (name, "departement")) {
                char label [64];
                snprintf (label, sizeof label, "%s: departement", entry);
                if (s_get_int (reader, setting, label, 1, INT_MAX,
                               &territory->departement))
                    return -1;
            }
            else
                return s_fail (reader, setting,
                               "%s: unknown setting %s (a territory knows "
                               "name, departement)", entry,
                               name ? name : "?");
        }
        if (!territory->name)
            return s_fail (reader, element, "%s has no name", entry);
        if (territory->departement == 0)
            return s_fail (reader, element,
                           "%s (%s) has no departement", entry,
                           territory->name);

        //  Unique under the same forgiving comparison that requests go
        //  through, or "Dinan" and "Pays de Dinan" would be two Pays that
        //  no request could tell apart
        pole_params_t so_far = self->params;
        so_far.territories = self->territories;
        so_far.territory_count = (size_t) index;
        const pole_territory_t *twin = pole_pays_lookup (&so_far,
                                                         territory->name);
        if (twin) {
            const config_setting_t *first = config_setting_get_elem (
                list, (unsigned) (twin - self->territories));
            return s_fail (reader, element,
                           "territories: \"%s\" names the same Pays as "
                           "\"%s\" (line %u); list each Pays once",
                           territory->name, twin->name,
                           first ? config_setting_source_line (first) : 0);
        }
    }
    self->params.territories = self->territories;
    self->params.territory_count = self->territory_count;
    return 0;
}


//  --------------------------------------------------------------------------
//  roles = { region = [ "region" ]; admin = [ "admin" ]; cres = [ "cres" ]; }
//  Which actors hold which role (DOMAIN.md); every other actor is a
//  holder. Until CurveZMQ authenticates senders, the actor is the name the
//  client states.

static int
s_read_roles (pole_config_t *self, s_reader_t *reader,
              const config_setting_t *group)
{
    static const char *known[] = {"cres", "region", "admin"};
    if (config_setting_type (group) != CONFIG_TYPE_GROUP)
        return s_fail (reader, group,
                       "roles must be a group { region = [ \"name\", ... ]; "
                       "... }, not %s",
                       s_type_name (group));
    int count = config_setting_length (group);
    for (int index = 0; index < count; index++) {
        config_setting_t *list = config_setting_get_elem (group, index);
        const char *name = config_setting_name (list);
        const char *role = NULL;
        for (size_t k = 0; k < sizeof known / sizeof known[0]; k++)
            if (s_streq (name, known[k]))
                role = known[k];
        if (!role)
            return s_unknown (reader, list, "roles",
                              "cres, region and admin (every other actor is "
                              "a holder)");
        if (config_setting_type (list) != CONFIG_TYPE_ARRAY
            && config_setting_type (list) != CONFIG_TYPE_LIST)
            return s_fail (reader, list,
                           "roles: %s must be an array of actor names, "
                           "not %s",
                           role, s_type_name (list));
        int actors = config_setting_length (list);
        for (int a = 0; a < actors; a++) {
            config_setting_t *item = config_setting_get_elem (list, a);
            if (config_setting_type (item) != CONFIG_TYPE_STRING)
                return s_fail (reader, item,
                               "roles: %s: each actor must be a string",
                               role);
            const char *actor = config_setting_get_string (item);
            if (!*actor)
                return s_fail (reader, item,
                               "roles: %s: an actor name must not be empty",
                               role);
            for (size_t k = 0; k < self->role_count; k++)
                if (strcmp (self->role_actors[k], actor) == 0)
                    return s_fail (reader, item,
                                   "roles: actor \"%s\" is given the roles "
                                   "%s and %s; an actor has one role",
                                   actor, self->role_names[k], role);
            char **actors_grown = realloc (
                self->role_actors, (self->role_count + 1) * sizeof (char *));
            if (actors_grown)
                self->role_actors = actors_grown;
            const char **names_grown = realloc (
                (void *) self->role_names,
                (self->role_count + 1) * sizeof (char *));
            if (names_grown)
                self->role_names = names_grown;
            char *copy = strdup (actor);
            if (!actors_grown || !names_grown || !copy) {
                free (copy);
                return s_fail (reader, item, "roles: out of memory");
            }
            self->role_actors[self->role_count] = copy;
            self->role_names[self->role_count] = role;
            self->role_count++;
        }
    }
    return 0;
}


//  --------------------------------------------------------------------------
//  An array of strings [ "a", "b" ], each non-empty, copied.

static int
s_get_string_list (s_reader_t *reader, const config_setting_t *setting,
                   const char *label, char ***items, size_t *count)
{
    int type = config_setting_type (setting);
    if (type != CONFIG_TYPE_ARRAY && type != CONFIG_TYPE_LIST)
        return s_fail (reader, setting, "%s must be an array [ \"...\" ], "
                       "not %s", label, s_type_name (setting));
    int length = config_setting_length (setting);
    *items = calloc ((size_t) length + 1, sizeof (char *));
    if (!*items)
        return s_fail (reader, setting, "%s: out of memory", label);
    for (int index = 0; index < length; index++) {
        config_setting_t *item = config_setting_get_elem (setting, index);
        if (s_get_string (reader, item, label, &(*items) [index]))
            return -1;
        *count = (size_t) index + 1;
    }
    return 0;
}

static void
s_free_string_list (char **items, size_t count)
{
    for (size_t index = 0; index < count; index++)
        free (items [index]);
    free (items);
}


//  --------------------------------------------------------------------------
//  notify = { pub_endpoint, max_attempts, ..., smtp = { ... } }

static int
s_read_notify (pole_config_t *self, s_reader_t *reader,
               const config_setting_t *group)
{
    if (s_expect_group (reader, group, "notify"))
        return -1;
    pole_notify_config_t *notify = &self->notify;
    int count = config_setting_length (group);
    for (int index = 0; index < count; index++) {
        config_setting_t *setting = config_setting_get_elem (group, index);
        const char *name = config_setting_name (setting);
        int rc;
        if (s_streq (name, "pub_endpoint")) {
            //  May be empty: no live stream
            if (config_setting_type (setting) != CONFIG_TYPE_STRING)
                rc = s_fail (reader, setting,
                             "notify.pub_endpoint must be a string, not %s",
                             s_type_name (setting));
            else {
                free (notify->pub_endpoint);
                notify->pub_endpoint
                    = strdup (config_setting_get_string (setting));
                rc = 0;
            }
        }
        else
        if (s_streq (name, "max_attempts"))
            rc = s_get_int (reader, setting, "notify.max_attempts", 1, 100,
                            &notify->max_attempts);
        else
        if (s_streq (name, "backoff_initial_ms"))
            rc = s_get_int (reader, setting, "notify.backoff_initial_ms", 10,
                            86400000, &notify->backoff_initial_ms);
        else
        if (s_streq (name, "backoff_max_ms"))
            rc = s_get_int (reader, setting, "notify.backoff_max_ms", 10,
                            86400000, &notify->backoff_max_ms);
        else
        if (s_streq (name, "keep_delivered_days"))
            rc = s_get_int (reader, setting, "notify.keep_delivered_days", 1,
                            36500, &notify->keep_delivered_days);
        else
        if (s_streq (name, "digest_hour"))
            rc = s_get_int (reader, setting, "notify.digest_hour", 0, 23,
                            &notify->digest_hour);
        else
        if (s_streq (name, "digest_every_s"))
            rc = s_get_int (reader, setting, "notify.digest_every_s", 0,
                            86400, &notify->digest_every_s);
        else
        if (s_streq (name, "webhook_timeout_ms"))
            rc = s_get_int (reader, setting, "notify.webhook_timeout_ms", 100,
                            600000, &notify->webhook_timeout_ms);
        else
        if (s_streq (name, "command_timeout_ms"))
            rc = s_get_int (reader, setting, "notify.command_timeout_ms", 100,
                            600000, &notify->command_timeout_ms);
        else
        if (s_streq (name, "smtp")) {
            rc = s_expect_group (reader, setting, "notify.smtp");
            int fields = rc ? 0 : config_setting_length (setting);
            for (int k = 0; k < fields && rc == 0; k++) {
                config_setting_t *item = config_setting_get_elem (setting, k);
                const char *key = config_setting_name (item);
                if (s_streq (key, "url"))
                    rc = s_get_string (reader, item, "notify.smtp.url",
                                       &notify->smtp_url);
                else
                if (s_streq (key, "from"))
                    rc = s_get_string (reader, item, "notify.smtp.from",
                                       &notify->smtp_from);
                else
                if (s_streq (key, "starttls")) {
                    if (config_setting_type (item) != CONFIG_TYPE_BOOL)
                        rc = s_fail (reader, item, "notify.smtp.starttls "
                                     "must be true or false, not %s",
                                     s_type_name (item));
                    else
                        notify->smtp_starttls = config_setting_get_bool (item);
                }
                else
                if (s_streq (key, "username") || s_streq (key, "password")) {
                    char **target = s_streq (key, "username")
                                  ? &notify->smtp_username
                                  : &notify->smtp_password;
                    if (config_setting_type (item) != CONFIG_TYPE_STRING)
                        rc = s_fail (reader, item, "notify.smtp.%s must be a "
                                     "string", key);
                    else {
                        free (*target);
                        *target = strdup (config_setting_get_string (item));
                    }
                }
                else
                    rc = s_unknown (reader, item, "notify.smtp",
                                    "url, from, starttls, username, "
                                    "password");
            }
        }
        else
            rc = s_unknown (reader, setting, "notify",
                            "pub_endpoint, max_attempts, backoff_initial_ms, "
                            "backoff_max_ms, keep_delivered_days, "
                            "digest_hour, digest_every_s, "
                            "webhook_timeout_ms, command_timeout_ms, smtp");
        if (rc)
            return -1;
    }
    return 0;
}


//  --------------------------------------------------------------------------
//  coordinators = ( { name; channel; address; secret; delivery; pays;
//                     departements; events; holders; }, ... )
//  Read after the territories: a `pays` filter is checked against them.

static int
s_read_coordinators (pole_config_t *self, s_reader_t *reader,
                     const config_setting_t *list)
{
    if (config_setting_type (list) != CONFIG_TYPE_LIST)
        return s_fail (reader, list, "coordinators must be a list ( { name "
                       "= ...; channel = ...; address = ...; }, ... ), not %s",
                       s_type_name (list));
    pole_notify_config_t *notify = &self->notify;
    int count = config_setting_length (list);
    notify->coordinators = calloc ((size_t) count + 1,
                                   sizeof (pole_coordinator_t));
    if (!notify->coordinators)
        return s_fail (reader, list, "coordinators: out of memory");
    notify->coordinator_count = (size_t) count;
    for (int index = 0; index < count; index++) {
        config_setting_t *element = config_setting_get_elem (list, index);
        pole_coordinator_t *c = &notify->coordinators [index];
        char entry [48];
        snprintf (entry, sizeof entry, "coordinators: entry %d", index + 1);
        if (config_setting_type (element) != CONFIG_TYPE_GROUP)
            return s_fail (reader, element, "%s must be a group { ... }, "
                           "not %s", entry, s_type_name (element));
        const char *channel = NULL;
        int fields = config_setting_length (element);
        for (int k = 0; k < fields; k++) {
            config_setting_t *item = config_setting_get_elem (element, k);
            const char *key = config_setting_name (item);
            char label [96];
            snprintf (label, sizeof label, "%s: %s", entry, key ? key : "?");
            int rc = 0;
            if (s_streq (key, "name"))
                rc = s_get_string (reader, item, label, &c->name);
            else
            if (s_streq (key, "address"))
                rc = s_get_string (reader, item, label, &c->address);
            else
            if (s_streq (key, "secret"))
                rc = s_get_string (reader, item, label, &c->secret);
            else
            if (s_streq (key, "channel") || s_streq (key, "delivery")) {
                if (config_setting_type (item) != CONFIG_TYPE_STRING)
                    rc = s_fail (reader, item, "%s must be a string", label);
                else
                if (s_streq (key, "channel")) {
                    channel = config_setting_get_string (item);
                    if (strcmp (channel, "email") == 0)
                        c->channel = POLE_CHANNEL_EMAIL;
                    else
                    if (strcmp (channel, "webhook") == 0)
                        c->channel = POLE_CHANNEL_WEBHOOK;
                    else
                    if (strcmp (channel, "command") == 0)
                        c->channel = POLE_CHANNEL_COMMAND;
                    else
                        rc = s_fail (reader, item, "%s must be email, "
                                     "webhook or command, not \"%s\"",
                                     label, channel);
                }
                else {
                    const char *delivery = config_setting_get_string (item);
                    if (strcmp (delivery, "digest") == 0)
                        c->digest = true;
                    else
                    if (strcmp (delivery, "immediate") != 0)
                        rc = s_fail (reader, item, "%s must be immediate or "
                                     "digest, not \"%s\"", label, delivery);
                }
            }
            else
            if (s_streq (key, "pays")) {
                rc = s_get_string_list (reader, item, label, &c->pays,
                                        &c->pays_count);
                //  Keep the canonical names: routing compares those
                for (size_t p = 0; rc == 0 && p < c->pays_count; p++) {
                    const pole_territory_t *territory
                        = pole_pays_lookup (&self->params, c->pays [p]);
                    if (!territory)
                        rc = s_fail (reader, item, "%s: \"%s\" is not one "
                                     "of the territories (list the "
                                     "territories before the coordinators)",
                                     label, c->pays [p]);
                    else {
                        char *canonical = strdup (territory->name);
                        if (canonical) {
                            free (c->pays [p]);
                            c->pays [p] = canonical;
                        }
                    }
                }
            }
            else
            if (s_streq (key, "events")) {
                rc = s_get_string_list (reader, item, label, &c->events,
                                        &c->event_count);
                for (size_t e = 0; rc == 0 && e < c->event_count; e++)
                    if (pole_event_from_name (c->events [e]) < 0)
                        rc = s_fail (reader, item, "%s: \"%s\" is not an "
                                     "event of the workflow", label,
                                     c->events [e]);
            }
            else
            if (s_streq (key, "holders"))
                rc = s_get_string_list (reader, item, label, &c->holders,
                                        &c->holder_count);
            else
            if (s_streq (key, "departements")) {
                int type = config_setting_type (item);
                if (type != CONFIG_TYPE_ARRAY && type != CONFIG_TYPE_LIST)
                    rc = s_fail (reader, item, "%s must be an array "
                                 "[ 22, 35 ]", label);
                int length = rc ? 0 : config_setting_length (item);
                c->departements = calloc ((size_t) length + 1, sizeof (int));
                for (int d = 0; rc == 0 && d < length; d++) {
                    rc = s_get_int (reader, config_setting_get_elem (item, d),
                                    label, 1, INT_MAX, &c->departements [d]);
                    c->departement_count = (size_t) d + 1;
                }
            }
            else
                rc = s_unknown (reader, item, "coordinators",
                                "name, channel, address, secret, delivery, "
                                "pays, departements, events, holders");
            if (rc)
                return -1;
        }
        if (!c->name)
            return s_fail (reader, element, "%s has no name", entry);
        if (!channel)
            return s_fail (reader, element, "%s (%s) has no channel", entry,
                           c->name);
        if (!c->address)
            return s_fail (reader, element, "%s (%s) has no address", entry,
                           c->name);
        if (c->channel == POLE_CHANNEL_WEBHOOK && !c->secret)
            return s_fail (reader, element, "%s (%s): a webhook needs a "
                           "secret to sign its body with", entry, c->name);
        if (c->channel == POLE_CHANNEL_COMMAND && c->address [0] != '/')
            return s_fail (reader, element, "%s (%s): the command must be an "
                           "absolute path", entry, c->name);
        if (c->channel == POLE_CHANNEL_WEBHOOK
        &&  strncmp (c->address, "http://", 7) != 0
        &&  strncmp (c->address, "https://", 8) != 0)
            return s_fail (reader, element, "%s (%s): a webhook address is "
                           "an http:// or https:// URL", entry, c->name);
        for (int other = 0; other < index; other++)
            if (strcmp (notify->coordinators [other].name, c->name) == 0)
                return s_fail (reader, element, "%s: the name \"%s\" is "
                               "already used by entry %d", entry, c->name,
                               other + 1);
    }
    return 0;
}

static void
s_notify_free (pole_notify_config_t *notify)
{
    for (size_t index = 0; index < notify->coordinator_count; index++) {
        pole_coordinator_t *c = &notify->coordinators [index];
        free (c->name);
        free (c->address);
        free (c->secret);
        s_free_string_list (c->pays, c->pays_count);
        s_free_string_list (c->events, c->event_count);
        s_free_string_list (c->holders, c->holder_count);
        free (c->departements);
    }
    free (notify->coordinators);
    free (notify->pub_endpoint);
    free (notify->smtp_url);
    free (notify->smtp_from);
    free (notify->smtp_username);
    free (notify->smtp_password);
}


//  --------------------------------------------------------------------------
//  calendar = { clock, study_deadline_months, study_reminder_days,
//               year_months, report_due_days, report_reminder_days }

static int
s_read_calendar (pole_config_t *self, s_reader_t *reader,
                 const config_setting_t *group)
{
    if (s_expect_group (reader, group, "calendar"))
        return -1;
    pole_calendar_config_t *calendar = &self->calendar;
    int count = config_setting_length (group);
    for (int index = 0; index < count; index++) {
        config_setting_t *setting = config_setting_get_elem (group, index);
        const char *name = config_setting_name (setting);
        int rc;
        if (s_streq (name, "clock")) {
            const char *value = config_setting_type (setting)
                                    == CONFIG_TYPE_STRING
                              ? config_setting_get_string (setting)
                              : NULL;
            if (value && strcmp (value, "real") == 0)
                calendar->simulated = false, rc = 0;
            else
            if (value && strcmp (value, "simulated") == 0)
                calendar->simulated = true, rc = 0;
            else
                rc = s_fail (reader, setting,
                             "calendar.clock must be \"real\" or "
                             "\"simulated\"");
        }
        else
        if (s_streq (name, "study_deadline_months"))
            rc = s_get_int (reader, setting, "calendar.study_deadline_months",
                            1, 120, &calendar->study_deadline_months);
        else
        if (s_streq (name, "study_reminder_days"))
            rc = s_get_int (reader, setting, "calendar.study_reminder_days",
                            0, 365, &calendar->study_reminder_days);
        else
        if (s_streq (name, "year_months"))
            rc = s_get_int (reader, setting, "calendar.year_months", 1, 120,
                            &calendar->year_months);
        else
        if (s_streq (name, "report_due_days"))
            rc = s_get_int (reader, setting, "calendar.report_due_days", 0,
                            365, &calendar->report_due_days);
        else
        if (s_streq (name, "report_reminder_days"))
            rc = s_get_int (reader, setting, "calendar.report_reminder_days",
                            0, 365, &calendar->report_reminder_days);
        else
            rc = s_unknown (reader, setting, "calendar",
                            "clock, study_deadline_months, "
                            "study_reminder_days, year_months, "
                            "report_due_days, report_reminder_days");
        if (rc)
            return -1;
    }
    return 0;
}


//  --------------------------------------------------------------------------
//  curve = { cert = "/etc/pole/poled.cert"; }
//  The server's key pair, as czmq saves it (zcert_save): the public key in
//  the file, the secret key in FILE_secret. Loaded now so that a missing
//  or unreadable key is a configuration error with its line, not a daemon
//  that starts and then cannot authenticate anyone.

static int
s_read_curve (pole_config_t *self, s_reader_t *reader,
              const config_setting_t *group)
{
    if (s_expect_group (reader, group, "curve"))
        return -1;
    int count = config_setting_length (group);
    for (int index = 0; index < count; index++) {
        config_setting_t *setting = config_setting_get_elem (group, index);
        if (!s_streq (config_setting_name (setting), "cert"))
            return s_unknown (reader, setting, "curve", "cert");
        if (s_get_string (reader, setting, "curve.cert",
                          &self->curve_cert_path))
            return -1;
        zcert_destroy (&self->curve_cert);
        char secret_path[PATH_MAX];
        snprintf (secret_path, sizeof secret_path, "%s_secret",
                  self->curve_cert_path);
        if (access (self->curve_cert_path, R_OK) != 0
            || access (secret_path, R_OK) != 0)
            return s_fail (reader, setting,
                           "curve.cert: cannot read the server's key pair "
                           "%s and %s: %s (make one with 'polectl keygen "
                           "%s')",
                           self->curve_cert_path, secret_path,
                           strerror (errno), self->curve_cert_path);
        self->curve_cert = zcert_load (self->curve_cert_path);
        if (!self->curve_cert)
            return s_fail (reader, setting,
                           "curve.cert: %s is not a key pair written by "
                           "'polectl keygen' (a czmq certificate)",
                           self->curve_cert_path);
        //  A secret file without a secret key loads as all zeros
        static const byte zero[32] = {0};
        if (memcmp (zcert_secret_key (self->curve_cert), zero, 32) == 0)
            return s_fail (reader, setting,
                           "curve.cert: %s holds no secret key", secret_path);
    }
    return 0;
}


//  --------------------------------------------------------------------------
//  keys = ( { name = "..."; role = "cres"; key = "Z85"; holder = "..."; } )
//  Who may connect over CURVE, under which name (recorded as the actor of
//  what they send) and with which role. A holder's key names the holder
//  whose dossiers it may act on (by default its own name).

static int
s_read_keys (pole_config_t *self, s_reader_t *reader,
             const config_setting_t *list)
{
    if (config_setting_type (list) != CONFIG_TYPE_LIST)
        return s_fail (reader, list,
                       "keys must be a list ( { name = \"...\"; role = "
                       "\"cres\"; key = \"...\"; }, ... ), not %s",
                       s_type_name (list));
    int count = config_setting_length (list);
    self->keys = calloc (count ? count : 1, sizeof (pole_key_t));
    if (!self->keys)
        return s_fail (reader, list, "keys: out of memory");
    for (int index = 0; index < count; index++) {
        config_setting_t *entry = config_setting_get_elem (list, index);
        char label[64];
        snprintf (label, sizeof label, "keys entry %d", index + 1);
        if (s_expect_group (reader, entry, label))
            return -1;
        pole_key_t *key = &self->keys[self->key_count++];
        int fields = config_setting_length (entry);
        for (int f = 0; f < fields; f++) {
            config_setting_t *setting = config_setting_get_elem (entry, f);
            const char *name = config_setting_name (setting);
            int rc;
            if (s_streq (name, "name")) {
                rc = s_get_string (reader, setting, "name", &key->name);
                if (rc == 0)
                    rc = s_check_name (reader, setting, label, key->name);
                //  The name is recorded as the actor, a frame of at most
                //  64 bytes on the wire and in the history
                if (rc == 0 && strlen (key->name) > 64)
                    rc = s_fail (reader, setting,
                                 "%s: name is recorded as the actor and "
                                 "must be at most 64 bytes",
                                 label);
            }
            else
            if (s_streq (name, "role")) {
                char *role = NULL;
                rc = s_get_string (reader, setting, "role", &role);
                int bit = rc == 0 ? pole_role_from_name (role) : -1;
                if (rc == 0 && (bit < 0 || bit == POLE_ROLE_CALENDAR))
                    rc = s_fail (reader, setting,
                                 "%s: role \"%s\" is not one of holder, "
                                 "cres, region, admin",
                                 label, role);
                if (rc == 0)
                    key->role = pole_role_name (bit);
                free (role);
            }
            else
            if (s_streq (name, "key")) {
                rc = s_get_string (reader, setting, "key", &key->key);
                byte decoded[32];
                if (rc == 0
                    && (strlen (key->key) != 40
                        || !zmq_z85_decode (decoded, key->key)))
                    rc = s_fail (reader, setting,
                                 "%s: key must be a public key of 40 Z85 "
                                 "characters, as 'polectl keygen' prints it",
                                 label);
            }
            else
            if (s_streq (name, "holder")) {
                rc = s_get_string (reader, setting, "holder", &key->holder);
                if (rc == 0)
                    rc = s_check_name (reader, setting, label, key->holder);
            }
            else
                rc = s_unknown (reader, setting, "keys",
                                "name, role, key and holder");
            if (rc)
                return -1;
        }
        if (!key->name || !key->role || !key->key)
            return s_fail (reader, entry,
                           "%s: name, role and key are required", label);
        if (key->holder && strcmp (key->role, "holder") != 0)
            return s_fail (reader, entry,
                           "%s: holder is for keys of role holder only",
                           label);
        if (!key->holder && strcmp (key->role, "holder") == 0) {
            key->holder = strdup (key->name);
            if (!key->holder)
                return s_fail (reader, entry, "keys: out of memory");
        }
        for (size_t other = 0; other + 1 < self->key_count; other++) {
            if (strcmp (self->keys[other].key, key->key) == 0)
                return s_fail (reader, entry,
                               "%s: this key is already given to \"%s\"; "
                               "one key, one person or tool",
                               label, self->keys[other].name);
            if (strcmp (self->keys[other].name, key->name) == 0)
                return s_fail (reader, entry,
                               "%s: the name \"%s\" is already used by "
                               "another key; names are what the history "
                               "records, they must tell senders apart",
                               label, key->name);
        }
    }
    return 0;
}


//  --------------------------------------------------------------------------
//  The top level: daemon, programme and territories, in any order. Each
//  part is read in the order of the file so that the first error reported
//  is the first one an administrator reading top-down would meet.

static int
s_read_root (pole_config_t *self, s_reader_t *reader,
             const config_setting_t *root)
{
    bool have_territories = false;
    int count = config_setting_length (root);
    for (int index = 0; index < count; index++) {
        config_setting_t *setting = config_setting_get_elem (root, index);
        const char *name = config_setting_name (setting);
        int rc;
        if (s_streq (name, "daemon"))
            rc = s_read_daemon (self, reader, setting);
        else
        if (s_streq (name, "programme"))
            rc = s_read_programme (self, reader, setting);
        else
        if (s_streq (name, "territories")) {
            rc = s_read_territories (self, reader, setting);
            have_territories = true;
        }
        else
        if (s_streq (name, "roles"))
            rc = s_read_roles (self, reader, setting);
        else
        if (s_streq (name, "notify"))
            rc = s_read_notify (self, reader, setting);
        else
        if (s_streq (name, "calendar"))
            rc = s_read_calendar (self, reader, setting);
        else
        if (s_streq (name, "curve"))
            rc = s_read_curve (self, reader, setting);
        else
        if (s_streq (name, "keys"))
            rc = s_read_keys (self, reader, setting);
        else
        if (s_streq (name, "coordinators")) {
            rc = have_territories
               ? s_read_coordinators (self, reader, setting)
               : s_fail (reader, setting, "coordinators must come after "
                         "territories (their pays filters name territories)");
        }
        else
            rc = s_unknown (reader, setting, NULL,
                            "daemon, programme, territories, roles, notify, "
                            "coordinators, calendar, curve and keys");
        if (rc)
            return -1;
    }
    if (!have_territories)
        return s_fail (reader, NULL,
                       "territories is required: list the Pays a dossier may "
                       "be opened in, e.g. territories = ( { name = \"Brest\"; "
                       "departement = 29; } );");
    return 0;
}


//  --------------------------------------------------------------------------
//  Load and validate `path`.

pole_config_t *
pole_config_load (const char *path, char *error, size_t error_size)
{
    s_reader_t reader = { path ? path : "(null)", error, error_size };
    if (error && error_size > 0)
        error [0] = 0;
    if (!path) {
        s_fail (&reader, NULL, "no configuration file given");
        return NULL;
    }

    pole_config_t *self = calloc (1, sizeof (pole_config_t));
    if (!self) {
        s_fail (&reader, NULL, "out of memory");
        return NULL;
    }
    pole_params_defaults (&self->params);
    self->params.territories = NULL;
    self->params.territory_count = 0;
    self->max_message_size = S_DEFAULT_MAX_MESSAGE_SIZE;
    self->batch_max = S_DEFAULT_BATCH_MAX;
    self->path = strdup (path);
    self->endpoint = strdup (S_DEFAULT_ENDPOINT);
    self->database = strdup (S_DEFAULT_DATABASE);
    self->local_endpoint = strdup ("");
    //  Calendar defaults: see docs/CALENDAR.md
    self->calendar.study_deadline_months = 12;
    self->calendar.study_reminder_days = 30;
    self->calendar.year_months = 12;
    self->calendar.report_due_days = 30;
    self->calendar.report_reminder_days = 30;
    //  Notification defaults: see docs/NOTIFY.md
    pole_notify_config_t *notify = &self->notify;
    //  No live stream unless configured: two daemons on one host must not
    //  fight over a default port
    notify->pub_endpoint = strdup ("");
    notify->max_attempts = 8;
    notify->backoff_initial_ms = 2000;
    notify->backoff_max_ms = 3600000;
    notify->keep_delivered_days = 30;
    notify->digest_hour = 18;
    notify->webhook_timeout_ms = 5000;
    notify->command_timeout_ms = 10000;
    notify->smtp_url = strdup ("smtp://127.0.0.1:25");
    notify->smtp_from = strdup ("poled@localhost");
    notify->smtp_username = strdup ("");
    notify->smtp_password = strdup ("");
    if (!self->path || !self->endpoint || !self->database
    ||  !self->local_endpoint
    ||  !notify->pub_endpoint || !notify->smtp_url || !notify->smtp_from
    ||  !notify->smtp_username || !notify->smtp_password) {
        s_fail (&reader, NULL, "out of memory");
        pole_config_destroy (&self);
        return NULL;
    }

    config_t cfg;
    config_init (&cfg);
    errno = 0;
    if (config_read_file (&cfg, path) != CONFIG_TRUE) {
        if (config_error_type (&cfg) == CONFIG_ERR_FILE_IO) {
            //  libconfig only says "file I/O error"; errno still holds
            //  what fopen() found (missing file, permission denied)
            int saved = errno;
            s_fail (&reader, NULL, "cannot read the configuration: %s",
                    saved ? strerror (saved) : "not a readable file");
        }
        else
        if (error && error_size > 0) {
            const char *file = config_error_file (&cfg);
            snprintf (error, error_size, "%s:%d: %s", file ? file : path,
                      config_error_line (&cfg), config_error_text (&cfg));
        }
        config_destroy (&cfg);
        pole_config_destroy (&self);
        return NULL;
    }

    int rc = s_read_root (self, &reader, config_root_setting (&cfg));
    config_destroy (&cfg);
    if (rc)
        pole_config_destroy (&self);
    return self;
}


//  --------------------------------------------------------------------------
//  Destroy the configuration, null the caller's pointer; safe on NULL and
//  twice.

void
pole_config_destroy (pole_config_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    pole_config_t *self = *self_p;
    for (size_t index = 0; index < self->territory_count; index++)
        //  The names were strdup'ed here; the struct shared with the engine
        //  only exposes them as const
        free ((char *) self->territories [index].name);
    free (self->territories);
    s_notify_free (&self->notify);
    for (size_t index = 0; index < self->role_count; index++)
        free (self->role_actors [index]);
    free (self->role_actors);
    free ((void *) self->role_names);
    for (size_t index = 0; index < self->key_count; index++) {
        free (self->keys [index].name);
        free (self->keys [index].holder);
        free (self->keys [index].key);
    }
    free (self->keys);
    zcert_destroy (&self->curve_cert);
    free (self->curve_cert_path);
    free (self->local_endpoint);
    free (self->database);
    free (self->endpoint);
    free (self->path);
    free (self);
    *self_p = NULL;
}


const pole_params_t *
pole_config_params (pole_config_t *self)
{
    return self ? &self->params : NULL;
}

const char *
pole_config_endpoint (pole_config_t *self)
{
    return self ? self->endpoint : NULL;
}

const char *
pole_config_database (pole_config_t *self)
{
    return self ? self->database : NULL;
}

int
pole_config_max_message_size (pole_config_t *self)
{
    return self ? self->max_message_size : S_DEFAULT_MAX_MESSAGE_SIZE;
}

int
pole_config_batch_max (pole_config_t *self)
{
    return self ? self->batch_max : S_DEFAULT_BATCH_MAX;
}

const char *
pole_config_path (pole_config_t *self)
{
    return self ? self->path : NULL;
}

const char *
pole_config_role (pole_config_t *self, const char *actor)
{
    if (self && actor)
        for (size_t index = 0; index < self->role_count; index++)
            if (strcmp (self->role_actors [index], actor) == 0)
                return self->role_names [index];
    return "holder";
}

const pole_notify_config_t *
pole_config_notify (pole_config_t *self)
{
    return self ? &self->notify : NULL;
}

void
pole_config_set_pub_endpoint (pole_config_t *self, const char *endpoint)
{
    char *copy = strdup (endpoint ? endpoint : "");
    if (copy) {
        free (self->notify.pub_endpoint);
        self->notify.pub_endpoint = copy;
    }
}

const pole_calendar_config_t *
pole_config_calendar (pole_config_t *self)
{
    return self ? &self->calendar : NULL;
}

const char *
pole_config_local_endpoint (pole_config_t *self)
{
    return self ? self->local_endpoint : "";
}

const char *
pole_config_curve_cert_path (pole_config_t *self)
{
    return self ? self->curve_cert_path : NULL;
}

zcert_t *
pole_config_curve_cert (pole_config_t *self)
{
    return self ? self->curve_cert : NULL;
}

size_t
pole_config_key_count (pole_config_t *self)
{
    return self ? self->key_count : 0;
}

const pole_key_t *
pole_config_key (pole_config_t *self, size_t index)
{
    return self && index < self->key_count ? &self->keys [index] : NULL;
}

const pole_key_t *
pole_config_key_find (pole_config_t *self, const char *public_key)
{
    if (self && public_key)
        for (size_t index = 0; index < self->key_count; index++)
            if (strcmp (self->keys [index].key, public_key) == 0)
                return &self->keys [index];
    return NULL;
}

void
pole_config_set_local_endpoint (pole_config_t *self, const char *endpoint)
{
    char *copy = strdup (endpoint ? endpoint : "");
    if (copy) {
        free (self->local_endpoint);
        self->local_endpoint = copy;
    }
}
