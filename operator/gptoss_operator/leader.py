"""Leader election on a ``coordination.k8s.io/v1`` Lease, so that two replicas never both write.

The algorithm and timings are client-go's ``tools/leaderelection`` as controller-runtime runs it
(``LeaseDuration`` 15 s, ``RenewDeadline`` 10 s, ``RetryPeriod`` 2 s):

- A candidate reads the Lease every ``retry_period``. It may take it when nobody holds it, or
  when the record it sees has not changed for ``lease_duration`` measured on the candidate's
  own monotonic clock since it first saw that record (client-go's ``observedTime``: clocks of
  two machines are never compared, only "has the holder renewed since I last looked").
- Writes are ``PUT``s carrying the ``resourceVersion`` that was read, so of two candidates
  racing for a free Lease exactly one wins; the other gets 409 Conflict and stays a standby.
- The leader renews every ``retry_period``. When it has not renewed successfully for
  ``renew_deadline`` (shorter than ``lease_duration``, so it gives up before anyone else may
  take over), or it sees another holder, it exits the process at once: nothing it has queued
  may reach the API server after that, and the restart comes back as a standby.
- After a clean stop (kopf has finished), the leader releases the Lease (client-go's
  ``ReleaseOnCancel``), so a rolling update hands over in about one retry period.

:func:`decide` is the pure part (unit-tested); :class:`LeaderElector` does the I/O.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import enum
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from aiohttp import web

from gptoss_operator import kinds
from gptoss_operator.kube import KubeAPI, KubeError

log = logging.getLogger(__name__)

LEASE_DURATION: Final = 15.0
RENEW_DEADLINE: Final = 10.0
RETRY_PERIOD: Final = 2.0
DEFAULT_LEASE_NAME: Final = "gptoss-operator"


class Action(enum.Enum):
    CREATE = "create"  # no Lease yet
    ACQUIRE = "acquire"  # free or expired: take it over (a new transition)
    RENEW = "renew"  # ours: bump renewTime
    WAIT = "wait"  # someone else holds a live lease


@dataclass(frozen=True)
class LeaseRecord:
    """What of a Lease's spec matters to the election."""

    holder: str
    lease_duration_seconds: int
    transitions: int

    @classmethod
    def of(cls, lease: dict[str, Any]) -> LeaseRecord:
        spec = lease.get("spec") or {}
        return cls(
            holder=spec.get("holderIdentity") or "",
            lease_duration_seconds=int(spec.get("leaseDurationSeconds") or 0),
            transitions=int(spec.get("leaseTransitions") or 0),
        )


def decide(
    lease: dict[str, Any] | None, *, me: str, observed_at: float, now: float, lease_duration: float
) -> Action:
    """What to do with ``lease`` (None: it does not exist) at monotonic time ``now``.

    ``observed_at`` is when this candidate first saw the Lease's current ``resourceVersion``:
    a holder that renews changes it, so a record unchanged for longer than the lease duration
    belongs to a holder that is gone. The Lease's own duration wins over ours when longer
    (client-go does the same with the duration it reads).
    """
    if lease is None:
        return Action.CREATE
    record = LeaseRecord.of(lease)
    if record.holder == me:
        return Action.RENEW
    if not record.holder:
        return Action.ACQUIRE
    duration = max(lease_duration, float(record.lease_duration_seconds))
    return Action.ACQUIRE if now - observed_at >= duration else Action.WAIT


def micro_time(when: dt.datetime) -> str:
    """A Kubernetes MicroTime (RFC 3339 with microseconds), as Lease times are stored."""
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def lease_body(
    lease: dict[str, Any] | None,
    *,
    name: str,
    namespace: str,
    me: str,
    action: Action,
    lease_duration: float,
    wall_now: dt.datetime,
) -> dict[str, Any]:
    """The Lease to write for ``action`` (CREATE, ACQUIRE or RENEW), keeping its resourceVersion."""
    spec = dict((lease or {}).get("spec") or {})
    record = LeaseRecord.of(lease) if lease else LeaseRecord("", 0, 0)
    spec["holderIdentity"] = me
    spec["leaseDurationSeconds"] = int(lease_duration)
    spec["renewTime"] = micro_time(wall_now)
    if action is not Action.RENEW:
        spec["acquireTime"] = micro_time(wall_now)
        # Every acquisition of an existing Lease is a transition, a released one (empty holder,
        # after a clean shutdown or rolling update) included, as client-go's tryAcquireOrRenew
        # counts them (tools/leaderelection/leaderelection.go): a new Lease starts at 0.
        spec["leaseTransitions"] = record.transitions + (1 if action is Action.ACQUIRE else 0)
    metadata: dict[str, Any] = {"name": name, "namespace": namespace}
    if lease is not None:
        metadata["resourceVersion"] = lease["metadata"]["resourceVersion"]
    return {
        "apiVersion": kinds.LEASE.api_version,
        "kind": kinds.LEASE.kind,
        "metadata": metadata,
        "spec": spec,
    }


def default_identity() -> str:
    """The pod's name (downward API: POD_NAME, else the hostname) and a uuid new to this process,
    as controller-runtime builds it (``hostname + "_" + uuid``). Not the pod's uid: a container
    the kubelet restarts in the same pod has the same pod uid, and would find the Lease still
    naming "itself" and renew it at once, without waiting for it to expire; with a fresh uuid it
    is a new candidate like any standby."""
    name = os.environ.get("POD_NAME") or socket.gethostname()
    return f"{name}_{uuid.uuid4()}"


def default_namespace() -> str:
    """The pod's namespace (POD_NAMESPACE, or the service account's namespace file), else default."""
    if os.environ.get("POD_NAMESPACE"):
        return os.environ["POD_NAMESPACE"]
    try:
        with open("/var/run/secrets/kubernetes.io/serviceaccount/namespace", encoding="utf-8") as f:
            return f.read().strip() or "default"
    except OSError:
        return "default"


def _exit_now(message: str) -> None:
    # os._exit, not sys.exit: no cleanup handler, pending write or finally block may run once
    # another replica can take the Lease.
    log.critical("%s; exiting so that a restart re-enters as a standby", message)
    logging.shutdown()
    os._exit(1)


class LeaderElector:
    """Acquires the Lease (``acquire``), then keeps it (``renew_forever``) or ends the process."""

    def __init__(
        self,
        api: KubeAPI,
        *,
        name: str,
        namespace: str,
        identity: str,
        lease_duration: float = LEASE_DURATION,
        renew_deadline: float = RENEW_DEADLINE,
        retry_period: float = RETRY_PERIOD,
        on_lost: Callable[[str], None] = _exit_now,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not retry_period < renew_deadline < lease_duration:
            raise ValueError("leader election needs retry period < renew deadline < lease duration")
        self.api = api
        self.name = name
        self.namespace = namespace
        self.identity = identity
        self.lease_duration = lease_duration
        self.renew_deadline = renew_deadline
        self.retry_period = retry_period
        self.on_lost = on_lost
        self.clock = clock
        self._observed: tuple[str, float] = ("", 0.0)  # (resourceVersion, when first seen)
        self.last_renew = 0.0

    async def _try(self) -> Action:
        """One round: read, decide, write if the decision says so. Returns what was done
        (WAIT when the write lost a race or the Lease is someone else's)."""
        lease = await self.api.get(kinds.LEASE.api_version, kinds.LEASE.kind, self.namespace, self.name)
        now = self.clock()
        if lease is not None:
            version = lease["metadata"]["resourceVersion"]
            if version != self._observed[0]:
                self._observed = (version, now)
        action = decide(
            lease,
            me=self.identity,
            observed_at=self._observed[1],
            now=now,
            lease_duration=self.lease_duration,
        )
        if action is Action.WAIT:
            return action
        body = lease_body(
            lease,
            name=self.name,
            namespace=self.namespace,
            me=self.identity,
            action=action,
            lease_duration=self.lease_duration,
            wall_now=dt.datetime.now(dt.UTC),
        )
        try:
            if action is Action.CREATE:
                await self.api.create(body)
            else:
                await self.api.replace(body)
        except KubeError as e:
            if e.status == 409:  # Conflict: another candidate wrote first
                return Action.WAIT
            raise
        self.last_renew = self.clock()
        return action

    async def acquire(self) -> None:
        """Return once this process holds the Lease."""
        log.info("leader election: %s waiting for lease %s/%s", self.identity, self.namespace, self.name)
        while True:
            try:
                action = await self._try()
            except KubeError as e:
                log.warning("leader election: %s", e)
                action = Action.WAIT
            if action is not Action.WAIT:
                log.info(
                    "leader election: %s holds lease %s/%s (%s)",
                    self.identity,
                    self.namespace,
                    self.name,
                    action.value,
                )
                return
            await asyncio.sleep(self.retry_period)

    async def release(self) -> None:
        """Give the Lease up after a clean stop (kopf has finished every write), so that a
        standby takes over at its next retry instead of after the lease duration (client-go's
        ReleaseOnCancel). Best effort: if it fails, the Lease simply expires."""
        try:
            lease = await self.api.get(kinds.LEASE.api_version, kinds.LEASE.kind, self.namespace, self.name)
            if lease is None or LeaseRecord.of(lease).holder != self.identity:
                return
            spec = dict(lease["spec"])
            spec["holderIdentity"] = ""
            spec["leaseDurationSeconds"] = 1
            await self.api.replace({**lease, "spec": spec})
            log.info("leader election: %s released lease %s/%s", self.identity, self.namespace, self.name)
        except KubeError as e:
            log.warning("leader election: could not release the lease: %s", e)

    async def renew_forever(self) -> None:
        """Renew every retry period; call ``on_lost`` when the Lease is another's or has not
        been renewed within the renew deadline."""
        while True:
            await asyncio.sleep(self.retry_period)
            try:
                action = await asyncio.wait_for(self._try(), timeout=self.renew_deadline)
            except (KubeError, TimeoutError) as e:
                log.warning("leader election: renewing failed: %s", e)
                action = None
            if action is Action.WAIT:
                self.on_lost(f"lease {self.namespace}/{self.name} is held by another process")
                return
            if action is None and self.clock() - self.last_renew >= self.renew_deadline:
                self.on_lost(f"lease {self.namespace}/{self.name} not renewed for {self.renew_deadline:.0f}s")
                return


async def serve_standby_health(address: str, port: int) -> web.AppRunner:
    """Answer /healthz while waiting for the Lease: a standby is alive, and kopf's own liveness
    endpoint only starts with kopf (after the Lease is held)."""

    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"leader": False})

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, address, port).start()
    return runner
