/* vptq.c - quantizer plugin "vptq": VPTQ-style vector quantization into bt's vq format
 * (vq_quant.c). Vectors of vector_len weights down a column share a codebook of `centroids`
 * entries per group (Hessian-weighted k-means), optional residual codebook, outlier columns with
 * their own codebook, per-column scale and bias; codes chosen column by column with the
 * second-order engine's error feedback when the calibration file has the Hessian. */
#include "vq_algo.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

struct vptq {
    const struct bt_host *host;
    struct vq_opts        o;
};

static const struct bt_option vptq_options[] = {
    {"vector_len", BT_OPT_INT, "4", 1, 16, NULL, "weights per vector, down a column (VPTQ's v)"},
    {"centroids", BT_OPT_INT, "256", 2, 65536, NULL, "codebook entries per group: a power of two (index bits = log2)"},
    {"res_centroids", BT_OPT_INT, "0", 0, 65536, NULL, "residual codebook entries: 0 (none) or a power of two"},
    {"group_num", BT_OPT_INT, "1", 1, 256, NULL, "codebooks per tensor (contiguous slices of the column order)"},
    {"outlier_pct", BT_OPT_FLOAT, "0", 0, 50, NULL, "% of columns (largest diag H) quantized with their own codebook"},
    {"outlier_vector_len", BT_OPT_INT, "4", 1, 16, NULL, "vector length of the outlier codebook"},
    {"outlier_centroids", BT_OPT_INT, "1024", 2, 65536, NULL, "outlier codebook entries: a power of two"},
    {"norm", BT_OPT_BOOL, "true", 0, 0, NULL, "per-column scale and bias (normalise columns to [0, 1])"},
    {"kmeans_iters", BT_OPT_INT, "20", 1, 1000, NULL, "k-means iterations per codebook"},
    {"kmeans_sample", BT_OPT_INT, "262144", 1024, 1 << 26, NULL, "vectors k-means sees at most (a seeded sample)"},
    {"seed", BT_OPT_INT, "1", 0, 2147483647.0, NULL, "k-means sample and initialisation seed"},
    {NULL, 0, NULL, 0, 0, NULL, NULL},
};

static int log2_exact(int64_t k) {
    int b = 0;
    while (((int64_t)1 << b) < k) b++;
    return ((int64_t)1 << b) == k ? b : -1;
}

static bt_status vptq_open(void *ctx, const struct bt_host *host, const bt_optset *opts, bt_err *err) {
    struct vptq *q = ctx;
    q->host = host;
    struct vq_opts *o = &q->o;
    int64_t k1 = host->opt_int(opts, "centroids"), k2 = host->opt_int(opts, "res_centroids");
    int64_t k0 = host->opt_int(opts, "outlier_centroids");
    int b1 = log2_exact(k1), b2 = k2 ? log2_exact(k2) : 0, b0 = log2_exact(k0);
    if (b1 < 1 || b1 > 16) return host->set_error(err, BT_E_INVAL, "vptq: centroids %lld is not a power of two in 2..65536", (long long)k1);
    if (b2 < 0 || b2 > 16) return host->set_error(err, BT_E_INVAL, "vptq: res_centroids %lld is not 0 or a power of two in 2..65536", (long long)k2);
    if (b0 < 1 || b0 > 16) return host->set_error(err, BT_E_INVAL, "vptq: outlier_centroids %lld is not a power of two in 2..65536", (long long)k0);
    o->v = (uint32_t)host->opt_int(opts, "vector_len");
    o->b1 = (uint32_t)b1;
    o->b2 = (uint32_t)b2;
    o->b0 = (uint32_t)b0;
    o->G = (uint32_t)host->opt_int(opts, "group_num");
    o->outlier_pct = host->opt_float(opts, "outlier_pct");
    o->v0 = (uint32_t)host->opt_int(opts, "outlier_vector_len");
    o->norm = (int)host->opt_int(opts, "norm");
    o->iters = (int)host->opt_int(opts, "kmeans_iters");
    o->sample = host->opt_int(opts, "kmeans_sample");
    o->seed = (uint64_t)host->opt_int(opts, "seed");
    if (o->v < 1 || o->v > 16 || o->v0 < 1 || o->v0 > 16)
        return host->set_error(err, BT_E_INVAL, "vptq: vector_len and outlier_vector_len must be 1..16");
    if (!BT_HAS(host, kmeans_assign))
        return host->set_error(err, BT_E_UNSUPPORTED, "vptq: needs a host with kmeans_assign (plugin ABI 2.1)");
    return BT_OK;
}

static void vptq_close(void *ctx) { (void)ctx; }

static bt_status vptq_plan(void *ctx, const struct bt_qtensor *t, struct bt_tfmt *out, bt_err *err) {
    struct vptq *q = ctx;
    if (t->want_exact && t->want.type == BT_TYPE_VQ) { *out = t->want; return BT_OK; }
    if (vq_plan_fmt(&q->o, t->rows, t->cols, t->col_weight != NULL, out)) return BT_OK;
    q->host->set_error(err, BT_E_UNSUPPORTED, "rows %lld / columns %lld do not fit vector_len %u, "
                       "group_num %u and the outliers", (long long)t->rows, (long long)t->cols, q->o.v, q->o.G);
    return BT_E_UNSUPPORTED;
}

static bt_status vptq_quantize(void *ctx, const struct bt_qtensor *t, const struct bt_tfmt *fmt,
                               const float *src, int64_t nrows, void *dst, struct bt_qstats *stats,
                               bt_err *err) {
    struct vptq *q = ctx;
    (void)fmt; (void)src; (void)nrows; (void)dst; (void)stats;
    return q->host->set_error(err, BT_E_PLUGIN, "vptq: %s: vq tensors are quantized whole", t->name);
}

static bt_status vptq_quantize_tensor(void *ctx, const struct bt_qtensor *t, const struct bt_tfmt *fmt,
                                      const float *src, void *dst, void *const *parts,
                                      struct bt_qstats *stats, bt_err *err) {
    struct vptq *q = ctx;
    if (fmt->type != BT_TYPE_VQ || !parts)
        return q->host->set_error(err, BT_E_INVAL, "vptq: %s: asked for a format other than vq", t->name);
    double e2 = 0, he2 = 0, r2 = 0;
    bt_status st = vq_quantize(q->host, &q->o, fmt, t->name, src, t->rows, t->cols, t->col_weight,
                               t->hess, dst, parts, &e2, &he2, err);
    if (st) return st;
    for (int64_t i = 0; i < t->rows * t->cols; i++) r2 += (double)src[i] * src[i];
    stats->err2 += e2;
    stats->ref2 += r2;
    stats->herr2 += he2;
    return BT_OK;
}

static const struct bt_quantizer_i vptq_iface = {
    .struct_size = sizeof(struct bt_quantizer_i),
    .open = vptq_open,
    .close = vptq_close,
    .plan = vptq_plan,
    .quantize = vptq_quantize,
    .decide = NULL,
    .error_curve = NULL,
    .quantize_tensor = vptq_quantize_tensor,
};

static const struct bt_plugin desc = {
    .abi_version = BT_ABI_VERSION,
    .struct_size = sizeof(struct bt_plugin),
    .name = "vptq",
    .version = "0.1.0",
    .kind = BT_KIND_QUANTIZER,
    .caps = BT_CAP_COL_WEIGHT,
    .description = "VPTQ-style vector quantization: Hessian-weighted k-means codebooks, column loop with error feedback",
    .options = vptq_options,
    .iface = &vptq_iface,
    .ctx_size = sizeof(struct vptq),
};

BT_PLUGIN_DEFINE(desc)
