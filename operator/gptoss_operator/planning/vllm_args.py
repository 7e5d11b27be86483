"""The vLLM container's arguments and environment for a plan.

Arguments are for the image's entrypoint (``vllm/vllm-openai`` runs the OpenAI server and
accepts ``--model``), so the controller passes them as the container's ``args``.
"""

from __future__ import annotations

from gptoss_operator.api import EnvVar, ModelDeploymentSpec
from gptoss_operator.planning.catalog import GPUProfile
from gptoss_operator.planning.model_profiles import ModelProfile
from gptoss_operator.planning.settings import PlannerSettings


def model_location(spec: ModelDeploymentSpec, model: ModelProfile, settings: PlannerSettings) -> str:
    """Where vLLM loads the weights from: the cache PVC's directory, or the Hugging Face repo id."""
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
) -> list[str]:
    args = ["--model", model_location(spec, model, settings)]
    if spec.source.cache is None:
        args += ["--revision", spec.source.huggingface.revision]
    args += [
        # Clients (and the router) address the model by its short name.
        "--served-model-name", model.name,
        "--host", "0.0.0.0",
        "--port", str(settings.port),
        "--tensor-parallel-size", str(tensor_parallel_size),
        "--max-model-len", str(max_model_len),
        "--gpu-memory-utilization", f"{gpu_memory_utilization:g}",
        # Named openai_gptoss since vLLM 0.10.2 (GptOss in 0.10.1.1; facts §2).
        "--reasoning-parser", "openai_gptoss",
    ]  # fmt: skip
    if spec.serving.tool_calling:
        args += ["--tool-call-parser", "openai", "--enable-auto-tool-choice"]  # >= 0.10.2 (facts §2)
    return args + list(spec.vllm.extra_args)


def vllm_env(spec: ModelDeploymentSpec, gpu: GPUProfile) -> list[EnvVar]:
    """The GPU architecture's MXFP4/backend env (catalog), then spec.vllm.env overriding by name."""
    env = dict(gpu.env)
    env.update({e.name: e.value for e in spec.vllm.env})
    return [EnvVar(name=name, value=value) for name, value in env.items()]
