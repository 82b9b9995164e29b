/* mtq_algo.c - multi-base ternary block quantizer (see mtq_algo.h). Blocks are sorted once;
 * joint code assignment is then a search of 3^N-1 midpoints in the sorted values and the LS
 * statistics come from prefix sums, so a refit round costs O(3^N log n), not O(n 3^N). */
#include "mtq_algo.h"

#include "bt_types.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#ifndef BT_MTQ_BAL_GRID
#define BT_MTQ_BAL_GRID   5
#define BT_MTQ_BAL_GRID_F {0.5, 0.65, 0.8, 0.95, 1.1}
#endif

/* ---- helpers --------------------------------------------------------------------------------- */
static inline uint32_t f2u(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }

/* ascending-order key of a float (-0 == +0) */
static inline uint32_t float_key(float f) {
    uint32_t u = f2u(f);
    if (u == 0x80000000u) u = 0;
    return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

/* stable argsort of key[0..n) ascending into ws->idx: LSD radix on the top 16 bits (2 passes,
 * skipped when all keys share the digit), then an insertion pass on the full key (stable, and
 * cheap because the array is almost sorted) */
static void radix_argsort(struct bt_mtq_work *ws, int n) {
    uint32_t h[2][256];
    memset(h, 0, sizeof(h));
    const uint32_t *key = ws->key;
    for (int i = 0; i < n; i++) {
        h[0][(key[i] >> 16) & 255]++;
        h[1][key[i] >> 24]++;
    }
    uint16_t *src = ws->idx, *dst = ws->tmp;
    for (int i = 0; i < n; i++) src[i] = (uint16_t)i;
    for (int p = 0; p < 2; p++) {
        int sh = 16 + 8 * p;
        if (h[p][(key[0] >> sh) & 255] == (uint32_t)n) continue;
        uint32_t pos[256], s = 0;
        for (int b = 0; b < 256; b++) { pos[b] = s; s += h[p][b]; }
        for (int i = 0; i < n; i++) {
            uint16_t e = src[i];
            dst[pos[(key[e] >> sh) & 255]++] = e;
        }
        uint16_t *x = src; src = dst; dst = x;
    }
    uint16_t *o = ws->idx;
    if (src != o) memcpy(o, src, (size_t)n * sizeof(uint16_t));
    for (int i = 1; i < n; i++) {
        uint16_t e = o[i];
        uint32_t k = key[e];
        int j = i;
        while (j > 0 && key[o[j - 1]] > k) { o[j] = o[j - 1]; j--; }
        o[j] = e;
    }
}

/* Stable argsort of v[0..n) ascending (-0 == +0): ws->idx gets the permutation, ws->sv the
 * sorted values. Elements are scattered into n value-linear buckets (monotone in v, so the
 * buckets are in order), then one insertion pass fixes the order inside buckets (about one
 * element per bucket, so the moves are short). Same permutation as any stable sort; radix
 * fallback when the value range is not finite. */
static void value_argsort(const float *v, int n, struct bt_mtq_work *ws) {
    float lo = v[0], hi = v[0];
    for (int i = 1; i < n; i++) {
        lo = v[i] < lo ? v[i] : lo;
        hi = v[i] > hi ? v[i] : hi;
    }
    double range = (double)hi - (double)lo;
    uint16_t *o = ws->idx;
    float *sv = ws->sv;
    if (!(range > 0) || !isfinite(range)) {
        if (range == 0) {
            for (int i = 0; i < n; i++) o[i] = (uint16_t)i;
        } else {
            for (int i = 0; i < n; i++) ws->key[i] = float_key(v[i]);
            radix_argsort(ws, n);
        }
        for (int i = 0; i < n; i++) sv[i] = v[o[i]];
        return;
    }
    uint16_t cnt[BT_MTQ_MAX_BLOCK + 1];
    uint8_t *bk = ws->bkt;
    double scale = (double)n / range;
    memset(cnt, 0, sizeof(uint16_t) * (size_t)(n + 1));
    for (int i = 0; i < n; i++) {
        int b = (int)(((double)v[i] - (double)lo) * scale);
        b = b < n ? b : n - 1;
        bk[i] = (uint8_t)b;
        cnt[b + 1]++;
    }
    for (int b = 0; b < n; b++) cnt[b + 1] = (uint16_t)(cnt[b + 1] + cnt[b]);
    for (int i = 0; i < n; i++) {
        int k = cnt[bk[i]]++;
        o[k] = (uint16_t)i;
        sv[k] = v[i];
    }
    float prev = sv[0];
    for (int i = 1; i < n; i++) {
        float x = sv[i];
        if (!(x < prev)) { prev = x; continue; }
        uint16_t e = o[i];
        int j = i;
        do { sv[j] = sv[j - 1]; o[j] = o[j - 1]; j--; } while (j > 0 && sv[j - 1] > x);
        sv[j] = x;
        o[j] = e;
    }
}

static inline float fp16_round(double a) {
    float f = (float)a;
    if (f > 65504.0f) f = 65504.0f;
    if (f < -65504.0f) f = -65504.0f;
    return bt_fp16_to_f32(bt_f32_to_fp16(f));
}

void bt_mtq_work_init(struct bt_mtq_work *ws) {
    static const int8_t dv[3] = {0, -1, 1};
    memset(ws, 0, sizeof(*ws));
    for (int c = 0; c < BT_MTQ_MAX_LEVELS; c++)
        for (int p = 0, x = c; p < BT_MTQ_MAX_PLANES; p++, x /= 3)
            ws->tdig[c * BT_MTQ_MAX_PLANES + p] = dv[x % 3];
}

struct bt_mtq_work *bt_mtq_work_new(void) {
    struct bt_mtq_work *ws = malloc(sizeof(struct bt_mtq_work));
    if (ws) bt_mtq_work_init(ws);
    return ws;
}
void bt_mtq_work_free(struct bt_mtq_work *ws) { free(ws); }

/* ---- one exact ternary step ------------------------------------------------------------------ */
double bt_mtq_ternary_step(const float *r, const float *colw, int n, int8_t *t,
                           struct bt_mtq_work *ws) {
    for (int i = 0; i < n; i++) ws->nr[i] = -fabsf(r[i]); /* ascending -|r| = descending |r| */
    value_argsort(ws->nr, n, ws);
    double S = 0, D = 0, best = 0, Sb = 0, Db = 0;
    int kb = 0;
    for (int k = 0; k < n; k++) {
        int i = ws->idx[k];
        double x = fabsf(r[i]);
        double d = colw ? (double)colw[i] : 1.0;
        S += d * x;
        D += d;
        if (D > 0) {
            double g = S * S / D;
            if (g > best) { best = g; kb = k + 1; Sb = S; Db = D; }
        }
    }
    if (n > 0) memset(t, 0, (size_t)n);
    for (int k = 0; k < kb; k++) {
        int i = ws->idx[k];
        t[i] = (int8_t)(r[i] > 0 ? 1 : (r[i] < 0 ? -1 : 0));
    }
    return kb ? Sb / Db : 0.0;
}

/* ---- sorted-block statistics ------------------------------------------------------------------ */
static void block_setup(const float *w, const float *colw, int n, struct bt_mtq_work *ws) {
    value_argsort(w, n, ws);
    double pd = 0, pdw = 0, s2 = 0;
    ws->pd[0] = 0;
    ws->pdw[0] = 0;
    for (int k = 0; k < n; k++) {
        int i = ws->idx[k];
        ws->perm[k] = (uint16_t)i;
        float x = w[i] == 0.0f ? 0.0f : w[i];
        float d = colw ? colw[i] : 1.0f;
        ws->sw[k] = x;
        ws->swd[k] = (double)x;
        pd += (double)d;
        pdw += (double)d * (double)x;
        s2 += (double)d * (double)x * (double)x;
        ws->pd[k + 1] = pd;
        ws->pdw[k + 1] = pdw;
    }
    ws->sw2 = s2;
}

/* reset the level order of a new block to the lexicographic code order (see ord0) */
static void levels_reset(int N, struct bt_mtq_work *ws) {
    int M = 1;
    for (int p = 0; p < N; p++) M *= 3;
    if (ws->ord0_n != N) {
        static const int dmap[3] = {1, 0, 2}; /* t+1 -> code digit */
        for (int j = 0; j < M; j++) {
            int x = j, c = 0;
            for (int p = N - 1; p >= 0; p--, x /= 3) {
                int q = 1;
                for (int k = 0; k < p; k++) q *= 3;
                c += dmap[x % 3] * q;
            }
            ws->ord0[j] = (uint16_t)c;
        }
        ws->ord0_n = N;
    }
    memcpy(ws->ord, ws->ord0, sizeof(uint16_t) * (size_t)M);
    ws->nlev = M;
    ws->bnd_ok = 0;
}

/* Level values sum_p a_p t_p (added in plane order) of all codes, re-sorted ascending by a
 * stable sort starting from the previous order (insertion sort: usually O(M); merge sort for
 * large M). Ties keep the previous order. The code values are built plane by plane
 * (cv[c + 3^p d] = cv[c] + t(d) a_p), which gives the same sums as the plane-order loop. */
static inline __attribute__((always_inline)) void levels_sort_n(const double *a, const int N,
                                                                struct bt_mtq_work *ws) {
    int M = ws->nlev;
    uint16_t *o = ws->ord;
    double *L = ws->lv, *cv = ws->cv;
    cv[0] = 0.0;
    for (int p = 0, m = 1; p < N; p++, m *= 3) {
        double ap = a[p];
        for (int c = 0; c < m; c++) {
            cv[c + m] = cv[c] - ap;
            cv[c + 2 * m] = cv[c] + ap;
        }
    }
    for (int j = 0; j < M; j++) L[j] = cv[o[j]];
    if (M <= 81) {
        for (int i = 1; i < M; i++) {
            double v = L[i];
            if (!(L[i - 1] > v)) continue;
            uint16_t c = o[i];
            int j = i;
            do { L[j] = L[j - 1]; o[j] = o[j - 1]; j--; } while (j > 0 && L[j - 1] > v);
            L[j] = v;
            o[j] = c;
        }
        return;
    }
    double *Ls = L, *Ld = ws->lv2;
    uint16_t *os = o, *od = ws->ord2;
    for (int w = 1; w < M; w *= 2) {
        for (int i0 = 0; i0 < M; i0 += 2 * w) {
            int m = i0 + w < M ? i0 + w : M, e = i0 + 2 * w < M ? i0 + 2 * w : M;
            int i = i0, j = m, k = i0;
            while (i < m && j < e) {
                if (Ls[j] < Ls[i]) { Ld[k] = Ls[j]; od[k++] = os[j++]; }
                else { Ld[k] = Ls[i]; od[k++] = os[i++]; }
            }
            while (i < m) { Ld[k] = Ls[i]; od[k++] = os[i++]; }
            while (j < e) { Ld[k] = Ls[j]; od[k++] = os[j++]; }
        }
        double *x = Ls; Ls = Ld; Ld = x;
        uint16_t *y = os; os = od; od = y;
    }
    if (Ls != L) {
        memcpy(L, Ls, sizeof(double) * (size_t)M);
        memcpy(o, os, sizeof(uint16_t) * (size_t)M);
    }
}

/* Nearest-level assignment for scales a; fills ws->bnd, G (N x N, lower+upper) and b.
 * Returns the weighted squared error of that assignment. Inlined per N (constant N lets the
 * compiler unroll the plane loops). */
static inline __attribute__((always_inline)) double assign_n(const double *a, const int N,
                                                             int n, struct bt_mtq_work *ws,
                                                             double *G, double *b) {
    levels_sort_n(a, N, ws);
    int M = ws->nlev;
    const double *L = ws->lv;
    int *bnd = ws->bnd;
    bnd[0] = 0;
    /* bnd[j+1] = number of values <= midpoint j; searched locally from the previous
     * assignment's boundary (it moves little between rounds), else by a forward walk */
    const double *x = ws->swd;
    for (int j = 0, k = 0; j + 1 < M; j++) {
        double mid = 0.5 * (L[j] + L[j + 1]);
        int lo = k;
        if (ws->bnd_ok && bnd[j + 1] > k) k = bnd[j + 1];
        while (k > lo && x[k - 1] > mid) k--;
        while (k < n && x[k] <= mid) k++;
        bnd[j + 1] = k;
    }
    ws->bnd_ok = 1;
    bnd[M] = n;
    double g[BT_MTQ_MAX_PLANES][BT_MTQ_MAX_PLANES], bb[BT_MTQ_MAX_PLANES];
    for (int p = 0; p < N; p++) {
        bb[p] = 0.0;
        for (int q = 0; q <= p; q++) g[p][q] = 0.0;
    }
    double E = ws->sw2;
    const double *pd = ws->pd, *pdw = ws->pdw;
    for (int j = 0; j < M; j++) {
        int k0 = bnd[j], k1 = bnd[j + 1];
        if (k1 <= k0) continue;
        double Dj = pd[k1] - pd[k0], Wj = pdw[k1] - pdw[k0];
        E += L[j] * L[j] * Dj - 2.0 * L[j] * Wj;
        const int8_t *t = ws->tdig + ws->ord[j] * BT_MTQ_MAX_PLANES;
        double td[BT_MTQ_MAX_PLANES];
        for (int p = 0; p < N; p++) td[p] = (double)t[p];
        for (int p = 0; p < N; p++) {
            bb[p] += td[p] * Wj;
            double tD = td[p] * Dj;
            for (int q = 0; q <= p; q++) g[p][q] += tD * td[q];
        }
    }
    for (int p = 0; p < N; p++) {
        b[p] = bb[p];
        for (int q = 0; q <= p; q++) G[p * N + q] = G[q * N + p] = g[p][q];
    }
    return E;
}

static double assign(const double *a, int N, int n, struct bt_mtq_work *ws, double *G,
                     double *b) {
    switch (N) {
    case 1: return assign_n(a, 1, n, ws, G, b);
    case 2: return assign_n(a, 2, n, ws, G, b);
    case 3: return assign_n(a, 3, n, ws, G, b);
    case 4: return assign_n(a, 4, n, ws, G, b);
    default: return assign_n(a, N, n, ws, G, b);
    }
}

/* LS refit: solve G a = b by Cholesky in plane order; a plane whose pivot is not positive
 * (unused plane, or collinear with earlier ones) keeps its old scale and moves to the RHS. */
static void ls_solve(const double *G, const double *b, int N, const double *a_old,
                     double *a_new) {
    double L[BT_MTQ_MAX_PLANES][BT_MTQ_MAX_PLANES], y[BT_MTQ_MAX_PLANES];
    int act[BT_MTQ_MAX_PLANES], na = 0, on[BT_MTQ_MAX_PLANES];
    for (int p = 0; p < N; p++) {
        on[p] = 0;
        double gpp = G[p * N + p];
        if (!(gpp > 0)) continue;
        double row[BT_MTQ_MAX_PLANES];
        double v = gpp;
        for (int k = 0; k < na; k++) {
            double s = G[p * N + act[k]];
            for (int l = 0; l < k; l++) s -= row[l] * L[k][l];
            row[k] = s / L[k][k];
            v -= row[k] * row[k];
        }
        if (!(v > 1e-9 * gpp)) continue;
        for (int k = 0; k < na; k++) L[na][k] = row[k];
        L[na][na] = sqrt(v);
        act[na++] = p;
        on[p] = 1;
    }
    for (int k = 0; k < na; k++) {
        int p = act[k];
        double s = b[p];
        for (int q = 0; q < N; q++)
            if (!on[q]) s -= G[p * N + q] * a_old[q];
        for (int l = 0; l < k; l++) s -= L[k][l] * y[l];
        y[k] = s / L[k][k];
    }
    for (int p = 0; p < N; p++) a_new[p] = a_old[p];
    for (int k = na - 1; k >= 0; k--) {
        double s = y[k];
        for (int l = k + 1; l < na; l++) s -= L[l][k] * a_new[act[l]];
        a_new[act[k]] = s / L[k][k];
    }
}

/* Joint ALS from scales a (in/out: best scales found). E0/G0/b0: the assignment statistics of
 * a if already known (G0 == NULL: compute). Returns the best assignment error. */
static double run_als(double *a, int N, int n, int rounds, double E0, const double *G0,
                      const double *b0, struct bt_mtq_work *ws) {
    double G[BT_MTQ_MAX_PLANES * BT_MTQ_MAX_PLANES], b[BT_MTQ_MAX_PLANES];
    double cur[BT_MTQ_MAX_PLANES], nxt[BT_MTQ_MAX_PLANES];
    memcpy(cur, a, sizeof(double) * (size_t)N);
    double E;
    if (G0) {
        E = E0;
        memcpy(G, G0, sizeof(double) * (size_t)(N * N));
        memcpy(b, b0, sizeof(double) * (size_t)N);
    } else {
        E = assign(cur, N, n, ws, G, b);
    }
    double Eb = E;
    for (int r = 0; r < rounds; r++) {
        ls_solve(G, b, N, cur, nxt);
        double En = assign(nxt, N, n, ws, G, b);
        if (En < Eb) {
            Eb = En;
            memcpy(a, nxt, sizeof(double) * (size_t)N);
        }
        int done = !(E - En > 1e-9 * E);
        memcpy(cur, nxt, sizeof(double) * (size_t)N);
        E = En;
        if (done) break;
    }
    return Eb;
}

/* greedy start: N exact ternary steps on the residual; writes the scales */
static void init_greedy(const float *w, const float *colw, int n, int N, double *a,
                        struct bt_mtq_work *ws) {
    memcpy(ws->r, w, sizeof(float) * (size_t)n);
    for (int p = 0; p < N; p++) {
        a[p] = bt_mtq_ternary_step(ws->r, colw, n, ws->tg, ws);
        for (int i = 0; i < n; i++)
            if (ws->tg[i]) ws->r[i] = (float)((double)ws->r[i] - a[p] * ws->tg[i]);
    }
}

/* balanced start: a_p = delta * 3^(N-1-p), delta = f * max|w| / K, K = (3^N - 1) / 2, f from a
 * small grid; returns the best grid point's assignment error and its G, b */
static double init_balanced(int N, int n, double *a, double *Gb, double *bb,
                            struct bt_mtq_work *ws) {
    static const double grid[BT_MTQ_BAL_GRID] = BT_MTQ_BAL_GRID_F;
    double G[BT_MTQ_MAX_PLANES * BT_MTQ_MAX_PLANES], b[BT_MTQ_MAX_PLANES], tr[BT_MTQ_MAX_PLANES];
    double mx = fmax(fabs(ws->swd[0]), fabs(ws->swd[n - 1]));
    int K = 1;
    for (int p = 0; p < N; p++) K *= 3;
    K = (K - 1) / 2;
    double Eb = INFINITY;
    for (int g = 0; g < BT_MTQ_BAL_GRID; g++) {
        double delta = grid[g] * mx / K, u = delta;
        for (int p = N - 1; p >= 0; p--, u *= 3.0) tr[p] = u;
        double E = assign(tr, N, n, ws, G, b);
        if (E < Eb) {
            Eb = E;
            memcpy(a, tr, sizeof(double) * (size_t)N);
            memcpy(Gb, G, sizeof(double) * (size_t)(N * N));
            memcpy(bb, b, sizeof(double) * (size_t)N);
        }
    }
    return Eb;
}

/* write the codes of the last assignment; returns the decoder-exact weighted error */
static double materialize(const float *w, const float *colw, int n, int N, const float *af,
                          int8_t *t, struct bt_mtq_work *ws) {
    for (int j = 0; j < ws->nlev; j++) {
        int k0 = ws->bnd[j], k1 = ws->bnd[j + 1];
        if (k1 <= k0) continue;
        const int8_t *tc = ws->tdig + ws->ord[j] * BT_MTQ_MAX_PLANES;
        for (int k = k0; k < k1; k++) {
            int i = ws->perm[k];
            for (int p = 0; p < N; p++) t[p * n + i] = tc[p];
        }
    }
    double E = 0;
    for (int i = 0; i < n; i++) {
        float v = 0;
        for (int p = 0; p < N; p++) v += af[p] * (float)t[p * n + i];
        double e = (double)w[i] - (double)v;
        E += (colw ? (double)colw[i] : 1.0) * e * e;
    }
    return E;
}

/* ---- public block / row API ---------------------------------------------------------------------- */
double bt_mtq_quantize_block(const float *w, const float *colw, int n, int N, int rounds,
                             int init, int8_t *t, float *a, struct bt_mtq_work *ws) {
    double G[BT_MTQ_MAX_PLANES * BT_MTQ_MAX_PLANES], b[BT_MTQ_MAX_PLANES];
    double cand[3][BT_MTQ_MAX_PLANES], ah[BT_MTQ_MAX_PLANES];
    int nc = 0;
    block_setup(w, colw, n, ws);
    if (ws->sw[0] == 0.0f && ws->sw[n - 1] == 0.0f) { /* all-zero block */
        memset(t, 0, (size_t)N * (size_t)n);
        for (int p = 0; p < N; p++) a[p] = 0.0f;
        return 0.0;
    }
    levels_reset(N, ws);
    /* N = 1: the exact step is the global optimum (refit cannot improve it), whatever init */
    if (N == 1 || init != BT_MTQ_INIT_BALANCED) {
        init_greedy(w, colw, n, N, cand[nc], ws);
        if (rounds > 0 && N > 1) { /* the greedy start stays a candidate: never worse */
            memcpy(cand[nc + 1], cand[nc], sizeof(double) * (size_t)N);
            run_als(cand[nc + 1], N, n, rounds, 0.0, NULL, NULL, ws);
            nc++;
        }
        nc++;
    }
    if (N > 1 && init != BT_MTQ_INIT_GREEDY) {
        double E0 = init_balanced(N, n, cand[nc], G, b, ws);
        run_als(cand[nc++], N, n, rounds, E0, G, b, ws);
    }
    /* choose after fp16 rounding of the scales (codes re-assigned for the rounded scales);
     * the winner's assignment is redone only if it was not the last one evaluated */
    double Eb = INFINITY;
    int cb = 0;
    for (int c = 0; c < nc; c++) {
        for (int p = 0; p < N; p++) ah[p] = fp16_round(cand[c][p]);
        double E = assign(ah, N, n, ws, G, b);
        if (E < Eb) { Eb = E; cb = c; }
    }
    for (int p = 0; p < N; p++) {
        a[p] = fp16_round(cand[cb][p]);
        ah[p] = a[p];
    }
    if (cb != nc - 1) assign(ah, N, n, ws, G, b);
    return materialize(w, colw, n, N, a, t, ws);
}

double bt_mtq_quantize_row(const float *w, const float *colw, int64_t cols, int block, int N,
                           int rounds, int init, int8_t *t, float *a, double *ref2,
                           struct bt_mtq_work *ws) {
    double E = 0, R = 0;
    for (int64_t c0 = 0, b = 0; c0 < cols; c0 += block, b++) {
        E += bt_mtq_quantize_block(w + c0, colw ? colw + c0 : NULL, block, N, rounds, init,
                                   t + b * N * block, a + b * N, ws);
        R += ws->sw2;
    }
    if (ref2) *ref2 = R;
    return E;
}
