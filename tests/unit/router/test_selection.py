"""Route selection: residency first, eligibility, weights, overflow, fallback order, panic."""

from __future__ import annotations

from typing import Any

import pytest

from gptoss_operator.router.config import RouteConfig, parse_config
from gptoss_operator.router.load import Endpoint, LoadSample
from gptoss_operator.router.runtime import RouteRuntime, build_backend
from gptoss_operator.router.selection import (
    NoBackendError,
    plan_request,
    residency_rule,
    rule_label,
)

NOW = 1000.0


def make_route(overflow: bool = False, max_attempts: int = 3, **weights: int) -> RouteRuntime:
    backends: list[dict[str, Any]] = [
        {
            "name": "local",
            "weight": weights.get("local", 80),
            "cluster": {"endpoints": ["http://a:1", "http://b:1"]},
        },
        {
            "name": "hosted",
            "weight": weights.get("hosted", 20),
            "external": {"baseURL": "http://h/v1", "model": "m", "flavor": "cerebras"},
        },
        {
            "name": "other",
            "weight": weights.get("other", 0),
            "external": {"baseURL": "http://o/v1", "model": "m"},
        },
    ]
    doc: dict[str, Any] = {
        "model": "gpt-oss-20b",
        "backends": backends,
        "fallback": {"maxAttempts": max_attempts},
    }
    if overflow:
        doc["overflow"] = {"to": ["hosted", "other"], "when": {"queueDepthAbove": 4}}
    rc = RouteConfig.model_validate(doc)
    overflow_to = set(rc.overflow.to) if rc.overflow else set()
    runtimes = []
    for bc in rc.backends:
        b = build_backend(bc, bc.name in overflow_to)
        urls = bc.cluster.endpoints if bc.cluster and bc.cluster.endpoints else [bc.external.base_url]  # type: ignore[union-attr]
        b.endpoints = tuple(Endpoint(u, external=bc.external is not None) for u in urls)
        runtimes.append(b)
    return RouteRuntime(rc, tuple(runtimes))


def plan(route: RouteRuntime, rand: float = 0.0, **kw: Any) -> list[tuple[str, str]]:
    kw.setdefault("api", "chat")
    kw.setdefault("cluster_only", None)
    kw.setdefault("saturated", False)
    p = plan_request(route, now=NOW, stale_after=5.0, rand=rand, **kw)
    return [(a.backend.name, a.endpoint.url) for a in p.attempts]


def fresh(ep: Endpoint, waiting: float, running: float = 0, kv: float = 0.1) -> None:
    ep.record_scrape(LoadSample(waiting, running, kv), NOW - 1)


class TestWeightedSplit:
    def test_rand_below_the_first_weight_picks_it(self) -> None:
        r = make_route()
        assert plan(r, rand=0.79)[0][0] == "local"
        assert plan(r, rand=0.80)[0][0] == "hosted"

    def test_zero_weight_is_never_primary_but_is_a_fallback(self) -> None:
        r = make_route(max_attempts=10)
        names = [n for n, _ in plan(r, rand=0.99)]
        assert names[0] == "hosted"
        assert "other" in names

    def test_distribution_follows_weights(self) -> None:
        r = make_route()
        firsts = [plan(r, rand=i / 1000)[0][0] for i in range(1000)]
        assert firsts.count("hosted") == 200


class TestFallbackOrder:
    def test_primary_endpoints_first_then_other_backends_by_weight(self) -> None:
        r = make_route(max_attempts=10, other=5)
        assert [n for n, _ in plan(r, rand=0.0)] == ["local", "local", "hosted", "other"]

    def test_max_attempts_caps_the_plan(self) -> None:
        assert len(plan(make_route(max_attempts=1))) == 1
        assert len(plan(make_route(max_attempts=2))) == 2

    def test_ejected_endpoints_are_skipped(self) -> None:
        r = make_route(max_attempts=10)
        r.backends[0].endpoints[0].ejected_until = NOW + 5
        assert plan(r)[0] == ("local", "http://b:1")
        assert ("local", "http://a:1") not in plan(r)

    def test_a_backend_with_every_endpoint_ejected_is_skipped(self) -> None:
        r = make_route(max_attempts=10)
        for ep in r.backends[0].endpoints:
            ep.ejected_until = NOW + 5
        assert [n for n, _ in plan(r)] == ["hosted", "other"]

    def test_panic_mode_tries_ejected_endpoints_rather_than_refusing(self) -> None:
        r = make_route(max_attempts=10)
        for b in r.backends:
            for ep in b.endpoints:
                ep.ejected_until = NOW + 5
        p = plan_request(r, api="chat", cluster_only=None, saturated=False, now=NOW, stale_after=5, rand=0.0)
        assert p.panic
        assert len(p.attempts) == 4


class TestLoadAwareness:
    def test_least_loaded_fresh_endpoint_first(self) -> None:
        r = make_route()
        a, b = r.backends[0].endpoints
        fresh(a, waiting=5)
        fresh(b, waiting=1)
        assert plan(r)[:2] == [("local", "http://b:1"), ("local", "http://a:1")]

    def test_requests_sent_since_the_scrape_count_as_load(self) -> None:
        r = make_route()
        a, b = r.backends[0].endpoints
        fresh(a, waiting=1)
        fresh(b, waiting=0)
        b.inflight = 3  # sent after the scrape: b is now the busier one
        assert plan(r)[0] == ("local", "http://a:1")

    def test_stale_endpoints_rank_after_fresh_ones(self) -> None:
        r = make_route()
        a, b = r.backends[0].endpoints
        a.record_scrape(LoadSample(0, 0, 0.0), NOW - 60)  # stale, looked idle a minute ago
        fresh(b, waiting=10)
        assert plan(r)[0] == ("local", "http://b:1")

    def test_ties_rotate_with_rand(self) -> None:
        r = make_route()
        firsts = {plan(r, rand=x)[0][1] for x in (0.0, 0.1, 0.3, 0.5, 0.7)}
        assert firsts == {"http://a:1", "http://b:1"}


class TestOverflow:
    def test_saturated_pool_sends_traffic_to_overflow_targets(self) -> None:
        r = make_route(overflow=True, hosted=0)
        p = plan_request(r, api="chat", cluster_only=None, saturated=True, now=NOW, stale_after=5, rand=0.0)
        assert p.overflowed
        assert p.attempts[0].backend.name in ("hosted", "other")
        assert plan(r, saturated=False)[0][0] == "local"

    def test_residency_beats_overflow(self) -> None:
        r = make_route(overflow=True)
        names = [n for n, _ in plan(r, saturated=True, cluster_only="restricted")]
        assert names == ["local", "local"]


class TestEligibility:
    def test_cluster_only_removes_every_external_backend(self) -> None:
        r = make_route(max_attempts=10)
        assert {n for n, _ in plan(r, rand=0.99, cluster_only="restricted")} == {"local"}

    def test_cluster_only_with_no_cluster_backend_explains_itself(self) -> None:
        r = make_route()
        r.backends[0].endpoints = ()
        with pytest.raises(NoBackendError) as e:
            plan(r, cluster_only="restricted")
        msg = str(e.value)
        assert "residency rule 'restricted'" in msg
        assert "local: no ready endpoints" in msg
        assert "hosted: external, but residency rule 'restricted' allows cluster only" in msg

    def test_missing_key_and_responses_support(self) -> None:
        r = make_route(max_attempts=10, other=1)
        r.backends[2].unavailable = "API key file /k is missing"
        assert [n for n, _ in plan(r, api="responses")] == ["local", "local"]  # cerebras: no Responses
        r.backends[0].endpoints = ()
        with pytest.raises(
            NoBackendError, match="flavor 'cerebras' has no Responses API; other: API key file /k"
        ):
            plan(r, api="responses")


class TestResidencyRules:
    def rules(self) -> Any:
        return parse_config(
            """
version: 1
routes: [{model: m, backends: [{name: a, cluster: {endpoints: ["http://a:1"]}}]}]
residency:
- {name: public-ok, match: {headers: {x-tenant: acme}, models: [m]}, allow: any}
- {match: {headers: {x-data-class: restricted}}, allow: cluster}
"""
        ).residency

    def test_first_matching_rule_decides(self) -> None:
        rules = self.rules()
        hit = residency_rule(rules, "m", {"x-data-class": ["restricted"]})
        assert hit is not None
        assert hit.allow == "cluster"
        assert rule_label(hit, 1) == "x-data-class=restricted"
        first = residency_rule(rules, "m", {"x-tenant": ["acme"], "x-data-class": ["restricted"]})
        assert first is not None
        assert first.allow == "any"
        assert residency_rule(rules, "other-model", {"x-tenant": ["acme"]}) is None
        assert residency_rule(rules, "m", {"x-data-class": ["public"]}) is None

    def test_repeated_header_values_fail_closed(self) -> None:
        rules = parse_config(
            """
version: 1
routes: [{model: m, backends: [{name: a, cluster: {endpoints: ["http://a:1"]}}]}]
residency:
- {name: public, match: {headers: {x-data-class: public}}, allow: any}
- {name: restricted, match: {headers: {x-data-class: restricted}}, allow: cluster}
"""
        ).residency
        restricted = [
            ["restricted", "public"],
            ["public", "restricted"],
            ["public, restricted"],
            ["restricted,public"],
            ["public", "public,restricted"],
        ]
        for values in restricted:
            hit = residency_rule(rules, "m", {"x-data-class": values})
            assert hit is not None, values
            assert hit.allow == "cluster", values
        # Only a request whose every value is public is exempted by the allow: any rule.
        hit = residency_rule(rules, "m", {"x-data-class": ["public", "public"]})
        assert hit is not None
        assert hit.name == "public"
        assert residency_rule(rules, "m", {"x-data-class": ["other", "public"]}) is None
        assert residency_rule(rules, "m", {}) is None
