"""status.evaluate / phase / transitions: every condition reason, timestamps, phase and events."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from gptoss_operator.api.v1alpha1 import ModelDeploymentSpec, ModelDeploymentStatus, Plan
from gptoss_operator.observed import DeploymentState, JobState, PodState
from gptoss_operator.planning import plan_deployment
from gptoss_operator.status import Event, Observation, evaluate, phase, set_conditions, transitions

EARLIER = "2025-01-01T00:00:00Z"
NOW = "2025-01-02T03:04:05Z"
ENDPOINT = "http://m.llm.svc:8000/v1"
# What the scheduler writes into PodScheduled.message when the pool has no free GPU.
NO_GPU = (
    "0/17 nodes are available: 2 Insufficient nvidia.com/gpu, 15 node(s) didn't match Pod's node "
    "affinity/selector. preemption: 0/17 nodes are available: 2 No preemption victims found for "
    "incoming pod, 15 Preemption is not helpful for scheduling."
)
NO_MATCH = "0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector."


def _plan() -> Plan:
    result = plan_deployment(
        ModelDeploymentSpec.model_validate({"model": "gpt-oss-20b", "gpu": {"type": "L4"}})
    )
    assert isinstance(result, Plan), result
    return result


PLAN = _plan()


def rollout(
    replicas: int = 1,
    ready: int | None = None,
    updated: int | None = None,
    available: int | None = None,
    generation: int = 2,
    observed: int = 2,
    deadline_exceeded: bool = False,
) -> DeploymentState:
    """A Deployment's status; by default fully rolled out at ``replicas``."""
    return DeploymentState(
        kind="Deployment",
        name="m",
        config_hash="h",
        generation=generation,
        observed_generation=observed,
        replicas=replicas,
        ready_replicas=replicas if ready is None else ready,
        updated_replicas=replicas if updated is None else updated,
        available_replicas=replicas if available is None else available,
        progress_deadline_exceeded=deadline_exceeded,
    )


def pod(
    name: str = "m-7d9f-abcde",
    node: str | None = "gpu-1",
    unschedulable: str | None = None,
    waiting: str | None = None,
    terminating: bool = False,
) -> PodState:
    return PodState(
        namespace="llm",
        name=name,
        node=node,
        phase="Running" if node else "Pending",
        gpus={"nvidia.com/gpu": 1},
        instance="m",
        managed=True,
        component="server",
        terminating=terminating,
        unschedulable=unschedulable,
        waiting_reason=waiting,
    )


def observe(**overrides: Any) -> Observation:
    """A planned, uncached, fully rolled-out single replica unless overridden."""
    values: dict[str, Any] = {
        "name": "m",
        "model": "gpt-oss-20b",
        "generation": 2,
        "desired_replicas": 1,
        "selector": "app.kubernetes.io/component=server,app.kubernetes.io/instance=m",
        "endpoint": ENDPOINT,
        "plan": PLAN,
        "gpu_summary": "1 x L4",
        "deployment": rollout(),
        "pods": (pod(),),
    }
    return Observation(**(values | overrides))


def conditions(o: Observation, previous: list[dict[str, Any]] | None = None) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in evaluate(o, previous or [], NOW)["conditions"]}


def condition(o: Observation, type_: str) -> tuple[str, str]:
    c = conditions(o)[type_]
    return c["status"], c["reason"]


REFUSALS = [
    ("UnsupportedGPU", "T4 has compute capability 7.5"),
    ("InsufficientGPUMemory", "gpt-oss-120b does not fit on 1 x L4"),
    ("ContextTooLong", "maxModelLen 200000 exceeds gpt-oss-120b's context"),
]


class TestPlanned:
    def test_a_plan_is_planned(self):
        assert condition(observe(), "Planned") == ("True", "Planned")

    def test_message_summarises_the_plan(self):
        message = conditions(observe())["Planned"]["message"]
        assert message.startswith("1 x L4 per replica, tensor parallel 1, max model len 131072")

    def test_invalid_spec(self):
        c = conditions(observe(plan=None, spec_error="spec.gpu.type: Input should be 'H100-80GB', ..."))
        assert (c["Planned"]["status"], c["Planned"]["reason"]) == ("False", "InvalidSpec")
        assert c["Planned"]["message"] == "spec.gpu.type: Input should be 'H100-80GB', ..."

    @pytest.mark.parametrize(("reason", "message"), REFUSALS)
    def test_refusal_reason_and_message(self, reason, message):
        c = conditions(observe(plan=None, refusal=(reason, message)))["Planned"]
        assert (c["status"], c["reason"], c["message"]) == ("False", reason, message)


class TestWeightsReady:
    @pytest.mark.parametrize(
        ("weights", "expected"),
        [
            ("NotCached", ("True", "DownloadAtStart")),
            ("Downloaded", ("True", "Downloaded")),
            ("Downloading", ("False", "Downloading")),
            ("Failed", ("False", "DownloadFailed")),
        ],
    )
    def test_reason_per_weight_state(self, weights, expected):
        assert condition(observe(weights=weights), "WeightsReady") == expected

    def test_unknown_without_a_plan(self):
        assert condition(observe(plan=None, spec_error="bad"), "WeightsReady") == ("Unknown", "NotPlanned")

    def test_failure_carries_the_jobs_message(self):
        job = JobState(
            "Job", "m-download", "h", failed=True, message="Job has reached the specified backoff limit"
        )
        c = conditions(observe(weights="Failed", job=job))["WeightsReady"]
        assert c["message"] == "Job has reached the specified backoff limit"

    def test_failure_without_a_job_message(self):
        c = conditions(observe(weights="Failed", job=None))["WeightsReady"]
        assert c["message"] == "the download Job failed"


class TestProgressing:
    @pytest.mark.parametrize(
        ("overrides", "expected"),
        [
            ({"plan": None, "spec_error": "bad"}, ("False", "NotPlanned")),
            ({"weights": "Downloading", "deployment": None}, ("False", "WaitingForWeights")),
            ({"weights": "Failed", "deployment": None}, ("False", "WaitingForWeights")),
            ({"apply_error": "403 forbidden"}, ("False", "ApplyFailed")),
            ({"deployment": None, "pods": ()}, ("True", "Creating")),
            ({"deployment": rollout(ready=0, updated=0, available=0)}, ("True", "RollingOut")),
            ({"deployment": rollout(observed=1)}, ("True", "RollingOut")),
            ({"deployment": rollout(replicas=2), "desired_replicas": 1}, ("True", "RollingOut")),
            ({}, ("False", "Complete")),
            ({"pods": (pod(node=None, unschedulable=NO_GPU),)}, ("False", "InsufficientGPU")),
            ({"deployment": rollout(ready=0, deadline_exceeded=True)}, ("False", "ProgressDeadlineExceeded")),
        ],
    )
    def test_reason(self, overrides, expected):
        assert condition(observe(**overrides), "Progressing") == expected

    def test_rolling_out_names_the_strategy(self):
        o = observe(desired_replicas=2, deployment=rollout(replicas=2, ready=1, updated=1), rollout="Surge")
        assert conditions(o)["Progressing"]["message"] == "1 of 2 replicas updated, 1 ready (rollout: Surge)"

    def test_complete_counts_replicas(self):
        assert conditions(observe())["Progressing"]["message"] == "1 replicas up to date"


class TestReady:
    @pytest.mark.parametrize(
        ("overrides", "expected"),
        [
            ({"plan": None, "refusal": REFUSALS[0]}, ("False", "NotPlanned")),
            (
                {"desired_replicas": 0, "deployment": rollout(replicas=0), "pods": ()},
                ("False", "ScaledToZero"),
            ),
            ({}, ("True", "Serving")),
            ({"deployment": None, "pods": ()}, ("False", "Starting")),
            ({"deployment": rollout(ready=0, available=0)}, ("False", "Starting")),
            # Ready pods of an old template do not make the new generation Ready.
            # Mid-rollout with every desired replica serving: still Ready (Progressing tells the rollout).
            ({"deployment": rollout(observed=1)}, ("True", "Serving")),
        ],
    )
    def test_reason(self, overrides, expected):
        assert condition(observe(**overrides), "Ready") == expected

    def test_serving_names_model_and_endpoint(self):
        message = conditions(observe())["Ready"]["message"]
        assert message == f"1/1 replicas serve gpt-oss-20b at {ENDPOINT}"

    def test_starting_counts_ready_replicas(self):
        o = observe(desired_replicas=3, deployment=rollout(replicas=3, ready=1, available=1))
        assert conditions(o)["Ready"]["message"] == "1/3 replicas ready"


class TestDegraded:
    @pytest.mark.parametrize(
        ("overrides", "reason"),
        [
            ({"plan": None, "spec_error": "bad"}, "InvalidSpec"),
            *[({"plan": None, "refusal": r}, r[0]) for r in REFUSALS],
            ({"apply_error": "403 forbidden"}, "ApplyFailed"),
            ({"weights": "Failed"}, "DownloadFailed"),
            ({"pods": (pod(node=None, unschedulable=NO_GPU),)}, "InsufficientGPU"),
            ({"pods": (pod(node=None, unschedulable=NO_MATCH),)}, "Unschedulable"),
            ({"pods": (pod(waiting="CrashLoopBackOff"),)}, "CrashLoopBackOff"),
            ({"pods": (pod(waiting="ImagePullBackOff"),)}, "ImagePullBackOff"),
            ({"pods": (pod(waiting="CreateContainerConfigError"),)}, "CreateContainerConfigError"),
            ({"deployment": rollout(ready=0, deadline_exceeded=True)}, "ProgressDeadlineExceeded"),
        ],
    )
    def test_degraded_reason(self, overrides, reason):
        assert condition(observe(**overrides), "Degraded") == ("True", reason)

    def test_pods_that_cannot_be_created_are_degraded_at_once(self):
        # No pod exists, so nothing else would tell: without this the object stays Pending
        # until the Deployment's progress deadline.
        message = 'pods "m-5d4f-" is forbidden: no PriorityClass with name missing was found'
        d = dataclasses.replace(rollout(ready=0, available=0), replica_failure=("FailedCreate", message))
        o = observe(deployment=d, pods=())
        c = conditions(o)["Degraded"]
        assert (c["status"], c["reason"]) == ("True", "FailedCreate")
        assert message in c["message"]
        assert evaluate(o, [], NOW)["phase"] == "Degraded"

    def test_as_expected(self):
        c = conditions(observe())["Degraded"]
        assert (c["status"], c["reason"], c["message"]) == ("False", "AsExpected", "")

    def test_insufficient_gpu_keeps_the_schedulers_message(self):
        o = observe(desired_replicas=2, pods=(pod(), pod("m-7d9f-fghij", node=None, unschedulable=NO_GPU)))
        assert conditions(o)["Degraded"]["message"] == f"1 of 2 vLLM pods cannot be scheduled: {NO_GPU}"

    def test_amd_gpu_shortage_is_insufficient_gpu(self):
        message = "0/4 nodes are available: 4 Insufficient amd.com/gpu."
        assert (
            condition(observe(pods=(pod(node=None, unschedulable=message),)), "Degraded")[1]
            == "InsufficientGPU"
        )

    def test_gpu_shortage_wins_over_other_unschedulable_pods(self):
        pods = (pod("a", node=None, unschedulable=NO_MATCH), pod("b", node=None, unschedulable=NO_GPU))
        assert condition(observe(pods=pods), "Degraded")[1] == "InsufficientGPU"

    def test_terminating_pods_do_not_count(self):
        o = observe(pods=(pod(node=None, unschedulable=NO_GPU, terminating=True),))
        assert condition(o, "Degraded") == ("False", "AsExpected")

    def test_a_still_starting_container_is_not_degraded(self):
        assert condition(observe(pods=(pod(waiting="ContainerCreating"),)), "Degraded")[0] == "False"


class TestLastTransitionTime:
    def previous(self, **changes: str) -> list[dict[str, Any]]:
        """The conditions as written at EARLIER, with some statuses replaced."""
        old = evaluate(observe(), [], EARLIER)["conditions"]
        return [c | ({"status": changes[c["type"]]} if c["type"] in changes else {}) for c in old]

    def test_first_write_stamps_now(self):
        assert {c["lastTransitionTime"] for c in evaluate(observe(), [], NOW)["conditions"]} == {NOW}

    def test_kept_while_status_is_unchanged(self):
        current = evaluate(observe(), self.previous(), NOW)["conditions"]
        assert {c["lastTransitionTime"] for c in current} == {EARLIER}

    def test_kept_when_only_reason_or_message_change(self):
        # Degraded stays True (InsufficientGPU -> CrashLoopBackOff): no transition.
        before = evaluate(observe(pods=(pod(node=None, unschedulable=NO_GPU),)), [], EARLIER)["conditions"]
        after = conditions(observe(pods=(pod(waiting="CrashLoopBackOff"),)), before)["Degraded"]
        assert (after["reason"], after["lastTransitionTime"]) == ("CrashLoopBackOff", EARLIER)

    def test_updated_when_status_flips(self):
        c = conditions(observe(deployment=rollout(ready=0, available=0)), self.previous())
        assert c["Ready"]["lastTransitionTime"] == NOW
        assert c["Planned"]["lastTransitionTime"] == EARLIER

    def test_stamped_when_the_previous_condition_had_no_time(self):
        previous = [{k: v for k, v in c.items() if k != "lastTransitionTime"} for c in self.previous()]
        assert conditions(observe(), previous)["Ready"]["lastTransitionTime"] == NOW

    def test_observed_generation_on_every_condition(self):
        status = evaluate(observe(generation=7), [], NOW)
        assert {c["observedGeneration"] for c in status["conditions"]} == {7}
        assert status["observedGeneration"] == 7


class TestEvaluate:
    def test_condition_order(self):
        types = [c["type"] for c in evaluate(observe(), [], NOW)["conditions"]]
        assert types == ["Planned", "WeightsReady", "Progressing", "Ready", "Degraded"]

    def test_counts_from_the_deployment(self):
        status = evaluate(observe(desired_replicas=3, deployment=rollout(replicas=3, ready=2)), [], NOW)
        assert (status["replicas"], status["readyReplicas"], status["readyText"]) == (3, 2, "2/3")

    def test_no_deployment_counts_zero(self):
        status = evaluate(observe(deployment=None, pods=()), [], NOW)
        assert (status["replicas"], status["readyReplicas"], status["readyText"]) == (0, 0, "0/1")

    def test_plan_is_written_in_camel_case(self):
        assert evaluate(observe(), [], NOW)["plan"]["gpusPerReplica"] == 1

    def test_no_plan_and_no_endpoint_when_refused(self):
        status = evaluate(observe(plan=None, refusal=REFUSALS[1]), [], NOW)
        assert (status["plan"], status["endpoint"]) == (None, None)

    def test_endpoint_and_rollout(self):
        status = evaluate(observe(rollout="Recreate"), [], NOW)
        assert (status["endpoint"], status["rolloutStrategy"]) == (ENDPOINT, "Recreate")

    @pytest.mark.parametrize(
        "overrides",
        [{}, {"rollout": "Surge"}, {"plan": None, "refusal": REFUSALS[2]}, {"weights": "Failed"}],
        ids=["ready", "surge", "refused", "download-failed"],
    )
    def test_round_trips_through_the_status_schema(self, overrides):
        # The API server prunes fields the CRD does not declare; a key the schema lacks would
        # make every resync look like a change and patch the status again.
        status = evaluate(observe(**overrides), [], NOW)
        parsed = ModelDeploymentStatus.model_validate(status)
        written = {k: v for k, v in status.items() if v is not None}
        assert parsed.model_dump(by_alias=True, mode="json", exclude_none=True) == written


class TestPhase:
    @pytest.mark.parametrize(
        ("overrides", "expected"),
        [
            ({"plan": None, "spec_error": "bad", "deployment": None, "pods": ()}, "Failed"),
            ({"plan": None, "refusal": REFUSALS[0], "deployment": None, "pods": ()}, "Failed"),
            # A refused edit while the old Deployment serves: Degraded, not Failed.
            ({"plan": None, "refusal": REFUSALS[0], "serving_plan": PLAN}, "Degraded"),
            ({"plan": None, "spec_error": "bad", "serving_plan": PLAN}, "Degraded"),
            ({"weights": "Failed", "deployment": None, "pods": ()}, "Failed"),
            ({"weights": "Downloading", "deployment": None, "pods": ()}, "Downloading"),
            ({}, "Ready"),
            ({"weights": "Downloaded"}, "Ready"),
            # One replica serves, the other cannot find a GPU.
            (
                {
                    "desired_replicas": 2,
                    "deployment": rollout(replicas=2, ready=1, available=1),
                    "pods": (pod(), pod("m-7d9f-fghij", node=None, unschedulable=NO_GPU)),
                },
                "Degraded",
            ),
            ({"deployment": rollout(ready=0, available=0), "pods": (pod(),)}, "Starting"),
            ({"deployment": rollout(ready=0, available=0), "pods": (pod(terminating=True),)}, "Pending"),
            ({"deployment": None, "pods": ()}, "Pending"),
            ({"deployment": rollout(ready=0), "pods": (pod(node=None, unschedulable=NO_GPU),)}, "Pending"),
            ({"deployment": rollout(ready=0), "pods": (pod(waiting="CrashLoopBackOff"),)}, "Degraded"),
        ],
    )
    def test_phase(self, overrides, expected):
        assert evaluate(observe(**overrides), [], NOW)["phase"] == expected

    @pytest.mark.parametrize(
        ("overrides", "expected"),
        [
            # Scaled to zero: settled, nothing wrong; the Ready condition's reason says why.
            ({"deployment": rollout(replicas=0), "pods": ()}, ("ScaledToZero", "ScaledToZero")),
            # Still scaling down: old pods go, it is already what was asked for.
            (
                {"deployment": rollout(replicas=1), "pods": (pod(terminating=True),)},
                ("ScaledToZero", "ScaledToZero"),
            ),
            (
                {"deployment": rollout(replicas=0), "pods": (), "apply_error": "403"},
                ("Degraded", "ApplyFailed"),
            ),
            # Weights pre-staged while off: the download is what happens.
            ({"deployment": None, "pods": (), "weights": "Downloading"}, ("Downloading", "Downloading")),
            (
                {"plan": None, "refusal": REFUSALS[0], "deployment": None, "pods": ()},
                ("Failed", REFUSALS[0][0]),
            ),
        ],
    )
    def test_scaled_to_zero_phase_and_reason(self, overrides, expected):
        status = evaluate(observe(desired_replicas=0, **overrides), [], NOW)
        assert (status["phase"], status["reason"]) == expected
        ModelDeploymentStatus.model_validate(status)  # the CRD's phase enum takes it

    def test_phase_reads_only_the_conditions_and_counts(self):
        conds = {c["type"]: c for c in evaluate(observe(), [], NOW)["conditions"]}
        conds["Degraded"] = conds["Degraded"] | {"status": "True", "reason": "CrashLoopBackOff"}
        assert phase(conds, ready_replicas=1, pods=()) == "Degraded"
        assert phase(conds, ready_replicas=0, pods=()) == "Degraded"  # a crash loop is not "pending"
        conds["Degraded"] = conds["Degraded"] | {"reason": "InsufficientGPU"}
        assert phase(conds, ready_replicas=0, pods=()) == "Pending"  # waiting for GPUs
        assert phase(conds, ready_replicas=1, pods=()) == "Degraded"


class TestTransitions:
    def events(self, before: Observation | None, after: Observation) -> list[Event]:
        previous = evaluate(before, [], EARLIER)["conditions"] if before else []
        return transitions(previous, evaluate(after, previous, NOW)["conditions"])

    def test_unchanged_conditions_emit_nothing(self):
        assert self.events(observe(), observe()) == []

    def test_progressing_never_emits(self):
        before = observe(desired_replicas=2, deployment=rollout(replicas=2, ready=2, updated=1))
        assert self.events(before, observe(desired_replicas=2, deployment=rollout(replicas=2))) == []

    def test_ready_turning_true_is_not_an_event(self):
        # The happy path: status, kubectl get and kubectl wait say it (docs/operator.md, Events).
        before = observe(desired_replicas=2, deployment=rollout(replicas=2, ready=1, updated=1))
        assert self.events(before, observe(desired_replicas=2, deployment=rollout(replicas=2))) == []
        assert self.events(observe(deployment=rollout(ready=0, available=0)), observe()) == []

    def test_degraded_true_is_a_warning(self):
        events = self.events(observe(), observe(pods=(pod(waiting="CrashLoopBackOff"),)))
        assert events == [
            Event(
                "Warning",
                "CrashLoopBackOff",
                "Degraded: 1 vLLM pods are in CrashLoopBackOff (pod m-7d9f-abcde)",
            )
        ]

    def test_degraded_reason_change_is_a_new_warning(self):
        before = observe(pods=(pod(node=None, unschedulable=NO_GPU),))
        events = self.events(before, observe(pods=(pod(waiting="ImagePullBackOff"),)))
        assert [(e.type, e.reason) for e in events] == [("Warning", "ImagePullBackOff")]

    def test_recovery_is_normal_with_a_default_message(self):
        events = self.events(observe(apply_error="403 forbidden"), observe())
        assert Event("Normal", "AsExpected", "Degraded: Degraded is False") in events
        assert all(e.type == "Normal" for e in events)

    @pytest.mark.parametrize(("reason", "message"), REFUSALS)
    def test_refusal_is_a_warning(self, reason, message):
        events = self.events(None, observe(plan=None, refusal=(reason, message)))
        assert Event("Warning", reason, f"Planned: {message}") in events

    def test_download_failure_warns_once(self):
        events = self.events(observe(weights="Downloading"), observe(weights="Failed"))
        assert [(e.type, e.reason) for e in events] == [("Warning", "DownloadFailed")]

    @pytest.mark.parametrize(("reason", "message"), REFUSALS)
    def test_a_refusal_is_one_event(self, reason, message):
        # Not Planned=False plus an identical Degraded warning plus a "not planned" Normal.
        events = self.events(None, observe(plan=None, refusal=(reason, message), deployment=None, pods=()))
        assert events == [Event("Warning", reason, f"Planned: {message}")]

    def test_a_refused_edit_of_a_serving_model_is_one_event(self):
        before = observe()
        after = observe(plan=None, refusal=REFUSALS[0], serving_plan=PLAN)
        assert self.events(before, after) == [Event("Warning", REFUSALS[0][0], f"Planned: {REFUSALS[0][1]}")]

    def test_a_download_unstuck_is_one_normal_event(self):
        # Degraded's AsExpected says the recovery; WeightsReady back to Downloading adds nothing.
        stuck = observe(
            weights="Downloading",
            deployment=None,
            pods=(),
            download_pods=(pod(node=None, unschedulable=NO_GPU),),
        )
        events = self.events(stuck, observe(weights="Downloading", deployment=None, pods=()))
        assert [(e.type, e.reason) for e in events] == [("Normal", "AsExpected")]

    def test_downloading_again_is_normal(self):
        events = self.events(observe(weights="Downloaded"), observe(weights="Downloading"))
        assert events == [
            Event("Normal", "Downloading", "WeightsReady: the download Job is filling the weight cache")
        ]

    @pytest.mark.parametrize(
        "overrides",
        [
            {},
            {"weights": "Downloading"},
            {"deployment": rollout(ready=0, available=0)},
            {"desired_replicas": 0},
        ],
        ids=["creating", "downloading", "starting", "scaled-to-zero"],
    )
    def test_a_new_object_on_the_happy_path_posts_no_event(self, overrides):
        # Planned, not ready yet, not degraded, downloading: the first status says it all.
        events = self.events(None, observe(**({"deployment": None, "pods": ()} | overrides)))
        assert events == []

    def test_a_new_object_already_serving_posts_no_event(self):
        assert self.events(None, observe()) == []

    def test_planned_again_after_a_refusal_is_normal(self):
        events = self.events(observe(plan=None, refusal=REFUSALS[0]), observe())
        assert ("Normal", "Planned") in [(e.type, e.reason) for e in events]

    def test_cache_filled_is_news(self):
        events = self.events(observe(weights="Downloading"), observe(weights="Downloaded"))
        assert events == [Event("Normal", "Downloaded", "WeightsReady: the weight cache is filled")]

    def test_new_object_already_degraded_warns(self):
        events = self.events(None, observe(apply_error="403 forbidden"))
        assert Event("Warning", "ApplyFailed", "Degraded: 403 forbidden") in events

    def test_ready_lost_is_normal(self):
        events = self.events(observe(), observe(deployment=rollout(ready=0, available=0)))
        assert events == [Event("Normal", "Starting", "Ready: 0/1 replicas ready")]


class TestSetConditions:
    """The one merge both kinds use (ModelDeployment here, RoutePolicy in its decide)."""

    def cond(self, type_: str, status: str, reason: str = "R", message: str = "") -> dict[str, Any]:
        return {"type": type_, "status": status, "reason": reason, "message": message}

    def test_new_conditions_are_stamped_now_with_the_generation(self):
        out = set_conditions([], [self.cond("Ready", "False")], 3, NOW)
        assert out == [self.cond("Ready", "False") | {"observedGeneration": 3, "lastTransitionTime": NOW}]

    def test_time_is_kept_while_the_status_is_unchanged_even_if_the_reason_changes(self):
        previous = set_conditions([], [self.cond("Ready", "True", "A", "a")], 1, EARLIER)
        (out,) = set_conditions(previous, [self.cond("Ready", "True", "B", "b")], 2, NOW)
        assert (out["reason"], out["message"], out["observedGeneration"]) == ("B", "b", 2)
        assert out["lastTransitionTime"] == EARLIER

    def test_time_moves_when_the_status_flips(self):
        previous = set_conditions(
            [], [self.cond("Ready", "True"), self.cond("Degraded", "False")], 1, EARLIER
        )
        out = set_conditions(previous, [self.cond("Ready", "False"), self.cond("Degraded", "False")], 1, NOW)
        assert [c["lastTransitionTime"] for c in out] == [NOW, EARLIER]

    def test_a_previous_condition_without_a_time_gets_now(self):
        (out,) = set_conditions([self.cond("Ready", "True")], [self.cond("Ready", "True")], 1, NOW)
        assert out["lastTransitionTime"] == NOW

    def test_order_is_the_callers_and_stale_types_are_dropped(self):
        previous = set_conditions([], [self.cond("Gone", "True"), self.cond("Ready", "True")], 1, EARLIER)
        out = set_conditions(previous, [self.cond("Degraded", "False"), self.cond("Ready", "True")], 1, NOW)
        assert [(c["type"], c["lastTransitionTime"]) for c in out] == [("Degraded", NOW), ("Ready", EARLIER)]

    def test_the_inputs_are_not_modified(self):
        current = [self.cond("Ready", "True")]
        set_conditions([], current, 1, NOW)
        assert current == [self.cond("Ready", "True")]
