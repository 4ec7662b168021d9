/*  =========================================================================
    pole_engine - deciding an event: a pure function

    pole_engine_decide() takes a dossier as it stands, an event with its
    fields, the programme parameters and the time, and returns either the
    new state or a refusal naming the rule that refused. It does no I/O,
    allocates nothing that outlives the call and reads no global state, so
    that it can be tested exhaustively and replayed to rebuild the store.

    pole_engine_apply() then folds an accepted event into the dossier's
    facts. Rebuilding the current dossiers from the event log is nothing
    more than apply() over the log, in sequence order.
    =========================================================================
*/
#ifndef POLE_ENGINE_H_INCLUDED
#define POLE_ENGINE_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "pole/workflow.h"

#ifdef __cplusplus
extern "C" {
#endif

/*  One key=value field of an event. Borrowed strings.                     */
typedef struct {
    const char *key;
    const char *value;
} pole_field_t;

/*  One of the configured territories (Pays).                              */
typedef struct {
    const char *name;           /* canonical name, e.g. "Trégor-Goëlo"     */
    int departement;            /* 22, 29, 35, 56                          */
} pole_territory_t;

/*  Programme parameters, from the configuration (the sheet's defaults).   */
typedef struct {
    int64_t study_cap_eur;      /* 25000                                   */
    int max_posts;              /* 2                                       */
    int64_t post_eur_per_year;  /* 35000                                   */
    int funding_years;          /* 3 (1..3: the states name years 1..3)    */
    int live_per_pays;          /* 1: live (non-terminal) dossiers a Pays
                                   may hold at once                        */
    const pole_territory_t *territories;
    size_t territory_count;
} pole_params_t;

/*  Fill `params` with the sheet's values and no territories.              */
void pole_params_defaults (pole_params_t *params);

/*  The current facts of a dossier, as kept in the store. Strings are
    fixed-size so that the struct can live on the stack and be copied.     */
#define POLE_NAME_MAX 256
typedef struct {
    int64_t id;
    char pays[POLE_NAME_MAX];       /* canonical territory name            */
    char holder[POLE_NAME_MAX];
    char holder_type[32];
    char title[POLE_NAME_MAX];
    pole_state_t state;
    pole_state_t prev_state;        /* state left when it became terminal  */
    int64_t version;                /* events applied to this dossier      */
    int64_t study_asked;            /* euros                               */
    int64_t study_granted;          /* euros                               */
    int posts_asked;
    int posts_granted;
    int funding_year;               /* current funding year, 0 before      */
    unsigned reports_filed;         /* bit k-1 set: report of year k filed */
    char mode[32];                  /* ex_nihilo | adossement              */
    char pole_name[POLE_NAME_MAX];
    char host[POLE_NAME_MAX];
    int64_t cofunding_eur;          /* sum of add_cofunding amounts        */
} pole_dossier_t;

/*  Facts about other dossiers that a rule needs; the caller reads them
    from the store so that the engine itself stays pure.                   */
typedef struct {
    int live_in_pays;   /* live dossiers in the Pays, this one excluded    */
    const char *role;   /* the sender's role: holder, cres, region, admin;
                           NULL is treated as holder                       */
} pole_context_t;

#define POLE_MESSAGE_MAX 512

typedef struct {
    bool accepted;
    pole_state_t to;                    /* new state, when accepted        */
    const char *rule;                   /* refusing rule id, e.g.
                                           "study_cap"; NULL if accepted   */
    char message[POLE_MESSAGE_MAX];     /* why, in a programme officer's
                                           words                           */
    char warning[POLE_MESSAGE_MAX];     /* non-empty: accepted with this
                                           warning                         */
    char pays[POLE_NAME_MAX];           /* open: canonical Pays name       */
} pole_decision_t;

/*  Decide `event` with `fields` on `dossier` (state POLE_S_NONE for open).
    Always fills `out`; returns 0 if accepted, -1 if refused.              */
int pole_engine_decide (const pole_dossier_t *dossier, pole_event_t event,
                        const pole_field_t *fields, size_t field_count,
                        const pole_params_t *params, const pole_context_t *ctx,
                        time_t now, pole_decision_t *out);

/*  Fold an accepted event into the dossier: sets the state to `to`,
    records the facts the event carries and increments the version. For
    open, `pays` is the canonical Pays name (from the decision).           */
void pole_engine_apply (pole_dossier_t *dossier, pole_event_t event,
                        const pole_field_t *fields, size_t field_count,
                        pole_state_t to);

/*  Look a Pays up among the territories, forgiving case, accents, a
    leading "Pays de/des/du/d'" and spaces versus hyphens. Returns the
    territory or NULL.                                                     */
const pole_territory_t *pole_pays_lookup (const pole_params_t *params,
                                          const char *name);

/*  The value of `key` among `fields`, or NULL.                            */
const char *pole_fields_get (const pole_field_t *fields, size_t count,
                             const char *key);

/*  Parse whole euros or a count: decimal digits only, > 0, <= max.
    Returns 0 and sets *value, or -1.                                      */
int pole_parse_positive (const char *text, int64_t max, int64_t *value);

#ifdef __cplusplus
}
#endif

#endif
