"""Planner settings: the pinned images, node-label keys/values and budget rates an installation may override.

The operator's own settings (env/flags) embed this object; the planner never reads the
environment itself, so it stays a pure function of (spec, settings).
"""

from __future__ import annotations

from typing import Final

from pydantic import BaseModel, ConfigDict, Field

from gptoss_operator.api import GPUType
from gptoss_operator.planning.catalog import GPUProfile, Vendor

# vLLM v0.15.1: a release after the fixes the operator relies on (root-files-only download
# PR V#30537 and the Hopper low-concurrency fix PR V#30528, both Dec 2025; tool-call parser
# needs >= 0.10.2, facts §2) and before the v0.17+ Hopper regressions (V#40838). The same tag
# serves gpt-oss-20b in vLLM production-stack's CoreWeave tutorial (operator-anchors §2).
DEFAULT_NVIDIA_IMAGE: Final = "vllm/vllm-openai:v0.15.1"
# AMD's gpt-oss image (facts §2, "AMD day-0"). Newer ROCm builds take the recipe's extra
# flags (validated on v0.17.0); set `images.amd` and pass them through spec.vllm.extraArgs.
DEFAULT_AMD_IMAGE: Final = "rocm/vllm-dev:open-mi300-08052025"

# GFD label (NVIDIA) and AMD node-labeller label that name the GPU product.
NVIDIA_PRODUCT_LABEL: Final = "nvidia.com/gpu.product"
AMD_PRODUCT_LABEL: Final = "amd.com/gpu.product-name"


class NodeLabel(BaseModel):
    """A node label key and the values any of which identify a GPU type."""

    model_config = ConfigDict(frozen=True)

    key: str
    values: tuple[str, ...]


def _default_images() -> dict[Vendor, str]:
    return {"nvidia": DEFAULT_NVIDIA_IMAGE, "amd": DEFAULT_AMD_IMAGE}


def _default_label_keys() -> dict[Vendor, str]:
    return {"nvidia": NVIDIA_PRODUCT_LABEL, "amd": AMD_PRODUCT_LABEL}


class PlannerSettings(BaseModel):
    """What an installation can change about planning without touching the catalog's facts."""

    model_config = ConfigDict(frozen=True)

    images: dict[Vendor, str] = Field(
        default_factory=_default_images,
        description="Default vLLM image per GPU vendor (spec.image overrides it per ModelDeployment).",
    )
    product_label_keys: dict[Vendor, str] = Field(
        default_factory=_default_label_keys,
        description="Node label key that carries the GPU product name, per vendor.",
    )
    product_label_values: dict[GPUType, tuple[str, ...]] = Field(
        default_factory=dict,
        description="Replace the catalog's product label values for a GPU type (e.g. cloud-specific names).",
    )
    model_mount_path: str = Field(
        default="/models",
        description="Where the weight cache PVC is mounted in the vLLM container; weights live in <path>/<model>.",
    )
    port: int = Field(
        default=8000, description="vLLM's HTTP port (design doc: Service port 8000, named http)."
    )
    # Startup budget rates (startup.py); both are deliberately pessimistic.
    download_bytes_per_second: float = Field(
        default=12.5e6,
        description="Assumed Hugging Face download rate: the one reported figure, ~12.5 MB/s (PR V#30537).",
    )
    volume_read_bytes_per_second: float = Field(
        default=100 * 1024 * 1024,
        description="Assumed read rate of the weight volume (UNCONFIRMED; local NVMe read 66 GiB in 12.8 s, V#23278).",
    )

    def image_for(self, gpu: GPUProfile) -> str:
        return self.images[gpu.vendor]

    def node_label_for(self, gpu: GPUProfile) -> NodeLabel:
        """The label key and values that pin a pod to nodes with this GPU type."""
        values = self.product_label_values.get(gpu.name, gpu.product_labels)
        return NodeLabel(key=self.product_label_keys[gpu.vendor], values=tuple(values))


DEFAULT_SETTINGS: Final = PlannerSettings()
