/* fuzz_gguf.c - libFuzzer target for the GGUF reader plugin (formats/gguf, compiled in): any
 * file must open or fail with a message; an opened file's keys and tensors are all read and
 * every tensor is decoded with read_f32 (zstd-compressed blobs, TQ1_0/TQ2_0, MTQ, Q8_0, ...). */
#include "fuzz_util.h"

#include <stdlib.h>

bt_status bt_plugin_init(const struct bt_host *host, const struct bt_plugin **out);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const struct bt_plugin *d = NULL;
    if (bt_plugin_init(&fz_host, &d) != BT_OK || !d) abort();
    fz_drive_reader(d, fz_write("in.gguf", data, size));
    return 0;
}
