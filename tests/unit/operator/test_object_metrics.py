"""gptoss_operator_objects / _object_conditions: what the Degraded alert reads."""

from __future__ import annotations

from typing import Any

from prometheus_client import generate_latest

from gptoss_operator.metrics import OperatorMetrics


def md(phase: str | None, degraded: str) -> dict[str, Any]:
    status: dict[str, Any] = {
        "conditions": [{"type": "Degraded", "status": degraded}, {"type": "Ready", "status": "True"}]
    }
    if phase:
        status["phase"] = phase
    return {"status": status}


def test_objects_are_counted_by_phase_and_condition_at_scrape_time() -> None:
    metrics = OperatorMetrics()
    store: dict[str, list[dict[str, Any]]] = {"ModelDeployment": [md("Ready", "False")], "RoutePolicy": []}
    metrics.watch_objects(lambda: store)
    assert (
        'gptoss_operator_objects{kind="ModelDeployment",phase="Ready"} 1.0'
        in generate_latest(metrics.registry).decode()
    )
    store["ModelDeployment"] += [md("Degraded", "True"), md("Degraded", "True"), {"metadata": {}}]
    text = generate_latest(metrics.registry).decode()
    assert 'gptoss_operator_objects{kind="ModelDeployment",phase="Degraded"} 2.0' in text
    assert 'gptoss_operator_objects{kind="ModelDeployment",phase="Unknown"} 1.0' in text  # not reconciled yet
    assert (
        'gptoss_operator_object_conditions{kind="ModelDeployment",status="True",type="Degraded"} 2.0' in text
    )
    assert (
        'gptoss_operator_object_conditions{kind="ModelDeployment",status="False",type="Degraded"} 1.0' in text
    )
    assert 'gptoss_operator_object_conditions{kind="ModelDeployment",status="True",type="Ready"} 3.0' in text
