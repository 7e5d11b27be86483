"""The vLLM container's arguments and environment for a plan.

Arguments are for the image's entrypoint (``vllm/vllm-openai`` runs the OpenAI server and
accepts ``--model``), so the controller passes them as the container's ``args``.
"""

from __future__ import annotations

from gptoss_operator.api import EnvVar, ModelDeploymentSpec
from gptoss_operator.planning.catalog import GPUProfile, MoEPath
from gptoss_operator.planning.model_profiles import ModelProfile
from gptoss_operator.planning.settings import PlannerSettings
from gptoss_operator.planning.vllm_versions import MOE_BACKEND_FLAG_SINCE, VLLMVersion

# Blackwell's recommended MoE kernel (vllm-project/recipes GPT-OSS.md; PR vllm#23008): FlashInfer
# TRTLLM-gen. Up to 0.23 an env var selects it with MXFP8 activations; 0.24 removed the env var
# and the kernel family is chosen with --moe-backend (activations stay BF16 unless the checkpoint
# asks for MXFP8, vllm fused_moe/oracle/mxfp4.py).
_BLACKWELL_MXFP8_ENV: tuple[str, str] = ("VLLM_USE_FLASHINFER_MOE_MXFP4_MXFP8", "1")
_BLACKWELL_MOE_BACKEND: list[str] = ["--moe-backend", "flashinfer_trtllm"]


def model_location(spec: ModelDeploymentSpec, model: ModelProfile, settings: PlannerSettings) -> str:
    """Where vLLM loads the weights from, the one place that says so: the cache PVC's directory,
    the directory inside the user's PVC, or the Hugging Face repo id."""
    volume = spec.source.persistent_volume_claim
    if volume is not None:
        path = volume.path.strip("/")
        return f"{settings.model_mount_path}/{path}" if path else settings.model_mount_path
    if spec.source.cache is not None:
        return f"{settings.model_mount_path}/{model.name}"
    return spec.source.huggingface.repo or model.hf_repo


def vllm_args(
    spec: ModelDeploymentSpec,
    model: ModelProfile,
    *,
    tensor_parallel_size: int,
    max_model_len: int,
    gpu_memory_utilization: float,
    settings: PlannerSettings,
    gpu: GPUProfile,
    version: VLLMVersion,
) -> list[str]:
    args = ["--model", model_location(spec, model, settings)]
    if not spec.source.weights_on_volume:
        args += ["--revision", spec.source.huggingface.revision]
    args += [
        # Clients (and the router) address the model by its short name, never by the path
        # --model names when the weights are on a volume.
        "--served-model-name", model.name,
        "--host", "0.0.0.0",
        "--port", str(settings.port),
        "--tensor-parallel-size", str(tensor_parallel_size),
        "--max-model-len", str(max_model_len),
        "--gpu-memory-utilization", f"{gpu_memory_utilization:g}",
        # Named openai_gptoss since vLLM 0.10.2 (GptOss in 0.10.1.1).
        "--reasoning-parser", "openai_gptoss",
    ]  # fmt: skip
    if spec.serving.tool_calling:
        args += ["--tool-call-parser", "openai", "--enable-auto-tool-choice"]
    if gpu.moe_path is MoEPath.FLASHINFER_TRTLLM_MXFP8 and version >= MOE_BACKEND_FLAG_SINCE:
        args += _BLACKWELL_MOE_BACKEND
    return args + list(spec.vllm.extra_args)


def vllm_env(spec: ModelDeploymentSpec, gpu: GPUProfile, version: VLLMVersion) -> list[EnvVar]:
    """The GPU architecture's MXFP4/backend env for this vLLM version, then spec.vllm.env overriding by name."""
    env = dict(gpu.env)
    if gpu.moe_path is MoEPath.FLASHINFER_TRTLLM_MXFP8 and version < MOE_BACKEND_FLAG_SINCE:
        env.update([_BLACKWELL_MXFP8_ENV])
    merged = {name: EnvVar(name=name, value=value) for name, value in env.items()}
    merged.update((e.name, e) for e in spec.vllm.env)
    return list(merged.values())
