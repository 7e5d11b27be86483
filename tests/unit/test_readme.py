"""The README's commands work as written for a newcomer."""

from __future__ import annotations

import re
from pathlib import Path

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def test_every_namespace_the_example_uses_is_created_first() -> None:
    block = README.split("```console\n", 1)[1].split("```", 1)[0]
    used = set(re.findall(r"namespace: (\w[\w-]*)", block)) | set(re.findall(r" -n (\w[\w-]*)", block))
    assert used
    for ns in used:
        created = block.find(f"kubectl create namespace {ns}")
        assert 0 <= created < block.find(ns, created + len("kubectl create namespace ") + len(ns)), ns


def test_it_says_how_gptoss_operator_gets_on_the_path() -> None:
    assert ".venv/bin" in README
    assert "pip install ." in README
