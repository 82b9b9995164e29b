/* threads.c - a small persistent pthread pool behind bt_parallel_for / host->parallel_for.
 * Work is split into contiguous chunks; each chunk runs exactly once, so results that are
 * written per index do not depend on the thread count. Workers spin briefly before sleeping
 * (a decode step issues ~60 short parallel calls per token, where a futex wake-up per call
 * would dominate), then block on a condition variable. The caller waits only for workers that
 * joined the job: once the caller has run out of chunks it closes the job, and a worker that
 * was descheduled and arrives later finds it closed and skips it (no time slice lost waiting
 * for a thread that took no work).
 *
 * Short jobs (under ADAPT_MAX_NS) choose between running on the pool and running on the
 * caller alone, per (function, size), by measuring both: a decode step repeats the same ~60
 * jobs every token, and on a machine where another process keeps a core busy (or where the
 * jobs are too small for a wake-up to pay), the caller alone is faster than waiting for a
 * worker that the scheduler put behind the other process. Each kind of job runs in its faster
 * mode and tries the other one now and then (every PROBE_MIN..PROBE_MAX jobs of that kind), so
 * it follows the load as it changes. Results never depend on the choice (each index is
 * computed by the same function either way). BT_POOL_ADAPT=0 in the environment turns it off
 * (every job on the pool, as before). */
#include "bt/bt.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define cpu_relax() _mm_pause()
#else
#define cpu_relax() ((void)0)
#endif

#define BT_MAX_THREADS BT_THREADS_MAX
#define SPIN_ITERS     20000 /* ~0.1-0.5 ms of polling before a worker sleeps */

#define ADAPT_SLOTS   256     /* kinds of short job tracked (function, size) */
#define ADAPT_MAX_NS  2000000 /* jobs longer than 2 ms always run on the pool */
#define PROBE_MIN     32      /* jobs of a kind between two runs in the other mode ... */
#define PROBE_MAX     1024    /* ... growing while the choice holds */
#define WARM_JOBS     4       /* runs of each mode before the first choice */

#define ST_CLOSED  ((uint64_t)1 << 31)
#define ST_RUNNING ((uint64_t)0x7fffffff)

#define LOAD(p)     __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define STORE(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)

static struct {
    pthread_mutex_t mu;
    pthread_cond_t  cv_work, cv_done;
    pthread_t       tids[BT_MAX_THREADS];
    int             n_threads;   /* configured threads (incl. the caller) */
    int             n_started;   /* worker threads running */
    int             sleepers;    /* workers blocked on cv_work (under mu) */
    uint64_t        jobword;     /* (job generation << 16) | threads taking part (atomic): one
                                  * load gives a worker both, consistently */
    int             busy;        /* a job is running; nested calls run serially (atomic) */
    /* the current job, written before generation is published */
    bt_range_fn     fn;
    void           *arg;
    int64_t         n, chunk, n_chunks;
    int64_t         next_chunk;  /* atomic */
    uint64_t        state;       /* (generation << 32) | CLOSED | workers inside the job (atomic) */
} pool = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv_work = PTHREAD_COND_INITIALIZER, .cv_done = PTHREAD_COND_INITIALIZER};

/* one kind of short job: its mean time on the pool and alone (exponential averages) */
struct adapt {
    bt_range_fn fn;
    int64_t     n;
    double      ns[2];   /* [0] pool, [1] caller alone */
    double      warm_min; /* the fastest of the warm-up runs on the pool */
    uint32_t    runs[2]; /* runs of each mode so far (saturating) */
    uint32_t    since;   /* jobs since the last probe of the other mode */
    uint32_t    interval;
    int         mode;    /* the faster one: 0 pool, 1 alone */
};
static struct adapt adapt_tab[ADAPT_SLOTS]; /* used only by the caller that holds pool.busy */
static int adapt_on = -1;

static double now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

/* the entry of (fn, n); NULL when the table is full (the job then runs on the pool) */
static struct adapt *adapt_find(bt_range_fn fn, int64_t n) {
    uintptr_t h = ((uintptr_t)fn >> 4) * 0x9e3779b97f4a7c15u ^ (uintptr_t)n * 0xff51afd7ed558ccdu;
    for (int i = 0; i < 8; i++) {
        struct adapt *a = &adapt_tab[(h + (uintptr_t)i) % ADAPT_SLOTS];
        if (a->fn == fn && a->n == n) return a;
        if (!a->fn) {
            memset(a, 0, sizeof *a);
            a->fn = fn;
            a->n = n;
            a->interval = PROBE_MIN;
            return a;
        }
    }
    return NULL;
}

/* the mode of this run of a kind: warm-up runs of both, then the faster one with a probe of
 * the other every `interval` jobs */
static int adapt_pick(struct adapt *a) {
    if (a->runs[0] < WARM_JOBS) return 0;
    if (a->runs[1] < WARM_JOBS) return 1;
    if (++a->since >= a->interval) {
        a->since = 0;
        return !a->mode;
    }
    return a->mode;
}

static void adapt_record(struct adapt *a, int mode, double ns) {
    /* a long job (even its fastest warm-up run on the pool over the limit; one slow run is not
     * enough: a descheduled worker can stretch a short job past it) stays on the pool for good */
    if (mode == 0 && a->runs[0] < WARM_JOBS) {
        if (a->runs[0] == 0 || ns < a->warm_min) a->warm_min = ns;
        if (a->runs[0] == WARM_JOBS - 1 && a->warm_min > ADAPT_MAX_NS) {
            a->ns[0] = a->warm_min;
            a->runs[0] = a->runs[1] = WARM_JOBS;
            a->mode = 0;
            a->interval = UINT32_MAX;
            return;
        }
    }
    /* the first runs set the mean; later ones move it by 1/8 (probes, rarer, by 1/2) */
    double w = a->runs[mode] == 0 ? 1.0 : mode != a->mode ? 0.5 : 0.125;
    a->ns[mode] += w * (ns - a->ns[mode]);
    if (a->runs[mode] < UINT32_MAX) a->runs[mode]++;
    if (a->runs[0] < WARM_JOBS || a->runs[1] < WARM_JOBS || a->interval == UINT32_MAX) return;
    int best = a->ns[1] < a->ns[0] ? 1 : 0;
    if (best != a->mode) {
        a->mode = best;
        a->interval = PROBE_MIN;
    } else if (mode != a->mode && a->interval < PROBE_MAX) {
        a->interval *= 2; /* the probe confirmed the choice: probe less often */
    }
}

static int online_cpus(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > BT_MAX_THREADS ? BT_MAX_THREADS : (int)n;
}

/* take chunks until none are left */
static void run_chunks(int tid) {
    for (;;) {
        int64_t c = __atomic_fetch_add(&pool.next_chunk, 1, __ATOMIC_ACQ_REL);
        if (c >= pool.n_chunks) return;
        int64_t i0 = c * pool.chunk, i1 = i0 + pool.chunk;
        if (i1 > pool.n) i1 = pool.n;
        pool.fn(pool.arg, i0, i1, tid);
    }
}

static void *worker(void *p) {
    int tid = (int)(intptr_t)p;
    uint64_t seen = 0;
    for (;;) {
        uint64_t g = LOAD(&pool.jobword);
        for (int s = 0; g == seen && s < SPIN_ITERS; s++) {
            cpu_relax();
            g = LOAD(&pool.jobword);
        }
        if (g == seen) {
            pthread_mutex_lock(&pool.mu);
            pool.sleepers++;
            while ((g = LOAD(&pool.jobword)) == seen) pthread_cond_wait(&pool.cv_work, &pool.mu);
            pool.sleepers--;
            pthread_mutex_unlock(&pool.mu);
        }
        seen = g;
        if (tid >= (int)(g & 0xffff)) continue; /* not part of this job */
        uint64_t gen32 = (g >> 16) & 0xffffffffu, st = LOAD(&pool.state);
        int joined = 0;
        while ((st >> 32) == gen32 && !(st & ST_CLOSED)) { /* join unless the caller closed it */
            if (__atomic_compare_exchange_n(&pool.state, &st, st + 1, 0, __ATOMIC_ACQ_REL,
                                            __ATOMIC_ACQUIRE)) { joined = 1; break; }
        }
        if (!joined) continue; /* came too late: the job is done or closed */
        run_chunks(tid);
        uint64_t left = __atomic_sub_fetch(&pool.state, 1, __ATOMIC_ACQ_REL);
        if ((left & ST_CLOSED) && !(left & ST_RUNNING)) {
            pthread_mutex_lock(&pool.mu);
            pthread_cond_signal(&pool.cv_done);
            pthread_mutex_unlock(&pool.mu);
        }
    }
    return NULL;
}

void bt_threads_set(int n) {
    if (n <= 0) n = online_cpus();
    if (n > BT_MAX_THREADS) n = BT_MAX_THREADS;
    pthread_mutex_lock(&pool.mu);
    pool.n_threads = n;
    pthread_mutex_unlock(&pool.mu);
}

int bt_threads_get(void) {
    if (!LOAD(&pool.n_threads)) bt_threads_set(0);
    return LOAD(&pool.n_threads);
}

void bt_parallel_for(int64_t n, int64_t grain, bt_range_fn fn, void *arg) {
    if (n <= 0) return;
    int nt = bt_threads_get();
    if (grain < 1) grain = 1;
    if (nt <= 1 || n <= grain || __atomic_exchange_n(&pool.busy, 1, __ATOMIC_ACQ_REL)) {
        fn(arg, 0, n, 0); /* serial: one thread, too little work, or nested inside a job */
        return;
    }
    if (adapt_on < 0) {
        const char *e = getenv("BT_POOL_ADAPT");
        adapt_on = !(e && e[0] == '0');
    }
    struct adapt *a = adapt_on ? adapt_find(fn, n) : NULL;
    int mode = a ? adapt_pick(a) : 0;
    double t0 = a ? now_ns() : 0;
    if (mode == 1) { /* this kind of job is faster on the caller alone */
        fn(arg, 0, n, 0);
        adapt_record(a, 1, now_ns() - t0);
        STORE(&pool.busy, 0);
        return;
    }
    pthread_mutex_lock(&pool.mu);
    while (pool.n_started < nt - 1) {
        int id = pool.n_started + 1;
        if (pthread_create(&pool.tids[id], NULL, worker, (void *)(intptr_t)id) != 0) break;
        pthread_detach(pool.tids[id]);
        pool.n_started++;
    }
    pthread_mutex_unlock(&pool.mu);
    int workers = pool.n_started < nt - 1 ? pool.n_started : nt - 1;
    /* chunks: about 4 per thread, never smaller than grain */
    int64_t chunk = (n + 4 * nt - 1) / (4 * nt);
    if (chunk < grain) chunk = grain;
    pool.fn = fn;
    pool.arg = arg;
    pool.n = n;
    pool.chunk = chunk;
    pool.n_chunks = (n + chunk - 1) / chunk;
    STORE(&pool.next_chunk, 0);
    uint64_t gen = (LOAD(&pool.jobword) >> 16) + 1;
    STORE(&pool.state, (gen & 0xffffffffu) << 32); /* open, nobody inside */
    STORE(&pool.jobword, (gen << 16) | (uint64_t)(workers + 1)); /* publish the job */
    pthread_mutex_lock(&pool.mu);
    if (pool.sleepers) pthread_cond_broadcast(&pool.cv_work);
    pthread_mutex_unlock(&pool.mu);
    run_chunks(0);
    /* every chunk is taken: close the job, then wait only for the workers inside it */
    uint64_t st = __atomic_or_fetch(&pool.state, ST_CLOSED, __ATOMIC_ACQ_REL);
    for (int s = 0; (st & ST_RUNNING) && s < SPIN_ITERS; s++) {
        cpu_relax();
        st = LOAD(&pool.state);
    }
    if (st & ST_RUNNING) {
        pthread_mutex_lock(&pool.mu);
        while (LOAD(&pool.state) & ST_RUNNING) pthread_cond_wait(&pool.cv_done, &pool.mu);
        pthread_mutex_unlock(&pool.mu);
    }
    if (a) adapt_record(a, 0, now_ns() - t0);
    STORE(&pool.busy, 0);
}
