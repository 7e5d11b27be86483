"""Property-based: any ModelDeployment spec is either refused by the model with the field named,
or decided: planned, or marked Planned=False with a reason and a message. Nothing raises and
nothing takes long (hypothesis' deadline), whatever is written into any field.

The figures (examples tried, refused, marked, planned) are printed with ``-s``.
"""

from __future__ import annotations

import contextlib
import copy
import json
from collections import Counter
from typing import Any, get_args

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from gptoss_operator.api.v1alpha1 import ModelDeployment, RefusalReason
from gptoss_operator.controller.desired import Apply
from gptoss_operator.controller.modeldeployment.decide import decide
from gptoss_operator.controller.modeldeployment.gathered import Gathered
from gptoss_operator.observed import NodeState
from gptoss_operator.settings import OperatorSettings
from gptoss_operator.validation_messages import describe_validation_error
from tests.support.figures import record

SETTINGS = OperatorSettings()
NOW = "2026-01-01T00:00:00Z"
FULL: dict[str, Any] = {
    "model": "gpt-oss-120b",
    "gpu": {"type": "H100-80GB", "count": "auto"},
    "replicas": 2,
    "serving": {
        "maxModelLen": 32768,
        "minConcurrentSequences": 4,
        "gpuMemoryUtilization": 0.9,
        "reasoning": {"defaultEffort": "high"},
        "toolCalling": True,
    },
    "source": {
        "huggingface": {
            "repo": "openai/gpt-oss-120b",
            "revision": "main",
            "tokenSecretRef": {"name": "hf", "key": "t"},
        },
        "cache": {"size": "200Gi", "storageClassName": "fast"},
    },
    "image": "vllm/vllm-openai:v0.33.0",
    "rollout": {"strategy": "Surge"},
    "scheduling": {
        "nodeSelector": {"pool": "a"},
        "tolerations": [{"key": "k", "operator": "Equal", "value": "v", "effect": "NoSchedule"}],
        "priorityClassName": "high",
    },
    "vllm": {"version": "0.33.0", "extraArgs": ["--enforce-eager"], "env": [{"name": "A", "value": "b"}]},
}
MARKS = {"InvalidSpec", *get_args(RefusalReason)}
NODES = (
    NodeState(
        name="h100-0",
        labels={"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"},
        gpus={"nvidia.com/gpu": 8},
        schedulable=True,
        ready=True,
    ),
)
SEEN: Counter[str] = Counter()


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(value, dict):
        for k, v in value.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _paths(v, (*prefix, i))
    return out


PATHS = _paths(FULL)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40),
    st.sampled_from(
        ["auto", "T4", "V100", "L4", "gpt-oss-20b", "--model=x", "-tp=8", " x", "1e9", "0", "-1"]
    ),
    st.text(min_size=5000, max_size=5000, alphabet="ab"),
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=8,
)


def _set(spec: dict[str, Any], path: tuple[Any, ...], value: Any, delete: bool) -> None:
    target: Any = spec
    for part in path[:-1]:
        target = target[part]
    if delete:
        del target[path[-1]]
    else:
        target[path[-1]] = value


# Values of the right type that the planner may still refuse (old GPUs, too little memory,
# versions outside the supported range, contexts that do not fit).
PLAUSIBLE: dict[tuple[Any, ...], list[Any]] = {
    ("model",): ["gpt-oss-20b", "gpt-oss-120b"],
    ("gpu", "type"): ["T4", "V100", "L4", "A10G", "A100-40GB", "MI300X", "H200"],
    ("gpu", "count"): ["auto", 1, 2, 4, 8],
    ("replicas",): [0, 1, 7, 2**31],
    ("serving", "maxModelLen"): [1, 4096, 131072],
    ("serving", "minConcurrentSequences"): [1, 64, 4096],
    ("serving", "gpuMemoryUtilization"): [0.5, 0.98],
    ("image",): [
        "vllm/vllm-openai:v0.9.0",
        "vllm/vllm-openai:v0.33.0",
        "rocm/vllm:latest",
        "x@sha256:" + "a" * 64,
    ],
    ("vllm", "version"): ["0.1.0", "0.15.1", "0.33.0", "v9.0", None],
}


@st.composite
def specs(draw: st.DrawFn) -> Any:
    """A full valid spec with one to three fields replaced by anything (or deleted), or by a
    value of the right type the planner may refuse, or something that is not a spec at all."""
    branch = draw(st.integers(0, 9))
    if branch == 0:
        return draw(values)
    spec = copy.deepcopy(FULL)
    if branch <= 4:
        for path in draw(st.lists(st.sampled_from(sorted(PLAUSIBLE)), min_size=1, max_size=4, unique=True)):
            _set(spec, path, draw(st.sampled_from(PLAUSIBLE[path])), delete=False)
        return spec
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(PATHS))
        value, delete = draw(values), draw(st.booleans())
        # An earlier change may have removed or replaced the parent.
        with contextlib.suppress(KeyError, IndexError, TypeError):
            _set(spec, path, value, delete=delete)
    return spec


def _body(spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "gptoss.dev/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": "m", "namespace": "llm", "uid": "u", "generation": 1},
        "spec": spec,
    }


@settings(max_examples=400, deadline=2000, suppress_health_check=[HealthCheck.too_slow])
@given(specs())
def test_every_spec_is_refused_with_the_field_named_or_decided(spec: Any) -> None:
    body = _body(spec)
    model: ModelDeployment | None = None
    error: str | None = None
    try:
        model = ModelDeployment.model_validate(body)
    except ValidationError as e:
        error = describe_validation_error(e)
        assert error.startswith("spec"), error
        for item in e.errors():
            assert item["loc"][:1] == ("spec",), f"a refusal that names no spec field: {item}"
    g = Gathered(
        key=("llm", "m"),
        body=body,
        model=model,
        spec_error=error,
        children={},
        server_pods=(),
        nodes=NODES,
        gpus_in_use={},
    )
    desired = decide(g, SETTINGS, NOW)
    assert desired.status.patch is not None
    planned = next(c for c in desired.status.patch["conditions"] if c["type"] == "Planned")
    if planned["status"] == "True":
        SEEN["planned"] += 1
        assert model is not None
        for write in desired.writes:
            if isinstance(write, Apply):
                json.dumps(write.manifest, allow_nan=False)  # what goes to the API server is JSON
    else:
        assert planned["reason"] in MARKS, planned
        assert planned["message"], planned
        SEEN["refused" if model is None else "marked"] += 1
        assert not desired.writes, "a spec that cannot be planned must not touch the children"


@pytest.mark.parametrize("_", [None])
def test_figures(_: None) -> None:
    """Runs after the property test in this module: prints what it tried."""
    total = sum(SEEN.values())
    if total:
        record(
            "bad_specs_unit",
            f"{total} generated specs: {SEEN['refused']} refused by the model with the field named, "
            f"{SEEN['marked']} marked Planned=False with a reason, {SEEN['planned']} planned; 0 raised",
            tried=total,
            refused=SEEN["refused"],
            marked=SEEN["marked"],
            planned=SEEN["planned"],
        )
