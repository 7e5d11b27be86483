"""gpt-oss-20b / gpt-oss-120b as the planner sees them (docs/gpt-oss-facts.md "Architecture", "KV cache")."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from gptoss_operator.api import MAX_CONTEXT, TP_SIZES, ModelName

KIB: Final = 1024
MIB: Final = 1024 * KIB
GIB: Final = 1024 * MIB

# bf16 K and V for one layer and one token: 2 (K,V) x 8 KV heads x head_dim 64 x 2 bytes
# (docs/gpt-oss-facts.md "KV cache").
KV_BYTES_PER_LAYER_TOKEN: Final = 2 * 8 * 64 * 2
# vLLM's default KV block size; sliding layers keep the window plus at most one partial block.
KV_BLOCK_TOKENS: Final = 16


@dataclass(frozen=True)
class ModelProfile:
    """Sizes of one gpt-oss model under vLLM."""

    name: ModelName
    hf_repo: str
    layers: int
    full_attention_layers: int
    sliding_window: int
    weights_gib: float  # as loaded by vLLM ("Model loading took ... GiB")
    weights_source: str
    checkpoint_bytes: int  # root safetensors only (what the operator downloads)
    max_context: int = MAX_CONTEXT
    tp_sizes: tuple[int, ...] = TP_SIZES

    @property
    def sliding_layers(self) -> int:
        return self.layers - self.full_attention_layers

    @property
    def kv_bytes_per_token(self) -> int:
        """Context-proportional KV bytes per token under vLLM's hybrid KV cache manager.

        Only full-attention layers grow with context; sliding-window layers keep
        ``sliding_window`` tokens (vllm docs/design/hybrid_kv_cache_manager.md):
        120b: 18 x 2 KiB = 36 KiB/token, 20b: 12 x 2 KiB = 24 KiB/token.
        """
        return self.full_attention_layers * KV_BYTES_PER_LAYER_TOKEN

    @property
    def sliding_kv_bytes_per_sequence(self) -> int:
        """Fixed KV cost per running sequence of the sliding layers (~5 MiB 120b, ~3.4 MiB 20b)."""
        return self.sliding_layers * KV_BYTES_PER_LAYER_TOKEN * (self.sliding_window + KV_BLOCK_TOKENS)


PROFILES: Final[dict[ModelName, ModelProfile]] = {
    "gpt-oss-20b": ModelProfile(
        name="gpt-oss-20b",
        hf_repo="openai/gpt-oss-20b",
        layers=24,  # config.json layer_types: 12 sliding + 12 full, alternating
        full_attention_layers=12,
        sliding_window=128,
        weights_gib=12.88,
        weights_source="vllm-project/vllm#22331: 'Model loading took 12.88 GiB' (RTX 3090, Marlin)",
        checkpoint_bytes=13_760_000_000,  # root safetensors: 3 shards, 13.76 GB
    ),
    "gpt-oss-120b": ModelProfile(
        name="gpt-oss-120b",
        hf_repo="openai/gpt-oss-120b",
        layers=36,  # config.json layer_types: 18 sliding + 18 full
        full_attention_layers=18,
        sliding_window=128,
        # vllm-project/vllm#23278: 'Model loading took 65.97 GiB' (H100, TP1, Marlin, v0.10.1). The
        # larger of the observed figures (triton_kernels on v0.14.1 loaded 64.38 GiB,
        # vllm-project/vllm#33155), so backends that pad less get headroom rather than an OOM.
        weights_gib=65.97,
        weights_source="vllm-project/vllm#23278: 'Model loading took 65.97 GiB' (H100 TP1, Marlin); #33155: 64.38 GiB (Triton)",
        checkpoint_bytes=65_300_000_000,  # root safetensors: 15 shards, ~65.3 GB
    ),
}


def model_profile(name: ModelName) -> ModelProfile:
    return PROFILES[name]
