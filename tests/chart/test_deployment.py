"""The Deployment: exec-form launch, Pod Security "restricted", availability, mounts, probes."""

from __future__ import annotations

import pytest

from cases import CASES
from helpers import objects, of_kind, one

SHELLS = {"sh", "bash", "dash", "ash", "zsh", "ksh", "busybox", "env"}
RESTRICTED_VOLUME_TYPES = {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral",
                           "persistentVolumeClaim", "projected", "secret"}


def restricted_violations(pod: dict) -> list[str]:
    """Pod Security Standards, "restricted" profile (latest), for the fields a pod spec can set."""
    out: list[str] = []
    psc = pod.get("securityContext") or {}
    containers = (pod.get("initContainers") or []) + pod["containers"] + (pod.get("ephemeralContainers") or [])
    for field in ("hostNetwork", "hostPID", "hostIPC"):
        if pod.get(field):
            out.append(f"{field} set")
    for vol in pod.get("volumes") or []:
        kinds = set(vol) - {"name"}
        if not kinds <= RESTRICTED_VOLUME_TYPES:
            out.append(f"volume {vol['name']} of type {kinds}")
    if psc.get("runAsUser") == 0:
        out.append("pod runAsUser 0")
    pod_seccomp = (psc.get("seccompProfile") or {}).get("type")
    if pod_seccomp not in (None, "RuntimeDefault", "Localhost"):
        out.append(f"pod seccomp {pod_seccomp}")
    for c in containers:
        sc = c.get("securityContext") or {}
        name = c["name"]
        if sc.get("privileged"):
            out.append(f"{name}: privileged")
        if sc.get("allowPrivilegeEscalation") is not False:
            out.append(f"{name}: allowPrivilegeEscalation is not false")
        if sc.get("runAsNonRoot", psc.get("runAsNonRoot")) is not True:
            out.append(f"{name}: runAsNonRoot is not true")
        if sc.get("runAsUser") == 0:
            out.append(f"{name}: runAsUser 0")
        seccomp = (sc.get("seccompProfile") or {}).get("type", pod_seccomp)
        if seccomp not in ("RuntimeDefault", "Localhost"):
            out.append(f"{name}: seccompProfile {seccomp}")
        caps = sc.get("capabilities") or {}
        if "ALL" not in (caps.get("drop") or []):
            out.append(f"{name}: capabilities do not drop ALL")
        if set(caps.get("add") or []) - {"NET_BIND_SERVICE"}:
            out.append(f"{name}: adds capabilities {caps['add']}")
        if sc.get("procMount", "Default") != "Default":
            out.append(f"{name}: procMount")
        for port in c.get("ports") or []:
            if port.get("hostPort"):
                out.append(f"{name}: hostPort")
    return out


def pod_of(values=None):
    return one(objects(values), "Deployment")["spec"]["template"]["spec"]


@pytest.mark.parametrize("case", list(CASES))
def test_pod_security_restricted(case):
    pod = pod_of(CASES[case])
    assert restricted_violations(pod) == []
    sc = pod["containers"][0]["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["runAsUser"] == 65532 and pod["securityContext"]["runAsUser"] == 65532


def test_restricted_check_catches_a_weakened_pod():
    pod = pod_of({"securityContext": {"allowPrivilegeEscalation": True, "capabilities": {"drop": ["NET_RAW"], "add": ["SYS_ADMIN"]}}})
    problems = restricted_violations(pod)
    assert any("allowPrivilegeEscalation" in p for p in problems)
    assert any("drop ALL" in p for p in problems)
    assert any("SYS_ADMIN" in p for p in problems)


@pytest.mark.parametrize("case", list(CASES))
def test_runs_pidone_directly_in_exec_form(case):
    values = CASES[case]
    pod = pod_of(values)
    assert len(pod["containers"]) == 1 and not pod.get("initContainers")
    c = pod["containers"][0]
    assert c["command"] == ["/pidone"]
    assert c["command"][0].rsplit("/", 1)[-1] not in SHELLS
    server = values.get("server", {})
    assert c["args"] == [
        "serve",
        "--config", "/etc/pidone/config.yaml",
        "--tls-cert", "/etc/pidone/tls/tls.crt",
        "--tls-key", "/etc/pidone/tls/tls.key",
        "--listen", "0.0.0.0:8443",
        "--metrics-listen", "0.0.0.0:9090",
        "--log-format", server.get("logFormat", "json"),
        "--drain-timeout", server.get("drainTimeout", "20s"),
        *server.get("extraArgs", []),
    ]
    assert {p["name"]: p["containerPort"] for p in c["ports"]} == {"https": 8443, "metrics": 9090}


def test_image_reference():
    assert pod_of()["containers"][0]["image"] == "ghcr.io/pidone/pidone:0.1.0"
    assert pod_of({"image": {"tag": "1.2.3"}})["containers"][0]["image"] == "ghcr.io/pidone/pidone:1.2.3"
    digest = CASES["production"]["image"]["digest"]
    assert pod_of(CASES["production"])["containers"][0]["image"] == f"ghcr.io/pidone/pidone@{digest}"


def test_probes_on_admin_port():
    c = pod_of()["containers"][0]
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
    assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}
    assert "scheme" not in c["readinessProbe"]["httpGet"], "the admin port is plain HTTP"


def test_config_and_tls_mounted_as_one_volume_without_subpath():
    pod = pod_of()
    c = pod["containers"][0]
    mounts = {m["name"]: m for m in c["volumeMounts"]}
    assert mounts["config"]["mountPath"] == "/etc/pidone" and mounts["config"]["readOnly"] is True
    assert all("subPath" not in m and "subPathExpr" not in m for m in c["volumeMounts"])
    vol = next(v for v in pod["volumes"] if v["name"] == "config")
    items = {}
    for src in vol["projected"]["sources"]:
        ref = src.get("configMap") or src.get("secret")
        for item in ref["items"]:
            items[item["path"]] = (next(iter(src)), ref["name"], item["key"])
    assert items == {
        "config.yaml": ("configMap", "pidone", "config.yaml"),
        "tls/tls.crt": ("secret", "pidone-tls", "tls.crt"),
        "tls/tls.key": ("secret", "pidone-tls", "tls.key"),
    }


def test_service_account_token_is_mounted():
    objs = objects()
    pod = one(objs, "Deployment")["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is True
    sa = one(objs, "ServiceAccount")
    assert pod["serviceAccountName"] == sa["metadata"]["name"]
    assert sa.get("automountServiceAccountToken", True) is True


def test_availability_defaults():
    objs = objects()
    deploy = one(objs, "Deployment")
    assert deploy["spec"]["replicas"] == 3
    assert deploy["spec"]["strategy"]["rollingUpdate"] == {"maxUnavailable": 0, "maxSurge": 1}
    pod = deploy["spec"]["template"]["spec"]
    selector = deploy["spec"]["selector"]["matchLabels"]
    keys = {t["topologyKey"] for t in pod["topologySpreadConstraints"]}
    assert keys == {"kubernetes.io/hostname", "topology.kubernetes.io/zone"}
    assert all(t["whenUnsatisfiable"] == "ScheduleAnyway" and t["labelSelector"]["matchLabels"] == selector
               for t in pod["topologySpreadConstraints"])
    anti = pod["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
    assert anti[0]["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"
    assert anti[0]["podAffinityTerm"]["labelSelector"]["matchLabels"] == selector
    assert "requiredDuringSchedulingIgnoredDuringExecution" not in pod["affinity"]["podAntiAffinity"]
    assert pod["terminationGracePeriodSeconds"] > 20
    # Like other admission controllers: not preempted before the pods it admits.
    assert pod["priorityClassName"] == "system-cluster-critical"
    res = pod["containers"][0]["resources"]
    assert res["requests"]["cpu"] and res["requests"]["memory"] and res["limits"]["memory"]


def test_overrides():
    values = {"affinity": {"nodeAffinity": {}}, "topologySpreadConstraints": [
        {"maxSkew": 2, "topologyKey": "kubernetes.io/hostname", "whenUnsatisfiable": "DoNotSchedule",
         "labelSelector": {"matchLabels": {"app.kubernetes.io/name": "pidone"}}}]}
    pod = pod_of(values)
    assert pod["affinity"] == {"nodeAffinity": {}}
    assert pod["topologySpreadConstraints"] == values["topologySpreadConstraints"]
    prod = pod_of(CASES["production"])
    assert prod["priorityClassName"] == "system-cluster-critical"
    assert prod["imagePullSecrets"] == [{"name": "regcred"}]


def test_priority_class_can_be_unset():
    """Platforms that restrict system-* classes outside kube-system (GKE) set it empty."""
    assert "priorityClassName" not in pod_of({"priorityClassName": ""})
    assert pod_of({"priorityClassName": "platform-critical"})["priorityClassName"] == "platform-critical"


def test_config_checksum_follows_config():
    def checksum(values):
        return one(objects(values), "Deployment")["spec"]["template"]["metadata"]["annotations"]["checksum/config"]
    assert checksum({}) == checksum({})
    assert checksum({}) != checksum({"config": {"mode": "enforce"}})
    assert len(checksum({})) == 64


@pytest.mark.parametrize("replicas,present", [(1, False), (2, True), (3, True)])
def test_pod_disruption_budget(replicas, present):
    objs = objects({"replicas": replicas})
    pdbs = of_kind(objs, "PodDisruptionBudget")
    assert bool(pdbs) == present
    if present:
        spec = pdbs[0]["spec"]
        assert spec["maxUnavailable"] == 1 and "minAvailable" not in spec
        assert spec["selector"]["matchLabels"] == one(objs, "Deployment")["spec"]["selector"]["matchLabels"]
        assert spec["unhealthyPodEvictionPolicy"] == "AlwaysAllow"


def test_pod_disruption_budget_min_available():
    spec = one(objects(CASES["production"]), "PodDisruptionBudget")["spec"]
    assert spec["minAvailable"] == 2 and "maxUnavailable" not in spec
