/* so_engine.c - the second-order (GPTQ-style) column loop behind host->so_quantize. Rows are
 * cut into fixed chunks of BT_SO_CHUNK_ROWS; each chunk holds its weights column-major in
 * processing order, rounds one column at a time through the quantizer's callbacks, pushes the
 * scaled error into the rest of its 128-column batch at once and into the columns after the
 * batch with one sgemm (lazy batch). Chunk results are summed in chunk order, so the output
 * does not depend on the thread count. When [quantize] so_backend routes it (compute.h), that
 * sgemm is op GEMM on the compute backend: the chunk's weights live there too, the batch's
 * errors go up and the updated columns come back after each batch; U's blocks right of each
 * batch are packed once per tensor (the same products: on a cpu backend the same bits). */
#include "hessian.h"
#include "bt/bt.h"
#include "compute.h"

#include <cblas.h>
#include <pthread.h>
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
    /* routed: U[b0:b1, b1:] of every batch, packed row-major (nb x (n - b1)) at upk_off[batch] */
    bt_buf               *upk;
    uint64_t             *upk_off;
    pthread_mutex_t       mu;    /* guards st / err (the first routed failure) */
    bt_status             st;
    bt_err                err;
};

/* the chunk's GEMM state on the compute backend */
struct so_dev {
    bt_buf *wc, *eb; /* Wc (n x R, column-major = row-major n x R), Eb (BATCH x R) */
};

static void so_fail(struct so_job *j, bt_status st, const bt_err *e) {
    pthread_mutex_lock(&j->mu);
    if (!j->st) {
        j->st = st;
        j->err = *e;
    }
    pthread_mutex_unlock(&j->mu);
}

/* Wc[:, b1:] -= Eb * U[b0:b1, b1:] on the backend, the columns read back into Wc */
static bt_status so_dev_update(struct so_job *j, struct so_dev *d, float *Wc, const float *Eb,
                               int64_t b0, int64_t b1, bt_err *err) {
    int64_t n = j->cols, R = BT_SO_CHUNK_ROWS, nb = b1 - b0;
    struct bt_tfmt f32 = {BT_TYPE_F32, 0, 0, 0};
    struct bt_op op;
    memset(&op, 0, sizeof(op));
    op.code = BT_OP_GEMM;
    op.flags = BT_OPF_TRANS_A;
    op.scale = -1.0f; /* alpha */
    op.eps = 1.0f;    /* beta */
    op.dst = bt_view_of(d->wc, (uint64_t)(b1 * R) * 4, f32, n - b1, R);
    op.src[0] = bt_view_of(j->upk, j->upk_off[b0 / BATCH] * 4, f32, nb, n - b1);
    op.src[1] = bt_view_of(d->eb, 0, f32, nb, R);
    bt_status st = bt_compute_write(d->eb, 0, Eb, (uint64_t)(nb * R) * 4, err);
    if (!st) st = bt_compute_run(&op, err);
    if (!st) st = bt_compute_read(d->wc, (uint64_t)(b1 * R) * 4, Wc + b1 * R, (uint64_t)((n - b1) * R) * 4, err);
    return st;
}

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
    struct so_dev dv = {NULL, NULL};
    bt_err derr = {0, ""};
    bt_status dst = BT_OK;
    if (j->upk) { /* routed: the chunk's weights on the backend */
        if (!(dst = bt_compute_alloc((uint64_t)(n * R) * 4, &dv.wc, &derr)) &&
            !(dst = bt_compute_alloc((uint64_t)(BATCH * R) * 4, &dv.eb, &derr)))
            dst = bt_compute_write(dv.wc, 0, Wc, (uint64_t)(n * R) * 4, &derr);
        if (dst) goto dev_fail;
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
        if (b1 < n && j->upk) {
            if ((dst = so_dev_update(j, &dv, Wc, Eb, b0, b1, &derr))) goto dev_fail;
        } else if (b1 < n) { /* Wc[:, b1:] -= Eb (R x nb) * U[b0:b1, b1:] */
            cblas_sgemm(CblasColMajor, CblasNoTrans, CblasTrans, (int)R, (int)(n - b1), (int)(b1 - b0),
                        -1.0f, Eb, (int)R, h->U + b0 * n + b1, (int)n, 1.0f, Wc + b1 * R, (int)R);
        }
    }
    j->herr[chunk] = loss;
dev_fail:
    if (dst) so_fail(j, dst, &derr);
    bt_compute_free(dv.wc);
    bt_compute_free(dv.eb);
done:
    free(Wc); free(Eb); free(Wg); free(q); free(seen);
}

/* routed: U's blocks right of every batch, packed and uploaded once */
static bt_status upk_make(struct so_job *j, bt_err *err) {
    int64_t n = j->cols, nbat = (n + BATCH - 1) / BATCH;
    uint64_t tot = 0;
    if (!(j->upk_off = malloc((size_t)nbat * sizeof(uint64_t))))
        return bt_err_set(err, BT_E_NOMEM, "so_quantize: out of memory");
    for (int64_t b = 0; b < nbat; b++) {
        int64_t b0 = b * BATCH, b1 = n - b0 < BATCH ? n : b0 + BATCH;
        j->upk_off[b] = tot;
        tot += (uint64_t)((b1 - b0) * (n - b1));
    }
    float *P = malloc((size_t)(tot ? tot : 1) * sizeof(float));
    if (!P) return bt_err_set(err, BT_E_NOMEM, "so_quantize: out of memory (%lld columns)", (long long)n);
    for (int64_t b = 0; b < nbat; b++) {
        int64_t b0 = b * BATCH, b1 = n - b0 < BATCH ? n : b0 + BATCH;
        for (int64_t a = b0; a < b1; a++)
            memcpy(P + j->upk_off[b] + (uint64_t)((a - b0) * (n - b1)), j->h->U + a * n + b1,
                   (size_t)(n - b1) * sizeof(float));
    }
    bt_status st = tot ? bt_compute_alloc(tot * 4, &j->upk, err) : BT_OK;
    if (!st && tot) st = bt_compute_write(j->upk, 0, P, tot * 4, err);
    free(P);
    return st;
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
    int routed = 0;
    bt_status st = bt_compute_so_route(&routed, err);
    if (st) return st;
    int64_t nchunk = (rows + BT_SO_CHUNK_ROWS - 1) / BT_SO_CHUNK_ROWS;
    double *hc = calloc((size_t)(nchunk ? nchunk : 1), sizeof(double));
    if (!hc) return bt_err_set(err, BT_E_NOMEM, "so_quantize: out of memory");
    struct so_job j = {h, W, rows, cols, cb, hc, 0, NULL, NULL, PTHREAD_MUTEX_INITIALIZER, BT_OK, {0, ""}};
    if (routed && (st = upk_make(&j, err))) {
        bt_compute_free(j.upk);
        free(j.upk_off);
        free(hc);
        return st;
    }
    bt_parallel_for(nchunk, 1, so_range, &j);
    bt_compute_free(j.upk);
    free(j.upk_off);
    pthread_mutex_destroy(&j.mu);
    double tot = 0;
    for (int64_t c = 0; c < nchunk; c++) tot += hc[c];
    free(hc);
    if (j.failed) return bt_err_set(err, BT_E_NOMEM, "so_quantize: out of memory (%lld columns)", (long long)cols);
    if (j.st) return bt_err_set(err, j.st, "so_quantize: %s", j.err.msg);
    if (herr) *herr = tot;
    return BT_OK;
}
