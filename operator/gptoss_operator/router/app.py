"""The router as one ASGI application; its lifespan owns every resource.

``RouterApp(config_path, registry=..., transport=...)``: the upstream connection pool, the
httpx client for scrapes, the reload/key-refresh loop, the scrape loop and the EndpointSlice watches are all
started in lifespan startup and closed in shutdown. ``transport`` (for the scrape client) lets tests substitute
``httpx.MockTransport``; ``registry`` gives each test its own Prometheus registry.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import Callable
from typing import Any

import httpx
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from gptoss_operator.router.asgi import Receive, Scope, Send, send_error, send_json_bytes
from gptoss_operator.router.config import ConfigError, RouterConfig
from gptoss_operator.router.endpointslices import KubeAuth, ServiceWatchers, in_cluster_auth, kubeconfig_auth
from gptoss_operator.router.errors import MethodNotAllowedError, ModelNotFoundError, NotFoundError
from gptoss_operator.router.keys import KeyStore
from gptoss_operator.router.metrics import RouterMetrics, StateView
from gptoss_operator.router.pool import Pool
from gptoss_operator.router.proxy import PATHS, Proxy
from gptoss_operator.router.reload import ConfigSource
from gptoss_operator.router.scrape import scrape_loop
from gptoss_operator.router.state import EndpointRegistry, Runtime, ServiceKey, build_runtime, service_key

log = logging.getLogger("gptoss_operator.router")


class RouterApp:
    def __init__(
        self,
        config_path: str,
        *,
        registry: CollectorRegistry | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        kube_client: Callable[[KubeAuth], httpx.AsyncClient] | None = None,
        clock: Callable[[], float] = time.monotonic,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.source = ConfigSource(config_path)
        self.registry = registry if registry is not None else CollectorRegistry()
        self.metrics = RouterMetrics(self.registry)
        self.metrics.attach_state(self._state_view)
        self.keys = KeyStore()
        self.endpoints = EndpointRegistry()
        self.service_endpoints: dict[ServiceKey, list[str]] = {}
        self._clock = clock
        self._transport = transport
        self._kube_client = kube_client or _kube_client
        self._runtime: Runtime | None = None
        self._client: httpx.AsyncClient | None = None  # scrapes (low rate)
        self._pool: Pool | None = None  # the upstream data path
        self._tasks: list[asyncio.Task[None]] = []
        self._watchers: ServiceWatchers | None = None
        self._key_problems: dict[str, str | None] = {}
        self.proxy = Proxy(runtime=self.runtime, pool=self.pool, metrics=self.metrics, rand=rand, clock=clock)

    # --- state -----------------------------------------------------------------------------
    def runtime(self) -> Runtime:
        assert self._runtime is not None, "configuration not loaded"
        return self._runtime

    def client(self) -> httpx.AsyncClient:
        assert self._client is not None, "lifespan not started"
        return self._client

    def pool(self) -> Pool:
        assert self._pool is not None, "lifespan not started"
        return self._pool

    def load_initial(self) -> RouterConfig:
        """Load the file now (the CLI calls this before serving, to fail fast); ConfigError if bad."""
        loaded = self.source.load()
        self._install(loaded.config)
        self.metrics.config_reloads.labels("success").inc()
        self.metrics.config_last_reload_ok.set(1)
        return loaded.config

    def _install(self, config: RouterConfig) -> None:
        previous = self._runtime
        runtime = build_runtime(
            config,
            generation=(previous.generation + 1) if previous else 1,
            registry=self.endpoints,
            service_endpoints=self.service_endpoints,
            keys=self.keys,
            previous=previous,
        )
        self._log_key_problems(runtime)
        self._runtime = runtime  # the atomic swap: in-flight requests keep their own reference
        self.metrics.config_generation.set(runtime.generation)
        if self._watchers is not None:
            self._sync_watchers()

    def _reload_if_changed(self) -> None:
        if not self.source.changed():
            return
        try:
            loaded = self.source.load()
        except ConfigError as e:
            self.metrics.config_reloads.labels("invalid").inc()
            self.metrics.config_last_reload_ok.set(0)
            log.error(
                "configuration refused; still serving the previous one",
                extra={"path": self.source.path, "error": str(e), "generation": self.runtime().generation},
            )
            return
        self._install(loaded.config)
        self.metrics.config_reloads.labels("success").inc()
        self.metrics.config_last_reload_ok.set(1)
        log.info(
            "configuration reloaded",
            extra={"path": self.source.path, "generation": self.runtime().generation},
        )

    def _log_key_problems(self, runtime: Runtime) -> None:
        for b, problem, changed in runtime.refresh_keys(self.keys):
            ident = f"{b.name}:{b.config.external.api_key_file if b.config.external else ''}"
            if problem != self._key_problems.get(ident, "unset") or changed:
                self.metrics.key_reads.labels(b.name, "ok" if problem is None else "problem").inc()
                if problem is None:
                    log.info("API key loaded", extra={"backend": b.name})  # the key itself: never
                else:
                    log.error(
                        "backend unusable: API key problem", extra={"backend": b.name, "problem": problem}
                    )
            self._key_problems[ident] = problem

    def _state_view(self) -> StateView:
        if self._runtime is None:
            return StateView([], {})
        return self._runtime.view(self._clock(), self._runtime.config.server.scrape.stale_after)

    def _on_service(self, key: ServiceKey, urls: list[str]) -> None:
        self.service_endpoints[key] = urls
        self.runtime().apply_service(key, urls, self.endpoints)

    def _sync_watchers(self) -> None:
        assert self._watchers is not None
        wanted = {
            service_key(b.config.cluster.service): b.config.cluster.service.scheme
            for b in self.runtime().backends()
            if b.config.cluster is not None and b.config.cluster.service is not None
        }
        self._watchers.sync(wanted)

    async def _reload_loop(self) -> None:
        while True:
            await asyncio.sleep(self.runtime().config.server.reload_interval)
            try:
                self._reload_if_changed()
                self._log_key_problems(self.runtime())
            except Exception:  # the loop must survive anything a file can do to it
                log.exception("reload loop error")

    # --- lifespan --------------------------------------------------------------------------
    async def startup(self) -> None:
        if self._runtime is None:
            self.load_initial()
        server = self.runtime().config.server
        self._client = httpx.AsyncClient(transport=self._transport, trust_env=False)
        self._pool = Pool(max_idle_per_host=server.max_idle_connections_per_upstream)
        kube = server.kubernetes
        kubeconfig = kube.kubeconfig
        self._watchers = ServiceWatchers(
            self._kube_client,
            (lambda: kubeconfig_auth(kubeconfig)) if kubeconfig else in_cluster_auth,
            self._on_service,
        )
        self._sync_watchers()
        self._tasks = [
            asyncio.create_task(self._reload_loop(), name="config-reload"),
            asyncio.create_task(
                scrape_loop(self.client(), self.runtime, self.metrics, self._clock), name="scrape"
            ),
        ]

    async def shutdown(self) -> None:
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        if self._watchers is not None:
            await self._watchers.aclose()
        if self._client is not None:
            await self._client.aclose()
        if self._pool is not None:
            self._pool.close()

    # --- ASGI ------------------------------------------------------------------------------
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.startup()
                except Exception as e:
                    await send({"type": "lifespan.startup.failed", "message": f"{type(e).__name__}: {e}"})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"]
        method: str = scope["method"]
        api = PATHS.get(path)
        if api is not None:
            if method != "POST":
                await send_error(send, MethodNotAllowedError(f"{method} {path}: use POST"))
                return
            await self.proxy.handle(dict(scope), receive, send, api[0], api[1])
            return
        if method not in ("GET", "HEAD"):
            await send_error(send, NotFoundError(f"no endpoint {method} {path}"))
            return
        if path == "/metrics":
            await send_json_bytes(
                send, 200, generate_latest(self.registry), content_type=CONTENT_TYPE_LATEST.encode()
            )
        elif path == "/healthz":
            await send_json_bytes(send, 200, b'{"status":"ok"}')
        elif path == "/readyz":
            ready = self._runtime is not None and self._pool is not None
            body: dict[str, Any] = {"status": "ready" if ready else "starting"}
            if self._runtime is not None:
                body["generation"] = self._runtime.generation
                body["routes"] = sorted(self._runtime.routes)
            await send_json_bytes(send, 200 if ready else 503, json.dumps(body).encode())
        elif path == "/v1/models":
            await send_json_bytes(send, 200, json.dumps(self._models()).encode())
        elif path.startswith("/v1/models/"):
            model = path.removeprefix("/v1/models/")
            found = [m for m in self._models()["data"] if m["id"] == model]
            if found:
                await send_json_bytes(send, 200, json.dumps(found[0]).encode())
            else:
                await send_error(
                    send, ModelNotFoundError(f"The model `{model}` does not exist", param="model")
                )
        else:
            await send_error(send, NotFoundError(f"no endpoint {method} {path}"))

    def _models(self) -> dict[str, Any]:
        data = [
            {"id": m, "object": "model", "created": 0, "owned_by": "gptoss-router"}
            for m in sorted(self.runtime().routes)
        ]
        return {"object": "list", "data": data}


def _kube_client(auth: KubeAuth) -> httpx.AsyncClient:
    return httpx.AsyncClient(verify=auth.verify, trust_env=False)
