"""`helm install` on a served cluster: the chart's operator pod really runs (the pod runner
starts it as a process with the pod's own service-account token, mounted where the kubelet
mounts it) and reconciles ModelDeployments and RoutePolicies under exactly the chart's RBAC."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
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


@pytest.fixture(scope="module")
def served() -> Iterator[LocalCluster]:
    # Its own served cluster: the chart's operator must be the only operator in it.
    local = LocalCluster.start(serve=True, reuse_env=False)
    try:
        yield local
    finally:
        local.stop()


def helm(cluster: LocalCluster, *args: str) -> str:
    proc = subprocess.run(
        cluster.command(str(cluster.bindir / "helm"), *args),
        capture_output=True,
        text=True,
        env=cluster.env,
        check=False,
        timeout=300,
    )
    assert proc.returncode == 0, f"helm {' '.join(args)} failed: {proc.stderr.strip()}"
    return proc.stdout


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
    served: LocalCluster, tmp_path: Path
) -> None:
    cluster = served
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
