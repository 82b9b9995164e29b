/* ocl_int.h - internal interface of the OpenCL backend: instance state, buffers, the program
 * cache and helpers shared by its C files (ocl_plugin.c: device, buffers; ocl_prog.c: programs;
 * ocl_ops.c: checks, run, element-wise ops; ocl_matmul.c: weight ops). Not part of the ABI. */
#ifndef BT_OCL_INT_H
#define BT_OCL_INT_H

#ifndef CL_TARGET_OPENCL_VERSION
#define CL_TARGET_OPENCL_VERSION 120
#endif
#include <CL/cl.h>

#include "bt/bt_plugin.h"
#include "bt_types.h"

#include <stddef.h>
#include <stdint.h>

/* a device buffer (or a host range wrapped without a copy, read-only) */
struct bt_buf {
    cl_mem         mem;
    uint64_t       n;       /* bytes */
    int            wrapped; /* 1: buf_wrap'ed host memory, never written */
    struct bt_buf *prev, *next; /* the instance's list of live buffers (freed at close) */
};

/* kernels of the misc program (misc.cl, attn.cl) */
enum {
    BT_OCL_K_RMSNORM, BT_OCL_K_ROPE, BT_OCL_K_SWIGLU, BT_OCL_K_ADD, BT_OCL_K_ACTQ,
    BT_OCL_K_KMEANS, BT_OCL_K_ATTN, BT_OCL_K_ATTN_COMBINE, BT_OCL_K_SCALE, BT_OCL_K_RELU2,
    BT_OCL_K_QUANT_ROW, BT_OCL_K_COUNT
};

/* kernels of a weight-format program (fmt.cl, gemv.cl, wkern.cl) */
enum { BT_OCL_W_GEMV1, BT_OCL_W_GEMV2, BT_OCL_W_GEMV4, BT_OCL_W_GEMV8, BT_OCL_W_GEMM,
       BT_OCL_W_DEQUANT, BT_OCL_W_COUNT };

/* GEMV geometry (must match the -D values ocl_prog.c builds with) */
#define BT_OCL_TPR       64 /* threads per work-group */
#define BT_OCL_RPT_SMALL 4  /* rows per work-group for 1-2 tokens */
#define BT_OCL_RPT       2  /* rows per work-group for 4-8 tokens */
/* tiled GEMM geometry (wkern.cl) */
#define BT_OCL_TM 64
#define BT_OCL_TN 64
/* MATMUL uses the tiled kernel from this many tokens on, GEMV launches of 8/4/2/1 below */
#define BT_OCL_GEMM_MIN 16
/* attention (attn.cl) */
#define BT_OCL_AW    128
#define BT_OCL_HDMAX 512

/* a compiled weight-format program */
struct bt_ocl_wprog {
    struct bt_tfmt fmt;
    int            vec; /* F32/F16/BF16: elements per GEMV unit (1 or 4); else 0 */
    cl_program     prog;
    cl_kernel      k[BT_OCL_W_COUNT];
};
#define BT_OCL_MAX_WPROG 80

struct bt_ocl_ctx {
    const struct bt_host *host;
    cl_platform_id        plat;
    cl_device_id          dev;
    cl_context            cl;
    cl_command_queue      q;
    char                  name[128];   /* device name (platform) */
    uint64_t              mem_bytes;   /* CL_DEVICE_GLOBAL_MEM_SIZE */
    uint64_t              max_alloc;   /* CL_DEVICE_MAX_MEM_ALLOC_SIZE */
    uint32_t              n_devices;   /* devices the `device` option indexes */
    cl_uint               cus;         /* compute units */
    int                   host_mem;    /* device works on host RAM (CPU device) */
    int                   fp64;        /* cl_khr_fp64 */
    char                  opts[160];   /* program build options */
    cl_program            misc;
    cl_kernel             mk[BT_OCL_K_COUNT];
    struct bt_ocl_wprog   wp[BT_OCL_MAX_WPROG];
    int                   n_wp;
    struct bt_buf        *bufs;        /* live buffers */
    /* scratch device buffers, grown on demand */
    cl_mem                act;  size_t act_cap;  /* MATMUL act = Q8: dequantized int8 activations */
    cl_mem                ids;  size_t ids_cap;  /* GET_ROWS row indices */
    cl_mem                part; size_t part_cap; /* ATTN: per-segment partial results */
    /* BT_OPF_SAME_INPUT: the view whose int8 activations act holds */
    int                   q8_valid;
    struct bt_view        q8_src;
};

/* ---- ocl_plugin.c ---- */
const char *bt_ocl_errstr(cl_int e);
/* BT_E_BACKEND with "opencl: <what>: <call> failed (<code>)" */
bt_status bt_ocl_fail(struct bt_ocl_ctx *c, bt_err *err, const char *what, const char *call,
                      cl_int e);
/* grow a scratch buffer to at least n bytes */
bt_status bt_ocl_scratch(struct bt_ocl_ctx *c, cl_mem *m, size_t *cap, size_t n, const char *what,
                         bt_err *err);

/* ---- ocl_prog.c ---- */
bt_status bt_ocl_build_misc(struct bt_ocl_ctx *c, bt_err *err);
/* the (cached) program of weight format fmt; vec for F32/F16/BF16 */
bt_status bt_ocl_wprog(struct bt_ocl_ctx *c, const struct bt_tfmt *fmt, int vec,
                       struct bt_ocl_wprog **out, bt_err *err);
void bt_ocl_progs_free(struct bt_ocl_ctx *c);
/* 1 if fmt is a weight format the kernels decode */
int bt_ocl_fmt_ok(const struct bt_tfmt *fmt);

/* ---- ocl_ops.c ---- */
int bt_ocl_supports_op(void *ctx, const struct bt_op *op);
bt_status bt_ocl_run(void *ctx, const struct bt_op *ops, uint32_t n, bt_err *err);
/* set kernel args from a list: BT_OCL_A_MEM(cl_mem), _U64, _I32, _F32, _LOCAL(bytes), _END */
enum { BT_OCL_A_END = 0, BT_OCL_A_MEM, BT_OCL_A_U64, BT_OCL_A_I32, BT_OCL_A_F32 };
bt_status bt_ocl_launch(struct bt_ocl_ctx *c, cl_kernel k, const char *what, cl_uint dims,
                        const size_t *gws, const size_t *lws, bt_err *err, ...);

/* ---- ocl_matmul.c ---- */
bt_status bt_ocl_matmul(struct bt_ocl_ctx *c, const struct bt_op *op, bt_err *err);
bt_status bt_ocl_dequant(struct bt_ocl_ctx *c, const struct bt_op *op, bt_err *err);
bt_status bt_ocl_get_rows(struct bt_ocl_ctx *c, const struct bt_op *op, bt_err *err);

/* embedded kernel sources (ocl_src.c, generated from kernels/ by embed_cl.cmake) */
extern const char bt_ocl_src_common[], bt_ocl_src_fmt[], bt_ocl_src_gemv[], bt_ocl_src_wkern[],
    bt_ocl_src_misc[], bt_ocl_src_attn[];

#endif
