/* cu_plugin.c - descriptor, options and score of the "cuda" backend; device selection,
 * open/close, device_info, the buffers (device memory) and the memory limit (`max_memory`). */
#include "cu_int.h"

#include <stdio.h>
#include <string.h>

static const struct bt_option cu_options[] = {
    {"device", BT_OPT_INT, "0", 0, 255, NULL, "CUDA device ordinal (as nvidia-smi numbers them "
     "when CUDA_VISIBLE_DEVICES is unset)"},
    {"max_memory", BT_OPT_INT, "0", 0, 1e15, NULL,
     "most device memory this instance allocates (weights + KV cache + activations + scratch), "
     "e.g. 4G; 0: the device's free memory"},
    {"graphs", BT_OPT_BOOL, "false", 0, 0, NULL,
     "replay run lists of small batches (a decode step) as CUDA graphs, updated per token"},
    {NULL, 0, NULL, 0, 0, NULL, NULL},
};

/* ---- errors ----------------------------------------------------------------------------------- */
bt_status bt_cu_fail(struct bt_cu_ctx *c, bt_err *err, const char *what, const char *call,
                     cudaError_t e) {
    bt_status st = e == cudaErrorMemoryAllocation ? BT_E_NOMEM : BT_E_BACKEND;
    return c->host->set_error(err, st, "cuda: %s: %s failed (%d %s: %s)", what, call, (int)e,
                              cudaGetErrorName(e), cudaGetErrorString(e));
}

static const char *blas_str(cublasStatus_t s) {
    switch (s) {
    case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
    case CUBLAS_STATUS_ALLOC_FAILED: return "CUBLAS_STATUS_ALLOC_FAILED";
    case CUBLAS_STATUS_ARCH_MISMATCH: return "CUBLAS_STATUS_ARCH_MISMATCH";
    default: return "cuBLAS error";
    }
}

/* the CUDA runtime's current device is per host thread: every entry point makes it ours */
void bt_cu_bind(struct bt_cu_ctx *c) {
    if (c->st) (void)cudaSetDevice(c->dev);
}

/* ---- score, open, close ----------------------------------------------------------------------- */
/* 30 with a CUDA device (preferred over opencl, 20, and the CPU backends), else 0 */
static int cu_score(void) {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
        (void)cudaGetLastError(); /* clear the sticky "no device / no driver" status */
        return 0;
    }
    return n > 0 ? 30 : 0;
}

static void cu_close(void *ctx) {
    struct bt_cu_ctx *c = ctx;
    bt_cu_bind(c);
    if (c->st) (void)cudaStreamSynchronize(c->st);
    while (c->bufs) {
        struct bt_buf *b = c->bufs;
        c->bufs = b->next;
        (void)cudaFree(b->p);
        c->host->free(b);
    }
    bt_cu_scratch_free(c, &c->act);
    bt_cu_scratch_free(c, &c->ids);
    bt_cu_scratch_free(c, &c->wdq);
    bt_cu_scratch_free(c, &c->vqx);
    bt_cu_scratch_free(c, &c->la);
    if (c->solver) cusolverDnDestroy(c->solver);
    bt_cu_graph_free(c);
    if (c->blas) cublasDestroy(c->blas);
    if (c->st) (void)cudaStreamDestroy(c->st);
    const struct bt_host *h = c->host;
    memset(c, 0, sizeof *c);
    c->host = h;
}

static bt_status cu_open(void *ctx, const struct bt_host *host, const bt_optset *opts,
                         bt_err *err) {
    struct bt_cu_ctx *c = ctx;
    memset(c, 0, sizeof *c);
    c->host = host;
    int64_t idx = host->opt_int(opts, "device");
    int64_t maxm = host->opt_int(opts, "max_memory");
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess || n <= 0) {
        (void)cudaGetLastError();
        return host->set_error(err, BT_E_UNSUPPORTED, "cuda: no CUDA device (%s)",
                               e != cudaSuccess ? cudaGetErrorString(e) : "0 devices");
    }
    if (idx < 0 || idx >= n)
        return host->set_error(err, BT_E_INVAL, "cuda: device %lld out of range: %d device%s",
                               (long long)idx, n, n == 1 ? "" : "s");
    c->dev = (int)idx;
    c->n_devices = n;
    struct cudaDeviceProp pr;
    if ((e = cudaSetDevice(c->dev)) != cudaSuccess ||
        (e = cudaGetDeviceProperties(&pr, c->dev)) != cudaSuccess)
        return bt_cu_fail(c, err, "open", "cudaSetDevice/cudaGetDeviceProperties", e);
    size_t fr = 0, tot = 0;
    if ((e = cudaMemGetInfo(&fr, &tot)) != cudaSuccess) return bt_cu_fail(c, err, "open", "cudaMemGetInfo", e);
    if ((e = cudaStreamCreateWithFlags(&c->st, cudaStreamNonBlocking)) != cudaSuccess) {
        bt_status st = bt_cu_fail(c, err, "open", "cudaStreamCreate", e);
        cu_close(c);
        return st;
    }
    cublasStatus_t bs = cublasCreate(&c->blas);
    if (bs == CUBLAS_STATUS_SUCCESS) bs = cublasSetStream(c->blas, c->st);
    if (bs == CUBLAS_STATUS_SUCCESS) bs = cublasSetMathMode(c->blas, CUBLAS_PEDANTIC_MATH); /* no TF32 */
    if (bs != CUBLAS_STATUS_SUCCESS) {
        cu_close(c);
        return host->set_error(err, BT_E_BACKEND, "cuda: open: cuBLAS setup failed (%d %s)",
                               (int)bs, blas_str(bs));
    }
    snprintf(c->name, sizeof c->name, "%.100s (sm_%d%d, CUDA)", pr.name, pr.major, pr.minor);
    c->mem_total = tot;
    c->max_memory = maxm > 0 ? (uint64_t)maxm : 0;
    c->sms = pr.multiProcessorCount > 0 ? pr.multiProcessorCount : 1;
    c->graphs = host->opt_int(opts, "graphs") != 0;
    host->log(BT_LOG_INFO, "cuda: device %d of %d: %s, %llu MiB (%llu MiB free), %d SMs%s",
              c->dev, n, c->name, (unsigned long long)(tot >> 20), (unsigned long long)(fr >> 20),
              c->sms, c->max_memory ? ", max_memory set" : "");
    return BT_OK;
}

static bt_status cu_device_info(void *ctx, struct bt_device_info *out) {
    struct bt_cu_ctx *c = ctx;
    memset(out, 0, sizeof *out);
    snprintf(out->name, sizeof out->name, "%s", c->name);
    out->mem_bytes = c->max_memory && c->max_memory < c->mem_total ? c->max_memory : c->mem_total;
    out->host_memory = 0;
    out->n_devices = (uint32_t)c->n_devices;
    return BT_OK;
}

/* ---- memory accounting -------------------------------------------------------------------------- */
static uint64_t used_all(const struct bt_cu_ctx *c) { return c->used[0] + c->used[1] + c->used[2]; }

static double mib(uint64_t n) { return (double)n / 1048576.0; }

/* BT_E_NOMEM naming what is already held (weights, KV cache, the rest) and what was asked for */
static bt_status no_room(struct bt_cu_ctx *c, bt_err *err, uint64_t n, uint32_t usage,
                         const char *limit, uint64_t lim) {
    static const char *const what[3] = {"weights", "activations", "KV cache"};
    return c->host->set_error(err, BT_E_NOMEM, "cuda: %.1f MiB more for the %s do not fit in %s "
                              "(%.1f MiB): the model's weights hold %.1f MiB, the KV cache %.1f MiB, "
                              "activations and scratch %.1f MiB", mib(n),
                              what[usage < 3 ? usage : 1], limit, mib(lim), mib(c->used[BT_BUF_WEIGHTS]),
                              mib(c->used[BT_BUF_KV]), mib(c->used[BT_BUF_ACT]));
}

/* cudaMalloc of n bytes counted under usage (max_memory checked first) */
static bt_status dev_alloc(struct bt_cu_ctx *c, uint64_t n, uint32_t usage, void **p, bt_err *err) {
    *p = NULL;
    if (usage > 2) usage = BT_BUF_ACT;
    if (c->max_memory && (n > c->max_memory || used_all(c) > c->max_memory - n))
        return no_room(c, err, n, usage, "max_memory", c->max_memory);
    cudaError_t e = cudaMalloc(p, n ? (size_t)n : 1);
    if (e != cudaSuccess) {
        (void)cudaGetLastError();
        *p = NULL;
        if (e == cudaErrorMemoryAllocation) return no_room(c, err, n, usage, "the device's memory", c->mem_total);
        return bt_cu_fail(c, err, "buf_alloc", "cudaMalloc", e);
    }
    c->used[usage] += n;
    return BT_OK;
}

bt_status bt_cu_scratch(struct bt_cu_ctx *c, struct bt_cu_scratch *s, size_t n, const char *what,
                        bt_err *err) {
    if (s->p && s->cap >= n) return BT_OK;
    bt_cu_scratch_free(c, s);
    size_t want = n + n / 4 + 256;
    bt_status st = dev_alloc(c, want, BT_BUF_ACT, &s->p, err);
    if (st == BT_E_NOMEM && want > n) { /* no room for the slack: exactly n */
        want = n;
        st = dev_alloc(c, want, BT_BUF_ACT, &s->p, err);
        if (!st && err) { err->status = BT_OK; err->msg[0] = 0; }
    }
    if (st) {
        char m[sizeof err->msg];
        snprintf(m, sizeof m, "%s", err ? err->msg : "");
        return c->host->set_error(err, st, "cuda: %s: scratch: %s", what, m);
    }
    s->cap = want;
    return BT_OK;
}

void bt_cu_scratch_free(struct bt_cu_ctx *c, struct bt_cu_scratch *s) {
    if (s->p) {
        if (c->st) (void)cudaStreamSynchronize(c->st); /* no queued kernel may still use it */
        (void)cudaFree(s->p);
        c->used[BT_BUF_ACT] -= s->cap;
    }
    s->p = NULL;
    s->cap = 0;
}

/* ---- buffers ---------------------------------------------------------------------------------- */
static bt_status cu_buf_alloc(void *ctx, uint64_t n, uint32_t usage, bt_buf **out, bt_err *err) {
    struct bt_cu_ctx *c = ctx;
    bt_cu_bind(c);
    *out = NULL;
    if (usage > BT_BUF_KV) usage = BT_BUF_ACT;
    struct bt_buf *b = c->host->alloc(sizeof *b);
    if (!b) return c->host->set_error(err, BT_E_NOMEM, "cuda: out of host memory");
    void *p = NULL;
    bt_status st = dev_alloc(c, n, usage, &p, err);
    if (st) { c->host->free(b); return st; }
    cudaError_t e = cudaMemsetAsync(p, 0, n ? (size_t)n : 1, c->st); /* defined contents */
    if (e == cudaSuccess) e = cudaStreamSynchronize(c->st);
    if (e != cudaSuccess) {
        (void)cudaFree(p);
        c->used[usage] -= n;
        c->host->free(b);
        return bt_cu_fail(c, err, "buf_alloc", "cudaMemset", e);
    }
    b->p = p;
    b->n = n;
    b->usage = usage;
    b->gen = 0;
    b->perm_ok = 0;
    b->perm_cols = 0;
    b->prev = NULL;
    b->next = c->bufs;
    if (c->bufs) c->bufs->prev = b;
    c->bufs = b;
    *out = b;
    return BT_OK;
}

static void cu_buf_free(void *ctx, bt_buf *b) {
    struct bt_cu_ctx *c = ctx;
    if (!b) return;
    bt_cu_bind(c);
    if (b->prev) b->prev->next = b->next;
    else c->bufs = b->next;
    if (b->next) b->next->prev = b->prev;
    if (c->st) (void)cudaStreamSynchronize(c->st);
    (void)cudaFree(b->p);
    c->used[b->usage] -= b->n;
    c->host->free(b);
}

static bt_status check_range(struct bt_cu_ctx *c, const char *fn, bt_buf *b, uint64_t off,
                             uint64_t n, const void *p, bt_err *err) {
    if (!b || (!p && n))
        return c->host->set_error(err, BT_E_INVAL, "cuda: %s: null buffer or pointer", fn);
    if (off > b->n || n > b->n - off)
        return c->host->set_error(err, BT_E_INVAL, "cuda: %s: bytes [%llu, %llu) outside a "
                                  "buffer of %llu", fn, (unsigned long long)off,
                                  (unsigned long long)(off + n), (unsigned long long)b->n);
    return BT_OK;
}

static bt_status cu_buf_write(void *ctx, bt_buf *b, uint64_t off, const void *src, uint64_t n,
                              bt_err *err) {
    struct bt_cu_ctx *c = ctx;
    bt_cu_bind(c);
    bt_status st = check_range(c, "buf_write", b, off, n, src, err);
    if (st || !n) return st;
    b->gen++; /* a vq permutation in it is checked again */
    cudaError_t e = cudaMemcpyAsync(b->p + off, src, (size_t)n, cudaMemcpyHostToDevice, c->st);
    if (e == cudaSuccess) e = cudaStreamSynchronize(c->st);
    return e == cudaSuccess ? BT_OK : bt_cu_fail(c, err, "buf_write", "cudaMemcpy", e);
}

/* also where errors of kernels queued by run() surface (the stream is synchronized here) */
static bt_status cu_buf_read(void *ctx, bt_buf *b, uint64_t off, void *dst, uint64_t n,
                             bt_err *err) {
    struct bt_cu_ctx *c = ctx;
    bt_cu_bind(c);
    bt_status st = check_range(c, "buf_read", b, off, n, dst, err);
    if (st) return st;
    cudaError_t e = n ? cudaMemcpyAsync(dst, b->p + off, (size_t)n, cudaMemcpyDeviceToHost, c->st)
                      : cudaSuccess;
    if (e == cudaSuccess) e = cudaStreamSynchronize(c->st);
    return e == cudaSuccess ? BT_OK : bt_cu_fail(c, err, "buf_read (or a kernel before it)",
                                                 "cudaMemcpy", e);
}

/* ---- descriptor ------------------------------------------------------------------------------- */
static const struct bt_backend_i cu_iface = {
    .struct_size = sizeof(struct bt_backend_i),
    .score       = cu_score,
    .open        = cu_open,
    .close       = cu_close,
    .device_info = cu_device_info,
    .buf_alloc   = cu_buf_alloc,
    .buf_free    = cu_buf_free,
    .buf_write   = cu_buf_write,
    .buf_read    = cu_buf_read,
    .supports_op = bt_cu_supports_op,
    .run         = bt_cu_run,
    .buf_wrap    = NULL, /* device memory only: the runtime uploads */
};

static const struct bt_plugin cu_desc = {
    .abi_version = BT_ABI_VERSION,
    .struct_size = sizeof(struct bt_plugin),
    .name        = "cuda",
    .version     = "0.1.0",
    .kind        = BT_KIND_BACKEND,
    .caps        = 0,
    .description = "CUDA kernels (+ cuBLAS for prompt batches) for every op and the ternary, "
                   "MTQ, Q8_0, Q4_0, vq and float weight formats; cuBLAS / cuSOLVER for the "
                   "second-order engine",
    .options     = cu_options,
    .iface       = &cu_iface,
    .ctx_size    = sizeof(struct bt_cu_ctx),
};

BT_PLUGIN_DEFINE(cu_desc)
