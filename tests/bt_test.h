/* bt_test.h - a tiny check framework for unit tests: CHECK, CHECK_EQ, CHECK_NEAR, TEST_MAIN. */
#ifndef BT_TEST_H
#define BT_TEST_H
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

static int bt_test_failures = 0;
static int bt_test_checks = 0;

#define CHECK(cond)                                                                   \
    do {                                                                              \
        bt_test_checks++;                                                             \
        if (!(cond)) {                                                                \
            bt_test_failures++;                                                       \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);  \
        }                                                                             \
    } while (0)
#define CHECK_EQ(a, b)                                                                \
    do {                                                                              \
        long long _a = (long long)(a), _b = (long long)(b);                           \
        bt_test_checks++;                                                             \
        if (_a != _b) {                                                               \
            bt_test_failures++;                                                       \
            fprintf(stderr, "%s:%d: CHECK_EQ failed: %s = %lld, %s = %lld\n", __FILE__, \
                    __LINE__, #a, _a, #b, _b);                                        \
        }                                                                             \
    } while (0)
#define CHECK_NEAR(a, b, tol)                                                         \
    do {                                                                              \
        double _a = (double)(a), _b = (double)(b);                                    \
        bt_test_checks++;                                                             \
        if (!(fabs(_a - _b) <= (tol))) {                                              \
            bt_test_failures++;                                                       \
            fprintf(stderr, "%s:%d: CHECK_NEAR failed: %s = %g, %s = %g (tol %g)\n",  \
                    __FILE__, __LINE__, #a, _a, #b, _b, (double)(tol));               \
        }                                                                             \
    } while (0)
/* whole file, NUL-terminated; NULL if unreadable; caller frees */
static inline char *bt_test_slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (b && fread(b, 1, (size_t)n, f) != (size_t)n) { free(b); b = NULL; }
    fclose(f);
    if (b) b[n] = 0;
    *len = b ? (size_t)n : 0;
    return b;
}

#define TEST_DONE()                                                                   \
    do {                                                                              \
        fprintf(stderr, "%d checks, %d failed\n", bt_test_checks, bt_test_failures);  \
        return bt_test_failures ? 1 : (bt_test_checks ? 0 : 1);                       \
    } while (0)
#endif
