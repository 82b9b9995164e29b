/* bt_attention.c - causal grouped-query attention over the f32 KV cache, parallel over
 * (token, head) pairs. Reads s.q and the cache, writes s.att. */
#include "bt_model_int.h"

#include <math.h>
#include <stdlib.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define BT_ATT_X86 1
#endif

/* ---- small vector kernels: AVX2+FMA when the CPU has them (checked at run time) ------------- */
static float dot_generic(const float *a, const float *b, int n) {
    float s[4] = {0, 0, 0, 0};
    int d = 0;
    for (; d + 4 <= n; d += 4)
        for (int e = 0; e < 4; e++) s[e] += a[d + e] * b[d + e];
    float v = (s[0] + s[2]) + (s[1] + s[3]);
    for (; d < n; d++) v += a[d] * b[d];
    return v;
}
static void axpy_generic(float *y, float w, const float *x, int n) {
    for (int d = 0; d < n; d++) y[d] += w * x[d];
}

#ifdef BT_ATT_X86
__attribute__((target("avx2,fma"))) static float dot_avx2(const float *a, const float *b, int n) {
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    int d = 0;
    for (; d + 16 <= n; d += 16) {
        acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + d), _mm256_loadu_ps(b + d), acc0);
        acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + d + 8), _mm256_loadu_ps(b + d + 8), acc1);
    }
    for (; d + 8 <= n; d += 8)
        acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + d), _mm256_loadu_ps(b + d), acc0);
    acc0 = _mm256_add_ps(acc0, acc1);
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(acc0), _mm256_extractf128_ps(acc0, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    h = _mm_add_ss(h, _mm_movehdup_ps(h));
    float v = _mm_cvtss_f32(h);
    for (; d < n; d++) v += a[d] * b[d];
    return v;
}
__attribute__((target("avx2,fma"))) static void axpy_avx2(float *y, float w, const float *x,
                                                          int n) {
    __m256 vw = _mm256_set1_ps(w);
    int d = 0;
    for (; d + 8 <= n; d += 8)
        _mm256_storeu_ps(y + d, _mm256_fmadd_ps(vw, _mm256_loadu_ps(x + d), _mm256_loadu_ps(y + d)));
    for (; d < n; d++) y[d] += w * x[d];
}
static int have_avx2(void) {
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}
#endif

struct att_job {
    bt_model    *m;     /* model */
    const float *kc;    /* layer's key cache (n_ctx x n_kv*hd) */
    const float *vc;    /* layer's value cache */
    int          pos0;  /* position of token 0 */
    float        scale; /* 1/sqrt(head_dim) */
};

static void att_one(struct att_job *j, int t, int h, float *sc) {
    float (*dot)(const float *, const float *, int) = dot_generic;
    void (*axpy)(float *, float, const float *, int) = axpy_generic;
#ifdef BT_ATT_X86
    if (have_avx2()) {
        dot  = dot_avx2;
        axpy = axpy_avx2;
    }
#endif
    const struct bt_model_hparams *hp = &j->m->hp;
    int hd = hp->head_dim, nkv = hp->n_head_kv * hd, group = hp->n_head / hp->n_head_kv;
    const float *q = j->m->s.q + ((int64_t)t * hp->n_head + h) * hd;
    const float *kc = j->kc + (int64_t)(h / group) * hd;
    const float *vc = j->vc + (int64_t)(h / group) * hd;
    int npos = j->pos0 + t + 1;
    float mx = -INFINITY;
    for (int p = 0; p < npos; p++) {
        float v = dot(q, kc + (int64_t)p * nkv, hd) * j->scale;
        sc[p] = v;
        if (v > mx) mx = v;
    }
    float sum = 0.0f;
    for (int p = 0; p < npos; p++) {
        sc[p] = expf(sc[p] - mx);
        sum += sc[p];
    }
    float inv = 1.0f / sum;
    float *out = j->m->s.att + ((int64_t)t * hp->n_head + h) * hd;
    for (int d = 0; d < hd; d++) out[d] = 0.0f;
    for (int p = 0; p < npos; p++) axpy(out, sc[p] * inv, vc + (int64_t)p * nkv, hd);
}

static void att_range(void *arg, int64_t i0, int64_t i1, int tid) {
    struct att_job *j = arg;
    int nh = j->m->hp.n_head;
    float *sc = tid < j->m->s.n_thr ? j->m->s.scores + (int64_t)tid * j->m->n_ctx
                                    : malloc((size_t)j->m->n_ctx * sizeof(float));
    if (!sc) return; /* cannot happen in practice: n_thr is the pool size */
    for (int64_t i = i0; i < i1; i++) att_one(j, (int)(i / nh), (int)(i % nh), sc);
    if (tid >= j->m->s.n_thr) free(sc);
}

void bt_attention(bt_model *m, int layer, int ntok, int pos0) {
    const struct bt_model_hparams *hp = &m->hp;
    int64_t nkv = (int64_t)hp->n_head_kv * hp->head_dim;
    struct att_job j;
    j.m     = m;
    j.kc    = m->kcache + (int64_t)layer * m->n_ctx * nkv;
    j.vc    = m->vcache + (int64_t)layer * m->n_ctx * nkv;
    j.pos0  = pos0;
    j.scale = 1.0f / sqrtf((float)hp->head_dim);
    int64_t items = (int64_t)ntok * hp->n_head;
    int64_t work = (int64_t)ntok * (pos0 + ntok) * hp->n_head * hp->head_dim;
    if (work < (1 << 18)) att_range(&j, 0, items, 0); /* small: a pool wake-up costs more */
    else bt_parallel_for(items, 1, att_range, &j);
}
