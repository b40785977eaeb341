#!/usr/bin/env bash
# Writes seed corpora for the fuzz targets into fuzz/corpus/<target>/ (gitignored) from the
# test fixtures, the benchmark review, the example config files and fuzz/seeds.
#   fuzz/seed.sh && cargo +nightly fuzz run mutation fuzz/corpus/mutation
set -euo pipefail
cd "$(dirname "$0")/.."
out=fuzz/corpus
mkdir -p "$out"/{review_handler,config_parser,mutation,engine_contained,prescreened_in_process}
python3 - "$out" <<'PY'
import glob, json, sys, yaml
out = sys.argv[1]
docs = []
for path in sorted(glob.glob("tests/fixtures/**/*.yaml", recursive=True)):
    with open(path) as f:
        docs += [d for d in yaml.safe_load_all(f) if isinstance(d, dict)]
for i, doc in enumerate(docs):
    obj = json.dumps(doc, separators=(",", ":")).encode()
    # mutation: first byte picks the config (and native sidecar support)
    with open(f"{out}/mutation/fixture-{i:04}", "wb") as f:
        f.write(bytes([i % 256]) + obj)
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
PY
for endpoint in 0 1; do
  { printf "\\x$endpoint"; cat benches/fixtures/pod-review.json; } > "$out/review_handler/bench-$endpoint"
done
# Config files: the chart's values render into the config, the README and the docs carry
# examples; the seeds are the ```yaml blocks that mention config keys, plus small ones.
python3 - "$out" <<'PY'
import glob, re, sys
out = sys.argv[1]
n = 0
for path in ["README.md", *sorted(glob.glob("docs/*.md"))]:
    text = open(path).read()
    for block in re.findall(r"```yaml\n(.*?)```", text, re.S):
        if re.search(r"^(mode|rules|nativeSidecars|parser|images|exempt|mutations)\s*:", block, re.M):
            open(f"{out}/config_parser/doc-{n:03}", "w").write(block)
            n += 1
for i, text in enumerate(["mode: enforce\n", "mode: audit\nnativeSidecars: always\n", "{}\n", ""]):
    open(f"{out}/config_parser/small-{i}", "w").write(text)
print(f"{n} config blocks", file=sys.stderr)
PY
cp fuzz/seeds/* "$out/engine_contained/"
cp fuzz/seeds/* "$out/prescreened_in_process/"
