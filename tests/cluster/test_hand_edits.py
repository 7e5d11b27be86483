"""Hand edits of what the operator owns are reverted; edits of what it does not own are kept."""

from __future__ import annotations

import json
import subprocess
from typing import Any

import pytest

from devtools.cluster import LocalCluster, wait_for
from devtools.operator_process import OperatorProcess, settle
from tests.support.modeldeployments import model_deployment, vllm_container, wait_ready
from tests.support.routepolicies import route_policy

CONTAINER = "/spec/template/spec/containers/0"
EDITS: list[tuple[str, list[dict[str, Any]]]] = [
    (
        "gpu-limit",
        [
            {"op": "replace", "path": f"{CONTAINER}/resources/limits/nvidia.com~1gpu", "value": "4"},
            {"op": "replace", "path": f"{CONTAINER}/resources/requests/nvidia.com~1gpu", "value": "4"},
        ],
    ),
    ("replicas", [{"op": "replace", "path": "/spec/replicas", "value": 3}]),
    ("added-arg", [{"op": "add", "path": f"{CONTAINER}/args/-", "value": "--tensor-parallel-size=8"}]),
    ("removed-label", [{"op": "remove", "path": "/metadata/labels/gptoss.dev~1model"}]),
    # The label the operator's watch selects its children by: the Deployment leaves the
    # selection (a DELETED event on that watch), and its owner is reconciled.
    ("removed-managed-by", [{"op": "remove", "path": "/metadata/labels/app.kubernetes.io~1managed-by"}]),
]


def _deployment_is_as_planned(cluster: LocalCluster, namespace: str) -> bool | None:
    dep = cluster.get("deployment", "m", "-n", namespace)
    container = vllm_container(dep)
    ok = (
        container["resources"]["limits"]["nvidia.com/gpu"] == "1"
        and dep["spec"]["replicas"] == 1
        and "--tensor-parallel-size=8" not in container["args"]
        and dep["metadata"]["labels"].get("gptoss.dev/model") == "gpt-oss-20b"
        and dep["metadata"]["labels"].get("app.kubernetes.io/managed-by") == "gptoss-operator"
    )
    return ok or None


@pytest.mark.parametrize(("what", "patch"), EDITS, ids=[e[0] for e in EDITS])
def test_a_hand_edit_of_the_vllm_deployment_is_reverted(
    cluster: LocalCluster, operator: OperatorProcess, namespace: str, what: str, patch: list[dict[str, Any]]
) -> None:
    cluster.apply(model_deployment("m", "gpt-oss-20b", "L4"), namespace)
    wait_ready(cluster, namespace, "m")
    cluster.kubectl("patch", "deployment", "m", "-n", namespace, "--type=json", "-p", json.dumps(patch))
    wait_for(lambda: _deployment_is_as_planned(cluster, namespace), timeout=20, what=f"{what} reverted")
    wait_ready(cluster, namespace, "m")
    settle(2)
    versions = cluster.get("deployment", "m", "-n", namespace)["metadata"]["resourceVersion"]
    settle(3)  # reverted once, not fought over
    assert cluster.get("deployment", "m", "-n", namespace)["metadata"]["resourceVersion"] == versions


# The same edits made by other means: each moves the field to another field manager, which is
# what the operator's memo of its owned fields' digest relies on (observed.OwnedDigests).
FORCED_APPLY = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "m"},
    "spec": {"replicas": 3},
}
OTHER_MEANS: list[tuple[str, list[str], str | None]] = [
    ("kubectl-edit", ["edit", "deployment", "m"], r"sed -i -e 's/^  replicas: 1$/  replicas: 2/'"),
    ("label-overwrite", ["label", "--overwrite", "deployment", "m", "gptoss.dev/model=other"], None),
    (
        "annotate-overwrite",
        ["annotate", "--overwrite", "deployment", "m", "gptoss.dev/template-hash=x"],
        None,
    ),
    (
        "apply-force-conflicts",
        ["apply", "--server-side", "--force-conflicts", "--field-manager=someone-else", "-f", "-"],
        None,
    ),
]


@pytest.mark.parametrize(("what", "args", "editor"), OTHER_MEANS, ids=[e[0] for e in OTHER_MEANS])
def test_edits_by_other_kubectl_commands_are_reverted(
    cluster: LocalCluster,
    operator: OperatorProcess,
    namespace: str,
    what: str,
    args: list[str],
    editor: str | None,
) -> None:
    cluster.apply(model_deployment("m", "gpt-oss-20b", "L4"), namespace)
    wait_ready(cluster, namespace, "m")
    settle(2)  # a few status updates of the Deployment first: the memo holds its digest
    template_hash = cluster.get("deployment", "m", "-n", namespace)["metadata"]["annotations"][
        "gptoss.dev/template-hash"
    ]
    if editor is not None:
        env = {**cluster.env, "KUBE_EDITOR": editor}
        proc = subprocess.run(
            cluster.command(str(cluster.bindir / "kubectl"), *args, "-n", namespace),
            capture_output=True, text=True, env=env, check=False, timeout=120,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
    else:
        stdin = json.dumps(FORCED_APPLY) if "-f" in args else None
        cluster.kubectl(*args, "-n", namespace, stdin=stdin)

    def reverted() -> bool | None:
        dep = cluster.get("deployment", "m", "-n", namespace)
        return (
            _deployment_is_as_planned(cluster, namespace)
            and dep["metadata"]["annotations"]["gptoss.dev/template-hash"] == template_hash
        ) or None

    wait_for(reverted, timeout=20, what=f"{what} reverted")
    wait_ready(cluster, namespace, "m")
    settle(2)
    versions = cluster.get("deployment", "m", "-n", namespace)["metadata"]["resourceVersion"]
    settle(3)  # reverted once, not fought over
    assert cluster.get("deployment", "m", "-n", namespace)["metadata"]["resourceVersion"] == versions


def test_fields_the_operator_does_not_own_are_left_alone(
    cluster: LocalCluster, operator: OperatorProcess, namespace: str
) -> None:
    cluster.apply(model_deployment("m", "gpt-oss-20b", "L4"), namespace)
    wait_ready(cluster, namespace, "m")
    cluster.kubectl("annotate", "deployment", "m", "-n", namespace, "team/owner=ml-platform")
    settle(3)
    dep = cluster.get("deployment", "m", "-n", namespace)
    assert dep["metadata"]["annotations"]["team/owner"] == "ml-platform"


def test_a_widened_router_role_is_narrowed_again(
    cluster: LocalCluster, operator: OperatorProcess, namespace: str
) -> None:
    cluster.apply(route_policy("chat"), namespace)
    wait_for(lambda: cluster.get("roles", "-n", namespace)["items"] or None, timeout=30, what="router Role")
    wider = [
        {
            "op": "add",
            "path": "/rules/-",
            "value": {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]},
        }
    ]
    cluster.kubectl("patch", "role", "chat-router", "-n", namespace, "--type=json", "-p", json.dumps(wider))

    def narrowed() -> bool | None:
        rules = cluster.get("role", "chat-router", "-n", namespace)["rules"]
        return (
            rules
            == [
                {
                    "apiGroups": ["discovery.k8s.io"],
                    "resources": ["endpointslices"],
                    "verbs": ["get", "list", "watch"],
                }
            ]
            or None
        )

    wait_for(narrowed, timeout=20, what="the Role narrowed back to EndpointSlices")
