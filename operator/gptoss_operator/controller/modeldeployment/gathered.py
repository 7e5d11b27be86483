"""What one ModelDeployment's reconcile decides from: a frozen value, built by ``gather``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gptoss_operator import kinds
from gptoss_operator.api.v1alpha1 import ModelDeployment
from gptoss_operator.controller.store import Key
from gptoss_operator.manifests.common import child_names
from gptoss_operator.observed import ChildState, GpuUse, NodeState, PodState
from gptoss_operator.status import ProvidedVolume


@dataclass(frozen=True)
class Gathered:
    key: Key
    body: Mapping[str, Any]  # the ModelDeployment as stored (status included)
    model: ModelDeployment | None  # None when the spec does not parse
    spec_error: str | None  # why it does not parse, field by field
    children: Mapping[str, ChildState]  # kind -> the child as last seen
    server_pods: tuple[PodState, ...]  # this object's vLLM pods
    nodes: tuple[NodeState, ...]  # for Auto rollouts: spare GPUs on matching nodes
    # GPUs requested per (node, resource) by non-terminal pods (same purpose): a read-only
    # snapshot of the store's index, never changed once gathered.
    gpus_in_use: GpuUse
    download_pods: tuple[PodState, ...] = ()  # the weight Job's pods (why a download is stuck)
    volume: ProvidedVolume | None = None  # source.persistentVolumeClaim and the claim's phase


def expected_children(md: ModelDeployment) -> dict[str, str]:
    """Kind -> name of the children the decision may look at for ``md``."""
    names = child_names(md.metadata["name"])
    expected = {kinds.DEPLOYMENT.kind: names.deployment, kinds.SERVICE.kind: names.service}
    if md.spec.replicas > 1:
        expected[kinds.PDB.kind] = names.disruption_budget
    if md.spec.source.cache is not None:
        expected[kinds.PVC.kind] = names.weights_claim
        expected[kinds.JOB.kind] = names.download_job
    return expected
