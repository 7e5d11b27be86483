"""The weight cache: a PVC filled once by a download Job, mounted read-only by the vLLM pods."""

from __future__ import annotations

import json
import math

from gptoss_operator.api.v1alpha1 import ModelDeployment, Plan
from gptoss_operator.manifests.common import (
    CONTAINER_SECURITY,
    JSON,
    POD_SECURITY,
    child_names,
    hf_home_env,
    hf_token_env,
    image_pull_secrets,
    is_hub_client_env,
    metadata,
    user_env,
    with_config_hash,
)
from gptoss_operator.planning.model_profiles import model_profile
from gptoss_operator.planning.vllm_args import model_location
from gptoss_operator.settings import OperatorSettings

# Files a gpt-oss repo holds that vLLM never reads: original/ is the same weights in OpenAI's
# own layout and metal/ a Metal port, each roughly doubling the download (the
# Hugging Face repos openai/gpt-oss-20b and -120b; vLLM PR #30537 made vLLM itself skip them).
IGNORED_PATTERNS = ("original/*", "metal/*")


def default_cache_size(md: ModelDeployment) -> str:
    """Root safetensors + 20% headroom for tokenizer/config files and revisions, in GiB."""
    checkpoint = model_profile(md.spec.model).checkpoint_bytes
    return f"{math.ceil(checkpoint * 1.2 / 2**30)}Gi"


def weights_dir(md: ModelDeployment, settings: OperatorSettings) -> str:
    """The cache directory vLLM loads from: the planner's ``--model`` path, the one source."""
    return model_location(md.spec, model_profile(md.spec.model), settings.planner)


def weights_claim(md: ModelDeployment) -> JSON | None:
    cache = md.spec.source.cache
    if cache is None:
        return None
    spec: JSON = {
        # One writer (the Job), then readers on the nodes the replicas land on. ReadWriteOnce
        # attaches to one node (a replica elsewhere fails with Multi-Attach); spread replicas
        # need a ReadWriteMany class (docs/api.md, source.cache.accessMode).
        "accessModes": [cache.access_mode],
        "resources": {"requests": {"storage": cache.size or default_cache_size(md)}},
    }
    if cache.storage_class_name:
        spec["storageClassName"] = cache.storage_class_name
    manifest: JSON = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": metadata(
            md.metadata, child_names(md.metadata["name"]).weights_claim, md.spec.model, component="weights"
        ),
        "spec": spec,
    }
    return with_config_hash(manifest)


def download_job(md: ModelDeployment, plan: Plan, settings: OperatorSettings) -> JSON | None:
    """A Job that downloads the repository's root files with huggingface_hub (already in the
    vLLM image) into the cache PVC. Idempotent: a rerun only fetches what is missing."""
    if md.spec.source.cache is None:
        return None
    hf = md.spec.source.huggingface
    repo = hf.repo or model_profile(md.spec.model).hf_repo
    script = (
        "import sys\n"
        "from huggingface_hub import snapshot_download\n"
        f"path = snapshot_download(repo_id={json.dumps(repo)}, revision={json.dumps(hf.revision)}, "
        f"local_dir={json.dumps(weights_dir(md, settings))}, ignore_patterns={json.dumps(list(IGNORED_PATTERNS))})\n"
        "print('weights ready in', path)\n"
    )
    env: dict[str, JSON] = {
        e["name"]: e
        for e in [
            hf_home_env(settings),
            # Parallel transfers of the multi-GB shards (huggingface_hub's hf_transfer/xet backends
            # pick this up when present).
            {"name": "HF_HUB_ENABLE_HF_TRANSFER", "value": "1"},
            *hf_token_env(md),
        ]
    }
    # The Hub client's part of the user's env (a mirror, a proxy, a CA bundle), winning by name
    # as on the vLLM container; the rest of spec.vllm.env is vLLM's alone (common.py says why).
    env.update((e["name"], e) for e in user_env(md) if is_hub_client_env(e["name"]))
    manifest: JSON = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": metadata(
            md.metadata, child_names(md.metadata["name"]).download_job, md.spec.model, component="download"
        ),
        "spec": {
            "backoffLimit": 6,
            "template": {
                "metadata": {
                    "labels": metadata(md.metadata, "", md.spec.model, component="download")["labels"]
                },
                "spec": {
                    "restartPolicy": "OnFailure",
                    **POD_SECURITY,
                    **image_pull_secrets(settings),
                    "containers": [
                        {
                            "name": "download",
                            "image": plan.image,
                            "command": ["python3", "-c", script],
                            "env": list(env.values()),
                            "volumeMounts": [
                                {"name": "models", "mountPath": settings.planner.model_mount_path}
                            ],
                            "securityContext": dict(CONTAINER_SECURITY),
                        }
                    ],
                    "volumes": [
                        {
                            "name": "models",
                            "persistentVolumeClaim": {
                                "claimName": child_names(md.metadata["name"]).weights_claim
                            },
                        }
                    ],
                },
            },
        },
    }
    return with_config_hash(manifest)
