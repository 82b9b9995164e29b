#!/usr/bin/env python3
"""test_vptq.py - the vptq reader against numpy (tests/vptq/CMakeLists.txt runs each part):

  fixture   make the VPTQ-layout fixtures of bt-small in the build folder (kept while the
            generator is unchanged)
  decode    every tensor read through bt (vptq_dump: reader "auto" -> vptq, vq decoded by bt's
            reference decoder) equals vptq_ref.py's float32 dequantization bit for bit (fp16
            fixture; bf16: after the f16 rounding bt's vq stores, and the INFO line counts the
            values that rounding changes), and VPTQ's model-dtype arithmetic within 4 ulp of the
            model dtype at the magnitude of the terms |(c + r) s| + |b|
  bad       malformed checkpoints are refused, the message naming tensor and field
  e2e       eval of the folder (finite perplexity below 2x bt-small's BF16 reference, within
            0.5 % of the numpy-dequantized model in f32), `run` to a bt gguf (vq tensors copied,
            not re-quantized), the gguf decodes to the same weights and evaluates to the same
            perplexity; generate gives the same greedy text from both

usage: test_vptq.py PART BUILD_BIN PLUGIN_DIR SHARED WORK"""
import hashlib
import json
import math
import os
import re
import shutil
import subprocess
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import vptq_ref  # noqa: E402
import vptq_st as st  # noqa: E402

PART, BIN, PLUGINS, SHARED, WORK = sys.argv[1:6]
DUMP = os.path.join(BIN, "vptq_dump")
BT = os.path.join(BIN, "bt-pipeline")
FIX = os.path.join(WORK, "fix")
TEXT = os.path.join(SHARED, "data", "eval_kjv.txt")
WINDOWS = "3"
fails = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        fails.append(what)


def run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, **kw)


# ---- fixture ----------------------------------------------------------------------------------
def fixture():
    h = hashlib.sha256()
    for f in ("make_vptq_fixture.py", "vptq_st.py"):
        h.update(open(os.path.join(HERE, f), "rb").read())
    stamp = os.path.join(FIX, "stamp")
    if os.path.exists(stamp) and open(stamp).read() == h.hexdigest():
        print("fixture up to date")
        return
    shutil.rmtree(FIX, ignore_errors=True)
    r = run([sys.executable, os.path.join(HERE, "make_vptq_fixture.py"),
             os.path.join(SHARED, "models", "bt-small"), FIX])
    print(r.stdout + r.stderr)
    check(r.returncode == 0, "make_vptq_fixture.py")
    if r.returncode == 0:
        open(stamp, "w").write(h.hexdigest())


# ---- decode -----------------------------------------------------------------------------------
def dump(model, out):
    """vptq_dump -> ({name: (fmt, rows, cols, src, flags)}, stderr, rc)"""
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    r = run([DUMP, PLUGINS, model, out])
    info = {}
    for ln in r.stdout.splitlines()[1:]:
        name, fmt, shape, src, flags, _ = ln.split()
        rows, cols = map(int, shape.split("x"))
        info[name] = (fmt, rows, cols, src, int(flags.split("=")[1]))
    return (r.stdout.splitlines()[0] if r.stdout else ""), info, r.stderr, r.returncode


def load(out, name, rows, cols):
    return np.fromfile(os.path.join(out, name + ".f32"), dtype=np.float32).reshape(rows, cols)


def ulp(x, dtype):
    """spacing of the model dtype at |x| (normal range; subnormal spacing below)"""
    mant, tiny = (10, 2.0 ** -24) if dtype == "F16" else (7, 2.0 ** -133)
    e = np.floor(np.log2(np.maximum(np.abs(x), 1e-30)))
    return np.maximum(2.0 ** (e - mant), tiny)


def decode_one(variant):
    folder = os.path.join(FIX, variant)
    head, info, err, rc = dump(folder, os.path.join(WORK, "dump_" + variant))
    check(rc == 0 and head.startswith("reader vptq"), "%s: opened by reader vptq (%s) %s" % (variant, head, err[-300:] if rc else ""))
    if rc:
        return
    ref = vptq_ref.dequant(folder, "bt")
    ref32 = vptq_ref.dequant(folder, "f32")
    refm = vptq_ref.dequant(folder, "model")
    T = st.read_model(folder)
    n_vq = n_exact = 0
    worst = 0.0
    for name, (fmt, rows, cols, src, flags) in sorted(info.items()):
        got = load(os.path.join(WORK, "dump_" + variant), name, rows, cols)
        want = ref[src].reshape(rows, cols)
        same = np.array_equal(got.view(np.uint32), want.view(np.uint32))
        if not same:
            d = np.argwhere(got != want)[0]
            check(False, "%s: %s differs from numpy at %s: %r vs %r" % (variant, name, tuple(d), got[tuple(d)], want[tuple(d)]))
            continue
        if not fmt.startswith("vq"):
            continue
        n_vq += 1
        n_exact += np.array_equal(got, ref32[src].reshape(rows, cols))
        P = src[:-len(".weight")]
        dtype = T[P + ".centroids.weight"][0]
        # VPTQ's model-dtype arithmetic rounds c + r, (c + r) s and + b: three errors of half an
        # ulp of a rounded value (up to twice the size of the terms |(c + r) s| + |b|; the first
        # one scaled by |s|): bt's f32 result is within 4 ulp of the model dtype at that size
        e = vptq_ref.layer_entry(json.load(open(os.path.join(folder, "config.json")))["quantization_config"], P)
        mag = np.abs(want)
        if e.get("enable_norm"):
            s = vptq_ref.Arith("bt", dtype).val(*T[P + ".weight_scale"])
            b = vptq_ref.Arith("bt", dtype).val(*T[P + ".weight_bias"])
            mag = np.abs(want - b) + np.abs(b)
        tol = 4 * ulp(mag, dtype)
        if e.get("enable_norm") and dtype != "F16":  # + the f16 rounding of a bf16 bias bt stores
            tol = tol + ulp(np.abs(b), "F16")
        diff = np.abs(got - refm[src].reshape(rows, cols))
        worst = max(worst, float((diff / tol).max()))
        if (diff > tol).any():
            check(False, "%s: %s (%s) more than 4 ulp (%s) from VPTQ's model-dtype arithmetic (%.3g x tol)"
                  % (variant, name, fmt, dtype, float((diff / tol).max())))
        want_halves = ".attn_q." in name or ".attn_k." in name
        if want_halves != bool(flags & 1):
            check(False, "%s: %s rope_halves flag %d" % (variant, name, flags))
    check(n_vq == 56, "%s: 56 vq tensors, each bit-identical to numpy (f16-valued codebooks/scales, f32 arithmetic)" % variant)
    check(worst <= 1.0, "%s: every vq tensor within 4 ulp of VPTQ's model-dtype arithmetic (worst %.3f of the tolerance)" % (variant, worst))
    conv, inexact = vptq_ref.count_inexact(folder)
    m = re.search(r"vptq: (\d+) of (\d+) bf16/f32 codebook and scale values do not convert exactly", err)
    if variant == "fp16":
        check(n_exact == 56 and not m, "fp16: identical to the plain float32 reference too; no conversion line")
    else:
        check(m is not None and int(m.group(1)) == inexact and int(m.group(2)) == conv and inexact > 0,
              "bf16: INFO line counts %d of %d values not exact in f16 (numpy: %d of %d)" %
              (int(m.group(1)) if m else -1, int(m.group(2)) if m else -1, inexact, conv))
    fmts = {n: f[0] for n, f in info.items()}
    check(fmts.get("blk.0.attn_v.weight") == "vq12x10r10" and fmts.get("blk.3.attn_output.weight") == "vq4x8r7g2o8v4x10np"
          and fmts.get("blk.7.attn_k.weight") == "vq8x8r4g2np" and fmts.get("blk.2.ffn_up.weight") == "vq2x4r4n",
          "%s: vq parameters from the config (%s, %s)" % (variant, fmts.get("blk.0.attn_v.weight"), fmts.get("blk.3.attn_output.weight")))


def decode():
    decode_one("fp16")
    decode_one("bf16")


# ---- malformed ----------------------------------------------------------------------------------
def variant(name, cfg_edit=None, tensor_edit=None):
    """a copy of the fp16 fixture (shards linked) with config.json or one tensor changed"""
    src, d = os.path.join(FIX, "fp16"), os.path.join(WORK, "bad", name)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    for f in os.listdir(src):
        if f.endswith(".safetensors"):
            os.symlink(os.path.join(src, f), os.path.join(d, f))
        else:
            shutil.copy(os.path.join(src, f), os.path.join(d, f))
    if cfg_edit:
        cfg = json.load(open(os.path.join(d, "config.json")))
        cfg_edit(cfg["quantization_config"]["config_for_layers"])
        json.dump(cfg, open(os.path.join(d, "config.json"), "w"))
    if tensor_edit:
        tname, fn = tensor_edit
        wm = json.load(open(os.path.join(d, "model.safetensors.index.json")))["weight_map"]
        shard = wm[tname]
        T = st.read_file(os.path.join(src, shard))
        items = []
        for n in sorted(T):
            dt, a = T[n]
            if n == tname:
                a = fn(a.copy())
            items.append((n, dt, np.ascontiguousarray(a)))
        os.unlink(os.path.join(d, shard))
        st.write_file(os.path.join(d, shard), items)
    return d


def bad():
    L = "model.layers.2.self_attn.o_proj"
    K = "model.layers.1.self_attn.k_proj"

    def setf(P, k, v):
        def f(c):
            c[P][k] = v
        return f

    def dup_perm(a):
        a[5] = a[6]
        return a

    def oidx(a):
        a[0, 3, 2] = 1500
        return a

    cases = [
        ("truncated_indices", None, (K + ".indices", lambda a: a[:, :-1, :]),
         [K + ".indices'", "shape {2, 31, 96}", "expected {2, 32, 96}"]),
        ("bad_perm", None, (L + ".perm", dup_perm), [L + ".perm'", "not a permutation"]),
        ("outlier_code", None, (L + ".outlier_indices", oidx),
         [L + ".outlier_indices'", "code 1500", "out of range"]),
        ("unpacked", setf(K, "is_indice_packed", False), None, [K + ".indices'", "is_indice_packed"]),
        ("as_float", setf(K, "indices_as_float", True), None, [K + ".indices'", "indices_as_float"]),
        ("group_size", setf(L, "group_size", 250), None, [L + ".indices'", "group_size 250"]),
        ("vector_len", setf(K, "vector_lens", [-1, 40]), None, [K + ".indices'", "vector_lens[1] = 40"]),
        ("k1_not_pow2", setf(K, "num_centroids", [-1, 200]), None, [K + ".centroids.weight'", "num_centroids[1] = 200"]),
        ("k1_too_big", setf(K, "num_centroids", [-1, 131072]), None, [K + ".centroids.weight'", "num_centroids[1] = 131072"]),
        ("outlier_residual", setf(L, "num_res_centroids", [16, 128]), None, [L + ".outlier_centroids.weight'", "num_res_centroids[0] = 16"]),
        ("field_type", setf(K, "vector_lens", "8"), None, [K + "'", "'vector_lens'", "list of two integers"]),
        ("field_missing", lambda c: c[K].pop("num_centroids"), None, [K + "'", "'num_centroids' is missing"]),
        ("out_features", setf(K, "out_features", 512), None, [K + ".weight'", "out_features = 512"]),
        ("norm_off", setf(K, "enable_norm", False), None, [K + ".weight_scale'", "present"]),
        ("residual_wrong", setf(K, "num_res_centroids", [-1, 32]), None, [K + ".indices'", "contradicts"]),
        ("no_entry", lambda c: c.pop(K), None, [K + ".indices'", "no entry"]),
    ]
    for name, ce, te, want in cases:
        d = variant(name, ce, te)
        r = run([DUMP, PLUGINS, d])
        msg = r.stderr.strip().splitlines()[-1] if r.stderr.strip() else ""
        ok = r.returncode == 1 and all(w in msg for w in want)
        check(ok, "%s refused: %s" % (name, msg))


# ---- eval and convert --------------------------------------------------------------------------
def ppl(model):
    r = run([BT, "eval", "--model", model, "--text", TEXT, "--max-windows", WINDOWS])
    m = re.search(r"perplexity ([0-9.]+|nan|inf) over", r.stdout + r.stderr)
    if r.returncode or not m:
        print(r.stdout + r.stderr)
        return float("nan")
    return float(m.group(1))


def e2e():
    folder = os.path.join(FIX, "fp16")
    ref = json.load(open(os.path.join(SHARED, "models", "bt-small", "reference.json")))["perplexity_eval_kjv_bf16"]
    p_fold = ppl(folder)
    check(math.isfinite(p_fold) and p_fold < 2 * ref, "eval of the folder: perplexity %.4f (< 2 x %.3f)" % (p_fold, ref))
    # the numpy-dequantized model as a plain F32 checkpoint
    deq = os.path.join(WORK, "dequant")
    shutil.rmtree(deq, ignore_errors=True)
    os.makedirs(deq)
    W = vptq_ref.dequant(folder, "bt")
    st.write_model(deq, [(n, "F32", W[n]) for n in sorted(W)])
    cfg = json.load(open(os.path.join(folder, "config.json")))
    del cfg["quantization_config"]
    json.dump(cfg, open(os.path.join(deq, "config.json"), "w"))
    shutil.copy(os.path.join(folder, "tokenizer.json"), deq)
    p_np = ppl(deq)
    check(abs(p_fold - p_np) <= 0.005 * p_np, "numpy-dequantized model (F32): %.4f, folder %.4f" % (p_np, p_fold))
    # run: the folder to a bt gguf, vq tensors copied
    out = os.path.join(WORK, "out")
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    ini = os.path.join(out, "convert.ini")
    with open(ini, "w") as f:
        f.write("[input]\npath = %s\n[output]\npath = %s/fix.gguf\nreport = %s/report.json\n" % (folder, out, out))
    r = run([BT, "-q", "run", ini])
    check(r.returncode == 0, "run: folder -> gguf %s" % (r.stderr[-400:] if r.returncode else ""))
    if r.returncode:
        return
    rep = json.load(open(os.path.join(out, "report.json")))
    copied = [t for t in rep["tensors"] if t["note"].startswith("kept as read")]
    check(len(copied) == 56 and all(t["type_out"].startswith("vq") for t in copied),
          "run: 56 vq tensors kept as read, none re-quantized (%d)" % len(copied))
    gguf = os.path.join(out, "fix.gguf")
    _, ginfo, err, rc = dump(gguf, os.path.join(WORK, "dump_gguf"))
    _, finfo, _, _ = dump(folder, os.path.join(WORK, "dump_fp16"))
    same = rc == 0 and set(ginfo) == set(finfo)
    for n in sorted(finfo) if same else []:
        f, g = finfo[n], ginfo[n]
        a = load(os.path.join(WORK, "dump_fp16"), n, f[1], f[2])
        b = load(os.path.join(WORK, "dump_gguf"), n, g[1], g[2])
        fmt_ok = f[0] == g[0] or (f[1] == 1 and g[0] == "f32")  # 1-D tensors are stored as f32
        if not fmt_ok or f[4] != g[4] or not np.array_equal(a.view(np.uint32), b.view(np.uint32)):
            same = False
            print("differs:", n, f, g)
    check(same, "gguf: same tensors, formats, rope_halves flags and decoded weights as the folder %s" % (err[-300:] if rc else ""))
    p_gguf = ppl(gguf)
    check(p_gguf == p_fold, "eval of the gguf: %.4f (folder %.4f)" % (p_gguf, p_fold))
    # generate: the folder and its gguf give the same greedy text
    gen = []
    for m in (folder, gguf):
        r = run([BT, "generate", "--model", m, "--prompt", "In the beginning God created", "-n", "12",
                 "--temp", "0"])
        gen.append(r.stdout if r.returncode == 0 else "error: " + r.stderr[-300:])
    check(not gen[0].startswith("error") and len(gen[0].split()) > 6 and gen[0] == gen[1],
          "generate (folder = gguf, greedy): %r" % gen[0].strip()[:120])


{"fixture": fixture, "decode": decode, "bad": bad, "e2e": e2e}[PART]()
sys.exit(1 if fails else 0)
