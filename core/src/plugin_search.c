/* plugin_search.c - which folders are searched for plugins, in which order, and what a plugin in
 * a user folder may do (docs/plugins-trust.md). Plugin folders are code: every file in them runs
 * with the user's rights. User folders (--plugin-dir, [pipeline] plugin_dir, $BT_PLUGIN_PATH) are
 * checked strictly: a missing one is an error, a relative $BT_PLUGIN_PATH entry is refused, and
 * a user plugin that would shadow a built-in one (same kind and name, decided from the file name
 * before anything is loaded) is refused unless an override names it. */
#include "bt/bt.h"
#include "registry_int.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef BT_INSTALL_PLUGIN_DIR
#define BT_INSTALL_PLUGIN_DIR "/usr/local/lib/bt"
#endif
#ifndef BT_PLUGIN_SUBDIR
#define BT_PLUGIN_SUBDIR "lib/bt"
#endif

#define MAX_FOLDERS 64 /* user + built-in folders searched */
#define MAX_OVR     32 /* override entries */

/* one searched folder */
struct folder {
    char        real[PATH_MAX]; /* realpath */
    int         builtin;        /* one of the folders bt ships its plugins in */
};

/* one plugin file, with the kind and name its file name claims (kind 0: none parsed) */
struct cand {
    char        path[PATH_MAX + 256];
    uint32_t    kind;
    char        name[72];
    int         skip; /* a built-in replaced by an override */
};

/* one override entry: [kind:]name */
struct ovr {
    uint32_t    kind; /* 0: any kind */
    char        name[72];
    const char *from;
    int         used;
};

static uint32_t kind_of(const char *s, size_t n) {
    static const uint32_t kinds[] = {BT_KIND_READER, BT_KIND_WRITER, BT_KIND_QUANTIZER,
                                     BT_KIND_BACKEND, BT_KIND_FORMAT};
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        const char *k = bt_kind_name(kinds[i]);
        if (strlen(k) == n && !strncmp(s, k, n)) return kinds[i];
    }
    return 0;
}

static int valid_name(const char *s, size_t n) {
    if (n == 0 || n > 64) return 0;
    for (size_t i = 0; i < n; i++)
        if (!(islower((unsigned char)s[i]) || isdigit((unsigned char)s[i]) || s[i] == '-')) return 0;
    return 1;
}

/* "libbt-<kind>-<name>.so" -> kind, name; kind 0 if the name does not have that form */
static void parse_file(const char *file, struct cand *c) {
    c->kind = 0;
    const char *k = file + 6, *dash = strchr(k, '-');
    size_t len = strlen(file);
    if (!dash || len < 10) return;
    const char *nm = dash + 1, *end = file + len - 3;
    if (end <= nm || !valid_name(nm, (size_t)(end - nm))) return;
    c->kind = kind_of(k, (size_t)(dash - k));
    snprintf(c->name, sizeof c->name, "%.*s", (int)(end - nm), nm);
}

/* add folder dir (named by `from`) to f[]; user folders must exist */
static bt_status add_folder(struct folder *f, int *nf, const char *dir, int builtin,
                            const char *from, bt_err *err) {
    char real[PATH_MAX];
    struct stat sb;
    if (!realpath(dir, real) || stat(real, &sb) != 0) {
        if (builtin) return BT_OK; /* not installed there: nothing to search */
        return bt_err_set(err, BT_E_INVAL, "%s: plugin folder '%s': %s", from, dir, strerror(errno));
    }
    if (!S_ISDIR(sb.st_mode)) {
        if (builtin) return BT_OK;
        return bt_err_set(err, BT_E_INVAL, "%s: plugin folder '%s' is not a folder", from, dir);
    }
    for (int i = 0; i < *nf; i++)
        if (!strcmp(f[i].real, real)) {
            f[i].builtin |= builtin; /* a user folder that is a built-in one is built-in */
            return BT_OK;
        }
    if (*nf == MAX_FOLDERS) return bt_err_set(err, BT_E_INVAL, "%s: more than %d plugin folders", from, MAX_FOLDERS);
    snprintf(f[*nf].real, sizeof f[*nf].real, "%s", real);
    f[(*nf)++].builtin = builtin;
    return BT_OK;
}

/* $BT_PLUGIN_PATH: ':'-separated absolute folders; empty entries are ignored (never ".") */
static bt_status env_folders(struct folder *f, int *nf, bt_err *err) {
    const char *env = getenv("BT_PLUGIN_PATH");
    if (!env || !*env) return BT_OK;
    char *copy = strdup(env), *save = NULL;
    if (!copy) return bt_err_set(err, BT_E_NOMEM, "out of memory");
    bt_status st = BT_OK;
    for (char *p = strtok_r(copy, ":", &save); p && !st; p = strtok_r(NULL, ":", &save)) {
        if (p[0] != '/')
            st = bt_err_set(err, BT_E_INVAL, "BT_PLUGIN_PATH entry '%s' is a relative path: plugin "
                            "folders hold code, and a relative entry would depend on the current "
                            "folder; use an absolute path", p);
        else
            st = add_folder(f, nf, p, 0, "BT_PLUGIN_PATH entry", err);
    }
    free(copy);
    return st;
}

/* parse a list of [kind:]name into o[] */
static bt_status parse_overrides(const char *list, const char *from, struct ovr *o, int *no, bt_err *err) {
    if (!list) return BT_OK;
    const char *p = list;
    while (*p) {
        while (*p == ',' || isspace((unsigned char)*p)) p++;
        if (!*p) break;
        const char *e = p;
        while (*e && *e != ',' && !isspace((unsigned char)*e)) e++;
        const char *colon = memchr(p, ':', (size_t)(e - p));
        uint32_t kind = colon ? kind_of(p, (size_t)(colon - p)) : 0;
        const char *nm = colon ? colon + 1 : p;
        if ((colon && !kind) || !valid_name(nm, (size_t)(e - nm)))
            return bt_err_set(err, BT_E_INVAL, "%s: '%.*s' is not a plugin name ([kind:]name, e.g. "
                              "absmean or writer:gguf)", from, (int)(e - p), p);
        if (*no == MAX_OVR) return bt_err_set(err, BT_E_INVAL, "%s: more than %d names", from, MAX_OVR);
        o[*no] = (struct ovr){.kind = kind, .from = from};
        snprintf(o[*no].name, sizeof o[*no].name, "%.*s", (int)(e - nm), nm);
        (*no)++;
        p = e;
    }
    return BT_OK;
}

/* the override entry that names plugin (kind, name), or NULL */
static struct ovr *find_ovr(struct ovr *o, int no, uint32_t kind, const char *name) {
    for (int i = 0; i < no; i++)
        if ((!o[i].kind || o[i].kind == kind) && !strcmp(o[i].name, name)) return &o[i];
    return NULL;
}

/* the plugin files of the folders f[] that are (builtin) or are not built-in, in search order */
static struct cand *list_files(bt_registry *reg, struct folder *f, int nf, int builtin, size_t *n_out) {
    struct cand *c = NULL;
    size_t n = 0;
    for (int i = 0; i < nf; i++) {
        if (f[i].builtin != builtin || !bt_registry_claim_dir(reg, f[i].real)) continue;
        size_t nn = 0;
        char **names = bt_registry_list_dir(f[i].real, &nn);
        struct cand *g = nn ? realloc(c, (n + nn) * sizeof *c) : c;
        if (g) c = g;
        for (size_t k = 0; k < nn; k++) {
            if (g) {
                memset(&c[n], 0, sizeof c[n]);
                snprintf(c[n].path, sizeof c[n].path, "%s/%s", f[i].real, names[k]);
                parse_file(names[k], &c[n]);
                n++;
            }
            free(names[k]);
        }
        free(names);
    }
    *n_out = n;
    return c;
}

/* load the user plugins (refusing those that shadow a built-in and are not overridden), then
 * the built-in ones (skipping those replaced) */
static void load_all(bt_registry *reg, struct cand *u, size_t nu, struct cand *b, size_t nb,
                     struct ovr *o, int no) {
    for (size_t i = 0; i < nu; i++) {
        struct cand *hit = NULL;
        for (size_t k = 0; u[i].kind && k < nb && !hit; k++)
            if (b[k].kind == u[i].kind && !strcmp(b[k].name, u[i].name)) hit = &b[k];
        if (hit) {
            struct ovr *ov = find_ovr(o, no, u[i].kind, u[i].name);
            if (!ov) {
                char msg[2 * PATH_MAX + 512];
                snprintf(msg, sizeof msg, "%s: would shadow the built-in %s plugin '%s' (%s); not "
                         "loaded. To use it instead, set [pipeline] override = %s (or "
                         "BT_PLUGIN_OVERRIDE=%s)", u[i].path, bt_kind_name(u[i].kind), u[i].name,
                         hit->path, u[i].name, u[i].name);
                bt_registry_add_reject(reg, msg);
                bt_log(BT_LOG_WARN, "plugin refused: %s", msg);
                continue;
            }
            ov->used = 1;
            for (size_t k = 0; k < nb; k++)
                if (b[k].kind == u[i].kind && !strcmp(b[k].name, u[i].name)) b[k].skip = 1;
            bt_log(BT_LOG_INFO, "%s plugin '%s' from %s replaces the built-in %s (%s)",
                   bt_kind_name(u[i].kind), u[i].name, u[i].path, hit->path, ov->from);
        }
        bt_err e;
        bt_err_clear(&e);
        bt_registry_load_file(reg, u[i].path, &e);
    }
    for (size_t k = 0; k < nb; k++) {
        if (b[k].skip) continue;
        bt_err e;
        bt_err_clear(&e);
        bt_registry_load_file(reg, b[k].path, &e);
    }
}

bt_status bt_registry_scan_default(bt_registry *reg, const struct bt_plugin_search *s, bt_err *err) {
    struct folder *f = calloc(MAX_FOLDERS, sizeof *f);
    struct ovr o[MAX_OVR];
    int nf = 0, no = 0;
    if (!f) return bt_err_set(err, BT_E_NOMEM, "out of memory");
    bt_status st = BT_OK;
    /* built-in folders first into the table, so a user folder that is one of them counts as
     * built-in; the search order (user first) is kept by list_files */
    char exe[PATH_MAX];
    ssize_t len = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (len > 0) {
        exe[len] = 0;
        char *slash = strrchr(exe, '/');
        if (slash) {
            *slash = 0;
            char dir[PATH_MAX + 64];
            snprintf(dir, sizeof(dir), "%s/../%s", exe, BT_PLUGIN_SUBDIR);
            st = add_folder(f, &nf, dir, 1, NULL, err);
        }
    }
    if (!st) st = add_folder(f, &nf, BT_INSTALL_PLUGIN_DIR, 1, NULL, err);
    for (int i = 0; s && !st && i < BT_PLUGIN_MAX_DIRS; i++)
        if (s->dir[i] && *s->dir[i])
            st = add_folder(f, &nf, s->dir[i], 0, s->dir_from[i] ? s->dir_from[i] : "plugin folder", err);
    if (!st) st = env_folders(f, &nf, err);
    for (int i = 0; s && !st && i < 2; i++)
        st = parse_overrides(s->override[i], s->override_from[i] ? s->override_from[i] : "override",
                             o, &no, err);
    if (!st) st = parse_overrides(getenv("BT_PLUGIN_OVERRIDE"), "BT_PLUGIN_OVERRIDE", o, &no, err);
    if (st) { free(f); return st; }
    size_t nu = 0, nb = 0;
    struct cand *u = list_files(reg, f, nf, 0, &nu);
    struct cand *b = list_files(reg, f, nf, 1, &nb);
    load_all(reg, u, nu, b, nb, o, no);
    for (int i = 0; i < no && !st; i++)
        if (!o[i].used)
            st = bt_err_set(err, BT_E_INVAL, "%s: override '%s%s%s': no plugin of that name in a "
                            "user folder (--plugin-dir, plugin_dir, BT_PLUGIN_PATH) shadows a built-in "
                            "one", o[i].from, o[i].kind ? bt_kind_name(o[i].kind) : "",
                            o[i].kind ? ":" : "", o[i].name);
    free(u);
    free(b);
    free(f);
    return st;
}
