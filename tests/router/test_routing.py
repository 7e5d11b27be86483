"""Weighted split, load-aware endpoint choice, overflow with hysteresis, stale scrapes."""

from __future__ import annotations

import collections
import threading
import time

import httpx
import pytest

from tests.router.conftest import MODEL, StartRouter
from tests.support.procs import Router, Sim, cluster_backend, config, external_backend, route

BODY = {"model": MODEL, "messages": [{"role": "user", "content": "route me"}]}


def backends_of(router: Router, n: int) -> collections.Counter[str]:
    seen: collections.Counter[str] = collections.Counter()
    with httpx.Client(trust_env=False, timeout=10) as c:
        for _ in range(n):
            r = c.post(router.url + "/v1/chat/completions", json=BODY)
            assert r.status_code == 200, r.text
            seen[r.headers["x-gptoss-backend"]] += 1
    return seen


def test_weighted_split_within_tolerance(start_router: StartRouter, local: Sim, hosted: Sim) -> None:
    router = start_router(
        config(
            route(
                MODEL,
                cluster_backend("local", local, weight=70),
                external_backend("hosted", hosted, weight=30),
            )
        )
    )
    seen = backends_of(router, 600)
    # 600 draws at p=0.3: sd = 0.0187, so +-0.08 is over 4 sd.
    assert abs(seen["hosted"] / 600 - 0.30) < 0.08, seen
    assert seen["local"] + seen["hosted"] == 600
    assert hosted.stats()["requests"] == seen["hosted"]


def test_least_loaded_endpoint_wins(start_router: StartRouter, local: Sim, local2: Sim) -> None:
    router = start_router(config(route(MODEL, cluster_backend("pool", local, local2))))
    local.configure(waiting=20, running=8)
    router.wait_for(lambda: router.metric("gptoss_router_endpoint_queue_depth", endpoint=local.url) == 20)
    backends_of(router, 20)
    assert local.stats()["requests"] == 0
    assert local2.stats()["requests"] == 20
    local.configure(waiting=0, running=0)
    local2.configure(waiting=30, running=0)
    router.wait_for(lambda: router.metric("gptoss_router_endpoint_queue_depth", endpoint=local2.url) == 30)
    backends_of(router, 10)
    assert local.stats()["requests"] == 10
    assert local2.stats()["requests"] == 20


def test_metrics_summed_over_engines_and_deprecated_names(start_router: StartRouter, local: Sim) -> None:
    router = start_router(config(route(MODEL, cluster_backend("local", local))))
    local.configure(waiting=12, kv_usage=0.5, engines=4, deprecated_metrics=True)
    router.wait_for(lambda: router.metric("gptoss_router_endpoint_queue_depth", endpoint=local.url) == 12)
    assert router.metric("gptoss_router_endpoint_kv_cache_usage", endpoint=local.url) == pytest.approx(0.5)


def overflow_router(start_router: StartRouter, local: Sim, hosted: Sim, queue_above: int = 2) -> Router:
    return start_router(
        config(
            route(
                MODEL,
                cluster_backend("local", local, weight=1),
                external_backend("hosted", hosted, weight=0),
                overflow={
                    "to": "hosted",
                    "when": {"queueDepthAbove": queue_above},
                    "recoverBelow": {"queueDepth": 0},
                },
            ),
            residency=[
                {
                    "name": "restricted",
                    "match": {"headers": {"x-data-class": "restricted"}},
                    "allow": "cluster",
                }
            ],
        )
    )


def test_overflow_under_real_load_and_recovery(start_router: StartRouter, local: Sim, hosted: Sim) -> None:
    # local runs one request at a time, each for 1.5 s: six concurrent clients put five in its
    # queue (vllm:num_requests_waiting = 5 > 4), so the pool is saturated and new traffic spills.
    # The threshold needs all six in the queue, so a slow-starting client thread cannot be the
    # one that spills.
    local.configure(max_num_seqs=1, latency=1.5)
    router = overflow_router(start_router, local, hosted, queue_above=4)
    results: list[str] = []

    def slow_client() -> None:
        with httpx.Client(trust_env=False, timeout=30) as c:
            results.append(c.post(router.url + "/v1/chat/completions", json=BODY).headers["x-gptoss-backend"])

    threads = [threading.Thread(target=slow_client) for _ in range(6)]
    for t in threads:
        t.start()
    router.wait_for(
        lambda: router.metric("gptoss_router_pool_saturated", route=MODEL) == 1, what="saturation"
    )
    seen = backends_of(router, 5)
    assert seen == {"hosted": 5}
    assert router.metric("gptoss_router_overflow_total", route=MODEL, backend="hosted") == 5
    # Residency still wins over overflow: restricted traffic waits in the local queue.
    with httpx.Client(trust_env=False, timeout=30) as c:
        r = c.post(router.url + "/v1/chat/completions", json=BODY, headers={"x-data-class": "restricted"})
    assert r.headers["x-gptoss-backend"] == "local"
    for t in threads:
        t.join()
    assert results == ["local"] * 6
    router.wait_for(lambda: router.metric("gptoss_router_pool_saturated", route=MODEL) == 0, what="recovery")
    local.configure(latency=0.0, max_num_seqs=256)
    assert backends_of(router, 3) == {"local": 3}


def test_hysteresis_holds_overflow_until_below_the_recovery_threshold(
    start_router: StartRouter, local: Sim, hosted: Sim
) -> None:
    router = overflow_router(start_router, local, hosted)
    local.configure(waiting=5)
    router.wait_for(lambda: router.metric("gptoss_router_pool_saturated", route=MODEL) == 1)
    local.configure(waiting=1)  # below the entry threshold (2) but above recovery (0)
    router.wait_for(lambda: router.metric("gptoss_router_endpoint_queue_depth", endpoint=local.url) == 1)
    time.sleep(0.3)
    assert router.metric("gptoss_router_pool_saturated", route=MODEL) == 1
    assert backends_of(router, 3) == {"hosted": 3}
    local.configure(waiting=0)
    router.wait_for(lambda: router.metric("gptoss_router_pool_saturated", route=MODEL) == 0)
    assert backends_of(router, 3) == {"local": 3}


def test_stale_scrapes_count_as_no_headroom(start_router: StartRouter, local: Sim, hosted: Sim) -> None:
    router = overflow_router(start_router, local, hosted)
    router.wait_for(lambda: router.metric("gptoss_router_scrapes_total", result="ok") > 0)
    assert backends_of(router, 2) == {"local": 2}
    local.configure(metrics_status=500)  # /metrics breaks; the API still works
    # staleAfter is 2 s in the test config: after that the pool has no known headroom.
    router.wait_for(lambda: router.metric("gptoss_router_pool_saturated", route=MODEL) == 1, timeout=6)
    assert router.metric("gptoss_router_scrape_age_seconds", endpoint=local.url) > 2
    assert backends_of(router, 2) == {"hosted": 2}
    local.configure(metrics_status=200)
    router.wait_for(lambda: router.metric("gptoss_router_pool_saturated", route=MODEL) == 0)
    assert backends_of(router, 2) == {"local": 2}
