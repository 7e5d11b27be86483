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


def test_volume_sources_under_a_mounted_over_directory_stay_reachable(
    pr: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The runner's own pod directories under /tmp (a cache under /tmp, as CI caches may be)
    and an emptyDir mounted at /tmp: the token and ConfigMap volumes, whose files live under
    the hidden /tmp, must still be bound, a volume nested in another one too, whatever the
    order of the container's volumeMounts. Failed with "special device ... does not exist"
    when sources were bound in place after the emptyDir."""
    import subprocess

    parent = tmp_path / "tmp"
    repo = parent / "clone"
    repo.mkdir(parents=True)
    (repo / "marker").write_text("checkout|")
    volumes = parent / "cache" / "pod" / "volumes"
    for name, file, text in (
        ("scratch", "left", "empty-dir|"),
        ("token", "token", "jwt|"),
        ("cfg", "c.yaml", "cfg"),
    ):
        (volumes / name).mkdir(parents=True)
        (volumes / name / file).write_text(text)
    secrets = tmp_path / "secrets" / "sa"
    monkeypatch.setattr(pr, "REPO", repo)
    runner = object.__new__(pr.Runner)
    runner.created = []
    worker = pr.Worker(key="u/c", pod=pod(), container={}, kind="project", pod_dir=parent / "cache" / "pod")
    worker.mounts = [
        (volumes / "cfg", str(parent / "config"), False),  # nested in the emptyDir, listed first
        (volumes / "scratch", str(parent), False),
        (volumes / "token", str(secrets), False),
    ]
    argv = runner.in_mount_namespace(
        worker,
        [
            "cat",
            str(repo / "marker"),
            str(parent / "left"),
            str(secrets / "token"),
            str(parent / "config" / "c.yaml"),
        ],
    )
    out = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=30)
    assert out.returncode == 0, out.stderr
    assert out.stdout == "checkout|empty-dir|jwt|cfg"
    assert not (volumes / "scratch" / "config").exists() or (volumes / "scratch" / "config").is_dir()
    for path in reversed(runner.created):  # the host mount points the runner made
        if path.is_dir():
            path.rmdir()


def test_parking_dir_is_never_under_a_mount_path(pr: ModuleType) -> None:
    assert pr.parking_dir(["/tmp", "/etc/hosts"]) == pr.PARKING_DIRS[0]
    assert pr.parking_dir(["/run"]) == pr.PARKING_DIRS[1]
    assert pr.parking_dir(["/run/gptoss-podrunner", "/var/lib"]) == pr.PARKING_DIRS[2]
    with pytest.raises(RuntimeError):
        pr.parking_dir(["/"])


def test_service_account_tokens_are_bound_to_and_cached_per_pod(pr: ModuleType) -> None:
    # A token cached per (namespace, account) outlived a deleted and re-created ServiceAccount
    # of the same name: the new pod got the old token and the API server answered 401.
    requests: list[tuple[str, str, str]] = []

    class Api:
        def token(self, pod: Any, sa: str, audience: list[str], seconds: int) -> str:
            requests.append((pod["metadata"]["namespace"], sa, pod["metadata"]["uid"]))
            return f"token-{len(requests)}"

    def pod_uid(uid: str) -> dict[str, Any]:
        return {"metadata": {"name": "router", "namespace": "llm", "uid": uid}, "spec": {}}

    cache = pr.TokenCache()
    first = cache.get(Api(), pod_uid("a"), "chat-router", "", 3600)
    assert cache.get(Api(), pod_uid("a"), "chat-router", "", 3600) == first  # reused while fresh
    assert cache.get(Api(), pod_uid("b"), "chat-router", "", 3600) != first  # a new pod: a new token
    assert requests == [("llm", "chat-router", "a"), ("llm", "chat-router", "b")]
    cache.forget("a")
    assert [k[0] for k in cache.tokens] == ["b"]


def finished_pod(policy: str | None, *names: str) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": [{"name": n, "image": f"img/{n}"} for n in names]}
    if policy is not None:
        spec["restartPolicy"] = policy
    return {"metadata": {"name": "p", "namespace": "ns", "uid": "u-1"}, "spec": spec, "status": {}}


def test_restart_policy_decides_which_exits_restart(pr: ModuleType) -> None:
    assert pr.restarts("Always", 0)
    assert pr.restarts("Always", 1)
    assert pr.restarts(None, 0)  # the API server defaults it to Always
    assert pr.restarts("OnFailure", 1)
    assert pr.restarts("OnFailure", -9)
    assert not pr.restarts("OnFailure", 0)
    assert not pr.restarts("Never", 0)
    assert not pr.restarts("Never", 2)


def test_a_clean_exit_under_never_makes_the_pod_succeeded(pr: ModuleType) -> None:
    exit_ = pr.Exit(0, "2026-01-02T03:04:05Z", "2026-01-02T03:04:07Z")
    patch = pr.terminal_status(finished_pod("Never", "check"), {"check": exit_}, {}, "2026-01-02T03:04:08Z")
    assert patch["metadata"] == {"uid": "u-1"}  # the kubelet's uid precondition
    status = patch["status"]
    assert status["phase"] == "Succeeded"
    (cs,) = status["containerStatuses"]
    assert cs["name"] == "check"
    assert cs["image"] == "img/check"
    assert cs["ready"] is False
    assert cs["restartCount"] == 0
    assert cs["state"] == {
        "terminated": {
            "exitCode": 0,
            "reason": "Completed",
            "startedAt": "2026-01-02T03:04:05Z",
            "finishedAt": "2026-01-02T03:04:07Z",
        }
    }
    assert {(c["type"], c["status"], c["reason"]) for c in status["conditions"]} == {
        ("Ready", "False", "PodCompleted"),
        ("ContainersReady", "False", "PodCompleted"),
    }


def test_a_failing_exit_under_never_makes_the_pod_failed_with_the_exit_code(pr: ModuleType) -> None:
    status = pr.terminal_status(finished_pod("Never", "check"), {"check": pr.Exit(3, "a", "b")}, {}, "c")[
        "status"
    ]
    assert status["phase"] == "Failed"
    assert status["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 3
    assert status["containerStatuses"][0]["state"]["terminated"]["reason"] == "Error"


def test_a_process_killed_by_a_signal_reports_128_plus_the_signal(pr: ModuleType) -> None:
    terminated = pr.Exit(-9, "a", "b").terminated()
    assert terminated["exitCode"] == 137
    assert terminated["signal"] == 9
    assert terminated["reason"] == "Error"


def test_on_failure_succeeds_after_restarts_and_reports_the_restart_count(pr: ModuleType) -> None:
    pod = finished_pod("OnFailure", "job")
    status = pr.terminal_status(pod, {"job": pr.Exit(0, "a", "b")}, {"job": 2}, "c")["status"]
    assert status["phase"] == "Succeeded"
    assert status["containerStatuses"][0]["restartCount"] == 2
    # A failed exit under OnFailure is restarted: not terminal.
    assert pr.terminal_status(pod, {"job": pr.Exit(1, "a", "b")}, {}, "c") is None


def test_always_never_ends_and_a_pod_waits_for_every_container(pr: ModuleType) -> None:
    assert pr.terminal_status(finished_pod("Always", "x"), {"x": pr.Exit(0, "a", "b")}, {}, "c") is None
    assert pr.terminal_status(finished_pod(None, "x"), {"x": pr.Exit(0, "a", "b")}, {}, "c") is None
    two = finished_pod("Never", "x", "y")
    assert pr.terminal_status(two, {"x": pr.Exit(0, "a", "b")}, {}, "c") is None  # y still runs
    both = {"x": pr.Exit(0, "a", "b"), "y": pr.Exit(1, "a", "b")}
    status = pr.terminal_status(two, both, {}, "c")["status"]
    assert status["phase"] == "Failed"  # one failed container fails the pod
    assert [c["state"]["terminated"]["reason"] for c in status["containerStatuses"]] == ["Completed", "Error"]
