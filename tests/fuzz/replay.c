/*  =========================================================================
    replay - run a fuzz target over files, without libFuzzer

    Linked with one fuzz_*.c into fuzz_replay_codec / fuzz_replay_handler,
    built by the normal compiler (and so by `make sanitize` with ASan and
    UBSan): `make test` replays every file of the corpus (seeds, and each
    crash found since, kept as a regression test). Arguments are files or
    directories (whose regular files are replayed in name order). A target
    that finds a bug aborts, which fails the test.
    =========================================================================
*/
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);
int LLVMFuzzerInitialize (int *argc, char ***argv) __attribute__ ((weak));

static size_t s_replayed = 0;

static int
s_replay_file (const char *path)
{
    FILE *file = fopen (path, "rb");
    if (!file) {
        perror (path);
        return -1;
    }
    uint8_t *data = NULL;
    size_t size = 0, capacity = 0;
    for (;;) {
        if (size == capacity) {
            capacity = capacity ? 2 * capacity : 4096;
            uint8_t *bigger = (uint8_t *) realloc (data, capacity);
            if (!bigger) {
                free (data);
                fclose (file);
                return -1;
            }
            data = bigger;
        }
        size_t got = fread (data + size, 1, capacity - size, file);
        size += got;
        if (got == 0)
            break;
    }
    int failed = ferror (file);
    fclose (file);
    if (failed) {
        perror (path);
        free (data);
        return -1;
    }
    if (getenv ("POLE_REPLAY_VERBOSE"))
        fprintf (stderr, "replay: %s (%zu bytes)\n", path, size);
    //  A copy of exactly `size` bytes, so that ASan sees a read past the end
    uint8_t *exact = (uint8_t *) malloc (size ? size : 1);
    if (size)
        memcpy (exact, data, size);
    free (data);
    LLVMFuzzerTestOneInput (exact, size);
    free (exact);
    s_replayed++;
    return 0;
}

static int
s_by_name (const struct dirent **a, const struct dirent **b)
{
    return strcmp ((*a)->d_name, (*b)->d_name);
}

static int
s_replay (const char *path)
{
    struct stat info;
    if (stat (path, &info)) {
        perror (path);
        return -1;
    }
    if (!S_ISDIR (info.st_mode))
        return s_replay_file (path);
    struct dirent **entries = NULL;
    int count = scandir (path, &entries, NULL, s_by_name);
    if (count < 0) {
        perror (path);
        return -1;
    }
    int rc = 0;
    for (int index = 0; index < count; index++) {
        const char *name = entries[index]->d_name;
        if (name[0] != '.') {
            char child[4096];
            snprintf (child, sizeof child, "%s/%s", path, name);
            struct stat child_info;
            if (stat (child, &child_info) == 0 && S_ISREG (child_info.st_mode)
                && s_replay_file (child))
                rc = -1;
        }
        free (entries[index]);
    }
    free (entries);
    return rc;
}

int
main (int argc, char *argv[])
{
    if (argc < 2) {
        fprintf (stderr, "usage: %s FILE-OR-DIRECTORY...\n", argv[0]);
        return 2;
    }
    if (LLVMFuzzerInitialize)
        LLVMFuzzerInitialize (&argc, &argv);
    int rc = 0;
    for (int index = 1; index < argc; index++)
        if (s_replay (argv[index]))
            rc = 1;
    printf ("replay: %zu inputs replayed%s\n", s_replayed,
            rc ? ", some could not be read" : ", no failure");
    if (s_replayed == 0) {
        fprintf (stderr, "replay: no input found: is the corpus there?\n");
        rc = 1;
    }
    return rc;
}
