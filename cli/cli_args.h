/* cli_args.h - the command line as data: one option table per sub-command (cli_tables.c), from
 * which the parser (getopt_long with permutation), every `--help` and docs/cli.md are made. */
#ifndef BT_CLI_ARGS_H
#define BT_CLI_ARGS_H
#include <stdio.h>

enum bt_cli_type {
    BT_CLI_FLAG,  /* no value; may repeat (-v -v) */
    BT_CLI_STR,   /* any text */
    BT_CLI_PATH,  /* a file or folder; "-" where the help says so */
    BT_CLI_INT,   /* a whole number within [min, max] */
    BT_CLI_FLOAT, /* a number within [min, max] */
    BT_CLI_ENUM,  /* one of choices ("a|b|c") */
};

struct bt_cli_opt {
    const char *name;    /* long name without "--" */
    char        shrt;    /* short letter, 0 if none */
    int         type;    /* enum bt_cli_type */
    int         req;     /* 1: the command needs it */
    const char *meta;    /* the value's name in the help (FILE, N) */
    const char *def;     /* default shown in the help, NULL if none */
    double      min, max;
    const char *choices; /* BT_CLI_ENUM */
    const char *help;
};

struct bt_cli_cmd {
    const char              *name;     /* "eval" */
    const char              *args;     /* positional synopsis ("IN OUT TYPE"), "" if none */
    int                      min_pos, max_pos;
    const char              *summary;  /* one line */
    const struct bt_cli_opt *opts;     /* NULL-name terminated */
    const char              *notes;    /* a paragraph after the options, NULL if none */
};

#define BT_CLI_MAX_OPTS 48
#define BT_CLI_MAX_POS  8

/* a parsed command line; values point into argv */
struct bt_cli_args {
    const struct bt_cli_cmd *cmd;
    const char              *val[BT_CLI_MAX_OPTS]; /* last value of each option (flags: "1") */
    int                      count[BT_CLI_MAX_OPTS];
    const char              *pos[BT_CLI_MAX_POS];
    int                      npos;
    /* the global options, read from anywhere on the line */
    int         quiet, verbose;
    const char *plugin_dir, *override;
};

/* the sub-commands, NULL-name terminated, and the options every one of them takes */
extern const struct bt_cli_cmd bt_cli_commands[];
extern const struct bt_cli_opt bt_cli_global_opts[];
const struct bt_cli_cmd *bt_cli_find(const char *name);

/* Parse argv[0..argc) (the words after the sub-command) into *a. Returns -1 when the caller
 * should go on, else the exit code: 0 after printing the help (-h/--help, to stdout), 2 after
 * an error that names the argument (to stderr). */
int bt_cli_parse(const struct bt_cli_cmd *cmd, int argc, char **argv, struct bt_cli_args *a);

/* the value of option name (NULL if not given); flags: how often given */
const char *bt_cli_str(const struct bt_cli_args *a, const char *name);
int         bt_cli_count(const struct bt_cli_args *a, const char *name);
/* typed values (already checked by the parser), def when not given */
long long   bt_cli_int(const struct bt_cli_args *a, const char *name, long long def);
double      bt_cli_float(const struct bt_cli_args *a, const char *name, double def);

/* the help of one command, the overview of all, and docs/cli.md (markdown, all commands) */
void bt_cli_help(FILE *f, const struct bt_cli_cmd *cmd);
void bt_cli_usage(FILE *f);
void bt_cli_markdown(FILE *f);
#endif
