"""ConfigMap, Service, NetworkPolicy and ServiceMonitor."""

from __future__ import annotations

import yaml

from cases import CASES
from chartlib import notes
from helpers import objects, of_kind, one

DESIGN_KEYS = {"mode", "rules", "sideAgents", "nativeSidecars", "mutations", "initInjection", "exemptions",
               "images", "reports"}


def config_file(values=None, **kw):
    cm = one(objects(values, **kw), "ConfigMap")
    assert list(cm["data"]) == ["config.yaml"]
    return yaml.safe_load(cm["data"]["config.yaml"])


def test_default_config_file():
    cfg = config_file(namespace="platform")
    assert set(cfg) == DESIGN_KEYS
    assert cfg["mode"] == "audit"
    assert cfg["exemptions"]["namespaces"] == ["kube-system", "kube-public", "kube-node-lease", "platform"]
    assert cfg["initInjection"] == {"enabled": False, "strategy": "binary", "image": "ghcr.io/pidone/pidone:0.1.0"}
    assert cfg["mutations"] == {"workloads": False}, "workload templates are not patched by default"
    assert cfg["images"] == {"resolve": False, "deadline": "2s", "tagTTL": "10m", "credentials": ""}
    assert cfg["nativeSidecars"] == "auto"
    assert cfg["reports"] == {"enabled": False, "api": "policyreport", "minInterval": "10s",
                              "maxWritesPerSecond": 5}
    assert "images" not in cfg["sideAgents"], "unset: pidone's built-in list applies"


def test_custom_config_file_is_passed_through():
    values = CASES["custom-config"]
    cfg = config_file(values)
    want = values["config"]
    assert cfg["rules"] == want["rules"]
    assert cfg["sideAgents"] == want["sideAgents"]
    assert cfg["initInjection"] == want["initInjection"]
    assert cfg["images"] == want["images"]
    assert cfg["exemptions"] == {"namespaces": ["kube-system", "istio-system", "pidone"], "allowAnnotations": False}


def test_service_ports():
    objs = objects()
    svc = one(objs, "Service")
    assert svc["spec"]["type"] == "ClusterIP"
    ports = {p["name"]: (p["port"], p["targetPort"]) for p in svc["spec"]["ports"]}
    assert ports == {"https": (443, "https"), "metrics": (9090, "metrics")}
    assert svc["spec"]["selector"] == one(objs, "Deployment")["spec"]["selector"]["matchLabels"]


def test_network_policy_on_by_default():
    np = one(objects(), "NetworkPolicy")
    webhook, metrics = np["spec"]["ingress"]
    # Rendered without a cluster, the apiserver's addresses cannot be looked up: the port is
    # left open and NOTES.txt says so.
    assert "from" not in webhook
    assert "WARNING: the NetworkPolicy leaves the webhook port open" in notes()
    assert metrics["from"] == [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}]
    assert not of_kind(objects({"networkPolicy": {"enabled": False}}), "NetworkPolicy")


def test_network_policy_admits_only_the_given_apiserver_range():
    objs = objects({"networkPolicy": {"webhook": {"cidrs": ["192.0.2.10/32", "192.0.2.11/32"]}}})
    webhook, _ = one(objs, "NetworkPolicy")["spec"]["ingress"]
    assert webhook["from"] == [{"ipBlock": {"cidr": "192.0.2.10/32"}}, {"ipBlock": {"cidr": "192.0.2.11/32"}}]
    assert "WARNING: the NetworkPolicy" not in notes({"networkPolicy": {"webhook": {"cidrs": ["192.0.2.10/32"]}}})


def test_network_policy_restricts_sources():
    objs = objects(CASES["network-policy"])
    np = one(objs, "NetworkPolicy")
    assert np["spec"]["podSelector"]["matchLabels"] == one(objs, "Deployment")["spec"]["selector"]["matchLabels"]
    assert np["spec"]["policyTypes"] == ["Ingress"]
    webhook, metrics = np["spec"]["ingress"]
    assert webhook["ports"] == [{"port": "https", "protocol": "TCP"}]
    assert webhook["from"] == [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "konnectivity"}}},
        {"ipBlock": {"cidr": "10.0.0.0/24"}},
    ]
    assert metrics["ports"] == [{"port": "metrics", "protocol": "TCP"}]
    assert metrics["from"] == [{
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}},
        "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}},
    }]


def test_network_policy_open_webhook_port_without_a_known_range():
    webhook, metrics = one(objects(CASES["network-policy-open"]), "NetworkPolicy")["spec"]["ingress"]
    assert "from" not in webhook, "the apiserver's source address is cluster-specific"
    assert metrics["from"] == [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}]


def test_service_monitor():
    assert not of_kind(objects(), "ServiceMonitor")
    objs = objects(CASES["service-monitor"])
    sm = one(objs, "ServiceMonitor")
    assert sm["apiVersion"] == "monitoring.coreos.com/v1"
    assert sm["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert sm["spec"]["selector"]["matchLabels"].items() <= one(objs, "Service")["metadata"]["labels"].items()
    assert sm["spec"]["namespaceSelector"] == {"matchNames": ["pidone"]}
    assert sm["spec"]["endpoints"] == [{"port": "metrics", "path": "/metrics", "scheme": "http",
                                        "interval": "30s", "scrapeTimeout": "10s"}]


def test_names_follow_the_release():
    objs = objects(name="edge", namespace="x")
    assert one(objs, "Deployment")["metadata"]["name"] == "edge-pidone"
    assert {o["metadata"].get("namespace", "x") for o in objs} == {"x"}
    assert one(objects({"fullnameOverride": "pid1"}), "Service")["metadata"]["name"] == "pid1"
