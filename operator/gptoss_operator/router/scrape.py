"""Scraping vLLM /metrics of every in-cluster endpoint, then re-deciding pool saturation.

One loop for all endpoints: every ``scrape.interval`` all targets are fetched concurrently with
``scrape.timeout`` each. A refused connection is also a health signal (the endpoint is ejected
for the cooldown); a slow or malformed answer only leaves the old sample to go stale.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import httpx

from gptoss_operator.router.load import Endpoint, MetricsParseError, next_saturation, parse_vllm_metrics
from gptoss_operator.router.metrics import RouterMetrics
from gptoss_operator.router.state import Runtime

log = logging.getLogger("gptoss_operator.router.scrape")


async def scrape_one(
    client: httpx.AsyncClient,
    ep: Endpoint,
    runtime: Runtime,
    metrics: RouterMetrics,
    now: Callable[[], float],
) -> None:
    cfg = runtime.config.server
    try:
        r = await client.get(ep.url + "/metrics", timeout=cfg.scrape.timeout)
        r.raise_for_status()
        sample = parse_vllm_metrics(r.text)
    except httpx.ConnectError:
        metrics.scrapes.labels("connect_error").inc()
        if ep.record_failure(
            now=now(),
            failures_to_eject=cfg.health.failures_to_eject,
            cooldown=cfg.health.cooldown,
            immediate=True,
        ):
            metrics.ejections.labels("scrape", "connectError").inc()
        return
    except (httpx.HTTPError, MetricsParseError) as e:
        metrics.scrapes.labels("error").inc()
        log.debug("scrape failed", extra={"endpoint": ep.url, "error": f"{type(e).__name__}: {e}"})
        return
    metrics.scrapes.labels("ok").inc()
    ep.record_scrape(sample, now())


def update_saturation(runtime: Runtime, now: float) -> None:
    stale_after = runtime.config.server.scrape.stale_after
    for model, route in runtime.routes.items():
        ov = route.config.overflow
        if ov is None:
            continue
        was = runtime.saturated.get(model, False)
        enter = (ov.when.queue_depth_above, ov.when.kv_cache_usage_above)
        is_now = next_saturation(
            route.pool(),
            was_saturated=was,
            now=now,
            stale_after=stale_after,
            enter=enter,
            leave=ov.recovery(),
        )
        if is_now != was:
            log.warning(
                "in-cluster pool saturated; overflowing" if is_now else "in-cluster pool recovered",
                extra={"route": model, "overflow_to": ov.to},
            )
        runtime.saturated[model] = is_now


async def scrape_loop(
    client: httpx.AsyncClient,
    runtime: Callable[[], Runtime],
    metrics: RouterMetrics,
    now: Callable[[], float],
) -> None:
    while True:
        rt = runtime()
        targets = rt.scrape_targets()
        if targets:
            await asyncio.gather(*(scrape_one(client, ep, rt, metrics, now) for ep in targets))
        update_saturation(rt, now())
        await asyncio.sleep(rt.config.server.scrape.interval)
