/* bt_file.c - file helpers shared across the tree: read a whole file into memory
 * (NUL-terminated, for the text/JSON readers) and create the folders leading to an output. */
#include "bt_types.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

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

int bt_file_make_parents(const char *path, char *errbuf, size_t errlen) {
    char buf[4096];
    snprintf(buf, sizeof(buf), "%s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(buf, 0777) != 0 && errno != EEXIST) {
            if (errbuf && errlen) snprintf(errbuf, errlen, "%s: cannot create folder %s: %s", path, buf, strerror(errno));
            return -1;
        }
        *p = '/';
    }
    return 0;
}
