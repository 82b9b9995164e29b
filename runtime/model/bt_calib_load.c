/* bt_calib_load.c - reading BTCAL1 calibration files (layout in bt_calib.h) with bounds checks,
 * and lookups by tensor name for quantizers. */
#include "bt_calib.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct bt_calib {
    char                  *path;    /* file, for matrices read on demand */
    int                    lazy;    /* 1: matrices stay in the file until bt_calib_matrix */
    uint32_t               n;       /* entries */
    uint64_t               tokens;  /* rows seen per entry */
    struct bt_calib_entry *e;       /* (n) entries, each owning names/diag/mat */
};

static int get(FILE *f, void *p, size_t n) { return fread(p, 1, n, f) == n ? 0 : 1; }

void bt_calib_free(bt_calib *c) {
    if (!c) return;
    for (uint32_t i = 0; c->e && i < c->n; i++) {
        free(c->e[i].names);
        free(c->e[i].diag);
        free(c->e[i].mat);
    }
    free(c->e);
    free(c->path);
    free(c);
}

static bt_status read_entry(FILE *f, const char *path, uint32_t idx, long fsize, int lazy,
                            struct bt_calib_entry *e, bt_err *err) {
    uint32_t nl, n, storage;
    if (get(f, &nl, 4) || nl == 0 || nl > 65536 || (long)nl > fsize)
        return bt_err_set(err, BT_E_FORMAT, "%s: entry %u: bad name length", path, idx);
    e->names = malloc(nl + 1);
    if (!e->names) return bt_err_set(err, BT_E_NOMEM, "%s: out of memory", path);
    if (get(f, e->names, nl)) return bt_err_set(err, BT_E_FORMAT, "%s: entry %u truncated", path, idx);
    e->names[nl] = 0;
    if (get(f, &n, 4) || get(f, &storage, 4) || get(f, &e->count, 8))
        return bt_err_set(err, BT_E_FORMAT, "%s: entry '%s' truncated", path, e->names);
    if (n == 0 || n > (1u << 20) || storage > 1)
        return bt_err_set(err, BT_E_FORMAT, "%s: entry '%s': bad size %u / storage %u", path,
                          e->names, n, storage);
    uint64_t need = (uint64_t)n * 8 + (storage ? (uint64_t)n * n * 4 : 0);
    long here = ftell(f);
    if (here < 0 || (uint64_t)(fsize - here) < need)
        return bt_err_set(err, BT_E_FORMAT, "%s: entry '%s' (n %u) extends past end of file",
                          path, e->names, n);
    e->n    = (int32_t)n;
    e->diag = malloc((size_t)n * sizeof(double));
    if (!e->diag || get(f, e->diag, (size_t)n * 8))
        return bt_err_set(err, BT_E_FORMAT, "%s: entry '%s': cannot read diag", path, e->names);
    e->full = storage == 1;
    e->mat_off = (uint64_t)ftell(f);
    if (storage && lazy) {
        if (fseek(f, (long)((uint64_t)n * n * 4), SEEK_CUR) != 0)
            return bt_err_set(err, BT_E_FORMAT, "%s: entry '%s': cannot skip matrix", path, e->names);
    } else if (storage) {
        e->mat = malloc((size_t)n * n * sizeof(float));
        if (!e->mat) return bt_err_set(err, BT_E_NOMEM, "%s: out of memory (%u x %u)", path, n, n);
        if (get(f, e->mat, (size_t)n * n * 4))
            return bt_err_set(err, BT_E_FORMAT, "%s: entry '%s': cannot read matrix", path, e->names);
    }
    return BT_OK;
}

static bt_status calib_load(const char *path, int lazy, bt_calib **out, bt_err *err) {
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return bt_err_set(err, BT_E_IO, "%s: cannot open: %s", path, strerror(errno));
    bt_status st = BT_OK;
    bt_calib *c = calloc(1, sizeof *c);
    char magic[8];
    uint32_t ver = 0, ne = 0, nwin, ctx;
    long fsize = -1;
    if (fseek(f, 0, SEEK_END) == 0) fsize = ftell(f);
    rewind(f);
    if (!c || !(c->path = strdup(path))) { st = bt_err_set(err, BT_E_NOMEM, "%s: out of memory", path); goto fail; }
    c->lazy = lazy;
    if (fsize < 32 || get(f, magic, 8) || memcmp(magic, BT_CALIB_MAGIC, 8) != 0) {
        st = bt_err_set(err, BT_E_FORMAT, "%s: not a BTCAL1 calibration file", path);
        goto fail;
    }
    if (get(f, &ver, 4) || get(f, &ne, 4) || get(f, &c->tokens, 8) || get(f, &nwin, 4) ||
        get(f, &ctx, 4) || ver != 1 || ne > 1u << 20) {
        st = bt_err_set(err, BT_E_FORMAT, "%s: bad header (version %u, %u entries)", path, ver, ne);
        goto fail;
    }
    c->e = calloc(ne ? ne : 1, sizeof *c->e);
    if (!c->e) { st = bt_err_set(err, BT_E_NOMEM, "%s: out of memory", path); goto fail; }
    c->n = ne;
    for (uint32_t i = 0; i < ne; i++)
        if ((st = read_entry(f, path, i, fsize, lazy, &c->e[i], err))) goto fail;
    fclose(f);
    *out = c;
    return BT_OK;
fail:
    fclose(f);
    bt_calib_free(c);
    return st;
}

bt_status bt_calib_load(const char *path, bt_calib **out, bt_err *err) {
    return calib_load(path, 0, out, err);
}

bt_status bt_calib_open(const char *path, bt_calib **out, bt_err *err) {
    return calib_load(path, 1, out, err);
}

bt_status bt_calib_matrix(const bt_calib *c, const struct bt_calib_entry *e, float *dst, bt_err *err) {
    size_t nn = (size_t)e->n * (size_t)e->n;
    if (!e->full) return bt_err_set(err, BT_E_UNSUPPORTED, "%s: entry '%s' holds only diag(X^T X) (calibrated with diag_only)", c->path, e->names);
    if (e->mat) { memcpy(dst, e->mat, nn * sizeof(float)); return BT_OK; }
    FILE *f = fopen(c->path, "rb");
    if (!f) return bt_err_set(err, BT_E_IO, "%s: cannot open: %s", c->path, strerror(errno));
    int bad = fseek(f, (long)e->mat_off, SEEK_SET) != 0 || fread(dst, sizeof(float), nn, f) != nn;
    fclose(f);
    return bad ? bt_err_set(err, BT_E_FORMAT, "%s: entry '%s': cannot read matrix", c->path, e->names) : BT_OK;
}

uint32_t bt_calib_count(const bt_calib *c) { return c->n; }
uint64_t bt_calib_tokens(const bt_calib *c) { return c->tokens; }
const struct bt_calib_entry *bt_calib_at(const bt_calib *c, uint32_t i) {
    return i < c->n ? &c->e[i] : NULL;
}

const struct bt_calib_entry *bt_calib_find(const bt_calib *c, const char *tensor_name) {
    size_t tl = strlen(tensor_name);
    for (uint32_t i = 0; i < c->n; i++) {
        const char *p = c->e[i].names;
        while (p && *p) {
            const char *comma = strchr(p, ',');
            size_t len = comma ? (size_t)(comma - p) : strlen(p);
            if (len == tl && memcmp(p, tensor_name, tl) == 0) return &c->e[i];
            p = comma ? comma + 1 : NULL;
        }
    }
    return NULL;
}

const double *bt_calib_diag(const bt_calib *c, const char *tensor_name, int32_t *n) {
    const struct bt_calib_entry *e = bt_calib_find(c, tensor_name);
    if (!e) return NULL;
    if (n) *n = e->n;
    return e->diag;
}
