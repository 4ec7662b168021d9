/*  =========================================================================
    pole_clock - the one clock of poled

    Every part of poled that needs the time (event times, notification
    backoff and digests, the programme calendar) reads it here. The real
    clock is the default. A simulated clock runs at the real pace from an
    offset that `polectl clock set/advance` moves forward, so that tests and
    the demo walk three years in seconds (docs/CALENDAR.md). The offset is
    atomic: the delivery worker's thread reads it too.
    =========================================================================
*/
#ifndef POLE_CLOCK_H_INCLUDED
#define POLE_CLOCK_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#ifdef __cplusplus
extern "C" {
#endif

/*  Choose the clock: real (offset ignored) or simulated from `offset_ms`
    (simulated minus real time). Call once at start, before any thread.   */
void pole_clock_configure (bool simulated, int64_t offset_ms);

/*  The time, in milliseconds or seconds since the epoch (UTC).           */
int64_t pole_clock_now_ms (void);
time_t pole_clock_now (void);

bool pole_clock_is_simulated (void);

/*  The current offset (0 for the real clock).                            */
int64_t pole_clock_offset (void);

/*  Move the simulated clock to `target_ms`. -1 if the clock is real. The
    caller keeps time from running back over recorded events.              */
int pole_clock_set (int64_t target_ms);

/*  `ms` as "YYYY-MM-DDTHH:MM:SSZ" into `buffer`.                          */
void pole_clock_format (int64_t ms, char *buffer, size_t size);

/*  Parse "YYYY-MM-DD" (midnight UTC) or "YYYY-MM-DDTHH:MM:SSZ". 0 or -1.  */
int pole_clock_parse (const char *text, int64_t *ms);

/*  `ms` plus `months` calendar months (the day kept, clamped to the
    month's length: 31 January + 1 month = 28 or 29 February).             */
int64_t pole_clock_add_months (int64_t ms, int months);

#ifdef __cplusplus
}
#endif

#endif
