#!/usr/bin/env bash
# Chart, static manifest and Dockerfile checks. Prints pytest's summary and a last line
# "N passed, N failed"; exits non-zero when anything failed.
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
py="$("$root/tests/chart/venv.sh")" || { echo "0 passed, 1 failed"; exit 1; }
report="$(mktemp)"
trap 'rm -f "$report"' EXIT
cd "$root"
"$py" -m pytest -q -p no:cacheprovider --junitxml="$report" tests/chart "$@"
rc=$?
"$py" - "$report" <<'PY'
import sys, xml.etree.ElementTree as ET
try:
    root = ET.parse(sys.argv[1]).getroot()
except Exception:
    print("0 passed, 1 failed"); sys.exit()
suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
tests = sum(int(s.get("tests", 0)) for s in suites)
failed = sum(int(s.get("failures", 0)) + int(s.get("errors", 0)) for s in suites)
skipped = sum(int(s.get("skipped", 0)) for s in suites)
print(f"{tests - failed - skipped} passed, {failed} failed" + (f", {skipped} skipped" if skipped else ""))
PY
if [[ $rc -eq 5 ]]; then exit 1; fi
exit $rc
