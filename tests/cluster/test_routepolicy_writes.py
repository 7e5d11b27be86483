"""What one RoutePolicy costs the API server: the operator's writes from creation to Ready.

Counted by the operator's own ``gptoss_operator_api_writes_total`` (docs/metrics.md), on a cluster
of its own so no other object's writes mix in. ``-s`` prints the figure docs/figures.md quotes.
"""

from __future__ import annotations

from pathlib import Path

from devtools.cluster import LocalCluster, condition, wait_for
from devtools.operator_process import OperatorProcess, settle
from tests.support.modeldeployments import model_deployment, wait_ready
from tests.support.routepolicies import route_policy

# The router's children: ServiceAccount, Role, RoleBinding, ConfigMap, Deployment, Service and
# (two router replicas) a PodDisruptionBudget, each applied once.
CHILDREN = 7
# Status patches: the first status, backends and router pods as they become ready (the Ready
# message counts ready router pods, which can come up one at a time), then Serving; and the events
# of transitions someone may act on. A few, never one per watch event.
MAX_STATUS_PATCHES = 4
MAX_EVENTS = 2


def test_writes_per_route_policy_from_creation_to_ready(own_cluster: LocalCluster, tmp_path: Path) -> None:
    cluster = own_cluster
    operator = OperatorProcess(cluster, tmp_path / "operator.log")
    operator.cluster.install_crds()
    operator.start()
    try:
        namespace = cluster.create_namespace("rp-writes")
        cluster.apply(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": "provider-key"},
                "stringData": {"apiKey": "sk-test-writes"},
            },
            namespace,
        )
        cluster.apply(model_deployment("oss-120b", "gpt-oss-120b", "H100-80GB"), namespace)
        wait_ready(cluster, namespace, "oss-120b")
        settle(3)
        before = operator.writes()

        cluster.apply(route_policy("chat"), namespace)

        def ready() -> bool | None:
            rp = cluster.get("routepolicy", "chat", "-n", namespace)
            cond = condition(rp, "Ready")
            return (cond is not None and cond["status"] == "True") or None

        wait_for(ready, timeout=60, what="the RoutePolicy to be Ready")
        settle(3)
        after = operator.writes()
        delta = {key: after.get(key, 0) - before.get(key, 0) for key in after}
        delta = {key: n for key, n in delta.items() if n}
        total = sum(delta.values())
        by_kind = ", ".join(f"{verb} {resource} {n:.0f}" for (resource, verb), n in sorted(delta.items()))
        print(f"\nwrites per RoutePolicy, creation to Ready: {total:.0f} ({by_kind})")

        applies = sum(n for (_, verb), n in delta.items() if verb == "apply")
        assert applies == CHILDREN, delta
        assert delta.get(("RoutePolicy/status", "patch"), 0) <= MAX_STATUS_PATCHES, delta
        assert delta.get(("Event", "create"), 0) <= MAX_EVENTS, delta
        others = {k for k in delta if k[1] != "apply"} - {
            ("RoutePolicy/status", "patch"),
            ("Event", "create"),
        }
        assert not others, delta  # no deletes, no patches of anything but the policy's status

        # And nothing more while nothing changes.
        settle(5)
        assert operator.writes() == after
    finally:
        operator.stop()
