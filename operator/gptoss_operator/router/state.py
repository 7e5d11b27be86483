"""What the router knows: the configuration in use (swapped atomically) and live endpoint state.

``Runtime`` is built from one ``RouterConfig`` and never mutated except for the per-backend
endpoint lists and key availability, which are single attribute assignments. A reload builds a
new ``Runtime`` and replaces the reference: requests in flight keep the object they started
with. ``Endpoint`` objects live in ``EndpointRegistry`` keyed by URL, so load samples and
ejections survive reloads.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from gptoss_operator.router.config import RouterConfig, ServiceRef
from gptoss_operator.router.keys import KeyStore
from gptoss_operator.router.load import Endpoint
from gptoss_operator.router.metrics import EndpointView, StateView
from gptoss_operator.router.runtime import BackendRuntime, RouteRuntime, build_backend

ServiceKey = tuple[str, str, str]  # namespace, name, port (name or number as text)


def service_key(ref: ServiceRef) -> ServiceKey:
    return (ref.namespace, ref.name, str(ref.port))


class EndpointRegistry:
    def __init__(self) -> None:
        self._by_url: dict[str, Endpoint] = {}

    def get(self, url: str, *, external: bool) -> Endpoint:
        ep = self._by_url.get(url)
        if ep is None:
            ep = self._by_url[url] = Endpoint(url=url, external=external)
        return ep

    def prune(self, keep: Iterable[str]) -> None:
        wanted = set(keep)
        for url in [u for u in self._by_url if u not in wanted]:
            del self._by_url[url]


@dataclass(slots=True, eq=False)
class Runtime:
    config: RouterConfig
    generation: int
    routes: dict[str, RouteRuntime]
    saturated: dict[str, bool] = field(default_factory=dict)

    def backends(self) -> Iterable[BackendRuntime]:
        for route in self.routes.values():
            yield from route.backends

    def services(self) -> set[ServiceKey]:
        return {
            service_key(b.config.cluster.service)
            for b in self.backends()
            if b.config.cluster is not None and b.config.cluster.service is not None
        }

    def scrape_targets(self) -> list[Endpoint]:
        seen: dict[str, Endpoint] = {}
        for b in self.backends():
            if b.config.cluster is not None and b.config.cluster.metrics:
                for ep in b.endpoints:
                    seen.setdefault(ep.url, ep)
        return list(seen.values())

    def apply_service(self, key: ServiceKey, urls: list[str], registry: EndpointRegistry) -> None:
        for b in self.backends():
            c = b.config.cluster
            if c is not None and c.service is not None and service_key(c.service) == key:
                b.endpoints = tuple(registry.get(u, external=False) for u in urls)

    def refresh_keys(self, keys: KeyStore) -> list[tuple[BackendRuntime, str | None, bool]]:
        """Re-read key files; returns (backend, problem, changed) for each keyed backend."""
        out = []
        for b in self.backends():
            ext = b.config.external
            if ext is None or ext.api_key_file is None:
                continue
            res = keys.read(ext.api_key_file)
            b.api_key = res.key
            b.unavailable = res.problem
            out.append((b, res.problem, res.changed))
        return out

    def view(self, now: float, stale_after: float) -> StateView:
        eps = []
        for route in self.routes.values():
            for b in route.backends:
                for ep in b.endpoints:
                    s = ep.sample
                    eps.append(
                        EndpointView(
                            route=route.model,
                            backend=b.name,
                            endpoint=ep.url,
                            healthy=ep.healthy(now),
                            scrape_age=None if ep.scraped_at is None else now - ep.scraped_at,
                            inflight=ep.inflight,
                            waiting=None if s is None else s.waiting,
                            running=None if s is None else s.running,
                            kv_usage=None if s is None else s.kv_usage,
                        )
                    )
        return StateView(eps, dict(self.saturated))


def build_runtime(
    config: RouterConfig,
    *,
    generation: int,
    registry: EndpointRegistry,
    service_endpoints: Mapping[ServiceKey, list[str]],
    keys: KeyStore,
    previous: Runtime | None = None,
) -> Runtime:
    routes: dict[str, RouteRuntime] = {}
    urls: list[str] = []
    for rc in config.routes:
        overflow_to = set(rc.overflow.to) if rc.overflow else set()
        backends = []
        for bc in rc.backends:
            b = build_backend(bc, bc.name in overflow_to)
            if bc.external is not None:
                b.endpoints = (registry.get(bc.external.base_url, external=True),)
            elif bc.cluster is not None and bc.cluster.endpoints is not None:
                b.endpoints = tuple(registry.get(u, external=False) for u in bc.cluster.endpoints)
            elif bc.cluster is not None and bc.cluster.service is not None:
                found = service_endpoints.get(service_key(bc.cluster.service), [])
                b.endpoints = tuple(registry.get(u, external=False) for u in found)
            urls.extend(ep.url for ep in b.endpoints)
            backends.append(b)
        routes[rc.model] = RouteRuntime(rc, tuple(backends))
    runtime = Runtime(config, generation, routes)
    if previous is not None:
        runtime.saturated = {m: s for m, s in previous.saturated.items() if m in routes}
    runtime.refresh_keys(keys)
    registry.prune(urls)
    return runtime
