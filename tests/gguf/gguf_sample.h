/* gguf_sample.h - a deterministic sample model (assorted KV types and tensors of every type the
 * gguf writer supports, incl. TQ edge cases, MTQ and rope_halves rows) for the gguf tests. */
#ifndef BT_GGUF_SAMPLE_H
#define BT_GGUF_SAMPLE_H

#include "bt/bt_plugin.h"

#define SAMPLE_MAX_T  24
#define SAMPLE_MAX_KV 48

/* The sample: borrowed-pointer views (kv, t) over buffers it owns. */
struct sample {
    struct bt_kv     kv[SAMPLE_MAX_KV]; /* metadata given to the writer */
    uint32_t         n_kv;              /* entries in kv */
    struct bt_tensor t[SAMPLE_MAX_T];   /* tensors in add() order (data = original bytes) */
    float           *f32[SAMPLE_MAX_T]; /* dequantized values of t[i] in original row order */
    uint32_t         n_t;               /* entries in t */
    float           *tq_in;             /* TQ input, 6 x 512 f32 (rows with edge cases) */
    void            *own[4 * SAMPLE_MAX_T]; /* owned buffers (malloc) */
    uint32_t         n_own;             /* entries in own */
};

/* build the sample (0 on success) / free its buffers */
int  sample_build(struct sample *s);
void sample_free(struct sample *s);
/* index of tensor name in s, or -1 */
int  sample_find(const struct sample *s, const char *name);
/* write expected data to dir: <name>.bin (original bytes), <name>.f32 (dequantized values),
 * tq_in.f32; 0 on success */
int  sample_dump(const struct sample *s, const char *dir);
#endif
