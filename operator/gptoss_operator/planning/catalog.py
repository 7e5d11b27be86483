"""The GPU catalog: what each supported GPU type offers gpt-oss under vLLM.

Sources: docs/gpt-oss-facts.md (sections cited by name) and github.com/vllm-project/vllm
issues / pull requests (``vllm-project/vllm#N``).

Memory is the total the driver reports, in MiB, i.e. the value GPU Feature Discovery puts in
the ``nvidia.com/gpu.memory`` node label (and nvidia-smi shows). vLLM's
``--gpu-memory-utilization`` is a fraction of this total, so the planner budgets against it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Final, Literal, get_args

from gptoss_operator.api import GPUType

Vendor = Literal["nvidia", "amd"]


class MoEPath(StrEnum):
    """The MXFP4 mixture-of-experts kernel vLLM picks (``get_mxfp4_backend``; docs/gpt-oss-facts.md "Kernels per GPU family")."""

    NONE = "none (vLLM has no MXFP4 path below compute capability 8.0)"  # vllm-project/vllm#22288, #23203
    MARLIN = "Marlin W4A16"  # SM80-SM89: weights stay FP4, dequantized in the kernel
    TRITON_KERNELS = "OpenAI triton_kernels"  # 9.0 <= CC < 11.0 with triton_kernels installed
    FLASHINFER_TRTLLM_MXFP8 = (
        "FlashInfer TRTLLM-gen MXFP4 (x MXFP8 up to vLLM 0.23)"  # SM10x; vllm_args.py selects it per version
    )
    ROCM_TRITON = "Triton (+AITER)"  # ROCm


class AttentionBackend(StrEnum):
    """The attention backend with sink support vLLM uses there (vllm docs/design/attention_backends.md)."""

    NONE = "none"
    TRITON_ATTN = "TRITON_ATTN"  # any CC; Ampere/Ada fall back to it (vllm-project/vllm#40153)
    FLASH_ATTN_3 = "FlashAttention 3"  # SM90 only
    FLASHINFER_TRTLLM = "FlashInfer TRTLLM"  # SM100 only
    ROCM_AITER_UNIFIED = "ROCM_AITER_UNIFIED_ATTN"


@dataclass(frozen=True)
class GPUProfile:
    """One catalog entry.

    ``compute_capability`` is CUDA's (major, minor); for AMD it is what PyTorch-on-ROCm reports
    for the gfx target (gfx942 -> 9.4), which is what vLLM's ``get_min_capability()`` compares.
    """

    name: GPUType
    vendor: Vendor
    memory_mib: int
    compute_capability: tuple[int, int]
    architecture: str
    moe_path: MoEPath
    attention_backend: AttentionBackend
    product_labels: tuple[str, ...]
    env: tuple[tuple[str, str], ...] = ()
    default_gpu_memory_utilization: float = 0.9  # vLLM's default --gpu-memory-utilization
    source: str = ""

    @property
    def memory_gib(self) -> float:
        return self.memory_mib / 1024

    @property
    def supported(self) -> bool:
        # Mxfp4Config.get_min_capability() = 80 (docs/gpt-oss-facts.md "Compute capability";
        # vllm-project/vllm#22288 for T4/V100 failures).
        return self.compute_capability >= (8, 0)

    @property
    def vllm_large_batch_defaults(self) -> bool:
        """Whether vLLM raises its scheduler defaults on this GPU (max_num_seqs 1024, 8192 batched tokens).

        vllm ``engine/arg_utils.py`` ``get_batch_defaults``: device memory >= 70 GiB and the device
        name does not contain "a100" (A100 excluded after vLLM PR #17885); otherwise 256 / 2048.
        The profile run sizes activations and sampler buffers from these, so they set the
        runtime overhead (see memory.py).
        """
        return self.memory_gib >= 70 and not self.name.startswith("A100")


# ROCm env from the vLLM recipe (vllm-project/recipes OpenAI/GPT-OSS.md). HSA_NO_SCRATCH_RECLAIM=1
# is left out: the recipe needs it only with firmware MEC < 177, which the operator cannot see.
_ROCM_ENV: Final = (
    ("VLLM_ROCM_USE_AITER", "1"),
    ("AMDGCN_USE_BUFFER_OPS", "0"),
    ("VLLM_ROCM_QUICK_REDUCE_QUANTIZATION", "INT4"),
)

_ENTRIES: Final[tuple[GPUProfile, ...]] = (
    GPUProfile(
        name="H100-80GB",
        vendor="nvidia",
        memory_mib=81559,
        compute_capability=(9, 0),
        architecture="Hopper",
        moe_path=MoEPath.TRITON_KERNELS,
        attention_backend=AttentionBackend.FLASH_ATTN_3,
        product_labels=("NVIDIA-H100-80GB-HBM3", "NVIDIA-H100-PCIe"),
        source='docs/gpt-oss-facts.md "Kernels per GPU family" (Hopper); memory: GFD gpu.memory on H100 SXM (kind/nodes.yaml)',
    ),
    GPUProfile(
        name="H200",
        vendor="nvidia",
        memory_mib=143771,
        compute_capability=(9, 0),
        architecture="Hopper",
        moe_path=MoEPath.TRITON_KERNELS,
        attention_backend=AttentionBackend.FLASH_ATTN_3,
        product_labels=("NVIDIA-H200",),  # Dynamo's gpt-oss-120b H200 recipe selects this value
        source='docs/gpt-oss-facts.md "Kernels per GPU family" (Hopper); memory: GFD gpu.memory (kind/nodes.yaml)',
    ),
    GPUProfile(
        name="B200",
        vendor="nvidia",
        memory_mib=182630,  # 178.35 GiB as PyTorch reports it on a B200 (unslothai/unsloth#3411)
        compute_capability=(10, 0),
        architecture="Blackwell",
        moe_path=MoEPath.FLASHINFER_TRTLLM_MXFP8,
        attention_backend=AttentionBackend.FLASHINFER_TRTLLM,
        product_labels=("NVIDIA-B200",),
        # The MoE kernel choice depends on the vLLM version (an env var up to 0.23, --moe-backend
        # from 0.24), so vllm_args.py adds it, not this entry.
        source='docs/gpt-oss-facts.md "Kernels per GPU family" (Blackwell, vLLM PR #23008)',
    ),
    GPUProfile(
        name="A100-80GB",
        vendor="nvidia",
        memory_mib=81920,
        compute_capability=(8, 0),
        architecture="Ampere",
        moe_path=MoEPath.MARLIN,
        attention_backend=AttentionBackend.TRITON_ATTN,
        product_labels=("NVIDIA-A100-SXM4-80GB", "NVIDIA-A100-80GB-PCIe"),
        source='docs/gpt-oss-facts.md "Kernels per GPU family" (Ampere; automatic since v0.10.1, vllm-project/vllm#22331)',
    ),
    GPUProfile(
        name="A100-40GB",
        vendor="nvidia",
        memory_mib=40960,
        compute_capability=(8, 0),
        architecture="Ampere",
        moe_path=MoEPath.MARLIN,
        attention_backend=AttentionBackend.TRITON_ATTN,
        product_labels=("NVIDIA-A100-SXM4-40GB", "NVIDIA-A100-PCIE-40GB"),
        source='docs/gpt-oss-facts.md "Kernels per GPU family" (Ampere)',
    ),
    GPUProfile(
        name="L40S",
        vendor="nvidia",
        memory_mib=46068,
        compute_capability=(8, 9),
        architecture="Ada Lovelace",
        moe_path=MoEPath.MARLIN,
        attention_backend=AttentionBackend.TRITON_ATTN,
        product_labels=("NVIDIA-L40S",),
        source='docs/gpt-oss-facts.md "Kernels per GPU family" (Ada; full 8.9 validation unconfirmed, vllm-project/vllm#24364)',
    ),
    GPUProfile(
        name="L4",
        vendor="nvidia",
        memory_mib=23034,
        compute_capability=(8, 9),
        architecture="Ada Lovelace",
        moe_path=MoEPath.MARLIN,
        attention_backend=AttentionBackend.TRITON_ATTN,
        product_labels=("NVIDIA-L4",),
        source='docs/gpt-oss-facts.md "Kernels per GPU family" (Ada)',
    ),
    GPUProfile(
        name="A10G",
        vendor="nvidia",
        memory_mib=23028,
        compute_capability=(8, 6),
        architecture="Ampere",
        moe_path=MoEPath.MARLIN,
        attention_backend=AttentionBackend.TRITON_ATTN,
        product_labels=("NVIDIA-A10G",),
        source='docs/gpt-oss-facts.md "Kernels per GPU family" (Ampere 8.6; SM86 rejected only in early builds, vllm-project/vllm#22422)',
    ),
    GPUProfile(
        name="MI300X",
        vendor="amd",
        memory_mib=196592,
        compute_capability=(9, 4),
        architecture="CDNA3 (gfx942)",
        moe_path=MoEPath.ROCM_TRITON,
        attention_backend=AttentionBackend.ROCM_AITER_UNIFIED,
        # AMD's node labeller writes AMD_Instinct_MI300X_OAM; the local kwok pool (kind/nodes.yaml)
        # uses the dashed spelling. Both are accepted by default; settings can replace them.
        product_labels=("AMD_Instinct_MI300X_OAM", "AMD-Instinct-MI300X-OAM"),
        env=_ROCM_ENV,
        default_gpu_memory_utilization=0.95,  # the vLLM recipe uses 0.95 on AMD
        source='docs/gpt-oss-facts.md "Kernels per GPU family" (MI300X)',
    ),
    GPUProfile(
        name="T4",
        vendor="nvidia",
        memory_mib=15360,
        compute_capability=(7, 5),
        architecture="Turing",
        moe_path=MoEPath.NONE,
        attention_backend=AttentionBackend.NONE,
        product_labels=("Tesla-T4",),
        source='docs/gpt-oss-facts.md "Compute capability": unsupported (vllm-project/vllm#22288, #23203)',
    ),
    GPUProfile(
        name="V100",
        vendor="nvidia",
        memory_mib=16384,
        compute_capability=(7, 0),
        architecture="Volta",
        moe_path=MoEPath.NONE,
        attention_backend=AttentionBackend.NONE,
        product_labels=("Tesla-V100-SXM2-16GB", "Tesla-V100-PCIE-16GB"),
        source='docs/gpt-oss-facts.md "Compute capability": unsupported (vllm-project/vllm#22288)',
    ),
)

CATALOG: Final[dict[GPUType, GPUProfile]] = {g.name: g for g in _ENTRIES}

GPU_TYPES: Final[tuple[GPUType, ...]] = get_args(GPUType)


def gpu_profile(name: GPUType) -> GPUProfile:
    """The catalog entry for a GPU type (every :data:`GPUType` has one; a unit test checks it)."""
    return CATALOG[name]
