/* fuzz_replay.c - main() for the plain (non-libFuzzer) build of a fuzz target: runs every file
 * given (folders: every file in them, sorted) through LLVMFuzzerTestOneInput once, so the seed
 * corpus and the regression inputs are checked by ctest with any compiler. */
#define _GNU_SOURCE
#include "fuzz_util.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

__attribute__((weak)) int LLVMFuzzerInitialize(int *argc, char ***argv) { return 0; }

static int run_file(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) { perror(path); return 1; }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    rewind(f);
    uint8_t *buf = malloc(n > 0 ? (size_t)n : 1);
    if (!buf || (n > 0 && fread(buf, 1, (size_t)n, f) != (size_t)n)) { perror(path); fclose(f); free(buf); return 1; }
    fclose(f);
    LLVMFuzzerTestOneInput(buf, (size_t)n); /* aborts on a broken invariant */
    free(buf);
    return 0;
}

static int by_name(const struct dirent **a, const struct dirent **b) { return strcmp((*a)->d_name, (*b)->d_name); }

int main(int argc, char **argv) {
    LLVMFuzzerInitialize(&argc, &argv);
    int bad = 0, count = 0;
    for (int i = 1; i < argc; i++) {
        struct stat sb;
        if (stat(argv[i], &sb) != 0) { perror(argv[i]); return 1; }
        if (!S_ISDIR(sb.st_mode)) { bad |= run_file(argv[i]); count++; continue; }
        struct dirent **de;
        int n = scandir(argv[i], &de, NULL, by_name);
        if (n < 0) { perror(argv[i]); return 1; }
        for (int k = 0; k < n; k++) {
            char p[4096];
            snprintf(p, sizeof(p), "%s/%s", argv[i], de[k]->d_name);
            if (de[k]->d_name[0] != '.' && stat(p, &sb) == 0 && S_ISREG(sb.st_mode)) {
                bad |= run_file(p);
                count++;
            }
            free(de[k]);
        }
        free(de);
    }
    printf("%s: %d inputs replayed\n", argv[0], count);
    if (count == 0) { fprintf(stderr, "no inputs\n"); return 1; }
    return bad;
}
