/* registry.c - plugin loading: check each libbt-*.so's ELF symbols (plugin_elf.c), dlopen it,
 * call its one init symbol, validate the descriptor (ABI version, struct sizes, name, kind,
 * interface) and keep it. Refused files are recorded with the reason; the rest still load.
 * Which folders are searched, and what a user folder may do: plugin_search.c. */
#include "bt/bt.h"
#include "bt_types.h"
#include "plugin_elf.h"
#include "registry_int.h"

#include <ctype.h>
#include <dirent.h>
#include <dlfcn.h>

#ifdef BT_SANITIZED
#define BT_DLOPEN_EXTRA RTLD_NODELETE
#else
#define BT_DLOPEN_EXTRA 0
#endif
#include <limits.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>


/* smallest descriptor / interface sizes of ABI 1.0 (everything through the last v1 field) */
#define V1_PLUGIN_SIZE (offsetof(struct bt_plugin, ctx_size) + sizeof(uint32_t))

struct bt_registry {
    struct bt_plugin_entry *e;
    void                  **handles;
    uint32_t                n, cap;
    char                  **rejects;
    uint32_t                nrej, caprej;
    char                  **dirs;       /* directories already scanned (realpath) */
    uint32_t                ndirs;
    struct bt_format      **fmts;       /* per entry: the registered copy of a format plugin's
                                         * descriptor (NULL for other kinds) */
};

const char *bt_kind_name(uint32_t kind) {
    switch (kind) {
    case BT_KIND_READER: return "reader";
    case BT_KIND_WRITER: return "writer";
    case BT_KIND_QUANTIZER: return "quantizer";
    case BT_KIND_BACKEND: return "backend";
    case BT_KIND_FORMAT: return "format";
    default: return "?";
    }
}

bt_status bt_registry_new(bt_registry **out) {
    *out = calloc(1, sizeof(**out));
    return *out ? BT_OK : BT_E_NOMEM;
}

void bt_registry_free(bt_registry *reg) {
    if (!reg) return;
    for (uint32_t i = 0; i < reg->n; i++) {
        if (reg->fmts && reg->fmts[i]) {
            bt_format_unregister(reg->fmts[i]->type);
            free(reg->fmts[i]);
        }
        free(reg->e[i].path);
        if (reg->handles[i]) dlclose(reg->handles[i]);
    }
    for (uint32_t i = 0; i < reg->nrej; i++) free(reg->rejects[i]);
    for (uint32_t i = 0; i < reg->ndirs; i++) free(reg->dirs[i]);
    free(reg->e);
    free(reg->fmts);
    free(reg->handles);
    free(reg->rejects);
    free(reg->dirs);
    free(reg);
}

uint32_t bt_registry_count(const bt_registry *reg) { return reg->n; }
const struct bt_plugin_entry *bt_registry_at(const bt_registry *reg, uint32_t i) {
    return i < reg->n ? &reg->e[i] : NULL;
}
uint32_t bt_registry_reject_count(const bt_registry *reg) { return reg->nrej; }
const char *bt_registry_reject_at(const bt_registry *reg, uint32_t i) {
    return i < reg->nrej ? reg->rejects[i] : NULL;
}

const struct bt_plugin_entry *bt_registry_probe_reader(const bt_registry *reg, const char *path) {
    const struct bt_plugin_entry *best = NULL;
    int top = 0;
    for (uint32_t i = 0; path && i < reg->n; i++) {
        const struct bt_plugin_entry *x = &reg->e[i];
        const struct bt_reader_i *ri = x->desc->iface;
        if (x->desc->kind != BT_KIND_READER || !BT_HAS(ri, probe)) continue;
        int sc = ri->probe(path);
        if (sc > top) { top = sc; best = x; }
    }
    return best;
}

const struct bt_plugin_entry *bt_registry_find(const bt_registry *reg, uint32_t kind,
                                               const char *name) {
    for (uint32_t i = 0; i < reg->n; i++)
        if (reg->e[i].desc->kind == kind && strcmp(reg->e[i].desc->name, name) == 0) return &reg->e[i];
    return NULL;
}

void bt_registry_add_reject(bt_registry *reg, const char *msg) {
    if (reg->nrej == reg->caprej) {
        uint32_t nc = reg->caprej ? 2 * reg->caprej : 8;
        char **nr = realloc(reg->rejects, nc * sizeof(*nr));
        if (!nr) return;
        reg->rejects = nr;
        reg->caprej = nc;
    }
    char *m = strdup(msg);
    if (m) reg->rejects[reg->nrej++] = m;
}

static int valid_name(const char *s) {
    if (!s || !*s || strlen(s) > 64) return 0;
    for (; *s; s++)
        if (!(islower((unsigned char)*s) || isdigit((unsigned char)*s) || *s == '-')) return 0;
    return 1;
}

/* check the kind-specific interface: size and required entries */
static const char *check_iface(const struct bt_plugin *d) {
    if (!d->iface) return "descriptor has no interface table";
    uint32_t sz = *(const uint32_t *)d->iface;
    switch (d->kind) {
    case BT_KIND_READER: {
        const struct bt_reader_i *i = d->iface;
        if (sz < offsetof(struct bt_reader_i, read_f32)) return "reader interface is truncated";
        if (!i->open || !i->close || !i->tensor_count || !i->tensor_get || !i->kv_count || !i->kv_get)
            return "reader interface lacks a required function";
        return NULL;
    }
    case BT_KIND_WRITER: {
        const struct bt_writer_i *i = d->iface;
        if (sz < offsetof(struct bt_writer_i, supports)) return "writer interface is truncated";
        if (!i->open || !i->add || !i->finish || !i->close) return "writer interface lacks a required function";
        return NULL;
    }
    case BT_KIND_QUANTIZER: {
        const struct bt_quantizer_i *i = d->iface;
        if (sz < offsetof(struct bt_quantizer_i, decide)) return "quantizer interface is truncated";
        if (!i->open || !i->close || !i->plan || !i->quantize) return "quantizer interface lacks a required function";
        return NULL;
    }
    case BT_KIND_BACKEND: {
        const struct bt_backend_i *i = d->iface;
        if (sz < offsetof(struct bt_backend_i, buf_wrap)) return "backend interface is truncated";
        if (!i->open || !i->close || !i->device_info || !i->buf_alloc || !i->buf_free ||
            !i->buf_write || !i->buf_read || !i->supports_op || !i->run)
            return "backend interface lacks a required function";
        return NULL;
    }
    case BT_KIND_FORMAT: return bt_format_check(d->iface);
    default: return "unknown plugin kind";
    }
}

static bt_status refuse(bt_registry *reg, bt_err *err, bt_status st, const char *path,
                        const char *fmt, const char *a, long x, long y) {
    char why[512], msg[1024];
    snprintf(why, sizeof(why), fmt, a ? a : "", x, y);
    snprintf(msg, sizeof(msg), "%s: %s", path, why);
    bt_registry_add_reject(reg, msg);
    bt_log(BT_LOG_WARN, "plugin refused: %s", msg);
    return bt_err_set(err, st, "%s", msg);
}

bt_status bt_registry_load_file(bt_registry *reg, const char *path, bt_err *err) {
    /* dlopen runs the file's constructors: first make sure it is a plugin at all */
    char ewhy[256];
    switch (bt_plugin_elf_check(path, ewhy, sizeof ewhy)) {
    case BT_ELF_OK: break;
    case BT_ELF_NOT_PLUGIN_FILE:
        return refuse(reg, err, BT_E_PLUGIN, path, "cannot load: %s (checked before loading: none of "
                      "its code ran)", ewhy, 0, 0);
    default:
        return refuse(reg, err, BT_E_PLUGIN, path, "%s (checked before loading: none of its code ran)",
                      ewhy, 0, 0);
    }
    /* sanitized builds keep plugin code mapped after dlclose, so that leak reports (ours, and
     * third-party ones tests/lsan.supp names, e.g. the OpenCL ICD loader's) have symbols */
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL | BT_DLOPEN_EXTRA);
    if (!h) return refuse(reg, err, BT_E_PLUGIN, path, "cannot load: %s", dlerror(), 0, 0);
    bt_status st = BT_E_PLUGIN;
    bt_plugin_init_fn init;
    *(void **)(&init) = dlsym(h, BT_PLUGIN_INIT_SYMBOL);
    const struct bt_plugin *d = NULL;
    const char *why;
    if (!init) {
        refuse(reg, err, BT_E_PLUGIN, path, "no '%s' symbol (not a bt plugin)", BT_PLUGIN_INIT_SYMBOL, 0, 0);
        goto fail;
    }
    bt_status ist = init(bt_host(), &d);
    if (ist != BT_OK) { refuse(reg, err, BT_E_PLUGIN, path, "init failed%s with status %ld", "", ist, 0); goto fail; }
    if (!d) { refuse(reg, err, BT_E_PLUGIN, path, "%sinit returned no descriptor", "", 0, 0); goto fail; }
    if (BT_ABI_MAJOR_OF(d->abi_version) != BT_ABI_MAJOR) {
        st = refuse(reg, err, BT_E_ABI, path, "%sABI major %ld, host has %ld", "",
                    (long)BT_ABI_MAJOR_OF(d->abi_version), BT_ABI_MAJOR);
        goto fail;
    }
    if (BT_ABI_MINOR_OF(d->abi_version) > BT_ABI_MINOR) {
        st = refuse(reg, err, BT_E_ABI, path, "%sABI minor %ld is newer than the host's %ld", "",
                    (long)BT_ABI_MINOR_OF(d->abi_version), BT_ABI_MINOR);
        goto fail;
    }
    if (d->struct_size < V1_PLUGIN_SIZE) {
        st = refuse(reg, err, BT_E_ABI, path, "%sdescriptor truncated: struct_size %ld < %ld", "",
                    (long)d->struct_size, (long)V1_PLUGIN_SIZE);
        goto fail;
    }
    if (!valid_name(d->name)) { refuse(reg, err, BT_E_PLUGIN, path, "invalid plugin name '%s'", d->name ? d->name : "(null)", 0, 0); goto fail; }
    if ((why = check_iface(d))) { refuse(reg, err, BT_E_PLUGIN, path, "%s", why, 0, 0); goto fail; }
    /* the file must be named libbt-<kind>-<name>.so */
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    char expect[160];
    snprintf(expect, sizeof(expect), "libbt-%s-%s.so", bt_kind_name(d->kind), d->name);
    if (strcmp(base, expect) != 0) {
        refuse(reg, err, BT_E_PLUGIN, path, "file name does not match descriptor (expected %s)", expect, 0, 0);
        goto fail;
    }
    if (bt_registry_find(reg, d->kind, d->name)) {
        char what[128];
        snprintf(what, sizeof(what), "%s plugin '%s'", bt_kind_name(d->kind), d->name);
        refuse(reg, err, BT_E_PLUGIN, path, "duplicate %s (the first one loaded is kept)", what, 0, 0);
        goto fail;
    }
    if (d->kind == BT_KIND_BACKEND) {
        const struct bt_backend_i *bi = d->iface;
        if (BT_HAS(bi, score) && bi->score() <= 0) {
            /* expected (a GPU backend built on a machine without that GPU): listed by
             * `bt-pipeline plugins`, logged at info level, not warned about on every command */
            char msg[1024];
            snprintf(msg, sizeof(msg), "%s: backend cannot run on this machine (score 0)", path);
            bt_registry_add_reject(reg, msg);
            bt_log(BT_LOG_INFO, "plugin not used: %s", msg);
            bt_err_set(err, BT_E_PLUGIN, "%s", msg);
            goto fail;
        }
    }
    if (reg->n == reg->cap) {
        uint32_t nc = reg->cap ? 2 * reg->cap : 16;
        struct bt_plugin_entry *ne = realloc(reg->e, nc * sizeof(*ne));
        if (ne) reg->e = ne;
        void **nh = ne ? realloc(reg->handles, nc * sizeof(*nh)) : NULL;
        if (nh) reg->handles = nh;
        struct bt_format **nf = nh ? realloc(reg->fmts, nc * sizeof(*nf)) : NULL;
        if (!nf) { st = bt_err_set(err, BT_E_NOMEM, "out of memory"); goto fail; }
        reg->fmts = nf;
        reg->cap = nc;
    }
    reg->fmts[reg->n] = NULL;
    if (d->kind == BT_KIND_FORMAT) { /* a copy gets its id (the plugin's table may be read-only) */
        /* a full-size copy: entries past the plugin's struct_size read as NULL everywhere */
        struct bt_format *f = calloc(1, sizeof *f);
        if (!f) { st = bt_err_set(err, BT_E_NOMEM, "out of memory"); goto fail; }
        uint32_t fsz = *(const uint32_t *)d->iface;
        memcpy(f, d->iface, fsz < sizeof *f ? fsz : sizeof *f);
        f->struct_size = sizeof *f;
        if (bt_format_register(f, NULL) != BT_OK) {
            free(f);
            refuse(reg, err, BT_E_PLUGIN, path, "%sno free format id (at most %ld formats)", "",
                   BT_TYPE_MAX - BT_TYPE_USER, 0);
            goto fail;
        }
        reg->fmts[reg->n] = f;
    }
    reg->e[reg->n].desc = d;
    reg->e[reg->n].path = strdup(path);
    reg->handles[reg->n] = h;
    reg->n++;
    bt_log(BT_LOG_DEBUG, "loaded %s plugin '%s' from %s", bt_kind_name(d->kind), d->name, path);
    return BT_OK;
fail:
    dlclose(h);
    return st;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

int bt_registry_claim_dir(bt_registry *reg, const char *real) {
    for (uint32_t i = 0; i < reg->ndirs; i++)
        if (strcmp(reg->dirs[i], real) == 0) return 0;
    char **nd = realloc(reg->dirs, (reg->ndirs + 1) * sizeof(*nd));
    if (!nd) return 0;
    reg->dirs = nd;
    if (!(reg->dirs[reg->ndirs] = strdup(real))) return 0;
    reg->ndirs++;
    return 1;
}

char **bt_registry_list_dir(const char *real, size_t *n_out) {
    *n_out = 0;
    DIR *d = opendir(real);
    if (!d) return NULL;
    char **names = NULL;
    size_t n = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        size_t len = strlen(de->d_name);
        if (strncmp(de->d_name, "libbt-", 6) || len < 10 || strcmp(de->d_name + len - 3, ".so")) continue;
        char **nn = realloc(names, (n + 1) * sizeof(*nn));
        if (!nn) break;
        names = nn;
        if ((names[n] = strdup(de->d_name))) n++;
    }
    closedir(d);
    if (n) qsort(names, n, sizeof(*names), cmp_str);
    *n_out = n;
    return names;
}

int bt_registry_scan_dir(bt_registry *reg, const char *dir) {
    char real[PATH_MAX];
    if (!realpath(dir, real) || !bt_registry_claim_dir(reg, real)) return 0;
    size_t n = 0;
    char **names = bt_registry_list_dir(real, &n);
    int loaded = 0;
    for (size_t i = 0; i < n; i++) {
        char path[PATH_MAX + 256];
        snprintf(path, sizeof(path), "%s/%s", real, names[i]);
        bt_err err;
        bt_err_clear(&err);
        if (bt_registry_load_file(reg, path, &err) == BT_OK) loaded++;
        free(names[i]);
    }
    free(names);
    return loaded;
}
