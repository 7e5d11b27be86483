"""The operator's Prometheus metrics, on a registry of their own (tests create many)."""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import prometheus_client
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

# kind -> the bodies of that kind the operator knows (its watch-fed store), read per scrape.
ObjectsByKind = Callable[[], Mapping[str, Iterable[Mapping[str, Any]]]]


@dataclass
class OperatorMetrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        # No `*_created` series (a gauge per counter and histogram child, the second it was
        # first used): nothing reads them, they double the exposition, and docs/metrics.md lists
        # only `_total` and `_bucket`/`_sum`/`_count`. The router does the same. A switch of the
        # whole prometheus_client module, which only the operator's process uses.
        prometheus_client.disable_created_metrics()  # type: ignore[no-untyped-call]
        self.reconcile_seconds = Histogram(
            "gptoss_operator_reconcile_seconds",
            "Time to reconcile one object, by kind (ModelDeployment, RoutePolicy)",
            ["kind"],
            buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=self.registry,
        )
        self.reconcile_errors = Counter(
            "gptoss_operator_reconcile_errors",
            "Reconciles that failed and were retried, by kind",
            ["kind"],
            registry=self.registry,
        )
        self.resyncs = Counter(
            "gptoss_operator_resyncs",
            "Times every object was reconciled because the API server answered again after failures",
            registry=self.registry,
        )
        self.queue_depth = Gauge(
            "gptoss_operator_queue_depth", "ModelDeployments waiting to be reconciled", registry=self.registry
        )
        # controller-runtime's leader_election_master_status, under this project's prefix: which
        # replica writes, readable from each replica's own /metrics (the chart's `helm test`).
        self.leader = Gauge(
            "gptoss_operator_leader",
            "1 while this process reconciles (it holds the leader-election Lease, or runs without one)",
            registry=self.registry,
        )

    def watch_objects(self, objects: ObjectsByKind) -> None:
        """Export gptoss_operator_objects / gptoss_operator_object_conditions from ``objects``."""
        self.registry.register(ObjectStateCollector(objects))


class ObjectStateCollector(Collector):
    """Per scrape, how many objects are in each phase and hold each condition, from the
    operator's own store: alerts on Degraded models need no kube-state-metrics."""

    def __init__(self, objects: ObjectsByKind) -> None:
        self.objects = objects

    def collect(self) -> Iterator[Metric]:
        phases = GaugeMetricFamily(
            "gptoss_operator_objects",
            "Objects the operator watches, by kind and status.phase",
            labels=["kind", "phase"],
        )
        conditions = GaugeMetricFamily(
            "gptoss_operator_object_conditions",
            "Objects by kind, condition type and condition status",
            labels=["kind", "type", "status"],
        )
        for kind, bodies in self.objects().items():
            by_phase: Tally[str] = Tally()
            by_condition: Tally[tuple[str, str]] = Tally()
            for body in bodies:
                status = body.get("status") or {}
                by_phase[str(status.get("phase") or "Unknown")] += 1
                for c in status.get("conditions") or []:
                    by_condition[(str(c.get("type")), str(c.get("status")))] += 1
            for phase, n in sorted(by_phase.items()):
                phases.add_metric([kind, phase], n)
            for (type_, value), n in sorted(by_condition.items()):
                conditions.add_metric([kind, type_, value], n)
        yield phases
        yield conditions

    def describe(self) -> Iterator[Metric]:
        return iter(())  # values come from the store at scrape time; no fixed series
