"""Every string and list a user writes into a ModelDeployment spec is bounded, in the model and
in the generated CRD, so no spec can come near etcd's request limit (an object of 1 MiB can be
created but its status can never be patched)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError

from gptoss_operator.api.crds import all_crds
from gptoss_operator.api.v1alpha1 import ModelDeployment
from gptoss_operator.validation_messages import describe_validation_error

MIB = "x" * (1 << 20)
GOOD: dict[str, Any] = {
    "apiVersion": "gptoss.dev/v1alpha1",
    "kind": "ModelDeployment",
    "metadata": {"name": "m", "namespace": "llm"},
    "spec": {"model": "gpt-oss-20b", "gpu": {"type": "L4"}},
}


def with_spec(**spec: Any) -> dict[str, Any]:
    return GOOD | {"spec": GOOD["spec"] | spec}


OVERSIZED = {
    "image": (with_spec(image="vllm/vllm-openai:" + MIB), "spec.image"),
    "env-value": (with_spec(vllm={"env": [{"name": "A", "value": MIB}]}), "spec.vllm.env[0].value"),
    "env-count": (with_spec(vllm={"env": [{"name": f"A{i}"} for i in range(65)]}), "spec.vllm.env"),
    "arg": (with_spec(vllm={"extraArgs": ["--x=" + MIB]}), "spec.vllm.extraArgs[0]"),
    "arg-count": (with_spec(vllm={"extraArgs": ["--enforce-eager"] * 65}), "spec.vllm.extraArgs"),
    "tolerations": (with_spec(scheduling={"tolerations": [{"operator": "Exists"}] * 65}), "tolerations"),
    "node-selector": (
        with_spec(scheduling={"nodeSelector": {f"k{i}": "v" for i in range(65)}}),
        "nodeSelector",
    ),
    "priority-class": (with_spec(scheduling={"priorityClassName": "p" * 254}), "priorityClassName"),
    "repo": (with_spec(source={"huggingface": {"repo": "r" * 254}}), "repo"),
}


@pytest.mark.parametrize(("body", "field"), list(OVERSIZED.values()), ids=list(OVERSIZED))
def test_oversized_specs_are_refused_naming_the_field(body: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        ModelDeployment.model_validate(body)
    assert field in describe_validation_error(info.value)


def test_an_image_with_whitespace_is_refused() -> None:
    # The API server would accept the Deployment but refuse every pod (FailedCreate).
    with pytest.raises(ValidationError, match="image"):
        ModelDeployment.model_validate(with_spec(image=" vllm/vllm-openai:v0.33.0"))


def _unbounded(schema: dict[str, Any], path: str) -> list[str]:
    found: list[str] = []
    kind = schema.get("type")
    if kind == "string" and "enum" not in schema and "maxLength" not in schema and "pattern" not in schema:
        found.append(path)
    if kind == "array":
        if "maxItems" not in schema:
            found.append(path)
        found += _unbounded(schema.get("items", {}), path + "[]")
    if kind == "object":
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            if "maxProperties" not in schema:
                found.append(path)
            found += _unbounded(extra, path + "{}")
        for name, sub in (schema.get("properties") or {}).items():
            found += _unbounded(sub, f"{path}.{name}")
    return found


def test_every_string_and_list_in_the_crd_spec_is_bounded() -> None:
    crd = next(c for c in all_crds() if c["spec"]["names"]["kind"] == "ModelDeployment")
    spec = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    assert _unbounded(spec, "spec") == []


def test_the_largest_allowed_spec_is_far_below_etcds_limit() -> None:
    biggest = with_spec(
        image="i" * 512,
        vllm={
            "env": [{"name": "n" * 253, "value": "v" * 4096} for _ in range(64)],
            "extraArgs": ["--a=" + "a" * 1020] * 64,
        },
        scheduling={
            "priorityClassName": "p" * 253,
            "nodeSelector": {f"k{i:03}" + "k" * 250: "v" * 63 for i in range(64)},
            "tolerations": [{"key": "k" * 317, "value": "v" * 63, "operator": "Equal"}] * 64,
        },
    )
    ModelDeployment.model_validate(biggest)
    # etcd's default --max-request-bytes is 1.5 MiB; a status patch must fit beside the spec.
    assert len(json.dumps(biggest)) < 512 * 1024
