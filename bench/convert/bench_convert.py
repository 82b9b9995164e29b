#!/usr/bin/env python3
"""bench_convert.py - conversion throughput and peak memory of bt-pipeline (absmean/lsq -> TQ2_0).

Models: ../shared/models/bt-small and a generated Llama-3-8B-shaped checkpoint (N layers of
4096x4096 q/o, 1024x4096 k/v, 14336x4096 gate/up, 4096x14336 down, BF16 random normal weights),
written on the fly into a temporary folder and deleted afterwards (never committed).
Prints one JSON object. Peak RSS comes from getrusage of the child (ru_maxrss); CPU seconds
(user + sys) are reported beside wall time because shared machines make wall time noisy:
input_mb_per_cpu_s is the converter's throughput per core-second of work.

usage: bench_convert.py [--bin build/bin/bt-pipeline] [--layers 5] [--threads 1,2] [--keep DIR]
"""
import argparse
import json
import os
import resource
import shutil
import struct
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(os.path.dirname(HERE))
SHARED = os.environ.get("BT_SHARED", os.path.join(SRC, "..", "shared"))


def write_safetensors(path, tensors):
    """tensors: list of (name, shape); BF16 random normal * 0.02, written in chunks"""
    hdr, off = {}, 0
    for name, shape in tensors:
        n = int(np.prod(shape)) * 2
        hdr[name] = {"dtype": "BF16", "shape": list(shape), "data_offsets": [off, off + n]}
        off += n
    h = json.dumps(hdr).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    rng = np.random.default_rng(1234)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for name, shape in tensors:
            rows = shape[0]
            cols = int(np.prod(shape[1:])) if len(shape) > 1 else 1
            step = max(1, (1 << 24) // cols)
            for r in range(0, rows, step):
                nr = min(step, rows - r)
                a = (rng.standard_normal((nr, cols), dtype=np.float32) * 0.02)
                u = a.view(np.uint32)
                f.write(((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16).tobytes())


def make_8b(folder, layers):
    os.makedirs(folder, exist_ok=True)
    E, F, H, KV, V = 4096, 14336, 32, 8, 8192
    cfg = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": E,
           "intermediate_size": F, "num_attention_heads": H, "num_key_value_heads": KV,
           "num_hidden_layers": layers, "vocab_size": V, "max_position_embeddings": 8192,
           "rms_norm_eps": 1e-5, "rope_theta": 500000.0, "tie_word_embeddings": False,
           "hidden_act": "silu", "bos_token_id": 0, "eos_token_id": 1}
    json.dump(cfg, open(os.path.join(folder, "config.json"), "w"))
    shutil.copy(os.path.join(SRC, "models", "bt-tiny", "tokenizer.json"), folder)
    t = [("model.embed_tokens.weight", (V, E)), ("lm_head.weight", (V, E)), ("model.norm.weight", (E,))]
    for i in range(layers):
        p = f"model.layers.{i}."
        t += [(p + "input_layernorm.weight", (E,)), (p + "post_attention_layernorm.weight", (E,)),
              (p + "self_attn.q_proj.weight", (E, E)), (p + "self_attn.k_proj.weight", (KV * 128, E)),
              (p + "self_attn.v_proj.weight", (KV * 128, E)), (p + "self_attn.o_proj.weight", (E, E)),
              (p + "mlp.gate_proj.weight", (F, E)), (p + "mlp.up_proj.weight", (F, E)),
              (p + "mlp.down_proj.weight", (E, F))]
    write_safetensors(os.path.join(folder, "model.safetensors"), t)
    return max(int(np.prod(s)) * 2 for _, s in t)


def largest_tensor_bytes(model):
    from glob import glob
    best = 0
    for f in glob(os.path.join(model, "*.safetensors")):
        with open(f, "rb") as fh:
            n = struct.unpack("<Q", fh.read(8))[0]
            for k, e in json.loads(fh.read(n)).items():
                if k != "__metadata__":
                    best = max(best, e["data_offsets"][1] - e["data_offsets"][0])
    return best


def measure(binary, model, tmp, threads, tag):
    # peak RSS of just this child: run it through a tiny wrapper so RUSAGE_CHILDREN is fresh
    code = ("import resource,subprocess,sys,json;p=subprocess.run(sys.argv[1:]);"
            "u=resource.getrusage(resource.RUSAGE_CHILDREN);"
            "print(json.dumps({'rc':p.returncode,'maxrss_kb':u.ru_maxrss,'cpu_s':u.ru_utime+u.ru_stime}))")
    ini = os.path.join(tmp, f"{tag}.ini")
    out = os.path.join(tmp, f"{tag}.gguf")
    rep = os.path.join(tmp, f"{tag}.json")
    with open(ini, "w") as f:
        f.write(f"[pipeline]\nthreads = {threads}\n[input]\npath = {model}\n[quantize]\nmethod = absmean\n"
                f"scale = lsq\n[output]\npath = {out}\ntype = tq2_0\nreport = {rep}\n")
    t0 = time.time()
    p = subprocess.run([sys.executable, "-c", code, binary, "-q", "run", ini], capture_output=True, text=True)
    wall = time.time() - t0
    info = json.loads(p.stdout.strip().splitlines()[-1])
    if info["rc"]:
        sys.exit(f"bt-pipeline failed on {model}: {p.stderr}")
    tot = json.load(open(rep))["totals"]
    os.remove(out)
    return {"threads": threads, "wall_s": round(tot["wall_seconds"], 3),
            "input_mb_s": round(tot["bytes_in"] / 1e6 / tot["wall_seconds"], 1),
            "input_mb_s_per_core": round(tot["bytes_in"] / 1e6 / tot["wall_seconds"] / threads, 1),
            "cpu_s": round(info["cpu_s"], 3),
            "input_mb_per_cpu_s": round(tot["bytes_in"] / 1e6 / info["cpu_s"], 1),
            "peak_rss_mb": round(info["maxrss_kb"] / 1024, 1)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.path.join(SRC, "build", "bin", "bt-pipeline"))
    ap.add_argument("--layers", type=int, default=5)
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--keep", default=None, help="folder for the generated model (kept)")
    ap.add_argument("--skip-8b", action="store_true")
    a = ap.parse_args()
    threads = [int(x) for x in a.threads.split(",")]
    res = {"bench": "convert", "method": "absmean lsq -> tq2_0", "cpu_count": os.cpu_count(), "models": []}
    with tempfile.TemporaryDirectory() as tmp:
        models = [("bt-small", os.path.join(SHARED, "models", "bt-small"))]
        if not a.skip_8b:
            folder = a.keep or os.path.join(tmp, "llama3-8b-shaped")
            if not os.path.exists(os.path.join(folder, "model.safetensors")):
                make_8b(folder, a.layers)
            models.append((f"llama3-8b-shaped-{a.layers}L", folder))
        for name, model in models:
            largest = largest_tensor_bytes(model)
            size = sum(os.path.getsize(os.path.join(model, f)) for f in os.listdir(model) if f.endswith(".safetensors"))
            # warm the page cache so we measure the converter, not the disk
            subprocess.run(["cat"] + [os.path.join(model, f) for f in os.listdir(model) if f.endswith(".safetensors")],
                           stdout=subprocess.DEVNULL)
            runs = [measure(a.bin, model, tmp, t, f"{name}-t{t}") for t in threads]
            budget = 2 * largest / 2**20 + 64
            res["models"].append({"model": name, "input_bytes": size, "largest_tensor_mb": round(largest / 2**20, 1),
                                  "rss_budget_mb": round(budget, 1), "runs": runs,
                                  "rss_within_budget": all(r["peak_rss_mb"] <= budget for r in runs)})
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
