/*  bench_util.h - the timing helpers the benchmark programs share: a
    monotonic clock in nanoseconds and a comparator to sort samples before
    reading percentiles. Header-only: each benchmark is one program.      */
#ifndef BENCH_UTIL_H_INCLUDED
#define BENCH_UTIL_H_INCLUDED

#include <stdint.h>
#include <time.h>

static inline int64_t
s_now_ns (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000000000 + ts.tv_nsec;
}

//  For qsort of int64_t samples, ascending
static inline int
s_cmp_i64 (const void *a, const void *b)
{
    int64_t x = *(const int64_t *) a, y = *(const int64_t *) b;
    return x < y ? -1 : x > y;
}

#endif
