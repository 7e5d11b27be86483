"""Operator settings: environment variables, overridden by `gptoss-operator run` flags.

Each field names its environment variable as its alias (environment.py); docs/operator.md has
the table of variables, flags and defaults, and a unit test keeps the two in step.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any, Final, Self

from pydantic import Field, field_validator
from pydantic_settings import NoDecode

from gptoss_operator import __version__
from gptoss_operator.environment import Environment, EnvSettings
from gptoss_operator.planning.settings import DEFAULT_SETTINGS, PlannerSettings

FIELD_MANAGER: Final = "gptoss-operator"
# The router runs from the operator's own image (`gptoss-operator router`); the Helm chart sets
# GPTOSS_ROUTER_IMAGE to the image it installs the operator from.
DEFAULT_ROUTER_IMAGE: Final = f"ghcr.io/gpt-oss-operator/gptoss-operator:{__version__}"
MANAGED_BY: Final = "gptoss-operator"
# A Kubernetes object name that is a DNS subdomain (RFC 1123), as Secret names are.
_DNS_SUBDOMAIN: Final = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")


class OperatorSettings(EnvSettings):
    """Each knob's environment variable is its field's alias (environment.py)."""

    namespaces: Annotated[tuple[str, ...], NoDecode] = Field(
        default=(), validation_alias="GPTOSS_NAMESPACES", description="Namespaces to watch; empty means all."
    )
    # Reconciles wait on API round trips, not CPU: 16 keep a loaded API server busy without
    # piling up requests (bench/operator_scale.py, docs/operator.md).
    workers: int = Field(
        default=16, ge=1, le=256, validation_alias="GPTOSS_WORKERS", description="Concurrent reconciles."
    )
    metrics_port: int = Field(default=8080, ge=0, le=65535, validation_alias="GPTOSS_METRICS_PORT")
    cluster_domain: str = Field(
        default="",
        validation_alias="GPTOSS_CLUSTER_DOMAIN",
        description="Appended to NAME.NS.svc in status.endpoint when set.",
    )
    # vLLM's docs run the server with --shm-size / --ipc=host: NCCL between tensor-parallel
    # ranks uses /dev/shm, and the container runtime's 64 MiB default fails TP > 1.
    shm_size: str = Field(default="16Gi", validation_alias="GPTOSS_SHM_SIZE")
    # A relist every minute catches deletions a reconnecting watch missed (and notices a
    # deleted CRD) at the cost of one LIST per kind; watches deliver everything else at once.
    relist_seconds: float = Field(
        default=60.0,
        gt=0,
        validation_alias="GPTOSS_RELIST_SECONDS",
        description="Seconds between full relists.",
    )
    # A ModelDeployment status that only says "on its way" (Pending, Starting, Downloading with
    # nothing wrong) is written at most this long after it is first decided, so that a model
    # coming up fast gets one status write, not one per step (controller/pacing.py). Problems,
    # Ready and every event are written at once; 0 writes every change at once.
    status_window_seconds: float = Field(
        default=10.0,
        ge=0,
        le=300,
        validation_alias="GPTOSS_STATUS_WINDOW_SECONDS",
        description="Longest hold of a progress-only status write.",
    )
    router_image: str = Field(
        default=DEFAULT_ROUTER_IMAGE,
        validation_alias="GPTOSS_ROUTER_IMAGE",
        description="Image of RoutePolicy router pods.",
    )
    # Registries that need credentials: the Secrets (type kubernetes.io/dockerconfigjson) go on the
    # pods the operator creates; a pod can only name Secrets of its own namespace, so each must
    # exist in every namespace with ModelDeployments or RoutePolicies. Not the operator's own pod:
    # the Helm chart's imagePullSecrets is for that. Not GPTOSS_IMAGE_PULL_SECRETS: GPTOSS_IMAGE_*
    # names a vendor's default vLLM image (PlannerSettings.images).
    image_pull_secrets: Annotated[tuple[str, ...], NoDecode] = Field(
        default=(),
        validation_alias="GPTOSS_PULL_SECRETS",
        description="Secret names (comma-separated) for imagePullSecrets of vLLM, download and router pods.",
    )
    # Its knobs (GPTOSS_IMAGE_NVIDIA / GPTOSS_IMAGE_AMD) are declared on PlannerSettings.
    planner: PlannerSettings = Field(default_factory=lambda: DEFAULT_SETTINGS)

    @field_validator("namespaces", "image_pull_secrets", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(n.strip() for n in value.split(",") if n.strip())
        return value

    @field_validator("image_pull_secrets")
    @classmethod
    def _secret_names(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        # Checked here, once at start: a bad name would otherwise fail every pod write.
        for name in value:
            if len(name) > 253 or not _DNS_SUBDOMAIN.fullmatch(name):
                raise ValueError(
                    f"{name!r} is not a Secret name (a DNS subdomain: lowercase a-z, 0-9, '-', '.')"
                )
        return tuple(dict.fromkeys(value))  # each once, in the given order

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Self:
        return cls(**Environment(cls, env)(), planner=PlannerSettings.from_env(env))

    def endpoint(self, name: str, namespace: str, port: int | None = None) -> str:
        """In-cluster OpenAI base URL of the Service ``name`` (a model's port by default)."""
        host = f"{name}.{namespace}.svc" + (f".{self.cluster_domain}" if self.cluster_domain else "")
        return f"http://{host}:{port or self.planner.port}/v1"
