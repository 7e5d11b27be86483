"""The router's ASGI app for granian (``--factory bench.router.granian_app:create``), used to
compare servers with the same application. The config path comes from GPTOSS_ROUTER_CONFIG."""

from __future__ import annotations

import os

from gptoss_operator.router.app import RouterApp


def create() -> RouterApp:
    app = RouterApp(os.environ["GPTOSS_ROUTER_CONFIG"])
    app.load_initial()
    return app
