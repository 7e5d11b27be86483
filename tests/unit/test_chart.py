"""The Helm chart against its sources: generated CRD and RBAC templates, defaults, documented values."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, get_args

import yaml

from gptoss_operator import __version__, rbac
from gptoss_operator.api import GPUType
from gptoss_operator.api.crds import all_crds, chart_crd_filename, chart_crd_template
from gptoss_operator.planning.settings import DEFAULT_AMD_IMAGE, DEFAULT_NVIDIA_IMAGE
from gptoss_operator.settings import DEFAULT_ROUTER_IMAGE

CHART = Path(__file__).resolve().parents[2] / "charts" / "gpt-oss-operator"
REGENERATE = "regenerate with `gptoss-operator crds --output-dir crds --chart-dir charts/gpt-oss-operator`"


def test_crd_templates_match_the_generator() -> None:
    for manifest in all_crds():
        path = CHART / "templates" / chart_crd_filename(manifest)
        assert path.read_text() == chart_crd_template(manifest), f"{path.name} drifted: {REGENERATE}"


def test_crd_templates_carry_the_same_crds_as_crds_dir() -> None:
    # The template minus its Helm lines is the crds/ file: one schema, two ways to install it.
    for manifest in all_crds():
        text = (CHART / "templates" / chart_crd_filename(manifest)).read_text()
        plain = [
            line
            for line in text.splitlines()
            if "{{" not in line
            and not line.lstrip().startswith(("helm.sh/resource-policy", "argocd.argoproj.io/sync-wave", "#"))
        ]
        plain = [line for line in plain if line not in ("  labels:", "  annotations:")]
        crds_file = Path(__file__).resolve().parents[2] / "crds" / f"{manifest['metadata']['name']}.yaml"
        assert yaml.safe_load("\n".join(plain)) == yaml.safe_load(crds_file.read_text())


def test_rbac_rules_template_matches_rbac_py() -> None:
    path = CHART / "templates" / rbac.CHART_RULES_FILE
    assert path.read_text() == rbac.chart_rules_template(), f"{path.name} drifted: {REGENERATE}"


def test_chart_version_and_default_images_follow_the_operator() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert chart["appVersion"] == __version__
    assert f"{values['image']['repository']}:{chart['appVersion']}" == DEFAULT_ROUTER_IMAGE
    assert values["vllm"]["images"] == {"nvidia": DEFAULT_NVIDIA_IMAGE, "amd": DEFAULT_AMD_IMAGE}


def _leaves(values: dict[str, Any], schema: dict[str, Any], prefix: str = "") -> list[str]:
    """Dotted paths of the chart's own keys; a Kubernetes object passed through as it is
    (resources, securityContext: no ``properties`` in the schema) counts as one key."""
    out = []
    for key, value in values.items():
        path = f"{prefix}{key}"
        props = (schema.get("properties") or {}).get(key)
        if props is None:
            raise AssertionError(f"{path} is not in values.schema.json")
        nested = isinstance(value, dict) and value and props.get("properties")
        out += _leaves(value, props, path + ".") if nested else [path]
    return out


def test_every_value_is_documented_and_in_the_strict_schema() -> None:
    text = (CHART / "values.yaml").read_text()
    values = yaml.safe_load(text)
    schema = json.loads((CHART / "values.schema.json").read_text())
    commented = _commented_keys(text)
    for leaf in _leaves(values, schema):
        assert leaf in commented, f"{leaf} has no comment above it in values.yaml"
    assert _strict(schema), "every object in values.schema.json needs additionalProperties"


def _commented_keys(text: str) -> set[str]:
    """Dotted paths of the keys in ``text`` whose line follows a comment line."""
    found: set[str] = set()
    stack: list[tuple[int, str]] = []
    previous = ""
    for line in text.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith(("#", "-")) and ":" in stripped:
            indent = len(line) - len(line.lstrip())
            while stack and stack[-1][0] >= indent:
                stack.pop()
            stack.append((indent, stripped.split(":", 1)[0]))
            if previous.startswith("#"):
                found.add(".".join(k for _, k in stack))
        if stripped:
            previous = stripped
    return found


def _strict(node: dict[str, Any]) -> bool:
    if (
        node.get("type") == "object"
        and "properties" in node
        and node.get("additionalProperties") is not False
    ):
        return False
    return all(_strict(child) for child in (node.get("properties") or {}).values())


def test_gpu_types_in_the_schema_are_the_api_enum() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())
    names = schema["properties"]["gpuProductLabels"]["properties"]["values"]["propertyNames"]["enum"]
    assert tuple(names) == get_args(GPUType)
