"""The only module that talks to the Kubernetes API (writes; kopf owns the watches).

A small async client over aiohttp (kopf's own HTTP stack, with C-accelerated parsing; httpx
cost half the operator's CPU in a 300-object profile, see docs/operator.md): server-side
apply under one field manager, status merge patches, deletes and Events. Every write is counted by verb and resource
(``gptoss_operator_api_writes_total``) so "a quiet cluster means zero writes" is observable.
Credentials are plain data (``credentials.py``), so this module needs neither kopf nor the
official client (docs/install.md has the memory figure). The bearer token is asked of a
:class:`TokenSource` per request, so a rotated token file or an expiring exec-plugin token is
picked up, and a 401 re-reads the credentials and retries once.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any, Protocol

import aiohttp
from prometheus_client import CollectorRegistry, Counter, Histogram

from gptoss_operator import kinds

# Shared with the router (which must not import this module); re-exported so that
# `from gptoss_operator.kube import Credentials` keeps working.
from gptoss_operator.credentials import Credentials as Credentials
from gptoss_operator.credentials import TokenSource

JSON = dict[str, Any]


class KubeError(Exception):
    """An API call failed; ``status`` is the HTTP status (0 when no answer came back)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status

    @property
    def not_found(self) -> bool:
        return self.status == 404

    @property
    def namespace_terminating(self) -> bool:
        """The namespace is being deleted: nothing new may be created in it, ever again."""
        return self.status == 403 and "because it is being terminated" in str(self)


def resource_path(api_version: str, kind: str, namespace: str | None, name: str | None = None) -> str:
    try:
        k = kinds.BY_API_VERSION_KIND[(api_version, kind)]
    except KeyError:
        raise ValueError(f"{api_version}/{kind} is not a kind the operator manages") from None
    path = (
        f"{k.url_prefix}/namespaces/{namespace}/{k.plural}" if k.namespaced else f"{k.url_prefix}/{k.plural}"
    )
    return f"{path}/{name}" if name else path


class KubeClient(Protocol):
    """What the controllers need from the API server; :class:`KubeAPI` is the real one."""

    async def get(self, api_version: str, kind: str, namespace: str, name: str) -> JSON | None: ...

    async def apply(self, manifest: JSON) -> JSON: ...

    async def patch_status(
        self, api_version: str, kind: str, namespace: str, name: str, status: JSON
    ) -> JSON: ...

    async def delete(self, api_version: str, kind: str, namespace: str, name: str) -> None: ...

    async def event(
        self, regarding: JSON, *, type_: str, reason: str, message: str, component: str
    ) -> None: ...


class KubeAPI:
    """Writes to the Kubernetes API. Reads come from kopf's watch streams (the store)."""

    def __init__(
        self,
        credentials: Credentials,
        *,
        field_manager: str,
        registry: CollectorRegistry | None = None,
    ) -> None:
        headers = {"User-Agent": field_manager}
        self.tokens = TokenSource(credentials)
        self.field_manager = field_manager
        self._server = credentials.server.rstrip("/")
        self._headers = headers
        self._ssl = credentials.ssl_context()
        self._session: aiohttp.ClientSession | None = None
        self.writes = Counter(
            "gptoss_operator_api_writes",
            "Write requests the operator sent to the Kubernetes API",
            ["verb", "resource"],
            registry=registry,
        )
        self.latency = Histogram(
            "gptoss_operator_api_request_seconds",
            "Kubernetes API request latency as the operator sees it",
            ["verb", "resource"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=registry,
        )

    def _client(self) -> aiohttp.ClientSession:
        # Created lazily: a ClientSession must be made inside the running event loop.
        if self._session is None:
            self._session = aiohttp.ClientSession(
                headers=self._headers,
                connector=aiohttp.TCPConnector(ssl=self._ssl, limit=64),
                # Writes are small; a stuck API server must not stall a reconcile forever.
                timeout=aiohttp.ClientTimeout(total=30, connect=5),
            )
        return self._session

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def _request(
        self,
        method: str,
        path: str,
        *,
        resource: str,
        verb: str,
        params: dict[str, str] | None = None,
        body: JSON | None = None,
        content_type: str = "application/json",
    ) -> JSON:
        if verb not in ("get", "list"):
            self.writes.labels(verb=verb, resource=resource).inc()
        data = None if body is None else json.dumps(body)
        for attempt in (1, 2):
            headers = {"Content-Type": content_type} if data is not None else {}
            token = await self.tokens.token(refresh=attempt > 1)
            if token.value:
                headers["Authorization"] = f"Bearer {token.value}"
            try:
                with self.latency.labels(verb=verb, resource=resource).time():
                    async with self._client().request(
                        method, self._server + path, params=params, data=data, headers=headers
                    ) as resp:
                        text = await resp.text()
                        status = resp.status
            except (aiohttp.ClientError, TimeoutError) as e:
                raise KubeError(0, f"{method} {path}: {type(e).__name__}: {e}") from e
            # 401: the token expired or was revoked; a new one may be on disk (or from the exec
            # plugin) already. Once: a second 401 is a real refusal.
            if status != 401:
                break
        if status >= 400:
            raise KubeError(status, _status_message(status, text))
        result: JSON = json.loads(text) if text else {}
        return result

    async def list(self, kind: kinds.Kind, namespace: str | None = None) -> list[JSON] | None:
        """Every object of ``kind`` (in ``namespace``, or all namespaces); None when the API
        server does not know the kind at all (its CRD is gone). A read: not counted."""
        base = kind.url_prefix
        path = f"{base}/namespaces/{namespace}/{kind.plural}" if namespace else f"{base}/{kind.plural}"
        try:
            result = await self._request("GET", path, resource=kind.kind, verb="list")
        except KubeError as e:
            if e.not_found:
                return None
            raise
        items: list[JSON] = result.get("items") or []
        for item in items:  # a list's items carry no apiVersion/kind of their own
            item.setdefault("apiVersion", kind.api_version)
            item.setdefault("kind", kind.kind)
        return items

    async def get(self, api_version: str, kind: str, namespace: str, name: str) -> JSON | None:
        """One object, or None when it does not exist (a read: not counted as a write)."""
        try:
            return await self._request(
                "GET", resource_path(api_version, kind, namespace, name), resource=kind, verb="get"
            )
        except KubeError as e:
            if e.not_found:
                return None
            raise

    async def apply(self, manifest: JSON) -> JSON:
        """Server-side apply under the operator's field manager, forcing ownership of the
        fields it sets (it is the only writer of its children's managed fields).

        ``fieldValidation=Ignore`` skips the API server's second, strict YAML decode of the body
        (k8s.io/apiserver handlers/patch.go, applyPatcher), which looks only for duplicate keys:
        ``json.dumps`` of a dict cannot write one. A field the schema does not know still fails
        the apply (``field not declared in schema``, from the typed conversion every apply
        makes). The strict decode was about 0.3 ms of API-server CPU per apply at 1,000
        ModelDeployments (docs/operator.md, "Where the API server's extra CPU goes")."""
        meta = manifest["metadata"]
        kind = manifest["kind"]
        path = resource_path(manifest["apiVersion"], kind, meta.get("namespace"), meta["name"])
        return await self._request(
            "PATCH",
            path,
            resource=kind,
            verb="apply",
            params={"fieldManager": self.field_manager, "force": "true", "fieldValidation": "Ignore"},
            body=manifest,
            content_type="application/apply-patch+yaml",
        )

    async def create(self, manifest: JSON) -> JSON:
        """POST a new object (409 Conflict when it exists)."""
        meta = manifest["metadata"]
        path = resource_path(manifest["apiVersion"], manifest["kind"], meta.get("namespace"))
        return await self._request("POST", path, resource=manifest["kind"], verb="create", body=manifest)

    async def replace(self, manifest: JSON) -> JSON:
        """PUT the whole object; with ``metadata.resourceVersion`` set, 409 Conflict when the
        object changed since it was read (optimistic concurrency)."""
        meta = manifest["metadata"]
        path = resource_path(manifest["apiVersion"], manifest["kind"], meta.get("namespace"), meta["name"])
        return await self._request("PUT", path, resource=manifest["kind"], verb="update", body=manifest)

    async def patch_status(
        self, api_version: str, kind: str, namespace: str, name: str, status: JSON
    ) -> JSON:
        """JSON merge patch of the status subresource (``None`` values remove keys)."""
        path = resource_path(api_version, kind, namespace, name) + "/status"
        return await self._request(
            "PATCH",
            path,
            resource=f"{kind}/status",
            verb="patch",
            body={"status": status},
            content_type="application/merge-patch+json",
        )

    async def delete(self, api_version: str, kind: str, namespace: str, name: str) -> None:
        path = resource_path(api_version, kind, namespace, name)
        try:
            await self._request(
                "DELETE", path, resource=kind, verb="delete", params={"propagationPolicy": "Background"}
            )
        except KubeError as e:
            if not e.not_found:
                raise

    async def event(self, regarding: JSON, *, type_: str, reason: str, message: str, component: str) -> None:
        """Record a core/v1 Event about ``regarding`` (what `kubectl describe` shows)."""
        meta = regarding["metadata"]
        now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        body = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"generateName": f"{meta['name']}.", "namespace": meta["namespace"]},
            "involvedObject": {
                "apiVersion": regarding["apiVersion"],
                "kind": regarding["kind"],
                "name": meta["name"],
                "namespace": meta["namespace"],
                "uid": meta.get("uid"),
            },
            "type": type_,
            "reason": reason,
            "message": message[:1024],
            "source": {"component": component},
            "reportingComponent": component,
            "reportingInstance": component,
            "firstTimestamp": now,
            "lastTimestamp": now,
            "eventTime": None,
            "count": 1,
        }
        await self._request(
            "POST",
            resource_path("v1", "Event", meta["namespace"]),
            resource="Event",
            verb="create",
            body=body,
        )


def _status_message(status: int, text: str) -> str:
    try:
        body = json.loads(text)
        return f"HTTP {status} {body.get('reason', '')}: {body.get('message', text)}"
    except ValueError:
        return f"HTTP {status}: {text[:500]}"
