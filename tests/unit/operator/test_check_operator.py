"""`gptoss-operator check-operator` (the chart's `helm test`): its verdict from EndpointSlices,
each replica's /metrics and the Lease. (On a served cluster: tests/cluster/test_helm_served.py.)"""

from __future__ import annotations

from typing import Any

from gptoss_operator.commands.check_operator import Replica, Scrape, parse_metrics, problems, ready_replicas


def endpoint_slice(service: str, *endpoints: tuple[str, str, bool | None]) -> dict[str, Any]:
    eps = []
    for pod, ip, ready in endpoints:
        ep: dict[str, Any] = {"addresses": [ip], "targetRef": {"kind": "Pod", "name": pod}}
        if ready is not None:
            ep["conditions"] = {"ready": ready}
        eps.append(ep)
    return {
        "metadata": {"name": f"{service}-abc", "labels": {"kubernetes.io/service-name": service}},
        "ports": [{"name": "metrics", "port": 9401, "protocol": "TCP"}],
        "endpoints": eps,
    }


def test_ready_replicas_come_from_the_services_own_slices() -> None:
    slices = [
        endpoint_slice(
            "op-metrics", ("op-b", "10.0.0.3", True), ("op-a", "10.0.0.2", None), ("op-c", "10.0.0.4", False)
        ),
        endpoint_slice("other", ("x", "10.0.0.9", True)),
    ]
    assert ready_replicas(slices, "op-metrics", "metrics") == [
        Replica("op-a", "10.0.0.2", 9401),
        Replica("op-b", "10.0.0.3", 9401),
    ]
    assert ready_replicas(slices, "op-metrics", "http") == []


def test_parse_metrics_reads_the_leader_gauge() -> None:
    text = "# HELP gptoss_operator_leader x\n# TYPE gptoss_operator_leader gauge\ngptoss_operator_leader 1.0\ngptoss_operator_queue_depth 0.0\n"
    assert parse_metrics(text) == Scrape(present=True, leader=1.0)
    assert parse_metrics("python_info 1.0\n") == Scrape(present=False, leader=None)


A, B = Replica("op-a", "10.0.0.2", 9401), Replica("op-b", "10.0.0.3", 9401)
LEADS, STANDS_BY = Scrape(present=True, leader=1), Scrape(present=True, leader=0)


def test_one_leader_among_answering_replicas_passes() -> None:
    assert problems([A, B], {"op-a": LEADS, "op-b": STANDS_BY}, None) == []
    assert problems([A, B], {"op-a": LEADS, "op-b": STANDS_BY}, "op-a_7c1e") == []


def test_no_endpoint_fails() -> None:
    assert problems([], {}, None) == [
        "the Service has no ready endpoint: no operator pod is running and ready"
    ]


def test_a_silent_replica_fails() -> None:
    (problem,) = problems([A, B], {"op-a": LEADS, "op-b": Scrape(error="ConnectionRefused")}, None)
    assert "op-b" in problem
    assert "did not answer" in problem


def test_no_leader_or_two_leaders_fail() -> None:
    assert "0 replicas report" in problems([A, B], {"op-a": STANDS_BY, "op-b": STANDS_BY}, None)[0]
    assert "2 replicas report" in problems([A, B], {"op-a": LEADS, "op-b": LEADS}, None)[0]


def test_something_else_answering_fails() -> None:
    (problem,) = problems([A], {"op-a": Scrape(present=False)}, None)
    assert "without the operator's metrics" in problem


def test_the_leader_must_hold_the_lease() -> None:
    (problem,) = problems([A, B], {"op-a": LEADS, "op-b": STANDS_BY}, "op-b_91f0")
    assert "held by op-b_91f0" in problem
    (problem,) = problems([A], {"op-a": LEADS}, "")
    assert "held by nobody" in problem
    # A prefix of another pod's name is not a match: the identity is "<pod>_<uuid>".
    assert problems([Replica("op", "10.0.0.2", 9401)], {"op": LEADS}, "op-a_1") != []
