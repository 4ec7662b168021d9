/*  Calendar tests: the pure decision of a due timer, and the clock's date
    arithmetic. Arming and firing through the daemon are tested in
    tests/integration/test_calendar.py.                                    */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "calendar.h"
#include "clock.h"

static pole_timer_t
s_timer (const char *kind, int year)
{
    pole_timer_t timer = {.id = 7, .dossier = 3, .year = year};
    snprintf (timer.kind, sizeof timer.kind, "%s", kind);
    //  2011-10-15T00:00:00Z
    timer.due_at = timer.deadline_at = INT64_C (1318636800000);
    return timer;
}

static pole_dossier_t
s_dossier (pole_state_t state, int year, unsigned reports)
{
    pole_dossier_t dossier = {.id = 3, .state = state, .funding_year = year,
                              .reports_filed = reports};
    return dossier;
}

static void
test_study_timers (void **state)
{
    (void) state;
    pole_calendar_action_t action;
    pole_timer_t reminder = s_timer ("study_reminder", 0);
    pole_timer_t deadline = s_timer ("study_deadline", 0);
    pole_dossier_t funded = s_dossier (POLE_S_STUDY_FUNDED, 0, 0);
    pole_calendar_decide (&reminder, &funded, 0, &action);
    assert_int_equal (action.event, POLE_E_REMINDER);
    assert_string_equal (action.timer_state, "fired");
    assert_int_equal (action.field_count, 2);
    assert_string_equal (action.fields[0].value, "study_deadline");
    assert_string_equal (action.fields[1].value, "2011-10-15");
    pole_calendar_decide (&deadline, &funded, 0, &action);
    assert_int_equal (action.event, POLE_E_OVERDUE);
    assert_string_equal (action.timer_state, "overdue");
    //  Delivered, or withdrawn: nothing to say
    pole_dossier_t delivered = s_dossier (POLE_S_STUDY_DELIVERED, 0, 0);
    pole_calendar_decide (&deadline, &delivered, 0, &action);
    assert_int_equal (action.event, POLE_E_COUNT);
    assert_string_equal (action.timer_state, "settled");
    //  A reminder fired after its deadline still goes out
    pole_calendar_decide (&reminder, &funded, reminder.deadline_at, &action);
    assert_int_equal (action.event, POLE_E_REMINDER);
    pole_dossier_t withdrawn = s_dossier (POLE_S_WITHDRAWN, 0, 0);
    pole_calendar_decide (&reminder, &withdrawn, 0, &action);
    assert_int_equal (action.event, POLE_E_COUNT);
}

static void
test_year_end (void **state)
{
    (void) state;
    pole_calendar_action_t action;
    pole_timer_t end = s_timer ("year_end", 2);
    //  Report of year 2 filed: the calendar opens year 3
    pole_dossier_t filed = s_dossier (POLE_S_FUNDING_YEAR_2, 2, 3);
    pole_calendar_decide (&end, &filed, 0, &action);
    assert_int_equal (action.event, POLE_E_START_NEXT_YEAR);
    assert_string_equal (action.timer_state, "fired");
    assert_int_equal (action.field_count, 0);
    //  Not filed: the timer waits for the report
    pole_dossier_t missing = s_dossier (POLE_S_FUNDING_YEAR_2, 2, 1);
    pole_calendar_decide (&end, &missing, 0, &action);
    assert_int_equal (action.event, POLE_E_COUNT);
    assert_string_equal (action.timer_state, "waiting");
    //  Already opened by hand: settled
    pole_dossier_t moved = s_dossier (POLE_S_FUNDING_YEAR_3, 3, 3);
    pole_calendar_decide (&end, &moved, 0, &action);
    assert_int_equal (action.event, POLE_E_COUNT);
    assert_string_equal (action.timer_state, "settled");
}

static void
test_report_timers (void **state)
{
    (void) state;
    pole_calendar_action_t action;
    pole_timer_t due = s_timer ("report_due", 1);
    pole_timer_t reminder = s_timer ("report_reminder", 1);
    pole_dossier_t missing = s_dossier (POLE_S_FUNDING_YEAR_1, 1, 0);
    pole_calendar_decide (&reminder, &missing, 0, &action);
    assert_int_equal (action.event, POLE_E_REMINDER);
    assert_int_equal (action.field_count, 3);
    assert_string_equal (action.fields[2].key, "year");
    assert_string_equal (action.fields[2].value, "1");
    pole_calendar_decide (&due, &missing, 0, &action);
    assert_int_equal (action.event, POLE_E_OVERDUE);
    assert_string_equal (action.timer_state, "overdue");
    assert_string_equal (action.fields[0].value, "annual_report");
    //  Filed: nothing
    pole_dossier_t filed = s_dossier (POLE_S_FUNDING_YEAR_1, 1, 1);
    pole_calendar_decide (&due, &filed, 0, &action);
    assert_int_equal (action.event, POLE_E_COUNT);
    //  A late report of the last year, once operating, is still owed
    pole_timer_t due3 = s_timer ("report_due", 3);
    pole_dossier_t operating = s_dossier (POLE_S_OPERATING, 3, 3);
    pole_calendar_decide (&due3, &operating, 0, &action);
    assert_int_equal (action.event, POLE_E_OVERDUE);
}

static void
test_clock_dates (void **state)
{
    (void) state;
    int64_t ms;
    assert_int_equal (pole_clock_parse ("2010-10-15", &ms), 0);
    assert_int_equal (ms, INT64_C (1287100800000));
    assert_int_equal (pole_clock_parse ("2010-10-15T12:30:00Z", &ms), 0);
    assert_int_equal (ms, INT64_C (1287145800000));
    assert_int_equal (pole_clock_parse ("2011-02-29", &ms), -1);
    assert_int_equal (pole_clock_parse ("2010-13-01", &ms), -1);
    assert_int_equal (pole_clock_parse ("2010-10-15x", &ms), -1);
    char text[32];
    //  31 January + 1 month: the end of February, leap year or not
    assert_int_equal (pole_clock_parse ("2012-01-31", &ms), 0);
    pole_clock_format (pole_clock_add_months (ms, 1), text, sizeof text);
    assert_string_equal (text, "2012-02-29T00:00:00Z");
    assert_int_equal (pole_clock_parse ("2011-01-31", &ms), 0);
    pole_clock_format (pole_clock_add_months (ms, 1), text, sizeof text);
    assert_string_equal (text, "2011-02-28T00:00:00Z");
    pole_clock_format (pole_clock_add_months (ms, 12), text, sizeof text);
    assert_string_equal (text, "2012-01-31T00:00:00Z");
    pole_clock_format (pole_clock_add_months (ms, 23), text, sizeof text);
    assert_string_equal (text, "2012-12-31T00:00:00Z");
}

static void
test_simulated_clock (void **state)
{
    (void) state;
    pole_clock_configure (false, 0);
    assert_false (pole_clock_is_simulated ());
    assert_int_equal (pole_clock_set (0), -1);
    pole_clock_configure (true, 0);
    int64_t target = INT64_C (1287100800000);
    assert_int_equal (pole_clock_set (target), 0);
    int64_t now = pole_clock_now_ms ();
    assert_true (now >= target && now < target + 5000);
    //  A real clock ignores an offset
    pole_clock_configure (false, INT64_C (-1000000000));
    assert_int_equal (pole_clock_offset (), 0);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_study_timers),
        cmocka_unit_test (test_year_end),
        cmocka_unit_test (test_report_timers),
        cmocka_unit_test (test_clock_dates),
        cmocka_unit_test (test_simulated_clock),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
