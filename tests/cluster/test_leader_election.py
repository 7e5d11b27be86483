"""Two operator replicas with --leader-elect: one writes, the other takes over when it dies."""

from __future__ import annotations

import json
import signal
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from devtools.cluster import LocalCluster, wait_for
from devtools.operator_process import OperatorProcess
from devtools.ports import free_port
from tests.support.modeldeployments import model_deployment

LEASE_NS = "kube-system"
# What the default node pools hold, one GPU each: 2x8 H100, 8 H200, 2x8 A100-80GB, 4 L4.
GPUS = ("H100-80GB",) * 14 + ("H200",) * 8 + ("A100-80GB",) * 14 + ("L4",) * 4
BATCH = len(GPUS)


def candidate(cluster: LocalCluster, tmp_path: Path, name: str, lease: str) -> OperatorProcess:
    return OperatorProcess(
        cluster,
        tmp_path / f"{name}.log",
        extra_args=(
            "--leader-elect",
            f"--leader-elect-lease-name={lease}",
            f"--leader-elect-namespace={LEASE_NS}",
        ),
        env={"POD_NAME": name},
    )


def healthz(port: int) -> dict[str, Any] | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as resp:
            body: dict[str, Any] = json.loads(resp.read())
            return body
    except OSError:
        return None


def holder(cluster: LocalCluster, lease: str) -> dict[str, Any]:
    proc = cluster.kubectl("get", "lease", lease, "-n", LEASE_NS, "-o", "json", check=False)
    return json.loads(proc.stdout)["spec"] if proc.returncode == 0 else {}


def total_writes(op: OperatorProcess) -> float:
    return sum(op.writes().values())


def ready_count(cluster: LocalCluster, namespace: str) -> int:
    items = cluster.get("modeldeployments", "-n", namespace)["items"]
    return sum(1 for md in items if (md.get("status") or {}).get("phase") == "Ready")


def test_standby_takes_over_a_killed_leader_and_the_batch_converges(
    own_cluster: LocalCluster, tmp_path: Path
) -> None:
    cluster = own_cluster
    cluster.install_crds()
    namespace = cluster.create_namespace("leader")
    a, b = candidate(cluster, tmp_path, "op-a", "failover"), candidate(cluster, tmp_path, "op-b", "failover")
    a.start()
    wait_for(
        lambda: holder(cluster, "failover").get("holderIdentity", "").startswith("op-a_"),
        timeout=30,
        what="op-a to lead",
    )
    b.start()
    try:
        time.sleep(3)
        assert holder(cluster, "failover")["holderIdentity"].startswith("op-a_")
        assert total_writes(b) == 0  # the standby has not written anything

        cluster.apply(
            [model_deployment(f"m{i}", "gpt-oss-20b", gpu) for i, gpu in enumerate(GPUS)], namespace
        )
        # Kill the leader in the middle of the batch: some written, not all Ready.
        wait_for(lambda: total_writes(a) >= 20, timeout=60, what="the leader to start on the batch")
        assert a.proc is not None
        a.proc.send_signal(signal.SIGKILL)
        killed = time.monotonic()
        a.proc.wait()
        a.proc = None
        assert ready_count(cluster, namespace) < BATCH, "the batch was done before the leader was killed"
        b_writes_while_standby = total_writes(b)

        # Record the Lease's holders until op-b holds it.
        history: list[str] = []

        def b_leads() -> bool:
            spec = holder(cluster, "failover")
            if not history or history[-1] != spec.get("holderIdentity"):
                history.append(str(spec.get("holderIdentity")))
            return str(spec.get("holderIdentity", "")).startswith("op-b_")

        wait_for(b_leads, timeout=40, what="op-b to take the lease", interval=0.1)
        takeover = time.monotonic() - killed
        spec = holder(cluster, "failover")
        print(f"failover: the standby held the lease {takeover:.1f}s after SIGKILL of the leader")
        assert b_writes_while_standby == 0
        assert [h.split("_")[0] for h in history] == ["op-a", "op-b"]
        assert spec["leaseTransitions"] == 1
        assert takeover < 15 + 2 + 2  # lease duration + one retry period + polling slack

        wait_for(lambda: ready_count(cluster, namespace) == BATCH, timeout=120, what="the batch to converge")
        assert total_writes(b) > 0
    finally:
        for op in (a, b):
            op.stop()


def test_a_leader_that_loses_its_lease_exits_at_once(own_cluster: LocalCluster, tmp_path: Path) -> None:
    cluster = own_cluster
    op = candidate(cluster, tmp_path, "op-c", "hijacked")
    op.cluster.install_crds()
    op.start()
    try:
        wait_for(
            lambda: holder(cluster, "hijacked").get("holderIdentity", "").startswith("op-c_"),
            timeout=30,
            what="op-c to lead",
        )
        # Another holder appears (e.g. after a long pause of this process): never two writers.
        patch = {"spec": {"holderIdentity": "intruder_1"}}
        cluster.kubectl("patch", "lease", "hijacked", "-n", LEASE_NS, "--type=merge", "-p", json.dumps(patch))
        assert op.proc is not None
        started = time.monotonic()
        try:
            op.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the operator kept running after losing its lease:\n{op.log_tail()}")
        print(f"lost lease: exited {time.monotonic() - started:.1f}s after another holder appeared")
        assert op.proc.returncode == 1
        assert "held by another process" in op.log_tail()
    finally:
        op.proc = None


def test_a_leader_stopped_cleanly_hands_over_at_once(own_cluster: LocalCluster, tmp_path: Path) -> None:
    cluster = own_cluster
    a, b = candidate(cluster, tmp_path, "op-d", "handover"), candidate(cluster, tmp_path, "op-e", "handover")
    liveness = free_port()
    b.extra_args += (f"--liveness-port={liveness}",)  # the last one wins over OperatorProcess's 0
    a.cluster.install_crds()
    a.start()
    wait_for(
        lambda: holder(cluster, "handover").get("holderIdentity", "").startswith("op-d_"),
        timeout=30,
        what="op-d to lead",
    )
    b.start()
    try:
        # A standby answers the liveness probe itself (kopf's endpoint starts with kopf).
        assert wait_for(lambda: healthz(liveness), timeout=10, what="the standby's /healthz") == {
            "leader": False
        }
        stopped = time.monotonic()
        a.stop()  # SIGTERM, as a rolling update sends it: kopf stops, then the Lease is released
        wait_for(
            lambda: holder(cluster, "handover").get("holderIdentity", "").startswith("op-e_"),
            timeout=10,  # well under the 15 s lease duration: only a release gets there
            what="op-e to take the released lease",
            interval=0.1,
        )
        print(
            f"handover: the standby held the lease {time.monotonic() - stopped:.1f}s after SIGTERM of the leader"
        )
        assert "released lease" in a.log_tail()
        # Then kopf's own /healthz takes the port over: its probe results, not the standby's.
        wait_for(
            lambda: "watches" in (healthz(liveness) or {}),
            timeout=20,
            what="kopf's /healthz on the new leader",
        )
    finally:
        b.stop()
