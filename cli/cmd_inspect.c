/* cmd_inspect.c - `inspect [--json] FILE`: metadata (arrays summarised, long strings cut) and
 * tensors (type, shape in GGUF order ne0 first, bytes, bits/weight) of any model a reader opens,
 * with totals per type and the file's bits/weight; --json prints the same as one JSON object.
 * Tensors of types bt cannot decode are listed like any other and marked, never fatal. */
#include "bt/bt_pipeline.h"
#include "bt_types.h"
#include "cli.h"

#include <json-c/json.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#define STR_CUT  80   /* text output: strings longer than this are cut */
#define JSTR_CUT 4096 /* JSON output: ... and here */
#define ARR_HEAD 8    /* array elements shown */

static const char *kv_type_name(uint32_t t) {
    static const char *n[] = {"u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool",
                              "string", "array", "u64", "i64", "f64"};
    return t < sizeof(n) / sizeof(n[0]) ? n[t] : "?";
}

/* element i of a numeric array as double / int64 / uint64 (what its type holds) */
static void arr_num(uint32_t t, const void *arr, uint64_t i, double *f, int64_t *s, uint64_t *u,
                    int *kind) {
    const uint8_t *p = (const uint8_t *)arr + i * bt_kv_scalar_size(t);
    *kind = 0;
    switch (t) {
    case BT_KV_U8: case BT_KV_BOOL: *u = p[0]; break;
    case BT_KV_I8: *s = (int8_t)p[0]; *kind = 1; break;
    case BT_KV_U16: { uint16_t v; memcpy(&v, p, 2); *u = v; break; }
    case BT_KV_I16: { int16_t v; memcpy(&v, p, 2); *s = v; *kind = 1; break; }
    case BT_KV_U32: { uint32_t v; memcpy(&v, p, 4); *u = v; break; }
    case BT_KV_I32: { int32_t v; memcpy(&v, p, 4); *s = v; *kind = 1; break; }
    case BT_KV_U64: memcpy(u, p, 8); break;
    case BT_KV_I64: memcpy(s, p, 8); *kind = 1; break;
    case BT_KV_F32: { float v; memcpy(&v, p, 4); *f = v; *kind = 2; break; }
    case BT_KV_F64: memcpy(f, p, 8); *kind = 2; break;
    default: *u = 0;
    }
}

/* a string on one line, quoted: quotes, backslashes and control characters escaped, cut at
 * max bytes */
static void put_str(const char *s, uint64_t n, uint64_t max) {
    putchar('"');
    for (uint64_t i = 0; i < n && i < max; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') printf("\\%c", c);
        else if (c == '\n') fputs("\\n", stdout);
        else if (c == '\t') fputs("\\t", stdout);
        else if (c < 0x20) printf("\\x%02x", c);
        else putchar(c);
    }
    putchar('"');
    if (n > max) printf("... (%llu bytes)", (unsigned long long)n);
}

static void print_kv(const struct bt_kv *kv) {
    printf("  %-44s ", kv->key);
    switch (kv->type) {
    case BT_KV_STRING: put_str(kv->v.s, kv->n, STR_CUT); break;
    case BT_KV_F32: case BT_KV_F64: printf("%g", kv->v.f); break;
    case BT_KV_BOOL: printf("%s", kv->v.u ? "true" : "false"); break;
    case BT_KV_I8: case BT_KV_I16: case BT_KV_I32: case BT_KV_I64: printf("%lld", (long long)kv->v.i); break;
    case BT_KV_ARRAY:
        printf("[%llu x %s]", (unsigned long long)kv->n, kv_type_name(kv->arr_type));
        for (uint64_t i = 0; i < kv->n && i < ARR_HEAD; i++) {
            putchar(' ');
            if (kv->arr_type == BT_KV_STRING) {
                const char *s = ((const char *const *)kv->v.arr)[i];
                put_str(s, strlen(s), 24);
                continue;
            }
            double f = 0;
            int64_t s = 0;
            uint64_t u = 0;
            int k;
            arr_num(kv->arr_type, kv->v.arr, i, &f, &s, &u, &k);
            if (k == 2) printf("%g", f);
            else if (k == 1) printf("%lld", (long long)s);
            else printf("%llu", (unsigned long long)u);
        }
        if (kv->n > ARR_HEAD) printf(" ...");
        break;
    default: printf("%llu", (unsigned long long)kv->v.u);
    }
    putchar('\n');
}

static json_object *kv_json(const struct bt_kv *kv) {
    json_object *o = json_object_new_object();
    json_object_object_add(o, "key", json_object_new_string(kv->key));
    json_object_object_add(o, "type", json_object_new_string(kv_type_name(kv->type)));
    switch (kv->type) {
    case BT_KV_STRING:
        json_object_object_add(o, "value", json_object_new_string_len(kv->v.s, (int)(kv->n > JSTR_CUT ? JSTR_CUT : kv->n)));
        if (kv->n > JSTR_CUT) {
            json_object_object_add(o, "truncated", json_object_new_boolean(1));
            json_object_object_add(o, "length", json_object_new_int64((int64_t)kv->n));
        }
        break;
    case BT_KV_F32: case BT_KV_F64: json_object_object_add(o, "value", json_object_new_double(kv->v.f)); break;
    case BT_KV_BOOL: json_object_object_add(o, "value", json_object_new_boolean(kv->v.u != 0)); break;
    case BT_KV_I8: case BT_KV_I16: case BT_KV_I32: case BT_KV_I64:
        json_object_object_add(o, "value", json_object_new_int64(kv->v.i)); break;
    case BT_KV_ARRAY: {
        json_object *a = json_object_new_array();
        json_object_object_add(o, "element_type", json_object_new_string(kv_type_name(kv->arr_type)));
        json_object_object_add(o, "n", json_object_new_int64((int64_t)kv->n));
        for (uint64_t i = 0; i < kv->n && i < ARR_HEAD; i++) {
            if (kv->arr_type == BT_KV_STRING) {
                json_object_array_add(a, json_object_new_string(((const char *const *)kv->v.arr)[i]));
                continue;
            }
            double f = 0;
            int64_t s = 0;
            uint64_t u = 0;
            int k;
            arr_num(kv->arr_type, kv->v.arr, i, &f, &s, &u, &k);
            json_object_array_add(a, k == 2 ? json_object_new_double(f)
                                     : k == 1 ? json_object_new_int64(s)
                                     : kv->arr_type == BT_KV_BOOL ? json_object_new_boolean(u != 0)
                                     : json_object_new_uint64(u));
        }
        json_object_object_add(o, "head", a); /* the first ARR_HEAD elements */
        break;
    }
    default: json_object_object_add(o, "value", json_object_new_uint64(kv->v.u));
    }
    return o;
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

/* format details after the bytes column (MTQ geometry, VQ layout, bpw of block types) */
static void print_detail(const struct bt_tensor *t) {
    if (t->fmt.type == BT_TYPE_MTQ)
        printf("  %u planes, %u-element blocks, %s layout", t->fmt.planes, t->fmt.block,
               t->fmt.layout ? "compact" : "interleaved");
    struct bt_vq_layout L;
    if (t->fmt.type == BT_TYPE_VQ && bt_vq_layout(&t->fmt, bt_tensor_rows(t), bt_tensor_cols(t), &L)) {
        printf("  vectors of %u, %u x %u centroids", L.v, L.G, 1u << L.b1);
        if (L.b2) printf(" + %u x %u residual", L.G, 1u << L.b2);
        if (L.n_out) printf(", %u outlier columns (vectors of %u, %u centroids)", L.n_out, L.v0, 1u << L.b0);
        printf("%s%s", L.flags & BT_VQ_NORM ? ", column scale+bias" : "", L.flags & BT_VQ_PERM ? ", column order" : "");
        uint64_t all = t->nbytes;
        for (uint32_t k = 0; k < t->n_parts && k < BT_MAX_PARTS; k++) all += t->part_bytes[k];
        printf(": codes %.4f bpw, with codebooks and columns %.4f bpw", (double)L.t / L.v,
               8.0 * (double)all / ((double)bt_tensor_rows(t) * (double)bt_tensor_cols(t)));
    } else if (t->fmt.type != BT_TYPE_VQ) {
        uint32_t b = 0, bb = 0;
        if (bt_fmt_geometry(&t->fmt, &b, &bb) && b != 1) printf("  %.4f bpw", 8.0 * bb / b);
    }
    if (t->fmt.type == BT_TYPE_GGML) printf("  (bt cannot decode this type)");
    for (uint32_t k = 0; k < t->n_parts && k < BT_MAX_PARTS; k++) {
        const char *pn = "?";
        uint64_t pb = 0;
        const struct bt_format *f = bt_format_get(t->fmt.type);
        if (f && f->part_info) f->part_info(&t->fmt, bt_tensor_rows(t), bt_tensor_cols(t), k, &pn, &pb);
        printf("  + %s (%llu bytes)", pn, (unsigned long long)t->part_bytes[k]);
    }
    if (t->src_name && strcmp(t->src_name, t->name)) printf("  (%s)", t->src_name);
}

/* per-type totals */
struct type_sum {
    char     name[32];
    uint32_t n;
    uint64_t bytes, elems;
};

static void add_sum(struct type_sum *s, int *ns, const char *name, uint64_t bytes, uint64_t elems) {
    int i = 0;
    while (i < *ns && strcmp(s[i].name, name)) i++;
    if (i == *ns) {
        if (*ns == 64) return;
        snprintf(s[i].name, sizeof(s[i].name), "%s", name);
        s[i].n = 0;
        s[i].bytes = s[i].elems = 0;
        (*ns)++;
    }
    s[i].n++;
    s[i].bytes += bytes;
    s[i].elems += elems;
}

/* the exact f32 scale a BitNet-style reader gives a ternary tensor (bt.weight_scale.<name>:
 * bitnet.cpp's I2_S tensors of a GGUF, BitNet packed weights of a safetensors model), which it
 * serves as TQ2_0; 0 if none */
static int weight_scale_of(struct bt_reader *r, uint32_t nkv, const char *name, float *scale) {
    static const char pre[] = "bt.weight_scale.";
    for (uint32_t i = 0; i < nkv; i++) {
        struct bt_kv kv;
        if (r->i->kv_get(r->ctx, i, &kv) != BT_OK || kv.type != BT_KV_F32) continue;
        if (!strncmp(kv.key, pre, sizeof pre - 1) && !strcmp(kv.key + sizeof pre - 1, name)) {
            *scale = kv.v.f;
            return 1;
        }
    }
    return 0;
}

int bt_cli_inspect(const struct bt_cli_opts *o, const struct bt_cli_args *a) {
    const char *path = a->pos[0];
    int js = bt_cli_count(a, "json") > 0;
    int rc;
    bt_registry *reg = bt_cli_registry_or_report(o, &rc);
    if (!reg) return rc;
    bt_err err;
    bt_err_clear(&err);
    struct bt_reader *r;
    bt_status st = bt_reader_open(reg, "auto", path, NULL, &r, &err);
    if (st) {
        fprintf(stderr, "bt-pipeline: error: %s\n", err.msg);
        bt_registry_free(reg);
        return bt_cli_exit_code(st);
    }
    uint32_t nkv = r->i->kv_count(r->ctx), nt = r->i->tensor_count(r->ctx);
    json_object *root = js ? json_object_new_object() : NULL, *jkv = NULL, *jt = NULL;
    if (js) {
        json_object_object_add(root, "path", json_object_new_string(path));
        json_object_object_add(root, "reader", json_object_new_string(r->entry->desc->name));
        json_object_object_add(root, "metadata", jkv = json_object_new_array());
        json_object_object_add(root, "tensors", jt = json_object_new_array());
    } else {
        printf("%s: reader %s, %u metadata keys, %u tensors\n", path, r->entry->desc->name, nkv, nt);
    }
    for (uint32_t i = 0; i < nkv; i++) {
        struct bt_kv kv;
        if (r->i->kv_get(r->ctx, i, &kv) != BT_OK) continue;
        if (js) json_object_array_add(jkv, kv_json(&kv));
        else print_kv(&kv);
    }
    uint64_t total = 0, elems = 0;
    struct type_sum sums[64];
    int nsum = 0, bad = 0, undecodable = 0;
    if (!js) printf("  %-40s %-10s %-22s %12s\n", "tensor", "type", "shape (ne0 first)", "bytes");
    for (uint32_t i = 0; i < nt; i++) {
        struct bt_tensor t;
        if (r->i->tensor_get(r->ctx, i, &t, &err)) {
            fprintf(stderr, "bt-pipeline: error: %s\n", err.msg);
            bad = 1;
            bt_err_clear(&err);
            continue;
        }
        char sh[96] = "", ty[32];
        size_t off = 0;
        uint64_t ne = 1, bytes = t.nbytes;
        for (uint32_t d = 0; d < t.n_dims; d++) {
            int64_t v = t.shape[t.n_dims - 1 - d]; /* GGUF order: ne0 = the contiguous dim */
            ne *= (uint64_t)v;
            if (off < sizeof(sh))
                off += (size_t)snprintf(sh + off, sizeof(sh) - off, d ? " x %lld" : "%lld", (long long)v);
        }
        for (uint32_t k = 0; k < t.n_parts && k < BT_MAX_PARTS; k++) bytes += t.part_bytes[k];
        bt_fmt_str(&t.fmt, ty, sizeof(ty));
        /* I2_S (bitnet.cpp): the file's type and bytes (n/4 codes + a 32-byte trailer), not the
         * TQ2_0 the reader serves */
        float wscale = 0.0f;
        int ws = weight_scale_of(r, nkv, t.name, &wscale);
        int i2s = ws && !strcmp(r->entry->desc->name, "gguf");
        if (i2s) {
            snprintf(ty, sizeof ty, "i2_s");
            bytes = ne / 4 + 32;
        }
        undecodable += t.fmt.type == BT_TYPE_GGML;
        if (js) {
            json_object *o = json_object_new_object(), *a = json_object_new_array();
            json_object_object_add(o, "name", json_object_new_string(t.name));
            json_object_object_add(o, "type", json_object_new_string(ty));
            for (uint32_t d = 0; d < t.n_dims; d++)
                json_object_array_add(a, json_object_new_int64(t.shape[t.n_dims - 1 - d]));
            json_object_object_add(o, "ne", a);
            json_object_object_add(o, "bytes", json_object_new_int64((int64_t)bytes));
            json_object_object_add(o, "bpw", json_object_new_double(ne ? 8.0 * (double)bytes / (double)ne : 0.0));
            json_object_object_add(o, "decodable", json_object_new_boolean(t.fmt.type != BT_TYPE_GGML));
            if (t.src_name && strcmp(t.src_name, t.name))
                json_object_object_add(o, "source_name", json_object_new_string(t.src_name));
            if (ws) {
                json_object_object_add(o, "served_as", json_object_new_string("tq2_0"));
                json_object_object_add(o, "weight_scale", json_object_new_double(wscale));
            }
            json_object_array_add(jt, o);
        } else {
            printf("  %-40s %-10s %-22s %12llu", t.name, ty, sh,
                   (unsigned long long)(i2s ? bytes : t.nbytes));
            if (ws) printf("  %sper-tensor f32 scale %.9g, served as tq2_0", i2s ? "2.0000 bpw + " : "", wscale);
            else print_detail(&t);
            printf("\n");
            if (t.fmt.type == BT_TYPE_MTQ && t.data) print_mtq_scales(&t);
        }
        add_sum(sums, &nsum, ty, bytes, ne);
        total += bytes;
        elems += ne;
    }
    struct stat sb;
    int64_t fsize = stat(path, &sb) == 0 && S_ISREG(sb.st_mode) ? (int64_t)sb.st_size : -1;
    double bpw = elems ? 8.0 * (double)total / (double)elems : 0.0;
    double fbpw = elems && fsize >= 0 ? 8.0 * (double)fsize / (double)elems : 0.0;
    if (js) {
        json_object *ts = json_object_new_array();
        for (int k = 0; k < nsum; k++) {
            json_object *o = json_object_new_object();
            json_object_object_add(o, "type", json_object_new_string(sums[k].name));
            json_object_object_add(o, "tensors", json_object_new_int64(sums[k].n));
            json_object_object_add(o, "elements", json_object_new_int64((int64_t)sums[k].elems));
            json_object_object_add(o, "bytes", json_object_new_int64((int64_t)sums[k].bytes));
            json_object_array_add(ts, o);
        }
        json_object_object_add(root, "types", ts);
        json_object_object_add(root, "tensor_bytes", json_object_new_int64((int64_t)total));
        json_object_object_add(root, "elements", json_object_new_int64((int64_t)elems));
        json_object_object_add(root, "bpw", json_object_new_double(bpw));
        if (fsize >= 0) {
            json_object_object_add(root, "file_bytes", json_object_new_int64(fsize));
            json_object_object_add(root, "file_bpw", json_object_new_double(fbpw));
        }
        json_object_object_add(root, "undecodable_tensors", json_object_new_int(undecodable));
        printf("%s\n", json_object_to_json_string_ext(root, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE));
        json_object_put(root);
    } else {
        printf("types:");
        for (int k = 0; k < nsum; k++)
            printf("%s %s x %u (%.2f MiB)", k ? "," : "", sums[k].name, sums[k].n,
                   (double)sums[k].bytes / 1048576.0);
        printf("\ntotal: %llu elements, %llu tensor bytes, %.4f bits/weight", (unsigned long long)elems,
               (unsigned long long)total, bpw);
        if (fsize >= 0) printf(" (file %lld bytes, %.4f bits/weight)", (long long)fsize, fbpw);
        printf("\n");
        if (undecodable)
            printf("note: %d tensors are of types bt cannot decode: it lists them, but cannot "
                   "convert or run this file\n", undecodable);
    }
    bt_reader_close(r);
    bt_registry_free(reg);
    return bad; /* a tensor that could not be read (corrupt) was named on stderr */
}
