"""RBAC is least privilege: exactly the rules pidone needs."""

from __future__ import annotations

import yaml
from helpers import objects, of_kind, one

SERVER_RULES = [
    {"nonResourceURLs": ["/version"], "verbs": ["get"]},
    {"apiGroups": [""], "resources": ["nodes"], "verbs": ["list", "watch"]},
]
AUDIT_RULES = [
    {"apiGroups": [""], "resources": ["pods", "replicationcontrollers", "podtemplates"],
     "verbs": ["get", "list", "watch"]},
    {"apiGroups": ["apps"], "resources": ["deployments", "statefulsets", "daemonsets", "replicasets"],
     "verbs": ["get", "list", "watch"]},
    {"apiGroups": ["batch"], "resources": ["jobs", "cronjobs"], "verbs": ["get", "list", "watch"]},
    {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["list"]},
]
CONFIG_MAP_RULES = [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}]


def test_default_rbac_is_exact():
    objs = objects()
    roles = of_kind(objs, "ClusterRole")
    assert [r["metadata"]["name"] for r in roles] == ["pidone"]
    assert roles[0]["rules"] == SERVER_RULES
    assert not of_kind(objs, "Role") and not of_kind(objs, "RoleBinding")
    binding = one(objs, "ClusterRoleBinding")
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "pidone"}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "pidone", "namespace": "pidone"}]


def test_cluster_audit_adds_read_only_rules():
    objs = objects({"clusterAudit": {"enabled": True}})
    roles = {r["metadata"]["name"]: r["rules"] for r in of_kind(objs, "ClusterRole")}
    assert roles == {"pidone": SERVER_RULES, "pidone-cluster-audit": AUDIT_RULES}
    for rules in roles.values():
        for rule in rules:
            assert set(rule["verbs"]) <= {"get", "list", "watch"}
            assert "*" not in rule.get("resources", []) and "secrets" not in rule.get("resources", [])
    bindings = {b["metadata"]["name"]: b for b in of_kind(objs, "ClusterRoleBinding")}
    assert bindings["pidone-cluster-audit"]["roleRef"]["name"] == "pidone-cluster-audit"
    assert bindings["pidone-cluster-audit"]["subjects"] == bindings["pidone"]["subjects"]


def test_rbac_can_be_left_to_the_cluster_admin():
    objs = objects({"rbac": {"create": False}, "serviceAccount": {"create": False, "name": "pidone-sa"}})
    assert not of_kind(objs, "ClusterRole") and not of_kind(objs, "ServiceAccount")
    assert one(objs, "Deployment")["spec"]["template"]["spec"]["serviceAccountName"] == "pidone-sa"


REPORT_READ_RULES = [
    {"apiGroups": [""], "resources": ["pods", "replicationcontrollers", "namespaces"],
     "verbs": ["get", "list", "watch"]},
    {"apiGroups": ["apps"], "resources": ["deployments", "statefulsets", "daemonsets", "replicasets"],
     "verbs": ["get", "list", "watch"]},
    {"apiGroups": ["batch"], "resources": ["jobs", "cronjobs"], "verbs": ["get", "list", "watch"]},
]
REPORT_WRITE_VERBS = ["get", "list", "watch", "create", "patch", "update", "delete"]


def test_reports_rbac_only_when_enabled():
    objs = objects({"config": {"reports": {"enabled": False}}})
    assert [r["metadata"]["name"] for r in of_kind(objs, "ClusterRole")] == ["pidone"]
    assert not of_kind(objs, "Role")
    env = one(objs, "Deployment")["spec"]["template"]["spec"]["containers"][0].get("env", [])
    assert not [e for e in env if e["name"] in ("POD_NAME", "PIDONE_REPORTS_LEASE")]


def test_reports_rbac_policyreport_and_openreport():
    for api, group, plurals in [("policyreport", "wgpolicyk8s.io", ["policyreports", "clusterpolicyreports"]),
                                ("openreport", "openreports.io", ["reports", "clusterreports"])]:
        objs = objects({"config": {"reports": {"enabled": True, "api": api}}})
        roles = {r["metadata"]["name"]: r["rules"] for r in of_kind(objs, "ClusterRole")}
        assert roles["pidone-reports"] == REPORT_READ_RULES + [
            {"apiGroups": [group], "resources": plurals, "verbs": REPORT_WRITE_VERBS}]
        binding = one(objs, "ClusterRoleBinding", "pidone-reports")
        assert binding["roleRef"]["name"] == "pidone-reports"
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "pidone", "namespace": "pidone"}]
        # The Lease: created in the release namespace, then only this one named Lease is touched.
        role = one(objs, "Role", "pidone-reports-lease")
        assert role["metadata"]["namespace"] == "pidone"
        assert role["rules"] == [
            {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["create"]},
            {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"],
             "resourceNames": ["pidone-reports"], "verbs": ["get", "update", "patch"]},
        ]
        assert one(objs, "RoleBinding", "pidone-reports-lease")["roleRef"]["name"] == "pidone-reports-lease"
        env = {e["name"]: e for e in one(objs, "Deployment")["spec"]["template"]["spec"]["containers"][0]["env"]}
        assert env["PIDONE_REPORTS_LEASE"]["value"] == "pidone-reports"
        assert env["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
        assert env["POD_NAMESPACE"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.namespace"


def test_reports_keep_user_env():
    objs = objects({"config": {"reports": {"enabled": True}},
                    "server": {"env": [{"name": "RUST_LOG", "value": "debug"}]}})
    env = [e["name"] for e in one(objs, "Deployment")["spec"]["template"]["spec"]["containers"][0]["env"]]
    assert env == ["PIDONE_REPORTS_LEASE", "POD_NAME", "POD_NAMESPACE", "RUST_LOG"]


def rendered_config(objs):
    return yaml.safe_load(one(objs, "ConfigMap", "pidone")["data"]["config.yaml"])


def test_config_map_scripts_off_grant_nothing():
    objs = objects()
    assert "scripts" not in rendered_config(objs)
    # Look-up settings alone switch nothing on.
    objs = objects({"config": {"scripts": {"cacheTTL": "10s"}}})
    assert rendered_config(objs)["scripts"] == {"cacheTTL": "10s"}
    assert [r["metadata"]["name"] for r in of_kind(objs, "ClusterRole")] == ["pidone"]
    assert not of_kind(objs, "Role")


def test_config_map_scripts_in_listed_namespaces_get_a_role_each():
    objs = objects({"scripts": {"configMaps": {"enabled": True, "namespaces": ["shop", "db"]}},
                    "config": {"scripts": {"deadline": "500ms"}}})
    assert rendered_config(objs)["scripts"] == {"configMaps": ["shop", "db"], "deadline": "500ms"}
    roles = {r["metadata"]["namespace"]: r for r in of_kind(objs, "Role")}
    assert sorted(roles) == ["db", "shop"]
    for ns, role in roles.items():
        assert role["metadata"]["name"] == "pidone-config-maps"
        assert role["rules"] == CONFIG_MAP_RULES
    bindings = {b["metadata"]["namespace"]: b for b in of_kind(objs, "RoleBinding")}
    assert sorted(bindings) == ["db", "shop"]
    for binding in bindings.values():
        assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                                      "name": "pidone-config-maps"}
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "pidone", "namespace": "pidone"}]
    assert [r["metadata"]["name"] for r in of_kind(objs, "ClusterRole")] == ["pidone"]


def test_config_map_scripts_everywhere_get_a_cluster_role():
    objs = objects({"scripts": {"configMaps": {"enabled": True}}})
    assert rendered_config(objs)["scripts"] == {"configMaps": True}
    roles = {r["metadata"]["name"]: r["rules"] for r in of_kind(objs, "ClusterRole")}
    assert roles == {"pidone": SERVER_RULES, "pidone-config-maps": CONFIG_MAP_RULES}
    binding = one(objs, "ClusterRoleBinding", "pidone-config-maps")
    assert binding["roleRef"]["name"] == "pidone-config-maps"
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "pidone", "namespace": "pidone"}]
    assert not of_kind(objs, "Role")
    # No RBAC when the chart leaves it to the cluster admin.
    objs = objects({"scripts": {"configMaps": {"enabled": True}}, "rbac": {"create": False}})
    assert not of_kind(objs, "ClusterRole") and rendered_config(objs)["scripts"] == {"configMaps": True}
