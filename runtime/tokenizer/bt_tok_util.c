/* bt_tok_util.c - tokenizer building blocks: hash maps, pre-token cache, UTF-8 helpers and the
 * rank-ordered BPE merge loop (linked list of symbols + min-heap of candidate pairs). */
#include <stdlib.h>
#include <string.h>

#include "bt_tok_internal.h"

int bt_ivec_append(struct bt_ivec *a, const int32_t *x, size_t n) {
    if (a->n + n > a->cap) {
        size_t nc = a->cap ? a->cap : 256;
        while (nc < a->n + n) nc *= 2;
        int32_t *nv = realloc(a->v, nc * sizeof(*nv));
        if (!nv) return -1;
        a->v = nv;
        a->cap = nc;
    }
    memcpy(a->v + a->n, x, n * sizeof(*x));
    a->n += n;
    return 0;
}

int bt_ivec_push(struct bt_ivec *a, int32_t x) {
    if (a->n < a->cap) {
        a->v[a->n++] = x;
        return 0;
    }
    return bt_ivec_append(a, &x, 1);
}

/* FNV-1a, 64 bit; never 0 (0 marks an empty cache slot) */
uint64_t bt_tok_hash(const char *s, size_t n) {
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h ? h : 1;
}

static uint32_t pow2_at_least(uint64_t x) {
    uint32_t c = 16;
    while (c < x) c <<= 1;
    return c;
}

int bt_strmap_init(struct bt_strmap *m, const char *arena, const uint32_t *off,
                   const uint32_t *len, uint32_t nkeys) {
    memset(m, 0, sizeof(*m));
    m->cap = pow2_at_least((uint64_t)nkeys * 2 + 1);
    m->slot = calloc(m->cap, sizeof(*m->slot));
    m->hash = calloc(m->cap, sizeof(*m->hash));
    if (!m->slot || !m->hash) { bt_strmap_free(m); return -1; }
    m->arena = arena;
    m->off = off;
    m->len = len;
    for (uint32_t i = 0; i < nkeys; i++) {
        const char *k = arena + off[i];
        uint64_t h = bt_tok_hash(k, len[i]);
        uint32_t j = (uint32_t)h & (m->cap - 1);
        int dup = 0;
        while (m->slot[j]) {
            uint32_t o = m->slot[j] - 1;
            if (m->hash[j] == h && len[o] == len[i] && memcmp(arena + off[o], k, len[i]) == 0) {
                dup = 1;
                break;
            }
            j = (j + 1) & (m->cap - 1);
        }
        if (dup) continue;
        m->slot[j] = i + 1;
        m->hash[j] = h;
        m->n++;
    }
    return 0;
}

int32_t bt_strmap_get(const struct bt_strmap *m, const char *s, size_t n) {
    if (!m->cap) return -1;
    uint64_t h = bt_tok_hash(s, n);
    uint32_t j = (uint32_t)h & (m->cap - 1);
    while (m->slot[j]) {
        uint32_t o = m->slot[j] - 1;
        if (m->hash[j] == h && m->len[o] == n && memcmp(m->arena + m->off[o], s, n) == 0)
            return (int32_t)o;
        j = (j + 1) & (m->cap - 1);
    }
    return -1;
}

void bt_strmap_free(struct bt_strmap *m) {
    free(m->slot);
    free(m->hash);
    memset(m, 0, sizeof(*m));
}

static uint32_t pair_slot(uint64_t key, uint32_t cap) {
    key *= 0x9E3779B97F4A7C15ull;
    return (uint32_t)(key >> 32) & (cap - 1);
}

int bt_pairmap_init(struct bt_pairmap *m, uint32_t expect) {
    m->cap = pow2_at_least((uint64_t)expect * 2 + 1);
    m->n = 0;
    m->e = malloc((size_t)m->cap * sizeof(*m->e));
    if (!m->e) { m->cap = 0; return -1; }
    for (uint32_t i = 0; i < m->cap; i++) m->e[i].key = UINT64_MAX;
    return 0;
}

/* keeps an existing entry with a lower rank; grows at 50% load */
int bt_pairmap_put(struct bt_pairmap *m, int32_t a, int32_t b, int32_t rank, int32_t out) {
    if ((m->n + 1) * 2 > m->cap) {
        struct bt_pairmap g;
        if (bt_pairmap_init(&g, m->cap)) return -1;
        for (uint32_t i = 0; i < m->cap; i++) {
            if (m->e[i].key == UINT64_MAX) continue;
            uint32_t j = pair_slot(m->e[i].key, g.cap);
            while (g.e[j].key != UINT64_MAX) j = (j + 1) & (g.cap - 1);
            g.e[j] = m->e[i];
            g.n++;
        }
        free(m->e);
        *m = g;
    }
    uint64_t key = (uint64_t)(uint32_t)a << 32 | (uint32_t)b;
    uint32_t j = pair_slot(key, m->cap);
    while (m->e[j].key != UINT64_MAX) {
        if (m->e[j].key == key) {
            if (rank < m->e[j].rank) { m->e[j].rank = rank; m->e[j].out = out; }
            return 0;
        }
        j = (j + 1) & (m->cap - 1);
    }
    m->e[j].key = key;
    m->e[j].rank = rank;
    m->e[j].out = out;
    m->n++;
    return 0;
}

const struct bt_pair *bt_pairmap_get(const struct bt_pairmap *m, int32_t a, int32_t b) {
    if (!m->cap) return NULL;
    uint64_t key = (uint64_t)(uint32_t)a << 32 | (uint32_t)b;
    uint32_t j = pair_slot(key, m->cap);
    while (m->e[j].key != UINT64_MAX) {
        if (m->e[j].key == key) return &m->e[j];
        j = (j + 1) & (m->cap - 1);
    }
    return NULL;
}

void bt_pairmap_free(struct bt_pairmap *m) {
    free(m->e);
    memset(m, 0, sizeof(*m));
}

/* ---- pre-token cache ------------------------------------------------------------------- */
#define CACHE_MAX_ENTRIES (1u << 16)
#define CACHE_MAX_KEY     64

const int32_t *bt_cache_get(const struct bt_cache *c, const char *s, size_t n, uint64_t h,
                            size_t *nids) {
    if (!c->cap || n > CACHE_MAX_KEY) return NULL;
    uint32_t j = (uint32_t)h & (c->cap - 1);
    while (c->e[j].hash) {
        const struct bt_cache_ent *e = &c->e[j];
        if (e->hash == h && e->key_len == n && memcmp(c->keys + e->key_off, s, n) == 0) {
            *nids = e->ids_n;
            return c->ids.v + e->ids_off;
        }
        j = (j + 1) & (c->cap - 1);
    }
    return NULL;
}

static void cache_clear(struct bt_cache *c) {
    if (c->e) memset(c->e, 0, (size_t)c->cap * sizeof(*c->e));
    c->n = 0;
    c->keys_n = 0;
    c->ids.n = 0;
}

void bt_cache_put(struct bt_cache *c, const char *s, size_t n, uint64_t h, const int32_t *ids,
                  size_t nids) {
    if (n > CACHE_MAX_KEY) return;
    if (!c->e) {
        c->cap = 2 * CACHE_MAX_ENTRIES;
        c->e = calloc(c->cap, sizeof(*c->e));
        if (!c->e) { c->cap = 0; return; }
    }
    if (c->n >= CACHE_MAX_ENTRIES) cache_clear(c);
    if (c->keys_n + n > c->keys_cap) {
        size_t nc = c->keys_cap ? 2 * c->keys_cap : 1 << 16;
        while (nc < c->keys_n + n) nc *= 2;
        char *nk = realloc(c->keys, nc);
        if (!nk) return;
        c->keys = nk;
        c->keys_cap = nc;
    }
    size_t ids_off = c->ids.n;
    if (bt_ivec_append(&c->ids, ids, nids)) return;
    memcpy(c->keys + c->keys_n, s, n);
    uint32_t j = (uint32_t)h & (c->cap - 1);
    while (c->e[j].hash) j = (j + 1) & (c->cap - 1);
    c->e[j] = (struct bt_cache_ent){h, (uint32_t)c->keys_n, (uint32_t)n, (uint32_t)ids_off,
                                    (uint32_t)nids};
    c->keys_n += n;
    c->n++;
}

void bt_cache_free(struct bt_cache *c) {
    free(c->e);
    free(c->keys);
    free(c->ids.v);
    memset(c, 0, sizeof(*c));
}

/* ---- BPE ------------------------------------------------------------------------------- */
static int heap_push(struct bt_bpe_work *w, uint64_t x) {
    if (w->heap_n == w->heap_cap) {
        uint32_t nc = w->heap_cap ? 2 * w->heap_cap : 64;
        uint64_t *nh = realloc(w->heap, (size_t)nc * sizeof(*nh));
        if (!nh) return -1;
        w->heap = nh;
        w->heap_cap = nc;
    }
    uint32_t i = w->heap_n++;
    while (i > 0) {
        uint32_t p = (i - 1) / 2;
        if (w->heap[p] <= x) break;
        w->heap[i] = w->heap[p];
        i = p;
    }
    w->heap[i] = x;
    return 0;
}

static uint64_t heap_pop(struct bt_bpe_work *w) {
    uint64_t top = w->heap[0], x = w->heap[--w->heap_n];
    uint32_t i = 0, n = w->heap_n;
    for (;;) {
        uint32_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && w->heap[c + 1] < w->heap[c]) c++;
        if (x <= w->heap[c]) break;
        w->heap[i] = w->heap[c];
        i = c;
    }
    if (n) w->heap[i] = x;
    return top;
}

/* queue the pair starting at symbol i, if it is a merge */
static int push_pair(struct bt_bpe_work *w, const struct bt_pairmap *pm, int32_t i) {
    if (i < 0 || w->next[i] < 0) return 0;
    const struct bt_pair *p = bt_pairmap_get(pm, w->id[i], w->id[w->next[i]]);
    if (!p) return 0;
    return heap_push(w, (uint64_t)(uint32_t)p->rank << 32 | (uint32_t)i);
}

int bt_bpe_merge(struct bt_bpe_work *w, const struct bt_pairmap *pm, const int32_t *syms,
                 uint32_t n, struct bt_ivec *out) {
    if (n == 0) return 0;
    if (n == 1) return bt_ivec_push(out, syms[0]);
    if (n > w->cap) {
        uint32_t nc = w->cap ? w->cap : 64;
        while (nc < n) nc *= 2;
        int32_t *a = realloc(w->id, (size_t)nc * sizeof(*a));
        if (!a) return -1;
        w->id = a;
        a = realloc(w->prev, (size_t)nc * sizeof(*a));
        if (!a) return -1;
        w->prev = a;
        a = realloc(w->next, (size_t)nc * sizeof(*a));
        if (!a) return -1;
        w->next = a;
        w->cap = nc;
    }
    for (uint32_t i = 0; i < n; i++) {
        w->id[i] = syms[i];
        w->prev[i] = (int32_t)i - 1;
        w->next[i] = i + 1 < n ? (int32_t)i + 1 : -1;
    }
    w->heap_n = 0;
    for (uint32_t i = 0; i + 1 < n; i++)
        if (push_pair(w, pm, (int32_t)i)) return -1;
    while (w->heap_n) {
        uint64_t top = heap_pop(w);
        int32_t i = (int32_t)(uint32_t)top, rank = (int32_t)(top >> 32);
        if (w->id[i] < 0 || w->next[i] < 0) continue;
        int32_t j = w->next[i];
        const struct bt_pair *p = bt_pairmap_get(pm, w->id[i], w->id[j]);
        if (!p || p->rank != rank) continue; /* stale entry */
        w->id[i] = p->out;
        w->id[j] = -1;
        w->next[i] = w->next[j];
        if (w->next[j] >= 0) w->prev[w->next[j]] = i;
        if (push_pair(w, pm, w->prev[i]) || push_pair(w, pm, i)) return -1;
    }
    for (int32_t i = 0; i >= 0; i = w->next[i])
        if (bt_ivec_push(out, w->id[i])) return -1;
    return 0;
}

void bt_bpe_work_free(struct bt_bpe_work *w) {
    free(w->id);
    free(w->prev);
    free(w->next);
    free(w->heap);
    memset(w, 0, sizeof(*w));
}

/* ---- UTF-8 ------------------------------------------------------------------------------ */
size_t bt_utf8_valid_len(const unsigned char *s, size_t n) {
    unsigned c = s[0];
    if (c < 0x80) return 1;
    if (c < 0xC2) return 0; /* continuation byte or overlong 2-byte lead */
    if (c < 0xE0) return n >= 2 && (s[1] & 0xC0) == 0x80 ? 2 : 0;
    if (c < 0xF0) {
        if (n < 3 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80) return 0;
        if (c == 0xE0 && s[1] < 0xA0) return 0;  /* overlong */
        if (c == 0xED && s[1] >= 0xA0) return 0; /* surrogate */
        return 3;
    }
    if (c < 0xF5) {
        if (n < 4 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80 || (s[3] & 0xC0) != 0x80)
            return 0;
        if (c == 0xF0 && s[1] < 0x90) return 0;  /* overlong */
        if (c == 0xF4 && s[1] >= 0x90) return 0; /* > U+10FFFF */
        return 4;
    }
    return 0;
}

uint32_t bt_gpt2_byte_cp(unsigned b) {
    /* printable Latin-1 bytes map to themselves; the other 68 to U+0100.. in byte order */
    if ((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255)) return b;
    if (b <= 32) return 256 + b;                 /* 0..32   -> 256..288 */
    if (b <= 160) return 256 + 33 + (b - 127);   /* 127..160 -> 289..322 */
    return 256 + 33 + 34;                        /* 173     -> 323 */
}

size_t bt_utf8_put(uint32_t cp, char *d) {
    if (cp < 0x80) { d[0] = (char)cp; return 1; }
    if (cp < 0x800) {
        d[0] = (char)(0xC0 | (cp >> 6));
        d[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        d[0] = (char)(0xE0 | (cp >> 12));
        d[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        d[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    d[0] = (char)(0xF0 | (cp >> 18));
    d[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    d[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    d[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}
