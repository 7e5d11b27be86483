"""`gptoss-operator run`: the ModelDeployment operator (kopf) plus its metrics endpoint."""

from __future__ import annotations

import argparse
import os
import socket
import sys
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

from gptoss_operator.settings import OperatorSettings

if TYPE_CHECKING:
    from gptoss_operator.credentials import Credentials
    from gptoss_operator.metrics import OperatorMetrics


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
        "--metrics-address", default="0.0.0.0", help="address /metrics listens on (default: all)"
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
    parser.add_argument(
        "--liveness-address", default="0.0.0.0", help="address /healthz listens on (default: all)"
    )
    parser.add_argument(
        "--log-format",
        choices=("text", "json"),
        default="text",
        help="json: one JSON object per line (message, timestamp, severity), like the router",
    )
    parser.add_argument("--verbose", "-v", action="store_true", help="debug logging")


def port_in_use(address: str, port: int) -> str | None:
    """Why ``address:port`` cannot be listened on, or None. kopf binds the liveness endpoint
    inside its own task, where a taken port ends in a traceback; trying first turns it into
    one line (a port taken in between still fails, with kopf's error)."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as aiohttp and http.server do
        try:
            s.bind((address, port))
        except OSError as e:
            return e.strerror or str(e)
    return None


def _listen_error(what: str, address: str, port: int, why: str) -> int:
    print(f"gptoss-operator run: cannot listen for {what} on {address}:{port}: {why}", file=sys.stderr)
    return 1


def run(args: argparse.Namespace) -> int:
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

    if args.liveness_port and (why := port_in_use(args.liveness_address, args.liveness_port)):
        return _listen_error("/healthz", args.liveness_address, args.liveness_port, why)
    metrics = OperatorMetrics()
    if settings.metrics_port:
        try:
            start_http_server(settings.metrics_port, addr=args.metrics_address, registry=metrics.registry)
        except OSError as e:
            return _listen_error(
                "/metrics", args.metrics_address, settings.metrics_port, e.strerror or str(e)
            )
    # Credentials that cannot be used (a KUBECONFIG naming no file, no kubeconfig outside a pod)
    # end the process here with one line; kopf's login would instead log an error and retry
    # every minute, forever.
    from gptoss_operator import credentials

    try:
        loaded = credentials.load()
    except credentials.CredentialsError as e:
        print(f"gptoss-operator run: {e}", file=sys.stderr)
        return 1
    controller = Controller(settings, metrics)
    controller.credentials = loaded  # kopf's login starts from these; tokens are read afresh
    log_format = kopf.LogFormat.JSON if args.log_format == "json" else kopf.LogFormat.FULL
    kopf.configure(verbose=args.verbose, log_prefix=False, log_format=log_format)
    logging.getLogger("gptoss_operator").setLevel(logging.DEBUG if args.verbose else logging.INFO)
    if not args.verbose:
        # One line per handled watch event / per API request drowns what matters at 1,000 objects.
        logging.getLogger("kopf.objects").setLevel(logging.WARNING)
        logging.getLogger("httpx").setLevel(logging.WARNING)
    host = f"[{args.liveness_address}]" if ":" in args.liveness_address else args.liveness_address
    # kopf names this process by $POD_ID, else by getpass.getuser()@host, and getuser() raises
    # KeyError for a uid without an /etc/passwd entry: how a kubelet runs the image (runAsUser
    # 65532; podman's --user adds an entry, a kubelet does not). kopf's detect_own_id reads
    # POD_ID first (https://kopf.readthedocs.io/en/stable/peering/).
    from gptoss_operator import leader

    os.environ.setdefault("POD_ID", leader.default_identity())
    operator = kopf.operator(
        registry=controller.registry,
        standalone=True,
        clusterwide=not settings.namespaces,
        namespaces=list(settings.namespaces),
        liveness_endpoint=f"http://{host}:{args.liveness_port}/healthz" if args.liveness_port else None,
    )
    if not args.leader_elect:
        metrics.leader.set(1)
    return run_until_stopped(_elected(args, operator, metrics, loaded) if args.leader_elect else operator)


def run_until_stopped(main: Coroutine[Any, Any, None]) -> int:
    """Run the operator to its end: 0 when it was stopped, 1 when one of our CRDs was deleted
    under its watch (one log line; the restart watches the kind afresh). Anything else keeps
    its traceback."""
    import asyncio
    import logging

    from gptoss_operator.controller.controller import deleted_crd

    try:
        asyncio.run(main)
    except Exception as error:
        plural = deleted_crd(error)
        if plural is None:
            raise
        logging.getLogger("gptoss_operator").error(
            "the %s CRD was deleted while it was watched; exiting so that the restarted operator "
            "watches it afresh once it is back",
            plural,
        )
        return 1
    return 0


async def _elected(
    args: argparse.Namespace,
    operator: Coroutine[Any, Any, None],
    metrics: OperatorMetrics,
    loaded: Credentials,
) -> None:
    """Wait for the Lease (answering /healthz meanwhile), then run kopf while renewing it."""
    import asyncio

    from gptoss_operator import leader
    from gptoss_operator.kube import KubeAPI
    from gptoss_operator.settings import FIELD_MANAGER

    # A client of its own, outside the metrics registry: Lease writes are not reconcile writes.
    api = KubeAPI(loaded, field_manager=FIELD_MANAGER)
    elector = leader.LeaderElector(
        api,
        name=args.leader_elect_lease_name,
        namespace=args.leader_elect_namespace or leader.default_namespace(),
        identity=leader.default_identity(),
    )
    health = (
        await leader.serve_standby_health(args.liveness_address, args.liveness_port)
        if args.liveness_port
        else None
    )
    try:
        await elector.acquire()
    finally:
        if health is not None:
            await health.cleanup()  # kopf serves /healthz on that port from now on
    metrics.leader.set(1)  # the process exits when it loses the Lease: never reset
    renewing = asyncio.create_task(elector.renew_forever())
    try:
        await operator
        renewing.cancel()
        await elector.release()  # kopf has stopped: no write of ours can follow
    finally:
        renewing.cancel()
        await api.aclose()
