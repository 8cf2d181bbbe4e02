/* store_fixture.h - a fresh LMDB store in a private temporary folder for the
 * unit tests that need one (under $ONAIR_TEST_TMP, set by CMake, or /tmp),
 * removed again afterwards.  Header-only: each test program includes it once. */
#ifndef ONAIR_TEST_STORE_FIXTURE_H
#define ONAIR_TEST_STORE_FIXTURE_H

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "store.h"

typedef struct store_fixture {
    char dir[512];
    store *s;
} store_fixture;

static int store_fixture_rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* Makes the folder "<tmp>/onair-<name>-XXXXXX" and opens a 16 MiB store in it.
 * Returns 0, or -1 with a message on stderr. */
static int store_fixture_open(store_fixture *f, const char *name)
{
    const char *base = getenv("ONAIR_TEST_TMP");
    if (!base || !*base)
        base = "/tmp";
    mkdir(base, 0700);
    snprintf(f->dir, sizeof f->dir, "%s/onair-%s-XXXXXX", base, name);
    if (!mkdtemp(f->dir)) {
        perror(f->dir);
        return -1;
    }
    char err[256];
    if (store_open(&f->s, f->dir, 16, false, err, sizeof err) != STORE_OK) {
        fprintf(stderr, "store_open: %s\n", err);
        return -1;
    }
    return 0;
}

/* Closes the store (if open) and removes its folder. */
static void store_fixture_close(store_fixture *f)
{
    if (f->s)
        store_close(f->s);
    f->s = NULL;
    nftw(f->dir, store_fixture_rm_one, 8, FTW_DEPTH | FTW_PHYS);
}

#endif
