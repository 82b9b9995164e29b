/* bt_sample.h - the token sampler of `generate`: repeat penalty, top-k, temperature, min-p,
 * top-p, then a seeded draw (splitmix64). Deterministic for a given seed; temp <= 0 is greedy. */
#ifndef BT_SAMPLE_H
#define BT_SAMPLE_H
#include <stdint.h>

struct bt_sample_opts {
    float   temperature;    /* <= 0: greedy (the largest penalized logit) */
    int32_t top_k;          /* keep the k most likely (0 = all) */
    float   top_p;          /* keep the smallest most-likely set of this mass (0 or >= 1: all) */
    float   min_p;          /* keep tokens with p >= min_p * p_max (0 = all) */
    float   repeat_penalty; /* logits of recent tokens: > 0 divided, < 0 multiplied (1 = off) */
};

struct bt_cand {
    float   p;  /* logit, then probability */
    int32_t id;
};

/* The candidates after every filter, most likely first, probabilities summing to 1, in c (n
 * entries of work space); returns how many are kept (>= 1). recent: the last tokens (distinct
 * ones penalized once each). */
int bt_sample_filter(const float *logits, int n, const struct bt_sample_opts *o, const int32_t *recent,
                     int n_recent, struct bt_cand *c);
/* one token from the kept candidates with the generator state *rng */
int32_t bt_sample_draw(const struct bt_cand *c, int k, uint64_t *rng);
/* filter + draw */
int32_t bt_sample(const float *logits, int n, const struct bt_sample_opts *o, const int32_t *recent, int n_recent,
                  uint64_t *rng, struct bt_cand *c);
/* a seed from the clock and the process id (what `generate` uses when none is given) */
uint64_t bt_sample_random_seed(void);
#endif
