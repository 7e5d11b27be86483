"""vLLM /metrics parsing, passive health, saturation hysteresis and staleness."""

from __future__ import annotations

import pytest

from gptoss_operator.router.load import (
    Endpoint,
    LoadSample,
    MetricsParseError,
    next_saturation,
    parse_vllm_metrics,
)

VLLM = """# HELP vllm:num_requests_waiting Number of requests waiting to be processed.
# TYPE vllm:num_requests_waiting gauge
vllm:num_requests_waiting{engine="0",model_name="openai/gpt-oss-120b"} 3.0
vllm:num_requests_waiting{engine="1",model_name="openai/gpt-oss-120b"} 4.0
vllm:num_requests_running{engine="0",model_name="openai/gpt-oss-120b"} 10.0
vllm:num_requests_running{engine="1",model_name="openai/gpt-oss-120b"} 6.0
vllm:kv_cache_usage_perc{engine="0",model_name="openai/gpt-oss-120b"} 0.5
vllm:kv_cache_usage_perc{engine="1",model_name="openai/gpt-oss-120b"} 0.7
vllm:num_requests_waiting_by_reason{engine="0",reason="capacity"} 99.0
vllm:request_success_total{engine="0",finished_reason="stop"} 12.0
"""


class TestParse:
    def test_counts_sum_over_engines_and_kv_is_the_mean(self) -> None:
        s = parse_vllm_metrics(VLLM)
        assert (s.waiting, s.running) == (7.0, 16.0)
        assert s.kv_usage == pytest.approx(0.6)

    def test_deprecated_kv_name_and_unlabelled_series(self) -> None:
        text = "vllm:num_requests_waiting 2\nvllm:num_requests_running 1\nvllm:gpu_cache_usage_perc 0.25\n"
        assert parse_vllm_metrics(text) == LoadSample(2.0, 1.0, 0.25)

    def test_current_kv_name_wins_over_the_deprecated_one(self) -> None:
        text = "vllm:num_requests_waiting 0\nvllm:gpu_cache_usage_perc 0.9\nvllm:kv_cache_usage_perc 0.1\n"
        assert parse_vllm_metrics(text).kv_usage == 0.1

    def test_nan_and_garbage_values_are_ignored(self) -> None:
        text = 'vllm:num_requests_waiting NaN\nvllm:num_requests_waiting{engine="1"} 2\nvllm:num_requests_running x\n'
        s = parse_vllm_metrics(text)
        assert (s.waiting, s.running, s.kv_usage) == (2.0, 0.0, None)

    def test_not_a_vllm_server(self) -> None:
        with pytest.raises(MetricsParseError):
            parse_vllm_metrics("process_cpu_seconds_total 1\n")


class TestPassiveHealth:
    def fail(self, ep: Endpoint, now: float = 0.0, **kw: object) -> bool:
        return ep.record_failure(now=now, failures_to_eject=3, cooldown=10.0, **kw)  # type: ignore[arg-type]

    def test_nth_consecutive_failure_ejects_for_the_cooldown(self) -> None:
        ep = Endpoint("http://a")
        assert not self.fail(ep)
        assert not self.fail(ep)
        assert self.fail(ep, now=5.0)
        assert not ep.healthy(14.9)
        assert ep.healthy(15.0)

    def test_success_resets_the_count(self) -> None:
        ep = Endpoint("http://a")
        self.fail(ep)
        self.fail(ep)
        ep.record_success()
        assert not self.fail(ep)

    def test_immediate_and_retry_after(self) -> None:
        ep = Endpoint("http://a")
        assert self.fail(ep, immediate=True)
        assert ep.ejected_until == 10.0
        other = Endpoint("http://b")
        assert self.fail(other, retry_after=42.0)
        assert other.ejected_until == 42.0

    def test_half_open_after_cooldown(self) -> None:
        ep = Endpoint("http://a")
        self.fail(ep, immediate=True)
        assert ep.healthy(11.0)
        assert self.fail(ep, now=11.0), "the first failure after a cooldown ejects again"


def ep_with(waiting: float, kv: float = 0.1, at: float = 99.0, healthy: bool = True) -> Endpoint:
    ep = Endpoint("http://x")
    ep.record_scrape(LoadSample(waiting, 0, kv), at)
    if not healthy:
        ep.ejected_until = 1e9
    return ep


def sat(pool: list[Endpoint], was: bool) -> bool:
    return next_saturation(
        pool, was_saturated=was, now=100.0, stale_after=5.0, enter=(4, 0.9), leave=(1, 0.8)
    )


class TestSaturation:
    def test_saturated_only_when_no_endpoint_has_headroom(self) -> None:
        assert not sat([ep_with(10), ep_with(2)], was=False)
        assert sat([ep_with(10), ep_with(5)], was=False)
        assert sat([ep_with(0, kv=0.95)], was=False)

    def test_hysteresis(self) -> None:
        assert sat([ep_with(3)], was=True), "below entry (4) but above recovery (1): stay saturated"
        assert not sat([ep_with(1, kv=0.5)], was=True)
        assert sat([ep_with(1, kv=0.85)], was=True), "kv must also drop below its recovery mark"

    def test_stale_and_ejected_endpoints_have_no_headroom(self) -> None:
        assert sat([ep_with(0, at=90.0)], was=False)
        assert sat([ep_with(0, healthy=False)], was=False)
        assert sat([Endpoint("http://never-scraped")], was=False)
        assert sat([], was=False)
