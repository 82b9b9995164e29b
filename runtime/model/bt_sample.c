/* bt_sample.c - the token sampler: repeat penalty on the logits, top-k, softmax with temperature,
 * min-p, top-p (nucleus), then a draw from the kept mass with splitmix64. Probabilities are
 * computed in double and kept in descending order, ties broken by the smaller token id. */
#include "bt_sample.h"

#include <math.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static uint64_t rng_next(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
static double rng_unit(uint64_t *s) { return (double)(rng_next(s) >> 11) * (1.0 / 9007199254740992.0); }

static int cand_cmp(const void *a, const void *b) {
    const struct bt_cand *x = a, *y = b;
    if (x->p != y->p) return x->p < y->p ? 1 : -1;
    return x->id < y->id ? -1 : x->id > y->id;
}

int bt_sample_filter(const float *logits, int n, const struct bt_sample_opts *o, const int32_t *recent,
                     int n_recent, struct bt_cand *c) {
    for (int i = 0; i < n; i++) c[i] = (struct bt_cand){logits[i], i};
    float rp = o->repeat_penalty;
    if (rp > 0.0f && rp != 1.0f) {
        /* each distinct recent token once: the id is negated while it is penalized */
        for (int j = 0; j < n_recent; j++) {
            int32_t t = recent[j];
            if (t < 0 || t >= n || c[t].id < 0) continue;
            c[t].p = c[t].p > 0.0f ? c[t].p / rp : c[t].p * rp;
            c[t].id = -1 - t;
        }
        for (int j = 0; j < n_recent; j++)
            if (recent[j] >= 0 && recent[j] < n && c[recent[j]].id < 0) c[recent[j]].id = recent[j];
    }
    if (o->temperature <= 0.0f) { /* greedy: the first largest */
        int best = 0;
        for (int i = 1; i < n; i++)
            if (c[i].p > c[best].p) best = i;
        c[0] = (struct bt_cand){1.0f, c[best].id};
        return 1;
    }
    qsort(c, (size_t)n, sizeof *c, cand_cmp);
    int k = n;
    if (o->top_k > 0 && o->top_k < k) k = o->top_k;
    double top = c[0].p, sum = 0.0;
    for (int i = 0; i < k; i++) sum += exp(((double)c[i].p - top) / o->temperature);
    /* min-p: relative to the most likely token, whose weight is exp(0) = 1 */
    if (o->min_p > 0.0f) {
        int kk = 1;
        double s = 1.0;
        while (kk < k) {
            double w = exp(((double)c[kk].p - top) / o->temperature);
            if (w < o->min_p) break;
            s += w;
            kk++;
        }
        k = kk;
        sum = s;
    }
    if (o->top_p > 0.0f && o->top_p < 1.0f) {
        double acc = 0.0;
        int kk = 0;
        while (kk < k && (kk == 0 || acc < o->top_p * sum)) acc += exp(((double)c[kk++].p - top) / o->temperature);
        k = kk;
        sum = acc;
    }
    for (int i = 0; i < k; i++) c[i].p = (float)(exp(((double)c[i].p - top) / o->temperature) / sum);
    return k;
}

int32_t bt_sample_draw(const struct bt_cand *c, int k, uint64_t *rng) {
    double r = rng_unit(rng), acc = 0.0;
    for (int i = 0; i < k; i++) {
        acc += c[i].p;
        if (r < acc) return c[i].id;
    }
    return c[k - 1].id;
}

int32_t bt_sample(const float *logits, int n, const struct bt_sample_opts *o, const int32_t *recent, int n_recent,
                  uint64_t *rng, struct bt_cand *c) {
    int k = bt_sample_filter(logits, n, o, recent, n_recent, c);
    return k == 1 ? c[0].id : bt_sample_draw(c, k, rng);
}

uint64_t bt_sample_random_seed(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t s = (uint64_t)ts.tv_sec * 1000000007ull ^ (uint64_t)ts.tv_nsec ^ ((uint64_t)getpid() << 32);
    s = rng_next(&s);
    return s & 0x7fffffffffffffffull; /* fits --seed's range */
}
