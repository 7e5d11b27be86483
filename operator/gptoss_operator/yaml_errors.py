"""One line for a YAML syntax error: ``line L, column C: problem`` (PyYAML's own text is a
multi-line parser trace that quotes the document)."""

from __future__ import annotations

import yaml


def describe_yaml_error(error: yaml.YAMLError) -> str:
    mark = getattr(error, "problem_mark", None)
    problem = getattr(error, "problem", None) or str(error).splitlines()[0]
    if mark is None:
        return f"invalid YAML: {problem}"
    # PyYAML marks are 0-based; editors count from 1.
    return f"invalid YAML at line {mark.line + 1}, column {mark.column + 1}: {problem}"
