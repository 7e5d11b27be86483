"""The gptoss.dev API: typed models (the single source of truth) and the CRDs generated from them.

Pure: no Kubernetes client, no kopf, no HTTP (import-linter enforces it).
"""

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
    "TP_SIZES",
    "VERSION",
    "Condition",
    "EnvVar",
    "GPUSpec",
    "GPUType",
    "ModelDeployment",
    "ModelDeploymentSpec",
    "ModelDeploymentStatus",
    "ModelName",
    "Plan",
    "RefusalReason",
    "ServingSpec",
    "SourceSpec",
    "describe_validation_error",
    "ready_text",
]
