"""Metadata every child shares: names, labels, owner reference, the config-hash annotation."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from gptoss_operator import labels as keys
from gptoss_operator.api.v1alpha1 import API_VERSION, KIND
from gptoss_operator.settings import MANAGED_BY

if TYPE_CHECKING:
    from gptoss_operator.api.v1alpha1 import ModelDeployment
    from gptoss_operator.settings import OperatorSettings

JSON = dict[str, Any]
APP_NAME: Final = "vllm"
# Where the models volume (cache PVC or emptyDir) holds Hugging Face's own cache.
HF_HOME_SUBDIR: Final = "hf"

# Pod- and container-level security of the vLLM and download pods: the restricted
# Pod Security Standard's seccomp and privilege-escalation rules
# (https://kubernetes.io/docs/concepts/security/pod-security-standards/). Neither vLLM nor the
# download needs the Kubernetes API, so no token is mounted; no service env either (vLLM reads
# VLLM_PORT, and a Service named "vllm" would inject VLLM_PORT=tcp://..., which crashes it:
# vLLM docs, "Deploying with Kubernetes", troubleshooting).
#
# fsGroup: the kubelet gives a pod's volumes this group, group-writable (a directory's setgid bit
# keeps new files in it), and adds it to the containers' groups, so the download Job can write a
# fresh cache PVC whose root directory the provisioner made root-owned (0755). Group 0 because it
# is the group the vLLM images already run with: the project's gptoss-vllm image runs as
# uid 2000 gid 0 (runtime-image/vllm.Dockerfile, OpenShift's arbitrary-uid convention: group 0
# owns and may write $HOME), and the upstream vllm/vllm-openai image runs as root. So it gives
# neither image a group it does not already have, and any runAsUser with group 0 writes as well.
# fsGroupChangePolicy OnRootMismatch: the default (Always) changes ownership and permissions of
# every file of the volume at every mount, a recursive walk over 60-130 GB of weights that adds
# minutes to every pod start; OnRootMismatch does it only while the volume's root does not carry
# the group and mode yet, i.e. once, on the empty volume (Kubernetes docs, "Configure volume
# permission and ownership change policy for Pods",
# https://kubernetes.io/docs/tasks/configure-pod-container/security-context/#configure-volume-permission-and-ownership-change-policy-for-pods).
VOLUME_GROUP: Final = 0
POD_SECURITY: Final[JSON] = {
    "enableServiceLinks": False,
    "automountServiceAccountToken": False,
    "securityContext": {
        "seccompProfile": {"type": "RuntimeDefault"},
        "fsGroup": VOLUME_GROUP,
        "fsGroupChangePolicy": "OnRootMismatch",
    },
}
CONTAINER_SECURITY: Final[JSON] = {"allowPrivilegeEscalation": False}


@dataclass(frozen=True)
class ChildNames:
    """The names of one ModelDeployment's children: built here and nowhere else."""

    deployment: str
    service: str
    disruption_budget: str
    weights_claim: str
    download_job: str


def child_names(name: str) -> ChildNames:
    return ChildNames(
        deployment=name,
        service=name,
        disruption_budget=name,
        weights_claim=f"{name}-weights",
        download_job=f"{name}-download",
    )


def hf_home_env(settings: OperatorSettings) -> JSON:
    """Hugging Face's cache on the models volume, for the vLLM and download containers."""
    return {"name": "HF_HOME", "value": f"{settings.planner.model_mount_path}/{HF_HOME_SUBDIR}"}


def hf_token_env(md: ModelDeployment) -> list[JSON]:
    """The Hub token from its Secret when the repo is gated (never the value itself)."""
    ref = md.spec.source.huggingface.token_secret_ref
    if ref is None:
        return []
    return [{"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {"name": ref.name, "key": ref.key}}}]


# The entries of spec.vllm.env the download Job takes as well: what huggingface_hub and the HTTP
# stack under it read. HF_* is the Hub client's own configuration (HF_ENDPOINT names a Hub mirror,
# HF_HUB_* its timeouts and transfer backends, HF_XET_* the xet backend); HUGGING_FACE_HUB_TOKEN is
# the token's older name. The proxy variables, in both cases, and the CA bundle variables are read
# by requests (REQUESTS_CA_BUNDLE, CURL_CA_BUNDLE: requests docs, "SSL Cert Verification") and httpx
# (SSL_CERT_FILE, SSL_CERT_DIR: httpx docs, "Environment Variables"), whichever one the image's
# huggingface_hub uses. Only these: the Job's pod template is immutable, so a change of its env
# changes its config hash and re-creates it, which re-runs the download; a vLLM-only variable
# (VLLM_*, NCCL_*, ...) must not do that.
HUB_CLIENT_ENV_PREFIXES: Final = ("HF_",)
HUB_CLIENT_ENV_NAMES: Final = frozenset(
    {
        "HUGGING_FACE_HUB_TOKEN",
        *(f"{proxy}_PROXY" for proxy in ("HTTP", "HTTPS", "NO", "ALL")),
        *(f"{proxy}_proxy" for proxy in ("http", "https", "no", "all")),
        "REQUESTS_CA_BUNDLE",
        "CURL_CA_BUNDLE",
        "SSL_CERT_FILE",
        "SSL_CERT_DIR",
    }
)
# Set on the vLLM pods of a cached model, never on the Job: offline, the Job could not download.
NOT_FOR_THE_DOWNLOAD: Final = frozenset({"HF_HUB_OFFLINE"})


def is_hub_client_env(name: str) -> bool:
    if name in NOT_FOR_THE_DOWNLOAD:
        return False
    return name in HUB_CLIENT_ENV_NAMES or name.startswith(HUB_CLIENT_ENV_PREFIXES)


def user_env(md: ModelDeployment) -> list[JSON]:
    """spec.vllm.env as container env entries (literal values and valueFrom references)."""
    return [e.container_env() for e in md.spec.vllm.env]


def image_pull_secrets(settings: OperatorSettings) -> JSON:
    """The pod spec's imagePullSecrets (Secrets of the pod's namespace), or nothing at all when
    none are set: an empty list would still change every pod template's hash, and so roll every
    model on an operator upgrade."""
    if not settings.image_pull_secrets:
        return {}
    return {"imagePullSecrets": [{"name": name} for name in settings.image_pull_secrets]}


def selector_labels(name: str, component: str = "server") -> dict[str, str]:
    """Labels selecting one ModelDeployment's vLLM pods (the immutable Deployment selector).

    The component is part of it so the download Job's pods never match the Deployment or
    the Service.
    """
    return {
        keys.NAME: APP_NAME,
        keys.INSTANCE: name,
        keys.COMPONENT: component,
    }


def labels(name: str, model: str, component: str = "server") -> dict[str, str]:
    return {
        **selector_labels(name, component),
        keys.MANAGED_BY: MANAGED_BY,
        keys.MODEL: model,
    }


def owner_reference(md_meta: JSON) -> JSON:
    # controller=true: one owner manages the child; blockOwnerDeletion keeps foreground
    # deletion of the ModelDeployment waiting for its children.
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "name": md_meta["name"],
        "uid": md_meta["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def metadata(md_meta: JSON, name: str, model: str, component: str = "server") -> JSON:
    return {
        "name": name,
        "namespace": md_meta["namespace"],
        "labels": labels(md_meta["name"], model, component),
        "ownerReferences": [owner_reference(md_meta)],
    }


def digest(value: object) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:16]


def with_config_hash(manifest: JSON) -> JSON:
    """Stamp the manifest with the hash of its own content (without the stamp)."""
    manifest["metadata"].setdefault("annotations", {})[keys.CONFIG_HASH] = digest(manifest)
    return manifest
