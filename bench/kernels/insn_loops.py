#!/usr/bin/env python3
"""insn_loops.py - static instruction counts of a kernel's loops, from its disassembly.

usage: insn_loops.py OBJDUMP LIBRARY FUNCTION[#N] MARKER[,MARKER...]

Disassembles FUNCTION of LIBRARY (#N: its N-th copy, for static functions of a source built twice) with OBJDUMP (aarch64-linux-gnu-objdump or objdump), finds its
loops (a branch back to a lower address inside the function: the loop is [target, branch]) and
prints, innermost first, each loop's instruction count and how many of them are MARKER
instructions (the dot-product ones: sdot / smlal,smlal2 / vpmaddubsw). The hot loops of bt's int8
kernels are straight-line code between their loop branches, so instructions per iteration
divided by the weights one iteration consumes (markers x weights per marker) is the dynamic
instruction count per weight of that loop. Used for docs/benchmarks.md "cpu-neon".
"""
import re
import subprocess
import sys


def disasm(objdump, lib, func):
    func, _, nth = func.partition("#")
    nth = int(nth or 1)
    out = subprocess.run([objdump, "-d", "--no-show-raw-insn", lib], check=True,
                         capture_output=True, text=True).stdout
    head = re.compile(r"^([0-9a-f]+) <(.+)>:$")
    line = re.compile(r"^\s+([0-9a-f]+):\s+(\S+)\s*(.*)$")
    insns, inside = [], False
    for ln in out.splitlines():
        m = head.match(ln)
        if m:
            if inside:
                break
            if m.group(2) == func:
                nth -= 1
            inside = m.group(2) == func and nth == 0
            continue
        if inside:
            m = line.match(ln)
            if m:
                insns.append((int(m.group(1), 16), m.group(2), m.group(3)))
    if not insns:
        sys.exit(f"{lib}: no function {func}")
    return insns


def loops(insns):
    lo, hi = insns[0][0], insns[-1][0]
    found = []
    for addr, mn, ops in insns:
        is_branch = mn.startswith(("b", "cb", "tb", "j"))
        m = re.search(r"\b([0-9a-f]+) <", ops)
        if is_branch and m:
            t = int(m.group(1), 16)
            if lo <= t < addr <= hi:
                found.append((t, addr))
    return found


def main():
    if len(sys.argv) != 5:
        sys.exit(__doc__)
    objdump, lib, func, markers = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4].split(",")
    insns = disasm(objdump, lib, func)
    func = func.replace("#", " copy ")
    res = []
    for t, b in loops(insns):
        body = [i for i in insns if t <= i[0] <= b]
        nm = sum(1 for i in body if i[1] in markers)
        res.append((len(body), nm, t, b))
    res.sort()
    print(f"{func}: {len(insns)} instructions, {len(res)} loops (innermost first)")
    for n, nm, t, b in res:
        print(f"  loop {t:#x}-{b:#x}: {n:4d} instructions, {nm:3d} x {'/'.join(markers)}")
    inner = next((r for r in res if r[1]), None)
    if inner:
        n, nm, t, b = inner
        print(f"innermost loop with {'/'.join(markers)}: {n} instructions, {nm} markers")
        for a, mn, ops in insns:
            if t <= a <= b:
                print(f"    {a:#8x}  {mn:12s} {ops}")


if __name__ == "__main__":
    main()
