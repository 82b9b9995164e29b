/* cpu_la.c - the second-order engine's ops (ABI 2.3) in the CPU backends: GEMM as one OpenBLAS
 * sgemm call and CHOL_INV through bt_la.c's tiles on the host pool - the code the core runs when
 * the engine stays on the host, so routing through a cpu backend gives the same bits. */
#include "cpu_kern.h"
#include "bt_la.h"

#include <cblas.h>

bt_status bt_cpu_la(struct bt_cpu_ctx *c, const struct bt_op *op, void *d, void *a, void *b,
                    bt_err *err) {
    const struct bt_view *s0 = &op->src[0], *s1 = &op->src[1], *dv = &op->dst;
    if (op->code == BT_OP_GEMM) {
        int ta = (op->flags & BT_OPF_TRANS_A) != 0, tb = (op->flags & BT_OPF_TRANS_B) != 0;
        int64_t k = ta ? s0->rows : s0->cols;
        cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
                    (int)dv->rows, (int)dv->cols, (int)k, op->scale, a, (int)s0->cols, b,
                    (int)s1->cols, op->eps, d, (int)dv->cols);
        return BT_OK;
    }
    /* CHOL_INV: src0 is the workspace and src1 the info: both written */
    if (s0->buf->wrapped || s1->buf->wrapped)
        return c->host->set_error(err, BT_E_INVAL, "cpu: chol_inv: src0 / src1 are written but a "
                                  "wrapped read-only buffer");
    int64_t n = dv->rows, bad = bt_la_chol_lower(a, n, c->host->parallel_for);
    *(int32_t *)b = (int32_t)bad;
    if (!bad) bt_la_tri_inv(a, d, n, c->host->parallel_for);
    return BT_OK;
}
