/* report.c - the conversion report: a summary table on stdout and a JSON file (json-c) with the
 * bt version, the effective configuration and the calibration file's sha256 (OpenSSL). */
#include "report.h"

#include <errno.h>
#include <json-c/json.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

bt_status bt_report_add(struct bt_report *r, const struct bt_report_row *row) {
    if (r->n == r->cap) {
        int nc = r->cap ? 2 * r->cap : 64;
        struct bt_report_row *nr = realloc(r->rows, (size_t)nc * sizeof(*nr));
        if (!nr) return BT_E_NOMEM;
        r->rows = nr;
        r->cap = nc;
    }
    r->rows[r->n++] = *row;
    r->bytes_in += row->bytes_in;
    r->bytes_out += row->bytes_out;
    return BT_OK;
}

void bt_report_free(struct bt_report *r) {
    free(r->rows);
    memset(r, 0, sizeof(*r));
}

static void shape_str(const struct bt_report_row *row, char *buf, size_t n) {
    size_t o = 0;
    buf[0] = 0;
    for (int d = 0; d < row->n_dims && o < n; d++)
        o += (size_t)snprintf(buf + o, n - o, d ? "x%lld" : "%lld", (long long)row->shape[d]);
}

/* ---- fallbacks: tensors the quantizer refused, grouped by output type and the row multiple it
 * needed (the "not a multiple of N" of the note; 0 = another reason) ------------------------ */
#define BT_FB_GROUPS 16
struct fb_group {
    char type[24]; /* output type */
    int  block;    /* the row multiple the quantizer needed, 0 if the note does not say */
    int  n;        /* tensors */
};

static int fallback_groups(const struct bt_report *r, struct fb_group *g) {
    int ng = 0;
    for (int i = 0; i < r->n; i++) {
        const struct bt_report_row *row = &r->rows[i];
        if (strncmp(row->note, "fallback to ", 12) != 0) continue;
        const char *m = strstr(row->note, "not a multiple of ");
        int block = m ? atoi(m + 18) : 0, k = 0;
        while (k < ng && (g[k].block != block || strcmp(g[k].type, row->type_out))) k++;
        if (k == ng) {
            if (ng == BT_FB_GROUPS) continue;
            snprintf(g[k].type, sizeof g[k].type, "%s", row->type_out);
            g[k].block = block;
            g[k].n = 0;
            ng++;
        }
        g[k].n++;
    }
    return ng;
}

void bt_report_print(const struct bt_report *r, FILE *f) {
    fprintf(f, "%-34s %-12s %-6s %-9s %6s %9s  %s\n", "tensor", "shape", "in", "out", "bpw", "rel_rmse", "note");
    double q_err = 0;
    int nq = 0;
    for (int i = 0; i < r->n; i++) {
        const struct bt_report_row *row = &r->rows[i];
        char sh[64];
        shape_str(row, sh, sizeof(sh));
        fprintf(f, "%-34s %-12s %-6s %-9s %6.3f %9.5f  %s\n", row->name, sh, row->type_in,
                row->type_out, row->bpw, row->rel_rmse, row->note);
        if (!row->note[0]) { q_err += row->rel_rmse; nq++; }
    }
    double mb_in = (double)r->bytes_in / 1e6, mb_out = (double)r->bytes_out / 1e6;
    fprintf(f, "total: %d tensors, %.2f MB -> %.2f MB (%.2fx), %.2f s, %.1f MB/s in",
            r->n, mb_in, mb_out, mb_out > 0 ? mb_in / mb_out : 0.0, r->wall,
            r->wall > 0 ? mb_in / r->wall : 0.0);
    if (nq) fprintf(f, ", mean rel_rmse of %d quantized tensors %.4f", nq, q_err / nq);
    fprintf(f, "\n");
    struct fb_group g[BT_FB_GROUPS];
    int ng = fallback_groups(r, g);
    for (int k = 0; k < ng; k++) {
        if (g[k].block)
            fprintf(f, "fallback: %d tensor%s kept at %s because rows are not a multiple of %d\n",
                    g[k].n, g[k].n == 1 ? "" : "s", g[k].type, g[k].block);
        else
            fprintf(f, "fallback: %d tensor%s kept at %s (the quantizer refused them)\n", g[k].n,
                    g[k].n == 1 ? "" : "s", g[k].type);
    }
    if (r->file_bytes)
        fprintf(f, "wrote %s: %.2f MB on disk (%.2fx smaller than the input's tensors)\n", r->output,
                (double)r->file_bytes / 1e6, (double)r->bytes_in / (double)r->file_bytes);
}

/* ---- effective configuration ---------------------------------------------------------------- */
void *bt_report_config_new(void) { return json_object_new_object(); }

void bt_report_config_free(void *config) {
    if (config) json_object_put(config);
}

void bt_report_config_add(void *config, const char *section, const bt_optset *o) {
    const struct bt_option *t = bt_optset_table(o);
    if (!config || !t) return;
    json_object *sec = NULL;
    if (!json_object_object_get_ex(config, section, &sec)) {
        sec = json_object_new_object();
        json_object_object_add(config, section, sec);
    }
    for (; t->name; t++) {
        const char *v = bt_opt_str(o, t->name);
        json_object *jv = NULL;
        if (!v) jv = NULL;
        else if (t->type == BT_OPT_BOOL) jv = json_object_new_boolean(bt_opt_int(o, t->name) != 0);
        else if (t->type == BT_OPT_INT) jv = json_object_new_int64(bt_opt_int(o, t->name));
        else if (t->type == BT_OPT_FLOAT) jv = json_object_new_double(bt_opt_float(o, t->name));
        else jv = json_object_new_string(v);
        json_object_object_add(sec, t->name, jv);
    }
}

bt_status bt_file_sha256(const char *path, char hex[65], bt_err *err) {
    FILE *f = fopen(path, "rb");
    if (!f) return bt_err_set(err, BT_E_IO, "%s: cannot read: %s", path, strerror(errno));
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    unsigned char buf[1 << 16], md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    int ok = c && EVP_DigestInit_ex(c, EVP_sha256(), NULL);
    size_t k;
    while (ok && (k = fread(buf, 1, sizeof buf, f)) > 0) ok = EVP_DigestUpdate(c, buf, k);
    ok = ok && !ferror(f) && EVP_DigestFinal_ex(c, md, &n) && n == 32;
    EVP_MD_CTX_free(c);
    fclose(f);
    if (!ok) return bt_err_set(err, BT_E_IO, "%s: cannot compute its sha256", path);
    for (unsigned int i = 0; i < n; i++) snprintf(hex + 2 * i, 3, "%02x", md[i]);
    return BT_OK;
}

bt_status bt_json_write_atomic(void *json, const char *path, bt_err *err) {
    size_t n = strlen(path) + 16;
    char *tmp = malloc(n);
    if (!tmp) return bt_err_set(err, BT_E_NOMEM, "out of memory");
    snprintf(tmp, n, "%s.tmp%d", path, (int)getpid());
    const char *s = json_object_to_json_string_ext(json, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE);
    FILE *f = fopen(tmp, "w");
    bt_status st = BT_OK;
    if (!f || fputs(s, f) < 0 || fputc('\n', f) < 0) st = bt_err_set(err, BT_E_IO, "%s: cannot write: %m", path);
    if (f && fclose(f) != 0 && st == BT_OK) st = bt_err_set(err, BT_E_IO, "%s: cannot write: %m", path);
    if (st == BT_OK && rename(tmp, path) != 0) st = bt_err_set(err, BT_E_IO, "%s: cannot rename: %m", path);
    if (st != BT_OK) unlink(tmp);
    free(tmp);
    return st;
}

bt_status bt_report_write_json(const struct bt_report *r, const char *path, bt_err *err) {
    json_object *root = json_object_new_object(), *arr = json_object_new_array();
    double q_err = 0;
    int nq = 0;
    for (int i = 0; i < r->n; i++) {
        const struct bt_report_row *row = &r->rows[i];
        json_object *o = json_object_new_object(), *sh = json_object_new_array();
        for (int d = 0; d < row->n_dims; d++) json_object_array_add(sh, json_object_new_int64(row->shape[d]));
        json_object_object_add(o, "name", json_object_new_string(row->name));
        json_object_object_add(o, "shape", sh);
        json_object_object_add(o, "type_in", json_object_new_string(row->type_in));
        json_object_object_add(o, "type_out", json_object_new_string(row->type_out));
        json_object_object_add(o, "bits_per_weight", json_object_new_double(row->bpw));
        json_object_object_add(o, "rel_rmse", json_object_new_double(row->rel_rmse));
        if (row->herr2 > 0) json_object_object_add(o, "hessian_err", json_object_new_double(row->herr2));
        json_object_object_add(o, "seconds", json_object_new_double(row->seconds));
        json_object_object_add(o, "bytes_in", json_object_new_int64((int64_t)row->bytes_in));
        json_object_object_add(o, "bytes_out", json_object_new_int64((int64_t)row->bytes_out));
        json_object_object_add(o, "quantized", json_object_new_boolean(!row->note[0]));
        if (row->note[0]) json_object_object_add(o, "note", json_object_new_string(row->note));
        json_object_array_add(arr, o);
        if (!row->note[0]) { q_err += row->rel_rmse; nq++; }
    }
    json_object *tot = json_object_new_object();
    json_object_object_add(tot, "tensors", json_object_new_int(r->n));
    json_object_object_add(tot, "quantized_tensors", json_object_new_int(nq));
    json_object_object_add(tot, "mean_rel_rmse_quantized", json_object_new_double(nq ? q_err / nq : 0));
    json_object_object_add(tot, "bytes_in", json_object_new_int64((int64_t)r->bytes_in));
    json_object_object_add(tot, "bytes_out", json_object_new_int64((int64_t)r->bytes_out));
    json_object_object_add(tot, "compression", json_object_new_double(r->bytes_out ? (double)r->bytes_in / (double)r->bytes_out : 0));
    json_object_object_add(tot, "wall_seconds", json_object_new_double(r->wall));
    json_object_object_add(tot, "mb_per_s_in", json_object_new_double(r->wall > 0 ? (double)r->bytes_in / 1e6 / r->wall : 0));
    struct fb_group g[BT_FB_GROUPS];
    int ng = fallback_groups(r, g);
    json_object *fb = json_object_new_array();
    for (int k = 0; k < ng; k++) {
        json_object *o = json_object_new_object();
        json_object_object_add(o, "type", json_object_new_string(g[k].type));
        json_object_object_add(o, "row_multiple", json_object_new_int(g[k].block));
        json_object_object_add(o, "tensors", json_object_new_int(g[k].n));
        json_object_array_add(fb, o);
    }
    json_object_object_add(tot, "fallbacks", fb);
    if (r->file_bytes) json_object_object_add(tot, "file_bytes", json_object_new_int64((int64_t)r->file_bytes));
    json_object_object_add(root, "bt_version", json_object_new_string(BT_VERSION));
    json_object_object_add(root, "input", json_object_new_string(r->input));
    json_object_object_add(root, "output", json_object_new_string(r->output));
    json_object_object_add(root, "method", json_object_new_string(r->method));
    if (r->calib[0]) {
        json_object *c = json_object_new_object();
        json_object_object_add(c, "path", json_object_new_string(r->calib));
        json_object_object_add(c, "sha256", r->calib_sha[0] ? json_object_new_string(r->calib_sha) : NULL);
        json_object_object_add(root, "calibration", c);
    } else {
        json_object_object_add(root, "calibration", NULL);
    }
    if (r->config) json_object_object_add(root, "config", json_object_get((json_object *)r->config));
    json_object_object_add(root, "tensors", arr);
    json_object_object_add(root, "totals", tot);
    bt_status st = bt_json_write_atomic(root, path, err);
    json_object_put(root);
    return st;
}
