"""RoutePolicy ``gptoss.dev/v1alpha1``: one OpenAI-compatible endpoint over in-cluster and hosted backends.

A RoutePolicy is the Kubernetes form of the router configuration file (docs/router.md): the
operator resolves it (ModelDeployments and Services to EndpointSlice references, Secrets to
mounted key files, durations to seconds) into that file. Names follow the file: ``overflow``,
``fallback``, ``timeouts``, ``residency``, ``flavor``.

Every rule the API server enforces (``x-kubernetes-validations``) is mirrored by a pydantic
validator with the same message, so a body that bypassed admission, or a manifest checked
offline, fails the same way and names the field. Lists and strings carry ``maxItems`` /
``maxLength`` because the API server refuses a CRD whose CEL rules it cannot bound in cost
(Kubernetes docs, "Validation rules": "Resource use by validation functions").
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Final, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from gptoss_operator.api.durations import DURATION_MAX_LENGTH, duration_rule, duration_seconds
from gptoss_operator.api.routing_names import FallbackTrigger, FlavorName, ResidencyScope
from gptoss_operator.api.v1alpha1 import API_VERSION, Condition, ready_text

KIND: Final = "RoutePolicy"
PLURAL: Final = "routepolicies"
SINGULAR: Final = "routepolicy"

# The router's Deployment, Service and ConfigMap are named <name>-router; a Service name is a
# DNS-1035 label of at most 63 characters (Kubernetes docs, "Object Names and IDs").
ROUTER_NAME_SUFFIX: Final = "-router"
MAX_NAME_LENGTH: Final = 63 - len(ROUTER_NAME_SUFFIX)

# Bounds for the CEL cost estimator; generous for a router config a person writes by hand.
MAX_ROUTES: Final = 32
MAX_BACKENDS: Final = 16
MAX_RESIDENCY_RULES: Final = 32
MAX_HEADERS: Final = 16
MAX_NAME: Final = 63
MAX_MODEL: Final = 256
MAX_URL: Final = 2048
MAX_WEIGHT: Final = 100
MAX_ATTEMPTS: Final = 10

# Backend names appear in metrics labels, logs and response headers (docs/router.md).
BACKEND_NAME_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"
# Kubernetes port names (IANA_SVC_NAME): lower-case letters, digits and '-', at most 15.
PORT_NAME_PATTERN: Final = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
# DNS-1035 label: what a Service name must be.
DNS_LABEL_PATTERN: Final = "^[a-z]([-a-z0-9]*[a-z0-9])?$"

CONDITION_READY: Final = "Ready"
CONDITION_DEGRADED: Final = "Degraded"

# One message per rule, shared by the CEL rule and the pydantic validator.
MSG_NAME: Final = (
    f"metadata.name must be a DNS label (lower-case letters, digits and '-', starting with a letter) "
    f"of at most {MAX_NAME_LENGTH} characters: it names the router Service <name>{ROUTER_NAME_SUFFIX}"
)
MSG_ONE_KIND: Final = "a backend sets exactly one of modelDeployment, service or external"
MSG_WEIGHT: Final = f"weight must be between 0 and {MAX_WEIGHT}"
MSG_SOME_WEIGHT: Final = "at least one backend of a route needs a weight above 0"
MSG_SOME_BACKEND: Final = "a route needs at least one backend"
MSG_UNIQUE_BACKENDS: Final = "backend names must be unique within a route"
MSG_SOME_ROUTE: Final = "spec.routes needs at least one route"
MSG_UNIQUE_MODELS: Final = "each route needs its own model: two routes name the same model"
MSG_OVERFLOW_TO: Final = "overflow.to must name a backend of the same route"
MSG_OVERFLOW_POOL: Final = (
    "overflow needs an in-cluster backend (modelDeployment or service) other than overflow.to: "
    "its load decides when to spill"
)
MSG_OVERFLOW_WHEN: Final = "overflow.when needs queueDepthAbove and/or kvCacheUsageAbove"
MSG_FALLBACK_ON: Final = "fallback.on lists each trigger at most once: connectError, timeout, 5xx, 429"
MSG_TRIGGER: Final = "fallback.on takes connectError, timeout, 5xx and 429"
MSG_ALLOW: Final = "residency allow must be cluster (in-cluster backends only) or any"
MSG_RESIDENCY_MODELS: Final = "residency match.models must name models of spec.routes"
MSG_BASE_URL: Final = "external.baseURL must start with http:// or https://"
MSG_PORT: Final = (
    "service.port must be a port number 1-65535 or a port name (lower-case, at most 15 characters)"
)


def _rules(*rules: tuple[str, str] | tuple[str, str, str]) -> dict[str, Any]:
    """``x-kubernetes-validations`` from (rule, message[, fieldPath]); fieldPath makes the API server
    report the error at that field instead of the object carrying the rule (Kubernetes 1.28+)."""
    out = []
    for rule, message, *field_path in rules:
        entry = {"rule": rule, "message": message}
        if field_path:
            entry["fieldPath"] = field_path[0]
        out.append(entry)
    return {"x-kubernetes-validations": out}


class _Model(BaseModel):
    """camelCase on the wire, snake_case in Python; unknown fields are ignored (the API server prunes them)."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore", frozen=True)


def _duration_field(name: str, default: str, what: str) -> Any:
    return Field(
        default=default,
        max_length=DURATION_MAX_LENGTH,
        description=f"{what} A number and a unit ms, s, m or h, e.g. 500ms, 2s, 1m. Default {default}.",
        json_schema_extra=_rules(duration_rule(f"timeouts.{name}")),
    )


class RouterSpec(_Model):
    """The router Deployment and Service the operator runs for this policy."""

    replicas: int = Field(
        default=2,
        ge=0,
        le=100,
        description=(
            "Router pods. Default 2, so one pod can be drained or rescheduled while the other serves; "
            "0 runs no router pods."
        ),
    )
    port: int = Field(default=8080, ge=1, le=65535, description="Port of the router Service. Default 8080.")
    service_type: Literal["ClusterIP", "NodePort", "LoadBalancer"] = Field(
        default="ClusterIP",
        description="Type of the router Service: ClusterIP (default), NodePort or LoadBalancer.",
    )


class ModelDeploymentRef(_Model):
    """A ModelDeployment in the RoutePolicy's namespace."""

    name: str = Field(
        min_length=1,
        max_length=MAX_NAME,
        description=(
            "Name of the ModelDeployment. The router sends requests to the pods behind its Service "
            "(found through EndpointSlices) and scrapes their vLLM metrics for load."
        ),
    )


PortRef = Annotated[
    int | str,
    WithJsonSchema(
        {
            "x-kubernetes-int-or-string": True,
            "maxLength": 15,
            "x-kubernetes-validations": [
                {
                    "rule": (
                        "type(self) == int ? self >= 1 && self <= 65535 "
                        f": self.size() <= 15 && self.matches('{PORT_NAME_PATTERN}')"
                    ),
                    "message": MSG_PORT,
                }
            ],
        }
    ),
]


class ServiceRef(_Model):
    """A Service in the RoutePolicy's namespace whose pods serve the OpenAI API (vLLM or compatible)."""

    name: str = Field(min_length=1, max_length=MAX_NAME, description="Name of the Service.")
    port: PortRef = Field(
        default="http",
        description=(
            "The Service port to use: its name (as in the Service's spec.ports[].name; EndpointSlices carry "
            "it) or its number (int-or-string). Default http."
        ),
    )

    @field_validator("port")
    @classmethod
    def _port(cls, value: int | str) -> int | str:
        if isinstance(value, int) and not 1 <= value <= 65535:
            raise ValueError(MSG_PORT)
        if isinstance(value, str) and (len(value) > 15 or not re.match(PORT_NAME_PATTERN, value)):
            raise ValueError(MSG_PORT)
        return value


class SecretKeySelector(_Model):
    """A key in a Secret in the RoutePolicy's namespace."""

    name: str = Field(min_length=1, max_length=253, description="Name of the Secret.")
    key: str = Field(min_length=1, max_length=253, description="Key within the Secret.")


class ExternalBackend(_Model):
    """A hosted OpenAI-compatible provider serving the same gpt-oss model."""

    # No minLength: the scheme rule refuses an empty URL too, and with both the API server
    # refused "" twice (a failed minLength does not stop CEL rules).
    base_url: str = Field(
        alias="baseURL",
        max_length=MAX_URL,
        description="The provider's OpenAI API base URL, e.g. https://provider.example/v1; requests go to baseURL + /chat/completions etc.",
        json_schema_extra=_rules(("self.startsWith('https://') || self.startsWith('http://')", MSG_BASE_URL)),
    )
    model: str = Field(
        min_length=1, max_length=MAX_MODEL, description="The provider's model id, e.g. openai/gpt-oss-120b."
    )
    api_key_secret_ref: SecretKeySelector | None = Field(
        default=None,
        description=(
            "Secret key holding the provider's API key. The router reads it from a mounted file, "
            "never from the ConfigMap, logs or status. Omit it for a provider that needs no key."
        ),
    )
    flavor: FlavorName = Field(
        default="openai",
        description=(
            "Request/response quirks profile of the provider (reasoning field names, refused parameters, "
            "key header); see docs/router.md, Provider flavors. Default openai."
        ),
    )

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, value: str) -> str:
        if not value.startswith(("https://", "http://")):
            raise ValueError(f"{MSG_BASE_URL} (got {value!r})")
        return value


class Backend(_Model):
    """One place a route's requests can go: a ModelDeployment, a Service, or a hosted provider."""

    model_config = ConfigDict(
        json_schema_extra=_rules(
            (
                "(has(self.modelDeployment) ? 1 : 0) + (has(self.service) ? 1 : 0) + (has(self.external) ? 1 : 0) == 1",
                MSG_ONE_KIND,
            )
        )
    )

    name: str = Field(
        min_length=1,
        max_length=MAX_NAME,
        pattern=BACKEND_NAME_PATTERN,
        description=(
            "Name of the backend, unique within the route; used by overflow.to, in metrics, logs and the "
            "x-gptoss-backend response header. Letters, digits, '.', '_' and '-'."
        ),
    )
    # No minimum/maximum in the schema, only the CEL rule (the clearer message): a failed minimum
    # or maximum does not stop the API server's CEL rules, so both would refuse the same value.
    weight: Annotated[int, WithJsonSchema({"type": "integer"})] = Field(
        default=1,
        description=(
            f"Relative share of the route's traffic, 0 to {MAX_WEIGHT} (weights need not sum to 100). "
            "0: never chosen first, still a fallback or overflow target. Default 1."
        ),
        json_schema_extra=_rules((f"self >= 0 && self <= {MAX_WEIGHT}", MSG_WEIGHT)),
    )
    model_deployment: ModelDeploymentRef | None = Field(
        default=None, description="Serve from a ModelDeployment of this namespace (in-cluster vLLM)."
    )
    service: ServiceRef | None = Field(
        default=None, description="Serve from the pods of a Service of this namespace (in-cluster)."
    )
    external: ExternalBackend | None = Field(
        default=None, description="Serve from a hosted OpenAI-compatible provider."
    )

    @field_validator("weight")
    @classmethod
    def _weight(cls, value: int) -> int:
        if not 0 <= value <= MAX_WEIGHT:
            raise ValueError(f"{MSG_WEIGHT} (got {value})")
        return value

    @model_validator(mode="after")
    def _one_kind(self) -> Backend:
        kinds = [
            n
            for n, v in (
                ("modelDeployment", self.model_deployment),
                ("service", self.service),
                ("external", self.external),
            )
            if v is not None
        ]
        if len(kinds) != 1:
            raise ValueError(f"backend {self.name!r}: {MSG_ONE_KIND} (found {', '.join(kinds) or 'none'})")
        return self

    @property
    def in_cluster(self) -> bool:
        """True for modelDeployment and service backends (they count as the pool overflow watches)."""
        return self.external is None


class OverflowThresholds(_Model):
    """When the in-cluster pool counts as saturated; at least one threshold."""

    queue_depth_above: int | None = Field(
        default=None,
        ge=0,
        le=1_000_000,
        description="Saturated when no in-cluster endpoint has at most this many requests waiting (vllm:num_requests_waiting).",
    )
    kv_cache_usage_above: float | None = Field(
        default=None,
        gt=0,
        le=1,
        description="Saturated when no in-cluster endpoint has KV-cache usage at most this fraction (vllm:kv_cache_usage_perc), 0 to 1.",
    )


class OverflowRecovery(_Model):
    """When a saturated pool counts as normal again (lower marks than ``when``, so it does not flap)."""

    queue_depth: int | None = Field(
        default=None,
        ge=0,
        le=1_000_000,
        description="Queue depth to recover below. Default queueDepthAbove/2.",
    )
    kv_cache_usage: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="KV-cache usage to recover below. Default kvCacheUsageAbove - 0.1.",
    )


class Overflow(_Model):
    """Spill to another backend while the route's in-cluster backends are saturated."""

    model_config = ConfigDict(
        json_schema_extra=_rules(
            ("has(self.when.queueDepthAbove) || has(self.when.kvCacheUsageAbove)", MSG_OVERFLOW_WHEN)
        )
    )

    to: str = Field(
        min_length=1,
        max_length=MAX_NAME,
        description="Name of the backend (of this route) that takes requests while the pool is saturated.",
    )
    when: OverflowThresholds = Field(description="Saturation thresholds; at least one.")
    recover_below: OverflowRecovery | None = Field(
        default=None,
        description="Thresholds to leave the saturated state. Default: half the queue depth, KV usage - 0.1.",
    )

    @model_validator(mode="after")
    def _some_threshold(self) -> Overflow:
        if self.when.queue_depth_above is None and self.when.kv_cache_usage_above is None:
            raise ValueError(MSG_OVERFLOW_WHEN)
        return self


def _all_triggers() -> list[FallbackTrigger]:
    return ["connectError", "timeout", "5xx", "429"]


def _trigger_text(value: Any) -> Any:
    # YAML reads an unquoted 429 as a number; accept it as the trigger "429".
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


# int-or-string, so that `on: [5xx, 429]` works as written, without quoting 429.
Trigger = Annotated[
    FallbackTrigger,
    BeforeValidator(_trigger_text),
    WithJsonSchema(
        {
            "x-kubernetes-int-or-string": True,
            "maxLength": 16,
            **_rules(
                (
                    "string(self) in ['connectError', 'timeout', '5xx', '429']",
                    MSG_TRIGGER,
                )
            ),
        }
    ),
]


class Fallback(_Model):
    """Retry on another endpoint or backend; only before the first byte reaches the client."""

    on: list[Trigger] = Field(
        default_factory=_all_triggers,
        max_length=4,
        description=(
            "Failures that move on to the next attempt: connectError, timeout, 5xx, 429. Each item is "
            "int-or-string, so 429 may be written unquoted. Default all four; other statuses go to the "
            "client unchanged."
        ),
        json_schema_extra=_rules(
            ("self.all(t, self.exists_one(u, string(u) == string(t)))", MSG_FALLBACK_ON)
        ),
    )
    max_attempts: int = Field(
        default=2,
        ge=1,
        le=MAX_ATTEMPTS,
        description=f"Attempts per request, the first included, 1 to {MAX_ATTEMPTS}. Default 2.",
    )

    @field_validator("on")
    @classmethod
    def _unique(cls, value: list[FallbackTrigger]) -> list[FallbackTrigger]:
        if len(set(value)) != len(value):
            raise ValueError(f"{MSG_FALLBACK_ON} (got {', '.join(value)})")
        return value


class Timeouts(_Model):
    """Per-attempt time limits."""

    connect: str = _duration_field("connect", "2s", "TCP (and TLS) connect.")
    first_byte: str = _duration_field(
        "firstByte",
        "60s",
        "Request sent to first body byte (streams) or to the whole answer (non-streaming).",
    )
    idle: str = _duration_field("idle", "30s", "Longest gap between two chunks of a stream after the first.")

    @field_validator("connect", "first_byte", "idle")
    @classmethod
    def _duration(cls, value: str, info: ValidationInfo) -> str:
        try:
            duration_seconds(value)
        except ValueError:
            field = to_camel(info.field_name or "")
            raise ValueError(f"{duration_rule(f'timeouts.{field}')[1]} (got {value!r})") from None
        return value


class Route(_Model):
    """One model name clients send, and the backends that serve it."""

    model_config = ConfigDict(
        json_schema_extra=_rules(
            # An empty list is MSG_SOME_BACKEND's alone: one mistake, one message.
            (
                "self.backends.size() == 0 || self.backends.exists(b, !has(b.weight) || b.weight > 0)",
                MSG_SOME_WEIGHT,
                ".backends",
            ),
            (
                "!has(self.overflow) || self.backends.exists(b, b.name == self.overflow.to)",
                MSG_OVERFLOW_TO,
                ".overflow.to",
            ),
            (
                "!has(self.overflow) || self.backends.exists(b, b.name != self.overflow.to "
                "&& (has(b.modelDeployment) || has(b.service)))",
                MSG_OVERFLOW_POOL,
                ".overflow",
            ),
        )
    )

    model: str = Field(
        min_length=1,
        max_length=MAX_MODEL,
        description='The model name clients send in "model", e.g. gpt-oss-120b; unique across routes.',
    )
    backends: list[Backend] = Field(
        max_length=MAX_BACKENDS,
        description=f"Where requests for this model go, 1 to {MAX_BACKENDS}; names unique within the route.",
        json_schema_extra=_rules(
            ("self.size() >= 1", MSG_SOME_BACKEND),
            ("self.all(b, self.exists_one(c, c.name == b.name))", MSG_UNIQUE_BACKENDS),
        ),
    )
    overflow: Overflow | None = Field(
        default=None, description="Spill to a backend while the in-cluster backends are saturated."
    )
    fallback: Fallback = Field(
        default_factory=Fallback, description="Which failures retry elsewhere, and how many attempts."
    )
    timeouts: Timeouts = Field(
        default_factory=Timeouts, description="Connect, first-byte and idle time limits."
    )

    @field_validator("backends")
    @classmethod
    def _backends(cls, value: list[Backend]) -> list[Backend]:
        if not value:
            raise ValueError(MSG_SOME_BACKEND)
        names = [b.name for b in value]
        if dupes := sorted({n for n in names if names.count(n) > 1}):
            raise ValueError(f"{MSG_UNIQUE_BACKENDS} (repeated: {', '.join(dupes)})")
        if all(b.weight == 0 for b in value):
            raise ValueError(MSG_SOME_WEIGHT)
        return value

    @model_validator(mode="after")
    def _overflow(self) -> Route:
        if self.overflow is None:
            return self
        names = [b.name for b in self.backends]
        if self.overflow.to not in names:
            raise ValueError(f"{MSG_OVERFLOW_TO} ({self.overflow.to!r} is not one of {', '.join(names)})")
        if not any(b.in_cluster and b.name != self.overflow.to for b in self.backends):
            raise ValueError(MSG_OVERFLOW_POOL)
        return self


class ResidencyMatch(_Model):
    """Which requests a residency rule applies to: all headers must match (names case-insensitive)."""

    headers: dict[str, Annotated[str, Field(max_length=256)]] = Field(
        default_factory=dict,
        max_length=MAX_HEADERS,
        description="Request headers and the exact values they must have, e.g. x-data-class: restricted. Empty matches every request.",
    )
    models: list[Annotated[str, Field(max_length=MAX_MODEL)]] | None = Field(
        default=None,
        max_length=MAX_ROUTES,
        description="Route models the rule applies to. Default: every route.",
    )


class ResidencyRule(_Model):
    """A hard rule on where matching requests may go, checked before split, overflow and fallback."""

    name: str | None = Field(
        default=None,
        max_length=MAX_NAME,
        description="Name used in metrics, logs and the 503 message. Default: the matched headers as name=value.",
    )
    match: ResidencyMatch = Field(description="Which requests the rule applies to.")
    allow: Annotated[
        ResidencyScope,
        WithJsonSchema(
            {"type": "string", "maxLength": 16, **_rules(("self == 'cluster' || self == 'any'", MSG_ALLOW))}
        ),
    ] = Field(
        description=(
            "cluster: only in-cluster backends (modelDeployment, service), fail closed with 503 if none can "
            "serve; any: no restriction."
        ),
    )


class RoutePolicySpec(_Model):
    """Desired state: the router, its routes and the residency rules."""

    model_config = ConfigDict(
        json_schema_extra=_rules(
            (
                "!has(self.residency) || self.residency.all(r, !has(r.match.models) "
                "|| r.match.models.all(m, self.routes.exists(x, x.model == m)))",
                MSG_RESIDENCY_MODELS,
                ".residency",
            )
        )
    )

    router: RouterSpec = Field(
        default_factory=RouterSpec, description="Router replicas, port and Service type."
    )
    routes: list[Route] = Field(
        max_length=MAX_ROUTES,
        description=f"One route per model name clients send, 1 to {MAX_ROUTES}; models unique.",
        json_schema_extra=_rules(
            ("self.size() >= 1", MSG_SOME_ROUTE),
            ("self.all(r, self.exists_one(s, s.model == r.model))", MSG_UNIQUE_MODELS),
        ),
    )
    residency: list[ResidencyRule] = Field(
        default_factory=list,
        max_length=MAX_RESIDENCY_RULES,
        description="Residency rules; the first whose match fits a request decides where it may go.",
    )

    @field_validator("routes")
    @classmethod
    def _routes(cls, value: list[Route]) -> list[Route]:
        if not value:
            raise ValueError(MSG_SOME_ROUTE)
        models = [r.model for r in value]
        if dupes := sorted({m for m in models if models.count(m) > 1}):
            raise ValueError(f"{MSG_UNIQUE_MODELS} (repeated: {', '.join(dupes)})")
        return value

    @model_validator(mode="after")
    def _residency_models(self) -> RoutePolicySpec:
        models = {r.model for r in self.routes}
        for rule in self.residency:
            if unknown := sorted(set(rule.match.models or []) - models):
                raise ValueError(f"{MSG_RESIDENCY_MODELS} (unknown: {', '.join(unknown)})")
        return self


class BackendStatus(_Model):
    """Whether one backend of one route can take requests."""

    route: str = Field(description="The route's model.")
    name: str = Field(description="The backend's name.")
    ready: bool = Field(description="True when the backend can take requests.")
    reason: str | None = Field(
        default=None, description="CamelCase reason when not ready, e.g. SecretNotFound."
    )
    message: str | None = Field(default=None, description="Human-readable details when not ready.")


class RoutePolicyStatus(_Model):
    """Observed state, written only by the operator."""

    observed_generation: int | None = Field(
        default=None, description="metadata.generation the status reflects."
    )
    conditions: list[Condition] = Field(
        default_factory=list,
        description="Ready, Degraded.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )
    endpoint: str | None = Field(
        default=None,
        description="In-cluster OpenAI-compatible base URL of the router, e.g. http://NAME-router.NAMESPACE.svc:8080/v1.",
    )
    backends: list[BackendStatus] = Field(
        default_factory=list,
        description="Readiness of every backend of every route.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["route", "name"]},
    )
    route_count: int | None = Field(
        default=None,
        description="Number of routes, for the Routes printer column (a printer column cannot count).",
    )
    ready_text: str | None = Field(
        default=None,
        description='Ready backends/all backends as text, e.g. "2/3", for the Backends printer column.',
    )


class RoutePolicy(_Model):
    """One OpenAI-compatible endpoint (a router) in front of in-cluster gpt-oss deployments and hosted providers."""

    model_config = ConfigDict(
        json_schema_extra=_rules(
            (
                f"self.metadata.name.size() <= {MAX_NAME_LENGTH} && self.metadata.name.matches('{DNS_LABEL_PATTERN}')",
                MSG_NAME,
            )
        )
    )

    api_version: Literal["gptoss.dev/v1alpha1"] = Field(
        default="gptoss.dev/v1alpha1", description=API_VERSION
    )
    kind: Literal["RoutePolicy"] = Field(default=KIND, description=KIND)
    metadata: dict[str, Any] = Field(default_factory=dict, description="Standard object metadata.")
    spec: RoutePolicySpec = Field(description="Desired state.")
    status: RoutePolicyStatus | None = Field(
        default=None, description="Observed state, written by the operator."
    )

    @field_validator("metadata")
    @classmethod
    def _name(cls, value: dict[str, Any]) -> dict[str, Any]:
        name = value.get("name")
        if isinstance(name, str) and (len(name) > MAX_NAME_LENGTH or not re.match(DNS_LABEL_PATTERN, name)):
            raise ValueError(MSG_NAME)
        return value


def backends_ready_text(backends: list[BackendStatus]) -> str:
    """The ``status.readyText`` value: ready backends over all backends, e.g. ``2/3``."""
    return ready_text(sum(b.ready for b in backends), len(backends))
