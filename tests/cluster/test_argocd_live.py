"""The Argo CD health checks over live objects: the running operator reconciles them on the
local control plane, `kubectl get -o yaml` dumps them, and Argo CD's own evaluator (the argocd
CLI built from its Go module) judges them with the shipped argocd-cm."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import pytest
import yaml

from devtools.argocd import build_argocd, health
from devtools.cluster import REPO, LocalCluster, condition, wait_for
from devtools.operator_process import OperatorProcess


@pytest.fixture(scope="module")
def argocd() -> Path:
    return build_argocd()


def _sample(name: str) -> dict[str, Any]:
    obj: dict[str, Any] = yaml.safe_load((REPO / "examples" / name).read_text())
    return obj


def _verdict(
    cluster: LocalCluster, argocd: Path, tmp_path: Path, namespace: str, ref: str
) -> tuple[str, str]:
    dumped = tmp_path / f"{ref.replace('/', '_')}.yaml"
    dumped.write_text(cluster.kubectl("get", "-n", namespace, ref, "-o", "yaml").stdout)
    return health(argocd, dumped)


def _reconciled(cluster: LocalCluster, namespace: str, ref: str, type_: str, status: str) -> bool:
    obj = cluster.get("-n", namespace, ref)
    found = condition(obj, type_)
    return bool(
        found
        and found["status"] == status
        and obj["status"].get("observedGeneration") == obj["metadata"]["generation"]
    )


def test_live_objects(
    cluster: LocalCluster, operator: OperatorProcess, namespace: str, argocd: Path, tmp_path: Path
) -> None:
    serving = _sample("modeldeployment-120b-h100.yaml")
    # The local cluster's default StorageClass binds the cache claim: the cached 20b downloads
    # (a kwok Job) and serves.
    cached = _sample("modeldeployment-20b-l4-cached.yaml")
    refused = _sample("modeldeployment-refused-t4.yaml")
    stopped = _sample("modeldeployment-120b-h100.yaml")
    stopped["metadata"]["name"] = "oss-120b-off"
    stopped["spec"]["replicas"] = 0
    ready = _sample("routepolicy-20b.yaml")  # over the cached oss-20b
    waiting = _sample("routepolicy-20b.yaml")  # over the model scaled to 0: off, not on its way
    waiting["metadata"]["name"] = "waiting"
    waiting["spec"]["routes"][0] |= {"model": "gpt-oss-120b"}
    waiting["spec"]["routes"][0]["backends"][0]["modelDeployment"]["name"] = "oss-120b-off"
    policy = _sample("routepolicy-20b.yaml")
    policy["metadata"]["name"] = "chat-120b"
    policy["spec"]["routes"][0] |= {"model": "gpt-oss-120b"}
    policy["spec"]["routes"][0]["backends"][0]["modelDeployment"]["name"] = "oss-120b"
    orphan = _sample("routepolicy-20b.yaml")
    orphan["metadata"]["name"] = "orphan"
    orphan["spec"]["routes"][0]["backends"][0]["modelDeployment"]["name"] = "no-such-model"
    cluster.apply([serving, cached, refused, stopped, ready, waiting, policy, orphan], namespace=namespace)

    cases = [
        ("modeldeployment/oss-120b", "Ready", "True", "Healthy", "Serving"),
        ("modeldeployment/oss-20b", "Ready", "True", "Healthy", "Serving"),
        ("modeldeployment/oss-120b-on-t4", "Planned", "False", "Degraded", "UnsupportedGPU"),
        ("modeldeployment/oss-120b-off", "Ready", "False", "Suspended", "ScaledToZero"),
        ("routepolicy/chat", "Ready", "True", "Healthy", "Serving"),
        ("routepolicy/waiting", "Degraded", "True", "Suspended", "ModelDeploymentScaledToZero"),
        ("routepolicy/chat-120b", "Ready", "True", "Healthy", "Serving"),
        ("routepolicy/orphan", "Degraded", "True", "Degraded", "ModelDeploymentNotFound"),
    ]
    for ref, type_, status, expected, reason in cases:
        wait_for(
            functools.partial(_reconciled, cluster, namespace, ref, type_, status),
            timeout=120,
            what=f"{ref}: {type_}={status}",
        )
        verdict = _verdict(cluster, argocd, tmp_path, namespace, ref)
        assert verdict[0] == expected, f"{ref}: {verdict}"
        assert verdict[1].startswith(reason), f"{ref}: {verdict}"

    # A spec change the operator has not observed yet is Progressing, whatever the old status
    # said: take the dumped object and move its generation on, as the API server does on an edit.
    dumped = yaml.safe_load(
        cluster.kubectl("get", "-n", namespace, "modeldeployment/oss-120b", "-o", "yaml").stdout
    )
    dumped["metadata"]["generation"] += 1
    edited = tmp_path / "edited.yaml"
    edited.write_text(yaml.safe_dump(dumped))
    assert health(argocd, edited)[0] == "Progressing"
