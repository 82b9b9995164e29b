/* mtq_so.h - second-order (GPTQ-style) multi-plane ternary quantization of a whole tensor on
 * the host's engine (host->so_quantize): per-block plane scales chosen when the column loop
 * first reaches a block, every plane of a column rounded together (nearest of the 3^N levels)
 * with the error fed forward, then all scales of a row refit jointly by Hessian-weighted least
 * squares with the codes fixed. Shared by the absmean (N = 1) and residual plugins. */
#ifndef BT_MTQ_SO_H
#define BT_MTQ_SO_H

#include "bt/bt_plugin.h"

#ifdef __cplusplus
extern "C" {
#endif

struct bt_mtq_so_opts {
    int planes; /* N, 1..8 */
    int block;  /* weights per scale block (divides cols), <= 256 */
    int refit;  /* 1: joint H-weighted least-squares refit of the scales after the codes */
    int passes; /* >= 1: extra passes re-run the column loop with the refit scales fixed */
    int rounds; /* N > 1: mtq refit rounds when a block's scales are first chosen */
    int init;   /* N > 1: BT_MTQ_INIT_* start of that choice */
};

/* W (rows x cols) -> codes and scales in the layout of bt_mtq_quantize_row: for row r and
 * block b, codes at t + (r*nb + b)*N*block (plane-major within the block), scales at
 * a + (r*nb + b)*N, fp16-representable. *herr gets sum_rows (w - q)^T H (w - q) (damped H). */
bt_status bt_mtq_so_quantize(const struct bt_host *host, const bt_hessian *h, const float *W,
                             int64_t rows, int64_t cols, const struct bt_mtq_so_opts *o,
                             int8_t *t, float *a, double *herr, bt_err *err);

/* 1 if the host has the second-order services (ABI >= 1.1) */
int bt_mtq_so_available(const struct bt_host *host);

#ifdef __cplusplus
}
#endif
#endif
