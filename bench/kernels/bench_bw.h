/* bench_bw.h - shared by the kernel benches: a monotonic clock and the machine's read bandwidth
 * (a 1 GB buffer summed on nt threads of the test host's pool, best of 5), the reference every
 * bandwidth fraction is taken against. Include after bk_host.h. */
#ifndef BT_BENCH_BW_H
#define BT_BENCH_BW_H

#include <math.h>
#include <string.h>
#include <time.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

struct rd_job {
    const uint64_t *p;
    uint64_t        sums[BK_MAX_THREADS * 8];
};

static void rd_range(void *arg, int64_t i0, int64_t i1, int tid) {
    struct rd_job *j = arg;
    uint64_t a = 0, b = 0, c = 0, d = 0;
    const uint64_t *p = j->p;
    for (int64_t i = i0 * 512; i < i1 * 512; i += 4) { a += p[i]; b += p[i + 1]; c += p[i + 2]; d += p[i + 3]; }
    j->sums[(tid % BK_MAX_THREADS) * 8] += a + b + c + d;
}

static double read_bw(int nt) {
    size_t n = (size_t)1 << 30;
    uint64_t *p = bk_alloc(n);
    if (!p) return 0;
    memset(p, 1, n);
    struct rd_job j;
    memset(&j, 0, sizeof j);
    j.p = p;
    bk_set_threads(nt);
    double best = 1e9;
    for (int r = 0; r < 5; r++) {
        double t0 = now();
        bk_parallel_for((int64_t)(n / 8 / 512), 256, rd_range, &j);
        best = fmin(best, now() - t0);
    }
    bk_free(p);
    return (double)n / best * 1e-9;
}

#endif
