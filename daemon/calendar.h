/*  =========================================================================
    pole_calendar - the programme's dates: which timers an event arms or
    settles, and what a due timer asks of its dossier

    Both halves are small and explicit. on_event() runs inside the event's
    transaction, so a timer exists exactly when the event that armed it
    does. decide() is pure: given a due timer and the dossier as it stands,
    it says which event the calendar sends (reminder, overdue,
    start_next_year, or none) and what becomes of the timer. The server
    does the rest through the same path as a client's event: engine, store,
    outbox, live stream. docs/CALENDAR.md is the contract.
    =========================================================================
*/
#ifndef POLE_CALENDAR_H_INCLUDED
#define POLE_CALENDAR_H_INCLUDED

#include "pole/config.h"
#include "pole/engine.h"
#include "store.h"

#ifdef __cplusplus
extern "C" {
#endif

/*  Arm and settle the timers of `event`, just applied to the dossier
    (`before` -> `after`) at now_ms (`at` as text). 0 or -1.              */
int pole_calendar_on_event (pole_store_t *store,
                            const pole_calendar_config_t *calendar,
                            const pole_dossier_t *before,
                            const pole_dossier_t *after, pole_event_t event,
                            const pole_field_t *fields, size_t field_count,
                            int64_t now_ms, const char *at);

/*  What a due timer asks of its dossier.                                 */
typedef struct {
    pole_event_t event;         /* POLE_E_COUNT: nothing to send           */
    pole_field_t fields[3];
    size_t field_count;
    const char *timer_state;    /* fired, waiting, overdue or settled      */
    char about[32];             /* storage for the field values            */
    char due[16];
    char year[16];
} pole_calendar_action_t;

/*  `now_ms` is the clock's time (no rule reads it yet: a late reminder
    still goes out, before its overdue notice).                            */
void pole_calendar_decide (const pole_timer_t *timer,
                           const pole_dossier_t *dossier, int64_t now_ms,
                           pole_calendar_action_t *action);

#ifdef __cplusplus
}
#endif

#endif
