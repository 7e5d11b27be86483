"""Store: the pods_by_owner index follows set/drop/relabel; children by kind."""

from __future__ import annotations

from gptoss_operator.controller.store import Store
from gptoss_operator.observed import ChildState, PodState


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
