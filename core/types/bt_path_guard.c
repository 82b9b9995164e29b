/* bt_path_guard.c - "the input is sacred": decide whether a path bt is about to write (output,
 * report, calibration file, spill files next to them) is, or resolves to, an input file — by
 * realpath, and by st_dev/st_ino so hard links count — or lies inside an input model folder. */
#define _GNU_SOURCE
#include "bt_types.h"
#include "bt/bt.h"

#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* the absolute path out will have: ".", ".." and repeated slashes folded lexically, then the
 * deepest folder of it that exists resolved with realpath (symlinks) and the rest appended, so a
 * path through folders that do not exist yet (created by mkdir -p) still compares right */
static int resolve_out(const char *out, char *res, size_t n) {
    char abs[PATH_MAX * 2], norm[PATH_MAX * 2];
    if (out[0] == '/') snprintf(abs, sizeof abs, "%s", out);
    else {
        char cwd[PATH_MAX];
        if (!getcwd(cwd, sizeof cwd)) return -1;
        snprintf(abs, sizeof abs, "%s/%s", cwd, out);
    }
    size_t ln = 0; /* norm = "/a/b" without ".", ".." */
    norm[0] = 0;
    for (char *save = NULL, *tok = strtok_r(abs, "/", &save); tok; tok = strtok_r(NULL, "/", &save)) {
        if (!strcmp(tok, ".")) continue;
        if (!strcmp(tok, "..")) {
            while (ln > 0 && norm[ln - 1] != '/') ln--;
            if (ln > 0) ln--;
            norm[ln] = 0;
            continue;
        }
        size_t lt = strlen(tok);
        if (ln + 1 + lt + 1 > sizeof norm) return -1;
        norm[ln++] = '/';
        memcpy(norm + ln, tok, lt + 1);
        ln += lt;
    }
    if (!ln) { norm[0] = '/'; norm[1] = 0; ln = 1; }
    /* the deepest existing prefix through realpath, the rest as is */
    char head[PATH_MAX * 2], real[PATH_MAX];
    snprintf(head, sizeof head, "%s", norm);
    size_t cut = strlen(head);
    while (!realpath(head, real)) {
        char *slash = strrchr(head, '/');
        if (!slash) return -1;
        if (slash == head) { snprintf(real, sizeof real, "/"); cut = 0; break; }
        *slash = 0;
        cut = (size_t)(slash - head);
    }
    const char *rest = norm + cut; /* "" or "/x/y" */
    size_t lr = strlen(real), lrest = strlen(rest);
    if (lr == 1 && real[0] == '/' && lrest) lr = 0; /* root: rest starts with its own slash */
    if (lr + lrest + 1 > n) return -1;
    memcpy(res, real, lr);
    memcpy(res + lr, rest, lrest + 1);
    return 0;
}

/* 1 if st names the same file as some entry of folder dir (hard links into the model folder) */
static int same_as_entry(const char *dir, const struct stat *st) {
    DIR *d = opendir(dir);
    if (!d) return 0;
    struct dirent *e;
    int hit = 0;
    while (!hit && (e = readdir(d))) {
        char p[PATH_MAX + 256];
        struct stat s2;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        if (stat(p, &s2) == 0 && S_ISREG(s2.st_mode) && s2.st_dev == st->st_dev && s2.st_ino == st->st_ino)
            hit = 1;
    }
    closedir(d);
    return hit;
}

int bt_path_touches(const char *in, const char *out) {
    struct stat si, so;
    char ri[PATH_MAX], ro[PATH_MAX];
    if (!in || !*in || !out || !*out || stat(in, &si) || !realpath(in, ri)) return 0;
    int have_out = stat(out, &so) == 0;
    if (resolve_out(out, ro, sizeof ro)) return 0;
    if (S_ISDIR(si.st_mode)) {
        size_t n = strlen(ri);
        if (!strcmp(ro, ri) || (!strncmp(ro, ri, n) && ro[n] == '/')) return 1;
        return have_out && same_as_entry(ri, &so);
    }
    if (!strcmp(ro, ri)) return 1;
    return have_out && so.st_dev == si.st_dev && so.st_ino == si.st_ino;
}

int bt_path_same_target(const char *a, const char *b) {
    char ra[PATH_MAX], rb[PATH_MAX];
    struct stat sa, sb;
    if (!a || !*a || !b || !*b) return 0;
    if (stat(a, &sa) == 0 && stat(b, &sb) == 0) return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
    return !resolve_out(a, ra, sizeof ra) && !resolve_out(b, rb, sizeof rb) && !strcmp(ra, rb);
}
