"""``gptoss-operator router --config FILE``: the OpenAI-compatible hybrid router service.

Heavy imports (uvicorn, httpx, prometheus_client) happen inside ``run`` so that building the
CLI parser stays cheap for every other subcommand.
"""

from __future__ import annotations

import argparse
import socket
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="router configuration file (YAML or JSON, version 1)")
    parser.add_argument("--host", default="0.0.0.0", help="address to listen on (default: all)")
    parser.add_argument("--port", type=int, default=8080, help="port to listen on (default: 8080)")
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    parser.add_argument(
        "--no-access-log",
        action="store_true",
        help="do not log one line per request (errors are still logged)",
    )


def run(args: argparse.Namespace) -> int:
    import prometheus_client
    import uvicorn

    from gptoss_operator.router import logs
    from gptoss_operator.router.app import RouterApp
    from gptoss_operator.router.config import ConfigError
    from gptoss_operator.router.connections import ConnectionGuard, guarded_protocol

    # `*_created` series double the exposition size and nothing here reads them.
    prometheus_client.disable_created_metrics()  # type: ignore[no-untyped-call]
    logs.setup(args.log_level, access_log=not args.no_access_log)
    app = RouterApp(args.config)
    try:
        app.load_initial()
    except ConfigError as e:
        print(f"gptoss-operator router: invalid configuration {args.config}: {e}", file=sys.stderr)
        return 2
    try:
        sock = listening_socket(args.host, args.port)
    except OSError as e:
        print(
            f"gptoss-operator router: cannot listen on {args.host}:{args.port}: {e.strerror or e}",
            file=sys.stderr,
        )
        return 1
    guard = ConnectionGuard(app.metrics, lambda: app.runtime().config.server.connections)
    config = uvicorn.Config(
        app,
        host=args.host,
        port=args.port,
        # uvloop + httptools measured fastest for this app (docs/router.md, "Server choice");
        # the protocol is uvicorn's httptools one plus connection limits (router/connections.py).
        loop="uvloop",
        http=guarded_protocol(guard),
        lifespan="on",
        access_log=False,  # the router writes its own structured access log
        log_config=None,
        # The keep-alive idle timeout is server.connections.idleTimeout (router/connections.py);
        # uvicorn's own timer is replaced by it after each response.
        timeout_keep_alive=75,
        timeout_graceful_shutdown=30,
        server_header=False,
        # The router never looks at the client address; X-Forwarded-* parsing per request
        # is pure overhead here.
        proxy_headers=False,
    )
    server = uvicorn.Server(config)
    server.run(sockets=[sock])
    return 0 if server.started else 1


def listening_socket(host: str, port: int) -> socket.socket:
    """Bound here rather than by uvicorn, which logs a taken port as an error record and exits
    from inside its startup; this way it is one line naming the address (uvicorn's own
    ``Config.bind_socket`` does the same steps)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock
