/* mtq_algo.h - multi-base (residual) ternary decomposition of weight blocks, W ~ sum_i a_i T_i
 * with T_i in {-1,0,1}: exact ternary steps, greedy and balanced-ternary starts, joint code
 * assignment + LS refit (Lloyd with additive levels). Pure algorithm; no plugin or host deps. */
#ifndef BT_MTQ_ALGO_H
#define BT_MTQ_ALGO_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define BT_MTQ_MAX_PLANES 8
#define BT_MTQ_MAX_BLOCK  256
#define BT_MTQ_MAX_LEVELS 6561 /* 3^BT_MTQ_MAX_PLANES */

enum {
    BT_MTQ_INIT_GREEDY   = 0, /* greedy residual exact ternary steps */
    BT_MTQ_INIT_BALANCED = 1, /* a_i = s * 3^-i (uniform 3^N-level grid), s by grid search */
    BT_MTQ_INIT_BEST     = 2, /* run both, keep the lower final error */
};

/* Scratch space for one block (one per thread; ~290 KB, allocate with bt_mtq_work_new). */
struct bt_mtq_work {
    float    sw[BT_MTQ_MAX_BLOCK];          /* block values sorted ascending */
    double   swd[BT_MTQ_MAX_BLOCK];         /* the same as double */
    uint16_t perm[BT_MTQ_MAX_BLOCK];        /* sorted position -> element index */
    double   pd[BT_MTQ_MAX_BLOCK + 1];      /* prefix sums of the column weights (sorted order) */
    double   pdw[BT_MTQ_MAX_BLOCK + 1];     /* prefix sums of d * w (sorted order) */
    double   sw2;                           /* sum of d * w^2 over the block */
    float    r[BT_MTQ_MAX_BLOCK];           /* residual (greedy) */
    uint32_t key[BT_MTQ_MAX_BLOCK];         /* radix sort keys */
    uint16_t idx[BT_MTQ_MAX_BLOCK];         /* radix sort output permutation */
    uint16_t tmp[BT_MTQ_MAX_BLOCK];         /* radix sort scratch */
    uint8_t  bkt[BT_MTQ_MAX_BLOCK];         /* bucket of each element (bucket sort) */
    float    nr[BT_MTQ_MAX_BLOCK];          /* -|r| of a ternary step (sort input) */
    float    sv[BT_MTQ_MAX_BLOCK];          /* sort output: values in ascending order */
    int8_t   tg[BT_MTQ_MAX_BLOCK];          /* codes of one greedy step */
    /* levels: a code index c in [0, 3^N) has t_p = tdig[c*8 + p] (digit (c/3^p)%3: 0,-1,+1) */
    int8_t   tdig[BT_MTQ_MAX_LEVELS * BT_MTQ_MAX_PLANES]; /* code -> plane values, filled once */
    uint16_t ord[BT_MTQ_MAX_LEVELS];        /* codes in ascending level order (kept between
                                               assignments of a block: stable re-sort) */
    uint16_t ord2[BT_MTQ_MAX_LEVELS];       /* merge sort scratch */
    double   lv[BT_MTQ_MAX_LEVELS];         /* level value of ord[j] */
    double   lv2[BT_MTQ_MAX_LEVELS];        /* merge sort scratch */
    double   cv[BT_MTQ_MAX_LEVELS];         /* level value of code c (by code index) */
    int      bnd[BT_MTQ_MAX_LEVELS + 1];    /* level j owns sorted elements [bnd[j], bnd[j+1]) */
    int      nlev;                          /* number of levels (3^N) of the current block */
    int      bnd_ok;                        /* bnd holds the previous assignment of this block */
    uint16_t ord0[BT_MTQ_MAX_LEVELS];       /* start order of a block: codes lexicographic in
                                               (t_0, .., t_N-1), t ascending (sorted when
                                               a_0 > a_1 > .. and a_p > sum of later ones) */
    int      ord0_n;                        /* N that ord0 was built for (0 = none) */
};

struct bt_mtq_work *bt_mtq_work_new(void); /* NULL on OOM; free with bt_mtq_work_free */
void bt_mtq_work_init(struct bt_mtq_work *ws); /* prepare caller-allocated scratch */
void bt_mtq_work_free(struct bt_mtq_work *ws);

/* One exact ternary step on r[n]: minimises sum_j d_j (r_j - a t_j)^2 over a >= 0 and
 * t in {-1,0,1}^n (d = colw, NULL means all 1). The support is the top-k of |r| (ties: lower
 * index first) with k maximising (sum d|r|)^2 / sum d. Writes t, returns a. n <= MAX_BLOCK. */
double bt_mtq_ternary_step(const float *r, const float *colw, int n, int8_t *t,
                           struct bt_mtq_work *ws);

/* Quantize one block w[n] (n <= 256) into N planes: t[p*n + e] codes (plane-major), a[p]
 * scales (fp16-representable values). colw: optional per-element weights d_j >= 0 (NULL = 1).
 * rounds: joint assignment + LS refit rounds per start; init: BT_MTQ_INIT_* (N = 1 always uses
 * the exact ternary step, the global optimum, without refit). Returns the block's
 * weighted squared error sum_j d_j (w_j - sum_p a_p t_pj)^2 with the stored fp16 scales,
 * reconstruction computed in float as the decoder does. Depends only on the block data. */
double bt_mtq_quantize_block(const float *w, const float *colw, int n, int N, int rounds,
                             int init, int8_t *t, float *a, struct bt_mtq_work *ws);

/* Quantize one row of cols values (cols % block == 0) block by block. t: N*block codes per
 * block, blocks consecutive (block b at t + b*N*block); a: N scales per block. colw: cols
 * weights or NULL. Returns the row's squared error; *ref2 (may be NULL) gets sum d w^2. */
double bt_mtq_quantize_row(const float *w, const float *colw, int64_t cols, int block, int N,
                           int rounds, int init, int8_t *t, float *a, double *ref2,
                           struct bt_mtq_work *ws);

#ifdef __cplusplus
}
#endif
#endif
