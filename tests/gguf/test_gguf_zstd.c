/* test_gguf_zstd.c - "zstd" sub-command of test_gguf: compress = zstd round trips (bytes and
 * f32 values equal to the uncompressed file, byte-identical rewrites both ways), corrupted
 * frames / keys / truncations, bt.mtq key corruption, options, faults, concurrent gets. */
#define _GNU_SOURCE
#include "gguf_tests.h"
#include "../bt_test.h"

#include <pthread.h>
#include <unistd.h>
#include <zstd.h>

#define NX 4 /* extra compressible tensors added to the sample */

static void *xbuf[2 * NX]; /* their buffers (malloc) */
static int   nxbuf;        /* entries in xbuf */

/* the sample plus 32 x 512 F32 / F16 / TQ2_0 / MTQ tensors with values on a few levels */
static int zsample(struct sample *s) {
    static const char *names[NX] = {"zf32.weight", "zf16.weight", "ztq2.weight", "zmtq.weight"};
    static const uint32_t types[NX] = {BT_TYPE_F32, BT_TYPE_F16, BT_TYPE_TQ2_0, BT_TYPE_MTQ};
    uint64_t x = 12345;
    if (sample_build(s)) return -1;
    for (int k = 0; k < NX; k++) {
        struct bt_tensor *t = &s->t[s->n_t];
        memset(t, 0, sizeof(*t));
        t->name = t->src_name = names[k];
        t->fmt = bt_fmt(types[k]);
        if (types[k] == BT_TYPE_MTQ) { t->fmt.planes = 2; t->fmt.block = 256; }
        t->n_dims = 2;
        t->shape[0] = 32;
        t->shape[1] = 512;
        size_t n = bt_fmt_row_bytes(&t->fmt, 512) * 32;
        float *f = malloc(sizeof(float) * 32 * 512);
        uint8_t *d = malloc(n);
        xbuf[nxbuf++] = f;
        xbuf[nxbuf++] = d;
        if (!f || !d) return -1;
        for (int i = 0; i < 32 * 512; i++) {
            x ^= x << 13; x ^= x >> 7; x ^= x << 17;
            f[i] = (float)((int)(x % 5) - 2) * 0.125f;
        }
        if (types[k] == BT_TYPE_TQ2_0) {
            for (int b = 0; b < 64; b++) bt_tq2_0_quantize_ref(f + 256 * b, d + 66 * b);
        } else if (types[k] == BT_TYPE_MTQ) {
            size_t bb = bt_mtq_block_bytes(2, 256, 0);
            for (int b = 0; b < 64; b++) {
                int8_t codes[2 * 256];
                float a[2] = {0.5f, 0.125f};
                for (int i = 0; i < 512; i++) codes[i] = (int8_t)((int)(f[(b * 512 + i) % 16384] * 8) % 2);
                bt_mtq_pack_block(&t->fmt, codes, a, d + b * bb);
            }
        } else if (bt_from_f32(&t->fmt, f, d, 32 * 512) != BT_OK) {
            return -1;
        }
        if (bt_to_f32(&t->fmt, d, f, 32 * 512) != BT_OK) return -1; /* f: expected values */
        t->data = d;
        t->nbytes = n;
        s->f32[s->n_t++] = f;
    }
    return 0;
}

static int64_t index_of(struct rd *r, const char *name) {
    for (uint32_t i = 0; i < r->i->tensor_count(r->ctx); i++) {
        struct bt_tensor t;
        if (r->i->tensor_get(r->ctx, i, &t, NULL) == BT_OK && strcmp(t.name, name) == 0) return i;
    }
    return -1;
}

static int is_zstd(struct rd *r, const char *name) {
    char key[128];
    struct bt_kv tmp;
    snprintf(key, sizeof(key), "bt.zstd.%s", name);
    return find_kv(r, key, &tmp) != NULL;
}

/* offset of the k-th zstd frame of p (file order = order of the compressed tensors), size in *zn */
static size_t frame_at(const uint8_t *p, size_t n, int k, size_t *zn) {
    static const uint8_t magic[4] = {0x28, 0xb5, 0x2f, 0xfd};
    size_t pos = 0;
    for (;;) {
        const uint8_t *m = memmem(p + pos, n - pos, magic, 4);
        if (!m) { *zn = 0; return 0; }
        size_t off = (size_t)(m - p), fs = ZSTD_findFrameCompressedSize(m, n - off);
        if (ZSTD_isError(fs)) { pos = off + 1; continue; }
        if (k-- == 0) { *zn = fs; return off; }
        pos = off + fs;
    }
}

/* open path and get (+ release) every tensor. Returns 0 if all went fine (compressed tensors
 * must then hold ref's bytes), the status of a clean refusal (FORMAT/UNSUPPORTED/IO with a
 * message naming path and, if given, must), or 1 for anything else (also leaks). */
static int try_file(const struct bt_plugin *rp, const char *path, struct rd *ref, const char *must) {
    struct rd r;
    struct bt_err err = {0, ""};
    long live = th_live;
    int bad = 0;
    bt_status st = rd_open(rp, path, &r, &err);
    for (uint32_t i = 0; !st && i < r.i->tensor_count(r.ctx); i++) {
        struct bt_tensor t, e;
        if ((st = r.i->tensor_get(r.ctx, i, &t, &err))) break;
        int64_t j = index_of(ref, t.name);
        if (j >= 0 && is_zstd(&r, t.name) && ref->i->tensor_get(ref->ctx, (uint32_t)j, &e, NULL) == BT_OK &&
            (e.nbytes != t.nbytes || memcmp(e.data, t.data, t.nbytes) != 0)) {
            fprintf(stderr, "  %s: tensor '%s' accepted with wrong data\n", path, t.name);
            bad = 1;
        }
        r.i->release(r.ctx, i);
    }
    rd_close(&r);
    bad |= th_live != live;
    if (st)
        bad |= err.status != st || !strstr(err.msg, path) || (must && !strstr(err.msg, must)) ||
               (st != BT_E_FORMAT && st != BT_E_UNSUPPORTED && st != BT_E_IO);
    if (bad) fprintf(stderr, "  %s: status %d '%s' (want '%s')\n", path, st, err.msg, must ? must : "");
    return bad ? 1 : st;
}

/* ---- round trip --------------------------------------------------------------------------- */
static void check_values(const struct bt_plugin *rp, const struct sample *s, const char *plain,
                         const char *z) {
    struct rd a, b;
    struct bt_err err = {0, ""};
    CHECK_EQ(rd_open(rp, plain, &a, &err), BT_OK);
    CHECK_EQ(rd_open(rp, z, &b, &err), BT_OK);
    if (!a.ctx || !b.ctx) { fprintf(stderr, "%s\n", err.msg); rd_close(&a); rd_close(&b); return; }
    struct bt_kv tmp;
    const struct bt_kv *kv = find_kv(&b, "bt.compression", &tmp);
    CHECK(kv && kv->type == BT_KV_STRING && strcmp(kv->v.s, "zstd") == 0);
    CHECK(!find_kv(&a, "bt.compression", &tmp));
    kv = find_kv(&b, "bt.mtq.zmtq.weight", &tmp); /* MTQ keys stay */
    CHECK(kv && kv->n == 4 && memcmp(kv->v.arr, (uint32_t[]){2, 256, 0, 512}, 16) == 0);
    kv = find_kv(&b, "bt.zstd.zf32.weight", &tmp);
    CHECK(kv && kv->arr_type == BT_KV_U64 && kv->n == 7 &&
          memcmp(kv->v.arr, (uint64_t[]){0, 2, 512, 32, 1, 1, 65536}, 56) == 0);
    uint32_t nz = 0, n = b.i->tensor_count(b.ctx);
    CHECK_EQ(n, s->n_t);
    for (uint32_t i = 0; i < n && i < a.i->tensor_count(a.ctx); i++) {
        struct bt_tensor ta, tb;
        long live = th_live;
        CHECK_EQ(a.i->tensor_get(a.ctx, i, &ta, &err), BT_OK);
        CHECK_EQ(b.i->tensor_get(b.ctx, i, &tb, &err), BT_OK);
        CHECK(strcmp(ta.name, tb.name) == 0 && memcmp(&ta.fmt, &tb.fmt, sizeof(ta.fmt)) == 0);
        CHECK(ta.n_dims == tb.n_dims && memcmp(ta.shape, tb.shape, sizeof(ta.shape)) == 0);
        CHECK(ta.nbytes == tb.nbytes && memcmp(ta.data, tb.data, ta.nbytes) == 0);
        int z1 = is_zstd(&b, tb.name);
        nz += z1;
        CHECK_EQ(z1 ? tb.data != ta.data : 1, 1);
        if (s->f32[i] && !(s->t[i].flags & BT_TENSOR_ROPE_HALVES)) { /* host->to_f32 / bt_to_f32 */
            int64_t cnt = (int64_t)(tb.nbytes / bt_fmt_row_bytes(&tb.fmt, tb.shape[tb.n_dims - 1])) *
                          tb.shape[tb.n_dims - 1];
            float *x = malloc(sizeof(float) * cnt);
            CHECK_EQ(th_host.to_f32(&tb.fmt, tb.data, x, cnt), BT_OK);
            CHECK(memcmp(x, s->f32[i], sizeof(float) * cnt) == 0);
            free(x);
        }
        b.i->release(b.ctx, i); /* frees the decompressed copy; a new get decompresses again */
        CHECK_EQ(th_live, live);
        CHECK_EQ(b.i->tensor_get(b.ctx, i, &tb, &err), BT_OK);
        CHECK(memcmp(ta.data, tb.data, ta.nbytes) == 0);
        fprintf(stderr, "%s%s%s", i ? " " : "zstd: compressed:", z1 ? tb.name : "", i + 1 == n ? "\n" : "");
    }
    const char *must_z[] = {"zf32.weight", "zf16.weight", "ztq2.weight", "zmtq.weight", "tq2.weight"};
    const char *must_raw[] = {"f32.weight", "i8.tensor", "i32.tensor"}; /* tiny: no gain */
    for (size_t k = 0; k < sizeof(must_z) / sizeof(*must_z); k++) CHECK(is_zstd(&b, must_z[k]));
    for (size_t k = 0; k < sizeof(must_raw) / sizeof(*must_raw); k++) CHECK(!is_zstd(&b, must_raw[k]));
    CHECK_EQ(b.i->kv_count(b.ctx), a.i->kv_count(a.ctx) + 1 + nz);
    rd_close(&a);
    rd_close(&b); /* frees the copies still held */
    CHECK_EQ(th_live, 0);
}

/* read src and write it to dst with options o; BT_OK or the failing status */
static bt_status rewrite(const struct bt_plugin *w, const struct bt_plugin *rp, const char *src,
                         const char *dst, const struct bt_optset *o) {
    struct rd r;
    struct bt_err err = {0, ""};
    bt_status st = rd_open(rp, src, &r, &err);
    if (st) return st;
    const struct bt_writer_i *wi = w->iface;
    uint32_t nkv = r.i->kv_count(r.ctx), nt = r.i->tensor_count(r.ctx);
    struct bt_kv *kvs = calloc(nkv, sizeof(*kvs));
    for (uint32_t i = 0; i < nkv; i++) r.i->kv_get(r.ctx, i, &kvs[i]);
    void *ctx = calloc(1, w->ctx_size);
    st = wi->open(ctx, &th_host, o, dst, kvs, nkv, nt, &err);
    if (st) { free(ctx); ctx = NULL; }
    for (uint32_t i = 0; i < nt && !st; i++) {
        struct bt_tensor t;
        if (!(st = r.i->tensor_get(r.ctx, i, &t, &err))) st = wi->add(ctx, &t, &err);
        r.i->release(r.ctx, i);
    }
    if (!st) st = wi->finish(ctx, &err);
    if (st) fprintf(stderr, "  rewrite %s: %s\n", src, err.msg);
    if (ctx) wi->close(ctx);
    free(ctx);
    free(kvs);
    rd_close(&r);
    return st;
}

static int same_file(const char *a, const char *b) {
    size_t na = 0, nb = 0;
    char *pa = slurp(a, &na), *pb = slurp(b, &nb);
    int same = pa && pb && na == nb && memcmp(pa, pb, na) == 0;
    free(pa);
    free(pb);
    return same;
}

static void check_rewrites(const struct bt_plugin *w, const struct bt_plugin *rp, const char *plain,
                           const char *z, const char *dir) {
    char out[1024];
    struct bt_optset on = {32, "none", 0}, oz = {32, "zstd", 3};
    snprintf(out, sizeof(out), "%s/rewrite.gguf", dir);
    CHECK_EQ(rewrite(w, rp, z, out, &on), BT_OK); /* decompressed rewrite == direct plain write */
    CHECK(same_file(out, plain));
    CHECK_EQ(rewrite(w, rp, z, out, &oz), BT_OK); /* recompression is deterministic */
    CHECK(same_file(out, z));
    CHECK_EQ(rewrite(w, rp, plain, out, &oz), BT_OK);
    CHECK(same_file(out, z));
    unlink(out);
}

/* ---- corruption ----------------------------------------------------------------------------- */
/* flip every byte of the frame of tensor name (the k-th compressed one) three ways */
static void check_flips(const struct bt_plugin *rp, struct rd *ref, const char *z, const char *c,
                        int k, const char *name) {
    size_t n = 0, zn = 0;
    uint8_t *p = (uint8_t *)slurp(z, &n);
    size_t off = p ? frame_at(p, n, k, &zn) : 0;
    CHECK(p && zn > 0);
    static const uint8_t pat[] = {0xff, 0x01, 0x80};
    int bad = 0, rej = 0, ok = 0;
    for (size_t i = 0; i < zn; i++)
        for (size_t j = 0; j < sizeof(pat); j++) {
            p[off + i] ^= pat[j];
            spit(c, p, n);
            p[off + i] ^= pat[j];
            int r = try_file(rp, c, ref, name);
            bad += r == 1;
            rej += r < 0;
            ok += r == 0;
        }
    fprintf(stderr, "zstd: %zu-byte frame of '%s': %d flips rejected, %d harmless, %d bad\n", zn,
            name, rej, ok, bad);
    CHECK_EQ(bad, 0);
    CHECK(rej >= (int)(zn * 3 * 95 / 100)); /* the checksum catches (almost) everything */
    /* truncations from just before the first frame on: refused until the last blob is whole */
    size_t first = frame_at(p, n, 0, &zn), last = 0, lz = 0;
    for (int q = 0; frame_at(p, n, q, &zn) && zn; q++) { last = frame_at(p, n, q, &lz); }
    size_t need = last + lz;
    int wrong = 0;
    bad = 0;
    for (size_t len = first - 16; len <= n; len += len + 64 > need && len < need + 8 ? 1 : 7) {
        spit(c, p, len);
        int r = try_file(rp, c, ref, NULL);
        bad += r == 1;
        wrong += (r == BT_E_FORMAT) != (len < need);
    }
    CHECK_EQ(bad, 0);
    CHECK_EQ(wrong, 0);
    /* random garbage anywhere in the file */
    uint64_t x = 88172645463325252ull;
    bad = 0;
    for (int it = 0; it < 1500; it++) {
        uint8_t *q = malloc(n);
        memcpy(q, p, n);
        for (int j = 0, m = 1 + (int)(x % 4); j < m; j++) {
            x ^= x << 13; x ^= x >> 7; x ^= x << 17;
            q[(x >> 8) % n] = (uint8_t)(x >> 40);
        }
        spit(c, q, n);
        free(q);
        bad += try_file(rp, c, ref, NULL) == 1;
    }
    CHECK_EQ(bad, 0);
    free(p);
}

/* write v (sz bytes, little-endian) at off bytes after the first occurrence of key in src,
 * into dst; 0 on success */
static int patch(const char *src, const char *dst, const char *key, size_t off, uint64_t v, int sz) {
    size_t n = 0;
    uint8_t *p = (uint8_t *)slurp(src, &n);
    uint8_t *m = p ? memmem(p, n, key, strlen(key)) : NULL;
    if (!m || (size_t)(m - p) + strlen(key) + off + (size_t)sz > n) { free(p); return -1; }
    for (int k = 0; k < sz; k++) m[strlen(key) + off + (size_t)k] = (uint8_t)(v >> (8 * k));
    int rc = spit(dst, p, n);
    free(p);
    return rc;
}

/* One key corruption. After an array key: u32 type @0, u32 element type @4, u64 count @8,
 * elements @16; after a string key: u32 type @0, u64 length @4, bytes @12. */
struct kcase {
    const char *key;  /* (prefix of the) key to find */
    size_t      off;  /* byte offset after it */
    uint64_t    v;    /* value written */
    int         sz;   /* bytes written */
    bt_status   want; /* expected status */
    const char *must; /* text the message must contain (besides the path), or NULL */
};

#define ZK "bt.zstd.zf32.weight"
#define U64AT(i) (16 + 8 * (i))
#define U32AT(i) (16 + 4 * (i))

static void check_keys(const struct bt_plugin *rp, struct rd *ref, const char *plain,
                       const char *z, const char *c) {
    static const struct kcase zc[] = { /* bt.zstd = [ggml, n_dims, ne0..3, raw] = [0,2,512,32,1,1,65536] */
        {ZK, U64AT(6), 65537, 8, BT_E_FORMAT, "zf32.weight"},      /* wrong raw size */
        {ZK, U64AT(6), 65535, 8, BT_E_FORMAT, "zf32.weight"},
        {ZK, U64AT(6), 0, 8, BT_E_FORMAT, "zf32.weight"},
        {ZK, U64AT(6), 1ull << 62, 8, BT_E_FORMAT, "zf32.weight"},
        {ZK, U64AT(6), 65536ull * 31 / 32, 8, BT_E_FORMAT, "zf32.weight"},
        {ZK, U64AT(0), 1, 8, BT_E_FORMAT, "zf32.weight"},          /* f16: size mismatch */
        {ZK, U64AT(0), 3, 8, BT_E_FORMAT, "zf32.weight"},          /* removed q4_1 */
        {ZK, U64AT(0), 99, 8, BT_E_FORMAT, "zf32.weight"},
        {ZK, U64AT(1), 0, 8, BT_E_FORMAT, "zf32.weight"},          /* n_dims 0 / 5 */
        {ZK, U64AT(1), 5, 8, BT_E_FORMAT, "zf32.weight"},
        {ZK, U64AT(4), 0, 8, BT_E_FORMAT, "zf32.weight"},          /* unused dim != 1 */
        {ZK, U64AT(2), 0, 8, BT_E_FORMAT, "zf32.weight"},
        {"bt.zstd.ztq2.weight", U64AT(2), 500, 8, BT_E_FORMAT, "ztq2.weight"}, /* part blocks */
        {ZK, 4, BT_KV_U32, 1, BT_E_FORMAT, NULL},                  /* u32[] instead of u64[] */
        {ZK, 8, 6, 1, BT_E_FORMAT, NULL},                          /* 6 elements */
        {"bt.zstd.zf3", 0, '3', 1, BT_E_FORMAT, "bt.zstd.zf33.weight"}, /* no such tensor */
        {"bt.compression", 15, 'x', 1, BT_E_UNSUPPORTED, "zstx"},  /* "zstd" -> "zstx" */
        {"bt.compressio", 0, 'X', 1, BT_E_FORMAT, "bt.compression"}, /* key missing */
        {"bt.mtq.zmtq.weight", U32AT(0), 3, 4, BT_E_FORMAT, "zmtq.weight"}, /* MTQ of a zstd blob */
    };
    static const struct kcase mc[] = { /* bt.mtq.mtq.weight = [planes, block, layout, cols] = [2,64,0,256] */
        {"bt.mtq.mtq.weight", U32AT(0), 0, 4, BT_E_FORMAT, "mtq.weight"},
        {"bt.mtq.mtq.weight", U32AT(0), 9, 4, BT_E_FORMAT, "mtq.weight"},
        {"bt.mtq.mtq.weight", U32AT(0), 3, 4, BT_E_FORMAT, "mtq.weight"},
        {"bt.mtq.mtq.weight", U32AT(1), 100, 4, BT_E_FORMAT, "mtq.weight"},
        {"bt.mtq.mtq.weight", U32AT(1), 128, 4, BT_E_FORMAT, "mtq.weight"},
        {"bt.mtq.mtq.weight", U32AT(2), 2, 4, BT_E_FORMAT, "mtq.weight"},
        {"bt.mtq.mtq.weight", U32AT(3), 255, 4, BT_E_FORMAT, "mtq.weight"},
        {"bt.mtq.mtq.weight", U32AT(3), 128, 4, BT_E_FORMAT, "mtq.weight"},
        {"bt.mtq.mtq.weight", U32AT(3), 512, 4, BT_E_FORMAT, "mtq.weight"},
        {"bt.mtq.mtq_c.weight", U32AT(3), 0, 4, BT_E_FORMAT, "mtq_c.weight"},
        {"bt.mtq.mtq.weight", 4, BT_KV_I32, 1, BT_E_FORMAT, "bt.mtq.mtq.weight"},
        {"bt.mtq.mtq.weight", 8, 3, 1, BT_E_FORMAT, NULL},
        {"bt.mtq.mtq.weig", 0, 'X', 1, BT_E_FORMAT, "bt.mtq.mtq.weigXt"},
    };
    for (int set = 0; set < 2; set++) {
        const struct kcase *kc = set ? mc : zc;
        size_t nk = set ? sizeof(mc) / sizeof(*mc) : sizeof(zc) / sizeof(*zc);
        for (size_t k = 0; k < nk; k++) {
            const struct kcase *q = &kc[k];
            CHECK_EQ(patch(set ? plain : z, c, q->key, q->off, q->v, q->sz), 0);
            int r = try_file(rp, c, ref, q->must);
            CHECK_EQ(r, q->want);
            if (r != q->want) fprintf(stderr, "  key case %d/%zu (%s) gave %d\n", set, k, q->key, r);
        }
    }
    /* truncated inside the (uncompressed) MTQ blobs */
    struct rd r;
    struct bt_err err = {0, ""};
    size_t n = 0;
    char *p = slurp(plain, &n);
    for (int k = 0; p && k < 2; k++) {
        const char *nm = k ? "mtq_c.weight" : "mtq.weight";
        struct bt_tensor t;
        int64_t j = index_of(ref, nm);
        CHECK(j >= 0 && ref->i->tensor_get(ref->ctx, (uint32_t)j, &t, NULL) == BT_OK);
        const char *at = j >= 0 ? memmem(p, n, t.data, t.nbytes) : NULL;
        CHECK(at != NULL);
        if (!at) continue;
        spit(c, p, (size_t)(at - p) + t.nbytes / 2);
        CHECK_EQ(rd_open(rp, c, &r, &err), BT_E_FORMAT);
        CHECK(strstr(err.msg, nm) && strstr(err.msg, c));
    }
    free(p);
}

/* ---- options, threads, faults ------------------------------------------------------------- */
static void check_options(const struct bt_plugin *w, const struct sample *s, const char *dir) {
    char out[1024];
    struct bt_err err = {0, ""};
    struct bt_optset bad[3] = {{32, "lz4", 0}, {32, "zstd", 23}, {32, "zstd", -1}};
    snprintf(out, sizeof(out), "%s/opt.gguf", dir);
    for (int k = 0; k < 3; k++) {
        CHECK_EQ(write_opts(w, s, out, &bad[k], &err), BT_E_INVAL);
        CHECK(strstr(err.msg, out) && strstr(err.msg, "compress"));
    }
    /* level 1 and 19 work and read back like level 3 (checked by the callers' files) */
    struct bt_optset lv[2] = {{32, "zstd", 1}, {32, "zstd", 19}};
    for (int k = 0; k < 2; k++) CHECK_EQ(write_opts(w, s, out, &lv[k], &err), BT_OK);
    unlink(out);
}

/* several threads get the same compressed tensor at once: one copy, the right bytes */
struct tget {
    struct rd       *r;    /* the reader */
    uint32_t         idx;  /* tensor index */
    const void      *data; /* out: data pointer got */
    bt_status        st;   /* out: status */
};

static void *tget_run(void *arg) {
    struct tget *g = arg;
    struct bt_tensor t;
    struct bt_err err = {0, ""};
    g->st = g->r->i->tensor_get(g->r->ctx, g->idx, &t, &err);
    g->data = t.data;
    return NULL;
}

static void check_threads(const struct bt_plugin *rp, struct rd *ref, const char *z) {
    struct rd r;
    struct bt_err err = {0, ""};
    CHECK_EQ(rd_open(rp, z, &r, &err), BT_OK);
    if (!r.ctx) return;
    int64_t j = index_of(&r, "zf16.weight"), jr = index_of(ref, "zf16.weight");
    struct bt_tensor e;
    CHECK(j >= 0 && jr >= 0 && ref->i->tensor_get(ref->ctx, (uint32_t)jr, &e, NULL) == BT_OK);
    for (int round = 0; round < 20 && j >= 0; round++) {
        struct tget g[4];
        pthread_t th[4];
        for (int k = 0; k < 4; k++) {
            g[k] = (struct tget){&r, (uint32_t)j, NULL, -1};
            pthread_create(&th[k], NULL, tget_run, &g[k]);
        }
        for (int k = 0; k < 4; k++) pthread_join(th[k], NULL);
        for (int k = 0; k < 4; k++)
            CHECK(g[k].st == BT_OK && g[k].data == g[0].data && memcmp(g[k].data, e.data, e.nbytes) == 0);
        r.i->release(r.ctx, (uint32_t)j);
    }
    rd_close(&r);
}

static void check_faults(const struct bt_plugin *w, const struct bt_plugin *rp,
                         const struct sample *s, const char *dir) {
    char out[1024];
    struct bt_optset oz = {32, "zstd", 3};
    snprintf(out, sizeof(out), "%s/fault.gguf", dir);
    int ok_w = 0, ok_r = 0, bad = 0;
    for (long n = 0; n < 4000 && !(ok_w && ok_r); n++) {
        struct bt_err err = {0, ""};
        bt_status st;
        th_calls = 0;
        th_fail_at = n;
        if (!ok_w) {
            st = write_opts(w, s, out, &oz, &err);
            ok_w = st == BT_OK;
            bad += (!ok_w && (st != BT_E_NOMEM || dir_entries(dir) != 0)) || th_live != 0;
        } else {
            struct rd r;
            st = rd_open(rp, out, &r, &err);
            for (uint32_t i = 0; !st && i < r.i->tensor_count(r.ctx); i++) {
                struct bt_tensor t;
                st = r.i->tensor_get(r.ctx, i, &t, &err);
            }
            rd_close(&r);
            ok_r = st == BT_OK;
            bad += (!ok_r && (st != BT_E_NOMEM || !strstr(err.msg, out))) || th_live != 0;
        }
        th_fail_at = -1;
        if (bad) { fprintf(stderr, "  fault %ld: %d '%s', %ld live\n", n, st, err.msg, th_live); break; }
    }
    CHECK(ok_w && ok_r);
    CHECK_EQ(bad, 0);
    unlink(out);
}

int run_zstd(const struct bt_plugin *w, const struct bt_plugin *rp, const char *dir) {
    struct sample s;
    char plain[1024], z[1024], c[1024];
    struct bt_err err = {0, ""};
    struct bt_optset on = {32, "none", 0}, oz = {32, "zstd", 3};
    CHECK_EQ(zsample(&s), 0);
    CHECK_EQ(dir_entries(dir), 0);
    snprintf(plain, sizeof(plain), "%s/plain.gguf", dir);
    snprintf(z, sizeof(z), "%s/z.gguf", dir);
    snprintf(c, sizeof(c), "%s/corrupt.gguf", dir);
    CHECK_EQ(write_opts(w, &s, plain, &on, &err), BT_OK);
    CHECK_EQ(write_opts(w, &s, z, &oz, &err), BT_OK);
    if (err.status) { fprintf(stderr, "%s\n", err.msg); return 1; }
    size_t np = 0, nz = 0;
    free(slurp(plain, &np));
    free(slurp(z, &nz));
    fprintf(stderr, "zstd: sample %zu -> %zu bytes\n", np, nz);
    CHECK(nz < np * 3 / 4);
    check_values(rp, &s, plain, z);
    check_rewrites(w, rp, plain, z, dir);
    struct rd ref;
    CHECK_EQ(rd_open(rp, plain, &ref, &err), BT_OK);
    if (ref.ctx) {
        struct rd zr;
        int k = 0, kz = -1;
        CHECK_EQ(rd_open(rp, z, &zr, &err), BT_OK);
        for (uint32_t i = 0; zr.ctx && i < zr.i->tensor_count(zr.ctx); i++) { /* k of tq2.weight */
            struct bt_tensor t;
            zr.i->tensor_get(zr.ctx, i, &t, NULL);
            if (strcmp(t.name, "tq2.weight") == 0 && is_zstd(&zr, t.name)) kz = k;
            k += is_zstd(&zr, t.name);
            zr.i->release(zr.ctx, i);
        }
        rd_close(&zr);
        CHECK(kz >= 0);
        if (kz >= 0) check_flips(rp, &ref, z, c, kz, "tq2.weight");
        check_keys(rp, &ref, plain, z, c);
        check_threads(rp, &ref, z);
        rd_close(&ref);
    }
    unlink(c);
    unlink(plain);
    unlink(z);
    check_options(w, &s, dir);
    check_faults(w, rp, &s, dir);
    CHECK_EQ(dir_entries(dir), 0);
    CHECK_EQ(th_live, 0);
    sample_free(&s);
    for (int i = 0; i < nxbuf; i++) free(xbuf[i]);
    TEST_DONE();
}
