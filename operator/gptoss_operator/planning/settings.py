"""Planner settings: the pinned images, node-label keys/values and budget rates an installation may override.

The operator's own settings embed this object. The default images (``GPTOSS_IMAGE_NVIDIA`` /
``GPTOSS_IMAGE_AMD``) and the GPU product labels (``GPTOSS_GPU_PRODUCT_LABEL_KEYS`` /
``GPTOSS_GPU_PRODUCT_LABEL_VALUES``, JSON, as the Helm chart's ``gpuProductLabels`` sets them) are
environment knobs, read by ``PlannerSettings.from_env``; the planner never reads the environment
itself, so it stays a pure function of (spec, settings).
"""

from __future__ import annotations

from typing import Annotated, Any, Final

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from gptoss_operator.api import GPUType
from gptoss_operator.environment import EnvSettings
from gptoss_operator.planning.catalog import GPUProfile, Vendor

# The newest vLLM release (0.33.0, Nov 2026). It ships FlashInfer 0.7.2, past the 0.6.11/0.6.12
# builds behind the gpt-oss slowdown of vLLM 0.22-0.23 (vllm#44808); why not an older pin is in
# docs/vllm-versions.md. The planner reads the version from the tag (planning/vllm_versions.py).
DEFAULT_NVIDIA_IMAGE: Final = "vllm/vllm-openai:v0.33.0"
# AMD's ROCm build of vLLM 0.23.0 (rocm.docs.amd.com, "vLLM inference and serving on ROCm"); the
# tag carries the vLLM version. Its AITER env is in the catalog; the recipe's extra flags go
# through spec.vllm.extraArgs.
DEFAULT_AMD_IMAGE: Final = "rocm/vllm:rocm7.14.0_cdna_ubuntu24.04_py3.14_pytorch_2.11.0_vllm_0.23.0"

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


class PlannerSettings(EnvSettings):
    """What an installation can change about planning without touching the catalog's facts."""

    # GPTOSS_IMAGE_NVIDIA -> images["nvidia"]: the delimiter splits the vendor off the variable name.
    model_config = SettingsConfigDict(env_nested_delimiter="_")

    images: Annotated[dict[Vendor, str], NoDecode] = Field(
        default_factory=_default_images,
        validation_alias="GPTOSS_IMAGE",
        description="Default vLLM image per GPU vendor (spec.image overrides it per ModelDeployment).",
    )
    product_label_keys: dict[Vendor, str] = Field(
        default_factory=_default_label_keys,
        validation_alias="GPTOSS_GPU_PRODUCT_LABEL_KEYS",
        description="Node label key that carries the GPU product name, per vendor.",
    )
    product_label_values: dict[GPUType, tuple[str, ...]] = Field(
        default_factory=dict,
        validation_alias="GPTOSS_GPU_PRODUCT_LABEL_VALUES",
        description="Replace the catalog's product label values for a GPU type (e.g. cloud-specific names).",
    )
    model_mount_path: str = Field(
        default="/models",
        description="Where the weight cache PVC is mounted in the vLLM container; weights live in <path>/<model>.",
    )
    port: int = Field(
        default=8000, description="vLLM's HTTP port: container port and Service port, both named http."
    )
    # Startup budget rates (startup.py); both are deliberately pessimistic.
    download_bytes_per_second: float = Field(
        default=12.5e6,
        description="Assumed Hugging Face download rate: the one reported figure, ~12.5 MB/s (vLLM PR #30537).",
    )
    volume_read_bytes_per_second: float = Field(
        default=100 * 1024 * 1024,
        description="Assumed read rate of the weight volume (unconfirmed; local NVMe read 66 GiB in 12.8 s, vllm-project/vllm#23278).",
    )

    @field_validator("images", mode="before")
    @classmethod
    def _images_over_defaults(cls, value: Any) -> Any:
        # Overriding one vendor's image keeps the other's default.
        if isinstance(value, str):
            raise ValueError("set GPTOSS_IMAGE_NVIDIA / GPTOSS_IMAGE_AMD, not GPTOSS_IMAGE")
        return {**_default_images(), **value} if isinstance(value, dict) else value

    @field_validator("product_label_keys", mode="before")
    @classmethod
    def _label_keys_over_defaults(cls, value: Any) -> Any:
        # Another key for one vendor (a cloud's own label) keeps the other vendor's default.
        return {**_default_label_keys(), **value} if isinstance(value, dict) else value

    def image_for(self, gpu: GPUProfile) -> str:
        return self.images[gpu.vendor]

    def node_label_for(self, gpu: GPUProfile) -> NodeLabel:
        """The label key and values that pin a pod to nodes with this GPU type."""
        values = self.product_label_values.get(gpu.name, gpu.product_labels)
        return NodeLabel(key=self.product_label_keys[gpu.vendor], values=tuple(values))


DEFAULT_SETTINGS: Final = PlannerSettings()
