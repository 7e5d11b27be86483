"""`helm install` on a served cluster: the chart's operator pod really runs (the pod runner
starts it as a process with the pod's own service-account token, mounted where the kubelet
mounts it) and reconciles ModelDeployments and RoutePolicies under exactly the chart's RBAC;
`helm test` passes on it, and fails once the operator is scaled to 0."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import yaml

from devtools.cluster import REPO, LocalCluster, wait_for
from tests.support.modeldeployments import model_deployment, wait_ready
from tests.support.netns import http

CHART = REPO / "charts" / "gpt-oss-operator"
SYSTEM_NS = "gptoss-system"
RELEASE = "gptoss"
SA = "gptoss-gpt-oss-operator"
# Not the routers' 8080 / 8081: every process of a served cluster shares one network namespace.
PORTS = ("metrics.port=9401", "livenessPort=9402")


def run_helm(cluster: LocalCluster, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        cluster.command(str(cluster.bindir / "helm"), *args),
        capture_output=True,
        text=True,
        env=cluster.env,
        check=False,
        timeout=300,
    )


def helm(cluster: LocalCluster, *args: str) -> str:
    proc = run_helm(cluster, *args)
    assert proc.returncode == 0, f"helm {' '.join(args)} failed: {proc.stderr.strip()}"
    return proc.stdout


def ensure_installed(cluster: LocalCluster) -> None:
    """The release of the first test, for tests that run alone (-k)."""
    if run_helm(cluster, "status", RELEASE, "-n", SYSTEM_NS).returncode != 0:
        sets = [a for s in PORTS for a in ("--set", s)]
        helm(cluster, "install", RELEASE, str(CHART), "-n", SYSTEM_NS, "--create-namespace", "--wait", *sets)


def operator_pod(cluster: LocalCluster) -> dict[str, Any]:
    pods = cluster.get("pods", "-n", SYSTEM_NS, "-l", f"app.kubernetes.io/instance={RELEASE}")["items"]
    (pod,) = [p for p in pods if p["status"].get("phase") == "Running"]
    return dict(pod)


def pod_dir(cluster: LocalCluster, pod: dict[str, Any]) -> Path:
    meta = pod["metadata"]
    return (
        cluster.kubeconfig.parent / "pods" / f"{meta['namespace']}_{meta['name']}_{meta['uid'][:8]}"
    )  # kind/podrunner.py


def mounted_token_kubeconfig(cluster: LocalCluster, pod: dict[str, Any], directory: Path) -> Path:
    """A kubeconfig using the token file the pod runner mounted into the operator's pod."""
    (token,) = [p for p in pod_dir(cluster, pod).glob("volumes/*/token") if p.is_file() or p.is_symlink()]
    admin = yaml.safe_load(cluster.kubeconfig.read_text())
    kube_cluster = dict(admin["clusters"][0]["cluster"])
    if kube_cluster.get("certificate-authority"):
        kube_cluster["certificate-authority"] = str(
            cluster.kubeconfig.parent / kube_cluster["certificate-authority"]
        )
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "pod",
        "clusters": [{"name": "local", "cluster": kube_cluster}],
        "users": [{"name": "pod", "user": {"tokenFile": str(token)}}],
        "contexts": [{"name": "pod", "context": {"cluster": "local", "user": "pod"}}],
    }
    path = directory / "pod-kubeconfig"
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    return path


def test_helm_install_runs_the_operator_pod_under_the_charts_rbac(
    own_served_cluster: LocalCluster, tmp_path: Path
) -> None:
    cluster = own_served_cluster
    sets = [a for s in PORTS for a in ("--set", s)]
    started = time.monotonic()
    helm(
        cluster,
        "install",
        RELEASE,
        str(CHART),
        "-n",
        SYSTEM_NS,
        "--create-namespace",
        "--wait",
        "--timeout=120s",
        *sets,
    )
    print(f"helm install --wait on the served cluster: {time.monotonic() - started:.1f}s")
    pod = operator_pod(cluster)
    assert pod["spec"]["serviceAccountName"] == SA
    netns = cluster.netns
    assert netns is not None

    # The process the pod runner started answers on the pod's ports with the operator's metrics.
    def metrics() -> str:
        try:
            r = http(netns, "GET", f"http://{pod['status']['podIP']}:9401/metrics", timeout=2)
        except httpx.HTTPError as e:  # refused while the process starts
            raise AssertionError(f"{type(e).__name__}: {e}") from None
        assert r.status_code == 200
        return str(r.text)

    wait_for(
        lambda: "gptoss_operator_queue_depth" in metrics(), timeout=60, what="the operator pod's /metrics"
    )

    namespace = cluster.create_namespace("served-helm")
    cluster.apply(model_deployment("m", "gpt-oss-20b", "H100-80GB"), namespace)
    policy = {
        "apiVersion": "gptoss.dev/v1alpha1",
        "kind": "RoutePolicy",
        "metadata": {"name": "chat"},
        "spec": {
            "routes": [
                {"model": "gpt-oss-20b", "backends": [{"name": "local", "modelDeployment": {"name": "m"}}]}
            ]
        },
    }
    cluster.apply(policy, namespace)
    wait_ready(cluster, namespace, "m", timeout=120)
    wait_for(
        lambda: (
            (cluster.get("routepolicy", "chat", "-n", namespace).get("status") or {}).get("routeCount") == 1
        ),
        timeout=60,
        what="the RoutePolicy to be reconciled",
    )
    assert cluster.get("deployment", "chat-router", "-n", namespace)["metadata"]["name"] == "chat-router"
    assert 'gptoss_operator_reconcile_seconds_count{kind="ModelDeployment"}' in metrics()

    # The mounted token is the chart's service account, and the chart's RBAC bounds it.
    kubeconfig = mounted_token_kubeconfig(cluster, pod, tmp_path)
    as_pod = ("--kubeconfig", str(kubeconfig))
    who = yaml.safe_load(cluster.kubectl(*as_pod, "auth", "whoami", "-o", "yaml").stdout)
    assert who["status"]["userInfo"]["username"] == f"system:serviceaccount:{SYSTEM_NS}:{SA}"
    secret = cluster.kubectl(*as_pod, "get", "secret", "any", "-n", "kube-system", check=False)
    assert "forbidden" in secret.stderr.lower()
    node = cluster.kubectl("get", "nodes", "-o", "name").stdout.split()[0]
    delete = cluster.kubectl(*as_pod, "delete", node, "--dry-run=server", check=False)
    assert "forbidden" in delete.stderr.lower()
    assert cluster.kubectl(*as_pod, "get", "modeldeployments", "-A", "-o", "name").stdout.strip()
    sa = f"--as=system:serviceaccount:{SYSTEM_NS}:{SA}"
    assert cluster.kubectl("auth", "can-i", "get", "secrets", "-A", sa, check=False).stdout.strip() == "no"
    assert cluster.kubectl("auth", "can-i", "delete", "nodes", sa, check=False).stdout.strip() == "no"

    # Nothing the operator asked for was refused.
    log = (pod_dir(cluster, pod) / "operator.log").read_text(errors="replace")
    assert "Activity 'Controller._register.<locals>.login' succeeded" in log
    refused = [line for line in log.splitlines() if "403" in line or "Forbidden" in line]
    assert refused == []


TEST_POD = f"{RELEASE}-gpt-oss-operator-test-metrics"


def check_log(cluster: LocalCluster) -> str:
    """What the latest `helm test` pod printed (the pod runner keeps its log after the pod goes)."""
    logs = sorted(
        (cluster.kubeconfig.parent / "pods").glob(f"{SYSTEM_NS}_{TEST_POD}_*/check.log"),
        key=lambda p: p.stat().st_mtime,
    )
    return logs[-1].read_text(errors="replace") if logs else "(no log)"


def operator_pods(cluster: LocalCluster) -> list[dict[str, Any]]:
    selector = f"app.kubernetes.io/instance={RELEASE},app.kubernetes.io/name=gpt-oss-operator"
    return list(cluster.get("pods", "-n", SYSTEM_NS, "-l", selector)["items"])


def test_helm_test_passes_on_a_running_operator(own_served_cluster: LocalCluster) -> None:
    cluster = own_served_cluster
    ensure_installed(cluster)
    started = time.monotonic()
    out = helm(cluster, "test", RELEASE, "-n", SYSTEM_NS, "--timeout=120s")
    print(f"helm test (healthy operator): {time.monotonic() - started:.1f}s")
    assert f"TEST SUITE:     {TEST_POD}" in out
    assert "Phase:          Succeeded" in out
    # It checked the one operator pod, which leads (no leader election with one replica).
    (pod,) = [p for p in operator_pods(cluster) if p["status"].get("phase") == "Running"]
    log = check_log(cluster)
    assert (
        f"ok: {pod['metadata']['name']} ({pod['status']['podIP']}:9401) answers /metrics as the leader" in log
    )
    # hook-delete-policy hook-succeeded: the pod runner's Succeeded let helm delete the pod.
    assert cluster.kubectl("get", "pod", TEST_POD, "-n", SYSTEM_NS, check=False).returncode != 0


def test_helm_test_fails_when_the_operator_is_down(own_served_cluster: LocalCluster) -> None:
    cluster = own_served_cluster
    ensure_installed(cluster)
    deployment = f"deployment/{RELEASE}-gpt-oss-operator"
    cluster.kubectl("scale", deployment, "-n", SYSTEM_NS, "--replicas=0")
    try:
        wait_for(lambda: not operator_pods(cluster), timeout=60, what="the operator pod to go")
        started = time.monotonic()
        proc = run_helm(cluster, "test", RELEASE, "-n", SYSTEM_NS, "--timeout=120s")
        print(f"helm test (operator scaled to 0): {time.monotonic() - started:.1f}s, exit {proc.returncode}")
        assert proc.returncode != 0, proc.stdout
        assert "pod " + TEST_POD + " failed" in proc.stderr, proc.stderr
        # The failed pod stays (hook-succeeded only), with the status a kubelet would write.
        pod = cluster.get("pod", TEST_POD, "-n", SYSTEM_NS)
        assert pod["status"]["phase"] == "Failed"
        (status,) = pod["status"]["containerStatuses"]
        terminated = status["state"]["terminated"]
        assert (terminated["exitCode"], terminated["reason"]) == (1, "Error")
        assert terminated["startedAt"] <= terminated["finishedAt"]
        ready = [c for c in pod["status"]["conditions"] if c["type"] == "Ready"]
        assert (ready[0]["status"], ready[0]["reason"]) == ("False", "PodCompleted")
        assert "FAIL: the Service has no ready endpoint" in check_log(cluster)
    finally:
        cluster.kubectl("scale", deployment, "-n", SYSTEM_NS, "--replicas=1")
        cluster.kubectl("rollout", "status", deployment, "-n", SYSTEM_NS, "--timeout=60s")
    # Back up: the next run replaces the failed pod (before-hook-creation) and passes.
    out = helm(cluster, "test", RELEASE, "-n", SYSTEM_NS, "--timeout=120s")
    assert "Phase:          Succeeded" in out
