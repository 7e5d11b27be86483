"""The manifests in examples/ parse and plan the way their names and comments say."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from gptoss_operator.api import ModelDeployment, Plan
from gptoss_operator.planning import Refusal, plan_deployment

EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "examples").glob("modeldeployment-*.yaml"))


def test_there_are_examples() -> None:
    assert len(EXAMPLES) >= 3


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_parses_and_plans(path: Path) -> None:
    md = ModelDeployment.model_validate(yaml.safe_load(path.read_text()))
    result = plan_deployment(md.spec)
    if "refused" in path.name:
        assert isinstance(result, Refusal)
        assert "Smallest feasible plan" in result.message
    else:
        assert isinstance(result, Plan)


def test_the_readme_example_plans_two_h100s() -> None:
    md = ModelDeployment.model_validate(
        yaml.safe_load((EXAMPLES[0].parent / "modeldeployment-120b-h100.yaml").read_text())
    )
    result = plan_deployment(md.spec)
    assert isinstance(result, Plan)
    assert (result.gpus_per_replica, result.tensor_parallel_size) == (2, 2)


def test_the_hybrid_route_policy_example_validates_and_splits_80_20() -> None:
    from gptoss_operator.api.routepolicy import RoutePolicy

    path = EXAMPLES[0].parent / "routepolicy-hybrid.yaml"
    raw = yaml.safe_load(path.read_text())
    # Quoted in the file: a bare `on:` key loads as True in YAML 1.1 (PyYAML), and the API
    # server refuses `.fallback.true` as a field not in the schema.
    assert "on" in raw["spec"]["routes"][0]["fallback"]
    policy = RoutePolicy.model_validate(raw)
    route = policy.spec.routes[0]
    assert [(b.name, b.weight) for b in route.backends] == [("local", 80), ("hosted", 20)]
    assert [rule.allow for rule in policy.spec.residency] == ["cluster"]


def test_examples_name_distinct_objects() -> None:
    # They are applied together (a GitOps folder, the no-drift test): two files with one
    # kind and name would overwrite each other.
    seen: dict[tuple[str, str], str] = {}
    for path in sorted(EXAMPLES[0].parent.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if not doc:
                continue
            key = (doc["kind"], doc["metadata"]["name"])
            assert key not in seen, f"{path.name} and {seen[key]} both define {key}"
            seen[key] = path.name
