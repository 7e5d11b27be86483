"""Per-endpoint load and health state, vLLM /metrics parsing, pool saturation. No I/O.

Stale-scrape policy (docs/router.md, "Load and staleness"):

* a sample is *fresh* for ``scrape.staleAfter`` after the scrape that produced it;
* a fresh endpoint is ranked by ``waiting + running + requests the router sent since the
  scrape``; a stale (or never scraped) endpoint is ranked after every fresh one, by the router's
  own in-flight count, and is never excluded for staleness alone (that is passive health's job);
* for overflow a stale endpoint has *no headroom*: a pool whose samples are all stale counts
  as saturated and spills (fail-open towards serving, unlike the EPP default that turned stale
  metrics into HTTP 500s on single-pod pools).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

# Current vLLM names first; deprecated spellings are accepted (vllm#18354 renamed the KV gauge).
_WAITING = ("vllm:num_requests_waiting",)
_RUNNING = ("vllm:num_requests_running",)
_KV = ("vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc")


@dataclass(frozen=True, slots=True)
class LoadSample:
    waiting: float
    running: float
    kv_usage: float | None  # 0..1, mean over engines; None when the server does not export it


class MetricsParseError(ValueError):
    pass


def parse_vllm_metrics(text: str) -> LoadSample:
    """Prometheus text exposition -> load, summing counts over ``engine`` (and any other) labels.

    The KV-cache fraction is averaged over engines: a sum of fractions is not a fraction, and
    vLLM balances requests across its data-parallel engines.
    """
    sums: dict[str, float] = {}
    kv_values: dict[str, list[float]] = {}
    for line in text.splitlines():
        if not line.startswith("vllm:"):
            continue
        name_end = min((i for i in (line.find("{"), line.find(" ")) if i >= 0), default=-1)
        if name_end < 0:
            continue
        name = line[:name_end]
        if name not in _WAITING and name not in _RUNNING and name not in _KV:
            continue
        value_part = line[line.rfind("}") + 1 :] if "{" in line[: name_end + 1] else line[name_end:]
        fields = value_part.split()
        if not fields:
            continue
        try:
            value = float(fields[0])
        except ValueError:
            continue
        if math.isnan(value):
            continue
        if name in _KV:
            kv_values.setdefault(name, []).append(value)
        else:
            sums[name] = sums.get(name, 0.0) + value
    if _WAITING[0] not in sums and _RUNNING[0] not in sums:
        raise MetricsParseError("no vllm:num_requests_waiting / vllm:num_requests_running in /metrics")
    kv = next((kv_values[n] for n in _KV if n in kv_values), None)
    return LoadSample(
        waiting=sums.get(_WAITING[0], 0.0),
        running=sums.get(_RUNNING[0], 0.0),
        kv_usage=None if not kv else sum(kv) / len(kv),
    )


@dataclass(slots=True, eq=False)
class Endpoint:
    """One upstream target: a vLLM server root or a provider base URL. Mutable, long-lived.

    Survives configuration reloads (keyed by URL) so load samples and ejections carry over.
    """

    url: str
    external: bool = False
    sample: LoadSample | None = None
    scraped_at: float | None = None  # monotonic seconds
    inflight: int = 0
    inflight_at_scrape: int = 0
    failures: int = 0
    ejected_until: float = 0.0

    def fresh(self, now: float, stale_after: float) -> bool:
        return self.scraped_at is not None and now - self.scraped_at <= stale_after

    def healthy(self, now: float) -> bool:
        return self.ejected_until <= now

    def rank(self, now: float, stale_after: float) -> tuple[int, float, float]:
        """Sort key, least loaded first: (stale?, estimated queue + running, kv usage)."""
        if self.sample is not None and self.fresh(now, stale_after):
            since = max(0, self.inflight - self.inflight_at_scrape)
            kv = self.sample.kv_usage or 0.0
            return (0, self.sample.waiting + self.sample.running + since, kv)
        return (1, float(self.inflight), 0.0)

    # Passive health: the caller supplies `now` so the rules stay testable.
    def record_success(self) -> None:
        self.failures = 0

    def record_failure(
        self,
        *,
        now: float,
        failures_to_eject: int,
        cooldown: float,
        immediate: bool = False,
        retry_after: float | None = None,
    ) -> bool:
        """Count a failure; eject when it is the Nth in a row, or at once. True if now ejected.

        Connect errors and 429s eject at once (a refused connection or a provider asking to
        back off are certain); a 429's Retry-After, when given, is the ejection time. After an
        ejection the counter stays one short of the limit, so the first request that fails
        after the cooldown ejects again (half-open).
        """
        self.failures += 1
        if immediate or retry_after is not None or self.failures >= failures_to_eject:
            hold = retry_after if retry_after is not None else cooldown
            self.ejected_until = max(self.ejected_until, now + hold)
            self.failures = failures_to_eject - 1
            return True
        return False

    def record_scrape(self, sample: LoadSample, now: float) -> None:
        self.sample = sample
        self.scraped_at = now
        self.inflight_at_scrape = self.inflight


def has_headroom(ep: Endpoint, now: float, stale_after: float, queue: float | None, kv: float | None) -> bool:
    """A healthy endpoint with a fresh sample at or below both thresholds."""
    if not ep.healthy(now) or ep.sample is None or not ep.fresh(now, stale_after):
        return False
    if queue is not None and ep.sample.waiting > queue:
        return False
    return not (kv is not None and ep.sample.kv_usage is not None and ep.sample.kv_usage > kv)


def next_saturation(
    pool: Iterable[Endpoint],
    *,
    was_saturated: bool,
    now: float,
    stale_after: float,
    enter: tuple[float | None, float | None],
    leave: tuple[float | None, float | None],
) -> bool:
    """Hysteresis: saturated once no endpoint has headroom under ``enter`` thresholds; back to
    normal only once some endpoint has headroom under the lower ``leave`` thresholds."""
    queue, kv = leave if was_saturated else enter
    return not any(has_headroom(ep, now, stale_after, queue, kv) for ep in pool)
