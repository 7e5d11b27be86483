"""A small run of the scale benchmark (bench/operator_scale.py) on its own cluster.

Asserts behaviour, not speed (timings belong to the benchmark): every CR converges with three
writes (its Deployment, its Service, one status patch), and a converged cluster sees no writes.
It also proves two local clusters run side by side (this one next to the session's).
"""

from __future__ import annotations

from pathlib import Path

from bench.operator_scale import run_one


def test_five_model_deployments_take_three_writes_each_and_then_nothing_is_written(tmp_path: Path) -> None:
    result = run_one(5, quiet_seconds=10, timeout=180, workdir=tmp_path)
    assert result.n == 5
    assert result.ready_seconds >= result.deployments_seconds > 0
    # Per CR, from creation to Ready: its Deployment, its Service and one status patch. No
    # event (the happy path posts none) and no status patch before the children come up
    # (status pacing), by the operator's count and by the API server's (APPLYs and PATCHes of
    # modeldeployments); a fourth write per CR fails this.
    assert result.operator_writes_per_cr_by_kind == {
        "apply Deployment": 1.0,
        "apply Service": 1.0,
        "patch ModelDeployment/status": 1.0,
    }
    assert result.operator_writes_per_cr <= 3
    assert result.apiserver_writes_per_cr <= 3
    assert result.quiet_operator_writes == 0
    assert result.quiet_apiserver_writes == 0
