"""The operator's Prometheus metrics, on a registry of their own (tests create many)."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


@dataclass
class OperatorMetrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
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
