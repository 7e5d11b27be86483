"""docs/operator.md's metrics table lists exactly the metrics the operator exposes, with their labels."""

from __future__ import annotations

import re
from pathlib import Path

from gptoss_operator.credentials import Credentials
from gptoss_operator.kube import KubeAPI
from gptoss_operator.metrics import OperatorMetrics

DOC = Path(__file__).resolve().parents[3] / "docs" / "operator.md"


def documented() -> dict[str, set[str]]:
    section = DOC.read_text().split("\n## Metrics\n", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `(gptoss_operator_[a-z_]+)` \|([^|]*)\|", section, re.M)
    return {name: _labels(labels) for name, labels in rows}


def _labels(cell: str) -> set[str]:
    # "verb (`apply`, ...), resource (the kind ...)" -> {"verb", "resource"}: names outside parentheses.
    depth, out, word = 0, set(), ""
    for ch in cell + " ":
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif depth == 0 and (ch.isalnum() or ch == "_"):
            word += ch
            continue
        if word and depth <= 1:
            out.add(word)
        word = ""
    return out


def exposed() -> dict[str, set[str]]:
    metrics = OperatorMetrics()
    KubeAPI(Credentials(server="https://127.0.0.1:1"), field_manager="test", registry=metrics.registry)
    # The controller registers the per-object gauges over its store; one object of each kind
    # makes their families carry samples (and so their labels).
    ready = {"status": {"phase": "Ready", "conditions": [{"type": "Ready", "status": "True"}]}}
    metrics.watch_objects(lambda: {"ModelDeployment": [ready], "RoutePolicy": [ready]})
    out: dict[str, set[str]] = {}
    for family in metrics.registry.collect():
        name = family.name + ("_total" if family.type == "counter" else "")
        out[name] = (
            set(family.samples[0].labels) - {"le"} if family.samples else _declared(metrics, family.name)
        )
    return out


def _declared(metrics: OperatorMetrics, name: str) -> set[str]:
    for collector in list(
        metrics.registry._collector_to_names
    ):  # labelled metrics have no samples until used
        if getattr(collector, "_name", None) == name:
            return set(getattr(collector, "_labelnames", ()))
    return set()


def test_every_metric_is_documented_with_its_labels() -> None:
    assert documented() == exposed()
