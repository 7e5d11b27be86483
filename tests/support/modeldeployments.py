"""Helpers for tests that drive ModelDeployments on the local cluster."""

from __future__ import annotations

from typing import Any

from devtools.cluster import LocalCluster, condition, wait_for


def model_deployment(name: str, model: str, gpu: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "gptoss.dev/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": name},
        "spec": {"model": model, "gpu": {"type": gpu, **spec.pop("gpu_extra", {})}, **spec},
    }


def get_md(cluster: LocalCluster, namespace: str, name: str) -> dict[str, Any]:
    result: dict[str, Any] = cluster.get("modeldeployment", name, "-n", namespace)
    return result


def wait_condition(
    cluster: LocalCluster,
    namespace: str,
    name: str,
    type_: str,
    status: str,
    reason: str | None = None,
    timeout: float = 60,
) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        md = get_md(cluster, namespace, name)
        cond = condition(md, type_)
        assert cond is not None, f"no {type_} condition yet; status={md.get('status')}"
        ok = cond["status"] == status and (reason is None or cond["reason"] == reason)
        assert ok, f"{type_} is {cond['status']}/{cond['reason']}: {cond['message']}"
        return md

    result: dict[str, Any] = wait_for(check, timeout=timeout, what=f"{name} {type_}={status} {reason or ''}")
    return result


def wait_ready(cluster: LocalCluster, namespace: str, name: str, timeout: float = 90) -> dict[str, Any]:
    """Ready=True (Serving) and phase Ready: the phase also needs Degraded gone, which can lag the
    Ready condition by one status write (e.g. a reverted hand edit whose extra pod still waits)."""

    def check() -> dict[str, Any] | None:
        md = get_md(cluster, namespace, name)
        ready = condition(md, "Ready") or {}
        assert (ready.get("status"), ready.get("reason")) == ("True", "Serving"), f"Ready: {ready}"
        assert md["status"].get("phase") == "Ready", f"phase is {md['status'].get('phase')}"
        return md

    result: dict[str, Any] = wait_for(check, timeout=timeout, what=f"{name} Ready (condition and phase)")
    return result


def vllm_container(deployment: dict[str, Any]) -> dict[str, Any]:
    container: dict[str, Any] = deployment["spec"]["template"]["spec"]["containers"][0]
    return container


def arg_value(args: list[str], flag: str) -> str:
    for i, arg in enumerate(args):
        if arg == flag:
            return args[i + 1]
        if arg.startswith(flag + "="):
            return arg.split("=", 1)[1]
    raise AssertionError(f"{flag} not in {args}")


def host_path_volume(name: str, *, storage: str, access_mode: str, storage_class: str) -> dict[str, Any]:
    """A PersistentVolume at /tmp/<name> for a weights claim to bind to (kwok runs no pod that
    reads it: only the binding matters)."""
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": name},
        "spec": {
            "capacity": {"storage": storage},
            "accessModes": [access_mode],
            "storageClassName": storage_class,
            "hostPath": {"path": f"/tmp/{name}"},
        },
    }
