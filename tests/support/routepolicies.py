"""RoutePolicy bodies shared by the model tests and the API-server tests.

Every entry of :data:`REFUSED` is refused twice with the same words: by the pydantic models
(offline, tests/unit) and by the CRD's CEL rules on the real API server (tests/cluster).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gptoss_operator.api import routepolicy as rp


def route_policy(name: str = "chat") -> dict[str, Any]:
    """The design's example: a ModelDeployment split 80/20 with a hosted provider."""
    return {
        "apiVersion": "gptoss.dev/v1alpha1",
        "kind": "RoutePolicy",
        "metadata": {"name": name},
        "spec": {
            "router": {"replicas": 2, "port": 8080, "serviceType": "ClusterIP"},
            "routes": [
                {
                    "model": "gpt-oss-120b",
                    "backends": [
                        {"name": "local", "modelDeployment": {"name": "oss-120b"}, "weight": 80},
                        {
                            "name": "hosted",
                            "weight": 20,
                            "external": {
                                "baseURL": "https://provider.example/v1",
                                "model": "openai/gpt-oss-120b",
                                "apiKeySecretRef": {"name": "provider-key", "key": "apiKey"},
                                "flavor": "openai",
                            },
                        },
                    ],
                    "overflow": {"to": "hosted", "when": {"queueDepthAbove": 16, "kvCacheUsageAbove": 0.9}},
                    "fallback": {"on": ["connectError", "timeout", "5xx", "429"], "maxAttempts": 2},
                    "timeouts": {"connect": "2s", "firstByte": "60s", "idle": "30s"},
                }
            ],
            "residency": [{"match": {"headers": {"x-data-class": "restricted"}}, "allow": "cluster"}],
        },
    }


Body = dict[str, Any]


def _route(body: Body) -> dict[str, Any]:
    route: dict[str, Any] = body["spec"]["routes"][0]
    return route


def _set(path: str, value: Any) -> Callable[[Body], None]:
    """A mutation setting ``a.b.0.c`` (dots; digits index lists) below ``spec.routes[0]``."""

    def apply(body: Body) -> None:
        node: Any = _route(body)
        *parents, last = path.split(".")
        for part in parents:
            node = node[int(part)] if part.isdigit() else node[part]
        if last.isdigit():
            node[int(last)] = value
        else:
            node[last] = value

    return apply


def _spec(key: str, value: Any) -> Callable[[Body], None]:
    def apply(body: Body) -> None:
        body["spec"][key] = value

    return apply


def _name(value: str) -> Callable[[Body], None]:
    def apply(body: Body) -> None:
        body["metadata"]["name"] = value

    return apply


def _both_kinds(body: Body) -> None:
    _route(body)["backends"][1]["service"] = {"name": "vllm"}


def _no_kind(body: Body) -> None:
    del _route(body)["backends"][1]["external"]


def _all_weights_zero(body: Body) -> None:
    for backend in _route(body)["backends"]:
        backend["weight"] = 0


def _duplicate_route(body: Body) -> None:
    body["spec"]["routes"].append(copy.deepcopy(_route(body)))


def _only_external_pool(body: Body) -> None:
    # overflow.to is the only in-cluster backend: nothing is left whose load could trigger it.
    _route(body)["overflow"]["to"] = "local"


@dataclass(frozen=True)
class Refusal:
    id: str
    mutate: Callable[[Body], None]
    message: str  # the API server's message (the CEL rule's), also in the models' error
    path: str  # where the models report it (describe_validation_error's field path)
    model_message: str | None = None  # when the models word it differently (enum errors)

    def body(self) -> Body:
        body = route_policy()
        self.mutate(body)
        return body


REFUSED: tuple[Refusal, ...] = (
    Refusal("no-routes", _spec("routes", []), rp.MSG_SOME_ROUTE, "spec.routes"),
    Refusal("no-backends", _set("backends", []), rp.MSG_SOME_BACKEND, "spec.routes[0].backends"),
    Refusal("duplicate-route-model", _duplicate_route, rp.MSG_UNIQUE_MODELS, "spec.routes"),
    Refusal(
        "duplicate-backend-name",
        _set("backends.1.name", "local"),
        rp.MSG_UNIQUE_BACKENDS,
        "spec.routes[0].backends",
    ),
    Refusal(
        "weight-above-100", _set("backends.0.weight", 101), rp.MSG_WEIGHT, "spec.routes[0].backends[0].weight"
    ),
    Refusal(
        "weight-negative", _set("backends.0.weight", -1), rp.MSG_WEIGHT, "spec.routes[0].backends[0].weight"
    ),
    Refusal("all-weights-zero", _all_weights_zero, rp.MSG_SOME_WEIGHT, "spec.routes[0].backends"),
    Refusal("two-kinds", _both_kinds, rp.MSG_ONE_KIND, "spec.routes[0].backends[1]"),
    Refusal("no-kind", _no_kind, rp.MSG_ONE_KIND, "spec.routes[0].backends[1]"),
    Refusal("overflow-to-unknown", _set("overflow.to", "ghost"), rp.MSG_OVERFLOW_TO, "spec.routes[0]"),
    Refusal("overflow-without-pool", _only_external_pool, rp.MSG_OVERFLOW_POOL, "spec.routes[0]"),
    Refusal(
        "overflow-without-threshold",
        _set("overflow.when", {}),
        rp.MSG_OVERFLOW_WHEN,
        "spec.routes[0].overflow",
    ),
    Refusal(
        "fallback-repeated-trigger",
        _set("fallback.on", ["timeout", "timeout"]),
        rp.MSG_FALLBACK_ON,
        "spec.routes[0].fallback.on",
    ),
    Refusal(
        "fallback-unknown-trigger",
        _set("fallback.on", ["timeout", 404]),
        rp.MSG_TRIGGER,
        "spec.routes[0].fallback.on[1]",
        model_message="Input should be 'connectError', 'timeout', '5xx' or '429'",
    ),
    Refusal(
        "duration-not-a-duration",
        _set("timeouts.connect", "soon"),
        "timeouts.connect must be a positive duration",
        "spec.routes[0].timeouts.connect",
    ),
    Refusal(
        "duration-zero",
        _set("timeouts.firstByte", "0s"),
        "timeouts.firstByte must be a positive duration",
        "spec.routes[0].timeouts.firstByte",
    ),
    Refusal(
        "duration-without-unit",
        _set("timeouts.idle", "30"),
        "timeouts.idle must be a positive duration",
        "spec.routes[0].timeouts.idle",
    ),
    Refusal(
        "duration-compound",
        _set("timeouts.idle", "1m30s"),
        "timeouts.idle must be a positive duration",
        "spec.routes[0].timeouts.idle",
    ),
    Refusal(
        "residency-allow",
        _spec("residency", [{"match": {"headers": {"x-data-class": "restricted"}}, "allow": "nowhere"}]),
        rp.MSG_ALLOW,
        "spec.residency[0].allow",
        model_message="Input should be 'cluster' or 'any'",
    ),
    Refusal(
        "residency-unknown-model",
        _spec("residency", [{"match": {"models": ["gpt-oss-7b"]}, "allow": "cluster"}]),
        rp.MSG_RESIDENCY_MODELS,
        "spec",
    ),
    Refusal(
        "base-url-scheme",
        _set("backends.1.external.baseURL", "ftp://provider.example/v1"),
        rp.MSG_BASE_URL,
        "spec.routes[0].backends[1].external.baseURL",
    ),
    Refusal(
        "base-url-empty",
        _set("backends.1.external.baseURL", ""),
        rp.MSG_BASE_URL,
        "spec.routes[0].backends[1].external.baseURL",
    ),
    Refusal(
        "service-port-zero",
        _set("backends.0", {"name": "local", "service": {"name": "vllm", "port": 0}}),
        rp.MSG_PORT,
        "spec.routes[0].backends[0].service.port",
    ),
    Refusal(
        "service-port-name",
        _set("backends.0", {"name": "local", "service": {"name": "vllm", "port": "Http_Port"}}),
        rp.MSG_PORT,
        "spec.routes[0].backends[0].service.port",
    ),
    Refusal("name-with-dot", _name("chat.v1"), rp.MSG_NAME, "metadata"),
    Refusal("name-too-long", _name("c" * (rp.MAX_NAME_LENGTH + 1)), rp.MSG_NAME, "metadata"),
)
