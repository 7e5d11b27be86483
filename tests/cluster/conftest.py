"""Fixtures for tests of the operator on the real local control plane."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.cluster import LocalCluster
from tests.support.operator_process import OperatorProcess


@pytest.fixture(scope="session")
def operator(cluster: LocalCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[OperatorProcess]:
    """The operator, installed (CRDs) and running as its own process for the whole session."""
    proc = OperatorProcess(cluster, Path(tmp_path_factory.mktemp("operator")) / "operator.log")
    proc.install_crds()
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    # A failing operator test is read together with what the operator logged.
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    funcargs = getattr(item, "funcargs", {})
    if report.failed and isinstance(funcargs.get("operator"), OperatorProcess):
        report.sections.append(("operator log (tail)", funcargs["operator"].log_tail(80)))
