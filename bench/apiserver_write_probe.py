"""How fast the local API server takes the writes the operator makes, and at what CPU cost.

    .venv/bin/python -m bench.apiserver_write_probe [--count 200]

Starts its own cluster, then server-side applies --count Deployments (replicas 0, so no
controller work follows), ClusterIP Services and headless Services, at concurrency 1 and 16,
and creates (POST) Deployments and ClusterIP Services the same way, through the operator's own
client (gptoss_operator.kube.KubeAPI). Prints writes per second, latency percentiles and the
API server's CPU milliseconds per write (from /proc, over each batch). Everything runs twice,
the second time in the reverse order, so that a variant is not favoured by when it ran (a
cluster's first writes of a kind are slower, and the machine's load changes).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

import yaml

from bench.operator_scale import process_stats
from devtools.cluster import LocalCluster
from gptoss_operator.kube import Credentials, KubeAPI

NAMESPACE = "probe"


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


async def probe(
    api: KubeAPI,
    build: Callable[[int], dict[str, Any]],
    count: int,
    concurrency: int,
    offset: int,
    *,
    apiserver_pid: int,
    create: bool = False,
) -> str:
    sem = asyncio.Semaphore(concurrency)
    latencies: list[float] = []

    async def one(i: int) -> None:
        async with sem:
            start = time.perf_counter()
            await (api.create if create else api.apply)(build(offset + i))
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
    pid = json.loads((cluster.kubeconfig.parent / "state.json").read_text())["pids"]["kube-apiserver"]
    variants: list[tuple[str, Callable[[int], dict[str, Any]], bool]] = [
        ("Deployment (server-side apply)", deployment, False),
        ("Deployment (POST)", deployment, True),
        ("Service, ClusterIP", service(False), False),
        ("Service, ClusterIP (POST)", service(False), True),
        ("Service, headless", service(True), False),
    ]
    try:
        offset = 0
        for round_, order in enumerate((variants, variants[::-1]), 1):
            for label, build, create in order:
                for concurrency in (1, 16):
                    result = await probe(
                        api, build, count, concurrency, offset, apiserver_pid=pid, create=create
                    )
                    offset += count
                    print(f"round {round_}  {label:<32} concurrency {concurrency:>2}: {result}", flush=True)
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
        asyncio.run(run(cluster, args.count))
    finally:
        cluster.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
