/* report.c - the conversion report: a summary table on stdout and a JSON file (json-c). */
#include "report.h"

#include <json-c/json.h>
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
    json_object_object_add(root, "input", json_object_new_string(r->input));
    json_object_object_add(root, "output", json_object_new_string(r->output));
    json_object_object_add(root, "method", json_object_new_string(r->method));
    json_object_object_add(root, "tensors", arr);
    json_object_object_add(root, "totals", tot);
    bt_status st = bt_json_write_atomic(root, path, err);
    json_object_put(root);
    return st;
}
