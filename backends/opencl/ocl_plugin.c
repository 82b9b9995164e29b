/* ocl_plugin.c - descriptor, options and score of the "opencl" backend; device selection,
 * open/close, device_info and the buffers (device memory, or host memory wrapped without a
 * copy on CPU devices). */
#include "ocl_int.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

static const struct bt_option ocl_options[] = {
    {"device", BT_OPT_INT, "0", 0, 255, NULL,
     "index of the device among those `platform` and `device_type` select, in platform order"},
    {"platform", BT_OPT_STRING, "", 0, 0, NULL,
     "only platforms whose name or vendor contains this text (case-insensitive); empty: all"},
    {"device_type", BT_OPT_ENUM, "auto", 0, 0, "auto|gpu|cpu|all",
     "auto: the GPUs if there are any, else every device"},
    {NULL, 0, NULL, 0, 0, NULL, NULL},
};

/* ---- errors ------------------------------------------------------------------------------ */
const char *bt_ocl_errstr(cl_int e) {
    switch (e) {
    case CL_DEVICE_NOT_FOUND: return "CL_DEVICE_NOT_FOUND";
    case CL_DEVICE_NOT_AVAILABLE: return "CL_DEVICE_NOT_AVAILABLE";
    case CL_COMPILER_NOT_AVAILABLE: return "CL_COMPILER_NOT_AVAILABLE";
    case CL_MEM_OBJECT_ALLOCATION_FAILURE: return "CL_MEM_OBJECT_ALLOCATION_FAILURE";
    case CL_OUT_OF_RESOURCES: return "CL_OUT_OF_RESOURCES";
    case CL_OUT_OF_HOST_MEMORY: return "CL_OUT_OF_HOST_MEMORY";
    case CL_BUILD_PROGRAM_FAILURE: return "CL_BUILD_PROGRAM_FAILURE";
    case CL_MISALIGNED_SUB_BUFFER_OFFSET: return "CL_MISALIGNED_SUB_BUFFER_OFFSET";
    case CL_INVALID_VALUE: return "CL_INVALID_VALUE";
    case CL_INVALID_BUFFER_SIZE: return "CL_INVALID_BUFFER_SIZE";
    case CL_INVALID_HOST_PTR: return "CL_INVALID_HOST_PTR";
    case CL_INVALID_MEM_OBJECT: return "CL_INVALID_MEM_OBJECT";
    case CL_INVALID_BUILD_OPTIONS: return "CL_INVALID_BUILD_OPTIONS";
    case CL_INVALID_KERNEL_NAME: return "CL_INVALID_KERNEL_NAME";
    case CL_INVALID_ARG_INDEX: return "CL_INVALID_ARG_INDEX";
    case CL_INVALID_ARG_VALUE: return "CL_INVALID_ARG_VALUE";
    case CL_INVALID_ARG_SIZE: return "CL_INVALID_ARG_SIZE";
    case CL_INVALID_KERNEL_ARGS: return "CL_INVALID_KERNEL_ARGS";
    case CL_INVALID_WORK_DIMENSION: return "CL_INVALID_WORK_DIMENSION";
    case CL_INVALID_WORK_GROUP_SIZE: return "CL_INVALID_WORK_GROUP_SIZE";
    case CL_INVALID_WORK_ITEM_SIZE: return "CL_INVALID_WORK_ITEM_SIZE";
    case CL_INVALID_GLOBAL_WORK_SIZE: return "CL_INVALID_GLOBAL_WORK_SIZE";
    case CL_INVALID_OPERATION: return "CL_INVALID_OPERATION";
    case CL_MEM_COPY_OVERLAP: return "CL_MEM_COPY_OVERLAP";
    case -1001: return "CL_PLATFORM_NOT_FOUND_KHR";
    default: return "CL error";
    }
}

bt_status bt_ocl_fail(struct bt_ocl_ctx *c, bt_err *err, const char *what, const char *call,
                      cl_int e) {
    bt_status st = e == CL_MEM_OBJECT_ALLOCATION_FAILURE || e == CL_OUT_OF_HOST_MEMORY
                   ? BT_E_NOMEM : BT_E_BACKEND;
    return c->host->set_error(err, st, "opencl: %s: %s failed (%d %s)", what, call, (int)e,
                              bt_ocl_errstr(e));
}

/* ---- device enumeration -------------------------------------------------------------------- */
enum { TYPE_AUTO, TYPE_GPU, TYPE_CPU, TYPE_ALL };
#define MAX_DEV 64

struct dev_ent {
    cl_platform_id p;
    cl_device_id   d;
    cl_device_type type;
};

static int icontains(const char *hay, const char *needle) {
    size_t n = strlen(needle);
    if (!n) return 1;
    for (; *hay; hay++) {
        size_t i = 0;
        while (i < n && hay[i] && tolower((unsigned char)hay[i]) == tolower((unsigned char)needle[i]))
            i++;
        if (i == n) return 1;
    }
    return 0;
}

/* devices of the platforms matching filter, of type mode, in platform order */
static int list_devices(const char *filter, int mode, struct dev_ent *out) {
    cl_platform_id plats[16];
    cl_uint np = 0;
    int n = 0, n_gpu = 0;
    if (clGetPlatformIDs(16, plats, &np) != CL_SUCCESS) return 0;
    if (np > 16) np = 16;
    for (cl_uint i = 0; i < np; i++) {
        char name[256] = "", vendor[256] = "";
        clGetPlatformInfo(plats[i], CL_PLATFORM_NAME, sizeof name, name, NULL);
        clGetPlatformInfo(plats[i], CL_PLATFORM_VENDOR, sizeof vendor, vendor, NULL);
        if (filter && *filter && !icontains(name, filter) && !icontains(vendor, filter)) continue;
        cl_device_id devs[MAX_DEV];
        cl_uint nd = 0;
        if (clGetDeviceIDs(plats[i], CL_DEVICE_TYPE_ALL, MAX_DEV, devs, &nd) != CL_SUCCESS) continue;
        if (nd > MAX_DEV) nd = MAX_DEV;
        for (cl_uint j = 0; j < nd && n < MAX_DEV; j++) {
            cl_device_type t = 0;
            cl_bool avail = CL_TRUE;
            clGetDeviceInfo(devs[j], CL_DEVICE_TYPE, sizeof t, &t, NULL);
            clGetDeviceInfo(devs[j], CL_DEVICE_AVAILABLE, sizeof avail, &avail, NULL);
            if (!avail) continue;
            if (mode == TYPE_GPU && !(t & CL_DEVICE_TYPE_GPU)) continue;
            if (mode == TYPE_CPU && !(t & CL_DEVICE_TYPE_CPU)) continue;
            n_gpu += (t & CL_DEVICE_TYPE_GPU) != 0;
            out[n++] = (struct dev_ent){plats[i], devs[j], t};
        }
    }
    if (mode == TYPE_AUTO && n_gpu) { /* keep the GPUs */
        int k = 0;
        for (int i = 0; i < n; i++)
            if (out[i].type & CL_DEVICE_TYPE_GPU) out[k++] = out[i];
        n = k;
    }
    return n;
}

/* 20 with a GPU (preferred over the CPU backends), 2 with only other devices (PoCL), 0 none */
static int ocl_score(void) {
    struct dev_ent d[MAX_DEV];
    int n = list_devices("", TYPE_ALL, d), gpu = 0;
    for (int i = 0; i < n; i++) gpu |= (d[i].type & CL_DEVICE_TYPE_GPU) != 0;
    return n == 0 ? 0 : gpu ? 20 : 2;
}

/* ---- open / close ---------------------------------------------------------------------------- */
static void ocl_close(void *ctx) {
    struct bt_ocl_ctx *c = ctx;
    if (c->q) clFinish(c->q);
    while (c->bufs) {
        struct bt_buf *b = c->bufs;
        c->bufs = b->next;
        clReleaseMemObject(b->mem);
        c->host->free(b);
    }
    if (c->act) clReleaseMemObject(c->act);
    if (c->ids) clReleaseMemObject(c->ids);
    if (c->part) clReleaseMemObject(c->part);
    bt_ocl_progs_free(c);
    if (c->q) clReleaseCommandQueue(c->q);
    if (c->cl) clReleaseContext(c->cl);
    const struct bt_host *h = c->host;
    memset(c, 0, sizeof *c);
    c->host = h;
}

static bt_status ocl_open(void *ctx, const struct bt_host *host, const bt_optset *opts,
                          bt_err *err) {
    struct bt_ocl_ctx *c = ctx;
    memset(c, 0, sizeof *c);
    c->host = host;
    int64_t idx = host->opt_int(opts, "device");
    const char *pf = host->opt_str(opts, "platform");
    const char *ty = host->opt_str(opts, "device_type");
    if (!pf) pf = "";
    int mode = TYPE_AUTO;
    if (ty && *ty) {
        if (!strcmp(ty, "gpu")) mode = TYPE_GPU;
        else if (!strcmp(ty, "cpu")) mode = TYPE_CPU;
        else if (!strcmp(ty, "all")) mode = TYPE_ALL;
        else if (strcmp(ty, "auto"))
            return host->set_error(err, BT_E_INVAL, "opencl: device_type '%s' is not one of "
                                   "auto|gpu|cpu|all", ty);
    }
    struct dev_ent devs[MAX_DEV];
    int n = list_devices(pf, mode, devs);
    if (n == 0)
        return host->set_error(err, BT_E_UNSUPPORTED, "opencl: no OpenCL device (platform "
                               "filter '%s', device_type %s)", pf, ty && *ty ? ty : "auto");
    if (idx < 0 || idx >= n)
        return host->set_error(err, BT_E_INVAL, "opencl: device %lld out of range: %d device%s "
                               "selected", (long long)idx, n, n == 1 ? "" : "s");
    c->n_devices = (uint32_t)n;
    c->plat = devs[idx].p;
    c->dev = devs[idx].d;
    c->host_mem = (devs[idx].type & CL_DEVICE_TYPE_CPU) != 0;

    cl_int e;
    cl_context_properties props[] = {CL_CONTEXT_PLATFORM, (cl_context_properties)c->plat, 0};
    c->cl = clCreateContext(props, 1, &c->dev, NULL, NULL, &e);
    if (!c->cl) {
        bt_status st = bt_ocl_fail(c, err, "open", "clCreateContext", e);
        ocl_close(c);
        return st;
    }
    c->q = clCreateCommandQueue(c->cl, c->dev, 0, &e);
    if (!c->q) {
        bt_status st = bt_ocl_fail(c, err, "open", "clCreateCommandQueue", e);
        ocl_close(c);
        return st;
    }

    char dname[128] = "", dver[128] = "";
    cl_ulong mem = 0, maxa = 0;
    cl_uint cus = 1;
    cl_device_fp_config sp = 0, dp = 0;
    clGetDeviceInfo(c->dev, CL_DEVICE_NAME, sizeof dname, dname, NULL);
    clGetDeviceInfo(c->dev, CL_DEVICE_VERSION, sizeof dver, dver, NULL);
    clGetDeviceInfo(c->dev, CL_DEVICE_GLOBAL_MEM_SIZE, sizeof mem, &mem, NULL);
    clGetDeviceInfo(c->dev, CL_DEVICE_MAX_MEM_ALLOC_SIZE, sizeof maxa, &maxa, NULL);
    clGetDeviceInfo(c->dev, CL_DEVICE_MAX_COMPUTE_UNITS, sizeof cus, &cus, NULL);
    clGetDeviceInfo(c->dev, CL_DEVICE_SINGLE_FP_CONFIG, sizeof sp, &sp, NULL);
    clGetDeviceInfo(c->dev, CL_DEVICE_DOUBLE_FP_CONFIG, sizeof dp, &dp, NULL);
    dname[sizeof dname - 1] = dver[sizeof dver - 1] = 0;
    char *sp3 = dver; /* "OpenCL 3.0 CUDA ...": keep the first three words */
    for (int w = 0; sp3 && w < 3; w++) sp3 = strchr(sp3 + (w > 0), ' ');
    if (sp3) *sp3 = 0;
    snprintf(c->name, sizeof c->name, "%.90s (%.34s)", dname, dver);
    c->mem_bytes = mem;
    c->max_alloc = maxa;
    c->cus = cus ? cus : 1;
    c->fp64 = dp != 0;
    snprintf(c->opts, sizeof c->opts, "-cl-std=CL1.2%s%s", c->fp64 ? " -DBT_FP64" : "",
             (sp & CL_FP_CORRECTLY_ROUNDED_DIVIDE_SQRT) ? " -cl-fp32-correctly-rounded-divide-sqrt" : "");
    bt_status st = bt_ocl_build_misc(c, err);
    if (st) { ocl_close(c); return st; }
    host->log(BT_LOG_INFO, "opencl: device %lld of %d: %s, %llu MiB, %u compute units", (long long)idx,
              n, c->name, (unsigned long long)(mem >> 20), (unsigned)c->cus);
    return BT_OK;
}

static bt_status ocl_device_info(void *ctx, struct bt_device_info *out) {
    struct bt_ocl_ctx *c = ctx;
    memset(out, 0, sizeof *out);
    snprintf(out->name, sizeof out->name, "%s", c->name);
    out->mem_bytes = c->mem_bytes;
    out->host_memory = (uint32_t)c->host_mem;
    out->n_devices = c->n_devices;
    return BT_OK;
}

/* ---- buffers --------------------------------------------------------------------------------- */
static bt_status new_buf(struct bt_ocl_ctx *c, cl_mem m, uint64_t n, int wrapped, bt_buf **out,
                         bt_err *err) {
    struct bt_buf *b = c->host->alloc(sizeof *b);
    if (!b) {
        clReleaseMemObject(m);
        return c->host->set_error(err, BT_E_NOMEM, "opencl: out of host memory");
    }
    b->mem = m;
    b->n = n;
    b->wrapped = wrapped;
    b->prev = NULL;
    b->next = c->bufs;
    if (c->bufs) c->bufs->prev = b;
    c->bufs = b;
    *out = b;
    return BT_OK;
}

static bt_status ocl_buf_alloc(void *ctx, uint64_t n, uint32_t usage, bt_buf **out, bt_err *err) {
    struct bt_ocl_ctx *c = ctx;
    (void)usage;
    *out = NULL;
    if (c->max_alloc && n > c->max_alloc)
        return c->host->set_error(err, BT_E_NOMEM, "opencl: a buffer of %llu bytes exceeds the "
                                  "device's largest allocation (%llu bytes)", (unsigned long long)n,
                                  (unsigned long long)c->max_alloc);
    cl_int e;
    size_t sz = n ? (size_t)n : 1;
    cl_mem m = clCreateBuffer(c->cl, CL_MEM_READ_WRITE, sz, NULL, &e);
    if (!m) return bt_ocl_fail(c, err, "buf_alloc", "clCreateBuffer", e);
    cl_uchar zero = 0; /* defined contents, and the allocation happens now */
    e = clEnqueueFillBuffer(c->q, m, &zero, 1, 0, sz, 0, NULL, NULL);
    if (e != CL_SUCCESS) {
        clReleaseMemObject(m);
        return bt_ocl_fail(c, err, "buf_alloc", "clEnqueueFillBuffer", e);
    }
    return new_buf(c, m, n, 0, out, err);
}

static bt_status ocl_buf_wrap(void *ctx, const void *host, uint64_t n, bt_buf **out, bt_err *err) {
    struct bt_ocl_ctx *c = ctx;
    *out = NULL;
    if (!c->host_mem)
        return c->host->set_error(err, BT_E_UNSUPPORTED, "opencl: buf_wrap: the device does not "
                                  "work on host memory");
    if (!host || !n) return c->host->set_error(err, BT_E_INVAL, "opencl: buf_wrap of an empty range");
    cl_int e;
    cl_mem m = clCreateBuffer(c->cl, CL_MEM_READ_ONLY | CL_MEM_USE_HOST_PTR, (size_t)n,
                              (void *)(uintptr_t)host, &e);
    if (!m) return bt_ocl_fail(c, err, "buf_wrap", "clCreateBuffer", e);
    return new_buf(c, m, n, 1, out, err);
}

static void ocl_buf_free(void *ctx, bt_buf *b) {
    struct bt_ocl_ctx *c = ctx;
    if (!b) return;
    if (b->prev) b->prev->next = b->next;
    else c->bufs = b->next;
    if (b->next) b->next->prev = b->prev;
    if (b->wrapped && c->q) clFinish(c->q); /* no kernel may read the range once it is dropped */
    clReleaseMemObject(b->mem);
    c->host->free(b);
}

static bt_status check_range(struct bt_ocl_ctx *c, const char *fn, bt_buf *b, uint64_t off,
                             uint64_t n, const void *p, bt_err *err) {
    if (!b || (!p && n))
        return c->host->set_error(err, BT_E_INVAL, "opencl: %s: null buffer or pointer", fn);
    if (off > b->n || n > b->n - off)
        return c->host->set_error(err, BT_E_INVAL, "opencl: %s: bytes [%llu, %llu) outside a "
                                  "buffer of %llu", fn, (unsigned long long)off,
                                  (unsigned long long)(off + n), (unsigned long long)b->n);
    return BT_OK;
}

static bt_status ocl_buf_write(void *ctx, bt_buf *b, uint64_t off, const void *src, uint64_t n,
                               bt_err *err) {
    struct bt_ocl_ctx *c = ctx;
    bt_status st = check_range(c, "buf_write", b, off, n, src, err);
    if (st) return st;
    if (b->wrapped)
        return c->host->set_error(err, BT_E_INVAL, "opencl: buf_write into a wrapped (read-only) "
                                  "buffer");
    if (!n) return BT_OK;
    cl_int e = clEnqueueWriteBuffer(c->q, b->mem, CL_TRUE, (size_t)off, (size_t)n, src, 0, NULL, NULL);
    return e == CL_SUCCESS ? BT_OK : bt_ocl_fail(c, err, "buf_write", "clEnqueueWriteBuffer", e);
}

static bt_status ocl_buf_read(void *ctx, bt_buf *b, uint64_t off, void *dst, uint64_t n,
                              bt_err *err) {
    struct bt_ocl_ctx *c = ctx;
    bt_status st = check_range(c, "buf_read", b, off, n, dst, err);
    if (st) return st;
    if (!n) return BT_OK;
    cl_int e = clEnqueueReadBuffer(c->q, b->mem, CL_TRUE, (size_t)off, (size_t)n, dst, 0, NULL, NULL);
    return e == CL_SUCCESS ? BT_OK : bt_ocl_fail(c, err, "buf_read", "clEnqueueReadBuffer", e);
}

bt_status bt_ocl_scratch(struct bt_ocl_ctx *c, cl_mem *m, size_t *cap, size_t n, const char *what,
                         bt_err *err) {
    if (*m && *cap >= n) return BT_OK;
    if (*m) clReleaseMemObject(*m); /* freed once the queued kernels using it are done */
    *m = NULL;
    *cap = 0;
    size_t want = n + n / 4 + 256;
    if (c->max_alloc && want > c->max_alloc) want = n;
    cl_int e;
    *m = clCreateBuffer(c->cl, CL_MEM_READ_WRITE, want, NULL, &e);
    if (!*m) return bt_ocl_fail(c, err, what, "clCreateBuffer (scratch)", e);
    *cap = want;
    return BT_OK;
}

/* ---- descriptor ------------------------------------------------------------------------------ */
static const struct bt_backend_i ocl_iface = {
    .struct_size = sizeof(struct bt_backend_i),
    .score       = ocl_score,
    .open        = ocl_open,
    .close       = ocl_close,
    .device_info = ocl_device_info,
    .buf_alloc   = ocl_buf_alloc,
    .buf_free    = ocl_buf_free,
    .buf_write   = ocl_buf_write,
    .buf_read    = ocl_buf_read,
    .supports_op = bt_ocl_supports_op,
    .run         = bt_ocl_run,
    .buf_wrap    = ocl_buf_wrap,
};

static const struct bt_plugin ocl_desc = {
    .abi_version = BT_ABI_VERSION,
    .struct_size = sizeof(struct bt_plugin),
    .name        = "opencl",
    .version     = "0.1.0",
    .kind        = BT_KIND_BACKEND,
    .caps        = 0,
    .description = "OpenCL 1.2 GPU/CPU kernels for every op and weight format",
    .options     = ocl_options,
    .iface       = &ocl_iface,
    .ctx_size    = sizeof(struct bt_ocl_ctx),
};

BT_PLUGIN_DEFINE(ocl_desc)
