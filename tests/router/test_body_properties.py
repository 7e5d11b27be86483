"""Property-based request bodies against the real router process: whatever the body, the
answer is a served completion, an upstream's own answer, or the router's own error in the
OpenAI shape; never a router 500, never a crash, never a non-JSON log line."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.procs import Router, Sim, cluster_backend, config, external_backend, route

MODELS = ["gpt-oss-20b", "gpt-oss-120b"]
PATHS = ["/v1/chat/completions", "/v1/completions", "/v1/responses"]
SETTINGS = settings(max_examples=150, deadline=None, database=None, suppress_health_check=list(HealthCheck))

scalars = st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=30)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=25,
)
# Keys the router reads or rewrites, with values of any type.
known = st.fixed_dictionaries(
    {},
    optional={
        "model": st.sampled_from(MODELS) | json_values,
        "stream": st.booleans() | json_values,
        "stream_options": st.fixed_dictionaries({}, optional={"include_usage": json_values}) | json_values,
        "messages": st.lists(
            st.fixed_dictionaries(
                {"role": st.sampled_from(["user", "assistant", "system"]) | json_values},
                optional={"content": json_values, "reasoning": json_values, "reasoning_content": json_values},
            )
            | json_values,
            max_size=3,
        )
        | json_values,
        "reasoning_effort": json_values,
        "reasoning": json_values,
        "frequency_penalty": json_values,
        "input": json_values,
        "prompt": json_values,
    },
)
bodies = (
    known.map(lambda d: json.dumps(d, allow_nan=True).encode())
    | json_values.map(lambda v: json.dumps(v).encode())
    | st.binary(max_size=200)
)


@pytest.fixture(scope="module")
def router(sims: dict[str, Sim], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Router]:
    sims["local"].reset()
    sims["hosted"].reset()
    cfg = config(
        route(MODELS[0], cluster_backend("local", sims["local"])),
        route(MODELS[1], external_backend("hosted", sims["hosted"], flavor="cerebras")),
    )
    r = Router(cfg, workdir=Path(tmp_path_factory.mktemp("router")))
    yield r
    r.stop()


@SETTINGS
@given(path=st.sampled_from(PATHS), body=bodies)
def test_any_body_is_answered_in_shape(router: Router, path: str, body: bytes) -> None:
    r = router.http.post(path, content=body, headers={"content-type": "application/json"})
    if r.status_code >= 400 and "x-gptoss-backend" not in r.headers:
        # The router's own answer: OpenAI's error shape, never a 500.
        assert r.status_code in (400, 404, 413, 503), (r.status_code, r.text[:300])
        err = r.json()["error"]
        assert set(err) == {"message", "type", "param", "code"}
    if r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream"):
        assert b"stream_interrupted" not in r.content


def test_after_the_properties_the_router_is_clean(router: Router) -> None:
    assert router.proc.poll() is None
    ok = router.http.post(PATHS[0], json={"model": MODELS[0], "messages": [{"role": "user", "content": "x"}]})
    assert ok.status_code == 200
    assert router.metric("gptoss_router_requests_total", status="500", backend="none") == 0
    bad = [ln for ln in router.logs().splitlines() if ln.strip() and not ln.startswith("{")]
    assert not bad, bad[:5]
    assert not [x for x in router.log_records() if str(x.get("msg", "")).startswith("internal error")]
