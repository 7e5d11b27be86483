"""Pydantic validation errors as messages that name the field the way users wrote it (camelCase
paths such as ``spec.gpu.count``): used for ModelDeployment conditions and router config errors."""

from __future__ import annotations

from pydantic import ValidationError


def field_path(loc: tuple[int | str, ...]) -> str:
    """``("spec", "gpu", "count")`` -> ``spec.gpu.count``; list indexes become ``[i]``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + part
    return out


def describe_validation_error(error: ValidationError) -> str:
    """One line per problem, ``<field path>: <message>``, e.g. for a Degraded condition's message.

    The path uses the camelCase names of the manifest (errors are reported by alias).
    """
    lines = []
    for item in error.errors(include_url=False):
        # Literal/union errors carry the union member in loc (e.g. "literal['auto',1,...]");
        # keep only the parts that are manifest field names or list indexes.
        loc = tuple(p for p in item["loc"] if isinstance(p, int) or not any(c in p for c in "[]'(,"))
        lines.append(f"{field_path(loc) or '(root)'}: {item['msg']}")
    return "; ".join(lines)
