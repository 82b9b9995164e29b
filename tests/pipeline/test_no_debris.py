"""test_no_debris.py - a conversion killed with SIGKILL at any point leaves nothing in the output
folder (the gguf writer's temporaries are anonymous), and pid-tagged leftovers of dead writers
(a filesystem without O_TMPFILE, or the instant between link and rename) are removed by the next
writer into that folder while those of a live process are kept."""
import os
import signal
import subprocess
import sys
import tempfile
import time

BIN = os.environ["BT_BIN"]
SHARED = os.environ["BT_SHARED"]
failures = []


def dead_pid():
    pid = 4_000_000
    while True:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return pid
        except PermissionError:
            pass
        pid += 1


def main():
    with tempfile.TemporaryDirectory() as tmp:
        out_dir = os.path.join(tmp, "out")
        os.mkdir(out_dir)
        ini = os.path.join(tmp, "c.ini")
        open(ini, "w").write(f"[input]\npath = {SHARED}/models/bt-small\n[quantize]\nmethod = residual\nbases = 2\n"
                             f"[output]\npath = {out_dir}/m.gguf\ntype = mtq\n")
        t0 = time.time()
        p = subprocess.run([BIN, "-q", "run", ini], capture_output=True, text=True)
        full = time.time() - t0
        if p.returncode:
            print(p.stderr)
            return 1
        os.unlink(os.path.join(out_dir, "m.gguf"))
        kills = 0
        for k in range(14):
            delay = full * (0.05 + 0.9 * k / 13)
            proc = subprocess.Popen([BIN, "-q", "run", ini], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(delay)
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                kills += 1
            proc.wait()
            left = sorted(os.listdir(out_dir))
            debris = [f for f in left if f != "m.gguf"]
            if debris:
                failures.append(f"kill at {delay:.2f}s")
                print(f"FAIL kill at {delay:.2f}s of {full:.2f}s left {debris}")
            if "m.gguf" in left:
                os.unlink(os.path.join(out_dir, "m.gguf"))
        print(f"{kills} conversions killed at 5..95% of {full:.2f}s: no debris" if not failures else "")
        if kills < 8:
            failures.append(f"only {kills} kills landed")
        # leftovers tagged with a dead pid go, a live writer's stay
        dead = os.path.join(out_dir, f".m.gguf.tmp.{dead_pid()}.0")
        dead2 = os.path.join(out_dir, f".m.gguf.data.{dead_pid()}.AbC123")
        live = os.path.join(out_dir, f".m.gguf.tmp.{os.getpid()}.0")
        other = os.path.join(out_dir, ".other.gguf.tmp.1.0")
        for f in (dead, dead2, live, other):
            open(f, "w").write("x")
        tiny = os.path.join(tmp, "t.ini")
        open(tiny, "w").write(f"[input]\npath = {SHARED}/models/bt-tiny\n[quantize]\nmethod = absmean\n"
                              f"[output]\npath = {out_dir}/m.gguf\n")
        if subprocess.run([BIN, "-q", "run", tiny]).returncode:
            failures.append("tiny conversion")
        for f, want in ((dead, False), (dead2, False), (live, True), (other, True)):
            if os.path.exists(f) != want:
                failures.append(f"{os.path.basename(f)} {'kept' if not want else 'removed'}")
                print(f"FAIL {os.path.basename(f)} should be {'kept' if want else 'removed'}")
    print(f"{len(failures)} failures")
    return 1 if failures else 0


sys.exit(main())
