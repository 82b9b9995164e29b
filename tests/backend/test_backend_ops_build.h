/* test_backend_ops_build.h - case building for the conformance generators (random numbers with
 * one seed per op, buffers, views, ops, output regions). Static: each generator file has its own
 * random stream. */
#ifndef TEST_BACKEND_OPS_BUILD_H
#define TEST_BACKEND_OPS_BUILD_H

#include "test_backend_ops.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- random numbers (xorshift64*, one seed per op) ------------------------------------------ */
static uint64_t rs = 1;
static inline void seed(const char *s) {
    rs = 0xcbf29ce484222325ull;
    for (; *s; s++) rs = (rs ^ (uint8_t)*s) * 0x100000001b3ull;
    if (!rs) rs = 1;
}
static inline uint64_t rnd(void) {
    rs ^= rs >> 12;
    rs ^= rs << 25;
    rs ^= rs >> 27;
    return rs * 0x2545f4914f6cdd1dull;
}
static inline double urand(void) { return (double)(rnd() >> 11) * (1.0 / 9007199254740992.0); }
static inline float nrand(void) { return (float)((urand() + urand() + urand() - 1.5) * 2.0); }
static inline int64_t irand(int64_t n) { return (int64_t)(rnd() % (uint64_t)n); }
static inline int8_t trand(void) { return (int8_t)(rnd() % 3) - 1; }

/* ---- case building ------------------------------------------------------------------------- */
static const struct bt_tfmt F32 __attribute__((unused)) = {BT_TYPE_F32, 0, 0, 0};

static inline struct bo_case *cnew(const char *op, const char *fmt, const char *desc, ...) {
    struct bo_case *c = calloc(1, sizeof(*c));
    if (!c) abort();
    snprintf(c->op, sizeof(c->op), "%s", op);
    snprintf(c->fmt, sizeof(c->fmt), "%s", fmt);
    va_list ap;
    va_start(ap, desc);
    vsnprintf(c->desc, sizeof(c->desc), desc, ap);
    va_end(ap);
    return c;
}
static inline void *own(struct bo_case *c, void *p) {
    if (!p || c->nown == BO_MAX_OWN) abort();
    c->own[c->nown++] = p;
    return p;
}
static inline float *fnew(struct bo_case *c, int64_t n) {
    return own(c, malloc(sizeof(float) * (size_t)(n > 0 ? n : 1)));
}
static inline void case_free(struct bo_case *c) {
    for (int i = 0; i < c->nbuf; i++) free(c->img[i]);
    for (int i = 0; i < c->nown; i++) free(c->own[i]);
    free(c);
}
/* a buffer of n bytes, all 0xff (NaN as f32: reading it shows, writing it shows) */
static inline int cbuf(struct bo_case *c, size_t n, uint32_t usage) {
    if (c->nbuf == BO_MAX_BUFS) abort();
    size_t cap = (n + 63) / 64 * 64;
    uint8_t *p = aligned_alloc(64, cap ? cap : 64);
    if (!p) abort();
    memset(p, 0xff, cap ? cap : 64);
    c->img[c->nbuf] = p;
    c->size[c->nbuf] = n;
    c->usage[c->nbuf] = usage;
    return c->nbuf++;
}
static inline void cput(struct bo_case *c, int b, uint64_t off, const void *src, size_t n) {
    if (off + n > c->size[b]) abort();
    memcpy(c->img[b] + off, src, n);
}
static inline struct bt_view V(int b, uint64_t off, struct bt_tfmt f, int64_t rows, int64_t cols) {
    return bt_view_of(BO_BUF(b), off, f, rows, cols);
}
static inline struct bt_op *cop(struct bo_case *c, uint32_t code) {
    if (c->nops == BO_MAX_OPS) abort();
    struct bt_op *o = &c->ops[c->nops++];
    memset(o, 0, sizeof(*o));
    o->code = code;
    return o;
}
/* an output region over view v (F32 or I32 elements); returns its index */
static inline int creg(struct bo_case *c, int kind, struct bt_view v, const void *want, const float *mag,
                double rtol, double atol) {
    if (c->nreg == BO_MAX_REGS) abort();
    struct bo_region *r = &c->reg[c->nreg];
    r->buf = BO_BUF_INDEX(v.buf);
    r->off = v.off;
    r->n = v.rows * v.cols;
    r->cols = v.cols;
    r->kind = kind;
    r->want = want;
    r->mag = mag;
    r->rtol = rtol;
    r->atol = atol;
    r->same_as = -1;
    return c->nreg++;
}
static inline float *frand(struct bo_case *c, int64_t n, float scale) {
    float *x = fnew(c, n);
    for (int64_t i = 0; i < n; i++) x[i] = nrand() * scale;
    return x;
}
static inline size_t al64(size_t n) { return (n + 63) / 64 * 64; }

#endif
