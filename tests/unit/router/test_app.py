"""The ASGI app in-process against loopback upstreams: reload swap, per-app registries, error shapes."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry

from gptoss_operator.router.app import RouterApp
from tests.unit.router.conftest import read_request, reply

UPSTREAMS: dict[str, str] = {}


def write(path: Path, backend: str) -> None:
    doc = {
        "version": 1,
        "server": {"scrape": {"interval": "1h"}},
        "routes": [
            {"model": "m", "backends": [{"name": backend, "cluster": {"endpoints": [UPSTREAMS[backend]]}}]}
        ],
    }
    path.write_text(json.dumps(doc))


def scrapes(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, text="vllm:num_requests_waiting 0\n")


@pytest.fixture(autouse=True)
async def upstreams(serve: Any) -> None:
    """Two loopback upstreams, "a" and "b", each answering with its own name."""
    for name in ("a", "b"):

        async def handler(
            reader: asyncio.StreamReader, writer: asyncio.StreamWriter, name: str = name
        ) -> None:
            while True:
                await read_request(reader)
                body = {"served_by": name, "usage": {"prompt_tokens": 1, "completion_tokens": 2}}
                writer.write(reply(200, json.dumps(body).encode()))
                await writer.drain()

        UPSTREAMS[name] = await serve(handler)


async def call(app: RouterApp, body: Any) -> httpx.Response:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://router") as c:
        return await c.post("/v1/chat/completions", json=body)


async def test_reload_swaps_atomically_and_keeps_the_old_runtime_for_holders(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    write(path, "a")
    app = RouterApp(str(path), registry=CollectorRegistry(), transport=httpx.MockTransport(scrapes))
    await app.startup()
    try:
        held = app.runtime()
        assert (await call(app, {"model": "m"})).json()["served_by"] == "a"
        write(path, "b")
        app._reload_if_changed()
        assert app.runtime() is not held
        assert app.runtime().generation == 2
        assert [b.name for b in held.routes["m"].backends] == ["a"], "in-flight holders keep their config"
        r = await call(app, {"model": "m"})
        assert r.json()["served_by"] == "b"
        assert r.headers["x-gptoss-backend"] == "b"
        path.write_text("version: 1\nroutes: nope\n")
        app._reload_if_changed()
        assert app.runtime().generation == 2
        assert app.registry.get_sample_value("gptoss_router_config_reloads_total", {"result": "invalid"}) == 1
        assert (
            app.registry.get_sample_value(
                "gptoss_router_tokens_total", {"route": "m", "backend": "b", "kind": "completion"}
            )
            == 2
        )
    finally:
        await app.shutdown()


async def test_two_apps_two_registries(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    write(path, "a")
    apps = [
        RouterApp(str(path), registry=CollectorRegistry(), transport=httpx.MockTransport(scrapes))
        for _ in range(2)
    ]
    for app in apps:
        await app.startup()
        await app.shutdown()
    assert apps[0].registry is not apps[1].registry


async def test_errors_have_the_openai_shape(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    write(path, "a")
    app = RouterApp(str(path), registry=CollectorRegistry(), transport=httpx.MockTransport(scrapes))
    await app.startup()
    try:
        r = await call(app, {"model": "nope"})
        assert r.status_code == 404
        assert r.json() == {
            "error": {
                "message": "The model `nope` does not exist. Models served here: ['m']",
                "type": "invalid_request_error",
                "param": "model",
                "code": "model_not_found",
            }
        }
    finally:
        await app.shutdown()
