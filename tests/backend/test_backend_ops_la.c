/* test_backend_ops_la.c - conformance cases of the second-order engine's ops (ABI 2.3): GEMM
 * (every transpose combination, alpha / beta incl. beta 0 over a NaN destination, the engine's
 * lazy-batch shape) against a double-precision model, and CHOL_INV (L^-1 of well-conditioned
 * SPD matrices up to 300 x 300 whose upper triangles hold 1e30 - only the lower is read - and
 * matrices that stop being positive definite at a known column: the info must name it).
 * Optional: backends without them may decline; --require makes them required. */
#include "test_backend_ops_build.h"

#include <math.h>

#define LA_RTOL 2e-5
#define LA_ATOL 1e-30

void bo_gen_gemm(bo_emit_fn emit, void *user) {
    /* M, N, K, flags, alpha, beta */
    static const struct { int64_t m, n, k; uint32_t fl; float al, be; } cs[] = {
        {1, 1, 1, 0, 1.0f, 0.0f},       {7, 5, 3, BT_OPF_TRANS_A, 0.5f, 0.0f},
        {33, 17, 64, BT_OPF_TRANS_B, -1.0f, 1.0f},
        {65, 130, 129, BT_OPF_TRANS_A | BT_OPF_TRANS_B, 2.0f, -0.5f},
        {300, 64, 128, BT_OPF_TRANS_A, -1.0f, 1.0f}, /* the engine's lazy batch */
        {128, 256, 100, 0, 1.0f, 1.0f},  {3, 1000, 9, BT_OPF_TRANS_B, 1.0f, 0.0f},
    };
    for (size_t i = 0; i < sizeof(cs) / sizeof(cs[0]); i++) {
        int64_t M = cs[i].m, N = cs[i].n, K = cs[i].k;
        int ta = (cs[i].fl & BT_OPF_TRANS_A) != 0, tb = (cs[i].fl & BT_OPF_TRANS_B) != 0;
        struct bo_case *c = cnew("gemm", "f32", "%lld x %lld x %lld%s%s, alpha %g, beta %g", (long long)M,
                                 (long long)N, (long long)K, ta ? ", A^T" : "", tb ? ", B^T" : "",
                                 cs[i].al, cs[i].be);
        c->optional = 1;
        float *A = frand(c, M * K, 1.0f), *B = frand(c, K * N, 1.0f), *C0 = frand(c, M * N, 1.0f);
        float *want = fnew(c, M * N), *mag = fnew(c, M * N);
        for (int64_t r = 0; r < M; r++)
            for (int64_t s = 0; s < N; s++) {
                double acc = 0, am = 0;
                for (int64_t k = 0; k < K; k++) {
                    double a = ta ? A[k * M + r] : A[r * K + k], b = tb ? B[s * K + k] : B[k * N + s];
                    acc += a * b;
                    am += fabs(a * b);
                }
                double cv = cs[i].be != 0.0f ? (double)cs[i].be * C0[r * N + s] : 0.0;
                want[r * N + s] = (float)(cs[i].al * acc + cv);
                mag[r * N + s] = (float)(fabs(cs[i].al) * am + fabs(cv));
            }
        size_t ab = al64(sizeof(float) * (size_t)(M * K)), bb = al64(sizeof(float) * (size_t)(K * N));
        size_t cb = sizeof(float) * (size_t)(M * N);
        int b = cbuf(c, 64 + ab + bb + cb + 64, BT_BUF_ACT);
        cput(c, b, 64, A, sizeof(float) * (size_t)(M * K));
        cput(c, b, 64 + ab, B, sizeof(float) * (size_t)(K * N));
        if (cs[i].be != 0.0f) cput(c, b, 64 + ab + bb, C0, cb); /* beta 0: C stays NaN (never read) */
        struct bt_op *o = cop(c, BT_OP_GEMM);
        o->flags = cs[i].fl;
        o->scale = cs[i].al;
        o->eps = cs[i].be;
        o->src[0] = ta ? V(b, 64, F32, K, M) : V(b, 64, F32, M, K);
        o->src[1] = tb ? V(b, 64 + ab, F32, N, K) : V(b, 64 + ab, F32, K, N);
        o->dst = V(b, 64 + ab + bb, F32, M, N);
        creg(c, BO_TOL, o->dst, want, mag, LA_RTOL, LA_ATOL);
        emit(c, user);
        case_free(c);
    }
}

/* X = L^-1 in double for the SPD A (n x n); 0, or the 1-based column where A is not SPD */
static int64_t model_chol_inv(const float *A, int64_t n, double *L, double *X) {
    for (int64_t j = 0; j < n; j++) {
        double s = A[j * n + j];
        for (int64_t k = 0; k < j; k++) s -= L[j * n + k] * L[j * n + k];
        if (!(s > 0)) return j + 1;
        L[j * n + j] = sqrt(s);
        for (int64_t i = j + 1; i < n; i++) {
            double t = A[i * n + j];
            for (int64_t k = 0; k < j; k++) t -= L[i * n + k] * L[j * n + k];
            L[i * n + j] = t / L[j * n + j];
        }
    }
    for (int64_t c = 0; c < n; c++) /* forward substitution, column c of the identity */
        for (int64_t i = 0; i < n; i++) {
            double t = i == c ? 1.0 : 0.0;
            for (int64_t k = c; k < i; k++) t -= L[i * n + k] * X[k * n + c];
            X[i * n + c] = i < c ? 0.0 : t / L[i * n + i];
        }
    return 0;
}

void bo_gen_chol_inv(bo_emit_fn emit, void *user) {
    static const int64_t ns[] = {1, 2, 5, 64, 127, 129, 300};
    for (size_t i = 0; i < sizeof(ns) / sizeof(ns[0]) + 2; i++) {
        int bad_case = i >= sizeof(ns) / sizeof(ns[0]);
        int64_t n = bad_case ? (i % 2 ? 200 : 9) : ns[i], badcol = bad_case ? n / 2 + 3 : -1;
        struct bo_case *c = cnew("chol_inv", "f32", "n %lld%s", (long long)n, bad_case ? ", not SPD" : "");
        c->optional = 1;
        /* A = G G^T / n + I (lower triangle read; the upper gets garbage the op must ignore) */
        float *G = frand(c, n * n, 1.0f), *A = fnew(c, n * n), *want = fnew(c, n * n), *mag = fnew(c, n * n);
        for (int64_t r = 0; r < n; r++)
            for (int64_t s = 0; s <= r; s++) {
                double acc = r == s ? 1.0 : 0.0;
                for (int64_t k = 0; k < n; k++) acc += (double)G[r * n + k] * G[s * n + k] / (double)n;
                A[r * n + s] = (float)acc;
                if (s < r) A[s * n + r] = 1e30f; /* never read */
            }
        if (bad_case) A[badcol * n + badcol] = -1.0f;
        double *L = calloc((size_t)(n * n), sizeof(double)), *X = calloc((size_t)(n * n), sizeof(double));
        if (!L || !X) abort();
        int32_t info = (int32_t)model_chol_inv(A, n, L, X);
        if (bad_case && info != badcol + 1) abort(); /* the model itself */
        for (int64_t r = 0; r < n; r++) {
            double rm = 0;
            for (int64_t s = 0; s < n; s++) rm = fabs(X[r * n + s]) > rm ? fabs(X[r * n + s]) : rm;
            for (int64_t s = 0; s < n; s++) {
                want[r * n + s] = (float)X[r * n + s];
                mag[r * n + s] = (float)(rm * 4.0);
            }
        }
        free(L);
        free(X);
        int32_t *iw = own(c, malloc(sizeof(int32_t)));
        *iw = info;
        size_t ab = al64(sizeof(float) * (size_t)(n * n));
        int b = cbuf(c, 64 + 2 * ab + 64, BT_BUF_ACT);
        cput(c, b, 64, A, sizeof(float) * (size_t)(n * n));
        struct bt_op *o = cop(c, BT_OP_CHOL_INV);
        o->src[0] = V(b, 64, F32, n, n);
        o->dst = V(b, 64 + ab, F32, n, n);
        o->src[1] = V(b, 64 + 2 * ab, bt_fmt(BT_TYPE_I32), 1, 1);
        creg(c, BO_SCRATCH, o->src[0], NULL, NULL, 0, 0); /* the workspace */
        creg(c, bad_case ? BO_SCRATCH : BO_TOL, o->dst, bad_case ? NULL : want, mag, LA_RTOL * 10, LA_ATOL);
        creg(c, BO_EXACT, o->src[1], iw, NULL, 0, 0);
        emit(c, user);
        case_free(c);
    }
}
