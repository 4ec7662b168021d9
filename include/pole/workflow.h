/*  =========================================================================
    pole_workflow - the lifecycle of a dossier, declared once, as data

    This header names the states and events of DOMAIN.md and exposes the
    transition table and the event field specifications. Everything that
    needs to know "what may follow what" (the engine, polectl graph, the
    generated documentation) reads these tables; nothing else encodes the
    lifecycle.
    =========================================================================
*/
#ifndef POLE_WORKFLOW_H_INCLUDED
#define POLE_WORKFLOW_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/*  States of a dossier. POLE_S_NONE is the pseudo-state before `open`.    */
typedef enum {
    POLE_S_NONE = 0,
    POLE_S_DRAFT,
    POLE_S_STUDY_REQUESTED,
    POLE_S_STUDY_FUNDED,
    POLE_S_STUDY_DELIVERED,
    POLE_S_VALIDATED,
    POLE_S_POLE_CREATED,
    POLE_S_POSTS_REQUESTED,
    POLE_S_FUNDING_YEAR_1,
    POLE_S_FUNDING_YEAR_2,
    POLE_S_FUNDING_YEAR_3,
    POLE_S_OPERATING,
    POLE_S_STUDY_DECLINED,
    POLE_S_NOT_VALIDATED,
    POLE_S_WITHDRAWN,
    POLE_S_CLOSED,
    POLE_S_COUNT
} pole_state_t;

/*  Pseudo-targets used in the transition table                            */
#define POLE_TO_SAME     (-1)   /* the event records, the state is kept    */
#define POLE_TO_PREVIOUS (-2)   /* reopen: back to the state it left       */

typedef enum {
    POLE_E_OPEN = 0,
    POLE_E_LEGITIMATE_HOLDER,
    POLE_E_REQUEST_STUDY,
    POLE_E_GRANT_STUDY,
    POLE_E_DECLINE_STUDY,
    POLE_E_DELIVER_STUDY,
    POLE_E_VALIDATE,
    POLE_E_REJECT,
    POLE_E_CREATE_POLE,
    POLE_E_REQUEST_POSTS,
    POLE_E_GRANT_POSTS,
    POLE_E_DECLINE_POSTS,
    POLE_E_FILE_ANNUAL_REPORT,
    POLE_E_START_NEXT_YEAR,
    POLE_E_ADD_COFUNDING,
    POLE_E_NOTE,
    POLE_E_WITHDRAW,
    POLE_E_CLOSE,
    POLE_E_REOPEN,
    POLE_E_REMINDER,            /* the calendar only: a deadline comes     */
    POLE_E_OVERDUE,             /* the calendar only: a deadline passed    */
    POLE_E_COUNT
} pole_event_t;

/*  Guards that choose between rows with the same (from, event)           */
typedef enum {
    POLE_G_NONE = 0,
    POLE_G_MORE_YEARS,  /* start_next_year: year k < funding_years        */
    POLE_G_LAST_YEAR    /* start_next_year: year k == funding_years        */
} pole_guard_t;

/*  One row of the transition table. `to` is a pole_state_t or one of the
    POLE_TO_* pseudo-targets.                                              */
typedef struct {
    pole_state_t from;
    pole_event_t event;
    int to;
    pole_guard_t guard;
} pole_transition_t;

/*  Kinds of field values                                                  */
typedef enum {
    POLE_F_TEXT = 0,    /* non-empty UTF-8 text                            */
    POLE_F_EUROS,       /* whole euros, decimal, > 0                       */
    POLE_F_COUNT,       /* small positive integer (posts, year)            */
    POLE_F_ENUM,        /* one of `choices`, comma-separated               */
    POLE_F_LIST         /* comma-separated names                           */
} pole_field_kind_t;

typedef struct {
    const char *name;
    pole_field_kind_t kind;
    bool required;
    const char *choices;        /* POLE_F_ENUM, and POLE_F_LIST items: allowed
                                   values, comma-separated; NULL = any     */
} pole_field_spec_t;

#define POLE_MAX_EVENT_FIELDS 6

typedef struct {
    pole_event_t event;
    const char *name;
    const char *summary;        /* one line, for docs and --help           */
    pole_field_spec_t fields[POLE_MAX_EVENT_FIELDS];
} pole_event_spec_t;

/*  The roles of DOMAIN.md, as bits, for the authorisation table. The
    calendar is an actor of its own: only it sends reminder and overdue.  */
typedef enum {
    POLE_ROLE_HOLDER   = 1,
    POLE_ROLE_CRES     = 2,
    POLE_ROLE_REGION   = 4,
    POLE_ROLE_ADMIN    = 8,
    POLE_ROLE_CALENDAR = 16
} pole_role_t;

/*  A role's name (holder, cres, region, admin, calendar) and back; NULL or
    -1 when unknown.                                                       */
const char *pole_role_name (int role);
int pole_role_from_name (const char *name);

/*  The authorisation table: the roles (bits) that may send `event`. A
    holder may send them for its own dossiers only (the server checks
    ownership). 0 for an unknown event.                                    */
unsigned pole_workflow_event_roles (pole_event_t event);

/*  Names, as on the wire and the command line. Unknown: NULL / -1.       */
const char *pole_state_name (int state);
int pole_state_from_name (const char *name);
const char *pole_event_name (int event);
int pole_event_from_name (const char *name);

/*  Terminal states: study_declined, not_validated, withdrawn, closed.    */
bool pole_state_is_terminal (pole_state_t state);

/*  True for an event worth naming as "what is expected next" in a state
    that accepts it: not those always possible (note, add_cofunding), not
    the corrections (reopen), not the calendar's own (reminder, overdue).   */
bool pole_workflow_is_expected_next (pole_event_t event);

/*  The whole transition table; *count receives its length.               */
const pole_transition_t *pole_workflow_transitions (size_t *count);

/*  The field specification of an event, or NULL for an unknown event.    */
const pole_event_spec_t *pole_workflow_event_spec (pole_event_t event);

/*  Write the workflow as a Graphviz DOT digraph to `out` (a FILE *).
    Produced from the transition table only.                               */
void pole_workflow_print_dot (void *out);

/*  The same digraph with the path of one dossier highlighted: step i (from
    0) is the event `events[i]` that brought the dossier to `states[i]`, the
    state before step 0 being POLE_S_NONE (so step 0 is normally open). The
    states visited are filled; each transition taken is drawn bold, its
    label giving the step numbers (from 1) and the events ("3: grant_study");
    the rest of the workflow is grey. A step that no row of the table draws
    (a reopen, which goes back to the state it left) gets an edge of its
    own, bold and dashed. Steps with an unknown state or event are skipped.
    `out` is a FILE *.                                                     */
void pole_workflow_print_dot_path (void *out, const int *states,
                                   const int *events, size_t steps);

/*  Write the transition table as a Markdown table (for docs/WORKFLOW.md),
    then the table of event fields. Produced from the tables only.         */
void pole_workflow_print_markdown (void *out);

#ifdef __cplusplus
}
#endif

#endif
