"""The local control plane is a real Kubernetes: scheduler, garbage collector, CEL, SSA.

These are the behaviours the operator relies on; each is observed on the real components,
not asserted from our own code.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from devtools.cluster import LocalCluster, condition, wait_for

NODES_FILE = Path(__file__).resolve().parents[2] / "kind" / "nodes.yaml"
GPU_TOLERATION = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}


def gpu_deployment(name: str, gpus: int, product: str) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "nodeSelector": {"nvidia.com/gpu.product": product},
                    "tolerations": [GPU_TOLERATION],
                    "containers": [
                        {
                            "name": "vllm",
                            "image": "vllm/vllm-openai:v0.11.0",
                            "resources": {"limits": {"nvidia.com/gpu": str(gpus)}},
                        }
                    ],
                },
            },
        },
    }


def test_server_reports_the_real_release(cluster: LocalCluster) -> None:
    version = json.loads(cluster.kubectl("version", "-o", "json").stdout)
    assert version["serverVersion"]["gitVersion"] == "v1.36.3"
    assert version["clientVersion"]["gitVersion"] == "v1.36.3"


def test_gpu_nodes_match_the_declared_pools(cluster: LocalCluster) -> None:
    pools = yaml.safe_load(NODES_FILE.read_text())["pools"]
    nodes = {n["metadata"]["name"]: n for n in cluster.get("nodes")["items"]}
    for pool in pools:
        gpu = pool.get("gpu")
        if gpu is None:  # a CPU pool: no GPUs, no taints
            node = nodes[f"{pool['name']}-0"]
            assert not any(k.endswith("/gpu") for k in node["status"]["allocatable"])
            assert not node["spec"].get("taints")
            continue
        for i in range(pool["count"]):
            node = nodes[f"{pool['name']}-{i}"]
            assert node["status"]["allocatable"][gpu["resource"]] == str(gpu["perNode"])
            assert condition(node, "Ready")["status"] == "True"  # type: ignore[index]
            if gpu["resource"] == "nvidia.com/gpu":
                labels = node["metadata"]["labels"]
                assert labels["nvidia.com/gpu.product"] == gpu["product"]
                assert labels["nvidia.com/gpu.memory"] == str(gpu["memoryMiB"])
                assert labels["nvidia.com/gpu.count"] == str(gpu["perNode"])
                assert (
                    f"{labels['nvidia.com/gpu.compute.major']}.{labels['nvidia.com/gpu.compute.minor']}"
                    == gpu["compute"]
                )
    h100s = [
        n
        for n in nodes.values()
        if n["metadata"]["labels"].get("nvidia.com/gpu.product") == "NVIDIA-H100-80GB-HBM3"
    ]
    assert len(h100s) >= 2


def test_two_gpu_pod_is_scheduled_onto_an_h100_and_becomes_available(
    cluster: LocalCluster, namespace: str
) -> None:
    cluster.apply(gpu_deployment("two-gpus", 2, "NVIDIA-H100-80GB-HBM3"), namespace)

    def available() -> bool:
        dep = cluster.get("deployment", "two-gpus", "-n", namespace)
        cond = condition(dep, "Available")
        assert cond is not None, "no Available condition yet"
        return bool(cond["status"] == "True")

    wait_for(available, timeout=60, what="the 2-GPU Deployment to become Available")
    pods = cluster.get("pods", "-n", namespace, "-l", "app=two-gpus")["items"]
    assert len(pods) == 1
    node = cluster.get("node", pods[0]["spec"]["nodeName"])
    assert node["metadata"]["labels"]["nvidia.com/gpu.product"] == "NVIDIA-H100-80GB-HBM3"
    assert pods[0]["status"]["phase"] == "Running"  # kwok played the pod-ready stage
    assert pods[0]["status"]["podIP"]


def test_nine_gpus_stay_pending_with_the_schedulers_reason(cluster: LocalCluster, namespace: str) -> None:
    cluster.apply(gpu_deployment("nine-gpus", 9, "NVIDIA-H100-80GB-HBM3"), namespace)

    def failed_scheduling() -> str | None:
        events = cluster.get("events", "-n", namespace, "--field-selector", "reason=FailedScheduling")[
            "items"
        ]
        messages = [e["message"] for e in events]
        return next((m for m in messages if "Insufficient nvidia.com/gpu" in m), None)

    message = wait_for(failed_scheduling, timeout=60, what="a FailedScheduling event naming nvidia.com/gpu")
    assert "0/" in message  # "0/N nodes are available: ..."
    pod = cluster.get("pods", "-n", namespace, "-l", "app=nine-gpus")["items"][0]
    assert pod["status"]["phase"] == "Pending"
    assert "nodeName" not in pod["spec"]


def test_deleting_an_owner_deletes_its_children(cluster: LocalCluster, namespace: str) -> None:
    cluster.kubectl("create", "configmap", "owner", "-n", namespace)
    owner = cluster.get("configmap", "owner", "-n", namespace)
    child = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "child",
            "ownerReferences": [
                {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner["metadata"]["uid"]}
            ],
        },
    }
    cluster.apply(child, namespace)
    cluster.kubectl("delete", "configmap", "owner", "-n", namespace)
    wait_for(
        lambda: cluster.kubectl("get", "configmap", "child", "-n", namespace, check=False).returncode != 0,
        timeout=60,
        what="the garbage collector to delete the owned ConfigMap",
    )


def test_crd_cel_rule_refuses_a_bad_object_with_its_message(cluster: LocalCluster, namespace: str) -> None:
    group = f"cel{namespace.replace('-', '')}.test.gptoss.dev"
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"widgets.{group}"},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {
                                "spec": {
                                    "type": "object",
                                    "properties": {"gpus": {"type": "integer"}},
                                    "x-kubernetes-validations": [
                                        {
                                            "rule": "self.gpus in [1, 2, 4, 8]",
                                            "message": "gpus must be 1, 2, 4 or 8",
                                        }
                                    ],
                                }
                            },
                        }
                    },
                }
            ],
        },
    }
    cluster.apply(crd)
    try:
        wait_for(
            lambda: condition(cluster.get("crd", f"widgets.{group}"), "Established") or None,
            timeout=30,
            what="the CRD to be Established",
        )
        good = {
            "apiVersion": f"{group}/v1",
            "kind": "Widget",
            "metadata": {"name": "ok"},
            "spec": {"gpus": 2},
        }
        cluster.apply(good, namespace)
        bad = {
            "apiVersion": f"{group}/v1",
            "kind": "Widget",
            "metadata": {"name": "bad"},
            "spec": {"gpus": 3},
        }
        proc = cluster.kubectl("create", "-n", namespace, "-f", "-", stdin=json.dumps(bad), check=False)
        assert proc.returncode != 0
        assert "gpus must be 1, 2, 4 or 8" in proc.stderr
    finally:
        cluster.kubectl("delete", "crd", f"widgets.{group}", "--wait=false", check=False)


def test_server_side_apply_twice_changes_nothing(cluster: LocalCluster, namespace: str) -> None:
    manifest = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ssa"}, "data": {"a": "1"}}
    cluster.apply(manifest, namespace)
    first = cluster.get("configmap", "ssa", "-n", namespace)["metadata"]["resourceVersion"]
    cluster.apply(manifest, namespace)
    second = cluster.get("configmap", "ssa", "-n", namespace, "--show-managed-fields")
    assert second["metadata"]["resourceVersion"] == first
    managers = [m["manager"] for m in second["metadata"]["managedFields"]]
    assert managers == ["pytest"]
