"""Reconcile one ModelDeployment: parse -> plan -> apply what differs -> write status if it changed.

Writes happen only when something differs: children carry the hash of the manifest they were
applied from, and the status is compared with what is stored before it is patched. A resync
of a converged object therefore sends nothing to the API server.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from typing import Any, Literal

from pydantic import ValidationError

from gptoss_operator.api.errors import describe_validation_error
from gptoss_operator.api.v1alpha1 import API_VERSION, KIND, ModelDeployment, Plan
from gptoss_operator.controller.store import Key, Store
from gptoss_operator.kube import KubeAPI, KubeError
from gptoss_operator.manifests.common import digest, selector_labels
from gptoss_operator.manifests.vllm import (
    RolloutChoice,
    deployment,
    disruption_budget,
    gpu_resource,
    node_label_requirements,
    pod_template,
    service,
)
from gptoss_operator.manifests.weights import download_job, download_job_name, weights_claim
from gptoss_operator.observed import (
    CONFIG_HASH_ANNOTATION,
    ChildState,
    DeploymentState,
    JobState,
    spare_capacity,
    summarize_child,
)
from gptoss_operator.planning.catalog import gpu_profile
from gptoss_operator.planning.planner import Refusal, plan_deployment
from gptoss_operator.planning.startup import startup_budget
from gptoss_operator.settings import OperatorSettings
from gptoss_operator.status import Event, Observation, Weights, evaluate, transitions

JSON = dict[str, Any]
log = logging.getLogger(__name__)
COMPONENT = "gptoss-operator"
_API_VERSIONS = {
    "Deployment": "apps/v1",
    "Service": "v1",
    "PodDisruptionBudget": "policy/v1",
    "PersistentVolumeClaim": "v1",
    "Job": "batch/v1",
}


def selector_string(name: str) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(selector_labels(name).items()))


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _prune_none(value: Any) -> Any:
    """What the API server stores for a merge patch: keys with null values are absent."""
    if isinstance(value, dict):
        return {k: _prune_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_prune_none(v) for v in value]
    return value


class Reconciler:
    def __init__(self, api: KubeAPI, store: Store, settings: OperatorSettings) -> None:
        self.api = api
        self.store = store
        self.settings = settings

    async def reconcile(self, key: Key) -> None:
        body = self.store.model_deployments.get(key)
        if body is None or body["metadata"].get("deletionTimestamp"):
            return  # gone or going: the garbage collector removes the children (ownerReferences)
        namespace, name = key
        spec = body.get("spec") or {}
        base: dict[str, Any] = {
            "name": name,
            "model": str(spec.get("model", "")),
            "generation": int(body["metadata"].get("generation", 1)),
            "selector": selector_string(name),
            "endpoint": self.settings.endpoint(name, namespace),
            "deployment": self._deployment_state(key),
            "pods": [p for p in self.store.owned_pods(key) if p.component == "server"],
        }
        try:
            md = ModelDeployment.model_validate(body)
        except ValidationError as e:
            # Leave whatever runs alone: a bad edit must not take a serving model down.
            replicas = spec.get("replicas")
            desired = replicas if isinstance(replicas, int) else 0
            obs = Observation(**base, desired_replicas=desired, spec_error=describe_validation_error(e))
            await self._write_status(body, obs)
            return
        base["desired_replicas"] = md.spec.replicas
        result = plan_deployment(md.spec, self.settings.planner)
        if isinstance(result, Refusal):
            await self._write_status(body, Observation(**base, refusal=(result.reason, result.message)))
            return
        gpu = gpu_profile(md.spec.gpu.type)
        base["gpu_summary"] = f"{result.gpus_per_replica} x {gpu.name}"
        extra_events: list[Event] = []
        apply_error: str | None = None
        weights: Weights = "NotCached"
        rollout: RolloutChoice | None = None
        try:
            weights = await self._ensure_weights(key, md, result)
            startup = startup_budget(md.spec, self.settings.planner)
            template = pod_template(md, result, self.settings, startup)
            await self._observe(key, "Deployment", name)
            base["deployment"] = self._deployment_state(key)
            rollout, why = self._choose_rollout(key, md, result, digest(template))
            if why and base["deployment"] is not None:  # a rollout of a running Deployment
                extra_events.append(Event("Normal", "RolloutStrategy", why))
            # Independent children go out together: a ClusterIP Service alone can take longer
            # than the Deployment (the API server allocates its IP one at a time: bench/apiserver_write_probe.py).
            writes = [
                self._ensure(key, service(md, self.settings)),
                self._ensure_optional(key, "PodDisruptionBudget", name, disruption_budget(md)),
            ]
            if weights in ("NotCached", "Downloaded") or base["deployment"] is not None:
                writes.append(self._ensure(key, deployment(md, template, startup, rollout)))
            failures = [
                r
                for r in await asyncio.gather(*writes, return_exceptions=True)
                if isinstance(r, BaseException)
            ]
            if failures:
                raise failures[0]
            base["deployment"] = self._deployment_state(key)
        except KubeError as e:
            if e.namespace_terminating:
                # The namespace controller is deleting everything in it, this object included:
                # recreating children would only be refused again. Its deletion event ends this.
                log.debug("%s/%s: namespace is terminating, not reconciling", namespace, name)
                return
            apply_error = str(e)
            log.warning("applying children of %s/%s failed: %s", namespace, name, e)
        job = self.store.child(key, "Job")
        obs = Observation(
            **base,
            plan=result,
            weights=weights,
            job=job if isinstance(job, JobState) else None,
            apply_error=apply_error,
            rollout=rollout,
        )
        await self._write_status(body, obs, extra_events)
        if apply_error:
            raise KubeError(0, apply_error)  # the work queue retries with a delay

    # ------------------------------------------------------------------ children

    def _deployment_state(self, key: Key) -> DeploymentState | None:
        child = self.store.child(key, "Deployment")
        return child if isinstance(child, DeploymentState) else None

    async def _ensure(self, owner: Key, manifest: JSON) -> None:
        """Apply ``manifest`` unless the child already carries its config hash."""
        kind, name = manifest["kind"], manifest["metadata"]["name"]
        want = manifest["metadata"]["annotations"][CONFIG_HASH_ANNOTATION]
        have = await self._observe(owner, kind, name)
        if have is not None and have.config_hash == want:
            return
        log.debug(
            "applying %s %s/%s (have %s, want %s)", kind, owner[0], name, have and have.config_hash, want
        )
        applied = await self.api.apply(manifest)
        self.store.set_child(owner, summarize_child(applied))

    async def _observe(self, owner: Key, kind: str, name: str) -> ChildState | None:
        """The child as last seen. Right after a restart a ModelDeployment's event can arrive
        before its children's: then ask the server rather than act on a guess (re-applying,
        or choosing a rollout strategy from half the picture). An object that was never
        reconciled (no status) has no children to find, so it skips the round trip."""
        have = self.store.child(owner, kind)
        if have is None and self._converged_before(owner):
            found = await self.api.get(_API_VERSIONS[kind], kind, owner[0], name)
            if found is not None:
                have = summarize_child(found)
                self.store.set_child(owner, have)
        return have

    def _converged_before(self, owner: Key) -> bool:
        body = self.store.model_deployments.get(owner)
        return bool(body and (body.get("status") or {}).get("observedGeneration"))

    async def _ensure_optional(self, owner: Key, kind: str, name: str, manifest: JSON | None) -> None:
        if manifest is not None:
            await self._ensure(owner, manifest)
        elif self.store.child(owner, kind) is not None:
            await self.api.delete(_API_VERSIONS[kind], kind, owner[0], name)
            self.store.drop_child(owner, kind, name)

    async def _ensure_weights(self, owner: Key, md: ModelDeployment, plan: Plan) -> Weights:
        name = md.metadata["name"]
        claim = weights_claim(md)
        job = download_job(md, plan, self.settings)
        await self._ensure_optional(owner, "PersistentVolumeClaim", f"{name}-weights", claim)
        if job is None:
            await self._ensure_optional(owner, "Job", download_job_name(md), None)
            return "NotCached"
        current = self.store.child(owner, "Job")
        want = job["metadata"]["annotations"][CONFIG_HASH_ANNOTATION]
        if current is not None and current.config_hash != want:
            # A Job's pod template is immutable: a new repo/revision means a new Job. The
            # DELETED watch event requeues us and the next pass creates it.
            await self.api.delete("batch/v1", "Job", owner[0], current.name)
            self.store.drop_child(owner, "Job", current.name)
            return "Downloading"
        await self._ensure(owner, job)
        state = self.store.child(owner, "Job")
        if isinstance(state, JobState) and state.succeeded:
            return "Downloaded"
        if isinstance(state, JobState) and state.failed:
            return "Failed"
        return "Downloading"

    def _choose_rollout(
        self, owner: Key, md: ModelDeployment, plan: Plan, template_hash: str
    ) -> tuple[RolloutChoice, str | None]:
        """Surge or Recreate, and a message when the choice was (re)made from capacity.

        Auto decides only when a rollout is about to happen (new object or new pod template);
        between rollouts it keeps what the Deployment has, so GPU usage elsewhere in the
        cluster never flips the strategy back and forth (and never causes writes).
        """
        strategy = md.spec.rollout.strategy
        if strategy == "Surge" or strategy == "Recreate":
            return strategy, None
        existing = self._deployment_state(owner)
        if (
            existing is not None
            and existing.template_hash == template_hash
            and existing.max_surge is not None
        ):
            return ("Surge" if existing.max_surge not in ("0", "0%") else "Recreate"), None
        capacity = spare_capacity(
            self.store.nodes.values(),
            self.store.pods.values(),
            resource=gpu_resource(md),
            node_labels=node_label_requirements(md, self.settings),
            gpus_per_replica=plan.gpus_per_replica,
        )
        choice: Literal["Surge", "Recreate"] = "Surge" if capacity.replica_slots >= 1 else "Recreate"
        return choice, f"rollout Auto chose {choice}: {capacity.describe(plan.gpus_per_replica)}"

    # ------------------------------------------------------------------ status

    async def _write_status(
        self, body: JSON, obs: Observation, extra_events: list[Event] | None = None
    ) -> None:
        meta = body["metadata"]
        current = body.get("status") or {}
        previous_conditions = current.get("conditions") or []
        new = evaluate(obs, previous_conditions, _now())
        events = transitions(previous_conditions, new["conditions"])
        events += extra_events or []
        if _prune_none(new) != current:
            # Keys the new status no longer has are removed (merge patch null); keys we never
            # write (none today) would be left alone.
            patch = new | {k: None for k in current if k not in new}
            try:
                updated = await self.api.patch_status(
                    API_VERSION, KIND, meta["namespace"], meta["name"], patch
                )
            except KubeError as e:
                if e.not_found:
                    return  # deleted meanwhile; its DELETED event drops it from the store
                raise
            key = (meta["namespace"], meta["name"])
            if key in self.store.model_deployments and updated:
                self.store.model_deployments[key] = updated
        await asyncio.gather(*(self._record(body, event) for event in events))

    async def _record(self, body: JSON, event: Event) -> None:
        meta = body["metadata"]
        log.info(
            "event %s/%s %s %s: %s", meta["namespace"], meta["name"], event.type, event.reason, event.message
        )
        try:
            await self.api.event(
                body, type_=event.type, reason=event.reason, message=event.message, component=COMPONENT
            )
        except KubeError as e:  # an event is best effort; status already says it
            if not e.namespace_terminating:
                log.warning(
                    "could not record event %s on %s/%s: %s", event.reason, meta["namespace"], meta["name"], e
                )
