"""``gptoss-operator check-operator``: is the installed operator up and is exactly one replica
writing? The chart's ``helm test`` runs it.

It finds the operator's pods through its metrics Service's EndpointSlices (pod IPs, so every
replica is asked, not the one a ClusterIP would pick), reads each one's ``/metrics`` and passes
when every ready replica answers with the operator's metrics and exactly one reports
``gptoss_operator_leader 1``; with ``--lease``, that replica must also be the Lease's holder
(the identity is ``<pod name>_<uuid>``, leader.py). It retries for ``--wait`` seconds, so a
check right after an install or a failover sees the election settle, and fails with the last
problems found.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import aiohttp

SERVICE_NAME_LABEL = "kubernetes.io/service-name"  # set on EndpointSlices by the controller
LEADER_METRIC = "gptoss_operator_leader"
# Exposed by every replica from its start, leader or standby: the process is the operator.
PRESENT_METRIC = "gptoss_operator_queue_depth"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--namespace", required=True, help="the operator's namespace")
    parser.add_argument("--service", required=True, help="the operator's metrics Service")
    parser.add_argument("--port-name", default="metrics", help="the Service's port for /metrics")
    parser.add_argument("--lease", default=None, help="leader election Lease (in --namespace) to match")
    parser.add_argument("--wait", type=float, default=30.0, help="seconds to retry before failing")


@dataclass(frozen=True)
class Replica:
    """One ready endpoint of the Service."""

    pod: str
    address: str
    port: int


@dataclass(frozen=True)
class Scrape:
    """What one replica's /metrics said: None for a metric it does not expose; ``error`` when
    it did not answer."""

    present: bool = False
    leader: float | None = None
    error: str | None = None


def ready_replicas(slices: list[dict[str, Any]], service: str, port_name: str) -> list[Replica]:
    """The ready endpoints of ``service`` from its EndpointSlices (conditions.ready unset counts
    as ready, discovery.k8s.io/v1)."""
    out: list[Replica] = []
    for s in slices:
        labels = (s.get("metadata") or {}).get("labels") or {}
        if labels.get(SERVICE_NAME_LABEL) != service:
            continue
        ports = [p for p in s.get("ports") or [] if p.get("name") == port_name]
        if not ports or ports[0].get("port") is None:
            continue
        for ep in s.get("endpoints") or []:
            if (ep.get("conditions") or {}).get("ready") is False or not ep.get("addresses"):
                continue
            pod = str((ep.get("targetRef") or {}).get("name") or ep["addresses"][0])
            out.append(Replica(pod, str(ep["addresses"][0]), int(ports[0]["port"])))
    return sorted(out, key=lambda r: r.pod)


def parse_metrics(text: str) -> Scrape:
    leader: float | None = None
    present = False
    for line in text.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        name, _, value = line.rpartition(" ")
        if name == LEADER_METRIC:
            leader = float(value)
        elif name == PRESENT_METRIC:
            present = True
    return Scrape(present=present, leader=leader)


def problems(replicas: list[Replica], scrapes: dict[str, Scrape], lease_holder: str | None) -> list[str]:
    """Why the operator is not healthy; empty when it is. ``lease_holder`` is None when no Lease
    is checked, "" when the Lease is missing or free."""
    if not replicas:
        return ["the Service has no ready endpoint: no operator pod is running and ready"]
    out: list[str] = []
    leaders = []
    for r in replicas:
        s = scrapes.get(r.pod, Scrape(error="not asked"))
        if s.error is not None:
            out.append(f"{r.pod} ({r.address}:{r.port}): /metrics did not answer: {s.error}")
        elif not s.present or s.leader is None:
            out.append(f"{r.pod}: /metrics answered without the operator's metrics")
        elif s.leader == 1:
            leaders.append(r.pod)
    if not out and len(leaders) != 1:
        out.append(f"{len(leaders)} replicas report {LEADER_METRIC} 1 ({', '.join(leaders)}); exactly 1 must")
    if not out and lease_holder is not None and not lease_holder.startswith(f"{leaders[0]}_"):
        out.append(f"{leaders[0]} reconciles but the Lease is held by {lease_holder or 'nobody'}")
    return out


def run(args: argparse.Namespace) -> int:
    import asyncio

    return asyncio.run(_check(args))


async def _check(args: argparse.Namespace) -> int:
    import asyncio
    import time

    import aiohttp

    from gptoss_operator import credentials, kinds
    from gptoss_operator.kube import KubeAPI, KubeError

    endpoint_slices = kinds.Kind("discovery.k8s.io/v1", "EndpointSlice", "endpointslices")
    try:
        api = KubeAPI(credentials.load(), field_manager="gptoss-operator-check")
    except credentials.CredentialsError as e:
        print(f"gptoss-operator check-operator: {e}", file=sys.stderr)
        return 1
    deadline = time.monotonic() + args.wait
    found: list[str] = []
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http:
            while True:
                try:
                    slices = await api.list(endpoint_slices, args.namespace) or []
                    replicas = ready_replicas(slices, args.service, args.port_name)
                    scrapes = {r.pod: await _scrape(http, r) for r in replicas}
                    holder = None
                    if args.lease:
                        lease = await api.get(
                            kinds.LEASE.api_version, kinds.LEASE.kind, args.namespace, args.lease
                        )
                        holder = str(((lease or {}).get("spec") or {}).get("holderIdentity") or "")
                    found = problems(replicas, scrapes, holder)
                except KubeError as e:
                    found = [f"the Kubernetes API refused: {e}"]
                if not found:
                    for r in replicas:
                        role = "leader" if scrapes[r.pod].leader == 1 else "standby"
                        print(f"ok: {r.pod} ({r.address}:{r.port}) answers /metrics as the {role}")
                    if holder is not None:
                        print(f"ok: Lease {args.namespace}/{args.lease} is held by {holder}")
                    return 0
                if time.monotonic() >= deadline:
                    break
                await asyncio.sleep(1)
    finally:
        await api.aclose()
    for problem in found:
        print(f"FAIL: {problem}", file=sys.stderr)
    return 1


async def _scrape(http: aiohttp.ClientSession, replica: Replica) -> Scrape:
    import aiohttp

    host = f"[{replica.address}]" if ":" in replica.address else replica.address
    try:
        async with http.get(f"http://{host}:{replica.port}/metrics") as resp:
            if resp.status != 200:
                return Scrape(error=f"HTTP {resp.status}")
            return parse_metrics(await resp.text())
    except (aiohttp.ClientError, TimeoutError) as e:
        return Scrape(error=f"{type(e).__name__}: {e}")
