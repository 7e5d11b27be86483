"""`make demo` end to end: the command the Makefile runs, on a served cluster of its own (its
name passed with --name so it does not meet other tests' clusters), checked on what it prints:
the split, a fallback, the residency refusal, the metrics and how to tear the cluster down.

The figures it prints are read from the router's answers (x-gptoss-backend), the router's
/metrics and the provider simulator's own request count, so a router that routes wrongly
fails here.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from devtools.cluster import CLUSTER_SCRIPT, REPO


def _demo_command() -> list[str]:
    """What `make demo` runs after the venv, from `make -n` (so this test follows the Makefile)."""
    out = subprocess.run(
        ["make", "-n", "-C", str(REPO), "demo", "VENV=.venv"], capture_output=True, text=True, check=True
    ).stdout
    commands = [line for line in out.splitlines() if "demo.sh" in line]
    assert commands == ["bash kind/demo.sh"], out
    return shlex.split(commands[0])


def _number(pattern: str, text: str) -> tuple[int, ...]:
    match = re.search(pattern, text)
    assert match, f"not in the demo's output: {pattern!r}\n{text[-4000:]}"
    return tuple(int(g) for g in match.groups())


@dataclass
class Demo:
    name: str

    def run(self) -> str:
        started = time.monotonic()
        proc = subprocess.run(
            [*_demo_command(), "--name", self.name],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=False,
            timeout=540,
        )
        print(f"\nmake demo (warm binaries): {time.monotonic() - started:.1f}s")
        assert proc.returncode == 0, f"{proc.stdout[-6000:]}\n--- stderr ---\n{proc.stderr[-4000:]}"
        return proc.stdout


@pytest.fixture(scope="module")
def demo() -> Iterator[Demo]:
    name = f"dm-{uuid.uuid4().hex[:6]}"
    try:
        yield Demo(name)
    finally:
        subprocess.run([str(CLUSTER_SCRIPT), "down", "--name", name], capture_output=True, check=False)


def test_make_demo_shows_split_fallback_residency_and_teardown(demo: Demo) -> None:
    out = demo.run()
    assert f"$ kind/cluster up --serve --name {demo.name}" in out
    check(out, demo.name)


def test_make_demo_again_reuses_the_running_cluster(demo: Demo) -> None:
    # The namespace is deleted and created again: the routers' new pods must get tokens of
    # the new ServiceAccounts, not the deleted ones' (kind/podrunner.py, TokenCache).
    out = demo.run()
    assert f'reusing the running served cluster "{demo.name}"' in out
    check(out, demo.name)


def check(out: str, name: str) -> None:
    assert f"Tear it down with:\n  kind/cluster down --name {name}" in out, out[-2000:]
    total, local, hosted = _number(
        r"split over (\d+) requests: local (\d+) \([\d.]+%\), hosted (\d+) \([\d.]+%\), other 0;", out
    )
    assert (total, local + hosted) == (200, 200)
    # weights 80/20: 200 draws put the local share within 0.1 of 0.8 but for 1 run in ~5,000
    assert abs(local / total - 0.8) < 0.1, (local, hosted)

    refused, reached = _number(
        r"residency: (\d+)/20 restricted requests refused \(503 residency_blocked\); "
        r"requests that reached the provider: (\d+)",
        out,
    )
    assert (refused, reached) == (20, 0)
    assert 'gptoss_router_residency_blocked_total{route="gpt-oss-120b",rule="restricted"} 20' in out

    (answered_by_hosted,) = _number(
        r"with no in-cluster pods, (\d+)/20 untagged requests answered by hosted", out
    )
    assert answered_by_hosted == 20
    answered, failed, retried = _number(
        r"fallback: (\d+)/50 answered by local while the provider failed, (\d+) not; "
        r"(\d+) attempts on hosted failed and were retried on local",
        out,
    )
    assert (answered, failed) == (50, 0)
    assert retried >= 1  # some requests were first sent to the failing provider
    assert re.search(
        r'gptoss_router_fallback_total\{backend="hosted",reason="5xx",route="gpt-oss-120b"\} [1-9]', out
    )

    # Every simulated part says so, and the progress lines carry elapsed times.
    for simulated in ("kwok", "vLLM simulator", "simulated hosted provider"):
        assert simulated in out, simulated
    assert len(re.findall(r"^\[\s*[\d.]+s\] step \d+/10: ", out, re.M)) == 10
