"""Operator settings: environment variables, overridden by `gptoss-operator run` flags.

| env | flag | default |
| --- | --- | --- |
| GPTOSS_NAMESPACES (comma-separated) | --namespace (repeatable) | all namespaces |
| GPTOSS_WORKERS | --workers | 16 concurrent reconciles |
| GPTOSS_METRICS_PORT | --metrics-port | 8080 (/metrics); 0 disables |
| GPTOSS_IMAGE_NVIDIA / GPTOSS_IMAGE_AMD | (env only) | the planner's pinned images |
| GPTOSS_CLUSTER_DOMAIN | (env only) | "" (endpoint http://NAME.NS.svc:8000/v1) |
| GPTOSS_SHM_SIZE | (env only) | 16Gi (/dev/shm for NCCL between TP ranks) |
| GPTOSS_RELIST_SECONDS | (env only) | 60 (full relist: catches deletions a watch missed) |
| GPTOSS_ROUTER_IMAGE | (env only) | this operator's own image at its version (runs RoutePolicy routers) |
| GPTOSS_GPU_PRODUCT_LABEL_KEYS | (env only) | JSON {vendor: node label key}, e.g. {"nvidia": "nvidia.com/gpu.product"} |
| GPTOSS_GPU_PRODUCT_LABEL_VALUES | (env only) | JSON {GPU type: [label values]}, replacing the catalog's values for that type |
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Final

from pydantic import BaseModel, ConfigDict, Field

from gptoss_operator import __version__
from gptoss_operator.planning.settings import DEFAULT_SETTINGS, PlannerSettings

FIELD_MANAGER: Final = "gptoss-operator"
# The router runs from the operator's own image (`gptoss-operator router`); the Helm chart sets
# GPTOSS_ROUTER_IMAGE to the image it installs the operator from.
DEFAULT_ROUTER_IMAGE: Final = f"ghcr.io/gpt-oss-operator/gptoss-operator:{__version__}"
MANAGED_BY: Final = "gptoss-operator"


class OperatorSettings(BaseModel):
    model_config = ConfigDict(frozen=True)

    namespaces: tuple[str, ...] = Field(default=(), description="Namespaces to watch; empty means all.")
    # Reconciles wait on API round trips, not CPU: 16 keep a loaded API server busy without
    # piling up requests (bench/operator_scale.py, docs/operator.md).
    workers: int = Field(default=16, ge=1, le=256, description="Concurrent reconciles.")
    metrics_port: int = Field(default=8080, ge=0, le=65535)
    cluster_domain: str = Field(
        default="", description="Appended to NAME.NS.svc in status.endpoint when set."
    )
    # vLLM's docs run the server with --shm-size / --ipc=host: NCCL between tensor-parallel
    # ranks uses /dev/shm, and the container runtime's 64 MiB default fails TP > 1.
    shm_size: str = Field(default="16Gi")
    # A relist every minute catches deletions a reconnecting watch missed (and notices a
    # deleted CRD) at the cost of one LIST per kind; watches deliver everything else at once.
    relist_seconds: float = Field(default=60.0, gt=0, description="Seconds between full relists.")
    router_image: str = Field(default=DEFAULT_ROUTER_IMAGE, description="Image of RoutePolicy router pods.")
    planner: PlannerSettings = Field(default_factory=lambda: DEFAULT_SETTINGS)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> OperatorSettings:
        env = os.environ if env is None else env
        values: dict[str, object] = {}
        if env.get("GPTOSS_NAMESPACES"):
            values["namespaces"] = tuple(n.strip() for n in env["GPTOSS_NAMESPACES"].split(",") if n.strip())
        for key, name in (("GPTOSS_WORKERS", "workers"), ("GPTOSS_METRICS_PORT", "metrics_port")):
            if env.get(key):
                values[name] = int(env[key])
        if env.get("GPTOSS_CLUSTER_DOMAIN"):
            values["cluster_domain"] = env["GPTOSS_CLUSTER_DOMAIN"]
        if env.get("GPTOSS_SHM_SIZE"):
            values["shm_size"] = env["GPTOSS_SHM_SIZE"]
        if env.get("GPTOSS_RELIST_SECONDS"):
            values["relist_seconds"] = float(env["GPTOSS_RELIST_SECONDS"])
        if env.get("GPTOSS_ROUTER_IMAGE"):
            values["router_image"] = env["GPTOSS_ROUTER_IMAGE"]
        images = dict(DEFAULT_SETTINGS.images)
        if env.get("GPTOSS_IMAGE_NVIDIA"):
            images["nvidia"] = env["GPTOSS_IMAGE_NVIDIA"]
        if env.get("GPTOSS_IMAGE_AMD"):
            images["amd"] = env["GPTOSS_IMAGE_AMD"]
        planner: dict[str, object] = DEFAULT_SETTINGS.model_dump() | {"images": images}
        # The Helm chart's gpuProductLabels values arrive as JSON; the planner model validates
        # them (unknown vendors or GPU types are refused at start, not at the first plan).
        if env.get("GPTOSS_GPU_PRODUCT_LABEL_KEYS"):
            keys = dict(DEFAULT_SETTINGS.product_label_keys) | json.loads(
                env["GPTOSS_GPU_PRODUCT_LABEL_KEYS"]
            )
            planner["product_label_keys"] = keys
        if env.get("GPTOSS_GPU_PRODUCT_LABEL_VALUES"):
            planner["product_label_values"] = json.loads(env["GPTOSS_GPU_PRODUCT_LABEL_VALUES"])
        values["planner"] = PlannerSettings.model_validate(planner)
        return cls.model_validate(values)

    def endpoint(self, name: str, namespace: str, port: int | None = None) -> str:
        """In-cluster OpenAI base URL of the Service ``name`` (a model's port by default)."""
        host = f"{name}.{namespace}.svc" + (f".{self.cluster_domain}" if self.cluster_domain else "")
        return f"http://{host}:{port or self.planner.port}/v1"
