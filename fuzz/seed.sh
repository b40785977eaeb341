#!/usr/bin/env bash
# Writes seed corpora for the fuzz targets into fuzz/corpus/<target>/ (gitignored) from the
# test fixtures, the benchmark review, the example config files and fuzz/seeds.
#   fuzz/seed.sh && cargo +nightly fuzz run mutation fuzz/corpus/mutation
set -euo pipefail
cd "$(dirname "$0")/.."
out=fuzz/corpus
mkdir -p "$out"/{review_handler,config_parser,mutation,engine_contained,prescreened_in_process,lexical_scan}
python3 - "$out" <<'PY'
import glob, json, sys, yaml
out = sys.argv[1]
docs = []
for path in sorted(glob.glob("tests/fixtures/**/*.yaml", recursive=True)):
    with open(path) as f:
        docs += [d for d in yaml.safe_load_all(f) if isinstance(d, dict)]
for i, doc in enumerate(docs):
    obj = json.dumps(doc, separators=(",", ":")).encode()
    # mutation: first byte 0x20 (raw JSON) plus bits 0-4: config, native sidecars off,
    # wrapped into a Deployment (see fuzz_targets/mutation.rs)
    with open(f"{out}/mutation/fixture-{i:04}", "wb") as f:
        f.write(bytes([0x20 | (i % 32)]) + obj)
    review = {
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {
            "uid": f"00000000-0000-4000-8000-{i:012x}",
            "kind": {"group": "", "version": "v1", "kind": doc.get("kind", "Pod")},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "namespace": "default", "operation": "CREATE",
            "userInfo": {"username": "fuzz"}, "object": doc, "oldObject": None,
            "dryRun": False,
        },
    }
    with open(f"{out}/review_handler/fixture-{i:04}", "wb") as f:
        f.write(bytes([i % 8]) + json.dumps(review, separators=(",", ":")).encode())
print(f"{len(docs)} fixture objects", file=sys.stderr)

# mutation, generated pods: pick byte (config, native sidecars, Deployment), pod settings,
# then containers (settings byte + script) separated by NUL. The scripts are the fixtures'
# shell scripts and the script seeds.
scripts = []
def walk(v):
    if isinstance(v, dict):
        for key in ("command", "args"):
            argv = v.get(key)
            if isinstance(argv, list) and len(argv) >= 2 and argv[-2] in ("-c", "-ec", "-lc"):
                scripts.append(str(argv[-1]).encode())
        for x in v.values():
            walk(x)
    elif isinstance(v, list):
        for x in v:
            walk(x)
for doc in docs:
    walk(doc)
for path in sorted(glob.glob("fuzz/seeds/*")):
    with open(path, "rb") as f:
        scripts.append(f.read()[1:])
n = 0
for i, script in enumerate(scripts):
    pick = i % 32                      # bit 5 clear: a generated pod
    settings = (i * 37) % 256
    containers = [bytes([(i * 13) % 256]) + script]
    if i % 3 == 0:                     # a second container: an agent or another shell
        containers.append(bytes([(i * 7 + 0x10) % 256]) + scripts[(i + 1) % len(scripts)])
    with open(f"{out}/mutation/script-{i:04}", "wb") as f:
        f.write(bytes([pick, settings]) + b"\0".join(containers))
    n += 1
print(f"{n} generated pods", file=sys.stderr)
# lexical_scan: the same scripts (fixtures and seeds), as the scan reads them.
for i, script in enumerate(scripts):
    with open(f"{out}/lexical_scan/script-{i:04}", "wb") as f:
        f.write(script)
print(f"{len(scripts)} scripts for the lexical scan", file=sys.stderr)
PY
for endpoint in 0 1; do
  { printf "\\x$endpoint"; cat benches/fixtures/pod-review.json; } > "$out/review_handler/bench-$endpoint"
done
# Config files: the README's and the docs' examples (```yaml blocks that set config keys), the
# chart's default config and the one rendered into deploy/pidone.yaml, and the configs the
# tests load (string literals in tests/ and src/ that set config keys, valid or not).
python3 - "$out" <<'PY'
import glob, re, sys, textwrap, yaml
out = sys.argv[1]
keys = re.compile(r"^(mode|rules|sideAgents|nativeSidecars|initInjection|exemptions|images|parser)\s*:", re.M)
configs = []
for path in ["README.md", *sorted(glob.glob("docs/*.md"))]:
    text = open(path).read()
    for block in re.findall(r"```yaml\n(.*?)```", text, re.S):
        block = textwrap.dedent(block)
        if keys.search(block):
            configs.append(block)
with open("charts/pidone/values.yaml") as f:
    configs.append(yaml.safe_dump(yaml.safe_load(f)["config"], sort_keys=False))
for doc in yaml.safe_load_all(open("deploy/pidone.yaml")):
    if isinstance(doc, dict) and doc.get("kind") == "ConfigMap":
        configs += [v for k, v in (doc.get("data") or {}).items() if k.endswith(".yaml")]

def unescape(body):
    """A Rust string literal's value (the escapes tests use)."""
    body = re.sub(r"\\\n\s*", "", body)
    out, i = [], 0
    while i < len(body):
        c = body[i]
        if c == "\\" and i + 1 < len(body):
            e = body[i + 1]
            if e == "u" and body[i + 2:i + 3] == "{":
                end = body.index("}", i)
                out.append(chr(int(body[i + 3:end], 16)))
                i = end + 1
                continue
            out.append({"n": "\n", "t": "\t", "r": "\r", "0": "\0"}.get(e, e))
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)

literal = re.compile(r'r(#+)"(.*?)"\1|"((?:[^"\\]|\\.)*)"', re.S)
for path in sorted(glob.glob("tests/**/*.rs", recursive=True) + glob.glob("src/**/*.rs", recursive=True)
                   + glob.glob("fuzz/fuzz_targets/*.rs")):
    for m in literal.finditer(open(path).read()):
        text = m.group(2) if m.group(1) else unescape(m.group(3))
        if keys.search(text) and "apiVersion" not in text:
            configs.append(text)
configs += ["mode: enforce\n", "mode: audit\nnativeSidecars: always\n", "{}\n", ""]
seen = set()
for text in configs:
    if text in seen:
        continue
    seen.add(text)
    open(f"{out}/config_parser/config-{len(seen):03}", "w").write(text)
print(f"{len(seen)} configs", file=sys.stderr)
PY
cp fuzz/regressions/config_parser/* "$out/config_parser/"
cp fuzz/seeds/* "$out/engine_contained/"
cp fuzz/seeds/* "$out/prescreened_in_process/"
