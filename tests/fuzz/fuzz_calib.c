/* fuzz_calib.c - libFuzzer target for the BTCAL1 calibration reader (runtime/model/
 * bt_calib_load.c): load (matrices read) and open (lazy) must agree, every entry's matrix is
 * read and every listed tensor name is found again. */
#include "fuzz_util.h"

#include "bt_calib.h"

#include <stdlib.h>
#include <string.h>

static void check(const bt_calib *c, const bt_calib *lazy) {
    if (bt_calib_count(c) != bt_calib_count(lazy)) abort();
    for (uint32_t i = 0; i < bt_calib_count(c); i++) {
        const struct bt_calib_entry *e = bt_calib_at(c, i), *l = bt_calib_at(lazy, i);
        if (!e || !l || e->n != l->n || e->full != l->full || strcmp(e->names, l->names)) abort();
        if (e->n <= 0 || !e->diag || (e->full && !e->mat)) abort();
        if (e->full) {
            size_t nn = (size_t)e->n * (size_t)e->n;
            float *m = malloc(nn * sizeof(float));
            bt_err err = {0};
            if (!m || bt_calib_matrix(lazy, l, m, &err) != BT_OK) abort();
            if (memcmp(m, e->mat, nn * sizeof(float)) != 0) abort();
            free(m);
        }
        /* the first name of the entry is found (maybe in an earlier entry of the same name) */
        char first[256];
        size_t k = strcspn(e->names, ",");
        if (k > 0 && k < sizeof(first)) {
            memcpy(first, e->names, k);
            first[k] = 0;
            int32_t n = 0;
            if (!bt_calib_find(c, first) || !bt_calib_diag(c, first, &n) || n <= 0) abort();
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fz_write("in.btcal", data, size);
    bt_calib *c = NULL, *lazy = NULL;
    bt_err err = {0}, err2 = {0};
    bt_status st = bt_calib_load(path, &c, &err);
    bt_status st2 = bt_calib_open(path, &lazy, &err2);
    fz_note("load", st, err.msg);
    if (st != BT_OK && (c || !err.msg[0])) abort();
    if (st2 != BT_OK && (lazy || !err2.msg[0])) abort();
    if ((st == BT_OK) != (st2 == BT_OK)) abort();
    if (c && lazy) check(c, lazy);
    bt_calib_free(c);
    bt_calib_free(lazy);
    return 0;
}
