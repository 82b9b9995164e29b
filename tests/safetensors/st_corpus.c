/* st_corpus.c - run every file of a folder through the safetensors header parser once (the
 * fuzz seed corpus as a regular test). Files named ok_* must parse, bad_* must fail with a
 * message; others only must not crash. Usage: st_corpus <dir> */
#include "st_header.h"
#include "bt/bt.h" /* struct bt_err */

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int run_one(const char *dir, const char *name) {
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "rb");
    if (!f) { fprintf(stderr, "%s: cannot open\n", path); return 1; }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *buf = malloc(n > 0 ? (size_t)n : 1);
    size_t got = buf ? fread(buf, 1, (size_t)n, f) : 0;
    fclose(f);
    if (!buf || got != (size_t)n) { free(buf); fprintf(stderr, "%s: read failed\n", path); return 1; }
    bt_err err;
    struct bt_st_header h;
    bt_status st = bt_st_header_parse(buf, (uint64_t)n, name, &h, &err);
    int bad = 0;
    if (strncmp(name, "ok_", 3) == 0 && st != BT_OK) bad = 1;
    if (strncmp(name, "bad_", 4) == 0 && (st == BT_OK || err.status != st || !err.msg[0])) bad = 1;
    printf("%-40s %s%s%s (%u tensors)\n", name, st == BT_OK ? "ok" : "error: ",
           st == BT_OK ? "" : err.msg, bad ? "  <-- UNEXPECTED" : "", h.n);
    bt_st_header_free(&h);
    free(buf);
    return bad;
}

int main(int argc, char **argv) {
    if (argc != 2) { fprintf(stderr, "usage: st_corpus <dir>\n"); return 2; }
    DIR *d = opendir(argv[1]);
    if (!d) { fprintf(stderr, "%s: cannot open folder\n", argv[1]); return 2; }
    struct dirent *e;
    int fails = 0, files = 0;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        fails += run_one(argv[1], e->d_name);
        files++;
    }
    closedir(d);
    printf("%d files, %d unexpected\n", files, fails);
    return fails || files == 0 ? 1 : 0;
}
