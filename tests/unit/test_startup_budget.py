"""startupProbe budget grows with model size and weight source (docs/gpt-oss-facts.md "Startup time")."""

from __future__ import annotations

import math

import pytest

from gptoss_operator.api import ModelDeploymentSpec
from gptoss_operator.planning import startup_budget
from gptoss_operator.planning.startup import ENGINE_INIT_SECONDS


def spec(model: str, cached: bool) -> ModelDeploymentSpec:
    body = {"model": model, "gpu": {"type": "H100-80GB"}}
    if cached:
        body["source"] = {"cache": {}}
    return ModelDeploymentSpec.model_validate(body)


def test_cached_weights_skip_the_download():
    b = startup_budget(spec("gpt-oss-120b", cached=True))
    assert b.download_seconds == 0
    assert b.engine_init_seconds == ENGINE_INIT_SECONDS
    assert b.failure_threshold == math.ceil(b.total_seconds / b.period_seconds)


def test_download_dominates_without_a_cache():
    # 65.3 GB at 12.5 MB/s (vLLM PR #30537) ~ 87 min.
    b = startup_budget(spec("gpt-oss-120b", cached=False))
    assert 5000 <= b.download_seconds <= 5500
    assert b.total_seconds > startup_budget(spec("gpt-oss-120b", cached=True)).total_seconds


@pytest.mark.parametrize("cached", [True, False])
def test_bigger_model_gets_more_time(cached):
    assert (
        startup_budget(spec("gpt-oss-120b", cached)).total_seconds
        > startup_budget(spec("gpt-oss-20b", cached)).total_seconds
    )


def test_never_shorter_than_ten_minutes():
    # A budget below the cold-compile allowance would kill pods that are still loading.
    assert startup_budget(spec("gpt-oss-20b", cached=True)).total_seconds >= 600
