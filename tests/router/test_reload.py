"""Hot reload: atomic swap under load with zero failed requests; a bad file is refused."""

from __future__ import annotations

import threading
import time
from typing import Any

import httpx

from tests.router.conftest import MODEL, StartRouter
from tests.support.procs import Router, Sim, cluster_backend, config, route

BODY = {"model": MODEL, "messages": [{"role": "user", "content": "reload"}]}


def only(sim: Sim, name: str) -> dict[str, Any]:
    return config(route(MODEL, cluster_backend(name, sim)))


def test_reload_under_load_drops_nothing(start_router: StartRouter, local: Sim, local2: Sim) -> None:
    local.configure(itl=0.01)
    local2.configure(itl=0.01)
    router: Router = start_router(only(local, "a"))
    stop = threading.Event()
    failures: list[str] = []
    served: list[str] = []

    def load(stream: bool) -> None:
        with httpx.Client(trust_env=False, timeout=30) as c:
            while not stop.is_set():
                try:
                    with c.stream(
                        "POST", router.url + "/v1/chat/completions", json={**BODY, "stream": stream}
                    ) as r:
                        data = r.read()
                        if r.status_code != 200 or (stream and not data.endswith(b"data: [DONE]\n\n")):
                            failures.append(f"{r.status_code} {data[-200:]!r}")
                        served.append(r.headers.get("x-gptoss-backend", "?"))
                except httpx.HTTPError as e:
                    failures.append(repr(e))

    threads = [threading.Thread(target=load, args=(i % 2 == 0,)) for i in range(6)]
    for t in threads:
        t.start()
    try:
        for i in range(8):
            time.sleep(0.25)
            router.write_config(only(local2, "b") if i % 2 == 0 else only(local, "a"))
        # Keep the load on until enough requests crossed the reloads: on a busy machine fewer
        # than 50 fit in the 2 s of writes, which says nothing about the router.
        deadline = time.monotonic() + 60
        while len(served) <= 50 and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert failures == []
    assert len(served) > 50
    assert {"a", "b"} <= set(served)
    assert router.metric("gptoss_router_config_reloads_total", result="success") >= 8
    assert router.metric("gptoss_router_config_generation") >= 8


def test_invalid_file_is_refused_and_the_old_config_keeps_serving(
    start_router: StartRouter, local: Sim, local2: Sim
) -> None:
    router: Router = start_router(only(local, "a"))
    router.write_config("version: 1\nroutes: [{model: x, backends: []}]\n")
    router.wait_for(lambda: router.metric("gptoss_router_config_reloads_total", result="invalid") == 1)
    assert router.metric("gptoss_router_config_last_reload_successful") == 0
    refused = [r for r in router.log_records() if r.get("msg", "").startswith("configuration refused")]
    assert refused
    assert "backends" in refused[0]["error"]
    assert refused[0]["level"] == "error"
    r = httpx.post(router.url + "/v1/chat/completions", json=BODY, trust_env=False)
    assert r.status_code == 200
    assert r.headers["x-gptoss-backend"] == "a"
    router.write_config("{not yaml: [")
    router.wait_for(lambda: router.metric("gptoss_router_config_reloads_total", result="invalid") == 2)
    router.write_config(only(local2, "b"))
    router.wait_for(lambda: router.metric("gptoss_router_config_last_reload_successful") == 1)
    r = httpx.post(router.url + "/v1/chat/completions", json=BODY, trust_env=False)
    assert r.headers["x-gptoss-backend"] == "b"
    assert router.metric("gptoss_router_config_generation") == 2


def test_invalid_initial_file_exits_with_a_clear_message(tmp_path) -> None:
    import subprocess
    import sys

    path = tmp_path / "bad.yaml"
    path.write_text("version: 2\nroutes: []\n")
    p = subprocess.run(
        [sys.executable, "-m", "gptoss_operator", "router", "--config", str(path), "--port", "1"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert p.returncode == 2
    assert "unsupported config version 2" in p.stderr
