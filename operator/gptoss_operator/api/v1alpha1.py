"""ModelDeployment ``gptoss.dev/v1alpha1``: the typed source of truth for the CRD and the operator.

Every field carries a description: it becomes the OpenAPI description in the CRD, so
``kubectl explain modeldeployment.spec.gpu`` explains it. Rules the API server should enforce
are declared here too (``x-kubernetes-validations`` via ``json_schema_extra``) and mirrored by
pydantic constraints, so a body that bypassed admission still fails to parse, with an error
that names the field (see :func:`gptoss_operator.validation_messages.describe_validation_error`).
"""

from __future__ import annotations

from typing import Annotated, Any, Final, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema, field_validator, model_validator
from pydantic.alias_generators import to_camel

from gptoss_operator.api.managed_flags import MANAGED_FLAG_REGEX, MANAGED_FLAGS_MESSAGE, managed_flags_in

GROUP: Final = "gptoss.dev"
VERSION: Final = "v1alpha1"
API_VERSION: Final = f"{GROUP}/{VERSION}"
KIND: Final = "ModelDeployment"
PLURAL: Final = "modeldeployments"
SINGULAR: Final = "modeldeployment"

ModelName = Literal["gpt-oss-20b", "gpt-oss-120b"]
MODEL_NAMES: Final[tuple[ModelName, ...]] = ("gpt-oss-20b", "gpt-oss-120b")

# The GPU catalog's keys (gptoss_operator.planning.catalog); a unit test keeps them equal.
GPUType = Literal[
    "H100-80GB", "H200", "B200", "A100-80GB", "A100-40GB", "L40S", "L4", "A10G", "MI300X", "T4", "V100"
]

# Tensor-parallel sizes vLLM runs gpt-oss at (64 query and 8 KV heads, hidden
# size 2880: each must divide by TP; the models' config.json on Hugging Face).
TP_SIZES: Final[tuple[int, ...]] = (1, 2, 4, 8)
GPUCount = Literal["auto", 1, 2, 4, 8]

# Both models' max_position_embeddings (config.json of openai/gpt-oss-20b and -120b).
MAX_CONTEXT: Final = 131072

Phase = Literal["Pending", "Downloading", "Starting", "Ready", "ScaledToZero", "Degraded", "Failed"]
ConditionStatus = Literal["True", "False", "Unknown"]

# Condition types the operator writes (docs/api.md, `conditions`).
CONDITION_PLANNED: Final = "Planned"
CONDITION_WEIGHTS_READY: Final = "WeightsReady"
CONDITION_PROGRESSING: Final = "Progressing"
CONDITION_READY: Final = "Ready"
CONDITION_DEGRADED: Final = "Degraded"

# Size bounds on what a user may write into a spec. etcd refuses a request over 1.5 MiB
# (--max-request-bytes), so an object near that size can be created but not have its status
# patched (the patch carries the object back), and the operator would retry it forever. The
# bounds keep a spec far below it: 64 env values of 4 KiB and 64 arguments of 1 KiB are 320 KiB
# at most; names follow Kubernetes' own limits (DNS subdomain 253, label value 63, qualified
# label key 317). docs/api.md lists them.
MAX_NAME: Final = 253
MAX_LABEL_KEY: Final = 317
MAX_LABEL_VALUE: Final = 63
MAX_IMAGE: Final = 512
MAX_ENV_VALUE: Final = 4096
MAX_ITEMS: Final = 64
MAX_ARG: Final = 1024
# An image reference has no whitespace; the API server refuses a pod whose image has leading
# or trailing spaces, which would only show up as the ReplicaSet's FailedCreate.
IMAGE_PATTERN: Final = r"^\S+$"

# Planner refusal reasons, used as the Planned=False condition's reason.
RefusalReason = Literal["UnsupportedGPU", "InsufficientGPUMemory", "ContextTooLong", "UnsupportedVLLMVersion"]


class _Model(BaseModel):
    """camelCase on the wire, snake_case in Python; unknown fields are ignored (the API server prunes them)."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore", frozen=True)


class GPUSpec(_Model):
    """Which GPUs serve the model and how many each replica uses."""

    type: GPUType = Field(
        description=(
            "GPU type from the operator's catalog. Pods are pinned to nodes whose GPU product label "
            "(nvidia.com/gpu.product, or amd.com/gpu.product-name for AMD) matches this type. "
            "Types below compute capability 8.0 (T4, V100) are refused: vLLM has no MXFP4 path there."
        )
    )
    count: Annotated[
        GPUCount,
        WithJsonSchema(
            {
                "x-kubernetes-int-or-string": True,
                "x-kubernetes-validations": [
                    {
                        "rule": "type(self) == string ? self == 'auto' : self in [1, 2, 4, 8]",
                        "message": "gpu.count must be auto, 1, 2, 4 or 8 (the tensor-parallel sizes vLLM supports for gpt-oss)",
                    }
                ],
            }
        ),
    ] = Field(
        default="auto",
        description=(
            "GPUs per replica, equal to vLLM's tensor-parallel size: the string auto (the smallest size whose "
            "memory budget fits) or the integer 1, 2, 4 or 8 (int-or-string). An explicit count that cannot fit "
            "is refused with the smallest plan that would."
        ),
    )


class ReasoningSpec(_Model):
    """Reasoning defaults for requests that do not choose their own."""

    default_effort: Literal["low", "medium", "high"] = Field(
        default="medium",
        description=(
            "Reasoning effort for requests that do not send reasoning_effort. vLLM takes the effort per "
            "request (harmony system message); medium is the model's own default."
        ),
    )


class ServingSpec(_Model):
    """How vLLM serves the model: context length, concurrency floor and parsers."""

    # No minimum/maximum in the CRD, only the CEL rule: a failed minimum or maximum does not stop
    # the API server from evaluating CEL rules (only type, enum, required and too-long/too-many
    # errors do), so both refused the same value in two messages. pydantic keeps ge/le.
    max_model_len: Annotated[int, WithJsonSchema({"type": "integer"})] | None = Field(
        default=None,
        ge=1,
        le=MAX_CONTEXT,
        description="Longest sequence (prompt + output) in tokens, passed as --max-model-len. Default: the model's full context, 131072.",
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": f"self >= 1 && self <= {MAX_CONTEXT}",
                    "message": f"serving.maxModelLen must be between 1 and {MAX_CONTEXT} (the context gpt-oss was trained for)",
                }
            ]
        },
    )
    min_concurrent_sequences: int = Field(
        default=1,
        ge=1,
        le=4096,
        description=(
            "The plan must hold at least this many maxModelLen-token sequences in the KV cache at once; "
            "raising it can raise the GPU count."
        ),
    )
    gpu_memory_utilization: float | None = Field(
        default=None,
        ge=0.5,
        le=0.98,
        description=(
            "Fraction of each GPU's memory vLLM may use (--gpu-memory-utilization). Default: 0.9 on NVIDIA "
            "(vLLM's default), 0.95 on AMD (vLLM recipe)."
        ),
    )
    reasoning: ReasoningSpec = Field(default_factory=ReasoningSpec, description="Reasoning-effort defaults.")
    tool_calling: bool = Field(
        default=True,
        description="Enable function calling: --tool-call-parser openai --enable-auto-tool-choice.",
    )


class SecretKeyRef(_Model):
    """A key in a Secret in the ModelDeployment's namespace."""

    name: str = Field(min_length=1, max_length=MAX_NAME, description="Name of the Secret.")
    key: str = Field(min_length=1, max_length=MAX_NAME, description="Key within the Secret.")


class HuggingFaceSource(_Model):
    """A Hugging Face model repository."""

    repo: str | None = Field(
        default=None,
        max_length=MAX_NAME,
        description="Repository id. Default: openai/<model>, e.g. openai/gpt-oss-120b.",
    )
    revision: str = Field(
        default="main", min_length=1, max_length=MAX_NAME, description="Branch, tag or commit to load."
    )
    token_secret_ref: SecretKeyRef | None = Field(
        default=None, description="Secret key holding a Hugging Face token (for gated or private repos)."
    )


class CacheSpec(_Model):
    """A PersistentVolumeClaim filled once by a download Job and mounted read-only by the pods."""

    size: str | None = Field(
        default=None,
        pattern=r"^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|k|M|G|T)?$",
        description="PVC size as a quantity, e.g. 80Gi. Default: the model's root safetensors plus headroom.",
    )
    storage_class_name: str | None = Field(
        default=None,
        max_length=MAX_NAME,
        description="StorageClass of the PVC. Default: the cluster's default class.",
    )
    access_mode: Literal["ReadWriteOnce", "ReadWriteMany"] = Field(
        default="ReadWriteOnce",
        description=(
            "Access mode of the PVC. ReadWriteOnce (default) works with any block storage class but attaches "
            "to one node: replicas on other nodes fail with Multi-Attach errors, so use it for one replica or "
            "replicas on one node. ReadWriteMany shares one cache across nodes and needs a class that offers it "
            "(NFS, CephFS, a cloud file store)."
        ),
    )


# A path inside a volume: relative, and never leaving the volume through "..". CEL's matches()
# is RE2, so no lookarounds (the Kubernetes CEL docs, "Regular expressions").
PARENT_SEGMENT_REGEX: Final = r"(^|/)[.][.](/|$)"
VOLUME_PATH_MESSAGE: Final = (
    "persistentVolumeClaim.path must be relative to the volume's root (no leading /) and must not contain "
    "a .. segment"
)
MAX_VOLUME_PATH: Final = 1024


class VolumeSource(_Model):
    """A PersistentVolumeClaim that already holds the weights (copied there once, shared by many
    deployments). The operator only reads it: it creates, changes and deletes nothing on it."""

    claim_name: str = Field(
        min_length=1,
        max_length=MAX_NAME,
        description=(
            "Name of an existing PersistentVolumeClaim in the ModelDeployment's namespace. It is mounted "
            "read-only into every vLLM pod, so replicas on several nodes need a ReadOnlyMany or "
            "ReadWriteMany volume."
        ),
    )
    path: str = Field(
        default="",
        max_length=MAX_VOLUME_PATH,
        description=(
            "Directory inside the volume holding the model's root files (config.json, the *.safetensors "
            "shards, the tokenizer), relative to the volume's root, e.g. models/gpt-oss-120b. "
            "Default: the volume's root."
        ),
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": f"!self.startsWith('/') && !self.matches('{PARENT_SEGMENT_REGEX}')",
                    "message": VOLUME_PATH_MESSAGE,
                }
            ]
        },
    )

    @field_validator("path")
    @classmethod
    def _inside_the_volume(cls, value: str) -> str:
        if value.startswith("/") or ".." in value.split("/"):
            raise ValueError(VOLUME_PATH_MESSAGE)
        return value


# The CEL form of "huggingface is left at its defaults": the API server fills in revision: main.
_DEFAULT_HUGGINGFACE = (
    "!has(self.huggingface) || (!has(self.huggingface.repo) && !has(self.huggingface.tokenSecretRef)"
    " && (!has(self.huggingface.revision) || self.huggingface.revision == 'main'))"
)
VOLUME_WITH_CACHE_MESSAGE: Final = (
    "source.persistentVolumeClaim and source.cache exclude each other: the weights are either on your volume "
    "or downloaded into a cache the operator creates"
)
VOLUME_WITH_HUGGINGFACE_MESSAGE: Final = (
    "source.persistentVolumeClaim loads the weights from your volume, so source.huggingface "
    "(repo, revision, tokenSecretRef) must be left unset"
)


class SourceSpec(_Model):
    """Where the weights come from. Only the repository's root files are fetched, never original/ or metal/."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "!has(self.persistentVolumeClaim) || !has(self.cache)",
                    "message": VOLUME_WITH_CACHE_MESSAGE,
                },
                {
                    "rule": f"!has(self.persistentVolumeClaim) || ({_DEFAULT_HUGGINGFACE})",
                    "message": VOLUME_WITH_HUGGINGFACE_MESSAGE,
                },
            ]
        }
    )

    huggingface: HuggingFaceSource = Field(
        default_factory=HuggingFaceSource, description="The Hugging Face repository."
    )
    cache: CacheSpec | None = Field(
        default=None,
        description="Pre-stage the weights on a PVC (download Job) instead of downloading in every pod at start.",
    )
    # Left out of the JSON when unset, so a plan or a dump of a spec without it reads as before.
    persistent_volume_claim: VolumeSource | None = Field(
        default=None,
        exclude_if=lambda v: v is None,
        description=(
            "Load the weights from an existing PersistentVolumeClaim instead of Hugging Face: no download, "
            "no cache PVC, no download Job, and the pods never reach the Hub (HF_HUB_OFFLINE=1). "
            "Excludes cache and a non-default huggingface."
        ),
    )

    @property
    def weights_on_volume(self) -> bool:
        """True when the pods read the weights from a mounted volume (the operator's cache PVC or
        the user's own PVC) rather than downloading them from Hugging Face when they start."""
        return self.cache is not None or self.persistent_volume_claim is not None

    @model_validator(mode="after")
    def _one_weights_source(self) -> Self:
        if self.persistent_volume_claim is None:
            return self
        if self.cache is not None:
            raise ValueError(VOLUME_WITH_CACHE_MESSAGE)
        if self.huggingface != HuggingFaceSource():
            raise ValueError(VOLUME_WITH_HUGGINGFACE_MESSAGE)
        return self


class RolloutSpec(_Model):
    """How pods are replaced when the spec changes."""

    strategy: Literal["Auto", "Surge", "Recreate"] = Field(
        default="Auto",
        description=(
            "Surge: maxSurge 1 / maxUnavailable 0 (needs spare GPUs). Recreate: maxSurge 0 / maxUnavailable 1 "
            "(never waits for spare GPUs). Auto: Surge when matching nodes have spare GPUs for one more replica, else Recreate."
        ),
    )


class Toleration(_Model):
    """A Kubernetes toleration (core/v1 Toleration)."""

    key: str | None = Field(
        default=None,
        max_length=MAX_LABEL_KEY,
        description="Taint key to match; empty with operator Exists matches all keys.",
    )
    operator: Literal["Exists", "Equal"] | None = Field(
        default=None, description="Exists or Equal (default Equal)."
    )
    value: str | None = Field(
        default=None, max_length=MAX_LABEL_VALUE, description="Taint value to match with operator Equal."
    )
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = Field(
        default=None, description="Taint effect to match; empty matches all effects."
    )
    toleration_seconds: int | None = Field(
        default=None, description="For NoExecute: how long the pod stays bound after the taint appears."
    )


class SchedulingSpec(_Model):
    """Extra placement rules, on top of the GPU type's node affinity and GPU taint tolerations the operator adds."""

    node_selector: dict[
        Annotated[str, Field(max_length=MAX_LABEL_KEY)], Annotated[str, Field(max_length=MAX_LABEL_VALUE)]
    ] = Field(default_factory=dict, max_length=MAX_ITEMS, description="Extra node labels the pods require.")
    tolerations: list[Toleration] = Field(
        default_factory=list, max_length=MAX_ITEMS, description="Extra tolerations for the pods."
    )
    priority_class_name: str | None = Field(
        default=None, max_length=MAX_NAME, description="PriorityClass of the pods."
    )


class ConfigMapKeyRef(_Model):
    """A key in a ConfigMap in the ModelDeployment's namespace."""

    name: str = Field(min_length=1, max_length=MAX_NAME, description="Name of the ConfigMap.")
    key: str = Field(min_length=1, max_length=MAX_NAME, description="Key within the ConfigMap.")


class EnvVarSource(_Model):
    """Where a variable's value comes from: one key of a Secret or of a ConfigMap (Kubernetes' own
    secretKeyRef / configMapKeyRef). The operator never reads it; the kubelet does."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "has(self.secretKeyRef) != has(self.configMapKeyRef)",
                    "message": "valueFrom needs exactly one of secretKeyRef and configMapKeyRef",
                }
            ]
        }
    )

    secret_key_ref: SecretKeyRef | None = Field(
        default=None, exclude_if=lambda v: v is None, description="A key of a Secret."
    )
    config_map_key_ref: ConfigMapKeyRef | None = Field(
        default=None, exclude_if=lambda v: v is None, description="A key of a ConfigMap."
    )

    @model_validator(mode="after")
    def _exactly_one(self) -> Self:
        if (self.secret_key_ref is None) == (self.config_map_key_ref is None):
            raise ValueError("valueFrom needs exactly one of secretKeyRef and configMapKeyRef")
        return self


class EnvVar(_Model):
    """An environment variable: a literal value, or a key of a Secret or ConfigMap (valueFrom)."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "!has(self.valueFrom) || !has(self.value) || self.value == ''",
                    "message": "an env entry has a value or a valueFrom, not both",
                }
            ]
        }
    )

    name: str = Field(min_length=1, max_length=MAX_NAME, description="Variable name.")
    value: str = Field(default="", max_length=MAX_ENV_VALUE, description="Variable value (at most 4 KiB).")
    # Left out of the JSON when unset, so a plan without such entries reads as it always has.
    value_from: EnvVarSource | None = Field(
        default=None,
        exclude_if=lambda v: v is None,
        description="The value from a key of a Secret or ConfigMap in the ModelDeployment's namespace, instead of value.",
    )

    @model_validator(mode="after")
    def _value_or_value_from(self) -> Self:
        if self.value_from is not None and self.value:
            raise ValueError("an env entry has a value or a valueFrom, not both")
        return self

    def container_env(self) -> dict[str, Any]:
        """The entry of a container's env list (a literal one exactly as before valueFrom existed:
        it is part of the pod template's hash)."""
        if self.value_from is None:
            return {"name": self.name, "value": self.value}
        return {"name": self.name, "valueFrom": self.value_from.model_dump(by_alias=True, exclude_none=True)}

    def describe(self) -> str:
        """NAME=value, or where the value comes from (never a Secret's content: it is not known)."""
        source = self.value_from
        if source is None:
            return f"{self.name}={self.value}"
        refs = (("Secret", source.secret_key_ref), ("ConfigMap", source.config_map_key_ref))
        # Exactly one is set (EnvVarSource's validator).
        return next(f"{self.name}=<{kind} {ref.name} key {ref.key}>" for kind, ref in refs if ref is not None)


class VLLMSpec(_Model):
    """The vLLM version of the image, and an escape hatch for vLLM options the operator does not model."""

    version: str | None = Field(
        default=None,
        pattern=r"^v?[0-9]+\.[0-9]+(\.[0-9]+)?$",
        description=(
            "vLLM version inside the image, e.g. 0.33.0. Default: read from the image tag "
            "(vllm/vllm-openai:v0.33.0); set it for digest-only or custom tags. The planner writes the "
            "flags and env that version accepts and refuses versions outside the supported range."
        ),
    )
    extra_args: list[Annotated[str, Field(max_length=MAX_ARG)]] = Field(
        default_factory=list,
        max_length=MAX_ITEMS,
        description=(
            "Extra vLLM command-line arguments, appended after the operator's. Flags the operator manages "
            "(--model, --tensor-parallel-size, --max-model-len, --gpu-memory-utilization, --port, ...) are refused."
        ),
        json_schema_extra={
            "x-kubernetes-validations": [
                {"rule": f"self.all(a, !a.matches('{MANAGED_FLAG_REGEX}'))", "message": MANAGED_FLAGS_MESSAGE}
            ]
        },
    )
    env: list[EnvVar] = Field(
        default_factory=list,
        max_length=MAX_ITEMS,
        description="Extra environment variables for the vLLM container; they override the plan's env of the same name.",
    )

    @field_validator("extra_args")
    @classmethod
    def _no_managed_flags(cls, value: list[str]) -> list[str]:
        if found := managed_flags_in(value):
            raise ValueError(f"{MANAGED_FLAGS_MESSAGE} (found {', '.join(found)})")
        return value


class ModelDeploymentSpec(_Model):
    """Desired state: one gpt-oss model served by vLLM."""

    model: ModelName = Field(description="The gpt-oss model to serve: gpt-oss-20b or gpt-oss-120b.")
    gpu: GPUSpec = Field(description="GPU type and GPUs per replica.")
    # No minimum and no CEL rule in the CRD: the scale subresource already refuses a negative
    # specReplicasPath ("should be a non-negative integer"), and a second and third rule only
    # repeated that one mistake in three messages. pydantic keeps ge=0 for bodies that bypassed it.
    replicas: Annotated[int, WithJsonSchema({"type": "integer"})] = Field(
        default=1,
        ge=0,
        description="Number of vLLM replicas, 0 or more (scale subresource: kubectl scale and HPA work).",
    )
    serving: ServingSpec = Field(
        default_factory=ServingSpec, description="Context length, concurrency floor and parsers."
    )
    source: SourceSpec = Field(default_factory=SourceSpec, description="Where the weights come from.")
    image: str | None = Field(
        default=None,
        max_length=MAX_IMAGE,
        pattern=IMAGE_PATTERN,
        description="vLLM container image, without whitespace. Default: the operator's pinned image for the GPU vendor.",
    )
    rollout: RolloutSpec = Field(default_factory=RolloutSpec, description="How pods are replaced on change.")
    scheduling: SchedulingSpec = Field(default_factory=SchedulingSpec, description="Extra placement rules.")
    vllm: VLLMSpec = Field(default_factory=VLLMSpec, description="Extra vLLM arguments and environment.")


class Condition(_Model):
    """A metav1-style condition, for both kinds. lastTransitionTime changes only when status flips."""

    type: str = Field(
        description="Condition type: Planned, WeightsReady, Progressing, Ready or Degraded (ModelDeployment); "
        "Ready or Degraded (RoutePolicy)."
    )
    status: ConditionStatus = Field(description="True, False or Unknown.")
    reason: str = Field(
        default="",
        description="CamelCase reason for the last transition, e.g. InsufficientGPUMemory or SecretNotFound.",
    )
    message: str = Field(default="", description="Human-readable details.")
    observed_generation: int | None = Field(
        default=None, description="metadata.generation the condition was computed from."
    )
    last_transition_time: str | None = Field(
        default=None,
        description="When status last changed (RFC 3339).",
        json_schema_extra={"format": "date-time"},
    )


class Plan(_Model):
    """What the operator decided: GPUs, tensor parallelism, memory budget, and the exact vLLM container."""

    gpus_per_replica: int = Field(description="GPUs each replica requests (equals tensorParallelSize).")
    tensor_parallel_size: int = Field(description="vLLM --tensor-parallel-size.")
    gpu_memory_utilization: float = Field(description="vLLM --gpu-memory-utilization.")
    max_model_len: int = Field(description="vLLM --max-model-len.")
    kv_cache_tokens: int = Field(
        description="Estimated KV-cache capacity per replica, in tokens, after weights and runtime overhead."
    )
    image: str = Field(description="vLLM container image.")
    vllm_version: str | None = Field(
        default=None,
        description="vLLM version the arguments and env were written for (from spec.vllm.version or the image tag).",
    )
    args: list[str] = Field(
        description="vLLM container arguments (the image's entrypoint runs the OpenAI server)."
    )
    env: list[EnvVar] = Field(
        description="Environment for the vLLM container (MXFP4 kernel and backend selection per GPU architecture)."
    )


class ModelDeploymentStatus(_Model):
    """Observed state, written only by the operator."""

    observed_generation: int | None = Field(
        default=None, description="metadata.generation the status reflects."
    )
    phase: Phase | None = Field(
        default=None,
        description=(
            "Summary derived from the conditions: Pending, Downloading, Starting, Ready, ScaledToZero "
            "(spec.replicas is 0), Degraded or Failed. A refused edit of a serving object is Degraded "
            "(the last good plan keeps serving), not Failed."
        ),
    )
    reason: str | None = Field(
        default=None,
        description=(
            "The condition reason behind the phase (empty when Ready), e.g. InsufficientGPU or "
            "DownloadUnschedulable, for the Reason printer column."
        ),
    )
    conditions: list[Condition] = Field(
        default_factory=list,
        description="Planned, WeightsReady, Progressing, Ready, Degraded.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )
    replicas: int | None = Field(
        default=None, description="vLLM pods that exist (scale subresource statusReplicasPath)."
    )
    ready_replicas: int | None = Field(default=None, description="vLLM pods that serve the model.")
    ready_text: str | None = Field(
        default=None,
        description=(
            'readyReplicas/replicas as text, e.g. "1/2", for the Ready printer column '
            "(a printer column shows one JSONPath, it cannot compute)."
        ),
    )
    selector: str | None = Field(
        default=None, description="Label selector of the vLLM pods (scale subresource labelSelectorPath)."
    )
    plan: Plan | None = Field(
        default=None,
        description=(
            "The plan the operator applied. While a new spec cannot be planned it stays the last good plan "
            "if that plan's Deployment still exists (it keeps serving); otherwise absent."
        ),
    )
    rollout_strategy: Literal["Surge", "Recreate"] | None = Field(
        default=None, description="Rollout strategy in effect (what Auto resolved to)."
    )
    endpoint: str | None = Field(
        default=None,
        description="In-cluster OpenAI-compatible base URL, e.g. http://NAME.NAMESPACE.svc:8000/v1.",
    )


# Children are named <name>, <name>-weights and <name>-download, and <name> is a label value:
# Service names and label values stop at 63 characters (DNS-1035 label), Job names too.
MAX_NAME_LENGTH: Final = 63 - len("-download")


class ModelDeployment(_Model):
    """Serve OpenAI's gpt-oss-20b or gpt-oss-120b with vLLM on a GPU type you name; the operator sizes GPUs, TP and flags."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": f"self.metadata.name.size() <= {MAX_NAME_LENGTH}",
                    "message": (
                        f"metadata.name must be at most {MAX_NAME_LENGTH} characters: the Service, "
                        "the download Job (<name>-download) and the pod labels carry it"
                    ),
                }
            ]
        }
    )

    api_version: Literal["gptoss.dev/v1alpha1"] = Field(
        default="gptoss.dev/v1alpha1", description="gptoss.dev/v1alpha1"
    )
    kind: Literal["ModelDeployment"] = Field(default="ModelDeployment", description="ModelDeployment")
    metadata: dict[str, Any] = Field(default_factory=dict, description="Standard object metadata.")
    spec: ModelDeploymentSpec = Field(description="Desired state.")
    status: ModelDeploymentStatus | None = Field(
        default=None, description="Observed state, written by the operator."
    )

    @field_validator("metadata")
    @classmethod
    def _name_fits_children(cls, value: dict[str, Any]) -> dict[str, Any]:
        name = value.get("name")
        if isinstance(name, str) and len(name) > MAX_NAME_LENGTH:
            raise ValueError(
                f"name must be at most {MAX_NAME_LENGTH} characters (it names the Service and the download Job)"
            )
        return value


def ready_text(ready_replicas: int, replicas: int) -> str:
    """The ``status.readyText`` value, formatted like ``kubectl get deploy``'s READY column."""
    return f"{ready_replicas}/{replicas}"
