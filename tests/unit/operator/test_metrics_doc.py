"""docs/metrics.md lists exactly the metrics the operator and the router expose, with their
labels, and explains every alert of the chart's PrometheusRule."""

from __future__ import annotations

import re
from pathlib import Path

from prometheus_client import CollectorRegistry

from gptoss_operator.credentials import Credentials
from gptoss_operator.kube import KubeAPI
from gptoss_operator.metrics import OperatorMetrics
from gptoss_operator.router.metrics import EndpointView, RouterMetrics, StateView

REPO = Path(__file__).resolve().parents[3]
DOC = REPO / "docs" / "metrics.md"
RULES = REPO / "charts" / "gpt-oss-operator" / "templates" / "prometheusrule.yaml"


def documented(prefix: str) -> dict[str, set[str]]:
    rows = re.findall(rf"^\| `({prefix}[a-z_]+)` \|([^|]*)\|", DOC.read_text(), re.M)
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


def exposed_by_operator() -> dict[str, set[str]]:
    metrics = OperatorMetrics()
    KubeAPI(Credentials(server="https://127.0.0.1:1"), field_manager="test", registry=metrics.registry)
    # The controller registers the per-object gauges over its store; one object of each kind
    # makes their families carry samples (and so their labels).
    ready = {"status": {"phase": "Ready", "conditions": [{"type": "Ready", "status": "True"}]}}
    metrics.watch_objects(lambda: {"ModelDeployment": [ready], "RoutePolicy": [ready]})
    return _families(metrics.registry)


def exposed_by_router() -> dict[str, set[str]]:
    metrics = RouterMetrics(CollectorRegistry())
    # The state gauges are computed at scrape time: one endpoint makes them carry samples.
    endpoint = EndpointView("m", "local", "10.0.0.1:8000", True, 0.5, 1, 0.0, 1.0, 0.2)
    metrics.attach_state(lambda: StateView([endpoint], {"m": False}))
    return _families(metrics.registry)


def _families(registry: CollectorRegistry) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for family in registry.collect():
        name = family.name + ("_total" if family.type == "counter" else "")
        out[name] = (
            set(family.samples[0].labels) - {"le"} if family.samples else _declared(registry, family.name)
        )
    return out


def _declared(registry: CollectorRegistry, name: str) -> set[str]:
    for collector in list(registry._collector_to_names):  # labelled metrics have no samples until used
        if getattr(collector, "_name", None) == name:
            return set(getattr(collector, "_labelnames", ()))
    return set()


def test_every_operator_metric_is_documented_with_its_labels() -> None:
    assert documented("gptoss_operator_") == exposed_by_operator()


def test_every_router_metric_is_documented_with_its_labels() -> None:
    assert documented("gptoss_router_") == exposed_by_router()


def test_every_alert_is_in_the_table_and_has_a_what_to_do() -> None:
    alerts = re.findall(r"^\s+- alert: (\w+)$", RULES.read_text(), re.M)
    assert alerts
    doc = DOC.read_text()
    table = set(re.findall(r"^\| `(GptOss\w+)` \|", doc, re.M))
    what_to_do = set(re.findall(r"^\*\*(GptOss\w+)\.\*\*", doc, re.M))
    assert table == what_to_do == set(alerts)


def test_the_operator_exports_no_created_series() -> None:
    # prometheus_client adds a `<name>_created` gauge family per counter and histogram unless
    # told not to; the doc lists none, and a test that ran the router earlier may have switched
    # them off already, so switch them on first.
    import prometheus_client
    from prometheus_client import generate_latest

    prometheus_client.enable_created_metrics()  # type: ignore[no-untyped-call]
    metrics = OperatorMetrics()
    KubeAPI(Credentials(server="https://127.0.0.1:1"), field_manager="test", registry=metrics.registry)
    metrics.reconcile_seconds.labels(kind="ModelDeployment").observe(0.1)
    metrics.resyncs.inc()
    text = generate_latest(metrics.registry).decode()
    assert "gptoss_operator_reconcile_seconds_count" in text
    assert "_created" not in text
