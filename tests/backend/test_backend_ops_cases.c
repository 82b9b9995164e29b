/* test_backend_ops_cases.c - the cases of test_backend_ops: every op x weight format x shape,
 * with random data from fixed seeds, each with the expected values of its plain-C model
 * (test_backend_ops_models.c). Tolerances: test_backend_ops.c. */
#include "test_backend_ops.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const bo_ops[] = {"dequant", "get_rows", "matmul", "rmsnorm", "add", "swiglu",
                              "rope",    "cpy",      "attn",   "kmeans",  "relu2", "quant_row",
                              "scale",   "gemm",     "chol_inv", "seq",   NULL};

const char *bo_op_name(uint32_t code) {
    static const char *const n[] = {"?",   "get_rows", "rmsnorm", "rope",   "cpy",    "attn",
                                    "swiglu", "add",   "matmul",  "dequant", "kmeans",
                                    "relu2", "quant_row", "scale", "gemm", "chol_inv"};
    return code < sizeof(n) / sizeof(n[0]) ? n[code] : "?";
}

#include "test_backend_ops_build.h"


/* ---- weights -------------------------------------------------------------------------------- */
static int64_t fblock(const struct bt_tfmt *f) {
    if (f->type == BT_TYPE_MTQ) return f->block;
    return bt_type_block(f->type);
}
static void fstr(const struct bt_tfmt *f, char *s, size_t n) { bt_fmt_str(f, s, n); }

/* the weight formats under test */
static int weight_formats(struct bt_tfmt *out) {
    static const uint32_t std[] = {BT_TYPE_F32,  BT_TYPE_F16,   BT_TYPE_BF16, BT_TYPE_Q8_0,
                                   BT_TYPE_Q4_0, BT_TYPE_TQ1_0, BT_TYPE_TQ2_0};
    int n = 0;
    for (size_t i = 0; i < sizeof(std) / sizeof(std[0]); i++) out[n++] = bt_fmt(std[i]);
    for (uint32_t lay = 0; lay < 2; lay++)
        for (uint32_t blk = 64; blk <= 256; blk *= 2)
            for (uint32_t np = 1; np <= 4; np++) out[n++] = (struct bt_tfmt){BT_TYPE_MTQ, np, blk, lay};
    out[n++] = (struct bt_tfmt){BT_TYPE_MTQ, 8, 256, 0}; /* the most planes */
    out[n++] = (struct bt_tfmt){BT_TYPE_MTQ, 8, 64, 1};
    for (uint32_t t = BT_TYPE_Q4_1; t <= BT_TYPE_IQ4_XS; t++) out[n++] = bt_fmt(t); /* generic path */
    return n;
}
#define BO_MAX_FMTS 48

/* ggml's decode-only block types (CPU: the generic decode path; others may decline them) */
static int fmt_optional(const struct bt_tfmt *f) {
    return f->type >= BT_TYPE_Q4_1 && f->type <= BT_TYPE_IQ4_XS;
}

/* byte offsets of the fp16 fields in a block of a ggml type (the rest may be any bytes) */
static int ggml_f16_fields(uint32_t t, int *off) {
    switch (t) {
    case BT_TYPE_Q4_1: case BT_TYPE_Q5_1: case BT_TYPE_Q4_K: case BT_TYPE_Q5_K:
        off[0] = 0; off[1] = 2; return 2;
    case BT_TYPE_Q2_K: off[0] = 80; off[1] = 82; return 2;
    case BT_TYPE_Q3_K: off[0] = 108; return 1;
    case BT_TYPE_Q6_K: off[0] = 208; return 1;
    default: off[0] = 0; return 1; /* Q5_0, IQ4_NL, IQ4_XS */
    }
}

/* column counts: one block, 3 and 5 blocks (odd), 512 (the Q8-activation size);
 * scalar types: 1, 7, 33, 512 */
static int cols_list(const struct bt_tfmt *f, int64_t *c) {
    int64_t b = fblock(f);
    if (b == 1) { c[0] = 1; c[1] = 7; c[2] = 33; c[3] = 512; return 4; }
    c[0] = b; c[1] = 3 * b; c[2] = 5 * b; c[3] = 512;
    return 4;
}

/* rows x cols random weights in f (packed, malloc) and their decoding wf (malloc) */
static uint8_t *gen_weights(const struct bt_tfmt *f, int64_t rows, int64_t cols, float **wf,
                            size_t *nbytes) {
    size_t rb = bt_fmt_row_bytes(f, cols), n = rb * (size_t)rows;
    int64_t ne = rows * cols;
    uint8_t *w = malloc(n ? n : 1);
    if (!w || !rb) abort();
    if (f->type == BT_TYPE_TQ1_0 || f->type == BT_TYPE_TQ2_0) {
        int8_t t[256];
        for (int64_t b = 0; b < ne / 256; b++) {
            for (int i = 0; i < 256; i++) t[i] = trand();
            float d = (float)((0.01 + urand()) * (rnd() & 1 ? -1 : 1));
            if (f->type == BT_TYPE_TQ2_0) bt_tq2_0_pack(t, d, w + 66 * b);
            else bt_tq1_0_pack(t, d, w + 54 * b);
        }
    } else if (f->type == BT_TYPE_MTQ) {
        int8_t t[8 * 256];
        float a[8];
        size_t bb = bt_mtq_block_bytes(f->planes, f->block, f->layout);
        for (int64_t b = 0; b < ne / f->block; b++) {
            for (uint32_t i = 0; i < f->planes * f->block; i++) t[i] = trand();
            for (uint32_t p = 0; p < f->planes; p++)
                a[p] = (float)((0.01 + urand()) * (rnd() & 1 ? -1 : 1) / (double)(1 << p));
            bt_mtq_pack_block(f, t, a, w + bb * b);
        }
    } else if (fmt_optional(f)) { /* random blocks, scales of about 1/64 and 1/256 */
        uint32_t B = bt_type_block(f->type), bb = bt_type_block_bytes(f->type);
        int off[2], nf = ggml_f16_fields(f->type, off);
        for (size_t i = 0; i < n; i++) w[i] = (uint8_t)rnd();
        for (int64_t b = 0; b < ne / B; b++)
            for (int k = 0; k < nf; k++) {
                uint16_t h = bt_f32_to_fp16((float)((0.25 + urand()) / (k ? -256.0 : 64.0)));
                w[bb * b + off[k]] = (uint8_t)(h & 0xff);
                w[bb * b + off[k] + 1] = (uint8_t)(h >> 8);
            }
    } else {
        float *src = malloc(sizeof(float) * (size_t)ne);
        if (!src) abort();
        for (int64_t i = 0; i < ne; i++) src[i] = nrand();
        if (f->type == BT_TYPE_F16) /* f16 subnormals and large values */
            for (int64_t i = 5; i < ne; i += 97) src[i] = i % 2 ? 3e-6f * src[i] : 2e4f * src[i];
        if ((f->type == BT_TYPE_Q8_0 || f->type == BT_TYPE_Q4_0) && ne >= 64) /* a zero block */
            memset(src + 32, 0, 32 * sizeof(float));
        if (bt_from_f32(f, src, w, ne) != BT_OK) abort();
        free(src);
    }
    *wf = malloc(sizeof(float) * (size_t)ne);
    if (!*wf || bt_to_f32(f, w, *wf, ne) != BT_OK) abort();
    *nbytes = n;
    return w;
}

/* ---- DEQUANT, GET_ROWS, MATMUL ---------------------------------------------------------------- */
/* weights at woff in a weights buffer of its own with a guard after them; returns the buffer */
static int put_weights(struct bo_case *c, const uint8_t *w, size_t nb, uint64_t woff) {
    int b = cbuf(c, woff + nb + 64, BT_BUF_WEIGHTS);
    cput(c, b, woff, w, nb);
    return b;
}

static void gen_dequant(bo_emit_fn emit, void *user) {
    struct bt_tfmt fm[BO_MAX_FMTS];
    int nf = weight_formats(fm);
    static const int64_t rows[] = {1, 3, 17, 67};
    for (int i = 0; i < nf; i++) {
        int64_t cl[4];
        cols_list(&fm[i], cl);
        for (int k = 0; k < 4; k++) {
            int64_t r = rows[k], cols = cl[(k + i) % 4];
            char fs[32];
            fstr(&fm[i], fs, sizeof(fs));
            float *wf;
            size_t nb;
            uint8_t *w = gen_weights(&fm[i], r, cols, &wf, &nb);
            uint64_t woff = k % 2 ? 192 : 0;
            struct bo_case *c = cnew("dequant", fs, "%lld x %lld, weights at +%llu", (long long)r,
                                     (long long)cols, (unsigned long long)woff);
            c->optional = fmt_optional(&fm[i]);
            own(c, w);
            own(c, wf);
            int bw = put_weights(c, w, nb, woff);
            int bd = cbuf(c, 128 + sizeof(float) * (size_t)(r * cols) + 64, BT_BUF_ACT);
            struct bt_op *o = cop(c, BT_OP_DEQUANT);
            o->src[0] = V(bw, woff, fm[i], r, cols);
            o->dst = V(bd, 128, F32, r, cols);
            creg(c, BO_EXACT, o->dst, wf, NULL, 0, 0);
            emit(c, user);
            case_free(c);
        }
    }
}

static void gen_get_rows(bo_emit_fn emit, void *user) {
    struct bt_tfmt fm[BO_MAX_FMTS];
    int nf = weight_formats(fm);
    static const int64_t vrows[] = {3, 17, 67}, ntoks[] = {1, 5, 33};
    for (int i = 0; i < nf; i++) {
        int64_t cl[4];
        cols_list(&fm[i], cl);
        for (int k = 0; k < 3; k++) {
            int64_t vr = vrows[k], cols = cl[(k + i) % 3], nt = ntoks[(k + i) % 3];
            char fs[32];
            fstr(&fm[i], fs, sizeof(fs));
            float *wf;
            size_t nb;
            uint8_t *w = gen_weights(&fm[i], vr, cols, &wf, &nb);
            struct bo_case *c = cnew("get_rows", fs, "%lld x %lld, %lld ids", (long long)vr,
                                     (long long)cols, (long long)nt);
            c->optional = fmt_optional(&fm[i]);
            own(c, w);
            own(c, wf);
            int32_t *ids = own(c, malloc(sizeof(int32_t) * (size_t)nt));
            float *want = fnew(c, nt * cols);
            for (int64_t t = 0; t < nt; t++) { /* first and last row, then repeats */
                ids[t] = t == 0 ? (int32_t)(vr - 1) : t == 1 ? 0 : t % 4 == 3 ? ids[t - 2]
                                                                  : (int32_t)irand(vr);
                memcpy(want + t * cols, wf + ids[t] * cols, sizeof(float) * (size_t)cols);
            }
            uint64_t woff = k == 1 ? 64 : 0;
            int bw = put_weights(c, w, nb, woff);
            int bd = cbuf(c, 64 + sizeof(float) * (size_t)(nt * cols) + 64, BT_BUF_ACT);
            struct bt_op *o = cop(c, BT_OP_GET_ROWS);
            o->src[0] = V(bw, woff, fm[i], vr, cols);
            o->dst = V(bd, 64, F32, nt, cols);
            o->ids = ids;
            creg(c, BO_EXACT, o->dst, want, NULL, 0, 0);
            emit(c, user);
            case_free(c);
        }
    }
}

#define MM_RTOL 1e-4
#define MM_ATOL 1e-6

/* one MATMUL; variant bit 0: weights at an offset, bit 1: activations and output in one arena
 * buffer, bit 2: the weights buffer through buf_wrap */
static void mm_case(bo_emit_fn emit, void *user, const struct bt_tfmt *f, int64_t rows,
                    int64_t cols, int64_t ntok, int act, int variant) {
    char fs[40], lab[48];
    fstr(f, fs, sizeof(fs));
    snprintf(lab, sizeof(lab), "%s%s", fs, act == BT_ACT_Q8 ? "/q8" : "");
    float *wf;
    size_t nb;
    uint8_t *w = gen_weights(f, rows, cols, &wf, &nb);
    struct bo_case *c = cnew("matmul", lab, "%lld x %lld, ntok %lld%s%s%s", (long long)rows,
                             (long long)cols, (long long)ntok, variant & 1 ? ", weights at +256" : "",
                             variant & 2 ? ", one arena" : "", variant & 4 ? ", buf_wrap" : "");
    c->optional = fmt_optional(f);
    own(c, w);
    own(c, wf);
    float *X = frand(c, ntok * cols, 1.0f), *want = fnew(c, ntok * rows), *mag = fnew(c, ntok * rows);
    bo_model_matmul(wf, rows, cols, X, ntok, act, want, mag);
    uint64_t woff = variant & 1 ? 256 : 0;
    int bw = put_weights(c, w, nb, woff);
    size_t xb = sizeof(float) * (size_t)(ntok * cols), yb = sizeof(float) * (size_t)(ntok * rows);
    int bx, by;
    uint64_t xo, yo;
    if (variant & 2) {
        bx = by = cbuf(c, 64 + al64(xb) + 64 + yb + 64, BT_BUF_ACT);
        xo = 64;
        yo = 64 + al64(xb) + 64;
    } else {
        bx = cbuf(c, xb + 64, BT_BUF_ACT);
        by = cbuf(c, 64 + yb + 64, BT_BUF_ACT);
        xo = 0;
        yo = 64;
    }
    cput(c, bx, xo, X, xb);
    struct bt_op *o = cop(c, BT_OP_MATMUL);
    o->src[0] = V(bw, woff, *f, rows, cols);
    o->src[1] = V(bx, xo, F32, ntok, cols);
    o->dst = V(by, yo, F32, ntok, rows);
    o->act = act;
    creg(c, BO_TOL, o->dst, want, mag, MM_RTOL, MM_ATOL);
    c->threads_check = ntok > 1;
    c->wrap = (variant & 4) != 0;
    emit(c, user);
    case_free(c);
}

/* MATMULs sharing src1 with BT_OPF_SAME_INPUT: W1 X, W2 X (same), W1 X2, W2 X2 (same), then
 * W2 X (same: X did not change since the first MATMUL on its view, though X2 came in between) */
static void mm_same_case(bo_emit_fn emit, void *user, const struct bt_tfmt *f, int64_t rows,
                         int64_t cols, int64_t ntok, int act) {
    char fs[40], lab[48];
    fstr(f, fs, sizeof(fs));
    snprintf(lab, sizeof(lab), "%s%s", fs, act == BT_ACT_Q8 ? "/q8" : "");
    struct bo_case *c = cnew("matmul", lab, "SAME_INPUT list, 2 weights x 2 inputs, %lld x %lld, "
                             "ntok %lld", (long long)rows, (long long)cols, (long long)ntok);
    c->optional = fmt_optional(f);
    float *wf[2];
    size_t nb;
    int bw[2];
    for (int k = 0; k < 2; k++) {
        uint8_t *w = own(c, gen_weights(f, rows, cols, &wf[k], &nb));
        own(c, wf[k]);
        bw[k] = put_weights(c, w, nb, 0);
    }
    size_t xb = sizeof(float) * (size_t)(ntok * cols), yb = sizeof(float) * (size_t)(ntok * rows);
    int bx = cbuf(c, 2 * al64(xb), BT_BUF_ACT), by = cbuf(c, 5 * al64(yb), BT_BUF_ACT);
    float *X[2];
    for (int j = 0; j < 2; j++) {
        X[j] = frand(c, ntok * cols, j ? 3.0f : 1.0f);
        cput(c, bx, j * al64(xb), X[j], xb);
    }
    static const int seq[5][3] = {{0, 0, 0}, {1, 0, 1}, {0, 1, 0}, {1, 1, 1}, {1, 0, 1}};
    for (int i = 0; i < 5; i++) { /* weight, input, flag */
        int k = seq[i][0], j = seq[i][1];
        float *want = fnew(c, ntok * rows), *mag = fnew(c, ntok * rows);
        bo_model_matmul(wf[k], rows, cols, X[j], ntok, act, want, mag);
        struct bt_op *o = cop(c, BT_OP_MATMUL);
        o->src[0] = V(bw[k], 0, *f, rows, cols);
        o->src[1] = V(bx, j * al64(xb), F32, ntok, cols);
        o->dst = V(by, i * al64(yb), F32, ntok, rows);
        o->act = act;
        o->flags = seq[i][2] ? BT_OPF_SAME_INPUT : 0;
        creg(c, BO_TOL, o->dst, want, mag, MM_RTOL, MM_ATOL);
    }
    c->threads_check = 1;
    emit(c, user);
    case_free(c);
}

/* SAME_INPUT after the input was overwritten: int8 W X, CPY X2 -> X, f32 W X, int8 W X (same: the
 * f32 product saw these values) must be of X2, not of an int8 copy of the first X */
static void mm_stale_case(bo_emit_fn emit, void *user, const struct bt_tfmt *f, int64_t rows,
                          int64_t cols, int64_t ntok) {
    char fs[40], lab[48];
    fstr(f, fs, sizeof(fs));
    snprintf(lab, sizeof(lab), "%s/q8", fs);
    struct bo_case *c = cnew("matmul", lab, "SAME_INPUT after the input was overwritten, %lld x %lld, "
                             "ntok %lld", (long long)rows, (long long)cols, (long long)ntok);
    c->optional = fmt_optional(f);
    float *wf;
    size_t nb, xb = sizeof(float) * (size_t)(ntok * cols), yb = sizeof(float) * (size_t)(ntok * rows);
    uint8_t *w = own(c, gen_weights(f, rows, cols, &wf, &nb));
    int bw = put_weights(c, w, nb, 0);
    own(c, wf);
    int bx = cbuf(c, 2 * al64(xb), BT_BUF_ACT), by = cbuf(c, 3 * al64(yb), BT_BUF_ACT);
    float *X = frand(c, ntok * cols, 1.0f), *X2 = frand(c, ntok * cols, 3.0f);
    cput(c, bx, 0, X, xb);
    cput(c, bx, al64(xb), X2, xb);
    for (int i = 0; i < 3; i++) {
        if (i == 1) { /* X2 over X */
            struct bt_op *cp = cop(c, BT_OP_CPY);
            cp->src[0] = V(bx, al64(xb), F32, ntok, cols);
            cp->dst = V(bx, 0, F32, ntok, cols);
            creg(c, BO_EXACT, cp->dst, X2, NULL, 0, 0);
        }
        float *want = fnew(c, ntok * rows), *mag = fnew(c, ntok * rows);
        int act = i == 1 ? BT_ACT_F32 : BT_ACT_Q8;
        bo_model_matmul(wf, rows, cols, i ? X2 : X, ntok, act, want, mag);
        struct bt_op *o = cop(c, BT_OP_MATMUL);
        o->src[0] = V(bw, 0, *f, rows, cols);
        o->src[1] = V(bx, 0, F32, ntok, cols);
        o->dst = V(by, i * al64(yb), F32, ntok, rows);
        o->act = act;
        o->flags = i == 2 ? BT_OPF_SAME_INPUT : 0;
        creg(c, BO_TOL, o->dst, want, mag, MM_RTOL, MM_ATOL);
    }
    emit(c, user);
    case_free(c);
}

/* Q8 batch vs one token at a time: the cpu backends give the same bits */
static void mm_tok_case(bo_emit_fn emit, void *user, const struct bt_tfmt *f, int64_t rows,
                        int64_t cols, int64_t ntok) {
    char fs[40], lab[48];
    fstr(f, fs, sizeof(fs));
    snprintf(lab, sizeof(lab), "%s/q8", fs);
    struct bo_case *c = cnew("matmul", lab, "batch of %lld vs one token at a time, %lld x %lld",
                             (long long)ntok, (long long)rows, (long long)cols);
    c->optional = fmt_optional(f);
    float *wf;
    size_t nb;
    uint8_t *w = own(c, gen_weights(f, rows, cols, &wf, &nb));
    own(c, wf);
    int bw = put_weights(c, w, nb, 0);
    float *X = frand(c, ntok * cols, 1.0f), *want = fnew(c, ntok * rows), *mag = fnew(c, ntok * rows);
    bo_model_matmul(wf, rows, cols, X, ntok, BT_ACT_Q8, want, mag);
    size_t xb = sizeof(float) * (size_t)(ntok * cols), yb = sizeof(float) * (size_t)(ntok * rows);
    int bx = cbuf(c, xb, BT_BUF_ACT), by = cbuf(c, 2 * al64(yb), BT_BUF_ACT);
    cput(c, bx, 0, X, xb);
    struct bt_op *o = cop(c, BT_OP_MATMUL);
    o->src[0] = V(bw, 0, *f, rows, cols);
    o->src[1] = V(bx, 0, F32, ntok, cols);
    o->dst = V(by, 0, F32, ntok, rows);
    o->act = BT_ACT_Q8;
    int r0 = creg(c, BO_TOL, o->dst, want, mag, MM_RTOL, MM_ATOL);
    for (int64_t t = 0; t < ntok; t++) {
        o = cop(c, BT_OP_MATMUL);
        o->src[0] = V(bw, 0, *f, rows, cols);
        o->src[1] = V(bx, sizeof(float) * (size_t)(t * cols), F32, 1, cols);
        o->dst = V(by, al64(yb) + sizeof(float) * (size_t)(t * rows), F32, 1, rows);
        o->act = BT_ACT_Q8;
    }
    int r1 = creg(c, BO_TOL, V(by, al64(yb), F32, ntok, rows), want, mag, MM_RTOL, MM_ATOL);
    c->reg[r1].same_as = r0;
    emit(c, user);
    case_free(c);
}

int bo_quick;

static void gen_matmul(bo_emit_fn emit, void *user) {
    struct bt_tfmt fm[BO_MAX_FMTS];
    int nf = weight_formats(fm);
    static const int64_t rows[] = {1, 3, 17, 67}, ntoks[] = {1, 2, 5, 33, 130};
    for (int i = 0; i < nf; i++) {
        int64_t cl[4];
        cols_list(&fm[i], cl);
        int n = 0;
        for (int ci = 0; ci < 4; ci++)
            for (int ri = 0; ri < 4; ri++, n++) {
                int64_t nt = ntoks[(n + i) % 5];
                if (nt == 130 && rows[ri] * cl[ci] > 17 * 768) nt = 33; /* keep the time down */
                mm_case(emit, user, &fm[i], rows[ri], cl[ci], nt, BT_ACT_F32, (n + i) % 8);
                if (cl[ci] % BT_ACT_Q8_BLOCK == 0)
                    mm_case(emit, user, &fm[i], rows[ri], cl[ci], ntoks[(n + i + 2) % 5],
                            BT_ACT_Q8, (n + i + 3) % 8);
            }
        mm_same_case(emit, user, &fm[i], 17, 512, 3, BT_ACT_F32);
        mm_same_case(emit, user, &fm[i], 17, 512, 3, BT_ACT_Q8);
        mm_tok_case(emit, user, &fm[i], 19, 512, 5);
        mm_stale_case(emit, user, &fm[i], 9, 256, 2);
    }
    /* bigger shapes for the hot formats (tiles, panels, thread splits) */
    static const struct bt_tfmt big[] = {{BT_TYPE_TQ2_0, 0, 0, 0}, {BT_TYPE_TQ1_0, 0, 0, 0},
                                         {BT_TYPE_F16, 0, 0, 0},   {BT_TYPE_Q8_0, 0, 0, 0},
                                         {BT_TYPE_MTQ, 3, 256, 0}, {BT_TYPE_MTQ, 2, 128, 1}};
    for (size_t i = 0; i < sizeof(big) / sizeof(big[0]) && !bo_quick; i++) {
        mm_case(emit, user, &big[i], 131, 2048, 33, BT_ACT_Q8, 0);
        mm_case(emit, user, &big[i], 257, 1024, 1, BT_ACT_F32, 2);
        mm_case(emit, user, &big[i], 96, 1024, 17, BT_ACT_F32, 0);
        mm_case(emit, user, &big[i], 1001, 1024, 5, i % 2 ? BT_ACT_F32 : BT_ACT_Q8, 1); /* thread splits */
    }
    /* rows longer than the generic gemv's decode chunk (BT_CPU_GEN_COLS = 2048) */
    static const struct bt_tfmt gen[] = {{BT_TYPE_Q4_K, 0, 0, 0}, {BT_TYPE_Q5_0, 0, 0, 0}};
    for (size_t i = 0; i < sizeof(gen) / sizeof(gen[0]); i++) {
        mm_case(emit, user, &gen[i], 9, 2560, 1, BT_ACT_F32, 0);
        mm_case(emit, user, &gen[i], 9, 4352, 3, BT_ACT_F32, 1);
    }
}

/* ---- element-wise ops ------------------------------------------------------------------------ */
#define EW_RTOL 1e-5
#define EW_ATOL 1e-30

static const int64_t ew_ntok[] = {1, 2, 5, 33, 130};

static void gen_rmsnorm(bo_emit_fn emit, void *user) {
    static const int64_t ns[] = {1, 7, 33, 256, 1000, 4096};
    int k = 0;
    for (size_t a = 0; a < sizeof(ns) / sizeof(ns[0]); a++)
        for (int inpl = 0; inpl < 2; inpl++, k++) {
            int64_t n = ns[a], nt = ew_ntok[k % 5];
            float eps = k % 3 ? 1e-5f : 1e-6f;
            struct bo_case *c = cnew("rmsnorm", "f32", "ntok %lld, n %lld, eps %g%s", (long long)nt,
                                     (long long)n, eps, inpl ? ", in place" : "");
            float *x = frand(c, nt * n, k % 2 ? 0.05f : 2.0f), *w = frand(c, n, 1.0f);
            float *want = fnew(c, nt * n), *mag = fnew(c, nt * n);
            bo_model_rmsnorm(x, w, nt, n, eps, want, mag);
            size_t xb = sizeof(float) * (size_t)(nt * n);
            int b = cbuf(c, 64 + al64(xb) + sizeof(float) * (size_t)n + 64 + xb + 64, BT_BUF_ACT);
            uint64_t xo = 64, wo = 64 + al64(xb), yo = inpl ? xo : wo + al64(sizeof(float) * (size_t)n) + 64;
            cput(c, b, xo, x, xb);
            cput(c, b, wo, w, sizeof(float) * (size_t)n);
            struct bt_op *o = cop(c, BT_OP_RMSNORM);
            o->src[0] = V(b, xo, F32, nt, n);
            o->src[1] = V(b, wo, F32, 1, n);
            o->dst = V(b, yo, F32, nt, n);
            o->eps = eps;
            creg(c, BO_TOL, o->dst, want, mag, EW_RTOL, EW_ATOL);
            emit(c, user);
            case_free(c);
        }
}

/* ADD and SWIGLU: inpl 0 = separate dst, 1 = dst is src0, 2 = dst is src1 (SWIGLU only) */
static void gen_binary(bo_emit_fn emit, void *user, uint32_t code) {
    static const int64_t ns[] = {1, 7, 33, 1000, 4096};
    int nmodes = code == BT_OP_SWIGLU ? 3 : 2, k = 0;
    for (size_t a = 0; a < sizeof(ns) / sizeof(ns[0]); a++)
        for (int inpl = 0; inpl < nmodes; inpl++, k++) {
            int64_t n = ns[a], nt = ew_ntok[k % 5], ne = nt * n;
            struct bo_case *c = cnew(bo_op_name(code), "f32", "ntok %lld, n %lld%s", (long long)nt,
                                     (long long)n, inpl == 1 ? ", dst = src0" : inpl == 2 ? ", dst = src1" : "");
            float *x0 = frand(c, ne, 3.0f), *x1 = frand(c, ne, 1.0f);
            if (code == BT_OP_SWIGLU && ne > 4) { x0[0] = 0.0f; x0[1] = -30.0f; x0[2] = 25.0f; x1[3] = 0.0f; }
            float *want = fnew(c, ne), *mag = fnew(c, ne);
            for (int64_t i = 0; i < ne; i++) {
                if (code == BT_OP_ADD) {
                    want[i] = (float)((double)x0[i] + x1[i]);
                    mag[i] = fabsf(x0[i]) + fabsf(x1[i]);
                } else {
                    double s = (double)x0[i] / (1.0 + exp(-(double)x0[i]));
                    want[i] = (float)(s * x1[i]);
                    mag[i] = fabsf(want[i]);
                }
            }
            size_t xb = sizeof(float) * (size_t)ne, s = 64 + al64(xb);
            int b = cbuf(c, 3 * s + 64, BT_BUF_ACT);
            cput(c, b, 64, x0, xb);
            cput(c, b, 64 + s, x1, xb);
            struct bt_op *o = cop(c, code);
            o->src[0] = V(b, 64, F32, nt, n);
            o->src[1] = V(b, 64 + s, F32, nt, n);
            o->dst = inpl == 1 ? o->src[0] : inpl == 2 ? o->src[1] : V(b, 64 + 2 * s, F32, nt, n);
            creg(c, BO_TOL, o->dst, want, mag, EW_RTOL, EW_ATOL);
            emit(c, user);
            case_free(c);
        }
}

static void gen_rope(bo_emit_fn emit, void *user) {
    /* head_dim, heads, n_rot */
    static const int geo[][3] = {{8, 1, 8},   {8, 4, 4},   {40, 3, 40}, {40, 2, 24},
                                 {64, 4, 64}, {64, 8, 32}, {128, 2, 128}, {128, 3, 96}};
    static const int pos0s[] = {0, 5, 1000};
    int k = 0;
    for (size_t g = 0; g < sizeof(geo) / sizeof(geo[0]); g++)
        for (int halves = 0; halves < 2; halves++)
            for (int inpl = 0; inpl < 2; inpl++, k++) {
                int hd = geo[g][0], nh = geo[g][1], nr = geo[g][2], pos0 = pos0s[k % 3];
                int64_t nt = ew_ntok[k % 5], cols = (int64_t)hd * nh;
                struct bo_case *c = cnew("rope", "f32", "ntok %lld, %d heads of %d, n_rot %d, "
                                         "halves %d, pos0 %d%s", (long long)nt, nh, hd, nr, halves,
                                         pos0, inpl ? ", in place" : "");
                float *x = frand(c, nt * cols, 1.0f), *fr = fnew(c, nr / 2);
                for (int i = 0; i < nr / 2; i++) /* 10000^(-2i/n_rot), some with a divisor */
                    fr[i] = (float)(pow(10000.0, -2.0 * i / nr) / (i % 5 == 4 ? 4.0 : 1.0));
                float *want = fnew(c, nt * cols), *mag = fnew(c, nt * cols);
                bo_model_rope(x, fr, nt, cols, hd, nr, halves, pos0, want, mag);
                size_t xb = sizeof(float) * (size_t)(nt * cols);
                int b = cbuf(c, 64 + al64(xb) + 64 + 64 + xb + 64, BT_BUF_ACT);
                int bf = cbuf(c, sizeof(float) * (size_t)(nr / 2), BT_BUF_ACT);
                cput(c, b, 64, x, xb);
                cput(c, bf, 0, fr, sizeof(float) * (size_t)(nr / 2));
                struct bt_op *o = cop(c, BT_OP_ROPE);
                o->src[0] = V(b, 64, F32, nt, cols);
                o->src[1] = V(bf, 0, F32, 1, nr / 2);
                o->dst = inpl ? o->src[0] : V(b, 64 + al64(xb) + 64, F32, nt, cols);
                o->head_dim = hd;
                o->n_head = nh;
                o->n_rot = nr;
                o->halves = halves;
                o->pos0 = pos0;
                creg(c, BO_TOL, o->dst, want, mag, EW_RTOL, EW_ATOL);
                emit(c, user);
                case_free(c);
            }
}

/* CPY from an offset into a bigger source to rows pos.. of a bigger destination (a KV cache) */
static void gen_cpy(bo_emit_fn emit, void *user) {
    static const int64_t sh[][2] = {{1, 1}, {1, 7}, {5, 64}, {33, 320}, {130, 40}, {2, 1024}};
    for (size_t s = 0; s < sizeof(sh) / sizeof(sh[0]); s++) {
        int64_t r = sh[s][0], cols = sh[s][1], pos = s % 2 ? 17 : 3, cap = pos + r + 5;
        size_t rb = sizeof(float) * (size_t)cols;
        struct bo_case *c = cnew("cpy", "f32", "%lld x %lld from row 3 to row %lld of %lld",
                                 (long long)r, (long long)cols, (long long)pos, (long long)cap);
        float *x = frand(c, (r + 4) * cols, 1.0f);
        int bs = cbuf(c, rb * (size_t)(r + 4), BT_BUF_ACT), bd = cbuf(c, rb * (size_t)cap, BT_BUF_KV);
        cput(c, bs, 0, x, rb * (size_t)(r + 4));
        float *old = frand(c, cap * cols, 1.0f);
        cput(c, bd, 0, old, rb * (size_t)cap);
        struct bt_op *o = cop(c, BT_OP_CPY);
        o->src[0] = V(bs, 3 * rb, F32, r, cols);
        o->dst = V(bd, (uint64_t)pos * rb, F32, r, cols);
        creg(c, BO_EXACT, o->dst, x + 3 * cols, NULL, 0, 0);
        emit(c, user);
        case_free(c);
    }
}

/* SCALE (2.3): one float32 multiply per element, so every backend must match it exactly */
static void gen_scale(bo_emit_fn emit, void *user) {
    static const int64_t sh[][2] = {{1, 1}, {1, 7}, {5, 64}, {33, 320}, {2, 4096}, {64, 512}};
    static const float sc[] = {0.0384615f, 1.0f / 3.0f, -2.5f, 0.0f, 1e-3f, 41.75f};
    for (size_t s = 0; s < sizeof(sh) / sizeof(sh[0]); s++)
        for (int inpl = 0; inpl < 2; inpl++) {
            int64_t r = sh[s][0], cols = sh[s][1], ne = r * cols;
            float k = sc[(s + (size_t)inpl) % (sizeof(sc) / sizeof(sc[0]))];
            struct bo_case *c = cnew("scale", "f32", "%lld x %lld, scale %g%s", (long long)r,
                                     (long long)cols, (double)k, inpl ? ", dst = src0" : "");
            float *x = frand(c, ne, 3.0f), *want = fnew(c, ne);
            for (int64_t i = 0; i < ne; i++) want[i] = x[i] * k;
            size_t xb = sizeof(float) * (size_t)ne, st = 64 + al64(xb);
            int b = cbuf(c, 2 * st + 64, BT_BUF_ACT);
            cput(c, b, 64, x, xb);
            struct bt_op *o = cop(c, BT_OP_SCALE);
            o->src[0] = V(b, 64, F32, r, cols);
            o->dst = inpl ? o->src[0] : V(b, 64 + st, F32, r, cols);
            o->scale = k;
            creg(c, BO_EXACT, o->dst, want, NULL, 0, 0);
            emit(c, user);
            case_free(c);
        }
}

#define ATT_RTOL 1e-4
#define ATT_ATOL 1e-6

static void gen_attn(bo_emit_fn emit, void *user) {
    static const int heads[][2] = {{4, 4}, {8, 2}, {6, 3}}, hds[] = {8, 40, 64};
    static const int pt[][2] = {{0, 1}, {0, 5}, {7, 1}, {13, 33}, {100, 2}, {0, 33}, {60, 7}};
    int k = 0;
    for (int hi = 0; hi < 3; hi++)
        for (int di = 0; di < 3; di++)
            for (int j = 0; j < 3; j++, k++) {
                int nh = heads[hi][0], nkv = heads[hi][1], hd = hds[di];
                int pos0 = pt[k % 7][0], nt = pt[k % 7][1], cap = pos0 + nt + 1 + k % 9;
                float scale = k % 4 == 3 ? 0.3f : (float)(1.0 / sqrt((double)hd));
                int64_t qc = (int64_t)nh * hd, kvc = (int64_t)nkv * hd;
                struct bo_case *c = cnew("attn", "f32", "%d/%d heads of %d, pos0 %d, ntok %d, cache %d, "
                                         "scale %g", nh, nkv, hd, pos0, nt, cap, scale);
                float *q = frand(c, nt * qc, 1.0f), *kc = frand(c, cap * kvc, 1.0f),
                      *vc = frand(c, cap * kvc, 1.0f);
                float *want = fnew(c, nt * qc), *mag = fnew(c, nt * qc);
                bo_model_attn(q, kc, vc, nt, pos0, nh, nkv, hd, scale, want, mag);
                size_t qb = sizeof(float) * (size_t)(nt * qc), used = sizeof(float) * (size_t)((pos0 + nt) * kvc);
                int bq = cbuf(c, 64 + al64(qb) + 64 + qb + 64, BT_BUF_ACT);
                int bk = cbuf(c, sizeof(float) * (size_t)(cap * kvc), BT_BUF_KV);
                int bv = cbuf(c, sizeof(float) * (size_t)(cap * kvc), BT_BUF_KV);
                cput(c, bq, 64, q, qb);
                cput(c, bk, 0, kc, used); /* rows past pos0 + ntok stay NaN: never read */
                cput(c, bv, 0, vc, used);
                struct bt_op *o = cop(c, BT_OP_ATTN);
                o->src[0] = V(bq, 64, F32, nt, qc);
                o->src[1] = V(bk, 0, F32, cap, kvc);
                o->src[2] = V(bv, 0, F32, cap, kvc);
                o->dst = V(bq, 64 + al64(qb) + 64, F32, nt, qc);
                o->n_head = nh;
                o->n_head_kv = nkv;
                o->head_dim = hd;
                o->pos0 = pos0;
                o->scale = scale;
                creg(c, BO_TOL, o->dst, want, mag, ATT_RTOL, ATT_ATOL);
                c->threads_check = 1;
                emit(c, user);
                case_free(c);
            }
}

/* ---- KMEANS ---------------------------------------------------------------------------------- */
static void gen_kmeans(bo_emit_fn emit, void *user) {
    /* n, d, K, weights (0 none, 1 random, 2 random with zeros), ties */
    static const int sh[][5] = {{1, 1, 1, 0, 0},   {7, 2, 3, 1, 0},   {100, 8, 16, 0, 1},
                                {1000, 16, 256, 1, 0}, {33, 33, 5, 2, 1}, {64, 4, 7, 0, 1},
                                {257, 3, 64, 2, 1}};
    for (size_t s = 0; s < sizeof(sh) / sizeof(sh[0]); s++) {
        int64_t n = sh[s][0], d = sh[s][1], K = sh[s][2];
        int wm = sh[s][3], ties = sh[s][4];
        struct bo_case *c = cnew("kmeans", "f32", "%lld points of %lld, %lld centroids, %s%s",
                                 (long long)n, (long long)d, (long long)K,
                                 wm == 0 ? "no weights" : wm == 1 ? "weights" : "weights with zeros",
                                 ties ? ", ties" : "");
        float *cent = frand(c, K * d, 1.0f), *pts = frand(c, n * d, 1.0f), *w = NULL;
        if (ties && K > 3) {
            memcpy(cent + 3 * d, cent + 1 * d, sizeof(float) * (size_t)d); /* duplicates */
            memcpy(cent + (K - 1) * d, cent, sizeof(float) * (size_t)d);
            for (int64_t i = 0; i < n; i += 3) /* points on centroids, some on a duplicate */
                memcpy(pts + i * d, cent + (i % K) * d, sizeof(float) * (size_t)d);
        }
        if (wm) {
            w = fnew(c, d);
            for (int64_t j = 0; j < d; j++) w[j] = (float)(0.1 + urand());
            if (wm == 2) {
                for (int64_t j = 0; j < d; j += 3) w[j] = 0.0f;
                if (K > 2) /* centroid 2 differs from 1 only where w = 0: exact ties */
                    for (int64_t j = 0; j < d; j++) cent[2 * d + j] = j % 3 ? cent[d + j] : cent[2 * d + j] + 1.0f;
            }
        }
        int32_t *want = own(c, malloc(sizeof(int32_t) * (size_t)n));
        bo_model_kmeans(pts, cent, w, n, d, K, want);
        size_t pb = sizeof(float) * (size_t)(n * d), cb = sizeof(float) * (size_t)(K * d);
        int b = cbuf(c, al64(pb) + al64(cb) + al64(sizeof(float) * (size_t)d), BT_BUF_ACT);
        int bd = cbuf(c, 64 + sizeof(int32_t) * (size_t)n + 64, BT_BUF_ACT);
        cput(c, b, 0, pts, pb);
        cput(c, b, al64(pb), cent, cb);
        struct bt_op *o = cop(c, BT_OP_KMEANS);
        o->src[0] = V(b, 0, F32, n, d);
        o->src[1] = V(b, al64(pb), F32, K, d);
        if (w) {
            cput(c, b, al64(pb) + al64(cb), w, sizeof(float) * (size_t)d);
            o->src[2] = V(b, al64(pb) + al64(cb), F32, 1, d);
        }
        o->dst = V(bd, 64, bt_fmt(BT_TYPE_I32), n, 1);
        creg(c, BO_KMEANS, o->dst, want, NULL, 0, 0);
        c->km = (struct bo_kmeans){pts, cent, w, n, d, K};
        emit(c, user);
        case_free(c);
    }
}

/* ---- a whole layer as one op list (fusion / capture / ordering / aliasing) --------------------
 * Not modelled: compared with the reference backend only, tolerance 1e-4 of each row's RMS. */
static void gen_seq(bo_emit_fn emit, void *user) {
    static const struct bt_tfmt fm[] = {{BT_TYPE_TQ2_0, 0, 0, 0}, {BT_TYPE_MTQ, 3, 128, 1},
                                        {BT_TYPE_F16, 0, 0, 0}};
    static const int pt[][2] = {{0, 5}, {7, 1}, {12, 3}};
    const int E = 256, nh = 4, nkv = 2, hd = 64, F = 512;
    for (size_t fi = 0; fi < sizeof(fm) / sizeof(fm[0]); fi++)
        for (int j = 0; j < 3; j++) {
            int act = (fi + j) % 2 ? BT_ACT_F32 : BT_ACT_Q8, pos0 = pt[j][0], nt = pt[j][1];
            int cap = 32, kvc = nkv * hd;
            char fs[40], lab[48];
            fstr(&fm[fi], fs, sizeof(fs));
            snprintf(lab, sizeof(lab), "%s%s", fs, act == BT_ACT_Q8 ? "/q8" : "");
            struct bo_case *c = cnew("seq", lab, "a layer as one list: E %d, %d/%d heads of %d, ffn %d, "
                                     "pos0 %d, ntok %d", E, nh, nkv, hd, F, pos0, nt);
            /* weights: q k v o (E x E / kvc x E), gate up (F x E), down (E x F), in one buffer */
            static const int wr[7] = {256, 128, 128, 256, 512, 512, 256}, wc[7] = {256, 256, 256, 256, 256, 256, 512};
            uint64_t wo[7], tot = 0;
            uint8_t *wp[7];
            size_t wn[7];
            for (int i = 0; i < 7; i++) {
                float *wf;
                wp[i] = own(c, gen_weights(&fm[fi], wr[i], wc[i], &wf, &wn[i]));
                free(wf);
                wo[i] = tot;
                tot += al64(wn[i]);
            }
            int bw = cbuf(c, tot, BT_BUF_WEIGHTS);
            for (int i = 0; i < 7; i++) cput(c, bw, wo[i], wp[i], wn[i]);
            /* activations: x, norms, freqs, scratch */
            int bx = cbuf(c, sizeof(float) * (size_t)(nt * E), BT_BUF_ACT);
            int bn = cbuf(c, sizeof(float) * (size_t)(2 * E + hd / 2), BT_BUF_ACT);
            size_t s1 = al64(sizeof(float) * (size_t)(nt * F));
            int bs = cbuf(c, 6 * s1, BT_BUF_ACT);
            int bk = cbuf(c, sizeof(float) * (size_t)(cap * kvc), BT_BUF_KV);
            int bv = cbuf(c, sizeof(float) * (size_t)(cap * kvc), BT_BUF_KV);
            float *x = frand(c, nt * E, 1.0f), *nw = frand(c, 2 * E + hd / 2, 0.3f);
            for (int i = 0; i < 2 * E; i++) nw[i] += 1.0f;
            for (int i = 0; i < hd / 2; i++) nw[2 * E + i] = (float)pow(10000.0, -2.0 * i / hd);
            cput(c, bx, 0, x, sizeof(float) * (size_t)(nt * E));
            cput(c, bn, 0, nw, sizeof(float) * (size_t)(2 * E + hd / 2));
            float *kv = frand(c, 2 * pos0 * kvc + 1, 1.0f);
            cput(c, bk, 0, kv, sizeof(float) * (size_t)(pos0 * kvc));
            cput(c, bv, 0, kv + pos0 * kvc, sizeof(float) * (size_t)(pos0 * kvc));
#define S(i, cols) V(bs, (i) * s1, F32, nt, cols)
#define W(i) V(bw, wo[i], fm[fi], wr[i], wc[i])
            struct bt_view X = V(bx, 0, F32, nt, E), xn = S(0, E);
            struct bt_op *o = cop(c, BT_OP_RMSNORM);
            o->src[0] = X; o->src[1] = V(bn, 0, F32, 1, E); o->dst = xn; o->eps = 1e-5f;
            for (int i = 0; i < 3; i++) { /* q k v */
                o = cop(c, BT_OP_MATMUL);
                o->src[0] = W(i); o->src[1] = xn; o->dst = S(1 + i, wr[i]); o->act = act;
                o->flags = i ? BT_OPF_SAME_INPUT : 0;
            }
            for (int i = 0; i < 2; i++) {
                o = cop(c, BT_OP_ROPE);
                o->src[0] = S(1 + i, wr[i]); o->dst = o->src[0];
                o->src[1] = V(bn, sizeof(float) * 2 * E, F32, 1, hd / 2);
                o->head_dim = hd; o->n_head = i ? nkv : nh; o->n_rot = hd; o->halves = 1; o->pos0 = pos0;
            }
            for (int i = 0; i < 2; i++) {
                o = cop(c, BT_OP_CPY);
                o->src[0] = S(2 + i, kvc);
                o->dst = V(i ? bv : bk, sizeof(float) * (size_t)(pos0 * kvc), F32, nt, kvc);
            }
            o = cop(c, BT_OP_ATTN);
            o->src[0] = S(1, E); o->src[1] = V(bk, 0, F32, cap, kvc); o->src[2] = V(bv, 0, F32, cap, kvc);
            o->dst = S(4, E); o->n_head = nh; o->n_head_kv = nkv; o->head_dim = hd; o->pos0 = pos0;
            o->scale = 0.125f;
            o = cop(c, BT_OP_MATMUL);
            o->src[0] = W(3); o->src[1] = S(4, E); o->dst = S(0, E); o->act = act;
            o = cop(c, BT_OP_ADD);
            o->src[0] = X; o->src[1] = S(0, E); o->dst = X;
            o = cop(c, BT_OP_RMSNORM);
            o->src[0] = X; o->src[1] = V(bn, sizeof(float) * E, F32, 1, E); o->dst = xn; o->eps = 1e-5f;
            for (int i = 4; i < 6; i++) {
                o = cop(c, BT_OP_MATMUL);
                o->src[0] = W(i); o->src[1] = xn; o->dst = S(i - 3, F); o->act = act;
                o->flags = i == 5 ? BT_OPF_SAME_INPUT : 0;
            }
            o = cop(c, BT_OP_SWIGLU);
            o->src[0] = S(1, F); o->src[1] = S(2, F); o->dst = o->src[0];
            o = cop(c, BT_OP_MATMUL);
            o->src[0] = W(6); o->src[1] = S(1, F); o->dst = S(3, E); o->act = act;
            o = cop(c, BT_OP_ADD);
            o->src[0] = X; o->src[1] = S(3, E); o->dst = X;
#undef S
#undef W
            /* tolerance: 1e-4 x the reference row's RMS (mag filled in by the driver: NULL) */
            creg(c, BO_TOL, X, NULL, NULL, 1e-4, 0);
            creg(c, BO_TOL, V(bk, sizeof(float) * (size_t)(pos0 * kvc), F32, nt, kvc), NULL, NULL, 1e-4, 0);
            creg(c, BO_TOL, V(bv, sizeof(float) * (size_t)(pos0 * kvc), F32, nt, kvc), NULL, NULL, 1e-4, 0);
            creg(c, BO_SCRATCH, V(bs, 0, F32, 1, (int64_t)(6 * s1 / 4)), NULL, NULL, 0, 0);
            c->threads_check = 1;
            emit(c, user);
            case_free(c);
        }
}

void bo_generate(const char *op, bo_emit_fn emit, void *user) {
    static const struct {
        const char *name;
        void (*fn)(bo_emit_fn, void *);
    } gens[] = {{"dequant", gen_dequant}, {"get_rows", gen_get_rows}, {"matmul", gen_matmul},
                {"rmsnorm", gen_rmsnorm}, {"add", NULL},              {"swiglu", NULL},
                {"rope", gen_rope},       {"cpy", gen_cpy},           {"attn", gen_attn},
                {"kmeans", gen_kmeans},   {"relu2", bo_gen_relu2},    {"quant_row", bo_gen_quant_row},
                {"scale", gen_scale},     {"gemm", bo_gen_gemm},      {"chol_inv", bo_gen_chol_inv},
                {"seq", gen_seq}};
    for (size_t i = 0; i < sizeof(gens) / sizeof(gens[0]); i++) {
        if (op && strcmp(op, gens[i].name) != 0) continue;
        seed(gens[i].name);
        if (!strcmp(gens[i].name, "add")) gen_binary(emit, user, BT_OP_ADD);
        else if (!strcmp(gens[i].name, "swiglu")) gen_binary(emit, user, BT_OP_SWIGLU);
        else gens[i].fn(emit, user);
        if (!strcmp(gens[i].name, "dequant")) bo_gen_vq_dequant(emit, user);
        if (!strcmp(gens[i].name, "get_rows")) bo_gen_vq_get_rows(emit, user);
        if (!strcmp(gens[i].name, "matmul")) bo_gen_vq_matmul(emit, user);
    }
}
