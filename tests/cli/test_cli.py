"""test_cli.py - bt-pipeline's command-line conventions, one check per defect issue 14 found:
global flags after the sub-command (`run x.ini -q`), `--help`/`-h` on every command (rc 0,
stdout, not a file named --help), unknown and malformed arguments named in the error (rc 2:
`eval --bogus`, `generate -n abc`, `plugins --bogus`), `--plugin-dir` in the help; and the
conventions themselves: --opt=value, -n5, options before and after positionals, `-` for stdin
(run, tokenize, generate's prompt), generate's prompt file, a printed random seed, the same
seed giving the same text and top-k 1 giving the greedy text."""
import json
import os
import re
import subprocess
import sys
import tempfile

BIN = os.environ["BT_BIN"]
SHARED = os.environ["BT_SHARED"]
TINY = os.path.join(SHARED, "models", "bt-tiny")
failures = []


def run(*args, stdin=None):
    # errors="replace": sampled text of bt-tiny may end inside a UTF-8 sequence (bytes as tokens)
    return subprocess.run([BIN, *args], capture_output=True, text=True, errors="replace", input=stdin)


def check(name, cond, p=None):
    if cond:
        print(f"ok   {name}")
    else:
        failures.append(name)
        extra = f": rc {p.returncode}, stdout {p.stdout[:300]!r}, stderr {p.stderr[:400]!r}" if p else ""
        print(f"FAIL {name}{extra}")


def main():
    cmds = ["run", "quantize", "plugins", "inspect", "tokenize", "eval", "generate", "calibrate", "help"]
    for c in cmds:
        for h in ("--help", "-h"):
            p = run(c, h)
            check(f"{c} {h}", p.returncode == 0 and p.stdout.startswith(f"usage: bt-pipeline {c}") and not p.stderr, p)
    p = run("inspect", "--help")
    check("inspect --help opens no file", p.returncode == 0 and "cannot open" not in p.stderr, p)
    p = run("--help")
    check("--help lists --plugin-dir and every command",
          p.returncode == 0 and "--plugin-dir" in p.stdout and all(f"\n  {c} " in p.stdout for c in cmds), p)
    p = run("eval", "--help")
    check("eval --help lists the global options", "--plugin-dir" in p.stdout and "--quiet" in p.stdout, p)

    # bad arguments: rc 2, named
    for args, part in [(["eval", "--bogus"], "unknown option '--bogus'"),
                       (["plugins", "--bogus"], "unknown option '--bogus'"),
                       (["generate", "-m", TINY, "-n", "abc"], "-n 'abc': expected a whole number"),
                       (["generate", "-m", TINY, "--n-predict=abc"], "--n-predict 'abc'"),
                       (["eval", "-m", TINY, "-f", "x", "--ctx=1"], "--ctx '1': expected a whole number from 2"),
                       (["eval", "-m", TINY, "-f", "x", "--scoring", "most"], "--scoring 'most': expected one of all|second_half|llama"),
                       (["generate", "-m", TINY, "--temp", "hot"], "--temp 'hot': expected a number"),
                       (["eval", "-f", "x"], "missing -m/--model MODEL"),
                       (["eval", "-m", TINY, "--text"], "--text needs a value"),
                       (["eval", "-m", TINY, "-f"], "-f needs a value"),
                       (["plugins", "extra"], "unexpected argument 'extra'"),
                       (["run"], "missing FILE.ini"),
                       (["run", "a.ini", "b.ini"], "unexpected argument 'b.ini'"),
                       (["generate", "--chat=yes", "-m", TINY], "--chat takes no value"),
                       (["frobnicate"], "unknown command 'frobnicate'"),
                       (["--bogus", "plugins"], "unknown option '--bogus'"),
                       (["-q"], "no command given"),
                       (["eval", "-m", TINY, "-f", "x", "--r", "y"], "ambiguous option '--r' (--report, --rope?)")]:
        p = run(*args)
        check(f"{' '.join(args)} -> rc 2 naming it", p.returncode == 2 and part in p.stderr, p)

    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "m.gguf")
        ini = os.path.join(tmp, "c.ini")
        with open(ini, "w") as f:
            f.write(f"[input]\npath = {TINY}\n[output]\npath = {out}\n")
        # global flags after the sub-command and after its argument
        p = run("run", ini, "--qui")
        check("unique prefixes of long options", p.returncode == 0 and not p.stdout and os.path.exists(out), p)
        if os.path.exists(out):
            os.unlink(out)
        p = run("run", ini, "-q")
        check("run x.ini -q (global flag after the command)", p.returncode == 0 and not p.stdout and os.path.exists(out), p)
        ref = open(out, "rb").read()
        os.unlink(out)
        p = run("-q", "run", ini, "--plugin-dir", os.path.join(os.path.dirname(BIN), "..", "lib", "bt"))
        check("--plugin-dir after the command", p.returncode == 0 and os.path.exists(out), p)
        os.unlink(out)
        # the INI from stdin: the same file
        p = run("run", "-", "--quiet", stdin=open(ini).read())
        check("run - (INI on stdin)", p.returncode == 0 and os.path.exists(out) and open(out, "rb").read() == ref, p)
        p = run("run", "-", stdin="[input]\npath = x\ncolour = blue\n")
        check("run - names <stdin>:line in errors", p.returncode == 2 and "<stdin>:3" in p.stderr, p)

        # tokenize: FILE and - agree; options after the file
        text = os.path.join(tmp, "t.txt")
        with open(text, "w") as f:
            f.write("In the beginning God created the heaven and the earth.\n")
        a = run("tokenize", text, "-m", TINY)
        b = run("tokenize", "-", f"--model={TINY}", stdin=open(text).read())
        check("tokenize FILE == tokenize - (stdin)", a.returncode == 0 and a.stdout == b.stdout and len(a.stdout.split()) > 5, b)

        # generate: -p, -f FILE, -p -, piped stdin give the same greedy text
        prompt = "In the beginning God created"
        pf = os.path.join(tmp, "p.txt")
        with open(pf, "w") as f:
            f.write(prompt + "\n")
        g = [run("generate", "-m", TINY, "-p", prompt, "-n", "8", "-q"),
             run("generate", "-q", "-n8", "-f", pf, "-m", TINY),
             run("generate", "-m", TINY, "--prompt=-", "-n", "8", "-q", stdin=prompt),
             run("generate", "-m", TINY, "-n", "8", "-q", stdin=prompt + "\n")]
        check("generate: -p, -f FILE, -p -, stdin agree",
              all(x.returncode == 0 for x in g) and len({x.stdout for x in g}) == 1 and len(g[0].stdout) > len(prompt), g[0])
        # sampling: a random seed is printed; the printed seed repeats the text; top-k 1 = greedy
        s1 = run("generate", "-m", TINY, "-p", prompt, "-n", "16", "--temp", "1.2")
        seed = [ln.split()[1] for ln in s1.stderr.splitlines() if ln.startswith("seed ")]
        check("a random seed is printed to stderr", s1.returncode == 0 and len(seed) == 1, s1)
        if seed:
            s2 = run("generate", "-m", TINY, "-p", prompt, "-n", "16", "--temp", "1.2", "-s", seed[0])
            check("the printed seed repeats the text", s2.returncode == 0 and s2.stdout == s1.stdout, s2)
        k1 = run("generate", "-m", TINY, "-p", prompt, "-n", "8", "--temp", "0.9", "--top-k", "1", "-q")
        check("top-k 1 equals greedy", k1.returncode == 0 and k1.stdout == g[0].stdout, k1)
        p = run("generate", "-m", TINY, "-p", prompt, "-f", pf)
        check("-p and -f together refused", p.returncode == 2 and "give the prompt once" in p.stderr, p)
        # chat: a model without a template says so and how to go on; a named family works
        p = run("generate", "-m", TINY, "--chat", "-p", "hi", "-n", "4")
        check("--chat without a template in the model", p.returncode != 0 and "has no chat template" in p.stderr
              and "--chat-template" in p.stderr, p)
        p = run("generate", "-m", TINY, "-i", "--chat-template", "chatml", "-n", "4", stdin="hello\nagain\n")
        check("-i answers one turn per line", p.returncode == 0 and "chat template: chatml" in p.stderr
              and p.stderr.count("generated") == 2, p)
        turns = re.findall(r"\[(\d+) prompt tokens \((\d+) new\)", p.stderr)
        check("-i: the second turn reuses the cached conversation",
              len(turns) == 2 and int(turns[1][1]) < int(turns[1][0]) and int(turns[1][0]) > int(turns[0][0]), p)
        # the model's own template: tokenizer_config.json chat_template (HF folder of links to bt-tiny)
        src = os.path.join(os.environ["BT_SRC"], "tests", "model", "chat")
        for name, tmpl in (("chatml", "chatml.jinja"), ("unknown", "unknown.jinja")):
            d = os.path.join(tmp, "m-" + name)
            os.mkdir(d)
            for f in ("config.json", "model.safetensors", "tokenizer.json"):
                os.symlink(os.path.realpath(os.path.join(TINY, f)), os.path.join(d, f))
            cfg = json.load(open(os.path.join(TINY, "tokenizer_config.json")))
            cfg["chat_template"] = open(os.path.join(src, tmpl)).read()
            json.dump(cfg, open(os.path.join(d, "tokenizer_config.json"), "w"))
            p = run("generate", "-m", d, "--chat", "-p", "hello", "-n", "4")
            if name == "chatml":
                check("--chat: the model's template recognised", p.returncode == 0 and "chat template: chatml" in p.stderr, p)
            else:
                check("--chat: an unsupported template is named", p.returncode != 0 and "not one bt supports" in p.stderr
                      and "### " in p.stderr, p)
        # eval's JSON report to stdout
        # (the model given as DIR/../bt-tiny: the report records the resolved path)
        p = run("eval", "-m", os.path.join(TINY, "..", "bt-tiny"), "-f", os.path.join(SHARED, "data", "eval_kjv.txt"),
                "-c", "64", "--max-windows", "2", "-q", "--report", "-")
        try:
            rep = json.loads(p.stdout)
            ok = p.returncode == 0 and rep["perplexity"] > 1
        except ValueError:
            ok, rep = False, {}
        check("eval --report - writes the JSON to stdout", ok, p)
        check("eval's report records resolved paths", rep.get("model") == os.path.realpath(TINY)
              and rep.get("text") == os.path.realpath(os.path.join(SHARED, "data", "eval_kjv.txt")), p)
    print(f"{len(failures)} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
