#!/usr/bin/env python3
"""ref_mtq.py - numpy/python reference of the residual multi-base ternary quantizer
(plugins/residual/mtq_algo.c), written from the algorithm description, and the comparison
with the C output of bt-test-mtq-dump. Usage: ref_mtq.py <dump-exe> <workdir>.
Exits non-zero when codes differ or scales/errors are not equal within tolerance."""
import os
import subprocess
import sys

import numpy as np

MAXP = 8
GRID = (0.5, 0.65, 0.8, 0.95, 1.1)


def fp16_round(a):
    f = np.float32(a)
    f = np.float32(min(max(float(f), -65504.0), 65504.0))
    return float(np.float32(np.float16(f)))


def tdig(c, N):
    """code index -> plane values (digit (c/3^p)%3 maps 0,1,2 -> 0,-1,+1)"""
    dv = (0, -1, 1)
    out = []
    for _ in range(N):
        out.append(dv[c % 3])
        c //= 3
    return out


def ternary_step(r, d):
    """exact optimum: top-k of |r| (ties: lower index first) maximising (sum d|r|)^2/sum d"""
    ar = np.abs(r)
    idx = np.argsort(-ar, kind="stable")
    S = D = best = Sb = Db = 0.0
    kb = 0
    for k, i in enumerate(idx):
        x = float(ar[i])
        dd = float(d[i]) if d is not None else 1.0
        S += dd * x
        D += dd
        if D > 0:
            g = S * S / D
            if g > best:
                best, kb, Sb, Db = g, k + 1, S, D
    t = np.zeros(len(r), dtype=np.int8)
    for i in idx[:kb]:
        t[i] = 1 if r[i] > 0 else (-1 if r[i] < 0 else 0)
    return (Sb / Db if kb else 0.0), t


class Block:
    def __init__(self, w, d, N):
        self.w, self.d, self.N, self.n = w, d, N, len(w)
        perm = np.argsort(w, kind="stable")
        self.perm = perm
        self.sw = [0.0 if float(w[i]) == 0.0 else float(w[i]) for i in perm]
        sd = [float(d[i]) if d is not None else 1.0 for i in perm]
        self.pd, self.pdw = [0.0], [0.0]
        s2 = 0.0
        for x, dd in zip(self.sw, sd):
            self.pd.append(self.pd[-1] + dd)
            self.pdw.append(self.pdw[-1] + dd * x)
            s2 += dd * x * x
        self.sw2 = s2
        M = 3 ** N
        dmap = (1, 0, 2)
        self.ord = []
        for j in range(M):
            x, c = j, 0
            for p in range(N - 1, -1, -1):
                c += dmap[x % 3] * 3 ** p
                x //= 3
            self.ord.append(c)
        self.M = M
        self.digits = [tdig(c, N) for c in range(M)]
        self.bnd = None

    def assign(self, a):
        N = self.N
        vals = []
        for c in self.ord:
            v = 0.0
            for p, tp in enumerate(self.digits[c]):
                v += float(tp) * a[p]
            vals.append(v)
        order = sorted(range(self.M), key=lambda j: vals[j])  # stable
        self.ord = [self.ord[j] for j in order]
        L = [vals[j] for j in order]
        mids = [0.5 * (L[j] + L[j + 1]) for j in range(self.M - 1)]
        sw = np.array(self.sw, dtype=np.float64)
        self.bnd = [0] + [int(np.searchsorted(sw, m, side="right")) for m in mids] + [self.n]
        G = [[0.0] * N for _ in range(N)]
        b = [0.0] * N
        E = self.sw2
        for j in range(self.M):
            k0, k1 = self.bnd[j], self.bnd[j + 1]
            if k1 <= k0:
                continue
            Dj = self.pd[k1] - self.pd[k0]
            Wj = self.pdw[k1] - self.pdw[k0]
            E += L[j] * L[j] * Dj - 2.0 * L[j] * Wj
            td = [float(x) for x in self.digits[self.ord[j]]]
            for p in range(N):
                b[p] += td[p] * Wj
                tD = td[p] * Dj
                for q in range(p + 1):
                    G[p][q] += tD * td[q]
        for p in range(N):
            for q in range(p):
                G[q][p] = G[p][q]
        return E, G, b


def ls_solve(G, b, N, a_old):
    L = [[0.0] * N for _ in range(N)]
    act, on = [], [False] * N
    for p in range(N):
        gpp = G[p][p]
        if not gpp > 0:
            continue
        row, v = [], gpp
        for k in range(len(act)):
            s = G[p][act[k]]
            for l in range(k):
                s -= row[l] * L[k][l]
            row.append(s / L[k][k])
            v -= row[k] * row[k]
        if not v > 1e-9 * gpp:
            continue
        na = len(act)
        for k in range(na):
            L[na][k] = row[k]
        L[na][na] = np.sqrt(v)
        act.append(p)
        on[p] = True
    y = []
    for k, p in enumerate(act):
        s = b[p]
        for q in range(N):
            if not on[q]:
                s -= G[p][q] * a_old[q]
        for l in range(k):
            s -= L[k][l] * y[l]
        y.append(s / L[k][k])
    a_new = list(a_old)
    for k in range(len(act) - 1, -1, -1):
        s = y[k]
        for l in range(k + 1, len(act)):
            s -= L[l][k] * a_new[act[l]]
        a_new[act[k]] = s / L[k][k]
    return a_new


def run_als(blk, a, rounds, pre=None):
    cur = list(a)
    E, G, b = pre if pre else blk.assign(cur)
    Eb, best = E, list(a)
    for _ in range(rounds):
        nxt = ls_solve(G, b, blk.N, cur)
        En, G, b = blk.assign(nxt)
        if En < Eb:
            Eb, best = En, list(nxt)
        done = not (E - En > 1e-9 * E)
        cur, E = nxt, En
        if done:
            break
    return best


def quantize_block(w, d, N, rounds, init):
    n = len(w)
    blk = Block(w, d, N)
    if blk.sw[0] == 0.0 and blk.sw[-1] == 0.0:
        return np.zeros(N * n, np.int8), [0.0] * N, 0.0
    cands = []
    if N == 1 or init != 1:
        r = w.astype(np.float32).copy()
        a = []
        for _ in range(N):
            ap, t = ternary_step(r, d)
            a.append(ap)
            for i in range(n):
                if t[i]:
                    r[i] = np.float32(float(r[i]) - ap * float(t[i]))
        cands.append(list(a))
        if rounds > 0 and N > 1:
            cands.append(run_als(blk, a, rounds))
    if N > 1 and init != 0:
        mx = max(abs(blk.sw[0]), abs(blk.sw[-1]))
        K = (3 ** N - 1) // 2
        Eb, pre, ab = float("inf"), None, None
        for g in GRID:
            delta = g * mx / K
            u, tr = delta, [0.0] * N
            for p in range(N - 1, -1, -1):
                tr[p] = u
                u *= 3.0
            E, G, b = blk.assign(tr)
            if E < Eb:
                Eb, pre, ab = E, (E, G, b), list(tr)
        cands.append(run_als(blk, ab, rounds, pre))
    Eb, cb = float("inf"), 0
    for c, cand in enumerate(cands):
        E, _, _ = blk.assign([fp16_round(x) for x in cand])
        if E < Eb:
            Eb, cb = E, c
    af = [fp16_round(x) for x in cands[cb]]
    if cb != len(cands) - 1:
        blk.assign(af)
    t = np.zeros(N * n, np.int8)
    for j in range(blk.M):
        tc = blk.digits[blk.ord[j]]
        for k in range(blk.bnd[j], blk.bnd[j + 1]):
            i = blk.perm[k]
            for p in range(N):
                t[p * n + i] = tc[p]
    E = 0.0
    for i in range(n):
        v = np.float32(0.0)
        for p in range(N):
            v = np.float32(v + np.float32(af[p]) * np.float32(t[p * n + i]))
        e = float(w[i]) - float(v)
        E += (float(d[i]) if d is not None else 1.0) * e * e
    return t, af, E


def main():
    exe, wd = sys.argv[1], sys.argv[2]
    os.makedirs(wd, exist_ok=True)
    subprocess.run([exe, wd], check=True)
    W = np.fromfile(os.path.join(wd, "w.bin"), np.float32).reshape(8, 512)
    Dc = np.fromfile(os.path.join(wd, "d.bin"), np.float32)
    fails = checked = 0
    for B in (64, 256):
        for N in (1, 2, 3):
            for init in (0, 1, 2):
                for wt in (0, 1):
                    tag = "%d_%d_%d_%d" % (B, N, init, wt)
                    T = np.fromfile(os.path.join(wd, "t_%s.bin" % tag), np.int8)
                    A = np.fromfile(os.path.join(wd, "a_%s.bin" % tag), np.float32)
                    Ec = np.fromfile(os.path.join(wd, "e_%s.bin" % tag), np.float64)
                    nb = 512 // B
                    for r in range(8):
                        for b in range(nb):
                            k = r * nb + b
                            w = W[r, b * B:(b + 1) * B]
                            d = Dc[b * B:(b + 1) * B] if wt else None
                            t, a, E = quantize_block(w, d, N, 6, init)
                            tc = T[k * N * B:(k + 1) * N * B]
                            ac = A[k * N:(k + 1) * N]
                            checked += 1
                            bad = []
                            if not np.array_equal(t, tc):
                                bad.append("codes differ at %d places" % int(np.sum(t != tc)))
                            if not np.allclose(np.array(a, np.float32), ac, rtol=0, atol=0):
                                bad.append("scales %s vs C %s" % (a, list(ac)))
                            if abs(E - Ec[k]) > 1e-9 * max(1e-30, abs(E)) + 1e-30:
                                bad.append("error %r vs C %r" % (E, Ec[k]))
                            if bad:
                                fails += 1
                                if fails <= 10:
                                    print("block %s row %d blk %d: %s" % (tag, r, b, "; ".join(bad)))
    print("ref_mtq: %d blocks compared, %d mismatches" % (checked, fails))
    return 1 if fails or not checked else 0


if __name__ == "__main__":
    sys.exit(main())
