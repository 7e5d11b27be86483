"""OperatorSettings.from_env and the status endpoint."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from gptoss_operator.planning.settings import (
    DEFAULT_AMD_IMAGE,
    DEFAULT_NVIDIA_IMAGE,
    DEFAULT_SETTINGS,
    PlannerSettings,
)
from gptoss_operator.settings import DEFAULT_ROUTER_IMAGE, OperatorSettings

OPERATOR_DOC = Path(__file__).resolve().parents[3] / "docs" / "operator.md"


class TestFromEnv:
    def test_defaults(self):
        s = OperatorSettings.from_env({})
        assert (s.namespaces, s.workers, s.metrics_port, s.cluster_domain, s.shm_size) == (
            (),
            16,
            8080,
            "",
            "16Gi",
        )

    def test_default_images(self):
        assert OperatorSettings.from_env({}).planner.images == {
            "nvidia": DEFAULT_NVIDIA_IMAGE,
            "amd": DEFAULT_AMD_IMAGE,
        }

    @pytest.mark.parametrize(
        ("value", "expected"),
        [("llm", ("llm",)), ("llm,dev", ("llm", "dev")), (" llm , dev ,, ", ("llm", "dev")), ("", ())],
    )
    def test_namespaces(self, value, expected):
        assert OperatorSettings.from_env({"GPTOSS_NAMESPACES": value}).namespaces == expected

    def test_numbers(self):
        s = OperatorSettings.from_env({"GPTOSS_WORKERS": "24", "GPTOSS_METRICS_PORT": "0"})
        assert (s.workers, s.metrics_port) == (24, 0)

    @pytest.mark.parametrize("env", [{"GPTOSS_WORKERS": "0"}, {"GPTOSS_METRICS_PORT": "70000"}])
    def test_out_of_range(self, env):
        with pytest.raises(ValidationError):
            OperatorSettings.from_env(env)

    def test_not_a_number(self):
        with pytest.raises(ValueError, match="eight"):
            OperatorSettings.from_env({"GPTOSS_WORKERS": "eight"})

    def test_strings(self):
        s = OperatorSettings.from_env({"GPTOSS_CLUSTER_DOMAIN": "cluster.local", "GPTOSS_SHM_SIZE": "32Gi"})
        assert (s.cluster_domain, s.shm_size) == ("cluster.local", "32Gi")

    def test_image_overrides_per_vendor(self):
        s = OperatorSettings.from_env({"GPTOSS_IMAGE_AMD": "rocm/vllm:v0.17.0"})
        assert s.planner.images == {"nvidia": DEFAULT_NVIDIA_IMAGE, "amd": "rocm/vllm:v0.17.0"}

    def test_image_override_keeps_the_rest_of_the_planner(self):
        s = OperatorSettings.from_env({"GPTOSS_IMAGE_NVIDIA": "vllm/vllm-openai:v0.16.0"})
        assert s.planner.model_copy(update={"images": DEFAULT_SETTINGS.images}) == DEFAULT_SETTINGS
        assert DEFAULT_SETTINGS.images["nvidia"] == DEFAULT_NVIDIA_IMAGE  # the shared default is untouched

    def test_reads_os_environ_by_default(self, monkeypatch):
        monkeypatch.setenv("GPTOSS_WORKERS", "3")
        monkeypatch.setenv("GPTOSS_IMAGE_NVIDIA", "registry.local/vllm:v0.33.0")
        s = OperatorSettings.from_env()
        assert (s.workers, s.planner.images["nvidia"]) == (3, "registry.local/vllm:v0.33.0")

    def test_relist_and_router_image(self):
        assert (OperatorSettings.from_env({}).relist_seconds, OperatorSettings.from_env({}).router_image) == (
            60.0,
            DEFAULT_ROUTER_IMAGE,
        )
        s = OperatorSettings.from_env(
            {"GPTOSS_RELIST_SECONDS": "2.5", "GPTOSS_ROUTER_IMAGE": "registry.local/op:1"}
        )
        assert (s.relist_seconds, s.router_image) == (2.5, "registry.local/op:1")

    def test_relist_must_be_positive(self):
        with pytest.raises(ValidationError):
            OperatorSettings.from_env({"GPTOSS_RELIST_SECONDS": "0"})

    def test_empty_values_mean_unset(self):
        env = {"GPTOSS_WORKERS": "", "GPTOSS_SHM_SIZE": "", "GPTOSS_IMAGE_AMD": ""}
        assert OperatorSettings.from_env(env) == OperatorSettings()

    def test_fields_without_a_variable_are_not_read(self):
        # The planner's port and mount path are settings, not environment knobs.
        s = OperatorSettings.from_env(
            {"GPTOSS_PORT": "9000", "GPTOSS_MODEL_MOUNT_PATH": "/w", "GPTOSS_PLANNER": "{}"}
        )
        assert (s.planner.port, s.planner.model_mount_path) == (8000, "/models")

    def test_constructing_reads_no_environment(self, monkeypatch):
        # Only from_env reads variables, so the planner stays a function of (spec, settings).
        monkeypatch.setenv("GPTOSS_WORKERS", "3")
        monkeypatch.setenv("GPTOSS_IMAGE_NVIDIA", "registry.local/vllm:v0.33.0")
        assert OperatorSettings().workers == 16
        assert PlannerSettings() == DEFAULT_SETTINGS

    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            ("regcred", ("regcred",)),
            (" regcred , mirror.creds ,,regcred", ("regcred", "mirror.creds")),
            ("", ()),
        ],
    )
    def test_pull_secrets(self, value, expected):
        s = OperatorSettings.from_env({"GPTOSS_PULL_SECRETS": value})
        assert s.image_pull_secrets == expected
        assert s.planner == DEFAULT_SETTINGS  # not read as a vendor's image (GPTOSS_IMAGE_*)

    @pytest.mark.parametrize("value", ["RegCred", "reg_cred", "-regcred", "a" * 254])
    def test_pull_secrets_must_be_secret_names(self, value):
        with pytest.raises(ValidationError, match="is not a Secret name"):
            OperatorSettings.from_env({"GPTOSS_PULL_SECRETS": value})

    def test_image_needs_a_vendor(self):
        with pytest.raises(ValidationError, match="GPTOSS_IMAGE_NVIDIA"):
            OperatorSettings.from_env({"GPTOSS_IMAGE": "vllm/vllm-openai:v0.33.0"})


def declared_variables() -> set[str]:
    names = set()
    for cls in (OperatorSettings, PlannerSettings):
        for field in cls.model_fields.values():
            if isinstance(field.validation_alias, str):
                names.add(field.validation_alias)
    # images: one variable per vendor (the nested delimiter splits the vendor off).
    names.discard("GPTOSS_IMAGE")
    return names | {f"GPTOSS_IMAGE_{vendor.upper()}" for vendor in DEFAULT_SETTINGS.images}


def test_docs_table_lists_every_variable():
    documented = set(re.findall(r"`(GPTOSS_[A-Z_]+)`", OPERATOR_DOC.read_text()))
    assert documented == declared_variables()


class TestEndpoint:
    def test_short_service_name(self):
        assert OperatorSettings().endpoint("oss", "llm") == "http://oss.llm.svc:8000/v1"

    def test_with_cluster_domain(self):
        s = OperatorSettings(cluster_domain="cluster.local")
        assert s.endpoint("oss", "llm") == "http://oss.llm.svc.cluster.local:8000/v1"

    def test_planner_port(self):
        s = OperatorSettings(planner=DEFAULT_SETTINGS.model_copy(update={"port": 8080}))
        assert s.endpoint("oss", "llm") == "http://oss.llm.svc:8080/v1"


class TestGPUProductLabels:
    def test_label_keys_and_values_from_json(self):
        s = OperatorSettings.from_env(
            {
                "GPTOSS_GPU_PRODUCT_LABEL_KEYS": '{"nvidia": "cloud.example.com/gpu"}',
                "GPTOSS_GPU_PRODUCT_LABEL_VALUES": '{"H100-80GB": ["h100-sxm", "NVIDIA-H100-80GB-HBM3"]}',
            }
        )
        assert s.planner.product_label_keys == {
            "nvidia": "cloud.example.com/gpu",
            "amd": "amd.com/gpu.product-name",
        }
        assert s.planner.product_label_values == {"H100-80GB": ("h100-sxm", "NVIDIA-H100-80GB-HBM3")}

    @pytest.mark.parametrize(
        "env",
        [
            {"GPTOSS_GPU_PRODUCT_LABEL_KEYS": '{"intel": "x"}'},
            {"GPTOSS_GPU_PRODUCT_LABEL_VALUES": '{"H100": ["x"]}'},
        ],
    )
    def test_unknown_vendors_and_gpu_types_are_refused(self, env):
        with pytest.raises(ValidationError):
            OperatorSettings.from_env(env)
