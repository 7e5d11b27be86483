"""``gptoss-operator crds``: print the CRDs, or write them into a directory."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--output-dir",
        type=Path,
        metavar="DIR",
        help="write one <plural>.<group>.yaml file per CRD into DIR instead of printing a YAML stream",
    )
    parser.add_argument(
        "--chart-dir",
        type=Path,
        metavar="DIR",
        help="also write the Helm chart's CRD templates (crd-<plural>.<group>.yaml) and RBAC rules into DIR/templates",
    )


def run(args: argparse.Namespace) -> int:
    from gptoss_operator.api.crds import all_crds, render_yaml, write_chart_crds, write_crds

    if args.chart_dir is not None:
        from gptoss_operator.rbac import write_chart_rules

        for path in write_chart_crds(args.chart_dir):
            print(path)
        print(write_chart_rules(args.chart_dir))
    if args.output_dir is not None:
        for path in write_crds(args.output_dir):
            print(path)
    if args.output_dir is not None or args.chart_dir is not None:
        return 0
    print("---\n".join(render_yaml(m) for m in all_crds()), end="")
    return 0
