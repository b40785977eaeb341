#!/usr/bin/env python3
"""Writes a stream of N manifests (the labelled examples, renamed) to stdout, for timing
`pidone audit` on what a large `helm template` or `kubectl get -A -o yaml` prints."""
import re
import sys

n = int(sys.argv[1]) if len(sys.argv) > 1 else 10000
src = open(sys.argv[2] if len(sys.argv) > 2 else "tests/fixtures/examples/launches.yaml").read()
docs = [d for d in re.split(r"^---\s*$", src, flags=re.M) if "kind:" in d]
out = sys.stdout
for i in range(n):
    doc = docs[i % len(docs)]
    out.write("---\n" + re.sub(r"^(  name: )(\S+)", lambda m: f"{m.group(1)}{m.group(2)}-{i}", doc, count=1, flags=re.M).strip("\n") + "\n")
