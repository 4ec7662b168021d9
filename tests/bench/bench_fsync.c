/*  =========================================================================
    bench_fsync - what one durable commit costs on this disk at the least

    usage: bench_fsync DIR [COUNT]   (COUNT 1000)

    In a file under DIR (put it on the database's filesystem), COUNT times:
    write 4 KiB, then fdatasync; the time of each pair is kept. Two ways:

      overwrite  the file is 1 MiB, written and synced first, and the writes
                 go round it: the data only (SQLite reuses its WAL file
                 after each checkpoint, so this is its usual case)
      append     the file grows by 4 KiB at each write: the size changes,
                 so the filesystem's journal is committed too (a WAL that
                 grows, before its first checkpoint)

    Prints one line per way: p50, p99, p99.9, max and mean in microseconds.
    A benchmark: it prints figures, it asserts nothing.
    =========================================================================
*/

#define _GNU_SOURCE
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define BLOCK 4096
#define RING  256              //  1 MiB of 4 KiB blocks

#include "bench_util.h"

static int
s_run (const char *dir, const char *way, int count)
{
    char path[4096];
    snprintf (path, sizeof path, "%s/bench_fsync.%d.dat", dir, (int) getpid ());
    int fd = open (path, O_CREAT | O_TRUNC | O_WRONLY, 0600);
    if (fd < 0) {
        perror (path);
        return 1;
    }
    static char block[BLOCK];
    memset (block, 'w', sizeof block);
    bool overwrite = strcmp (way, "overwrite") == 0;
    if (overwrite) {
        for (int i = 0; i < RING; i++)
            if (pwrite (fd, block, BLOCK, (off_t) i * BLOCK) != BLOCK)
                return 1;
        fsync (fd);
    }
    int64_t *t = (int64_t *) malloc ((size_t) count * sizeof (int64_t));
    int64_t sum = 0;
    for (int i = 0; i < count; i++) {
        block[0] = (char) i;
        off_t offset = (off_t) (overwrite ? i % RING : i) * BLOCK;
        int64_t t0 = s_now_ns ();
        if (pwrite (fd, block, BLOCK, offset) != BLOCK || fdatasync (fd)) {
            perror (path);
            return 1;
        }
        t[i] = s_now_ns () - t0;
        sum += t[i];
    }
    close (fd);
    unlink (path);
    qsort (t, (size_t) count, sizeof (int64_t), s_cmp_i64);
    printf ("way=%s count=%d p50_us=%.0f p99_us=%.0f p999_us=%.0f "
            "max_us=%.0f mean_us=%.0f\n",
            way, count, t[count / 2] / 1e3, t[(int) (count * 0.99)] / 1e3,
            t[(int) (count * 0.999)] / 1e3, t[count - 1] / 1e3,
            sum / 1e3 / count);
    free (t);
    return 0;
}

int
main (int argc, char *argv[])
{
    if (argc < 2) {
        fprintf (stderr, "usage: bench_fsync DIR [COUNT]\n");
        return 2;
    }
    int count = argc > 2 ? atoi (argv[2]) : 1000;
    if (count < 1)
        return 2;
    return s_run (argv[1], "overwrite", count) || s_run (argv[1], "append", count);
}
