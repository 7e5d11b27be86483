"""How fast the local API server takes the writes the operator makes, and at what CPU cost.

    .venv/bin/python -m bench.apiserver_write_probe [--count 200]

Starts its own cluster, then server-side applies --count Deployments (replicas 0, so no
controller work follows), ClusterIP Services and headless Services, at concurrency 1 and 16,
and creates (POST) Deployments and ClusterIP Services the same way, through the operator's own
client (gptoss_operator.kube.KubeAPI). With the CRDs installed it also creates ModelDeployments
(the scale benchmark's manifest) and writes a first status to ModelDeployments created
beforehand: the status patch the operator's own ``decide`` makes for such an object, and the
same patch cut to its ``phase`` (what the rest of the status costs). These are
the writes a cluster with the operator takes on top of one without it. Prints writes per
second, latency percentiles and the API server's CPU milliseconds per write (from /proc, over
each batch). Everything runs twice, the second time in the reverse order, so that a variant
is not favoured by when it ran (a cluster's first writes of a kind are slower, and the
machine's load changes).
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import yaml

from bench.operator_scale import cluster_pids, process_stats
from bench.operator_scale import manifest as model_deployment
from devtools.cluster import LocalCluster
from gptoss_operator.api.v1alpha1 import ModelDeployment
from gptoss_operator.controller.modeldeployment.decide import decide
from gptoss_operator.controller.modeldeployment.gathered import Gathered
from gptoss_operator.kube import Credentials, KubeAPI
from gptoss_operator.settings import OperatorSettings

NAMESPACE = "probe"
STATUS_NAMESPACE = "probe-status"
CRDS = Path(__file__).resolve().parents[1] / "crds"


def deployment(i: int) -> dict[str, Any]:
    labels = {"app": f"p{i}"}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": f"p{i}", "namespace": NAMESPACE},
        "spec": {
            "replicas": 0,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "c", "image": "x"}]},
            },
        },
    }


def service(headless: bool) -> Callable[[int], dict[str, Any]]:
    def build(i: int) -> dict[str, Any]:
        spec: dict[str, Any] = {"selector": {"app": f"p{i}"}, "ports": [{"name": "http", "port": 8000}]}
        if headless:
            spec["clusterIP"] = "None"
        name = f"s{i}{'h' if headless else ''}"
        return {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": name, "namespace": NAMESPACE},
            "spec": spec,
        }

    return build


def model_deployment_in(namespace: str) -> Callable[[int], dict[str, Any]]:
    def build(i: int) -> dict[str, Any]:
        body = model_deployment(i)
        body["metadata"]["namespace"] = namespace
        return body

    return build


def first_status(body: dict[str, Any]) -> dict[str, Any]:
    """The status patch the operator writes first for a new ModelDeployment ``body``."""
    # The uid only reaches the children's ownerReferences, not the status.
    stored = {**body, "metadata": {**body["metadata"], "generation": 1, "uid": "probe"}}
    gathered = Gathered(
        key=(stored["metadata"]["namespace"], stored["metadata"]["name"]),
        body=stored,
        model=ModelDeployment.model_validate(stored),
        spec_error=None,
        children={},
        server_pods=(),
        nodes=(),
        gpus_in_use={},
    )
    patch = decide(gathered, OperatorSettings(), "2026-01-01T00:00:00Z").status.patch
    assert patch is not None
    return patch


def with_first_status(i: int) -> dict[str, Any]:
    body = model_deployment_in(STATUS_NAMESPACE)(i)
    return {**body, "status": first_status(body)}


def with_phase_only(i: int) -> dict[str, Any]:
    """The same first status cut to its ``phase``: how the patch's cost grows with the status."""
    body = with_first_status(i)
    return {**body, "status": {"phase": body["status"]["phase"]}}


Write = Callable[[KubeAPI, dict[str, Any]], Awaitable[Any]]


async def apply(api: KubeAPI, body: dict[str, Any]) -> Any:
    return await api.apply(body)


async def create(api: KubeAPI, body: dict[str, Any]) -> Any:
    return await api.create(body)


async def patch_status(api: KubeAPI, body: dict[str, Any]) -> Any:
    meta = body["metadata"]
    return await api.patch_status(
        body["apiVersion"], body["kind"], meta["namespace"], meta["name"], body["status"]
    )


async def probe(
    api: KubeAPI,
    build: Callable[[int], dict[str, Any]],
    count: int,
    concurrency: int,
    offset: int,
    *,
    apiserver_pid: int,
    write: Write,
) -> str:
    sem = asyncio.Semaphore(concurrency)
    latencies: list[float] = []

    async def one(i: int) -> None:
        body = build(offset + i)
        async with sem:
            start = time.perf_counter()
            await write(api, body)
            latencies.append(time.perf_counter() - start)

    cpu_before = process_stats(apiserver_pid)[1]
    start = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(count)))
    elapsed = time.perf_counter() - start
    cpu_ms = 1000 * (process_stats(apiserver_pid)[1] - cpu_before) / count
    latencies.sort()
    p50, p99 = latencies[len(latencies) // 2], latencies[int(len(latencies) * 0.99)]
    return (
        f"{count / elapsed:6.0f}/s  p50 {p50 * 1000:6.1f} ms  p99 {p99 * 1000:6.1f} ms  "
        f"API server CPU {cpu_ms:5.2f} ms/write"
    )


async def run(cluster: LocalCluster, count: int) -> None:
    config = yaml.safe_load(cluster.kubeconfig.read_text())
    server, user = config["clusters"][0]["cluster"], config["users"][0]["user"]
    credentials = Credentials(
        server=server["server"],
        ca_path=server["certificate-authority"],
        certificate_path=user["client-certificate"],
        private_key_path=user["client-key"],
    )
    api = KubeAPI(credentials, field_manager="probe")
    pid = cluster_pids(cluster)["kube-apiserver"]
    variants: list[tuple[str, Callable[[int], dict[str, Any]], Write]] = [
        ("Deployment (server-side apply)", deployment, apply),
        ("Deployment (POST)", deployment, create),
        ("Service, ClusterIP", service(False), apply),
        ("Service, ClusterIP (POST)", service(False), create),
        ("Service, headless", service(True), apply),
        ("ModelDeployment (POST)", model_deployment_in(NAMESPACE), create),
        ("ModelDeployment first status", with_first_status, patch_status),
        ("ModelDeployment status, phase only", with_phase_only, patch_status),
    ]
    plan = [
        (round_, label, build, write, concurrency)
        for round_, order in enumerate((variants, variants[::-1]), 1)
        for label, build, write in order
        for concurrency in (1, 16)
    ]
    try:
        # The objects whose first status is written are created up front (not measured).
        targets = [
            n * count + i
            for n, (*_, write, _c) in enumerate(plan)
            if write is patch_status
            for i in range(count)
        ]
        await asyncio.gather(*(create(api, model_deployment_in(STATUS_NAMESPACE)(i)) for i in targets))
        for n, (round_, label, build, write, concurrency) in enumerate(plan):
            result = await probe(api, build, count, concurrency, n * count, apiserver_pid=pid, write=write)
            print(f"round {round_}  {label:<36} concurrency {concurrency:>2}: {result}", flush=True)
    finally:
        await api.aclose()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--count", type=int, default=200)
    args = parser.parse_args()
    cluster = LocalCluster.start(name=f"probe-{int(time.time())}", reuse_env=False)
    try:
        cluster.kubectl("create", "namespace", NAMESPACE)
        cluster.kubectl("create", "namespace", STATUS_NAMESPACE)
        cluster.kubectl("apply", "-f", str(CRDS))
        cluster.kubectl("wait", "--for=condition=Established", "--timeout=60s", "-f", str(CRDS))
        asyncio.run(run(cluster, args.count))
    finally:
        cluster.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
