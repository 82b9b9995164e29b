/* ocl_prog.c - building the OpenCL programs from the embedded sources: the misc program
 * (element-wise ops, activation quantizer, k-means, attention) at open, and one program per
 * weight format (GEMV for 1/2/4/8 tokens, tiled GEMM, dequant) on first use, cached. */
#include "ocl_int.h"

#include <stdio.h>
#include <string.h>

static const char *const misc_names[BT_OCL_K_COUNT] = {
    "bt_rmsnorm", "bt_rope", "bt_swiglu", "bt_add", "bt_actq", "bt_kmeans", "bt_attn",
    "bt_attn_combine", "bt_scale", "bt_relu2", "bt_quant_row"};
static const char *const w_names[BT_OCL_W_COUNT] = {
    "bt_gemv1", "bt_gemv2", "bt_gemv4", "bt_gemv8", "bt_gemm", "bt_dequant"};
/* work-group size each kernel is launched with (0: chosen per launch, at most 256) */
static const size_t misc_wg[BT_OCL_K_COUNT] = {256, 0, 256, 256, 256, 64, BT_OCL_AW, 0, 256};
static const size_t w_wg[BT_OCL_W_COUNT] = {BT_OCL_TPR, BT_OCL_TPR, BT_OCL_TPR, BT_OCL_TPR, 256, 64};

int bt_ocl_fmt_ok(const struct bt_tfmt *fmt) {
    switch (fmt->type) {
    case BT_TYPE_F32: case BT_TYPE_F16: case BT_TYPE_BF16: case BT_TYPE_Q8_0: case BT_TYPE_Q4_0:
    case BT_TYPE_TQ1_0: case BT_TYPE_TQ2_0:
        return 1;
    case BT_TYPE_MTQ: return bt_mtq_block_bytes(fmt->planes, fmt->block, fmt->layout) != 0;
    default: return 0;
    }
}

/* build srcs with the context's options plus defs; on failure the log goes to host->log */
static bt_status build(struct bt_ocl_ctx *c, const char **srcs, cl_uint n, const char *defs,
                       const char *what, cl_program *out, bt_err *err) {
    cl_int e;
    *out = NULL;
    cl_program p = clCreateProgramWithSource(c->cl, n, srcs, NULL, &e);
    if (!p) return bt_ocl_fail(c, err, what, "clCreateProgramWithSource", e);
    char opts[512];
    snprintf(opts, sizeof opts, "%s %s", c->opts, defs);
    e = clBuildProgram(p, 1, &c->dev, opts, NULL, NULL);
    if (e != CL_SUCCESS) {
        char log[4096] = "";
        size_t len = 0;
        clGetProgramBuildInfo(p, c->dev, CL_PROGRAM_BUILD_LOG, sizeof log - 1, log, &len);
        log[sizeof log - 1] = 0;
        c->host->log(BT_LOG_ERROR, "opencl: build log of the %s kernels (%s):\n%s", what, opts, log);
        clReleaseProgram(p);
        return c->host->set_error(err, BT_E_BACKEND, "opencl: building the %s kernels failed "
                                  "(%d %s): %.400s", what, (int)e, bt_ocl_errstr(e), log);
    }
    *out = p;
    return BT_OK;
}

/* create the kernels of p; each must run with its work-group size */
static bt_status kernels(struct bt_ocl_ctx *c, cl_program p, const char *const *names,
                         const size_t *wg, int n, cl_kernel *k, const char *what, bt_err *err) {
    for (int i = 0; i < n; i++) {
        cl_int e;
        k[i] = clCreateKernel(p, names[i], &e);
        if (!k[i]) return bt_ocl_fail(c, err, what, names[i], e);
        size_t max = 0;
        clGetKernelWorkGroupInfo(k[i], c->dev, CL_KERNEL_WORK_GROUP_SIZE, sizeof max, &max, NULL);
        size_t need = wg[i] ? wg[i] : 1;
        if (max && max < need)
            return c->host->set_error(err, BT_E_UNSUPPORTED, "opencl: %s: kernel %s runs at most "
                                      "%zu work-items per group on this device, it needs %zu",
                                      what, names[i], max, need);
    }
    return BT_OK;
}

bt_status bt_ocl_build_misc(struct bt_ocl_ctx *c, bt_err *err) {
    const char *srcs[] = {bt_ocl_src_common, bt_ocl_src_misc, bt_ocl_src_attn};
    bt_status st = build(c, srcs, 3, "", "misc", &c->misc, err);
    if (!st) st = kernels(c, c->misc, misc_names, misc_wg, BT_OCL_K_COUNT, c->mk, "misc", err);
    return st;
}

/* the defines that select fmt in fmt.cl */
static void fmt_defs(const struct bt_tfmt *f, int vec, char *d, size_t n) {
    switch (f->type) {
    case BT_TYPE_F32: snprintf(d, n, "-DBT_KIND=0 -DVEC=%d", vec); break;
    case BT_TYPE_F16: snprintf(d, n, "-DBT_KIND=1 -DVEC=%d", vec); break;
    case BT_TYPE_BF16: snprintf(d, n, "-DBT_KIND=2 -DVEC=%d", vec); break;
    case BT_TYPE_Q8_0: snprintf(d, n, "-DBT_KIND=3"); break;
    case BT_TYPE_Q4_0: snprintf(d, n, "-DBT_KIND=4"); break;
    case BT_TYPE_TQ1_0: snprintf(d, n, "-DBT_KIND=5"); break;
    case BT_TYPE_TQ2_0:
        snprintf(d, n, "-DBT_KIND=6 -DNP=1 -DBLK=256 -DCODE_OFF=0 -DSCALE_OFF=64");
        break;
    default: /* MTQ */
        if (f->layout == 0)
            snprintf(d, n, "-DBT_KIND=6 -DNP=%u -DBLK=%u -DCODE_OFF=%u -DSCALE_OFF=0", f->planes,
                     f->block, 2 * f->planes);
        else
            snprintf(d, n, "-DBT_KIND=7 -DNP=%u -DBLK=%u", f->planes, f->block);
        break;
    }
}

bt_status bt_ocl_wprog(struct bt_ocl_ctx *c, const struct bt_tfmt *fmt, int vec,
                       struct bt_ocl_wprog **out, bt_err *err) {
    struct bt_tfmt key = {fmt->type, 0, 0, 0};
    if (fmt->type == BT_TYPE_MTQ) key = *fmt;
    if (fmt->type != BT_TYPE_F32 && fmt->type != BT_TYPE_F16 && fmt->type != BT_TYPE_BF16) vec = 0;
    for (int i = 0; i < c->n_wp; i++) {
        struct bt_ocl_wprog *w = &c->wp[i];
        if (w->vec == vec && !memcmp(&w->fmt, &key, sizeof key)) { *out = w; return BT_OK; }
    }
    char fs[32];
    bt_fmt_str(fmt, fs, sizeof fs);
    if (!bt_ocl_fmt_ok(fmt))
        return c->host->set_error(err, BT_E_UNSUPPORTED, "opencl: weight format %s not supported", fs);
    if (c->n_wp == BT_OCL_MAX_WPROG)
        return c->host->set_error(err, BT_E_UNSUPPORTED, "opencl: too many weight formats in use "
                                  "(%d programs)", BT_OCL_MAX_WPROG);
    char defs[256], what[48];
    fmt_defs(fmt, vec, defs, sizeof defs);
    snprintf(defs + strlen(defs), sizeof defs - strlen(defs),
             " -DBT_TPR=%d -DBT_RPT=%d -DBT_RPT_SMALL=%d", BT_OCL_TPR, BT_OCL_RPT, BT_OCL_RPT_SMALL);
    snprintf(what, sizeof what, "%s%s", fs, vec == 4 ? "x4" : "");
    const char *srcs[] = {
        bt_ocl_src_common, bt_ocl_src_fmt,
        "#define BT_NT 1\n#define BT_GEMV_NAME bt_gemv1\n", bt_ocl_src_gemv,
        "#undef BT_NT\n#undef BT_GEMV_NAME\n#define BT_NT 2\n#define BT_GEMV_NAME bt_gemv2\n", bt_ocl_src_gemv,
        "#undef BT_NT\n#undef BT_GEMV_NAME\n#define BT_NT 4\n#define BT_GEMV_NAME bt_gemv4\n", bt_ocl_src_gemv,
        "#undef BT_NT\n#undef BT_GEMV_NAME\n#define BT_NT 8\n#define BT_GEMV_NAME bt_gemv8\n", bt_ocl_src_gemv,
        bt_ocl_src_wkern};
    struct bt_ocl_wprog *w = &c->wp[c->n_wp];
    memset(w, 0, sizeof *w);
    bt_status st = build(c, srcs, (cl_uint)(sizeof srcs / sizeof srcs[0]), defs, what, &w->prog, err);
    if (!st) st = kernels(c, w->prog, w_names, w_wg, BT_OCL_W_COUNT, w->k, what, err);
    if (st) {
        for (int i = 0; i < BT_OCL_W_COUNT; i++)
            if (w->k[i]) clReleaseKernel(w->k[i]);
        if (w->prog) clReleaseProgram(w->prog);
        memset(w, 0, sizeof *w);
        return st;
    }
    w->fmt = key;
    w->vec = vec;
    c->n_wp++;
    *out = w;
    return BT_OK;
}

void bt_ocl_progs_free(struct bt_ocl_ctx *c) {
    for (int i = 0; i < c->n_wp; i++) {
        for (int j = 0; j < BT_OCL_W_COUNT; j++)
            if (c->wp[i].k[j]) clReleaseKernel(c->wp[i].k[j]);
        clReleaseProgram(c->wp[i].prog);
    }
    c->n_wp = 0;
    for (int j = 0; j < BT_OCL_K_COUNT; j++)
        if (c->mk[j]) clReleaseKernel(c->mk[j]);
    if (c->misc) clReleaseProgram(c->misc);
    c->misc = NULL;
}
