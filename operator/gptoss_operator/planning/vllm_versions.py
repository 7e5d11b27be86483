"""Which vLLM releases the planner writes command lines for, and how it tells an image's version.

docs/vllm-versions.md explains the range and the default. tests/unit/test_vllm_compat.py downloads
every release in :data:`VERIFIED_VERSIONS` from PyPI and fails if the planner emits a flag, env var
or parser name that release does not define.
"""

from __future__ import annotations

import re
from typing import Final

VLLMVersion = tuple[int, int, int]

# Floor: the operator's previous default, released after the two Dec 2025 fixes it relies on --
# vLLM downloads only the repository's root files (PR vllm#30537) and the Hopper low-concurrency
# MXFP4 regression is fixed (vllm#28894, PR vllm#30528). Ceiling: the newest release checked
# (any 0.33.x patch).
MIN_SUPPORTED: Final[VLLMVersion] = (0, 15, 1)
MAX_SUPPORTED_MINOR: Final[tuple[int, int]] = (0, 33)

# The releases the compatibility test reads: the floor, both sides of the one flag change the
# planner makes (below), the default AMD image's release, and the newest release.
VERIFIED_VERSIONS: Final[tuple[str, ...]] = ("0.15.1", "0.23.0", "0.24.0", "0.33.0")

# vLLM 0.24.0 dropped VLLM_USE_FLASHINFER_MOE_MXFP4_MXFP8 from vllm/envs.py; MoE kernels are
# chosen with --moe-backend (a KernelConfig flag since 0.17; 0.16.0 lacks it) instead.
MOE_BACKEND_FLAG_SINCE: Final[VLLMVersion] = (0, 24, 0)

_VERSION: Final = re.compile(r"v?(\d+)\.(\d+)(?:\.(\d+))?")
# A tag that is a version (v0.15.1, 0.15.1, v0.15.1-cu130) or names one after "vllm"
# (AMD's rocm/vllm:rocm7.14.0_..._vllm_0.23.0).
_TAG_VERSION: Final = re.compile(
    r"^v?(\d+)\.(\d+)\.(\d+)(?!\d|\.\d)|vllm[_-]?v?(\d+)\.(\d+)\.(\d+)(?!\d|\.\d)"
)


def parse_version(text: str) -> VLLMVersion | None:
    """``0.15.1`` / ``v0.15.1`` / ``0.33`` (read as 0.33.0) -> a tuple; anything else -> None."""
    match = _VERSION.fullmatch(text.strip())
    if match is None:
        return None
    return int(match[1]), int(match[2]), int(match[3] or 0)


def image_version(image: str) -> VLLMVersion | None:
    """The vLLM version an image reference's tag carries, or None (no tag, digest only, custom tag)."""
    name = image.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    if ":" not in last:
        return None
    tag = last.split(":", 1)[1]
    match = _TAG_VERSION.search(tag)
    if match is None:
        return None
    groups = match.groups()
    major, minor, patch = groups[0:3] if groups[0] is not None else groups[3:6]
    return int(major), int(minor), int(patch)


def format_version(version: VLLMVersion) -> str:
    return ".".join(str(part) for part in version)


def is_supported(version: VLLMVersion) -> bool:
    return version >= MIN_SUPPORTED and version[:2] <= MAX_SUPPORTED_MINOR


SUPPORTED_RANGE: Final = (
    f"{format_version(MIN_SUPPORTED)} to {MAX_SUPPORTED_MINOR[0]}.{MAX_SUPPORTED_MINOR[1]}.x"
)
