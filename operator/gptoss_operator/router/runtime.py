"""The router's live view of one configuration: each route's backends and their endpoints.

Built once per configuration generation (state.py ``build_runtime``) and mutated only by single
attribute assignments: a watcher replaces a backend's ``endpoints`` tuple, a key refresh sets
``api_key`` / ``unavailable``. Selection (selection.py) reads these objects and never writes them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from gptoss_operator.router.config import BackendConfig, RouteConfig
from gptoss_operator.router.load import Endpoint
from gptoss_operator.router.providers import FLAVORS, Flavor


@dataclass(slots=True, eq=False)
class BackendRuntime:
    """A configured backend plus its live endpoint list (replaced atomically by watchers)."""

    config: BackendConfig
    flavor: Flavor
    overflow_target: bool = False
    endpoints: tuple[Endpoint, ...] = ()
    unavailable: str | None = None  # why the backend cannot be used right now (e.g. key file)
    api_key: str | None = field(default=None, repr=False)  # never in repr, logs or errors

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def weight(self) -> int:
        return self.config.weight

    @property
    def external(self) -> bool:
        return self.config.external is not None

    @property
    def upstream_model(self) -> str | None:
        """The model id to send upstream, or None to forward the client's unchanged."""
        if self.config.external is not None:
            return self.config.external.model
        assert self.config.cluster is not None
        return self.config.cluster.model


def build_backend(config: BackendConfig, overflow_target: bool) -> BackendRuntime:
    flavor_name = config.external.flavor if config.external else config.cluster.flavor  # type: ignore[union-attr]
    return BackendRuntime(config=config, flavor=FLAVORS[flavor_name], overflow_target=overflow_target)


@dataclass(slots=True, eq=False)
class RouteRuntime:
    config: RouteConfig
    backends: tuple[BackendRuntime, ...]

    @property
    def model(self) -> str:
        return self.config.model

    def pool(self) -> list[Endpoint]:
        """The in-cluster endpoints whose saturation triggers overflow."""
        return [ep for b in self.backends if not b.external and not b.overflow_target for ep in b.endpoints]
