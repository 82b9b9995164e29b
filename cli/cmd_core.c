/* cmd_core.c - `run`, `plugins` and `inspect`. */
#include "bt/bt_pipeline.h"
#include "bt_types.h"
#include "cli.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

int bt_cli_run(const struct bt_cli_opts *o, int argc, char **argv) {
    if (argc != 1) { fprintf(stderr, "usage: bt-pipeline run FILE.ini\n"); return 2; }
    struct bt_run_opts ro = {.quiet = o->quiet, .progress = o->progress,
                             .plugin_dir = o->plugin_dir, .override = o->override};
#ifdef BT_HAVE_RUNTIME
    ro.calib_open = bt_cli_calib_open;
    ro.calib_colw = bt_cli_calib_colw;
    ro.calib_close = bt_cli_calib_close;
    ro.calib_hess = bt_cli_calib_hess;
    ro.calib_entry = bt_cli_calib_entry;
    ro.calib_done = bt_cli_calib_done;
    ro.calib_sequential = bt_cli_calib_sequential;
#endif
    bt_err err;
    bt_err_clear(&err);
    int n = 0;
    const struct bt_stage *stages = bt_cli_stages(&n);
    bt_status st = bt_pipeline_run(argv[0], stages, n, &ro, &err);
    if (st) {
        fprintf(stderr, "bt-pipeline: error: %s\n", err.msg[0] ? err.msg : bt_status_str(st));
        return bt_cli_exit_code(st);
    }
    return 0;
}

static void print_options(const struct bt_option *op) {
    static const char *tn[] = {"bool", "int", "float", "string", "enum", "path"};
    for (; op && op->name; op++) {
        printf("      %-14s %-6s default=%-8s", op->name, op->type <= 5 ? tn[op->type] : "?", op->def ? op->def : "(required)");
        if (op->type == BT_OPT_ENUM && op->choices) printf(" {%s}", op->choices);
        if ((op->type == BT_OPT_INT || op->type == BT_OPT_FLOAT) && op->min <= op->max) printf(" [%g..%g]", op->min, op->max);
        printf("  %s\n", op->help ? op->help : "");
    }
}

/* ---- ini-reference: every INI key from the option tables, as markdown ------------------------ */
static void md_table(const struct bt_option *op) {
    static const char *tn[] = {"bool", "int", "float", "string", "enum", "path"};
    printf("| key | type | default | meaning |\n|---|---|---|---|\n");
    for (; op && op->name; op++) {
        char ty[96];
        if (op->type == BT_OPT_ENUM && op->choices) snprintf(ty, sizeof ty, "%s", op->choices);
        else if ((op->type == BT_OPT_INT || op->type == BT_OPT_FLOAT) && op->min <= op->max)
            snprintf(ty, sizeof ty, "%s %g..%g", tn[op->type], op->min, op->max);
        else snprintf(ty, sizeof ty, "%s", op->type <= 5 ? tn[op->type] : "?");
        for (char *c = ty; *c; c++) if (*c == '|') *c = ','; /* (a table cell) */
        printf("| `%s` | %s | %s%s%s | ", op->name, ty, op->def ? "`" : "",
               op->def ? (*op->def ? op->def : "\"\"") : "required", op->def ? "`" : "");
        for (const char *h = op->help ? op->help : ""; *h; h++) {
            if (*h == '|') fputs("\\|", stdout);
            else putchar(*h);
        }
        printf(" |\n");
    }
}

int bt_cli_ini_reference(const struct bt_cli_opts *o, int argc, char **argv) {
    (void)argv;
    if (argc) { fprintf(stderr, "usage: bt-pipeline ini-reference\n"); return 2; }
    int rc;
    bt_registry *reg = bt_cli_registry_or_report(o, &rc);
    if (!reg) return rc;
    static const struct { const char *sec; uint32_t kind; } secs[] = {
        {"pipeline", 0}, {"input", BT_KIND_READER}, {"quantize", BT_KIND_QUANTIZER}, {"output", BT_KIND_WRITER},
    };
    for (size_t k = 0; k < sizeof secs / sizeof secs[0]; k++) {
        printf("### [%s]\n\n", secs[k].sec);
        md_table(bt_pipeline_section_options(secs[k].sec));
        const char *last = "";
        for (;;) { /* plugins of the section's kind by name, for a stable document */
            const struct bt_plugin *d = NULL;
            for (uint32_t i = 0; secs[k].kind && i < bt_registry_count(reg); i++) {
                const struct bt_plugin *x = bt_registry_at(reg, i)->desc;
                if (x->kind == secs[k].kind && x->options && x->options->name && strcmp(x->name, last) > 0 &&
                    (!d || strcmp(x->name, d->name) < 0))
                    d = x;
            }
            if (!d) break;
            last = d->name;
            printf("\nwith %s %s:\n\n", secs[k].kind == BT_KIND_READER ? "reader =" : secs[k].kind == BT_KIND_WRITER
                   ? "writer =" : "method =", d->name);
            md_table(d->options);
        }
        printf("\n");
    }
    int n = 0;
    const struct bt_stage *st = bt_cli_stages(&n);
    for (int k = 0; k < n; k++) {
        printf("### [%s]\n\n", st[k].section);
        md_table(st[k].options);
        printf("\n");
    }
    bt_registry_free(reg);
    return 0;
}

int bt_cli_plugins(const struct bt_cli_opts *o, int argc, char **argv) {
    int rc;
    bt_registry *reg = bt_cli_registry_or_report(o, &rc);
    if (!reg) return rc;
    for (uint32_t k = BT_KIND_READER; k <= BT_KIND_BACKEND; k++)
        for (uint32_t i = 0; i < bt_registry_count(reg); i++) {
            const struct bt_plugin_entry *e = bt_registry_at(reg, i);
            const struct bt_plugin *d = e->desc;
            if (d->kind != k) continue;
            printf("%-9s %-12s %-8s ABI %u.%u  %s\n    %s\n", bt_kind_name(d->kind), d->name, d->version,
                   BT_ABI_MAJOR_OF(d->abi_version), BT_ABI_MINOR_OF(d->abi_version),
                   d->description ? d->description : "", e->path);
            print_options(d->options);
        }
    for (uint32_t i = 0; i < bt_registry_reject_count(reg); i++)
        printf("refused   %s\n", bt_registry_reject_at(reg, i));
    int empty = bt_registry_count(reg) == 0;
    if (empty) fprintf(stderr, "bt-pipeline: no plugins found\n");
    bt_registry_free(reg);
    return empty ? 3 : 0;
}

static void print_kv(const struct bt_kv *kv) {
    printf("  %-44s ", kv->key);
    switch (kv->type) {
    case BT_KV_STRING: printf("%.*s%s\n", kv->n > 80 ? 80 : (int)kv->n, kv->v.s, kv->n > 80 ? "..." : ""); break;
    case BT_KV_F32: case BT_KV_F64: printf("%g\n", kv->v.f); break;
    case BT_KV_BOOL: printf("%s\n", kv->v.u ? "true" : "false"); break;
    case BT_KV_I8: case BT_KV_I16: case BT_KV_I32: case BT_KV_I64: printf("%lld\n", (long long)kv->v.i); break;
    case BT_KV_ARRAY:
        printf("[%llu x ", (unsigned long long)kv->n);
        if (kv->arr_type == BT_KV_STRING) {
            const char *const *s = kv->v.arr;
            printf("string]");
            for (uint64_t i = 0; i < kv->n && i < 4; i++) printf(" '%s'", s[i]);
        } else if (kv->arr_type == BT_KV_U32 || kv->arr_type == BT_KV_I32) {
            const int32_t *a = kv->v.arr;
            printf("%s]", kv->arr_type == BT_KV_U32 ? "u32" : "i32");
            for (uint64_t i = 0; i < kv->n && i < 8; i++) printf(" %d", a[i]);
        } else if (kv->arr_type == BT_KV_F32) {
            const float *a = kv->v.arr;
            printf("f32]");
            for (uint64_t i = 0; i < kv->n && i < 8; i++) printf(" %g", a[i]);
        } else {
            printf("type %u]", kv->arr_type);
        }
        printf("%s\n", kv->n > 4 ? " ..." : "");
        break;
    default: printf("%llu\n", (unsigned long long)kv->v.u);
    }
}

/* mean |scale| of each plane over all blocks (scales are the first 2N bytes of each block) */
static void print_mtq_scales(const struct bt_tensor *t) {
    size_t bb = bt_mtq_block_bytes(t->fmt.planes, t->fmt.block, t->fmt.layout);
    if (!bb || t->fmt.planes > 8) return;
    uint64_t nblk = t->nbytes / bb;
    double sum[8] = {0};
    const uint8_t *p = t->data;
    for (uint64_t b = 0; b < nblk; b++, p += bb)
        for (uint32_t k = 0; k < t->fmt.planes; k++)
            sum[k] += fabsf(bt_fp16_to_f32((uint16_t)(p[2 * k] | (p[2 * k + 1] << 8))));
    printf("  %-40s plane scales, mean |a| over %llu blocks:", "", (unsigned long long)nblk);
    for (uint32_t k = 0; k < t->fmt.planes; k++) printf(" %.5g", nblk ? sum[k] / (double)nblk : 0.0);
    printf("\n");
}

int bt_cli_inspect(const struct bt_cli_opts *o, int argc, char **argv) {
    if (argc != 1) { fprintf(stderr, "usage: bt-pipeline inspect FILE\n"); return 2; }
    int rc;
    bt_registry *reg = bt_cli_registry_or_report(o, &rc);
    if (!reg) return rc;
    bt_err err;
    bt_err_clear(&err);
    struct bt_reader *r;
    bt_status st = bt_reader_open(reg, "auto", argv[0], NULL, &r, &err);
    if (st) {
        fprintf(stderr, "bt-pipeline: error: %s\n", err.msg);
        bt_registry_free(reg);
        return bt_cli_exit_code(st);
    }
    uint32_t nkv = r->i->kv_count(r->ctx), nt = r->i->tensor_count(r->ctx);
    printf("%s: reader %s, %u metadata keys, %u tensors\n", argv[0], r->entry->desc->name, nkv, nt);
    for (uint32_t i = 0; i < nkv; i++) {
        struct bt_kv kv;
        if (r->i->kv_get(r->ctx, i, &kv) == BT_OK) print_kv(&kv);
    }
    uint64_t total = 0;
    int bad = 0;
    printf("  %-40s %-10s %-18s %12s\n", "tensor", "type", "shape", "bytes");
    for (uint32_t i = 0; i < nt; i++) {
        struct bt_tensor t;
        if (r->i->tensor_get(r->ctx, i, &t, &err)) {
            fprintf(stderr, "bt-pipeline: error: %s\n", err.msg);
            bad = 1;
            bt_err_clear(&err);
            continue;
        }
        char sh[64] = "", ty[32];
        size_t off = 0;
        for (uint32_t d = 0; d < t.n_dims; d++)
            off += (size_t)snprintf(sh + off, sizeof(sh) - off, d ? "x%lld" : "%lld", (long long)t.shape[d]);
        bt_fmt_str(&t.fmt, ty, sizeof(ty));
        printf("  %-40s %-10s %-18s %12llu", t.name, ty, sh, (unsigned long long)t.nbytes);
        if (t.fmt.type == BT_TYPE_MTQ)
            printf("  %u planes, %u-element blocks, %s layout", t.fmt.planes, t.fmt.block,
                   t.fmt.layout ? "compact" : "interleaved");
        struct bt_vq_layout L;
        if (t.fmt.type == BT_TYPE_VQ && bt_vq_layout(&t.fmt, bt_tensor_rows(&t), bt_tensor_cols(&t), &L)) {
            printf("  vectors of %u, %u x %u centroids", L.v, L.G, 1u << L.b1);
            if (L.b2) printf(" + %u x %u residual", L.G, 1u << L.b2);
            if (L.n_out) printf(", %u outlier columns (vectors of %u, %u centroids)", L.n_out, L.v0, 1u << L.b0);
            printf("%s%s", L.flags & BT_VQ_NORM ? ", column scale+bias" : "", L.flags & BT_VQ_PERM ? ", column order" : "");
            uint64_t all = t.nbytes;
            for (uint32_t k = 0; k < t.n_parts && k < BT_MAX_PARTS; k++) all += t.part_bytes[k];
            printf(": codes %.4f bpw, with codebooks and columns %.4f bpw", (double)L.t / L.v,
                   8.0 * (double)all / ((double)bt_tensor_rows(&t) * (double)bt_tensor_cols(&t)));
        } else if (bt_type_block(t.fmt.type) != 1) {
            printf("  %.4f bpw", bt_fmt_bpw(&t.fmt, bt_tensor_cols(&t)));
        }
        for (uint32_t k = 0; k < t.n_parts && k < BT_MAX_PARTS; k++) {
            const char *pn = "?";
            uint64_t pb = 0;
            const struct bt_format *f = bt_format_get(t.fmt.type);
            if (f && f->part_info) f->part_info(&t.fmt, bt_tensor_rows(&t), bt_tensor_cols(&t), k, &pn, &pb);
            printf("  + %s (%llu bytes)", pn, (unsigned long long)t.part_bytes[k]);
        }
        if (t.src_name && strcmp(t.src_name, t.name)) printf("  (%s)", t.src_name);
        printf("\n");
        if (t.fmt.type == BT_TYPE_MTQ && t.data) print_mtq_scales(&t);
        total += t.nbytes;
        for (uint32_t k = 0; k < t.n_parts && k < BT_MAX_PARTS; k++) total += t.part_bytes[k];
    }
    printf("total tensor bytes: %llu\n", (unsigned long long)total);
    bt_reader_close(r);
    bt_registry_free(reg);
    return bad; /* a tensor that could not be read (corrupt) was named on stderr */
}
