"""CustomResourceDefinitions generated from the pydantic models (the single source of truth).

:class:`CRDDefinition` names everything a CRD needs besides the schema; :func:`build_crd`
turns it plus a model into an ``apiextensions.k8s.io/v1`` manifest. The Helm chart's CRD
templates and ``crds/`` are both rendered from :func:`all_crds`, and unit tests fail when
``crds/`` drifts from the models.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from gptoss_operator.api import routepolicy, v1alpha1
from gptoss_operator.api.crd_schema import to_structural


@dataclass(frozen=True)
class PrinterColumn:
    """One ``additionalPrinterColumns`` entry: ``kubectl get`` shows exactly one JSONPath per column."""

    name: str
    json_path: str
    type: str = "string"
    description: str = ""
    priority: int = 0

    def manifest(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "type": self.type, "jsonPath": self.json_path}
        if self.description:
            out["description"] = self.description
        if self.priority:
            out["priority"] = self.priority
        return out


@dataclass(frozen=True)
class ScaleSubresource:
    """JSONPaths for the ``scale`` subresource (``kubectl scale``, HPA)."""

    spec_replicas_path: str = ".spec.replicas"
    status_replicas_path: str = ".status.replicas"
    label_selector_path: str | None = ".status.selector"


@dataclass(frozen=True)
class CRDDefinition:
    """Everything about one kind's CRD except the schema, which comes from ``model``."""

    model: type[BaseModel]
    group: str
    version: str
    kind: str
    plural: str
    singular: str
    short_names: Sequence[str] = ()
    categories: Sequence[str] = ()
    printer_columns: Sequence[PrinterColumn] = ()
    scale: ScaleSubresource | None = None
    status_subresource: bool = True
    namespaced: bool = True
    labels: dict[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"{self.plural}.{self.group}"


def openapi_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The structural ``openAPIV3Schema`` for a top-level kind model (apiVersion/kind/metadata/spec/status)."""
    schema = to_structural(model.model_json_schema(by_alias=True, mode="validation"))
    props = schema["properties"]
    # The API server owns these three: metadata may only be `type: object` at the root, and
    # apiVersion/kind carry no enum or default (a wrong kind never reaches this schema).
    props["apiVersion"] = {"type": "string", "description": "API version of the object: group/version."}
    props["kind"] = {"type": "string", "description": "Kind of the object."}
    props["metadata"] = {
        "type": "object"
    }  # the API server refuses any other keyword here, even a description
    schema["required"] = [
        r for r in schema.get("required", []) if r not in ("apiVersion", "kind", "metadata")
    ]
    return schema


def build_crd(definition: CRDDefinition) -> dict[str, Any]:
    """The ``apiextensions.k8s.io/v1`` CustomResourceDefinition manifest for one kind."""
    names: dict[str, Any] = {
        "kind": definition.kind,
        "listKind": f"{definition.kind}List",
        "plural": definition.plural,
        "singular": definition.singular,
    }
    if definition.short_names:
        names["shortNames"] = list(definition.short_names)
    if definition.categories:
        names["categories"] = list(definition.categories)
    subresources: dict[str, Any] = {}
    if definition.status_subresource:
        subresources["status"] = {}
    if definition.scale:
        scale: dict[str, Any] = {
            "specReplicasPath": definition.scale.spec_replicas_path,
            "statusReplicasPath": definition.scale.status_replicas_path,
        }
        if definition.scale.label_selector_path:
            scale["labelSelectorPath"] = definition.scale.label_selector_path
        subresources["scale"] = scale
    version: dict[str, Any] = {
        "name": definition.version,
        "served": True,
        "storage": True,
        "schema": {"openAPIV3Schema": openapi_schema(definition.model)},
    }
    if subresources:
        version["subresources"] = subresources
    if definition.printer_columns:
        version["additionalPrinterColumns"] = [c.manifest() for c in definition.printer_columns]
    metadata: dict[str, Any] = {"name": definition.name}
    if definition.labels:
        metadata["labels"] = dict(definition.labels)
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": metadata,
        "spec": {
            "group": definition.group,
            "names": names,
            "scope": "Namespaced" if definition.namespaced else "Cluster",
            "versions": [version],
        },
    }


MODEL_DEPLOYMENT = CRDDefinition(
    model=v1alpha1.ModelDeployment,
    group=v1alpha1.GROUP,
    version=v1alpha1.VERSION,
    kind=v1alpha1.KIND,
    plural=v1alpha1.PLURAL,
    singular=v1alpha1.SINGULAR,
    short_names=("md",),
    categories=("gptoss",),
    printer_columns=(
        PrinterColumn("Model", ".spec.model", description="The gpt-oss model served."),
        PrinterColumn("GPU", ".spec.gpu.type", description="GPU type."),
        PrinterColumn("GPUs", ".status.plan.gpusPerReplica", "integer", "GPUs per replica (planned)."),
        PrinterColumn("TP", ".status.plan.tensorParallelSize", "integer", "Tensor-parallel size (planned)."),
        PrinterColumn("Ready", ".status.readyText", description="readyReplicas/replicas."),
        PrinterColumn("Phase", ".status.phase", description="Summary of the conditions."),
        PrinterColumn(
            "Reason", ".status.reason", description="Why the phase is not Ready (a condition reason)."
        ),
        PrinterColumn("Age", ".metadata.creationTimestamp", "date"),
    ),
    scale=ScaleSubresource(),
)

ROUTE_POLICY = CRDDefinition(
    model=routepolicy.RoutePolicy,
    group=v1alpha1.GROUP,
    version=v1alpha1.VERSION,
    kind=routepolicy.KIND,
    plural=routepolicy.PLURAL,
    singular=routepolicy.SINGULAR,
    short_names=("rp",),
    categories=("gptoss",),
    # JSONPath cannot count or compute, so the controller writes routeCount and readyText.
    printer_columns=(
        PrinterColumn("Routes", ".status.routeCount", "integer", "Number of routes."),
        PrinterColumn("Backends", ".status.readyText", description="Ready backends/all backends."),
        PrinterColumn(
            "Endpoint", ".status.endpoint", description="OpenAI-compatible base URL of the router."
        ),
        PrinterColumn("Age", ".metadata.creationTimestamp", "date"),
    ),
)

# Every CRD this project ships, in install order.
DEFINITIONS: tuple[CRDDefinition, ...] = (MODEL_DEPLOYMENT, ROUTE_POLICY)


def all_crds() -> list[dict[str, Any]]:
    """Every CRD manifest, in install order."""
    return [build_crd(d) for d in DEFINITIONS]


def render_yaml(manifest: dict[str, Any]) -> str:
    """Stable YAML text for one manifest (key order as built, no line wrapping)."""
    text: str = yaml.safe_dump(manifest, sort_keys=False, width=10_000, allow_unicode=True)
    return text


def crd_filename(manifest: dict[str, Any]) -> str:
    """``crds/<plural>.<group>.yaml``, e.g. ``modeldeployments.gptoss.dev.yaml``."""
    return f"{manifest['metadata']['name']}.yaml"


def write_crds(directory: Path) -> list[Path]:
    """Write one YAML file per CRD into ``directory``; returns the paths written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for manifest in all_crds():
        path = directory / crd_filename(manifest)
        path.write_text(render_yaml(manifest))
        written.append(path)
    return written


# The chart's CRD templates: cert-manager's pattern (templates, not Helm's crds/ folder, which
# Helm installs once and never upgrades), behind crds.enabled, kept on uninstall by crds.keep.
CHART_CRD_HEADER = """\
{{- /* Generated by `gptoss-operator crds --chart-dir` from the API models; do not edit. */ -}}
{{- if .Values.crds.enabled }}
"""
CHART_CRD_METADATA = """\
metadata:
  name: %s
  labels:
    {{- include "gpt-oss-operator.labels" . | nindent 4 }}
  annotations:
    # Argo CD: apply the CRDs in an earlier wave than anything that uses them (docs/gitops.md).
    argocd.argoproj.io/sync-wave: "-1"
    {{- if .Values.crds.keep }}
    helm.sh/resource-policy: keep
    {{- end }}
"""


def chart_crd_template(manifest: dict[str, Any]) -> str:
    """One CRD as a Helm template: the same YAML as ``crds/`` plus the chart's labels, the keep
    annotation and Argo CD's sync wave."""
    name = manifest["metadata"]["name"]
    text = render_yaml(manifest)
    plain_metadata = f"metadata:\n  name: {name}\n"
    if "{{" in text or text.count(plain_metadata) != 1:
        raise ValueError(f"CRD {name} cannot be templated safely")
    return CHART_CRD_HEADER + text.replace(plain_metadata, CHART_CRD_METADATA % name) + "{{- end }}\n"


def chart_crd_filename(manifest: dict[str, Any]) -> str:
    """``templates/crd-<plural>.<group>.yaml``."""
    return f"crd-{manifest['metadata']['name']}.yaml"


def write_chart_crds(chart_dir: Path) -> list[Path]:
    """Write the CRD templates into ``chart_dir/templates``; returns the paths written."""
    templates = chart_dir / "templates"
    templates.mkdir(parents=True, exist_ok=True)
    written = []
    for manifest in all_crds():
        path = templates / chart_crd_filename(manifest)
        path.write_text(chart_crd_template(manifest))
        written.append(path)
    return written
