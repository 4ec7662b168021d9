/*  =========================================================================
    pole_workflow - the lifecycle of a dossier, declared once, as data

    This file holds three tables and nothing that decides:

    - s_transitions: every (state, event) pair the programme accepts and
      the state it leads to. A pair that is not in the table is refused.
      Rows with the same (state, event) are told apart by a guard; only
      start_next_year has two (another funded year, or the last one).
    - s_events: the fields of every event, as in DOMAIN.md. The engine
      validates the fields of an event against this table, and the
      documentation lists them from it.
    - s_state_names: the wire and command-line names of the states.

    The Graphviz and Markdown printers below read the tables and nothing
    else, so that docs/workflow.dot and docs/WORKFLOW.md can never disagree
    with what poled enforces: regenerate them with `make docs`.
    =========================================================================
*/

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pole/workflow.h"

//  --------------------------------------------------------------------------
//  The transition table, grouped by the state the dossier is in. Events
//  that only record something (legitimate_holder, file_annual_report,
//  add_cofunding, note) lead to POLE_TO_SAME; reopen leads back to the
//  state the dossier left when it became terminal.

//  The columns are the point of the table: keep clang-format away
// clang-format off
static const pole_transition_t s_transitions [] = {
    //  Before open: the dossier does not exist yet
    { POLE_S_NONE,            POLE_E_OPEN,               POLE_S_DRAFT,           POLE_G_NONE },

    { POLE_S_DRAFT,           POLE_E_LEGITIMATE_HOLDER,  POLE_TO_SAME,           POLE_G_NONE },
    { POLE_S_DRAFT,           POLE_E_REQUEST_STUDY,      POLE_S_STUDY_REQUESTED, POLE_G_NONE },
    { POLE_S_DRAFT,           POLE_E_ADD_COFUNDING,      POLE_TO_SAME,           POLE_G_NONE },
    { POLE_S_DRAFT,           POLE_E_NOTE,               POLE_TO_SAME,           POLE_G_NONE },
    { POLE_S_DRAFT,           POLE_E_REMINDER,           POLE_TO_SAME,           POLE_G_NONE },
    { POLE_S_DRAFT,           POLE_E_OVERDUE,            POLE_TO_SAME,           POLE_G_NONE },
    { POLE_S_DRAFT,           POLE_E_WITHDRAW,           POLE_S_WITHDRAWN,       POLE_G_NONE },

    //  CRES support for the holder stays possible until the study is granted
    { POLE_S_STUDY_REQUESTED, POLE_E_LEGITIMATE_HOLDER,  POLE_TO_SAME,           POLE_G_NONE },
    { POLE_S_STUDY_REQUESTED, POLE_E_GRANT_STUDY,        POLE_S_STUDY_FUNDED,    POLE_G_NONE },
    { POLE_S_STUDY_REQUESTED, POLE_E_DECLINE_STUDY,      POLE_S_STUDY_DECLINED,  POLE_G_NONE },
    { POLE_S_STUDY_REQUESTED, POLE_E_ADD_COFUNDING,      POLE_TO_SAME,           POLE_G_NONE },
    { POLE_S_STUDY_REQUESTED, POLE_E_NOTE,               POLE_TO_SAME,           POLE_G_NONE },
    { POLE_S_STUDY_REQUESTED, POLE_E_REMINDER,           POLE_TO_SAME,           POLE_G_NONE },
    { POLE_S_STUDY_REQUESTED, POLE_E_OVERDUE,            POLE_TO_SAME,           POLE_G_NONE },
    { POLE_S_STUDY_REQUESTED, POLE_E_WITHDRAW,           POLE_S_WITHDRAWN,       POLE_G_NONE },

    { POLE_S_STUDY_FUNDED,    POLE_E_DELIVER_STUDY,      POLE_S_STUDY_DELIVERED, POLE_G_NONE },
    { POLE_S_STUDY_FUNDED,    POLE_E_ADD_COFUNDING,      POLE_TO_SAME,           POLE_G_NONE },
    { POLE_S_STUDY_FUNDED,    POLE_E_NOTE,               POLE_TO_SAME,           POLE_G_NONE },
    { POLE_S_STUDY_FUNDED,    POLE_E_REMINDER,           POLE_TO_SAME,           POLE_G_NONE },
    { POLE_S_STUDY_FUNDED,    POLE_E_OVERDUE,            POLE_TO_SAME,           POLE_G_NONE },
    { POLE_S_STUDY_FUNDED,    POLE_E_WITHDRAW,           POLE_S_WITHDRAWN,       POLE_G_NONE },

    { POLE_S_STUDY_DELIVERED, POLE_E_VALIDATE,           POLE_S_VALIDATED,       POLE_G_NONE },
    { POLE_S_STUDY_DELIVERED, POLE_E_REJECT,             POLE_S_NOT_VALIDATED,   POLE_G_NONE },
    { POLE_S_STUDY_DELIVERED, POLE_E_ADD_COFUNDING,      POLE_TO_SAME,           POLE_G_NONE },
    { POLE_S_STUDY_DELIVERED, POLE_E_NOTE,               POLE_TO_SAME,           POLE_G_NONE },
    { POLE_S_STUDY_DELIVERED, POLE_E_REMINDER,           POLE_TO_SAME,           POLE_G_NONE },
    { POLE_S_STUDY_DELIVERED, POLE_E_OVERDUE,            POLE_TO_SAME,           POLE_G_NONE },
    { POLE_S_STUDY_DELIVERED, POLE_E_WITHDRAW,           POLE_S_WITHDRAWN,       POLE_G_NONE },

    { POLE_S_VALIDATED,       POLE_E_CREATE_POLE,        POLE_S_POLE_CREATED,    POLE_G_NONE },
    { POLE_S_VALIDATED,       POLE_E_ADD_COFUNDING,      POLE_TO_SAME,           POLE_G_NONE },
    { POLE_S_VALIDATED,       POLE_E_NOTE,               POLE_TO_SAME,           POLE_G_NONE },
    { POLE_S_VALIDATED,       POLE_E_REMINDER,           POLE_TO_SAME,           POLE_G_NONE },
    { POLE_S_VALIDATED,       POLE_E_OVERDUE,            POLE_TO_SAME,           POLE_G_NONE },
    { POLE_S_VALIDATED,       POLE_E_WITHDRAW,           POLE_S_WITHDRAWN,       POLE_G_NONE },

    { POLE_S_POLE_CREATED,    POLE_E_REQUEST_POSTS,      POLE_S_POSTS_REQUESTED, POLE_G_NONE },
    { POLE_S_POLE_CREATED,    POLE_E_ADD_COFUNDING,      POLE_TO_SAME,           POLE_G_NONE },
    { POLE_S_POLE_CREATED,    POLE_E_NOTE,               POLE_TO_SAME,           POLE_G_NONE },
    { POLE_S_POLE_CREATED,    POLE_E_REMINDER,           POLE_TO_SAME,           POLE_G_NONE },
    { POLE_S_POLE_CREATED,    POLE_E_OVERDUE,            POLE_TO_SAME,           POLE_G_NONE },
    { POLE_S_POLE_CREATED,    POLE_E_WITHDRAW,           POLE_S_WITHDRAWN,       POLE_G_NONE },
    { POLE_S_POLE_CREATED,    POLE_E_CLOSE,              POLE_S_CLOSED,          POLE_G_NONE },

    //  A declined request sends the pole back, free to ask again
    { POLE_S_POSTS_REQUESTED, POLE_E_GRANT_POSTS,        POLE_S_FUNDING_YEAR_1,  POLE_G_NONE },
    { POLE_S_POSTS_REQUESTED, POLE_E_DECLINE_POSTS,      POLE_S_POLE_CREATED,    POLE_G_NONE },
    { POLE_S_POSTS_REQUESTED, POLE_E_ADD_COFUNDING,      POLE_TO_SAME,           POLE_G_NONE },
    { POLE_S_POSTS_REQUESTED, POLE_E_NOTE,               POLE_TO_SAME,           POLE_G_NONE },
    { POLE_S_POSTS_REQUESTED, POLE_E_REMINDER,           POLE_TO_SAME,           POLE_G_NONE },
    { POLE_S_POSTS_REQUESTED, POLE_E_OVERDUE,            POLE_TO_SAME,           POLE_G_NONE },

    //  The funded years: funding_years (1..3) in the configuration says
    //  which start_next_year row applies
    { POLE_S_FUNDING_YEAR_1,  POLE_E_FILE_ANNUAL_REPORT, POLE_TO_SAME,           POLE_G_NONE },
    { POLE_S_FUNDING_YEAR_1,  POLE_E_START_NEXT_YEAR,    POLE_S_FUNDING_YEAR_2,  POLE_G_MORE_YEARS },
    { POLE_S_FUNDING_YEAR_1,  POLE_E_START_NEXT_YEAR,    POLE_S_OPERATING,       POLE_G_LAST_YEAR },
    { POLE_S_FUNDING_YEAR_1,  POLE_E_ADD_COFUNDING,      POLE_TO_SAME,           POLE_G_NONE },
    { POLE_S_FUNDING_YEAR_1,  POLE_E_NOTE,               POLE_TO_SAME,           POLE_G_NONE },
    { POLE_S_FUNDING_YEAR_1,  POLE_E_REMINDER,           POLE_TO_SAME,           POLE_G_NONE },
    { POLE_S_FUNDING_YEAR_1,  POLE_E_OVERDUE,            POLE_TO_SAME,           POLE_G_NONE },
    { POLE_S_FUNDING_YEAR_1,  POLE_E_CLOSE,              POLE_S_CLOSED,          POLE_G_NONE },

    { POLE_S_FUNDING_YEAR_2,  POLE_E_FILE_ANNUAL_REPORT, POLE_TO_SAME,           POLE_G_NONE },
    { POLE_S_FUNDING_YEAR_2,  POLE_E_START_NEXT_YEAR,    POLE_S_FUNDING_YEAR_3,  POLE_G_MORE_YEARS },
    { POLE_S_FUNDING_YEAR_2,  POLE_E_START_NEXT_YEAR,    POLE_S_OPERATING,       POLE_G_LAST_YEAR },
    { POLE_S_FUNDING_YEAR_2,  POLE_E_ADD_COFUNDING,      POLE_TO_SAME,           POLE_G_NONE },
    { POLE_S_FUNDING_YEAR_2,  POLE_E_NOTE,               POLE_TO_SAME,           POLE_G_NONE },
    { POLE_S_FUNDING_YEAR_2,  POLE_E_REMINDER,           POLE_TO_SAME,           POLE_G_NONE },
    { POLE_S_FUNDING_YEAR_2,  POLE_E_OVERDUE,            POLE_TO_SAME,           POLE_G_NONE },
    { POLE_S_FUNDING_YEAR_2,  POLE_E_CLOSE,              POLE_S_CLOSED,          POLE_G_NONE },

    { POLE_S_FUNDING_YEAR_3,  POLE_E_FILE_ANNUAL_REPORT, POLE_TO_SAME,           POLE_G_NONE },
    { POLE_S_FUNDING_YEAR_3,  POLE_E_START_NEXT_YEAR,    POLE_S_OPERATING,       POLE_G_LAST_YEAR },
    { POLE_S_FUNDING_YEAR_3,  POLE_E_ADD_COFUNDING,      POLE_TO_SAME,           POLE_G_NONE },
    { POLE_S_FUNDING_YEAR_3,  POLE_E_NOTE,               POLE_TO_SAME,           POLE_G_NONE },
    { POLE_S_FUNDING_YEAR_3,  POLE_E_REMINDER,           POLE_TO_SAME,           POLE_G_NONE },
    { POLE_S_FUNDING_YEAR_3,  POLE_E_OVERDUE,            POLE_TO_SAME,           POLE_G_NONE },
    { POLE_S_FUNDING_YEAR_3,  POLE_E_CLOSE,              POLE_S_CLOSED,          POLE_G_NONE },

    //  A late annual report may still be filed once the funding is over
    { POLE_S_OPERATING,       POLE_E_FILE_ANNUAL_REPORT, POLE_TO_SAME,           POLE_G_NONE },
    { POLE_S_OPERATING,       POLE_E_ADD_COFUNDING,      POLE_TO_SAME,           POLE_G_NONE },
    { POLE_S_OPERATING,       POLE_E_NOTE,               POLE_TO_SAME,           POLE_G_NONE },
    { POLE_S_OPERATING,       POLE_E_REMINDER,           POLE_TO_SAME,           POLE_G_NONE },
    { POLE_S_OPERATING,       POLE_E_OVERDUE,            POLE_TO_SAME,           POLE_G_NONE },
    { POLE_S_OPERATING,       POLE_E_CLOSE,              POLE_S_CLOSED,          POLE_G_NONE },

    //  Terminal states: only a note, or a correction by reopen
    { POLE_S_STUDY_DECLINED,  POLE_E_NOTE,               POLE_TO_SAME,           POLE_G_NONE },
    { POLE_S_STUDY_DECLINED,  POLE_E_REOPEN,             POLE_TO_PREVIOUS,       POLE_G_NONE },
    { POLE_S_NOT_VALIDATED,   POLE_E_NOTE,               POLE_TO_SAME,           POLE_G_NONE },
    { POLE_S_NOT_VALIDATED,   POLE_E_REOPEN,             POLE_TO_PREVIOUS,       POLE_G_NONE },
    { POLE_S_WITHDRAWN,       POLE_E_NOTE,               POLE_TO_SAME,           POLE_G_NONE },
    { POLE_S_WITHDRAWN,       POLE_E_REOPEN,             POLE_TO_PREVIOUS,       POLE_G_NONE },
    { POLE_S_CLOSED,          POLE_E_NOTE,               POLE_TO_SAME,           POLE_G_NONE },
    { POLE_S_CLOSED,          POLE_E_REOPEN,             POLE_TO_PREVIOUS,       POLE_G_NONE },
};

// clang-format on

#define S_TRANSITION_COUNT (sizeof (s_transitions) / sizeof (s_transitions [0]))

//  --------------------------------------------------------------------------
//  The fields of every event, indexed by pole_event_t. A field list ends at
//  the first entry without a name.

// clang-format off
#define S_HOLDER_TYPES      "ess_actor,collectivite,pays"
#define S_STAKEHOLDER_TYPES "association,cooperative,mutuelle,fondation," \
                            "entreprise_ess,collectivite,autre"
#define S_POLE_MODES        "ex_nihilo,adossement"
#define S_CALENDAR_ABOUT    "study_deadline,annual_report"
#define S_REASON            { { "reason", POLE_F_TEXT, true, NULL } }

static const pole_event_spec_t s_events [POLE_E_COUNT] = {
    { POLE_E_OPEN, "open",
      "open a dossier for a pole project in a Pays",
      { { "pays",        POLE_F_TEXT, true,  NULL },
        { "holder",      POLE_F_TEXT, true,  NULL },
        { "holder_type", POLE_F_ENUM, true,  S_HOLDER_TYPES },
        { "title",       POLE_F_TEXT, false, NULL } } },
    { POLE_E_LEGITIMATE_HOLDER, "legitimate_holder",
      "record the CRES support that establishes the holder's legitimacy",
      { { "advisor",     POLE_F_TEXT, false, NULL } } },
    { POLE_E_REQUEST_STUDY, "request_study",
      "ask the Région to fund the prefiguration study",
      { { "amount",      POLE_F_EUROS, true, NULL } } },
    { POLE_E_GRANT_STUDY, "grant_study",
      "the Région funds the study (at most the amount asked and the cap)",
      { { "amount",      POLE_F_EUROS, true, NULL } } },
    { POLE_E_DECLINE_STUDY, "decline_study",
      "the Région declines to fund the study",
      S_REASON },
    { POLE_E_DELIVER_STUDY, "deliver_study",
      "hand in the study: diagnosis, priority actions, governance",
      { { "diagnosis",        POLE_F_TEXT, true, NULL },
        { "priority_actions", POLE_F_TEXT, true, NULL },
        { "governance",       POLE_F_TEXT, true, NULL } } },
    { POLE_E_VALIDATE, "validate",
      "the stakeholders of the core group validate the project",
      { { "stakeholders",      POLE_F_LIST, true,  NULL },
        { "stakeholder_types", POLE_F_LIST, false, S_STAKEHOLDER_TYPES } } },
    { POLE_E_REJECT, "reject",
      "the stakeholders do not validate the project",
      S_REASON },
    { POLE_E_CREATE_POLE, "create_pole",
      "create the pole, ex nihilo or hosted by an existing structure",
      { { "mode",        POLE_F_ENUM, true,  S_POLE_MODES },
        { "name",        POLE_F_TEXT, true,  NULL },
        { "host",        POLE_F_TEXT, false, NULL } } },
    { POLE_E_REQUEST_POSTS, "request_posts",
      "ask the Région to fund the chargé de mission posts",
      { { "posts",       POLE_F_COUNT, true, NULL } } },
    { POLE_E_GRANT_POSTS, "grant_posts",
      "the Région funds the posts; funding year 1 begins",
      { { "posts",       POLE_F_COUNT, true, NULL } } },
    { POLE_E_DECLINE_POSTS, "decline_posts",
      "the Région declines the posts; the pole may ask again",
      S_REASON },
    { POLE_E_FILE_ANNUAL_REPORT, "file_annual_report",
      "file the annual report of a funding year",
      { { "year",        POLE_F_COUNT, true, NULL } } },
    { POLE_E_START_NEXT_YEAR, "start_next_year",
      "open the next funding year, or end the funded years",
      { { NULL, POLE_F_TEXT, false, NULL } } },
    { POLE_E_ADD_COFUNDING, "add_cofunding",
      "record co-funding: funder, amount in euros, calendar year",
      { { "funder",      POLE_F_TEXT,  true, NULL },
        { "amount",      POLE_F_EUROS, true, NULL },
        { "year",        POLE_F_COUNT, true, NULL } } },
    { POLE_E_NOTE, "note",
      "record a free-text note in the history",
      { { "text",        POLE_F_TEXT, true, NULL } } },
    { POLE_E_WITHDRAW, "withdraw",
      "the holder withdraws the project",
      S_REASON },
    { POLE_E_CLOSE, "close",
      "close the pole",
      S_REASON },
    { POLE_E_REOPEN, "reopen",
      "correct a mistake: back to the state the dossier left",
      S_REASON },
    { POLE_E_REMINDER, "reminder",
      "the calendar: a deadline comes (sent by the calendar only)",
      { { "about",       POLE_F_ENUM,  true,  S_CALENDAR_ABOUT },
        { "due",         POLE_F_TEXT,  true,  NULL },
        { "year",        POLE_F_COUNT, false, NULL } } },
    { POLE_E_OVERDUE, "overdue",
      "the calendar: a deadline passed (sent by the calendar only)",
      { { "about",       POLE_F_ENUM,  true,  S_CALENDAR_ABOUT },
        { "due",         POLE_F_TEXT,  true,  NULL },
        { "year",        POLE_F_COUNT, false, NULL } } },
};

// clang-format on

static const char *s_state_names [POLE_S_COUNT] = {
    "none",
    "draft",
    "study_requested",
    "study_funded",
    "study_delivered",
    "validated",
    "pole_created",
    "posts_requested",
    "funding_year_1",
    "funding_year_2",
    "funding_year_3",
    "operating",
    "study_declined",
    "not_validated",
    "withdrawn",
    "closed",
};


//  --------------------------------------------------------------------------
//  Names

const char *
pole_state_name (int state)
{
    if (state < 0 || state >= POLE_S_COUNT)
        return NULL;
    return s_state_names [state];
}

int
pole_state_from_name (const char *name)
{
    if (!name)
        return -1;
    for (int state = 0; state < POLE_S_COUNT; state++)
        if (strcmp (s_state_names [state], name) == 0)
            return state;
    return -1;
}

const char *
pole_event_name (int event)
{
    if (event < 0 || event >= POLE_E_COUNT)
        return NULL;
    return s_events [event].name;
}

int
pole_event_from_name (const char *name)
{
    if (!name)
        return -1;
    for (int event = 0; event < POLE_E_COUNT; event++)
        if (strcmp (s_events [event].name, name) == 0)
            return event;
    return -1;
}

bool
pole_state_is_terminal (pole_state_t state)
{
    return state == POLE_S_STUDY_DECLINED
        || state == POLE_S_NOT_VALIDATED
        || state == POLE_S_WITHDRAWN
        || state == POLE_S_CLOSED;
}

const pole_transition_t *
pole_workflow_transitions (size_t *count)
{
    if (count)
        *count = S_TRANSITION_COUNT;
    return s_transitions;
}

const pole_event_spec_t *
pole_workflow_event_spec (pole_event_t event)
{
    int index = (int) event;
    if (index < 0 || index >= POLE_E_COUNT)
        return NULL;
    return &s_events [index];
}


//  --------------------------------------------------------------------------
//  Printers. They only walk the tables above.

//  Words for a guard, as shown on an edge or in a table cell
static const char *
s_guard_text (pole_guard_t guard)
{
    switch (guard) {
        case POLE_G_MORE_YEARS: return "year < funding_years";
        case POLE_G_LAST_YEAR:  return "year = funding_years";
        default:                return NULL;
    }
}

//  True if an earlier row of the table has the same source and target,
//  so that the DOT printer draws one edge per pair, with every event on it
static bool
s_edge_seen_before (size_t index)
{
    for (size_t earlier = 0; earlier < index; earlier++)
        if (s_transitions [earlier].from == s_transitions [index].from
        &&  s_transitions [earlier].to == s_transitions [index].to)
            return true;
    return false;
}

static const char *
s_dot_target (int to)
{
    //  Every reopen edge goes to the one "previous state" note node
    if (to == POLE_TO_PREVIOUS)
        return "previous_state";
    return pole_state_name (to);
}

//  The path of one dossier through the table, for pole_workflow_print_dot_path:
//  step i is events [i], reaching states [i], from states [i - 1] (NONE
//  before step 0)
typedef struct {
    const int *states;
    const int *events;
    size_t steps;
    long *rows;                 //  s_step_row of each step, once computed
} s_path_t;

//  Colours of the highlighted path
#define S_PATH_FILL    "#cfe8ff"    //  a state visited
#define S_PATH_CURRENT "#8cc4ff"    //  the state the dossier is in
#define S_PATH_EDGE    "#1f5fa8"    //  a transition taken
#define S_PATH_GREY    "color=gray70, fontcolor=gray50"

static bool
s_state_valid (int state)
{
    return state >= POLE_S_NONE && state < POLE_S_COUNT;
}

//  The state a step left, or -1 if unknown
static int
s_step_from (const s_path_t *path, size_t step)
{
    if (step == 0)
        return POLE_S_NONE;
    int from = path->states [step - 1];
    return s_state_valid (from)? from: -1;
}

//  True if the step can be drawn: known states and event
static bool
s_step_valid (const s_path_t *path, size_t step)
{
    int event = path->events [step];
    int to = path->states [step];
    return s_step_from (path, step) >= 0 && to > POLE_S_NONE
        && to < POLE_S_COUNT && event >= 0 && event < POLE_E_COUNT;
}

//  The row of the table a valid step followed (same source, event and
//  target), or -1 if none did: a reopen, whose row leads to the "previous
//  state" note, or a step the table does not know
static long
s_step_row_find (const s_path_t *path, size_t step)
{
    if (!s_step_valid (path, step))
        return -1;
    int from = s_step_from (path, step);
    int to = path->states [step];
    for (size_t index = 0; index < S_TRANSITION_COUNT; index++) {
        const pole_transition_t *row = &s_transitions [index];
        if ((int) row->from != from || (int) row->event != path->events [step])
            continue;
        int target = row->to == POLE_TO_SAME? from: row->to;
        if (target == to)
            return (long) index;
    }
    return -1;
}

static long
s_step_row (const s_path_t *path, size_t step)
{
    return path->rows? path->rows [step]: s_step_row_find (path, step);
}

//  True if the step is drawn on the table's edge of `row` (the pair
//  row.from -> row.to)
static bool
s_step_on_row_edge (const s_path_t *path, size_t step, size_t row)
{
    long own = s_step_row (path, step);
    return own >= 0
        && s_transitions [own].from == s_transitions [row].from
        && s_transitions [own].to == s_transitions [row].to;
}

//  True if the step is drawn on the edge of its own that `other`, a step
//  without a row, stands for (same source and target)
static bool
s_step_on_extra_edge (const s_path_t *path, size_t step, size_t other)
{
    return s_step_valid (path, step) && s_step_row (path, step) < 0
        && s_step_from (path, step) == s_step_from (path, other)
        && path->states [step] == path->states [other];
}

//  The DOT name of a state's node
static const char *
s_dot_node (int state)
{
    return state == POLE_S_NONE? "none": pole_state_name (state);
}

//  The label of a taken edge: one line per event taken on it, with the
//  step numbers (from 1), "3: grant_study", "5, 9: note", or for many
//  "2, 4, ..., 40 (12 times): note". `on` says which steps are on it.
static void
s_print_path_label (FILE *file, const s_path_t *path, size_t key,
                    bool (*on) (const s_path_t *, size_t, size_t))
{
    const char *separator = "";
    for (size_t step = 0; step < path->steps; step++) {
        if (!on (path, step, key))
            continue;
        int event = path->events [step];
        bool seen = false;
        for (size_t earlier = 0; earlier < step && !seen; earlier++)
            seen = on (path, earlier, key) && path->events [earlier] == event;
        if (seen)
            continue;
        size_t count = 0, last = step;
        for (size_t later = step; later < path->steps; later++)
            if (on (path, later, key) && path->events [later] == event) {
                count++;
                last = later;
            }
        fprintf (file, "%s", separator);
        size_t printed = 0;
        for (size_t later = step; later < path->steps; later++) {
            if (!on (path, later, key) || path->events [later] != event)
                continue;
            if (count > 4 && printed == 2) {
                fprintf (file, ", ..., %zu (%zu times)", last + 1, count);
                break;
            }
            fprintf (file, "%s%zu", printed? ", ": "", later + 1);
            printed++;
        }
        fprintf (file, ": %s", pole_event_name (event));
        separator = "\\n";
    }
}

//  The digraph; with a path (not NULL) that path highlighted. Without one
//  the output is docs/workflow.dot, byte for byte.
static void
s_print_dot (FILE *file, const s_path_t *path)
{
    bool visited [POLE_S_COUNT] = { false };
    int current = -1;
    if (path) {
        visited [POLE_S_NONE] = true;
        for (size_t step = 0; step < path->steps; step++)
            if (s_step_valid (path, step)) {
                visited [path->states [step]] = true;
                current = path->states [step];
            }
    }

    //  The comment goes inside the graph: the file starts with "digraph"
    fprintf (file, "digraph pole_workflow {\n");
    if (path)
        fprintf (file, "    // Generated from the workflow table (daemon/workflow.c)"
                       " and the history of one dossier by `polectl graph ID`.\n");
    else
        fprintf (file, "    // Generated from the workflow table (daemon/workflow.c)"
                       " by `polectl graph`; do not edit.\n");
    fprintf (file, "    rankdir=TB;\n");
    fprintf (file, "    node [shape=box, style=rounded, fontname=\"Helvetica\"];\n");
    fprintf (file, "    edge [fontname=\"Helvetica\", fontsize=10];\n");
    fprintf (file, "    none [shape=point, width=0.2, label=\"\"];\n");
    for (int state = POLE_S_NONE + 1; state < POLE_S_COUNT; state++) {
        bool terminal = pole_state_is_terminal ((pole_state_t) state);
        if (!path) {
            if (terminal)
                fprintf (file, "    %s [shape=box, style=\"bold,filled\","
                               " fillcolor=\"#dddddd\", peripheries=2];\n",
                         s_state_names [state]);
            else
                fprintf (file, "    %s;\n", s_state_names [state]);
            continue;
        }
        const char *fill = state == current? S_PATH_CURRENT: S_PATH_FILL;
        const char *width = state == current? ", penwidth=2": "";
        if (visited [state] && terminal)
            fprintf (file, "    %s [shape=box, style=\"bold,filled\","
                           " fillcolor=\"%s\", peripheries=2%s];\n",
                     s_state_names [state], fill, width);
        else
        if (visited [state])
            fprintf (file, "    %s [style=\"rounded,filled\","
                           " fillcolor=\"%s\"%s];\n",
                     s_state_names [state], fill, width);
        else
        if (terminal)
            fprintf (file, "    %s [shape=box, style=\"bold,filled\","
                           " fillcolor=\"#eeeeee\", peripheries=2, "
                           S_PATH_GREY "];\n", s_state_names [state]);
        else
            fprintf (file, "    %s [" S_PATH_GREY "];\n",
                     s_state_names [state]);
    }
    fprintf (file, "    previous_state [shape=note, style=dashed,"
                   " label=\"previous state\\n(the state it left)\"%s];\n",
             path? ", " S_PATH_GREY: "");

    //  One edge per (from, to) pair; its label lists every event on it
    for (size_t index = 0; index < S_TRANSITION_COUNT; index++) {
        const pole_transition_t *row = &s_transitions [index];
        if (s_edge_seen_before (index))
            continue;
        const char *from = pole_state_name ((int) row->from);
        const char *to = row->to == POLE_TO_SAME? from: s_dot_target (row->to);
        bool taken = false;
        for (size_t step = 0; path && step < path->steps && !taken; step++)
            taken = s_step_on_row_edge (path, step, index);
        fprintf (file, "    %s -> %s [label=\"", from, to);
        if (taken) {
            s_print_path_label (file, path, index, s_step_on_row_edge);
            fprintf (file, "\", style=bold, penwidth=2, color=\"" S_PATH_EDGE
                           "\", fontcolor=\"" S_PATH_EDGE "\"];\n");
            continue;
        }
        const char *separator = "";
        for (size_t other = index; other < S_TRANSITION_COUNT; other++) {
            const pole_transition_t *same = &s_transitions [other];
            if (same->from != row->from || same->to != row->to)
                continue;
            fprintf (file, "%s%s", separator, pole_event_name ((int) same->event));
            if (s_guard_text (same->guard))
                fprintf (file, " [%s]", s_guard_text (same->guard));
            separator = "\\n";
        }
        fprintf (file, "\"%s%s];\n",
                 row->to == POLE_TO_PREVIOUS? ", style=dashed": "",
                 path? ", " S_PATH_GREY: "");
    }

    //  The steps that no row draws (a reopen goes back to the state it
    //  left): an edge of their own per (from, to) pair
    for (size_t step = 0; path && step < path->steps; step++) {
        if (!s_step_valid (path, step) || s_step_row (path, step) >= 0)
            continue;
        bool seen = false;
        for (size_t earlier = 0; earlier < step && !seen; earlier++)
            seen = s_step_on_extra_edge (path, earlier, step);
        if (seen)
            continue;
        fprintf (file, "    %s -> %s [label=\"",
                 s_dot_node (s_step_from (path, step)),
                 s_dot_node (path->states [step]));
        s_print_path_label (file, path, step, s_step_on_extra_edge);
        //  constraint=false: the layout stays that of the whole workflow
        fprintf (file, "\", style=\"bold,dashed\", constraint=false,"
                       " penwidth=2, color=\"" S_PATH_EDGE "\", fontcolor=\""
                       S_PATH_EDGE "\"];\n");
    }
    fprintf (file, "}\n");
}

void
pole_workflow_print_dot (void *out)
{
    FILE *file = (FILE *) out;
    if (file)
        s_print_dot (file, NULL);
}

void
pole_workflow_print_dot_path (void *out, const int *states, const int *events,
                              size_t steps)
{
    FILE *file = (FILE *) out;
    if (!file)
        return;
    s_path_t path = { states, events, (states && events)? steps: 0, NULL };
    //  Each step's row, once: the printer asks for it again and again
    path.rows = path.steps? (long *) calloc (path.steps, sizeof (long)): NULL;
    for (size_t step = 0; path.rows && step < path.steps; step++)
        path.rows [step] = s_step_row_find (&path, step);
    s_print_dot (file, &path);
    free (path.rows);
}

//  A target as a Markdown cell fragment
static void
s_md_target (FILE *file, int to)
{
    if (to == POLE_TO_SAME)
        fprintf (file, "(same state)");
    else
    if (to == POLE_TO_PREVIOUS)
        fprintf (file, "(the state it left)");
    else
        fprintf (file, "`%s`", pole_state_name (to));
}

static const char *
s_kind_text (pole_field_kind_t kind)
{
    switch (kind) {
        case POLE_F_EUROS: return "whole euros > 0";
        case POLE_F_COUNT: return "whole number > 0";
        case POLE_F_ENUM:  return "one of";
        case POLE_F_LIST:  return "comma-separated list";
        default:           return "text";
    }
}

//  Prints a comma-separated choices string as `a`, `b`, `c`
static void
s_md_choices (FILE *file, const char *choices)
{
    fputc ('`', file);
    for (const char *scan = choices; *scan; scan++) {
        if (*scan == ',')
            fprintf (file, "`, `");
        else
            fputc (*scan, file);
    }
    fputc ('`', file);
}

//  --------------------------------------------------------------------------
//  Who may send what (DOMAIN.md, Roles). One row per event, as data, so
//  that docs/WORKFLOW.md prints it and the server only looks it up. The
//  reading of the sheet: the holder carries its project (opens it, asks,
//  delivers, reports, records co-funding, may withdraw); the CRES supports
//  and coordinates (legitimacy, the core group's validation, and it may
//  act for a holder it accompanies); the Région decides the money and the
//  end of a dossier (grants, declines, yearly renewal, close, reopen) and
//  may record the stakeholders' verdict; the administrator may do all.

#define H POLE_ROLE_HOLDER
#define C POLE_ROLE_CRES
#define R POLE_ROLE_REGION
#define A POLE_ROLE_ADMIN
#define K POLE_ROLE_CALENDAR
static const unsigned s_event_roles [POLE_E_COUNT] = {
    [POLE_E_OPEN]               = H | C | R | A,
    [POLE_E_LEGITIMATE_HOLDER]  = C | A,
    [POLE_E_REQUEST_STUDY]      = H | C | A,
    [POLE_E_GRANT_STUDY]        = R | A,
    [POLE_E_DECLINE_STUDY]      = R | A,
    [POLE_E_DELIVER_STUDY]      = H | C | A,
    [POLE_E_VALIDATE]           = C | R | A,
    [POLE_E_REJECT]             = C | R | A,
    [POLE_E_CREATE_POLE]        = H | C | A,
    [POLE_E_REQUEST_POSTS]      = H | C | A,
    [POLE_E_GRANT_POSTS]        = R | A,
    [POLE_E_DECLINE_POSTS]      = R | A,
    [POLE_E_FILE_ANNUAL_REPORT] = H | C | A,
    [POLE_E_START_NEXT_YEAR]    = R | A | K,
    [POLE_E_ADD_COFUNDING]      = H | C | R | A,
    [POLE_E_NOTE]               = H | C | R | A,
    [POLE_E_WITHDRAW]           = H | R | A,
    [POLE_E_CLOSE]              = R | A,
    [POLE_E_REOPEN]             = R | A,
    [POLE_E_REMINDER]           = K,
    [POLE_E_OVERDUE]            = K
};
#undef H
#undef C
#undef R
#undef A
#undef K

static const char *s_role_names [] = {
    "holder", "cres", "region", "admin", "calendar"
};
#define S_ROLE_COUNT (sizeof s_role_names / sizeof s_role_names [0])

const char *
pole_role_name (int role)
{
    for (size_t index = 0; index < S_ROLE_COUNT; index++)
        if (role == (1 << index))
            return s_role_names [index];
    return NULL;
}

int
pole_role_from_name (const char *name)
{
    if (name)
        for (size_t index = 0; index < S_ROLE_COUNT; index++)
            if (strcmp (name, s_role_names [index]) == 0)
                return 1 << index;
    return -1;
}

unsigned
pole_workflow_event_roles (pole_event_t event)
{
    if ((int) event < 0 || event >= POLE_E_COUNT)
        return 0;
    return s_event_roles [event];
}

void
pole_workflow_print_markdown (void *out)
{
    FILE *file = (FILE *) out;
    if (!file)
        return;

    fprintf (file, "# The workflow of a dossier\n\n");
    fprintf (file, "<!-- Generated from the workflow table (daemon/workflow.c)"
                   " by `polectl graph --markdown`; do not edit. -->\n\n");
    fprintf (file, "An event not listed for the dossier's current state is "
                   "refused (rule `transition`).\n\n");

    fprintf (file, "## States and the events they accept\n\n");
    fprintf (file, "| state | events accepted → target |\n");
    fprintf (file, "|---|---|\n");
    for (int state = 0; state < POLE_S_COUNT; state++) {
        fprintf (file, "| `%s`%s | ", s_state_names [state],
                 state == POLE_S_NONE? " (before the dossier exists)":
                 pole_state_is_terminal ((pole_state_t) state)? " (terminal)": "");
        const char *separator = "";
        for (size_t index = 0; index < S_TRANSITION_COUNT; index++) {
            const pole_transition_t *row = &s_transitions [index];
            if ((int) row->from != state)
                continue;
            fprintf (file, "%s`%s` → ", separator, pole_event_name ((int) row->event));
            s_md_target (file, row->to);
            if (s_guard_text (row->guard))
                fprintf (file, " if %s", s_guard_text (row->guard));
            separator = "<br>";
        }
        fprintf (file, " |\n");
    }

    fprintf (file, "\n## Events and their fields\n\n");
    fprintf (file, "Fields are `key=value`; *italic* fields are optional. "
                   "A missing, unknown, empty or repeated field is refused "
                   "(rule `fields`).\n\n");
    fprintf (file, "| event | fields | accepted in | what it does |\n");
    fprintf (file, "|---|---|---|---|\n");
    for (int event = 0; event < POLE_E_COUNT; event++) {
        const pole_event_spec_t *spec = &s_events [event];
        fprintf (file, "| `%s` | ", spec->name);
        if (!spec->fields [0].name)
            fprintf (file, "—");
        for (int index = 0; index < POLE_MAX_EVENT_FIELDS; index++) {
            const pole_field_spec_t *field = &spec->fields [index];
            if (!field->name)
                break;
            fprintf (file, "%s%s`%s`%s (%s", index? ", ": "",
                     field->required? "": "*", field->name,
                     field->required? "": "*", s_kind_text (field->kind));
            if (field->choices) {
                fprintf (file, field->kind == POLE_F_ENUM? " ": ", each one of ");
                s_md_choices (file, field->choices);
            }
            fprintf (file, ")");
        }
        fprintf (file, " | ");
        //  The states that accept it, once each, in state order
        const char *separator = "";
        for (int state = 0; state < POLE_S_COUNT; state++) {
            for (size_t index = 0; index < S_TRANSITION_COUNT; index++) {
                if ((int) s_transitions [index].from == state
                &&  (int) s_transitions [index].event == event) {
                    fprintf (file, "%s`%s`", separator, s_state_names [state]);
                    separator = ", ";
                    break;
                }
            }
        }
        fprintf (file, " | %s |\n", spec->summary);
    }

    fprintf (file, "\n## Who may send each event\n\n");
    fprintf (file, "With authentication on (docs/ADMIN.md), an event is "
                   "allowed or refused by the role of the authenticated "
                   "sender (error `FORBIDDEN`). A holder acts on its own "
                   "dossiers only. The calendar is the daemon itself.\n\n");
    fprintf (file, "| event |");
    for (size_t role = 0; role < S_ROLE_COUNT; role++)
        fprintf (file, " %s |", s_role_names [role]);
    fprintf (file, "\n|---|");
    for (size_t role = 0; role < S_ROLE_COUNT; role++)
        fprintf (file, ":-:|");
    fprintf (file, "\n");
    for (int event = 0; event < POLE_E_COUNT; event++) {
        fprintf (file, "| `%s` |", pole_event_name (event));
        for (size_t role = 0; role < S_ROLE_COUNT; role++)
            fprintf (file, " %s |",
                     s_event_roles [event] & (1u << role)? "yes": "");
        fprintf (file, "\n");
    }

    fprintf (file, "\n## Terminal states\n\n");
    fprintf (file, "A terminal dossier accepts only the events listed for it "
                   "above; `reopen` returns it to the state it left.\n\n");
    for (int state = 0; state < POLE_S_COUNT; state++)
        if (pole_state_is_terminal ((pole_state_t) state))
            fprintf (file, "- `%s`\n", s_state_names [state]);
}

bool
pole_workflow_is_expected_next (pole_event_t event)
{
    return event != POLE_E_NOTE && event != POLE_E_ADD_COFUNDING
        && event != POLE_E_REOPEN && event != POLE_E_REMINDER
        && event != POLE_E_OVERDUE && (int) event >= 0
        && event < POLE_E_COUNT;
}
