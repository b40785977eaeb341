"""The webhook configurations: entries per mode, namespace routing, paths, rules, policies."""

from __future__ import annotations

import pytest

from cases import CASES
from helpers import namespace_labels, objects, of_kind, one, selector_matches

KINDS = {"MutatingWebhookConfiguration": "mutate", "ValidatingWebhookConfiguration": "validate"}
MODES = ["enforce", "audit"]
SYSTEM = ["kube-system", "kube-public", "kube-node-lease"]

POD_RULE = {"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"], "resources": ["pods"],
            "scope": "Namespaced"}


def workload_rules(operations):
    return [
        {"apiGroups": ["apps"], "apiVersions": ["v1"], "operations": operations,
         "resources": ["deployments", "statefulsets", "daemonsets", "replicasets"], "scope": "Namespaced"},
        {"apiGroups": ["batch"], "apiVersions": ["v1"], "operations": operations,
         "resources": ["jobs", "cronjobs"], "scope": "Namespaced"},
        {"apiGroups": [""], "apiVersions": ["v1"], "operations": operations,
         "resources": ["replicationcontrollers", "podtemplates"], "scope": "Namespaced"},
    ]


def expected_rules(verb, values):
    """/validate sees Pods and workloads; /mutate sees Pods only, plus workloads on CREATE when
    config.mutations.workloads is on (DESIGN section 5.1)."""
    if verb == "validate":
        return [POD_RULE, *workload_rules(["CREATE", "UPDATE"])]
    if values.get("config", {}).get("mutations", {}).get("workloads"):
        return [POD_RULE, *workload_rules(["CREATE"])]
    return [POD_RULE]


def configs(values=None, **kw):
    objs = objects(values, **kw)
    return [o for o in objs if o["kind"] in KINDS]


@pytest.mark.parametrize("case", list(CASES))
def test_one_entry_per_mode_calling_its_path(case):
    values = CASES[case]
    objs = objects(values, name="pidone", namespace="pidone")
    service = one(objs, "Service")
    found = configs(values)
    expected_kinds = set(KINDS)
    if values.get("webhooks", {}).get("mutating") is False:
        expected_kinds.discard("MutatingWebhookConfiguration")
    assert {c["kind"] for c in found} == expected_kinds
    https_port = next(p["port"] for p in service["spec"]["ports"] if p["name"] == "https")
    for cfg in found:
        verb = KINDS[cfg["kind"]]
        assert [w["name"] for w in cfg["webhooks"]] == [f"{m}.{verb}.pidone.io" for m in MODES]
        for mode, hook in zip(MODES, cfg["webhooks"]):
            svc = hook["clientConfig"]["service"]
            assert svc == {"name": service["metadata"]["name"], "namespace": "pidone",
                           "path": f"/{verb}/{mode}", "port": https_port}
            assert hook["sideEffects"] == "None"
            assert hook["admissionReviewVersions"] == ["v1"]
            assert hook["timeoutSeconds"] == values.get("webhooks", {}).get("timeoutSeconds", 5)
            assert hook["rules"] == expected_rules(verb, values)
            if verb == "mutate":
                assert hook["reinvocationPolicy"] == "IfNeeded"
            else:
                assert "reinvocationPolicy" not in hook
            want = values.get("webhooks", {}).get("failurePolicy", {"enforce": "Fail", "audit": "Ignore"})
            assert hook["failurePolicy"] == want[mode]
            # The built-in condition (test_day2.py), then the user's.
            conditions = hook.get("matchConditions", [])
            builtin = values.get("webhooks", {}).get("skipUnchangedUpdates", True)
            assert [c["name"] for c in conditions[:1]] == (["pidone-pod-template-changed"] if builtin else [])
            assert conditions[1 if builtin else 0:] == values.get("webhooks", {}).get("matchConditions", [])


def test_default_failure_policies():
    for cfg in configs():
        policies = {w["name"].split(".")[0]: w["failurePolicy"] for w in cfg["webhooks"]}
        assert policies == {"enforce": "Fail", "audit": "Ignore"}


@pytest.mark.parametrize("namespace", ["pidone", "webhooks"])
def test_own_and_system_namespaces_are_excluded(namespace):
    for cfg in configs(namespace=namespace):
        for hook in cfg["webhooks"]:
            sel = hook["namespaceSelector"]
            excluded = [e for e in sel["matchExpressions"]
                        if e["key"] == "kubernetes.io/metadata.name" and e["operator"] == "NotIn"]
            assert len(excluded) == 1
            assert set(excluded[0]["values"]) >= {namespace, *SYSTEM}
            for ns in [namespace, *SYSTEM]:
                for mode in [None, "enforce", "audit"]:
                    assert not selector_matches(sel, namespace_labels(ns, mode)), (hook["name"], ns, mode)


def test_extra_excluded_namespaces():
    for cfg in configs(CASES["match-conditions"]):
        for hook in cfg["webhooks"]:
            assert not selector_matches(hook["namespaceSelector"], namespace_labels("cert-manager"))
            assert not selector_matches(hook["namespaceSelector"], namespace_labels("pidone"))


def routed_modes(cfg, labels):
    return [w["name"].split(".")[0] for w in cfg["webhooks"]
            if selector_matches(w["namespaceSelector"], labels)]


# global mode -> namespace label -> the one mode whose entry takes the namespace (None: no entry)
ROUTING = {
    "enforce": {None: "enforce", "enforce": "enforce", "audit": "audit", "off": None, "typo": "enforce"},
    "audit": {None: "audit", "enforce": "enforce", "audit": "audit", "off": None, "typo": "audit"},
    "off": {None: None, "enforce": "enforce", "audit": "audit", "off": None, "typo": None},
}


@pytest.mark.parametrize("global_mode", list(ROUTING))
def test_namespace_label_routes_to_exactly_one_mode(global_mode):
    for cfg in configs({"config": {"mode": global_mode}}):
        for label, want in ROUTING[global_mode].items():
            got = routed_modes(cfg, namespace_labels("team-a", label))
            assert got == ([want] if want else []), (cfg["kind"], global_mode, label, got)


def test_ca_injection_annotation_only_with_cert_manager():
    for cfg in configs():
        assert "cert-manager.io/inject-ca-from" not in (cfg["metadata"].get("annotations") or {})
        assert all(w["clientConfig"].get("caBundle") for w in cfg["webhooks"])
    objs = objects(CASES["cert-manager"])
    cert = one(objs, "Certificate", "pidone-tls")
    for cfg in [o for o in objs if o["kind"] in KINDS]:
        assert cfg["metadata"]["annotations"]["cert-manager.io/inject-ca-from"] == f"pidone/{cert['metadata']['name']}"
        assert all("caBundle" not in w["clientConfig"] for w in cfg["webhooks"])


def test_webhook_labels_and_annotations_pass_through():
    values = {"webhooks": {"labels": {"team": "platform"}, "annotations": {"example.com/owner": "sre"}},
              "certManager": {"enabled": True}}
    for cfg in configs(values):
        assert cfg["metadata"]["labels"]["team"] == "platform"
        assert cfg["metadata"]["annotations"]["example.com/owner"] == "sre"
        assert "cert-manager.io/inject-ca-from" in cfg["metadata"]["annotations"]


def test_existing_secret_ca_bundle():
    import base64
    values = CASES["existing-secret"]
    objs = objects(values)
    assert not of_kind(objs, "Secret")
    for cfg in [o for o in objs if o["kind"] in KINDS]:
        for hook in cfg["webhooks"]:
            assert base64.b64decode(hook["clientConfig"]["caBundle"]).decode() == values["tls"]["caBundle"]
    deploy = one(objs, "Deployment")
    sources = deploy["spec"]["template"]["spec"]["volumes"][0]["projected"]["sources"]
    assert any(s.get("secret", {}).get("name") == "my-webhook-tls" for s in sources)


def test_mutating_webhook_sees_workloads_only_when_workload_mutations_are_on():
    """A patched ReplicaSet makes the Deployment controller create ReplicaSets forever; by default
    the apiserver does not even call /mutate for anything but Pods."""
    for values, want in [({}, {"pods"}),
                         ({"config": {"mutations": {"workloads": False}}}, {"pods"}),
                         ({"config": {"mutations": {"workloads": True}}},
                          {"pods", "deployments", "statefulsets", "daemonsets", "replicasets", "jobs",
                           "cronjobs", "replicationcontrollers", "podtemplates"})]:
        for cfg in configs(values):
            for hook in cfg["webhooks"]:
                resources = {r for rule in hook["rules"] for r in rule["resources"]}
                if cfg["kind"] == "MutatingWebhookConfiguration":
                    assert resources == want, (values, hook["name"])
                    for rule in hook["rules"]:
                        if rule["resources"] != ["pods"]:
                            assert rule["operations"] == ["CREATE"], "workloads are patched on CREATE only"
                else:
                    assert "replicasets" in resources and "cronjobs" in resources
