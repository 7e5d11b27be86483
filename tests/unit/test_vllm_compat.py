"""Every flag, env var and parser name the planner emits exists in the vLLM release it plans for.

Marked ``vllm_wheels``: it downloads the ``vllm`` wheel of each verified release from PyPI once
(about 0.3-0.5 GB each, cached in ~/.cache/gptoss-vllm-wheels) and reads its source without
importing it (devtools/vllm_wheel.py). It runs in ``make test`` and is never skipped: a
download failure is a test failure.
"""

from __future__ import annotations

from itertools import product
from typing import Any

import pytest

from devtools.vllm_wheel import VLLMRelease, release
from gptoss_operator.api import MODEL_NAMES, ModelDeploymentSpec, Plan
from gptoss_operator.api.managed_flags import (
    MANAGED_FLAGS,
    MANAGED_SHORT_FLAGS,
    SHORTEST_ABBREVIATIONS,
    managed_flags_in,
)
from gptoss_operator.planning import CATALOG, plan_deployment
from gptoss_operator.planning.vllm_versions import (
    MAX_SUPPORTED_MINOR,
    MIN_SUPPORTED,
    MOE_BACKEND_FLAG_SINCE,
    VERIFIED_VERSIONS,
    format_version,
    is_supported,
    parse_version,
)

pytestmark = pytest.mark.vllm_wheels

# Env vars the plan sets that vLLM does not own, with their owner: vLLM's envs.py cannot list them.
NOT_VLLM_ENV = {
    "AMDGCN_USE_BUFFER_OPS": "Triton's AMD backend (vllm-project/recipes GPT-OSS.md, MI300X/MI355X)",
}

_RELEASES: dict[str, VLLMRelease] = {}


def vllm(version: str) -> VLLMRelease:
    if version not in _RELEASES:
        _RELEASES[version] = release(version)
    return _RELEASES[version]


def _plans(version: str) -> list[tuple[str, Plan]]:
    """The plan for every model x supported GPU x tool calling x weight source, at ``version``."""
    plans = []
    for model, gpu, tools, cache in product(MODEL_NAMES, CATALOG.values(), (True, False), (False, True)):
        if not gpu.supported:
            continue
        body: dict[str, Any] = {
            "model": model,
            "gpu": {"type": gpu.name},
            "serving": {"toolCalling": tools, "maxModelLen": 8192},
            # The version comes from the tag, as for the default images.
            "image": f"rocm/vllm:rocm7.14.0_vllm_{version}"
            if gpu.vendor == "amd"
            else f"vllm/vllm-openai:v{version}",
        }
        if cache:
            body["source"] = {"cache": {}}
        result = plan_deployment(ModelDeploymentSpec.model_validate(body))
        assert isinstance(result, Plan), (body, result)
        assert result.vllm_version == version
        plans.append((f"{model} on {gpu.name} (tools={tools}, cache={cache})", result))
    return plans


def _flags_and_values(args: list[str]) -> dict[str, str | None]:
    """{flag: the value after it, or None} for a vLLM argument list (``--f v`` or ``--f=v``)."""
    out: dict[str, str | None] = {}
    for i, arg in enumerate(args):
        if not arg.startswith("-"):
            continue
        flag, eq, value = arg.partition("=")
        if not eq:
            nxt = args[i + 1] if i + 1 < len(args) else None
            value = nxt if nxt is not None and not nxt.startswith("-") else ""
        out[flag] = value or None
    return out


@pytest.mark.parametrize("version", VERIFIED_VERSIONS)
def test_every_planned_flag_env_var_and_parser_exists_in_the_release(version):
    rel = vllm(version)
    problems = []
    for label, plan in _plans(version):
        flags = _flags_and_values(plan.args)
        problems += [f"{label}: vLLM {version} has no flag {f}" for f in flags if f not in rel.flags]
        for env in plan.env:
            if env.name not in rel.env_vars and env.name not in NOT_VLLM_ENV:
                problems.append(f"{label}: vLLM {version}'s envs.py has no {env.name}")
        checks = [
            ("--reasoning-parser", rel.reasoning_parsers),
            ("--tool-call-parser", rel.tool_parsers),
            ("--moe-backend", rel.moe_backends),
        ]
        for flag, registered in checks:
            if flag in flags and flags[flag] not in registered:
                problems.append(f"{label}: vLLM {version} has no {flag} {flags[flag]}")
    assert not problems, "\n".join(sorted(set(problems)))


@pytest.mark.parametrize("version", VERIFIED_VERSIONS)
def test_non_vllm_env_vars_really_are_not_vllm_s(version):
    # If vLLM starts defining one of these, it belongs to vLLM and must be checked like the rest.
    assert not set(NOT_VLLM_ENV) & vllm(version).env_vars


@pytest.mark.parametrize("version", VERIFIED_VERSIONS)
def test_managed_flags_are_flags_of_the_release(version):
    # A managed flag vLLM renamed would guard nothing; fail so the list follows vLLM.
    missing = [f for f in [*MANAGED_FLAGS, *MANAGED_SHORT_FLAGS] if f not in vllm(version).flags]
    assert not missing


def _shortest_unique_prefix(flag: str, flags: frozenset[str]) -> str | None:
    """The shortest prefix argparse (allow_abbrev) expands to ``flag``: no other option string starts with it."""
    lead = 2 if flag.startswith("--") else 1
    for n in range(lead + 1, len(flag) + 1):
        if {f for f in flags if f.startswith(flag[:n])} == {flag}:
            return flag[:n]
    return None


def test_abbreviation_table_matches_the_releases():
    expected: dict[str, str] = {}
    for flag in [*MANAGED_FLAGS, *MANAGED_SHORT_FLAGS]:
        prefixes = [p for v in VERIFIED_VERSIONS if (p := _shortest_unique_prefix(flag, vllm(v).flags))]
        if prefixes and min(prefixes, key=len) != flag:
            expected[flag] = min(prefixes, key=len)
    assert expected == SHORTEST_ABBREVIATIONS, (
        f"set SHORTEST_ABBREVIATIONS in api/managed_flags.py to {expected}"
    )


@pytest.mark.parametrize("version", VERIFIED_VERSIONS)
def test_every_prefix_argparse_would_expand_is_refused(version):
    # Walk every prefix of every managed flag; those this release expands to the flag must be refused.
    flags = vllm(version).flags
    for flag in [*MANAGED_FLAGS, *MANAGED_SHORT_FLAGS]:
        shortest = _shortest_unique_prefix(flag, flags) or flag
        for n in range(len(shortest), len(flag) + 1):
            prefix = flag[:n]
            assert managed_flags_in([prefix, f"{prefix}=1"]) == [prefix, f"{prefix}=1"], prefix
            if prefix.startswith("--"):
                underscored = "--" + prefix[2:].replace("-", "_")
                assert managed_flags_in([underscored]) == [underscored], underscored


def test_the_verified_releases_cover_the_range_and_each_flag_change():
    versions = [parse_version(v) for v in VERIFIED_VERSIONS]
    assert all(v is not None and is_supported(v) for v in versions)
    assert min(v for v in versions if v) == MIN_SUPPORTED
    assert max(v for v in versions if v)[:2] == MAX_SUPPORTED_MINOR
    assert MOE_BACKEND_FLAG_SINCE in versions
    assert any(
        v and v < MOE_BACKEND_FLAG_SINCE and v[:2] == (0, MOE_BACKEND_FLAG_SINCE[1] - 1) for v in versions
    )


def test_the_flag_change_is_where_the_release_says():
    # The planner switches from the env var to --moe-backend at MOE_BACKEND_FLAG_SINCE because
    # that release's envs.py dropped the variable; the release before still has it.
    before = vllm("0.23.0")
    since = vllm(format_version(MOE_BACKEND_FLAG_SINCE))
    assert "VLLM_USE_FLASHINFER_MOE_MXFP4_MXFP8" in before.env_vars
    assert "VLLM_USE_FLASHINFER_MOE_MXFP4_MXFP8" not in since.env_vars
    assert "flashinfer_trtllm" in since.moe_backends
