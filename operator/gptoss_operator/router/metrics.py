"""Every metric the router exports: names and label sets live here and only here.

``RouterMetrics(registry)`` takes its registry so tests get a fresh ``CollectorRegistry`` each
(no "Duplicated timeseries" across test modules). Gauges that describe live state (health,
scrape age, saturation) are computed at scrape time by ``StateCollector`` from a callback, so
they can never drift from what the router actually uses.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

# Added latency matters in the sub-millisecond range; generation takes seconds to minutes.
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
_TTFT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


@dataclass(frozen=True, slots=True)
class EndpointView:
    route: str
    backend: str
    endpoint: str
    healthy: bool
    scrape_age: float | None  # seconds since the last good scrape; None when never/not scraped
    inflight: int
    waiting: float | None
    running: float | None
    kv_usage: float | None


@dataclass(frozen=True, slots=True)
class StateView:
    endpoints: list[EndpointView]
    saturated: dict[str, bool]  # route -> pool saturated


class StateCollector(Collector):
    def __init__(self, view: Callable[[], StateView]) -> None:
        self._view = view

    def collect(self) -> Iterable[Metric]:
        view = self._view()
        labels = ["route", "backend", "endpoint"]
        healthy = GaugeMetricFamily(
            "gptoss_router_backend_healthy",
            "1 if the endpoint is not ejected by passive health",
            labels=labels,
        )
        age = GaugeMetricFamily(
            "gptoss_router_scrape_age_seconds",
            "Seconds since the last successful /metrics scrape",
            labels=labels,
        )
        inflight = GaugeMetricFamily(
            "gptoss_router_upstream_in_flight", "Requests the router has open to the endpoint", labels=labels
        )
        waiting = GaugeMetricFamily(
            "gptoss_router_endpoint_queue_depth", "Last scraped vllm:num_requests_waiting", labels=labels
        )
        kv = GaugeMetricFamily(
            "gptoss_router_endpoint_kv_cache_usage", "Last scraped vllm:kv_cache_usage_perc", labels=labels
        )
        for ep in view.endpoints:
            lv = [ep.route, ep.backend, ep.endpoint]
            healthy.add_metric(lv, 1.0 if ep.healthy else 0.0)
            inflight.add_metric(lv, float(ep.inflight))
            if ep.scrape_age is not None:
                age.add_metric(lv, ep.scrape_age)
            if ep.waiting is not None:
                waiting.add_metric(lv, ep.waiting)
            if ep.kv_usage is not None:
                kv.add_metric(lv, ep.kv_usage)
        saturated = GaugeMetricFamily(
            "gptoss_router_pool_saturated", "1 while the route's in-cluster pool overflows", labels=["route"]
        )
        for route, sat in view.saturated.items():
            saturated.add_metric([route], 1.0 if sat else 0.0)
        yield from (healthy, age, inflight, waiting, kv, saturated)


class RouterMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.requests = Counter(
            "gptoss_router_requests",
            "Requests answered, by route, serving backend ('none' if not routed) and HTTP status",
            ["route", "backend", "status"],
            registry=registry,
        )
        self.latency = Histogram(
            "gptoss_router_request_duration_seconds",
            "Time from request received to last byte sent",
            ["route", "backend"],
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.ttft = Histogram(
            "gptoss_router_time_to_first_token_seconds",
            "Streaming: time from request received to the first upstream event",
            ["route", "backend"],
            buckets=_TTFT_BUCKETS,
            registry=registry,
        )
        self.tokens = Counter(
            "gptoss_router_tokens",
            "Tokens reported by upstream usage, by kind (prompt, completion, reasoning)",
            ["route", "backend", "kind"],
            registry=registry,
        )
        self.overflow = Counter(
            "gptoss_router_overflow",
            "Requests sent to an overflow backend because the in-cluster pool was saturated",
            ["route", "backend"],
            registry=registry,
        )
        self.fallback = Counter(
            "gptoss_router_fallback",
            "Attempts abandoned before the first byte, by failed backend and reason",
            ["route", "backend", "reason"],
            registry=registry,
        )
        self.residency_blocked = Counter(
            "gptoss_router_residency_blocked",
            "Requests restricted to in-cluster backends that none could serve (answered 503)",
            ["route", "rule"],
            registry=registry,
        )
        self.ejections = Counter(
            "gptoss_router_ejections",
            "Endpoints ejected by passive health",
            ["backend", "reason"],
            registry=registry,
        )
        self.scrapes = Counter(
            "gptoss_router_scrapes",
            "vLLM /metrics scrapes by result",
            ["result"],
            registry=registry,
        )
        self.config_reloads = Counter(
            "gptoss_router_config_reloads",
            "Configuration (re)loads by result (success, invalid)",
            ["result"],
            registry=registry,
        )
        self.config_generation = Gauge(
            "gptoss_router_config_generation",
            "Generation of the configuration in use (1 = the first file loaded)",
            registry=registry,
        )
        self.config_last_reload_ok = Gauge(
            "gptoss_router_config_last_reload_successful",
            "0 if the newest file on disk was refused and an older configuration is serving",
            registry=registry,
        )
        self.key_reads = Counter(
            "gptoss_router_api_key_reads",
            "API key file reads by result (ok, missing, empty)",
            ["backend", "result"],
            registry=registry,
        )

        self.connections_open = Gauge(
            "gptoss_router_connections_open",
            "Client connections open now",
            registry=registry,
        )
        self.connections_closed = Counter(
            "gptoss_router_connections_closed",
            "Client connections the router closed without a request in progress "
            "(header_timeout, idle_timeout, evicted, header_too_large)",
            ["reason"],
            registry=registry,
        )
        self.connections_rejected = Counter(
            "gptoss_router_connections_rejected",
            "Client connections refused with a 503 on arrival (limit: at the cap, all busy)",
            ["reason"],
            registry=registry,
        )

    def attach_state(self, view: Callable[[], StateView]) -> None:
        self.registry.register(StateCollector(view))
