"""vLLM flags the operator owns, and the one rule that keeps users from setting them.

The same regular expression backs the CRD's CEL rule (so the API server refuses the object)
and the pydantic validator (so the operator and ``gptoss-operator plan`` refuse it too).
The expression uses only RE2 syntax, which is what CEL's ``matches()`` speaks.
"""

from __future__ import annotations

import re
from typing import Final

# Long flags the plan sets, with the spec field a user should change instead. GPU count must
# equal TP (design doc), so the other parallelism sizes are managed as well: a user-set
# pipeline/data-parallel size would silently multiply the GPUs each replica needs.
MANAGED_FLAGS: Final[dict[str, str]] = {
    "--model": "spec.model / spec.source",
    "--revision": "spec.source.huggingface.revision",
    "--served-model-name": "spec.model",
    "--host": "(fixed: 0.0.0.0)",
    "--port": "(fixed: 8000)",
    "--tensor-parallel-size": "spec.gpu.count",
    "--pipeline-parallel-size": "spec.gpu.count",
    "--data-parallel-size": "spec.replicas",
    "--max-model-len": "spec.serving.maxModelLen",
    "--gpu-memory-utilization": "spec.serving.gpuMemoryUtilization",
    "--tool-call-parser": "spec.serving.toolCalling",
    "--enable-auto-tool-choice": "spec.serving.toolCalling",
    "--reasoning-parser": "(fixed: openai_gptoss)",
}

# vLLM's short aliases for the parallelism flags (vllm engine/arg_utils.py: -tp, -pp, -dp).
MANAGED_SHORT_FLAGS: Final[tuple[str, ...]] = ("-tp", "-pp", "-dp")


def _long_flag_pattern(flag: str) -> str:
    # vLLM's FlexibleArgumentParser accepts `--max_model_len` as `--max-model-len`.
    return "--" + "[-_]".join(flag.removeprefix("--").split("-"))


MANAGED_FLAG_REGEX: Final[str] = (
    "^(" + "|".join([_long_flag_pattern(f) for f in MANAGED_FLAGS] + list(MANAGED_SHORT_FLAGS)) + ")(=.*)?$"
)

_COMPILED: Final = re.compile(MANAGED_FLAG_REGEX)

MANAGED_FLAGS_MESSAGE: Final[str] = (
    "vllm.extraArgs may not set flags the operator manages ("
    + ", ".join([*MANAGED_FLAGS, *MANAGED_SHORT_FLAGS])
    + "); set spec.gpu.count, spec.serving.maxModelLen or spec.serving.gpuMemoryUtilization instead"
)


def managed_flags_in(args: list[str]) -> list[str]:
    """The entries of ``args`` that set an operator-managed flag (bare or ``--flag=value``)."""
    return [a for a in args if _COMPILED.match(a)]
