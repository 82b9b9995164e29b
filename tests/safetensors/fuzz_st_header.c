/* fuzz_st_header.c - libFuzzer target for the safetensors header parser (st_header.c): any byte
 * string must parse or fail cleanly, and an accepted header must be self-consistent. */
#include "st_header.h"
#include "bt/bt.h" /* struct bt_err */

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    bt_err err;
    struct bt_st_header h;
    bt_status st = bt_st_header_parse(data, size, "fuzz", &h, &err);
    if (st == BT_OK) {
        /* invariants of an accepted header: entries tile the data buffer inside the input */
        uint64_t total = 0;
        for (uint32_t i = 0; i < h.n; i++) {
            const struct bt_st_entry *e = &h.t[i];
            if (e->end < e->begin || e->end > h.data_len || !e->name) abort();
            if (e->n_dims > BT_MAX_DIMS || bt_st_type_size(e->type) == 0) abort();
            total += e->end - e->begin;
        }
        if (total != h.data_len || h.data_off + h.data_len != size) abort();
    } else if (h.n != 0 || h.t != NULL || err.status != st || strlen(err.msg) == 0) {
        abort(); /* a failure leaves nothing behind and says why */
    }
    bt_st_header_free(&h);
    return 0;
}
