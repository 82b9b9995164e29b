/* cpu_attn.c - causal grouped-query attention over an f32 KV cache: the scalar reference (one
 * query x one key at a time), which defines BT_OP_ATTN for every backend. */
#include "cpu_kern.h"

#include <math.h>
#include <stdlib.h>

static float dot_ref(const float *a, const float *b, int n) {
    float s[4] = {0, 0, 0, 0};
    int d = 0;
    for (; d + 4 <= n; d += 4)
        for (int e = 0; e < 4; e++) s[e] += a[d + e] * b[d + e];
    float v = (s[0] + s[2]) + (s[1] + s[3]);
    for (; d < n; d++) v += a[d] * b[d];
    return v;
}

void bt_cpu_attn_one(const struct bt_cpu_attn *a, int t, int h, float *sc) {
    int hd = a->hd, group = a->n_head / a->n_kv;
    int64_t nkv = (int64_t)a->n_kv * hd;
    const float *q = a->q + ((int64_t)t * a->n_head + h) * hd;
    const float *kc = a->kc + (int64_t)(h / group) * hd;
    const float *vc = a->vc + (int64_t)(h / group) * hd;
    int npos = a->pos0 + t + 1;
    float mx = -INFINITY;
    for (int p = 0; p < npos; p++) {
        float v = dot_ref(q, kc + (int64_t)p * nkv, hd) * a->scale;
        sc[p] = v;
        if (v > mx) mx = v;
    }
    float sum = 0.0f;
    for (int p = 0; p < npos; p++) {
        sc[p] = expf(sc[p] - mx);
        sum += sc[p];
    }
    float inv = 1.0f / sum;
    float *out = a->out + ((int64_t)t * a->n_head + h) * hd;
    for (int d = 0; d < hd; d++) out[d] = 0.0f;
    for (int p = 0; p < npos; p++) {
        const float *v = vc + (int64_t)p * nkv;
        float w = sc[p] * inv;
        for (int d = 0; d < hd; d++) out[d] += w * v[d];
    }
}

struct ref_job {
    const struct bt_cpu_attn *a;
    int                       failed; /* a worker could not get its score row */
};

static void ref_range(void *arg, int64_t i0, int64_t i1, int tid) {
    struct ref_job *j = arg;
    const struct bt_cpu_attn *a = j->a;
    (void)tid;
    float *sc = malloc(((size_t)a->pos0 + (size_t)a->ntok) * sizeof(float));
    if (!sc) { j->failed = 1; return; }
    for (int64_t i = i0; i < i1; i++) bt_cpu_attn_one(a, (int)(i / a->n_head), (int)(i % a->n_head), sc);
    free(sc);
}

int bt_cpu_attn_ref(const struct bt_host *host, const struct bt_cpu_attn *a) {
    struct ref_job j = {a, 0};
    int64_t items = (int64_t)a->ntok * a->n_head;
    /* small jobs run on the calling thread: a pool wake-up costs more */
    if ((int64_t)a->ntok * (a->pos0 + a->ntok) * a->n_head * a->hd < (1 << 15)) ref_range(&j, 0, items, 0);
    else host->parallel_for(items, 1, ref_range, &j);
    return j.failed ? -1 : 0;
}
