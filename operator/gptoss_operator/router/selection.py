"""Route selection: which backends and endpoints a request tries, in order. Pure.

Order of decisions (docs/router.md, "Routing semantics"):

1. **Residency** first: the first rule matching the request decides; ``allow: cluster`` removes
   every external backend before anything else looks at the list (fail-closed).
2. **Eligibility**: backends that cannot take the request (no endpoints, missing API key,
   no Responses API support for /v1/responses) are dropped, with the reason kept for the 503.
3. **Overflow**: while the route's in-cluster pool is saturated, the primary is drawn from the
   ``overflow.to`` backends; otherwise from all backends by weight.
4. **Fallback order**: the primary backend's healthy endpoints least loaded first, then each other
   eligible backend's (heaviest weight first), capped at ``fallback.maxAttempts``.
5. **Panic**: if passive health ejected every eligible endpoint, they are tried anyway rather
   than refusing the request (Envoy's panic threshold idea).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from gptoss_operator.router.config import ResidencyRule
from gptoss_operator.router.load import Endpoint
from gptoss_operator.router.runtime import BackendRuntime, RouteRuntime

Api = Literal["chat", "completions", "responses"]


@dataclass(frozen=True, slots=True)
class Attempt:
    backend: BackendRuntime
    endpoint: Endpoint


@dataclass(frozen=True, slots=True)
class AttemptPlan:
    """The endpoints one request tries, in order, and how the list was chosen."""

    attempts: tuple[Attempt, ...]
    overflowed: bool = False
    panic: bool = False


class NoBackendError(Exception):
    """No backend may serve the request; the message says why (it becomes the 503 body)."""


def residency_rule(
    rules: Sequence[ResidencyRule], model: str, headers: Mapping[str, Sequence[str]]
) -> ResidencyRule | None:
    """The first rule matching the request, if any. ``headers`` maps lower-case names to every
    value the client sent (one per header line).

    Fail-closed over repeated headers (docs/router.md, "Residency"): a header sent more than
    once, or as a comma-separated list, matches an ``allow: cluster`` rule when *any* of its
    values equals the rule's, and an ``allow: any`` rule only when *every* value does. So
    ``x-data-class: restricted`` followed by ``x-data-class: public`` is restricted whatever the
    order of the lines or of the rules.
    """
    for rule in rules:
        m = rule.match
        if m.models is not None and model not in m.models:
            continue
        test = _any_value_is if rule.allow == "cluster" else _every_value_is
        if all(test(headers.get(k, ()), v) for k, v in m.headers.items()):
            return rule
    return None


def _elements(values: Sequence[str]) -> list[str]:
    # RFC 9110 section 5.3: repeated field lines are equivalent to one comma-separated list.
    return [e.strip() for v in values for e in v.split(",")]


def _any_value_is(values: Sequence[str], wanted: str) -> bool:
    return wanted in values or wanted in _elements(values)


def _every_value_is(values: Sequence[str], wanted: str) -> bool:
    if not values:
        return False
    return all(v == wanted for v in values) or all(e == wanted for e in _elements(values))


def rule_label(rule: ResidencyRule, index: int | None = None) -> str:
    if rule.name:
        return rule.name
    return ",".join(f"{k}={v}" for k, v in rule.match.headers.items()) or f"rule-{index or 0}"


def _weighted(backends: Sequence[BackendRuntime], rand: float) -> BackendRuntime:
    total = sum(b.weight for b in backends)
    if total <= 0:
        return backends[min(int(rand * len(backends)), len(backends) - 1)]
    point = rand * total
    for b in backends:
        point -= b.weight
        if point < 0:
            return b
    return backends[-1]


def plan_request(
    route: RouteRuntime,
    *,
    api: Api,
    cluster_only: str | None,
    saturated: bool,
    now: float,
    stale_after: float,
    rand: float,
) -> AttemptPlan:
    """The ordered attempts for one request. ``cluster_only`` names the residency rule, if any.

    ``rand`` in [0, 1) drives the weighted draw and rotates ties between equally loaded
    endpoints (so a burst between two scrapes does not herd onto one pod).
    """
    reasons: list[str] = []
    eligible: list[BackendRuntime] = []
    for b in route.backends:
        if cluster_only is not None and b.external:
            reasons.append(f"{b.name}: external, but residency rule {cluster_only!r} allows cluster only")
        elif b.unavailable is not None:
            reasons.append(f"{b.name}: {b.unavailable}")
        elif api == "responses" and not b.flavor.supports_responses:
            reasons.append(f"{b.name}: flavor {b.flavor.name!r} has no Responses API")
        elif not b.endpoints:
            reasons.append(f"{b.name}: no ready endpoints")
        else:
            eligible.append(b)
    if not eligible:
        raise NoBackendError(_explain(route.model, cluster_only, reasons))

    up = [b for b in eligible if any(ep.healthy(now) for ep in b.endpoints)]
    panic = not up
    if panic:
        up = eligible
    overflowed = False
    primary_pool: list[BackendRuntime] = []
    if saturated and route.config.overflow is not None:
        primary_pool = [b for b in up if b.overflow_target]
        overflowed = bool(primary_pool)
    if not primary_pool:
        primary_pool = [b for b in up if b.weight > 0 and not (saturated and b.overflow_target)] or [
            b for b in up if b.weight > 0
        ]
    primary = _weighted(primary_pool or up, rand)

    rest = sorted((b for b in up if b is not primary), key=lambda b: (-b.weight, b.name))
    attempts: list[Attempt] = []
    limit = route.config.fallback.max_attempts
    for b in (primary, *rest):
        for ep in _ranked(b.endpoints, now, stale_after, rand, include_ejected=panic):
            attempts.append(Attempt(b, ep))
            if len(attempts) == limit:
                return AttemptPlan(tuple(attempts), overflowed, panic)
    return AttemptPlan(tuple(attempts), overflowed, panic)


def _ranked(
    endpoints: Sequence[Endpoint], now: float, stale_after: float, rand: float, *, include_ejected: bool
) -> list[Endpoint]:
    n = len(endpoints)
    if n == 1:
        ep = endpoints[0]
        return [ep] if include_ejected or ep.healthy(now) else []
    offset = int(rand * 1_000_003) % n
    keyed = [
        (ep.rank(now, stale_after), (i - offset) % n, ep)
        for i, ep in enumerate(endpoints)
        if include_ejected or ep.healthy(now)
    ]
    keyed.sort(key=lambda t: (t[0], t[1]))
    return [ep for _, _, ep in keyed]


def _explain(model: str, cluster_only: str | None, reasons: list[str]) -> str:
    head = f"no backend can serve model {model!r}"
    if cluster_only is not None:
        head = (
            f"residency rule {cluster_only!r} restricts this request to in-cluster backends, "
            f"and none can serve model {model!r}"
        )
    return f"{head}: " + "; ".join(reasons)
