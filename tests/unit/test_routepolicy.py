"""RoutePolicy models: defaults, the same refusals as the CRD's CEL rules, and the names shared with the router."""

from __future__ import annotations

from typing import Any, get_args

import pytest
from pydantic import ValidationError

from gptoss_operator.api import (
    ROUTE_POLICY_KIND,
    ROUTE_POLICY_PLURAL,
    BackendStatus,
    RoutePolicy,
    backends_ready_text,
    describe_validation_error,
    duration_seconds,
)
from gptoss_operator.api.durations import DURATION_REGEX
from gptoss_operator.api.routing_names import FALLBACK_TRIGGERS, FLAVOR_NAMES, RESIDENCY_SCOPES
from gptoss_operator.router.config import FailureKind, ResidencyRule
from gptoss_operator.router.config import parse_duration as router_parse_duration
from gptoss_operator.router.providers import FLAVORS
from tests.support.routepolicies import REFUSED, Refusal, route_policy


def error_of(raw: dict[str, Any]) -> str:
    with pytest.raises(ValidationError) as info:
        RoutePolicy.model_validate(raw)
    return describe_validation_error(info.value)


class TestParsing:
    def test_the_design_example_parses(self):
        policy = RoutePolicy.model_validate(route_policy())
        route = policy.spec.routes[0]
        assert [b.name for b in route.backends] == ["local", "hosted"]
        assert route.backends[0].model_deployment is not None
        assert route.backends[0].in_cluster
        assert route.backends[1].external is not None
        assert route.backends[1].external.base_url == "https://provider.example/v1"
        assert not route.backends[1].in_cluster
        assert route.overflow is not None
        assert route.overflow.to == "hosted"
        assert route.overflow.when.kv_cache_usage_above == 0.9
        assert policy.spec.residency[0].allow == "cluster"
        assert policy.spec.residency[0].match.headers == {"x-data-class": "restricted"}

    def test_defaults(self):
        raw = route_policy()
        raw["spec"] = {"routes": [{"model": "m", "backends": [{"name": "a", "service": {"name": "vllm"}}]}]}
        spec = RoutePolicy.model_validate(raw).spec
        assert (spec.router.replicas, spec.router.port, spec.router.service_type) == (2, 8080, "ClusterIP")
        route = spec.routes[0]
        assert route.backends[0].weight == 1
        assert route.backends[0].service is not None
        assert route.backends[0].service.port == "http"
        assert route.fallback.on == ["connectError", "timeout", "5xx", "429"]
        assert route.fallback.max_attempts == 2
        assert (route.timeouts.connect, route.timeouts.first_byte, route.timeouts.idle) == (
            "2s",
            "60s",
            "30s",
        )
        assert route.overflow is None
        assert spec.residency == []

    def test_timeouts_in_seconds(self):
        raw = route_policy()
        raw["spec"]["routes"][0]["timeouts"] = {"connect": "500ms", "firstByte": "1.5m", "idle": "1h"}
        timeouts = RoutePolicy.model_validate(raw).spec.routes[0].timeouts
        assert tuple(duration_seconds(t) for t in (timeouts.connect, timeouts.first_byte, timeouts.idle)) == (
            0.5,
            90.0,
            3600.0,
        )

    def test_unquoted_429_from_yaml_is_the_trigger_429(self):
        # kubectl (YAML 1.1) and yaml.safe_load both read `429` as a number.
        raw = route_policy()
        raw["spec"]["routes"][0]["fallback"]["on"] = ["5xx", 429]
        assert RoutePolicy.model_validate(raw).spec.routes[0].fallback.on == ["5xx", "429"]

    def test_service_port_by_number(self):
        raw = route_policy()
        raw["spec"]["routes"][0]["backends"][0] = {"name": "local", "service": {"name": "vllm", "port": 8000}}
        backend = RoutePolicy.model_validate(raw).spec.routes[0].backends[0]
        assert backend.service is not None
        assert backend.service.port == 8000

    def test_status_round_trips_with_camel_case(self):
        raw = route_policy()
        raw["status"] = {
            "observedGeneration": 1,
            "conditions": [{"type": "Ready", "status": "True"}],
            "endpoint": "http://chat-router.llm.svc:8080/v1",
            "backends": [
                {"route": "gpt-oss-120b", "name": "local", "ready": True},
                {"route": "gpt-oss-120b", "name": "hosted", "ready": False, "reason": "SecretMissing"},
            ],
            "routeCount": 1,
            "readyText": "1/2",
        }
        policy = RoutePolicy.model_validate(raw)
        assert policy.status is not None
        assert policy.status.backends[1].reason == "SecretMissing"
        dumped = policy.model_dump(by_alias=True, exclude_none=True)
        assert dumped["status"]["readyText"] == "1/2"
        assert (
            dumped["spec"]["routes"][0]["backends"][1]["external"]["baseURL"] == "https://provider.example/v1"
        )
        assert RoutePolicy.model_validate(dumped) == policy

    def test_ready_text(self):
        statuses = [
            BackendStatus(route="m", name="a", ready=True),
            BackendStatus(route="m", name="b", ready=False),
            BackendStatus(route="n", name="a", ready=True),
        ]
        assert backends_ready_text(statuses) == "2/3"
        assert backends_ready_text([]) == "0/0"

    def test_kind_and_plural(self):
        assert (ROUTE_POLICY_KIND, ROUTE_POLICY_PLURAL) == ("RoutePolicy", "routepolicies")


class TestRefusals:
    """The same bodies the API server refuses (tests/cluster/test_routepolicy_api.py)."""

    @pytest.mark.parametrize("case", REFUSED, ids=[c.id for c in REFUSED])
    def test_refused_with_the_field_and_the_rule_message(self, case: Refusal):
        message = error_of(case.body())
        assert message.startswith(case.path + ":"), message
        assert (case.model_message or case.message) in message

    def test_messages_name_the_offending_values(self):
        raw = route_policy()
        raw["spec"]["routes"][0]["overflow"]["to"] = "ghost"
        assert "'ghost' is not one of local, hosted" in error_of(raw)
        raw = route_policy()
        raw["spec"]["routes"][0]["timeouts"]["connect"] = "soon"
        assert "(got 'soon')" in error_of(raw)


class TestDurations:
    @pytest.mark.parametrize(
        ("text", "seconds"),
        [("2s", 2.0), ("500ms", 0.5), ("1m", 60.0), ("1.5h", 5400.0), ("0.25s", 0.25), ("10ms", 0.01)],
    )
    def test_parse(self, text, seconds):
        assert duration_seconds(text) == seconds
        # The router's own parser reads the same strings the same way.
        assert router_parse_duration(text) == seconds

    @pytest.mark.parametrize("text", ["", "2", "soon", "0s", "0ms", "-1s", "1m30s", "2 s", "1d", ".5s", "2S"])
    def test_refuse(self, text):
        with pytest.raises(ValueError, match=r"duration|longer than zero"):
            duration_seconds(text)

    def test_regex_is_re2_compatible(self):
        # CEL's matches() is RE2: no lookarounds or backreferences.
        for construct in ("(?=", "(?!", "(?<", "\\1"):
            assert construct not in DURATION_REGEX


class TestNamesSharedWithTheRouter:
    """api/ may not import the router; these keep the two vocabularies equal."""

    def test_flavors(self):
        assert set(FLAVOR_NAMES) == set(FLAVORS)

    def test_fallback_triggers(self):
        assert list(FALLBACK_TRIGGERS) == [k.value for k in FailureKind]

    def test_residency_scopes(self):
        assert set(RESIDENCY_SCOPES) == set(get_args(ResidencyRule.model_fields["allow"].annotation))
