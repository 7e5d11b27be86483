"""Pydantic JSON Schema -> Kubernetes structural OpenAPI v3 schema, and a checker for the result.

Pydantic emits JSON Schema 2020-12: ``$defs``/``$ref``, ``anyOf: [X, {type: null}]`` for
optional fields, numeric ``exclusiveMinimum``, ``additionalProperties: false`` next to
``properties``, ``title`` everywhere. A CRD needs a *structural* schema (Kubernetes docs,
"Specifying a structural schema"): every node typed, no ``$ref``, no nullable unions,
``properties`` and ``additionalProperties`` mutually exclusive, boolean exclusive bounds.
The converter below does exactly that rewrite and refuses anything it cannot express.
"""

from __future__ import annotations

import copy
from typing import Any

Schema = dict[str, Any]

# JSONSchemaProps fields the API server accepts; everything else pydantic emits is dropped.
_KEPT_KEYS = frozenset(
    {
        "type",
        "format",
        "description",
        "default",
        "enum",
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
        "minLength",
        "maxLength",
        "pattern",
        "minItems",
        "maxItems",
        "minProperties",
        "maxProperties",
        "required",
        "properties",
        "additionalProperties",
        "items",
        "nullable",
        "x-kubernetes-int-or-string",
        "x-kubernetes-preserve-unknown-fields",
        "x-kubernetes-embedded-resource",
        "x-kubernetes-list-type",
        "x-kubernetes-list-map-keys",
        "x-kubernetes-map-type",
        "x-kubernetes-validations",
    }
)


# Schema checks whose failure does not stop the API server from evaluating CEL rules (only type,
# enum, required, maxLength, maxItems and maxProperties failures do: hasBlockingErr in
# k8s.io/apiextensions-apiserver/pkg/registry/customresource/strategy.go). A node with one of
# them and a CEL rule refuses one bad value twice when both catch it (maxModelLen 200000 got
# "should be less than or equal to 131072" and the rule's own message), so a node has either.
_CHECKS_BESIDE_CEL = (
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "minLength",
    "minItems",
    "minProperties",
    "pattern",
    "multipleOf",
)


class SchemaConversionError(ValueError):
    """The pydantic schema uses a construct a structural CRD schema cannot express."""


def to_structural(schema: Schema) -> Schema:
    """Convert a pydantic ``model_json_schema()`` result (with ``$defs``) into a structural schema."""
    defs: dict[str, Schema] = schema.get("$defs", {})
    return _convert(schema, defs, path="")


def _resolve(node: Schema, defs: dict[str, Schema], path: str) -> Schema:
    """Inline ``$ref`` / single-member ``allOf`` / nullable ``anyOf``; sibling keys win over the target."""
    node = dict(node)
    if "$ref" in node:
        name = node.pop("$ref").rsplit("/", 1)[-1]
        if name not in defs:
            raise SchemaConversionError(f"{path or '<root>'}: unresolved $ref {name}")
        node = {**copy.deepcopy(defs[name]), **node}
        return _resolve(node, defs, path)
    if "allOf" in node:
        members = node.pop("allOf")
        if len(members) != 1:
            raise SchemaConversionError(f"{path}: allOf with {len(members)} members is not structural")
        return _resolve({**members[0], **node}, defs, path)
    for union in ("anyOf", "oneOf"):
        if union in node:
            members = [m for m in node.pop(union) if m.get("type") != "null"]
            if len(members) != 1:
                raise SchemaConversionError(
                    f"{path}: {union} over {len(members)} non-null types is not structural; "
                    "annotate the field with WithJsonSchema (e.g. x-kubernetes-int-or-string)"
                )
            if node.get("default", 0) is None:  # "default: null" means "absent" for us
                del node["default"]
            return _resolve({**members[0], **node}, defs, path)
    return node


def _convert(node: Schema, defs: dict[str, Schema], path: str) -> Schema:
    node = _resolve(node, defs, path)
    if "const" in node:
        node.setdefault("enum", [node.pop("const")])
    for bound, plain in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        # JSON Schema 2020-12 gives a number; OpenAPI v3.0 (what CRDs speak) a boolean.
        if bound in node and not isinstance(node[bound], bool):
            node[plain] = node[bound]
            node[bound] = True
    if node.get("uniqueItems"):
        raise SchemaConversionError(f"{path}: uniqueItems is forbidden in CRD schemas; use a list")
    out: Schema = {k: v for k, v in node.items() if k in _KEPT_KEYS}
    if "properties" in out:
        out.pop("additionalProperties", None)  # pydantic's extra="forbid"; pruning does that job
        out["properties"] = {
            name: _convert(sub, defs, f"{path}.{name}" if path else name)
            for name, sub in out["properties"].items()
        }
        if not out.get("required"):
            out.pop("required", None)
    if out.get("additionalProperties") is True:  # dict[str, Any]: keep whatever is there
        del out["additionalProperties"]
        out["x-kubernetes-preserve-unknown-fields"] = True
    elif out.get("additionalProperties") is False:
        del out["additionalProperties"]
    if isinstance(out.get("additionalProperties"), dict):
        out["additionalProperties"] = _convert(out["additionalProperties"], defs, f"{path}{{}}")
    if "items" in out:
        out["items"] = _convert(out["items"], defs, f"{path}[]")
    if "type" not in out and not _typeless_allowed(out):
        if "enum" in node and all(isinstance(v, str) for v in node["enum"]):
            out["type"] = "string"
        else:
            raise SchemaConversionError(f"{path}: no type")
    return out


def _typeless_allowed(node: Schema) -> bool:
    return bool(node.get("x-kubernetes-int-or-string") or node.get("x-kubernetes-preserve-unknown-fields"))


def _int_or_string(node: Schema) -> bool:
    """The node, or the items of the list it is, is x-kubernetes-int-or-string."""
    return bool(
        node.get("x-kubernetes-int-or-string") or node.get("items", {}).get("x-kubernetes-int-or-string")
    )


def structural_violations(schema: Schema, path: str = "") -> list[str]:
    """Everything that makes ``schema`` non-structural (or undocumented); empty when it is fine.

    Checks: every node has a type unless int-or-string / preserve-unknown-fields; no ``$ref``,
    ``$defs``, ``anyOf``/``oneOf``/``allOf`` carrying types, ``null`` types or ``const``;
    ``properties`` and ``additionalProperties`` not both set; exclusive bounds are booleans;
    every property has a description (so ``kubectl explain`` explains it), which says
    int-or-string where it is one (explain cannot show that type); no node with both a
    CEL rule and a schema check that does not stop CEL rules (one mistake, two messages).
    """
    where = path or "<root>"
    problems: list[str] = []
    for key in ("$ref", "$defs", "anyOf", "oneOf", "allOf", "const", "title", "uniqueItems"):
        if key in schema:
            problems.append(f"{where}: has {key}")
    if "type" not in schema and not _typeless_allowed(schema):
        problems.append(f"{where}: no type")
    if schema.get("type") == "null" or (isinstance(schema.get("type"), list)):
        problems.append(f"{where}: type must be a single non-null type")
    if "properties" in schema and "additionalProperties" in schema:
        problems.append(f"{where}: properties and additionalProperties both set")
    for bound in ("exclusiveMinimum", "exclusiveMaximum"):
        if bound in schema and not isinstance(schema[bound], bool):
            problems.append(f"{where}: {bound} must be a boolean in OpenAPI v3.0")
    if schema.get("x-kubernetes-validations"):
        doubled = [key for key in _CHECKS_BESIDE_CEL if key in schema]
        if doubled:
            problems.append(
                f"{where}: {', '.join(doubled)} beside a CEL rule: the API server reports both for one "
                "value; state the bound in the rule only"
            )
    for name, sub in schema.get("properties", {}).items():
        sub_path = f"{path}.{name}" if path else name
        # The root metadata may only be `type: object`: the API server refuses a description there.
        if not sub.get("description") and sub_path != "metadata":
            problems.append(f"{sub_path}: no description")
        # kubectl explain prints a field's type from its schema's `type` (else "Object", or a $ref's
        # name such as IntOrString for built-in kinds); an int-or-string field of a custom resource
        # has no `type` and no $ref, so it shows as <Object> or <[]Object> whatever the schema says
        # (kubernetes/kubernetes#130946). Its description is the only place explain can say it.
        if _int_or_string(sub) and "int-or-string" not in sub.get("description", ""):
            problems.append(f"{sub_path}: int-or-string, and its description does not say so")
        problems += structural_violations(sub, sub_path)
    if isinstance(schema.get("additionalProperties"), dict):
        problems += structural_violations(schema["additionalProperties"], f"{path}{{}}")
    if "items" in schema:
        problems += structural_violations(schema["items"], f"{path}[]")
    if schema.get("x-kubernetes-list-type") == "map":
        keys = schema.get("x-kubernetes-list-map-keys") or []
        required = set(schema.get("items", {}).get("required", []))
        problems += [f"{where}: list-map key {k} is not required in items" for k in keys if k not in required]
    return problems
