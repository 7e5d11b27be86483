"""Fixtures: simulators are started once per session and reset before each test; each test
starts its own router process with the configuration it needs."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.support.procs import Router, Sim

MODEL = "gpt-oss-20b"
StartRouter = Callable[[dict[str, Any]], Router]


@pytest.fixture(scope="session")
def sims() -> Iterator[dict[str, Sim]]:
    started: dict[str, Sim] = {}
    try:
        for name in ("local", "local2", "hosted", "hosted2"):
            started[name] = Sim(name)
        yield started
    finally:
        for s in started.values():
            s.stop()


@pytest.fixture
def local(sims: dict[str, Sim]) -> Sim:
    sims["local"].reset()
    return sims["local"]


@pytest.fixture
def local2(sims: dict[str, Sim]) -> Sim:
    sims["local2"].reset()
    return sims["local2"]


@pytest.fixture
def hosted(sims: dict[str, Sim]) -> Sim:
    sims["hosted"].reset()
    return sims["hosted"]


@pytest.fixture
def hosted2(sims: dict[str, Sim]) -> Sim:
    sims["hosted2"].reset()
    return sims["hosted2"]


@pytest.fixture
def start_router(tmp_path: Any) -> Iterator[StartRouter]:
    routers: list[Router] = []

    def start(cfg: dict[str, Any]) -> Router:
        r = Router(cfg, workdir=tmp_path)
        routers.append(r)
        return r

    yield start
    for r in routers:
        r.stop()
