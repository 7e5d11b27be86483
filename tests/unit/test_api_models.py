"""ModelDeployment parses from the raw dict the API server sends, with errors that name the field."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from gptoss_operator.api import ModelDeployment, ModelDeploymentSpec, describe_validation_error, ready_text
from gptoss_operator.api.managed_flags import MANAGED_FLAG_REGEX, managed_flags_in


def body(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "gptoss.dev/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": "oss", "namespace": "llm", "generation": 3},
        "spec": {"model": "gpt-oss-120b", "gpu": {"type": "H100-80GB"}, **spec},
    }


def error_of(raw: dict[str, Any]) -> str:
    with pytest.raises(ValidationError) as info:
        ModelDeployment.model_validate(raw)
    return describe_validation_error(info.value)


class TestParsing:
    def test_defaults_fill_in(self):
        md = ModelDeployment.model_validate(body())
        assert md.spec.gpu.count == "auto"
        assert md.spec.replicas == 1
        assert md.spec.serving.max_model_len is None
        assert md.spec.serving.min_concurrent_sequences == 1
        assert md.spec.serving.tool_calling is True
        assert md.spec.rollout.strategy == "Auto"
        assert md.status is None

    def test_camel_case_fields_and_status(self):
        raw = body(
            serving={"maxModelLen": 32768, "minConcurrentSequences": 4}, source={"cache": {"size": "80Gi"}}
        )
        raw["status"] = {
            "observedGeneration": 2,
            "readyReplicas": 1,
            "conditions": [{"type": "Ready", "status": "True"}],
        }
        md = ModelDeployment.model_validate(raw)
        assert md.spec.serving.max_model_len == 32768
        assert md.spec.serving.min_concurrent_sequences == 4
        assert md.spec.source.cache is not None
        assert md.spec.source.cache.size == "80Gi"
        assert md.status is not None
        assert md.status.conditions[0].type == "Ready"

    def test_dump_round_trips_with_camel_case(self):
        md = ModelDeployment.model_validate(body(gpu={"type": "L4", "count": 2}))
        dumped = md.model_dump(by_alias=True, exclude_none=True)
        assert dumped["spec"]["gpu"] == {"type": "L4", "count": 2}
        assert ModelDeployment.model_validate(dumped) == md

    @pytest.mark.parametrize(
        ("spec", "field"),
        [
            ({"gpu": {"type": "H100-80GB", "count": 3}}, "spec.gpu.count"),
            ({"gpu": {"type": "RTX-9090"}}, "spec.gpu.type"),
            ({"replicas": -1}, "spec.replicas"),
            ({"serving": {"maxModelLen": 200000}}, "spec.serving.maxModelLen"),
            ({"serving": {"maxModelLen": 0}}, "spec.serving.maxModelLen"),
            ({"vllm": {"extraArgs": ["--tensor-parallel-size=4"]}}, "spec.vllm.extraArgs"),
            ({"model": "gpt-oss-7b"}, "spec.model"),
            (
                {
                    "vllm": {
                        "env": [
                            {
                                "name": "A",
                                "value": "x",
                                "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}},
                            }
                        ]
                    }
                },
                "spec.vllm.env[0]",
            ),
            ({"vllm": {"env": [{"name": "A", "valueFrom": {}}]}}, "spec.vllm.env[0].valueFrom"),
            (
                {
                    "vllm": {
                        "env": [
                            {
                                "name": "A",
                                "valueFrom": {
                                    "secretKeyRef": {"name": "s", "key": "k"},
                                    "configMapKeyRef": {"name": "c", "key": "k"},
                                },
                            }
                        ]
                    }
                },
                "spec.vllm.env[0].valueFrom",
            ),
        ],
    )
    def test_errors_name_the_field(self, spec, field):
        message = error_of(body(**spec))
        assert message.startswith(field + ":"), message

    def test_missing_gpu_is_named(self):
        raw = body()
        del raw["spec"]["gpu"]
        assert error_of(raw).startswith("spec.gpu:")


class TestManagedFlags:
    @pytest.mark.parametrize(
        "arg",
        [
            "--tensor-parallel-size",
            "--tensor-parallel-size=2",
            "--tensor_parallel_size=2",
            "--max-model-len",
            "--model=foo",
            "--port",
            "--served-model-name",
            "--gpu-memory-utilization=0.5",
            "--host=::",
            "-tp",
            "-tp=2",
            "--pipeline-parallel-size=2",
            # Prefixes vLLM's argparse expands to a managed flag (allow_abbrev)
            "--gpu-memory-util=0.99",
            "--gp",
            "--max-model=4096",
            "--max_model=4096",
            "--tensor-parallel=4",
            "--te=4",
            "-t",
            "--rev=main",
            "--tool-c=hermes",
            "--enable-a",
            "--no-enable-auto-tool-choice",
            "--no-enable-auto",
        ],
    )
    def test_managed_flags_are_refused(self, arg):
        assert managed_flags_in([arg]) == [arg]
        with pytest.raises(ValidationError, match="may not set flags the operator manages"):
            ModelDeploymentSpec.model_validate(
                {"model": "gpt-oss-20b", "gpu": {"type": "L4"}, "vllm": {"extraArgs": [arg]}}
            )

    @pytest.mark.parametrize(
        "arg",
        [
            "--max-num-seqs=64",
            "--kv-cache-dtype",
            "fp8",
            "--model-loader-extra-config",
            "--portable",
            "--enforce-eager",
            "2",
            # Shared stems that argparse would not expand to a managed flag
            "--max-num-batched-tokens=8192",
            "--max",
            "--tool-parser-plugin=x.py",
            "--reasoning-parser-plugin=x.py",
            "--enable-prefix-caching",
            "--data-parallel-size-local=1",
            "-dpa",
        ],
    )
    def test_other_flags_pass(self, arg):
        assert managed_flags_in([arg]) == []

    def test_refusal_names_the_abbreviation(self):
        with pytest.raises(
            ValidationError, match=r"abbreviation vLLM would expand.*found --gpu-memory-util=0\.99"
        ):
            ModelDeploymentSpec.model_validate(
                {
                    "model": "gpt-oss-20b",
                    "gpu": {"type": "L4"},
                    "vllm": {"extraArgs": ["--gpu-memory-util=0.99"]},
                }
            )

    def test_regex_is_re2_compatible(self):
        # CEL's matches() is RE2: no lookarounds or backreferences.
        for construct in ("(?=", "(?!", "(?<", "\\1"):
            assert construct not in MANAGED_FLAG_REGEX


def test_ready_text():
    assert ready_text(1, 2) == "1/2"


class TestNameLength:
    """Children and labels carry the name: it must leave room for "-download" within 63."""

    def body(self, name: str) -> dict[str, object]:
        return {"metadata": {"name": name}, "spec": {"model": "gpt-oss-20b", "gpu": {"type": "L4"}}}

    def test_54_characters_parse(self) -> None:
        assert ModelDeployment.model_validate(self.body("a" * 54)).metadata["name"] == "a" * 54

    def test_55_characters_name_the_field(self) -> None:
        with pytest.raises(ValidationError) as err:
            ModelDeployment.model_validate(self.body("a" * 55))
        assert describe_validation_error(err.value).startswith("metadata: ")
        assert "at most 54 characters" in describe_validation_error(err.value)

    def test_the_crd_enforces_it_too(self) -> None:
        from gptoss_operator.api.crds import all_crds

        crd = next(c for c in all_crds() if c["spec"]["names"]["kind"] == "ModelDeployment")
        rules = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["x-kubernetes-validations"]
        assert {"rule": "self.metadata.name.size() <= 54"}.items() <= rules[0].items()


def test_env_describe_names_the_source_never_a_value() -> None:
    from gptoss_operator.api import EnvVar

    assert EnvVar(name="A", value="1").describe() == "A=1"
    secret = EnvVar.model_validate(
        {"name": "P", "valueFrom": {"secretKeyRef": {"name": "proxy", "key": "url"}}}
    )
    assert secret.describe() == "P=<Secret proxy key url>"
    config = EnvVar.model_validate(
        {"name": "E", "valueFrom": {"configMapKeyRef": {"name": "hub", "key": "url"}}}
    )
    assert config.describe() == "E=<ConfigMap hub key url>"
