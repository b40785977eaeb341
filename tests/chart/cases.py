"""Value combinations every check renders. Keys are test ids."""

from __future__ import annotations

from typing import Any

CASES: dict[str, dict[str, Any]] = {
    "defaults": {},
    "cert-manager": {"certManager": {"enabled": True}},
    "cert-manager-issuer": {
        "certManager": {"enabled": True,
                        "issuerRef": {"name": "corp-ca", "kind": "ClusterIssuer", "group": "cert-manager.io"}},
    },
    "existing-secret": {
        "tls": {"existingSecret": "my-webhook-tls",
                "caBundle": "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"},
    },
    "global-enforce": {"config": {"mode": "enforce"}},
    "global-off": {"config": {"mode": "off"}},
    "workload-mutations": {"config": {"mode": "enforce", "mutations": {"workloads": True}}},
    "single-replica": {"replicas": 1},
    "network-policy": {
        "networkPolicy": {
            "enabled": True,
            "webhook": {"cidrs": ["10.0.0.0/24"],
                        "from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "konnectivity"}}}]},
            "metrics": {"podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}}},
        },
    },
    "network-policy-open": {"networkPolicy": {"enabled": True}},
    "service-monitor": {"serviceMonitor": {"enabled": True, "labels": {"release": "kube-prometheus-stack"}}},
    "custom-config": {
        "config": {
            "mode": "enforce",
            "rules": {"multi-process": "warn", "signal-deaf-pid1": "ignore"},
            "sideAgents": {"images": ["*fluent-bit*", "*cloud-sql-proxy*"], "position": "last"},
            "nativeSidecars": "never",
            "mutations": {"workloads": False},
            "initInjection": {"enabled": True, "strategy": "shareProcessNamespace",
                              "image": "registry.example/pidone:1.2.3"},
            "exemptions": {"namespaces": ["kube-system", "istio-system"], "allowAnnotations": False},
            "images": {"resolve": True, "deadline": "1500ms", "tagTTL": "1h",
                       "credentials": "/var/run/secrets/registry/config.json",
                       "mirrors": {"docker.io": ["mirror.example.com"]}, "platform": "linux/arm64",
                       "insecureRegistries": [], "caBundle": "", "cacheMaxEntries": 500,
                       "cacheMaxBytes": 8388608},
            "parser": {"maxScriptBytes": 32768, "maxDepth": 48, "deadline": "200ms"},
        },
        "server": {"logFormat": "text", "drainTimeout": "10s", "extraArgs": ["--reload-interval=2s"],
                   "env": [{"name": "RUST_LOG", "value": "info"}]},
    },
    "match-conditions": {
        "webhooks": {
            "matchConditions": [
                {"name": "not-node-users",
                 "expression": "!request.userInfo.username.startsWith('system:node:')"},
                {"name": "not-dry-run-tools", "expression": "request.userInfo.username != 'ci-bot'"},
            ],
            "failurePolicy": {"enforce": "Ignore", "audit": "Ignore"},
            "timeoutSeconds": 3,
            "excludeNamespaces": ["kube-system", "cert-manager"],
        },
    },
    "cluster-audit": {"clusterAudit": {"enabled": True}},
    "config-map-scripts": {"scripts": {"configMaps": {"enabled": True, "namespaces": ["shop", "db"]}},
                           "config": {"scripts": {"deadline": "500ms", "cacheTTL": "1m"}}},
    "config-map-scripts-everywhere": {"scripts": {"configMaps": {"enabled": True}}},
    "production": {
        "replicas": 5,
        "priorityClassName": "system-cluster-critical",
        "podDisruptionBudget": {"minAvailable": 2},
        "image": {"digest": "sha256:" + "a" * 64},
        "config": {"mode": "enforce"},
        "certManager": {"enabled": True},
        "networkPolicy": {"enabled": True, "webhook": {"cidrs": ["172.20.0.0/16"]}},
        "serviceMonitor": {"enabled": True},
        "nodeSelector": {"kubernetes.io/os": "linux"},
        "tolerations": [{"key": "CriticalAddonsOnly", "operator": "Exists"}],
        "imagePullSecrets": [{"name": "regcred"}],
        "serviceAccount": {"annotations": {"example.com/role": "pidone"}},
    },
    "validating-only": {"webhooks": {"mutating": False}},
}

# Kinds that kubernetes-validate has no schema for (custom resources).
CRD_KINDS = {
    ("cert-manager.io/v1", "Issuer"),
    ("cert-manager.io/v1", "Certificate"),
    ("monitoring.coreos.com/v1", "ServiceMonitor"),
}

KUBE_VERSIONS = ["1.29.0", "1.33.0"]
