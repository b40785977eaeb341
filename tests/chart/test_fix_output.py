"""`pidone fix` output for every fixture validates against Kubernetes' schemas in strict mode,
and `pidone audit` of pidone's own install manifest reports nothing."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from cases import KUBE_VERSIONS

ROOT = Path(__file__).resolve().parents[2]
PIDONE = Path(os.environ.get("PIDONE_BIN", ROOT / "target" / "debug" / "pidone"))
FIXTURES = ["tests/fixtures/examples/launches.yaml", "tests/fixtures/patterns/launches.yaml"]
CONFIGS = {
    "default": "",
    "inject-init": "initInjection:\n  enabled: true\n  image: ghcr.io/pidone/pidone:0.1.0\n",
}


def _pidone(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    if not PIDONE.exists():
        pytest.fail(f"{PIDONE} is missing: build it first (cargo build --bin pidone)")
    return subprocess.run([str(PIDONE), *args], cwd=ROOT, input=stdin, capture_output=True, text=True, check=False)


@pytest.mark.parametrize("kube", KUBE_VERSIONS)
@pytest.mark.parametrize("config", list(CONFIGS))
@pytest.mark.parametrize("fixture", FIXTURES)
def test_fix_output_validates(fixture, config, kube, tmp_path):
    cfg = tmp_path / "config.yaml"
    cfg.write_text(CONFIGS[config])
    out = _pidone("fix", "--config", str(cfg), fixture)
    # 1: some objects would still be denied (multi-process); the output is still complete.
    assert out.returncode in (0, 1), out.stderr
    objs = [o for o in yaml.safe_load_all(out.stdout) if o]
    source = [o for o in yaml.safe_load_all((ROOT / fixture).read_text()) if o]
    assert len(objs) == len(source)
    changed = sum(1 for a, b in zip(objs, source) if a != b)
    assert changed > 0
    for obj in objs:
        try:
            kubernetes_validate.validate(obj, kube, strict=True)
        except kubernetes_validate.ValidationError as err:
            path = ".".join(str(p) for p in err.path)
            pytest.fail(f"{obj['kind']}/{obj['metadata']['name']} on {kube}: {path}: {err.message}")


def test_fix_diff_shows_only_changed_objects():
    out = _pidone("fix", "--diff", "tests/fixtures/examples/launches.yaml")
    assert out.returncode in (0, 1), out.stderr
    assert '+          command: ["sh", "-c", "cd /srv/inventory && exec python -m inventory.server --port 8000"]' in out.stdout
    assert out.stdout.startswith("--- a/tests/fixtures/examples/launches.yaml\n+++ b/tests/fixtures/examples/launches.yaml\n")
    assert "storefront" not in out.stdout, "unchanged objects are not diffed"


def test_own_install_manifest_is_clean():
    out = _pidone("audit", "--fail-on", "warn", "--format", "json", "deploy/pidone.yaml")
    assert out.returncode == 0, out.stdout + out.stderr
    import json
    report = json.loads(out.stdout)
    assert report["findings"] == []
    assert [c["launch"] for c in report["containers"]] == ["direct"]


@pytest.mark.parametrize("case", ["defaults", "custom-config", "global-enforce"])
def test_rendered_config_is_accepted_by_pidone(case, tmp_path):
    import chartlib
    from cases import CASES
    maps = [o for o in chartlib.render(CASES[case]) if o["kind"] == "ConfigMap"]
    assert len(maps) == 1
    cfg = tmp_path / "config.yaml"
    cfg.write_text(maps[0]["data"]["config.yaml"])
    out = _pidone("audit", "--config", str(cfg), "--fail-on", "never", "deploy/pidone.yaml")
    assert out.returncode == 0, out.stderr
