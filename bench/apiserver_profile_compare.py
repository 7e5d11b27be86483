"""Where the API server's extra CPU on the operator side went: two of its CPU profiles compared.

    .venv/bin/python -m bench.apiserver_profile_compare --operator DIR/n1000-r*-operator.pprof \
        --baseline DIR/n1000-r*-baseline.pprof

Reads the profiles `bench.operator_scale --apiserver-profile DIR` writes for the two sides of
each round with `go tool pprof` (a side's profiles are added up) and prints a markdown table:
for each kind of work (``KINDS``), the CPU-seconds of the samples whose stack goes through one
of the API server's functions for it, on each side, and the difference. Rows can share samples
(a status patch's store write is also "the store"), so they do not add up to the first row.
Needs the Go toolchain (`go` on PATH; the local cluster is built with it).
"""

from __future__ import annotations

import argparse
import re
import subprocess
from pathlib import Path

# (what the API server was doing, a regex of the functions doing it, as pprof names them, with
# their import paths). A request handler does most of its work in a second goroutine
# (finisher.FinishRequest) whose stack does not go through the handler, so a kind names
# functions on both stacks: k8s.io/apiserver/pkg/endpoints/handlers' for built-in kinds, the
# closures of apiextensions-apiserver's crdHandler and its customresource registry for
# ModelDeployments.
KINDS: tuple[tuple[str, str], ...] = (
    (
        "status updates of Deployments, ReplicaSets and pods (their controllers, kwok)",
        r"registry/(apps/deployment|apps/replicaset|core/pod)/storage\.\(\*StatusREST\)\.Update",
    ),
    ("POST requests: every create (Deployments, Services, ModelDeployments, Events)", r"CreateResource"),
    (
        "PATCH requests: server-side applies, status patches, others' patches",
        r"handlers\.PatchResource|handlers\.\(\*patcher\)",
    ),
    ("of these, server-side apply's own work: decoding the body, merging", r"handlers\.\(\*applyPatcher\)"),
    ("ModelDeployment creates", r"crdHandler\)\.serveResource\.CreateResource"),
    ("ModelDeployment status patches", r"crdHandler\)\.serveStatus|customresource\.\(\*StatusREST\)"),
    ("ModelDeployment GETs", r"crdHandler\)\.serveResource\.GetResource"),
    (
        "serving watches: encoding and sending events",
        r"^k8s\.io/apiserver/pkg/endpoints/handlers\.handleWatch",
    ),
    ("etcd: the store's writes and reads", r"^k8s\.io/apiserver/pkg/storage/etcd3\.\(\*store\)"),
    ("Go garbage collection", r"^runtime\.gcBgMarkWorker"),
)

# "0" has no unit (a kind the side never did).
_SHOWN = re.compile(r"Showing nodes accounting for ([0-9.]+)(ms|s|min)?,")
_UNIT = {"ms": 0.001, "s": 1.0, "min": 60.0}


def seconds(profiles: list[Path], focus: str | None = None) -> float:
    """CPU-seconds of the samples whose stack goes through a function matching ``focus`` (every
    sample without it): with every node shown, the shown nodes account for all of them."""
    options = [f"-focus={focus}"] if focus else []
    text = subprocess.run(
        [
            "go",
            "tool",
            "pprof",
            "-top",
            "-nodefraction=0",
            "-nodecount=1000000",
            *options,
            *map(str, profiles),
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    match = _SHOWN.search(text)
    if match is None:
        raise SystemExit(f"{profiles}: no 'Showing nodes accounting for' in go tool pprof's output")
    return float(match.group(1)) * _UNIT[match.group(2) or "s"]


def compare(operator: list[Path], baseline: list[Path]) -> str:
    rows = [
        "| API server CPU spent on | operator side | no operator | difference |",
        "| --- | ---: | ---: | ---: |",
    ]
    for label, focus in (("everything (every sample)", None), *KINDS):
        a, b = seconds(operator, focus), seconds(baseline, focus)
        rows.append(f"| {label} | {a:.1f} s | {b:.1f} s | {a - b:+.1f} s |")
    return "\n".join(rows)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--operator", type=Path, nargs="+", required=True, help="the operator side's profiles"
    )
    parser.add_argument(
        "--baseline", type=Path, nargs="+", required=True, help="the no-operator side's profiles"
    )
    args = parser.parse_args()
    print(compare(args.operator, args.baseline))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
