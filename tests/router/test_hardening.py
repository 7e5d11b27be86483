"""Hardening fixes, each against the real router process: residency over repeated headers,
key files that would inject headers, slow clients vs the idle timeout, usage counted once,
429 and connect-timeout health/fallback, and every error in the OpenAI shape."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.router.conftest import MODEL, StartRouter
from tests.router.rawhttp import exchange, parse_response, read_all, request_bytes
from tests.router.scripted_upstream import ScriptedUpstream, serve_big_stream
from tests.support.procs import Router, Sim, cluster_backend, config, external_backend, route
from tests.unit.router.conftest import reply

CHAT = "/v1/chat/completions"
BODY = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}

# Every way of sending two values of one header that HTTP allows: separate lines in both
# orders, one comma-separated line in both orders, and a mix.
REPEATED_VALUE_VARIANTS: list[list[tuple[str, str]]] = [
    [("x-data-class", "restricted"), ("x-data-class", "public")],
    [("x-data-class", "public"), ("x-data-class", "restricted")],
    [("x-data-class", "public, restricted")],
    [("x-data-class", "restricted,public")],
    [("X-Data-Class", "public"), ("x-data-class", "public,restricted")],
]


def records_for(router: Router, request_id: str) -> list[dict[str, Any]]:
    return [r for r in router.log_records() if r.get("request_id") == request_id]


def assert_only_json_lines(router: Router) -> None:
    bad = [ln for ln in router.logs().splitlines() if ln.strip() and not ln.startswith("{")]
    assert not bad, f"non-JSON output from the router: {bad[:5]}"


@pytest.mark.parametrize(
    "rules",
    [
        [{"name": "restricted", "match": {"headers": {"x-data-class": "restricted"}}, "allow": "cluster"}],
        # An exemption listed first must not let a request that also says "restricted" out.
        [
            {"name": "public", "match": {"headers": {"x-data-class": "public"}}, "allow": "any"},
            {"name": "restricted", "match": {"headers": {"x-data-class": "restricted"}}, "allow": "cluster"},
        ],
    ],
    ids=["restricted-rule-only", "public-exemption-first"],
)
def test_repeated_residency_header_never_reaches_a_hosted_backend(
    start_router: StartRouter, local: Sim, hosted: Sim, rules: list[dict[str, Any]]
) -> None:
    router = start_router(
        config(
            route(
                MODEL,
                cluster_backend("local", local, weight=1),
                external_backend("hosted", hosted, weight=1000),
            ),
            residency=rules,
        )
    )
    tried = 0
    for variant in REPEATED_VALUE_VARIANTS:
        for _ in range(4):
            status, headers, _ = exchange(router.port, CHAT, BODY, variant)
            tried += 1
            assert status == 200
            assert headers["x-gptoss-backend"] == "local", variant
    assert hosted.stats()["requests"] == 0
    assert local.stats()["requests"] == tried
    # Sanity: the hosted backend does take unrestricted traffic in this configuration.
    status, headers, _ = exchange(router.port, CHAT, BODY, [("x-data-class", "public")])
    assert (status, headers["x-gptoss-backend"]) == (200, "hosted")


@pytest.mark.parametrize(
    "content",
    [
        "sk-good\r\nx-injected: yes\n",
        "sk-good\nx-injected: yes",
        "sk-good\rx-injected: yes",
        "sk-good x-injected",
        "sk-good\x00x",
        "sk-ключ",  # not latin-1: used to be a plain-text 500 from the header encoder
    ],
    ids=["crlf-second-line", "lf-second-line", "bare-cr", "space-inside", "nul", "non-latin-1"],
)
def test_a_bad_key_file_makes_the_backend_unavailable_and_injects_nothing(
    start_router: StartRouter, hosted: Sim, tmp_path: Any, content: str
) -> None:
    key_file = tmp_path / "provider-key"
    key_file.write_text(content, encoding="utf-8")
    router = start_router(config(route(MODEL, external_backend("hosted", hosted, apiKeyFile=str(key_file)))))
    r = router.http.post(CHAT, json=BODY)
    assert r.status_code == 503
    err = r.json()["error"]
    assert err["code"] == "no_backend_available"
    assert str(key_file) in err["message"]
    assert "expected one token" in err["message"]
    assert "sk-" not in r.text
    assert hosted.stats()["requests"] == 0
    problems = [rec for rec in router.log_records() if rec.get("msg") == "backend unusable: API key problem"]
    assert len(problems) == 1
    assert str(key_file) in problems[0]["problem"]
    assert "sk-" not in router.logs()
    assert "x-injected" not in router.logs()
    assert_only_json_lines(router)
    # Fixing the file brings the backend back, and exactly the one token is sent.
    key_file.write_text("sk-fixed\n")
    router.wait_for(lambda: router.http.post(CHAT, json=BODY).status_code == 200, what="fixed key")
    assert set(hosted.stats()["keys_seen"]) == {"sk-fixed"}
    assert "x-injected" not in hosted.stats()["last_headers"]


@pytest.fixture
def fast_big_upstream() -> Iterator[ScriptedUpstream]:
    up = ScriptedUpstream(serve_big_stream)
    yield up
    up.stop()


def test_a_slow_client_is_not_cut_by_the_upstream_idle_timeout(
    start_router: StartRouter, fast_big_upstream: ScriptedUpstream
) -> None:
    # 8 MB of events: more than every buffer between the upstream and this client holds (the
    # kernel grows a loopback send buffer up to 4 MB), so the router spends seconds waiting to
    # write to the client while the upstream is anything but idle.
    router = start_router(
        config(
            route(
                MODEL,
                cluster_backend("local", fast_big_upstream.url, metrics=False),
                timeouts={"idle": "300ms"},
            )
        )
    )
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(("127.0.0.1", router.port))
    try:
        s.sendall(request_bytes(CHAT, {**BODY, "stream": True}, [("x-request-id", "slow-reader")]))
        time.sleep(2.0)  # more than six idle timeouts without reading a byte
        status, _, body = parse_response(read_all(s))
    finally:
        s.close()
    assert status == 200
    assert b"stream_interrupted" not in body
    assert body.rstrip().endswith(b"data: [DONE]")
    assert body.count(b'"content":"') == 128
    router.wait_for(lambda: records_for(router, "slow-reader"), what="access line")
    (rec,) = records_for(router, "slow-reader")
    assert rec["status"] == "200"
    assert_only_json_lines(router)


def test_every_cut_stream_ends_with_the_event_an_aborted_status_and_one_json_line(
    start_router: StartRouter, local: Sim
) -> None:
    router = start_router(config(route(MODEL, cluster_backend("local", local), timeouts={"idle": "500ms"})))
    cases: dict[str, dict[str, Any]] = {
        "dropped": {"drop_after_tokens": 3},
        "idle": {"itl": 2.0, "output_tokens": 3},
    }
    for request_id, behaviour in cases.items():
        local.reset(**behaviour)
        status, _, body = exchange(
            router.port, CHAT, {**BODY, "stream": True}, [("x-request-id", request_id)]
        )
        assert status == 200
        events = [e for e in body.split(b"\n\n") if e.strip()]
        last = json.loads(events[-1].removeprefix(b"data: "))
        assert last["error"]["code"] == "stream_interrupted", request_id
        router.wait_for(lambda rid=request_id: records_for(router, rid), what="access line")
        recs = records_for(router, request_id)
        assert len(recs) == 1, recs
        assert recs[0]["status"] == "aborted"
        assert recs[0]["level"] == "warning"
    assert router.metric("gptoss_router_requests_total", status="aborted") == 2
    assert_only_json_lines(router)


def _continuous_usage_stream(n: int) -> bytes:
    """vLLM with continuous_usage_stats: cumulative usage on every chunk, then the usage chunk."""
    out = []
    for i in range(1, n + 1):
        chunk = {
            "id": "c",
            "object": "chat.completion.chunk",
            "created": 0,
            "model": MODEL,
            "choices": [{"index": 0, "delta": {"content": f"t{i} "}, "finish_reason": None}],
            "usage": {"prompt_tokens": 3, "completion_tokens": i, "total_tokens": 3 + i},
        }
        out.append(b"data: " + json.dumps(chunk, separators=(",", ":")).encode() + b"\n\n")
    final = {
        "id": "c",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": MODEL,
        "choices": [],
        "usage": {"prompt_tokens": 3, "completion_tokens": n, "total_tokens": 3 + n},
    }
    out.append(b"data: " + json.dumps(final, separators=(",", ":")).encode() + b"\n\ndata: [DONE]\n\n")
    return b"".join(out)


@pytest.fixture
def continuous_usage_upstream() -> Iterator[ScriptedUpstream]:
    async def handler(
        up: ScriptedUpstream, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        while True:
            await up.read(reader)
            body = _continuous_usage_stream(5)
            writer.write(
                b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
                + f"content-length: {len(body)}\r\n\r\n".encode()
                + body
            )
            await writer.drain()

    up = ScriptedUpstream(handler)
    yield up
    up.stop()


def test_continuous_usage_stats_are_counted_once_per_response(
    start_router: StartRouter, continuous_usage_upstream: ScriptedUpstream
) -> None:
    router = start_router(
        config(route(MODEL, cluster_backend("local", continuous_usage_upstream.url, metrics=False)))
    )
    stream_options = {"include_usage": True, "continuous_usage_stats": True}
    for _ in range(2):
        status, _, body = exchange(
            router.port, CHAT, {**BODY, "stream": True, "stream_options": stream_options}
        )
        assert status == 200
        assert body.count(b'"completion_tokens"') == 6  # passed through untouched
    assert router.metric("gptoss_router_tokens_total", kind="completion") == 2 * 5
    assert router.metric("gptoss_router_tokens_total", kind="prompt") == 2 * 3


def test_429_without_retry_after_ejects_at_once(start_router: StartRouter, local: Sim, local2: Sim) -> None:
    local.configure(fail_status=429)
    router = start_router(
        config(
            route(MODEL, cluster_backend("a", local, weight=1000), cluster_backend("b", local2, weight=1)),
            health={"failuresToEject": 3, "cooldown": "30s"},
        )
    )
    r = router.http.post(CHAT, json=BODY)
    assert (r.status_code, r.headers["x-gptoss-backend"]) == (200, "b")
    assert router.metric("gptoss_router_ejections_total", backend="a", reason="429") == 1
    for _ in range(5):
        assert router.http.post(CHAT, json=BODY).headers["x-gptoss-backend"] == "b"
    assert local.stats()["requests"] == 1, "an ejected endpoint gets no traffic"


@pytest.fixture
def blackhole() -> Iterator[str]:
    """A loopback port whose accept queue is full: new connects never complete (SYNs dropped)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    for _ in range(4):
        c = socket.socket()
        c.setblocking(False)
        c.connect_ex(("127.0.0.1", port))
        fillers.append(c)
    time.sleep(0.1)
    yield f"http://127.0.0.1:{port}"
    for c in fillers:
        c.close()
    listener.close()


def test_a_connect_timeout_is_a_timeout_for_fallback(
    start_router: StartRouter, local: Sim, blackhole: str
) -> None:
    router = start_router(
        config(
            route(
                MODEL,
                cluster_backend("dark", blackhole, weight=1000, metrics=False),
                cluster_backend("local", local, weight=1),
                fallback={"on": ["timeout"], "maxAttempts": 2},
                timeouts={"connect": "300ms"},
            )
        )
    )
    r = router.http.post(CHAT, json=BODY)
    assert (r.status_code, r.headers["x-gptoss-backend"]) == (200, "local")
    assert router.metric("gptoss_router_fallback_total", backend="dark", reason="timeout") == 1
    assert router.metric("gptoss_router_ejections_total", backend="dark", reason="timeout") == 1


def test_deeply_nested_json_is_a_400_in_the_openai_shape(start_router: StartRouter, local: Sim) -> None:
    router = start_router(config(route(MODEL, cluster_backend("local", local)), maxBodyBytes=1 << 20))
    depth = 200_000
    body = b'{"model":"' + MODEL.encode() + b'","x":' + b"[" * depth + b"]" * depth + b"}"
    status, headers, data = exchange(router.port, CHAT, body, [("x-request-id", "deep")])
    assert status == 400
    assert headers["content-type"] == "application/json"
    err = json.loads(data)["error"]
    assert set(err) == {"message", "type", "param", "code"}
    assert "nested too deeply" in err["message"]
    assert router.metric("gptoss_router_requests_total", status="400") == 1
    router.wait_for(lambda: records_for(router, "deep"), what="access line")
    assert records_for(router, "deep")[0]["status"] == "400"
    assert_only_json_lines(router)
    assert router.http.post(CHAT, json=BODY).status_code == 200


def test_upstream_answers_that_break_json_parsers_do_not_break_the_router(start_router: StartRouter) -> None:
    depth = 100_000
    nested = b'{"usage":{"x":' + b"[" * depth + b"]" * depth + b"}}"

    async def handler(
        up: ScriptedUpstream, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        while True:
            await up.read(reader)
            writer.write(reply(200, nested))
            await writer.drain()

    up = ScriptedUpstream(handler)
    try:
        router = start_router(config(route(MODEL, cluster_backend("local", up.url, metrics=False))))
        r = router.http.post(CHAT, json=BODY)
        assert r.status_code == 200
        assert r.content == nested
    finally:
        up.stop()
    assert_only_json_lines(router)


def test_httpx_sends_repeated_headers_as_separate_lines_too(
    start_router: StartRouter, local: Sim, hosted: Sim
) -> None:
    # The same bypass through an ordinary client library, not only hand-written bytes.
    router = start_router(
        config(
            route(
                MODEL,
                cluster_backend("local", local, weight=1),
                external_backend("hosted", hosted, weight=1000),
            ),
            residency=[
                {"name": "r", "match": {"headers": {"x-data-class": "restricted"}}, "allow": "cluster"}
            ],
        )
    )
    headers = httpx.Headers([("x-data-class", "restricted"), ("x-data-class", "public")])
    for _ in range(3):
        assert router.http.post(CHAT, json=BODY, headers=headers).headers["x-gptoss-backend"] == "local"
    assert hosted.stats()["requests"] == 0
