"""A small run of the scale benchmark (bench/operator_scale.py) on its own cluster.

Asserts behaviour, not speed (timings belong to the benchmark): every CR converges, the
operator's write count per CR stays bounded, and a converged cluster sees no writes at all.
It also proves two local clusters run side by side (this one next to the session's).
"""

from __future__ import annotations

from pathlib import Path

from bench.operator_scale import run_one


def test_twenty_model_deployments_converge_and_then_nothing_is_written(tmp_path: Path) -> None:
    result = run_one(20, quiet_seconds=5, timeout=180, workdir=tmp_path)
    assert result.n == 20
    assert result.ready_seconds >= result.deployments_seconds > 0
    # Per CR: the Deployment and Service applies, a few status patches, a couple of events.
    assert 2 <= result.operator_writes_per_cr <= 10
    assert result.apiserver_writes_per_cr <= result.operator_writes_per_cr
    assert result.quiet_operator_writes == 0
    assert result.quiet_apiserver_writes == 0
