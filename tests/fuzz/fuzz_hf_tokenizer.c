/* fuzz_hf_tokenizer.c - libFuzzer target for the tokenizer.json loader (formats/hf/
 * hf_tokenizer.c) and the tokenizer built from its metadata (runtime/tokenizer). The input is
 * tokenizer.json, optionally followed by FZ_SEP and tokenizer_config.json. A loaded tokenizer
 * encodes and decodes a fixed text (any vocabulary may be unable to, but must fail cleanly). */
#include "fuzz_util.h"

#include "bt_tokenizer.h"

#include <stdlib.h>
#include <string.h>

static const char text[] = "Hello, world! 123 \xc3\xa9\xe2\x96\x81 <|begin_of_text|>\n\t\xff\x00x";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const uint8_t *part[2];
    size_t len[2];
    size_t n = fz_split(data, size, part, len, 2);
    fz_write("tokenizer.json", part[0], len[0]);
    if (n > 1) fz_write("tokenizer_config.json", part[1], len[1]);
    else fz_unlink("tokenizer_config.json");
    struct bt_tokenizer *tok = NULL;
    bt_err err = {0};
    bt_status st = bt_tokenizer_from_hf_dir(fz_dir(), &tok, &err);
    fz_note("tokenizer", st, err.msg);
    if (st != BT_OK) {
        if (tok || err.status != st || !err.msg[0]) abort();
        return 0;
    }
    for (int special = 0; special < 2; special++) {
        int32_t *ids = NULL;
        size_t nid = 0;
        if (bt_tokenizer_encode(tok, text, sizeof(text) - 1, special, &ids, &nid) == BT_OK) {
            uint32_t nv = bt_tokenizer_n_vocab(tok);
            for (size_t i = 0; i < nid; i++)
                if (ids[i] < 0 || (uint32_t)ids[i] >= nv) abort();
            char *out = NULL;
            size_t ol = 0;
            if (bt_tokenizer_decode(tok, ids, nid, &out, &ol) != BT_OK) abort();
            free(out);
        }
        bt_tokenizer_free_ids(ids);
    }
    bt_tokenizer_free(tok);
    return 0;
}
