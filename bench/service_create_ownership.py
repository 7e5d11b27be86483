"""Does a Service created by POST and then server-side applied lose a field the apply drops?

    .venv/bin/python -m bench.service_create_ownership

Starts its own cluster, then through the operator's own client (gptoss_operator.kube.KubeAPI,
field manager ``gptoss-operator``): creates a Service with two ports by POST, server-side applies
it with one port, and prints the ports left and the managedFields entries. Then the same with a
Service created by server-side apply. Why the operator creates its Services by apply although a
POST costs the API server less (docs/operator.md, Scale): a POST makes the manager an ``Update``
owner of every field, and fields it owns that way stay when a later apply omits them.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import yaml

from devtools.cluster import LocalCluster
from gptoss_operator.kube import Credentials, KubeAPI

PORTS = [{"name": "http", "port": 8000}, {"name": "metrics", "port": 9000}]


def service(name: str, ports: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"selector": {"app": name}, "ports": ports},
    }


def describe(label: str, svc: dict[str, Any]) -> str:
    ports = [p["name"] for p in svc["spec"]["ports"]]
    managers = [(m["manager"], m["operation"]) for m in svc["metadata"].get("managedFields", [])]
    return f"{label}: ports after an apply with only 'http': {ports}; managedFields: {managers}"


async def run(cluster: LocalCluster) -> None:
    config = yaml.safe_load(cluster.kubeconfig.read_text())
    server, user = config["clusters"][0]["cluster"], config["users"][0]["user"]
    api = KubeAPI(
        Credentials(
            server=server["server"],
            ca_path=server["certificate-authority"],
            certificate_path=user["client-certificate"],
            private_key_path=user["client-key"],
        ),
        field_manager="gptoss-operator",
    )
    try:
        await api.create(service("posted", PORTS))
        print(describe("created by POST", await api.apply(service("posted", PORTS[:1]))))
        await api.apply(service("applied", PORTS))
        print(describe("created by apply", await api.apply(service("applied", PORTS[:1]))))
    finally:
        await api.aclose()


def main() -> int:
    cluster = LocalCluster.start(name=f"ownership-{int(time.time())}", reuse_env=False)
    try:
        asyncio.run(run(cluster))
    finally:
        cluster.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
