/* bt_vq.c - bt's vector-quantized weight format "vq" (VPTQ-style residual VQ): parameter checks,
 * the byte layout of a tensor (bt_vq_layout, shared by the reference decoder, the kernels and
 * the quantizer), the packed-code bitstream and the reference decoder. docs/formats.md "vq"
 * describes the bytes. */
#include "bt_types.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void vq_params(const struct bt_tfmt *f, struct bt_vq_layout *L) {
    memset(L, 0, sizeof(*L));
    L->v = f->planes & 0xff;
    L->b1 = (f->planes >> 8) & 0xff;
    L->b2 = (f->planes >> 16) & 0xff;
    L->t = L->b1 + L->b2;
    L->G = f->block & 0xffff;
    L->flags = (f->block >> 16) & 0xff;
    L->n_out = f->layout & 0xffff;
    L->v0 = (f->layout >> 16) & 0xff;
    L->b0 = (f->layout >> 24) & 0xff;
}

int bt_vq_params_ok(const struct bt_tfmt *f) {
    struct bt_vq_layout L;
    if (f->type != BT_TYPE_VQ || (f->planes >> 24)) return 0;
    vq_params(f, &L);
    if (L.v < 1 || L.v > BT_VQ_MAX_V || L.b1 < 1 || L.b1 > 16 || L.b2 > 16) return 0;
    if (L.G < 1 || (L.flags & ~(BT_VQ_NORM | BT_VQ_PERM | BT_VQ_TAIL))) return 0;
    if (L.n_out) {
        if (L.v0 < 1 || L.v0 > BT_VQ_MAX_V || L.b0 < 1 || L.b0 > 16) return 0;
    } else if (L.v0 || L.b0) {
        return 0;
    }
    return 1;
}

int bt_vq_layout(const struct bt_tfmt *f, int64_t rows, int64_t cols, struct bt_vq_layout *L) {
    if (!bt_vq_params_ok(f) || cols <= 0 || cols > 65536 || rows < 0) return 0;
    vq_params(f, L);
    L->rows = rows;
    L->cols = cols;
    if ((int64_t)L->n_out >= cols) return 0;
    L->ncode = cols - L->n_out;
    if (L->ncode % L->G) return 0;
    L->gs = L->ncode / L->G;
    L->S = ((uint64_t)L->ncode * L->t + 7) / 8;
    L->R = (L->S + L->v - 1) / L->v;
    if (rows > 0) {
        L->nrb = (rows + L->v - 1) / L->v;
        if (!!(rows % L->v) != !!(L->flags & BT_VQ_TAIL)) return 0;
    }
    uint64_t K1 = 1ull << L->b1, K2 = L->b2 ? 1ull << L->b2 : 0, K0 = L->n_out ? 1ull << L->b0 : 0;
    uint32_t k = 0;
    L->p_cb = (int)k;
    L->cb_main = 0;
    L->cb_res = (uint64_t)L->G * K1 * L->v * 2;
    L->cb_out = L->cb_res + (uint64_t)L->G * K2 * L->v * 2;
    L->part_bytes[k++] = L->cb_out + K0 * L->v0 * 2;
    L->p_col = L->p_out = L->p_tail = -1;
    L->col_perm = L->col_scale = L->col_bias = UINT64_MAX;
    if (L->flags & (BT_VQ_NORM | BT_VQ_PERM)) {
        uint64_t o = 0;
        if (L->flags & BT_VQ_PERM) { L->col_perm = o; o += (uint64_t)cols * 2; }
        if (L->flags & BT_VQ_NORM) {
            L->col_scale = o; o += (uint64_t)cols * 2;
            L->col_bias = o; o += (uint64_t)cols * 2;
        }
        L->p_col = (int)k;
        L->part_bytes[k++] = o;
    }
    if (L->n_out) {
        L->nrb0 = (rows + L->v0 - 1) / L->v0;
        L->p_out = (int)k;
        L->part_bytes[k++] = (uint64_t)(L->nrb0 > 0 ? L->nrb0 : 1) * L->n_out * 2;
    }
    if (L->flags & BT_VQ_TAIL) {
        L->p_tail = (int)k;
        L->part_bytes[k++] = L->S;
    }
    L->n_parts = k;
    return 1;
}

uint32_t bt_vq_n_parts(const struct bt_tfmt *f) {
    if (!bt_vq_params_ok(f)) return 0;
    uint32_t fl = (f->block >> 16) & 0xff;
    return 1 + !!(fl & (BT_VQ_NORM | BT_VQ_PERM)) + !!(f->layout & 0xffff) + !!(fl & BT_VQ_TAIL);
}

bt_status bt_vq_part_info(const struct bt_tfmt *f, int64_t rows, int64_t cols, uint32_t k,
                          const char **name, uint64_t *nbytes) {
    struct bt_vq_layout L;
    if (!bt_vq_layout(f, rows, cols, &L) || k >= L.n_parts) return BT_E_INVAL;
    *nbytes = L.part_bytes[k];
    *name = (int)k == L.p_cb ? "codebook" : (int)k == L.p_col ? "columns"
            : (int)k == L.p_out ? "outliers" : "tail";
    return BT_OK;
}

size_t bt_vq_row_bytes(const struct bt_tfmt *f, int64_t cols) {
    struct bt_vq_layout L;
    return bt_vq_layout(f, 0, cols, &L) ? (size_t)L.R : 0;
}

void bt_vq_describe(const struct bt_tfmt *f, char *buf, size_t n) {
    struct bt_vq_layout L;
    vq_params(f, &L);
    char res[16] = "", grp[16] = "", out[40] = "";
    if (L.b2) snprintf(res, sizeof(res), "r%u", L.b2);
    if (L.G > 1) snprintf(grp, sizeof(grp), "g%u", L.G);
    if (L.n_out) snprintf(out, sizeof(out), "o%uv%ux%u", L.n_out, L.v0, L.b0);
    snprintf(buf, n, "vq%ux%u%s%s%s%s%s", L.v, L.b1, res, grp, out, L.flags & BT_VQ_NORM ? "n" : "",
             L.flags & BT_VQ_PERM ? "p" : "");
}

/* ---- the code stream ---------------------------------------------------------------------- */
uint32_t bt_vq_get_code(const uint8_t *s, uint64_t bit, uint32_t t) {
    uint64_t acc = 0;
    const uint8_t *p = s + bit / 8;
    uint32_t sh = (uint32_t)(bit % 8), need = (sh + t + 7) / 8;
    for (uint32_t i = 0; i < need; i++) acc |= (uint64_t)p[i] << (8 * i);
    return (uint32_t)(acc >> sh) & (uint32_t)((1ull << t) - 1);
}

void bt_vq_put_code(uint8_t *s, uint64_t bit, uint32_t t, uint32_t code) {
    for (uint32_t i = 0; i < t; i++, bit++)
        if (code >> i & 1) s[bit / 8] |= (uint8_t)(1u << (bit % 8));
        else s[bit / 8] &= (uint8_t)~(1u << (bit % 8));
}

const uint8_t *bt_vq_stream(const struct bt_vq_layout *L, const void *data, const void *const *parts,
                            int64_t rb) {
    if (rb < 0 || rb >= L->nrb) return NULL;
    if ((rb + 1) * (int64_t)L->v > L->rows) return L->p_tail >= 0 ? parts[L->p_tail] : NULL;
    return (const uint8_t *)data + (uint64_t)rb * L->v * L->R;
}

static float h2f(const uint8_t *p) { return bt_fp16_to_f32((uint16_t)(p[0] | (p[1] << 8))); }

/* original column of permuted position p */
static int64_t col_of(const struct bt_vq_layout *L, const uint8_t *cp, int64_t p) {
    if (!cp || L->col_perm == UINT64_MAX) return p;
    const uint8_t *q = cp + L->col_perm + 2 * p;
    return (int64_t)(q[0] | (q[1] << 8));
}

bt_status bt_vq_check_parts(const struct bt_vq_layout *L, const void *const *parts) {
    if (!parts) return BT_E_INVAL;
    for (uint32_t k = 0; k < L->n_parts; k++)
        if (!parts[k]) return BT_E_INVAL;
    if (L->col_perm != UINT64_MAX) { /* a permutation of 0..cols-1 */
        uint8_t *seen = calloc((size_t)L->cols, 1);
        if (!seen) return BT_E_NOMEM;
        const uint8_t *cp = parts[L->p_col];
        bt_status st = BT_OK;
        for (int64_t p = 0; p < L->cols && !st; p++) {
            int64_t c = col_of(L, cp, p);
            if (c >= L->cols || seen[c]) st = BT_E_FORMAT;
            else seen[c] = 1;
        }
        free(seen);
        return st;
    }
    return BT_OK;
}

bt_status bt_vq_to_f32_rows(const struct bt_tfmt *f, const void *const *parts, const void *data,
                            int64_t rows, int64_t cols, int64_t row0, int64_t nrows, float *dst) {
    struct bt_vq_layout L;
    if (!bt_vq_layout(f, rows, cols, &L) || !parts || row0 < 0 || row0 + nrows > rows) return BT_E_INVAL;
    for (uint32_t k = 0; k < L.n_parts; k++)
        if (!parts[k]) return BT_E_INVAL;
    const uint8_t *cb = parts[L.p_cb], *cp = L.p_col >= 0 ? parts[L.p_col] : NULL;
    const uint8_t *oc = L.p_out >= 0 ? parts[L.p_out] : NULL;
    uint64_t K1 = 1ull << L.b1, K2 = L.b2 ? 1ull << L.b2 : 0, m1 = K1 - 1;
    int64_t r1 = row0 + nrows;
    for (int64_t rb = row0 / L.v; rb * L.v < r1; rb++) {
        const uint8_t *s = bt_vq_stream(&L, data, parts, rb);
        if (!s) return BT_E_INVAL;
        for (int64_t p = 0; p < L.ncode; p++) {
            uint32_t code = bt_vq_get_code(s, (uint64_t)p * L.t, L.t);
            int64_t g = p / L.gs, col = col_of(&L, cp, L.n_out + p);
            if (col >= cols) return BT_E_FORMAT;
            const uint8_t *cm = cb + L.cb_main + ((uint64_t)g * K1 + (code & m1)) * L.v * 2;
            const uint8_t *cr = L.b2 ? cb + L.cb_res + ((uint64_t)g * K2 + (code >> L.b1)) * L.v * 2 : NULL;
            for (uint32_t e = 0; e < L.v; e++) {
                int64_t r = rb * L.v + e;
                if (r < row0 || r >= r1) continue;
                float w = h2f(cm + 2 * e);
                if (cr) w = w + h2f(cr + 2 * e);
                dst[(r - row0) * cols + col] = w;
            }
        }
    }
    for (int64_t rb = row0 / (L.n_out ? L.v0 : 1); L.n_out && rb * L.v0 < r1; rb++) {
        for (int64_t p = 0; p < L.n_out; p++) {
            const uint8_t *q = oc + ((uint64_t)rb * L.n_out + p) * 2;
            uint32_t code = (uint32_t)(q[0] | (q[1] << 8));
            int64_t col = col_of(&L, cp, p);
            if (col >= cols || code >> L.b0) return BT_E_FORMAT;
            const uint8_t *co = cb + L.cb_out + (uint64_t)code * L.v0 * 2;
            for (uint32_t e = 0; e < L.v0; e++) {
                int64_t r = rb * L.v0 + e;
                if (r >= row0 && r < r1) dst[(r - row0) * cols + col] = h2f(co + 2 * e);
            }
        }
    }
    if (L.flags & BT_VQ_NORM) {
        const uint8_t *sc = cp + L.col_scale, *bi = cp + L.col_bias;
        for (int64_t c = 0; c < cols; c++) {
            float s = h2f(sc + 2 * c), b = h2f(bi + 2 * c);
            for (int64_t r = 0; r < nrows; r++) dst[r * cols + c] = dst[r * cols + c] * s + b;
        }
    }
    return BT_OK;
}

/* finite fp16 (not inf or nan) */
static int f16_ok(const uint8_t *p) { return ((p[1] >> 2) & 0x1f) != 0x1f; }

bt_status bt_vq_check(const struct bt_tfmt *f, const void *const *parts, const void *data, int64_t rows,
                      int64_t cols, char *why, size_t n) {
    struct bt_vq_layout L;
    (void)data;
    if (!bt_vq_layout(f, rows, cols, &L)) {
        snprintf(why, n, "vq parameters do not fit %lld x %lld", (long long)rows, (long long)cols);
        return BT_E_FORMAT;
    }
    bt_status st = bt_vq_check_parts(&L, parts);
    if (st) {
        snprintf(why, n, st == BT_E_NOMEM ? "out of memory" : "the column permutation is not a permutation");
        return st == BT_E_NOMEM ? st : BT_E_FORMAT;
    }
    const uint8_t *cb = parts[L.p_cb];
    for (uint64_t i = 0; i < L.part_bytes[L.p_cb]; i += 2)
        if (!f16_ok(cb + i)) { snprintf(why, n, "codebook value %llu is inf or nan", (unsigned long long)(i / 2)); return BT_E_FORMAT; }
    if (L.col_scale != UINT64_MAX) {
        const uint8_t *cp = parts[L.p_col];
        for (int64_t j = 0; j < 2 * cols; j++)
            if (!f16_ok(cp + L.col_scale + 2 * j)) {
                snprintf(why, n, "column %lld: %s is inf or nan", (long long)(j % cols), j < cols ? "scale" : "bias");
                return BT_E_FORMAT;
            }
    }
    if (L.p_out >= 0) {
        const uint8_t *o = parts[L.p_out];
        for (uint64_t i = 0; i < L.part_bytes[L.p_out]; i += 2)
            if ((uint32_t)(o[i] | (o[i + 1] << 8)) >> L.b0) {
                snprintf(why, n, "outlier code %llu is beyond the %u-entry outlier codebook", (unsigned long long)(i / 2), 1u << L.b0);
                return BT_E_FORMAT;
            }
    }
    return BT_OK;
}
