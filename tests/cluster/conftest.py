"""Fixtures for tests of the operator on the real local control plane."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from devtools.cluster import LocalCluster
from devtools.operator_process import OperatorProcess
from tests.support.clusters import running_cluster


@pytest.fixture(scope="session")
def operator(cluster: LocalCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[OperatorProcess]:
    """The operator, installed (CRDs) and running as its own process for the whole session."""
    proc = OperatorProcess(cluster, Path(tmp_path_factory.mktemp("operator")) / "operator.log")
    cluster.install_crds()
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture(scope="session")
def served_cluster() -> Iterator[LocalCluster]:
    """A served cluster (`kind/cluster up --serve`): in its own network namespace, with the pod
    runner making vLLM and gptoss-operator pods answer at their pod IPs."""
    with running_cluster("the served local cluster", serve=True) as local:
        yield local


@pytest.fixture
def served_namespace(served_cluster: LocalCluster, request: pytest.FixtureRequest) -> Iterator[str]:
    name = served_cluster.create_namespace(request.node.name)
    yield name
    served_cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    # A failing operator test is read together with what the operator logged.
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    funcargs = getattr(item, "funcargs", {})
    if report.failed and isinstance(funcargs.get("operator"), OperatorProcess):
        report.sections.append(("operator log (tail)", funcargs["operator"].log_tail(80)))


@pytest.fixture(scope="module")
def own_cluster() -> Iterator[LocalCluster]:
    """A local control plane for one module alone (never a reused GPTOSS_TEST_CLUSTER): for tests
    whose operator must be the only writer, or which count every write."""
    with running_cluster(reuse_env=False) as local:
        yield local


@pytest.fixture(scope="module")
def own_served_cluster() -> Iterator[LocalCluster]:
    """A served cluster for one module alone (never a reused GPTOSS_TEST_SERVED_CLUSTER): for
    tests whose chart-installed operators must be the only operators in it."""
    with running_cluster("a served local cluster", serve=True, reuse_env=False) as local:
        yield local
