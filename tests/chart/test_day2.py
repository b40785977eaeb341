"""Day-2 operation: matchConditions that skip what pidone never changes, the Grafana dashboard,
certificates that survive re-rendering."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import cel
import pytest

from helpers import objects, of_kind, one

ROOT = Path(__file__).resolve().parents[2]
BUILTIN = "pidone-pod-template-changed"


def conditions(values=None):
    hooks = [w for o in objects(values) if o["kind"].endswith("WebhookConfiguration") for w in o["webhooks"]]
    assert len(hooks) == 4
    found = [h.get("matchConditions", []) for h in hooks]
    assert all(f == found[0] for f in found), "every entry gets the same conditions"
    return found[0]


def builtin_expression():
    cond = [c for c in conditions() if c["name"] == BUILTIN]
    assert len(cond) == 1
    return cond[0]["expression"]


def called(expression, operation, resource, obj, old=None):
    """Whether the apiserver calls the webhook: the condition evaluates to true."""
    ctx = {"request": {"operation": operation, "resource": {"group": "", "version": "v1", "resource": resource}},
           "object": obj, "oldObject": old}
    result = cel.evaluate(expression, ctx)
    assert isinstance(result, bool), f"not a boolean: {result!r}"
    return result


def deployment(command="sh -c 'envsubst < t > c; app'", replicas=2, labels=None):
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "team-a", "labels": labels or {"app": "web"}},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"}},
                                  "spec": {"containers": [{"name": "app", "image": "web:1",
                                                           "command": ["sh", "-c", command]}]}}},
            "status": {"replicas": replicas}}


def test_default_skips_updates_that_keep_the_pod_template():
    expr = builtin_expression()
    old = deployment()
    # Scaling, the workload's own labels, its status: the apiserver need not call pidone.
    assert not called(expr, "UPDATE", "deployments", deployment(replicas=5), old)
    assert not called(expr, "UPDATE", "deployments", deployment(labels={"app": "web", "team": "a"}), old)
    # A changed container command, or `kubectl rollout restart` (a template annotation): called.
    assert called(expr, "UPDATE", "deployments", deployment(command="sh -c 'app & agent & wait'"), old)
    restarted = deployment()
    restarted["spec"]["template"]["metadata"]["annotations"] = {"kubectl.kubernetes.io/restartedAt": "now"}
    assert called(expr, "UPDATE", "deployments", restarted, old)
    # CREATE is always called; pods are CREATE only.
    assert called(expr, "CREATE", "deployments", old, None)
    assert called(expr, "CREATE", "pods", {"spec": {"containers": []}}, None)


def test_cronjobs_and_podtemplates_compare_their_own_templates():
    expr = builtin_expression()
    cron = {"spec": {"schedule": "* * * * *", "jobTemplate": {"spec": {"template": {"spec": {
        "containers": [{"name": "c", "image": "x", "command": ["sh", "-c", "x"]}]}}}}}}
    suspended = copy.deepcopy(cron)
    suspended["spec"]["suspend"] = True
    assert not called(expr, "UPDATE", "cronjobs", suspended, cron)
    changed = copy.deepcopy(cron)
    changed["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["command"] = ["y"]
    assert called(expr, "UPDATE", "cronjobs", changed, cron)
    pt = {"template": {"spec": {"containers": [{"name": "c", "image": "x"}]}}}
    relabelled = copy.deepcopy(pt)
    relabelled["metadata"] = {"labels": {"a": "b"}}
    assert not called(expr, "UPDATE", "podtemplates", relabelled, pt)
    pt2 = copy.deepcopy(pt)
    pt2["template"]["spec"]["containers"][0]["image"] = "y"
    assert called(expr, "UPDATE", "podtemplates", pt2, pt)


def test_objects_without_the_usual_fields_are_called_not_errors():
    """An evaluation error would reject the request under failurePolicy Fail; missing fields
    must evaluate to true instead (pidone then answers as it would without the condition)."""
    expr = builtin_expression()
    for resource in ["deployments", "cronjobs", "podtemplates", "jobs"]:
        assert called(expr, "UPDATE", resource, {}, {})
        assert called(expr, "UPDATE", resource, {"spec": {}}, {"spec": {}})
        assert called(expr, "UPDATE", resource, {"metadata": {}}, None)


def test_user_conditions_follow_the_builtin_one_and_it_can_be_switched_off():
    user = [{"name": "not-ci", "expression": "request.userInfo.username != 'ci-bot'"}]
    found = conditions({"webhooks": {"matchConditions": user}})
    assert [c["name"] for c in found] == [BUILTIN, "not-ci"]
    assert conditions({"webhooks": {"skipUnchangedUpdates": False}}) == []
    assert conditions({"webhooks": {"skipUnchangedUpdates": False, "matchConditions": user}}) == user


# ---------------------------------------------------------------------------------------------
# Grafana dashboard

# The metric families pidone exports (docs/design.md section 9).
METRICS = {
    "pidone_admission_requests_total", "pidone_admission_duration_seconds_bucket",
    "pidone_findings_total", "pidone_mutations_total", "pidone_config_reloads_total",
    "pidone_tls_reloads_total", "pidone_admission_shed_total", "pidone_admission_inflight",
    "pidone_report_results", "pidone_report_writes_total",
}


def test_no_dashboard_by_default():
    assert not [o for o in of_kind(objects(), "ConfigMap") if "dashboard" in o["metadata"]["name"]]


def test_dashboard_configmap_for_the_grafana_sidecar():
    objs = objects({"grafanaDashboard": {"enabled": True, "annotations": {"grafana_folder": "pidone"}}})
    cm = one(objs, "ConfigMap", "pidone-dashboard")
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert cm["metadata"]["namespace"] == "pidone"
    assert cm["metadata"]["annotations"] == {"grafana_folder": "pidone"}
    dash = json.loads(cm["data"]["pidone.json"])
    assert dash == json.loads((ROOT / "charts/pidone/dashboards/pidone.json").read_text())
    titles = [p["title"] for p in dash["panels"]]
    for topic in ["Admissions by result", "Findings by rule", "by namespace", "Mutations", "Shed",
                  "latency", "reloads"]:
        assert any(topic.lower() in t.lower() for t in titles), f"no panel about {topic}: {titles}"
    used = set()
    for panel in dash["panels"]:
        assert panel["datasource"]["uid"] == "${datasource}"
        for target in panel["targets"]:
            used |= set(re.findall(r"pidone_[a-z_]+", target["expr"]))
    assert used <= METRICS, f"unknown metrics: {used - METRICS}"
    assert {"pidone_admission_requests_total", "pidone_findings_total", "pidone_report_results",
            "pidone_mutations_total", "pidone_admission_shed_total",
            "pidone_admission_duration_seconds_bucket", "pidone_config_reloads_total"} <= used
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))


def test_dashboard_in_grafanas_namespace():
    objs = objects({"grafanaDashboard": {"enabled": True, "namespace": "monitoring",
                                         "labels": {"grafana_dashboard": "1", "team": "platform"}}})
    cm = one(objs, "ConfigMap", "pidone-dashboard")
    assert cm["metadata"]["namespace"] == "monitoring"
    assert cm["metadata"]["labels"]["team"] == "platform"


# ---------------------------------------------------------------------------------------------
# Certificates across renders


def test_rerendering_against_the_installed_release_changes_nothing():
    """Two upgrades in a row against the same installed Secret render identical TLS material
    (what a GitOps tool that can look up would diff): no rotation under running pods."""
    import helm_python as helm
    import yaml

    import chartlib
    from fake_apiserver import EMPTY_KUBECONFIG, FakeApiserver

    installed = one(objects(), "Secret")
    renders = []
    with FakeApiserver() as api:
        api.secrets[("pidone", "pidone-tls")] = installed
        for _ in range(2):
            with helm.Config(kube_apiserver=api.url, kubeconfig_content=EMPTY_KUBECONFIG,
                             namespace="pidone") as cfg, chartlib.load_chart() as chart:
                files = cfg.render(chart, {}, name="pidone", namespace="pidone", is_upgrade=True)
            renders.append(files["pidone/templates/webhook.yaml"])
    assert renders[0] == renders[1]
    docs = [d for d in yaml.safe_load_all(renders[0]) if d]
    assert one(docs, "Secret")["data"] == installed["data"]


def test_readme_tells_gitops_users_to_use_cert_manager():
    readme = (ROOT / "charts/pidone/README.md").read_text()
    section = readme[readme.index("## Certificates"):]
    section = section[:section.index("\n## ", 1)]
    assert "Argo CD" in section and "Flux" in section and "certManager.enabled" in section
