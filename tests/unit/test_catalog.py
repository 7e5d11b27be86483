"""The GPU catalog covers the API's GPU types with consistent, sourced entries."""

from __future__ import annotations

from typing import get_args

import pytest

from gptoss_operator.api import GPUType
from gptoss_operator.planning import CATALOG, DEFAULT_SETTINGS, NodeLabel, PlannerSettings, gpu_profile

REQUIRED = [
    "H100-80GB",
    "H200",
    "B200",
    "A100-80GB",
    "A100-40GB",
    "L40S",
    "L4",
    "A10G",
    "MI300X",
    "T4",
    "V100",
]


def test_catalog_keys_equal_the_api_enum():
    assert set(CATALOG) == set(get_args(GPUType))
    assert set(REQUIRED) <= set(CATALOG)


@pytest.mark.parametrize("name", list(CATALOG))
def test_entries_are_complete_and_sourced(name):
    gpu = gpu_profile(name)
    assert gpu.name == name
    assert gpu.memory_mib > 10_000
    assert gpu.product_labels
    assert gpu.source


@pytest.mark.parametrize(
    ("name", "supported"),
    [("T4", False), ("V100", False), ("A10G", True), ("A100-40GB", True), ("MI300X", True)],
)
def test_support_follows_compute_capability_8(name, supported):
    assert gpu_profile(name).supported is supported


@pytest.mark.parametrize(
    ("name", "large"),
    [
        ("H100-80GB", True),
        ("H200", True),
        ("B200", True),
        ("MI300X", True),
        ("A100-80GB", False),
        ("L40S", False),
        ("L4", False),
    ],
)
def test_vllm_large_batch_defaults_rule(name, large):
    # vllm engine/arg_utils.py get_batch_defaults: >= 70 GiB and not an A100.
    assert gpu_profile(name).vllm_large_batch_defaults is large


@pytest.mark.parametrize(
    ("name", "key", "value"),
    [
        ("H100-80GB", "nvidia.com/gpu.product", "NVIDIA-H100-80GB-HBM3"),
        ("L4", "nvidia.com/gpu.product", "NVIDIA-L4"),
        ("A10G", "nvidia.com/gpu.product", "NVIDIA-A10G"),
        ("T4", "nvidia.com/gpu.product", "Tesla-T4"),
        ("MI300X", "amd.com/gpu.product-name", "AMD_Instinct_MI300X_OAM"),
    ],
)
def test_node_labels(name, key, value):
    label = DEFAULT_SETTINGS.node_label_for(gpu_profile(name))
    assert label.key == key
    assert value in label.values


def test_node_labels_are_overridable():
    settings = PlannerSettings(
        product_label_keys={"nvidia": "cloud.example/gpu", "amd": "amd.com/gpu.product-name"},
        product_label_values={"H100-80GB": ("h100",)},
    )
    assert settings.node_label_for(gpu_profile("H100-80GB")) == NodeLabel(
        key="cloud.example/gpu", values=("h100",)
    )
    assert settings.node_label_for(gpu_profile("L4")).values == ("NVIDIA-L4",)


def test_local_cluster_gpu_products_are_in_the_catalog():
    # kind/nodes.yaml labels kwok nodes like GFD does; every product there must map to a type.
    import pathlib

    import yaml

    nodes = yaml.safe_load((pathlib.Path(__file__).resolve().parents[2] / "kind" / "nodes.yaml").read_text())
    known = {v for g in CATALOG.values() for v in g.product_labels}
    gpu_pools = [pool for pool in nodes["pools"] if "gpu" in pool]  # CPU pools have none
    assert gpu_pools
    for pool in gpu_pools:
        assert pool["gpu"]["product"] in known, pool["name"]
