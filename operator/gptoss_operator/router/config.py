"""The router configuration file (format version 1): the resolved form of a RoutePolicy.

Parsed once, at the edge, into frozen pydantic models; nothing else in the router reads raw
YAML. Every field is documented in docs/router.md. Cross-field rules (a backend named in
``overflow.to`` must exist, names are unique, ...) are checked here so that a bad file is
refused as a whole and the previous configuration keeps serving.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from gptoss_operator.router.providers import FLAVORS
from gptoss_operator.validation_messages import describe_validation_error

CONFIG_VERSION = 1

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


class _Yaml12Loader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 booleans: only true/false. YAML 1.1 also reads ``on``/``off``/
    ``yes``/``no`` as booleans, which would turn ``fallback: {on: [...]}`` into ``{True: [...]}``."""


_Yaml12Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Yaml12Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


class ConfigError(ValueError):
    """The file cannot become a configuration; the message says where and why."""


def parse_duration(value: Any) -> float:
    """``2s``, ``500ms``, ``1m``, ``1.5h`` or a plain number of seconds -> seconds."""
    if isinstance(value, bool):
        raise ValueError("a duration must be a number of seconds or a string like '2s' or '500ms'")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and (m := _DURATION.match(value)):
        seconds = float(m.group(1)) * _UNIT_SECONDS[m.group(2)]
    else:
        raise ValueError(f"invalid duration {value!r}: use a number of seconds or e.g. '2s', '500ms'")
    if seconds <= 0:
        raise ValueError(f"duration {value!r} must be positive")
    return seconds


Duration = Annotated[float, BeforeValidator(parse_duration)]


class _Model(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True)


class FailureKind(StrEnum):
    CONNECT_ERROR = "connectError"
    TIMEOUT = "timeout"
    SERVER_ERROR = "5xx"
    RATE_LIMITED = "429"


class ServiceRef(_Model):
    """A Kubernetes Service whose EndpointSlices list the vLLM pods."""

    name: str = Field(min_length=1)
    namespace: str = Field(min_length=1)
    port: str | int = Field(default="http", description="port name in the EndpointSlice, or number")
    scheme: Literal["http", "https"] = "http"


class ClusterBackend(_Model):
    """In-cluster vLLM: a static list of server roots, or a Service watched via EndpointSlices."""

    endpoints: list[str] | None = None
    service: ServiceRef | None = None
    model: str | None = Field(default=None, description="served model name; default: the route's model")
    metrics: bool = Field(default=True, description="scrape each endpoint's /metrics for load")
    flavor: str = "vllm"

    @model_validator(mode="after")
    def _one_source(self) -> ClusterBackend:
        if (self.endpoints is None) == (self.service is None):
            raise ValueError("set exactly one of 'endpoints' (a list of URLs) or 'service'")
        return self

    @field_validator("endpoints")
    @classmethod
    def _urls(cls, v: list[str] | None) -> list[str] | None:
        return None if v is None else [normalize_root(u) for u in v]


class ExternalBackend(_Model):
    """A hosted OpenAI-compatible provider serving the same gpt-oss model."""

    base_url: str = Field(alias="baseURL")
    model: str = Field(min_length=1, description="the provider's model id")
    api_key_file: str | None = None
    flavor: str = "openai"

    @field_validator("base_url")
    @classmethod
    def _base(cls, v: str) -> str:
        if not v.startswith(("http://", "https://")):
            raise ValueError(f"baseURL {v!r} must start with http:// or https://")
        return v.rstrip("/")


class BackendConfig(_Model):
    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    weight: int = Field(default=1, ge=0)
    cluster: ClusterBackend | None = None
    external: ExternalBackend | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> BackendConfig:
        if (self.cluster is None) == (self.external is None):
            raise ValueError(f"backend {self.name!r}: set exactly one of 'cluster' or 'external'")
        flavor = self.cluster.flavor if self.cluster else self.external.flavor  # type: ignore[union-attr]
        if flavor not in FLAVORS:
            raise ValueError(f"backend {self.name!r}: unknown flavor {flavor!r} (known: {sorted(FLAVORS)})")
        return self


class SaturationThresholds(_Model):
    queue_depth_above: int | None = Field(default=None, ge=0)
    kv_cache_usage_above: float | None = Field(default=None, gt=0, le=1)


class RecoveryThresholds(_Model):
    queue_depth: int | None = Field(default=None, ge=0)
    kv_cache_usage: float | None = Field(default=None, ge=0, le=1)


class OverflowConfig(_Model):
    to: list[str] = Field(min_length=1)
    when: SaturationThresholds
    recover_below: RecoveryThresholds | None = None

    @field_validator("to", mode="before")
    @classmethod
    def _listify(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v

    @model_validator(mode="after")
    def _some_threshold(self) -> OverflowConfig:
        if self.when.queue_depth_above is None and self.when.kv_cache_usage_above is None:
            raise ValueError("overflow.when needs queueDepthAbove and/or kvCacheUsageAbove")
        return self

    def recovery(self) -> tuple[float | None, float | None]:
        """Thresholds to leave the saturated state: explicit, or half the queue / kv - 0.1."""
        rb = self.recover_below
        q = self.when.queue_depth_above
        kv = self.when.kv_cache_usage_above
        rq = rb.queue_depth if rb and rb.queue_depth is not None else (None if q is None else q // 2)
        rkv = (
            rb.kv_cache_usage
            if rb and rb.kv_cache_usage is not None
            else (None if kv is None else max(0.0, kv - 0.1))
        )
        return rq, rkv


class FallbackConfig(_Model):
    on: list[FailureKind] = Field(
        default_factory=lambda: [
            FailureKind.CONNECT_ERROR,
            FailureKind.TIMEOUT,
            FailureKind.SERVER_ERROR,
            FailureKind.RATE_LIMITED,
        ]
    )
    max_attempts: int = Field(default=2, ge=1, le=10)


class Timeouts(_Model):
    connect: Duration = 2.0
    first_byte: Duration = 60.0
    idle: Duration = 30.0


class RouteConfig(_Model):
    model: str = Field(min_length=1)
    backends: list[BackendConfig] = Field(min_length=1)
    overflow: OverflowConfig | None = None
    fallback: FallbackConfig = Field(default_factory=FallbackConfig)
    timeouts: Timeouts = Field(default_factory=Timeouts)

    @model_validator(mode="after")
    def _references(self) -> RouteConfig:
        names = [b.name for b in self.backends]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"route {self.model!r}: duplicate backend names {dupes}")
        if self.overflow:
            unknown = [t for t in self.overflow.to if t not in names]
            if unknown:
                raise ValueError(f"route {self.model!r}: overflow.to names unknown backends {unknown}")
            pool = [b.cluster for b in self.backends if b.cluster and b.name not in self.overflow.to]
            if not pool:
                raise ValueError(
                    f"route {self.model!r}: overflow needs an in-cluster backend outside overflow.to"
                )
            if not any(c.metrics for c in pool):
                raise ValueError(
                    f"route {self.model!r}: overflow needs load metrics, but every in-cluster backend "
                    "outside overflow.to has metrics: false"
                )
        if sum(b.weight for b in self.backends) == 0:
            raise ValueError(f"route {self.model!r}: at least one backend needs a weight above 0")
        return self

    def backend(self, name: str) -> BackendConfig:
        return next(b for b in self.backends if b.name == name)


class ResidencyMatch(_Model):
    headers: dict[str, str] = Field(default_factory=dict)
    models: list[str] | None = None

    @field_validator("headers")
    @classmethod
    def _lower(cls, v: dict[str, str]) -> dict[str, str]:
        return {k.lower(): val for k, val in v.items()}


class ResidencyRule(_Model):
    name: str | None = None
    match: ResidencyMatch
    allow: Literal["cluster", "any"]


class ScrapeConfig(_Model):
    interval: Duration = 1.0
    timeout: Duration = 0.5
    # A sample older than this is stale: it no longer counts as headroom (docs/router.md).
    stale_after: Duration = 5.0


class HealthConfig(_Model):
    failures_to_eject: int = Field(default=3, ge=1)
    cooldown: Duration = 10.0


class KubernetesConfig(_Model):
    kubeconfig: str | None = Field(default=None, description="default: in-cluster service account")


class ConnectionLimits(_Model):
    """Client connection limits (router/connections.py, docs/router.md "Client connections")."""

    max: int | None = Field(default=None, ge=1, description="default: from RLIMIT_NOFILE")
    header_timeout: Duration = 10.0
    idle_timeout: Duration = 75.0
    max_header_bytes: int = Field(default=64 * 1024, ge=1024)


class ServerConfig(_Model):
    max_body_bytes: int = Field(default=8 * 1024 * 1024, ge=1024)
    connections: ConnectionLimits = Field(default_factory=ConnectionLimits)
    max_idle_connections_per_upstream: int = Field(default=512, ge=1)
    scrape: ScrapeConfig = Field(default_factory=ScrapeConfig)
    health: HealthConfig = Field(default_factory=HealthConfig)
    kubernetes: KubernetesConfig = Field(default_factory=KubernetesConfig)
    reload_interval: Duration = 1.0


class RouterConfig(_Model):
    version: Literal[1]
    server: ServerConfig = Field(default_factory=ServerConfig)
    routes: list[RouteConfig] = Field(min_length=1)
    residency: list[ResidencyRule] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_models(self) -> RouterConfig:
        models = [r.model for r in self.routes]
        dupes = sorted({m for m in models if models.count(m) > 1})
        if dupes:
            raise ValueError(f"duplicate routes for models {dupes}")
        return self


def normalize_root(url: str) -> str:
    """An in-cluster endpoint is a server root: ``http://10.0.0.7:8000`` (a trailing /v1 is dropped)."""
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"endpoint {url!r} must start with http:// or https://")
    url = url.rstrip("/")
    return url.removesuffix("/v1")


def parse_config(text: str) -> RouterConfig:
    """YAML or JSON text -> a validated configuration, or ConfigError naming the problem."""
    try:
        raw = yaml.load(text, Loader=_Yaml12Loader)  # a SafeLoader subclass: no object tags
    except yaml.YAMLError as e:
        raise ConfigError(f"not valid YAML/JSON: {e}") from None
    except RecursionError:
        # PyYAML's composer recurses per nesting level: '[' * 100000 would crash the caller.
        raise ConfigError("not valid YAML/JSON: nested too deeply") from None
    if not isinstance(raw, dict):
        raise ConfigError("the file must hold a mapping with 'version' and 'routes'")
    if raw.get("version") != CONFIG_VERSION:
        raise ConfigError(
            f"unsupported config version {raw.get('version')!r}; this router reads version {CONFIG_VERSION}"
        )
    try:
        return RouterConfig.model_validate(raw)
    except ValidationError as e:
        raise ConfigError(describe_validation_error(e)) from None
    except RecursionError:
        raise ConfigError("the configuration is nested too deeply") from None
