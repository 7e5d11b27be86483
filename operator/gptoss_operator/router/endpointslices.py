"""Endpoints of in-cluster backends from Kubernetes EndpointSlices (list + watch over httpx).

Only this module talks to the Kubernetes API, and only if the configuration names a Service.
Credentials: the pod's service account (token re-read on every call, since bound tokens
rotate) or a kubeconfig file (``server.kubernetes.kubeconfig``). The router needs
``get/list/watch`` on ``discovery.k8s.io/endpointslices`` in the Service's namespace.
"""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx

from gptoss_operator import credentials
from gptoss_operator.router.state import ServiceKey

log = logging.getLogger("gptoss_operator.router.endpointslices")

# Server-side watch timeout: the API server ends the watch after this; we re-watch from the
# last resourceVersion. Below the usual 30 min proxy/LB idle limits.
WATCH_SECONDS = 240
_BACKOFF_MAX = 30.0
_RELIST_PAUSE = 0.5


class KubeConfigError(Exception):
    pass


@dataclass(frozen=True)
class KubeAuth:
    server: str
    verify: ssl.SSLContext | bool = True
    token: str | None = field(default=None, repr=False)
    token_file: str | None = None

    def headers(self) -> dict[str, str]:
        token = self.token
        if self.token_file is not None:
            with open(self.token_file, encoding="utf-8") as f:
                token = f.read().strip()
        return {"authorization": f"Bearer {token}"} if token else {}


def in_cluster_auth() -> KubeAuth:
    try:
        return _auth(credentials.in_cluster())
    except credentials.CredentialsError as e:
        raise KubeConfigError(str(e)) from None


def kubeconfig_auth(path: str) -> KubeAuth:
    """The current context of a kubeconfig: server, CA, and a token or client certificate.

    Inline client keys (``client-key-data``) are loaded through ``credentials.private_file``,
    which unlinks the file before this returns: nothing secret stays on disk.
    """
    try:
        return _auth(credentials.from_kubeconfig(path))
    except credentials.CredentialsError as e:
        raise KubeConfigError(str(e)) from None
    except (OSError, ValueError, ssl.SSLError) as e:  # bad PEM/base64, unreadable CA file
        raise KubeConfigError(f"cannot use kubeconfig {path}: {type(e).__name__} {e}") from None


def _auth(creds: credentials.Credentials) -> KubeAuth:
    return KubeAuth(creds.server, creds.ssl_context(), token=creds.token, token_file=creds.token_path)


def ready_urls(slices: Iterable[dict[str, Any]], port: str, scheme: str = "http") -> list[str]:
    """Server roots of ready endpoints. ``port`` is a port name or a number (as text). Pure.

    ``conditions.ready`` absent means ready (EndpointSlice API semantics); terminating
    endpoints are not ready.
    """
    urls: set[str] = set()
    for s in slices:
        number = None
        for p in s.get("ports") or []:
            wanted = str(p.get("port")) if port.isdigit() else p.get("name")
            if wanted == port:
                number = p.get("port")
        if number is None and port.isdigit():
            number = int(port)
        if number is None:
            continue
        for ep in s.get("endpoints") or []:
            if (ep.get("conditions") or {}).get("ready") is False:
                continue
            for addr in ep.get("addresses") or []:
                host = f"[{addr}]" if ":" in addr else addr
                urls.add(f"{scheme}://{host}:{number}")
    return sorted(urls)


class ServiceWatch:
    """List + watch the EndpointSlices of one Service; calls ``on_change(urls)`` on every change."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        auth: KubeAuth,
        key: ServiceKey,
        scheme: str,
        on_change: Callable[[ServiceKey, list[str]], None],
    ) -> None:
        self._client, self._auth, self._key, self._scheme = client, auth, key, scheme
        self._on_change = on_change
        self._slices: dict[str, dict[str, Any]] = {}
        self._last: list[str] | None = None

    def _url(self) -> str:
        ns, name, _ = self._key
        selector = quote(f"kubernetes.io/service-name={name}")
        return f"{self._auth.server}/apis/discovery.k8s.io/v1/namespaces/{ns}/endpointslices?labelSelector={selector}"

    def _publish(self) -> None:
        urls = ready_urls(self._slices.values(), self._key[2], self._scheme)
        if urls != self._last:
            self._last = urls
            log.info("endpoints changed", extra={"service": "/".join(self._key[:2]), "endpoints": urls})
            self._on_change(self._key, urls)

    async def run(self) -> None:
        backoff = 0.5
        while True:
            try:
                rv: str | None = await self._list()
                backoff = 0.5
                while rv is not None:
                    rv = await self._watch(rv)
                # 410 Gone / ERROR: relist, but never in a hot loop against a confused server.
                await asyncio.sleep(_RELIST_PAUSE)
            except (httpx.HTTPError, OSError, ValueError, KeyError) as e:
                log.warning(
                    "endpointslice watch failed; retrying",
                    extra={
                        "service": "/".join(self._key[:2]),
                        "error": f"{type(e).__name__}: {e}",
                        "retry_in_s": backoff,
                    },
                )
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, _BACKOFF_MAX)

    async def _list(self) -> str:
        r = await self._client.get(self._url(), headers=self._auth.headers())
        r.raise_for_status()
        doc = r.json()
        self._slices = {s["metadata"]["name"]: s for s in doc.get("items") or []}
        self._publish()
        return str(doc["metadata"]["resourceVersion"])

    async def _watch(self, rv: str) -> str | None:
        """Follow one watch; the resourceVersion to resume from, or None to relist (410 Gone)."""
        url = f"{self._url()}&watch=1&allowWatchBookmarks=true&resourceVersion={rv}&timeoutSeconds={WATCH_SECONDS}"
        timeout = httpx.Timeout(10.0, read=WATCH_SECONDS + 30)
        async with self._client.stream("GET", url, headers=self._auth.headers(), timeout=timeout) as r:
            if r.status_code == 410:
                return None
            r.raise_for_status()
            async for line in r.aiter_lines():
                if not line.strip():
                    continue
                event = json.loads(line)
                obj = event.get("object") or {}
                kind = event.get("type")
                if kind == "ERROR":
                    return None  # usually 410 Gone: the resourceVersion is too old
                rv = str(obj.get("metadata", {}).get("resourceVersion", rv))
                if kind in ("ADDED", "MODIFIED"):
                    self._slices[obj["metadata"]["name"]] = obj
                elif kind == "DELETED":
                    self._slices.pop(obj["metadata"]["name"], None)
                else:
                    continue  # BOOKMARK
                self._publish()
        return rv


class ServiceWatchers:
    """Keeps one ServiceWatch task per Service the configuration names."""

    def __init__(
        self,
        client_factory: Callable[[KubeAuth], httpx.AsyncClient],
        auth: Callable[[], KubeAuth],
        on_change: Callable[[ServiceKey, list[str]], None],
    ) -> None:
        self._client_factory = client_factory
        self._auth_factory = auth
        self._auth: KubeAuth | None = None
        self._client: httpx.AsyncClient | None = None
        self._on_change = on_change
        self._tasks: dict[ServiceKey, asyncio.Task[None]] = {}

    def sync(self, wanted: Mapping[ServiceKey, str]) -> None:
        """Start watches for new Services (``wanted`` maps key -> scheme), stop removed ones."""
        for key in [k for k in self._tasks if k not in wanted]:
            self._tasks.pop(key).cancel()
        if not wanted:
            return
        if self._client is None:
            self._auth = self._auth_factory()
            self._client = self._client_factory(self._auth)
        assert self._auth is not None
        for key, scheme in wanted.items():
            if key not in self._tasks:
                watch = ServiceWatch(self._client, self._auth, key, scheme, self._on_change)
                self._tasks[key] = asyncio.create_task(watch.run(), name=f"endpointslices:{'/'.join(key)}")

    async def aclose(self) -> None:
        for t in self._tasks.values():
            t.cancel()
        await asyncio.gather(*self._tasks.values(), return_exceptions=True)
        self._tasks.clear()
        if self._client is not None:
            await self._client.aclose()
