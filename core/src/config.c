/* config.c - INI loading through inih, recording the line number of every key so that every
 * later validation error can say file:line. */
#include "config.h"

#include <ini.h>
#include <stdlib.h>
#include <string.h>

struct parse_state {
    struct bt_cfg *cfg;
    FILE          *f;
    int            line;      /* line currently being parsed */
    int            cont;      /* current line starts with whitespace (continuation) */
    int            err_line;  /* first semantic error */
    char           err[256];
};

/* ini_reader: fgets that counts lines so the handler knows where it is */
static int add_section(struct bt_cfg *cfg, const char *sec, int line);

static char *reader(char *str, int num, void *stream) {
    struct parse_state *ps = stream;
    char *r = fgets(str, num, ps->f);
    if (r) {
        ps->line++;
        ps->cont = (str[0] == ' ' || str[0] == '\t');
        /* remember where each [section] header is, so errors about a section can point at it */
        const char *p = str;
        while (*p == ' ' || *p == '\t') p++;
        const char *end = *p == '[' ? strchr(p, ']') : NULL;
        if (end && end - p - 1 < 128) {
            char name[128];
            const char *b = p + 1;
            while (b < end && (*b == ' ' || *b == '\t')) b++;
            const char *e = end;
            while (e > b && (e[-1] == ' ' || e[-1] == '\t')) e--;
            snprintf(name, sizeof(name), "%.*s", (int)(e - b), b);
            add_section(ps->cfg, name, ps->line);
        }
    }
    return r;
}

static int add_section(struct bt_cfg *cfg, const char *sec, int line) {
    for (int i = 0; i < cfg->nsec; i++)
        if (!strcmp(cfg->sections[i], sec)) return 1;
    char **ns = realloc(cfg->sections, (cfg->nsec + 1) * sizeof(*ns));
    if (!ns) return 0;
    cfg->sections = ns;
    int *nl = realloc(cfg->section_lines, (cfg->nsec + 1) * sizeof(*nl));
    if (!nl) return 0;
    cfg->section_lines = nl;
    if (!(cfg->sections[cfg->nsec] = strdup(sec))) return 0;
    cfg->section_lines[cfg->nsec++] = line;
    return 1;
}

static int handler(void *user, const char *section, const char *name, const char *value) {
    struct parse_state *ps = user;
    struct bt_cfg *cfg = ps->cfg;
    if (ps->err_line) return 1;
    if (!add_section(cfg, section, ps->line)) goto oom;
    if (!name) return 1; /* section header only (inih >= 52 with INI_CALL_HANDLER_ON_NEW_SECTION) */
    if (!*section) {
        ps->err_line = ps->line;
        snprintf(ps->err, sizeof(ps->err), "key '%s' outside of any [section]", name);
        return 1;
    }
    struct bt_cfg_entry *prev = bt_cfg_get(cfg, section, name);
    if (prev && ps->cont) { /* multi-line value: append */
        size_t n = strlen(prev->value) + strlen(value) + 2;
        char *v = malloc(n);
        if (!v) goto oom;
        snprintf(v, n, "%s %s", prev->value, value);
        free(prev->value);
        prev->value = v;
        return 1;
    }
    if (prev) {
        ps->err_line = ps->line;
        snprintf(ps->err, sizeof(ps->err), "duplicate key '%s' in [%s] (first on line %d)", name, section, prev->line);
        return 1;
    }
    if (cfg->n == cfg->cap) {
        int nc = cfg->cap ? 2 * cfg->cap : 32;
        struct bt_cfg_entry *ne = realloc(cfg->e, nc * sizeof(*ne));
        if (!ne) goto oom;
        cfg->e = ne;
        cfg->cap = nc;
    }
    struct bt_cfg_entry *e = &cfg->e[cfg->n];
    memset(e, 0, sizeof(*e));
    e->section = strdup(section);
    e->key = strdup(name);
    e->value = strdup(value);
    e->line = ps->line;
    cfg->n++;
    if (!e->section || !e->key || !e->value) goto oom;
    return 1;
oom:
    ps->err_line = ps->line;
    snprintf(ps->err, sizeof(ps->err), "out of memory");
    return 0;
}

/* parse the open stream f; path names it in messages, base_dir resolves its relative paths */
static bt_status cfg_parse(FILE *f, const char *path, const char *base_dir, struct bt_cfg *cfg, bt_err *err) {
    struct parse_state ps = {.cfg = cfg, .f = f};
    cfg->path = strdup(path);
    if (base_dir) {
        cfg->base_dir = strdup(base_dir);
    } else {
        const char *slash = strrchr(path, '/');
        cfg->base_dir = slash == path ? strdup("/") : slash ? strndup(path, (size_t)(slash - path)) : strdup(".");
    }
    if (!cfg->path || !cfg->base_dir) { fclose(f); return bt_err_set(err, BT_E_NOMEM, "out of memory"); }
    ini_inline_comment_prefixes = ";#";
    ini_use_stack = false;
    ini_max_line = 8192;
    int rc = ini_parse_stream(reader, &ps, handler, &ps);
    fclose(ps.f);
    if (rc > 0 && (!ps.err_line || rc < ps.err_line))
        return bt_err_set(err, BT_E_INVAL, "%s:%d: syntax error (expected [section] or key = value)", path, rc);
    if (rc < 0) return bt_err_set(err, BT_E_IO, "%s: cannot read", path);
    if (ps.err_line) return bt_err_set(err, BT_E_INVAL, "%s:%d: %s", path, ps.err_line, ps.err);
    return BT_OK;
}

bt_status bt_cfg_load(const char *path, struct bt_cfg *cfg, bt_err *err) {
    memset(cfg, 0, sizeof(*cfg));
    FILE *f = fopen(path, "r");
    if (!f) return bt_err_set(err, BT_E_IO, "%s: cannot open: %m", path);
    return cfg_parse(f, path, NULL, cfg, err);
}

bt_status bt_cfg_load_text(const char *text, const char *name, const char *base_dir, struct bt_cfg *cfg,
                           bt_err *err) {
    memset(cfg, 0, sizeof(*cfg));
    size_t n = strlen(text);
    /* fmemopen of an empty buffer fails on some libcs: an empty INI is a one-byte blank line */
    FILE *f = n ? fmemopen((void *)text, n, "r") : fmemopen((void *)"\n", 1, "r");
    if (!f) return bt_err_set(err, BT_E_NOMEM, "%s: cannot read the configuration: %m", name);
    return cfg_parse(f, name, base_dir ? base_dir : ".", cfg, err);
}

void bt_cfg_free(struct bt_cfg *cfg) {
    for (int i = 0; i < cfg->n; i++) {
        free(cfg->e[i].section);
        free(cfg->e[i].key);
        free(cfg->e[i].value);
    }
    for (int i = 0; i < cfg->nsec; i++) free(cfg->sections[i]);
    free(cfg->sections);
    free(cfg->section_lines);
    free(cfg->e);
    free(cfg->path);
    free(cfg->base_dir);
    memset(cfg, 0, sizeof(*cfg));
}

struct bt_cfg_entry *bt_cfg_get(struct bt_cfg *cfg, const char *section, const char *key) {
    for (int i = cfg->n - 1; i >= 0; i--)
        if (!strcmp(cfg->e[i].section, section) && !strcmp(cfg->e[i].key, key)) return &cfg->e[i];
    return NULL;
}

int bt_cfg_has_section(const struct bt_cfg *cfg, const char *section) {
    for (int i = 0; i < cfg->nsec; i++)
        if (!strcmp(cfg->sections[i], section)) return 1;
    return 0;
}
