"""bitnet_hf_check.py - bt's BitNet b1.58 runner against Hugging Face transformers' own BitNet
implementation (modeling_bitnet + integrations/bitnet, torch on the CPU), on the random fixtures
of tests/model/bitnet_fixture.py. Not in CI: it needs torch and transformers (PyPI), e.g.
    python3 -m venv /tmp/hfvenv && /tmp/hfvenv/bin/pip install torch transformers accelerate numpy
    /tmp/hfvenv/bin/python tests/interop/bitnet_hf_check.py build
For each fixture (packed autobitlinear + relu2, packed bitlinear + relu2, bf16 masters) it prints
the per-position max |logit difference| of bt (dump_logits on the HF folder) and of the numpy
reference against transformers in float32, and exits 1 if bt disagrees: the median position
must be within 1e-4 of transformers and every position no further from transformers than the
numpy reference (float64, exact f32 scales) is, plus 1e-4. Why not a plain bound: the 8-bit
activations are discontinuous, and where x * s lands within float error of a .5 step torch
(float32) rounds it the other way than numpy and bt do; that one step moves the logits of that and
every later position by up to ~0.07 (autobitlinear fixture: numpy and bt are 0.065 off
transformers there, 9e-7 off each other). A wrong scale, norm, activation or rope moves every
position (the fp16 weight scales bt used before plugin ABI 2.3: median 0.036). The bf16-master
fixture is run by transformers without quantization (its linears are plain nn.Linear there), so
only the packed fixtures are compared; it is reported for information.
usage: bitnet_hf_check.py BUILD_DIR"""
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch
from transformers import AutoModelForCausalLM

SRC = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(SRC, "tests", "model"))
import bitnet_fixture as bf  # noqa: E402

# absolute: with a relative BT_PLUGIN_PATH bt found no plugins
BUILD = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(SRC, "build"))
TOK = os.path.join(SRC, "..", "shared", "models", "bt-tiny", "tokenizer.json")
IDS = [0, 17, 523, 4095, 88, 1234, 7, 7, 300, 8000, 42, 1, 2048, 99, 5000, 12, 640, 3, 1500, 77]


def hf_logits(folder):
    # dtype: the transformers >= 4.56 name of torch_dtype
    m = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    # transformers 5.x's BitNet quantizer loads the non-ternary modules (embeddings, norms, lm_head)
    # in bfloat16 whatever dtype says, and F.linear then refuses the bf16 x f32 mix: compute in f32
    torch.nn.Module.float(m)  # (PreTrainedModel.float refuses a quantized model)
    m.eval()
    with torch.no_grad():
        return m(torch.tensor([IDS])).logits[0].float().numpy()


def bt_logits(folder, out):
    subprocess.run([os.path.join(BUILD, "bin", "dump_logits"), folder, ",".join(map(str, IDS)), out,
                    "cpu", "0", "1e9"], check=True, capture_output=True,
                   env=dict(os.environ, BT_PLUGIN_PATH=os.path.join(BUILD, "lib", "bt")))
    return np.fromfile(out, dtype=np.float32).reshape(len(IDS), -1)


def main():
    bad = 0
    cases = [("packed-auto-relu2", dict(kind="packed", act="relu2", linear_class="autobitlinear")),
             ("packed-bitlinear-relu2", dict(kind="packed", act="relu2", linear_class="bitlinear")),
             ("bf16-relu2", dict(kind="bf16", act="relu2"))]
    with tempfile.TemporaryDirectory() as tmp:
        for tag, kw in cases:
            d = os.path.join(tmp, tag)
            cfg, w = bf.make(d, TOK, **kw)
            hf = hf_logits(d)
            bt = bt_logits(d, os.path.join(tmp, tag + ".f32"))
            ref = bf.forward(cfg, w, IDS, fp16_scales=False)
            ref16 = bf.forward(cfg, w, IDS, fp16_scales=True)  # the scales as bt holds them (fp16)
            e_bt = np.abs(bt - hf).max(-1)
            e_np = np.abs(ref - hf).max(-1)
            e_16 = np.abs(ref16 - hf).max(-1)
            e_b16 = np.abs(bt - ref16).max(-1)
            e_bnp = np.abs(bt - ref).max(-1)
            # see the top: bt as close to transformers as the float64 numpy reference, +1e-4
            ok = np.median(e_bt) <= 1e-4 and bool(np.all(e_bt <= e_np + 1e-4))
            print(f"{tag}: bt vs transformers median {np.median(e_bt):.3g} 75th percentile "
                  f"{np.percentile(e_bt, 75):.3g} max {e_bt.max():.3g} ({'ok' if ok else 'DIFFERS'}); "
                  f"numpy vs transformers median {np.median(e_np):.3g} max {e_np.max():.3g}; "
                  f"numpy(fp16 scales) vs transformers median {np.median(e_16):.3g} "
                  f"max {e_16.max():.3g}; "
                  f"bt vs numpy(fp16 scales) median {np.median(e_b16):.3g} max {e_b16.max():.3g}; "
                  f"bt vs numpy median {np.median(e_bnp):.3g} max {e_bnp.max():.3g}; "
                  f"logits up to {np.abs(hf).max():.2f}" + ("" if kw["kind"] == "packed" else " (information only)"))
            print(f"  per position, bt vs transformers: {np.array2string(e_bt, precision=2)}")
            if kw["kind"] == "packed" and not ok:
                bad += 1
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
