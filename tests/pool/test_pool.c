/* test_pool.c - bt_parallel_for: for 1, 2 and 4 threads and jobs of several kinds and sizes,
 * repeated often enough that each kind runs both on the pool and on the caller alone (the
 * pool's warm-up tries both), every index is visited exactly once per call, thread ids stay
 * below the thread count, a nested call runs whole, and a long job (over the pool's 2 ms
 * limit for short jobs) is covered too. */
#include "bt/bt.h"
#include "bt_test.h"

#include <stdint.h>
#include <string.h>
#include <time.h>

struct job {
    int32_t *hits;  /* per index, atomic */
    int      nt;
    int      bad_tid;
    int      nested; /* run a nested parallel_for over nested_hits inside each range */
    int32_t *nested_hits;
    int64_t  nested_n;
    int      slow;   /* sleep this many microseconds per range */
};

static void visit(void *arg, int64_t i0, int64_t i1, int tid) {
    struct job *j = arg;
    if (tid < 0 || tid >= j->nt) __atomic_store_n(&j->bad_tid, 1, __ATOMIC_RELAXED);
    for (int64_t i = i0; i < i1; i++) __atomic_fetch_add(&j->hits[i], 1, __ATOMIC_RELAXED);
    if (j->slow) {
        struct timespec ts = {0, (long)j->slow * 1000};
        nanosleep(&ts, NULL);
    }
}

static void nested_inner(void *arg, int64_t i0, int64_t i1, int tid) {
    int32_t *h = arg;
    (void)tid;
    for (int64_t i = i0; i < i1; i++) __atomic_fetch_add(&h[i], 1, __ATOMIC_RELAXED);
}

static void visit_nested(void *arg, int64_t i0, int64_t i1, int tid) {
    struct job *j = arg;
    visit(arg, i0, i1, tid);
    bt_parallel_for(j->nested_n, 1, nested_inner, j->nested_hits);
}

/* reps calls of one kind of job over n indices; returns 0 when every call covered each index
 * exactly once */
static int run_kind(int nt, int64_t n, int64_t grain, int reps, int nested, int slow) {
    int32_t *hits = calloc((size_t)n, sizeof *hits);
    int32_t *nh = calloc(64, sizeof *nh);
    struct job j = {hits, nt, 0, nested, nh, 64, slow};
    int bad = 0;
    for (int r = 0; r < reps && !bad; r++) {
        memset(hits, 0, (size_t)n * sizeof *hits);
        memset(nh, 0, 64 * sizeof *nh);
        bt_parallel_for(n, grain, nested ? visit_nested : visit, &j);
        for (int64_t i = 0; i < n; i++)
            if (hits[i] != 1) {
                fprintf(stderr, "threads %d, n %lld, call %d: index %lld visited %d times\n", nt,
                        (long long)n, r, (long long)i, hits[i]);
                bad = 1;
                break;
            }
        if (nested) {
            /* each range ran the nested job once: every nested index as often as there were ranges */
            for (int i = 1; i < 64; i++)
                if (nh[i] != nh[0] || nh[0] < 1) { bad = 1; break; }
        }
    }
    if (j.bad_tid) {
        fprintf(stderr, "threads %d, n %lld: a thread id outside 0..%d\n", nt, (long long)n, nt - 1);
        bad = 1;
    }
    free(hits);
    free(nh);
    return bad;
}

int main(void) {
    const int threads[] = {1, 2, 4};
    for (size_t t = 0; t < sizeof threads / sizeof *threads; t++) {
        int nt = threads[t];
        bt_threads_set(nt);
        CHECK_EQ(bt_threads_get(), nt);
        /* interleaved kinds, as a decode step interleaves its ops */
        for (int round = 0; round < 200; round++) {
            CHECK_EQ(run_kind(nt, 4096, 16, 1, 0, 0), 0);
            CHECK_EQ(run_kind(nt, 37, 1, 1, 0, 0), 0);
            CHECK_EQ(run_kind(nt, 100003, 64, 1, 0, 0), 0);
            CHECK_EQ(run_kind(nt, 5, 8, 1, 0, 0), 0); /* below the grain: serial */
        }
        CHECK_EQ(run_kind(nt, 256, 1, 40, 1, 0), 0);   /* nested calls */
        CHECK_EQ(run_kind(nt, 64, 1, 12, 0, 300), 0);  /* long jobs: 64 ranges of 0.3 ms */
    }
    bt_threads_set(0);
    CHECK(bt_threads_get() >= 1);
    TEST_DONE();
}
