/* pipeline.c - the INI runner: validate every section/key of the file against the core's
 * tables and the chosen plugins' option tables (file:line errors, before any work), then run
 * the conversion stage and the application's extra stages. */
#include "bt/bt_pipeline.h"
#include "bt_types.h"
#include "config.h"
#include "convert.h"
#include "report.h"

#include <fnmatch.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ---- core option tables ----------------------------------------------------------------------- */
static const struct bt_option pipeline_opts[] = {
    {"backend", BT_OPT_STRING, "auto", 0, -1, NULL, "compute backend: auto or a backend plugin name"},
    {"threads", BT_OPT_INT, "0", 0, BT_THREADS_MAX, NULL, "worker threads (0 = all cores; at most 256)"},
    {"plugin_dir", BT_OPT_PATH, "", 0, -1, NULL, "extra folder scanned for plugins first (must exist)"},
    {"override", BT_OPT_STRING, "", 0, -1, NULL,
     "plugins in user folders allowed to replace the built-in plugin of the same name ([kind:]name, ...)"},
    {NULL, 0, NULL, 0, 0, NULL, NULL},
};
static const struct bt_option input_opts[] = {
    {"reader", BT_OPT_STRING, "auto", 0, -1, NULL, "reader plugin: auto, safetensors, gguf"},
    {"path", BT_OPT_PATH, NULL, 0, -1, NULL, "model folder or file"},
    {NULL, 0, NULL, 0, 0, NULL, NULL},
};
static const struct bt_option quantize_opts[] = {
    {"method", BT_OPT_STRING, "absmean", 0, -1, NULL, "quantizer plugin name, or none"},
    {"keep", BT_OPT_STRING, "*embed_tokens* lm_head *norm* token_embd output", 0, -1, NULL,
     "glob patterns of tensors left unquantized (matched against HF and GGUF names)"},
    {"budget_bpw", BT_OPT_FLOAT, "0", 0, 64, NULL,
     "mean bits/weight of the quantized tensors; planes are distributed to minimize error (needs bases = auto)"},
    {"budget_bytes", BT_OPT_INT, "0", 0, 1e15, NULL, "total output size, e.g. 4G (alternative to budget_bpw)"},
    {"calibration", BT_OPT_PATH, "", 0, -1, NULL,
     "calibration file from `bt-pipeline calibrate` / [calibrate]: weights each input column's error by diag(X^T X)"},
    {"second_order", BT_OPT_BOOL, "false", 0, -1, NULL,
     "GPTQ-style quantization with the calibration file's full X^T X: error feedback through the Hessian"},
    {"damp", BT_OPT_FLOAT, "0.01", 0, 10, NULL, "second_order: damping added to diag(H), relative to mean(diag H)"},
    {"act_order", BT_OPT_BOOL, "true", 0, -1, NULL, "second_order: quantize columns by decreasing diag(H)"},
    {"so_backend", BT_OPT_ENUM, "auto", 0, -1, "auto|host|backend",
     "second_order: where the Cholesky / inverse and the lazy-batch products run: auto = on [pipeline] "
     "backend when it names a GPU backend that runs them (ops gemm, chol_inv), host = OpenBLAS here, "
     "backend = on [pipeline] backend always"},
    {"budget_metric", BT_OPT_ENUM, "relative", 0, -1, "relative|absolute",
     "second_order budget: rank by tr(E H E^T) relative to tr(W H W^T) (x weights), or by tr(E H E^T) as is"},
    {"rotate", BT_OPT_ENUM, "none", 0, -1, "none|hadamard",
     "rotate the residual stream (randomized Hadamard, folded into the weights) before quantizing"},
    {"rotate_seed", BT_OPT_INT, "0", 0, 9.2e18, NULL, "rotate: seed of the random signs (0 = fixed default)"},
    {NULL, 0, NULL, 0, 0, NULL, NULL},
};
static const struct bt_option output_opts[] = {
    {"writer", BT_OPT_STRING, "gguf", 0, -1, NULL, "writer plugin"},
    {"path", BT_OPT_PATH, NULL, 0, -1, NULL, "output file"},
    {"type", BT_OPT_ENUM, "tq2_0", 0, -1, "tq2_0|tq1_0|mtq|vq", "format of quantized tensors (vq: method = vptq)"},
    {"keep_type", BT_OPT_ENUM, "f16", 0, -1, "f16|bf16|f32|q8_0", "format of kept 2-D tensors"},
    {"fallback_type", BT_OPT_ENUM, "auto", 0, -1, "auto|f16|bf16|f32|q8_0",
     "format of 2-D tensors the quantizer cannot take (rows not a multiple of its block); auto: q8_0 "
     "if rows are a multiple of 32, else f16"},
    {"report", BT_OPT_PATH, "", 0, -1, NULL, "conversion report JSON"},
    {NULL, 0, NULL, 0, 0, NULL, NULL},
};

const struct bt_option *bt_pipeline_section_options(const char *section) {
    if (!strcmp(section, "pipeline")) return pipeline_opts;
    if (!strcmp(section, "input")) return input_opts;
    if (!strcmp(section, "quantize")) return quantize_opts;
    if (!strcmp(section, "output")) return output_opts;
    return NULL;
}

int bt_keep_match(const char *patterns, const char *name, const char *src_name) {
    if (!patterns) return 0;
    char *copy = strdup(patterns), *save = NULL;
    int hit = 0;
    const char *names[2] = {name, src_name};
    for (char *p = copy ? strtok_r(copy, " \t,", &save) : NULL; p && !hit; p = strtok_r(NULL, " \t,", &save))
        for (int k = 0; k < 2 && !hit; k++) {
            if (!names[k]) continue;
            if (fnmatch(p, names[k], 0) == 0) hit = 1;
            char stem[256];
            snprintf(stem, sizeof(stem), "%s", names[k]);
            char *dot = strrchr(stem, '.');
            if (dot && (!strcmp(dot, ".weight") || !strcmp(dot, ".bias"))) {
                *dot = 0;
                if (fnmatch(p, stem, 0) == 0) hit = 1;
            }
        }
    free(copy);
    return hit;
}

/* apply every entry of section sec to the core table optset and (if given) the plugin optset;
 * skip_unknown: leave keys of neither for a later pass (the backend's keys in [pipeline]) */
static bt_status apply_keys(struct bt_cfg *cfg, const char *sec, bt_optset *core, bt_optset *plug,
                            const char *plug_what, int skip_unknown, bt_err *err) {
    for (int i = 0; i < cfg->n; i++) {
        struct bt_cfg_entry *e = &cfg->e[i];
        if (strcmp(e->section, sec) != 0) continue;
        bt_optset *target = bt_optset_has(core, e->key) ? core : plug && bt_optset_has(plug, e->key) ? plug : NULL;
        if (!target && skip_unknown) continue;
        if (!target) {
            return bt_err_set(err, BT_E_INVAL, "%s:%d: unknown key '%s' in [%s]%s%s", cfg->path, e->line,
                              e->key, sec, plug_what ? " (not an option of " : "",
                              plug_what ? plug_what : "");
        }
        bt_err e2;
        bt_err_clear(&e2);
        if (bt_optset_set(target, e->key, e->value, cfg->base_dir, &e2) != BT_OK)
            return bt_err_set(err, BT_E_INVAL, "%s:%d: [%s] %s", cfg->path, e->line, sec, e2.msg);
        e->used = 1;
    }
    return BT_OK;
}

static bt_status apply_section(struct bt_cfg *cfg, const char *sec, bt_optset *core,
                               bt_optset *plug, const char *plug_what, bt_err *err) {
    return apply_keys(cfg, sec, core, plug, plug_what, 0, err);
}

static bt_status required(struct bt_cfg *cfg, const char *sec, bt_optset *o, bt_err *err) {
    bt_err e2;
    bt_err_clear(&e2);
    if (bt_optset_check_required(o, &e2) == BT_OK) return BT_OK;
    int line = 0;
    for (int i = 0; i < cfg->nsec; i++)
        if (!strcmp(cfg->sections[i], sec)) line = cfg->section_lines[i];
    return bt_err_set(err, BT_E_INVAL, "%s:%d: [%s] %s", cfg->path, line, sec, e2.msg);
}

/* the plugin option set for section sec; plugin chosen by key `key` of the core set */
static bt_status plugin_opts(bt_registry *reg, struct bt_cfg *cfg, const char *sec, uint32_t kind,
                             const char *name, bt_optset **out, char *what, size_t nwhat,
                             bt_err *err) {
    *out = NULL;
    if (!name || !strcmp(name, "auto") || !strcmp(name, "none")) return BT_OK;
    const struct bt_plugin_entry *pe = bt_registry_find(reg, kind, name);
    if (!pe) {
        struct bt_cfg_entry *e = bt_cfg_get(cfg, sec, kind == BT_KIND_QUANTIZER ? "method" : kind == BT_KIND_BACKEND ? "backend" : kind == BT_KIND_READER ? "reader" : "writer");
        return bt_err_set(err, BT_E_INVAL, "%s:%d: [%s] no %s plugin named '%s' is loaded (see `bt-pipeline plugins`)",
                          cfg->path, e ? e->line : 0, sec, bt_kind_name(kind), name);
    }
    snprintf(what, nwhat, "%s plugin '%s')", bt_kind_name(kind), name);
    *out = bt_optset_new(pe->desc->options);
    return *out ? BT_OK : bt_err_set(err, BT_E_NOMEM, "out of memory");
}

static int key_line(struct bt_cfg *cfg, const char *sec, const char *key);

/* the plugin search: the command line's folder and overrides, then [pipeline] plugin_dir and
 * override (named by file:line in messages), then $BT_PLUGIN_PATH and the built-in folders */
static bt_status scan_plugins(bt_registry *reg, struct bt_cfg *cfg, const bt_optset *pipe,
                              const struct bt_run_opts *ro, bt_err *err) {
    char dir_from[PATH_MAX + 64], ovr_from[PATH_MAX + 64];
    snprintf(dir_from, sizeof dir_from, "%s:%d: [pipeline] plugin_dir", cfg->path,
             key_line(cfg, "pipeline", "plugin_dir"));
    snprintf(ovr_from, sizeof ovr_from, "%s:%d: [pipeline] override", cfg->path,
             key_line(cfg, "pipeline", "override"));
    struct bt_plugin_search ps = {
        .dir = {ro ? ro->plugin_dir : NULL, bt_opt_str(pipe, "plugin_dir")},
        .dir_from = {"--plugin-dir", dir_from},
        .override = {ro ? ro->override : NULL, bt_opt_str(pipe, "override")},
        .override_from = {"--override", ovr_from},
    };
    return bt_registry_scan_default(reg, &ps, err);
}

struct run_state {
    bt_optset *pipe, *in, *q, *out;          /* core sets */
    bt_optset *in_p, *q_p, *out_p, *be_p;    /* plugin sets (owned until handed to an instance) */
    bt_optset *stage_o[16];
    bt_optset *in_stage;                     /* copy of in_p for the stages (bt_convert takes in_p) */
};

static void state_free(struct run_state *s) {
    bt_optset_free(s->pipe); bt_optset_free(s->in); bt_optset_free(s->q); bt_optset_free(s->out);
    bt_optset_free(s->in_p); bt_optset_free(s->q_p); bt_optset_free(s->out_p); bt_optset_free(s->be_p);
    for (int i = 0; i < 16; i++) bt_optset_free(s->stage_o[i]);
    bt_optset_free(s->in_stage);
}

/* The quantizer's own checks of its option values (beyond type and range) run when it opens:
 * open one now, before any work, so a refused value is reported with the line of its key (the
 * key named in the plugin's message, else the section). */
static bt_status probe_quantizer(bt_registry *reg, struct bt_cfg *cfg, const char *method,
                                 const bt_optset *opts, bt_err *err) {
    bt_optset *copy = bt_optset_clone(opts);
    if (!copy) return bt_err_set(err, BT_E_NOMEM, "out of memory");
    struct bt_quantizer *q = NULL;
    bt_err e2;
    bt_err_clear(&e2);
    bt_status st = bt_quantizer_open(reg, method, copy, &q, &e2);
    bt_quantizer_close(q);
    if (st == BT_OK) return BT_OK;
    int line = 0;
    for (int i = 0; i < cfg->n; i++)
        if (!strcmp(cfg->e[i].section, "quantize") && strstr(e2.msg, cfg->e[i].key)) line = cfg->e[i].line;
    for (int i = 0; !line && i < cfg->nsec; i++)
        if (!strcmp(cfg->sections[i], "quantize")) line = cfg->section_lines[i];
    return bt_err_set(err, BT_E_INVAL, "%s:%d: [quantize] %s", cfg->path, line, e2.msg);
}

/* ---- the input is sacred: no output, report or calibration file may be, or land inside, an input */
struct io_path {
    const char *sec, *key, *path;
};

static int key_line(struct bt_cfg *cfg, const char *sec, const char *key) {
    struct bt_cfg_entry *e = bt_cfg_get(cfg, sec, key);
    return e ? e->line : 0;
}

static void io_add(struct io_path *v, int *n, const char *sec, const char *key, const char *path) {
    if (path && *path && *n < 24) v[(*n)++] = (struct io_path){sec, key, path};
}

static bt_status guard_io(struct bt_cfg *cfg, struct run_state *s, const struct bt_stage *stages,
                          int n_stages, bt_err *err) {
    struct io_path in[24], out[24];
    int ni = 0, no = 0;
    io_add(in, &ni, "input", "path", bt_opt_str(s->in, "path"));
    io_add(in, &ni, "quantize", "calibration", bt_opt_str(s->q, "calibration"));
    if (bt_cfg_has_section(cfg, "output")) {
        io_add(out, &no, "output", "path", bt_opt_str(s->out, "path"));
        io_add(out, &no, "output", "report", bt_opt_str(s->out, "report"));
    }
    /* stage options: path options named text are inputs, out and report are outputs */
    for (int k = 0; k < n_stages; k++) {
        if (!s->stage_o[k]) continue;
        for (const struct bt_option *o = stages[k].options; o && o->name; o++) {
            if (o->type != BT_OPT_PATH) continue;
            const char *v = bt_opt_str(s->stage_o[k], o->name);
            if (!strcmp(o->name, "text")) io_add(in, &ni, stages[k].section, o->name, v);
            else if (!strcmp(o->name, "out") || !strcmp(o->name, "report")) io_add(out, &no, stages[k].section, o->name, v);
        }
    }
    /* an input the pipeline makes itself ([calibrate] out = F, [quantize] calibration = F) */
    int made[24] = {0};
    for (int i = 0; i < ni; i++)
        for (int o = 0; o < no; o++)
            if (!strcmp(in[i].sec, "quantize") && strcmp(out[o].sec, "output") && !strcmp(out[o].key, "out") &&
                (bt_path_same_target(in[i].path, out[o].path) || !strcmp(in[i].path, out[o].path)))
                made[i] = 1;
    for (int i = 0; i < ni; i++) {
        struct stat sb;
        if (!made[i] && stat(in[i].path, &sb) != 0)
            return bt_err_set(err, BT_E_INVAL, "%s:%d: [%s] %s = %s does not exist", cfg->path,
                              key_line(cfg, in[i].sec, in[i].key), in[i].sec, in[i].key, in[i].path);
    }
    for (int o = 0; o < no; o++) {
        for (int i = 0; i < ni; i++)
            if (!made[i] && bt_path_touches(in[i].path, out[o].path))
                return bt_err_set(err, BT_E_INVAL, "%s:%d: [%s] %s = %s would write over the input %s "
                                  "([%s] %s); bt never modifies its inputs: choose a path outside it",
                                  cfg->path, key_line(cfg, out[o].sec, out[o].key), out[o].sec,
                                  out[o].key, out[o].path, in[i].path, in[i].sec, in[i].key);
        for (int p = 0; p < o; p++)
            if (bt_path_same_target(out[p].path, out[o].path))
                return bt_err_set(err, BT_E_INVAL, "%s:%d: [%s] %s = %s is the same file as [%s] %s",
                                  cfg->path, key_line(cfg, out[o].sec, out[o].key), out[o].sec,
                                  out[o].key, out[o].path, out[p].sec, out[p].key);
    }
    return BT_OK;
}

/* ---- is there work, and does it fit the model ---------------------------------------------------- */
static int sec_line(struct bt_cfg *cfg, const char *sec) {
    for (int i = 0; i < cfg->nsec; i++)
        if (!strcmp(cfg->sections[i], sec)) return cfg->section_lines[i];
    return 0;
}

/* the input model's context length (<arch>.context_length), 0 if it does not say */
static int64_t input_context(bt_registry *reg, const char *reader, const char *path, const bt_optset *ropts) {
    struct bt_reader *r = NULL;
    bt_err e2;
    bt_err_clear(&e2);
    bt_optset *o = ropts ? bt_optset_clone(ropts) : NULL;
    if (bt_reader_open(reg, reader, path, o, &r, &e2) != BT_OK) return 0; /* the work says why */
    struct bt_kv tmp;
    const struct bt_kv *arch = bt_reader_kv(r, "general.architecture", &tmp);
    int64_t n = 0;
    if (arch && arch->type == BT_KV_STRING) {
        char key[160];
        snprintf(key, sizeof key, "%.*s.context_length", (int)arch->n, arch->v.s);
        const struct bt_kv *kv = bt_reader_kv(r, key, &tmp);
        if (kv && (kv->type == BT_KV_U32 || kv->type == BT_KV_U64)) n = (int64_t)kv->v.u;
        else if (kv && (kv->type == BT_KV_I32 || kv->type == BT_KV_I64)) n = kv->v.i;
    }
    bt_reader_close(r);
    return n;
}

/* an INI that does nothing; a stage ctx beyond the model's context; a calibration file nothing
 * would read (method none, or a quantizer without column weights and second_order off) */
static bt_status check_work(bt_registry *reg, struct bt_cfg *cfg, struct run_state *s,
                            const struct bt_stage *stages, int n_stages, int converting,
                            const char *reader, const char *method, bt_err *err) {
    int active = converting;
    char names[256] = "";
    for (int k = 0; k < n_stages; k++) {
        active |= s->stage_o[k] != NULL;
        size_t l = strlen(names);
        snprintf(names + l, sizeof names - l, ", [%s]", stages[k].section);
    }
    if (!active)
        return bt_err_set(err, BT_E_INVAL, "%s: nothing to do: add an [output] section (a conversion)%s%s",
                          cfg->path, n_stages ? " or one of" : "", n_stages ? names + 1 : "");
    for (int k = 0; k < n_stages; k++) {
        char why[256] = "";
        const char *key = NULL;
        if (!s->stage_o[k] || !stages[k].check || stages[k].check(s->stage_o[k], converting, &key, why, sizeof why) == BT_OK)
            continue;
        int line = key ? key_line(cfg, stages[k].section, key) : 0;
        return bt_err_set(err, BT_E_INVAL, "%s:%d: [%s] %s", cfg->path, line ? line : sec_line(cfg, stages[k].section),
                          stages[k].section, why);
    }
    int64_t mctx = -1;
    for (int k = 0; k < n_stages; k++) {
        if (!s->stage_o[k] || !bt_optset_has(s->stage_o[k], "ctx")) continue;
        int64_t ctx = bt_opt_int(s->stage_o[k], "ctx");
        if (mctx < 0) mctx = input_context(reg, reader, bt_opt_str(s->in, "path"), s->in_p);
        if (mctx > 0 && ctx > mctx) {
            int line = key_line(cfg, stages[k].section, "ctx");
            return bt_err_set(err, BT_E_INVAL, "%s:%d: [%s] ctx = %lld is beyond the model's context of %lld "
                              "tokens (%s): use ctx = %lld or less", cfg->path, line ? line : sec_line(cfg, stages[k].section),
                              stages[k].section, (long long)ctx, (long long)mctx, bt_opt_str(s->in, "path"),
                              (long long)mctx);
        }
    }
    const char *calib = bt_opt_str(s->q, "calibration");
    if (converting && calib && *calib && !bt_opt_int(s->q, "second_order")) {
        const struct bt_plugin_entry *pe = strcmp(method, "none") ? bt_registry_find(reg, BT_KIND_QUANTIZER, method) : NULL;
        if (!pe || !(pe->desc->caps & BT_CAP_COL_WEIGHT))
            return bt_err_set(err, BT_E_INVAL, "%s:%d: [quantize] calibration = %s is not used: method = %s %s; "
                              "add second_order = on, choose a method that weights columns (residual, vptq) "
                              "or remove calibration", cfg->path, key_line(cfg, "quantize", "calibration"), calib,
                              method, pe ? "reads a calibration only with second_order = on" : "quantizes nothing");
    }
    return BT_OK;
}

/* output folders are created (mkdir -p) once everything is validated, before any work: the same
 * rule for [output] path/report and every stage's out/report */
static bt_status make_out_folders(struct bt_cfg *cfg, struct run_state *s, const struct bt_stage *stages,
                                  int n_stages, bt_err *err) {
    struct io_path out[24];
    int no = 0;
    if (bt_cfg_has_section(cfg, "output")) {
        io_add(out, &no, "output", "path", bt_opt_str(s->out, "path"));
        io_add(out, &no, "output", "report", bt_opt_str(s->out, "report"));
    }
    for (int k = 0; k < n_stages; k++)
        for (const struct bt_option *o = stages[k].options; s->stage_o[k] && o && o->name; o++)
            if (o->type == BT_OPT_PATH && (!strcmp(o->name, "out") || !strcmp(o->name, "report")))
                io_add(out, &no, stages[k].section, o->name, bt_opt_str(s->stage_o[k], o->name));
    for (int o = 0; o < no; o++) {
        bt_err e2;
        bt_err_clear(&e2);
        if (bt_file_make_parents(out[o].path, &e2))
            return bt_err_set(err, BT_E_INVAL, "%s:%d: [%s] %s: %s", cfg->path, key_line(cfg, out[o].sec, out[o].key),
                              out[o].sec, out[o].key, e2.msg);
    }
    return BT_OK;
}

/* check_only: stop once everything is validated (bt_pipeline_check) */
/* text != NULL: the INI is that text, named ini_path, relative paths against base_dir */
static bt_status pipeline_run(const char *ini_path, const char *text, const char *base_dir,
                              const struct bt_stage *stages, int n_stages,
                              const struct bt_run_opts *ro, int check_only, bt_err *err) {
    struct bt_cfg cfg;
    struct run_state s;
    memset(&s, 0, sizeof(s));
    bt_registry *reg = NULL;
    void *calib = NULL; /* calibration context (file view or a stage's provider) */
    void *config = NULL; /* the effective configuration, for the report */
    bt_status st = text ? bt_cfg_load_text(text, ini_path, base_dir, &cfg, err) : bt_cfg_load(ini_path, &cfg, err);
    if (st) { bt_cfg_free(&cfg); return st; }
    if (n_stages > 16) n_stages = 16;
    /* sections */
    for (int i = 0; i < cfg.nsec; i++) {
        const char *sec = cfg.sections[i];
        int ok = !strcmp(sec, "pipeline") || !strcmp(sec, "input") || !strcmp(sec, "quantize") || !strcmp(sec, "output");
        for (int k = 0; k < n_stages && !ok; k++) ok = !strcmp(sec, stages[k].section);
        if (!ok) {
            st = bt_err_set(err, BT_E_INVAL, "%s:%d: unknown section [%s]", cfg.path, cfg.section_lines[i], sec);
            goto done;
        }
    }
    s.pipe = bt_optset_new(pipeline_opts);
    s.in = bt_optset_new(input_opts);
    s.q = bt_optset_new(quantize_opts);
    s.out = bt_optset_new(output_opts);
    if (!s.pipe || !s.in || !s.q || !s.out) { st = bt_err_set(err, BT_E_NOMEM, "out of memory"); goto done; }
    /* [pipeline]: the core keys now (threads, plugin_dir), the backend's own keys once it is known */
    if ((st = apply_keys(&cfg, "pipeline", s.pipe, NULL, NULL, 1, err))) goto done;
    bt_threads_set((int)bt_opt_int(s.pipe, "threads"));
    if ((st = bt_registry_new(&reg))) goto done;
    if ((st = scan_plugins(reg, &cfg, s.pipe, ro, err))) goto done;
    /* pick plugins from the core keys first, then validate their own keys */
    char what[128];
    struct bt_cfg_entry *e;
    const char *reader = (e = bt_cfg_get(&cfg, "input", "reader")) ? e->value : "auto";
    const char *method = (e = bt_cfg_get(&cfg, "quantize", "method")) ? e->value : "absmean";
    const char *writer = (e = bt_cfg_get(&cfg, "output", "writer")) ? e->value : "gguf";
    const char *backend = bt_opt_str(s.pipe, "backend");
    if ((st = plugin_opts(reg, &cfg, "pipeline", BT_KIND_BACKEND, backend, &s.be_p, what, sizeof(what), err))) goto done;
    if ((st = apply_section(&cfg, "pipeline", s.pipe, s.be_p, s.be_p ? what : NULL, err))) goto done;
    if (s.be_p && (st = required(&cfg, "pipeline", s.be_p, err))) goto done;
    backend = bt_opt_str(s.pipe, "backend"); /* apply_section replaced the strings of s.pipe */
    if (!strcmp(reader, "auto")) { /* its own keys in [input] (i2s_layout) need the reader named */
        if ((st = apply_keys(&cfg, "input", s.in, NULL, NULL, 1, err))) goto done;
        const struct bt_plugin_entry *pr = bt_registry_probe_reader(reg, bt_opt_str(s.in, "path"));
        if (pr) reader = pr->desc->name;
    }
    if ((st = plugin_opts(reg, &cfg, "input", BT_KIND_READER, reader, &s.in_p, what, sizeof(what), err))) goto done;
    if ((st = apply_section(&cfg, "input", s.in, s.in_p, s.in_p ? what : NULL, err))) goto done;
    int converting = bt_cfg_has_section(&cfg, "output");
    if (converting) {
        if ((st = plugin_opts(reg, &cfg, "quantize", BT_KIND_QUANTIZER, method, &s.q_p, what, sizeof(what), err))) goto done;
        if ((st = apply_section(&cfg, "quantize", s.q, s.q_p, s.q_p ? what : NULL, err))) goto done;
        if ((st = plugin_opts(reg, &cfg, "output", BT_KIND_WRITER, writer, &s.out_p, what, sizeof(what), err))) goto done;
        if ((st = apply_section(&cfg, "output", s.out, s.out_p, s.out_p ? what : NULL, err))) goto done;
        if ((st = required(&cfg, "output", s.out, err))) goto done;
        if (s.q_p && (st = required(&cfg, "quantize", s.q_p, err))) goto done;
        if (s.q_p && (st = probe_quantizer(reg, &cfg, method, s.q_p, err))) goto done;
        if (s.out_p && (st = required(&cfg, "output", s.out_p, err))) goto done;
    } else if (bt_cfg_has_section(&cfg, "quantize")) {
        if ((st = plugin_opts(reg, &cfg, "quantize", BT_KIND_QUANTIZER, method, &s.q_p, what, sizeof(what), err))) goto done;
        if ((st = apply_section(&cfg, "quantize", s.q, s.q_p, s.q_p ? what : NULL, err))) goto done;
        if (strcmp(method, "none") != 0) {
            e = bt_cfg_get(&cfg, "quantize", "method");
            st = bt_err_set(err, BT_E_INVAL, "%s:%d: [quantize] method = %s needs an [output] section (or use method = none)",
                            cfg.path, e ? e->line : 0, method);
            goto done;
        }
    }
    if ((st = required(&cfg, "input", s.in, err))) goto done;
    for (int k = 0; k < n_stages; k++) {
        if (!bt_cfg_has_section(&cfg, stages[k].section)) continue;
        if (!(s.stage_o[k] = bt_optset_new(stages[k].options))) { st = bt_err_set(err, BT_E_NOMEM, "out of memory"); goto done; }
        if ((st = apply_section(&cfg, stages[k].section, s.stage_o[k], NULL, NULL, err))) goto done;
        if ((st = required(&cfg, stages[k].section, s.stage_o[k], err))) goto done;
    }
    const char *calib_path = bt_opt_str(s.q, "calibration");
    int stage_calib = 0;
    for (int k = 0; k < n_stages; k++)
        if (s.stage_o[k] && stages[k].before && stages[k].provides_calibration &&
            stages[k].provides_calibration(s.stage_o[k]))
            stage_calib = 1;
    if (converting && stage_calib) {
        const char *why = calib_path && *calib_path ? "calibration = FILE (remove one of the two)"
                        : !bt_opt_int(s.q, "second_order") ? "second_order = off (a sequential calibration needs it on)"
                        : bt_opt_float(s.q, "budget_bpw") > 0 || bt_opt_int(s.q, "budget_bytes") > 0
                            ? "budget_bpw/budget_bytes (the budget needs every Hessian up front: use a calibration file)" : NULL;
        if (why) {
            int line = 0;
            for (int i = 0; i < cfg.nsec; i++)
                if (!strcmp(cfg.sections[i], "quantize")) line = cfg.section_lines[i];
            st = bt_err_set(err, BT_E_INVAL, "%s:%d: [calibrate] mode = sequential conflicts with [quantize] %s", cfg.path, line, why);
            goto done;
        }
    }
    if (converting && bt_opt_int(s.q, "second_order") && !(calib_path && *calib_path) && !stage_calib) {
        e = bt_cfg_get(&cfg, "quantize", "second_order");
        st = bt_err_set(err, BT_E_INVAL, "%s:%d: [quantize] second_order needs calibration = FILE (from [calibrate] or `bt-pipeline calibrate`)",
                        cfg.path, e ? e->line : 0);
        goto done;
    }
    if ((st = guard_io(&cfg, &s, stages, n_stages, err))) goto done;
    if ((st = check_work(reg, &cfg, &s, stages, n_stages, converting, reader, method, err))) goto done;
    if (check_only) goto done;
    if ((st = make_out_folders(&cfg, &s, stages, n_stages, err))) goto done;
    /* ---- all validated: do the work ---- */
    if (s.in_p && !(s.in_stage = bt_optset_clone(s.in_p))) { st = bt_err_set(err, BT_E_NOMEM, "out of memory"); goto done; }
    struct bt_stage_ctx sc = {
        .reg = reg, .ini_path = cfg.path, .input_path = bt_opt_str(s.in, "path"),
        .input_reader = reader, .output_path = NULL, .backend = backend, .backend_opts = s.be_p,
        .quiet = ro ? ro->quiet : 0,
        .calib = &calib, .input_opts = s.in_stage,
    };
    for (int k = 0; k < n_stages; k++)
        if (s.stage_o[k] && stages[k].before && (st = stages[k].run(&sc, s.stage_o[k], err))) goto done;
    if (converting && calib && !stage_calib) { /* a stage handed one over unasked: not ours to use */
        ro->calib_close(calib);
        calib = NULL;
    }
    if (converting && calib_path && *calib_path && !calib) {
        if (!ro || !ro->calib_open) {
            st = bt_err_set(err, BT_E_UNSUPPORTED, "%s: [quantize] calibration is not supported by this program", cfg.path);
            goto done;
        }
        if ((st = ro->calib_open(calib_path, &calib, err))) goto done;
    }
    if (converting) {
        struct bt_convert_args ca = {
            .reg = reg, .reader = reader, .in_path = bt_opt_str(s.in, "path"), .reader_opts = s.in_p,
            .method = method, .keep = bt_opt_str(s.q, "keep"), .quant_opts = s.q_p,
            .writer = writer, .out_path = bt_opt_str(s.out, "path"), .writer_opts = s.out_p,
            .type = bt_opt_str(s.out, "type"), .keep_type = bt_opt_str(s.out, "keep_type"),
            .fallback_type = bt_opt_str(s.out, "fallback_type"),
            .report = bt_opt_str(s.out, "report"), .quiet = ro ? ro->quiet : 0,
            .progress = ro ? ro->progress : 0,
            .budget_bpw = bt_opt_float(s.q, "budget_bpw"), .budget_bytes = bt_opt_int(s.q, "budget_bytes"),
            .colw_fn = calib ? ro->calib_colw : NULL, .colw_ctx = calib,
            .hess_fn = calib ? ro->calib_hess : NULL, .entry_fn = calib ? ro->calib_entry : NULL,
            .calib_path = calib_path, .second_order = (int)bt_opt_int(s.q, "second_order"),
            .damp = bt_opt_float(s.q, "damp"), .act_order = (int)bt_opt_int(s.q, "act_order"),
            .budget_relative = !strcmp(bt_opt_str(s.q, "budget_metric"), "relative"),
            .rotate = !strcmp(bt_opt_str(s.q, "rotate"), "hadamard"), /* BT_ROTATE_HADAMARD */
            .rotate_seed = (uint64_t)bt_opt_int(s.q, "rotate_seed"),
            .done_fn = calib ? ro->calib_done : NULL,
            .sequential = calib && ro->calib_sequential ? ro->calib_sequential(calib) : 0,
        };
        if (stage_calib) ca.calib_path = "(sequential calibration)";
        if (!(config = bt_report_config_new())) { st = bt_err_set(err, BT_E_NOMEM, "out of memory"); goto done; }
        bt_report_config_add(config, "pipeline", s.pipe);
        bt_report_config_add(config, "pipeline", s.be_p);
        bt_report_config_add(config, "input", s.in);
        bt_report_config_add(config, "input", s.in_p);
        bt_report_config_add(config, "quantize", s.q);
        bt_report_config_add(config, "quantize", s.q_p);
        bt_report_config_add(config, "output", s.out);
        bt_report_config_add(config, "output", s.out_p);
        for (int k = 0; k < n_stages; k++) bt_report_config_add(config, stages[k].section, s.stage_o[k]);
        ca.config = config;
        s.in_p = s.q_p = s.out_p = NULL; /* owned by bt_convert now */
        bt_compute_begin(reg, backend, s.be_p); /* host->kmeans_assign runs there */
        const char *sob = bt_opt_str(s.q, "so_backend");
        bt_compute_so_mode(!strcmp(sob, "host") ? BT_SO_HOST : !strcmp(sob, "backend") ? BT_SO_BACKEND : BT_SO_AUTO);
        st = bt_convert(&ca, err);
        bt_compute_end();
        if (calib) ro->calib_close(calib);
        calib = NULL;
        if (st) goto done;
        sc.output_path = bt_opt_str(s.out, "path");
    }
    for (int k = 0; k < n_stages; k++) {
        if (!s.stage_o[k] || stages[k].before) continue;
        if ((st = stages[k].run(&sc, s.stage_o[k], err))) goto done;
    }
done:
    bt_report_config_free(config);
    if (calib) ro->calib_close(calib);
    state_free(&s);
    bt_registry_free(reg);
    bt_cfg_free(&cfg);
    return st;
}

bt_status bt_pipeline_run(const char *ini_path, const struct bt_stage *stages, int n_stages,
                          const struct bt_run_opts *ro, bt_err *err) {
    return pipeline_run(ini_path, NULL, NULL, stages, n_stages, ro, 0, err);
}

bt_status bt_pipeline_run_text(const char *text, const char *name, const char *base_dir,
                               const struct bt_stage *stages, int n_stages, const struct bt_run_opts *ro,
                               bt_err *err) {
    return pipeline_run(name, text, base_dir, stages, n_stages, ro, 0, err);
}

bt_status bt_pipeline_check(const char *ini_path, const struct bt_stage *stages, int n_stages,
                            bt_err *err) {
    return pipeline_run(ini_path, NULL, NULL, stages, n_stages, NULL, 1, err);
}
