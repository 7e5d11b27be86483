"""The write client against the real API server: a 401 makes it fetch new credentials; an
apply with a field the schema does not know is refused even without strict field validation."""

from __future__ import annotations

import asyncio
import stat
from pathlib import Path
from typing import Any

import pytest
import yaml

from devtools.cluster import LocalCluster
from gptoss_operator import kinds
from gptoss_operator.credentials import from_kubeconfig
from gptoss_operator.kube import KubeAPI, KubeError


def exec_kubeconfig(cluster: LocalCluster, directory: Path) -> tuple[Path, Path]:
    """A kubeconfig whose user is an exec plugin printing the token in ``current-token``
    (announced as valid for an hour, so only a 401 makes the client run it again)."""
    token_file = directory / "current-token"
    plugin = directory / "plugin.sh"
    plugin.write_text(
        "#!/bin/sh\n"
        f'echo run >> "{directory}/runs"\n'
        'printf \'{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential",'
        '"status":{"token":"%s","expirationTimestamp":"2999-01-01T00:00:00Z"}}\' '
        f'"$(cat "{token_file}")"\n'
    )
    plugin.chmod(plugin.stat().st_mode | stat.S_IXUSR)
    admin = yaml.safe_load(cluster.kubeconfig.read_text())
    kube_cluster = dict(admin["clusters"][0]["cluster"])
    if kube_cluster.get("certificate-authority"):
        kube_cluster["certificate-authority"] = str(
            cluster.kubeconfig.parent / kube_cluster["certificate-authority"]
        )
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "c",
        "clusters": [{"name": "k", "cluster": kube_cluster}],
        "users": [
            {
                "name": "u",
                "user": {"exec": {"apiVersion": "client.authentication.k8s.io/v1", "command": str(plugin)}},
            }
        ],
        "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u"}}],
    }
    path = directory / "kubeconfig"
    path.write_text(yaml.safe_dump(config))
    return path, token_file


async def test_a_revoked_token_is_replaced_after_one_401(
    cluster: LocalCluster, namespace: str, tmp_path: Path
) -> None:
    cluster.kubectl("create", "serviceaccount", "writer", "-n", namespace)
    cluster.kubectl(
        "create",
        "rolebinding",
        "writer",
        "--clusterrole=view",
        f"--serviceaccount={namespace}:writer",
        "-n",
        namespace,
    )
    kubeconfig, token_file = exec_kubeconfig(cluster, tmp_path)
    token_file.write_text(cluster.kubectl("create", "token", "writer", "-n", namespace).stdout.strip())
    api = KubeAPI(from_kubeconfig(str(kubeconfig)), field_manager="pytest")
    try:
        assert await api.list(kinds.SERVICE, namespace) == []
        # Revoke that token (its ServiceAccount is re-created) and make a new one available.
        cluster.kubectl("delete", "serviceaccount", "writer", "-n", namespace)
        cluster.kubectl("create", "serviceaccount", "writer", "-n", namespace)
        token_file.write_text(cluster.kubectl("create", "token", "writer", "-n", namespace).stdout.strip())
        runs_before = len((tmp_path / "runs").read_text().split())

        async def answered() -> bool:
            return await api.list(kinds.SERVICE, namespace) == []

        # The cached token is refused once the API server notices the new ServiceAccount uid; the
        # client then runs the plugin again and the request succeeds without an error.
        for _ in range(60):
            assert await answered()
            if len((tmp_path / "runs").read_text().split()) > runs_before:
                break
            await asyncio.sleep(0.5)
        assert len((tmp_path / "runs").read_text().split()) == runs_before + 1
        assert await answered()
    finally:
        await api.aclose()


async def test_an_apply_with_a_field_the_schema_does_not_know_is_refused(
    cluster: LocalCluster, namespace: str
) -> None:
    # The client applies with fieldValidation=Ignore (no strict decode of the body); the API
    # server's typed conversion of an applied object still refuses an unknown field, so a
    # builder bug cannot drop a field silently.
    api = KubeAPI(from_kubeconfig(str(cluster.kubeconfig)), field_manager="pytest")
    service: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "strict", "namespace": namespace},
        "spec": {"ports": [{"port": 80}], "selector": {"app": "x"}},
    }
    try:
        with pytest.raises(KubeError) as refused:
            await api.apply({**service, "spec": {**service["spec"], "portz": [{"port": 81}]}})
        # (The API server answers 500 for it, not 422.)
        assert refused.value.status == 500
        assert ".spec.portz: field not declared in schema" in str(refused.value)
        assert cluster.kubectl("get", "service", "strict", "-n", namespace, check=False).returncode != 0
        applied = await api.apply(service)
        assert applied["spec"]["ports"][0]["port"] == 80
    finally:
        await api.aclose()
