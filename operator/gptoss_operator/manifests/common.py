"""Metadata every child shares: names, labels, owner reference, the config-hash annotation."""

from __future__ import annotations

import hashlib
import json
from typing import Any, Final

from gptoss_operator.api.v1alpha1 import API_VERSION, KIND
from gptoss_operator.observed import CONFIG_HASH_ANNOTATION
from gptoss_operator.settings import MANAGED_BY

JSON = dict[str, Any]
APP_NAME: Final = "vllm"


def selector_labels(name: str, component: str = "server") -> dict[str, str]:
    """Labels selecting one ModelDeployment's vLLM pods (the immutable Deployment selector).

    The component is part of it so the download Job's pods never match the Deployment or
    the Service.
    """
    return {
        "app.kubernetes.io/name": APP_NAME,
        "app.kubernetes.io/instance": name,
        "app.kubernetes.io/component": component,
    }


def labels(name: str, model: str, component: str = "server") -> dict[str, str]:
    return {
        **selector_labels(name, component),
        "app.kubernetes.io/managed-by": MANAGED_BY,
        "gptoss.dev/model": model,
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
    manifest["metadata"].setdefault("annotations", {})[CONFIG_HASH_ANNOTATION] = digest(manifest)
    return manifest
