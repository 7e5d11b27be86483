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


def run(args: argparse.Namespace) -> int:
    from gptoss_operator.api.crds import all_crds, render_yaml, write_crds

    if args.output_dir is not None:
        for path in write_crds(args.output_dir):
            print(path)
        return 0
    print("---\n".join(render_yaml(m) for m in all_crds()), end="")
    return 0
