"""Metadata every child shares: names, labels, owner reference, the config-hash annotation."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from gptoss_operator import labels as keys
from gptoss_operator.api.v1alpha1 import API_VERSION, KIND
from gptoss_operator.settings import MANAGED_BY

if TYPE_CHECKING:
    from gptoss_operator.api.v1alpha1 import ModelDeployment
    from gptoss_operator.settings import OperatorSettings

JSON = dict[str, Any]
APP_NAME: Final = "vllm"
# Where the models volume (cache PVC or emptyDir) holds Hugging Face's own cache.
HF_HOME_SUBDIR: Final = "hf"

# Pod- and container-level security every pod the operator creates carries: the restricted
# Pod Security Standard's seccomp and privilege-escalation rules
# (https://kubernetes.io/docs/concepts/security/pod-security-standards/). Neither vLLM nor the
# download needs the Kubernetes API, so no token is mounted; no service env either (vLLM reads
# VLLM_PORT, and a Service named "vllm" would inject VLLM_PORT=tcp://..., which crashes it:
# vLLM docs, "Deploying with Kubernetes", troubleshooting).
POD_SECURITY: Final[JSON] = {
    "enableServiceLinks": False,
    "automountServiceAccountToken": False,
    "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
}
CONTAINER_SECURITY: Final[JSON] = {"allowPrivilegeEscalation": False}


@dataclass(frozen=True)
class ChildNames:
    """The names of one ModelDeployment's children: built here and nowhere else."""

    deployment: str
    service: str
    disruption_budget: str
    weights_claim: str
    download_job: str


def child_names(name: str) -> ChildNames:
    return ChildNames(
        deployment=name,
        service=name,
        disruption_budget=name,
        weights_claim=f"{name}-weights",
        download_job=f"{name}-download",
    )


def hf_home_env(settings: OperatorSettings) -> JSON:
    """Hugging Face's cache on the models volume, for the vLLM and download containers."""
    return {"name": "HF_HOME", "value": f"{settings.planner.model_mount_path}/{HF_HOME_SUBDIR}"}


def hf_token_env(md: ModelDeployment) -> list[JSON]:
    """The Hub token from its Secret when the repo is gated (never the value itself)."""
    ref = md.spec.source.huggingface.token_secret_ref
    if ref is None:
        return []
    return [{"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {"name": ref.name, "key": ref.key}}}]


def selector_labels(name: str, component: str = "server") -> dict[str, str]:
    """Labels selecting one ModelDeployment's vLLM pods (the immutable Deployment selector).

    The component is part of it so the download Job's pods never match the Deployment or
    the Service.
    """
    return {
        keys.NAME: APP_NAME,
        keys.INSTANCE: name,
        keys.COMPONENT: component,
    }


def labels(name: str, model: str, component: str = "server") -> dict[str, str]:
    return {
        **selector_labels(name, component),
        keys.MANAGED_BY: MANAGED_BY,
        keys.MODEL: model,
    }


def owner_reference(md_meta: JSON) -> JSON:
    # controller=true: one owner manages the child; blockOwnerDeletion keeps foreground
    # deletion of the ModelDeployment waiting for its children.
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "name": md_meta["name"],
        "uid": md_meta["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def metadata(md_meta: JSON, name: str, model: str, component: str = "server") -> JSON:
    return {
        "name": name,
        "namespace": md_meta["namespace"],
        "labels": labels(md_meta["name"], model, component),
        "ownerReferences": [owner_reference(md_meta)],
    }


def digest(value: object) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:16]


def with_config_hash(manifest: JSON) -> JSON:
    """Stamp the manifest with the hash of its own content (without the stamp)."""
    manifest["metadata"].setdefault("annotations", {})[keys.CONFIG_HASH] = digest(manifest)
    return manifest
