/*  =========================================================================
    pole_clock - the one clock of poled (see clock.h)
    =========================================================================
*/

#define _GNU_SOURCE     //  strptime, timegm
#include "clock.h"

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>

static atomic_bool s_simulated = false;
static _Atomic int64_t s_offset_ms = 0;

static int64_t
s_real_ms (void)
{
    struct timespec now;
    clock_gettime (CLOCK_REALTIME, &now);
    return (int64_t) now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

void
pole_clock_configure (bool simulated, int64_t offset_ms)
{
    atomic_store (&s_simulated, simulated);
    atomic_store (&s_offset_ms, simulated ? offset_ms : 0);
}

int64_t
pole_clock_now_ms (void)
{
    return s_real_ms () + atomic_load (&s_offset_ms);
}

time_t
pole_clock_now (void)
{
    return (time_t) (pole_clock_now_ms () / 1000);
}

bool
pole_clock_is_simulated (void)
{
    return atomic_load (&s_simulated);
}

int64_t
pole_clock_offset (void)
{
    return atomic_load (&s_offset_ms);
}

int
pole_clock_set (int64_t target_ms)
{
    if (!pole_clock_is_simulated ())
        return -1;
    atomic_store (&s_offset_ms, target_ms - s_real_ms ());
    return 0;
}

void
pole_clock_format (int64_t ms, char *buffer, size_t size)
{
    time_t seconds = (time_t) (ms / 1000);
    struct tm tm;
    gmtime_r (&seconds, &tm);
    strftime (buffer, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

int
pole_clock_parse (const char *text, int64_t *ms)
{
    struct tm tm;
    memset (&tm, 0, sizeof tm);
    const char *end = strptime (text, "%Y-%m-%d", &tm);
    if (!end)
        return -1;
    if (*end == 'T') {
        end = strptime (end, "T%H:%M:%SZ", &tm);
        if (!end)
            return -1;
    }
    if (*end)
        return -1;
    //  strptime accepts 31 February: a round trip must give the same day
    struct tm check = tm;
    time_t seconds = timegm (&check);
    if (check.tm_mday != tm.tm_mday || check.tm_mon != tm.tm_mon)
        return -1;
    *ms = (int64_t) seconds * 1000;
    return 0;
}

int64_t
pole_clock_add_months (int64_t ms, int months)
{
    time_t seconds = (time_t) (ms / 1000);
    struct tm tm;
    gmtime_r (&seconds, &tm);
    int day = tm.tm_mday;
    int month = tm.tm_mon + months;
    tm.tm_year += month / 12;
    tm.tm_mon = month % 12;
    //  Clamp the day to the target month's length
    static const int lengths[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int year = tm.tm_year + 1900;
    bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    int length = lengths[tm.tm_mon] + (tm.tm_mon == 1 && leap ? 1 : 0);
    tm.tm_mday = day > length ? length : day;
    return (int64_t) timegm (&tm) * 1000 + ms % 1000;
}
