"""A local control plane for a fixture: started, failed (never skipped) when it cannot start,
stopped afterwards."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from devtools.cluster import ClusterStartError, LocalCluster


@contextmanager
def running_cluster(what: str = "the local control plane", **options: Any) -> Iterator[LocalCluster]:
    """``LocalCluster.start(**options)`` for the duration of the block."""
    try:
        local = LocalCluster.start(**options)
    except ClusterStartError as e:
        pytest.fail(f"{what} could not start:\n{e}", pytrace=False)
    try:
        yield local
    finally:
        local.stop()
