/* test_rotate.c - [quantize] rotate (core/src/rotate.c): the rotation matrices are orthogonal
 * (Hadamard and the QR path), the rotated Hessians keep tr(W H W^T), the calibration hooks give
 * the rotated column weights, and a rotated f32 conversion of bt-tiny (tied, untied on the way)
 * and bt-small computes the original logits (rotate = hadamard through the INI, and the QR path
 * through bt_convert).
 * usage: test_rotate SHARED_DIR WORK_DIR */
#include "../bt_test.h"
#include "bt/bt_pipeline.h"
#include "bt_model.h"
#include "convert.h"
#include "rotate.h"

#include <stdlib.h>
#include <string.h>

static const char *g_shared, *g_work;
static bt_registry *g_reg;
static struct bt_backend *g_be;

static uint64_t g_rng = 12345;
static float frand(void) { /* uniform in [-1, 1) */
    g_rng = g_rng * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((double)(g_rng >> 11) / 4503599627370496.0 - 1.0);
}

/* ---- matrices -------------------------------------------------------------------------------- */
/* max |M^T M - I| */
static double orth_err(const float *M, int64_t n) {
    double mx = 0;
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < n; j++) {
            double s = 0;
            for (int64_t k = 0; k < n; k++) s += (double)M[k * n + i] * M[k * n + j];
            mx = fmax(mx, fabs(s - (i == j)));
        }
    return mx;
}

static void test_matrices(void) {
    struct { int kind; int64_t n; } c[] = {{BT_ROTATE_HADAMARD, 64}, {BT_ROTATE_HADAMARD, 512},
                                           {BT_ROTATE_HADAMARD, 96}, {BT_ROTATE_DENSE, 64}, {BT_ROTATE_DENSE, 100}};
    bt_err err = {0};
    for (size_t k = 0; k < sizeof(c) / sizeof(c[0]); k++) {
        int64_t n = c[k].n;
        float *M = malloc((size_t)(n * n) * sizeof(float)), *M2 = malloc((size_t)(n * n) * sizeof(float));
        CHECK_EQ(bt_rotate_matrix(c[k].kind, 0, 1, n, M, &err), BT_OK);
        double e = orth_err(M, n);
        printf("rotation kind %d n %lld: max |Q^T Q - I| %.3g\n", c[k].kind, (long long)n, e);
        CHECK(e <= 1e-5);
        int had = c[k].kind == BT_ROTATE_HADAMARD && !(n & (n - 1)), flat = 1;
        for (int64_t i = 0; i < n * n; i++) flat &= fabs(fabs(M[i]) - 1 / sqrt((double)n)) < 1e-6;
        CHECK_EQ(flat, had); /* Hadamard entries are all +-1/sqrt(n); the QR path's are not */
        CHECK_EQ(bt_rotate_matrix(c[k].kind, 0, 1, n, M2, &err), BT_OK);
        CHECK(memcmp(M, M2, (size_t)(n * n) * sizeof(float)) == 0); /* reproducible */
        CHECK_EQ(bt_rotate_matrix(c[k].kind, 7, 1, n, M2, &err), BT_OK);
        CHECK(memcmp(M, M2, (size_t)(n * n) * sizeof(float)) != 0); /* the seed matters */
        free(M);
        free(M2);
    }
}

/* ---- Hessians and hooks on a wrapped reader ----------------------------------------------------- */
/* tr(W G W^T) for W (rows x n), G (n x n) */
static double trace_wgw(const float *W, int64_t rows, const float *G, int64_t n) {
    double tr = 0;
    double *v = malloc((size_t)n * sizeof(double));
    for (int64_t r = 0; r < rows; r++) {
        const float *w = W + r * n;
        for (int64_t i = 0; i < n; i++) {
            double s = 0;
            for (int64_t j = 0; j < n; j++) s += (double)G[i * n + j] * w[j];
            v[i] = s;
        }
        for (int64_t i = 0; i < n; i++) tr += v[i] * w[i];
    }
    free(v);
    return tr;
}

/* random SPD n x n: A A^T / n + 0.1 I */
static float *random_spd(int64_t n) {
    float *A = malloc((size_t)(n * n) * sizeof(float)), *G = malloc((size_t)(n * n) * sizeof(float));
    for (int64_t i = 0; i < n * n; i++) A[i] = frand();
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < n; j++) {
            double s = 0;
            for (int64_t k = 0; k < n; k++) s += (double)A[i * n + k] * A[j * n + k];
            G[i * n + j] = (float)(s / (double)n + (i == j ? 0.1 : 0));
        }
    free(A);
    return G;
}

static float *read_tensor(struct bt_reader *r, const char *name, int64_t *rows, int64_t *cols) {
    int64_t i = bt_reader_find(r, name);
    struct bt_tensor t;
    bt_err err = {0};
    if (i < 0 || r->i->tensor_get(r->ctx, (uint32_t)i, &t, &err)) return NULL;
    *rows = bt_tensor_rows(&t);
    *cols = bt_tensor_cols(&t);
    float *W = malloc((size_t)(*rows * *cols) * sizeof(float));
    if (bt_reader_read_f32(r, (uint32_t)i, 0, *rows, W, &err)) { free(W); return NULL; }
    return W;
}

/* fake calibration: the current tensor's G as its own entry */
struct fake_calib {
    const float *G;     /* (n x n) */
    int64_t      n;
    uint32_t     entry; /* distinct per tensor (the rotation caches by entry) */
    float        w[4096];
};
static const float *fake_colw(void *ctx, const char *tensor, int64_t cols) {
    struct fake_calib *f = ctx;
    (void)tensor;
    if (f->n != cols) return NULL;
    for (int64_t j = 0; j < cols; j++) f->w[j] = f->G[j * cols + j];
    return f->w;
}
static bt_status fake_hess(void *ctx, const char *tensor, int64_t cols, int want, const float **H, uint32_t *entry,
                           bt_err *err) {
    struct fake_calib *f = ctx;
    (void)tensor; (void)err;
    if (H) *H = NULL;
    if (f->n != cols) return BT_OK;
    if (entry) *entry = f->entry;
    if (want && H) *H = f->G;
    return BT_OK;
}
static const char *fake_entry(void *ctx, uint32_t i) { (void)ctx; (void)i; return NULL; }

static void test_hessians(const char *model, int kind) {
    char path[4096];
    snprintf(path, sizeof path, "%s/models/%s", g_shared, model);
    struct bt_reader *orig = NULL, *rot = NULL;
    bt_err err = {0};
    if (bt_reader_open(g_reg, "auto", path, NULL, &orig, &err) || bt_reader_open(g_reg, "auto", path, NULL, &rot, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        CHECK(0);
        return;
    }
    static struct fake_calib fc;
    struct bt_convert_args a = {.colw_fn = fake_colw, .colw_ctx = &fc, .hess_fn = fake_hess, .entry_fn = fake_entry};
    CHECK_EQ(bt_rotate_wrap(&rot, kind, 0, &a, &err), BT_OK);
    const struct bt_rotation *R = bt_rotate_of(rot);
    CHECK(R != NULL && bt_rotate_of(orig) == NULL && a.colw_ctx == R);
    const char *names[] = {"blk.0.attn_q.weight", "blk.0.attn_v.weight", "blk.1.attn_output.weight",
                           "blk.1.ffn_up.weight", "blk.0.ffn_down.weight", "output.weight"};
    for (size_t k = 0; k < sizeof(names) / sizeof(names[0]); k++) {
        int64_t rows, cols, rr, rc;
        float *W = read_tensor(orig, names[k], &rows, &cols), *W2 = read_tensor(rot, names[k], &rr, &rc);
        if (!W && !strcmp(names[k], "output.weight")) W = read_tensor(orig, "token_embd.weight", &rows, &cols);
        CHECK(W && W2 && rr == rows && rc == cols);
        if (!W || !W2) { free(W); free(W2); continue; }
        float *G = random_spd(cols), *G2 = malloc((size_t)(cols * cols) * sizeof(float));
        CHECK_EQ(bt_rotate_hessian(R, names[k], G, cols, G2, &err), BT_OK);
        double t0 = trace_wgw(W, rows, G, cols), t1 = trace_wgw(W2, rows, G2, cols), dw = 0;
        for (int64_t i = 0; i < rows * cols; i++) dw = fmax(dw, fabs(W[i] - W2[i]));
        printf("%s %s kind %d: tr(W H W^T) %.6g rotated %.6g (rel %.2g), max |W' - W| %.3g\n", model, names[k], kind,
               t0, t1, fabs(t1 / t0 - 1), dw);
        CHECK(fabs(t1 / t0 - 1) <= 1e-4);
        CHECK(strstr(names[k], "ffn_down") ? 1 : dw > 1e-3); /* the weights did change */
        /* the hooks: matrix and column weights of the rotated input */
        fc.G = G;
        fc.n = cols;
        fc.entry = (uint32_t)k;
        const float *H = NULL;
        uint32_t e = 0;
        CHECK_EQ(a.hess_fn(a.colw_ctx, names[k], cols, 1, &H, &e, &err), BT_OK);
        const float *cw = a.colw_fn(a.colw_ctx, names[k], cols);
        double dh = 0, dc = 0, mean = 0;
        for (int64_t i = 0; H && i < cols * cols; i++) dh = fmax(dh, fabs(H[i] - G2[i]));
        for (int64_t j = 0; j < cols; j++) mean += G2[j * cols + j] / cols;
        for (int64_t j = 0; cw && j < cols; j++) dc = fmax(dc, fabs(cw[j] - fmax(G2[j * cols + j], 1e-3 * mean)));
        CHECK(H != NULL && dh <= 1e-6 * mean && cw != NULL && dc <= 1e-6 * mean);
        fc.G = NULL;
        fc.n = 0;
        free(G); free(G2); free(W); free(W2);
    }
    CHECK_EQ(bt_rotate_hessian(R, "token_embd.weight", NULL, 4, NULL, &err), BT_E_INVAL);
    CHECK(strstr(err.msg, "token_embd.weight") != NULL);
    bt_reader_close(rot);
    CHECK(a.colw_fn == fake_colw && a.colw_ctx == &fc && a.hess_fn == fake_hess); /* restored */
    bt_reader_close(orig);
}

/* ---- refusals: a fake reader with chosen metadata and tensors ------------------------------------ */
struct fake_model {
    struct bt_kv     kv[8];
    uint32_t         n_kv;
    struct bt_tensor t[4];
    uint32_t         n_t;
};
static void fm_close(void *ctx) { (void)ctx; }
static uint32_t fm_tcount(void *ctx) { return ((struct fake_model *)ctx)->n_t; }
static bt_status fm_tget(void *ctx, uint32_t i, struct bt_tensor *out, bt_err *err) {
    (void)err;
    *out = ((struct fake_model *)ctx)->t[i];
    return BT_OK;
}
static uint32_t fm_kvcount(void *ctx) { return ((struct fake_model *)ctx)->n_kv; }
static bt_status fm_kvget(void *ctx, uint32_t i, struct bt_kv *out) {
    *out = ((struct fake_model *)ctx)->kv[i];
    return BT_OK;
}
static const struct bt_reader_i fm_iface = {.struct_size = sizeof(struct bt_reader_i), .close = fm_close,
                                            .tensor_count = fm_tcount, .tensor_get = fm_tget,
                                            .kv_count = fm_kvcount, .kv_get = fm_kvget};

/* wrapping must fail with a message containing want, leaving the reader as it was */
static void refuse(struct fake_model *fm, const char *want) {
    struct bt_reader rd = {.i = &fm_iface, .ctx = fm}, *r = &rd;
    bt_err err = {0};
    CHECK(bt_rotate_wrap(&r, BT_ROTATE_HADAMARD, 0, NULL, &err) != BT_OK);
    printf("refused: %s\n", err.msg);
    CHECK(r == &rd && strstr(err.msg, want) != NULL);
}

static void test_refusals(void) {
    static float w[64 * 64];
    struct fake_model fm = {
        .kv = {{.key = "general.architecture", .type = BT_KV_STRING, .n = 5, .v.s = "llama"},
               {.key = "llama.embedding_length", .type = BT_KV_U32, .v.u = 64},
               {.key = "llama.block_count", .type = BT_KV_U32, .v.u = 1},
               {.key = "llama.attention.head_count", .type = BT_KV_U32, .v.u = 2}},
        .n_kv = 4,
        .t = {{.name = "token_embd.weight", .fmt = {BT_TYPE_F32, 0, 0, 0}, .n_dims = 2, .shape = {64, 64}, .data = w,
               .nbytes = sizeof(w)},
              {.name = "blk.0.attn_q.bias", .fmt = {BT_TYPE_F32, 0, 0, 0}, .n_dims = 1, .shape = {64}, .data = w,
               .nbytes = 256}},
        .n_t = 2,
    };
    refuse(&fm, "'blk.0.attn_q.bias' is not part of a Llama model");
    fm.t[1] = (struct bt_tensor){.name = "blk.0.attn_v.weight", .fmt = {BT_TYPE_F32, 0, 0, 0}, .n_dims = 2,
                                 .shape = {48, 64}, .data = w, .nbytes = 48 * 64 * 4};
    refuse(&fm, "'blk.0.attn_v.weight' has an unexpected shape");
    fm.t[1].shape[0] = 64;
    refuse(&fm, "'blk.0.attn_norm.weight' missing");
    fm.n_kv = 3;
    refuse(&fm, "'llama.attention.head_count' missing");
    fm.kv[0].v.s = "gpt2";
    fm.kv[0].n = 4;
    refuse(&fm, "'gpt2'");
}

/* ---- end to end: converted rotated model == original model --------------------------------------- */
static int load_model(const char *path, struct bt_reader **r, bt_model **m) {
    bt_err err = {0};
    struct bt_model_opts mo = {.n_ctx = 64};
    if (bt_reader_open(g_reg, "auto", path, NULL, r, &err) || bt_model_load(*r, g_be, &mo, m, &err)) {
        fprintf(stderr, "%s: %s\n", path, err.msg);
        return 1;
    }
    return 0;
}

static void compare_logits(const char *model, const char *rotated) {
    char path[4096];
    snprintf(path, sizeof path, "%s/models/%s", g_shared, model);
    struct bt_reader *r0 = NULL, *r1 = NULL;
    bt_model *m0 = NULL, *m1 = NULL;
    if (load_model(path, &r0, &m0) || load_model(rotated, &r1, &m1)) { CHECK(0); return; }
    CHECK(!bt_model_hparams(m1)->tied);
    enum { NT = 24 };
    int32_t ids[NT];
    for (int i = 0; i < NT; i++) ids[i] = i ? (i * 331 + 17) % 8000 + 2 : bt_model_hparams(m0)->bos_id;
    int64_t nv = bt_model_hparams(m0)->n_vocab;
    float *l0 = malloc((size_t)(NT * nv) * sizeof(float)), *l1 = malloc((size_t)(NT * nv) * sizeof(float));
    bt_err err = {0};
    CHECK_EQ(bt_model_forward(m0, ids, NT, 0, l0, 1, &err), BT_OK);
    CHECK_EQ(bt_model_forward(m1, ids, NT, 0, l1, 1, &err), BT_OK);
    double md = 0, mx = 0;
    for (int64_t i = 0; i < NT * nv; i++) {
        md = fmax(md, fabs(l1[i] - l0[i]));
        mx = fmax(mx, fabs(l0[i]));
    }
    printf("%s rotated (%s): max |logit_rot - logit_orig| / max |logit| = %.3g\n", model, rotated, md / mx);
    CHECK(mx > 0 && md / mx <= 1e-4);
    free(l0); free(l1);
    bt_model_free(m0); bt_model_free(m1);
    bt_reader_close(r0); bt_reader_close(r1);
}

static void test_convert_ini(const char *model) {
    char ini[4096], out[4096];
    snprintf(ini, sizeof ini, "%s/rotate_%s.ini", g_work, model);
    snprintf(out, sizeof out, "%s/rotate_%s.gguf", g_work, model);
    FILE *f = fopen(ini, "w");
    if (!f) { CHECK(0); return; }
    fprintf(f, "[input]\npath = %s/models/%s\n[quantize]\nmethod = none\nrotate = hadamard\nrotate_seed = 3\n"
               "[output]\npath = %s\nkeep_type = f32\n", g_shared, model, out);
    fclose(f);
    struct bt_run_opts ro = {.quiet = 1};
    bt_err err = {0};
    remove(out);
    CHECK_EQ(bt_pipeline_run(ini, NULL, 0, &ro, &err), BT_OK);
    if (err.status) { fprintf(stderr, "%s\n", err.msg); return; }
    /* the output is a plain model: norms are ones, no rotation at run time */
    struct bt_reader *r = NULL;
    if (bt_reader_open(g_reg, "auto", out, NULL, &r, &err) == BT_OK) {
        int64_t rows, cols;
        float *g = read_tensor(r, "blk.0.attn_norm.weight", &rows, &cols);
        CHECK(g && g[0] == 1.0f && g[cols - 1] == 1.0f);
        free(g);
        struct bt_kv tmp;
        const struct bt_kv *kv = bt_reader_kv(r, "bt.rotation", &tmp);
        CHECK(kv && kv->type == BT_KV_STRING && !strcmp(kv->v.s, "hadamard"));
        bt_reader_close(r);
    } else {
        CHECK(0);
    }
    compare_logits(model, out);
}

/* the QR path end to end (bt-tiny's sizes are powers of two, so force it) */
static void test_convert_dense(const char *model) {
    char in[4096], out[4096];
    snprintf(in, sizeof in, "%s/models/%s", g_shared, model);
    snprintf(out, sizeof out, "%s/rotate_%s_qr.gguf", g_work, model);
    struct bt_convert_args a = {.reg = g_reg, .reader = "auto", .in_path = in, .method = "none", .writer = "gguf",
                                .out_path = out, .type = "tq2_0", .keep_type = "f32", .report = "", .quiet = 1,
                                .rotate = BT_ROTATE_DENSE, .rotate_seed = 11};
    bt_err err = {0};
    remove(out);
    CHECK_EQ(bt_convert(&a, &err), BT_OK);
    if (err.status) { fprintf(stderr, "%s\n", err.msg); return; }
    compare_logits(model, out);
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc < 3) { fprintf(stderr, "usage: %s SHARED_DIR WORK_DIR\n", argv[0]); return 2; }
    static char shared[4096], work[4096]; /* absolute: INI paths resolve against the INI's folder */
    if (!realpath(argv[1], shared) || !realpath(argv[2], work)) { perror(argv[1]); return 2; }
    g_shared = shared;
    g_work = work;
    test_matrices();
    test_refusals();
    bt_err err = {0};
    CHECK_EQ(bt_registry_new(&g_reg), BT_OK);
    bt_registry_scan_default(g_reg, NULL, NULL);
    if (bt_backend_open(g_reg, "auto", NULL, &g_be, &err)) fprintf(stderr, "note: %s\n", err.msg);
    test_hessians("bt-tiny", BT_ROTATE_HADAMARD);
    test_hessians("bt-tiny", BT_ROTATE_DENSE);
    test_hessians("bt-small", BT_ROTATE_HADAMARD);
    test_convert_ini("bt-tiny");
    test_convert_ini("bt-small");
    test_convert_dense("bt-tiny");
    bt_backend_close(g_be);
    bt_registry_free(g_reg);
    TEST_DONE();
}
