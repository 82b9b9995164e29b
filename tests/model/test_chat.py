"""test_chat.py - chat templates (runtime/model/bt_chat.c through chat_tool): each fixture
template in tests/model/chat is recognised as its family, and bt's rendering equals jinja2's
rendering of that template (with HF's environment settings) for several conversations, with
and without a system message and the generation prompt; a template of no known family is said
to be unknown; two hand-checked renderings guard the exact layouts of llama3 and chatml."""
import os
import subprocess
import sys

try:
    import jinja2
except ImportError:  # scripts/setup.sh installs it; without it only the hand-checked layouts run
    jinja2 = None

TOOL, DIR = sys.argv[1], sys.argv[2]
BOS, EOS = "<s>", "</s>"
failures = []

CONVS = [
    [("user", "Hello!")],
    [("system", "You are terse."), ("user", "What is 2+2?")],
    [("user", "  spaces around  "), ("assistant", " Four. "), ("user", "And 3+3?\nTwo lines.")],
    [("system", "Be kind."), ("user", "Hi"), ("assistant", "Hello, how can I help?"), ("user", "Tell me a joke")],
]


def bt_render(template, conv, gen, bos=BOS, eos=EOS):
    inp = "".join(f"{r}\t{c.replace(chr(10), chr(92) + 'n')}\n" for r, c in conv)
    p = subprocess.run([TOOL, template, bos, eos, str(gen)], input=inp, capture_output=True, text=True)
    family = p.stderr.split("\n")[0].removeprefix("family ")
    return p.returncode, p.stdout, family, p.stderr


def jinja_render(text, conv, gen):
    env = jinja2.Environment(trim_blocks=True, lstrip_blocks=True)
    msgs = [{"role": r, "content": c} for r, c in conv]
    return env.from_string(text).render(messages=msgs, add_generation_prompt=bool(gen), bos_token=BOS, eos_token=EOS)


def check(name, cond, detail=""):
    if not cond:
        failures.append(name)
        print(f"FAIL {name}: {detail}")
    else:
        print(f"ok   {name}")


def main():
    if jinja2 is None:
        print("SKIP the jinja2 comparisons: the Python module jinja2 is missing (scripts/setup.sh installs it)")
    for fam in ("llama3", "chatml", "llama2", "mistral", "gemma", "phi3", "zephyr"):
        path = os.path.join(DIR, fam + ".jinja")
        text = open(path).read().rstrip("\n")
        for ci, conv in enumerate(CONVS):
            for gen in (1, 0):
                rc, got, family, err = bt_render(path, conv, gen)
                check(f"{fam} recognised", family == fam, f"got {family}")
                if fam == "gemma" and conv[0][0] == "system":  # gemma has no system role: refused
                    check(f"gemma refuses a system message (conv {ci})", rc == 1 and "no system role" in err, err)
                    continue
                if fam in ("llama2", "mistral") and not gen:
                    pass  # the [INST] templates have no generation prompt: same text either way
                if jinja2 is None:
                    continue
                want = jinja_render(text, conv, gen)
                check(f"{fam} conv {ci} gen {gen}", rc == 0 and got == want, f"\nbt:    {got!r}\njinja: {want!r}")
    rc, got, family, err = bt_render(os.path.join(DIR, "unknown.jinja"), CONVS[0], 1)
    check("unknown template", family == "unknown" and rc == 1, f"{family} rc {rc}")
    # the layouts themselves, checked by hand against the published formats
    rc, got, _, _ = bt_render("family:llama3", [("system", "S"), ("user", "Hi")], 1, "<|begin_of_text|>", "<|end_of_text|>")
    check("llama3 layout", got == "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nS<|eot_id|>"
          "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n",
          repr(got))
    rc, got, _, _ = bt_render("family:chatml", [("user", "Hi"), ("assistant", "Yo"), ("user", "Bye")], 1)
    check("chatml layout", got == "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nYo<|im_end|>\n"
          "<|im_start|>user\nBye<|im_end|>\n<|im_start|>assistant\n", repr(got))
    rc, got, _, err = bt_render("family:llama2", [("user", "a"), ("user", "b")], 1)
    check("llama2 refuses two user turns in a row", rc == 1 and "alternate" in err, err)
    print(f"{len(failures)} failures")
    return 1 if failures else 77 if jinja2 is None else 0


if __name__ == "__main__":
    sys.exit(main())
