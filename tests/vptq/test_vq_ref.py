#!/usr/bin/env python3
"""test_vq_ref.py - numpy reference of the vptq quantizer (plugins/vptq: weighted k-means, the
column loop with error feedback, residual and outlier codebooks, packing into bt's vq format),
written from plugins/vptq/README.md and docs/formats.md "vq", against the C code run by vq_tool.
Usage: test_vq_ref.py VQ_TOOL PLUGIN_DIR WORKDIR. Exits non-zero on any failed check.

Checks:
  kmeans      the same seeded sample and init, Lloyd with weighted means: centroids within 1e-5
              (scalar "cpu" backend: double-precision distances like numpy) and, on cpu-avx2
              (f32 distances), within 1e-5 for >= 95% of centroids and the same weighted
              objective within 1e-4 relative
  plain VQ    no Hessian: codes equal in >= 99% of vectors, decoded weights equal where codes do
  second order with a Hessian, residual codebook, 2 groups, outlier columns: codes equal in
              >= 97% (the C loop runs in float32 with a lazy sgemm, the reference in float64: a
              near-tie can go the other way and then moves later columns of that row block),
              the engine's Hessian-weighted error within 3%
  bytes       an independent numpy decoder of the packed rows and parts (docs/formats.md) gives
              exactly the C reference decoder's weights
"""
import os
import subprocess
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "so"))
from test_so_ref import prepare  # noqa: E402  (the engine's Hessian preparation, numpy)

failures = []
M64 = (1 << 64) - 1


def check(ok, msg):
    print(("ok   " if ok else "FAIL ") + msg)
    if not ok:
        failures.append(msg)


def f16(x):
    return np.asarray(x, dtype=np.float32).astype(np.float16).astype(np.float32)


class Mix:
    """splitmix64, as vq_kmeans.c"""
    def __init__(self, seed):
        self.s = (seed * 0x2545f4914f6cdd1d + 17) & M64

    def next(self):
        self.s = (self.s + 0x9e3779b97f4a7c15) & M64
        z = self.s
        z = ((z ^ (z >> 30)) * 0xbf58476d1ce4e5b9) & M64
        z = ((z ^ (z >> 27)) * 0x94d049bb133111eb) & M64
        return z ^ (z >> 31)


def nearest(P, C):
    d = ((P[:, None, :].astype(np.float64) - C[None, :, :].astype(np.float64)) ** 2).sum(-1)
    return np.argmin(d, axis=1)  # lowest index on ties


def np_kmeans(pts, wt, K, iters, sample, seed):
    n, d = pts.shape
    mx = Mix(seed)
    m = min(n, sample)
    sel = np.arange(n)
    for i in range(m):
        j = i + mx.next() % (n - i)
        sel[i], sel[j] = sel[j], sel[i]
    P = pts[sel[:m]].astype(np.float32)
    pw = wt[sel[:m]].astype(np.float64)
    C = P[np.arange(K) % m].copy()
    prev = np.full(m, -1)
    for _ in range(iters):
        idx = nearest(P, C)
        if np.array_equal(idx, prev):
            break
        prev = idx.copy()
        sums = np.zeros((K, d))
        wsum = np.zeros(K)
        np.add.at(sums, idx, pw[:, None] * P)
        np.add.at(wsum, idx, pw)
        for k in range(K):
            if wsum[k] > 0:
                C[k] = (sums[k] / wsum[k]).astype(np.float32)
                continue
            e2 = ((P.astype(np.float64) - C[idx].astype(np.float64)) ** 2).sum(1) * pw
            bi = int(np.argmax(e2))  # first of the largest
            C[k] = P[bi]
            idx[bi] = k
            prev[bi] = -1
    return C


def run(tool, pdir, backend, mode, wd):
    r = subprocess.run([tool, pdir, backend, mode, wd], capture_output=True, text=True)
    if r.returncode:
        print(r.stderr)
    return r.returncode == 0


# ---- numpy model of vq_quant.c -----------------------------------------------------------------
def get_code(stream, bit, t):
    v = 0
    for i in range(t):
        b = bit + i
        v |= ((int(stream[b // 8]) >> (b % 8)) & 1) << i
    return v


def np_decode(fmt, data, parts, rows, cols):
    """independent decoder of docs/formats.md "vq" (f32 arithmetic in the documented order)"""
    planes, block, layout = fmt
    v, b1, b2 = planes & 255, (planes >> 8) & 255, (planes >> 16) & 255
    G, flags = block & 0xffff, block >> 16
    n_out, v0, b0 = layout & 0xffff, (layout >> 16) & 255, layout >> 24
    t, K1, K2, K0 = b1 + b2, 1 << b1, (1 << b2) if b2 else 0, (1 << b0) if n_out else 0
    ncode = cols - n_out
    gs = ncode // G
    S = (ncode * t + 7) // 8
    R = (S + v - 1) // v
    k = 0
    cb = np.frombuffer(parts[k], dtype="<f2").astype(np.float32)
    k += 1
    Cm = cb[:G * K1 * v].reshape(G, K1, v)
    Cr = cb[G * K1 * v:G * (K1 + K2) * v].reshape(G, K2, v) if K2 else None
    Co = cb[G * (K1 + K2) * v:].reshape(K0, v0) if K0 else None
    perm, scale, bias = np.arange(cols), None, None
    if flags & 3:
        colp = parts[k]
        k += 1
        o = 0
        if flags & 2:
            perm = np.frombuffer(colp[:2 * cols], dtype="<u2").astype(np.int64)
            o = 2 * cols
        if flags & 1:
            scale = np.frombuffer(colp[o:o + 2 * cols], dtype="<f2").astype(np.float32)
            bias = np.frombuffer(colp[o + 2 * cols:o + 4 * cols], dtype="<f2").astype(np.float32)
    ocodes = None
    if n_out:
        ocodes = np.frombuffer(parts[k], dtype="<u2").reshape(-1, n_out)
        k += 1
    W = np.zeros((rows, cols), dtype=np.float32)
    for rb in range((rows + v - 1) // v):
        s = data[rb * v * R:rb * v * R + S] if (rb + 1) * v <= rows else parts[k]
        for q in range(ncode):
            c = get_code(s, q * t, t)
            g = q // gs
            w = Cm[g, c & (K1 - 1)].copy()
            if K2:
                w = (w + Cr[g, c >> b1]).astype(np.float32)
            for e in range(v):
                if rb * v + e < rows:
                    W[rb * v + e, perm[n_out + q]] = w[e]
    for rb0 in range((rows + v0 - 1) // v0 if n_out else 0):
        for p in range(n_out):
            for e in range(v0):
                if rb0 * v0 + e < rows:
                    W[rb0 * v0 + e, perm[p]] = Co[ocodes[rb0, p], e]
    if scale is not None:
        W = (W * scale[None, :]).astype(np.float32) + bias[None, :]
    return W.astype(np.float32)


def np_quant(W, Gm, v, b1, b2, G, pct, v0, b0, norm, iters, sample, seed, damp):
    """-> codes (rows/v x ncode), outlier codes, perm, herr (None without Hessian)"""
    rows, cols = W.shape
    K1, K2, K0 = 1 << b1, (1 << b2) if b2 else 0, 1 << b0
    n_out = int(np.ceil(pct / 100.0 * cols)) if pct > 0 else 0
    while n_out and (cols - n_out) % G:
        n_out += 1
    cw = np.diagonal(Gm).astype(np.float32) if Gm is not None else None
    key = cw if cw is not None else (W.astype(np.float64) ** 2).sum(0).astype(np.float32)
    use_perm = n_out > 0 or G > 1
    perm = np.lexsort((np.arange(cols), -key.astype(np.float64))) if use_perm else np.arange(cols)
    pos = np.empty(cols, dtype=np.int64)
    pos[perm] = np.arange(cols)
    mn, mx = W.min(0), W.max(0)
    if norm:
        b = f16(mn)
        s = f16((mx - b).astype(np.float32))
        s = np.where((s > 0) & np.isfinite(s), s, np.float32(1))
    else:
        b, s = np.zeros(cols, np.float32), np.ones(cols, np.float32)
    hj = np.where(cw > 0, cw, 1e-12).astype(np.float64) if cw is not None else np.ones(cols)
    colw = np.empty(cols)
    colw[pos] = hj * s.astype(np.float64) ** 2
    Wn = np.empty_like(W)
    Wn[:, pos] = ((W - b[None, :]) / s[None, :]).astype(np.float32)
    ncode = cols - n_out
    gs = ncode // G

    def fit(src, p0, p1, d, K, sd, res=None):
        nb = rows // d
        pts, wt = [], []
        for p in range(p0, p1):
            for rb in range(nb):
                pts.append(res[(rb, p)] if res is not None else Wn[rb * d:(rb + 1) * d, p])
                wt.append(colw[p])
        return f16(np_kmeans(np.array(pts, np.float32), np.array(wt), K, iters, sample, sd))

    C = [fit(Wn, n_out + g * gs, n_out + (g + 1) * gs, v, K1, seed + g) for g in range(G)]
    O = fit(Wn, 0, n_out, v0, K0, seed + 1000) if n_out else None
    if Gm is not None and damp >= 0:
        H, hperm, U, _ = prepare(Gm, damp, 1)
    else:
        H, hperm, U = None, np.arange(cols), None
    codes = np.zeros((rows // v, ncode), dtype=np.int64)
    oc = np.zeros((rows // v0 if n_out else 0, n_out), dtype=np.int64)

    def one_pass(R=None, keep_res=False):
        res = {}
        Wp = W[:, hperm].astype(np.float64).copy()
        Q = np.zeros_like(Wp)
        loss = 0.0
        for a in range(cols):
            c = hperm[a]
            p = pos[c]
            w = Wp[:, a]
            u = ((w.astype(np.float32) - b[c]) / s[c]).astype(np.float32)
            q = np.empty(rows)
            if p < n_out:
                k = nearest(u.reshape(-1, v0), O)
                oc[:, p] = k
                q[:] = (O[k].reshape(-1) * s[c] + b[c])
            else:
                g = (p - n_out) // gs
                uv = u.reshape(-1, v)
                m = nearest(uv, C[g])
                val = C[g][m]
                r = np.zeros_like(m)
                if R is not None:
                    r = nearest((uv - val).astype(np.float32), R[g])
                    val = (val + R[g][r]).astype(np.float32)
                codes[:, p - n_out] = m | (r << b1)
                if keep_res:
                    for rb in range(rows // v):
                        res[(rb, p)] = (uv[rb] - val[rb]).astype(np.float32)
                q[:] = (val.reshape(-1) * s[c] + b[c])
            Q[:, a] = q
            if U is not None:
                e = (w - q) / U[a, a]
                loss += float(e @ e)
                Wp[:, a + 1:] -= np.outer(e, U[a, a + 1:])
        return res, loss

    res, loss = one_pass(None, keep_res=K2 > 0)
    if K2:
        R = [fit(None, n_out + g * gs, n_out + (g + 1) * gs, v, K2, seed + 500 + g, res) for g in range(G)]
        _, loss = one_pass(R)
    return codes, oc, perm, (loss if U is not None else None)


def c_codes(fmt, data, parts, rows, cols):
    planes, block, layout = fmt
    v, b1, b2 = planes & 255, (planes >> 8) & 255, (planes >> 16) & 255
    n_out, v0 = layout & 0xffff, (layout >> 16) & 255
    t = b1 + b2
    ncode = cols - n_out
    S = (ncode * t + 7) // 8
    R = (S + v - 1) // v
    codes = np.array([[get_code(data[rb * v * R:], q * t, t) for q in range(ncode)] for rb in range(rows // v)])
    oc = np.frombuffer(parts[-1], dtype="<u2").reshape(-1, n_out) if n_out else np.zeros((0, 0))
    return codes, oc


def main():
    tool, pdir, wd = sys.argv[1], sys.argv[2], sys.argv[3]
    os.makedirs(wd, exist_ok=True)
    rng = np.random.default_rng(11)
    # ---- k-means ----
    for backend in ("cpu", "cpu-avx2"):
        for (n, d, K, iters, sample, seed) in ((3000, 4, 32, 15, 2000, 7), (40, 3, 64, 5, 100, 3)):
            pts = rng.standard_normal((n, d)).astype(np.float32)
            wt = rng.uniform(0.1, 2.0, n)
            pts.tofile(f"{wd}/pts.bin")
            wt.tofile(f"{wd}/w.bin")
            open(f"{wd}/km.txt", "w").write(f"{n} {d} {K} {iters} {sample} {seed}\n")
            if not run(tool, pdir, backend, "kmeans", wd):
                check(False, f"kmeans {backend} ran")
                continue
            C = np.fromfile(f"{wd}/C.bin", dtype=np.float32).reshape(K, d)
            Cr = np_kmeans(pts, wt, K, iters, sample, seed)
            close = np.all(np.abs(C - Cr) <= 1e-5 * (1 + np.abs(Cr)), axis=1)
            obj = lambda Cx: float(((pts[:, None] - Cx[None]) ** 2).sum(-1).min(1) @ wt)
            if backend == "cpu":
                check(close.all(), f"kmeans {backend} n={n} d={d} K={K}: centroids equal numpy's "
                      f"({close.mean():.3f} within 1e-5)")
            else:
                check(close.mean() >= 0.95 and abs(obj(C) - obj(Cr)) <= 1e-4 * obj(Cr),
                      f"kmeans {backend} n={n} d={d} K={K}: {close.mean():.3f} of centroids within 1e-5, "
                      f"objective {obj(C):.6g} vs {obj(Cr):.6g}")
    # ---- quantization ----
    cases = [
        # name, rows, cols, v, b1, b2, G, pct, v0, b0, norm, hessian
        ("plain v4 k16", 48, 64, 4, 4, 0, 1, 0.0, 4, 4, 1, False),
        ("second order v4 k32 + res 8, 2 groups, 10% outliers v2 k16", 32, 80, 4, 5, 3, 2, 10.0, 2, 4, 1, True),
        ("second order v8 k64, no norm", 64, 48, 8, 6, 0, 1, 0.0, 4, 4, 0, True),
    ]
    for (name, rows, cols, v, b1, b2, G, pct, v0, b0, norm, hess) in cases:
        W = (rng.standard_normal((rows, cols)) * rng.uniform(0.2, 2.0, cols)[None, :]).astype(np.float32)
        Gm = None
        if hess:
            X = rng.standard_normal((4 * cols, cols)) * rng.uniform(0.1, 3.0, cols)[None, :]
            X[:, 1:] += 0.5 * X[:, :-1]
            Gm = (X.T @ X / X.shape[0]).astype(np.float32)
            Gm.tofile(f"{wd}/g.bin")
        elif os.path.exists(f"{wd}/g.bin"):
            os.remove(f"{wd}/g.bin")
        W.tofile(f"{wd}/w.bin")
        iters, sample, seed, damp = 10, 100000, 5, 0.01
        open(f"{wd}/q.txt", "w").write(f"{rows} {cols} {v} {b1} {b2} {G} {pct} {v0} {b0} {norm} {iters} {sample} {seed} {damp}\n")
        if not run(tool, pdir, "cpu", "quant", wd):
            check(False, f"{name}: vq_tool ran")
            continue
        lines = open(f"{wd}/fmt.txt").read().split()
        fmt = tuple(int(x) for x in lines[:3])
        nparts, herr = int(lines[3]), float(lines[5])
        data = open(f"{wd}/data.bin", "rb").read()
        parts = [open(f"{wd}/part{k}.bin", "rb").read() for k in range(nparts)]
        dec = np.fromfile(f"{wd}/dec.bin", dtype=np.float32).reshape(rows, cols)
        mine = np_decode(fmt, data, parts, rows, cols)
        check(np.array_equal(mine.view(np.uint32), dec.view(np.uint32)),
              f"{name}: numpy's decoder of the packed bytes gives the C decoder's weights bit for bit")
        codes, oc = c_codes(fmt, data, parts, rows, cols)
        rc, roc, rperm, rloss = np_quant(W, Gm, v, b1, b2, G, pct, v0, b0, norm, iters, sample, seed, damp)
        agree = (np.sum(codes == rc) + np.sum(oc == roc)) / (rc.size + roc.size)
        need = 0.99 if not hess else 0.97
        check(agree >= need, f"{name}: codes equal numpy's in {agree:.4f} (need {need})")
        if fmt[1] >> 16 & 2:
            cperm = np.frombuffer(parts[1][:2 * cols], dtype="<u2")
            check(np.array_equal(cperm, rperm), f"{name}: column permutation equals numpy's")
        if hess:
            check(abs(herr - rloss) <= 0.03 * rloss, f"{name}: Hessian-weighted error {herr:.6g} vs numpy {rloss:.6g}")
    print(f"{len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
