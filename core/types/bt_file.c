/* bt_file.c - read a whole file into memory (NUL-terminated), shared by the text/JSON readers. */
#include "bt_types.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bt_status bt_file_read_all(const char *path, char **out, size_t *len, char *errbuf, size_t errlen) {
    *out = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) {
        int e = errno;
        if (errbuf && errlen) snprintf(errbuf, errlen, "%s: cannot open: %s", path, strerror(e));
        return BT_E_IO;
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
                if (errbuf && errlen) snprintf(errbuf, errlen, "%s: out of memory", path);
                return BT_E_NOMEM;
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
        if (errbuf && errlen) snprintf(errbuf, errlen, "%s: read error", path);
        return BT_E_IO;
    }
    buf[n] = 0;
    *out = buf;
    *len = n;
    return BT_OK;
}
