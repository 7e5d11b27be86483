"""How the operator is run: narrowed to namespaces, and what `kubectl explain` tells users."""

from __future__ import annotations

from pathlib import Path

from devtools.cluster import LocalCluster
from devtools.operator_process import OperatorProcess, settle
from tests.support.modeldeployments import model_deployment, wait_ready


def test_kubectl_explain_describes_the_fields(cluster: LocalCluster, operator: OperatorProcess) -> None:
    out = cluster.kubectl("explain", "modeldeployment.spec.gpu").stdout
    assert "GPUs per replica, equal to vLLM's tensor-parallel size" in out
    assert "H100-80GB" in out  # the enum of catalog types
    out = cluster.kubectl("explain", "modeldeployment.status.conditions").stdout
    assert "Planned, WeightsReady, Progressing, Ready, Degraded" in out


def test_namespace_flag_narrows_what_the_operator_touches_with_an_inline_kubeconfig(tmp_path: Path) -> None:
    # A cluster of its own: the session's operator watches every namespace.
    local = LocalCluster.start(reuse_env=False)
    # Credentials as most real kubeconfigs carry them: inline base64 data, not file paths.
    operator = OperatorProcess(
        local,
        tmp_path / "operator.log",
        extra_args=("--namespace", "mine"),
        kubeconfig=local.inline_kubeconfig(tmp_path / "inline-kubeconfig"),
    )
    try:
        operator.cluster.install_crds()
        local.kubectl("create", "namespace", "mine")
        local.kubectl("create", "namespace", "theirs")
        operator.start()
        local.apply(model_deployment("m", "gpt-oss-20b", "A100-80GB"), "mine")
        local.apply(model_deployment("m", "gpt-oss-20b", "A100-80GB"), "theirs")
        md = wait_ready(local, "mine", "m")
        assert md["status"]["rolloutStrategy"] == "Surge"  # it saw the (cluster-scoped) nodes
        settle(3)
        theirs = local.get("modeldeployment", "m", "-n", "theirs")
        assert "status" not in theirs
        assert local.get("deployments", "-n", "theirs")["items"] == []
    finally:
        operator.stop()
        local.stop()
