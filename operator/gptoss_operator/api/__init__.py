"""The gptoss.dev API: typed models (the single source of truth) and the CRDs generated from them.

ModelDeployment: :mod:`gptoss_operator.api.v1alpha1` (``KIND``/``PLURAL``). RoutePolicy:
:mod:`gptoss_operator.api.routepolicy` (``ROUTE_POLICY_KIND``/``ROUTE_POLICY_PLURAL``; timeouts
turn into seconds with :func:`duration_seconds`).

Pure: no Kubernetes client, no kopf, no HTTP (import-linter enforces it).
"""

from gptoss_operator.api.durations import duration_seconds
from gptoss_operator.api.routepolicy import KIND as ROUTE_POLICY_KIND
from gptoss_operator.api.routepolicy import PLURAL as ROUTE_POLICY_PLURAL
from gptoss_operator.api.routepolicy import (
    Backend,
    BackendStatus,
    RoutePolicy,
    RoutePolicySpec,
    RoutePolicyStatus,
    backends_ready_text,
)
from gptoss_operator.api.routing_names import FallbackTrigger, FlavorName, ResidencyScope
from gptoss_operator.api.v1alpha1 import (
    API_VERSION,
    GROUP,
    KIND,
    MAX_CONTEXT,
    MODEL_NAMES,
    PLURAL,
    TP_SIZES,
    VERSION,
    Condition,
    EnvVar,
    GPUSpec,
    GPUType,
    ModelDeployment,
    ModelDeploymentSpec,
    ModelDeploymentStatus,
    ModelName,
    Plan,
    RefusalReason,
    ServingSpec,
    SourceSpec,
    ready_text,
)
from gptoss_operator.validation_messages import describe_validation_error

__all__ = [
    "API_VERSION",
    "GROUP",
    "KIND",
    "MAX_CONTEXT",
    "MODEL_NAMES",
    "PLURAL",
    "ROUTE_POLICY_KIND",
    "ROUTE_POLICY_PLURAL",
    "TP_SIZES",
    "VERSION",
    "Backend",
    "BackendStatus",
    "Condition",
    "EnvVar",
    "FallbackTrigger",
    "FlavorName",
    "GPUSpec",
    "GPUType",
    "ModelDeployment",
    "ModelDeploymentSpec",
    "ModelDeploymentStatus",
    "ModelName",
    "Plan",
    "RefusalReason",
    "ResidencyScope",
    "RoutePolicy",
    "RoutePolicySpec",
    "RoutePolicyStatus",
    "ServingSpec",
    "SourceSpec",
    "backends_ready_text",
    "describe_validation_error",
    "duration_seconds",
    "ready_text",
]
