/* threads.c - a small persistent pthread pool behind bt_parallel_for / host->parallel_for.
 * Work is split into contiguous chunks; each chunk runs exactly once, so results that are
 * written per index do not depend on the thread count. */
#include "bt/bt.h"

#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#define BT_MAX_THREADS 256

static struct {
    pthread_mutex_t mu;
    pthread_cond_t  cv_work, cv_done;
    pthread_t       tids[BT_MAX_THREADS];
    int             n_threads;   /* configured threads (incl. the caller) */
    int             n_started;   /* worker threads running */
    uint64_t        generation;  /* bumps for every job */
    /* the current job */
    bt_range_fn     fn;
    void           *arg;
    int64_t         n, chunk, next_chunk, n_chunks;
    int             active;      /* workers still inside the job */
    int             busy;        /* a job is running (nested calls run serially) */
} pool = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv_work = PTHREAD_COND_INITIALIZER, .cv_done = PTHREAD_COND_INITIALIZER};

static int online_cpus(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > BT_MAX_THREADS ? BT_MAX_THREADS : (int)n;
}

/* take chunks until none are left; called with the mutex unlocked */
static void run_chunks(int tid) {
    for (;;) {
        pthread_mutex_lock(&pool.mu);
        int64_t c = pool.next_chunk < pool.n_chunks ? pool.next_chunk++ : -1;
        pthread_mutex_unlock(&pool.mu);
        if (c < 0) return;
        int64_t i0 = c * pool.chunk, i1 = i0 + pool.chunk;
        if (i1 > pool.n) i1 = pool.n;
        pool.fn(pool.arg, i0, i1, tid);
    }
}

static void *worker(void *p) {
    int tid = (int)(intptr_t)p;
    uint64_t seen = 0;
    pthread_mutex_lock(&pool.mu);
    for (;;) {
        while (pool.generation == seen) pthread_cond_wait(&pool.cv_work, &pool.mu);
        seen = pool.generation;
        if (tid >= pool.n_threads) continue; /* not part of this job */
        pthread_mutex_unlock(&pool.mu);
        run_chunks(tid);
        pthread_mutex_lock(&pool.mu);
        if (--pool.active == 0) pthread_cond_signal(&pool.cv_done);
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
    if (!pool.n_threads) bt_threads_set(0);
    return pool.n_threads;
}

void bt_parallel_for(int64_t n, int64_t grain, bt_range_fn fn, void *arg) {
    if (n <= 0) return;
    int nt = bt_threads_get();
    if (grain < 1) grain = 1;
    pthread_mutex_lock(&pool.mu);
    if (nt <= 1 || n <= grain || pool.busy) {
        pthread_mutex_unlock(&pool.mu);
        fn(arg, 0, n, 0);
        return;
    }
    while (pool.n_started < nt - 1) {
        int id = pool.n_started + 1;
        if (pthread_create(&pool.tids[id], NULL, worker, (void *)(intptr_t)id) != 0) break;
        pthread_detach(pool.tids[id]);
        pool.n_started++;
    }
    int workers = pool.n_started < nt - 1 ? pool.n_started : nt - 1;
    /* chunks: about 4 per thread, never smaller than grain */
    int64_t chunk = (n + 4 * nt - 1) / (4 * nt);
    if (chunk < grain) chunk = grain;
    pool.busy = 1;
    pool.fn = fn;
    pool.arg = arg;
    pool.n = n;
    pool.chunk = chunk;
    pool.n_chunks = (n + chunk - 1) / chunk;
    pool.next_chunk = 0;
    pool.active = workers;
    pool.generation++;
    pthread_cond_broadcast(&pool.cv_work);
    pthread_mutex_unlock(&pool.mu);
    run_chunks(0);
    pthread_mutex_lock(&pool.mu);
    while (pool.active > 0) pthread_cond_wait(&pool.cv_done, &pool.mu);
    pool.busy = 0;
    pthread_mutex_unlock(&pool.mu);
}
