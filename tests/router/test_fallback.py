"""Fallback before the first byte, Retry-After, passive health, residency under full outage."""

from __future__ import annotations

import time
from typing import Any

import httpx
import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from devtools.ports import free_port
from tests.router.conftest import MODEL, StartRouter
from tests.support.procs import Router, Sim, cluster_backend, config, external_backend, route

MESSAGES: list[ChatCompletionMessageParam] = [{"role": "user", "content": "fall back"}]
BODY = {"model": MODEL, "messages": MESSAGES}
RESIDENCY = [{"name": "restricted", "match": {"headers": {"x-data-class": "restricted"}}, "allow": "cluster"}]


def fallback_router(start_router: StartRouter, local: Sim | str, hosted: Sim, **route_extra: Any) -> Router:
    route_extra.setdefault("timeouts", {"connect": "1s", "firstByte": "700ms", "idle": "2s"})
    return start_router(
        config(
            route(
                MODEL,
                cluster_backend("local", local, weight=1),
                external_backend("hosted", hosted, weight=0),
                **route_extra,
            ),
            residency=RESIDENCY,
            health={"failuresToEject": 3, "cooldown": "30s"},
        )
    )


def client(router: Router) -> openai.OpenAI:
    return router.openai()


@pytest.mark.parametrize(
    ("failure", "reason"),
    [
        ({"fail_status": 500}, "5xx"),
        ({"fail_status": 503}, "5xx"),
        ({"fail_status": 429, "retry_after": "1"}, "429"),
        ({"drop": True}, "connectError"),
        ({"hang": True}, "timeout"),
    ],
    ids=["500", "503", "429", "dropped", "hang"],
)
@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_falls_back_before_the_first_byte(
    start_router: StartRouter, local: Sim, hosted: Sim, failure: dict[str, Any], reason: str, stream: bool
) -> None:
    local.configure(**failure)
    router = fallback_router(start_router, local, hosted)
    create = client(router).chat.completions.with_raw_response.create
    if stream:
        raw_stream = create(model=MODEL, messages=MESSAGES, stream=True)
        backend = raw_stream.headers["x-gptoss-backend"]
        text = "".join(c.choices[0].delta.content or "" for c in raw_stream.parse() if c.choices)
    else:
        raw = create(model=MODEL, messages=MESSAGES)
        backend = raw.headers["x-gptoss-backend"]
        text = raw.parse().choices[0].message.content or ""
    assert backend == "hosted"
    assert text.startswith("tok0")
    assert local.stats()["requests"] == 1
    assert hosted.stats()["requests"] == 1
    assert router.metric("gptoss_router_fallback_total", backend="local", reason=reason) == 1


def test_retry_after_keeps_traffic_away_until_it_passes(
    start_router: StartRouter, local: Sim, hosted: Sim
) -> None:
    local.configure(fail_status=429, retry_after="2", fail_count=1)  # only the first request fails
    router = fallback_router(start_router, local, hosted)
    c = client(router)
    first = c.chat.completions.with_raw_response.create(model=MODEL, messages=MESSAGES)
    assert first.headers["x-gptoss-backend"] == "hosted"
    for _ in range(3):  # local is healthy again, but asked for 2 s of quiet
        r = c.chat.completions.with_raw_response.create(model=MODEL, messages=MESSAGES)
        assert r.headers["x-gptoss-backend"] == "hosted"
    assert local.stats()["requests"] == 1
    time.sleep(2.2)
    r = c.chat.completions.with_raw_response.create(model=MODEL, messages=MESSAGES)
    assert r.headers["x-gptoss-backend"] == "local"


def test_last_429_reaches_the_client_with_retry_after(
    start_router: StartRouter, local: Sim, hosted: Sim
) -> None:
    local.configure(fail_status=429, retry_after="7")
    hosted.configure(fail_status=429, retry_after="9")
    router = fallback_router(start_router, local, hosted)
    r = router.http.post("/v1/chat/completions", json=BODY)
    assert r.status_code == 429
    assert r.headers["retry-after"] == "9"
    assert "injected failure from hosted" in r.json()["error"]["message"]


def test_failure_kinds_not_listed_do_not_fall_back(
    start_router: StartRouter, local: Sim, hosted: Sim
) -> None:
    local.configure(fail_status=500)
    router = fallback_router(start_router, local, hosted, fallback={"on": ["connectError"], "maxAttempts": 2})
    with pytest.raises(openai.InternalServerError) as e:
        client(router).chat.completions.create(model=MODEL, messages=MESSAGES)
    assert e.value.response.headers["x-gptoss-backend"] == "local"
    assert "injected failure from local" in str(e.value)
    assert hosted.stats()["requests"] == 0


def test_max_attempts_bounds_the_tries(
    start_router: StartRouter, local: Sim, local2: Sim, hosted: Sim
) -> None:
    local.configure(fail_status=500)
    local2.configure(fail_status=500)
    router = start_router(
        config(
            route(
                MODEL,
                cluster_backend("pool", local, local2, weight=1),
                external_backend("hosted", hosted, weight=0),
                fallback={"maxAttempts": 2},
            )
        )
    )
    r = router.http.post("/v1/chat/completions", json=BODY)
    assert r.status_code == 500
    assert local.stats()["requests"] + local2.stats()["requests"] == 2
    assert hosted.stats()["requests"] == 0


def test_no_fallback_after_the_first_byte(start_router: StartRouter, local: Sim, hosted: Sim) -> None:
    local.configure(drop_after_tokens=2)
    router = fallback_router(start_router, local, hosted)
    got: list[str] = []

    def read_all() -> None:
        for chunk in client(router).chat.completions.create(model=MODEL, messages=MESSAGES, stream=True):
            got.append(chunk.choices[0].delta.content or "")

    with pytest.raises(openai.APIError, match="upstream connection lost"):
        read_all()
    assert got, "the client saw the first events before the break"
    assert hosted.stats()["requests"] == 0
    assert router.metric("gptoss_router_requests_total", backend="local", status="aborted") == 1


def test_passive_health_ejects_after_repeated_failures(
    start_router: StartRouter, local: Sim, hosted: Sim
) -> None:
    local.configure(fail_status=500)
    router = fallback_router(start_router, local, hosted)
    for _ in range(5):
        assert (
            client(router)
            .chat.completions.with_raw_response.create(model=MODEL, messages=MESSAGES)
            .headers["x-gptoss-backend"]
            == "hosted"
        )
    # failuresToEject is 3: after three failures local is skipped for the 30 s cooldown.
    assert local.stats()["requests"] == 3
    assert router.metric("gptoss_router_backend_healthy", backend="local") == 0
    assert router.metric("gptoss_router_ejections_total", backend="local", reason="5xx") == 1


def test_residency_fails_closed_when_every_cluster_backend_is_down(
    start_router: StartRouter, hosted: Sim
) -> None:
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens here: connection refused
    router = fallback_router(start_router, dead, hosted)
    c = client(router)
    with pytest.raises(openai.APIStatusError) as e:
        c.chat.completions.create(
            model=MODEL, messages=MESSAGES, extra_headers={"x-data-class": "restricted"}
        )
    assert e.value.status_code == 503
    body = e.value.body
    assert isinstance(body, dict)
    assert body["code"] == "residency_blocked"
    assert "residency rule 'restricted'" in body["message"]
    assert hosted.stats()["requests"] == 0
    # Even with the endpoint ejected (panic mode), restricted traffic never goes external.
    with pytest.raises(openai.APIStatusError):
        c.responses.create(model=MODEL, input="x", stream=True, extra_headers={"x-data-class": "restricted"})
    assert hosted.stats()["requests"] == 0
    assert router.metric("gptoss_router_residency_blocked_total", rule="restricted") == 2
    # Unrestricted traffic falls back to the provider as usual.
    ok = c.chat.completions.with_raw_response.create(model=MODEL, messages=MESSAGES)
    assert ok.headers["x-gptoss-backend"] == "hosted"


def test_residency_with_only_external_backends_is_refused_up_front(
    start_router: StartRouter, hosted: Sim
) -> None:
    router = start_router(config(route(MODEL, external_backend("hosted", hosted)), residency=RESIDENCY))
    r = httpx.post(
        router.url + "/v1/chat/completions",
        json=BODY,
        headers={"x-data-class": "restricted"},
        trust_env=False,
    )
    assert r.status_code == 503
    err = r.json()["error"]
    assert err["code"] == "residency_blocked"
    assert "allows cluster only" in err["message"]
    assert hosted.stats()["requests"] == 0
