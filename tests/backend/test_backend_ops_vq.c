/* test_backend_ops_vq.c - conformance cases of the vq weight format (bt's VPTQ-style vector
 * quantization): random codes, codebooks, permutations, scales and biases, outlier codes and
 * tails over a set of parameters (vector lengths 2..16, index bits 4..16, residual codebooks,
 * groups, outliers with their own vector length, rows not a multiple of v; sizes that take the
 * AVX2 kernel's multi-block passes and remainders). Modelled with the
 * core's reference decoder (bt_fmt_rows_to_f32): DEQUANT and GET_ROWS bit-identical, MATMUL
 * within the matmul tolerance for f32 and int8 activations and 1..33 tokens. */
#include "test_backend_ops_build.h"

struct vq_set {
    uint32_t v, b1, b2, G, flags, n_out, v0, b0;
    int64_t  rows, cols;
};

static const struct vq_set sets[] = {
    {4, 8, 0, 1, 0, 0, 0, 0, 16, 64},
    {8, 10, 6, 2, BT_VQ_NORM | BT_VQ_PERM, 0, 0, 0, 24, 96},
    {6, 5, 3, 1, BT_VQ_NORM | BT_VQ_PERM | BT_VQ_TAIL, 8, 4, 7, 34, 40},
    {16, 12, 4, 1, BT_VQ_NORM, 0, 0, 0, 48, 256},
    {12, 13, 0, 4, BT_VQ_PERM | BT_VQ_TAIL, 16, 8, 9, 100, 512},
    {2, 4, 0, 1, BT_VQ_TAIL, 0, 0, 0, 7, 33},
    {8, 16, 0, 1, BT_VQ_NORM | BT_VQ_PERM, 0, 0, 0, 256, 1024},
    {4, 8, 4, 2, BT_VQ_NORM | BT_VQ_PERM, 4, 4, 8, 132, 512},
    /* the AVX2 kernel's 8-row-block passes (v 4 and 8, 8- and 16-bit codes, any t, residual),
     * with whole row blocks left over, codes after the last 64-bit word and a tail */
    {4, 8, 0, 1, 0, 0, 0, 0, 72, 100},
    {8, 8, 8, 1, BT_VQ_NORM, 0, 0, 0, 136, 70},
    {4, 12, 0, 3, BT_VQ_PERM | BT_VQ_TAIL, 0, 0, 0, 147, 99},
    {8, 8, 0, 1, 0, 2, 4, 6, 80, 42},
    {4, 16, 0, 1, 0, 0, 0, 0, 40, 37},
};

struct vq_w {
    struct bt_tfmt f;
    uint8_t       *data;            /* rows x R */
    uint8_t       *part[BT_MAX_PARTS];
    uint64_t       nb, pb[BT_MAX_PARTS];
    uint32_t       np;
    float         *wf;              /* decoded by the core's reference */
};

static uint16_t h16(float x) { return bt_f32_to_fp16(x); }

static void put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }

/* random tensor of set s; its decoding by bt_fmt_rows_to_f32 */
static void gen_vq_w(const struct vq_set *s, struct vq_w *w) {
    struct bt_vq_layout L;
    memset(w, 0, sizeof(*w));
    w->f = bt_vq_tfmt(s->v, s->b1, s->b2, s->G, s->flags, s->n_out, s->v0, s->b0);
    if (!bt_vq_layout(&w->f, s->rows, s->cols, &L)) abort();
    w->nb = (uint64_t)s->rows * L.R;
    w->data = calloc(1, w->nb + 1);
    w->np = L.n_parts;
    for (uint32_t k = 0; k < L.n_parts; k++) {
        w->pb[k] = L.part_bytes[k];
        w->part[k] = calloc(1, w->pb[k] + 1);
        if (!w->part[k]) abort();
    }
    if (!w->data) abort();
    for (uint64_t i = 0; i < w->nb; i++) w->data[i] = (uint8_t)rnd(); /* padding bits too */
    for (uint64_t i = 0; i < L.part_bytes[L.p_cb] / 2; i++) put16(w->part[L.p_cb] + 2 * i, h16(nrand() * 0.5f));
    if (L.p_col >= 0) {
        uint8_t *cp = w->part[L.p_col];
        if (L.col_perm != UINT64_MAX) {
            int64_t *pm = malloc(sizeof(int64_t) * (size_t)s->cols);
            if (!pm) abort();
            for (int64_t i = 0; i < s->cols; i++) pm[i] = i;
            for (int64_t i = s->cols - 1; i > 0; i--) {
                int64_t j = irand(i + 1), t = pm[i];
                pm[i] = pm[j];
                pm[j] = t;
            }
            for (int64_t i = 0; i < s->cols; i++) put16(cp + L.col_perm + 2 * i, (uint16_t)pm[i]);
            free(pm);
        }
        if (L.col_scale != UINT64_MAX)
            for (int64_t i = 0; i < s->cols; i++) {
                put16(cp + L.col_scale + 2 * i, h16((float)(0.25 + 2.0 * urand())));
                put16(cp + L.col_bias + 2 * i, h16(nrand() * 0.1f));
            }
    }
    if (L.p_out >= 0)
        for (uint64_t i = 0; i < L.part_bytes[L.p_out] / 2; i++)
            put16(w->part[L.p_out] + 2 * i, (uint16_t)irand((int64_t)1 << L.b0));
    if (L.p_tail >= 0)
        for (uint64_t i = 0; i < L.part_bytes[L.p_tail]; i++) w->part[L.p_tail][i] = (uint8_t)rnd();
    w->wf = malloc(sizeof(float) * (size_t)(s->rows * s->cols));
    const void *pp[BT_MAX_PARTS] = {w->part[0], w->part[1], w->part[2], w->part[3]};
    if (!w->wf || bt_fmt_rows_to_f32(&w->f, pp, w->data, s->rows, s->cols, 0, s->rows, w->wf)) abort();
}

/* the weights and their parts into buffers of case c (weights at woff); the op view */
static struct bt_view put_vq(struct bo_case *c, struct vq_w *w, int64_t rows, int64_t cols, uint64_t woff) {
    int bw = cbuf(c, woff + w->nb + 64, BT_BUF_WEIGHTS);
    cput(c, bw, woff, w->data, w->nb);
    struct bt_view v = V(bw, woff, w->f, rows, cols);
    for (uint32_t k = 0; k < w->np; k++) {
        int b = cbuf(c, w->pb[k], BT_BUF_WEIGHTS);
        cput(c, b, 0, w->part[k], w->pb[k]);
        v.parts[k] = BO_BUF(b);
    }
    own(c, w->data);
    for (uint32_t k = 0; k < w->np; k++) own(c, w->part[k]);
    own(c, w->wf);
    return v;
}

static void vq_label(const struct vq_set *s, char *lab, size_t n) {
    struct bt_tfmt f = bt_vq_tfmt(s->v, s->b1, s->b2, s->G, s->flags, s->n_out, s->v0, s->b0);
    bt_fmt_str(&f, lab, n);
}

void bo_gen_vq_dequant(bo_emit_fn emit, void *user) {
    for (size_t i = 0; i < sizeof(sets) / sizeof(sets[0]); i++) {
        const struct vq_set *s = &sets[i];
        char lab[40];
        vq_label(s, lab, sizeof(lab));
        struct vq_w w;
        gen_vq_w(s, &w);
        struct bo_case *c = cnew("dequant", lab, "%lld x %lld", (long long)s->rows, (long long)s->cols);
        struct bt_view wv = put_vq(c, &w, s->rows, s->cols, i % 2 ? 192 : 0);
        int bd = cbuf(c, 128 + sizeof(float) * (size_t)(s->rows * s->cols) + 64, BT_BUF_ACT);
        struct bt_op *o = cop(c, BT_OP_DEQUANT);
        o->src[0] = wv;
        o->dst = V(bd, 128, F32, s->rows, s->cols);
        creg(c, BO_EXACT, o->dst, w.wf, NULL, 0, 0);
        c->optional = 1;
        emit(c, user);
        case_free(c);
    }
}

void bo_gen_vq_get_rows(bo_emit_fn emit, void *user) {
    for (size_t i = 0; i < sizeof(sets) / sizeof(sets[0]); i++) {
        const struct vq_set *s = &sets[i];
        char lab[40];
        vq_label(s, lab, sizeof(lab));
        struct vq_w w;
        gen_vq_w(s, &w);
        int64_t nt = 5;
        struct bo_case *c = cnew("get_rows", lab, "%lld x %lld, %lld ids", (long long)s->rows,
                                 (long long)s->cols, (long long)nt);
        struct bt_view wv = put_vq(c, &w, s->rows, s->cols, 0);
        int32_t *ids = own(c, malloc(sizeof(int32_t) * (size_t)nt));
        float *want = fnew(c, nt * s->cols);
        for (int64_t t = 0; t < nt; t++) {
            ids[t] = t == 0 ? (int32_t)(s->rows - 1) : t == 1 ? 0 : (int32_t)irand(s->rows);
            memcpy(want + t * s->cols, w.wf + ids[t] * s->cols, sizeof(float) * (size_t)s->cols);
        }
        int bd = cbuf(c, 64 + sizeof(float) * (size_t)(nt * s->cols) + 64, BT_BUF_ACT);
        struct bt_op *o = cop(c, BT_OP_GET_ROWS);
        o->src[0] = wv;
        o->dst = V(bd, 64, F32, nt, s->cols);
        o->ids = ids;
        creg(c, BO_EXACT, o->dst, want, NULL, 0, 0);
        c->optional = 1;
        emit(c, user);
        case_free(c);
    }
}

void bo_gen_vq_matmul(bo_emit_fn emit, void *user) {
    static const int64_t ntoks[] = {1, 2, 5, 33};
    for (size_t i = 0; i < sizeof(sets) / sizeof(sets[0]); i++) {
        const struct vq_set *s = &sets[i];
        for (int k = 0; k < 4; k++)
            for (int act = 0; act < 2; act++) {
                if (act == BT_ACT_Q8 && s->cols % BT_ACT_Q8_BLOCK) continue;
                int64_t nt = ntoks[(k + i) % 4];
                char lab[48], fs[40];
                vq_label(s, fs, sizeof(fs));
                snprintf(lab, sizeof(lab), "%s%s", fs, act == BT_ACT_Q8 ? "/q8" : "");
                struct vq_w w;
                gen_vq_w(s, &w);
                struct bo_case *c = cnew("matmul", lab, "%lld x %lld, ntok %lld", (long long)s->rows,
                                         (long long)s->cols, (long long)nt);
                struct bt_view wv = put_vq(c, &w, s->rows, s->cols, k % 2 ? 256 : 0);
                float *X = frand(c, nt * s->cols, 1.0f), *want = fnew(c, nt * s->rows),
                      *mag = fnew(c, nt * s->rows);
                bo_model_matmul(w.wf, s->rows, s->cols, X, nt, act, want, mag);
                int bx = cbuf(c, sizeof(float) * (size_t)(nt * s->cols) + 64, BT_BUF_ACT);
                int by = cbuf(c, 64 + sizeof(float) * (size_t)(nt * s->rows) + 64, BT_BUF_ACT);
                cput(c, bx, 0, X, sizeof(float) * (size_t)(nt * s->cols));
                struct bt_op *o = cop(c, BT_OP_MATMUL);
                o->src[0] = wv;
                o->src[1] = V(bx, 0, F32, nt, s->cols);
                o->dst = V(by, 64, F32, nt, s->rows);
                o->act = act;
                creg(c, BO_TOL, o->dst, want, mag, 1e-4, 1e-6);
                c->threads_check = nt > 1;
                c->optional = 1;
                emit(c, user);
                case_free(c);
            }
    }
}
