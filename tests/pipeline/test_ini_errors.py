"""test_ini_errors.py - every INI mistake is reported with file:line, exit code 2, before any
work (no output file)."""
import os
import subprocess
import sys
import tempfile

BIN = os.environ["BT_BIN"]
SHARED = os.environ["BT_SHARED"]
TINY = os.path.join(SHARED, "models", "bt-tiny")
failures = []

GOOD = f"""[pipeline]
threads = 1
[input]
path = {TINY}
[quantize]
method = absmean
[output]
path = out.gguf
"""

CASES = [
    # (name, ini text, expected line, expected message part)
    ("unknown_section", GOOD + "[bogus]\nx = 1\n", 9, "unknown section [bogus]"),
    ("unknown_key", GOOD.replace("method = absmean", "method = absmean\nblok_size = 256"), 7, "unknown key 'blok_size'"),
    ("bad_int", GOOD.replace("method = absmean", "method = absmean\nblock_size = 100x"), 7, "expected an integer"),
    ("out_of_range", GOOD.replace("method = absmean", "method = absmean\nblock_size = 1024"), 7, "out of range"),
    ("bad_enum", GOOD.replace("method = absmean", "method = absmean\nscale = median"), 7, "expected one of lsq|absmean"),
    ("bad_type", GOOD + "type = tq3_0\n", 9, "expected one of tq2_0|tq1_0|mtq"),
    ("bad_threads", GOOD.replace("threads = 1", "threads = -3"), 2, "out of range"),
    # values the plugin itself refuses when it opens: still before work, with the key's line
    ("plugin_value", GOOD.replace("method = absmean", "method = absmean\nblock_size = 100"), 7, "block_size"),
    ("too_many_threads", GOOD.replace("threads = 1", "threads = 1024"), 2, "out of range"),
    ("missing_path", GOOD.replace(f"path = {TINY}\n", "reader = auto\n"), 3, "missing required key 'path'"),
    ("no_plugin", GOOD.replace("method = absmean", "method = nosuch"), 6, "no quantizer plugin named 'nosuch'"),
    ("bad_backend", GOOD.replace("threads = 1", "threads = 1\nbackend = nosuch"), 3, "no backend plugin named 'nosuch'"),
    ("duplicate", GOOD.replace("method = absmean", "method = absmean\nmethod = none"), 7, "duplicate key 'method'"),
    ("syntax", GOOD.replace("[output]", "[output\n"), 7, "syntax error"),
    ("key_outside", "x = 1\n" + GOOD, 1, "outside of any [section]"),
    ("bad_writer_opt", GOOD + "alignment = 12x\n", 9, "expected an integer"),
    # a backend's own options sit beside `backend =` in [pipeline], validated against its table
    ("backend_opt_unknown", GOOD.replace("threads = 1", "threads = 1\nbackend = cpu\ndevice = 1"), 4,
     "unknown key 'device' in [pipeline] (not an option of backend plugin 'cpu')"),
    ("backend_opt_auto", GOOD.replace("threads = 1", "threads = 1\ndevice = 1"), 3, "unknown key 'device' in [pipeline]"),
    # plugin folders and overrides the user names must make sense (docs/plugins-trust.md)
    ("plugin_dir_missing", GOOD.replace("threads = 1", "threads = 1\nplugin_dir = no-such-plugins"), 3,
     "[pipeline] plugin_dir: plugin folder"),
    ("override_unused", GOOD.replace("threads = 1", "threads = 1\noverride = absmean"), 3,
     "[pipeline] override: override 'absmean': no plugin of that name in a user folder"),
    ("override_bad_name", GOOD.replace("threads = 1", "threads = 1\noverride = Abs!"), 3,
     "'Abs!' is not a plugin name"),
]
# with the opencl backend built, its options are accepted and range-checked
if os.path.exists(os.path.join(os.path.dirname(BIN), "..", "lib", "bt", "libbt-backend-opencl.so")):
    CASES.append(("opencl_bad_type", GOOD.replace("threads = 1", "threads = 1\nbackend = opencl\ndevice_type = tpu"), 4,
                  "expected one of auto|gpu|cpu|all"))


def main():
    with tempfile.TemporaryDirectory() as tmp:
        for name, text, line, part in CASES:
            ini = os.path.join(tmp, name + ".ini")
            open(ini, "w").write(text)
            p = subprocess.run([BIN, "run", ini], capture_output=True, text=True)
            where = f"{ini}:{line}:"
            ok = p.returncode == 2 and where in p.stderr and part in p.stderr
            if not ok:
                failures.append(name)
                print(f"FAIL {name}: exit {p.returncode}, stderr: {p.stderr.strip()} (wanted '{where}' and '{part}')")
            if os.path.exists(os.path.join(tmp, "out.gguf")):
                failures.append(name + " (output written)")
        # the good file works and writes its output relative to the INI folder
        ini = os.path.join(tmp, "good.ini")
        open(ini, "w").write(GOOD)
        p = subprocess.run([BIN, "-q", "run", ini], capture_output=True, text=True)
        if p.returncode != 0 or not os.path.exists(os.path.join(tmp, "out.gguf")):
            failures.append("good")
            print("FAIL good:", p.stderr)
    print(f"{len(CASES) + 1 - len(failures)} passed, {len(failures)} failed")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
