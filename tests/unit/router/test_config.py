"""The configuration file model: what is accepted, and that every refusal says where and why."""

from __future__ import annotations

import json
from typing import Any

import pytest

from gptoss_operator.router.config import ConfigError, parse_config, parse_duration


def minimal(**route: Any) -> dict[str, Any]:
    r = {
        "model": "gpt-oss-20b",
        "backends": [{"name": "local", "cluster": {"endpoints": ["http://10.0.0.1:8000/v1/"]}}],
    }
    r.update(route)
    return {"version": 1, "routes": [r]}


def parse(doc: dict[str, Any]) -> Any:
    return parse_config(json.dumps(doc))


class TestDurations:
    @pytest.mark.parametrize(
        ("text", "seconds"),
        [("2s", 2.0), ("500ms", 0.5), ("1m", 60.0), ("1.5h", 5400.0), (3, 3.0), ("7", 7.0)],
    )
    def test_accepted(self, text: Any, seconds: float) -> None:
        assert parse_duration(text) == seconds

    @pytest.mark.parametrize("text", ["0s", "-1s", "fast", True, None, "2 weeks"])
    def test_refused(self, text: Any) -> None:
        with pytest.raises(ValueError, match="duration"):
            parse_duration(text)


class TestAccepted:
    def test_defaults_are_filled_in(self) -> None:
        cfg = parse(minimal())
        r = cfg.routes[0]
        assert r.backends[0].cluster is not None
        assert r.backends[0].cluster.endpoints == ["http://10.0.0.1:8000"]  # /v1 and / dropped
        assert (r.timeouts.connect, r.timeouts.first_byte, r.timeouts.idle) == (2.0, 60.0, 30.0)
        assert r.fallback.max_attempts == 2
        assert [k.value for k in r.fallback.on] == ["connectError", "timeout", "5xx", "429"]
        assert cfg.server.scrape.stale_after == 5.0

    def test_yaml_with_the_full_shape(self) -> None:
        cfg = parse_config(
            """
version: 1
server: {maxBodyBytes: 65536, scrape: {interval: 250ms, staleAfter: 2s}, health: {failuresToEject: 2, cooldown: 5s}}
routes:
- model: gpt-oss-120b
  backends:
  - {name: local, weight: 80, cluster: {service: {name: oss-120b, namespace: llm}}}
  - name: hosted
    weight: 20
    external: {baseURL: "https://provider.example/v1/", model: openai/gpt-oss-120b, apiKeyFile: /keys/k, flavor: groq}
  overflow: {to: hosted, when: {queueDepthAbove: 16, kvCacheUsageAbove: 0.9}}
  fallback: {on: [connectError, 5xx], maxAttempts: 3}
  timeouts: {connect: 1s, firstByte: 30s, idle: 10s}
residency:
- {name: restricted, match: {headers: {X-Data-Class: restricted}}, allow: cluster}
"""
        )
        r = cfg.routes[0]
        assert r.overflow is not None
        assert r.overflow.to == ["hosted"]
        queue, kv = r.overflow.recovery()
        assert queue == 8
        assert kv == pytest.approx(0.8)
        ext = r.backend("hosted").external
        assert ext is not None
        assert ext.base_url == "https://provider.example/v1"
        assert cfg.residency[0].match.headers == {"x-data-class": "restricted"}  # names lower-cased
        svc = r.backend("local").cluster
        assert svc is not None
        assert svc.service is not None
        assert svc.service.port == "http"
        dumped = json.loads(json.dumps(cfg.model_dump(by_alias=True, exclude_none=True, mode="json")))
        assert dumped["routes"][0]["backends"][1]["external"]["baseURL"]


class TestRefused:
    @pytest.mark.parametrize(
        ("doc", "message"),
        [
            ({"version": 2, "routes": []}, "unsupported config version 2"),
            ({"routes": []}, "missing 'version': add `version: 1`"),
            ([1, 2], "must hold a mapping"),
            (minimal(backends=[]), "routes[0].backends"),
            (
                minimal(
                    backends=[
                        {
                            "name": "a",
                            "cluster": {"endpoints": []},
                            "external": {"baseURL": "http://x", "model": "m"},
                        }
                    ]
                ),
                "exactly one of 'cluster' or 'external'",
            ),
            (minimal(backends=[{"name": "a", "cluster": {}}]), "exactly one of 'endpoints'"),
            (
                minimal(backends=[{"name": "a", "cluster": {"endpoints": ["10.0.0.1:8000"]}}]),
                "must start with http",
            ),
            (
                minimal(
                    backends=[
                        {"name": "a", "external": {"baseURL": "http://x", "model": "m", "flavor": "nope"}}
                    ]
                ),
                "unknown flavor 'nope'",
            ),
            (minimal(overflow={"to": "ghost", "when": {"queueDepthAbove": 1}}), "unknown backends ['ghost']"),
            (minimal(overflow={"to": "local", "when": {}}), "needs queueDepthAbove"),
            (minimal(timeouts={"connect": "soon"}), "routes[0].timeouts.connect"),
            (minimal(fallback={"on": ["4xx"]}), "routes[0].fallback.on[0]"),
            (minimal(surprise=1), "Extra inputs are not permitted"),
        ],
    )
    def test_message_names_the_problem(self, doc: Any, message: str) -> None:
        with pytest.raises(ConfigError) as e:
            parse(doc)
        assert message in str(e.value)

    def test_duplicate_backends_and_routes(self) -> None:
        b = {"name": "a", "cluster": {"endpoints": ["http://x:1"]}}
        with pytest.raises(ConfigError, match=r"duplicate backend names \['a'\]"):
            parse(minimal(backends=[b, b]))
        doc = minimal()
        doc["routes"].append(doc["routes"][0])
        with pytest.raises(ConfigError, match="duplicate routes"):
            parse(doc)

    def test_all_zero_weights(self) -> None:
        with pytest.raises(ConfigError, match="weight above 0"):
            parse(minimal(backends=[{"name": "a", "weight": 0, "cluster": {"endpoints": ["http://x:1"]}}]))

    def test_overflow_needs_an_in_cluster_pool_with_metrics(self) -> None:
        ext = {"name": "h", "external": {"baseURL": "http://h", "model": "m"}}
        with pytest.raises(ConfigError, match=r"in-cluster backend outside overflow\.to"):
            parse(minimal(backends=[ext], overflow={"to": "h", "when": {"queueDepthAbove": 1}}))
        blind = {"name": "l", "cluster": {"endpoints": ["http://x:1"], "metrics": False}}
        with pytest.raises(ConfigError, match="metrics"):
            parse(minimal(backends=[blind, ext], overflow={"to": "h", "when": {"queueDepthAbove": 1}}))

    def test_bad_yaml(self) -> None:
        with pytest.raises(ConfigError) as e:
            parse_config("version: 1\nroutes: [")
        # One line with line:column, not PyYAML's multi-line parser trace.
        assert str(e.value).startswith("invalid YAML at line 2, column 10: ")
        assert "\n" not in str(e.value)
