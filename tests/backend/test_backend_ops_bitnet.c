/* test_backend_ops_bitnet.c - conformance cases of BitNet b1.58's ops (ABI 2.2): RELU2
 * (max(a, 0)^2 * b; separate dst, in place on src0 or src1) and QUANT_ROW (8-bit per-token
 * activations, separate dst or in place), modelled in plain C. Marked optional: backends that do
 * not run them yet (opencl) may decline; --require makes them required. */
#include "test_backend_ops_build.h"

#include <math.h>

#define BN_RTOL 1e-6
#define BN_ATOL 1e-30

static const int64_t bn_ntok[] = {1, 2, 5, 33, 130};

void bo_gen_relu2(bo_emit_fn emit, void *user) {
    static const int64_t ns[] = {1, 7, 33, 1000, 4096};
    int k = 0;
    for (size_t a = 0; a < sizeof(ns) / sizeof(ns[0]); a++)
        for (int inpl = 0; inpl < 3; inpl++, k++) {
            int64_t n = ns[a], nt = bn_ntok[k % 5], ne = nt * n;
            struct bo_case *c = cnew("relu2", "f32", "ntok %lld, n %lld%s", (long long)nt, (long long)n,
                                     inpl == 1 ? ", dst = src0" : inpl == 2 ? ", dst = src1" : "");
            c->optional = 1;
            float *x0 = frand(c, ne, 3.0f), *x1 = frand(c, ne, 1.0f);
            if (ne > 4) { x0[0] = 0.0f; x0[1] = -0.0f; x0[2] = 1e-20f; x1[3] = 0.0f; }
            float *want = fnew(c, ne), *mag = fnew(c, ne);
            for (int64_t i = 0; i < ne; i++) {
                double g = x0[i] > 0.0f ? (double)x0[i] : 0.0;
                want[i] = (float)(g * g * x1[i]);
                mag[i] = fabsf(want[i]);
            }
            size_t xb = sizeof(float) * (size_t)ne, s = 64 + al64(xb);
            int b = cbuf(c, 3 * s + 64, BT_BUF_ACT);
            cput(c, b, 64, x0, xb);
            cput(c, b, 64 + s, x1, xb);
            struct bt_op *o = cop(c, BT_OP_RELU2);
            o->src[0] = V(b, 64, F32, nt, n);
            o->src[1] = V(b, 64 + s, F32, nt, n);
            o->dst = inpl == 1 ? o->src[0] : inpl == 2 ? o->src[1] : V(b, 64 + 2 * s, F32, nt, n);
            creg(c, BO_TOL, o->dst, want, mag, BN_RTOL, BN_ATOL);
            emit(c, user);
            case_free(c);
        }
}

/* the model: s = 127 / max(amax, 1e-5) in f32 (the reference's arithmetic), rounding half to
 * even; the values are q / s, so a backend that rounds one product differently is off by 1/s
 * (far beyond the tolerance) */
static void model_quant_row(const float *x, int64_t n, float *y, float *mag) {
    float mx = 0.0f;
    for (int64_t i = 0; i < n; i++)
        if (fabsf(x[i]) > mx) mx = fabsf(x[i]);
    volatile float s = 127.0f / (mx > 1e-5f ? mx : 1e-5f);
    for (int64_t i = 0; i < n; i++) {
        volatile float p = x[i] * s;
        double q = nearbyint((double)p); /* the default rounding mode: half to even */
        q = q > 127.0 ? 127.0 : q < -128.0 ? -128.0 : q;
        y[i] = (float)(q / (double)s);
        mag[i] = fabsf(y[i]) + mx / 127.0f * 1e-3f;
    }
}

void bo_gen_quant_row(bo_emit_fn emit, void *user) {
    static const int64_t ns[] = {1, 7, 256, 1000, 2560, 6912};
    int k = 0;
    for (size_t a = 0; a < sizeof(ns) / sizeof(ns[0]); a++)
        for (int inpl = 0; inpl < 2; inpl++, k++) {
            int64_t n = ns[a], nt = bn_ntok[k % 5], ne = nt * n;
            struct bo_case *c = cnew("quant_row", "f32", "ntok %lld, n %lld%s", (long long)nt,
                                     (long long)n, inpl ? ", in place" : "");
            c->optional = 1;
            float *x = frand(c, ne, k % 3 == 2 ? 1e-7f : 2.0f); /* tiny rows: the 1e-5 floor */
            if (ne > 8) { x[1] = 0.0f; x[2] = -x[3]; x[4] = x[5] * 64.0f; }
            float *want = fnew(c, ne), *mag = fnew(c, ne);
            for (int64_t t = 0; t < nt; t++) model_quant_row(x + t * n, n, want + t * n, mag + t * n);
            size_t xb = sizeof(float) * (size_t)ne, s = 64 + al64(xb);
            int b = cbuf(c, 2 * s + 64, BT_BUF_ACT);
            cput(c, b, 64, x, xb);
            struct bt_op *o = cop(c, BT_OP_QUANT_ROW);
            o->src[0] = V(b, 64, F32, nt, n);
            o->dst = inpl ? o->src[0] : V(b, 64 + s, F32, nt, n);
            creg(c, BO_TOL, o->dst, want, mag, BN_RTOL, BN_ATOL);
            emit(c, user);
            case_free(c);
        }
}
