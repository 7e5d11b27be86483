"""Per-GPU memory budget of one vLLM replica: weights/TP + runtime overhead + KV cache.

vLLM's rule (docs/gpt-oss-facts.md "Runtime overhead and utilization"): KV cache gets what is left of ``gpu_memory_utilization x total``
after the weights and the profile run's peak (activations, sampler, CUDA graphs, non-torch
memory). The planner mirrors that rule with the numbers below.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

from gptoss_operator.planning.catalog import GPUProfile
from gptoss_operator.planning.model_profiles import GIB, ModelProfile

# Runtime overhead per GPU when vLLM uses its large scheduler defaults (>= 70 GiB, not A100:
# max_num_seqs 1024, 8192 batched tokens; see GPUProfile.vllm_large_batch_defaults).
# Derived from two gpt-oss-120b logs on 1 x H100 (81559 MiB = 79.65 GiB), weights 65.97 GiB:
#   vllm-project/vllm#23278, util 0.90: KV left -2.14 GiB -> 0.90 x 79.65 - 65.97 + 2.14 = 7.85 GiB
#   vllm-project/vllm#27508, util 0.95: KV left  1.71 GiB -> 0.95 x 79.65 - 65.97 - 1.71 = 7.98 GiB
# Counted at every TP size (part of it shrinks with TP; staying pessimistic avoids OOM).
LARGE_BATCH_OVERHEAD_GIB: Final = 8.0
# With vLLM's small defaults (256 sequences, 2048 batched tokens: a quarter of the above) the
# profile peak is smaller; no gpt-oss log measures it, so take the middle of the 2-5 GiB/GPU
# generic vLLM range for activations and CUDA graphs (unconfirmed for gpt-oss; docs/gpt-oss-facts.md
# "Runtime overhead and utilization").
SMALL_BATCH_OVERHEAD_GIB: Final = 3.5

# MXFP4 weights are sharded in 32-column blocks: 90 blocks of the 2880-wide expert
# intermediate split cdiv(90, TP) per rank (docs/gpt-oss-facts.md "Tensor parallelism and MXFP4
# sharding"), so the busiest rank holds more than 1/TP.
_MXFP4_BLOCKS: Final = 2880 // 32


def runtime_overhead_gib(gpu: GPUProfile) -> float:
    return LARGE_BATCH_OVERHEAD_GIB if gpu.vllm_large_batch_defaults else SMALL_BATCH_OVERHEAD_GIB


def busiest_rank_weight_share(tp: int) -> float:
    """Fraction of the weights on the most loaded rank: 1, 1/2, 23/90 (TP4), 12/90 (TP8)."""
    return math.ceil(_MXFP4_BLOCKS / tp) / _MXFP4_BLOCKS


@dataclass(frozen=True)
class MemoryBudget:
    """The per-GPU budget of one replica at one tensor-parallel size (all sizes in GiB)."""

    model: ModelProfile
    gpu: GPUProfile
    tensor_parallel_size: int
    gpu_memory_utilization: float
    max_model_len: int
    min_concurrent_sequences: int

    @property
    def usable_gib(self) -> float:
        """``gpu_memory_utilization x total``: what vLLM lets itself use on each GPU."""
        return self.gpu_memory_utilization * self.gpu.memory_gib

    @property
    def weights_gib(self) -> float:
        return self.model.weights_gib * busiest_rank_weight_share(self.tensor_parallel_size)

    @property
    def overhead_gib(self) -> float:
        return runtime_overhead_gib(self.gpu)

    @property
    def kv_free_gib(self) -> float:
        """What is left for the KV cache on each GPU (negative: the weights alone do not fit)."""
        return self.usable_gib - self.weights_gib - self.overhead_gib

    @property
    def kv_required_gib(self) -> float:
        """KV for ``min_concurrent_sequences`` full-length sequences, per GPU.

        KV heads (8) are split across TP ranks up to TP 8 (docs/gpt-oss-facts.md "KV cache"), so each GPU holds 1/TP.
        """
        per_sequence = (
            self.max_model_len * self.model.kv_bytes_per_token + self.model.sliding_kv_bytes_per_sequence
        )
        return self.min_concurrent_sequences * per_sequence / self.tensor_parallel_size / GIB

    @property
    def fits(self) -> bool:
        return self.kv_free_gib > 0 and self.kv_free_gib >= self.kv_required_gib

    @property
    def kv_cache_tokens(self) -> int:
        """Tokens of full-attention KV the replica can hold (what vLLM logs as 'GPU KV cache size')."""
        if self.kv_free_gib <= 0:
            return 0
        return int(self.kv_free_gib * self.tensor_parallel_size * GIB // self.model.kv_bytes_per_token)

    @property
    def max_fitting_model_len(self) -> int:
        """Longest maxModelLen whose ``min_concurrent_sequences`` sequences still fit (0 if none)."""
        if self.kv_free_gib <= 0:
            return 0
        per_sequence = self.kv_free_gib * self.tensor_parallel_size * GIB / self.min_concurrent_sequences
        tokens = (per_sequence - self.model.sliding_kv_bytes_per_sequence) // self.model.kv_bytes_per_token
        return max(0, min(int(tokens), self.model.max_context))


def memory_budget(
    model: ModelProfile,
    gpu: GPUProfile,
    tensor_parallel_size: int,
    *,
    gpu_memory_utilization: float,
    max_model_len: int,
    min_concurrent_sequences: int = 1,
) -> MemoryBudget:
    return MemoryBudget(
        model=model,
        gpu=gpu,
        tensor_parallel_size=tensor_parallel_size,
        gpu_memory_utilization=gpu_memory_utilization,
        max_model_len=max_model_len,
        min_concurrent_sequences=min_concurrent_sequences,
    )
