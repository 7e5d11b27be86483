"""Figures a reliability test measured, printed (``pytest -s``) and, when
GPTOSS_RELIABILITY_FIGURES names a file, appended to it as JSON lines for
bench/reliability_report.py to put into docs/reliability.md."""

from __future__ import annotations

import json
import os
from typing import Any


def record(test: str, summary: str, **values: Any) -> None:
    """One line per test: ``summary`` is the human sentence, ``values`` the raw numbers."""
    print(f"\n[figure] {test}: {summary}")
    path = os.environ.get("GPTOSS_RELIABILITY_FIGURES")
    if path:
        with open(path, "a") as f:
            f.write(json.dumps({"test": test, "summary": summary, **values}) + "\n")
