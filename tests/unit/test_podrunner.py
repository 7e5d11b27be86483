"""kind/podrunner.py's pure parts: reading vLLM flags, $(VAR) expansion, the kubelet's
atomic volume layout. (Its behaviour on a cluster: tests/cluster/test_served_cluster.py.)"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

PODRUNNER = Path(__file__).resolve().parents[2] / "kind" / "podrunner.py"


@pytest.fixture(scope="module")
def pr() -> ModuleType:
    # kind/ is scripts, not a package: load the file as a module.
    spec = importlib.util.spec_from_file_location("kind_podrunner", PODRUNNER)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def pod(ip: str = "10.0.3.4") -> dict[str, Any]:
    return {"metadata": {"name": "p", "namespace": "ns", "uid": "u"}, "spec": {}, "status": {"podIP": ip}}


def test_flag_values_reads_spaced_equals_and_multi_value_forms(pr: ModuleType) -> None:
    argv = ["--model", "m", "--served-model-name", "a", "b", "--port=9000", "--max-model-len", "10"]
    assert pr.flag_values(argv, "--served-model-name") == ["a", "b"]
    assert pr.flag_values(argv, "--port") == ["9000"]
    assert pr.flag_values(argv, "--max-model-len") == ["10"]
    assert pr.flag_values(argv, "--absent") == []
    assert pr.flag_values(["--port", "1", "--port", "2"], "--port") == ["2"]  # last wins


def test_vllm_containers_are_recognised_and_others_are_not(pr: ModuleType) -> None:
    assert pr.is_vllm({"image": "vllm/vllm-openai:v0.11.0", "args": ["--model", "x"]})
    assert pr.is_vllm({"image": "example/server", "command": ["vllm", "serve", "x"]})
    assert pr.is_vllm({"image": "example/server", "args": ["--served-model-name=x"]})
    assert not pr.is_vllm({"image": "busybox", "command": ["sleep", "1"]})
    assert pr.is_project({"command": ["gptoss-operator", "router", "--config", "c"]})
    assert pr.is_project({"command": ["python3", "-m", "gptoss_operator.simulators.hosted"]})
    assert not pr.is_project({"command": ["python3", "-m", "http.server"]})
    assert not pr.is_project({"command": ["/bin/gptoss-operatorx"]})


def test_simulator_argv_maps_the_pods_vllm_flags(pr: ModuleType) -> None:
    c = {"image": "vllm/vllm-openai", "args": ["--model", "/models/gpt-oss-120b", "--served-model-name",
         "gpt-oss-120b", "--port", "8001", "--max-model-len", "131072"]}  # fmt: skip
    argv = pr.vllm_simulator_argv(pod(), c)
    assert argv[1:3] == ["-m", "gptoss_operator.simulators.vllm"]
    tail = argv[3:]
    assert tail[tail.index("--host") + 1] == "10.0.3.4"
    assert tail[tail.index("--port") + 1] == "8001"
    assert tail[tail.index("--served-model-name") + 1] == "gpt-oss-120b"
    assert tail[tail.index("--max-model-len") + 1] == "131072"


def test_simulator_serves_the_model_path_when_no_name_is_given(pr: ModuleType) -> None:
    for c in (
        {"command": ["vllm", "serve", "openai/gpt-oss-20b"]},
        {"image": "vllm", "args": ["--model", "m"]},
    ):
        argv = pr.vllm_simulator_argv(pod(), c)
        name = argv[argv.index("--served-model-name") + 1]
        assert name == ("openai/gpt-oss-20b" if "command" in c else "m")
        assert argv[argv.index("--port") + 1] == "8000"  # vLLM's default


def test_expand_follows_kubernetes_variable_references(pr: ModuleType) -> None:
    env = {"A": "x", "B": "y"}
    assert pr.expand("$(A)-$(B)", env) == "x-y"
    assert pr.expand("$$(A)", env) == "$(A)"  # escaped
    assert pr.expand("$(MISSING)", env) == "$(MISSING)"  # left as written


def test_field_refs_resolve_from_the_pod(pr: ModuleType) -> None:
    p = pod()
    p["metadata"]["labels"] = {"app": "r"}
    assert pr.field_value(p, "status.podIP") == "10.0.3.4"
    assert pr.field_value(p, "metadata.namespace") == "ns"
    assert pr.field_value(p, "metadata.labels['app']") == "r"
    with pytest.raises(pr.NotYet):
        pr.field_value(p, "status.nonsense")


def test_atomic_write_uses_the_kubelet_layout_and_swaps_whole_sets(pr: ModuleType, tmp_path: Path) -> None:
    target = tmp_path / "vol"
    pr.atomic_write(target, {"config.yaml": (b"one", 0o644), "key": (b"k", 0o600)})
    assert (target / "config.yaml").read_bytes() == b"one"
    assert os.readlink(target / "config.yaml") == "..data/config.yaml"
    first = os.readlink(target / "..data")
    assert (target / "key").stat().st_mode & 0o777 == 0o600
    inode = (target / "config.yaml").stat().st_ino

    pr.atomic_write(target, {"config.yaml": (b"two", 0o644)})
    assert (target / "config.yaml").read_bytes() == b"two"
    assert (target / "config.yaml").stat().st_ino != inode  # a new file: reloaders see a change
    assert not (target / "key").exists()
    assert not (target / "key").is_symlink()
    assert os.readlink(target / "..data") != first
    assert not (target / first).exists()  # the old generation is removed


def test_mount_points_anywhere_sees_this_namespaces_mounts(pr: ModuleType) -> None:
    points = pr.mount_points_anywhere()
    assert "/" in points
    assert "/proc" in points


def test_a_volume_over_the_checkouts_directory_does_not_hide_the_checkout(
    pr: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An emptyDir at /tmp while the checkout is /tmp/<clone> (as a CI clone may be): the pod's
    process must still find the venv it runs from. Runs the real unshare + mount (root)."""
    import subprocess

    parent = tmp_path / "tmp"
    repo = parent / "clone"
    repo.mkdir(parents=True)
    (repo / "marker").write_text("checkout")
    volume = tmp_path / "volume"
    volume.mkdir()
    (volume / "from-volume").write_text("volume")
    monkeypatch.setattr(pr, "REPO", repo)
    runner = object.__new__(pr.Runner)
    runner.created = []
    worker = pr.Worker(key="u/c", pod=pod(), container={}, kind="project", pod_dir=tmp_path / "pod")
    worker.pod_dir.mkdir()
    worker.mounts = [(volume, str(parent), False)]
    argv = runner.in_mount_namespace(worker, ["cat", str(repo / "marker"), str(parent / "from-volume")])
    out = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=30)
    assert out.returncode == 0, out.stderr
    assert out.stdout == "checkoutvolume"


def test_service_account_tokens_are_bound_to_and_cached_per_pod(pr: ModuleType) -> None:
    # A token cached per (namespace, account) outlived a deleted and re-created ServiceAccount
    # of the same name: the new pod got the old token and the API server answered 401.
    requests: list[tuple[str, str, str]] = []

    class Api:
        def token(self, namespace: str, sa: str, audience: list[str], seconds: int, pod: Any) -> str:
            requests.append((namespace, sa, pod["metadata"]["uid"]))
            return f"token-{len(requests)}"

    def pod_uid(uid: str) -> dict[str, Any]:
        return {"metadata": {"name": "router", "namespace": "llm", "uid": uid}, "spec": {}}

    cache = pr.TokenCache()
    first = cache.get(Api(), pod_uid("a"), "chat-router", "", 3600)
    assert cache.get(Api(), pod_uid("a"), "chat-router", "", 3600) == first  # reused while fresh
    assert cache.get(Api(), pod_uid("b"), "chat-router", "", 3600) != first  # a new pod: a new token
    assert requests == [("llm", "chat-router", "a"), ("llm", "chat-router", "b")]
    cache.retain({"b"})
    assert [k[0] for k in cache.tokens] == ["b"]
