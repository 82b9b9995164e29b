/* gguf_test_host.h - a minimal struct bt_host for tests that dlopen plugins directly (no core):
 * stderr logging, an error sink, a counting allocator with fault injection, serial parallel_for. */
#ifndef BT_GGUF_TEST_HOST_H
#define BT_GGUF_TEST_HOST_H

#include "bt/bt_plugin.h"
#include "bt_types.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>


/* the test's option set: only what the gguf plugins ask for */
struct bt_optset {
    int64_t     alignment;      /* writer option "alignment" (0: plugin default) */
    const char *compress;       /* writer option "compress" (NULL: "none") */
    int64_t     compress_level; /* writer option "compress_level" (0: plugin default) */
};

extern long th_live;     /* allocations not yet freed */
extern long th_calls;    /* alloc calls so far */
extern long th_fail_at;  /* alloc call index that fails (-1: never) */
extern int  th_verbose;  /* log INFO/DEBUG too */
extern const struct bt_host th_host;

/* dlopen a plugin and return its descriptor (NULL + message on stderr on failure) */
const struct bt_plugin *th_load(const char *path, uint32_t kind);
#endif
