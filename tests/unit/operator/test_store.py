"""Store: the pods_by_owner and GPU-use indexes follow set/drop/relabel; children by kind."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gptoss_operator.controller.store import Store
from gptoss_operator.observed import ChildState, PodState, gpus_in_use


def pod(name: str, instance: str | None = "oss", namespace: str = "llm", phase: str = "Running") -> PodState:
    return PodState(
        namespace=namespace,
        name=name,
        node="gpu-1",
        phase=phase,
        gpus={"nvidia.com/gpu": 2},
        instance=instance,
        managed=instance is not None,
        component="server" if instance else None,
    )


class TestPodsByOwner:
    def test_set_indexes_managed_pods(self):
        s = Store()
        s.set_pod(pod("b"))
        s.set_pod(pod("a"))
        assert [p.name for p in s.owned_pods(("llm", "oss"))] == ["a", "b"]

    def test_unmanaged_pods_are_stored_but_not_indexed(self):
        s = Store()
        s.set_pod(pod("x", instance=None))
        assert ("llm", "x") in s.pods
        assert dict(s.pods_by_owner) == {}

    def test_update_replaces_the_summary(self):
        s = Store()
        s.set_pod(pod("a", phase="Pending"))
        s.set_pod(pod("a", phase="Running"))
        assert [p.phase for p in s.owned_pods(("llm", "oss"))] == ["Running"]

    def test_drop_removes_the_last_entry_and_the_owner(self):
        s = Store()
        s.set_pod(pod("a"))
        s.drop_pod(("llm", "a"))
        assert (s.pods, dict(s.pods_by_owner)) == ({}, {})

    def test_drop_keeps_siblings(self):
        s = Store()
        s.set_pod(pod("a"))
        s.set_pod(pod("b"))
        s.drop_pod(("llm", "a"))
        assert s.pods_by_owner[("llm", "oss")] == {"b"}

    def test_drop_unknown_is_a_no_op(self):
        s = Store()
        s.set_pod(pod("a"))
        s.drop_pod(("llm", "zzz"))
        assert s.pods_by_owner[("llm", "oss")] == {"a"}

    def test_relabel_moves_the_pod_to_the_new_owner(self):
        s = Store()
        s.set_pod(pod("a", instance="oss"))
        s.set_pod(pod("a", instance="oss-20b"))
        assert (s.owned_pods(("llm", "oss")), [p.name for p in s.owned_pods(("llm", "oss-20b"))]) == (
            [],
            ["a"],
        )
        assert ("llm", "oss") not in s.pods_by_owner

    def test_unlabel_removes_the_pod_from_its_owner(self):
        s = Store()
        s.set_pod(pod("a"))
        s.set_pod(pod("a", instance=None))
        assert dict(s.pods_by_owner) == {}

    def test_owners_are_per_namespace(self):
        s = Store()
        s.set_pod(pod("a", namespace="llm"))
        s.set_pod(pod("a", namespace="dev"))
        s.drop_pod(("dev", "a"))
        assert [(p.namespace, p.name) for p in s.owned_pods(("llm", "oss"))] == [("llm", "a")]
        assert s.owned_pods(("dev", "oss")) == []

    def test_lookup_does_not_create_owners(self):
        s = Store()
        s.owned_pods(("llm", "nobody"))
        assert dict(s.pods_by_owner) == {}


# A few names, nodes and phases so a random sequence keeps hitting the same pods: it moves
# them between nodes and phases, adds and removes GPUs, and deletes pods that exist or not.
pods_st = st.builds(
    PodState,
    namespace=st.sampled_from(["llm", "dev"]),
    name=st.sampled_from(["a", "b", "c", "d"]),
    node=st.sampled_from([None, "gpu-1", "gpu-2", "gpu-3"]),
    phase=st.sampled_from(["Pending", "Running", "Succeeded", "Failed", "Unknown"]),
    gpus=st.dictionaries(st.sampled_from(["nvidia.com/gpu", "amd.com/gpu"]), st.integers(0, 8), max_size=2),
    instance=st.sampled_from([None, "oss"]),
    managed=st.booleans(),
    terminating=st.booleans(),
)
events_st = st.lists(
    st.one_of(
        st.tuples(st.just("set"), pods_st),
        st.tuples(
            st.just("drop"), st.tuples(st.sampled_from(["llm", "dev"]), st.sampled_from(["a", "b", "c", "d"]))
        ),
    ),
    max_size=40,
)


class TestGpuUse:
    @settings(max_examples=300, deadline=None)
    @given(events_st)
    def test_index_equals_a_recomputation_after_any_sequence(self, events):
        s = Store()
        for op, arg in events:
            if op == "set":
                s.set_pod(arg)
            else:
                s.drop_pod(arg)
            assert s.gpu_use == gpus_in_use(s.pods.values())
            assert s.gpus_in_use() == s.gpu_use

    def test_finishing_moving_and_deleting_a_pod(self):
        s = Store()
        s.set_pod(pod("a"))  # 2 GPUs on gpu-1
        assert s.gpu_use == {("gpu-1", "nvidia.com/gpu"): 2}
        s.set_pod(pod("a", phase="Succeeded"))
        assert s.gpu_use == {}
        s.set_pod(PodState("llm", "a", "gpu-2", "Running", {"nvidia.com/gpu": 2}, "oss", True))
        assert s.gpu_use == {("gpu-2", "nvidia.com/gpu"): 2}
        s.drop_pod(("llm", "a"))
        assert s.gpu_use == {}

    def test_snapshot_does_not_follow_later_events(self):
        # What gather hands decide is frozen: a pod event during the reconcile changes nothing.
        s = Store()
        s.set_pod(pod("a"))
        seen = s.gpus_in_use()
        s.set_pod(pod("b"))
        assert seen == {("gpu-1", "nvidia.com/gpu"): 2}
        assert s.gpus_in_use() == {("gpu-1", "nvidia.com/gpu"): 4}
        with pytest.raises(TypeError):
            seen[("gpu-1", "nvidia.com/gpu")] = 0  # type: ignore[index]

    def test_snapshot_is_shared_until_the_index_changes(self):
        s = Store()
        s.set_pod(pod("a"))
        assert s.gpus_in_use() is s.gpus_in_use()


class TestChildren:
    def test_set_and_get_by_kind(self):
        s = Store()
        s.set_child(("llm", "oss"), ChildState("Service", "oss", "h1"))
        assert s.model_deployment_children.get(("llm", "oss"), "Service") == ChildState(
            "Service", "oss", "h1"
        )
        assert s.model_deployment_children.get(("llm", "oss"), "Job") is None

    def test_drop_only_the_named_child(self):
        # The DELETED event of a replaced Job must not drop its successor.
        s = Store()
        s.set_child(("llm", "oss"), ChildState("Job", "oss-download", "new"))
        s.model_deployment_children.drop(("llm", "oss"), "Job", "oss-download-old")
        assert s.model_deployment_children.get(("llm", "oss"), "Job") is not None

    def test_drop_the_last_child_drops_the_owner(self):
        s = Store()
        s.set_child(("llm", "oss"), ChildState("Service", "oss", "h1"))
        s.model_deployment_children.drop(("llm", "oss"), "Service", "oss")
        assert dict(s.children) == {}
