/* fixture_lut4.c - a format plugin built only for tests (tests/formats): "fixture_lut4" stores
 * 4-bit indices, two per byte (low nibble first), into a per-tensor codebook of 16 f32 values
 * held in the extra part "codebook" (64 bytes). Block: 2 elements in 1 byte, no parameters, no
 * ggml type (the gguf writer stores it as I8 rows + bt.fmt keys + a part tensor). */
#include "bt/bt_plugin.h"

#include <string.h>

static int lut4_geometry(const struct bt_tfmt *f, uint32_t *block, uint32_t *bytes) {
    if (f->planes || f->block || f->layout) return 0;
    *block = 2;
    *bytes = 1;
    return 1;
}

static bt_status lut4_to_f32(const struct bt_tfmt *f, const void *const *parts, const void *src,
                             float *dst, int64_t n) {
    (void)f;
    if (!parts || !parts[0]) return BT_E_INVAL;
    float cb[16];
    memcpy(cb, parts[0], sizeof(cb));
    const uint8_t *s = src;
    for (int64_t i = 0; i < n / 2; i++) {
        dst[2 * i] = cb[s[i] & 15];
        dst[2 * i + 1] = cb[s[i] >> 4];
    }
    return BT_OK;
}

static uint32_t lut4_n_parts(const struct bt_tfmt *f) {
    (void)f;
    return 1;
}

static bt_status lut4_part_info(const struct bt_tfmt *f, int64_t rows, int64_t cols, uint32_t k,
                                const char **name, uint64_t *nbytes) {
    (void)f; (void)rows; (void)cols;
    if (k != 0) return BT_E_INVAL;
    *name = "codebook";
    *nbytes = 16 * sizeof(float);
    return BT_OK;
}

static const struct bt_format lut4 = {
    .struct_size = sizeof(struct bt_format),
    .type = 0,
    .name = "fixture_lut4",
    .flags = BT_FMT_WEIGHT,
    .gguf_type = BT_GGUF_NONE,
    .geometry = lut4_geometry,
    .to_f32 = lut4_to_f32,
    .from_f32 = NULL,
    .describe = NULL,
    .n_parts = lut4_n_parts,
    .part_info = lut4_part_info,
};

static const struct bt_plugin desc = {
    .abi_version = BT_ABI_VERSION,
    .struct_size = sizeof(struct bt_plugin),
    .name = "fixture-lut4",
    .version = "0.0.1",
    .kind = BT_KIND_FORMAT,
    .caps = 0,
    .description = "test format: 4-bit indices into a per-tensor 16-entry f32 codebook",
    .options = NULL,
    .iface = &lut4,
    .ctx_size = 0,
};

BT_PLUGIN_DEFINE(desc)
