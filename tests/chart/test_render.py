"""The chart lints with Helm 4 and every rendered object validates against Kubernetes' schemas."""

from __future__ import annotations

import re

import helm_python as helm
import kubernetes_validate
import pytest

import chartlib
from cases import CASES, CRD_KINDS, KUBE_VERSIONS

SEVERITY = {0: "UNKNOWN", 1: "INFO", 2: "WARNING", 3: "ERROR"}


def test_helm_is_version_4():
    assert helm.helm_sdk_version().startswith("v4."), helm.helm_sdk_version()


@pytest.mark.parametrize("kube", KUBE_VERSIONS)
@pytest.mark.parametrize("case", list(CASES))
def test_lint_strict(case, kube):
    report = chartlib.lint(CASES[case], kube_version="v" + kube)
    problems = [m for m in report["messages"] if m["severity"] >= 2]
    assert not report["errors"], report["errors"]
    assert not problems, [f"{SEVERITY[m['severity']]} {m['path']}: {m['error']}" for m in problems]
    assert report["total_charts_linted"] == 1


@pytest.mark.parametrize("case", list(CASES))
def test_values_match_schema(case):
    with chartlib.load_chart() as chart:
        chart.validate_schema(chart.merge_values(CASES[case]))


@pytest.mark.parametrize("bad", [
    {"config": {"mode": "dry-run"}},
    {"config": {"rules": {"no-such-rule": "deny"}}},
    {"config": {"rules": {"multi-process": "block"}}},
    {"config": {"images": {"deadline": "2 seconds"}}},
    {"config": {"unknownKey": True}},
    {"webhooks": {"timeoutSeconds": 31}},
    {"webhooks": {"failurePolicy": {"enforce": "Deny", "audit": "Ignore"}}},
    {"replicas": 0},
    {"imageTag": "oops"},
    # scripts.configMaps is switched by the chart's own scripts.configMaps (which grants the RBAC).
    {"config": {"scripts": {"configMaps": True}}},
    {"scripts": {"configMaps": {"enabled": True, "namespaces": ["Not_A_Namespace"]}}},
])
def test_schema_rejects(bad):
    with chartlib.load_chart() as chart, pytest.raises(helm.HelmValuesError):
        chart.validate_schema(chart.merge_values(bad))


def test_existing_secret_requires_ca_bundle():
    with pytest.raises(helm.HelmError, match="tls.caBundle"):
        chartlib.render({"tls": {"existingSecret": "x"}})


def _validate_crd_shape(obj):
    """Custom resources: no schema in kubernetes-validate; check the fields the chart relies on."""
    kind = obj["kind"]
    assert obj["metadata"]["name"] and obj["metadata"]["namespace"]
    spec = obj["spec"]
    if kind == "Issuer":
        assert len(set(spec) & {"selfSigned", "ca", "acme", "vault", "venafi"}) == 1
        if "ca" in spec:
            assert spec["ca"]["secretName"]
    elif kind == "Certificate":
        assert spec["secretName"] and spec["issuerRef"]["name"]
        assert spec.get("isCA") or spec["dnsNames"]
        for d in ("duration", "renewBefore"):
            if d in spec:
                assert re.fullmatch(r"([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+", spec[d])
    elif kind == "ServiceMonitor":
        assert spec["selector"]["matchLabels"]
        assert all(e["port"] for e in spec["endpoints"])


@pytest.mark.parametrize("kube", KUBE_VERSIONS)
@pytest.mark.parametrize("case", list(CASES))
def test_objects_validate_strict(case, kube):
    objs = chartlib.render(CASES[case])
    assert objs
    notes = []
    for obj in objs:
        if (obj["apiVersion"], obj["kind"]) in CRD_KINDS:
            _validate_crd_shape(obj)
            notes.append(f"{obj['kind']}/{obj['metadata']['name']}")
            continue
        try:
            kubernetes_validate.validate(obj, kube, strict=True)
        except kubernetes_validate.ValidationError as err:
            path = ".".join(str(p) for p in err.path)
            pytest.fail(f"{obj['kind']}/{obj['metadata']['name']} on {kube}: {path}: {err.message}")
    if notes:
        print(f"note: custom resources checked for shape only (no schema): {', '.join(notes)}")


def test_static_manifest_is_current():
    assert chartlib.STATIC_MANIFEST.read_text() == chartlib.static_manifest(), (
        "deploy/pidone.yaml is out of date: run scripts/render-manifests.sh")


@pytest.mark.parametrize("kube", KUBE_VERSIONS)
def test_static_manifest_validates(kube):
    import yaml
    objs = [o for o in yaml.safe_load_all(chartlib.STATIC_MANIFEST.read_text()) if o]
    kinds = [o["kind"] for o in objs]
    assert kinds[0] == "Namespace"
    assert kinds.index("Deployment") < kinds.index("MutatingWebhookConfiguration")
    assert "Secret" not in kinds, "the static manifest must not carry a generated key"
    for obj in objs:
        if (obj["apiVersion"], obj["kind"]) not in CRD_KINDS:
            kubernetes_validate.validate(obj, kube, strict=True)


def test_render_is_deterministic_with_cert_manager():
    assert chartlib.render_files(CASES["cert-manager"]) == chartlib.render_files(CASES["cert-manager"])


def test_notes():
    text = chartlib.notes()
    assert "sh -c 'sleep 1; sleep infinity'" in text
    assert "pidone.io/mode=audit" in text
    assert "pidone.io/mode=off" in text
    assert "pidone.io/mode=enforce" in text
    assert "Global mode: audit" in text


def test_notes_say_where_fixes_land():
    text = chartlib.notes()
    assert "Fixes land in each Pod" in text
    assert "left as written (no drift for Argo CD or Flux)" in text
    assert "never changed" in text
    patched = chartlib.notes({"config": {"mutations": {"workloads": True}}})
    assert "are patched on CREATE too" in patched
    assert "left as written" not in patched
