"""Bad specs on the real API server and operator: each is refused by the API server with the
field named, or accepted and marked by the operator with a reason, and a good object created
alongside still becomes Ready. Pods that cannot be created show as Degraded at once."""

from __future__ import annotations

import copy
import json
import random
from typing import Any

from devtools.cluster import LocalCluster, condition, wait_for
from devtools.operator_process import OperatorProcess
from tests.support.figures import record
from tests.support.modeldeployments import get_md, model_deployment, wait_condition, wait_ready
from tests.support.refusals import messages_for

# (path, value, field the refusal names); None for the field: the API server accepts it and
# the operator must mark it (planner refusal, or a rule only the model checks).
BAD: list[tuple[tuple[str, ...], Any, str | None]] = [
    (("gpu", "type"), "H100", "spec.gpu.type"),
    (("gpu", "type"), "", "spec.gpu.type"),
    (("gpu", "type"), "T4", None),
    (("gpu", "type"), "V100", None),
    (("gpu", "count"), 3, "spec.gpu.count"),
    (("gpu", "count"), "two", "spec.gpu.count"),
    (("model",), "gpt-oss-7b", "spec.model"),
    (("replicas",), -1, "spec.replicas"),
    (("replicas",), "3", "spec.replicas"),
    (("serving", "maxModelLen"), 0, "spec.serving.maxModelLen"),
    (("serving", "maxModelLen"), 200000, "spec.serving.maxModelLen"),
    (("serving", "gpuMemoryUtilization"), 1.5, "spec.serving.gpuMemoryUtilization"),
    (("image",), " vllm/vllm-openai:v0.33.0", "spec.image"),
    (("image",), "v" * 600, "spec.image"),
    (("vllm", "extraArgs"), ["--model=other"], "spec.vllm.extraArgs"),
    (("vllm", "extraArgs"), ["-tp", "8"], "spec.vllm.extraArgs"),
    (("vllm", "version"), "latest", "spec.vllm.version"),
    (("vllm", "version"), "0.1.0", None),
    (("vllm", "env"), [{"name": "A", "value": "v" * 5000}], "spec.vllm.env[0].value"),
    (("scheduling", "nodeSelector"), {"k" * 400: "v"}, None),
    (("rollout", "strategy"), "BlueGreen", "spec.rollout.strategy"),
    (("gpu",), {"type": "L4", "count": 1}, None),  # with gpt-oss-120b: does not fit
    (("serving", "minConcurrentSequences"), 0, "spec.serving.minConcurrentSequences"),
]
MARK_REASONS = {
    "InvalidSpec",
    "UnsupportedGPU",
    "InsufficientGPUMemory",
    "ContextTooLong",
    "UnsupportedVLLMVersion",
}
COUNT = 30


def generated(seed: int) -> list[tuple[str, dict[str, Any], str | None]]:
    rng = random.Random(seed)
    out = []
    for i in range(COUNT):
        path, value, field = rng.choice(BAD)
        manifest = model_deployment(f"bad-{i:02}", "gpt-oss-120b", "H100-80GB")
        target = manifest["spec"]
        for part in path[:-1]:
            target = target.setdefault(part, {})
        target[path[-1]] = copy.deepcopy(value)
        out.append((manifest["metadata"]["name"], manifest, field))
    return out


def test_generated_bad_specs_are_refused_or_marked_and_a_good_one_still_serves(
    cluster: LocalCluster, operator: OperatorProcess, namespace: str
) -> None:
    refused = marked = 0
    cluster.apply(model_deployment("good", "gpt-oss-20b", "H100-80GB"), namespace)
    accepted: list[str] = []
    for name, manifest, field in generated(seed=20261128):
        proc = cluster.kubectl(
            "apply", "--server-side", "--field-manager=pytest", "-n", namespace, "-f", "-",
            stdin=json.dumps(manifest), check=False,
        )  # fmt: skip
        if proc.returncode != 0:
            assert field is not None, (
                f"{name}: refused, but the operator was expected to mark it: {proc.stderr}"
            )
            assert field in proc.stderr, f"{name}: the refusal does not name {field}: {proc.stderr}"
            refused += 1
        else:
            assert field is None, f"{name}: the API server accepted a spec it should refuse ({field})"
            accepted.append(name)
    for name in accepted:

        def is_marked(name: str = name) -> bool | None:
            md = get_md(cluster, namespace, name)
            planned = condition(md, "Planned")
            assert planned is not None, f"{name}: no Planned condition yet"
            assert planned["status"] == "False", f"{name}: planned although bad: {planned}"
            assert planned["reason"] in MARK_REASONS, planned
            return bool(planned["message"]) or None

        wait_for(is_marked, timeout=30, what=f"{name} marked Planned=False with a reason")
        marked += 1
        assert not cluster.get("deployments", "-n", namespace, "-l", f"app.kubernetes.io/instance={name}")[
            "items"
        ]
    wait_ready(cluster, namespace, "good")
    operator.assert_alive()
    assert refused + marked == COUNT
    record(
        "bad_specs_cluster",
        f"{COUNT} generated bad specs: {refused} refused by the API server with the field named, {marked} "
        "marked by the operator (Planned=False with a reason, no children); a good object beside them Ready",
        tried=COUNT,
        refused=refused,
        marked=marked,
    )


def test_each_refusal_by_the_api_server_is_one_message(cluster: LocalCluster, namespace: str) -> None:
    # docs/api.md: each rule the API server enforces refuses with one message. A schema bound
    # beside a CEL rule on the same field gave two (maxModelLen 200000: "should be less than or
    # equal to 131072" and "must be between 1 and 131072 ...").
    cluster.install_crds()
    for path, value, field in BAD:
        if field is None or (path, value) == (("replicas",), "3"):
            # A string there fails the schema's type and, again, the scale subresource's own read
            # of specReplicasPath ("accessor error"; validateScaleSpec in
            # k8s.io/apiextensions-apiserver/pkg/registry/customresource/validator.go): upstream's pair.
            continue
        manifest = model_deployment("one-message", "gpt-oss-120b", "H100-80GB")
        target = manifest["spec"]
        for part in path[:-1]:
            target = target.setdefault(part, {})
        target[path[-1]] = copy.deepcopy(value)
        proc = cluster.kubectl(
            "create", "--dry-run=server", "-n", namespace, "-f", "-", stdin=json.dumps(manifest), check=False
        )
        assert proc.returncode != 0, f"{field}={value!r} was accepted"
        messages = messages_for(proc.stderr, field)
        assert len(messages) == 1, f"{field}={value!r}: {proc.stderr}"


def test_pods_that_cannot_be_created_are_degraded_at_once(
    cluster: LocalCluster, operator: OperatorProcess, namespace: str
) -> None:
    # Admission refuses every pod (no such PriorityClass): the ReplicaSet reports FailedCreate
    # and no pod ever exists. Without surfacing it the object would sit Pending until the
    # Deployment's progress deadline.
    cluster.apply(
        model_deployment("m", "gpt-oss-20b", "H100-80GB", scheduling={"priorityClassName": "no-such-class"}),
        namespace,
    )
    md = wait_condition(cluster, namespace, "m", "Degraded", "True", "FailedCreate", timeout=30)
    assert "no-such-class" in condition(md, "Degraded")["message"]  # type: ignore[index]
    assert md["status"]["phase"] == "Degraded"
    # Fixed by hand: the PriorityClass is created, the pods come, the object serves.
    cluster.apply(
        {
            "apiVersion": "scheduling.k8s.io/v1",
            "kind": "PriorityClass",
            "metadata": {"name": "no-such-class"},
            "value": 1000,
        }
    )
    try:
        wait_ready(cluster, namespace, "m", timeout=120)
    finally:
        cluster.kubectl("delete", "priorityclass", "no-such-class", "--wait=false", check=False)


def test_a_one_mebibyte_value_is_refused_by_the_api_server(
    cluster: LocalCluster, operator: OperatorProcess, namespace: str
) -> None:
    # Such an object could be created but never have its status patched (etcd's request limit).
    for name, spec, field in (
        ("image", {"image": "vllm/vllm-openai:" + "x" * (1 << 20)}, "spec.image"),
        ("env", {"vllm": {"env": [{"name": "A", "value": "x" * (1 << 20)}]}}, "spec.vllm.env[0].value"),
    ):
        manifest = model_deployment(name, "gpt-oss-20b", "H100-80GB", **spec)
        proc = cluster.kubectl(
            "apply", "--server-side", "--field-manager=pytest", "-n", namespace, "-f", "-",
            stdin=json.dumps(manifest), check=False,
        )  # fmt: skip
        assert proc.returncode != 0, f"a 1 MiB {name} was accepted"
        assert field in proc.stderr, proc.stderr[:500]
        assert "Too long" in proc.stderr, proc.stderr[:500]
