"""Guards for the source layout: `operator/` is a source root, never a package."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_operator_source_root_is_not_a_package() -> None:
    # operator/__init__.py would shadow the stdlib `operator` module that collections,
    # dataclasses and asyncio import, breaking the interpreter when run from the repo root.
    assert not (REPO / "operator" / "__init__.py").exists()
    loose = [p.name for p in (REPO / "operator").iterdir() if p.is_file()]
    assert loose == [], f"operator/ holds only packages, found files {loose}"


def test_stdlib_operator_wins_from_the_repo_root() -> None:
    code = "import operator, collections, gptoss_operator; print(operator.itemgetter.__module__)"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == "operator"


def test_console_script_entry_point_runs() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "gptoss_operator", "--version"], capture_output=True, text=True, check=True
    ).stdout
    assert out.startswith("gptoss-operator ")


def test_bench_and_devtools_never_reach_into_tests() -> None:
    # tests/ holds tests; what benchmarks share with them (the local cluster, the operator
    # process, the simulators) lives in devtools/ or the package.
    offenders = [
        str(path.relative_to(REPO))
        for directory in ("bench", "devtools")
        for path in (REPO / directory).rglob("*.py")
        if re.search(r"^\s*(from|import) tests\b|[\"']tests\.support", path.read_text(), re.M)
    ]
    assert offenders == []
