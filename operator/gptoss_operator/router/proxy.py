"""The OpenAI API endpoints: parse, route, try attempts in order, pass the answer through.

Per request: read the body (bounded) -> JSON -> route by ``model`` -> residency -> plan ->
attempts. Nothing is sent to the client before an attempt has produced its first byte, so
fallback never duplicates output. Streams are forwarded one complete SSE event at a time,
unchanged, except that the usage chunk the router itself asked for is dropped and, for
flavors that need it, the reasoning key is renamed (providers.rewrite_response_bytes).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from gptoss_operator.router import providers
from gptoss_operator.router.asgi import Receive, Send, read_body, send_error, send_json_bytes
from gptoss_operator.router.config import FailureKind
from gptoss_operator.router.errors import BadRequestError, ModelNotFoundError, RouterError, UnavailableError
from gptoss_operator.router.exchange import (
    DisconnectWatcher,
    encode_for,
    header_values,
    parse_body,
    request_id_of,
    stream_error_event,
)
from gptoss_operator.router.load import Endpoint
from gptoss_operator.router.metrics import RouterMetrics
from gptoss_operator.router.pool import Pool, UpstreamError
from gptoss_operator.router.runtime import BackendRuntime, RouteRuntime
from gptoss_operator.router.selection import (
    Api,
    Attempt,
    NoBackendError,
    plan_request,
    residency_rule,
    rule_label,
)
from gptoss_operator.router.sse import (
    EventFramer,
    Usage,
    inspect_event,
    usage_from_object,
    wants_usage_injection,
)
from gptoss_operator.router.state import Runtime
from gptoss_operator.router.upstream import AttemptFailure, Upstream, open_attempt

log = logging.getLogger("gptoss_operator.router.access")

PATHS: dict[str, tuple[Api, str]] = {
    "/v1/chat/completions": ("chat", "/chat/completions"),
    "/v1/completions": ("completions", "/completions"),
    "/v1/responses": ("responses", "/responses"),
}


@dataclass(slots=True)
class Outcome:
    """What one request did, for the access log and metrics."""

    request_id: str
    route: str = "none"
    backend: str = "none"
    status: str = "0"
    attempts: int = 0
    stream: bool = False
    started: bool = False  # the response head went to the client: no error answer any more
    failures: list[str] = field(default_factory=list)


@dataclass(slots=True)
class _LastUsage:
    value: Usage | None = None


class Proxy:
    def __init__(
        self,
        *,
        runtime: Callable[[], Runtime],
        pool: Callable[[], Pool],
        metrics: RouterMetrics,
        rand: Callable[[], float] = random.random,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._runtime = runtime
        self._pool = pool
        self._metrics = metrics
        self._rand = rand
        self._clock = clock
        self._children: dict[tuple[int, tuple[str, ...]], Any] = {}

    async def handle(self, scope: dict[str, Any], receive: Receive, send: Send, api: Api, path: str) -> None:
        t0 = time.perf_counter()
        request_id = request_id_of(scope)
        out = Outcome(request_id)
        try:
            await self._handle(scope, receive, send, api, path, out, t0)
        except RouterError as e:
            out.status = str(e.status)
            await send_error(send, e, request_id=request_id, backend=out.backend)
        except Exception as e:
            # Whatever went wrong, the client gets an OpenAI-shaped answer (never uvicorn's
            # plain-text 500) and the log gets JSON lines (never a bare traceback).
            await self._internal_error(send, out, e)
        finally:
            self._child(self._metrics.requests, out.route, out.backend, out.status).inc()
            # A broken stream or an internal error is logged even with --no-access-log.
            level = logging.WARNING if out.status in ("aborted", "500") else logging.INFO
            if log.isEnabledFor(level):
                log.log(
                    level,
                    "request",
                    extra={
                        "request_id": request_id,
                        "api": api,
                        "route": out.route,
                        "backend": out.backend,
                        "status": out.status,
                        "stream": out.stream,
                        "attempts": out.attempts,
                        "failures": out.failures,
                        "duration_ms": round((time.perf_counter() - t0) * 1000, 3),
                    },
                )

    async def _internal_error(self, send: Send, out: Outcome, e: Exception) -> None:
        log.error(
            "internal error while handling a request",
            exc_info=(type(e), e, e.__traceback__),
            extra={"request_id": out.request_id, "route": out.route},
        )
        if out.started:
            out.status = "aborted"
            return
        out.status = "500"
        err = RouterError(f"internal router error ({type(e).__name__}); request id {out.request_id}")
        try:
            await send_error(send, err, request_id=out.request_id, backend=out.backend)
        except Exception:  # the client is gone or the head went out after all
            out.status = "aborted"

    async def _handle(
        self,
        scope: dict[str, Any],
        receive: Receive,
        send: Send,
        api: Api,
        path: str,
        out: Outcome,
        t0: float,
    ) -> None:
        runtime = self._runtime()
        raw = await read_body(scope, receive, runtime.config.server.max_body_bytes)
        body = parse_body(raw)
        model = body.get("model")
        if not isinstance(model, str) or not model:
            raise BadRequestError("you must provide a model parameter", param="model")
        route = runtime.routes.get(model)
        if route is None:
            raise ModelNotFoundError(
                f"The model `{model}` does not exist. Models served here: {sorted(runtime.routes)}",
                param="model",
            )
        out.route = model
        out.stream = bool(body.get("stream"))
        cluster_only: str | None = None
        if runtime.config.residency:
            rule = residency_rule(runtime.config.residency, model, header_values(scope))
            if rule is not None and rule.allow == "cluster":
                cluster_only = rule_label(rule, runtime.config.residency.index(rule))
        now = self._clock()
        stale_after = runtime.config.server.scrape.stale_after
        try:
            plan = plan_request(
                route,
                api=api,
                cluster_only=cluster_only,
                saturated=runtime.saturated.get(model, False),
                now=now,
                stale_after=stale_after,
                rand=self._rand(),
            )
        except NoBackendError as e:
            if cluster_only is not None:
                self._metrics.residency_blocked.labels(model, cluster_only).inc()
                raise UnavailableError(str(e), code="residency_blocked") from None
            raise UnavailableError(str(e)) from None
        if plan.overflowed:
            self._metrics.overflow.labels(model, plan.attempts[0].backend.name).inc()

        inject_usage = api != "responses" and wants_usage_injection(body)
        encoded: dict[int, bytes] = {}
        last: AttemptFailure | None = None
        last_backend = "none"
        task = asyncio.current_task()
        assert task is not None
        watcher = DisconnectWatcher(receive, task)
        try:
            for attempt in plan.attempts:
                b = attempt.backend
                payload = encoded.get(id(b))
                if payload is None:
                    payload = encoded[id(b)] = encode_for(body, raw, b, api, inject_usage)
                out.attempts += 1
                ep = attempt.endpoint
                ep.inflight += 1
                try:
                    try:
                        up = await open_attempt(
                            self._pool(),
                            attempt,
                            path=path,
                            body=payload,
                            request_id=out.request_id,
                            timeouts=route.config.timeouts,
                            stream=out.stream,
                        )
                    except AttemptFailure as f:
                        last, last_backend = f, b.name
                        self._failed(route, attempt, f, out)
                        if f.kind is None or f.kind not in route.config.fallback.on:
                            break
                        continue
                    ep.record_success()
                    out.backend = b.name
                    await self._respond(
                        up, send, out, b, route, inject_usage and b.flavor.stream_usage, t0, watcher
                    )
                    return
                finally:
                    ep.inflight -= 1
        except asyncio.CancelledError:
            if watcher.disconnected:
                task.uncancel()
                out.status = "499"  # client closed the request (nginx's convention)
                return
            raise
        finally:
            watcher.stop()
        if last is not None and last.answer is not None:
            out.backend = last_backend  # the client sees (and metrics count) whose answer this is
        await self._exhausted(send, out, route, cluster_only, last)

    def _failed(self, route: RouteRuntime, attempt: Attempt, f: AttemptFailure, out: Outcome) -> None:
        ep: Endpoint = attempt.endpoint
        health = self._runtime().config.server.health
        ejected = ep.record_failure(
            now=self._clock(),
            failures_to_eject=health.failures_to_eject,
            cooldown=health.cooldown,
            immediate=f.eject_now,
            retry_after=f.retry_after if f.kind is FailureKind.RATE_LIMITED else None,
        )
        kind = f.kind.value if f.kind is not None else "other"
        if ejected:
            self._metrics.ejections.labels(attempt.backend.name, kind).inc()
        self._metrics.fallback.labels(route.model, attempt.backend.name, kind).inc()
        out.failures.append(f"{attempt.backend.name}@{ep.url}: {f.reason}")

    async def _exhausted(
        self,
        send: Send,
        out: Outcome,
        route: RouteRuntime,
        cluster_only: str | None,
        last: AttemptFailure | None,
    ) -> None:
        if last is not None and last.answer is not None:
            a = last.answer
            out.status = str(a.status)
            extra = [(b"retry-after", a.retry_after)] if a.retry_after else []
            await send_json_bytes(
                send,
                a.status,
                a.body,
                request_id=out.request_id,
                backend=out.backend,
                content_type=a.content_type,
                extra=extra,
            )
            return
        tried = "; ".join(out.failures) or "no attempt was made"
        if cluster_only is not None:
            self._metrics.residency_blocked.labels(route.model, cluster_only).inc()
            err = UnavailableError(
                f"residency rule {cluster_only!r} restricts this request to in-cluster backends, "
                f"and every in-cluster attempt failed: {tried}",
                code="residency_blocked",
            )
        else:
            err = UnavailableError(
                f"every attempt for model {route.model!r} failed: {tried}", code="upstream_failed"
            )
        out.status = str(err.status)
        await send_error(send, err, request_id=out.request_id, backend=out.backend)

    async def _respond(
        self,
        up: Upstream,
        send: Send,
        out: Outcome,
        b: BackendRuntime,
        route: RouteRuntime,
        strip_usage: bool,
        t0: float,
        watcher: DisconnectWatcher,
    ) -> None:
        m = self._metrics
        rewrite = providers.rewrites_response(b.flavor)
        headers = [
            (b"content-type", up.content_type),
            (b"x-gptoss-backend", b.name.encode()),
            (b"x-request-id", out.request_id.encode()),
        ]
        out.status = str(up.status)
        if not (out.stream and up.status == 200):
            body = providers.rewrite_response_bytes(up.body, b.flavor) if rewrite else up.body
            if up.status == 200:
                self._count_usage(body, route, b)
            headers.append((b"content-length", str(len(body)).encode()))
            watcher.stop()
            out.started = True
            await send({"type": "http.response.start", "status": up.status, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            self._child(m.latency, route.model, b.name).observe(time.perf_counter() - t0)
            return
        self._child(m.ttft, route.model, b.name).observe(time.perf_counter() - t0)
        headers += [(b"cache-control", b"no-cache"), (b"x-accel-buffering", b"no")]
        out.started = True
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        framer = EventFramer()
        idle = route.config.timeouts.idle
        usage = _LastUsage()
        try:
            await self._forward(framer.feed(up.first), send, b, strip_usage, rewrite, usage)
            async for chunk in up.rest(idle):
                await self._forward(framer.feed(chunk), send, b, strip_usage, rewrite, usage)
            tail = framer.flush()
            watcher.stop()
            await send({"type": "http.response.body", "body": tail})
        except (UpstreamError, TimeoutError) as e:
            # After the first byte there is no fallback: end the stream with an error event
            # (the openai client raises APIError on it) instead of a silent truncation.
            await self._cut(send, out, route, b, watcher, e)
        except Exception as e:
            # A bug must not leave a truncated 200 either: same event, status and log line.
            log.error(
                "internal error while streaming",
                exc_info=(type(e), e, e.__traceback__),
                extra={"request_id": out.request_id, "route": out.route, "backend": b.name},
            )
            await self._cut(send, out, route, b, watcher, e)
        finally:
            await up.aclose()
            # Counted once per response, from the last usage seen: vLLM's continuous usage
            # stats (stream_options.continuous_usage_stats, --enable-force-include-usage) put
            # the cumulative usage on every chunk.
            if usage.value is not None:
                u = usage.value
                self._tokens(route, b, u.prompt_tokens, u.completion_tokens, u.reasoning_tokens)
        self._child(m.latency, route.model, b.name).observe(time.perf_counter() - t0)

    async def _cut(
        self,
        send: Send,
        out: Outcome,
        route: RouteRuntime,
        b: BackendRuntime,
        watcher: DisconnectWatcher,
        e: BaseException,
    ) -> None:
        out.status = "aborted"
        out.failures.append(f"{b.name}: stream broken after first byte: {type(e).__name__}")
        watcher.stop()
        # If the client is gone too, the send fails; the access line still says "aborted".
        with contextlib.suppress(Exception):
            await send({"type": "http.response.body", "body": stream_error_event(route.config.model, e)})

    async def _forward(
        self,
        events: list[bytes],
        send: Send,
        b: BackendRuntime,
        strip: bool,
        rewrite: bool,
        usage: _LastUsage,
    ) -> None:
        if not events:
            return
        kept = []
        for ev in events:
            seen = inspect_event(ev)
            if seen.usage is not None:
                usage.value = seen.usage
                if strip and seen.is_usage_chunk:
                    continue
            kept.append(providers.rewrite_response_bytes(ev, b.flavor) if rewrite else ev)
        if kept:
            await send({"type": "http.response.body", "body": b"".join(kept), "more_body": True})

    def _count_usage(self, body: bytes, route: RouteRuntime, b: BackendRuntime) -> None:
        if b'"usage"' not in body:
            return
        try:
            obj = json.loads(body)
        except (ValueError, RecursionError):
            return
        u = usage_from_object(obj)
        if u is not None:
            self._tokens(route, b, u.prompt_tokens, u.completion_tokens, u.reasoning_tokens)

    def _tokens(
        self, route: RouteRuntime, b: BackendRuntime, prompt: int, completion: int, reasoning: int
    ) -> None:
        t = self._metrics.tokens
        if prompt:
            self._child(t, route.model, b.name, "prompt").inc(prompt)
        if completion:
            self._child(t, route.model, b.name, "completion").inc(completion)
        if reasoning:
            self._child(t, route.model, b.name, "reasoning").inc(reasoning)

    def _child(self, metric: Any, *labels: str) -> Any:
        """``metric.labels(*labels)``, memoised: prometheus_client's ``labels()`` takes a lock
        and validates on every call, which showed up in the request-path profile."""
        key = (id(metric), labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child
