/* cpu_attn_avx2.c - the blocked flash-style attention kernel of the cpu-avx2 backend (query
 * block x key block products, online softmax). Compiled with -mavx2 -mfma in that plugin only.
 * Every row's arithmetic depends only on that row, its position and the cache, so the result is
 * the same for any thread count and for a batch or token-by-token decoding (bit for bit). */
#include "cpu_kern.h"

#include <immintrin.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

struct att_job {
    const struct bt_cpu_attn *a;
    int                       qb;     /* tokens per query block */
    int                       nqb;    /* query blocks */
    int                       failed; /* a worker could not get its scratch */
};

/* ---- AVX2 blocked kernel ------------------------------------------------------------------------
 * A work item is (KV head g, block of qb query tokens): its R = qb*group query rows (token-major,
 * the heads sharing g adjacent) run against key blocks of KB keys aligned at absolute positions
 * 0, KB, 2*KB... S = Qs Kt (Kt: the key block transposed), online softmax per row, O += P V.
 * Every row's arithmetic depends only on that row, its position and the cache, so the result is
 * the same for any thread count and for a batch or token-by-token decoding (bit for bit). */
#define KB   64 /* keys per block */
#define ROWS 64 /* target query rows per work item */

#define BT_AVX2    __attribute__((target("avx2,fma")))
#define BT_AVX2_AI static inline __attribute__((always_inline, target("avx2,fma")))


/* C (MR x 8*NV, stride ldc) = (zero ? 0 : C) + A (MR x K, stride lda) B (K x 8*NV, stride ldb);
 * each element is one fma chain over k = 0..K-1, whatever MR and NV are */
BT_AVX2_AI void mk(const float *A, int lda, const float *B, int64_t ldb, int K, float *C, int ldc,
                   const int MR, const int NV, const int zero) {
    __m256 acc[4][4];
    for (int i = 0; i < MR; i++)
        for (int v = 0; v < NV; v++)
            acc[i][v] = zero ? _mm256_setzero_ps() : _mm256_loadu_ps(C + i * ldc + 8 * v);
    for (int k = 0; k < K; k++) {
        __m256 b[4];
        for (int v = 0; v < NV; v++) b[v] = _mm256_loadu_ps(B + k * ldb + 8 * v);
        for (int i = 0; i < MR; i++) {
            __m256 a = _mm256_broadcast_ss(A + i * lda + k);
            for (int v = 0; v < NV; v++) acc[i][v] = _mm256_fmadd_ps(a, b[v], acc[i][v]);
        }
    }
    for (int i = 0; i < MR; i++)
        for (int v = 0; v < NV; v++) _mm256_storeu_ps(C + i * ldc + 8 * v, acc[i][v]);
}

/* C (MR rows x ncol) (+)= A B, ncol a multiple of 8: NV*8 columns at a time, then 8 */
#define GEMM_TILE(MR, NV)                                                                     \
    do {                                                                                      \
        int n_ = 0;                                                                           \
        for (; n_ + 8 * (NV) <= ncol; n_ += 8 * (NV))                                         \
            if (zero) mk(a, lda, B + n_, ldb, K, c + n_, ldc, MR, NV, 1);                     \
            else      mk(a, lda, B + n_, ldb, K, c + n_, ldc, MR, NV, 0);                     \
        for (; n_ < ncol; n_ += 8)                                                            \
            if (zero) mk(a, lda, B + n_, ldb, K, c + n_, ldc, MR, 1, 1);                      \
            else      mk(a, lda, B + n_, ldb, K, c + n_, ldc, MR, 1, 0);                      \
    } while (0)

/* C (rows x ncol) (+)= A B with ncol a multiple of 8 */
static BT_AVX2 void gemm_rows(const float *A, int lda, const float *B, int64_t ldb, int K,
                              float *C, int ldc, int rows, int ncol, int zero) {
    int i = 0;
    for (; i + 4 <= rows; i += 4) {
        const float *a = A + i * lda;
        float *c = C + i * ldc;
        GEMM_TILE(4, 2);
    }
    const float *a = A + i * lda;
    float *c = C + i * ldc;
    switch (rows - i) {
    case 3: GEMM_TILE(3, 2); break;
    case 2: GEMM_TILE(2, 4); break;
    case 1: GEMM_TILE(1, 4); break;
    default: break;
    }
}

/* Kt (hd x KB) = the nk key rows at k (stride ldk) transposed, columns nk..ncol-1 zero */
static BT_AVX2 void transpose_keys(const float *k, int64_t ldk, int nk, int ncol, int hd,
                                   float *Kt) {
    int j = 0;
    for (; j + 8 <= nk; j += 8) {
        for (int d = 0; d < hd; d += 8) {
            __m256 r[8], t[8], s[8];
            for (int i = 0; i < 8; i++) r[i] = _mm256_loadu_ps(k + (j + i) * ldk + d);
            for (int i = 0; i < 8; i += 2) {
                t[i]     = _mm256_unpacklo_ps(r[i], r[i + 1]);
                t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
            }
            for (int i = 0; i < 8; i += 4) {
                s[i]     = _mm256_shuffle_ps(t[i], t[i + 2], 0x44);
                s[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xEE);
                s[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44);
                s[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
            }
            for (int i = 0; i < 4; i++) {
                _mm256_storeu_ps(Kt + (d + i) * KB + j,
                                 _mm256_permute2f128_ps(s[i], s[i + 4], 0x20));
                _mm256_storeu_ps(Kt + (d + i + 4) * KB + j,
                                 _mm256_permute2f128_ps(s[i], s[i + 4], 0x31));
            }
        }
    }
    for (; j < ncol; j++)
        for (int d = 0; d < hd; d++) Kt[d * KB + j] = j < nk ? k[j * ldk + d] : 0.0f;
}

/* e^x for x <= 0 (clamped at -87: ~1e-38), ~1 ulp: 2^n e^r, |r| <= ln2/2, degree-7 series */
BT_AVX2_AI __m256 exp8(__m256 x) {
    x = _mm256_max_ps(x, _mm256_set1_ps(-87.0f));
    __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504f)),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)),
                                  23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}

BT_AVX2_AI float hmax8(__m256 v) {
    __m128 h = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    h = _mm_max_ps(h, _mm_movehl_ps(h, h));
    h = _mm_max_ss(h, _mm_movehdup_ps(h));
    return _mm_cvtss_f32(h);
}
BT_AVX2_AI float hsum8(__m256 v) {
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    h = _mm_add_ss(h, _mm_movehdup_ps(h));
    return _mm_cvtss_f32(h);
}

/* one row of the block: S (ncol scores, the first lim valid) -> P in place; running max *mx and
 * sum *l updated; O (hd) rescaled to the new max */
static BT_AVX2 void softmax_row(float *S, int ncol, int lim, float *mx, float *l, float *O,
                                int hd) {
    const __m256 iota = _mm256_setr_ps(0, 1, 2, 3, 4, 5, 6, 7), ninf = _mm256_set1_ps(-INFINITY);
    __m256 vm = ninf;
    for (int c = 0; c < lim; c += 8) {
        __m256 ok = _mm256_cmp_ps(_mm256_add_ps(iota, _mm256_set1_ps((float)c)),
                                  _mm256_set1_ps((float)lim), _CMP_LT_OQ);
        vm = _mm256_max_ps(vm, _mm256_blendv_ps(ninf, _mm256_loadu_ps(S + c), ok));
    }
    float mnew = hmax8(vm);
    if (*mx > mnew) mnew = *mx;
    float alpha = 1.0f;
    if (*mx == -INFINITY) alpha = 0.0f;
    else if (*mx != mnew) alpha = _mm256_cvtss_f32(exp8(_mm256_set1_ps(*mx - mnew)));
    __m256 vmax = _mm256_set1_ps(mnew), vs = _mm256_setzero_ps();
    for (int c = 0; c < ncol; c += 8) {
        __m256 p = _mm256_setzero_ps();
        if (c < lim) {
            __m256 ok = _mm256_cmp_ps(_mm256_add_ps(iota, _mm256_set1_ps((float)c)),
                                      _mm256_set1_ps((float)lim), _CMP_LT_OQ);
            p = _mm256_and_ps(exp8(_mm256_sub_ps(_mm256_loadu_ps(S + c), vmax)), ok);
        }
        _mm256_storeu_ps(S + c, p);
        vs = _mm256_add_ps(vs, p);
    }
    *l = *l * alpha + hsum8(vs);
    *mx = mnew;
    if (alpha != 1.0f) {
        __m256 va = _mm256_set1_ps(alpha);
        for (int d = 0; d < hd; d += 8)
            _mm256_storeu_ps(O + d, _mm256_mul_ps(_mm256_loadu_ps(O + d), va));
    }
}

/* per-thread scratch of the blocked kernel */
struct blk_buf {
    float *qs;  /* (R x hd) scaled queries */
    float *o;   /* (R x hd) unnormalized outputs */
    float *kt;  /* (hd x KB) transposed key block */
    float *s;   /* (R x KB) scores, then probabilities */
    float *mx;  /* (R) running max */
    float *l;   /* (R) running sum */
    void  *mem; /* the allocation */
};

static int blk_alloc(struct blk_buf *b, int R, int hd) {
    size_t n[6] = {(size_t)R * hd, (size_t)R * hd, (size_t)hd * KB, (size_t)R * KB, (size_t)R,
                   (size_t)R};
    size_t tot = 0;
    for (int i = 0; i < 6; i++) tot += (n[i] + 15) & ~(size_t)15;
    b->mem = malloc(tot * sizeof(float) + 64);
    if (!b->mem) return -1;
    float *p = (float *)(((uintptr_t)b->mem + 63) & ~(uintptr_t)63);
    float **dst[6] = {&b->qs, &b->o, &b->kt, &b->s, &b->mx, &b->l};
    for (int i = 0; i < 6; i++) {
        *dst[i] = p;
        p += (n[i] + 15) & ~(size_t)15;
    }
    return 0;
}

/* work item: KV head g, query tokens t0..t1-1 */
static BT_AVX2 void blk_item(const struct att_job *j, struct blk_buf *b, int g, int t0, int t1) {
    const struct bt_cpu_attn *A = j->a;
    int hd = A->hd, group = A->n_head / A->n_kv, R = (t1 - t0) * group;
    int64_t nkv = (int64_t)A->n_kv * hd, nq = (int64_t)A->n_head * hd;
    const float *kc = A->kc + (int64_t)g * hd, *vc = A->vc + (int64_t)g * hd;
    __m256 vsc = _mm256_set1_ps(A->scale);
    for (int r = 0; r < R; r++) {
        const float *q = A->q + (t0 + r / group) * nq + ((int64_t)g * group + r % group) * hd;
        for (int d = 0; d < hd; d += 8)
            _mm256_storeu_ps(b->qs + r * hd + d, _mm256_mul_ps(_mm256_loadu_ps(q + d), vsc));
        memset(b->o + r * hd, 0, (size_t)hd * sizeof(float));
        b->mx[r] = -INFINITY;
        b->l[r]  = 0.0f;
    }
    int maxpos = A->pos0 + t1 - 1;
    for (int k0 = 0; k0 <= maxpos; k0 += KB) {
        int nk = maxpos + 1 - k0 < KB ? maxpos + 1 - k0 : KB, ncol = (nk + 15) & ~15;
        int ta = k0 - A->pos0 - t0 > 0 ? k0 - A->pos0 - t0 : 0; /* first token that sees k0 */
        int r0 = ta * group, nr = R - r0;
        transpose_keys(kc + k0 * nkv, nkv, nk, ncol, hd, b->kt);
        gemm_rows(b->qs + r0 * hd, hd, b->kt, KB, hd, b->s + r0 * KB, KB, nr, ncol, 1);
        for (int r = r0; r < R; r++) {
            int lim = A->pos0 + t0 + r / group - k0 + 1;
            if (lim > nk) lim = nk;
            softmax_row(b->s + r * KB, ncol, lim, &b->mx[r], &b->l[r], b->o + r * hd, hd);
        }
        gemm_rows(b->s + r0 * KB, KB, vc + k0 * nkv, nkv, nk, b->o + r0 * hd, hd, nr, hd, 0);
    }
    for (int r = 0; r < R; r++) {
        float *out = A->out + (t0 + r / group) * nq + ((int64_t)g * group + r % group) * hd;
        __m256 inv = _mm256_set1_ps(1.0f / b->l[r]);
        for (int d = 0; d < hd; d += 8)
            _mm256_storeu_ps(out + d, _mm256_mul_ps(_mm256_loadu_ps(b->o + r * hd + d), inv));
    }
}

/* items ordered latest query block first (the causal work grows with the position) */
static void blk_range(void *arg, int64_t i0, int64_t i1, int tid) {
    struct att_job *j = arg;
    const struct bt_cpu_attn *A = j->a;
    int nkvh = A->n_kv, group = A->n_head / A->n_kv;
    struct blk_buf b;
    (void)tid;
    if (blk_alloc(&b, j->qb * group, A->hd)) { j->failed = 1; return; }
    for (int64_t i = i0; i < i1; i++) {
        int qb = j->nqb - 1 - (int)(i / nkvh), g = (int)(i % nkvh);
        int t1 = (qb + 1) * j->qb < A->ntok ? (qb + 1) * j->qb : A->ntok;
        blk_item(j, &b, g, qb * j->qb, t1);
    }
    free(b.mem);
}

int bt_cpu_attn_avx2_ok(const struct bt_cpu_attn *a) { return a->hd % 8 == 0; }

int bt_cpu_attn_avx2(const struct bt_host *host, const struct bt_cpu_attn *a) {
    if (!bt_cpu_attn_avx2_ok(a)) return bt_cpu_attn_ref(host, a);
    struct att_job j = {a, 0, 0, 0};
    int group = a->n_head / a->n_kv;
    j.qb = ROWS / group > 1 ? ROWS / group : 1;
    if (j.qb > a->ntok) j.qb = a->ntok;
    j.nqb = (a->ntok + j.qb - 1) / j.qb;
    int64_t items = (int64_t)j.nqb * a->n_kv;
    if ((int64_t)a->ntok * (a->pos0 + a->ntok) * a->n_head * a->hd < (1 << 15)) blk_range(&j, 0, items, 0);
    else host->parallel_for(items, 1, blk_range, &j);
    return j.failed ? -1 : 0;
}
