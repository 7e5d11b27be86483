"""Session-wide test wiring: the real local control plane for tests marked `cluster`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from devtools.cluster import LocalCluster
from tests.support.clusters import running_cluster

CLUSTER_DIR = Path(__file__).parent / "cluster"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Everything under tests/cluster/ needs the control plane: mark it so `-m "not cluster"`
    # gives the fast loop, without relying on each test to remember the marker.
    for item in items:
        if CLUSTER_DIR in Path(str(item.path)).parents:
            item.add_marker(pytest.mark.cluster)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    # A cluster test that skips is a failing test: the control plane is part of the product's
    # test bed, not an optional extra. Turn any skip of a `cluster` test into a failure.
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if report.skipped and item.get_closest_marker("cluster") and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"cluster test skipped, which counts as a failure: {report.longrepr}"


@pytest.fixture(scope="session")
def cluster() -> Iterator[LocalCluster]:
    """The real local control plane (etcd, kube-apiserver, controller-manager, scheduler, kwok)."""
    with running_cluster() as local:
        yield local


@pytest.fixture
def namespace(cluster: LocalCluster, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace per test, deleted afterwards (without waiting for it to go)."""
    name = cluster.create_namespace(request.node.name)
    yield name
    cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)
