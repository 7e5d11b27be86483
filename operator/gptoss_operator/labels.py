"""Label and annotation keys the operator writes and reads: one table, shared by the manifest
builders (which write them) and the observer (which reads them back)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

# Recommended labels (https://kubernetes.io/docs/concepts/overview/working-with-objects/common-labels/).
NAME: Final = "app.kubernetes.io/name"
INSTANCE: Final = "app.kubernetes.io/instance"
COMPONENT: Final = "app.kubernetes.io/component"
MANAGED_BY: Final = "app.kubernetes.io/managed-by"
# The gpt-oss model a child serves (for `kubectl get -l gptoss.dev/model=...`).
MODEL: Final = "gptoss.dev/model"

# Hash of the manifest the operator last applied to a child. An equal hash means the child
# already is what the operator wants, so it sends nothing (no writes on resync).
CONFIG_HASH: Final = "gptoss.dev/config-hash"
# On the vLLM Deployment: hash of the pod template alone, to tell a rollout from a scale or
# strategy change.
TEMPLATE_HASH: Final = "gptoss.dev/template-hash"


def selector(labels: Mapping[str, str]) -> str:
    """``labels`` as an equality-based label selector (``a=1,b=2``), in key order: the form of a
    watch's or list's labelSelector parameter and of a scale subresource's status.selector."""
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
