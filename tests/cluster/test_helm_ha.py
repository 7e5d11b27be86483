"""`helm install --set replicaCount=2` on a served cluster: two operator pods, each a pod-runner
process with its own service-account token, elect a leader on the chart's Lease. The leader's
process is SIGKILLed in the middle of a batch of ModelDeployments: another process takes the
Lease once it expires, the batch converges, and no process ever wrote while it did not hold the
Lease (each process's own gptoss_operator_api_writes_total against its gptoss_operator_leader,
sampled throughout, and the Lease's holder history)."""

from __future__ import annotations

import os
import re
import signal
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import httpx

from devtools.cluster import LocalCluster, wait_for
from tests.cluster.test_helm_served import CHART, PORTS, RELEASE, SYSTEM_NS, check_log, helm, operator_pods
from tests.support.modeldeployments import model_deployment
from tests.support.netns import http

LEASE = "gptoss-operator"  # the chart's leaderElection.leaseName
# One GPU each, all schedulable on the default pools (2x8 H100, 8 H200): each is a vLLM
# simulator process in the served cluster, so the batch stays modest.
GPUS = ("H100-80GB",) * 12 + ("H200",) * 6
BATCH = len(GPUS)
# Lease duration 15 s + one retry period 2 s (leader.py) + sampling and load slack.
TAKEOVER_BOUND = 15 + 2 + 4


@dataclass(frozen=True)
class Sample:
    """One scrape of one operator process: None when it did not answer (killed, starting)."""

    writes: float
    leader: float


_WRITES = re.compile(r"^gptoss_operator_api_writes_total\{[^}]*\} ([0-9.e+-]+)$", re.M)
_LEADER = re.compile(r"^gptoss_operator_leader ([0-9.e+-]+)$", re.M)


def scrape(cluster: LocalCluster, ip: str) -> Sample | None:
    assert cluster.netns is not None
    try:
        r = http(cluster.netns, "GET", f"http://{ip}:9401/metrics", timeout=1)
    except httpx.HTTPError:
        return None
    leader = _LEADER.search(r.text)
    if r.status_code != 200 or leader is None:
        return None
    return Sample(sum(float(v) for v in _WRITES.findall(r.text)), float(leader.group(1)))


def lease_spec(cluster: LocalCluster) -> dict[str, Any]:
    spec: dict[str, Any] = cluster.get("lease", LEASE, "-n", SYSTEM_NS).get("spec") or {}
    return spec


def pod_of(identity: str) -> str:
    return identity.rsplit("_", 1)[0]  # "<pod name>_<uuid>", leader.py


def operator_pid(cluster: LocalCluster, pod: dict[str, Any]) -> int:
    """The pid the pod runner logged for the pod's operator container (its latest start)."""
    log = (cluster.kubeconfig.parent / "logs" / "podrunner.log").read_text(errors="replace")
    key = f"{pod['metadata']['uid']}/operator"
    pids = re.findall(rf"^\S+ {re.escape(key)} \(.*?\): started project pid (\d+)", log, re.M)
    assert pids, f"no process started for {key}"
    pid = int(pids[-1])
    assert "gptoss-operator" in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    return pid


def diagnostics(cluster: LocalCluster) -> str:
    state = cluster.kubeconfig.parent
    logs = [state / "logs" / "podrunner.log", *sorted((state / "pods").glob(f"{SYSTEM_NS}_*/operator.log"))]
    tails = ["\n".join(p.read_text(errors="replace").splitlines()[-25:]) for p in logs if p.exists()]
    return "\n\n".join(f"--- {p}\n{t}" for p, t in zip(logs, tails, strict=False))


def ready_count(cluster: LocalCluster, namespace: str) -> int:
    items = cluster.get("modeldeployments", "-n", namespace)["items"]
    return sum(1 for md in items if (md.get("status") or {}).get("phase") == "Ready")


def warm_ip_pool(cluster: LocalCluster) -> None:
    """Give one pod an IP before the chart's two pods are scheduled together: kwok v0.8.0 makes
    a CIDR's IP pool on first use with a load-then-store race (PodController.ipPool in
    pkg/kwok/controllers/pod_controller.go), so two first pods handled at once can both get the
    pool's first address, and the second operator process could not listen on it."""
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "ip-pool-warm-up"},
        "spec": {"containers": [{"name": "pause", "image": "registry.k8s.io/pause:3.10"}]},
    }
    cluster.apply(pod, "default")
    wait_for(
        lambda: cluster.get("pod", "ip-pool-warm-up", "-n", "default")["status"].get("podIP"),
        timeout=30,
        what="the warm-up pod's IP",
    )
    cluster.kubectl("delete", "pod", "ip-pool-warm-up", "-n", "default", "--wait=false")


def test_two_replicas_fail_over_without_two_writers(own_served_cluster: LocalCluster) -> None:
    cluster = own_served_cluster
    warm_ip_pool(cluster)
    sets = [a for s in (*PORTS, "replicaCount=2") for a in ("--set", s)]
    helm(cluster, "install", RELEASE, str(CHART), "-n", SYSTEM_NS, "--create-namespace", "--wait", *sets)

    def running() -> list[dict[str, Any]] | None:
        pods = [p for p in operator_pods(cluster) if p["status"].get("phase") == "Running"]
        return pods if len(pods) == 2 else None

    pods = wait_for(running, timeout=60, what="two operator pods")
    by_name = {p["metadata"]["name"]: p for p in pods}
    holder = wait_for(
        lambda: lease_spec(cluster).get("holderIdentity") or None, timeout=60, what="a Lease holder"
    )
    leader_pod = by_name[pod_of(holder)]
    (standby_pod,) = [p for n, p in by_name.items() if n != pod_of(holder)]
    ips = {n: p["status"]["podIP"] for n, p in by_name.items()}
    leader_ip, standby_ip = leader_pod["status"]["podIP"], standby_pod["status"]["podIP"]
    assert leader_ip != standby_ip, diagnostics(cluster)
    wait_for(lambda: scrape(cluster, leader_ip), timeout=30, what="the leader's /metrics")
    wait_for(lambda: scrape(cluster, standby_ip), timeout=30, what="the standby's /metrics")
    assert (scrape(cluster, leader_ip) or Sample(0, 0)).leader == 1, diagnostics(cluster)
    assert scrape(cluster, standby_ip) == Sample(0, 0), diagnostics(cluster)
    transitions_before = int(lease_spec(cluster).get("leaseTransitions") or 0)

    # `helm test` with two replicas: both answer, exactly one leads, and it holds the Lease.
    out = helm(cluster, "test", RELEASE, "-n", SYSTEM_NS, "--timeout=120s")
    assert "Phase:          Succeeded" in out
    log = check_log(cluster)
    assert f"ok: {leader_pod['metadata']['name']} ({leader_ip}:9401) answers /metrics as the leader" in log
    assert f"ok: {standby_pod['metadata']['name']} ({standby_ip}:9401) answers /metrics as the standby" in log
    assert f"ok: Lease {SYSTEM_NS}/{LEASE} is held by {holder}" in log

    namespace = cluster.create_namespace("ha")
    base = (scrape(cluster, leader_ip) or Sample(0, 0)).writes
    cluster.apply([model_deployment(f"m{i}", "gpt-oss-20b", gpu) for i, gpu in enumerate(GPUS)], namespace)
    # Kill the leader in the middle of the batch: some written, none (or not all) Ready.
    wait_for(
        lambda: (scrape(cluster, leader_ip) or Sample(0, 0)).writes - base >= 10,
        timeout=60,
        what="the leader to start on the batch",
        interval=0.05,
    )
    pid = operator_pid(cluster, leader_pod)
    os.killpg(pid, signal.SIGKILL)
    killed = time.monotonic()
    ready_at_kill = ready_count(cluster, namespace)
    assert ready_at_kill < BATCH, "the batch was done before the leader was killed"
    standby_at_kill = scrape(cluster, standby_ip)
    assert standby_at_kill == Sample(0, 0), (
        f"the standby wrote while the leader held the Lease: {standby_at_kill}"
    )

    # Until someone else holds the Lease: every process that does not lead has written nothing.
    holders = [holder]
    violations: list[str] = []
    samples = 0

    def watch() -> str | None:
        nonlocal samples
        for name, ip in ips.items():
            s = scrape(cluster, ip)  # the killed pod's restarted process too, once it answers
            if s is not None:
                samples += 1
                if s.leader == 0 and s.writes != 0:
                    violations.append(f"{name}: {s.writes} writes while not leading")
        current = str(lease_spec(cluster).get("holderIdentity") or "")
        if current != holders[-1]:
            holders.append(current)
        return current if current and current != holder else None

    new_holder = wait_for(watch, timeout=40, what="another process to take the Lease", interval=0.1)
    takeover = time.monotonic() - killed
    wait_for(
        lambda: ready_count(cluster, namespace) == BATCH or None, timeout=120, what="the batch to converge"
    )
    converged = time.monotonic() - killed
    winner = pod_of(new_holder)
    print(
        f"HA failover: SIGKILL of the leader with {ready_at_kill}/{BATCH} Ready; Lease taken by "
        f"{'the standby' if winner == standby_pod['metadata']['name'] else 'the restarted leader pod'} "
        f"after {takeover:.1f}s; all {BATCH} Ready {converged:.1f}s after the kill ({samples} scrapes)"
    )
    assert violations == []
    assert holders == [holder, new_holder]  # one transition, straight from the dead to the new holder
    assert int(lease_spec(cluster)["leaseTransitions"]) == transitions_before + 1
    assert takeover < TAKEOVER_BOUND
    # The new holder's process reconciles; the other one (standby or restarted) stands by.
    after = {
        name: wait_for(partial(scrape, cluster, ip), timeout=30, what=f"{name}'s /metrics")
        for name, ip in ips.items()
    }
    assert after[winner].leader == 1
    assert after[winner].writes > 0
    (other,) = [s for n, s in after.items() if n != winner]
    assert other == Sample(0, 0)

    # And `helm test` agrees with the new state.
    helm(cluster, "test", RELEASE, "-n", SYSTEM_NS, "--timeout=120s")
    assert f"is held by {new_holder}" in check_log(cluster)
