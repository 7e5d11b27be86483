"""The vLLM Deployment and Service of a ModelDeployment (pure builders)."""

from __future__ import annotations

from typing import Literal

from gptoss_operator import labels as keys
from gptoss_operator.api.v1alpha1 import ModelDeployment, Plan
from gptoss_operator.manifests.common import (
    CONTAINER_SECURITY,
    JSON,
    POD_SECURITY,
    child_names,
    digest,
    hf_home_env,
    hf_token_env,
    image_pull_secrets,
    metadata,
    selector_labels,
    user_env,
    with_config_hash,
)
from gptoss_operator.planning.catalog import gpu_profile
from gptoss_operator.planning.startup import StartupBudget
from gptoss_operator.settings import OperatorSettings

RolloutChoice = Literal["Surge", "Recreate"]
MODELS_VOLUME = "models"


def gpu_resource(md: ModelDeployment) -> str:
    return "amd.com/gpu" if gpu_profile(md.spec.gpu.type).vendor == "amd" else "nvidia.com/gpu"


def node_affinity(md: ModelDeployment, settings: OperatorSettings) -> JSON:
    label = settings.planner.node_label_for(gpu_profile(md.spec.gpu.type))
    return {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {"matchExpressions": [{"key": label.key, "operator": "In", "values": list(label.values)}]}
                ]
            }
        }
    }


def node_label_requirements(md: ModelDeployment, settings: OperatorSettings) -> dict[str, tuple[str, ...]]:
    """Labels a node must carry to run this ModelDeployment's pods (GPU type + nodeSelector)."""
    label = settings.planner.node_label_for(gpu_profile(md.spec.gpu.type))
    wanted = {label.key: label.values}
    for key, value in md.spec.scheduling.node_selector.items():
        # Node affinity and nodeSelector must both hold: a selector on the GPU label narrows
        # the catalog's values (possibly to none), it never widens them.
        wanted[key] = tuple(v for v in wanted.get(key, (value,)) if v == value)
    return wanted


def _env(md: ModelDeployment, plan: Plan, settings: OperatorSettings) -> list[JSON]:
    env: dict[str, JSON] = {e.name: e.container_env() for e in plan.env}
    # The order is part of the pod template's hash: changing it would roll out every model.
    env["HF_HOME"] = hf_home_env(settings)
    if md.spec.source.weights_on_volume:
        # Weights are on a read-only volume (the cache, or the user's PVC): never reach the Hub.
        env["HF_HUB_OFFLINE"] = {"name": "HF_HUB_OFFLINE", "value": "1"}
    env.update((e["name"], e) for e in hf_token_env(md))
    env.update((e["name"], e) for e in user_env(md))  # the user's env wins over the plan's, by name
    return list(env.values())


def weights_volume_claim(md: ModelDeployment) -> str | None:
    """The PVC the vLLM pods mount read-only (the operator's cache PVC or the user's own claim),
    or None when each pod downloads into an emptyDir."""
    provided = md.spec.source.persistent_volume_claim
    if provided is not None:
        return provided.claim_name
    if md.spec.source.cache is not None:
        return child_names(md.metadata["name"]).weights_claim
    return None


def _volumes(md: ModelDeployment, settings: OperatorSettings) -> tuple[list[JSON], list[JSON]]:
    claim = weights_volume_claim(md)
    # The whole claim is mounted and --model points into it (planning/vllm_args.model_location),
    # rather than a subPath mount: a subPath that does not exist fails the container with
    # CreateContainerConfigError, while a missing directory is named in vLLM's own error.
    models: JSON = (
        {"name": MODELS_VOLUME, "persistentVolumeClaim": {"claimName": claim, "readOnly": True}}
        if claim is not None
        else {"name": MODELS_VOLUME, "emptyDir": {}}
    )
    volumes = [models, {"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": settings.shm_size}}]
    mounts: list[JSON] = [
        {
            "name": MODELS_VOLUME,
            "mountPath": settings.planner.model_mount_path,
            "readOnly": claim is not None,
        },
        {"name": "dshm", "mountPath": "/dev/shm"},
    ]
    return volumes, mounts


def pod_template(md: ModelDeployment, plan: Plan, settings: OperatorSettings, startup: StartupBudget) -> JSON:
    name = md.metadata["name"]
    resource = gpu_resource(md)
    gpus = str(plan.gpus_per_replica)
    volumes, mounts = _volumes(md, settings)
    port = settings.planner.port
    tolerations: list[JSON] = [{"key": resource, "operator": "Exists", "effect": "NoSchedule"}]
    tolerations += [t.model_dump(by_alias=True, exclude_none=True) for t in md.spec.scheduling.tolerations]
    spec: JSON = {
        "affinity": node_affinity(md, settings),
        "tolerations": tolerations,
        **POD_SECURITY,
        **image_pull_secrets(settings),
        # vLLM drains in-flight requests on SIGTERM; long generations need more than 30 s.
        "terminationGracePeriodSeconds": 120,
        "containers": [
            {
                "name": "vllm",
                "image": plan.image,
                "args": list(plan.args),
                "env": _env(md, plan, settings),
                "ports": [{"name": "http", "containerPort": port, "protocol": "TCP"}],
                "resources": {"requests": {resource: gpus}, "limits": {resource: gpus}},
                "volumeMounts": mounts,
                "securityContext": dict(CONTAINER_SECURITY),
                # Loading weights takes minutes (65 GB for 120b); until the first success the
                # kubelet only runs this probe, so liveness cannot kill a loading pod.
                "startupProbe": {
                    "httpGet": {"path": "/health", "port": "http"},
                    "periodSeconds": startup.period_seconds,
                    "failureThreshold": startup.failure_threshold,
                    "timeoutSeconds": 5,
                },
                # /health turns green before the model is registered; /v1/models answers only
                # once the OpenAI server serves it, so traffic waits for that.
                "readinessProbe": {
                    "httpGet": {"path": "/v1/models", "port": "http"},
                    "periodSeconds": 10,
                    "failureThreshold": 3,
                    "timeoutSeconds": 5,
                },
                "livenessProbe": {
                    "httpGet": {"path": "/health", "port": "http"},
                    "periodSeconds": 20,
                    "failureThreshold": 3,
                    "timeoutSeconds": 10,
                },
            }
        ],
        "volumes": volumes,
    }
    if md.spec.scheduling.node_selector:
        spec["nodeSelector"] = dict(md.spec.scheduling.node_selector)
    if md.spec.scheduling.priority_class_name:
        spec["priorityClassName"] = md.spec.scheduling.priority_class_name
    return {"metadata": {"labels": metadata(md.metadata, name, md.spec.model)["labels"]}, "spec": spec}


def deployment(md: ModelDeployment, template: JSON, startup: StartupBudget, rollout: RolloutChoice) -> JSON:
    """The Deployment around ``template`` (from :func:`pod_template`, built once by the caller,
    which also needs its hash to decide the rollout strategy)."""
    name = md.metadata["name"]
    # Surge keeps every replica serving while the new one loads (needs spare GPUs);
    # Recreate-style (maxSurge 0) frees a replica's GPUs first, so a full node pool never
    # deadlocks waiting for GPUs that the old pods hold (a surge rollout on a full pool leaves the
    # new pod Pending forever while the old one keeps its GPUs).
    rolling = (
        {"maxSurge": 1, "maxUnavailable": 0} if rollout == "Surge" else {"maxSurge": 0, "maxUnavailable": 1}
    )
    meta = metadata(md.metadata, name, md.spec.model)
    meta["annotations"] = {keys.TEMPLATE_HASH: digest(template)}
    manifest: JSON = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": meta,
        "spec": {
            "replicas": md.spec.replicas,
            "selector": {"matchLabels": selector_labels(name)},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": rolling},
            # The rollout may legitimately spend the whole startup budget loading weights.
            "progressDeadlineSeconds": startup.total_seconds + 300,
            "revisionHistoryLimit": 3,
            "template": template,
        },
    }
    return with_config_hash(manifest)


def service(md: ModelDeployment, settings: OperatorSettings) -> JSON:
    name = md.metadata["name"]
    manifest: JSON = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(md.metadata, name, md.spec.model),
        "spec": {
            "type": "ClusterIP",
            "selector": selector_labels(name),
            "ports": [
                {"name": "http", "port": settings.planner.port, "targetPort": "http", "protocol": "TCP"}
            ],
        },
    }
    return with_config_hash(manifest)


def disruption_budget(md: ModelDeployment) -> JSON | None:
    """One replica down at a time during voluntary disruptions; none for a single replica
    (a PDB on one replica would block node drains forever)."""
    if md.spec.replicas <= 1:
        return None
    name = md.metadata["name"]
    manifest: JSON = {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": metadata(md.metadata, name, md.spec.model),
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": selector_labels(name)}},
    }
    return with_config_hash(manifest)
