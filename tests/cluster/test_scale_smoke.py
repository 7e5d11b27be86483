"""A small run of the scale benchmark (bench/operator_scale.py) on its own cluster.

Asserts behaviour, not speed (timings belong to the benchmark): every CR converges with three
writes (its Deployment, its Service, one status patch), and a converged cluster sees no writes.
It also proves two local clusters run side by side (this one next to the session's).
"""

from __future__ import annotations

import os
from pathlib import Path

from bench.apiserver_profile_compare import KINDS, compare, seconds
from bench.operator_scale import on_cpus, run_one


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
    # The API server's own request counts over the run (what the benchmark's traffic comparison
    # is made of): the 5 creates, and the operator's 5 + 5 applies and 5 status patches.
    traffic = result.apiserver_traffic
    assert traffic["POST modeldeployments"] == 5
    assert traffic["APPLY deployments"] == traffic["APPLY services"] == 5
    assert traffic["PATCH modeldeployments/status"] == 5
    assert traffic["watch events modeldeployments"] > 0


def test_split_cpus_puts_the_control_plane_and_the_operator_on_different_cpus(tmp_path: Path) -> None:
    # bench.operator_scale --split-cpus: what the docs' "operator on its own CPU" figures rest on.
    cpus = sorted(os.sched_getaffinity(0))
    assert len(cpus) >= 2, f"this test needs 2 CPUs, the process may use {cpus}"
    profile = tmp_path / "operator.pprof"
    with on_cpus(set(cpus[1:])):
        result = run_one(
            3, quiet_seconds=2, timeout=180, workdir=tmp_path, cpus={cpus[0]}, profile=(5, profile)
        )
    assert result.apiserver_cpus == str(cpus[0])
    assert str(cpus[0]) not in result.operator_cpus.replace("-", ",").split(",")
    assert result.operator_cpus
    assert result.operator_writes_per_cr <= 3
    assert os.sched_getaffinity(0) == set(cpus)  # the test process has its CPUs back
    # --apiserver-profile: the API server's CPU profile of the run, readable by the comparison.
    assert seconds([profile]) > 0
    table = compare([profile], [profile]).splitlines()
    assert len(table) == 3 + len(KINDS)
    assert all(row.endswith("| +0.0 s |") for row in table[2:])
