/* gguf_tests.h - helpers shared by the gguf test program's sub-commands (test_gguf.c,
 * test_gguf_self.c). */
#ifndef BT_GGUF_TESTS_H
#define BT_GGUF_TESTS_H

#include "gguf_sample.h"
#include "gguf_test_host.h"

/* an open reader instance */
struct rd {
    const struct bt_plugin   *d;   /* descriptor */
    const struct bt_reader_i *i;   /* interface */
    void                     *ctx; /* instance state (calloc) */
};

/* write the sample s to path with writer w (alignment a); BT_OK or the failing status */
bt_status write_sample(const struct bt_plugin *w, const struct sample *s, const char *path,
                       int64_t a, struct bt_err *err);
/* open path with reader plugin d; close with rd_close (also on failure: frees ctx) */
bt_status rd_open(const struct bt_plugin *d, const char *path, struct rd *r, struct bt_err *err);
void      rd_close(struct rd *r);
/* number of entries in directory dir (excluding . and ..), -1 on error */
int dir_entries(const char *dir);

int run_self(const struct bt_plugin *w, const struct bt_plugin *r, const char *dir);
#endif
