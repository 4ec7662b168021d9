/*  =========================================================================
    pole_engine - deciding an event: a pure function

    pole_engine_decide() answers one question: may this event happen to
    this dossier now, and if so, what state follows? It checks, in order:

    1. that the event exists                          (rule unknown_event)
    2. that the transition table has a row for the dossier's state and the
       event                                          (rule transition)
    3. the event's fields against the event spec table (rule fields, and
       holder_type and amount for those two kinds of value)
    4. the rules particular to the event (study_cap, posts, report_year...)

    The table in workflow.c decides transitions; this file only holds the
    checks that the table cannot express. Nothing here does I/O, allocates
    or keeps state: the store can replay the log through apply() and get
    the same dossiers back.
    =========================================================================
*/

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "pole/engine.h"

//  Bounds of numeric fields. A sum in euros above a billion is a typo.
#define S_EUROS_MAX      INT64_C(1000000000)
#define S_COUNT_MAX      INT64_C(1000000)
#define S_YEAR_MIN       1990
#define S_YEAR_MAX       2100
//  Longest quoted user value in a message, in bytes
#define S_EXCERPT_MAX    64
//  Longest normalised Pays name; longer names match nothing
#define S_PAYS_KEY_MAX   512
//  Annual reports are bits of an unsigned
#define S_REPORT_YEARS_MAX ((int) (sizeof (unsigned) * 8))

static const pole_dossier_t s_no_dossier;


//  --------------------------------------------------------------------------
//  Text helpers. Messages go on the wire, where every frame must be valid
//  UTF-8, so nothing here ever cuts a multi-byte character in two.

//  Cuts `text` back to the last complete UTF-8 character
static void
s_utf8_trim (char *text)
{
    size_t length = strlen (text);
    size_t start = length;
    while (start > 0 && ((unsigned char) text [start - 1] & 0xC0) == 0x80)
        start--;
    if (start == 0)
        return;
    unsigned char lead = (unsigned char) text [start - 1];
    if (lead < 0xC0)
        return;
    size_t need = lead >= 0xF0? 4: lead >= 0xE0? 3: 2;
    if (length - (start - 1) < need)
        text [start - 1] = 0;
}

//  Copies `source` into a fixed-size dossier field
static void
s_copy (char *dest, size_t size, const char *source)
{
    snprintf (dest, size, "%s", source? source: "");
    s_utf8_trim (dest);
}

//  A user value short enough to quote in a message: `text` itself, or its
//  beginning followed by an ellipsis, in `buffer`
static const char *
s_excerpt (const char *text, char *buffer, size_t size)
{
    if (!text)
        return "";
    if (strlen (text) < size)
        return text;
    memcpy (buffer, text, size - 4);
    buffer [size - 4] = 0;
    s_utf8_trim (buffer);
    strcat (buffer, "…");
    return buffer;
}

//  "a,b,c" as "a, b, c", for messages
static const char *
s_list_text (const char *list, char *buffer, size_t size)
{
    size_t used = 0;
    for (const char *scan = list; *scan && used + 3 < size; scan++) {
        buffer [used++] = *scan;
        if (*scan == ',')
            buffer [used++] = ' ';
    }
    buffer [used] = 0;
    return buffer;
}

static bool
s_is_blank (const char *text)
{
    for (; *text; text++)
        if (*text != ' ' && *text != '\t' && *text != '\r' && *text != '\n')
            return false;
    return true;
}

//  Reads the next comma-separated item from *cursor, without the spaces
//  around it. Returns false when the list is exhausted.
static bool
s_next_item (const char **cursor, const char **item, size_t *length)
{
    const char *scan = *cursor;
    if (!scan)
        return false;
    const char *comma = strchr (scan, ',');
    const char *end = comma? comma: scan + strlen (scan);
    while (scan < end && (*scan == ' ' || *scan == '\t'))
        scan++;
    while (end > scan && (end [-1] == ' ' || end [-1] == '\t'))
        end--;
    *item = scan;
    *length = (size_t) (end - scan);
    *cursor = comma? comma + 1: NULL;
    return true;
}

//  True if `item` (not NUL-terminated) is one of the comma-separated
//  `choices`
static bool
s_in_choices (const char *choices, const char *item, size_t length)
{
    const char *cursor = choices;
    const char *choice;
    size_t choice_length;
    while (s_next_item (&cursor, &choice, &choice_length))
        if (choice_length == length && memcmp (choice, item, length) == 0)
            return true;
    return false;
}


//  --------------------------------------------------------------------------
//  Refusals and warnings

static int
s_refuse (pole_decision_t *out, const char *rule, const char *format, ...)
    __attribute__ ((format (printf, 3, 4)));

static int
s_refuse (pole_decision_t *out, const char *rule, const char *format, ...)
{
    va_list args;
    va_start (args, format);
    vsnprintf (out->message, sizeof (out->message), format, args);
    va_end (args);
    s_utf8_trim (out->message);
    out->accepted = false;
    out->rule = rule;
    return -1;
}

static void
s_warn (pole_decision_t *out, const char *format, ...)
    __attribute__ ((format (printf, 2, 3)));

static void
s_warn (pole_decision_t *out, const char *format, ...)
{
    va_list args;
    va_start (args, format);
    vsnprintf (out->warning, sizeof (out->warning), format, args);
    va_end (args);
    s_utf8_trim (out->warning);
}

static const char *
s_state_text (int state)
{
    const char *name = pole_state_name (state);
    return name? name: "unknown";
}


//  --------------------------------------------------------------------------
//  The transition table

//  The funding year a state stands for: 1..3 in funding_year_k, the last
//  funded year once operating, 0 before funding
static int
s_funding_year_of (pole_state_t state, const pole_params_t *params)
{
    if (state >= POLE_S_FUNDING_YEAR_1 && state <= POLE_S_FUNDING_YEAR_3)
        return (int) (state - POLE_S_FUNDING_YEAR_1) + 1;
    if (state == POLE_S_OPERATING)
        return params->funding_years;
    return 0;
}

static bool
s_guard_holds (pole_guard_t guard, pole_state_t state,
               const pole_params_t *params)
{
    int year = s_funding_year_of (state, params);
    switch (guard) {
        case POLE_G_MORE_YEARS:
            return year < params->funding_years;
        case POLE_G_LAST_YEAR:
            //  >= rather than ==: a dossier left in a year beyond a
            //  since-lowered funding_years may still end its funding
            return year >= params->funding_years;
        default:
            return true;
    }
}

static const pole_transition_t *
s_find_transition (pole_state_t state, pole_event_t event,
                   const pole_params_t *params)
{
    size_t count;
    const pole_transition_t *table = pole_workflow_transitions (&count);
    for (size_t index = 0; index < count; index++)
        if (table [index].from == state && table [index].event == event
        &&  s_guard_holds (table [index].guard, state, params))
            return &table [index];
    return NULL;
}

//  The state a row (or apply's `to`) leads to, pseudo-targets resolved
static pole_state_t
s_resolve (int to, const pole_dossier_t *dossier)
{
    if (to == POLE_TO_SAME)
        return dossier->state;
    if (to == POLE_TO_PREVIOUS)
        return dossier->prev_state;
    return (pole_state_t) to;
}

//  Refuses with the events the current state does accept, so that the
//  officer sees at once what may be done instead
static int
s_refuse_transition (pole_state_t state, pole_event_t event,
                     pole_decision_t *out)
{
    size_t count;
    const pole_transition_t *table = pole_workflow_transitions (&count);
    //  Each event once, in table order (start_next_year has two rows)
    pole_event_t events [POLE_E_COUNT];
    size_t allowed = 0;
    for (size_t index = 0; index < count; index++) {
        //  The calendar's own events are not for the reader to send
        if (table [index].from != state
        ||  table [index].event == POLE_E_REMINDER
        ||  table [index].event == POLE_E_OVERDUE)
            continue;
        bool listed = false;
        for (size_t seen = 0; seen < allowed; seen++)
            if (events [seen] == table [index].event)
                listed = true;
        if (!listed && allowed < POLE_E_COUNT)
            events [allowed++] = table [index].event;
    }
    char list [POLE_MESSAGE_MAX] = "";
    size_t used = 0;
    for (size_t index = 0; index < allowed && used < sizeof (list); index++) {
        const char *separator = index == 0? "":
                                index + 1 == allowed? " and ": ", ";
        int written = snprintf (list + used, sizeof (list) - used, "%s%s",
                                separator, pole_event_name ((int) events [index]));
        if (written < 0)
            break;
        used += (size_t) written;
    }
    if (allowed == 0)
        return s_refuse (out, "transition",
                         "the event %s is not allowed in state %s, which "
                         "accepts no event", pole_event_name ((int) event),
                         s_state_text ((int) state));
    return s_refuse (out, "transition",
                     "the event %s is not allowed in state %s; %s there %s %s",
                     pole_event_name ((int) event), s_state_text ((int) state),
                     allowed == 1? "the only event allowed": "the events allowed",
                     allowed == 1? "is": "are", list);
}


//  --------------------------------------------------------------------------
//  Fields, against the event spec table

static const pole_field_spec_t *
s_field_spec (const pole_event_spec_t *spec, const char *key)
{
    for (int index = 0; index < POLE_MAX_EVENT_FIELDS; index++) {
        if (!spec->fields [index].name)
            break;
        if (strcmp (spec->fields [index].name, key) == 0)
            return &spec->fields [index];
    }
    return NULL;
}

//  "its fields are a, b and c", for a refused unknown key
static const char *
s_field_names (const pole_event_spec_t *spec, char *buffer, size_t size)
{
    int count = 0;
    while (count < POLE_MAX_EVENT_FIELDS && spec->fields [count].name)
        count++;
    if (count == 0) {
        snprintf (buffer, size, "it takes no field");
        return buffer;
    }
    size_t used = (size_t) snprintf (buffer, size, "its field%s %s",
                                     count == 1? " is": "s are",
                                     spec->fields [0].name);
    for (int index = 1; index < count && used < size; index++)
        used += (size_t) snprintf (buffer + used, size - used, "%s%s",
                                   index + 1 == count? " and ": ", ",
                                   spec->fields [index].name);
    return buffer;
}

//  The value of one field, against its kind
static int
s_check_value (const pole_field_spec_t *field, const char *value,
               pole_decision_t *out)
{
    char excerpt [S_EXCERPT_MAX];
    char choices [POLE_MESSAGE_MAX];
    int64_t number;
    switch (field->kind) {
        case POLE_F_EUROS:
            if (pole_parse_positive (value, S_EUROS_MAX, &number))
                return s_refuse (out, "amount",
                    "the %s '%s' is not an amount in whole euros: write "
                    "digits only (e.g. 20000), more than 0 and at most "
                    "%" PRId64, field->name,
                    s_excerpt (value, excerpt, sizeof (excerpt)), S_EUROS_MAX);
            return 0;
        case POLE_F_COUNT:
            //  Zero is well-formed: it is refused by the event's own rule
            //  (posts, report_year), which says why in the domain's words
            if (strcmp (value, "0") != 0
            &&  pole_parse_positive (value, S_COUNT_MAX, &number))
                return s_refuse (out, "fields",
                    "the field '%s' must be a whole number written in "
                    "digits, at most %" PRId64 ", not '%s'", field->name,
                    S_COUNT_MAX, s_excerpt (value, excerpt, sizeof (excerpt)));
            return 0;
        case POLE_F_ENUM:
            if (field->choices
            &&  !s_in_choices (field->choices, value, strlen (value))) {
                //  The protocol gives the holder type its own rule
                bool holder = strcmp (field->name, "holder_type") == 0;
                return s_refuse (out, holder? "holder_type": "fields",
                    "the %s '%s' is not one of %s",
                    holder? "holder type": field->name,
                    s_excerpt (value, excerpt, sizeof (excerpt)),
                    s_list_text (field->choices, choices, sizeof (choices)));
            }
            return 0;
        default:
            //  Names the dossier keeps (holder, title, pole name,
            //  host) must fit its fields: refused, never silently cut
            if (field->kind == POLE_F_TEXT
            &&  s_in_choices ("holder,title,name,host", field->name,
                              strlen (field->name))
            &&  strlen (value) >= POLE_NAME_MAX)
                return s_refuse (out, "fields",
                    "the %s is %zu bytes long; at most %d are kept",
                    field->name, strlen (value), POLE_NAME_MAX - 1);
            //  Text and lists: non-empty is checked already; the items of
            //  a list are the business of the event's own rule
            return 0;
    }
}

//  Shape first (every key known, given once, not empty), then the required
//  keys, then the values, so that the officer fixes the form before the
//  figures
static int
s_check_fields (const pole_event_spec_t *spec, const pole_field_t *fields,
                size_t count, pole_decision_t *out)
{
    char excerpt [S_EXCERPT_MAX];
    char names [POLE_MESSAGE_MAX];
    for (size_t index = 0; index < count; index++) {
        const char *key = fields [index].key? fields [index].key: "";
        if (!s_field_spec (spec, key))
            return s_refuse (out, "fields",
                "the event %s has no field '%s'; %s", spec->name,
                s_excerpt (key, excerpt, sizeof (excerpt)),
                s_field_names (spec, names, sizeof (names)));
        for (size_t earlier = 0; earlier < index; earlier++)
            if (fields [earlier].key && strcmp (fields [earlier].key, key) == 0)
                return s_refuse (out, "fields",
                    "the field '%s' is given more than once", key);
        if (!fields [index].value || s_is_blank (fields [index].value))
            return s_refuse (out, "fields", "the field '%s' is empty", key);
    }
    for (int index = 0; index < POLE_MAX_EVENT_FIELDS; index++) {
        const pole_field_spec_t *field = &spec->fields [index];
        if (!field->name)
            break;
        if (field->required && !pole_fields_get (fields, count, field->name))
            return s_refuse (out, "fields",
                "the event %s needs the field '%s'", spec->name, field->name);
    }
    for (size_t index = 0; index < count; index++)
        if (s_check_value (s_field_spec (spec, fields [index].key),
                           fields [index].value, out))
            return -1;
    return 0;
}

//  A field already validated as a number
static int64_t
s_number (const pole_field_t *fields, size_t count, const char *key)
{
    int64_t value = 0;
    if (pole_parse_positive (pole_fields_get (fields, count, key),
                             S_EUROS_MAX, &value))
        return 0;
    return value;
}


//  --------------------------------------------------------------------------
//  The rules of each event

//  `consequence` ends the sentence: what the officer cannot do
static int
s_check_live (const char *pays, const char *consequence,
              const pole_params_t *params, const pole_context_t *ctx,
              pole_decision_t *out)
{
    if (ctx->live_in_pays < params->live_per_pays)
        return 0;
    return s_refuse (out, "live_per_pays",
        "the Pays '%s' already has %d live dossier%s and the configuration "
        "allows %d at a time, so %s", pays, ctx->live_in_pays,
        ctx->live_in_pays == 1? "": "s", params->live_per_pays, consequence);
}

static int
s_check_open (const pole_field_t *fields, size_t count,
              const pole_params_t *params, const pole_context_t *ctx,
              pole_decision_t *out)
{
    char excerpt [S_EXCERPT_MAX];
    const char *pays = pole_fields_get (fields, count, "pays");
    const pole_territory_t *territory = pole_pays_lookup (params, pays);
    if (!territory)
        return s_refuse (out, "pays",
            "'%s' is not one of the %zu Pays in the configuration",
            s_excerpt (pays, excerpt, sizeof (excerpt)),
            params->territory_count);
    if (s_check_live (territory->name, "no other dossier can be opened there",
                      params, ctx, out))
        return -1;
    s_copy (out->pays, sizeof (out->pays), territory->name);
    return 0;
}

static int
s_check_study (const pole_dossier_t *dossier, pole_event_t event,
               const pole_field_t *fields, size_t count,
               const pole_params_t *params, pole_decision_t *out)
{
    int64_t amount = s_number (fields, count, "amount");
    bool grant = event == POLE_E_GRANT_STUDY;
    if (amount > params->study_cap_eur)
        return s_refuse (out, "study_cap",
            "the study %s (%" PRId64 " €) exceeds the study cap (%" PRId64 " €)",
            grant? "grant": "amount asked", amount, params->study_cap_eur);
    if (grant && amount > dossier->study_asked)
        return s_refuse (out, "grant_above_request",
            "the study grant (%" PRId64 " €) exceeds the amount asked "
            "(%" PRId64 " €)", amount, dossier->study_asked);
    return 0;
}

static int
s_check_posts (const pole_dossier_t *dossier, pole_event_t event,
               const pole_field_t *fields, size_t count,
               const pole_params_t *params, pole_decision_t *out)
{
    int64_t posts = s_number (fields, count, "posts");
    bool grant = event == POLE_E_GRANT_POSTS;
    if (posts < 1 || posts > params->max_posts)
        return s_refuse (out, "posts",
            "the number of posts %s (%" PRId64 ") must be between 1 and "
            "%d, the most the programme funds per pole",
            grant? "granted": "asked", posts, params->max_posts);
    if (grant && posts > dossier->posts_asked)
        return s_refuse (out, "grant_above_request",
            "the posts granted (%" PRId64 ") exceed the posts asked (%d)",
            posts, dossier->posts_asked);
    return 0;
}

static bool
s_report_filed (const pole_dossier_t *dossier, int year)
{
    if (year < 1 || year > S_REPORT_YEARS_MAX)
        return false;
    return (dossier->reports_filed & (1u << (year - 1))) != 0;
}

static int
s_check_report (const pole_dossier_t *dossier, const pole_field_t *fields,
                size_t count, const pole_params_t *params,
                pole_decision_t *out)
{
    int64_t year = s_number (fields, count, "year");
    int open = s_funding_year_of (dossier->state, params);
    if (year < 1)
        return s_refuse (out, "report_year",
            "there is no funding year 0: funding years count from 1");
    if (year > open || year > S_REPORT_YEARS_MAX) {
        if (dossier->state == POLE_S_OPERATING)
            return s_refuse (out, "report_year",
                "there is no annual report of year %" PRId64 ": the "
                "programme funds %d year%s", year, params->funding_years,
                params->funding_years == 1? "": "s");
        return s_refuse (out, "report_year",
            "the annual report of year %" PRId64 " cannot be filed yet: the "
            "dossier is in funding year %d", year, open);
    }
    if (s_report_filed (dossier, (int) year))
        return s_refuse (out, "report_year",
            "the annual report of year %" PRId64 " is already filed", year);
    return 0;
}

static int
s_check_next_year (const pole_dossier_t *dossier, pole_state_t to,
                   const pole_params_t *params, pole_decision_t *out)
{
    int year = s_funding_year_of (dossier->state, params);
    if (s_report_filed (dossier, year))
        return 0;
    if (to == POLE_S_OPERATING)
        return s_refuse (out, "annual_report",
            "the annual report of funding year %d must be filed before the "
            "funded years end", year);
    return s_refuse (out, "annual_report",
        "the annual report of funding year %d must be filed before year %d "
        "starts", year, year + 1);
}

static int
s_check_validate (const pole_field_t *fields, size_t count,
                  pole_decision_t *out)
{
    char excerpt [S_EXCERPT_MAX];
    char choices [POLE_MESSAGE_MAX];
    const char *cursor = pole_fields_get (fields, count, "stakeholders");
    const char *item;
    size_t length;
    size_t stakeholders = 0;
    while (s_next_item (&cursor, &item, &length)) {
        stakeholders++;
        if (length == 0)
            return s_refuse (out, "stakeholders",
                "stakeholder %zu of the list has no name: give one name "
                "between each pair of commas", stakeholders);
    }
    const char *types = pole_fields_get (fields, count, "stakeholder_types");
    if (!types)
        return 0;

    const pole_field_spec_t *spec = s_field_spec (
        pole_workflow_event_spec (POLE_E_VALIDATE), "stakeholder_types");
    size_t typed = 0;
    size_t associations = 0;
    cursor = types;
    while (s_next_item (&cursor, &item, &length))
        typed++;
    if (typed != stakeholders)
        return s_refuse (out, "stakeholders",
            "stakeholder_types gives %zu type%s for %zu stakeholder%s: give "
            "one type per stakeholder, in the same order", typed,
            typed == 1? "": "s", stakeholders, stakeholders == 1? "": "s");
    cursor = types;
    for (size_t index = 1; s_next_item (&cursor, &item, &length); index++) {
        if (!s_in_choices (spec->choices, item, length)) {
            char type [S_EXCERPT_MAX];
            snprintf (type, sizeof (type), "%.*s", (int) length, item);
            return s_refuse (out, "stakeholders",
                "the type '%s' of stakeholder %zu is not one of %s",
                s_excerpt (type, excerpt, sizeof (excerpt)), index,
                s_list_text (spec->choices, choices, sizeof (choices)));
        }
        if (length == strlen ("association")
        &&  memcmp (item, "association", length) == 0)
            associations++;
    }
    if (associations == typed)
        s_warn (out, "the core group is made of associations only; the "
                     "programme sheet asks for a core group beyond the "
                     "associative sector (cooperatives, mutuelles, "
                     "fondations, ESS enterprises, local authorities)");
    return 0;
}

static int
s_check_create_pole (const pole_field_t *fields, size_t count,
                     pole_decision_t *out)
{
    char excerpt [S_EXCERPT_MAX];
    const char *mode = pole_fields_get (fields, count, "mode");
    const char *host = pole_fields_get (fields, count, "host");
    if (strcmp (mode, "adossement") == 0 && !host)
        return s_refuse (out, "adossement_host",
            "a pole created by adossement must name its host structure "
            "(field host)");
    if (strcmp (mode, "ex_nihilo") == 0 && host)
        s_warn (out, "the host structure '%s' is recorded, although the "
                     "pole is created ex nihilo",
                s_excerpt (host, excerpt, sizeof (excerpt)));
    return 0;
}

static int
s_check_cofunding (const pole_field_t *fields, size_t count,
                   pole_decision_t *out)
{
    int64_t year = s_number (fields, count, "year");
    if (year < S_YEAR_MIN || year > S_YEAR_MAX)
        return s_refuse (out, "fields",
            "the co-funding year %" PRId64 " is not a calendar year between "
            "%d and %d", year, S_YEAR_MIN, S_YEAR_MAX);
    return 0;
}

static int
s_check_reopen (const pole_dossier_t *dossier, const pole_params_t *params,
                const pole_context_t *ctx, pole_decision_t *out)
{
    pole_state_t previous = dossier->prev_state;
    //  A correction of a final decision is the Région's (DOMAIN.md)
    const char *role = ctx && ctx->role? ctx->role: "holder";
    if (strcmp (role, "region") != 0 && strcmp (role, "admin") != 0)
        return s_refuse (out, "role",
            "only the Région (role region) or an administrator (role admin) "
            "may reopen a dossier, and the sender's role is %s", role);
    //  A terminal dossier always records the state it left; without it
    //  there is nowhere to go back to
    if (previous <= POLE_S_NONE || previous >= POLE_S_COUNT
    ||  pole_state_is_terminal (previous))
        return s_refuse (out, "transition",
            "the dossier has no recorded state to return to, so it cannot "
            "be reopened");
    //  Coming back makes the dossier live again in its Pays
    char consequence [128];
    snprintf (consequence, sizeof (consequence),
              "this dossier cannot return to %s", s_state_text ((int) previous));
    return s_check_live (dossier->pays, consequence, params, ctx, out);
}


//  --------------------------------------------------------------------------
//  Public API

void
pole_params_defaults (pole_params_t *params)
{
    if (!params)
        return;
    memset (params, 0, sizeof (*params));
    params->study_cap_eur = 25000;
    params->max_posts = 2;
    params->post_eur_per_year = 35000;
    params->funding_years = 3;
    params->live_per_pays = 1;
    params->territories = NULL;
    params->territory_count = 0;
}

int
pole_engine_decide (const pole_dossier_t *dossier, pole_event_t event,
                    const pole_field_t *fields, size_t field_count,
                    const pole_params_t *params, const pole_context_t *ctx,
                    time_t now, pole_decision_t *out)
{
    //  No rule depends on the time yet; `now` is there so that one can
    //  without changing every caller
    (void) now;
    if (!out)
        return -1;
    memset (out, 0, sizeof (*out));

    pole_params_t defaults;
    if (!params) {
        pole_params_defaults (&defaults);
        params = &defaults;
    }
    const pole_context_t no_context = { 0 };
    if (!ctx)
        ctx = &no_context;
    if (!dossier)
        dossier = &s_no_dossier;
    if (!fields)
        field_count = 0;

    int number = (int) event;
    if (number < 0 || number >= POLE_E_COUNT)
        return s_refuse (out, "unknown_event",
                         "event number %d is not an event of the workflow",
                         number);

    //  The calendar's notices are its own: no client may send them, so
    //  that a reminder in the history always means the calendar spoke
    if ((event == POLE_E_REMINDER || event == POLE_E_OVERDUE)
    &&  (!ctx->role || strcmp (ctx->role, "calendar") != 0))
        return s_refuse (out, "calendar_only",
            "the event %s is sent by the programme calendar only, not by a "
            "person or a script", pole_event_name (event));

    const pole_transition_t *row =
        s_find_transition (dossier->state, event, params);
    if (!row)
        return s_refuse_transition (dossier->state, event, out);

    if (s_check_fields (pole_workflow_event_spec (event), fields,
                        field_count, out))
        return -1;

    pole_state_t to = s_resolve (row->to, dossier);
    int rc = 0;
    switch (event) {
        case POLE_E_OPEN:
            rc = s_check_open (fields, field_count, params, ctx, out);
            break;
        case POLE_E_REQUEST_STUDY:
        case POLE_E_GRANT_STUDY:
            rc = s_check_study (dossier, event, fields, field_count, params, out);
            break;
        case POLE_E_REQUEST_POSTS:
        case POLE_E_GRANT_POSTS:
            rc = s_check_posts (dossier, event, fields, field_count, params, out);
            break;
        case POLE_E_FILE_ANNUAL_REPORT:
            rc = s_check_report (dossier, fields, field_count, params, out);
            break;
        case POLE_E_START_NEXT_YEAR:
            rc = s_check_next_year (dossier, to, params, out);
            break;
        case POLE_E_VALIDATE:
            rc = s_check_validate (fields, field_count, out);
            break;
        case POLE_E_CREATE_POLE:
            rc = s_check_create_pole (fields, field_count, out);
            break;
        case POLE_E_ADD_COFUNDING:
            rc = s_check_cofunding (fields, field_count, out);
            break;
        case POLE_E_REOPEN:
            rc = s_check_reopen (dossier, params, ctx, out);
            break;
        default:
            //  The others carry text only: the table and the fields decide
            break;
    }
    if (rc)
        return -1;
    out->accepted = true;
    out->to = to;
    out->rule = NULL;
    return 0;
}

void
pole_engine_apply (pole_dossier_t *dossier, pole_event_t event,
                   const pole_field_t *fields, size_t field_count,
                   pole_state_t to)
{
    if (!dossier)
        return;
    if (!fields)
        field_count = 0;
    pole_state_t from = dossier->state;
    //  `to` is normally the decision's state; the pseudo-targets are
    //  accepted too, so that a row of the table can be applied as is
    pole_state_t target = s_resolve ((int) to, dossier);

#   define S_FIELD(key) pole_fields_get (fields, field_count, key)
    switch (event) {
        case POLE_E_OPEN:
            //  The caller has put the canonical Pays name in `pays`
            s_copy (dossier->pays, sizeof (dossier->pays), S_FIELD ("pays"));
            s_copy (dossier->holder, sizeof (dossier->holder), S_FIELD ("holder"));
            s_copy (dossier->holder_type, sizeof (dossier->holder_type),
                    S_FIELD ("holder_type"));
            s_copy (dossier->title, sizeof (dossier->title), S_FIELD ("title"));
            break;
        case POLE_E_REQUEST_STUDY:
            dossier->study_asked = s_number (fields, field_count, "amount");
            break;
        case POLE_E_GRANT_STUDY:
            dossier->study_granted = s_number (fields, field_count, "amount");
            break;
        case POLE_E_CREATE_POLE:
            s_copy (dossier->mode, sizeof (dossier->mode), S_FIELD ("mode"));
            s_copy (dossier->pole_name, sizeof (dossier->pole_name),
                    S_FIELD ("name"));
            s_copy (dossier->host, sizeof (dossier->host), S_FIELD ("host"));
            break;
        case POLE_E_REQUEST_POSTS:
            dossier->posts_asked = (int) s_number (fields, field_count, "posts");
            break;
        case POLE_E_GRANT_POSTS:
            dossier->posts_granted = (int) s_number (fields, field_count, "posts");
            dossier->funding_year = 1;
            break;
        case POLE_E_DECLINE_POSTS:
            //  The pole may ask again, perhaps for fewer posts
            dossier->posts_asked = 0;
            break;
        case POLE_E_FILE_ANNUAL_REPORT: {
            int64_t year = s_number (fields, field_count, "year");
            if (year >= 1 && year <= S_REPORT_YEARS_MAX)
                dossier->reports_filed |= 1u << (year - 1);
            break;
        }
        case POLE_E_START_NEXT_YEAR:
            //  Taken from the target rather than incremented, so that the
            //  year always matches the state; operating keeps the last year
            if (target >= POLE_S_FUNDING_YEAR_1 && target <= POLE_S_FUNDING_YEAR_3)
                dossier->funding_year = (int) (target - POLE_S_FUNDING_YEAR_1) + 1;
            break;
        case POLE_E_ADD_COFUNDING:
            dossier->cofunding_eur += s_number (fields, field_count, "amount");
            break;
        default:
            break;
    }
#   undef S_FIELD

    //  reopen needs to know where to go back to: remember the state left
    if (pole_state_is_terminal (target) && !pole_state_is_terminal (from))
        dossier->prev_state = from;
    if (event == POLE_E_REOPEN)
        dossier->prev_state = POLE_S_NONE;
    dossier->state = target;
    dossier->version++;
}

//  --------------------------------------------------------------------------
//  Pays names, compared the forgiving way

//  Writes into `key` the form under which two spellings of a Pays compare
//  equal: lower case, accents folded to ASCII, every run of spaces, hyphens
//  and apostrophes as one space, and no leading "Pays de/des/du/d'".
//  Returns -1 if the key does not fit.
static int
s_pays_key (const char *name, char *key, size_t size)
{
    //  U+00C0..U+00FF (UTF-8 C3 80..C3 BF) folded to one ASCII letter;
    //  '*' for the two signs of the block
    static const char fold [] =
        "aaaaaaaceeeeiiiidnooooo*ouuuuyts" "aaaaaaaceeeeiiiidnooooo*ouuuuyty";
    static const char *prefixes [] = { "pays de ", "pays des ", "pays du ",
                                       "pays d " };
    size_t used = 0;
    bool gap = false;
    const unsigned char *scan = (const unsigned char *) name;
    while (*scan) {
        char letter [3] = { 0 };
        size_t advance = 1;
        if (*scan == ' ' || *scan == '\t' || *scan == '-' || *scan == '\'')
            gap = true;
        else
        if (scan [0] == 0xC2 && scan [1] == 0xA0) {             //  no-break space
            gap = true;
            advance = 2;
        }
        else
        if (scan [0] == 0xE2 && scan [1] == 0x80
        && (scan [2] == 0x98 || scan [2] == 0x99)) {            //  ‘ ’
            gap = true;
            advance = 3;
        }
        else
        if (scan [0] == 0xC5 && (scan [1] == 0x92 || scan [1] == 0x93)) {
            memcpy (letter, "oe", 2);                           //  Œ œ
            advance = 2;
        }
        else
        if (scan [0] == 0xC3 && scan [1] >= 0x80 && scan [1] <= 0xBF) {
            if (scan [1] == 0x86 || scan [1] == 0xA6)           //  Æ æ
                memcpy (letter, "ae", 2);
            else
                letter [0] = fold [scan [1] - 0x80];
            advance = 2;
        }
        else
        if (*scan >= 'A' && *scan <= 'Z')
            letter [0] = (char) (*scan - 'A' + 'a');
        else
            letter [0] = (char) *scan;

        scan += advance;
        if (!letter [0])
            continue;
        size_t length = strlen (letter);
        if (used + length + 2 > size)
            return -1;
        if (gap && used > 0)
            key [used++] = ' ';
        gap = false;
        memcpy (key + used, letter, length);
        used += length;
    }
    key [used] = 0;

    for (size_t index = 0; index < sizeof (prefixes) / sizeof (prefixes [0]); index++) {
        size_t length = strlen (prefixes [index]);
        if (used > length && memcmp (key, prefixes [index], length) == 0) {
            memmove (key, key + length, used - length + 1);
            break;
        }
    }
    return 0;
}

const pole_territory_t *
pole_pays_lookup (const pole_params_t *params, const char *name)
{
    if (!params || !name || !params->territories)
        return NULL;
    char wanted [S_PAYS_KEY_MAX];
    char candidate [S_PAYS_KEY_MAX];
    if (s_pays_key (name, wanted, sizeof (wanted)) || !*wanted)
        return NULL;
    for (size_t index = 0; index < params->territory_count; index++) {
        const pole_territory_t *territory = &params->territories [index];
        if (territory->name
        &&  s_pays_key (territory->name, candidate, sizeof (candidate)) == 0
        &&  strcmp (wanted, candidate) == 0)
            return territory;
    }
    return NULL;
}

const char *
pole_fields_get (const pole_field_t *fields, size_t count, const char *key)
{
    if (!fields || !key)
        return NULL;
    for (size_t index = 0; index < count; index++)
        if (fields [index].key && strcmp (fields [index].key, key) == 0)
            return fields [index].value;
    return NULL;
}

int
pole_parse_positive (const char *text, int64_t max, int64_t *value)
{
    if (!text || max <= 0)
        return -1;
    //  No sign, no space, no leading zero: one spelling per number
    if (*text < '1' || *text > '9')
        return -1;
    int64_t result = 0;
    for (const char *scan = text; *scan; scan++) {
        if (*scan < '0' || *scan > '9')
            return -1;
        int digit = *scan - '0';
        //  Checked before multiplying, so that no input can overflow
        if (max - digit < 0 || result > (max - digit) / 10)
            return -1;
        result = result * 10 + digit;
    }
    if (value)
        *value = result;
    return 0;
}
