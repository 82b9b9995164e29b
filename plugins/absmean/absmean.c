/* absmean.c - quantizer plugin "absmean": BitNet b1.58 ternary codes per block along rows,
 * with the absmean or the least-squares scale, packed as TQ2_0/TQ1_0 or 1-plane MTQ. */
#include "bt/bt_plugin.h"
#include "absmean_kern.h"
#include "bt_types.h"
#include "mtq_so.h"

#include <math.h>
#include <string.h>

struct absmean {
    const struct bt_host *host;
    int                   block; /* elements per scale block */
    int                   lsq;   /* 1: least-squares scale, 0: absmean scale */
    int                   avx2;  /* 1: use the AVX2 kernel (same results, faster) */
    int                   so_passes; /* second order: column-loop passes (refit scales fixed after the first) */
};

static const struct bt_option options[] = {
    {"block_size", BT_OPT_INT, "256", 64, 256, NULL, "weights per scale block along a row: 64, 128 or 256"},
    {"scale", BT_OPT_ENUM, "lsq", 0, -1, "lsq|absmean", "block scale: least squares <w,q>/<q,q> or mean|w|"},
    {"so_passes", BT_OPT_INT, "2", 1, 8, NULL,
     "second_order: column-loop passes; each later pass keeps the previous pass's refit scales and re-chooses the codes"},
    {NULL, 0, NULL, 0, 0, NULL, NULL},
};

static bt_status am_open(void *ctx, const struct bt_host *host, const bt_optset *opts, bt_err *err) {
    struct absmean *a = ctx;
    a->host = host;
    a->block = (int)host->opt_int(opts, "block_size");
    const char *sc = host->opt_str(opts, "scale");
    a->lsq = !sc || strcmp(sc, "absmean") != 0;
    a->so_passes = (int)host->opt_int(opts, "so_passes");
#if defined(__x86_64__)
    a->avx2 = __builtin_cpu_supports("avx2");
#endif
    if (a->block != 64 && a->block != 128 && a->block != 256)
        return host->set_error(err, BT_E_INVAL, "absmean: block_size must be 64, 128 or 256 (got %d)", a->block);
    return BT_OK;
}

static void am_close(void *ctx) { (void)ctx; }

static bt_status am_plan(void *ctx, const struct bt_qtensor *t, struct bt_tfmt *out, bt_err *err) {
    struct absmean *a = ctx;
    int tq = t->want.type == BT_TYPE_TQ2_0 || t->want.type == BT_TYPE_TQ1_0;
    if (tq && a->block != 256)
        return a->host->set_error(err, BT_E_INVAL,
                                  "absmean: block_size = %d needs [output] type = mtq (TQ1_0/TQ2_0 hold one scale per 256 weights)",
                                  a->block);
    if (!tq && t->want.type != BT_TYPE_MTQ)
        return a->host->set_error(err, BT_E_INVAL, "absmean: cannot produce the requested output type");
    if (t->cols % a->block) {
        a->host->set_error(err, BT_E_UNSUPPORTED, "row length %lld is not a multiple of %d", (long long)t->cols, a->block);
        return BT_E_UNSUPPORTED;
    }
    struct bt_tfmt f = {t->want.type, 0, 0, 0};
    if (!tq) f = (struct bt_tfmt){BT_TYPE_MTQ, 1, (uint32_t)a->block, t->want.layout};
    *out = f;
    return BT_OK;
}

/* ternarize one block; returns the scale to store (before fp16 rounding). Codes are
 * clip(round(w/s), -1, 1) with round half away from zero, i.e. sign(w) where |w/s| >= 0.5.
 * Sums run in 8 fixed float lanes (element i goes to lane i % 8, lanes combined pairwise), so the
 * loops vectorize and every build gives the same bits (tests/pipeline/btref.py mirrors it). */
static float block_codes(const float *restrict w, int n, int lsq, int8_t *restrict q,
                         struct bt_absmean_sums *bs) {
    float acc[8] = {0}, sq[8] = {0};
    for (int i = 0; i < n; i += 8)
        for (int k = 0; k < 8; k++) {
            acc[k] += fabsf(w[i + k]);
            sq[k] += w[i + k] * w[i + k];
        }
    float s = bt_absmean_lanes_sum(acc) / (float)n;
    bs->x2 = bt_absmean_lanes_sum(sq);
    bs->sup = 0;
    bs->nz = 0;
    if (s == 0.0f) {
        memset(q, 0, (size_t)n);
        return 0.0f;
    }
    float inv = 1.0f / s, sup[8] = {0}, cnt[8] = {0};
    for (int i = 0; i < n; i += 8)
        for (int k = 0; k < 8; k++) {
            float x = w[i + k] * inv;
            float c = (float)(x >= 0.5f) - (float)(x <= -0.5f); /* round half away, clipped */
            q[i + k] = (int8_t)c;
            sup[k] += c * w[i + k]; /* |w| on the support */
            cnt[k] += c * c;
        }
    bs->sup = bt_absmean_lanes_sum(sup);
    bs->nz = (int)bt_absmean_lanes_sum(cnt);
    if (!lsq) return s;
    /* least squares: <w,q>/<q,q> = (sum of |w| over the support) / (support size) */
    return bs->nz ? bs->sup / (float)bs->nz : 0.0f;
}

/* pack block b (B codes t, scale sc) of a row at d into fmt (TQ2_0, TQ1_0 or 1-plane MTQ) */
static void pack_block(const struct bt_tfmt *fmt, int B, int64_t b, const int8_t *t, float sc, uint8_t *d) {
    if (fmt->type == BT_TYPE_TQ2_0) bt_tq2_0_pack(t, sc, d + b * 66);
    else if (fmt->type == BT_TYPE_TQ1_0) bt_tq1_0_pack(t, sc, d + b * 54);
    else bt_mtq_pack_block(fmt, t, &sc, d + b * bt_mtq_block_bytes(1, (uint32_t)B, fmt->layout));
}

struct job {
    const struct absmean *a;
    const struct bt_tfmt *fmt;
    const float          *src;
    uint8_t              *dst;
    int64_t               cols;
    size_t                row_bytes;
    double               *err2, *ref2; /* per row */
};

static void quant_rows(void *arg, int64_t r0, int64_t r1, int tid) {
    const struct job *j = arg;
    int B = j->a->block;
    int8_t q[256];
    for (int64_t r = r0; r < r1; r++) {
        const float *w = j->src + r * j->cols;
        uint8_t *d = j->dst + (size_t)r * j->row_bytes;
        double e2 = 0, x2 = 0;
        for (int64_t b = 0; b < j->cols / B; b++) {
            const float *wb = w + b * B;
            struct bt_absmean_sums bs;
            float s = j->a->avx2 ? bt_absmean_block_avx2(wb, B, j->a->lsq, q, &bs)
                                 : block_codes(wb, B, j->a->lsq, q, &bs);
            float sd = bt_fp16_to_f32(bt_f32_to_fp16(s));
            pack_block(j->fmt, B, b, q, s, d);
            double e = (double)bs.x2 - 2.0 * sd * bs.sup + (double)sd * sd * bs.nz;
            e2 += e > 0 ? e : 0;
            x2 += bs.x2;
        }
        j->err2[r] = e2;
        j->ref2[r] = x2;
    }
}

static bt_status am_quantize(void *ctx, const struct bt_qtensor *t, const struct bt_tfmt *fmt,
                             const float *src, int64_t nrows, void *dst, struct bt_qstats *stats,
                             bt_err *err) {
    struct absmean *a = ctx;
    size_t rb = a->host->row_bytes(fmt, t->cols);
    if (!rb) return a->host->set_error(err, BT_E_INVAL, "absmean: bad format for %lld columns", (long long)t->cols);
    double *acc = a->host->alloc(2 * (size_t)nrows * sizeof(double));
    if (!acc) return a->host->set_error(err, BT_E_NOMEM, "absmean: out of memory");
    struct job j = {a, fmt, src, dst, t->cols, rb, acc, acc + nrows};
    a->host->parallel_for(nrows, 1, quant_rows, &j);
    for (int64_t r = 0; r < nrows; r++) { /* fixed order: identical for any thread count */
        stats->err2 += acc[r];
        stats->ref2 += acc[nrows + r];
    }
    a->host->free(acc);
    return BT_OK;
}

/* second order (t->hess set): GPTQ ternary on the host engine, one plane, joint scale refit */
static bt_status am_quantize_tensor(void *ctx, const struct bt_qtensor *t, const struct bt_tfmt *fmt,
                                    const float *src, void *dst, void *const *parts, struct bt_qstats *stats, bt_err *err) {
    (void)parts; /* MTQ has no extra parts */
    struct absmean *a = ctx;
    if (!t->hess) return am_quantize(ctx, t, fmt, src, t->rows, dst, stats, err);
    size_t rb = a->host->row_bytes(fmt, t->cols);
    int64_t nb = t->cols / a->block;
    int8_t *codes = a->host->alloc((size_t)t->rows * t->cols);
    float *sc = a->host->alloc((size_t)t->rows * nb * sizeof(float));
    bt_status st = BT_OK;
    if (!rb || !codes || !sc) st = a->host->set_error(err, BT_E_NOMEM, "absmean: out of memory");
    struct bt_mtq_so_opts o = {1, a->block, 1, a->so_passes, 0, 0};
    double herr = 0;
    if (!st) st = bt_mtq_so_quantize(a->host, t->hess, src, t->rows, t->cols, &o, codes, sc, &herr, err);
    for (int64_t r = 0; r < t->rows && !st; r++) {
        const int8_t *tr = codes + r * t->cols;
        for (int64_t b = 0; b < nb; b++)
            pack_block(fmt, a->block, b, tr + b * a->block, sc[r * nb + b], (uint8_t *)dst + (size_t)r * rb);
        const float *w = src + r * t->cols;
        for (int64_t c = 0; c < t->cols; c++) {
            double d = (double)w[c] - (double)bt_fp16_to_f32(bt_f32_to_fp16(sc[r * nb + c / a->block])) * tr[c];
            stats->err2 += d * d;
            stats->ref2 += (double)w[c] * w[c];
        }
    }
    stats->herr2 += herr;
    a->host->free(codes);
    a->host->free(sc);
    return st;
}

static const struct bt_quantizer_i iface = {
    .struct_size = sizeof(struct bt_quantizer_i),
    .open = am_open,
    .close = am_close,
    .plan = am_plan,
    .quantize = am_quantize,
    .quantize_tensor = am_quantize_tensor,
};

static const struct bt_plugin desc = {
    .abi_version = BT_ABI_VERSION,
    .struct_size = sizeof(struct bt_plugin),
    .name = "absmean",
    .version = "1.0.0",
    .kind = BT_KIND_QUANTIZER,
    .description = "BitNet b1.58 absmean ternary codes per block, absmean or least-squares scale",
    .options = options,
    .iface = &iface,
    .ctx_size = sizeof(struct absmean),
};

BT_PLUGIN_DEFINE(desc)
