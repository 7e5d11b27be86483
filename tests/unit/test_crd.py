"""The CRD is generated from the models, is structural, and crds/ matches the generator."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from gptoss_operator.api.crd_schema import SchemaConversionError, structural_violations, to_structural
from gptoss_operator.api.crds import all_crds, crd_filename, render_yaml
from gptoss_operator.api.managed_flags import MANAGED_FLAG_REGEX
from gptoss_operator.commands import main

CRDS_DIR = Path(__file__).resolve().parents[2] / "crds"


@pytest.fixture(scope="module")
def crd() -> dict[str, Any]:
    matching: list[dict[str, Any]] = [
        c for c in all_crds() if c["metadata"]["name"] == "modeldeployments.gptoss.dev"
    ]
    assert len(matching) == 1
    return matching[0]


def schema_at(crd: dict[str, Any], *path: str) -> dict[str, Any]:
    node: dict[str, Any] = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    for part in path:
        node = node["properties"][part]
    return node


class TestDrift:
    def test_crds_dir_matches_generator(self):
        for manifest in all_crds():
            path = CRDS_DIR / crd_filename(manifest)
            assert path.exists(), f"{path} missing: run `gptoss-operator crds --output-dir crds`"
            assert path.read_text() == render_yaml(manifest), (
                f"{path} drifted: run `gptoss-operator crds --output-dir crds`"
            )

    def test_crds_command_prints_the_same_yaml(self, capsys):
        assert main(["crds"]) == 0
        printed = list(yaml.safe_load_all(capsys.readouterr().out))
        assert printed == all_crds()

    def test_crds_command_writes_files(self, tmp_path):
        assert main(["crds", "--output-dir", str(tmp_path)]) == 0
        assert (tmp_path / "modeldeployments.gptoss.dev.yaml").read_text() == render_yaml(all_crds()[0])
        assert (tmp_path / "routepolicies.gptoss.dev.yaml").read_text() == render_yaml(all_crds()[1])


class TestStructural:
    def test_generated_schema_is_structural_and_documented(self, crd):
        assert structural_violations(crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]) == []

    @pytest.mark.parametrize(
        ("schema", "problem"),
        [
            ({"type": "object", "properties": {"a": {"description": "x"}}}, "a: no type"),
            ({"type": "object", "properties": {"a": {"type": "string"}}}, "a: no description"),
            (
                {"type": "object", "properties": {"a": {"$ref": "#/$defs/A", "description": "x"}}},
                "a: has $ref",
            ),
            (
                {
                    "type": "object",
                    "properties": {
                        "a": {"anyOf": [{"type": "string"}, {"type": "null"}], "description": "x"}
                    },
                },
                "a: has anyOf",
            ),
            (
                {"type": "object", "properties": {}, "additionalProperties": False},
                "properties and additionalProperties",
            ),
            ({"type": "integer", "exclusiveMinimum": 0}, "exclusiveMinimum must be a boolean"),
            (
                {
                    "type": "array",
                    "items": {"type": "object"},
                    "x-kubernetes-list-type": "map",
                    "x-kubernetes-list-map-keys": ["k"],
                },
                "list-map key k",
            ),
            # kubectl explain shows these as <Object>/<[]Object>: the description must say it.
            (
                {
                    "type": "object",
                    "properties": {"a": {"x-kubernetes-int-or-string": True, "description": "x"}},
                },
                "a: int-or-string, and its description does not say so",
            ),
            (
                {
                    "type": "object",
                    "properties": {
                        "a": {
                            "type": "array",
                            "items": {"x-kubernetes-int-or-string": True},
                            "description": "x",
                        }
                    },
                },
                "a: int-or-string, and its description does not say so",
            ),
            # One bad value, two messages: a failed maximum or minLength does not stop CEL rules.
            (
                {"type": "integer", "maximum": 9, "x-kubernetes-validations": [{"rule": "self <= 9"}]},
                "maximum beside a CEL rule",
            ),
            (
                {
                    "type": "string",
                    "minLength": 1,
                    "x-kubernetes-validations": [{"rule": "self.startsWith('h')"}],
                },
                "minLength beside a CEL rule",
            ),
        ],
    )
    def test_checker_catches_non_structural_schemas(self, schema, problem):
        assert any(problem in p for p in structural_violations(schema)), structural_violations(schema)

    def test_checks_that_stop_cel_rules_may_stand_beside_them(self):
        # maxLength/maxItems: CEL cost estimation needs them, and their failure skips the rules.
        rule = {"x-kubernetes-validations": [{"rule": "self.startsWith('h')"}]}
        assert structural_violations({"type": "string", "maxLength": 9, "enum": ["h"], **rule}) == []
        assert (
            structural_violations({"type": "array", "items": {"type": "string"}, "maxItems": 2, **rule}) == []
        )

    def test_converter_resolves_refs_and_nullable_unions(self):
        raw = {
            "type": "object",
            "properties": {
                "a": {
                    "anyOf": [{"$ref": "#/$defs/A"}, {"type": "null"}],
                    "default": None,
                    "description": "outer",
                },
                "n": {"type": "integer", "exclusiveMinimum": 0, "description": "n"},
            },
            "$defs": {
                "A": {
                    "type": "object",
                    "title": "A",
                    "description": "inner",
                    "properties": {"x": {"type": "string", "description": "x"}},
                }
            },
        }
        out = to_structural(raw)
        assert out["properties"]["a"] == {
            "type": "object",
            "description": "outer",
            "properties": {"x": {"type": "string", "description": "x"}},
        }
        assert out["properties"]["n"] == {
            "type": "integer",
            "minimum": 0,
            "exclusiveMinimum": True,
            "description": "n",
        }

    def test_converter_refuses_real_unions(self):
        with pytest.raises(SchemaConversionError, match="not structural"):
            to_structural({"anyOf": [{"type": "string"}, {"type": "integer"}]})


class TestModelDeploymentCRD:
    def test_names(self, crd):
        names = crd["spec"]["names"]
        assert crd["spec"]["group"] == "gptoss.dev"
        assert (names["kind"], names["plural"], names["shortNames"], names["categories"]) == (
            "ModelDeployment",
            "modeldeployments",
            ["md"],
            ["gptoss"],
        )
        assert crd["spec"]["versions"][0]["name"] == "v1alpha1"

    def test_subresources(self, crd):
        sub = crd["spec"]["versions"][0]["subresources"]
        assert sub["status"] == {}
        assert sub["scale"] == {
            "specReplicasPath": ".spec.replicas",
            "statusReplicasPath": ".status.replicas",
            "labelSelectorPath": ".status.selector",
        }
        assert schema_at(crd, "status", "selector")["type"] == "string"

    def test_printer_columns_point_at_existing_fields(self, crd):
        columns = {c["name"]: c["jsonPath"] for c in crd["spec"]["versions"][0]["additionalPrinterColumns"]}
        assert list(columns) == ["Model", "GPU", "GPUs", "TP", "Ready", "Phase", "Reason", "Age"]
        for name, path in columns.items():
            if path.startswith(".metadata"):
                continue
            schema_at(crd, *path.lstrip(".").split("."))  # KeyError if the column points nowhere
            assert name

    def test_gpu_count_is_int_or_string_with_cel(self, crd):
        count = schema_at(crd, "spec", "gpu", "count")
        assert count["x-kubernetes-int-or-string"] is True
        assert "type" not in count
        assert count["default"] == "auto"
        (rule,) = count["x-kubernetes-validations"]
        assert "'auto'" in rule["rule"]
        assert "[1, 2, 4, 8]" in rule["rule"]
        assert "auto, 1, 2, 4 or 8" in rule["message"]

    def test_extra_args_rule_uses_the_shared_regex_and_is_bounded(self, crd):
        extra = schema_at(crd, "spec", "vllm", "extraArgs")
        (rule,) = extra["x-kubernetes-validations"]
        assert MANAGED_FLAG_REGEX in rule["rule"]
        # CEL cost estimation needs bounded lists and strings, or the API server refuses the CRD.
        assert extra["maxItems"] == 64
        assert extra["items"]["maxLength"] == 1024

    def test_ranges_have_human_messages(self, crd):
        max_len = schema_at(crd, "spec", "serving", "maxModelLen")
        # The range once, in the CEL rule: with minimum/maximum too, 200000 got two messages.
        assert not {"minimum", "maximum"} & max_len.keys()
        (rule,) = max_len["x-kubernetes-validations"]
        assert rule["rule"] == "self >= 1 && self <= 131072"
        assert "between 1 and 131072" in rule["message"]
        replicas = schema_at(crd, "spec", "replicas")
        # Only the scale subresource's own check refuses a negative count: one message, not three.
        assert "minimum" not in replicas
        assert "x-kubernetes-validations" not in replicas
        assert replicas["default"] == 1
        assert "0 or more" in replicas["description"]

    def test_model_enum_and_required(self, crd):
        assert schema_at(crd, "spec", "model")["enum"] == ["gpt-oss-20b", "gpt-oss-120b"]
        assert schema_at(crd, "spec")["required"] == ["model", "gpu"]

    def test_conditions_are_a_list_map_keyed_by_type(self, crd):
        conditions = schema_at(crd, "status", "conditions")
        assert conditions["x-kubernetes-list-type"] == "map"
        assert conditions["x-kubernetes-list-map-keys"] == ["type"]
        assert "type" in conditions["items"]["required"]

    def test_gpu_explain_is_useful(self, crd):
        gpu = schema_at(crd, "spec", "gpu")
        assert "GPU" in gpu["description"]
        assert "compute capability 8.0" in gpu["properties"]["type"]["description"]


def _walk(node: dict[str, Any], path: str = "") -> list[tuple[str, dict[str, Any]]]:
    out = [(path, node)]
    for name, sub in node.get("properties", {}).items():
        out += _walk(sub, f"{path}.{name}")
    if isinstance(node.get("additionalProperties"), dict):
        out += _walk(node["additionalProperties"], f"{path}{{}}")
    if "items" in node:
        out += _walk(node["items"], f"{path}[]")
    return out


@pytest.fixture(scope="module")
def rp() -> dict[str, Any]:
    (found,) = [c for c in all_crds() if c["metadata"]["name"] == "routepolicies.gptoss.dev"]
    return found


class TestRoutePolicyCRD:
    def test_structural_and_documented(self, rp):
        assert structural_violations(rp["spec"]["versions"][0]["schema"]["openAPIV3Schema"]) == []

    def test_names_and_category_shared_with_model_deployment(self, rp):
        names = rp["spec"]["names"]
        assert (names["kind"], names["plural"], names["singular"], names["shortNames"]) == (
            "RoutePolicy",
            "routepolicies",
            "routepolicy",
            ["rp"],
        )
        assert {tuple(c["spec"]["names"]["categories"]) for c in all_crds()} == {("gptoss",)}
        assert rp["spec"]["versions"][0]["name"] == "v1alpha1"
        assert rp["spec"]["versions"][0]["subresources"] == {"status": {}}

    def test_printer_columns_point_at_status_fields(self, rp):
        columns = {c["name"]: c for c in rp["spec"]["versions"][0]["additionalPrinterColumns"]}
        assert list(columns) == ["Routes", "Backends", "Endpoint", "Age"]
        assert columns["Routes"]["type"] == "integer"
        for column in columns.values():
            if column["jsonPath"].startswith(".metadata"):
                continue
            node = schema_at(rp, *column["jsonPath"].lstrip(".").split("."))
            assert node["type"] == column["type"]

    def test_every_list_string_and_map_in_spec_is_bounded(self, rp):
        # The API server estimates each CEL rule's worst-case cost from these bounds and refuses
        # a CRD whose rules it cannot bound.
        unbounded = []
        for path, node in _walk(schema_at(rp, "spec"), "spec"):
            kind = node.get("type")
            array = kind == "array" and "maxItems" not in node
            string = kind == "string" and "maxLength" not in node and "enum" not in node
            mapping = kind == "object" and "additionalProperties" in node and "maxProperties" not in node
            if array or string or mapping:
                unbounded.append(path)
        assert unbounded == []

    def test_status_lists_are_list_maps(self, rp):
        assert schema_at(rp, "status", "conditions")["x-kubernetes-list-map-keys"] == ["type"]
        backends = schema_at(rp, "status", "backends")
        assert backends["x-kubernetes-list-type"] == "map"
        assert backends["x-kubernetes-list-map-keys"] == ["route", "name"]
        assert backends["items"]["required"] == ["route", "name", "ready"]

    def test_rules_carry_the_models_messages(self, rp):
        from gptoss_operator.api import routepolicy as m

        messages = {
            rule["message"]
            for _, node in _walk(rp["spec"]["versions"][0]["schema"]["openAPIV3Schema"])
            for rule in node.get("x-kubernetes-validations", [])
        }
        for constant in (
            m.MSG_NAME,
            m.MSG_ONE_KIND,
            m.MSG_WEIGHT,
            m.MSG_SOME_WEIGHT,
            m.MSG_SOME_BACKEND,
            m.MSG_UNIQUE_BACKENDS,
            m.MSG_SOME_ROUTE,
            m.MSG_UNIQUE_MODELS,
            m.MSG_OVERFLOW_TO,
            m.MSG_OVERFLOW_POOL,
            m.MSG_OVERFLOW_WHEN,
            m.MSG_FALLBACK_ON,
            m.MSG_TRIGGER,
            m.MSG_ALLOW,
            m.MSG_RESIDENCY_MODELS,
            m.MSG_BASE_URL,
            m.MSG_PORT,
        ):
            assert constant in messages

    def test_weight_has_no_schema_bounds_so_its_rule_runs(self, rp):
        # The API server skips CEL rules once a schema check fails; the rule's message is clearer.
        weight = schema_at(rp, "spec", "routes")["items"]["properties"]["backends"]["items"]["properties"][
            "weight"
        ]
        assert "minimum" not in weight
        assert "maximum" not in weight
        assert weight["default"] == 1
        assert weight["x-kubernetes-validations"][0]["rule"] == "self >= 0 && self <= 100"

    def test_durations_use_regex_and_cel_duration(self, rp):
        from gptoss_operator.api.durations import DURATION_REGEX

        timeouts = schema_at(rp, "spec", "routes")["items"]["properties"]["timeouts"]["properties"]
        for name, default in (("connect", "2s"), ("firstByte", "60s"), ("idle", "30s")):
            (rule,) = timeouts[name]["x-kubernetes-validations"]
            assert DURATION_REGEX in rule["rule"]
            assert "duration(self) > duration('0s')" in rule["rule"]
            assert rule["message"].startswith(f"timeouts.{name} must be a positive duration")
            assert timeouts[name]["default"] == default
