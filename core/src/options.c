/* options.c - option sets: typed, validated values for a plugin's declared option table. */
#include "bt/bt.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct bt_optset {
    const struct bt_option *table;
    uint32_t                n;
    char                  **val;   /* current value text per option (owned) */
    int                    *set;   /* 1 if set explicitly */
};

static const struct bt_option *find(const bt_optset *o, const char *name, uint32_t *idx) {
    if (!o || !o->table) return NULL;
    for (uint32_t i = 0; i < o->n; i++)
        if (strcmp(o->table[i].name, name) == 0) {
            if (idx) *idx = i;
            return &o->table[i];
        }
    return NULL;
}

bt_optset *bt_optset_new(const struct bt_option *table) {
    bt_optset *o = calloc(1, sizeof(*o));
    if (!o) return NULL;
    o->table = table;
    while (table && table[o->n].name) o->n++;
    o->val = calloc(o->n + 1, sizeof(char *));
    o->set = calloc(o->n + 1, sizeof(int));
    if (!o->val || !o->set) { bt_optset_free(o); return NULL; }
    for (uint32_t i = 0; i < o->n; i++)
        if (table[i].def && !(o->val[i] = strdup(table[i].def))) { bt_optset_free(o); return NULL; }
    return o;
}

void bt_optset_free(bt_optset *o) {
    if (!o) return;
    for (uint32_t i = 0; o->val && i < o->n; i++) free(o->val[i]);
    free(o->val);
    free(o->set);
    free(o);
}

bt_optset *bt_optset_clone(const bt_optset *o) {
    if (!o) return NULL;
    bt_optset *c = bt_optset_new(o->table);
    for (uint32_t i = 0; c && i < o->n; i++) {
        free(c->val[i]);
        c->val[i] = o->val[i] ? strdup(o->val[i]) : NULL;
        c->set[i] = o->set[i];
        if (o->val[i] && !c->val[i]) { bt_optset_free(c); return NULL; }
    }
    return c;
}

int bt_optset_has(const bt_optset *o, const char *key) { return find(o, key, NULL) != NULL; }

static int parse_int(const char *s, int64_t *out) {
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 0);
    if (errno || end == s) return 0;
    /* size suffixes: 4G, 512M, 64K */
    if (*end && !end[1] && strchr("kKmMgGtT", *end)) {
        int sh = strchr("kK", *end) ? 10 : strchr("mM", *end) ? 20 : strchr("gG", *end) ? 30 : 40;
        if (v > (LLONG_MAX >> sh)) return 0;
        v <<= sh;
        end++;
    }
    if (*end) return 0;
    *out = v;
    return 1;
}

static int parse_float(const char *s, double *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v)) return 0;
    *out = v;
    return 1;
}

static int parse_bool(const char *s, int *out) {
    if (!strcasecmp(s, "true") || !strcasecmp(s, "yes") || !strcasecmp(s, "on") || !strcmp(s, "1")) { *out = 1; return 1; }
    if (!strcasecmp(s, "false") || !strcasecmp(s, "no") || !strcasecmp(s, "off") || !strcmp(s, "0")) { *out = 0; return 1; }
    return 0;
}

static int in_choices(const char *choices, const char *v) {
    size_t n = strlen(v);
    for (const char *p = choices; p && *p;) {
        const char *bar = strchr(p, '|');
        size_t len = bar ? (size_t)(bar - p) : strlen(p);
        if (len == n && strncmp(p, v, n) == 0) return 1;
        p = bar ? bar + 1 : NULL;
    }
    return 0;
}

/* path p in normal form (malloc'd): the real path of its longest existing leading part (no
 * symlinks, no "..") followed by the rest with "." and ".." folded (names that do not exist yet
 * cannot be symlinks); p itself when nothing of it resolves */
static char *normal_path(const char *p) {
    size_t n = strlen(p);
    char *buf = malloc(n + 1), real[PATH_MAX];
    if (!buf) return NULL;
    memcpy(buf, p, n + 1);
    for (size_t cut = n; cut > 0; cut--) {
        if (cut != n && buf[cut] != '/') continue;
        char c = buf[cut];
        buf[cut] = 0;
        int ok = realpath(buf, real) != NULL;
        buf[cut] = c;
        if (!ok) continue;
        size_t m = strlen(real) + strlen(p + cut) + 2, len = strlen(real);
        char *out = malloc(m);
        if (!out) break;
        memcpy(out, real, len + 1);
        for (const char *q = p + cut; *q;) { /* fold the rest, one name at a time */
            while (*q == '/') q++;
            size_t k = strcspn(q, "/");
            if (k == 1 && q[0] == '.') { /* "." */
            } else if (k == 2 && q[0] == '.' && q[1] == '.') {
                char *sl = strrchr(out, '/');
                if (sl) { len = sl == out ? 1 : (size_t)(sl - out); out[len] = 0; }
            } else if (k) {
                if (len && out[len - 1] != '/') out[len++] = '/';
                memcpy(out + len, q, k);
                len += k;
                out[len] = 0;
            }
            q += k;
        }
        free(buf);
        return out;
    }
    return buf;
}

/* the option table of o (borrowed): with bt_opt_str, every key's effective value */
const struct bt_option *bt_optset_table(const bt_optset *o) { return o ? o->table : NULL; }

bt_status bt_optset_set(bt_optset *o, const char *key, const char *value, const char *base_dir,
                        bt_err *err) {
    uint32_t i;
    const struct bt_option *op = find(o, key, &i);
    if (!op) return bt_err_set(err, BT_E_INVAL, "unknown key '%s'", key);
    char *v = NULL;
    int64_t iv;
    double fv;
    int bv;
    switch (op->type) {
    case BT_OPT_BOOL:
        if (!parse_bool(value, &bv))
            return bt_err_set(err, BT_E_INVAL, "%s = '%s': expected true or false", key, value);
        v = strdup(bv ? "true" : "false");
        break;
    case BT_OPT_INT:
        if (!parse_int(value, &iv))
            return bt_err_set(err, BT_E_INVAL, "%s = '%s': expected an integer", key, value);
        if (op->min <= op->max && ((double)iv < op->min || (double)iv > op->max))
            return bt_err_set(err, BT_E_INVAL, "%s = %s: out of range [%g, %g]", key, value, op->min, op->max);
        v = strdup(value);
        break;
    case BT_OPT_FLOAT:
        if (!parse_float(value, &fv))
            return bt_err_set(err, BT_E_INVAL, "%s = '%s': expected a number", key, value);
        if (op->min <= op->max && (fv < op->min || fv > op->max))
            return bt_err_set(err, BT_E_INVAL, "%s = %s: out of range [%g, %g]", key, value, op->min, op->max);
        v = strdup(value);
        break;
    case BT_OPT_ENUM:
        if (!in_choices(op->choices, value))
            return bt_err_set(err, BT_E_INVAL, "%s = '%s': expected one of %s", key, value, op->choices);
        v = strdup(value);
        break;
    case BT_OPT_PATH:
        if (!*value) return bt_err_set(err, BT_E_INVAL, "%s: empty path", key);
        if (value[0] != '/' && base_dir && *base_dir) {
            size_t n = strlen(base_dir) + strlen(value) + 2;
            char *j = malloc(n);
            if (j) {
                snprintf(j, n, "%s/%s", base_dir, value);
                v = normal_path(j);
                free(j);
            }
        } else {
            v = normal_path(value);
        }
        break;
    default:
        v = strdup(value);
    }
    if (!v) return bt_err_set(err, BT_E_NOMEM, "out of memory");
    free(o->val[i]);
    o->val[i] = v;
    o->set[i] = 1;
    return BT_OK;
}

bt_status bt_optset_check_required(const bt_optset *o, bt_err *err) {
    for (uint32_t i = 0; o && i < o->n; i++)
        if (!o->val[i]) return bt_err_set(err, BT_E_INVAL, "missing required key '%s'", o->table[i].name);
    return BT_OK;
}

const char *bt_opt_str(const bt_optset *o, const char *name) {
    uint32_t i;
    return find(o, name, &i) ? o->val[i] : NULL;
}

int64_t bt_opt_int(const bt_optset *o, const char *name) {
    const char *s = bt_opt_str(o, name);
    int64_t v = 0;
    int b;
    if (s && !parse_int(s, &v) && parse_bool(s, &b)) v = b;
    return v;
}

double bt_opt_float(const bt_optset *o, const char *name) {
    const char *s = bt_opt_str(o, name);
    double v = 0;
    if (s) parse_float(s, &v);
    return v;
}

/* 1 if the option was given explicitly (not defaulted) */
int bt_optset_is_set(const bt_optset *o, const char *name) {
    uint32_t i;
    return find(o, name, &i) ? o->set[i] : 0;
}
