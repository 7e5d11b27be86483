"""vLLM flags the operator owns, and the one rule that keeps users from setting them.

The same regular expression backs the CRD's CEL rule (so the API server refuses the object)
and the pydantic validator (so the operator and ``gptoss-operator plan`` refuse it too).
The expression uses only RE2 syntax, which is what CEL's ``matches()`` speaks.

vLLM's parser is argparse with ``allow_abbrev`` on, so it also accepts any prefix of a flag that
no other flag shares (``--gpu-memory-util=0.99`` is ``--gpu-memory-utilization``, ``-t 4`` is
``-tp 4``). Those prefixes are refused too: :data:`SHORTEST_ABBREVIATIONS` lists the shortest one
per flag across the supported vLLM releases, and tests/unit/test_vllm_compat.py recomputes it from
each release's own flag list and fails when vLLM adds or removes a flag that changes it.
"""

from __future__ import annotations

import re
from typing import Final

# Long flags the plan sets, with the spec field a user should change instead. GPU count must
# equal TP (docs/api.md, `gpu.count`), so the other parallelism sizes are managed as well: a user-set
# pipeline/data-parallel size would silently multiply the GPUs each replica needs.
MANAGED_FLAGS: Final[dict[str, str]] = {
    "--model": "spec.model / spec.source",
    "--revision": "spec.source.huggingface.revision",
    "--served-model-name": "spec.model",
    "--host": "(fixed: 0.0.0.0)",
    "--port": "(fixed: the planner's port setting)",
    "--tensor-parallel-size": "spec.gpu.count",
    "--pipeline-parallel-size": "spec.gpu.count",
    "--data-parallel-size": "spec.replicas",
    "--max-model-len": "spec.serving.maxModelLen",
    "--gpu-memory-utilization": "spec.serving.gpuMemoryUtilization",
    "--tool-call-parser": "spec.serving.toolCalling",
    "--enable-auto-tool-choice": "spec.serving.toolCalling",
    # Booleans take a --no- form too (argparse BooleanOptionalAction in vLLM's get_kwargs).
    "--no-enable-auto-tool-choice": "spec.serving.toolCalling",
    "--reasoning-parser": "(fixed: openai_gptoss)",
}

# vLLM's short aliases for the parallelism flags (vllm engine/arg_utils.py: -tp, -pp, -dp).
MANAGED_SHORT_FLAGS: Final[tuple[str, ...]] = ("-tp", "-pp", "-dp")

# The shortest prefix argparse expands to each managed flag in at least one supported vLLM
# release (every longer prefix expands too). Flags missing here are a prefix of another flag
# (--model of --model-impl, --data-parallel-size of --data-parallel-size-local,
# --reasoning-parser of --reasoning-parser-plugin, -dp of -dpa), so only the exact name reaches them.
SHORTEST_ABBREVIATIONS: Final[dict[str, str]] = {
    "--revision": "--rev",
    "--served-model-name": "--ser",
    "--host": "--ho",
    "--port": "--por",
    "--tensor-parallel-size": "--te",
    "--pipeline-parallel-size": "--pi",
    "--max-model-len": "--max-m",
    "--gpu-memory-utilization": "--gp",
    "--tool-call-parser": "--tool-c",
    "--enable-auto-tool-choice": "--enable-a",
    "--no-enable-auto-tool-choice": "--no-enable-a",
    "-tp": "-t",
}


def _chars(text: str, long_flag: bool) -> list[str]:
    # vLLM's FlexibleArgumentParser reads `--max_model_len` as `--max-model-len` (long flags only).
    return ["[-_]" if c == "-" and long_flag else c for c in text]


def _flag_pattern(flag: str) -> str:
    """``flag`` and every prefix of it down to its shortest abbreviation, as RE2."""
    long_flag = flag.startswith("--")
    lead, body = ("--", flag[2:]) if long_flag else ("-", flag[1:])
    shortest = SHORTEST_ABBREVIATIONS.get(flag, flag)
    required = _chars(shortest[len(lead) :], long_flag)
    optional = _chars(body[len(shortest) - len(lead) :], long_flag)
    tail = ""
    for c in reversed(optional):  # --max[-_]m(o(d(e(l...)?)?)?)?
        tail = f"({c}{tail})?"
    return lead + "".join(required) + tail


MANAGED_FLAG_REGEX: Final[str] = (
    "^(" + "|".join(_flag_pattern(f) for f in [*MANAGED_FLAGS, *MANAGED_SHORT_FLAGS]) + ")(=.*)?$"
)

_COMPILED: Final = re.compile(MANAGED_FLAG_REGEX)

MANAGED_FLAGS_MESSAGE: Final[str] = (
    "vllm.extraArgs may not set flags the operator manages ("
    + ", ".join([*MANAGED_FLAGS, *MANAGED_SHORT_FLAGS])
    + "), nor an abbreviation vLLM would expand to one (e.g. --gpu-memory-util, --max-model, -t); "
    "set spec.gpu.count, spec.serving.maxModelLen or spec.serving.gpuMemoryUtilization instead"
)


def managed_flags_in(args: list[str]) -> list[str]:
    """The entries of ``args`` that set an operator-managed flag or its abbreviation (bare or ``=value``)."""
    return [a for a in args if _COMPILED.match(a)]
