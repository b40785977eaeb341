"""RBAC is least privilege: exactly the rules pidone needs."""

from __future__ import annotations

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
]


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
