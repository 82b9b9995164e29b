/* cu_graph.c - CUDA graphs for the cuda backend (option `graphs`): a run list whose ops all run
 * on this backend's own kernels (a decode step: no cuBLAS product, i.e. fewer than
 * BT_CU_GEMM_MIN tokens per MATMUL) is captured from the instance's stream, and the executable
 * graph of the previous list is updated with it (cudaGraphExecUpdate: same ops, new positions and
 * offsets) or, when the lists differ, instantiated anew; then launched once. Capture enqueues
 * nothing, so when capturing fails the list runs directly and graphs stay off for the instance. */
#include "cu_int.h"

#include <string.h>

void bt_cu_graph_free(struct bt_cu_ctx *c) {
    if (c->gexec) (void)cudaGraphExecDestroy(c->gexec);
    if (c->pin) (void)cudaFreeHost(c->pin);
    c->gexec = NULL;
    c->pin = NULL;
    c->pin_cap = c->pin_used = 0;
}

/* graphs off for good (logged once), and the CUDA error state cleared */
static void give_up(struct bt_cu_ctx *c, const char *why, cudaError_t e) {
    (void)cudaGetLastError();
    c->graphs = 0;
    c->host->log(BT_LOG_WARN, "cuda: CUDA graphs turned off: %s (%s)", why, cudaGetErrorString(e));
}

/* every op checked (errors as the direct path gives them), the list graph-safe, and the scratch
 * every op will use allocated now (nothing may allocate or synchronize during capture) */
static bt_status prepare(struct bt_cu_ctx *c, const struct bt_op *ops, uint32_t n, int *ok,
                         bt_err *err) {
    size_t ids = 0, act = 0, vqx = 0;
    *ok = 1;
    for (uint32_t i = 0; i < n; i++) {
        const struct bt_op *op = &ops[i];
        bt_status st = bt_cu_check_one(c, op, err);
        if (st) return st;
        if (op->code == BT_OP_GET_ROWS) { /* as bt_cu_get_rows: bad ids fail before anything runs */
            if (op->dst.rows > 0 && !op->ids)
                return c->host->set_error(err, BT_E_INVAL, "cuda: get_rows: no row ids");
            for (int64_t t = 0; t < op->dst.rows; t++)
                if (op->ids[t] < 0 || op->ids[t] >= op->src[0].rows)
                    return c->host->set_error(err, BT_E_INVAL, "cuda: get_rows: row %d out of range "
                                              "[0, %lld)", op->ids[t], (long long)op->src[0].rows);
            ids += (size_t)op->dst.rows;
        }
        if (op->code == BT_OP_CHOL_INV) { *ok = 0; return BT_OK; } /* cuSOLVER setup: direct */
        if (op->code == BT_OP_MATMUL) {
            int64_t ntok = op->dst.rows, cols = op->src[0].cols;
            if (ntok >= BT_CU_GEMM_MIN) { *ok = 0; return BT_OK; } /* cuBLAS: direct */
            size_t need = op->act != BT_ACT_Q8 ? 0
                        : op->src[0].fmt.type == BT_TYPE_TQ2_0 ? (size_t)(ntok * cols) * 5 / 4 + 4
                        : (size_t)(ntok * cols) * 4;
            if (need > act) act = need;
            if (op->src[0].fmt.type == BT_TYPE_VQ && bt_cu_vq_scratch(cols, ntok) > vqx)
                vqx = bt_cu_vq_scratch(cols, ntok);
        }
    }
    bt_status st = BT_OK;
    if (act) st = bt_cu_scratch(c, &c->act, act, "graph", err);
    if (!st && ids) st = bt_cu_scratch(c, &c->ids, ids * 4, "graph", err);
    if (!st && vqx) st = bt_cu_scratch(c, &c->vqx, vqx, "graph", err);
    if (!st && ids > c->pin_cap) {
        if (c->pin) (void)cudaFreeHost(c->pin);
        c->pin = NULL;
        c->pin_cap = 0;
        size_t cap = ids + ids / 4 + 64;
        cudaError_t e = cudaMallocHost((void **)&c->pin, cap * 4);
        if (e != cudaSuccess) { c->pin = NULL; give_up(c, "pinned staging for row ids", e); *ok = 0; }
        else c->pin_cap = cap;
    }
    /* the previous launch may still read the staged ids */
    if (!st && *ok && ids) {
        cudaError_t e = cudaStreamSynchronize(c->st);
        if (e != cudaSuccess) st = bt_cu_fail(c, err, "run", "cudaStreamSynchronize", e);
    }
    return st;
}

bt_status bt_cu_run_graph(struct bt_cu_ctx *c, const struct bt_op *ops, uint32_t n, int *ran,
                          bt_err *err) {
    int ok = 0;
    *ran = 0;
    bt_status st = prepare(c, ops, n, &ok, err);
    if (st || !ok) return st;
    cudaError_t e = cudaStreamBeginCapture(c->st, cudaStreamCaptureModeThreadLocal);
    if (e != cudaSuccess) { give_up(c, "cudaStreamBeginCapture", e); return BT_OK; }
    c->capturing = 1;
    c->pin_used = 0;
    for (uint32_t i = 0; i < n && !st; i++) st = bt_cu_run_one(c, &ops[i], err);
    c->capturing = 0;
    cudaGraph_t g = NULL;
    e = cudaStreamEndCapture(c->st, &g);
    if (st || e != cudaSuccess || !g) {
        if (g) (void)cudaGraphDestroy(g);
        if (!st) give_up(c, "cudaStreamEndCapture", e);
        else (void)cudaGetLastError(); /* st: an op's error (checked first, so rare): as direct */
        if (st) *ran = 1;
        return st;
    }
    if (c->gexec) {
        cudaGraphExecUpdateResultInfo info;
        if (cudaGraphExecUpdate(c->gexec, g, &info) != cudaSuccess) { /* another list */
            (void)cudaGetLastError();
            (void)cudaGraphExecDestroy(c->gexec);
            c->gexec = NULL;
        }
    }
    if (!c->gexec && (e = cudaGraphInstantiate(&c->gexec, g, 0)) != cudaSuccess) {
        c->gexec = NULL;
        (void)cudaGraphDestroy(g);
        give_up(c, "cudaGraphInstantiate", e);
        return BT_OK;
    }
    (void)cudaGraphDestroy(g);
    e = cudaGraphLaunch(c->gexec, c->st);
    *ran = 1;
    return e == cudaSuccess ? BT_OK : bt_cu_fail(c, err, "run", "cudaGraphLaunch", e);
}
