"""Client connection limits against the real router process: connections that never send a
request, slowloris heads, idle keep-alives, and 5,000 idle sockets against a 1,024-descriptor
router. Figures are printed (run with -s) and recorded in docs/reliability.md."""

from __future__ import annotations

import contextlib
import resource
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from tests.router.conftest import MODEL, StartRouter
from tests.router.rawhttp import request_bytes
from tests.support.procs import Router, Sim, cluster_backend, config, route

CHAT = "/v1/chat/completions"
BODY = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}


@contextlib.contextmanager
def child_fd_limit(limit: int) -> Iterator[None]:
    """Processes started inside inherit a soft RLIMIT_NOFILE of ``limit`` (``ulimit -n``)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def fd_limit_of(pid: int) -> int:
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max open files"):
            return int(line.split()[3])
    raise AssertionError("no fd limit line")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def closed_by_server(s: socket.socket) -> bool:
    try:
        return s.recv(1) == b""
    except BlockingIOError:
        return False
    except ConnectionError:
        return True


def limited_router(start_router: StartRouter, local: Sim, **connections: object) -> Router:
    cfg = config(route(MODEL, cluster_backend("local", local)), connections=connections)
    return start_router(cfg)


def test_silent_slowloris_and_idle_connections_are_closed(start_router: StartRouter, local: Sim) -> None:
    router = limited_router(start_router, local, headerTimeout="500ms", idleTimeout="700ms")
    silent = socket.create_connection(("127.0.0.1", router.port))
    slow = socket.create_connection(("127.0.0.1", router.port))
    keepalive = httpx.Client(base_url=router.url, trust_env=False)
    try:
        assert keepalive.post(CHAT, json=BODY).status_code == 200  # now idle on keep-alive
        head = request_bytes(CHAT, BODY)
        t0 = time.monotonic()
        closed_at = None
        for i, byte in enumerate(head):  # one byte every 100 ms: the head never completes in time
            try:
                slow.send(bytes([byte]))
            except ConnectionError:
                closed_at = time.monotonic() - t0
                break
            if i > 30:
                break
            time.sleep(0.1)
        silent.settimeout(3)
        assert silent.recv(1) == b"", "a connection that never sends a request is closed"
        router.wait_for(
            lambda: router.metric("gptoss_router_connections_closed_total", reason="idle_timeout") >= 1,
            what="idle keep-alive closed",
        )
        router.wait_for(
            lambda: router.metric("gptoss_router_connections_closed_total", reason="header_timeout") >= 2,
            what="silent and slowloris connections closed",
        )
        assert closed_at is None or closed_at < 2.0
        # The client library reconnects transparently after the idle close.
        assert keepalive.post(CHAT, json=BODY).status_code == 200
    finally:
        keepalive.close()
        silent.close()
        slow.close()


def test_five_thousand_idle_sockets_do_not_lock_clients_out(start_router: StartRouter, local: Sim) -> None:
    n = 5000
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < n + 500:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, n + 1000), hard))
    with child_fd_limit(1024):
        router = limited_router(start_router, local, headerTimeout="3s", idleTimeout="3s")
    assert fd_limit_of(router.proc.pid) == 1024
    rss_before = rss_mb(router.proc.pid)
    idle: list[socket.socket] = []
    try:
        t0 = time.monotonic()
        for _ in range(n):
            s = socket.socket()
            s.setblocking(False)
            s.connect_ex(("127.0.0.1", router.port))
            idle.append(s)
        opened = time.monotonic() - t0
        # Real clients, each on a new connection, while the idle flood is held open.
        latencies = []
        with httpx.Client(base_url=router.url, trust_env=False, timeout=30) as client:
            for _ in range(10):
                t = time.monotonic()
                r = client.post(CHAT, json=BODY, headers={"connection": "close"})
                latencies.append(time.monotonic() - t)
                assert r.status_code == 200
        peak_open = router.metric("gptoss_router_connections_open")
        rss_flood = rss_mb(router.proc.pid)
        router.wait_for(
            lambda: sum(closed_by_server(s) for s in idle) == n, timeout=30, what="every idle socket shed"
        )
        shed_after = time.monotonic() - t0
        evicted = router.metric("gptoss_router_connections_closed_total", reason="evicted")
        timed_out = router.metric("gptoss_router_connections_closed_total", reason="header_timeout")
        rejected = router.metric("gptoss_router_connections_rejected_total")
        assert router.metric("gptoss_router_connections_open") <= 2  # the /metrics scrape itself
        assert evicted + timed_out + rejected >= n
        assert router.http.get("/readyz").status_code == 200
        assert "Too many open files" not in router.logs()
        print(
            f"\nidle sockets opened: {n} in {opened:.2f}s; router fd limit 1024, cap "
            f"{(1024 - 64) // 2}; peak open {peak_open:.0f}; real requests during the flood: "
            f"{len(latencies)}/10 served, max {max(latencies) * 1000:.0f} ms; shed: evicted "
            f"{evicted:.0f}, header_timeout {timed_out:.0f}, rejected {rejected:.0f}; all {n} closed "
            f"after {shed_after:.1f}s; RSS {rss_before:.0f} MB before, {rss_flood:.0f} MB during"
        )
    finally:
        for s in idle:
            s.close()
