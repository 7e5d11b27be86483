"""What one RoutePolicy's reconcile decides from: a frozen value, built by ``gather``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gptoss_operator.api.routepolicy import RoutePolicy
from gptoss_operator.controller.store import Key
from gptoss_operator.observed import ChildState


@dataclass(frozen=True)
class ModelDeploymentView:
    """A referenced ModelDeployment as the router's status needs it."""

    served_model: str  # spec.model: the name its vLLM serves
    ready: bool  # its Ready condition is True
    summary: str  # phase and the Ready condition's message, for a backend's status
    scaled_to_zero: bool = False  # phase ScaledToZero: off on purpose, not on its way


@dataclass(frozen=True)
class RoutePolicyGathered:
    key: Key
    body: Mapping[str, Any]  # the RoutePolicy as stored (status included)
    policy: RoutePolicy | None  # None when the spec does not parse
    spec_error: str | None
    children: Mapping[str, ChildState]  # kind -> the child as last seen
    model_deployments: Mapping[str, ModelDeploymentView]  # referenced ones that exist, by name
    services: frozenset[str]  # referenced Services (``service`` backends) that exist
    secret_keys: Mapping[str, frozenset[str]]  # referenced Secrets that exist -> their key names
