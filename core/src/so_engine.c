/* so_engine.c - the second-order (GPTQ-style) column loop behind host->so_quantize. Rows are
 * cut into fixed chunks of BT_SO_CHUNK_ROWS; each chunk holds its weights column-major in
 * processing order, rounds one column at a time through the quantizer's callbacks, pushes the
 * scaled error into the rest of its 128-column batch at once and into the columns after the
 * batch with one sgemm (lazy batch). Chunk results are summed in chunk order, so the output
 * does not depend on the thread count. */
#include "hessian.h"
#include "bt/bt.h"

#include <cblas.h>
#include <stdlib.h>
#include <string.h>

#define BATCH 128

struct so_job {
    const bt_hessian     *h;
    const float          *W;
    int64_t               rows, cols;
    const struct bt_so_cb *cb;
    double               *herr;  /* per chunk */
    int                   failed; /* out of memory in some chunk */
};

static void so_chunk(struct so_job *j, int64_t chunk) {
    const bt_hessian *h = j->h;
    const struct bt_so_cb *cb = j->cb;
    int64_t n = j->cols, R = BT_SO_CHUNK_ROWS, row0 = chunk * R;
    int64_t nr = j->rows - row0 < R ? j->rows - row0 : R;
    int64_t G = cb->group, ng = n / G;
    float *Wc = malloc((size_t)n * R * sizeof(float));      /* column a of processing order at Wc + a*R */
    float *Eb = malloc((size_t)BATCH * R * sizeof(float));  /* scaled errors of the current batch */
    float *Wg = malloc((size_t)G * nr * sizeof(float));     /* group values handed to group_start */
    float *q = malloc((size_t)R * sizeof(float));
    uint8_t *seen = calloc((size_t)ng, 1);
    if (!Wc || !Eb || !Wg || !q || !seen) {
        __atomic_store_n(&j->failed, 1, __ATOMIC_RELAXED);
        goto done;
    }
    for (int64_t a = 0; a < n; a++) {
        int64_t c = h->perm[a];
        float *dst = Wc + a * R;
        if (h->dead[c]) { memset(dst, 0, (size_t)R * sizeof(float)); continue; }
        for (int64_t i = 0; i < nr; i++) dst[i] = j->W[(row0 + i) * n + c];
        for (int64_t i = nr; i < R; i++) dst[i] = 0.0f;
    }
    double loss = 0;
    for (int64_t b0 = 0; b0 < n; b0 += BATCH) {
        int64_t b1 = n - b0 < BATCH ? n : b0 + BATCH;
        for (int64_t a = b0; a < b1; a++) {
            int64_t c = h->perm[a], g = c / G;
            if (!seen[g]) {
                /* the group's current values: columns beyond this batch still owe the updates
                 * of the batch's columns rounded so far */
                for (int64_t k = 0; k < G; k++) {
                    int64_t pa = h->iperm[g * G + k];
                    const float *src = Wc + pa * R;
                    for (int64_t i = 0; i < nr; i++) {
                        float v = src[i];
                        if (pa >= b1)
                            for (int64_t t = b0; t < a; t++) v -= Eb[(t - b0) * R + i] * h->U[t * n + pa];
                        Wg[i * G + k] = v;
                    }
                }
                cb->group_start(cb->user, row0, nr, g, Wg);
                seen[g] = 1;
            }
            float *w = Wc + a * R;
            cb->column(cb->user, row0, nr, c, w, q);
            float d = h->U[a * n + a];
            float *e = Eb + (a - b0) * R;
            for (int64_t i = 0; i < nr; i++) {
                e[i] = (w[i] - q[i]) / d;
                loss += (double)e[i] * e[i];
            }
            for (int64_t i = nr; i < R; i++) e[i] = 0.0f;
            const float *u = h->U + a * n;
            for (int64_t k = a + 1; k < b1; k++) {
                float uk = u[k];
                float *wk = Wc + k * R;
                for (int64_t i = 0; i < R; i++) wk[i] -= e[i] * uk;
            }
        }
        if (b1 < n) /* Wc[:, b1:] -= Eb (R x nb) * U[b0:b1, b1:] */
            cblas_sgemm(CblasColMajor, CblasNoTrans, CblasTrans, (int)R, (int)(n - b1), (int)(b1 - b0),
                        -1.0f, Eb, (int)R, h->U + b0 * n + b1, (int)n, 1.0f, Wc + b1 * R, (int)R);
    }
    j->herr[chunk] = loss;
done:
    free(Wc); free(Eb); free(Wg); free(q); free(seen);
}

static void so_range(void *arg, int64_t i0, int64_t i1, int tid) {
    (void)tid;
    for (int64_t c = i0; c < i1; c++) so_chunk(arg, c);
}

bt_status bt_so_quantize(const bt_hessian *h, const float *W, int64_t rows, int64_t cols,
                         const struct bt_so_cb *cb, double *herr, bt_err *err) {
    if (!h || !W || !cb || !cb->column || !cb->group_start)
        return bt_err_set(err, BT_E_INVAL, "so_quantize: missing argument");
    if (cols != h->n)
        return bt_err_set(err, BT_E_INVAL, "so_quantize: tensor has %lld columns but the Hessian is %lld x %lld",
                          (long long)cols, (long long)h->n, (long long)h->n);
    if (cb->group < 1 || cols % cb->group)
        return bt_err_set(err, BT_E_INVAL, "so_quantize: group %lld does not divide %lld columns",
                          (long long)cb->group, (long long)cols);
    bt_la_init();
    int64_t nchunk = (rows + BT_SO_CHUNK_ROWS - 1) / BT_SO_CHUNK_ROWS;
    double *hc = calloc((size_t)(nchunk ? nchunk : 1), sizeof(double));
    if (!hc) return bt_err_set(err, BT_E_NOMEM, "so_quantize: out of memory");
    struct so_job j = {h, W, rows, cols, cb, hc, 0};
    bt_parallel_for(nchunk, 1, so_range, &j);
    double tot = 0;
    for (int64_t c = 0; c < nchunk; c++) tot += hc[c];
    free(hc);
    if (j.failed) return bt_err_set(err, BT_E_NOMEM, "so_quantize: out of memory (%lld columns)", (long long)cols);
    if (herr) *herr = tot;
    return BT_OK;
}
