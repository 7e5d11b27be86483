"""Decide: what one ModelDeployment's children and status should be (pure, no I/O).

``decide`` turns a :class:`Gathered` into a :class:`Desired`: the writes to make, in order
(children whose config hash differs, children to delete), the rollout strategy, the step of the
weight-cache state machine, and the status and events to record if every write succeeds. When
a write fails, ``Desired.on_write_failure`` gives the status that says so. Nothing here talks to
the API server, so every branch is unit-tested without a cluster (tests/unit/operator/test_modeldeployment_decide.py).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from pydantic import ValidationError

from gptoss_operator import kinds
from gptoss_operator import labels as keys
from gptoss_operator.api.v1alpha1 import ModelDeployment, Plan
from gptoss_operator.controller.desired import Apply, Delete, Desired, StatusChange, Write, status_patch
from gptoss_operator.controller.modeldeployment.gathered import Gathered
from gptoss_operator.manifests.common import JSON, child_names, digest, selector_labels
from gptoss_operator.manifests.vllm import (
    RolloutChoice,
    deployment,
    disruption_budget,
    gpu_resource,
    node_label_requirements,
    pod_template,
    service,
)
from gptoss_operator.manifests.weights import download_job, weights_claim
from gptoss_operator.observed import (
    ChildState,
    ClaimState,
    DeploymentState,
    JobState,
    needs_apply,
    spare_capacity,
    summarize_child,
)
from gptoss_operator.planning.catalog import gpu_profile
from gptoss_operator.planning.planner import Refusal, plan_deployment
from gptoss_operator.planning.startup import startup_budget
from gptoss_operator.settings import OperatorSettings
from gptoss_operator.status import (
    Event,
    Observation,
    ProvidedVolume,
    Weights,
    evaluate,
    recheck_after,
    transitions,
)


def decide(g: Gathered, settings: OperatorSettings, now: str) -> Desired:
    name = g.key[1]
    raw_spec = g.body.get("spec")
    # Any JSON can reach here if the CRD's schema was bypassed (an older CRD, a hand-made
    # one): a spec that is not an object is an invalid spec, never a crash.
    spec: Mapping[str, Any] = raw_spec if isinstance(raw_spec, Mapping) else {}
    base = Observation(
        name=name,
        model=str(spec.get("model", "")),
        generation=int(g.body["metadata"].get("generation", 1)),
        desired_replicas=0,
        selector=keys.selector(selector_labels(name)),
        endpoint=settings.endpoint(name, g.key[0]),
        deployment=_deployment(g.children),
        pods=g.server_pods,
        serving_plan=_stored_plan(g.body),
    )
    if g.model is None:
        # Leave whatever runs alone: a bad edit must not take a serving model down.
        replicas = spec.get("replicas")
        obs = dataclasses.replace(
            base, desired_replicas=replicas if isinstance(replicas, int) else 0, spec_error=g.spec_error
        )
        return _only_status(g, obs, now)
    md = g.model
    base = dataclasses.replace(base, desired_replicas=md.spec.replicas)
    result = plan_deployment(md.spec, settings.planner)
    if isinstance(result, Refusal):
        return _only_status(g, dataclasses.replace(base, refusal=(result.reason, result.message)), now)
    plan = result
    gpu = gpu_profile(md.spec.gpu.type)
    base = dataclasses.replace(base, gpu_summary=f"{plan.gpus_per_replica} x {gpu.name}")

    weights_writes, weights, children = _weights_step(g, md, plan, settings)
    startup = startup_budget(md.spec, settings.planner)
    template = pod_template(md, plan, settings, startup)
    rollout, why = choose_rollout(g, md, plan, digest(template), settings)
    extra: tuple[Event, ...] = ()
    existing = _deployment(g.children)
    if why and existing is not None:  # a rollout of a running Deployment
        extra = (Event("Normal", "RolloutStrategy", why),)
    serving: list[Write] = []
    serving += _apply_if_changed(g.children, service(md, settings), children)
    budget = disruption_budget(md)
    if budget is not None:
        serving += _apply_if_changed(g.children, budget, children)
    elif kinds.PDB.kind in g.children:
        serving.append(Delete(kinds.PDB.kind, g.children[kinds.PDB.kind].name))
    # With a cache, the Deployment waits for the download (its pods would load from an empty
    # volume), and with the user's own claim for that claim to exist; once it exists it is kept
    # up to date whatever the weights do. A claim that exists but is not bound does not hold it
    # back: with a WaitForFirstConsumer StorageClass only a pod that uses the claim binds it.
    if weights in ("NotCached", "Downloaded", "VolumeNotBound", "ProvidedVolume") or existing is not None:
        serving += _apply_if_changed(g.children, deployment(md, template, startup, rollout), children)
    obs = dataclasses.replace(
        base,
        plan=plan,
        weights=weights,
        job=_job(children),
        deployment=_deployment(children),
        rollout=rollout,
        download_pods=g.download_pods,
        claim=_claim(children),
        volume=g.volume,
    )
    steps = tuple(step for step in (tuple(weights_writes), tuple(serving)) if step)
    return Desired(
        steps=steps,
        status=status_change(g.body, obs, now, extra),
        on_write_failure=functools.partial(after_write_failure, g, obs, extra, now),
        recheck_after=recheck_after(obs, now),
    )


def after_write_failure(
    g: Gathered, obs: Observation, extra_events: tuple[Event, ...], now: str, error: str
) -> StatusChange:
    """The status when a write failed: Degraded/ApplyFailed, and the children as they were."""
    failed = dataclasses.replace(
        obs, apply_error=error, deployment=_deployment(g.children), job=_job(g.children)
    )
    return status_change(g.body, failed, now, extra_events)


def status_change(
    body: Mapping[str, Any], obs: Observation, now: str, extra_events: Sequence[Event] = ()
) -> StatusChange:
    current = body.get("status") or {}
    previous_conditions = current.get("conditions") or []
    new = evaluate(obs, previous_conditions, now)
    events = (*transitions(previous_conditions, new["conditions"]), *extra_events)
    return StatusChange(status_patch(current, new), events)


def choose_rollout(
    g: Gathered, md: ModelDeployment, plan: Plan, template_hash: str, settings: OperatorSettings
) -> tuple[RolloutChoice, str | None]:
    """Surge or Recreate, and a message when the choice was (re)made from capacity.

    Auto decides only when a rollout is about to happen (new object or new pod template);
    between rollouts it keeps what the Deployment has, so GPU usage elsewhere in the cluster
    never flips the strategy back and forth (and never causes writes).
    """
    strategy = md.spec.rollout.strategy
    if strategy == "Surge" or strategy == "Recreate":
        return strategy, None
    existing = _deployment(g.children)
    if existing is not None and existing.template_hash == template_hash and existing.max_surge is not None:
        return ("Surge" if existing.max_surge not in ("0", "0%") else "Recreate"), None
    capacity = spare_capacity(
        g.nodes,
        g.gpus_in_use,
        resource=gpu_resource(md),
        node_labels=node_label_requirements(md, settings),
        gpus_per_replica=plan.gpus_per_replica,
    )
    choice: Literal["Surge", "Recreate"] = "Surge" if capacity.replica_slots >= 1 else "Recreate"
    return choice, f"rollout Auto chose {choice}: {capacity.describe(plan.gpus_per_replica)}"


# ---------------------------------------------------------------------------- helpers


def _only_status(g: Gathered, obs: Observation, now: str) -> Desired:
    return Desired(
        steps=(), status=status_change(g.body, obs, now), on_write_failure=lambda _: StatusChange(None, ())
    )


def _weights_step(
    g: Gathered, md: ModelDeployment, plan: Plan, settings: OperatorSettings
) -> tuple[list[Write], Weights, dict[str, ChildState]]:
    """The weight cache's state machine: claim, then a download Job, then Downloaded; or, with
    the user's own claim, where that claim stands (the operator writes nothing to it).

    Returns the writes, where the weights stand, and the children as they will be after the
    writes (so status is computed from what the API server will hold).
    """
    children = dict(g.children)
    writes: list[Write] = []
    names = child_names(md.metadata["name"])
    claim = weights_claim(md)
    job = download_job(md, plan, settings)
    provided = md.spec.source.persistent_volume_claim
    if claim is not None:
        writes += _apply_if_changed(g.children, claim, children)
    elif kinds.PVC.kind in g.children and (provided is None or provided.claim_name != names.weights_claim):
        # The cache is gone from the spec: its PVC goes too, unless the spec now names that very
        # claim as its own volume (it holds the weights the cache downloaded).
        writes.append(Delete(kinds.PVC.kind, names.weights_claim))
        children.pop(kinds.PVC.kind)
    current = g.children.get(kinds.JOB.kind)
    if job is None:
        if current is not None:
            writes.append(Delete(kinds.JOB.kind, names.download_job))
            children.pop(kinds.JOB.kind)
        return writes, _volume_weights(g.volume), children
    if current is not None and current.config_hash != job["metadata"]["annotations"][keys.CONFIG_HASH]:
        # A Job's pod template is immutable: a new repo/revision means a new Job. Its DELETED
        # watch event requeues the object and the next pass creates it.
        writes.append(Delete(kinds.JOB.kind, current.name))
        children.pop(kinds.JOB.kind)
        return writes, "Downloading", children
    writes += _apply_if_changed(g.children, job, children)
    state = _job(children)
    if state is not None and state.succeeded:
        return writes, "Downloaded", children
    if state is not None and state.failed:
        return writes, "Failed", children
    return writes, "Downloading", children


def _volume_weights(volume: ProvidedVolume | None) -> Weights:
    """Where the weights stand without a cache: downloaded by each pod (no volume), or the state
    of the user's claim."""
    if volume is None:
        return "NotCached"
    if volume.phase is None:
        return "VolumeNotFound"
    return "ProvidedVolume" if volume.phase == "Bound" else "VolumeNotBound"


def _apply_if_changed(
    current: Mapping[str, ChildState], manifest: JSON, after: dict[str, ChildState]
) -> list[Write]:
    """Apply ``manifest`` unless the child already carries its config hash; record in ``after``
    what the API server will hold once the apply went through."""
    kind = manifest["kind"]
    have = current.get(kind)
    if not needs_apply(have, manifest):
        return []
    after[kind] = predicted_after_apply(have, manifest)
    return [Apply(manifest)]


def predicted_after_apply(have: ChildState | None, manifest: JSON) -> ChildState:
    """The child as the API server returns it from an apply of ``manifest``.

    A spec apply changes no status, and bumps the generation; a new object starts at
    generation 1 with an empty status. (If only metadata changed the generation stays: the
    Deployment's next watch event then corrects the one status field this guesses wrong.)
    """
    new = summarize_child(manifest)
    if isinstance(new, DeploymentState):
        if isinstance(have, DeploymentState):
            return dataclasses.replace(
                have,
                config_hash=new.config_hash,
                template_hash=new.template_hash,
                max_surge=new.max_surge,
                max_unavailable=new.max_unavailable,
                generation=have.generation + 1,
            )
        return dataclasses.replace(new, generation=1)
    return new


def _deployment(children: Mapping[str, ChildState]) -> DeploymentState | None:
    child = children.get(kinds.DEPLOYMENT.kind)
    return child if isinstance(child, DeploymentState) else None


def _claim(children: Mapping[str, ChildState]) -> ClaimState | None:
    child = children.get(kinds.PVC.kind)
    return child if isinstance(child, ClaimState) else None


def _stored_plan(body: Mapping[str, Any]) -> Plan | None:
    """The plan in the stored status: what the running Deployment was built from."""
    stored = (body.get("status") or {}).get("plan")
    if not isinstance(stored, Mapping):
        return None
    try:
        return Plan.model_validate(stored)
    except ValidationError:  # written by an older operator with other fields: show none
        return None


def _job(children: Mapping[str, ChildState]) -> JobState | None:
    child = children.get(kinds.JOB.kind)
    return child if isinstance(child, JobState) else None
