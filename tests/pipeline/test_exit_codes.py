"""test_exit_codes.py - the exit code says in which phase a run failed: 2 for a usage or
configuration error (found before any work), 1 for a failure while working. A writer that fails
during the work (a tensor it cannot store, a full disk while spilling or while writing the
output) exits 1 and leaves nothing in the output folder. The full disk is simulated with
RLIMIT_FSIZE (SIGXFSZ ignored: writes past the limit fail with EFBIG), which also holds for root,
whom a read-only folder does not stop."""
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile

BIN = os.environ["BT_BIN"]
SHARED = os.environ["BT_SHARED"]
failures = []


def run(ini, fsize=None):
    def limit():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
    return subprocess.run([BIN, "-q", "run", ini], capture_output=True, text=True,
                          preexec_fn=limit if fsize else None)


def expect(name, ini, rc, part, out_dir=None, fsize=None):
    p = run(ini, fsize)
    left = sorted(os.listdir(out_dir)) if out_dir and os.path.isdir(out_dir) else []
    ok = p.returncode == rc and part in p.stderr and not left
    if not ok:
        failures.append(name)
        print(f"FAIL {name}: rc {p.returncode} (want {rc}), left {left}, stderr: {p.stderr.strip()[:400]}")
    else:
        print(f"ok   {name}: rc {rc}: {p.stderr.strip().splitlines()[-1][:150]}")


def write_ini(path, model, out, extra=""):
    with open(path, "w") as f:
        f.write(f"[input]\npath = {model}\n[output]\npath = {out}\n{extra}")


def main():
    tiny = os.path.join(SHARED, "models", "bt-tiny")
    with tempfile.TemporaryDirectory() as tmp:
        out_dir = os.path.join(tmp, "out")
        os.mkdir(out_dir)
        out = os.path.join(out_dir, "m.gguf")
        ini = os.path.join(tmp, "c.ini")

        # a configuration error is found before any work: 2
        write_ini(ini, tiny, out, "colour = blue\n")
        expect("config error", ini, 2, "unknown key 'colour'", out_dir)

        # the writer refuses a tensor during the work (q/k need head counts, and this model has
        # no config.json): 1, not 2, although the writer calls it an invalid argument
        bare = os.path.join(tmp, "bare")
        os.mkdir(bare)
        shutil.copy(os.path.join(tiny, "model.safetensors"), bare)
        write_ini(ini, bare, out)
        expect("writer refuses a tensor", ini, 1, "does not say how many attention heads", out_dir)

        # config.json contradicts the tensors: refused when the model is opened, before any work
        # (a failure of the input: 1), naming the key, its value, the tensor and its shape
        wrong = os.path.join(tmp, "wrong")
        os.mkdir(wrong)
        shutil.copy(os.path.join(tiny, "model.safetensors"), wrong)
        shutil.copy(os.path.join(tiny, "tokenizer.json"), wrong)
        cfg = open(os.path.join(tiny, "config.json")).read().replace('"vocab_size": 8192', '"vocab_size": 8000')
        open(os.path.join(wrong, "config.json"), "w").write(cfg)
        write_ini(ini, wrong, out)
        expect("config contradicts tensors", ini, 1,
               "vocab_size = 8000: 'model.embed_tokens.weight' has shape 8192x256, expected 8000x256", out_dir)

        # a full disk while the writer spills tensors, and while it writes the output at the end
        write_ini(ini, tiny, out)
        p = run(ini)
        if p.returncode or not os.path.exists(out):
            print(f"FAIL reference conversion: {p.stderr}")
            return 1
        size = os.path.getsize(out)
        os.unlink(out)
        expect("full disk while spilling", ini, 1, "File too large", out_dir, fsize=1 << 20)
        # the spill file holds only the tensor data: it fits, the output (header + data) does not
        expect("full disk while finishing", ini, 1, "writing output: File too large", out_dir,
               fsize=size - 1)
    print("%d failures" % len(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
