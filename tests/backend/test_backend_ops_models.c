/* test_backend_ops_models.c - the plain-C models the reference backend is checked against:
 * double precision on bt_to_f32 weights, one straightforward loop per op. */
#include "test_backend_ops.h"

#include <math.h>
#include <stdlib.h>

/* x -> its int8 round trip as BT_ACT_Q8 defines it: per 256, d = amax / 127, q = round(x / d)
 * half away from zero (as x * (1/d)), value q * d */
void bo_q8_roundtrip(const float *x, int64_t n, float *out) {
    for (int64_t b = 0; b < n; b += BT_ACT_Q8_BLOCK) {
        float amax = 0.0f;
        for (int i = 0; i < BT_ACT_Q8_BLOCK; i++) amax = fmaxf(amax, fabsf(x[b + i]));
        float d = amax / 127.0f, id = d > 0.0f ? 1.0f / d : 0.0f;
        for (int i = 0; i < BT_ACT_Q8_BLOCK; i++) {
            float v = roundf(x[b + i] * id);
            v = v > 127.0f ? 127.0f : v < -127.0f ? -127.0f : v;
            out[b + i] = v * d;
        }
    }
}

/* want[t,r] = sum_c W[r,c] x[t,c] in double, mag = sum |W x| */
void bo_model_matmul(const float *wf, int64_t rows, int64_t cols, const float *X, int64_t ntok,
                         int act, float *want, float *mag) {
    float *xq = NULL;
    if (act == BT_ACT_Q8) {
        xq = malloc(sizeof(float) * (size_t)(ntok * cols));
        if (!xq) abort();
        bo_q8_roundtrip(X, ntok * cols, xq);
        X = xq;
    }
    for (int64_t t = 0; t < ntok; t++)
        for (int64_t r = 0; r < rows; r++) {
            double s = 0, m = 0;
            const float *w = wf + r * cols, *x = X + t * cols;
            for (int64_t c = 0; c < cols; c++) {
                double p = (double)w[c] * (double)x[c];
                s += p;
                m += fabs(p);
            }
            want[t * rows + r] = (float)s;
            mag[t * rows + r] = (float)m;
        }
    free(xq);
}

void bo_model_rmsnorm(const float *x, const float *w, int64_t ntok, int64_t n, float eps,
                          float *y, float *mag) {
    for (int64_t t = 0; t < ntok; t++) {
        double ss = 0;
        for (int64_t i = 0; i < n; i++) ss += (double)x[t * n + i] * x[t * n + i];
        double sc = 1.0 / sqrt(ss / (double)n + (double)eps);
        for (int64_t i = 0; i < n; i++) {
            y[t * n + i] = (float)((double)x[t * n + i] * sc * (double)w[i]);
            mag[t * n + i] = fabsf(y[t * n + i]);
        }
    }
}

/* the angle is the f32 product pos * freq, as the op defines it; cos/sin of it in double */
void bo_model_rope(const float *x, const float *freq, int64_t ntok, int64_t cols, int hd,
                       int n_rot, int halves, int pos0, float *y, float *mag) {
    int half = n_rot / 2;
    for (int64_t t = 0; t < ntok; t++)
        for (int64_t h = 0; h < cols / hd; h++) {
            const float *p = x + t * cols + h * hd;
            float *q = y + t * cols + h * hd, *m = mag + t * cols + h * hd;
            for (int i = 0; i < hd; i++) { q[i] = p[i]; m[i] = fabsf(p[i]); }
            for (int i = 0; i < half; i++) {
                int a = halves ? i : 2 * i, b = halves ? i + half : 2 * i + 1;
                float th = (float)(pos0 + t) * freq[i];
                double cs = cos((double)th), sn = sin((double)th);
                q[a] = (float)(p[a] * cs - p[b] * sn);
                q[b] = (float)(p[a] * sn + p[b] * cs);
                m[a] = m[b] = fabsf(p[a]) + fabsf(p[b]);
            }
        }
}

void bo_model_attn(const float *q, const float *kc, const float *vc, int ntok, int pos0,
                       int nh, int nkv, int hd, float scale, float *out, float *mag) {
    int group = nh / nkv;
    int64_t qc = (int64_t)nh * hd, kvc = (int64_t)nkv * hd;
    double *sc = malloc(sizeof(double) * (size_t)(pos0 + ntok));
    if (!sc) abort();
    for (int t = 0; t < ntok; t++)
        for (int h = 0; h < nh; h++) {
            const float *qh = q + t * qc + (int64_t)h * hd;
            int g = h / group, np = pos0 + t + 1;
            double mx = -INFINITY, sum = 0;
            for (int p = 0; p < np; p++) {
                double s = 0;
                for (int d = 0; d < hd; d++) s += (double)qh[d] * kc[p * kvc + (int64_t)g * hd + d];
                sc[p] = s * scale;
                if (sc[p] > mx) mx = sc[p];
            }
            for (int p = 0; p < np; p++) sum += (sc[p] = exp(sc[p] - mx));
            for (int d = 0; d < hd; d++) {
                double o = 0, m = 0;
                for (int p = 0; p < np; p++) {
                    double v = vc[p * kvc + (int64_t)g * hd + d];
                    o += sc[p] / sum * v;
                    m += sc[p] / sum * fabs(v);
                }
                out[t * qc + (int64_t)h * hd + d] = (float)o;
                mag[t * qc + (int64_t)h * hd + d] = (float)m;
            }
        }
    free(sc);
}

/* index of the nearest centroid (double, lowest k on ties) */
void bo_model_kmeans(const float *pts, const float *cent, const float *w, int64_t n, int64_t d,
                     int64_t K, int32_t *out) {
    for (int64_t i = 0; i < n; i++) {
        double best = INFINITY;
        out[i] = 0;
        for (int64_t k = 0; k < K; k++) {
            double s = 0;
            for (int64_t j = 0; j < d; j++) {
                double e = (double)pts[i * d + j] - cent[k * d + j];
                s += (w ? w[j] : 1.0) * e * e;
            }
            if (s < best) { best = s; out[i] = (int32_t)k; }
        }
    }
}
