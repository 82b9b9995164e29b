/* bt_file.c - file helpers shared across the tree: read a whole file into memory
 * (NUL-terminated, for the text/JSON readers) and create the folders leading to an output. */
#include "bt_types.h"
#include "bt/bt.h" /* struct bt_err, bt_err_set (bt_err.c, this library) */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

bt_status bt_file_read_all(const char *path, char **out, size_t *len, bt_err *err) {
    *out = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) {
        int e = errno;
        return bt_err_set(err, BT_E_IO, "%s: cannot open: %s", path, strerror(e));
    }
    char *buf = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (n + 65536 > cap) {
            size_t nc = cap ? 2 * cap : (size_t)1 << 20;
            char *nb = realloc(buf, nc + 1);
            if (!nb) {
                free(buf);
                fclose(f);
                return bt_err_set(err, BT_E_NOMEM, "%s: out of memory", path);
            }
            buf = nb;
            cap = nc;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0) break;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        return bt_err_set(err, BT_E_IO, "%s: read error", path);
    }
    buf[n] = 0;
    *out = buf;
    *len = n;
    return BT_OK;
}

bt_status bt_file_make_parents(const char *path, bt_err *err) {
    char buf[4096];
    snprintf(buf, sizeof(buf), "%s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(buf, 0777) != 0 && errno != EEXIST)
            return bt_err_set(err, BT_E_IO, "%s: cannot create folder %s: %s", path, buf,
                              strerror(errno));
        *p = '/';
    }
    return BT_OK;
}
