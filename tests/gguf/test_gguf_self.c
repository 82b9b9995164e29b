/* test_gguf_self.c - "self" sub-command of test_gguf: writer -> reader round trip, byte-exact
 * rewrite, truncated/corrupted files, writer failures (bad input, missing dir, write errors,
 * close without finish) and allocation fault injection with leak counting. */
#define _GNU_SOURCE
#include "gguf_tests.h"
#include "../bt_test.h"

#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

char *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *p = malloc(sz > 0 ? (size_t)sz : 1);
    *n = p ? fread(p, 1, (size_t)sz, f) : 0;
    fclose(f);
    return p;
}

int spit(const char *path, const void *p, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t w = n ? fwrite(p, 1, n, f) : 0;
    return fclose(f) == 0 && w == n ? 0 : -1;
}

const struct bt_kv *find_kv(struct rd *r, const char *key, struct bt_kv *tmp) {
    for (uint32_t i = 0; i < r->i->kv_count(r->ctx); i++) {
        r->i->kv_get(r->ctx, i, tmp);
        if (strcmp(tmp->key, key) == 0) return tmp;
    }
    return NULL;
}

static size_t elem_size(uint32_t t) {
    switch (t) {
    case BT_KV_U8: case BT_KV_I8: case BT_KV_BOOL: return 1;
    case BT_KV_U16: case BT_KV_I16: return 2;
    case BT_KV_U32: case BT_KV_I32: case BT_KV_F32: return 4;
    case BT_KV_U64: case BT_KV_I64: case BT_KV_F64: return 8;
    default: return 0;
    }
}

static int kv_equal(const struct bt_kv *a, const struct bt_kv *b) {
    if (strcmp(a->key, b->key) || a->type != b->type) return 0;
    if (a->type == BT_KV_STRING) return a->n == b->n && memcmp(a->v.s, b->v.s, a->n) == 0;
    if (a->type == BT_KV_F32) return (float)a->v.f == (float)b->v.f;
    if (a->type == BT_KV_F64) return a->v.f == b->v.f;
    if (a->type != BT_KV_ARRAY) return a->v.u == b->v.u;
    if (a->arr_type != b->arr_type || a->n != b->n) return 0;
    for (uint64_t i = 0; a->arr_type == BT_KV_STRING && i < a->n; i++)
        if (strcmp(((const char *const *)a->v.arr)[i], ((const char *const *)b->v.arr)[i])) return 0;
    size_t es = elem_size(a->arr_type);
    return !es || memcmp(a->v.arr, b->v.arr, (size_t)(es * a->n)) == 0;
}

/* expected GGUF bytes of sample tensor t: rope rows permuted as in formats.md 1.6 */
static void expect_bytes(const struct bt_tensor *t, const struct sample *s, uint8_t *out) {
    if (!(t->flags & BT_TENSOR_ROPE_HALVES)) { memcpy(out, t->data, t->nbytes); return; }
    int64_t rows = t->n_dims == 1 ? t->shape[0] : t->shape[0], nh = strstr(t->name, "attn_k") ? 2 : 4;
    size_t rsz = t->nbytes / rows;
    int64_t hd = rows / nh;
    (void)s;
    for (int64_t h = 0; h < nh; h++)
        for (int64_t r = 0; r < hd; r++) { /* out row h*hd + r <- (r odd: second half) */
            int64_t src = h * hd + (r % 2) * (hd / 2) + r / 2;
            memcpy(out + (h * hd + r) * rsz, (const uint8_t *)t->data + src * rsz, rsz);
        }
}

/* walk every tensor and KV of an opened reader, touching all bytes (for ASan / crashes) */
static int touch_all(struct rd *r) {
    unsigned sum = 0;
    struct bt_err err = {0, ""};
    for (uint32_t i = 0; i < r->i->tensor_count(r->ctx); i++) {
        struct bt_tensor t;
        if (r->i->tensor_get(r->ctx, i, &t, &err)) return -1;
        int64_t rows = 1;
        for (uint32_t d = 0; d + 1 < t.n_dims; d++) rows *= t.shape[d];
        if (t.n_dims && rows * (int64_t)bt_fmt_row_bytes(&t.fmt, t.shape[t.n_dims - 1]) != (int64_t)t.nbytes
            && t.shape[t.n_dims - 1] != 0)
            return -2;
        for (uint64_t k = 0; k < t.nbytes; k++) sum += ((const uint8_t *)t.data)[k];
    }
    for (uint32_t i = 0; i < r->i->kv_count(r->ctx); i++) {
        struct bt_kv kv;
        r->i->kv_get(r->ctx, i, &kv);
        sum += (unsigned)strlen(kv.key);
        if (kv.type == BT_KV_STRING) sum += (unsigned)strlen(kv.v.s);
        for (uint64_t k = 0; kv.type == BT_KV_ARRAY && kv.arr_type == BT_KV_STRING && k < kv.n; k++)
            sum += (unsigned)strlen(((const char *const *)kv.v.arr)[k]);
    }
    return (int)(sum & 0);
}

/* ---- round trip ----------------------------------------------------------------------------- */
static void check_roundtrip(const struct bt_plugin *w, const struct bt_plugin *rp,
                            const struct sample *s, const char *dir) {
    char a[1024], b[1024];
    struct bt_err err = {0, ""};
    struct rd r;
    snprintf(a, sizeof(a), "%s/rt_a.gguf", dir);
    snprintf(b, sizeof(b), "%s/rt_b.gguf", dir);
    CHECK_EQ(write_sample(w, s, a, 32, &err), BT_OK);
    CHECK_EQ(((const struct bt_reader_i *)rp->iface)->probe(a), 100);
    CHECK_EQ(((const struct bt_reader_i *)rp->iface)->probe(__FILE__), 0);
    CHECK_EQ(rd_open(rp, a, &r, &err), BT_OK);
    if (!r.ctx) { fprintf(stderr, "%s\n", err.msg); return; }
    CHECK_EQ(r.i->kv_count(r.ctx), s->n_kv + 5); /* + alignment, qver, ftype, 2 x bt.mtq */
    struct bt_kv tmp;
    for (uint32_t i = 0; i < s->n_kv; i++) {
        const struct bt_kv *kv = find_kv(&r, s->kv[i].key, &tmp);
        CHECK(kv && kv_equal(kv, &s->kv[i]));
        if (!kv || !kv_equal(kv, &s->kv[i])) fprintf(stderr, "  kv %s differs\n", s->kv[i].key);
    }
    const struct bt_kv *kv = find_kv(&r, "general.alignment", &tmp);
    CHECK(kv && kv->type == BT_KV_U32 && kv->v.u == 32);
    kv = find_kv(&r, "general.quantization_version", &tmp);
    CHECK(kv && kv->type == BT_KV_U32 && kv->v.u == 2);
    kv = find_kv(&r, "general.file_type", &tmp);
    CHECK(kv && kv->type == BT_KV_U32 && kv->v.u == 37); /* majority of 2-D tensors is TQ2_0 */
    kv = find_kv(&r, "bt.mtq.mtq_c.weight", &tmp);
    CHECK(kv && kv->type == BT_KV_ARRAY && kv->arr_type == BT_KV_U32 && kv->n == 4 &&
          memcmp(kv->v.arr, (uint32_t[]){3, 128, 1, 256}, 16) == 0);
    CHECK_EQ(r.i->tensor_count(r.ctx), s->n_t);
    for (uint32_t i = 0; i < s->n_t && i < r.i->tensor_count(r.ctx); i++) {
        struct bt_tensor t;
        const struct bt_tensor *e = &s->t[i];
        CHECK_EQ(r.i->tensor_get(r.ctx, i, &t, &err), BT_OK);
        CHECK(strcmp(t.name, e->name) == 0 && strcmp(t.src_name, e->name) == 0);
        CHECK(memcmp(&t.fmt, &e->fmt, sizeof(t.fmt)) == 0);
        CHECK(t.n_dims == e->n_dims && memcmp(t.shape, e->shape, sizeof(t.shape)) == 0);
        CHECK_EQ(t.nbytes, e->nbytes);
        uint8_t *x = malloc(e->nbytes);
        expect_bytes(e, s, x);
        CHECK(t.nbytes == e->nbytes && memcmp(t.data, x, e->nbytes) == 0);
        r.i->release(r.ctx, i); /* pages dropped; data must refault identically */
        CHECK(memcmp(t.data, x, e->nbytes) == 0);
        free(x);
    }
    /* reader -> writer: the rewrite must be byte-identical */
    const struct bt_writer_i *wi = w->iface;
    uint32_t nkv = r.i->kv_count(r.ctx), nt = r.i->tensor_count(r.ctx);
    struct bt_kv *kvs = calloc(nkv, sizeof(*kvs));
    for (uint32_t i = 0; i < nkv; i++) r.i->kv_get(r.ctx, i, &kvs[i]);
    void *ctx = calloc(1, w->ctx_size);
    struct bt_optset o = {32, NULL, 0};
    bt_status st = wi->open(ctx, &th_host, &o, b, kvs, nkv, nt, &err);
    for (uint32_t i = 0; i < nt && !st; i++) {
        struct bt_tensor t;
        st = r.i->tensor_get(r.ctx, i, &t, &err);
        if (!st) st = wi->add(ctx, &t, &err);
    }
    if (!st) st = wi->finish(ctx, &err);
    CHECK_EQ(st, BT_OK);
    wi->close(ctx);
    free(ctx);
    free(kvs);
    rd_close(&r);
    size_t na = 0, nb = 0;
    char *pa = slurp(a, &na), *pb = slurp(b, &nb);
    CHECK(pa && pb && na == nb && memcmp(pa, pb, na) == 0);
    free(pa);
    free(pb);
    unlink(b);
}

/* ---- corrupt inputs ----------------------------------------------------------------------------- */
/* open a corrupted file: must fail with a message naming it, or succeed on a still-valid file */
static int open_corrupt(const struct bt_plugin *rp, const char *path, int *failed) {
    struct rd r;
    struct bt_err err = {0, ""};
    long live = th_live;
    bt_status st = rd_open(rp, path, &r, &err);
    int bad = 0;
    *failed = st != BT_OK;
    if (st == BT_OK) {
        bad |= touch_all(&r) != 0;
        rd_close(&r);
    } else {
        bad |= err.status != st || !strstr(err.msg, path) ||
               (st != BT_E_FORMAT && st != BT_E_UNSUPPORTED && st != BT_E_IO);
        if (bad) fprintf(stderr, "  status %d, msg '%s'\n", st, err.msg);
    }
    bad |= th_live != live;
    return bad;
}

static void check_corrupt(const struct bt_plugin *rp, const struct sample *s, const char *dir) {
    char a[1024], c[1024];
    snprintf(a, sizeof(a), "%s/rt_a.gguf", dir);
    snprintf(c, sizeof(c), "%s/corrupt.gguf", dir);
    size_t n = 0;
    char *p = slurp(a, &n);
    if (!p) { CHECK(0); return; }
    uint64_t data = 0;
    for (uint32_t i = 0; i < s->n_t; i++) data += (s->t[i].nbytes + 31) / 32 * 32;
    const struct bt_tensor *last = &s->t[s->n_t - 1];
    uint64_t start = n - data, need = n - ((last->nbytes + 31) / 32 * 32 - last->nbytes);
    int bad = 0, wrong = 0, failed;
    for (size_t len = 0; len < n; len += len < start + 64 ? 1 : 37) { /* header: every offset */
        spit(c, p, len);
        bad += open_corrupt(rp, c, &failed);
        wrong += failed != (len < need);
    }
    CHECK_EQ(bad, 0);
    CHECK_EQ(wrong, 0);
    /* byte flips over the whole header and the first bytes of data */
    static const uint8_t pat[] = {0xff, 0x01, 0x80};
    int nfail = 0, nok = 0;
    bad = 0;
    spit(c, p, n);
    FILE *f = fopen(c, "r+b");
    for (size_t off = 0; f && off < start + 64; off++)
        for (size_t k = 0; k < sizeof(pat); k++) {
            uint8_t v = (uint8_t)p[off] ^ pat[k];
            fseek(f, (long)off, SEEK_SET);
            fwrite(&v, 1, 1, f);
            fflush(f);
            bad += open_corrupt(rp, c, &failed);
            nfail += failed;
            nok += !failed;
            fseek(f, (long)off, SEEK_SET);
            fwrite(&p[off], 1, 1, f);
            fflush(f);
        }
    if (f) fclose(f);
    CHECK_EQ(bad, 0);
    CHECK(nfail > 1000 && nok > 0);
    fprintf(stderr, "corrupt: %zu-byte file truncated, %d flips rejected, %d accepted (still valid)\n", n,
            nfail, nok);
    /* random multi-byte garbage over the header region */
    uint64_t x = 88172645463325252ull;
    bad = 0;
    for (int it = 0; it < 3000; it++) {
        char *q = malloc(n);
        memcpy(q, p, n);
        int k = 1 + (int)(x % 4);
        for (int j = 0; j < k; j++) {
            x ^= x << 13; x ^= x >> 7; x ^= x << 17;
            q[(x >> 8) % (start + 16)] = (char)(x >> 40);
        }
        spit(c, q, n);
        free(q);
        bad += open_corrupt(rp, c, &failed);
    }
    CHECK_EQ(bad, 0);
    /* versions: 2 is accepted, 1 and 4 refused */
    struct rd r;
    struct bt_err err = {0, ""};
    for (uint8_t ver = 1; ver <= 4; ver++) {
        p[4] = (char)ver;
        spit(c, p, n);
        bt_status st = rd_open(rp, c, &r, &err);
        CHECK_EQ(st == BT_OK, ver == 2 || ver == 3);
        if (st == BT_OK) rd_close(&r);
    }
    p[4] = 3;
    /* an empty file, a directory, a missing file */
    spit(c, p, 0);
    CHECK_EQ(rd_open(rp, c, &r, &err), BT_E_FORMAT);
    CHECK_EQ(rd_open(rp, dir, &r, &err), BT_E_IO);
    CHECK_EQ(rd_open(rp, "/nonexistent/x.gguf", &r, &err), BT_E_IO);
    CHECK(strstr(err.msg, "/nonexistent/x.gguf") != NULL);
    unlink(c);
    free(p);
}

/* ---- writer failures ------------------------------------------------------------------------- */
/* add a broken variant of tensor t; the add must fail naming the tensor and leave nothing */
static void bad_add(const struct bt_plugin *w, const struct sample *s, const char *dir,
                    const struct bt_tensor *t, const struct bt_kv *kvs, uint32_t nkv) {
    const struct bt_writer_i *wi = w->iface;
    char out[1024];
    struct bt_err err = {0, ""};
    snprintf(out, sizeof(out), "%s/bad.gguf", dir);
    void *ctx = calloc(1, w->ctx_size);
    long live = th_live;
    bt_status st = wi->open(ctx, &th_host, NULL, out, kvs ? kvs : s->kv, kvs ? nkv : s->n_kv, 0, &err);
    CHECK_EQ(st, BT_OK);
    CHECK_EQ(wi->add(ctx, &s->t[0], &err), BT_OK);
    st = wi->add(ctx, t, &err);
    CHECK(st != BT_OK && err.status == st);
    char nm[16];
    snprintf(nm, sizeof(nm), "%.10s", t->name ? t->name : "(null)");
    CHECK(strstr(err.msg, nm) != NULL && strstr(err.msg, out) != NULL);
    if (st == BT_OK || !strstr(err.msg, nm)) fprintf(stderr, "  bad_add %s: %d '%s'\n", nm, st, err.msg);
    CHECK(wi->finish(ctx, &err) != BT_OK);
    wi->close(ctx);
    free(ctx);
    CHECK_EQ(th_live, live);
    CHECK_EQ(dir_entries(dir), 0);
}

static void check_writer_errors(const struct bt_plugin *w, const struct sample *s, const char *dir) {
    struct bt_tensor t = s->t[sample_find(s, "f32.weight")];
    bad_add(w, s, dir, &s->t[0], NULL, 0); /* duplicate name */
    t.name = "a_name_that_is_exactly_sixty_four_bytes_long_xxxxxxxxxxxxxxxxxxx";
    bad_add(w, s, dir, &t, NULL, 0);
    t.name = "u8.tensor";
    t.fmt = bt_fmt(BT_TYPE_U8); /* no ggml type and not a weight format */
    bad_add(w, s, dir, &t, NULL, 0);
    t.fmt = bt_fmt(BT_TYPE_USER + 5); /* no such format */
    bad_add(w, s, dir, &t, NULL, 0);
    t.fmt = bt_fmt(BT_TYPE_Q8_K); /* stored as ggml q8_K, but 8 columns are not whole blocks */
    bad_add(w, s, dir, &t, NULL, 0);
    t = s->t[sample_find(s, "f32.weight")];
    t.nbytes -= 4;
    bad_add(w, s, dir, &t, NULL, 0);
    t = s->t[sample_find(s, "tq2.weight")];
    t.shape[1] = 100;
    bad_add(w, s, dir, &t, NULL, 0);
    t = s->t[sample_find(s, "f32.weight")];
    t.fmt.type = BT_TYPE_MTQ;
    t.fmt.planes = 9; /* invalid MTQ geometry */
    bad_add(w, s, dir, &t, NULL, 0);
    t = s->t[sample_find(s, "f32.weight")];
    t.flags = BT_TENSOR_ROPE_HALVES; /* not a q/k tensor */
    bad_add(w, s, dir, &t, NULL, 0);
    t.name = "blk.1.attn_q.weight"; /* 3 rows do not split into 4 heads */
    bad_add(w, s, dir, &t, NULL, 0);
    t = s->t[sample_find(s, "blk.0.attn_q.weight")];
    bad_add(w, s, dir, &t, s->kv, 2); /* no head_count metadata */
    t.name = NULL;
    bad_add(w, s, dir, &t, NULL, 0);

    /* bad KVs / options at open: nothing may be left behind */
    const struct bt_writer_i *wi = w->iface;
    struct bt_kv kvs[3];
    const char *strs[2] = {"x", NULL};
    char out[1024];
    struct bt_err err = {0, ""};
    snprintf(out, sizeof(out), "%s/bad.gguf", dir);
    memcpy(kvs, s->kv, 2 * sizeof(kvs[0]));
    struct bt_kv cases[4] = {
        {"x.nested", BT_KV_ARRAY, BT_KV_ARRAY, 1, {.arr = kvs}},
        {"general.name", BT_KV_STRING, 0, 3, {.s = "dup"}},   /* duplicate of kvs[1] */
        {"x.strs", BT_KV_ARRAY, BT_KV_STRING, 2, {.arr = strs}},
        {"x.type", 99, 0, 0, {.u = 0}},
    };
    for (int k = 0; k < 4; k++) {
        kvs[2] = cases[k];
        void *ctx = calloc(1, w->ctx_size);
        long live = th_live;
        bt_status st = wi->open(ctx, &th_host, NULL, out, kvs, 3, 0, &err);
        CHECK(st != BT_OK && strstr(err.msg, cases[k].key) != NULL);
        CHECK_EQ(th_live, live);
        free(ctx);
        CHECK_EQ(dir_entries(dir), 0);
    }
    int64_t aligns[3] = {48, 4, 8192};
    for (int k = 0; k < 3; k++) {
        struct bt_optset o = {aligns[k], NULL, 0};
        void *ctx = calloc(1, w->ctx_size);
        CHECK_EQ(wi->open(ctx, &th_host, &o, out, s->kv, s->n_kv, 0, &err), BT_E_INVAL);
        free(ctx);
    }
    /* missing dir; close without finish */
    CHECK_EQ(write_sample(w, s, "/nonexistent-dir/x.gguf", 32, &err), BT_E_IO);
    CHECK(strstr(err.msg, "/nonexistent-dir/x.gguf") != NULL);
    void *ctx = calloc(1, w->ctx_size);
    CHECK_EQ(wi->open(ctx, &th_host, NULL, out, s->kv, s->n_kv, 0, &err), BT_OK);
    for (uint32_t i = 0; i < s->n_t; i++) CHECK_EQ(wi->add(ctx, &s->t[i], &err), BT_OK);
    CHECK_EQ(dir_entries(dir), 0); /* the spill file is anonymous: nothing to leave behind */
    wi->close(ctx);
    free(ctx);
    CHECK_EQ(dir_entries(dir), 0);
    CHECK_EQ(th_live, 0);
    /* supports(): every built-in with a ggml type or the weight flag (u8 has neither) */
    for (uint32_t ty = 0; ty < BT_TYPE_COUNT; ty++) {
        struct bt_tfmt f = {ty, ty == BT_TYPE_MTQ ? 2 : 0, ty == BT_TYPE_MTQ ? 64 : 0, 0};
        if (ty == BT_TYPE_VQ) f = bt_vq_tfmt(4, 8, 0, 1, BT_VQ_NORM, 0, 0, 0);
        if (ty == BT_TYPE_GGML) f = bt_ggml_raw_tfmt(16); /* iq2_xxs, copied as it is */
        int want = ty != BT_TYPE_U8;
        CHECK_EQ(wi->supports(NULL, &f), want);
    }
    struct bt_tfmt bad_mtq = {BT_TYPE_MTQ, 9, 64, 0}, bad_f32 = {BT_TYPE_F32, 1, 0, 0};
    struct bt_tfmt unknown = {BT_TYPE_USER + 5, 0, 0, 0};
    CHECK_EQ(wi->supports(NULL, &bad_mtq), 0);
    CHECK_EQ(wi->supports(NULL, &bad_f32), 0);
    CHECK_EQ(wi->supports(NULL, &unknown), 0);
}

/* write failures (EFBIG via RLIMIT_FSIZE) in a child: error reported, nothing left behind */
static void check_write_failure(const struct bt_plugin *w, const struct sample *s, const char *dir,
                                int big) {
    pid_t pid = fork();
    if (pid == 0) {
        struct rlimit rl = {big ? 1u << 20 : 4096, big ? 1u << 20 : 4096};
        signal(SIGXFSZ, SIG_IGN);
        setrlimit(RLIMIT_FSIZE, &rl);
        struct sample s2 = *s;
        float *x = NULL;
        if (big) { /* an 8 MiB tensor: the add itself hits the limit */
            x = calloc(2048 * 1024, sizeof(float));
            struct bt_tensor *t = &s2.t[s2.n_t++];
            memset(t, 0, sizeof(*t));
            t->name = "big.weight";
            t->fmt = bt_fmt(BT_TYPE_F32);
            t->n_dims = 2;
            t->shape[0] = 2048;
            t->shape[1] = 1024;
            t->data = x;
            t->nbytes = 2048 * 1024 * 4;
        }
        char out[1024];
        struct bt_err err = {0, ""};
        snprintf(out, sizeof(out), "%s/full.gguf", dir);
        bt_status st = write_sample(w, &s2, out, 32, &err);
        int ok = st == BT_E_IO && strstr(err.msg, out) && (!big || strstr(err.msg, "big.weight"));
        if (!ok) fprintf(stderr, "  write failure: %d '%s'\n", st, err.msg);
        free(x);
        _exit(ok && dir_entries(dir) == 0 && th_live == 0 ? 0 : 1);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

/* ---- allocation faults ---------------------------------------------------------------------------- */
static void check_faults(const struct bt_plugin *w, const struct bt_plugin *rp,
                         const struct sample *s, const char *dir) {
    char out[1024];
    snprintf(out, sizeof(out), "%s/fault.gguf", dir);
    int ok_w = 0, ok_r = 0, bad = 0;
    for (long n = 0; n < 2000 && !(ok_w && ok_r); n++) {
        struct bt_err err = {0, ""};
        if (!ok_w) {
            th_calls = 0;
            th_fail_at = n;
            bt_status st = write_sample(w, s, out, 32, &err);
            th_fail_at = -1;
            ok_w = st == BT_OK;
            int b = (!ok_w && (st != BT_E_NOMEM || dir_entries(dir) != 0)) || th_live != 0;
            if (b) fprintf(stderr, "  fault %ld (writer): %d '%s', %d files, %ld live\n", n, st,
                           err.msg, dir_entries(dir), th_live);
            bad += b;
            if (ok_w) continue;
            unlink(out);
        } else {
            struct rd r;
            th_calls = 0;
            th_fail_at = n;
            bt_status st = rd_open(rp, out, &r, &err);
            th_fail_at = -1;
            ok_r = st == BT_OK;
            if (ok_r) rd_close(&r);
            int b = (!ok_r && st != BT_E_NOMEM) || th_live != 0;
            if (b) fprintf(stderr, "  fault %ld (reader): %d '%s', %ld live\n", n, st, err.msg, th_live);
            bad += b;
        }
    }
    CHECK(ok_w && ok_r);
    CHECK_EQ(bad, 0);
    unlink(out);
}

int run_self(const struct bt_plugin *w, const struct bt_plugin *rp, const char *dir) {
    struct sample s;
    CHECK_EQ(sample_build(&s), 0);
    CHECK_EQ(dir_entries(dir), 0);
    check_roundtrip(w, rp, &s, dir);
    check_corrupt(rp, &s, dir);
    char a[1024];
    snprintf(a, sizeof(a), "%s/rt_a.gguf", dir);
    unlink(a);
    check_writer_errors(w, &s, dir);
    check_write_failure(w, &s, dir, 0);
    check_write_failure(w, &s, dir, 1);
    check_faults(w, rp, &s, dir);
    CHECK_EQ(dir_entries(dir), 0);
    CHECK_EQ(th_live, 0);
    sample_free(&s);
    TEST_DONE();
}
