"""`gptoss-operator run`: the ModelDeployment operator (kopf) plus its metrics endpoint."""

from __future__ import annotations

import argparse
from collections.abc import Coroutine
from typing import Any

from gptoss_operator.settings import OperatorSettings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--namespace",
        "-n",
        action="append",
        default=None,
        help="watch only this namespace (repeatable); default: all namespaces (GPTOSS_NAMESPACES)",
    )
    parser.add_argument(
        "--workers", type=int, default=None, help="concurrent reconciles (GPTOSS_WORKERS, default 16)"
    )
    parser.add_argument(
        "--metrics-port",
        type=int,
        default=None,
        help="port for /metrics, 0 disables (GPTOSS_METRICS_PORT, default 8080)",
    )
    parser.add_argument(
        "--liveness-port",
        type=int,
        default=8081,
        help="port for kopf's /healthz liveness endpoint, 0 disables",
    )
    parser.add_argument(
        "--leader-elect",
        action="store_true",
        help="hold a coordination.k8s.io Lease before reconciling (several replicas; one writes)",
    )
    parser.add_argument(
        "--leader-elect-lease-name", default="gptoss-operator", help="name of the leader election Lease"
    )
    parser.add_argument(
        "--leader-elect-namespace",
        default=None,
        help="namespace of the Lease (default: the pod's namespace, POD_NAMESPACE, else default)",
    )
    parser.add_argument("--verbose", "-v", action="store_true", help="debug logging")


def run(args: argparse.Namespace) -> int:
    import asyncio
    import logging

    import kopf
    from prometheus_client import start_http_server

    from gptoss_operator.controller.controller import Controller
    from gptoss_operator.metrics import OperatorMetrics

    settings = OperatorSettings.from_env()
    update: dict[str, object] = {}
    if args.namespace:
        update["namespaces"] = tuple(args.namespace)
    if args.workers is not None:
        update["workers"] = args.workers
    if args.metrics_port is not None:
        update["metrics_port"] = args.metrics_port
    settings = OperatorSettings.model_validate(settings.model_dump() | update)

    metrics = OperatorMetrics()
    if settings.metrics_port:
        start_http_server(settings.metrics_port, registry=metrics.registry)
    controller = Controller(settings, metrics)
    kopf.configure(verbose=args.verbose, log_prefix=False)
    logging.getLogger("gptoss_operator").setLevel(logging.DEBUG if args.verbose else logging.INFO)
    if not args.verbose:
        # One line per handled watch event / per API request drowns what matters at 1,000 objects.
        logging.getLogger("kopf.objects").setLevel(logging.WARNING)
        logging.getLogger("httpx").setLevel(logging.WARNING)
    operator = kopf.operator(
        registry=controller.registry,
        standalone=True,
        clusterwide=not settings.namespaces,
        namespaces=list(settings.namespaces),
        liveness_endpoint=f"http://0.0.0.0:{args.liveness_port}/healthz" if args.liveness_port else None,
    )
    asyncio.run(_elected(args, operator) if args.leader_elect else operator)
    return 0


async def _elected(args: argparse.Namespace, operator: Coroutine[Any, Any, None]) -> None:
    """Wait for the Lease (answering /healthz meanwhile), then run kopf while renewing it."""
    import asyncio

    from gptoss_operator import credentials, leader
    from gptoss_operator.kube import KubeAPI
    from gptoss_operator.settings import FIELD_MANAGER

    # A client of its own, outside the metrics registry: Lease writes are not reconcile writes.
    api = KubeAPI(credentials.load(), field_manager=FIELD_MANAGER)
    elector = leader.LeaderElector(
        api,
        name=args.leader_elect_lease_name,
        namespace=args.leader_elect_namespace or leader.default_namespace(),
        identity=leader.default_identity(),
    )
    health = await leader.serve_standby_health(args.liveness_port) if args.liveness_port else None
    try:
        await elector.acquire()
    finally:
        if health is not None:
            await health.cleanup()  # kopf serves /healthz on that port from now on
    renewing = asyncio.create_task(elector.renew_forever())
    try:
        await operator
        renewing.cancel()
        await elector.release()  # kopf has stopped: no write of ours can follow
    finally:
        renewing.cancel()
        await api.aclose()
