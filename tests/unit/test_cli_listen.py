"""A taken port is one line naming the address, never a traceback (operator and router)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture
def taken_port() -> Iterator[int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        yield s.getsockname()[1]


def cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gptoss_operator", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def assert_one_line_naming(proc: subprocess.CompletedProcess[str], address: str) -> None:
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert address in lines[0]
    assert "Address already in use" in lines[0]


def test_router_on_a_taken_port(taken_port: int, tmp_path: Path) -> None:
    config = tmp_path / "router.yaml"
    route = {"model": "m", "backends": [{"name": "a", "cluster": {"endpoints": ["http://127.0.0.1:9/v1"]}}]}
    config.write_text(json.dumps({"version": 1, "routes": [route]}))
    proc = cli("router", "--config", str(config), "--host", "127.0.0.1", "--port", str(taken_port))
    assert_one_line_naming(proc, f"127.0.0.1:{taken_port}")


def test_operator_metrics_on_a_taken_port(taken_port: int, tmp_path: Path) -> None:
    proc = cli(
        "run", "--metrics-address", "127.0.0.1", "--metrics-port", str(taken_port), "--liveness-port", "0"
    )
    assert_one_line_naming(proc, f"/metrics on 127.0.0.1:{taken_port}")


def test_operator_liveness_on_a_taken_port(taken_port: int) -> None:
    proc = cli(
        "run", "--metrics-port", "0", "--liveness-address", "127.0.0.1", "--liveness-port", str(taken_port)
    )
    assert_one_line_naming(proc, f"/healthz on 127.0.0.1:{taken_port}")
