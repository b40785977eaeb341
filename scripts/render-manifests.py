#!/usr/bin/env python3
"""Regenerate deploy/pidone.yaml from charts/pidone, or check that it is current (--check)."""

from __future__ import annotations

import argparse
import difflib
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "chart"))

import chartlib  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true",
                        help="exit 1 with a diff when deploy/pidone.yaml is not current")
    args = parser.parse_args()
    want = chartlib.static_manifest()
    path = chartlib.STATIC_MANIFEST
    have = path.read_text() if path.exists() else ""
    if args.check:
        if have != want:
            sys.stdout.writelines(difflib.unified_diff(
                have.splitlines(keepends=True), want.splitlines(keepends=True),
                fromfile=str(path), tofile="rendered"))
            print(f"{path} is out of date: run scripts/render-manifests.sh", file=sys.stderr)
            return 1
        return 0
    path.write_text(want)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
