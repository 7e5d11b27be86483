"""The ``gptoss-operator`` command line: one entry point, one subcommand per role.

Each subcommand lives in its own module and registers itself through ``COMMANDS`` so that
importing the CLI stays cheap: the router never imports kopf, the planner never imports httpx.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from gptoss_operator import __version__

# subcommand -> (module providing `add_arguments(parser)` and `run(args) -> int`, help text)
COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("gptoss_operator.commands.run", "Run the ModelDeployment operator against the current cluster"),
    "plan": ("gptoss_operator.commands.plan", "Print the GPU/vLLM plan for a spec (no cluster needed)"),
    "crds": ("gptoss_operator.commands.crds", "Print the CRDs (or write them into a directory)"),
    "router": ("gptoss_operator.commands.router", "Run the OpenAI-compatible hybrid router"),
    "check-operator": (
        "gptoss_operator.commands.check_operator",
        "Check that the installed operator answers and exactly one replica leads (helm test)",
    ),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gptoss-operator",
        description="Run OpenAI's gpt-oss models on Kubernetes with vLLM.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module_name, help_text) in COMMANDS.items():
        module = importlib.import_module(module_name)
        module.add_arguments(sub.add_parser(name, help=help_text, description=help_text))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[args.command][0])
    try:
        code: int = module.run(args)
        sys.stdout.flush()
    except BrokenPipeError:
        # The reader left early (`gptoss-operator plan ... | head`): no traceback. Point stdout
        # at /dev/null so the interpreter's own flush at exit does not fail again (Python docs,
        # "Note on SIGPIPE" in the signal module).
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    return code
