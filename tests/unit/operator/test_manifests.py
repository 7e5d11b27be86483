"""The children's manifests (pure builders): vLLM Deployment/Service/PDB, weight cache, metadata."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gptoss_operator.api.routepolicy import RoutePolicy
from gptoss_operator.api.v1alpha1 import ModelDeployment, Plan
from gptoss_operator.labels import CONFIG_HASH as CONFIG_HASH_ANNOTATION
from gptoss_operator.labels import TEMPLATE_HASH as TEMPLATE_HASH_ANNOTATION
from gptoss_operator.manifests.common import (
    digest,
    is_hub_client_env,
    labels,
    owner_reference,
    selector_labels,
)
from gptoss_operator.manifests.router import deployment as router_deployment
from gptoss_operator.manifests.vllm import (
    deployment,
    disruption_budget,
    gpu_resource,
    node_affinity,
    node_label_requirements,
    pod_template,
    service,
)
from gptoss_operator.manifests.weights import (
    IGNORED_PATTERNS,
    default_cache_size,
    download_job,
    weights_claim,
)
from gptoss_operator.planning import PlannerSettings, StartupBudget, plan_deployment, startup_budget
from gptoss_operator.settings import OperatorSettings
from tests.support.routepolicies import route_policy

SETTINGS = OperatorSettings()
CACHE: dict[str, Any] = {"source": {"cache": {}}}


def model_deployment(model: str = "gpt-oss-120b", gpu: str = "H100-80GB", **spec: Any) -> ModelDeployment:
    return ModelDeployment.model_validate(
        {
            "apiVersion": "gptoss.dev/v1alpha1",
            "kind": "ModelDeployment",
            "metadata": {"name": "oss", "namespace": "llm", "uid": "6f1c2a9e-0b7d-4c1e-9a55-3f2d8e7c1b00"},
            "spec": {"model": model, "gpu": {"type": gpu}, **spec},
        }
    )


def plan(md: ModelDeployment) -> Plan:
    result = plan_deployment(md.spec)
    assert isinstance(result, Plan), result
    return result


def budget(md: ModelDeployment) -> StartupBudget:
    return startup_budget(md.spec)


def template(md: ModelDeployment, settings: OperatorSettings = SETTINGS) -> dict[str, Any]:
    return pod_template(md, plan(md), settings, budget(md))


def container(md: ModelDeployment) -> dict[str, Any]:
    c: dict[str, Any] = template(md)["spec"]["containers"][0]
    return c


def env(md: ModelDeployment) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in container(md)["env"]}


def build_deployment(md: ModelDeployment, rollout: Any = "Surge") -> dict[str, Any]:
    return deployment(md, template(md), budget(md), rollout)


class TestPodTemplateResources:
    @pytest.mark.parametrize(
        ("model", "gpu", "tp"),
        [("gpt-oss-120b", "H100-80GB", 2), ("gpt-oss-120b", "A100-40GB", 4), ("gpt-oss-20b", "L4", 1)],
    )
    def test_gpu_limits_equal_tensor_parallel_size(self, model, gpu, tp):
        md = model_deployment(model, gpu)
        assert plan(md).tensor_parallel_size == tp
        assert container(md)["resources"]["limits"] == {"nvidia.com/gpu": str(tp)}

    def test_requests_equal_limits(self):
        resources = container(model_deployment())["resources"]
        assert resources["requests"] == resources["limits"]

    @pytest.mark.parametrize(
        ("gpu", "resource"), [("H100-80GB", "nvidia.com/gpu"), ("MI300X", "amd.com/gpu")]
    )
    def test_vendor_resource(self, gpu, resource):
        md = model_deployment(gpu=gpu)
        assert gpu_resource(md) == resource
        assert set(container(md)["resources"]["limits"]) == {resource}

    @pytest.mark.parametrize(
        ("gpu", "resource"), [("H100-80GB", "nvidia.com/gpu"), ("MI300X", "amd.com/gpu")]
    )
    def test_gpu_taint_is_tolerated(self, gpu, resource):
        tolerations = template(model_deployment(gpu=gpu))["spec"]["tolerations"]
        assert tolerations == [{"key": resource, "operator": "Exists", "effect": "NoSchedule"}]

    def test_image_and_args_from_the_plan(self):
        md = model_deployment()
        c, p = container(md), plan(md)
        assert (c["image"], c["args"]) == (p.image, p.args)

    def test_port_is_named_http(self):
        assert container(model_deployment())["ports"] == [
            {"name": "http", "containerPort": 8000, "protocol": "TCP"}
        ]


class TestNodeAffinity:
    def terms(self, md: ModelDeployment, settings: OperatorSettings = SETTINGS) -> list[Any]:
        required = node_affinity(md, settings)["nodeAffinity"][
            "requiredDuringSchedulingIgnoredDuringExecution"
        ]
        terms: list[Any] = required["nodeSelectorTerms"]
        return terms

    @pytest.mark.parametrize(
        ("gpu", "key", "values"),
        [
            ("H100-80GB", "nvidia.com/gpu.product", ["NVIDIA-H100-80GB-HBM3", "NVIDIA-H100-PCIe"]),
            ("L4", "nvidia.com/gpu.product", ["NVIDIA-L4"]),
            ("MI300X", "amd.com/gpu.product-name", ["AMD_Instinct_MI300X_OAM", "AMD-Instinct-MI300X-OAM"]),
        ],
    )
    def test_catalog_label(self, gpu, key, values):
        assert self.terms(model_deployment(gpu=gpu)) == [
            {"matchExpressions": [{"key": key, "operator": "In", "values": values}]}
        ]

    def test_settings_replace_the_values(self):
        settings = OperatorSettings(
            planner=PlannerSettings(product_label_values={"H100-80GB": ("h100-sxm",)})
        )
        assert self.terms(model_deployment(), settings)[0]["matchExpressions"][0]["values"] == ["h100-sxm"]

    def test_in_the_pod_template(self):
        md = model_deployment()
        assert template(md)["spec"]["affinity"] == node_affinity(md, SETTINGS)

    def test_requirements_add_the_node_selector(self):
        md = model_deployment(scheduling={"nodeSelector": {"pool": "inference"}})
        assert node_label_requirements(md, SETTINGS) == {
            "nvidia.com/gpu.product": ("NVIDIA-H100-80GB-HBM3", "NVIDIA-H100-PCIe"),
            "pool": ("inference",),
        }

    def test_a_selector_on_the_gpu_label_narrows_never_widens(self):
        pcie = model_deployment(scheduling={"nodeSelector": {"nvidia.com/gpu.product": "NVIDIA-H100-PCIe"}})
        assert node_label_requirements(pcie, SETTINGS)["nvidia.com/gpu.product"] == ("NVIDIA-H100-PCIe",)
        other = model_deployment(scheduling={"nodeSelector": {"nvidia.com/gpu.product": "NVIDIA-L4"}})
        assert node_label_requirements(other, SETTINGS)["nvidia.com/gpu.product"] == ()  # no node can match


class TestPodTemplateScheduling:
    def test_user_tolerations_follow_the_gpu_toleration(self):
        toleration = {
            "key": "dedicated",
            "operator": "Equal",
            "value": "llm",
            "effect": "NoExecute",
            "tolerationSeconds": 60,
        }
        tolerations = template(model_deployment(scheduling={"tolerations": [toleration]}))["spec"][
            "tolerations"
        ]
        assert tolerations[1:] == [toleration]

    def test_node_selector(self):
        spec = template(model_deployment(scheduling={"nodeSelector": {"pool": "inference"}}))["spec"]
        assert spec["nodeSelector"] == {"pool": "inference"}

    def test_priority_class(self):
        spec = template(model_deployment(scheduling={"priorityClassName": "llm-high"}))["spec"]
        assert spec["priorityClassName"] == "llm-high"

    def test_no_optional_placement_by_default(self):
        spec = template(model_deployment())["spec"]
        assert "nodeSelector" not in spec
        assert "priorityClassName" not in spec

    def test_no_service_links(self):
        # A Service named "vllm" would inject VLLM_PORT=tcp://... and crash the server.
        assert template(model_deployment())["spec"]["enableServiceLinks"] is False

    def test_no_service_account_token(self):
        assert template(model_deployment())["spec"]["automountServiceAccountToken"] is False

    def test_labels_match_the_deployment_selector(self):
        md = model_deployment()
        selector = build_deployment(md)["spec"]["selector"]["matchLabels"]
        assert selector.items() <= template(md)["metadata"]["labels"].items()


class TestPodTemplateEnv:
    def test_hf_home_on_the_models_volume(self):
        assert env(model_deployment())["HF_HOME"] == {"name": "HF_HOME", "value": "/models/hf"}

    def test_offline_with_a_cache(self):
        assert env(model_deployment(**CACHE))["HF_HUB_OFFLINE"]["value"] == "1"

    def test_online_without_a_cache(self):
        assert "HF_HUB_OFFLINE" not in env(model_deployment())

    def test_token_from_the_secret(self):
        md = model_deployment(source={"huggingface": {"tokenSecretRef": {"name": "hf", "key": "token"}}})
        assert env(md)["HF_TOKEN"] == {
            "name": "HF_TOKEN",
            "valueFrom": {"secretKeyRef": {"name": "hf", "key": "token"}},
        }

    def test_no_token_by_default(self):
        assert "HF_TOKEN" not in env(model_deployment())

    def test_plan_env_is_passed(self):
        assert env(model_deployment(gpu="MI300X"))["VLLM_ROCM_USE_AITER"]["value"] == "1"

    def test_user_env_overrides_plan_env_by_name(self):
        md = model_deployment(gpu="MI300X", vllm={"env": [{"name": "VLLM_ROCM_USE_AITER", "value": "0"}]})
        names = [e["name"] for e in container(md)["env"]]
        assert env(md)["VLLM_ROCM_USE_AITER"]["value"] == "0"
        assert names.count("VLLM_ROCM_USE_AITER") == 1

    def test_user_env_wins_over_a_plan_made_without_it(self):
        # The builder itself applies the rule, not only the planner's vllm_env.
        md = model_deployment(gpu="MI300X", vllm={"env": [{"name": "VLLM_ROCM_USE_AITER", "value": "0"}]})
        unmerged = plan(model_deployment(gpu="MI300X"))
        c = pod_template(md, unmerged, SETTINGS, budget(md))["spec"]["containers"][0]
        assert [e["value"] for e in c["env"] if e["name"] == "VLLM_ROCM_USE_AITER"] == ["0"]

    def test_user_env_overrides_operator_env(self):
        md = model_deployment(**CACHE, vllm={"env": [{"name": "HF_HUB_OFFLINE", "value": "0"}]})
        assert env(md)["HF_HUB_OFFLINE"]["value"] == "0"

    def test_user_env_from_a_secret_or_config_map(self):
        entries: list[dict[str, Any]] = [
            {"name": "HTTPS_PROXY", "valueFrom": {"secretKeyRef": {"name": "proxy", "key": "url"}}},
            {
                "name": "VLLM_LOGGING_LEVEL",
                "valueFrom": {"configMapKeyRef": {"name": "vllm", "key": "level"}},
            },
        ]
        md = model_deployment(vllm={"env": entries})
        assert [env(md)[e["name"]] for e in entries] == entries
        assert [e.container_env() for e in plan(md).env][-2:] == entries  # the plan says so too

    def test_value_from_overrides_plan_env_by_name(self):
        ref = {"configMapKeyRef": {"name": "rocm", "key": "aiter"}}
        md = model_deployment(gpu="MI300X", vllm={"env": [{"name": "VLLM_ROCM_USE_AITER", "valueFrom": ref}]})
        assert env(md)["VLLM_ROCM_USE_AITER"] == {"name": "VLLM_ROCM_USE_AITER", "valueFrom": ref}

    def test_literal_entries_and_the_plan_read_as_before(self):
        # The pod template's hash and status.plan must not change for specs without valueFrom.
        md = model_deployment(gpu="MI300X", vllm={"env": [{"name": "VLLM_LOGGING_LEVEL", "value": "DEBUG"}]})
        assert all(set(e) == {"name", "value"} for e in container(md)["env"])
        dumped = plan(md).model_dump(by_alias=True, mode="json")["env"]
        assert all(set(e) == {"name", "value"} for e in dumped)

    def test_user_env_is_added(self):
        md = model_deployment(vllm={"env": [{"name": "VLLM_LOGGING_LEVEL", "value": "DEBUG"}]})
        assert env(md)["VLLM_LOGGING_LEVEL"] == {"name": "VLLM_LOGGING_LEVEL", "value": "DEBUG"}


class TestPodTemplateProbes:
    @pytest.mark.parametrize("spec", [{}, CACHE], ids=["download-at-start", "cached"])
    def test_startup_probe_spans_the_budget(self, spec):
        md = model_deployment(**spec)
        probe, total = container(md)["startupProbe"], budget(md).total_seconds
        attempts = probe["failureThreshold"] * probe["periodSeconds"]
        assert total <= attempts < total + probe["periodSeconds"]

    def test_startup_probe_is_health(self):
        assert container(model_deployment())["startupProbe"]["httpGet"] == {"path": "/health", "port": "http"}

    def test_readiness_waits_for_the_model(self):
        assert container(model_deployment())["readinessProbe"]["httpGet"] == {
            "path": "/v1/models",
            "port": "http",
        }

    def test_liveness_is_health(self):
        assert container(model_deployment())["livenessProbe"]["httpGet"] == {
            "path": "/health",
            "port": "http",
        }


class TestPodTemplateVolumes:
    def volumes(self, md: ModelDeployment) -> dict[str, Any]:
        return {v["name"]: v for v in template(md)["spec"]["volumes"]}

    def mounts(self, md: ModelDeployment) -> dict[str, Any]:
        return {m["name"]: m for m in container(md)["volumeMounts"]}

    def test_cache_claim_mounted_read_only(self):
        md = model_deployment(**CACHE)
        assert self.volumes(md)["models"]["persistentVolumeClaim"] == {
            "claimName": "oss-weights",
            "readOnly": True,
        }
        assert self.mounts(md)["models"] == {"name": "models", "mountPath": "/models", "readOnly": True}

    def test_empty_dir_without_a_cache(self):
        md = model_deployment()
        assert self.volumes(md)["models"] == {"name": "models", "emptyDir": {}}
        assert self.mounts(md)["models"]["readOnly"] is False

    def test_shared_memory_for_nccl(self):
        md = model_deployment()
        assert self.volumes(md)["dshm"]["emptyDir"] == {"medium": "Memory", "sizeLimit": "16Gi"}
        assert self.mounts(md)["dshm"]["mountPath"] == "/dev/shm"


class TestDeployment:
    @pytest.mark.parametrize(
        ("rollout", "expected"),
        [("Surge", {"maxSurge": 1, "maxUnavailable": 0}), ("Recreate", {"maxSurge": 0, "maxUnavailable": 1})],
    )
    def test_rollout_strategy(self, rollout, expected):
        strategy = build_deployment(model_deployment(), rollout)["spec"]["strategy"]
        assert strategy == {"type": "RollingUpdate", "rollingUpdate": expected}

    @pytest.mark.parametrize("spec", [{}, CACHE], ids=["download-at-start", "cached"])
    def test_progress_deadline_covers_the_startup_budget(self, spec):
        md = model_deployment(**spec)
        assert build_deployment(md)["spec"]["progressDeadlineSeconds"] > budget(md).total_seconds

    @pytest.mark.parametrize("replicas", [0, 1, 3])
    def test_replicas(self, replicas):
        assert build_deployment(model_deployment(replicas=replicas))["spec"]["replicas"] == replicas

    def test_selector(self):
        selector = build_deployment(model_deployment())["spec"]["selector"]["matchLabels"]
        assert selector == selector_labels("oss")

    def test_template_hash_annotation(self):
        md = model_deployment()
        annotations = build_deployment(md)["metadata"]["annotations"]
        assert annotations[TEMPLATE_HASH_ANNOTATION] == digest(template(md))

    def test_strategy_changes_the_config_hash_not_the_template_hash(self):
        md = model_deployment()
        surge, recreate = build_deployment(md, "Surge"), build_deployment(md, "Recreate")
        assert (
            surge["metadata"]["annotations"][TEMPLATE_HASH_ANNOTATION]
            == recreate["metadata"]["annotations"][TEMPLATE_HASH_ANNOTATION]
        )
        assert (
            surge["metadata"]["annotations"][CONFIG_HASH_ANNOTATION]
            != recreate["metadata"]["annotations"][CONFIG_HASH_ANNOTATION]
        )

    def test_owned_by_the_model_deployment(self):
        md = model_deployment()
        assert build_deployment(md)["metadata"]["ownerReferences"] == [owner_reference(md.metadata)]


class TestService:
    def test_selects_the_server_pods(self):
        assert service(model_deployment(), SETTINGS)["spec"]["selector"] == selector_labels("oss")

    def test_port(self):
        assert service(model_deployment(), SETTINGS)["spec"]["ports"] == [
            {"name": "http", "port": 8000, "targetPort": "http", "protocol": "TCP"}
        ]

    def test_named_after_the_model_deployment(self):
        meta = service(model_deployment(), SETTINGS)["metadata"]
        assert (meta["name"], meta["namespace"]) == ("oss", "llm")


class TestDisruptionBudget:
    @pytest.mark.parametrize("replicas", [0, 1])
    def test_none_for_a_single_replica(self, replicas):
        assert disruption_budget(model_deployment(replicas=replicas)) is None

    def test_one_down_at_a_time(self):
        pdb = disruption_budget(model_deployment(replicas=2))
        assert pdb is not None
        assert pdb["spec"] == {"maxUnavailable": 1, "selector": {"matchLabels": selector_labels("oss")}}


class TestWeightsClaim:
    def test_none_without_a_cache(self):
        assert weights_claim(model_deployment()) is None

    @pytest.mark.parametrize(("model", "size"), [("gpt-oss-120b", "73Gi"), ("gpt-oss-20b", "16Gi")])
    def test_default_size_from_the_checkpoint(self, model, size):
        md = model_deployment(model, **CACHE)
        claim = weights_claim(md)
        assert claim is not None
        assert claim["spec"]["resources"]["requests"]["storage"] == size == default_cache_size(md)

    def test_default_size_holds_the_checkpoint(self):
        # 65.3 GB of root safetensors must fit, with room to spare.
        assert int(default_cache_size(model_deployment(**CACHE)).removesuffix("Gi")) * 2**30 > 65_300_000_000

    def test_explicit_size_and_class(self):
        claim = weights_claim(
            model_deployment(source={"cache": {"size": "200Gi", "storageClassName": "fast-nvme"}})
        )
        assert claim is not None
        assert claim["spec"]["resources"]["requests"]["storage"] == "200Gi"
        assert claim["spec"]["storageClassName"] == "fast-nvme"

    def test_default_storage_class(self):
        claim = weights_claim(model_deployment(**CACHE))
        assert claim is not None
        assert "storageClassName" not in claim["spec"]

    def test_name_matches_the_pod_volume(self):
        md = model_deployment(**CACHE)
        claim = weights_claim(md)
        assert claim is not None
        volume = next(v for v in template(md)["spec"]["volumes"] if v["name"] == "models")
        assert claim["metadata"]["name"] == volume["persistentVolumeClaim"]["claimName"]


class TestDownloadJob:
    def job(self, md: ModelDeployment) -> dict[str, Any]:
        job = download_job(md, plan(md), SETTINGS)
        assert job is not None
        return job

    def script(self, md: ModelDeployment) -> str:
        command = self.job(md)["spec"]["template"]["spec"]["containers"][0]["command"]
        assert command[:2] == ["python3", "-c"]
        script: str = command[2]
        return script

    def test_none_without_a_cache(self):
        md = model_deployment()
        assert download_job(md, plan(md), SETTINGS) is None

    def test_ignores_original_and_metal(self):
        assert IGNORED_PATTERNS == ("original/*", "metal/*")
        assert 'ignore_patterns=["original/*", "metal/*"]' in self.script(model_deployment(**CACHE))

    def test_default_repo_and_revision(self):
        script = self.script(model_deployment(**CACHE))
        assert 'repo_id="openai/gpt-oss-120b", revision="main"' in script

    def test_explicit_repo_and_revision(self):
        md = model_deployment(
            source={"cache": {}, "huggingface": {"repo": "acme/gpt-oss-120b-ft", "revision": "v2"}}
        )
        assert 'repo_id="acme/gpt-oss-120b-ft", revision="v2"' in self.script(md)

    def test_downloads_where_vllm_loads_from(self):
        md = model_deployment(**CACHE)
        model_arg = plan(md).args[plan(md).args.index("--model") + 1]
        assert f'local_dir="{model_arg}"' in self.script(md)

    def test_writes_the_claim(self):
        spec = self.job(model_deployment(**CACHE))["spec"]["template"]["spec"]
        assert spec["volumes"] == [{"name": "models", "persistentVolumeClaim": {"claimName": "oss-weights"}}]
        assert spec["containers"][0]["volumeMounts"] == [{"name": "models", "mountPath": "/models"}]

    def test_token_from_the_secret(self):
        md = model_deployment(
            source={"cache": {}, "huggingface": {"tokenSecretRef": {"name": "hf", "key": "token"}}}
        )
        env = {e["name"]: e for e in self.job(md)["spec"]["template"]["spec"]["containers"][0]["env"]}
        assert env["HF_TOKEN"]["valueFrom"] == {"secretKeyRef": {"name": "hf", "key": "token"}}

    def test_pods_are_not_selected_by_the_deployment(self):
        md = model_deployment(**CACHE)
        pod_labels = self.job(md)["spec"]["template"]["metadata"]["labels"]
        selector = build_deployment(md)["spec"]["selector"]["matchLabels"]
        assert not selector.items() <= pod_labels.items()
        assert pod_labels["app.kubernetes.io/component"] == "download"

    def test_revision_change_changes_the_config_hash(self):
        # A Job's template is immutable; the hash change is what makes the operator replace it.
        a = self.job(model_deployment(**CACHE))
        b = self.job(model_deployment(source={"cache": {}, "huggingface": {"revision": "v2"}}))
        assert (
            a["metadata"]["annotations"][CONFIG_HASH_ANNOTATION]
            != b["metadata"]["annotations"][CONFIG_HASH_ANNOTATION]
        )


class TestMetadata:
    def test_selector_labels(self):
        assert selector_labels("oss") == {
            "app.kubernetes.io/name": "vllm",
            "app.kubernetes.io/instance": "oss",
            "app.kubernetes.io/component": "server",
        }

    def test_labels_add_managed_by_and_model(self):
        assert labels("oss", "gpt-oss-120b") == selector_labels("oss") | {
            "app.kubernetes.io/managed-by": "gptoss-operator",
            "gptoss.dev/model": "gpt-oss-120b",
        }

    def test_download_labels_do_not_match_the_server_selector(self):
        assert not selector_labels("oss").items() <= labels("oss", "gpt-oss-120b", "download").items()

    def test_owner_reference(self):
        md = model_deployment()
        assert owner_reference(md.metadata) == {
            "apiVersion": "gptoss.dev/v1alpha1",
            "kind": "ModelDeployment",
            "name": "oss",
            "uid": "6f1c2a9e-0b7d-4c1e-9a55-3f2d8e7c1b00",
            "controller": True,
            "blockOwnerDeletion": True,
        }

    @pytest.mark.parametrize(
        "build",
        [
            lambda md: build_deployment(md),
            lambda md: service(md, SETTINGS),
            lambda md: disruption_budget(md),
            lambda md: weights_claim(md),
            lambda md: download_job(md, plan(md), SETTINGS),
        ],
        ids=["deployment", "service", "pdb", "pvc", "job"],
    )
    def test_every_child_is_owned_and_labelled(self, build):
        md = model_deployment(replicas=2, **CACHE)
        meta = build(md)["metadata"]
        assert meta["ownerReferences"] == [owner_reference(md.metadata)]
        assert meta["labels"]["app.kubernetes.io/instance"] == "oss"
        assert meta["namespace"] == "llm"


class TestConfigHash:
    def hash_of(self, md: ModelDeployment) -> str:
        annotation: str = build_deployment(md)["metadata"]["annotations"][CONFIG_HASH_ANNOTATION]
        return annotation

    def test_stable_for_equal_input(self):
        assert self.hash_of(model_deployment()) == self.hash_of(model_deployment())

    @pytest.mark.parametrize(
        "change",
        [{"replicas": 2}, {"image": "vllm/vllm-openai:v0.16.0"}, {"serving": {"maxModelLen": 32768}}, CACHE],
    )
    def test_changes_with_the_spec(self, change):
        assert self.hash_of(model_deployment(**change)) != self.hash_of(model_deployment())

    def test_digest_ignores_key_order(self):
        assert digest({"a": 1, "b": [1, 2]}) == digest({"b": [1, 2], "a": 1})

    def test_hash_is_of_the_manifest_without_its_own_stamp(self):
        manifest = service(model_deployment(), SETTINGS)
        stamp = manifest["metadata"]["annotations"].pop(CONFIG_HASH_ANNOTATION)
        manifest["metadata"].pop("annotations")  # the Service has no other annotations
        assert stamp == digest(manifest)


def job_pod(md: ModelDeployment, settings: OperatorSettings = SETTINGS) -> dict[str, Any]:
    job = download_job(md, plan(md), settings)
    assert job is not None
    pod: dict[str, Any] = job["spec"]["template"]["spec"]
    return pod


def job_env(md: ModelDeployment) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in job_pod(md)["containers"][0]["env"]}


def job_hash(md: ModelDeployment) -> str:
    job = download_job(md, plan(md), SETTINGS)
    assert job is not None
    annotation: str = job["metadata"]["annotations"][CONFIG_HASH_ANNOTATION]
    return annotation


def with_env(*pairs: tuple[str, str], **spec: Any) -> ModelDeployment:
    return model_deployment(**CACHE, vllm={"env": [{"name": n, "value": v} for n, v in pairs]}, **spec)


class TestVolumeGroup:
    """The cache volume is group-writable for the container (fsGroup), changed only once."""

    @pytest.mark.parametrize("spec", [{}, CACHE], ids=["download-at-start", "cached"])
    def test_vllm_pods(self, spec):
        context = template(model_deployment(**spec))["spec"]["securityContext"]
        assert context == {
            "seccompProfile": {"type": "RuntimeDefault"},
            "fsGroup": 0,
            "fsGroupChangePolicy": "OnRootMismatch",
        }

    def test_download_job(self):
        context = job_pod(model_deployment(**CACHE))["securityContext"]
        assert (context["fsGroup"], context["fsGroupChangePolicy"]) == (0, "OnRootMismatch")
        assert context["seccompProfile"] == {"type": "RuntimeDefault"}

    def test_the_job_still_mounts_the_claim_writable_and_the_pods_read_only(self):
        md = model_deployment(**CACHE)
        assert "readOnly" not in job_pod(md)["containers"][0]["volumeMounts"][0]
        mounts = {m["name"]: m for m in container(md)["volumeMounts"]}
        assert mounts["models"]["readOnly"] is True

    def test_the_group_is_the_one_the_project_image_runs_with(self):
        # runtime-image/vllm.Dockerfile: USER 2000:0 (the upstream image runs as root).
        dockerfile = (Path(__file__).resolve().parents[3] / "runtime-image" / "vllm.Dockerfile").read_text()
        user = [line.split()[1] for line in dockerfile.splitlines() if line.startswith("USER ")]
        assert user == ["2000:0"]
        assert job_pod(model_deployment(**CACHE))["securityContext"]["fsGroup"] == int(user[0].split(":")[1])


class TestDownloadJobHubEnv:
    """The download Job takes the Hub client's part of spec.vllm.env, and only that."""

    def test_a_hub_mirror_reaches_the_job(self):
        md = with_env(("HF_ENDPOINT", "https://hf-mirror.internal"))
        assert job_env(md)["HF_ENDPOINT"] == {"name": "HF_ENDPOINT", "value": "https://hf-mirror.internal"}

    @pytest.mark.parametrize(
        "name",
        [
            "HTTP_PROXY",
            "HTTPS_PROXY",
            "NO_PROXY",
            "http_proxy",
            "https_proxy",
            "no_proxy",
            "REQUESTS_CA_BUNDLE",
            "SSL_CERT_FILE",
            "CURL_CA_BUNDLE",
            "HF_HUB_DOWNLOAD_TIMEOUT",
            "HUGGING_FACE_HUB_TOKEN",
        ],
    )
    def test_proxy_ca_and_hub_variables_reach_the_job(self, name):
        assert job_env(with_env((name, "x")))[name]["value"] == "x"

    @pytest.mark.parametrize("name", ["VLLM_LOGGING_LEVEL", "NCCL_DEBUG", "HF_HUB_OFFLINE", "PYTHONPATH"])
    def test_other_variables_stay_on_the_vllm_container(self, name):
        md = with_env((name, "1"))
        assert name not in job_env(md)
        assert env(md)[name]["value"] == "1"

    def test_a_vllm_only_change_keeps_the_jobs_config_hash(self):
        # A new hash would delete and re-create the Job, i.e. run the download again.
        assert job_hash(with_env(("VLLM_LOGGING_LEVEL", "DEBUG"))) == job_hash(model_deployment(**CACHE))

    def test_a_mirror_change_changes_the_jobs_config_hash(self):
        a = job_hash(with_env(("HF_ENDPOINT", "https://a.internal")))
        b = job_hash(with_env(("HF_ENDPOINT", "https://b.internal")))
        assert len({a, b, job_hash(model_deployment(**CACHE))}) == 3

    def test_the_users_value_wins_once_by_name(self):
        md = with_env(("HF_HUB_ENABLE_HF_TRANSFER", "0"))
        names = [e["name"] for e in job_pod(md)["containers"][0]["env"]]
        assert names.count("HF_HUB_ENABLE_HF_TRANSFER") == 1
        assert job_env(md)["HF_HUB_ENABLE_HF_TRANSFER"]["value"] == "0"

    def test_no_user_env_keeps_the_jobs_env(self):
        assert [e["name"] for e in job_pod(model_deployment(**CACHE))["containers"][0]["env"]] == [
            "HF_HOME",
            "HF_HUB_ENABLE_HF_TRANSFER",
        ]

    def test_value_from_entries(self):
        proxy = {"name": "HTTPS_PROXY", "valueFrom": {"secretKeyRef": {"name": "proxy", "key": "url"}}}
        ca = {"name": "SSL_CERT_FILE", "valueFrom": {"configMapKeyRef": {"name": "hub", "key": "ca-path"}}}
        debug = {
            "name": "VLLM_LOGGING_LEVEL",
            "valueFrom": {"configMapKeyRef": {"name": "hub", "key": "level"}},
        }
        md = model_deployment(**CACHE, vllm={"env": [proxy, ca, debug]})
        assert (job_env(md)["HTTPS_PROXY"], job_env(md)["SSL_CERT_FILE"]) == (proxy, ca)
        assert "VLLM_LOGGING_LEVEL" not in job_env(md)
        assert (env(md)["HTTPS_PROXY"], env(md)["VLLM_LOGGING_LEVEL"]) == (proxy, debug)

    def test_the_table(self):
        assert is_hub_client_env("HF_ENDPOINT")
        assert is_hub_client_env("HF_XET_HIGH_PERFORMANCE")
        assert not is_hub_client_env("HF_HUB_OFFLINE")
        assert not is_hub_client_env("Https_Proxy")  # the two spellings clients read, no others
        assert not is_hub_client_env("VLLM_HF_ENDPOINT")


PULL = OperatorSettings(image_pull_secrets=("regcred", "mirror-creds"))


def policy() -> RoutePolicy:
    body = route_policy("chat")
    body["metadata"] |= {"namespace": "llm", "uid": "u-rp"}
    return RoutePolicy.model_validate(body)


def pod_specs(settings: OperatorSettings) -> dict[str, dict[str, Any]]:
    md = model_deployment(**CACHE)
    return {
        "vllm": template(md, settings)["spec"],
        "download": job_pod(md, settings),
        "router": router_deployment(policy(), settings)["spec"]["template"]["spec"],
    }


def config_hashes(settings: OperatorSettings) -> dict[str, str]:
    md = model_deployment(**CACHE)
    job = download_job(md, plan(md), settings)
    assert job is not None
    built = {
        "vllm": deployment(md, template(md, settings), budget(md), "Surge"),
        "download": job,
        "router": router_deployment(policy(), settings),
    }
    return {k: v["metadata"]["annotations"][CONFIG_HASH_ANNOTATION] for k, v in built.items()}


class TestImagePullSecrets:
    @pytest.mark.parametrize("pod", ["vllm", "download", "router"])
    def test_every_pod_the_operator_creates(self, pod):
        assert pod_specs(PULL)[pod]["imagePullSecrets"] == [{"name": "regcred"}, {"name": "mirror-creds"}]

    @pytest.mark.parametrize("pod", ["vllm", "download", "router"])
    def test_none_by_default(self, pod):
        assert "imagePullSecrets" not in pod_specs(SETTINGS)[pod]

    def test_unset_leaves_every_manifest_as_it_was(self):
        # Unset must not even add an empty list: a new config hash re-applies every object, and a
        # new pod template rolls every model, on an operator upgrade.
        assert config_hashes(OperatorSettings.from_env({"GPTOSS_PULL_SECRETS": ""})) == config_hashes(
            SETTINGS
        )
        specs = pod_specs(PULL)
        for spec in specs.values():
            del spec["imagePullSecrets"]
        assert specs == pod_specs(SETTINGS)

    def test_setting_them_changes_the_hashes(self):
        with_secrets, without = config_hashes(PULL), config_hashes(SETTINGS)
        assert all(with_secrets[k] != without[k] for k in without)
