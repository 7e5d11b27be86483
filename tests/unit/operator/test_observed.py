"""observed: summaries of raw watch bodies, and spare GPU capacity for whole replicas."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from gptoss_operator.labels import CONFIG_HASH as CONFIG_HASH_ANNOTATION
from gptoss_operator.labels import TEMPLATE_HASH as TEMPLATE_HASH_ANNOTATION
from gptoss_operator.observed import (
    Capacity,
    ChildState,
    ClaimState,
    DeploymentState,
    JobState,
    NodeState,
    PodState,
    gpus_in_use,
    spare_capacity,
    summarize_child,
    summarize_deployment,
    summarize_job,
    summarize_node,
    summarize_pod,
)

MANAGED_BY = "gptoss-operator"
H100 = {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"}
H100_LABELS = {"nvidia.com/gpu.product": ("NVIDIA-H100-80GB-HBM3", "NVIDIA-H100-PCIe")}


def deployment_body(**status: Any) -> dict[str, Any]:
    """A Deployment as the API server returns it, mid-rollout (2 of 3 updated)."""
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "oss-120b",
            "namespace": "llm",
            "generation": 4,
            "resourceVersion": "81234",
            "annotations": {
                "deployment.kubernetes.io/revision": "3",
                CONFIG_HASH_ANNOTATION: "c85e5be0750a5d82",
                TEMPLATE_HASH_ANNOTATION: "d73323f709f1dc31",
            },
        },
        "spec": {
            "replicas": 3,
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
        },
        "status": {
            "observedGeneration": 3,
            "replicas": 4,
            "readyReplicas": 3,
            "updatedReplicas": 2,
            "availableReplicas": 3,
            "unavailableReplicas": 1,
            "conditions": [
                {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"},
                {"type": "Progressing", "status": "True", "reason": "ReplicaSetUpdated"},
            ],
        }
        | status,
    }


def job_body(status: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": "oss-120b-download",
            "namespace": "llm",
            "annotations": {CONFIG_HASH_ANNOTATION: "j1"},
        },
        "spec": {"backoffLimit": 6},
        "status": status,
    }


def pod_body(
    labels: dict[str, str] | None = None,
    node: str | None = "gpu-node-1",
    gpus: str | None = "2",
    status: dict[str, Any] | None = None,
    **meta: Any,
) -> dict[str, Any]:
    resources = {"limits": {"nvidia.com/gpu": gpus}, "requests": {"nvidia.com/gpu": gpus}} if gpus else {}
    spec: dict[str, Any] = {
        "containers": [{"name": "vllm", "image": "vllm/vllm-openai:v0.15.1", "resources": resources}]
    }
    if node:
        spec["nodeName"] = node
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "oss-120b-6b7c9d-x2kqp",
            "namespace": "llm",
            "labels": {
                "app.kubernetes.io/name": "vllm",
                "app.kubernetes.io/instance": "oss-120b",
                "app.kubernetes.io/component": "server",
                "app.kubernetes.io/managed-by": MANAGED_BY,
                "pod-template-hash": "6b7c9d",
            }
            if labels is None
            else labels,
        }
        | meta,
        "spec": spec,
        "status": {"phase": "Running"} if status is None else status,
    }


def node_body(
    name: str = "gpu-node-1", gpus: dict[str, str] | None = None, ready: str = "True", **spec: Any
) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": {**H100, "kubernetes.io/hostname": name}},
        "spec": spec,
        "status": {
            "capacity": {"cpu": "208", "nvidia.com/gpu": "8"},
            "allocatable": {"cpu": "207500m", "memory": "2113Gi", **(gpus or {"nvidia.com/gpu": "8"})},
            "conditions": [
                {"type": "MemoryPressure", "status": "False"},
                {"type": "Ready", "status": ready, "reason": "KubeletReady"},
            ],
        },
    }


class TestSummarizeDeployment:
    def test_counts(self):
        d = summarize_deployment(deployment_body())
        assert (d.replicas, d.ready_replicas, d.updated_replicas, d.available_replicas) == (4, 3, 2, 3)

    def test_generations(self):
        d = summarize_deployment(deployment_body())
        assert (d.generation, d.observed_generation) == (4, 3)

    def test_hashes(self):
        d = summarize_deployment(deployment_body())
        assert (d.config_hash, d.template_hash) == ("c85e5be0750a5d82", "d73323f709f1dc31")

    def test_rolling_update_parameters_are_strings(self):
        d = summarize_deployment(deployment_body())
        assert (d.max_surge, d.max_unavailable) == ("1", "0")

    def test_percent_surge_is_kept(self):
        body = deployment_body()
        body["spec"]["strategy"]["rollingUpdate"] = {"maxSurge": "25%", "maxUnavailable": "25%"}
        assert summarize_deployment(body).max_surge == "25%"

    def test_recreate_has_no_rolling_parameters(self):
        body = deployment_body()
        body["spec"]["strategy"] = {"type": "Recreate"}
        d = summarize_deployment(body)
        assert (d.max_surge, d.max_unavailable) == (None, None)

    def test_progress_deadline_exceeded(self):
        cond = {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}
        assert summarize_deployment(deployment_body(conditions=[cond])).progress_deadline_exceeded

    def test_progressing_is_not_exceeded(self):
        assert not summarize_deployment(deployment_body()).progress_deadline_exceeded

    def test_replica_failure_is_kept(self):
        # What the deployment controller copies from a ReplicaSet whose pods admission refuses.
        message = 'pods "m-5d4f-" is forbidden: no PriorityClass with name missing was found'
        cond = {"type": "ReplicaFailure", "status": "True", "reason": "FailedCreate", "message": message}
        failure = summarize_deployment(deployment_body(conditions=[cond])).replica_failure
        assert failure == ("FailedCreate", message)

    def test_a_resolved_replica_failure_is_none(self):
        cond = {"type": "ReplicaFailure", "status": "False", "reason": "FailedCreate", "message": "x"}
        assert summarize_deployment(deployment_body(conditions=[cond])).replica_failure is None
        assert summarize_deployment(deployment_body()).replica_failure is None

    def test_a_fresh_deployment_without_status(self):
        body = deployment_body()
        del body["status"]
        d = summarize_deployment(body)
        assert (d.replicas, d.observed_generation, d.progress_deadline_exceeded) == (0, 0, False)

    def test_dispatched_by_kind(self):
        assert isinstance(summarize_child(deployment_body()), DeploymentState)


class TestSummarizeJob:
    def test_running(self):
        j = summarize_job(job_body({"active": 1, "startTime": "2025-01-01T00:00:00Z"}))
        assert (j.succeeded, j.failed, j.active, j.config_hash) == (False, False, 1, "j1")

    def test_complete(self):
        j = summarize_job(job_body({"succeeded": 1, "conditions": [{"type": "Complete", "status": "True"}]}))
        assert (j.succeeded, j.failed) == (True, False)

    def test_failed_keeps_the_message(self):
        cond = {
            "type": "Failed",
            "status": "True",
            "reason": "BackoffLimitExceeded",
            "message": "Job has reached the specified backoff limit",
        }
        j = summarize_job(job_body({"failed": 7, "conditions": [cond]}))
        assert (j.failed, j.message) == (True, "Job has reached the specified backoff limit")

    def test_a_false_condition_does_not_count(self):
        j = summarize_job(job_body({"conditions": [{"type": "Failed", "status": "False"}]}))
        assert not j.failed

    def test_dispatched_by_kind(self):
        assert isinstance(summarize_child(job_body({})), JobState)


@pytest.mark.parametrize(
    ("key", "provisioner"),
    [
        ("volume.kubernetes.io/storage-provisioner", "kubernetes.io/host-path"),
        ("volume.beta.kubernetes.io/storage-provisioner", "kubernetes.io/host-path"),
        ("example.com/other", None),
    ],
)
def test_a_claim_keeps_its_age_and_the_provisioner_asked_for_its_volume(key, provisioner):
    body = {
        "kind": "PersistentVolumeClaim",
        "metadata": {
            "name": "m-weights",
            "creationTimestamp": "2026-01-01T00:00:00Z",
            "annotations": {key: "kubernetes.io/host-path"},
        },
        "spec": {"storageClassName": "standard"},
        "status": {"phase": "Pending"},
    }
    claim = summarize_child(body)
    assert isinstance(claim, ClaimState)
    assert (claim.phase, claim.created, claim.provisioner) == ("Pending", "2026-01-01T00:00:00Z", provisioner)


def test_other_children_keep_only_the_hash():
    body = {
        "kind": "Service",
        "metadata": {"name": "oss-120b", "annotations": {CONFIG_HASH_ANNOTATION: "s1"}},
    }
    assert summarize_child(body) == ChildState("Service", "oss-120b", "s1")


class TestSummarizePod:
    def test_managed_server_pod(self):
        p = summarize_pod(pod_body(), MANAGED_BY)
        assert (p.managed, p.instance, p.component) == (True, "oss-120b", "server")

    def test_placement_and_gpus(self):
        p = summarize_pod(pod_body(), MANAGED_BY)
        assert (p.node, p.phase, dict(p.gpus)) == ("gpu-node-1", "Running", {"nvidia.com/gpu": 2})

    def test_unmanaged_pod_has_no_instance(self):
        p = summarize_pod(pod_body(labels={"app.kubernetes.io/instance": "oss-120b"}), MANAGED_BY)
        assert (p.managed, p.instance, p.component) == (False, None, None)

    def test_gpus_from_limits_only(self):
        body = pod_body()
        del body["spec"]["containers"][0]["resources"]["requests"]
        assert summarize_pod(body, MANAGED_BY).gpus == {"nvidia.com/gpu": 2}

    def test_gpus_summed_over_containers(self):
        body = pod_body()
        body["spec"]["containers"].append({"name": "side", "resources": {"limits": {"amd.com/gpu": "1"}}})
        body["spec"]["containers"].append({"name": "more", "resources": {"limits": {"nvidia.com/gpu": "1"}}})
        assert summarize_pod(body, MANAGED_BY).gpus == {"nvidia.com/gpu": 3, "amd.com/gpu": 1}

    def test_no_gpus(self):
        assert summarize_pod(pod_body(gpus=None), MANAGED_BY).gpus == {}

    def test_ready(self):
        status = {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}
        assert summarize_pod(pod_body(status=status), MANAGED_BY).ready

    def test_not_ready(self):
        status = {"phase": "Running", "conditions": [{"type": "Ready", "status": "False"}]}
        assert not summarize_pod(pod_body(status=status), MANAGED_BY).ready

    def test_terminating(self):
        body = pod_body(deletionTimestamp="2025-01-01T00:00:00Z", deletionGracePeriodSeconds=120)
        assert summarize_pod(body, MANAGED_BY).terminating

    def test_unschedulable_keeps_the_schedulers_message(self):
        message = "0/17 nodes are available: 2 Insufficient nvidia.com/gpu, 15 node(s) didn't match Pod's node affinity/selector."
        status = {
            "phase": "Pending",
            "conditions": [
                {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": message}
            ],
        }
        p = summarize_pod(pod_body(node=None, status=status), MANAGED_BY)
        assert (p.node, p.phase, p.unschedulable) == (None, "Pending", message)

    def test_unschedulable_without_a_message(self):
        status = {
            "phase": "Pending",
            "conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable"}],
        }
        assert summarize_pod(pod_body(node=None, status=status), MANAGED_BY).unschedulable == "unschedulable"

    def test_scheduling_gated_is_not_unschedulable(self):
        status = {
            "phase": "Pending",
            "conditions": [{"type": "PodScheduled", "status": "False", "reason": "SchedulingGated"}],
        }
        assert summarize_pod(pod_body(node=None, status=status), MANAGED_BY).unschedulable is None

    def test_scheduled(self):
        status = {"phase": "Running", "conditions": [{"type": "PodScheduled", "status": "True"}]}
        assert summarize_pod(pod_body(status=status), MANAGED_BY).unschedulable is None

    def test_waiting_reason(self):
        status = {
            "phase": "Running",
            "containerStatuses": [
                {
                    "name": "vllm",
                    "ready": False,
                    "restartCount": 5,
                    "state": {
                        "waiting": {"reason": "CrashLoopBackOff", "message": "back-off 5m0s restarting"}
                    },
                    "lastState": {"terminated": {"exitCode": 1, "reason": "Error"}},
                }
            ],
        }
        assert summarize_pod(pod_body(status=status), MANAGED_BY).waiting_reason == "CrashLoopBackOff"

    def test_running_container_has_no_waiting_reason(self):
        status = {"phase": "Running", "containerStatuses": [{"name": "vllm", "state": {"running": {}}}]}
        assert summarize_pod(pod_body(status=status), MANAGED_BY).waiting_reason is None

    def test_a_pod_without_status(self):
        body = pod_body(node=None)
        del body["status"]
        assert summarize_pod(body, MANAGED_BY).phase == "Pending"


class TestSummarizeNode:
    def test_gpus_and_labels(self):
        n = summarize_node(node_body())
        assert (n.gpus, n.labels["nvidia.com/gpu.product"]) == (
            {"nvidia.com/gpu": 8},
            "NVIDIA-H100-80GB-HBM3",
        )

    def test_ready_and_schedulable(self):
        n = summarize_node(node_body())
        assert (n.ready, n.schedulable) == (True, True)

    def test_cordoned(self):
        assert not summarize_node(node_body(unschedulable=True)).schedulable

    @pytest.mark.parametrize("ready", ["False", "Unknown"])
    def test_not_ready(self, ready):
        assert not summarize_node(node_body(ready=ready)).ready

    def test_amd_gpus(self):
        assert summarize_node(node_body(gpus={"amd.com/gpu": "8"})).gpus == {"amd.com/gpu": 8}

    def test_cpu_node_has_no_gpus(self):
        body = node_body()
        body["status"]["allocatable"] = {"cpu": "4", "memory": "16Gi"}
        assert summarize_node(body).gpus == {}

    def test_taints(self):
        taint = {"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}
        assert summarize_node(node_body(taints=[taint])).taints == (
            ("nvidia.com/gpu", "present", "NoSchedule"),
        )


def node(name: str, gpus: int = 8, resource: str = "nvidia.com/gpu", **kw: Any) -> NodeState:
    values: dict[str, Any] = {"labels": H100, "schedulable": True, "ready": True} | kw
    return NodeState(name=name, gpus={resource: gpus}, **values)


def gpu_pod(
    node_name: str | None, gpus: int, phase: str = "Running", resource: str = "nvidia.com/gpu"
) -> PodState:
    return PodState("llm", f"p-{node_name}-{gpus}-{phase}", node_name, phase, {resource: gpus}, None, False)


def capacity(
    nodes: list[NodeState],
    pods: Sequence[PodState] = (),
    gpus_per_replica: int = 2,
    node_labels: Mapping[str, tuple[str, ...]] = H100_LABELS,
    resource: str = "nvidia.com/gpu",
) -> Capacity:
    return spare_capacity(
        nodes,
        gpus_in_use(pods),
        resource=resource,
        node_labels=node_labels,
        gpus_per_replica=gpus_per_replica,
    )


class TestSpareCapacity:
    def test_empty_nodes(self):
        c = capacity([node("a"), node("b")])
        assert (c.replica_slots, c.matching_nodes, c.free_gpus) == (8, 2, 16)

    def test_a_replica_needs_all_its_gpus_on_one_node(self):
        # 3 free on each of 2 nodes is 6 GPUs but only 2 replicas of TP 2 (TP runs in one pod).
        c = capacity([node("a"), node("b")], [gpu_pod("a", 5), gpu_pod("b", 5)])
        assert (c.replica_slots, c.free_gpus) == (2, 6)

    def test_odd_leftovers_do_not_add_up(self):
        c = capacity([node("a", gpus=4), node("b", gpus=4)], [gpu_pod("a", 3), gpu_pod("b", 3)])
        assert (c.replica_slots, c.free_gpus) == (0, 2)

    def test_tp8_fits_only_on_an_empty_node(self):
        c = capacity([node("a"), node("b")], [gpu_pod("a", 1)], gpus_per_replica=8)
        assert c.replica_slots == 1

    def test_finished_pods_free_their_gpus(self):
        pods = [gpu_pod("a", 8, "Succeeded"), gpu_pod("a", 8, "Failed")]
        assert capacity([node("a")], pods).free_gpus == 8

    def test_pending_and_running_pods_hold_gpus(self):
        pods = [gpu_pod("a", 2, "Pending"), gpu_pod("a", 2, "Running"), gpu_pod("a", 2, "Unknown")]
        assert capacity([node("a")], pods).free_gpus == 2

    def test_unscheduled_pods_hold_nothing(self):
        assert capacity([node("a")], [gpu_pod(None, 8, "Pending")]).free_gpus == 8

    def test_overcommitted_node_counts_zero(self):
        assert capacity([node("a", gpus=2)], [gpu_pod("a", 4)]).free_gpus == 0

    def test_other_gpu_types_do_not_match(self):
        l4 = node("l4", labels={"nvidia.com/gpu.product": "NVIDIA-L4"})
        c = capacity([l4, node("h100", gpus=2)])
        assert (c.replica_slots, c.matching_nodes) == (1, 1)

    def test_any_listed_label_value_matches(self):
        pcie = node("pcie", labels={"nvidia.com/gpu.product": "NVIDIA-H100-PCIe"})
        assert capacity([pcie]).matching_nodes == 1

    def test_every_required_label_must_match(self):
        wanted = H100_LABELS | {"pool": ("inference",)}
        nodes = [
            node("a", labels=H100 | {"pool": "inference"}),
            node("b", labels=H100 | {"pool": "training"}),
            node("c"),
        ]
        assert capacity(nodes, node_labels=wanted).matching_nodes == 1

    @pytest.mark.parametrize("state", [{"schedulable": False}, {"ready": False}])
    def test_cordoned_or_not_ready_nodes_are_excluded(self, state):
        c = capacity([node("a", **state), node("b", gpus=2)])
        assert (c.replica_slots, c.matching_nodes, c.free_gpus) == (1, 1, 2)

    def test_nodes_without_the_resource_are_excluded(self):
        assert capacity([node("a", gpus=0)]).matching_nodes == 0

    def test_amd_resource(self):
        mi300 = {"amd.com/gpu.product-name": "AMD_Instinct_MI300X_OAM"}
        nodes = [node("mi", resource="amd.com/gpu", labels=mi300), node("nv")]
        pods = [gpu_pod("mi", 7, resource="amd.com/gpu"), gpu_pod("mi", 8)]
        wanted = {"amd.com/gpu.product-name": ("AMD_Instinct_MI300X_OAM",)}
        c = capacity(nodes, pods, gpus_per_replica=1, node_labels=wanted, resource="amd.com/gpu")
        assert (c.replica_slots, c.matching_nodes, c.free_gpus) == (1, 1, 1)

    def test_describe(self):
        text = capacity([node("a"), node("b")], [gpu_pod("a", 5), gpu_pod("b", 5)]).describe(2)
        assert text == "2 matching nodes have 6 free GPUs (room for 2 more replicas of 2 GPUs)"


class TestOwnedFields:
    """Drift: the fields the operator's manager owns on the live object against the manifest."""

    MANIFEST: dict[str, Any] = {  # noqa: RUF012
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "c",
            "namespace": "n",
            "labels": {"a": "1"},
            "annotations": {CONFIG_HASH_ANNOTATION: "h"},
        },
        "data": {"config.yaml": "x"},
        "spec": {"ports": [{"name": "http", "port": 80}], "args": ["--a", "1"], "readOnly": False},
    }
    FIELDS: dict[str, Any] = {  # noqa: RUF012
        "f:metadata": {"f:labels": {"f:a": {}}, "f:annotations": {"f:" + CONFIG_HASH_ANNOTATION: {}}},
        "f:data": {"f:config.yaml": {}},
        "f:spec": {
            "f:ports": {'k:{"port":80}': {".": {}, "f:name": {}, "f:port": {}}},
            "f:args": {},
            "f:readOnly": {},
        },
    }

    def live(self, fields: dict[str, Any] | None = None, **changes: Any) -> dict[str, Any]:
        import copy

        body = copy.deepcopy(self.MANIFEST)
        del body["spec"]["readOnly"]  # omitempty: false never comes back
        body["spec"]["clusterIP"] = "10.96.0.9"  # set by the API server, not owned
        body["metadata"]["annotations"]["other/tool"] = "keeps"
        body["metadata"]["managedFields"] = [
            {"manager": MANAGED_BY, "operation": "Apply", "fieldsV1": fields or self.FIELDS},
            {
                "manager": "kube-controller-manager",
                "operation": "Update",
                "fieldsV1": {"f:spec": {"f:clusterIP": {}}},
            },
        ]
        for path, value in changes.items():
            node = body
            *parents, last = path.split("__")
            for p in parents:
                node = node[p]
            node[last] = value
        return body

    def test_unchanged_child_matches_its_manifest(self):
        from gptoss_operator.observed import applied_digest, owned_digest

        assert owned_digest(self.live(), MANAGED_BY) == applied_digest(self.MANIFEST)

    def test_a_field_taken_by_a_hand_edit_differs(self):
        import copy

        from gptoss_operator.observed import applied_digest, owned_digest

        fields = copy.deepcopy(self.FIELDS)
        del fields["f:spec"]["f:args"]  # kubectl edit took the atomic list
        edited = self.live(fields, spec__args=["--a", "1", "--b"])
        assert owned_digest(edited, MANAGED_BY) != applied_digest(self.MANIFEST)

    def test_a_changed_value_still_owned_differs(self):
        from gptoss_operator.observed import applied_digest, owned_digest

        assert owned_digest(self.live(data={"config.yaml": "y"}), MANAGED_BY) != applied_digest(self.MANIFEST)

    def test_no_apply_entry_means_no_opinion(self):
        from gptoss_operator.observed import owned_digest

        body = self.live()
        body["metadata"]["managedFields"] = []
        assert owned_digest(body, MANAGED_BY) is None


class TestOwnedDigestsMemo:
    """The memo of owned_digest gives the digest of the body it is handed, and computes it
    again whenever something that can change an owned value changed (see observed.py)."""

    owned = TestOwnedFields()

    def live(self, fields: dict[str, Any] | None = None, **changes: Any) -> dict[str, Any]:
        time = changes.pop("time", "2026-11-28T10:00:00Z")
        body = self.owned.live(fields, **changes)
        body["metadata"].setdefault("uid", "u-1")
        body["metadata"].setdefault("generation", 1)
        body["metadata"]["managedFields"][0]["time"] = time
        return body

    def check(self, memo: Any, body: dict[str, Any]) -> str | None:
        from gptoss_operator.observed import owned_digest

        got = memo.digest(body)
        assert got == owned_digest(body, MANAGED_BY)
        return got  # type: ignore[no-any-return]

    def memo(self) -> Any:
        from gptoss_operator.observed import OwnedDigests

        return OwnedDigests(MANAGED_BY)

    def test_status_only_events_are_not_digested_again(self):
        memo = self.memo()
        self.check(memo, self.live())
        for ready in range(3):
            self.check(memo, self.live(status={"readyReplicas": ready}))
        assert (memo.misses, memo.hits) == (1, 3)

    def test_a_hand_edit_moves_the_field_and_is_seen(self):
        import copy

        from gptoss_operator.observed import applied_digest

        memo = self.memo()
        assert self.check(memo, self.live()) == applied_digest(self.owned.MANIFEST)
        fields = copy.deepcopy(self.owned.FIELDS)
        del fields["f:spec"]["f:args"]  # kubectl edit took the atomic list
        assert self.check(memo, self.live(fields, spec__args=["--b"])) != applied_digest(self.owned.MANIFEST)
        del fields["f:metadata"]["f:labels"]["f:a"]  # kubectl label a=2 --overwrite
        edited = self.live(fields, spec__args=["--b"], metadata__labels={"a": "2"})
        assert self.check(memo, edited) != applied_digest(self.owned.MANIFEST)
        assert memo.misses == 3

    def test_our_apply_of_new_values_in_the_same_second_is_seen(self):
        # Same field set, same entry time (second resolution): the config hash tells them apart.
        memo = self.memo()
        before = self.check(memo, self.live())
        after = self.live(data={"config.yaml": "y"})
        after["metadata"]["annotations"][CONFIG_HASH_ANNOTATION] = "h2"
        assert self.check(memo, after) != before
        assert memo.misses == 2

    @pytest.mark.parametrize(
        "change", [{"time": "2026-11-28T10:00:01Z"}, {"metadata__generation": 2}], ids=["time", "generation"]
    )
    def test_a_new_entry_time_or_generation_is_digested_again(self, change):
        memo = self.memo()
        self.check(memo, self.live())
        self.check(memo, self.live(data={"config.yaml": "y"}, **change))
        assert memo.misses == 2

    def test_no_uid_or_no_apply_entry(self):
        memo = self.memo()
        body = self.live()
        del body["metadata"]["uid"]
        self.check(memo, body)
        self.check(memo, body)
        body = self.live()
        body["metadata"]["managedFields"] = []
        assert self.check(memo, body) is None
        assert len(memo) == 0

    def test_forget_and_bound(self):
        from gptoss_operator.observed import OwnedDigests

        memo = OwnedDigests(MANAGED_BY, max_entries=2)
        for uid in ("a", "b", "c"):
            self.check(memo, self.live(metadata__uid=uid))
        assert len(memo) == 2
        self.check(memo, self.live(metadata__uid="a"))  # evicted first: computed again
        assert memo.misses == 4
        memo.forget("a")
        memo.forget("unknown")
        assert len(memo) == 1

    def test_summarize_child_uses_it(self):
        memo = self.memo()
        body = self.live()
        assert summarize_child(body, memo) == summarize_child(body)
        assert len(memo) == 1

    def test_a_field_set_marshal_cannot_write_is_digested_without_the_memo(self):
        class Leaf(dict):  # type: ignore[type-arg]  # a dict subclass: not plain JSON
            pass

        memo = self.memo()
        body = self.live()
        body["metadata"]["managedFields"][0]["fieldsV1"]["f:data"] = Leaf({"f:config.yaml": {}})
        self.check(memo, body)
        assert len(memo) == 0
