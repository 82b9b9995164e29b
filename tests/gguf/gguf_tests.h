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
/* the same with a full option set (NULL: defaults) */
bt_status write_opts(const struct bt_plugin *w, const struct sample *s, const char *path,
                     const struct bt_optset *o, struct bt_err *err);
/* open path with reader plugin d; close with rd_close (also on failure: frees ctx) */
bt_status rd_open(const struct bt_plugin *d, const char *path, struct rd *r, struct bt_err *err);
void      rd_close(struct rd *r);
/* number of entries in directory dir (excluding . and ..), -1 on error */
int dir_entries(const char *dir);

/* whole file into malloc memory (*n bytes) / n bytes into a new file (0 on success) */
char *slurp(const char *path, size_t *n);
int   spit(const char *path, const void *p, size_t n);
/* KV key of an open reader, copied into tmp; NULL if absent */
const struct bt_kv *find_kv(struct rd *r, const char *key, struct bt_kv *tmp);

int run_self(const struct bt_plugin *w, const struct bt_plugin *r, const char *dir);
int run_zstd(const struct bt_plugin *w, const struct bt_plugin *r, const char *dir);
#endif
