/* test_st_core.c - the safetensors reader through libbt_core: registry load, "auto" pick by
 * probe, tensor lookup, f32 rows by the core's conversion vs the raw BF16 bytes, metadata, and a
 * failing open. Usage: test_st_core <plugin.so> <models dir> */
#include "bt/bt.h"
#include "bt_types.h"
#include "../bt_test.h"

#include <string.h>

static void check_tiny(bt_registry *reg, const char *dir) {
    struct bt_reader *r = NULL;
    bt_err err;
    bt_err_clear(&err);
    bt_status st = bt_reader_open(reg, "auto", dir, NULL, &r, &err);
    CHECK_EQ(st, BT_OK);
    if (st != BT_OK) { fprintf(stderr, "open: %s\n", err.msg); return; }
    CHECK(strcmp(r->entry->desc->name, "safetensors") == 0);
    CHECK_EQ(r->i->tensor_count(r->ctx), 38);
    int64_t iq = bt_reader_find(r, "blk.1.attn_q.weight");
    CHECK(iq >= 0);
    CHECK_EQ(bt_reader_find(r, "output.weight"), -1); /* tied */
    if (iq >= 0) {
        struct bt_tensor t;
        CHECK_EQ(r->i->tensor_get(r->ctx, (uint32_t)iq, &t, &err), BT_OK);
        CHECK(strcmp(t.src_name, "model.layers.1.self_attn.q_proj.weight") == 0);
        CHECK_EQ(t.fmt.type, BT_TYPE_BF16);
        CHECK_EQ(t.shape[0], 256);
        CHECK_EQ(t.shape[1], 256);
        CHECK_EQ(t.flags, BT_TENSOR_ROPE_HALVES);
        float row[2 * 256];
        CHECK_EQ(bt_reader_read_f32(r, (uint32_t)iq, 3, 2, row, &err), BT_OK);
        const uint8_t *raw = (const uint8_t *)t.data + 3 * 256 * 2;
        int same = 1;
        for (int k = 0; k < 2 * 256; k++) {
            uint16_t h = (uint16_t)(raw[2 * k] | raw[2 * k + 1] << 8);
            if (row[k] != bt_bf16_to_f32(h)) same = 0;
        }
        CHECK(same);
        if (r->i->release) r->i->release(r->ctx, (uint32_t)iq);
        CHECK_EQ(bt_reader_read_f32(r, (uint32_t)iq, 3, 1, row, &err), BT_OK); /* after release */
    }
    struct bt_kv tmp;
    const struct bt_kv *kv = bt_reader_kv(r, "llama.block_count", &tmp);
    CHECK(kv && kv->type == BT_KV_U32 && kv->v.u == 4);
    kv = bt_reader_kv(r, "llama.attention.layer_norm_rms_epsilon", &tmp);
    CHECK(kv && kv->type == BT_KV_F32 && fabs(kv->v.f - 1e-5) < 1e-10);
    bt_reader_close(r);
}

int main(int argc, char **argv) {
    if (argc != 3) { fprintf(stderr, "usage: test_st_core <plugin.so> <models dir>\n"); return 2; }
    bt_registry *reg = NULL;
    bt_err err;
    bt_err_clear(&err);
    CHECK_EQ(bt_registry_new(&reg), BT_OK);
    CHECK_EQ(bt_registry_load_file(reg, argv[1], &err), BT_OK);
    if (err.status) fprintf(stderr, "load: %s\n", err.msg);
    char path[4096];
    snprintf(path, sizeof(path), "%s/bt-tiny", argv[2]);
    check_tiny(reg, path);
    /* a failing open: status and message naming the file, nothing returned */
    struct bt_reader *r = (struct bt_reader *)1;
    snprintf(path, sizeof(path), "%s/bt-tiny/config.json", argv[2]);
    bt_err_clear(&err);
    bt_status st = bt_reader_open(reg, "safetensors", path, NULL, &r, &err);
    CHECK(st != BT_OK);
    CHECK(r == NULL);
    CHECK(strstr(err.msg, "config.json") != NULL);
    fprintf(stderr, "expected failure: %s\n", err.msg);
    bt_registry_free(reg);
    TEST_DONE();
}
