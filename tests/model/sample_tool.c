/* sample_tool.c - runs the sampler of runtime/model/bt_sample.c on logits from stdin, for
 * test_sampler.py (which checks it against numpy). Input: "temp top_k top_p min_p penalty",
 * then n and n logits, then m and m recent ids. Mode "filter": the kept candidates, "id p" per
 * line, most likely first. Mode "draw SEED COUNT": COUNT tokens drawn with one generator. */
#include "bt_sample.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
    struct bt_sample_opts o;
    int n, m;
    if (argc < 2 || scanf("%f %d %f %f %f", &o.temperature, &o.top_k, &o.top_p, &o.min_p, &o.repeat_penalty) != 5 ||
        scanf("%d", &n) != 1 || n < 1) {
        fprintf(stderr, "usage: sample_tool filter|draw SEED COUNT < input\n");
        return 2;
    }
    float *l = malloc((size_t)n * sizeof(*l));
    struct bt_cand *c = malloc((size_t)n * sizeof(*c));
    for (int i = 0; i < n; i++)
        if (scanf("%f", &l[i]) != 1) return 2;
    if (scanf("%d", &m) != 1 || m < 0) return 2;
    int32_t *recent = malloc((size_t)(m + 1) * sizeof(*recent));
    for (int i = 0; i < m; i++)
        if (scanf("%d", &recent[i]) != 1) return 2;
    if (!strcmp(argv[1], "filter")) {
        int k = bt_sample_filter(l, n, &o, recent, m, c);
        for (int i = 0; i < k; i++) printf("%d %.9g\n", c[i].id, c[i].p);
    } else if (!strcmp(argv[1], "draw") && argc == 4) {
        uint64_t rng = strtoull(argv[2], NULL, 10);
        long count = strtol(argv[3], NULL, 10);
        for (long i = 0; i < count; i++) printf("%d\n", bt_sample(l, n, &o, recent, m, &rng, c));
    } else {
        return 2;
    }
    free(l);
    free(c);
    free(recent);
    return 0;
}
