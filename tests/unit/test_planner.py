"""The planner: smallest TP that fits, typed refusals naming the smallest feasible plan."""

from __future__ import annotations

from typing import Any

import pytest

from gptoss_operator.api import ModelDeploymentSpec, Plan
from gptoss_operator.api.v1alpha1 import VLLMSpec
from gptoss_operator.planning import (
    CATALOG,
    PROFILES,
    PlannerSettings,
    Refusal,
    budget_for,
    memory_budget,
    plan_deployment,
)
from gptoss_operator.planning.memory import busiest_rank_weight_share
from gptoss_operator.planning.model_profiles import GIB, KIB, MIB
from gptoss_operator.planning.vllm_versions import image_version


def spec(
    model: str = "gpt-oss-120b", gpu: str = "H100-80GB", count: Any = "auto", **serving: Any
) -> ModelDeploymentSpec:
    return ModelDeploymentSpec.model_validate(
        {"model": model, "gpu": {"type": gpu, "count": count}, "serving": serving}
    )


def planned(s: ModelDeploymentSpec) -> Plan:
    result = plan_deployment(s)
    assert isinstance(result, Plan), result
    return result


def refused(s: ModelDeploymentSpec) -> Refusal:
    result = plan_deployment(s)
    assert isinstance(result, Refusal), result
    return result


class TestModelProfiles:
    def test_kv_bytes_per_token_follow_the_hybrid_kv_cache_manager(self):
        # docs/gpt-oss-facts.md "KV cache": 36 KiB/token (120b), 24 KiB/token (20b); 4.5 / 3.0 GiB at 131072 tokens.
        assert PROFILES["gpt-oss-120b"].kv_bytes_per_token == 36 * KIB
        assert PROFILES["gpt-oss-20b"].kv_bytes_per_token == 24 * KIB
        assert PROFILES["gpt-oss-120b"].kv_bytes_per_token * 131072 == 4.5 * GIB
        assert PROFILES["gpt-oss-20b"].kv_bytes_per_token * 131072 == 3 * GIB

    def test_sliding_layers_cost_a_few_mib_per_sequence(self):
        assert 4.5 * MIB <= PROFILES["gpt-oss-120b"].sliding_kv_bytes_per_sequence <= 5.1 * MIB
        assert 3.0 * MIB <= PROFILES["gpt-oss-20b"].sliding_kv_bytes_per_sequence <= 3.4 * MIB

    def test_layers(self):
        assert (PROFILES["gpt-oss-120b"].layers, PROFILES["gpt-oss-120b"].full_attention_layers) == (36, 18)
        assert (PROFILES["gpt-oss-20b"].layers, PROFILES["gpt-oss-20b"].full_attention_layers) == (24, 12)


class TestMemoryModel:
    @pytest.mark.parametrize(("tp", "share"), [(1, 1.0), (2, 0.5), (4, 23 / 90), (8, 12 / 90)])
    def test_mxfp4_block_sharding(self, tp, share):
        assert busiest_rank_weight_share(tp) == pytest.approx(share)

    @pytest.mark.parametrize(("util", "observed_kv_gib"), [(0.90, -2.14), (0.95, 1.71)])
    def test_reproduces_the_h100_tp1_logs(self, util, observed_kv_gib):
        # vllm-project/vllm#23278 (util 0.90 -> -2.14 GiB) and #27508 (util 0.95 -> 1.71 GiB): the overhead
        # constant is derived from these, so the model must land within 0.2 GiB of both.
        b = memory_budget(
            PROFILES["gpt-oss-120b"],
            CATALOG["H100-80GB"],
            1,
            gpu_memory_utilization=util,
            max_model_len=131072,
        )
        assert b.kv_free_gib == pytest.approx(observed_kv_gib, abs=0.2)

    def test_v27508_context_at_util_095(self):
        # 1.71 GiB of KV ~= 49k tokens (vllm-project/vllm#27508).
        b = memory_budget(
            PROFILES["gpt-oss-120b"],
            CATALOG["H100-80GB"],
            1,
            gpu_memory_utilization=0.95,
            max_model_len=131072,
        )
        assert 45_000 <= b.max_fitting_model_len <= 52_000

    def test_kv_required_scales_with_sequences_and_splits_across_tp(self):
        one = memory_budget(
            PROFILES["gpt-oss-120b"],
            CATALOG["H100-80GB"],
            2,
            gpu_memory_utilization=0.9,
            max_model_len=131072,
        )
        four = memory_budget(
            PROFILES["gpt-oss-120b"],
            CATALOG["H100-80GB"],
            2,
            gpu_memory_utilization=0.9,
            max_model_len=131072,
            min_concurrent_sequences=4,
        )
        assert one.kv_required_gib == pytest.approx(
            (4.5 * GIB + PROFILES["gpt-oss-120b"].sliding_kv_bytes_per_sequence) / 2 / GIB
        )
        assert four.kv_required_gib == pytest.approx(4 * one.kv_required_gib)


class TestAcceptanceOutcomes:
    """The issue's acceptance cases follow from the memory math, not from special cases."""

    def test_120b_on_h100_is_tp2(self):
        plan = planned(spec())
        assert (plan.gpus_per_replica, plan.tensor_parallel_size, plan.max_model_len) == (2, 2, 131072)
        assert not budget_for(spec(), 1).fits  # TP1 really does not fit at 131072 (vllm-project/vllm#23278)

    def test_20b_on_l4_is_one_gpu(self):
        plan = planned(spec("gpt-oss-20b", "L4"))
        assert plan.gpus_per_replica == 1
        assert plan.kv_cache_tokens >= 131072

    def test_120b_on_t4_is_unsupported(self):
        r = refused(spec(gpu="T4"))
        assert r.reason == "UnsupportedGPU"
        assert "7.5" in r.message
        assert "8.0" in r.message
        assert r.smallest_feasible is not None
        assert r.smallest_feasible.describe() in r.message

    def test_120b_count_1_on_a10g_names_the_smallest_plan(self):
        r = refused(spec(gpu="A10G", count=1))
        assert r.reason == "InsufficientGPUMemory"
        assert r.smallest_feasible is not None
        assert (r.smallest_feasible.gpu_type, r.smallest_feasible.gpus) == ("A10G", 8)
        assert "8 x A10G (gpu.count 8, TP 8)" in r.message
        assert "1 x A10G" in r.message


class TestPlanner:
    @pytest.mark.parametrize(
        ("model", "gpu", "gpus"),
        [
            ("gpt-oss-120b", "H100-80GB", 2),
            ("gpt-oss-120b", "H200", 1),  # "Sizing cross-checks": H200 TP1
            ("gpt-oss-120b", "B200", 1),
            ("gpt-oss-120b", "MI300X", 1),  # the vLLM recipe runs MI300X at TP 1
            ("gpt-oss-120b", "A100-80GB", 2),  # recipe: TP 2 for long context
            ("gpt-oss-120b", "A100-40GB", 4),  # derived: 4
            ("gpt-oss-120b", "L40S", 2),  # derived: 48 GB needs at least 2
            ("gpt-oss-120b", "L4", 8),  # derived: 24 GB needs 8
            ("gpt-oss-120b", "A10G", 8),
            ("gpt-oss-20b", "H100-80GB", 1),
            ("gpt-oss-20b", "A10G", 1),
            ("gpt-oss-20b", "A100-40GB", 1),
        ],
    )
    def test_auto_picks_the_smallest_fitting_tp(self, model, gpu, gpus):
        plan = planned(spec(model, gpu))
        assert plan.gpus_per_replica == plan.tensor_parallel_size == gpus
        for smaller in (1, 2, 4):
            if smaller < gpus:
                assert not budget_for(spec(model, gpu), smaller).fits

    def test_shorter_context_lets_120b_run_tp1_on_a100_80gb(self):
        # the vLLM recipe: A100-80GB fits 120b at TP 1 - with a shorter context.
        assert planned(spec(gpu="A100-80GB", maxModelLen=32768)).tensor_parallel_size == 1

    def test_more_concurrent_sequences_raise_the_gpu_count(self):
        assert planned(spec("gpt-oss-120b", "L40S")).tensor_parallel_size == 2
        assert planned(spec("gpt-oss-120b", "L40S", minConcurrentSequences=4)).tensor_parallel_size == 4

    def test_explicit_count_that_fits_is_kept(self):
        assert planned(spec(count=8)).tensor_parallel_size == 8

    def test_explicit_count_refusal_offers_a_shorter_context(self):
        r = refused(spec(gpu="A100-80GB", count=1))
        assert r.reason == "InsufficientGPUMemory"
        assert "2 x A100-80GB" in r.message
        assert "keep gpu.count 1 with maxModelLen <=" in r.message

    def test_context_too_long_when_no_count_holds_the_sequences(self):
        r = refused(spec(gpu="L4", minConcurrentSequences=64))
        assert r.reason == "ContextTooLong"
        assert r.smallest_feasible is not None
        assert r.smallest_feasible.gpus == 8
        assert 0 < r.smallest_feasible.max_model_len < 131072
        # the named plan really fits
        assert planned(
            spec(gpu="L4", count=8, minConcurrentSequences=64, maxModelLen=r.smallest_feasible.max_model_len)
        )

    def test_kv_cache_tokens_match_the_budget(self):
        plan = planned(spec())
        b = budget_for(spec(), 2)
        assert plan.kv_cache_tokens == int(b.kv_free_gib * 2 * GIB // (36 * KIB))
        assert plan.kv_cache_tokens >= 131072

    def test_utilization_override(self):
        plan = planned(spec(gpu="H100-80GB", count=1, maxModelLen=32768, gpuMemoryUtilization=0.95))
        assert plan.gpu_memory_utilization == 0.95
        assert "--gpu-memory-utilization" in plan.args
        assert plan.args[plan.args.index("--gpu-memory-utilization") + 1] == "0.95"


class TestVLLMArgsAndEnv:
    def test_args(self):
        plan = planned(spec())
        args = plan.args
        assert args[:4] == ["--model", "openai/gpt-oss-120b", "--revision", "main"]
        pairs = dict(zip(args[::2], args[1::2], strict=False))
        assert args[args.index("--tensor-parallel-size") + 1] == "2"
        assert args[args.index("--max-model-len") + 1] == "131072"
        assert args[args.index("--served-model-name") + 1] == "gpt-oss-120b"
        assert args[args.index("--port") + 1] == "8000"
        assert args[args.index("--reasoning-parser") + 1] == "openai_gptoss"
        assert args[args.index("--tool-call-parser") + 1] == "openai"
        assert "--enable-auto-tool-choice" in args
        assert pairs  # flags come in flag/value pairs up to the tool-choice switch

    def test_tool_calling_off(self):
        args = planned(spec(toolCalling=False)).args
        assert "--tool-call-parser" not in args
        assert "--enable-auto-tool-choice" not in args

    def test_cache_source_loads_from_the_mount(self):
        s = ModelDeploymentSpec.model_validate(
            {"model": "gpt-oss-20b", "gpu": {"type": "L4"}, "source": {"cache": {"size": "40Gi"}}}
        )
        plan = planned(s)
        assert plan.args[:2] == ["--model", "/models/gpt-oss-20b"]
        assert "--revision" not in plan.args

    def test_extra_args_and_env_are_appended(self):
        s = ModelDeploymentSpec.model_validate(
            {
                "model": "gpt-oss-120b",
                "gpu": {"type": "B200"},
                "vllm": {
                    "extraArgs": ["--max-num-seqs=64"],
                    "env": [
                        {"name": "VLLM_USE_FLASHINFER_MOE_MXFP4_MXFP8", "value": "0"},
                        {"name": "X", "value": "1"},
                    ],
                },
            }
        )
        plan = planned(s)
        assert plan.args[-1] == "--max-num-seqs=64"
        assert [(e.name, e.value) for e in plan.env] == [
            ("VLLM_USE_FLASHINFER_MOE_MXFP4_MXFP8", "0"),
            ("X", "1"),
        ]

    @pytest.mark.parametrize(
        ("gpu", "env"),
        [
            ("H100-80GB", []),
            ("L4", []),
            ("B200", []),  # the default image's vLLM (0.33) takes --moe-backend instead
            (
                "MI300X",
                [
                    ("VLLM_ROCM_USE_AITER", "1"),
                    ("AMDGCN_USE_BUFFER_OPS", "0"),
                    ("VLLM_ROCM_QUICK_REDUCE_QUANTIZATION", "INT4"),
                ],
            ),
        ],
    )
    def test_env_per_architecture(self, gpu, env):
        assert [(e.name, e.value) for e in planned(spec("gpt-oss-20b", gpu)).env] == env

    @pytest.mark.parametrize(
        ("image", "env", "moe_flag"),
        [
            ("vllm/vllm-openai:v0.15.1", [("VLLM_USE_FLASHINFER_MOE_MXFP4_MXFP8", "1")], False),
            ("vllm/vllm-openai:v0.23.0", [("VLLM_USE_FLASHINFER_MOE_MXFP4_MXFP8", "1")], False),
            ("vllm/vllm-openai:v0.24.0", [], True),
            ("vllm/vllm-openai:v0.33.0", [], True),
        ],
    )
    def test_blackwell_moe_kernel_per_vllm_version(self, image, env, moe_flag):
        # vLLM 0.24 removed VLLM_USE_FLASHINFER_MOE_MXFP4_MXFP8 from envs.py; --moe-backend replaces it.
        plan = planned(
            ModelDeploymentSpec.model_validate(
                {"model": "gpt-oss-20b", "gpu": {"type": "B200"}, "image": image}
            )
        )
        assert [(e.name, e.value) for e in plan.env] == env
        assert ("--moe-backend" in plan.args) is moe_flag
        if moe_flag:
            assert plan.args[plan.args.index("--moe-backend") + 1] == "flashinfer_trtllm"

    def test_images_come_from_settings_or_spec(self):
        assert planned(spec()).image == "vllm/vllm-openai:v0.33.0"
        assert planned(spec()).vllm_version == "0.33.0"
        amd = planned(spec("gpt-oss-20b", "MI300X"))
        assert amd.image.startswith("rocm/vllm:")
        assert amd.vllm_version == "0.23.0"
        custom = PlannerSettings(
            images={"nvidia": "registry.local/vllm:v0.24.0", "amd": "registry.local/rocm:vllm-0.23.0"}
        )
        result = plan_deployment(spec(), custom)
        assert isinstance(result, Plan)
        assert (result.image, result.vllm_version) == ("registry.local/vllm:v0.24.0", "0.24.0")
        s = ModelDeploymentSpec.model_validate(
            {"model": "gpt-oss-20b", "gpu": {"type": "L4"}, "image": "mine:1", "vllm": {"version": "v0.30.0"}}
        )
        assert (planned(s).image, planned(s).vllm_version) == ("mine:1", "0.30.0")


class TestVLLMVersion:
    @pytest.mark.parametrize(
        ("image", "version"),
        [
            ("vllm/vllm-openai:v0.15.1", (0, 15, 1)),
            ("vllm/vllm-openai:0.33.0-cu130", (0, 33, 0)),
            ("registry.local:5000/vllm/vllm-openai:v0.26.1rc1", (0, 26, 1)),
            ("vllm/vllm-openai:v0.33.1.post1", (0, 33, 1)),
            ("rocm/vllm:rocm7.14.0_cdna_ubuntu24.04_py3.14_pytorch_2.11.0_vllm_0.23.0", (0, 23, 0)),
            ("vllm/vllm-openai:v0.33.0@sha256:" + "a" * 64, (0, 33, 0)),
            ("vllm/vllm-openai@sha256:" + "a" * 64, None),
            ("registry.local:5000/vllm", None),
            ("vllm/vllm-openai:latest", None),
            ("mine:1", None),
        ],
    )
    def test_version_from_image_tag(self, image, version):
        assert image_version(image) == version

    @pytest.mark.parametrize(
        ("body", "needle"),
        [
            (
                {"image": "vllm/vllm-openai:v0.14.1"},
                "vLLM 0.14.1 (image vllm/vllm-openai:v0.14.1) is outside",
            ),
            (
                {"image": "vllm/vllm-openai:v0.34.0"},
                "vLLM 0.34.0 (image vllm/vllm-openai:v0.34.0) is outside",
            ),
            (
                {"image": "registry.local/vllm:prod", "vllm": {"version": "0.12.0"}},
                "vLLM 0.12.0 (spec.vllm.version) is outside",
            ),
            (
                {"image": "vllm/vllm-openai:latest"},
                "cannot tell the vLLM version of image vllm/vllm-openai:latest",
            ),
            ({"image": "vllm/vllm-openai@sha256:" + "b" * 64}, "Set spec.vllm.version"),
        ],
    )
    def test_unknown_or_unsupported_versions_are_refused(self, body, needle):
        s = ModelDeploymentSpec.model_validate({"model": "gpt-oss-20b", "gpu": {"type": "L4"}, **body})
        result = plan_deployment(s)
        assert isinstance(result, Refusal)
        assert result.reason == "UnsupportedVLLMVersion"
        assert needle in result.message
        assert "0.15.1 to 0.33.x" in result.message

    def test_declared_version_must_match_a_pinned_default_image(self):
        s = ModelDeploymentSpec.model_validate(
            {"model": "gpt-oss-20b", "gpu": {"type": "B200"}, "vllm": {"version": "0.23.0"}}
        )
        result = plan_deployment(s)
        assert isinstance(result, Refusal)
        assert result.reason == "UnsupportedVLLMVersion"
        assert "does not match the default image vllm/vllm-openai:v0.33.0 (vLLM 0.33.0)" in result.message
        assert planned(s.model_copy(update={"vllm": VLLMSpec(version="v0.33.0")})).vllm_version == "0.33.0"

    def test_declared_version_names_an_untagged_default_image(self):
        custom = PlannerSettings(
            images={"nvidia": "registry.local/vllm:prod", "amd": "registry.local/rocm:prod"}
        )
        bare = ModelDeploymentSpec.model_validate({"model": "gpt-oss-20b", "gpu": {"type": "B200"}})
        refused = plan_deployment(bare, custom)
        assert isinstance(refused, Refusal)
        assert "registry.local/vllm:prod" in refused.message
        declared = bare.model_copy(update={"vllm": VLLMSpec(version="0.24.0")})
        result = plan_deployment(declared, custom)
        assert isinstance(result, Plan)
        assert (result.image, result.vllm_version) == ("registry.local/vllm:prod", "0.24.0")

    def test_declared_version_wins_over_the_tag(self):
        # A custom image may use its own versioning in the tag (registry/vllm:v1.2.3).
        s = ModelDeploymentSpec.model_validate(
            {
                "model": "gpt-oss-20b",
                "gpu": {"type": "B200"},
                "image": "registry.local/vllm:v1.2.3",
                "vllm": {"version": "0.23.0"},
            }
        )
        plan = planned(s)
        assert plan.vllm_version == "0.23.0"
        assert "--moe-backend" not in plan.args
