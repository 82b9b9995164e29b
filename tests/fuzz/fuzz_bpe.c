/* fuzz_bpe.c - libFuzzer target for the BPE tokenizer's encode on arbitrary bytes, with the real
 * tokenizer of bt-tiny (loaded once; $BT_FUZZ_MODEL overrides the folder). The first input byte
 * chooses parse_special. Byte-level BPE is lossless: decode(encode(x)) must give x back. */
#include "fuzz_util.h"

#include "bt_tokenizer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef BT_FUZZ_MODEL_DIR
#define BT_FUZZ_MODEL_DIR "../shared/models/bt-tiny"
#endif

static struct bt_tokenizer *tok;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    const char *dir = getenv("BT_FUZZ_MODEL");
    bt_err err = {0};
    if (bt_tokenizer_from_hf_dir(dir && *dir ? dir : BT_FUZZ_MODEL_DIR, &tok, &err) != BT_OK) {
        fprintf(stderr, "fuzz_bpe: %s\n", err.msg);
        exit(1);
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0) return 0;
    int special = data[0] & 1;
    const char *text = (const char *)data + 1;
    size_t n = size - 1;
    int32_t *ids = NULL;
    size_t nid = 0;
    if (bt_tokenizer_encode(tok, text, n, special, &ids, &nid) != BT_OK) abort();
    uint32_t nv = bt_tokenizer_n_vocab(tok);
    for (size_t i = 0; i < nid; i++)
        if (ids[i] < 0 || (uint32_t)ids[i] >= nv) abort();
    char *out = NULL;
    size_t ol = 0;
    if (bt_tokenizer_decode(tok, ids, nid, &out, &ol) != BT_OK) abort();
    if (!special && (ol != n || memcmp(out, text, n) != 0)) abort(); /* lossless */
    free(out);
    bt_tokenizer_free_ids(ids);
    return 0;
}
