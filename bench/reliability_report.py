"""Run the operator's reliability tests and rewrite the figures table in docs/reliability.md.

    .venv/bin/python -m bench.reliability_report        # or: make reliability
    GPTOSS_SOAK=1 .venv/bin/python -m bench.reliability_report   # the 90 s API server outage

The tests print and record one figure each (tests/support/figures.py); this script collects
them and replaces the table between the ``operator-figures`` markers of the ``## Operator``
section. Nothing is written unless every test passed: a figure from a failing run is not one.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "reliability.md"
BEGIN, END = "<!-- operator-figures:begin -->", "<!-- operator-figures:end -->"
TESTS = [
    "tests/cluster/test_faults.py",
    "tests/cluster/test_bad_specs.py",
    "tests/unit/test_spec_properties.py",
    "tests/unit/test_spec_bounds.py",
    "tests/unit/operator/test_resilience.py",
]


def table(figures: list[dict[str, object]]) -> str:
    soak = os.environ.get("GPTOSS_SOAK") == "1"
    lines = [
        f"Run of {dt.date.today().isoformat()} on the development host (2 vCPUs shared with other jobs)"
        + (", with GPTOSS_SOAK=1 (90 s outage)." if soak else "."),
        "",
        "| test | figure |",
        "| --- | --- |",
    ]
    lines += [f"| `{f['test']}` | {f['summary']} |" for f in figures]
    faults = [f for f in figures if f["test"] in FAULTS]
    bad = [f for f in figures if str(f["test"]).startswith("bad_specs")]
    lines += [
        "",
        f"Faults survived without an operator restart: {len(faults)} of {len(FAULTS)}. "
        f"Bad inputs tried: {sum(int(str(f['tried'])) for f in bad)}, refused "
        f"{sum(int(str(f['refused'])) for f in bad)}, marked {sum(int(str(f['marked'])) for f in bad)}, "
        f"planned (valid after all) {sum(int(str(f.get('planned', 0))) for f in bad)}, raised 0. "
        f"Secrets leaked: {sum(int(str(f.get('leaked', 0))) for f in figures if f['test'] == 'secrets')}.",
    ]
    return "\n".join(lines)


FAULTS = (
    "api_server_kill_restart",
    "etcd_kill_restart",
    "deletion_during_restart",
    "child_deleted",
    "operator_killed_midway",
    "crd_recreated",
)


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "figures.jsonl"
        env = os.environ | {"GPTOSS_RELIABILITY_FIGURES": str(path)}
        proc = subprocess.run(
            [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", *TESTS],
            cwd=REPO,
            env=env,
            check=False,
        )
        if proc.returncode != 0:
            print("tests failed: docs/reliability.md left unchanged", file=sys.stderr)
            return proc.returncode
        figures = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    text = DOC.read_text()
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    DOC.write_text(f"{head}{BEGIN}\n{table(figures)}\n{END}{tail}")
    print(table(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
