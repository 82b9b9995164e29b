/* fuzz_safetensors.c - libFuzzer target for the safetensors reader plugin (formats/safetensors,
 * compiled in) on a whole model folder. The input is split at FZ_SEP (fuzz_util.h): one part is
 * model.safetensors (single file); with more, the parts are model.safetensors.index.json,
 * a.safetensors, b.safetensors, config.json and tokenizer.json (only those present are written).
 * The folder is opened as the reader does for a model, every tensor read and decoded. */
#include "fuzz_util.h"

#include <stdlib.h>
#include <string.h>

bt_status bt_plugin_init(const struct bt_host *host, const struct bt_plugin **out);

static const char *const names[] = {"model.safetensors.index.json", "a.safetensors",
                                    "b.safetensors", "config.json", "tokenizer.json"};
#define N_NAMES (sizeof(names) / sizeof(names[0]))

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const struct bt_plugin *d = NULL;
    if (bt_plugin_init(&fz_host, &d) != BT_OK || !d) abort();
    const uint8_t *part[N_NAMES];
    size_t len[N_NAMES];
    size_t n = fz_split(data, size, part, len, N_NAMES);
    fz_unlink("model.safetensors");
    for (size_t i = 0; i < N_NAMES; i++) fz_unlink(names[i]);
    if (n == 1) {
        fz_write("model.safetensors", part[0], len[0]);
    } else {
        for (size_t i = 0; i < n; i++) fz_write(names[i], part[i], len[i]);
    }
    fz_drive_reader(d, fz_dir());
    return 0;
}
