"""check_abi_doc.py - docs/plugin-abi.md describes the ABI as built: its version is the header's,
and it names every op, every backend interface entry, every format descriptor field, every
plugin kind and every host service of core/include/bt/bt_plugin.h.
usage: check_abi_doc.py SOURCE_DIR"""
import re
import sys

src = sys.argv[1]
hdr = open(f"{src}/core/include/bt/bt_plugin.h").read()
doc = open(f"{src}/docs/plugin-abi.md").read()
fails = []


def struct_fields(name):
    body = re.search(r"struct %s \{(.*?)\n\};" % name, hdr, re.S).group(1)
    body = re.sub(r"/\*.*?\*/", "", body, flags=re.S)
    names = re.findall(r"\(\*(\w+)\)", body)  # function pointers
    names += re.findall(r"^\s*[\w ]+?[\s*](\w+)(?:\[[^\]]*\])?;", body, re.M)  # plain fields
    return [n for n in names if n != "struct_size"]


major = re.search(r"#define BT_ABI_MAJOR\s+(\d+)", hdr).group(1)
minor = re.search(r"#define BT_ABI_MINOR\s+(\d+)", hdr).group(1)
if f"# bt plugin ABI (version {major}.{minor})" not in doc:
    fails.append(f"title does not say version {major}.{minor}")
if f"- {major}.{minor} —" not in doc:
    fails.append(f"no changelog entry for {major}.{minor}")
ops = [o for o in re.findall(r"BT_OP_(\w+)\s*=", hdr) if o != "COUNT"]
for o in ops:
    if f"`{o}`" not in doc:
        fails.append(f"op {o} not described")
for kind in re.findall(r"BT_KIND_(\w+)\s*=", hdr):
    if f"BT_KIND_{kind}" not in doc:
        fails.append(f"kind BT_KIND_{kind} not listed")
for struct in ("bt_backend_i", "bt_format"):
    for f in struct_fields(struct):
        if f"`{f}" not in doc:
            fails.append(f"struct {struct}: {f} not described")
for f in struct_fields("bt_host"):
    if f not in ("abi_version", "host_version") and f"`{f}" not in doc:
        fails.append(f"host service {f} not described")
for f in fails:
    print("FAIL", f)
print(f"{len(ops)} ops, checked; {len(fails)} problems")
sys.exit(1 if fails else 0)
