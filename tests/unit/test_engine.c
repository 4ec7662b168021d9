/*  =========================================================================
    test_engine - the workflow table and the engine, exhaustively

    Every (state, event) pair is decided against an expectation written
    here from DOMAIN.md, independently of the table in workflow.c, so that
    a wrong row in the table fails a test. Every refusal rule of
    PROTOCOL.md section 6 then has its own test, and a whole lifecycle is
    walked through decide() and apply() as poled does.
    =========================================================================
*/

#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "pole/workflow.h"
#include "pole/engine.h"

//  A small territory list: enough for the forgiving comparison
static const pole_territory_t s_territories [] = {
    { "Dinan", 22 },
    { "Trégor-Goëlo", 22 },
    { "Vallons de Vilaine", 35 },
    { "Ploërmel-Cœur de Bretagne", 56 },
    { "Brest", 29 },
    { "Auray", 56 },
};

#define S_TERRITORY_COUNT (sizeof (s_territories) / sizeof (s_territories [0]))

//  A field list as two arguments: the array and its length
#define FIELDS(...) \
    (const pole_field_t []) { __VA_ARGS__ }, \
    sizeof ((const pole_field_t []) { __VA_ARGS__ }) / sizeof (pole_field_t)
#define NO_FIELDS NULL, 0

#define REFUSED (-100)

static pole_params_t
s_params (void)
{
    pole_params_t params;
    pole_params_defaults (&params);
    params.territories = s_territories;
    params.territory_count = S_TERRITORY_COUNT;
    return params;
}

//  A dossier in `state`, with the facts that let every event allowed there
//  pass its own rules (so that only the table decides in the matrix test)
static pole_dossier_t
s_dossier (pole_state_t state)
{
    pole_dossier_t dossier;
    memset (&dossier, 0, sizeof (dossier));
    dossier.id = 7;
    snprintf (dossier.pays, sizeof (dossier.pays), "Dinan");
    snprintf (dossier.holder, sizeof (dossier.holder), "Collectif ESS");
    snprintf (dossier.holder_type, sizeof (dossier.holder_type), "ess_actor");
    dossier.state = state;
    dossier.version = 3;
    dossier.study_asked = 20000;
    dossier.posts_asked = 2;
    if (state >= POLE_S_FUNDING_YEAR_1 && state <= POLE_S_FUNDING_YEAR_3)
        dossier.funding_year = (int) (state - POLE_S_FUNDING_YEAR_1) + 1;
    if (state == POLE_S_OPERATING)
        dossier.funding_year = 3;
    dossier.reports_filed = 0x7;
    switch (state) {
        case POLE_S_STUDY_DECLINED: dossier.prev_state = POLE_S_STUDY_REQUESTED; break;
        case POLE_S_NOT_VALIDATED:  dossier.prev_state = POLE_S_STUDY_DELIVERED; break;
        case POLE_S_WITHDRAWN:      dossier.prev_state = POLE_S_VALIDATED; break;
        case POLE_S_CLOSED:         dossier.prev_state = POLE_S_OPERATING; break;
        default: break;
    }
    return dossier;
}

//  Valid fields for each event
static const pole_field_t *
s_valid_fields (pole_event_t event, size_t *count)
{
    static const pole_field_t open [] = {
        { "pays", "Dinan" }, { "holder", "Collectif ESS" },
        { "holder_type", "ess_actor" } };
    static const pole_field_t advisor [] = { { "advisor", "CRES" } };
    static const pole_field_t amount [] = { { "amount", "20000" } };
    static const pole_field_t reason [] = { { "reason", "a reason" } };
    static const pole_field_t study [] = {
        { "diagnosis", "d" }, { "priority_actions", "p" }, { "governance", "g" } };
    static const pole_field_t stakeholders [] = { { "stakeholders", "A, B" } };
    static const pole_field_t pole [] = {
        { "mode", "ex_nihilo" }, { "name", "ESS Dinan" } };
    static const pole_field_t posts [] = { { "posts", "2" } };
    static const pole_field_t year [] = { { "year", "1" } };
    static const pole_field_t cofunding [] = {
        { "funder", "CG 22" }, { "amount", "5000" }, { "year", "2010" } };
    static const pole_field_t text [] = { { "text", "hello" } };
    static const pole_field_t notice [] = {
        { "about", "annual_report" }, { "due", "2011-01-31" }, { "year", "1" } };
#   define S_RETURN(array) \
        do { *count = sizeof (array) / sizeof (array [0]); return array; } while (0)
    switch (event) {
        case POLE_E_OPEN:               S_RETURN (open);
        case POLE_E_LEGITIMATE_HOLDER:  S_RETURN (advisor);
        case POLE_E_REQUEST_STUDY:      S_RETURN (amount);
        case POLE_E_GRANT_STUDY:        S_RETURN (amount);
        case POLE_E_DELIVER_STUDY:      S_RETURN (study);
        case POLE_E_VALIDATE:           S_RETURN (stakeholders);
        case POLE_E_CREATE_POLE:        S_RETURN (pole);
        case POLE_E_REQUEST_POSTS:      S_RETURN (posts);
        case POLE_E_GRANT_POSTS:        S_RETURN (posts);
        case POLE_E_FILE_ANNUAL_REPORT: S_RETURN (year);
        case POLE_E_ADD_COFUNDING:      S_RETURN (cofunding);
        case POLE_E_NOTE:               S_RETURN (text);
        case POLE_E_REMINDER:           S_RETURN (notice);
        case POLE_E_OVERDUE:            S_RETURN (notice);
        case POLE_E_START_NEXT_YEAR:    *count = 0; return NULL;
        default:                        S_RETURN (reason);
    }
#   undef S_RETURN
}

//  What DOMAIN.md says, written as plain logic (not as a table, so that it
//  does not copy the one under test). funding_years is 3.
static int
s_expected (pole_state_t state, pole_event_t event, pole_state_t previous)
{
    bool terminal = state >= POLE_S_STUDY_DECLINED;
    bool live = state != POLE_S_NONE && !terminal;
    bool funding = state >= POLE_S_FUNDING_YEAR_1 && state <= POLE_S_FUNDING_YEAR_3;
    bool running = funding || state == POLE_S_OPERATING;
    switch (event) {
        case POLE_E_OPEN:
            return state == POLE_S_NONE? POLE_S_DRAFT: REFUSED;
        case POLE_E_LEGITIMATE_HOLDER:
            return state == POLE_S_DRAFT || state == POLE_S_STUDY_REQUESTED?
                   (int) state: REFUSED;
        case POLE_E_REQUEST_STUDY:
            return state == POLE_S_DRAFT? POLE_S_STUDY_REQUESTED: REFUSED;
        case POLE_E_GRANT_STUDY:
            return state == POLE_S_STUDY_REQUESTED? POLE_S_STUDY_FUNDED: REFUSED;
        case POLE_E_DECLINE_STUDY:
            return state == POLE_S_STUDY_REQUESTED? POLE_S_STUDY_DECLINED: REFUSED;
        case POLE_E_DELIVER_STUDY:
            return state == POLE_S_STUDY_FUNDED? POLE_S_STUDY_DELIVERED: REFUSED;
        case POLE_E_VALIDATE:
            return state == POLE_S_STUDY_DELIVERED? POLE_S_VALIDATED: REFUSED;
        case POLE_E_REJECT:
            return state == POLE_S_STUDY_DELIVERED? POLE_S_NOT_VALIDATED: REFUSED;
        case POLE_E_CREATE_POLE:
            return state == POLE_S_VALIDATED? POLE_S_POLE_CREATED: REFUSED;
        case POLE_E_REQUEST_POSTS:
            return state == POLE_S_POLE_CREATED? POLE_S_POSTS_REQUESTED: REFUSED;
        case POLE_E_GRANT_POSTS:
            return state == POLE_S_POSTS_REQUESTED? POLE_S_FUNDING_YEAR_1: REFUSED;
        case POLE_E_DECLINE_POSTS:
            return state == POLE_S_POSTS_REQUESTED? POLE_S_POLE_CREATED: REFUSED;
        case POLE_E_FILE_ANNUAL_REPORT:
            return running? (int) state: REFUSED;
        case POLE_E_START_NEXT_YEAR:
            if (state == POLE_S_FUNDING_YEAR_1) return POLE_S_FUNDING_YEAR_2;
            if (state == POLE_S_FUNDING_YEAR_2) return POLE_S_FUNDING_YEAR_3;
            if (state == POLE_S_FUNDING_YEAR_3) return POLE_S_OPERATING;
            return REFUSED;
        case POLE_E_ADD_COFUNDING:
            return live? (int) state: REFUSED;
        case POLE_E_NOTE:
            return state != POLE_S_NONE? (int) state: REFUSED;
        case POLE_E_WITHDRAW:
            return state >= POLE_S_DRAFT && state <= POLE_S_POLE_CREATED?
                   POLE_S_WITHDRAWN: REFUSED;
        case POLE_E_CLOSE:
            return state == POLE_S_POLE_CREATED || running?
                   POLE_S_CLOSED: REFUSED;
        case POLE_E_REOPEN:
            return terminal? (int) previous: REFUSED;
        case POLE_E_REMINDER:
        case POLE_E_OVERDUE:
            return live? (int) state: REFUSED;
        default:
            return REFUSED;
    }
}

//  The sender's role in the context of every decision; the Région's unless
//  a test says otherwise (only reopen looks at it)
static const char *s_role = "region";

//  Decide with a context of `live` other live dossiers in the Pays
static int
s_decide (const pole_dossier_t *dossier, pole_event_t event,
          const pole_field_t *fields, size_t count, const pole_params_t *params,
          int live, pole_decision_t *out)
{
    pole_context_t ctx = { live, s_role };
    //  decide() must fill the whole decision: start from rubbish
    memset (out, 0x5A, sizeof (*out));
    return pole_engine_decide (dossier, event, fields, count, params, &ctx,
                               (time_t) 1286000000, out);
}

static void
s_expect_refused_with (const pole_dossier_t *dossier, pole_event_t event,
                       const pole_field_t *fields, size_t count,
                       const pole_params_t *params, int live,
                       const char *rule, const char *fragment)
{
    pole_decision_t out;
    assert_int_equal (s_decide (dossier, event, fields, count, params, live,
                                &out), -1);
    assert_false (out.accepted);
    assert_non_null (out.rule);
    if (strcmp (out.rule, rule) != 0)
        fail_msg ("expected rule %s, got %s: %s", rule, out.rule, out.message);
    assert_true (strlen (out.message) > 10);
    if (fragment && !strstr (out.message, fragment))
        fail_msg ("message \"%s\" does not contain \"%s\"", out.message, fragment);
    assert_string_equal (out.warning, "");
}

static void
s_expect_refused (pole_state_t state, pole_event_t event,
                  const pole_field_t *fields, size_t count,
                  const char *rule, const char *fragment)
{
    pole_params_t params = s_params ();
    pole_dossier_t dossier = s_dossier (state);
    s_expect_refused_with (&dossier, event, fields, count, &params, 0,
                           rule, fragment);
}

static pole_decision_t
s_expect_accepted_with (const pole_dossier_t *dossier, pole_event_t event,
                        const pole_field_t *fields, size_t count,
                        const pole_params_t *params, int live,
                        pole_state_t to)
{
    pole_decision_t out;
    int rc = s_decide (dossier, event, fields, count, params, live, &out);
    if (rc != 0)
        fail_msg ("%s in %s refused by %s: %s", pole_event_name (event),
                  pole_state_name (dossier->state), out.rule, out.message);
    assert_true (out.accepted);
    assert_null (out.rule);
    assert_int_equal (out.to, to);
    assert_string_equal (out.message, "");
    return out;
}

static pole_decision_t
s_expect_accepted (pole_state_t state, pole_event_t event,
                   const pole_field_t *fields, size_t count, pole_state_t to)
{
    pole_params_t params = s_params ();
    pole_dossier_t dossier = s_dossier (state);
    return s_expect_accepted_with (&dossier, event, fields, count, &params,
                                   0, to);
}


//  --------------------------------------------------------------------------
//  The table

static void
test_names_round_trip (void **state)
{
    (void) state;
    for (int index = 0; index < POLE_S_COUNT; index++) {
        assert_non_null (pole_state_name (index));
        assert_int_equal (pole_state_from_name (pole_state_name (index)), index);
    }
    for (int index = 0; index < POLE_E_COUNT; index++) {
        assert_non_null (pole_event_name (index));
        assert_int_equal (pole_event_from_name (pole_event_name (index)), index);
        const pole_event_spec_t *spec = pole_workflow_event_spec ((pole_event_t) index);
        assert_non_null (spec);
        assert_int_equal (spec->event, index);
        assert_string_equal (spec->name, pole_event_name (index));
        assert_non_null (spec->summary);
    }
    assert_null (pole_state_name (-1));
    assert_null (pole_state_name (POLE_S_COUNT));
    assert_null (pole_event_name (POLE_E_COUNT));
    assert_int_equal (pole_state_from_name ("drafted"), -1);
    assert_int_equal (pole_state_from_name (NULL), -1);
    assert_int_equal (pole_event_from_name ("Open"), -1);
    assert_null (pole_workflow_event_spec (POLE_E_COUNT));
    assert_null (pole_workflow_event_spec ((pole_event_t) -1));
    assert_string_equal (pole_state_name (POLE_S_FUNDING_YEAR_2), "funding_year_2");
    assert_string_equal (pole_event_name (POLE_E_FILE_ANNUAL_REPORT),
                         "file_annual_report");
}

static void
test_terminal_states (void **state)
{
    (void) state;
    for (int index = 0; index < POLE_S_COUNT; index++) {
        bool terminal = index == POLE_S_STUDY_DECLINED
                     || index == POLE_S_NOT_VALIDATED
                     || index == POLE_S_WITHDRAWN
                     || index == POLE_S_CLOSED;
        assert_int_equal (pole_state_is_terminal ((pole_state_t) index), terminal);
    }
}

static void
test_table_is_well_formed (void **state)
{
    (void) state;
    size_t count = 0;
    const pole_transition_t *table = pole_workflow_transitions (&count);
    assert_non_null (table);
    assert_true (count > 50);
    for (size_t index = 0; index < count; index++) {
        const pole_transition_t *row = &table [index];
        assert_true (row->from >= POLE_S_NONE && row->from < POLE_S_COUNT);
        assert_true ((int) row->event >= 0 && row->event < POLE_E_COUNT);
        assert_true (row->to == POLE_TO_SAME || row->to == POLE_TO_PREVIOUS
                  || (row->to > POLE_S_NONE && row->to < POLE_S_COUNT));
        //  Only reopen goes back, and only from a terminal state
        assert_int_equal (row->to == POLE_TO_PREVIOUS, row->event == POLE_E_REOPEN);
        if (row->to == POLE_TO_PREVIOUS)
            assert_true (pole_state_is_terminal (row->from));
        //  Guards only on start_next_year
        if (row->guard != POLE_G_NONE)
            assert_int_equal (row->event, POLE_E_START_NEXT_YEAR);
        //  No pair twice with the same guard
        for (size_t other = index + 1; other < count; other++)
            assert_false (table [other].from == row->from
                       && table [other].event == row->event
                       && table [other].guard == row->guard);
    }
}

static void
test_event_specs_match_domain (void **state)
{
    (void) state;
    //  Spot checks of the field table against DOMAIN.md
    const pole_event_spec_t *open = pole_workflow_event_spec (POLE_E_OPEN);
    assert_string_equal (open->fields [0].name, "pays");
    assert_true (open->fields [0].required);
    assert_string_equal (open->fields [2].name, "holder_type");
    assert_int_equal (open->fields [2].kind, POLE_F_ENUM);
    assert_string_equal (open->fields [2].choices, "ess_actor,collectivite,pays");
    assert_string_equal (open->fields [3].name, "title");
    assert_false (open->fields [3].required);
    assert_null (open->fields [4].name);

    const pole_event_spec_t *cofunding = pole_workflow_event_spec (POLE_E_ADD_COFUNDING);
    assert_int_equal (cofunding->fields [1].kind, POLE_F_EUROS);
    assert_int_equal (cofunding->fields [2].kind, POLE_F_COUNT);
    assert_null (pole_workflow_event_spec (POLE_E_START_NEXT_YEAR)->fields [0].name);

    const pole_event_spec_t *validate = pole_workflow_event_spec (POLE_E_VALIDATE);
    assert_int_equal (validate->fields [0].kind, POLE_F_LIST);
    assert_false (validate->fields [1].required);
    assert_non_null (strstr (validate->fields [1].choices, "entreprise_ess"));

    pole_event_t with_reason [] = {
        POLE_E_DECLINE_STUDY, POLE_E_REJECT, POLE_E_DECLINE_POSTS,
        POLE_E_WITHDRAW, POLE_E_CLOSE, POLE_E_REOPEN };
    for (size_t index = 0; index < 6; index++) {
        const pole_event_spec_t *spec = pole_workflow_event_spec (with_reason [index]);
        assert_string_equal (spec->fields [0].name, "reason");
        assert_true (spec->fields [0].required);
        assert_null (spec->fields [1].name);
    }
}

//  Every transition and every refused (state, event) pair
static void
test_every_state_and_event (void **state)
{
    (void) state;
    pole_params_t params = s_params ();
    int accepted = 0;
    int refused = 0;
    for (int from = 0; from < POLE_S_COUNT; from++) {
        for (int event = 0; event < POLE_E_COUNT; event++) {
            pole_dossier_t dossier = s_dossier ((pole_state_t) from);
            //  A report can only be filed once: leave them unfiled here
            if (event == POLE_E_FILE_ANNUAL_REPORT)
                dossier.reports_filed = 0;
            size_t count;
            const pole_field_t *fields = s_valid_fields ((pole_event_t) event, &count);
            pole_decision_t out;
            //  The calendar's notices come from the calendar
            bool notice = event == POLE_E_REMINDER || event == POLE_E_OVERDUE;
            s_role = notice? "calendar": "region";
            int rc = s_decide (&dossier, (pole_event_t) event, fields, count,
                               &params, 0, &out);
            s_role = "region";
            int expected = s_expected ((pole_state_t) from, (pole_event_t) event,
                                       dossier.prev_state);
            if (expected == REFUSED) {
                if (rc != -1 || strcmp (out.rule, "transition") != 0)
                    fail_msg ("%s in %s: expected a transition refusal",
                              pole_event_name (event), pole_state_name (from));
                //  The message names the state and what it accepts
                assert_non_null (strstr (out.message, pole_state_name (from)));
                assert_non_null (strstr (out.message, pole_event_name (event)));
                refused++;
            }
            else {
                if (rc != 0)
                    fail_msg ("%s in %s refused by %s: %s",
                              pole_event_name (event), pole_state_name (from),
                              out.rule, out.message);
                assert_int_equal (out.to, expected);
                accepted++;
                //  apply() leads to the same state
                pole_engine_apply (&dossier, (pole_event_t) event, fields,
                                   count, out.to);
                assert_int_equal (dossier.state, expected);
                assert_int_equal (dossier.version, 4);
            }
        }
    }
    //  One accepted pair per table row, but start_next_year's guards pick
    //  one row out of two in funding years 1 and 2
    size_t rows;
    pole_workflow_transitions (&rows);
    assert_int_equal ((size_t) accepted, rows - 2);
    assert_int_equal (accepted + refused, POLE_S_COUNT * POLE_E_COUNT);
}

static void
test_transition_message_lists_allowed_events (void **state)
{
    (void) state;
    s_expect_refused (POLE_S_DRAFT, POLE_E_GRANT_STUDY, FIELDS ({ "amount", "1" }),
        "transition", "the event grant_study is not allowed in state draft; "
        "the events allowed there are legitimate_holder, request_study, "
        "add_cofunding, note and withdraw");
    s_expect_refused (POLE_S_CLOSED, POLE_E_CLOSE, FIELDS ({ "reason", "r" }),
        "transition", "the events allowed there are note and reopen");
    s_expect_refused (POLE_S_NONE, POLE_E_NOTE, FIELDS ({ "text", "t" }),
        "transition", "the only event allowed there is open");
    //  start_next_year has two rows in funding_year_1 but is listed once
    s_expect_refused (POLE_S_FUNDING_YEAR_1, POLE_E_WITHDRAW,
        FIELDS ({ "reason", "r" }), "transition",
        "file_annual_report, start_next_year, add_cofunding, note and close");
    //  The table decides before the fields are looked at
    s_expect_refused (POLE_S_DRAFT, POLE_E_GRANT_STUDY, FIELDS ({ "bogus", "" }),
        "transition", NULL);
}

static void
test_funding_years_guard (void **state)
{
    (void) state;
    pole_params_t params = s_params ();
    pole_dossier_t dossier = s_dossier (POLE_S_FUNDING_YEAR_1);

    params.funding_years = 1;
    s_expect_accepted_with (&dossier, POLE_E_START_NEXT_YEAR, NO_FIELDS,
                            &params, 0, POLE_S_OPERATING);

    params.funding_years = 2;
    s_expect_accepted_with (&dossier, POLE_E_START_NEXT_YEAR, NO_FIELDS,
                            &params, 0, POLE_S_FUNDING_YEAR_2);
    dossier = s_dossier (POLE_S_FUNDING_YEAR_2);
    s_expect_accepted_with (&dossier, POLE_E_START_NEXT_YEAR, NO_FIELDS,
                            &params, 0, POLE_S_OPERATING);

    //  In operating, reports exist for the configured years only
    dossier = s_dossier (POLE_S_OPERATING);
    dossier.reports_filed = 0;
    s_expect_accepted_with (&dossier, POLE_E_FILE_ANNUAL_REPORT,
                            FIELDS ({ "year", "2" }), &params, 0,
                            POLE_S_OPERATING);
    s_expect_refused_with (&dossier, POLE_E_FILE_ANNUAL_REPORT,
                           FIELDS ({ "year", "3" }), &params, 0,
                           "report_year", "the programme funds 2 years");
}


//  --------------------------------------------------------------------------
//  Refusals, rule by rule

//  Only the calendar sends its notices, whatever the sender claims
static void
test_calendar_only (void **state)
{
    (void) state;
    pole_params_t params = s_params ();
    pole_dossier_t dossier = s_dossier (POLE_S_FUNDING_YEAR_1);
    const char *senders [] = { "region", "admin", "cres", "holder", NULL };
    for (size_t index = 0; index < 5; index++) {
        s_role = senders [index];
        s_expect_refused_with (&dossier, POLE_E_OVERDUE,
            FIELDS ({ "about", "annual_report" }, { "due", "2011-01-31" }),
            &params, 0, "calendar_only",
            "the event overdue is sent by the programme calendar only");
        s_expect_refused_with (&dossier, POLE_E_REMINDER,
            FIELDS ({ "about", "study_deadline" }, { "due", "2011-01-31" }),
            &params, 0, "calendar_only", NULL);
    }
    s_role = "calendar";
    s_expect_accepted_with (&dossier, POLE_E_REMINDER,
        FIELDS ({ "about", "study_deadline" }, { "due", "2011-01-31" }),
        &params, 0, POLE_S_FUNDING_YEAR_1);
    s_expect_refused_with (&dossier, POLE_E_REMINDER,
        FIELDS ({ "about", "holidays" }, { "due", "2011-01-31" }),
        &params, 0, "fields", NULL);
    s_role = "region";
}

static void
test_unknown_event (void **state)
{
    (void) state;
    pole_params_t params = s_params ();
    pole_dossier_t dossier = s_dossier (POLE_S_DRAFT);
    s_expect_refused_with (&dossier, POLE_E_COUNT, NO_FIELDS, &params, 0,
                           "unknown_event", "21");
    s_expect_refused_with (&dossier, (pole_event_t) 99, NO_FIELDS, &params, 0,
                           "unknown_event", "99");
    s_expect_refused_with (&dossier, (pole_event_t) -1, NO_FIELDS, &params, 0,
                           "unknown_event", NULL);
}

static void
test_fields_unknown_duplicate_empty (void **state)
{
    (void) state;
    s_expect_refused (POLE_S_DRAFT, POLE_E_NOTE,
        FIELDS ({ "text", "hi" }, { "colour", "red" }), "fields",
        "the event note has no field 'colour'; its field is text");
    s_expect_refused (POLE_S_DRAFT, POLE_E_REQUEST_STUDY,
        FIELDS ({ "amout", "20000" }), "fields", "no field 'amout'");
    s_expect_refused (POLE_S_FUNDING_YEAR_1, POLE_E_START_NEXT_YEAR,
        FIELDS ({ "year", "2" }), "fields", "it takes no field");
    s_expect_refused (POLE_S_DRAFT, POLE_E_NOTE,
        FIELDS ({ "text", "a" }, { "text", "b" }), "fields",
        "the field 'text' is given more than once");
    s_expect_refused (POLE_S_DRAFT, POLE_E_NOTE, FIELDS ({ "text", "" }),
        "fields", "the field 'text' is empty");
    s_expect_refused (POLE_S_DRAFT, POLE_E_NOTE, FIELDS ({ "text", "  \t" }),
        "fields", "is empty");
    s_expect_refused (POLE_S_DRAFT, POLE_E_NOTE, FIELDS ({ "text", NULL }),
        "fields", "is empty");
    s_expect_refused (POLE_S_DRAFT, POLE_E_NOTE, FIELDS ({ NULL, "x" }),
        "fields", NULL);
    //  An optional field given empty is refused too
    s_expect_refused (POLE_S_DRAFT, POLE_E_LEGITIMATE_HOLDER,
        FIELDS ({ "advisor", "" }), "fields", "'advisor' is empty");
    //  Form before figures: the unknown key wins over the bad amount
    s_expect_refused (POLE_S_DRAFT, POLE_E_REQUEST_STUDY,
        FIELDS ({ "amount", "lots" }, { "extra", "1" }), "fields", "'extra'");
}

static void
test_fields_missing_required (void **state)
{
    (void) state;
    pole_event_t with_reason [] = {
        POLE_E_DECLINE_STUDY, POLE_E_REJECT, POLE_E_DECLINE_POSTS,
        POLE_E_WITHDRAW, POLE_E_CLOSE, POLE_E_REOPEN };
    pole_state_t in [] = {
        POLE_S_STUDY_REQUESTED, POLE_S_STUDY_DELIVERED, POLE_S_POSTS_REQUESTED,
        POLE_S_DRAFT, POLE_S_OPERATING, POLE_S_WITHDRAWN };
    for (size_t index = 0; index < 6; index++)
        s_expect_refused (in [index], with_reason [index], NO_FIELDS,
                          "fields", "needs the field 'reason'");

    s_expect_refused (POLE_S_STUDY_FUNDED, POLE_E_DELIVER_STUDY,
        FIELDS ({ "diagnosis", "d" }, { "priority_actions", "p" }),
        "fields", "the event deliver_study needs the field 'governance'");
    s_expect_refused (POLE_S_STUDY_FUNDED, POLE_E_DELIVER_STUDY,
        FIELDS ({ "governance", "g" }, { "priority_actions", "p" }),
        "fields", "'diagnosis'");
    s_expect_refused (POLE_S_STUDY_FUNDED, POLE_E_DELIVER_STUDY,
        FIELDS ({ "governance", "g" }, { "diagnosis", "d" }),
        "fields", "'priority_actions'");
    s_expect_refused (POLE_S_DRAFT, POLE_E_NOTE, NO_FIELDS, "fields", "'text'");
    s_expect_refused (POLE_S_NONE, POLE_E_OPEN,
        FIELDS ({ "pays", "Dinan" }, { "holder_type", "pays" }),
        "fields", "'holder'");
    s_expect_refused (POLE_S_VALIDATED, POLE_E_CREATE_POLE,
        FIELDS ({ "mode", "ex_nihilo" }), "fields", "'name'");
    s_expect_refused (POLE_S_DRAFT, POLE_E_ADD_COFUNDING,
        FIELDS ({ "funder", "CG" }, { "amount", "10" }), "fields", "'year'");
    s_expect_refused (POLE_S_STUDY_DELIVERED, POLE_E_VALIDATE,
        FIELDS ({ "stakeholder_types", "association" }), "fields",
        "'stakeholders'");
    s_expect_refused (POLE_S_POLE_CREATED, POLE_E_REQUEST_POSTS, NO_FIELDS,
        "fields", "'posts'");
    s_expect_refused (POLE_S_FUNDING_YEAR_1, POLE_E_FILE_ANNUAL_REPORT,
        NO_FIELDS, "fields", "'year'");
}

static void
test_fields_count_and_enum (void **state)
{
    (void) state;
    const char *bad [] = { "00", "1.5", "-1", "+1", " 1", "01", "two", "1e3",
                           "9999999999999999999999" };
    for (size_t index = 0; index < sizeof (bad) / sizeof (bad [0]); index++) {
        s_expect_refused (POLE_S_POLE_CREATED, POLE_E_REQUEST_POSTS,
            FIELDS ({ "posts", bad [index] }), "fields",
            "the field 'posts' must be a whole number written in digits");
        s_expect_refused (POLE_S_FUNDING_YEAR_2, POLE_E_FILE_ANNUAL_REPORT,
            FIELDS ({ "year", bad [index] }), "fields", "'year'");
    }
    s_expect_refused (POLE_S_VALIDATED, POLE_E_CREATE_POLE,
        FIELDS ({ "mode", "hosted" }, { "name", "P" }), "fields",
        "the mode 'hosted' is not one of ex_nihilo, adossement");
    //  Enum values are exact: no case folding, no partial match
    s_expect_refused (POLE_S_VALIDATED, POLE_E_CREATE_POLE,
        FIELDS ({ "mode", "Ex_nihilo" }, { "name", "P" }), "fields", NULL);
    s_expect_refused (POLE_S_VALIDATED, POLE_E_CREATE_POLE,
        FIELDS ({ "mode", "ex_nihilo,adossement" }, { "name", "P" }),
        "fields", NULL);
}

static void
test_holder_type (void **state)
{
    (void) state;
    s_expect_refused (POLE_S_NONE, POLE_E_OPEN,
        FIELDS ({ "pays", "Dinan" }, { "holder", "H" },
                { "holder_type", "association" }),
        "holder_type",
        "the holder type 'association' is not one of ess_actor, collectivite, pays");
    const char *good [] = { "ess_actor", "collectivite", "pays" };
    for (size_t index = 0; index < 3; index++)
        s_expect_accepted (POLE_S_NONE, POLE_E_OPEN,
            FIELDS ({ "pays", "Dinan" }, { "holder", "H" },
                    { "holder_type", good [index] }), POLE_S_DRAFT);
}

static void
test_amount (void **state)
{
    (void) state;
    const char *bad [] = { "0", "-5", "+5", "20 000", "20000.00", "20,000",
                           "012", "1000000001", "99999999999999999999999",
                           "20000€", "€" };
    for (size_t index = 0; index < sizeof (bad) / sizeof (bad [0]); index++) {
        s_expect_refused (POLE_S_DRAFT, POLE_E_REQUEST_STUDY,
            FIELDS ({ "amount", bad [index] }), "amount",
            "is not an amount in whole euros");
        s_expect_refused (POLE_S_STUDY_REQUESTED, POLE_E_GRANT_STUDY,
            FIELDS ({ "amount", bad [index] }), "amount", NULL);
        s_expect_refused (POLE_S_OPERATING, POLE_E_ADD_COFUNDING,
            FIELDS ({ "funder", "CG 35" }, { "amount", bad [index] },
                    { "year", "2010" }), "amount", NULL);
    }
    s_expect_refused (POLE_S_DRAFT, POLE_E_REQUEST_STUDY,
        FIELDS ({ "amount", "20 000" }), "amount", "the amount '20 000'");
    //  Empty is a form problem, not a figure
    s_expect_refused (POLE_S_DRAFT, POLE_E_REQUEST_STUDY,
        FIELDS ({ "amount", "" }), "fields", NULL);
    //  A large co-funding is fine up to the bound
    s_expect_accepted (POLE_S_OPERATING, POLE_E_ADD_COFUNDING,
        FIELDS ({ "funder", "CG 35" }, { "amount", "1000000000" },
                { "year", "2010" }), POLE_S_OPERATING);
}

static void
test_pays (void **state)
{
    (void) state;
    s_expect_refused (POLE_S_NONE, POLE_E_OPEN,
        FIELDS ({ "pays", "Quimper" }, { "holder", "H" },
                { "holder_type", "ess_actor" }),
        "pays", "'Quimper' is not one of the 6 Pays in the configuration");
    pole_decision_t out = s_expect_accepted (POLE_S_NONE, POLE_E_OPEN,
        FIELDS ({ "pays", "pays de treGOR goelo" }, { "holder", "H" },
                { "holder_type", "ess_actor" }, { "title", "Pôle ESS" }),
        POLE_S_DRAFT);
    assert_string_equal (out.pays, "Trégor-Goëlo");
    //  A very long name is quoted in part, and the message stays UTF-8
    char name [2000];
    memset (name, 'x', sizeof (name));
    memcpy (name + 55, "é", 2);
    name [sizeof (name) - 1] = 0;
    s_expect_refused (POLE_S_NONE, POLE_E_OPEN,
        FIELDS ({ "pays", name }, { "holder", "H" },
                { "holder_type", "ess_actor" }), "pays", "…' is not one of");
    //  A holder longer than the dossier keeps is refused, never cut
    s_expect_refused (POLE_S_NONE, POLE_E_OPEN,
        FIELDS ({ "pays", "Dinan" }, { "holder", name },
                { "holder_type", "ess_actor" }), "fields",
        "the holder is 1999 bytes long; at most 255 are kept");
}

static void
test_live_per_pays (void **state)
{
    (void) state;
    pole_params_t params = s_params ();
    pole_dossier_t none = s_dossier (POLE_S_NONE);
    s_expect_refused_with (&none, POLE_E_OPEN,
        FIELDS ({ "pays", "dinan" }, { "holder", "H" },
                { "holder_type", "pays" }), &params, 1, "live_per_pays",
        "the Pays 'Dinan' already has 1 live dossier and the configuration "
        "allows 1 at a time, so no other dossier can be opened there");
    params.live_per_pays = 2;
    s_expect_accepted_with (&none, POLE_E_OPEN,
        FIELDS ({ "pays", "dinan" }, { "holder", "H" },
                { "holder_type", "pays" }), &params, 1, POLE_S_DRAFT);
    s_expect_refused_with (&none, POLE_E_OPEN,
        FIELDS ({ "pays", "dinan" }, { "holder", "H" },
                { "holder_type", "pays" }), &params, 2, "live_per_pays",
        "already has 2 live dossiers");

    //  Reopening makes the dossier live again
    params.live_per_pays = 1;
    pole_dossier_t withdrawn = s_dossier (POLE_S_WITHDRAWN);
    s_expect_refused_with (&withdrawn, POLE_E_REOPEN,
        FIELDS ({ "reason", "withdrawn by mistake" }), &params, 1,
        "live_per_pays", "'Dinan' already has 1 live dossier and the "
        "configuration allows 1 at a time, so this dossier cannot return to "
        "validated");
    s_expect_accepted_with (&withdrawn, POLE_E_REOPEN,
        FIELDS ({ "reason", "withdrawn by mistake" }), &params, 0,
        POLE_S_VALIDATED);
    //  A note on a terminal dossier does not count it as live
    s_expect_accepted_with (&withdrawn, POLE_E_NOTE, FIELDS ({ "text", "t" }),
                            &params, 1, POLE_S_WITHDRAWN);
}

static void
test_study_cap (void **state)
{
    (void) state;
    s_expect_refused (POLE_S_DRAFT, POLE_E_REQUEST_STUDY,
        FIELDS ({ "amount", "30000" }), "study_cap",
        "the study amount asked (30000 €) exceeds the study cap (25000 €)");
    s_expect_accepted (POLE_S_DRAFT, POLE_E_REQUEST_STUDY,
        FIELDS ({ "amount", "25000" }), POLE_S_STUDY_REQUESTED);

    //  A grant above the cap is refused as such even when the amount asked
    //  was higher still (asked under an earlier, higher cap)
    pole_params_t params = s_params ();
    pole_dossier_t dossier = s_dossier (POLE_S_STUDY_REQUESTED);
    dossier.study_asked = 40000;
    s_expect_refused_with (&dossier, POLE_E_GRANT_STUDY,
        FIELDS ({ "amount", "30000" }), &params, 0, "study_cap",
        "the study grant (30000 €) exceeds the study cap (25000 €)");
    params.study_cap_eur = 10000;
    s_expect_refused_with (&dossier, POLE_E_GRANT_STUDY,
        FIELDS ({ "amount", "10001" }), &params, 0, "study_cap",
        "(10000 €)");
}

static void
test_grant_above_request (void **state)
{
    (void) state;
    s_expect_refused (POLE_S_STUDY_REQUESTED, POLE_E_GRANT_STUDY,
        FIELDS ({ "amount", "20001" }), "grant_above_request",
        "the study grant (20001 €) exceeds the amount asked (20000 €)");
    s_expect_accepted (POLE_S_STUDY_REQUESTED, POLE_E_GRANT_STUDY,
        FIELDS ({ "amount", "20000" }), POLE_S_STUDY_FUNDED);
    s_expect_accepted (POLE_S_STUDY_REQUESTED, POLE_E_GRANT_STUDY,
        FIELDS ({ "amount", "15000" }), POLE_S_STUDY_FUNDED);

    pole_params_t params = s_params ();
    pole_dossier_t dossier = s_dossier (POLE_S_POSTS_REQUESTED);
    dossier.posts_asked = 1;
    s_expect_refused_with (&dossier, POLE_E_GRANT_POSTS,
        FIELDS ({ "posts", "2" }), &params, 0, "grant_above_request",
        "the posts granted (2) exceed the posts asked (1)");
    s_expect_accepted_with (&dossier, POLE_E_GRANT_POSTS,
        FIELDS ({ "posts", "1" }), &params, 0, POLE_S_FUNDING_YEAR_1);
}

static void
test_posts (void **state)
{
    (void) state;
    s_expect_refused (POLE_S_POLE_CREATED, POLE_E_REQUEST_POSTS,
        FIELDS ({ "posts", "3" }), "posts",
        "the number of posts asked (3) must be between 1 and 2, the most "
        "the programme funds per pole");
    s_expect_refused (POLE_S_POSTS_REQUESTED, POLE_E_GRANT_POSTS,
        FIELDS ({ "posts", "3" }), "posts", "the number of posts granted (3)");
    //  Zero is a number of posts the programme does not fund
    s_expect_refused (POLE_S_POLE_CREATED, POLE_E_REQUEST_POSTS,
        FIELDS ({ "posts", "0" }), "posts", "asked (0)");
    s_expect_refused (POLE_S_POSTS_REQUESTED, POLE_E_GRANT_POSTS,
        FIELDS ({ "posts", "0" }), "posts", "granted (0)");
    s_expect_accepted (POLE_S_POLE_CREATED, POLE_E_REQUEST_POSTS,
        FIELDS ({ "posts", "1" }), POLE_S_POSTS_REQUESTED);

    pole_params_t params = s_params ();
    params.max_posts = 1;
    pole_dossier_t dossier = s_dossier (POLE_S_POLE_CREATED);
    s_expect_refused_with (&dossier, POLE_E_REQUEST_POSTS,
        FIELDS ({ "posts", "2" }), &params, 0, "posts", "between 1 and 1");
}

static void
test_report_year (void **state)
{
    (void) state;
    pole_params_t params = s_params ();
    pole_dossier_t dossier = s_dossier (POLE_S_FUNDING_YEAR_2);
    dossier.reports_filed = 0x1;
    s_expect_refused_with (&dossier, POLE_E_FILE_ANNUAL_REPORT,
        FIELDS ({ "year", "3" }), &params, 0, "report_year",
        "the annual report of year 3 cannot be filed yet: the dossier is in "
        "funding year 2");
    s_expect_refused_with (&dossier, POLE_E_FILE_ANNUAL_REPORT,
        FIELDS ({ "year", "1" }), &params, 0, "report_year",
        "the annual report of year 1 is already filed");
    s_expect_refused_with (&dossier, POLE_E_FILE_ANNUAL_REPORT,
        FIELDS ({ "year", "64" }), &params, 0, "report_year", NULL);
    s_expect_refused_with (&dossier, POLE_E_FILE_ANNUAL_REPORT,
        FIELDS ({ "year", "0" }), &params, 0, "report_year",
        "there is no funding year 0");
    s_expect_accepted_with (&dossier, POLE_E_FILE_ANNUAL_REPORT,
        FIELDS ({ "year", "2" }), &params, 0, POLE_S_FUNDING_YEAR_2);

    dossier = s_dossier (POLE_S_OPERATING);
    dossier.reports_filed = 0x3;
    s_expect_refused_with (&dossier, POLE_E_FILE_ANNUAL_REPORT,
        FIELDS ({ "year", "4" }), &params, 0, "report_year",
        "there is no annual report of year 4: the programme funds 3 years");
    s_expect_accepted_with (&dossier, POLE_E_FILE_ANNUAL_REPORT,
        FIELDS ({ "year", "3" }), &params, 0, POLE_S_OPERATING);
}

static void
test_annual_report (void **state)
{
    (void) state;
    pole_params_t params = s_params ();
    pole_dossier_t dossier = s_dossier (POLE_S_FUNDING_YEAR_1);
    dossier.reports_filed = 0;
    s_expect_refused_with (&dossier, POLE_E_START_NEXT_YEAR, NO_FIELDS,
        &params, 0, "annual_report",
        "the annual report of funding year 1 must be filed before year 2 starts");
    dossier = s_dossier (POLE_S_FUNDING_YEAR_3);
    dossier.reports_filed = 0x3;
    s_expect_refused_with (&dossier, POLE_E_START_NEXT_YEAR, NO_FIELDS,
        &params, 0, "annual_report",
        "the annual report of funding year 3 must be filed before the funded "
        "years end");
    //  The report of an earlier year does not stand for the current one
    dossier = s_dossier (POLE_S_FUNDING_YEAR_2);
    dossier.reports_filed = 0x5;
    s_expect_refused_with (&dossier, POLE_E_START_NEXT_YEAR, NO_FIELDS,
        &params, 0, "annual_report", "funding year 2");
}

static void
test_stakeholders (void **state)
{
    (void) state;
    s_expect_refused (POLE_S_STUDY_DELIVERED, POLE_E_VALIDATE,
        FIELDS ({ "stakeholders", "CADES,, Réso solidaire" }), "stakeholders",
        "stakeholder 2 of the list has no name");
    s_expect_refused (POLE_S_STUDY_DELIVERED, POLE_E_VALIDATE,
        FIELDS ({ "stakeholders", "CADES, " }), "stakeholders",
        "stakeholder 2");
    s_expect_refused (POLE_S_STUDY_DELIVERED, POLE_E_VALIDATE,
        FIELDS ({ "stakeholders", " ,A" }), "stakeholders", "stakeholder 1");
    s_expect_refused (POLE_S_STUDY_DELIVERED, POLE_E_VALIDATE,
        FIELDS ({ "stakeholders", "A, B, C" },
                { "stakeholder_types", "association, cooperative" }),
        "stakeholders", "stakeholder_types gives 2 types for 3 stakeholders");
    s_expect_refused (POLE_S_STUDY_DELIVERED, POLE_E_VALIDATE,
        FIELDS ({ "stakeholders", "A, B" },
                { "stakeholder_types", "association, scop" }),
        "stakeholders", "the type 'scop' of stakeholder 2 is not one of "
        "association, cooperative, mutuelle, fondation, entreprise_ess, "
        "collectivite, autre");
    s_expect_refused (POLE_S_STUDY_DELIVERED, POLE_E_VALIDATE,
        FIELDS ({ "stakeholders", "A, B" },
                { "stakeholder_types", "association," }),
        "stakeholders", "the type '' of stakeholder 2");
    s_expect_refused (POLE_S_STUDY_DELIVERED, POLE_E_VALIDATE,
        FIELDS ({ "stakeholders", "" }), "fields", "is empty");

    //  Accepted, with or without types; a mixed group has no warning
    pole_decision_t out = s_expect_accepted (POLE_S_STUDY_DELIVERED,
        POLE_E_VALIDATE, FIELDS ({ "stakeholders", "CADES" }), POLE_S_VALIDATED);
    assert_string_equal (out.warning, "");
    out = s_expect_accepted (POLE_S_STUDY_DELIVERED, POLE_E_VALIDATE,
        FIELDS ({ "stakeholders", " Scop A , Mutuelle B,Ville C " },
                { "stakeholder_types", "cooperative,mutuelle , collectivite" }),
        POLE_S_VALIDATED);
    assert_string_equal (out.warning, "");
    out = s_expect_accepted (POLE_S_STUDY_DELIVERED, POLE_E_VALIDATE,
        FIELDS ({ "stakeholders", "A, B" },
                { "stakeholder_types", "association, entreprise_ess" }),
        POLE_S_VALIDATED);
    assert_string_equal (out.warning, "");
}

static void
test_associations_only_warning (void **state)
{
    (void) state;
    pole_decision_t out = s_expect_accepted (POLE_S_STUDY_DELIVERED,
        POLE_E_VALIDATE,
        FIELDS ({ "stakeholders", "Asso A, Asso B" },
                { "stakeholder_types", "association, association" }),
        POLE_S_VALIDATED);
    assert_non_null (strstr (out.warning, "associations only"));
    assert_non_null (strstr (out.warning, "beyond the associative sector"));
}

static void
test_adossement_host (void **state)
{
    (void) state;
    s_expect_refused (POLE_S_VALIDATED, POLE_E_CREATE_POLE,
        FIELDS ({ "mode", "adossement" }, { "name", "ESS Dinan" }),
        "adossement_host",
        "a pole created by adossement must name its host structure");
    pole_decision_t out = s_expect_accepted (POLE_S_VALIDATED,
        POLE_E_CREATE_POLE,
        FIELDS ({ "mode", "adossement" }, { "name", "ESS Dinan" },
                { "host", "Maison des associations" }), POLE_S_POLE_CREATED);
    assert_string_equal (out.warning, "");
    out = s_expect_accepted (POLE_S_VALIDATED, POLE_E_CREATE_POLE,
        FIELDS ({ "mode", "ex_nihilo" }, { "name", "ESS Dinan" }),
        POLE_S_POLE_CREATED);
    assert_string_equal (out.warning, "");
    //  A host with ex_nihilo is odd but recorded, with a warning
    out = s_expect_accepted (POLE_S_VALIDATED, POLE_E_CREATE_POLE,
        FIELDS ({ "mode", "ex_nihilo" }, { "name", "ESS Dinan" },
                { "host", "Mairie" }), POLE_S_POLE_CREATED);
    assert_non_null (strstr (out.warning, "'Mairie'"));
}

static void
test_cofunding_year (void **state)
{
    (void) state;
    const char *bad [] = { "1989", "2101", "10", "20100", "0" };
    for (size_t index = 0; index < 5; index++)
        s_expect_refused (POLE_S_FUNDING_YEAR_1, POLE_E_ADD_COFUNDING,
            FIELDS ({ "funder", "CG 35" }, { "amount", "5000" },
                    { "year", bad [index] }), "fields",
            "is not a calendar year between 1990 and 2100");
    s_expect_refused (POLE_S_FUNDING_YEAR_1, POLE_E_ADD_COFUNDING,
        FIELDS ({ "funder", "CG 35" }, { "amount", "5000" },
                { "year", "deux mille dix" }), "fields", "'year'");
    s_expect_accepted (POLE_S_FUNDING_YEAR_1, POLE_E_ADD_COFUNDING,
        FIELDS ({ "funder", "CG 35" }, { "amount", "5000" },
                { "year", "1990" }), POLE_S_FUNDING_YEAR_1);
    s_expect_accepted (POLE_S_FUNDING_YEAR_1, POLE_E_ADD_COFUNDING,
        FIELDS ({ "funder", "CG 35" }, { "amount", "5000" },
                { "year", "2100" }), POLE_S_FUNDING_YEAR_1);
}

static void
test_reopen (void **state)
{
    (void) state;
    //  Each terminal state goes back to the state it left
    pole_state_t terminal [] = { POLE_S_STUDY_DECLINED, POLE_S_NOT_VALIDATED,
                                 POLE_S_WITHDRAWN, POLE_S_CLOSED };
    for (size_t index = 0; index < 4; index++) {
        pole_dossier_t dossier = s_dossier (terminal [index]);
        pole_state_t previous = dossier.prev_state;
        pole_params_t params = s_params ();
        pole_decision_t out = s_expect_accepted_with (&dossier, POLE_E_REOPEN,
            FIELDS ({ "reason", "mistake" }), &params, 0, previous);
        pole_engine_apply (&dossier, POLE_E_REOPEN,
                           FIELDS ({ "reason", "mistake" }), out.to);
        assert_int_equal (dossier.state, previous);
        assert_int_equal (dossier.prev_state, POLE_S_NONE);
    }
    //  Without a recorded state there is nowhere to go
    pole_params_t params = s_params ();
    pole_dossier_t dossier = s_dossier (POLE_S_CLOSED);
    dossier.prev_state = POLE_S_NONE;
    s_expect_refused_with (&dossier, POLE_E_REOPEN,
        FIELDS ({ "reason", "mistake" }), &params, 0, "transition",
        "no recorded state to return to");
    dossier.prev_state = POLE_S_WITHDRAWN;
    s_expect_refused_with (&dossier, POLE_E_REOPEN,
        FIELDS ({ "reason", "mistake" }), &params, 0, "transition", NULL);

    //  Only the Région or an administrator corrects a final decision
    dossier = s_dossier (POLE_S_CLOSED);
    const char *refused [] = { "holder", "cres", NULL };
    for (size_t index = 0; index < 3; index++) {
        s_role = refused [index];
        s_expect_refused_with (&dossier, POLE_E_REOPEN,
            FIELDS ({ "reason", "mistake" }), &params, 0, "role",
            "only the Région (role region) or an administrator (role admin) "
            "may reopen a dossier, and the sender's role is ");
    }
    s_role = "admin";
    s_expect_accepted_with (&dossier, POLE_E_REOPEN,
        FIELDS ({ "reason", "mistake" }), &params, 0, dossier.prev_state);
    s_role = "region";
}

static void
test_decide_defensive (void **state)
{
    (void) state;
    pole_decision_t out;
    //  No params, no context, no dossier: defaults, nothing live, NONE
    assert_int_equal (pole_engine_decide (NULL, POLE_E_NOTE, NULL, 3, NULL,
                                          NULL, 0, &out), -1);
    assert_string_equal (out.rule, "transition");
    assert_int_equal (pole_engine_decide (NULL, POLE_E_OPEN, NULL, 0, NULL,
                                          NULL, 0, NULL), -1);
    //  Open with no territories configured refuses every Pays
    assert_int_equal (pole_engine_decide (NULL, POLE_E_OPEN,
        FIELDS ({ "pays", "Dinan" }, { "holder", "H" },
                { "holder_type", "pays" }), NULL, NULL, 0, &out), -1);
    assert_string_equal (out.rule, "pays");
    assert_non_null (strstr (out.message, "the 0 Pays"));
}


//  --------------------------------------------------------------------------
//  apply()

static void
s_step (pole_dossier_t *dossier, pole_event_t event,
        const pole_field_t *fields, size_t count, pole_state_t to)
{
    pole_params_t params = s_params ();
    pole_decision_t out = s_expect_accepted_with (dossier, event, fields,
                                                  count, &params, 0, to);
    pole_engine_apply (dossier, event, fields, count, out.to);
    assert_int_equal (dossier->state, to);
}

static void
test_lifecycle (void **state)
{
    (void) state;
    pole_params_t params = s_params ();
    pole_dossier_t dossier;
    memset (&dossier, 0, sizeof (dossier));

    //  open: poled puts the canonical name from the decision in `pays`
    pole_field_t open [] = {
        { "pays", "Pays de Dinan" }, { "holder", "Collectif ESS du Pays de Dinan" },
        { "holder_type", "ess_actor" }, { "title", "Pôle ESS" } };
    pole_decision_t out = s_expect_accepted_with (&dossier, POLE_E_OPEN, open,
                                                  4, &params, 0, POLE_S_DRAFT);
    open [0].value = out.pays;
    pole_engine_apply (&dossier, POLE_E_OPEN, open, 4, out.to);
    assert_string_equal (dossier.pays, "Dinan");
    assert_string_equal (dossier.holder, "Collectif ESS du Pays de Dinan");
    assert_string_equal (dossier.holder_type, "ess_actor");
    assert_string_equal (dossier.title, "Pôle ESS");
    assert_int_equal (dossier.version, 1);

    s_step (&dossier, POLE_E_LEGITIMATE_HOLDER, FIELDS ({ "advisor", "CRES" }),
            POLE_S_DRAFT);
    s_step (&dossier, POLE_E_LEGITIMATE_HOLDER, NO_FIELDS, POLE_S_DRAFT);
    s_step (&dossier, POLE_E_REQUEST_STUDY, FIELDS ({ "amount", "24000" }),
            POLE_S_STUDY_REQUESTED);
    assert_int_equal (dossier.study_asked, 24000);
    s_step (&dossier, POLE_E_LEGITIMATE_HOLDER, NO_FIELDS, POLE_S_STUDY_REQUESTED);
    s_step (&dossier, POLE_E_GRANT_STUDY, FIELDS ({ "amount", "22000" }),
            POLE_S_STUDY_FUNDED);
    assert_int_equal (dossier.study_granted, 22000);
    s_step (&dossier, POLE_E_ADD_COFUNDING,
            FIELDS ({ "funder", "Département 22" }, { "amount", "3000" },
                    { "year", "2010" }), POLE_S_STUDY_FUNDED);
    s_step (&dossier, POLE_E_DELIVER_STUDY,
            FIELDS ({ "diagnosis", "d" }, { "priority_actions", "p" },
                    { "governance", "g" }), POLE_S_STUDY_DELIVERED);
    s_step (&dossier, POLE_E_VALIDATE,
            FIELDS ({ "stakeholders", "A, B" },
                    { "stakeholder_types", "association, cooperative" }),
            POLE_S_VALIDATED);
    s_step (&dossier, POLE_E_CREATE_POLE,
            FIELDS ({ "mode", "adossement" }, { "name", "ESS Dinan" },
                    { "host", "Maison des associations" }), POLE_S_POLE_CREATED);
    assert_string_equal (dossier.mode, "adossement");
    assert_string_equal (dossier.pole_name, "ESS Dinan");
    assert_string_equal (dossier.host, "Maison des associations");

    s_step (&dossier, POLE_E_REQUEST_POSTS, FIELDS ({ "posts", "2" }),
            POLE_S_POSTS_REQUESTED);
    assert_int_equal (dossier.posts_asked, 2);
    s_step (&dossier, POLE_E_DECLINE_POSTS, FIELDS ({ "reason", "budget" }),
            POLE_S_POLE_CREATED);
    assert_int_equal (dossier.posts_asked, 0);
    s_step (&dossier, POLE_E_REQUEST_POSTS, FIELDS ({ "posts", "2" }),
            POLE_S_POSTS_REQUESTED);
    s_step (&dossier, POLE_E_GRANT_POSTS, FIELDS ({ "posts", "1" }),
            POLE_S_FUNDING_YEAR_1);
    assert_int_equal (dossier.posts_granted, 1);
    assert_int_equal (dossier.funding_year, 1);

    s_step (&dossier, POLE_E_FILE_ANNUAL_REPORT, FIELDS ({ "year", "1" }),
            POLE_S_FUNDING_YEAR_1);
    assert_int_equal (dossier.reports_filed, 0x1);
    s_step (&dossier, POLE_E_START_NEXT_YEAR, NO_FIELDS, POLE_S_FUNDING_YEAR_2);
    assert_int_equal (dossier.funding_year, 2);
    s_step (&dossier, POLE_E_FILE_ANNUAL_REPORT, FIELDS ({ "year", "2" }),
            POLE_S_FUNDING_YEAR_2);
    s_step (&dossier, POLE_E_START_NEXT_YEAR, NO_FIELDS, POLE_S_FUNDING_YEAR_3);
    assert_int_equal (dossier.funding_year, 3);
    s_step (&dossier, POLE_E_FILE_ANNUAL_REPORT, FIELDS ({ "year", "3" }),
            POLE_S_FUNDING_YEAR_3);
    assert_int_equal (dossier.reports_filed, 0x7);
    s_step (&dossier, POLE_E_START_NEXT_YEAR, NO_FIELDS, POLE_S_OPERATING);
    assert_int_equal (dossier.funding_year, 3);
    s_step (&dossier, POLE_E_ADD_COFUNDING,
            FIELDS ({ "funder", "Ville de Dinan" }, { "amount", "12000" },
                    { "year", "2013" }), POLE_S_OPERATING);
    assert_int_equal (dossier.cofunding_eur, 15000);
    s_step (&dossier, POLE_E_NOTE, FIELDS ({ "text", "CRES visit" }),
            POLE_S_OPERATING);

    s_step (&dossier, POLE_E_CLOSE, FIELDS ({ "reason", "merged" }),
            POLE_S_CLOSED);
    assert_int_equal (dossier.prev_state, POLE_S_OPERATING);
    s_step (&dossier, POLE_E_NOTE, FIELDS ({ "text", "archived" }), POLE_S_CLOSED);
    assert_int_equal (dossier.prev_state, POLE_S_OPERATING);
    s_step (&dossier, POLE_E_REOPEN, FIELDS ({ "reason", "closed by mistake" }),
            POLE_S_OPERATING);
    assert_int_equal (dossier.prev_state, POLE_S_NONE);
    assert_int_equal (dossier.version, 25);
}

static void
test_apply_terminal_paths (void **state)
{
    (void) state;
    struct { pole_state_t from; pole_event_t event; pole_state_t to; } paths [] = {
        { POLE_S_STUDY_REQUESTED, POLE_E_DECLINE_STUDY, POLE_S_STUDY_DECLINED },
        { POLE_S_STUDY_DELIVERED, POLE_E_REJECT,        POLE_S_NOT_VALIDATED },
        { POLE_S_DRAFT,           POLE_E_WITHDRAW,      POLE_S_WITHDRAWN },
        { POLE_S_STUDY_FUNDED,    POLE_E_WITHDRAW,      POLE_S_WITHDRAWN },
        { POLE_S_POLE_CREATED,    POLE_E_CLOSE,         POLE_S_CLOSED },
        { POLE_S_FUNDING_YEAR_2,  POLE_E_CLOSE,         POLE_S_CLOSED },
    };
    for (size_t index = 0; index < sizeof (paths) / sizeof (paths [0]); index++) {
        pole_dossier_t dossier = s_dossier (paths [index].from);
        s_step (&dossier, paths [index].event, FIELDS ({ "reason", "r" }),
                paths [index].to);
        assert_int_equal (dossier.prev_state, paths [index].from);
        s_step (&dossier, POLE_E_REOPEN, FIELDS ({ "reason", "r" }),
                paths [index].from);
        assert_int_equal (dossier.prev_state, POLE_S_NONE);
        assert_int_equal (dossier.version, 5);
    }
}

static void
test_apply_pseudo_targets (void **state)
{
    (void) state;
    //  A table row can be applied as is: same state, previous state
    pole_dossier_t dossier = s_dossier (POLE_S_DRAFT);
    pole_engine_apply (&dossier, POLE_E_NOTE, FIELDS ({ "text", "t" }),
                       (pole_state_t) POLE_TO_SAME);
    assert_int_equal (dossier.state, POLE_S_DRAFT);
    dossier = s_dossier (POLE_S_WITHDRAWN);
    pole_engine_apply (&dossier, POLE_E_REOPEN, FIELDS ({ "reason", "r" }),
                       (pole_state_t) POLE_TO_PREVIOUS);
    assert_int_equal (dossier.state, POLE_S_VALIDATED);
    assert_int_equal (dossier.prev_state, POLE_S_NONE);
    pole_engine_apply (NULL, POLE_E_NOTE, NULL, 0, POLE_S_DRAFT);
}

static void
test_apply_truncates_safely (void **state)
{
    (void) state;
    //  A holder longer than the field is cut on a character boundary
    //  (POLE_NAME_MAX - 1 is odd: the cut falls inside an "é")
    char holder [600];
    size_t used = 0;
    while (used + 2 < sizeof (holder)) {
        memcpy (holder + used, "é", 2);
        used += 2;
    }
    holder [used] = 0;
    pole_dossier_t dossier;
    memset (&dossier, 0, sizeof (dossier));
    pole_engine_apply (&dossier, POLE_E_OPEN,
        FIELDS ({ "pays", "Dinan" }, { "holder", holder },
                { "holder_type", "pays" }), POLE_S_DRAFT);
    size_t length = strlen (dossier.holder);
    assert_true (length < POLE_NAME_MAX);
    assert_true (length >= POLE_NAME_MAX - 3);
    //  Ends on a whole "é" (C3 A9), not on a lone C3
    assert_int_equal ((unsigned char) dossier.holder [length - 1], 0xA9);
    assert_string_equal (dossier.title, "");
}


//  --------------------------------------------------------------------------
//  Helpers

static void
test_pays_lookup (void **state)
{
    (void) state;
    pole_params_t params = s_params ();
    struct { const char *name; const char *expect; } cases [] = {
        { "Dinan", "Dinan" },
        { "Pays de Dinan", "Dinan" },
        { "dinan", "Dinan" },
        { "DINAN", "Dinan" },
        { "  pays  de   dinan ", "Dinan" },
        { "Tregor-Goelo", "Trégor-Goëlo" },
        { "trégor goëlo", "Trégor-Goëlo" },
        { "TRÉGOR--GOËLO", "Trégor-Goëlo" },
        { "Pays du Trégor-Goëlo", "Trégor-Goëlo" },
        { "Pays des Vallons de Vilaine", "Vallons de Vilaine" },
        { "vallons-de-vilaine", "Vallons de Vilaine" },
        { "Ploermel-Coeur de Bretagne", "Ploërmel-Cœur de Bretagne" },
        { "PLOËRMEL CŒUR DE BRETAGNE", "Ploërmel-Cœur de Bretagne" },
        { "Pays d'Auray", "Auray" },
        { "Pays d’Auray", "Auray" },
        { "pays de brest", "Brest" },
        { "Quimper", NULL },
        { "Dinan Nord", NULL },
        { "Pays de", NULL },
        { "Pays", NULL },
        { "", NULL },
        { "   ", NULL },
        { "Brest-", "Brest" },
    };
    for (size_t index = 0; index < sizeof (cases) / sizeof (cases [0]); index++) {
        const pole_territory_t *found = pole_pays_lookup (&params, cases [index].name);
        if (!cases [index].expect) {
            if (found)
                fail_msg ("'%s' found as '%s'", cases [index].name, found->name);
            continue;
        }
        if (!found)
            fail_msg ("'%s' not found", cases [index].name);
        assert_string_equal (found->name, cases [index].expect);
    }
    assert_null (pole_pays_lookup (&params, NULL));
    assert_null (pole_pays_lookup (NULL, "Dinan"));
    //  Names too long to normalise match nothing, without overflow
    char name [4000];
    memset (name, 'a', sizeof (name));
    name [sizeof (name) - 1] = 0;
    assert_null (pole_pays_lookup (&params, name));
}

static void
test_parse_positive (void **state)
{
    (void) state;
    int64_t value = 0;
    assert_int_equal (pole_parse_positive ("1", 10, &value), 0);
    assert_int_equal (value, 1);
    assert_int_equal (pole_parse_positive ("25000", 1000000000, &value), 0);
    assert_int_equal (value, 25000);
    assert_int_equal (pole_parse_positive ("10", 10, &value), 0);
    assert_int_equal (pole_parse_positive ("9223372036854775807", INT64_MAX,
                                           &value), 0);
    assert_int_equal (value, INT64_MAX);
    value = 42;
    const char *bad [] = { "", "0", "00", "01", "-1", "+1", " 1", "1 ", "1.0",
                           "1e3", "0x10", "abc", "11", "9223372036854775808",
                           "99999999999999999999999999" };
    for (size_t index = 0; index < sizeof (bad) / sizeof (bad [0]); index++)
        assert_int_equal (pole_parse_positive (bad [index], 10, &value), -1);
    assert_int_equal (pole_parse_positive ("9223372036854775808", INT64_MAX,
                                           &value), -1);
    assert_int_equal (value, 42);
    assert_int_equal (pole_parse_positive (NULL, 10, &value), -1);
    assert_int_equal (pole_parse_positive ("5", 0, &value), -1);
    //  max below a single digit
    assert_int_equal (pole_parse_positive ("9", 5, &value), -1);
    assert_int_equal (pole_parse_positive ("5", 5, &value), 0);
}

static void
test_fields_get (void **state)
{
    (void) state;
    pole_field_t fields [] = { { "a", "1" }, { "b", "2" }, { NULL, "3" } };
    assert_string_equal (pole_fields_get (fields, 3, "b"), "2");
    assert_null (pole_fields_get (fields, 3, "c"));
    assert_null (pole_fields_get (fields, 1, "b"));
    assert_null (pole_fields_get (NULL, 3, "a"));
    assert_null (pole_fields_get (fields, 3, NULL));
}

static void
test_params_defaults (void **state)
{
    (void) state;
    pole_params_t params;
    memset (&params, 0x5A, sizeof (params));
    pole_params_defaults (&params);
    assert_int_equal (params.study_cap_eur, 25000);
    assert_int_equal (params.max_posts, 2);
    assert_int_equal (params.post_eur_per_year, 35000);
    assert_int_equal (params.funding_years, 3);
    assert_int_equal (params.live_per_pays, 1);
    assert_null (params.territories);
    assert_int_equal (params.territory_count, 0);
    pole_params_defaults (NULL);
}


//  --------------------------------------------------------------------------
//  Printers

static char *
s_print (void (*printer) (void *))
{
    char *text = NULL;
    size_t size = 0;
    FILE *file = open_memstream (&text, &size);
    assert_non_null (file);
    printer (file);
    fclose (file);
    return text;
}

static void
test_print_dot (void **state)
{
    (void) state;
    char *dot = s_print (pole_workflow_print_dot);
    //  polectl graph's output starts with the graph itself
    assert_int_equal (strncmp (dot, "digraph pole_workflow {", 23), 0);
    assert_int_equal (dot [strlen (dot) - 2], '}');
    assert_non_null (strstr (dot, "none -> draft [label=\"open\"]"));
    assert_non_null (strstr (dot, "posts_requested -> pole_created [label=\"decline_posts\"]"));
    assert_non_null (strstr (dot, "closed [shape=box, style=\"bold,filled\""));
    assert_non_null (strstr (dot, "withdrawn -> previous_state [label=\"reopen\", style=dashed]"));
    assert_non_null (strstr (dot, "previous_state [shape=note"));
    assert_non_null (strstr (dot, "funding_year_1 -> operating"));
    for (int index = 1; index < POLE_S_COUNT; index++)
        assert_non_null (strstr (dot, pole_state_name (index)));
    for (int index = 0; index < POLE_E_COUNT; index++)
        assert_non_null (strstr (dot, pole_event_name (index)));
    //  Balanced braces and quotes
    int braces = 0, quotes = 0;
    for (const char *scan = dot; *scan; scan++) {
        braces += *scan == '{'? 1: *scan == '}'? -1: 0;
        quotes += *scan == '"';
    }
    assert_int_equal (braces, 0);
    assert_int_equal (quotes % 2, 0);
    free (dot);
    pole_workflow_print_dot (NULL);
}

static void
test_print_markdown (void **state)
{
    (void) state;
    char *markdown = s_print (pole_workflow_print_markdown);
    assert_non_null (strstr (markdown, "| state | events accepted → target |"));
    assert_non_null (strstr (markdown,
        "| `posts_requested` | `grant_posts` → `funding_year_1`<br>"
        "`decline_posts` → `pole_created`"));
    assert_non_null (strstr (markdown, "`reopen` → (the state it left)"));
    assert_non_null (strstr (markdown,
        "| `open` | `pays` (text), `holder` (text), `holder_type` (one of "
        "`ess_actor`, `collectivite`, `pays`), *`title`* (text)"));
    assert_non_null (strstr (markdown, "## Terminal states"));
    assert_non_null (strstr (markdown, "- `study_declined`\n- `not_validated`\n"
                                       "- `withdrawn`\n- `closed`\n"));
    for (int index = 0; index < POLE_E_COUNT; index++) {
        char cell [64];
        snprintf (cell, sizeof (cell), "| `%s` |", pole_event_name (index));
        assert_non_null (strstr (markdown, cell));
    }
    free (markdown);
    pole_workflow_print_markdown (NULL);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_names_round_trip),
        cmocka_unit_test (test_terminal_states),
        cmocka_unit_test (test_table_is_well_formed),
        cmocka_unit_test (test_event_specs_match_domain),
        cmocka_unit_test (test_every_state_and_event),
        cmocka_unit_test (test_transition_message_lists_allowed_events),
        cmocka_unit_test (test_funding_years_guard),
        cmocka_unit_test (test_unknown_event),
        cmocka_unit_test (test_fields_unknown_duplicate_empty),
        cmocka_unit_test (test_fields_missing_required),
        cmocka_unit_test (test_fields_count_and_enum),
        cmocka_unit_test (test_holder_type),
        cmocka_unit_test (test_amount),
        cmocka_unit_test (test_pays),
        cmocka_unit_test (test_live_per_pays),
        cmocka_unit_test (test_study_cap),
        cmocka_unit_test (test_grant_above_request),
        cmocka_unit_test (test_posts),
        cmocka_unit_test (test_report_year),
        cmocka_unit_test (test_annual_report),
        cmocka_unit_test (test_stakeholders),
        cmocka_unit_test (test_associations_only_warning),
        cmocka_unit_test (test_adossement_host),
        cmocka_unit_test (test_cofunding_year),
        cmocka_unit_test (test_reopen),
        cmocka_unit_test (test_calendar_only),
        cmocka_unit_test (test_decide_defensive),
        cmocka_unit_test (test_lifecycle),
        cmocka_unit_test (test_apply_terminal_paths),
        cmocka_unit_test (test_apply_pseudo_targets),
        cmocka_unit_test (test_apply_truncates_safely),
        cmocka_unit_test (test_pays_lookup),
        cmocka_unit_test (test_parse_positive),
        cmocka_unit_test (test_fields_get),
        cmocka_unit_test (test_params_defaults),
        cmocka_unit_test (test_print_dot),
        cmocka_unit_test (test_print_markdown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
