/* cli_args.c - the parser, help and markdown made from the option tables of cli_tables.c:
 * getopt_long with permutation (options anywhere, --opt=value, -n5), the global options on every
 * sub-command, each bad argument named in the error (exit code 2), -h/--help to stdout. */
#include "cli_args.h"

#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define PROG "bt-pipeline"

const struct bt_cli_cmd *bt_cli_find(const char *name) {
    for (const struct bt_cli_cmd *c = bt_cli_commands; c->name; c++)
        if (!strcmp(c->name, name)) return c;
    return NULL;
}

static int n_opts(const struct bt_cli_opt *o) {
    int n = 0;
    while (o && o[n].name) n++;
    return n;
}

/* the options of cmd followed by the global ones: index i < nc is cmd->opts[i] */
static const struct bt_cli_opt *opt_at(const struct bt_cli_cmd *cmd, int i) {
    int nc = n_opts(cmd->opts);
    return i < nc ? &cmd->opts[i] : &bt_cli_global_opts[i - nc];
}

static int opt_index(const struct bt_cli_cmd *cmd, const char *name) {
    int n = n_opts(cmd->opts) + n_opts(bt_cli_global_opts);
    for (int i = 0; i < n; i++)
        if (!strcmp(opt_at(cmd, i)->name, name)) return i;
    return -1;
}

__attribute__((format(printf, 2, 3))) static int fail(const struct bt_cli_cmd *cmd, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s %s: error: ", PROG, cmd->name);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n(see `%s %s --help`)\n", PROG, cmd->name);
    va_end(ap);
    return 2;
}

/* "-n" or "--n-predict": the option as the user wrote it */
static void opt_label(const struct bt_cli_opt *o, int as_short, char *buf, size_t n) {
    if (as_short) snprintf(buf, n, "-%c", o->shrt);
    else snprintf(buf, n, "--%s", o->name);
}

static int check_value(const struct bt_cli_cmd *cmd, const struct bt_cli_opt *o, const char *label, const char *v) {
    char *end;
    int ranged = o->min <= o->max;
    if (o->type == BT_CLI_INT) {
        long long x = strtoll(v, &end, 10);
        if (end == v || *end) return fail(cmd, "%s '%s': expected a whole number", label, v);
        if (ranged && ((double)x < o->min || (double)x > o->max))
            return fail(cmd, "%s '%s': expected a whole number from %.0f to %.0f", label, v, o->min, o->max);
    } else if (o->type == BT_CLI_FLOAT) {
        double x = strtod(v, &end);
        if (end == v || *end || !isfinite(x)) return fail(cmd, "%s '%s': expected a number", label, v);
        if (ranged && (x < o->min || x > o->max))
            return fail(cmd, "%s '%s': expected a number from %g to %g", label, v, o->min, o->max);
    } else if (o->type == BT_CLI_ENUM) {
        size_t n = strlen(v);
        for (const char *c = o->choices; c && *c;) {
            const char *bar = strchr(c, '|');
            size_t len = bar ? (size_t)(bar - c) : strlen(c);
            if (len == n && !strncmp(c, v, n)) return 0;
            c = bar ? bar + 1 : c + len;
        }
        return fail(cmd, "%s '%s': expected one of %s", label, v, o->choices);
    } else if ((o->type == BT_CLI_STR || o->type == BT_CLI_PATH) && !*v) {
        return fail(cmd, "%s: the value is empty", label);
    }
    return 0;
}

int bt_cli_parse(const struct bt_cli_cmd *cmd, int argc, char **argv, struct bt_cli_args *a) {
    memset(a, 0, sizeof(*a));
    a->cmd = cmd;
    int n = n_opts(cmd->opts) + n_opts(bt_cli_global_opts);
    if (n > BT_CLI_MAX_OPTS) n = BT_CLI_MAX_OPTS;
    struct option lo[BT_CLI_MAX_OPTS + 1];
    char shorts[3 * BT_CLI_MAX_OPTS + 2] = ":";
    size_t sl = 1;
    for (int i = 0; i < n; i++) {
        const struct bt_cli_opt *o = opt_at(cmd, i);
        lo[i] = (struct option){o->name, o->type == BT_CLI_FLAG ? no_argument : required_argument, NULL, 256 + i};
        if (o->shrt) {
            shorts[sl++] = o->shrt;
            if (o->type != BT_CLI_FLAG) shorts[sl++] = ':';
        }
    }
    lo[n] = (struct option){0, 0, 0, 0};
    shorts[sl] = 0;
    /* getopt permutes its vector: work on a copy with a program name in front */
    char **v = malloc((size_t)(argc + 2) * sizeof(*v));
    if (!v) { fprintf(stderr, "%s: out of memory\n", PROG); return 1; }
    char prog[64];
    snprintf(prog, sizeof prog, "%s %s", PROG, cmd->name);
    v[0] = prog;
    for (int i = 0; i < argc; i++) v[i + 1] = argv[i];
    v[argc + 1] = NULL;
    int rc = -1, c;
    opterr = 0;
    optind = 0; /* glibc: a full re-initialisation, permutation on */
    while (rc < 0 && (c = getopt_long(argc + 1, v, shorts, lo, NULL)) != -1) {
        int idx = -1, as_short = 0;
        char label[80];
        if (c == '?' || c == ':') {
            int oo = optopt;
            const char *word = optind > 0 && optind <= argc + 1 ? v[optind - 1] : "?";
            if (oo >= 256 && oo < 256 + n) {
                opt_label(opt_at(cmd, oo - 256), 0, label, sizeof label);
                rc = c == ':' ? fail(cmd, "%s needs a value (%s)", label, opt_at(cmd, oo - 256)->meta)
                              : fail(cmd, "%s takes no value (in '%s')", label, word);
            } else if (oo > 0) {
                const struct bt_cli_opt *o = NULL;
                for (int i = 0; i < n && !o; i++)
                    if (opt_at(cmd, i)->shrt == oo) o = opt_at(cmd, i);
                label[0] = '-', label[1] = (char)oo, label[2] = 0;
                rc = c == ':' && o ? fail(cmd, "%s needs a value (%s)", label, o->meta)
                                   : fail(cmd, "unknown option '%s'", label);
            } else {
                /* a long prefix of several options (getopt_long takes unique prefixes) */
                char alts[256] = "";
                size_t al = 0, wl = strcspn(word + 2, "=");
                int hits = 0;
                for (int i = 0; !strncmp(word, "--", 2) && wl && i < n; i++)
                    if (!strncmp(opt_at(cmd, i)->name, word + 2, wl) && al < sizeof alts) {
                        al += (size_t)snprintf(alts + al, sizeof alts - al, "%s--%s", hits ? ", " : "", opt_at(cmd, i)->name);
                        hits++;
                    }
                rc = hits > 1 ? fail(cmd, "ambiguous option '%s' (%s?)", word, alts)
                              : fail(cmd, "unknown option '%s'", word);
            }
            break;
        }
        if (c >= 256) idx = c - 256;
        else
            for (int i = 0; i < n && idx < 0; i++)
                if (opt_at(cmd, i)->shrt == c) idx = i, as_short = 1;
        if (idx < 0) { rc = fail(cmd, "unknown option '-%c'", c); break; }
        const struct bt_cli_opt *o = opt_at(cmd, idx);
        opt_label(o, as_short, label, sizeof label);
        if (!strcmp(o->name, "help")) {
            bt_cli_help(stdout, cmd);
            rc = 0;
            break;
        }
        if (o->type != BT_CLI_FLAG && (rc = check_value(cmd, o, label, optarg)) > 0) break;
        rc = -1;
        a->val[idx] = o->type == BT_CLI_FLAG ? "1" : optarg;
        a->count[idx]++;
    }
    if (rc < 0) {
        for (int i = optind; i <= argc; i++) {
            if (a->npos == BT_CLI_MAX_POS || a->npos >= cmd->max_pos) {
                rc = fail(cmd, "unexpected argument '%s'%s", v[i], cmd->max_pos ? "" : " (this command takes none)");
                break;
            }
            a->pos[a->npos++] = v[i];
        }
    }
    if (rc < 0 && a->npos < cmd->min_pos) rc = fail(cmd, "missing %s", cmd->args);
    for (int i = 0; rc < 0 && i < n; i++) {
        const struct bt_cli_opt *o = opt_at(cmd, i);
        char label[80];
        if (o->req && !a->val[i]) {
            if (o->shrt) snprintf(label, sizeof label, "-%c/--%s %s", o->shrt, o->name, o->meta);
            else snprintf(label, sizeof label, "--%s %s", o->name, o->meta);
            rc = fail(cmd, "missing %s: %s", label, o->help);
        }
    }
    free(v);
    if (rc >= 0) return rc;
    a->quiet = bt_cli_count(a, "quiet") > 0;
    a->verbose = bt_cli_count(a, "verbose");
    a->plugin_dir = bt_cli_str(a, "plugin-dir");
    a->override = bt_cli_str(a, "override");
    return -1;
}

const char *bt_cli_str(const struct bt_cli_args *a, const char *name) {
    int i = opt_index(a->cmd, name);
    return i >= 0 && i < BT_CLI_MAX_OPTS ? a->val[i] : NULL;
}

int bt_cli_count(const struct bt_cli_args *a, const char *name) {
    int i = opt_index(a->cmd, name);
    return i >= 0 && i < BT_CLI_MAX_OPTS ? a->count[i] : 0;
}

long long bt_cli_int(const struct bt_cli_args *a, const char *name, long long def) {
    const char *v = bt_cli_str(a, name);
    return v ? strtoll(v, NULL, 10) : def;
}

double bt_cli_float(const struct bt_cli_args *a, const char *name, double def) {
    const char *v = bt_cli_str(a, name);
    return v ? strtod(v, NULL) : def;
}

/* ---- help ---------------------------------------------------------------------------------- */
static void opt_head(const struct bt_cli_opt *o, char *buf, size_t n) {
    const char *meta = o->type == BT_CLI_FLAG ? "" : o->meta ? o->meta : "VALUE";
    if (o->shrt) snprintf(buf, n, "-%c, --%s%s%s", o->shrt, o->name, *meta ? " " : "", meta);
    else snprintf(buf, n, "    --%s%s%s", o->name, *meta ? " " : "", meta);
}

static void opt_tail(const struct bt_cli_opt *o, char *buf, size_t n) {
    size_t k = (size_t)snprintf(buf, n, "%s", o->help ? o->help : "");
    if (o->type == BT_CLI_ENUM && k < n) k += (size_t)snprintf(buf + k, n - k, " {%s}", o->choices);
    if (o->req && k < n) k += (size_t)snprintf(buf + k, n - k, " (required)");
    else if (o->def && k < n) snprintf(buf + k, n - k, " (default %s)", o->def);
}

static void print_opts(FILE *f, const struct bt_cli_opt *o) {
    char head[96], tail[512];
    for (; o && o->name; o++) {
        opt_head(o, head, sizeof head);
        opt_tail(o, tail, sizeof tail);
        if (strlen(head) <= 28) fprintf(f, "  %-28s %s\n", head, tail);
        else fprintf(f, "  %s\n  %-28s %s\n", head, "", tail);
    }
}

void bt_cli_help(FILE *f, const struct bt_cli_cmd *cmd) {
    fprintf(f, "usage: %s %s [options]%s%s\n\n%s\n", PROG, cmd->name, *cmd->args ? " " : "", cmd->args,
            cmd->summary);
    if (n_opts(cmd->opts)) {
        fprintf(f, "\noptions:\n");
        print_opts(f, cmd->opts);
    }
    if (cmd->notes) fprintf(f, "\n%s\n", cmd->notes);
    fprintf(f, "\nglobal options (anywhere on the line):\n");
    print_opts(f, bt_cli_global_opts);
}

void bt_cli_usage(FILE *f) {
    fprintf(f, "usage: %s [options] COMMAND [options] [ARGS]\n\ncommands:\n", PROG);
    for (const struct bt_cli_cmd *c = bt_cli_commands; c->name; c++) {
        char head[64];
        snprintf(head, sizeof head, "%s %s", c->name, c->args);
        fprintf(f, "  %-22s %s\n", head, c->summary);
    }
    fprintf(f, "\noptions (anywhere on the line; `%s COMMAND --help` for a command's own):\n", PROG);
    print_opts(f, bt_cli_global_opts);
    fprintf(f, "      --version                print the version and ABI\n"
               "\nexit codes: 0 ok, 1 failure while working (I/O, malformed input), 2 usage or\n"
               "configuration error, 3 plugin error, 4 a quality gate of [eval] failed. Plugins are\n"
               "searched in --plugin-dir / plugin_dir, $BT_PLUGIN_PATH (absolute folders), then\n"
               "<exe>/../lib/bt and the install folder. Progress goes to stderr: a live line on a\n"
               "terminal, else a line every $BT_PROGRESS_INTERVAL seconds (default 5); none with -q.\n");
}

/* a table cell: '|' escaped */
static void md_cell(FILE *f, const char *s) {
    for (; s && *s; s++) fputs(*s == '|' ? "\\|" : (char[]){*s, 0}, f);
}

static void md_opts(FILE *f, const struct bt_cli_opt *o) {
    fprintf(f, "| option | value | default | meaning |\n|---|---|---|---|\n");
    for (; o && o->name; o++) {
        fprintf(f, "| ");
        if (o->shrt) fprintf(f, "`-%c`, ", o->shrt);
        fprintf(f, "`--%s` | ", o->name);
        if (o->type == BT_CLI_ENUM) { fputc('`', f); md_cell(f, o->choices); fputc('`', f); }
        else if (o->type != BT_CLI_FLAG) fprintf(f, "%s", o->meta ? o->meta : "VALUE");
        if ((o->type == BT_CLI_INT || o->type == BT_CLI_FLOAT) && o->min <= o->max)
            fprintf(f, " (%g..%g)", o->min, o->max);
        if (o->req) fprintf(f, " | required | ");
        else if (o->def) fprintf(f, " | `%s` | ", o->def);
        else fprintf(f, " |  | ");
        md_cell(f, o->help);
        fprintf(f, " |\n");
    }
}

void bt_cli_markdown(FILE *f) {
    fprintf(f, "# bt-pipeline command line\n\n"
               "<!-- generated by `bt-pipeline help --markdown` from cli/cli_tables.c (the tables the "
               "parser and every `--help` use); regenerate with `cmake --build BUILD --target cli-doc`; "
               "the test `cli_doc` checks it is current -->\n\n"
               "Options may come anywhere on the line, before or after the arguments; `--opt=value`, "
               "`--opt value`, `-n 5` and `-n5` are the same; `--` ends the options. Every command takes "
               "`-h`/`--help` (printed to stdout, exit code 0). An unknown option, a missing or malformed "
               "value, or a missing or extra argument is named in the error, with exit code 2.\n\n"
               "Exit codes: 0 ok, 1 failure while working (I/O, malformed input), 2 usage or configuration "
               "error, 3 plugin error, 4 a quality gate of `[eval]` failed (the output is kept as NAME.REJECTED.ext). "
               "Progress goes to stderr: a live line on a terminal, else a line every `$BT_PROGRESS_INTERVAL` "
               "seconds (default 5); none with `-q`.\n\n## Global options\n\nAccepted by every command, anywhere on the "
               "line (and `--version` before the command).\n\n");
    md_opts(f, bt_cli_global_opts);
    for (const struct bt_cli_cmd *c = bt_cli_commands; c->name; c++) {
        fprintf(f, "\n## %s\n\n    %s %s [options]%s%s\n\n%s.\n", c->name, PROG, c->name, *c->args ? " " : "",
                c->args, c->summary);
        if (n_opts(c->opts)) { fprintf(f, "\n"); md_opts(f, c->opts); }
        if (c->notes) fprintf(f, "\n%s\n", c->notes);
    }
}
