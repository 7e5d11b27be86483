"""The planner: a ModelDeployment spec in, a :class:`Plan` or a typed :class:`Refusal` out.

Rule (issue 3): the smallest tensor-parallel size in {1, 2, 4, 8} whose per-GPU memory
(weights/TP + runtime overhead + KV for minConcurrentSequences x maxModelLen) fits in
gpuMemoryUtilization x GPU memory (memory.py). ``gptoss-operator plan`` and the operator call
:func:`plan_deployment`; nothing else decides GPU counts.
"""

from __future__ import annotations

from dataclasses import dataclass

from gptoss_operator.api import ModelDeploymentSpec, Plan, RefusalReason
from gptoss_operator.planning.catalog import CATALOG, GPUProfile, gpu_profile
from gptoss_operator.planning.memory import MemoryBudget, memory_budget
from gptoss_operator.planning.model_profiles import ModelProfile, model_profile
from gptoss_operator.planning.settings import DEFAULT_SETTINGS, PlannerSettings
from gptoss_operator.planning.vllm_args import vllm_args, vllm_env
from gptoss_operator.planning.vllm_versions import (
    SUPPORTED_RANGE,
    VLLMVersion,
    format_version,
    image_version,
    is_supported,
    parse_version,
)


@dataclass(frozen=True)
class FeasiblePlan:
    """A plan that would work, named in refusal messages."""

    gpu_type: str
    gpus: int
    max_model_len: int

    def describe(self) -> str:
        return f"{self.gpus} x {self.gpu_type} (gpu.count {self.gpus}, TP {self.gpus}) with maxModelLen {self.max_model_len}"


@dataclass(frozen=True)
class Refusal:
    """Why a spec cannot be planned: the Planned=False condition's reason and message."""

    reason: RefusalReason
    message: str
    smallest_feasible: FeasiblePlan | None = None


# The highest gpu_memory_utilization a refusal suggests. vLLM's own recipes go to 0.95 (the AMD
# default here); above it the CUDA context, NCCL buffers and other memory outside vLLM's
# accounting leave too little room (vLLM docs, "Conserving Memory": lower it on OOM).
MAX_SUGGESTED_UTILIZATION = 0.95


def _utilization(spec: ModelDeploymentSpec, gpu: GPUProfile) -> float:
    return spec.serving.gpu_memory_utilization or gpu.default_gpu_memory_utilization


def _budgets(
    spec: ModelDeploymentSpec, model: ModelProfile, gpu: GPUProfile, max_model_len: int
) -> dict[int, MemoryBudget]:
    return {
        tp: memory_budget(
            model,
            gpu,
            tp,
            gpu_memory_utilization=_utilization(spec, gpu),
            max_model_len=max_model_len,
            min_concurrent_sequences=spec.serving.min_concurrent_sequences,
        )
        for tp in model.tp_sizes
    }


def _smallest_fit(budgets: dict[int, MemoryBudget]) -> MemoryBudget | None:
    return next((b for tp, b in sorted(budgets.items()) if b.fits), None)


def _smallest_on_other_gpus(
    spec: ModelDeploymentSpec, model: ModelProfile, max_model_len: int
) -> FeasiblePlan | None:
    """The fewest GPUs of any supported catalog type (ties: the smallest GPU) that fit the request."""
    options = []
    for gpu in CATALOG.values():
        if not gpu.supported:
            continue
        if fit := _smallest_fit(_budgets(spec, model, gpu, max_model_len)):
            options.append(
                (
                    fit.tensor_parallel_size,
                    gpu.memory_mib,
                    FeasiblePlan(gpu.name, fit.tensor_parallel_size, max_model_len),
                )
            )
    return min(options, key=lambda o: (o[0], o[1]))[2] if options else None


def _shortfall(b: MemoryBudget) -> str:
    return (
        f"per GPU {b.weights_gib:.1f} GiB weights + {b.overhead_gib:.1f} GiB runtime + "
        f"{b.kv_required_gib:.2f} GiB KV ({b.min_concurrent_sequences} x {b.max_model_len} tokens) "
        f"> {b.usable_gib:.1f} GiB ({b.gpu_memory_utilization:g} x {b.gpu.memory_gib:.1f} GiB)"
    )


def _refuse_capacity(
    spec: ModelDeploymentSpec,
    model: ModelProfile,
    gpu: GPUProfile,
    max_model_len: int,
    budgets: dict[int, MemoryBudget],
    requested: MemoryBudget,
) -> Refusal:
    fit = _smallest_fit(budgets)
    head = f"{model.name} with maxModelLen {max_model_len} does not fit on {requested.tensor_parallel_size} x {gpu.name}: {_shortfall(requested)}."
    if fit is not None:  # only reachable with an explicit count
        smallest = FeasiblePlan(gpu.name, fit.tensor_parallel_size, max_model_len)
        message = f"{head} Smallest feasible plan: {smallest.describe()}."
        if (shorter := requested.max_fitting_model_len) > 0:
            message += f" Or keep gpu.count {requested.tensor_parallel_size} with maxModelLen <= {shorter}."
        if (util := requested.min_fitting_utilization) <= MAX_SUGGESTED_UTILIZATION:
            message += (
                f" Or keep gpu.count {requested.tensor_parallel_size} and maxModelLen {max_model_len} with "
                f"serving.gpuMemoryUtilization {util:g} (vLLM's --gpu-memory-utilization; default "
                f"{requested.gpu_memory_utilization:g})."
            )
        return Refusal("InsufficientGPUMemory", message, smallest)
    largest = budgets[max(budgets)]
    if (shorter := largest.max_fitting_model_len) > 0:
        smallest = FeasiblePlan(gpu.name, largest.tensor_parallel_size, shorter)
        message = (
            f"{head} No GPU count up to {largest.tensor_parallel_size} holds {spec.serving.min_concurrent_sequences} "
            f"sequence(s) of {max_model_len} tokens. Smallest feasible plan: {smallest.describe()}."
        )
        other = _smallest_on_other_gpus(spec, model, max_model_len)
        if other is not None:
            message += f" Or, at maxModelLen {max_model_len}: {other.describe()}."
        return Refusal("ContextTooLong", message, smallest)
    smallest_other = _smallest_on_other_gpus(spec, model, max_model_len)
    message = f"{head} The weights do not fit on up to {largest.tensor_parallel_size} x {gpu.name}."
    if smallest_other is not None:
        message += f" Smallest feasible plan: {smallest_other.describe()}."
    return Refusal("InsufficientGPUMemory", message, smallest_other)


def _vllm_version(spec: ModelDeploymentSpec, image: str) -> VLLMVersion | Refusal:
    """spec.vllm.version if declared, else the image tag's; refused when unknown or unsupported.

    Refused rather than planned with a warning: a flag or env var the image's vLLM does not know
    makes the server exit at start (argparse error) or is ignored silently (env), and neither
    shows up until the pod crash-loops. docs/vllm-versions.md.
    """
    declared = parse_version(spec.vllm.version) if spec.vllm.version else None
    tagged = image_version(image)
    if declared is not None and spec.image is None and tagged is not None and tagged != declared:
        # spec.vllm.version describes spec.image (or a default image whose tag names no version);
        # against a pinned default it can only be a mistake.
        return Refusal(
            "UnsupportedVLLMVersion",
            f"spec.vllm.version {format_version(declared)} does not match the default image {image} "
            f"(vLLM {format_version(tagged)}); set spec.image to the image that holds vLLM "
            f"{format_version(declared)}, or drop spec.vllm.version.",
        )
    version = declared or tagged
    if version is None:
        return Refusal(
            "UnsupportedVLLMVersion",
            f"cannot tell the vLLM version of image {image}: its tag names none. Set spec.vllm.version "
            f"(supported: {SUPPORTED_RANGE}).",
        )
    if not is_supported(version):
        source = "spec.vllm.version" if declared else f"image {image}"
        return Refusal(
            "UnsupportedVLLMVersion",
            f"vLLM {format_version(version)} ({source}) is outside the supported range {SUPPORTED_RANGE}; "
            "the operator only writes flags and env checked against those releases (docs/vllm-versions.md).",
        )
    return version


def plan_deployment(
    spec: ModelDeploymentSpec, settings: PlannerSettings = DEFAULT_SETTINGS
) -> Plan | Refusal:
    """Plan one replica of ``spec``: the exact ``status.plan``, or why it cannot run."""
    model = model_profile(spec.model)
    gpu = gpu_profile(spec.gpu.type)
    max_model_len = spec.serving.max_model_len or model.max_context
    image = spec.image or settings.image_for(gpu)
    if not gpu.supported:
        other = _smallest_on_other_gpus(spec, model, max_model_len)
        major, minor = gpu.compute_capability
        message = (
            f"{gpu.name} has compute capability {major}.{minor}; vLLM's MXFP4 kernels for gpt-oss need 8.0 or "
            "newer (vLLM #22288, #23203)."
        )
        if other is not None:
            message += f" Smallest feasible plan: {other.describe()}."
        return Refusal("UnsupportedGPU", message, other)
    if max_model_len > model.max_context:
        smallest = FeasiblePlan(gpu.name, 1, model.max_context)
        return Refusal(
            "ContextTooLong",
            f"maxModelLen {max_model_len} exceeds {model.name}'s context of {model.max_context} tokens.",
            smallest,
        )
    version = _vllm_version(spec, image)
    if isinstance(version, Refusal):
        return version
    budgets = _budgets(spec, model, gpu, max_model_len)
    chosen = _smallest_fit(budgets) if spec.gpu.count == "auto" else budgets[spec.gpu.count]
    if chosen is None or not chosen.fits:
        requested = budgets[spec.gpu.count] if spec.gpu.count != "auto" else budgets[max(budgets)]
        return _refuse_capacity(spec, model, gpu, max_model_len, budgets, requested)
    tp = chosen.tensor_parallel_size
    return Plan(
        gpus_per_replica=tp,
        tensor_parallel_size=tp,
        gpu_memory_utilization=chosen.gpu_memory_utilization,
        max_model_len=max_model_len,
        kv_cache_tokens=chosen.kv_cache_tokens,
        image=image,
        vllm_version=format_version(version),
        args=vllm_args(
            spec,
            model,
            tensor_parallel_size=tp,
            max_model_len=max_model_len,
            gpu_memory_utilization=chosen.gpu_memory_utilization,
            settings=settings,
            gpu=gpu,
            version=version,
        ),
        env=vllm_env(spec, gpu, version),
    )


def budget_for(spec: ModelDeploymentSpec, tensor_parallel_size: int) -> MemoryBudget:
    """The memory budget behind a plan (for ``plan -o text`` and the sizing table)."""
    model = model_profile(spec.model)
    gpu = gpu_profile(spec.gpu.type)
    return _budgets(spec, model, gpu, spec.serving.max_model_len or model.max_context)[tensor_parallel_size]
