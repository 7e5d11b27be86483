"""source.persistentVolumeClaim on the real control plane and operator: the API server's rules,
and a ModelDeployment whose weights claim appears, then binds, after it was created.

The claim and the ModelDeployment are the ones of examples/weights-volume-20b-l4.yaml; only the
PersistentVolume they bind to is the test's (a hostPath volume, named per namespace).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from devtools.cluster import REPO, LocalCluster, condition, wait_for
from devtools.operator_process import OperatorProcess
from gptoss_operator.api.v1alpha1 import (
    VOLUME_PATH_MESSAGE,
    VOLUME_WITH_CACHE_MESSAGE,
    VOLUME_WITH_HUGGINGFACE_MESSAGE,
)
from gptoss_operator.settings import FIELD_MANAGER
from tests.support.modeldeployments import (
    arg_value,
    get_md,
    host_path_volume,
    model_deployment,
    vllm_container,
    wait_condition,
    wait_ready,
)

EXAMPLE = REPO / "examples" / "weights-volume-20b-l4.yaml"
VOLUME = {"claimName": "w"}
REFUSED = [
    ("with-cache", {"persistentVolumeClaim": VOLUME, "cache": {}}, VOLUME_WITH_CACHE_MESSAGE),
    (
        "with-repo",
        {"persistentVolumeClaim": VOLUME, "huggingface": {"repo": "openai/gpt-oss-20b"}},
        VOLUME_WITH_HUGGINGFACE_MESSAGE,
    ),
    (
        "with-revision",
        {"persistentVolumeClaim": VOLUME, "huggingface": {"revision": "abc123"}},
        VOLUME_WITH_HUGGINGFACE_MESSAGE,
    ),
    ("absolute-path", {"persistentVolumeClaim": {"claimName": "w", "path": "/etc"}}, VOLUME_PATH_MESSAGE),
    ("parent-path", {"persistentVolumeClaim": {"claimName": "w", "path": "a/../../b"}}, VOLUME_PATH_MESSAGE),
]


@pytest.fixture(scope="module")
def crds(cluster: LocalCluster) -> LocalCluster:
    cluster.install_crds()
    return cluster


@pytest.mark.parametrize(("case", "source", "message"), REFUSED, ids=[r[0] for r in REFUSED])
def test_the_api_server_refuses_a_volume_with_another_source_or_a_path_outside_it(
    crds: LocalCluster, namespace: str, case: str, source: dict[str, Any], message: str
) -> None:
    body = model_deployment(case, "gpt-oss-20b", "L4", source=source)
    proc = crds.kubectl("create", "-n", namespace, "-f", "-", stdin=json.dumps(body), check=False)
    assert proc.returncode != 0, f"the API server accepted {case}"
    assert message in proc.stderr, proc.stderr


def test_the_api_server_accepts_a_volume_with_default_huggingface(crds: LocalCluster, namespace: str) -> None:
    source = {"persistentVolumeClaim": {"claimName": "w", "path": "models/v1.2"}, "huggingface": {}}
    body = model_deployment("defaults", "gpt-oss-20b", "L4", source=source)
    proc = crds.kubectl("create", "-n", namespace, "-f", "-", stdin=json.dumps(body), check=False)
    assert proc.returncode == 0, proc.stderr
    stored = get_md(crds, namespace, "defaults")["spec"]["source"]
    assert stored["huggingface"] == {"revision": "main"}  # the default the rule lets through


def test_weights_ready_follows_the_claim_from_missing_to_bound(
    cluster: LocalCluster, operator: OperatorProcess, namespace: str
) -> None:
    claim, md = yaml.safe_load_all(EXAMPLE.read_text())
    claim_name, name = claim["metadata"]["name"], md["metadata"]["name"]
    path = md["spec"]["source"]["persistentVolumeClaim"]["path"]
    pv_name = f"gpt-oss-weights-{namespace}"
    claim["spec"]["volumeName"] = pv_name

    # The ModelDeployment first: no claim of that name exists.
    cluster.apply(md, namespace)
    got = wait_condition(cluster, namespace, name, "WeightsReady", "False", "VolumeNotFound")
    assert claim_name in condition(got, "WeightsReady")["message"]  # type: ignore[index]
    assert (got["status"]["phase"], got["status"]["reason"]) == ("Degraded", "VolumeNotFound")
    assert cluster.get("deployments", "-n", namespace)["items"] == []  # nothing to mount yet

    # The claim, bound to a volume that does not exist yet: it stays Pending; the pods may be
    # created (only a pod binds a WaitForFirstConsumer claim).
    cluster.apply(claim, namespace)
    wait_condition(cluster, namespace, name, "WeightsReady", "False", "VolumeNotBound")
    wait_for(
        lambda: cluster.get("deployments", "-n", namespace)["items"] or None,
        timeout=30,
        what="the Deployment once the claim exists",
    )
    # Its pods cannot be scheduled while it is unbound ("pod has unbound immediate
    # PersistentVolumeClaims"): that is the claim's doing, and what the user sees names it.
    got = wait_condition(cluster, namespace, name, "Degraded", "True", "VolumeNotBound")
    assert (got["status"]["phase"], got["status"]["reason"]) == ("Pending", "VolumeNotBound")
    row = cluster.kubectl("get", "md", name, "-n", namespace, "--no-headers").stdout.split()
    assert row[6:8] == ["Pending", "VolumeNotBound"], row  # the Phase and Reason columns
    about_it = f"involvedObject.kind=ModelDeployment,involvedObject.name={name},type=Warning"
    warnings = cluster.get("events", "-n", namespace, "--field-selector", about_it)["items"]
    by_reason = {e["reason"]: e["message"] for e in warnings}
    assert sorted(by_reason) == ["VolumeNotBound", "VolumeNotFound"], by_reason  # not Unschedulable
    assert f"PersistentVolumeClaim {claim_name} is Pending, not Bound" in by_reason["VolumeNotBound"]

    cluster.apply(host_path_volume(pv_name, storage="200Gi", access_mode="ReadOnlyMany", storage_class=""))
    try:
        got = wait_ready(cluster, namespace, name, timeout=120)
        weights = condition(got, "WeightsReady")
        assert weights is not None
        assert (weights["status"], weights["reason"]) == ("True", "ProvidedVolume")
        assert claim_name in weights["message"]

        dep = cluster.get("deployment", name, "-n", namespace)
        volumes = {v["name"]: v for v in dep["spec"]["template"]["spec"]["volumes"]}
        assert volumes["models"]["persistentVolumeClaim"] == {"claimName": claim_name, "readOnly": True}
        container = vllm_container(dep)
        mount = next(m for m in container["volumeMounts"] if m["name"] == "models")
        assert mount["readOnly"] is True
        assert arg_value(container["args"], "--model") == f"{mount['mountPath']}/{path}"
        assert arg_value(container["args"], "--served-model-name") == "gpt-oss-20b"
        assert {e["name"]: e.get("value") for e in container["env"]}["HF_HUB_OFFLINE"] == "1"
        assert container["args"] == got["status"]["plan"]["args"]

        # The operator made no claim and no Job, and left the user's claim as it was.
        assert cluster.get("jobs", "-n", namespace)["items"] == []
        claims = cluster.get("pvc", "-n", namespace)["items"]
        assert [c["metadata"]["name"] for c in claims] == [claim_name]
        (stored,) = claims
        assert stored["status"]["phase"] == "Bound"
        assert "ownerReferences" not in stored["metadata"]
        managers = {f["manager"] for f in stored["metadata"].get("managedFields", [])}
        assert FIELD_MANAGER not in managers
        operator.assert_alive()
    finally:
        cluster.kubectl("delete", "pv", pv_name, "--wait=false", check=False)
