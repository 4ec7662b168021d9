/*  =========================================================================
    pole_calendar - the programme's dates (see calendar.h)
    =========================================================================
*/

#include "calendar.h"

#include "clock.h"

#include <string.h>

#define S_DAY_MS INT64_C (86400000)

static bool
s_report_filed (const pole_dossier_t *dossier, int year)
{
    return year >= 1 && (dossier->reports_filed & (1u << (year - 1)));
}

//  Arm the three timers of funding year k, which starts at start_ms: its
//  end, its report's due date and the reminder before it
static int
s_arm_year (pole_store_t *store, const pole_calendar_config_t *calendar,
            int64_t dossier, int year, int64_t start_ms, int64_t now_ms,
            const char *at)
{
    int64_t end = pole_clock_add_months (start_ms, calendar->year_months);
    int64_t due = end + calendar->report_due_days * S_DAY_MS;
    int64_t reminder = due - calendar->report_reminder_days * S_DAY_MS;
    if (reminder < now_ms)
        reminder = now_ms;
    if (pole_store_timer_arm (store, dossier, "year_end", year, end, end, at)
        || pole_store_timer_arm (store, dossier, "report_due", year, due, due,
                                 at)
        || pole_store_timer_arm (store, dossier, "report_reminder", year,
                                 reminder, due, at))
        return -1;
    return 0;
}

int
pole_calendar_on_event (pole_store_t *store,
                        const pole_calendar_config_t *calendar,
                        const pole_dossier_t *before,
                        const pole_dossier_t *after, pole_event_t event,
                        const pole_field_t *fields, size_t field_count,
                        int64_t now_ms, const char *at)
{
    int64_t id = after->id;
    //  A dossier that reaches a final state owes nothing more
    if (pole_state_is_terminal (after->state)
        && !pole_state_is_terminal (before->state))
        return pole_store_timer_cancel_all (store, id, at);

    switch (event) {
    case POLE_E_GRANT_STUDY: {
        int64_t deadline
            = pole_clock_add_months (now_ms, calendar->study_deadline_months);
        int64_t reminder = deadline - calendar->study_reminder_days * S_DAY_MS;
        if (reminder < now_ms)
            reminder = now_ms;
        if (pole_store_timer_arm (store, id, "study_deadline", 0, deadline,
                                  deadline, at)
            || pole_store_timer_arm (store, id, "study_reminder", 0, reminder,
                                     deadline, at))
            return -1;
        return 0;
    }
    case POLE_E_DELIVER_STUDY:
        if (pole_store_timer_settle (store, id, "study_deadline", 0, "settled",
                                     at)
                < 0
            || pole_store_timer_settle (store, id, "study_reminder", 0,
                                        "settled", at)
                   < 0)
            return -1;
        return 0;
    case POLE_E_GRANT_POSTS:
        return s_arm_year (store, calendar, id, 1, now_ms, now_ms, at);
    case POLE_E_START_NEXT_YEAR: {
        //  Years are contiguous: the next starts when this one was due to
        //  end, even when it is opened late; opened early by a programme
        //  officer, it starts now
        int year = before->funding_year;
        int64_t start = now_ms;
        if (pole_store_timer_find (store, id, "year_end", year, &start) < 0)
            return -1;
        if (start > now_ms)
            start = now_ms;
        if (pole_store_timer_settle (store, id, "year_end", year, "settled",
                                     at)
            < 0)
            return -1;
        if (after->state >= POLE_S_FUNDING_YEAR_1
            && after->state <= POLE_S_FUNDING_YEAR_3)
            return s_arm_year (store, calendar, id, after->funding_year,
                               start, now_ms, at);
        return 0;
    }
    case POLE_E_FILE_ANNUAL_REPORT: {
        int64_t year = 0;
        const char *text = pole_fields_get (fields, field_count, "year");
        if (!text || pole_parse_positive (text, 100, &year))
            return 0;
        if (pole_store_timer_settle (store, id, "report_reminder", (int) year,
                                     "settled", at)
                < 0
            || pole_store_timer_settle (store, id, "report_due", (int) year,
                                        "settled", at)
                   < 0)
            return -1;
        //  A year that ended waiting for this report opens now
        return pole_store_timer_rearm_waiting (store, id, (int) year, now_ms,
                                               at)
                       < 0
                   ? -1
                   : 0;
    }
    default:
        return 0;
    }
}

static void
s_add_field (pole_calendar_action_t *action, const char *key,
             const char *value)
{
    action->fields[action->field_count].key = key;
    action->fields[action->field_count].value = value;
    action->field_count++;
}

//  A reminder or an overdue notice about `about`, due at the timer's
//  deadline, for year k if any
static void
s_notice (pole_calendar_action_t *action, pole_event_t event,
          const pole_timer_t *timer, const char *about)
{
    action->event = event;
    snprintf (action->about, sizeof action->about, "%s", about);
    time_t seconds = (time_t) (timer->deadline_at / 1000);
    struct tm tm;
    gmtime_r (&seconds, &tm);
    strftime (action->due, sizeof action->due, "%Y-%m-%d", &tm);
    s_add_field (action, "about", action->about);
    s_add_field (action, "due", action->due);
    if (timer->year > 0) {
        snprintf (action->year, sizeof action->year, "%d", timer->year);
        s_add_field (action, "year", action->year);
    }
}

void
pole_calendar_decide (const pole_timer_t *timer, const pole_dossier_t *dossier,
                      int64_t now_ms, pole_calendar_action_t *action)
{
    memset (action, 0, sizeof *action);
    action->event = POLE_E_COUNT;
    action->timer_state = "settled";    //  nothing left to do
    if (pole_state_is_terminal (dossier->state))
        return;
    const char *kind = timer->kind;
    bool studying = dossier->state == POLE_S_STUDY_FUNDED;
    bool in_year = (int) dossier->state == POLE_S_FUNDING_YEAR_1 + timer->year - 1
                   && timer->year >= 1 && timer->year <= 3;
    bool year_open = dossier->funding_year >= timer->year
                     && (dossier->state >= POLE_S_FUNDING_YEAR_1
                         && dossier->state <= POLE_S_OPERATING);
    bool filed = s_report_filed (dossier, timer->year);
    //  A reminder fired late (the daemon was down, or the clock jumped)
    //  still goes out, before the overdue notice: the history then tells
    //  the whole sequence (docs/CALENDAR.md)
    (void) now_ms;

    if (streq (kind, "study_reminder") && studying) {
        s_notice (action, POLE_E_REMINDER, timer, "study_deadline");
        action->timer_state = "fired";
    }
    else if (streq (kind, "study_deadline") && studying) {
        s_notice (action, POLE_E_OVERDUE, timer, "study_deadline");
        action->timer_state = "overdue";
    }
    else if (streq (kind, "report_reminder") && year_open && !filed) {
        s_notice (action, POLE_E_REMINDER, timer, "annual_report");
        action->timer_state = "fired";
    }
    else if (streq (kind, "report_due") && year_open && !filed) {
        s_notice (action, POLE_E_OVERDUE, timer, "annual_report");
        action->timer_state = "overdue";
    }
    else if (streq (kind, "year_end") && in_year) {
        if (filed) {
            action->event = POLE_E_START_NEXT_YEAR;
            action->timer_state = "fired";
        }
        else
            action->timer_state = "waiting";
    }
}
