#!/usr/bin/env bash
# Regenerate deploy/pidone.yaml (pass --check to verify it is current instead).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
py="$("$root/tests/chart/venv.sh")"
exec "$py" "$root/scripts/render-manifests.py" "$@"
