"""Operator scale benchmark: N ModelDeployments on the real local control plane.

    .venv/bin/python -m bench.operator_scale [--n 100 500 1000] [--quiet-seconds 60] [--rounds 3]

For each N, in a fresh cluster with enough kwok L4 nodes (8 GPUs each) and a fresh operator
process: create N gpt-oss-20b ModelDeployments (1 replica, 1 GPU each) as fast as the API
server takes them, then measure

- seconds until every vLLM Deployment exists and until every ModelDeployment is Ready
  (both from the first create, observed through watches, not polling);
- API writes per CR: the operator's own counter (gptoss_operator_api_writes_total) and, as an
  independent check, the API server's apiserver_request_total for APPLY requests and PATCHes
  of modeldeployments (the operator is the only client sending those);
- writes during a quiet period after convergence (both counters; the target is zero);
- the operator's peak RSS (VmHWM) and CPU seconds;
- per object, the seconds from its create to its Ready status (p50, p90, max).

With --rounds R, each N runs R operator / no-operator pairs one after the other and the script
prints every pair's ratio and their median (on a shared machine a single pair can land in a busy
minute on one side and a quiet one on the other).

With --split-cpus, on both sides the control plane (etcd, API server, controller-manager,
scheduler, kwok) runs on the first CPU and the operator and this script on the others, as in a
real cluster, where the operator runs on a worker node and does not take the API server's CPU.
Without it everything shares all CPUs, and on a small machine the operator's own CPU slows the
control plane it waits on.

With --apiserver-profile DIR, the API server's CPU profile (Go pprof) of each side's first
--profile-seconds is written to DIR; `bench.apiserver_profile_compare` tells the two sides'
profiles apart by kind of work (docs/operator.md, "Where the API server's extra CPU goes").

Targets: 1,000 CRs converge within 1.2x of the same Deployments + Services created with no
operator on the same machine ("ratio"), at most 3 writes per CR (its Deployment, its Service and
one status write: docs/operator.md, Status), zero quiet writes, RSS <= 200 MB at 1,000 CRs. The table is printed as markdown; --json writes the raw results.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import re
import resource
import ssl
import statistics
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

from devtools.cluster import LocalCluster
from devtools.operator_process import OperatorProcess
from gptoss_operator.settings import OperatorSettings

NAMESPACE = "scale"
GPUS_PER_NODE = 8
# How long to profile the API server for, and where to write the profile (--apiserver-profile).
Profile = tuple[float, Path]


@dataclass
class ScaleResult:
    n: int
    nodes: int
    submit_seconds: float
    deployments_seconds: float
    ready_seconds: float
    operator_writes_per_cr: float
    apiserver_writes_per_cr: float
    quiet_seconds: float
    quiet_operator_writes: int
    quiet_apiserver_writes: int
    peak_rss_mib: float
    operator_cpu_seconds: float
    # CPU seconds each control-plane process spent from the first create to convergence: on
    # a 2-core machine they compete with the operator, so this says where the time went.
    cluster_cpu_seconds: dict[str, float]
    # The same N Deployments + Services (the operator's own builder output) created directly,
    # no operator, in an identical fresh cluster: the floor this machine's control plane sets.
    baseline_available_seconds: float | None = None
    # The operator's writes per CR by "verb resource" (e.g. "patch ModelDeployment/status"): where
    # the writes/CR figure comes from.
    operator_writes_per_cr_by_kind: dict[str, float] | None = None
    reconciles_per_cr: float = 0.0
    mean_reconcile_ms: float = 0.0
    mean_api_call_ms: float = 0.0
    # Where the operator's time goes: mean latency of each kind of API call as the operator
    # sees it ("verb resource" -> ms), and the share of the run its workers spent reconciling
    # (of GPTOSS_WORKERS, read from the environment as the operator reads it; 1.0: every worker
    # was busy from the first create to the last Ready, so the operator's pace is its workers
    # over the time one reconcile takes).
    api_call_ms: dict[str, float] | None = None
    worker_busy: float = 0.0
    # The no-operator side: seconds to create its N Deployments + Services (16 at a time).
    baseline_submit_seconds: float | None = None
    # CPU seconds of this benchmark process itself (its creates and watches) over the same span,
    # and the no-operator side's control-plane and benchmark CPU: on a machine where everything
    # shares the same cores, the sums say how much work each side asked of them.
    client_cpu_seconds: float = 0.0
    operator_run_cpu_seconds: float = 0.0  # the operator's CPU over the same span
    baseline_cluster_cpu_seconds: dict[str, float] | None = None
    baseline_client_cpu_seconds: float | None = None
    # Per object, seconds from its create to its Ready status ("p50", "p90", "max"): how long
    # one object waits, where the columns above say when the last one is done.
    ready_after_create_seconds: dict[str, float] | None = None
    round: int = 1  # with --rounds: which operator/no-operator pair this is
    # The CPUs the API server and the operator were allowed to run on, read back from /proc
    # (Cpus_allowed_list), so a result says how it was measured: distinct with --split-cpus.
    apiserver_cpus: str = ""
    operator_cpus: str = ""
    # API server traffic from the first create to convergence, per side (apiserver_traffic):
    # requests by verb and resource, watch events and bytes by resource, over all clients.
    apiserver_traffic: dict[str, int] = field(default_factory=dict)
    baseline_apiserver_traffic: dict[str, int] | None = None

    def cpu_seconds(self) -> tuple[float, float | None]:
        """All CPU of the run, (operator side, no-operator side): control plane, benchmark
        client and, on the operator side, the operator."""
        ours = (
            sum(self.cluster_cpu_seconds.values()) + self.client_cpu_seconds + self.operator_run_cpu_seconds
        )
        if self.baseline_cluster_cpu_seconds is None or self.baseline_client_cpu_seconds is None:
            return ours, None
        return ours, sum(self.baseline_cluster_cpu_seconds.values()) + self.baseline_client_cpu_seconds


def node_pools(n: int) -> dict[str, Any]:
    nodes = math.ceil(n / GPUS_PER_NODE) + 1  # one node of headroom
    return {
        "pools": [
            {
                "name": "l4x8",
                "count": nodes,
                "cpu": "192",
                "memory": "768Gi",
                "pods": "110",
                "gpu": {
                    "resource": "nvidia.com/gpu",
                    "perNode": GPUS_PER_NODE,
                    "product": "NVIDIA-L4",
                    "memoryMiB": 23034,
                    "compute": "8.9",
                    "family": "ada-lovelace",
                },
                "taints": [{"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}],
            }
        ]
    }


_LATENCY = re.compile(
    r'^gptoss_operator_api_request_seconds_(sum|count)\{resource="([^"]+)",verb="([^"]+)"\} ([0-9.e+-]+)$',
    re.M,
)


def api_call_ms(operator: OperatorProcess) -> dict[str, float]:
    """Mean latency per kind of API call, from the operator's own histogram."""
    with urllib.request.urlopen(f"http://127.0.0.1:{operator.metrics_port}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    sums: dict[str, float] = {}
    counts: dict[str, float] = {}
    for part, kind, verb, value in _LATENCY.findall(text):
        (sums if part == "sum" else counts)[f"{verb} {kind}"] = float(value)
    return {k: round(1000 * sums[k] / counts[k], 1) for k in sorted(counts) if counts[k] and k in sums}


def api_client(kubeconfig: Path) -> httpx.AsyncClient:
    config = yaml.safe_load(kubeconfig.read_text())
    cluster = config["clusters"][0]["cluster"]
    user = config["users"][0]["user"]
    ctx = ssl.create_default_context(cafile=cluster["certificate-authority"])
    ctx.load_cert_chain(user["client-certificate"], user["client-key"])
    return httpx.AsyncClient(
        base_url=cluster["server"],
        verify=ctx,
        timeout=httpx.Timeout(60.0),
        limits=httpx.Limits(max_connections=32),
    )


_SAMPLE = re.compile(
    r"^(apiserver_request_total|apiserver_watch_events_total|apiserver_watch_events_sizes_sum)\{([^}]*)\} ([0-9.e+]+)$",
    re.M,
)
_LABEL = re.compile(r'(\w+)="([^"]*)"')


async def apiserver_traffic(client: httpx.AsyncClient) -> dict[str, float]:
    """What the API server has served so far, from its /metrics: requests by "VERB resource"
    (``/subresource`` appended), and watch events and their bytes by resource ("watch events
    pods", "watch bytes pods"), summed over every client and watcher."""
    traffic: dict[str, float] = {}
    for name, labels, value in _SAMPLE.findall((await client.get("/metrics")).text):
        label = dict(_LABEL.findall(labels))
        resource = label.get("resource") or label.get("kind", "?")
        if name == "apiserver_request_total":
            sub = label.get("subresource")
            key = f"{label.get('verb', '?')} {resource}{'/' + sub if sub else ''}"
        elif name == "apiserver_watch_events_total":
            key = f"watch events {resource}"
        else:
            key = f"watch bytes {resource}"
        traffic[key] = traffic.get(key, 0.0) + float(value)
    return traffic


def traffic_since(before: dict[str, float], after: dict[str, float]) -> dict[str, int]:
    """The traffic between two :func:`apiserver_traffic` readings, zeros left out."""
    return {k: int(v - before.get(k, 0.0)) for k, v in sorted(after.items()) if v - before.get(k, 0.0) >= 1}


def traffic_added(result: ScaleResult, top: int = 8) -> str:
    """The largest differences in API server traffic, operator side minus no-operator side."""
    if result.baseline_apiserver_traffic is None:
        return ""
    ours, theirs = result.apiserver_traffic, result.baseline_apiserver_traffic
    added = {k: ours.get(k, 0) - theirs.get(k, 0) for k in set(ours) | set(theirs)}
    largest = sorted(added.items(), key=lambda kv: -abs(kv[1]))[:top]
    return ", ".join(f"{k} {v:+d}" for k, v in largest)


async def apiserver_profile(client: httpx.AsyncClient, profile: Profile | None) -> None:
    """Record the API server's CPU profile (Go pprof, its /debug/pprof/profile; on by default,
    --profiling) for ``seconds`` from now into ``to`` (``profile``); nothing without one. `go tool
    pprof -top FILE` reads it: which of the API server's functions the run's CPU went to."""
    if profile is None:
        return
    seconds, to = profile
    r = await client.get("/debug/pprof/profile", params={"seconds": int(seconds)}, timeout=seconds + 60)
    r.raise_for_status()
    to.write_bytes(r.content)


async def apiserver_writes(client: httpx.AsyncClient) -> int:
    """APPLY requests (any resource) + PATCHes of modeldeployments, as the API server counts them."""
    return int(
        sum(
            count
            for request, count in (await apiserver_traffic(client)).items()
            if request.startswith(("APPLY ", "PATCH modeldeployments"))
        )
    )


class Tracker:
    """Follows a watch of one resource and records when a predicate holds for all N objects."""

    def __init__(self, n: int, done: Any) -> None:
        self.n = n
        self.done_pred = done
        self.done: set[str] = set()
        self.reached = asyncio.Event()
        self.at: float | None = None
        self.first: dict[str, float] = {}  # name -> when the predicate first held for it

    def observe(self, obj: dict[str, Any]) -> None:
        name = obj["metadata"]["name"]
        if self.done_pred(obj):
            self.done.add(name)
            self.first.setdefault(name, time.monotonic())
        else:
            self.done.discard(name)
        if len(self.done) >= self.n and not self.reached.is_set():
            self.at = time.monotonic()
            self.reached.set()


async def follow(client: httpx.AsyncClient, path: str, tracker: Tracker) -> None:
    listing = (await client.get(path)).json()
    for item in listing["items"]:
        tracker.observe(item)
    rv = listing["metadata"]["resourceVersion"]
    while True:
        params = {"watch": "1", "resourceVersion": rv, "allowWatchBookmarks": "true", "timeoutSeconds": "300"}
        async with client.stream("GET", path, params=params) as resp:
            async for line in resp.aiter_lines():
                if not line:
                    continue
                event = json.loads(line)
                rv = event["object"]["metadata"].get("resourceVersion", rv)
                if event["type"] in ("ADDED", "MODIFIED"):
                    tracker.observe(event["object"])


async def create_namespace(client: httpx.AsyncClient) -> None:
    await client.post("/api/v1/namespaces", json={"metadata": {"name": NAMESPACE}})
    # Pods need the namespace's default ServiceAccount (created by the controller-manager).
    while (await client.get(f"/api/v1/namespaces/{NAMESPACE}/serviceaccounts/default")).status_code != 200:
        await asyncio.sleep(0.2)


def is_ready(md: dict[str, Any]) -> bool:
    conditions = (md.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def process_stats(pid: int) -> tuple[float, float]:
    """(peak RSS MiB, CPU seconds) of a running process."""
    peak = 0.0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                peak = int(line.split()[1]) / 1024
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])  # utime + stime
    return peak, ticks / 100.0


def allowed_cpus(pid: int) -> str:
    """The CPUs a process may run on, as /proc shows them ("0", "1-3")."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Cpus_allowed_list:"):
            return line.split(":", 1)[1].strip()
    return ""


@contextlib.contextmanager
def on_cpus(cpus: set[int] | None) -> Iterator[None]:
    """Run the block (and every process it starts, which inherits the mask) on ``cpus``; None
    leaves the mask alone. Only this thread's mask changes: the script's child processes are
    started from its main thread."""
    if cpus is None:
        yield
        return
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, cpus)
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def client_cpu() -> float:
    """CPU seconds this benchmark process has used so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def cluster_pids(cluster: LocalCluster) -> dict[str, int]:
    """Control-plane component -> its process id."""
    pids: dict[str, int] = json.loads((cluster.kubeconfig.parent / "state.json").read_text())["pids"]
    return pids


def cluster_cpu(cluster: LocalCluster) -> dict[str, float]:
    return {component: process_stats(pid)[1] for component, pid in cluster_pids(cluster).items()}


def manifest(i: int) -> dict[str, Any]:
    return {
        "apiVersion": "gptoss.dev/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": f"md-{i:04d}", "namespace": NAMESPACE},
        "spec": {"model": "gpt-oss-20b", "gpu": {"type": "L4"}},
    }


async def measure(
    cluster: LocalCluster,
    operator: OperatorProcess,
    n: int,
    quiet_seconds: float,
    timeout: float,
    profile: Profile | None = None,
) -> ScaleResult:
    assert operator.proc is not None
    async with api_client(cluster.kubeconfig) as client:
        await create_namespace(client)
        apiserver_before = await apiserver_writes(client)
        deployments = Tracker(n, lambda _obj: True)
        ready = Tracker(n, is_ready)
        watchers = [
            asyncio.create_task(
                follow(client, f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments", deployments)
            ),
            asyncio.create_task(
                follow(client, f"/apis/gptoss.dev/v1alpha1/namespaces/{NAMESPACE}/modeldeployments", ready)
            ),
        ]
        sem = asyncio.Semaphore(16)
        created: dict[str, float] = {}

        async def create(i: int) -> None:
            async with sem:
                body = manifest(i)
                r = await client.post(
                    f"/apis/gptoss.dev/v1alpha1/namespaces/{NAMESPACE}/modeldeployments", json=body
                )
                r.raise_for_status()
                created[body["metadata"]["name"]] = time.monotonic()

        cpu_before, client_before = cluster_cpu(cluster), client_cpu()
        traffic_before = await apiserver_traffic(client)
        operator_before = process_stats(operator.proc.pid)[1]
        profiling = asyncio.create_task(apiserver_profile(client, profile))
        start = time.monotonic()
        await asyncio.gather(*(create(i) for i in range(n)))
        submitted = time.monotonic() - start
        try:
            await asyncio.wait_for(asyncio.gather(deployments.reached.wait(), ready.reached.wait()), timeout)
        except TimeoutError as e:
            raise RuntimeError(
                f"N={n}: after {timeout:.0f}s {len(deployments.done)} Deployments exist and "
                f"{len(ready.done)} ModelDeployments are Ready"
            ) from e
        assert deployments.at is not None
        assert ready.at is not None
        cpu_after, client_after = cluster_cpu(cluster), client_cpu()
        operator_after = process_stats(operator.proc.pid)[1]
        traffic = traffic_since(traffic_before, await apiserver_traffic(client))
        # Let the last status patches and events of the convergence land before the quiet window.
        await asyncio.sleep(3)
        by_kind = operator.writes()
        op_writes = sum(by_kind.values())
        api_writes = await apiserver_writes(client) - apiserver_before
        await asyncio.sleep(quiet_seconds)
        quiet_op = sum(operator.writes().values()) - op_writes
        quiet_api = await apiserver_writes(client) - apiserver_before - api_writes
        for w in watchers:
            w.cancel()
        await profiling
        peak, cpu = process_stats(operator.proc.pid)
        reconciles = operator.metric("gptoss_operator_reconcile_seconds_count")
        reconcile_seconds = operator.metric("gptoss_operator_reconcile_seconds_sum")
        api_calls = operator.metric("gptoss_operator_api_request_seconds_count")
        api_seconds = operator.metric("gptoss_operator_api_request_seconds_sum")
        return ScaleResult(
            n=n,
            nodes=math.ceil(n / GPUS_PER_NODE) + 1,
            submit_seconds=round(submitted, 2),
            deployments_seconds=round(deployments.at - start, 2),
            ready_seconds=round(ready.at - start, 2),
            operator_writes_per_cr=round(op_writes / n, 2),
            apiserver_writes_per_cr=round(api_writes / n, 2),
            quiet_seconds=quiet_seconds,
            quiet_operator_writes=int(quiet_op),
            quiet_apiserver_writes=int(quiet_api),
            peak_rss_mib=round(peak, 1),
            operator_cpu_seconds=round(cpu, 1),
            cluster_cpu_seconds={k: round(cpu_after[k] - cpu_before[k], 1) for k in cpu_after},
            client_cpu_seconds=round(client_after - client_before, 1),
            operator_run_cpu_seconds=round(operator_after - operator_before, 1),
            operator_writes_per_cr_by_kind={
                f"{verb} {resource}": round(count / n, 2)
                for (resource, verb), count in sorted(by_kind.items())
            },
            reconciles_per_cr=round(reconciles / n, 1),
            mean_reconcile_ms=round(1000 * reconcile_seconds / max(1.0, reconciles), 1),
            mean_api_call_ms=round(1000 * api_seconds / max(1.0, api_calls), 1),
            api_call_ms=api_call_ms(operator),
            worker_busy=round(
                reconcile_seconds / (OperatorSettings.from_env().workers * (ready.at - start)), 2
            ),
            ready_after_create_seconds=percentiles(
                [ready.first[name] - at for name, at in created.items() if name in ready.first]
            ),
            apiserver_traffic=traffic,
        )


def percentiles(values: list[float]) -> dict[str, float]:
    """p50, p90 and max of ``values`` (seconds), rounded to 0.1 s."""
    ordered = sorted(values)
    if not ordered:
        return {}
    at = {"p50": 0.5, "p90": 0.9}
    out = {k: round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1) for k, q in at.items()}
    out["max"] = round(ordered[-1], 1)
    return out


def direct_objects(i: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """The Deployment and Service the operator would apply for manifest(i), minus the owner
    (nothing owns them here): what a person would create by hand."""
    from gptoss_operator.api.v1alpha1 import ModelDeployment, Plan
    from gptoss_operator.manifests.vllm import deployment, pod_template, service
    from gptoss_operator.planning import plan_deployment, startup_budget

    body = manifest(i)
    body["metadata"]["uid"] = "00000000-0000-0000-0000-000000000000"
    md = ModelDeployment.model_validate(body)
    plan = plan_deployment(md.spec)
    assert isinstance(plan, Plan), plan
    settings = OperatorSettings()
    startup = startup_budget(md.spec)
    dep = deployment(md, pod_template(md, plan, settings, startup), startup, "Surge")
    svc = service(md, settings)
    del dep["metadata"]["ownerReferences"]
    del svc["metadata"]["ownerReferences"]
    return dep, svc


def is_available(dep: dict[str, Any]) -> bool:
    conditions = (dep.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Available" and c.get("status") == "True" for c in conditions)


@dataclass
class Baseline:
    available_seconds: float  # until all N Deployments are Available
    submit_seconds: float  # to create them all
    cluster_cpu_seconds: dict[str, float]
    client_cpu_seconds: float
    apiserver_traffic: dict[str, int]


async def measure_baseline(
    cluster: LocalCluster, n: int, timeout: float, profile: Profile | None = None
) -> Baseline:
    async with api_client(cluster.kubeconfig) as client:
        await create_namespace(client)
        available = Tracker(n, is_available)
        watcher = asyncio.create_task(
            follow(client, f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments", available)
        )
        sem = asyncio.Semaphore(16)

        async def create(i: int) -> None:
            dep, svc = direct_objects(i)
            async with sem:
                r = await client.post(f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments", json=dep)
                r.raise_for_status()
                r = await client.post(f"/api/v1/namespaces/{NAMESPACE}/services", json=svc)
                r.raise_for_status()

        cpu_before, client_before = cluster_cpu(cluster), client_cpu()
        traffic_before = await apiserver_traffic(client)
        profiling = asyncio.create_task(apiserver_profile(client, profile))
        start = time.monotonic()
        await asyncio.gather(*(create(i) for i in range(n)))
        submitted = time.monotonic() - start
        await asyncio.wait_for(available.reached.wait(), timeout)
        cpu_after, client_after = cluster_cpu(cluster), client_cpu()
        traffic = traffic_since(traffic_before, await apiserver_traffic(client))
        watcher.cancel()
        await profiling  # after the counts: they stop at convergence, the profile runs its course
        assert available.at is not None
        return Baseline(
            available_seconds=round(available.at - start, 2),
            submit_seconds=round(submitted, 2),
            cluster_cpu_seconds={k: round(cpu_after[k] - cpu_before[k], 1) for k in cpu_after},
            client_cpu_seconds=round(client_after - client_before, 1),
            apiserver_traffic=traffic,
        )


def start_cluster(n: int, label: str, workdir: Path, cpus: set[int] | None) -> LocalCluster:
    nodes_file = workdir / f"nodes-{n}.yaml"
    nodes_file.write_text(yaml.safe_dump(node_pools(n)))
    with on_cpus(cpus):
        return LocalCluster.start(name=f"scale-{label}-{n}-{int(time.time())}", nodes=[nodes_file])


def run_baseline(
    n: int,
    timeout: float,
    workdir: Path,
    cpus: set[int] | None = None,
    profile: Profile | None = None,
) -> Baseline:
    cluster = start_cluster(n, "base", workdir, cpus)
    try:
        return asyncio.run(measure_baseline(cluster, n, timeout, profile))
    finally:
        cluster.stop()


def run_one(
    n: int,
    quiet_seconds: float,
    timeout: float,
    workdir: Path,
    cpus: set[int] | None = None,
    profile: Profile | None = None,
) -> ScaleResult:
    cluster = start_cluster(n, "op", workdir, cpus)
    operator = OperatorProcess(cluster, workdir / f"operator-{n}.log")
    try:
        operator.cluster.install_crds()
        operator.start()
        result = asyncio.run(measure(cluster, operator, n, quiet_seconds, timeout, profile))
        assert operator.proc is not None
        result.apiserver_cpus = allowed_cpus(cluster_pids(cluster)["kube-apiserver"])
        result.operator_cpus = allowed_cpus(operator.proc.pid)
        return result
    finally:
        operator.stop()
        cluster.stop()


def table(results: list[ScaleResult]) -> str:
    rows = [
        "| CRs | round | kwok nodes | all Deployments exist | all CRs Ready | one CR, create to Ready: p50 / p90 "
        "| same Deployments + Services, no operator: all Available "
        "| ratio | operator writes/CR | API server writes/CR | writes in quiet period | operator peak RSS | operator CPU "
        "| API server CPU | all CPU, operator side / no operator |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in results:
        ours, theirs = r.cpu_seconds()
        latency = r.ready_after_create_seconds or {}
        rows.append(
            f"| {r.n} | {r.round} | {r.nodes} | {r.deployments_seconds:.1f} s | {r.ready_seconds:.1f} s | "
            f"{latency.get('p50', 0):.1f} s / {latency.get('p90', 0):.1f} s | "
            + (
                f"{r.baseline_available_seconds:.1f} s | {r.ready_seconds / r.baseline_available_seconds:.2f} | "
                if r.baseline_available_seconds
                else "- | - | "
            )
            + f"{r.operator_writes_per_cr:.2f} | {r.apiserver_writes_per_cr:.2f} | "
            f"{r.quiet_operator_writes} / {r.quiet_apiserver_writes} in {r.quiet_seconds:.0f} s | "
            f"{r.peak_rss_mib:.0f} MiB | {r.operator_cpu_seconds:.0f} s | "
            f"{r.cluster_cpu_seconds.get('kube-apiserver', 0):.0f} s | "
            + (f"{ours:.0f} s / {theirs:.0f} s |" if theirs is not None else f"{ours:.0f} s / - |")
        )
    return "\n".join(rows)


def ratio_summary(results: list[ScaleResult]) -> list[str]:
    """One line per N: each round's ratio and their median. On a shared machine one pair can
    land in a busy minute and the next in a quiet one; the median of interleaved pairs is the
    figure that a second run of the script reproduces."""
    lines = []
    for n in sorted({r.n for r in results}):
        ratios = [
            r.ready_seconds / r.baseline_available_seconds
            for r in results
            if r.n == n and r.baseline_available_seconds
        ]
        if ratios:
            shown = ", ".join(f"{x:.2f}" for x in ratios)
            lines.append(f"N={n}: ratio per round {shown}; median {statistics.median(ratios):.2f}")
    for r in results:
        added = traffic_added(r)
        if added:
            lines.append(
                f"N={r.n} round {r.round}: API server traffic, operator side minus no operator: {added}"
            )
    placements = {(r.apiserver_cpus, r.operator_cpus) for r in results}
    lines += [f"API server on CPUs {a}, operator on CPUs {o}" for a, o in sorted(placements)]
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, nargs="+", default=[100, 500, 1000])
    parser.add_argument("--quiet-seconds", type=float, default=60.0)
    parser.add_argument("--timeout", type=float, default=600.0, help="give up on one N after this long")
    parser.add_argument("--json", type=Path, help="also write the raw results here")
    parser.add_argument("--no-baseline", action="store_true", help="skip the no-operator reference run")
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="run this many operator / no-operator pairs per N, one after the other, and print the median ratio",
    )
    parser.add_argument(
        "--split-cpus",
        action="store_true",
        help="control plane on the first CPU, the operator and this script on the others (both sides)",
    )
    parser.add_argument(
        "--apiserver-profile",
        type=Path,
        metavar="DIR",
        help="write the API server's CPU profile of each side's first --profile-seconds into DIR "
        "(n<N>-r<round>-operator.pprof, ...-baseline.pprof; read with `go tool pprof -top`)",
    )
    parser.add_argument("--profile-seconds", type=float, default=40.0)
    args = parser.parse_args()
    if args.apiserver_profile:
        args.apiserver_profile.mkdir(parents=True, exist_ok=True)

    def profile(n: int, round_: int, side: str) -> Profile | None:
        if not args.apiserver_profile:
            return None
        return args.profile_seconds, args.apiserver_profile / f"n{n}-r{round_}-{side}.pprof"

    control_plane: set[int] | None = None
    if args.split_cpus:
        mine = sorted(os.sched_getaffinity(0))
        if len(mine) < 2:
            parser.error(f"--split-cpus needs at least 2 CPUs; this process may use {len(mine)}")
        control_plane = {mine[0]}
        os.sched_setaffinity(0, set(mine[1:]))  # the operator starts from here and inherits it
    with tempfile.TemporaryDirectory(prefix="gptoss-scale-") as tmp:
        results = []
        for n in args.n:
            for round_ in range(1, args.rounds + 1):
                result = run_one(
                    n,
                    args.quiet_seconds,
                    args.timeout,
                    Path(tmp),
                    control_plane,
                    profile(n, round_, "operator"),
                )
                result.round = round_
                if not args.no_baseline:
                    base = run_baseline(
                        n, args.timeout, Path(tmp), control_plane, profile(n, round_, "baseline")
                    )
                    result.baseline_available_seconds = base.available_seconds
                    result.baseline_submit_seconds = base.submit_seconds
                    result.baseline_cluster_cpu_seconds = base.cluster_cpu_seconds
                    result.baseline_client_cpu_seconds = base.client_cpu_seconds
                    result.baseline_apiserver_traffic = base.apiserver_traffic
                print(json.dumps(asdict(result)), flush=True)
                results.append(result)
    print()
    print(table(results))
    for line in ratio_summary(results):
        print(line)
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in results], indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
