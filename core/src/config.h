/* config.h - the parsed INI file: every (section, key, value) with its line number. */
#ifndef BT_CONFIG_H
#define BT_CONFIG_H
#include "bt/bt.h"

struct bt_cfg_entry {
    char *section;  /* lower-case as written */
    char *key;
    char *value;
    int   line;     /* 1-based line of the key */
    int   used;     /* consumed by a validator */
};

struct bt_cfg {
    char                *path;     /* the INI file */
    char                *base_dir; /* its folder: relative paths resolve here */
    struct bt_cfg_entry *e;
    int                  n, cap;
    char               **sections; /* section names in order of appearance */
    int                 *section_lines;
    int                  nsec;
};

/* parse path; syntax errors -> BT_E_FORMAT "file:line: ..." */
bt_status bt_cfg_load(const char *path, struct bt_cfg *cfg, bt_err *err);
/* the same for INI text held in memory (a command line turned into a pipeline): name stands for
 * the file in messages ("name:line: ..."), relative paths resolve against base_dir (NULL: ".") */
bt_status bt_cfg_load_text(const char *text, const char *name, const char *base_dir, struct bt_cfg *cfg,
                           bt_err *err);
void      bt_cfg_free(struct bt_cfg *cfg);
/* last entry for section/key or NULL */
struct bt_cfg_entry *bt_cfg_get(struct bt_cfg *cfg, const char *section, const char *key);
int       bt_cfg_has_section(const struct bt_cfg *cfg, const char *section);

struct bt_stage;
/* bt_pipeline_run's validation only (INI, sections, every key against the core's and the chosen
 * plugins' option tables, input/output path guards), no work: for tests and the INI fuzz target */
bt_status bt_pipeline_check(const char *ini_path, const struct bt_stage *stages, int n_stages,
                            bt_err *err);
struct bt_run_opts;
/* bt_pipeline_run on INI text instead of a file (bt_cfg_load_text's name and base_dir): what
 * `bt-pipeline quantize` and `run -` hand to the same runner */
bt_status bt_pipeline_run_text(const char *text, const char *name, const char *base_dir,
                               const struct bt_stage *stages, int n_stages, const struct bt_run_opts *ro,
                               bt_err *err);
#endif
