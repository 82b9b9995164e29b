/* fuzz_hf_config.c - libFuzzer target for the config.json loader (formats/hf/hf_config.c): any
 * file must load or fail with a message naming it; an accepted config converts to its llama.*
 * key/values and (llama3 rope) its frequency factors. */
#include "fuzz_util.h"

#include "hf_config.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fz_write("config.json", data, size);
    struct bt_hf_config cfg;
    bt_err err = {0};
    bt_status st = bt_hf_config_load(path, &cfg, &err);
    fz_note("config", st, err.msg);
    if (st != BT_OK) {
        if (err.status != st || !strstr(err.msg, "config.json")) abort();
        return 0;
    }
    if (cfg.n_head == 0 || cfg.head_dim == 0) abort(); /* divisors of the forward pass */
    struct bt_kvlist kv = {0};
    if (bt_hf_config_to_kvs(&cfg, &kv) != BT_OK) abort();
    bt_kvlist_free(&kv);
    if (cfg.rope_type == BT_HF_ROPE_LLAMA3 && cfg.head_dim <= 65536) {
        float *f = malloc(cfg.head_dim / 2 * sizeof(float) + 1);
        if (!f) abort();
        bt_hf_rope_llama3_factors(&cfg, f);
        free(f);
    }
    return 0;
}
