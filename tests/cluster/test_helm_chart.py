"""The Helm chart with the built helm on the local cluster: lint, render, install, upgrade
(with a CRD change), rollback, uninstall, a namespaced second release, and the operator
running under exactly the chart's RBAC with its service account's token (which rotates)."""

from __future__ import annotations

import json
import shutil
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry

from devtools.cluster import REPO, LocalCluster, wait_for
from devtools.operator_process import OperatorProcess
from gptoss_operator import rbac
from gptoss_operator.credentials import Credentials, from_kubeconfig
from gptoss_operator.metrics import OperatorMetrics
from gptoss_operator.router.metrics import RouterMetrics
from tests.support.modeldeployments import model_deployment, wait_ready
from tests.support.routepolicies import route_policy

CHART = REPO / "charts" / "gpt-oss-operator"
SYSTEM_NS = "gptoss-system"
# What kopf logs when the API server refuses it, and what our client raises.
FORBIDDEN = ("APIForbiddenError", "403", "Forbidden")


def helm(cluster: LocalCluster, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [str(cluster.bindir / "helm"), *args],
        capture_output=True,
        text=True,
        env=cluster.env,
        check=False,
        timeout=300,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"helm {' '.join(args)} failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc


def render(cluster: LocalCluster, *sets: str, chart: Path = CHART) -> list[dict[str, Any]]:
    args = [a for s in sets for a in ("--set", s)]
    out = helm(cluster, "template", "r", str(chart), "--namespace", SYSTEM_NS, *args).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def of_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    """The release's own objects of ``kind``; not the `helm test` hook's (its pod's account and
    Role exist only while `helm test` runs)."""
    return [
        d
        for d in docs
        if d["kind"] == kind and ((d["metadata"].get("annotations") or {}).get("helm.sh/hook") != "test")
    ]


def sa_kubeconfig(cluster: LocalCluster, namespace: str, sa: str, directory: Path) -> tuple[Path, Path]:
    """A kubeconfig that authenticates as ``sa`` with a token file (as a pod's projected token
    is read), and that token file."""
    token = directory / "token"
    write_token(cluster, namespace, sa, token)
    admin = yaml.safe_load(cluster.kubeconfig.read_text())
    kube_cluster = dict(admin["clusters"][0]["cluster"])
    ca = kube_cluster.get("certificate-authority")
    if ca:
        kube_cluster["certificate-authority"] = str(Path(cluster.kubeconfig).parent / ca)
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "sa",
        "clusters": [{"name": "local", "cluster": kube_cluster}],
        "users": [{"name": sa, "user": {"tokenFile": str(token)}}],
        "contexts": [{"name": "sa", "context": {"cluster": "local", "user": sa}}],
    }
    path = directory / "kubeconfig"
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    return path, token


def write_token(cluster: LocalCluster, namespace: str, sa: str, path: Path) -> str:
    value = cluster.kubectl("create", "token", sa, "-n", namespace, "--duration=1h").stdout.strip()
    new = path.with_suffix(".new")
    new.write_text(value)
    new.chmod(0o600)
    new.rename(path)  # atomically, as the kubelet swaps the projected token
    return value


def status_with_token(cluster: LocalCluster, token_file: Path, path: str, method: str = "GET") -> int:
    """The HTTP status the API server answers the token in ``token_file`` with (the token
    never goes on a command line or into an assertion message)."""
    admin = from_kubeconfig(str(cluster.kubeconfig))
    # The cluster's CA only: the admin's client certificate would authenticate as the admin.
    context = Credentials(server=admin.server, ca_path=admin.ca_path, ca_data=admin.ca_data).ssl_context()
    assert isinstance(context, ssl.SSLContext)
    request = urllib.request.Request(
        admin.server + path,
        method=method,
        headers={"Authorization": f"Bearer {token_file.read_text().strip()}"},
    )
    try:
        with urllib.request.urlopen(request, context=context, timeout=10) as resp:
            status: int = resp.status
    except urllib.error.HTTPError as e:
        status = e.code
    return status


def can_i(cluster: LocalCluster, sa: str, *args: str) -> bool:
    proc = cluster.kubectl("auth", "can-i", *args, f"--as=system:serviceaccount:{sa}", check=False)
    return proc.stdout.strip() == "yes"


def forbidden_lines(op: OperatorProcess) -> list[str]:
    text = op.log_path.read_text(errors="replace")
    return [line for line in text.splitlines() if any(word in line for word in FORBIDDEN)]


def test_lint_strict(own_cluster: LocalCluster) -> None:
    helm(own_cluster, "lint", "--strict", str(CHART))
    helm(
        own_cluster,
        "lint",
        "--strict",
        str(CHART),
        "--set",
        "watchNamespaces={a,b}",
        "--set",
        "replicaCount=2",
    )


def test_rbac_rules_are_the_documented_ones(own_cluster: LocalCluster) -> None:
    docs = render(own_cluster)
    (role,) = of_kind(docs, "ClusterRole")
    assert role["rules"] == rbac.namespaced_rules() + rbac.cluster_rules(clusterwide=True)
    assert of_kind(docs, "Role") == []  # no Lease Role with one replica
    (binding,) = of_kind(docs, "ClusterRoleBinding")
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "r-gpt-oss-operator", "namespace": SYSTEM_NS}
    ]
    # The rules as docs/install.md lists them.
    install_doc = (REPO / "docs" / "install.md").read_text()
    for rule in role["rules"]:
        for resource in rule["resources"]:
            assert f"`{resource}`" in install_doc, f"{resource} is not in docs/install.md"

    ha = render(own_cluster, "replicaCount=2")
    (lease_role,) = of_kind(ha, "Role")
    assert lease_role["metadata"]["namespace"] == SYSTEM_NS
    assert lease_role["rules"] == rbac.leader_election_rules("gptoss-operator")
    args = of_kind(ha, "Deployment")[0]["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--leader-elect" in args


def test_the_helm_test_pod_runs_the_images_check_against_the_charts_own_objects(
    own_cluster: LocalCluster,
) -> None:
    from gptoss_operator.commands import build_parser

    docs = render(own_cluster, "replicaCount=2")
    hooks = [d for d in docs if (d["metadata"].get("annotations") or {}).get("helm.sh/hook") == "test"]
    (pod,) = [d for d in hooks if d["kind"] == "Pod"]
    (container,) = pod["spec"]["containers"]
    # The image's entrypoint is gptoss-operator (runtime-image/operator.Dockerfile), and the
    # arguments are ones its check-operator subcommand accepts.
    assert container["command"] == ["gptoss-operator"]
    args = build_parser().parse_args(container["args"])
    assert args.command == "check-operator"
    (service,) = of_kind(docs, "Service")
    assert args.service == service["metadata"]["name"]
    assert args.namespace == SYSTEM_NS
    assert args.port_name in [port["name"] for port in service["spec"]["ports"]]
    (lease_role,) = of_kind(docs, "Role")
    assert [[args.lease]] == [r["resourceNames"] for r in lease_role["rules"] if "resourceNames" in r]
    # The metrics Service must not select the test pod itself.
    selector = service["spec"]["selector"]
    assert not selector.items() <= pod["metadata"]["labels"].items()
    # Its account may list EndpointSlices and read that one Lease, nothing more.
    (role,) = [d for d in hooks if d["kind"] == "Role"]
    assert role["rules"] == [
        {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": ["list"]},
        {
            "apiGroups": ["coordination.k8s.io"],
            "resources": ["leases"],
            "resourceNames": [args.lease],
            "verbs": ["get"],
        },
    ]
    (account,) = [d for d in hooks if d["kind"] == "ServiceAccount"]
    assert pod["spec"]["serviceAccountName"] == account["metadata"]["name"]
    assert pod["spec"]["restartPolicy"] == "Never"


def test_namespaced_mode_renders_roles_only_for_namespaced_resources(own_cluster: LocalCluster) -> None:
    docs = render(own_cluster, "watchNamespaces={team-a,team-b}")
    roles = of_kind(docs, "Role")
    assert sorted(r["metadata"]["namespace"] for r in roles) == ["team-a", "team-b"]
    assert all(r["rules"] == rbac.namespaced_rules() for r in roles)
    # The one ClusterRole: read-only, cluster-scoped kinds only (nodes; CRDs and namespaces
    # for kopf's discovery).
    (cluster_role,) = of_kind(docs, "ClusterRole")
    assert cluster_role["rules"] == rbac.cluster_rules(clusterwide=False)
    assert {r for rule in cluster_role["rules"] for r in rule["resources"]} == {
        "nodes",
        "customresourcedefinitions",
        "namespaces",
    }
    assert {v for rule in cluster_role["rules"] for v in rule["verbs"]} == {"list", "watch"}
    args = of_kind(docs, "Deployment")[0]["spec"]["template"]["spec"]["containers"][0]["args"]
    assert [a for a in args if a.startswith("--namespace")] == ["--namespace=team-a", "--namespace=team-b"]


def test_pod_security_is_restricted(own_cluster: LocalCluster) -> None:
    (deployment,) = of_kind(render(own_cluster), "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "healthz"}
    assert container["readinessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["resources"]["limits"]["memory"] == "512Mi"
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert (
        env["GPTOSS_ROUTER_IMAGE"] == container["image"] == "ghcr.io/gpt-oss-operator/gptoss-operator:0.1.0"
    )
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}  # one replica, no Lease


def test_workload_pull_secrets_reach_the_operator_not_its_own_pod(own_cluster: LocalCluster) -> None:
    def operator_pod(*sets: str) -> tuple[dict[str, Any], dict[str, str | None]]:
        pod = of_kind(render(own_cluster, *sets), "Deployment")[0]["spec"]["template"]["spec"]
        return pod, {e["name"]: e.get("value") for e in pod["containers"][0]["env"]}

    pod, env = operator_pod(
        "workloadImagePullSecrets[0].name=regcred", "workloadImagePullSecrets[1].name=mirror"
    )
    assert env["GPTOSS_PULL_SECRETS"] == "regcred,mirror"
    assert "imagePullSecrets" not in pod
    pod, env = operator_pod("imagePullSecrets[0].name=operator-pull")
    assert pod["imagePullSecrets"] == [{"name": "operator-pull"}]
    assert "GPTOSS_PULL_SECRETS" not in env  # unset: the pods the operator creates carry none


def test_gpu_labels_reach_the_operator_as_json(own_cluster: LocalCluster) -> None:
    docs = render(
        own_cluster,
        "gpuProductLabels.keys.nvidia=cloud.example/gpu",
        "gpuProductLabels.values.L4={nvidia-l4}",
    )
    env = {
        e["name"]: e.get("value")
        for e in of_kind(docs, "Deployment")[0]["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert json.loads(env["GPTOSS_GPU_PRODUCT_LABEL_KEYS"]) == {"nvidia": "cloud.example/gpu"}
    assert json.loads(env["GPTOSS_GPU_PRODUCT_LABEL_VALUES"]) == {"L4": ["nvidia-l4"]}


@pytest.mark.parametrize(
    ("value", "error"),
    [
        ("replicaCont=2", "additional properties 'replicaCont' not allowed"),
        ("crds.kep=false", "additional properties 'kep' not allowed"),
        ("image.pullPolicy=Sometimes", "pullPolicy"),
        ("gpuProductLabels.values.H100={x}", "H100"),
        ("watchNamespaces={Team_A}", "watchNamespaces"),
        ("workloadImagePullSecrets[0].name=Reg_Cred", "workloadImagePullSecrets"),
    ],
)
def test_schema_refuses_bad_values(own_cluster: LocalCluster, value: str, error: str) -> None:
    proc = helm(own_cluster, "template", "r", str(CHART), "--set", value, check=False)
    assert proc.returncode != 0
    assert error in proc.stderr


def test_install_runs_the_operator_under_the_charts_rbac_and_survives_token_rotation(
    own_cluster: LocalCluster, tmp_path: Path
) -> None:
    cluster = own_cluster
    started = time.monotonic()
    helm(
        cluster,
        "install",
        "r1",
        str(CHART),
        "-n",
        SYSTEM_NS,
        "--create-namespace",
        "--wait",
        "--timeout=120s",
    )
    print(f"helm install --wait: {time.monotonic() - started:.1f}s")
    sa = f"{SYSTEM_NS}:r1-gpt-oss-operator"
    assert cluster.get("deployment", "r1-gpt-oss-operator", "-n", SYSTEM_NS)["status"]["readyReplicas"] == 1

    # What the cluster-wide install can and cannot do.
    assert can_i(cluster, sa, "create", "deployments", "-n", "kube-system")
    assert can_i(cluster, sa, "list", "secrets", "-A")  # key names of RoutePolicy Secrets
    assert not can_i(cluster, sa, "get", "secrets", "-n", "kube-system")
    assert not can_i(cluster, sa, "delete", "nodes")
    assert not can_i(cluster, sa, "create", "pods", "-n", "default")
    assert not can_i(cluster, sa, "update", "modeldeployments", "-n", "default")

    # The operator as the chart's pod would run it: its service account's token, nothing else.
    kubeconfig, token_file = sa_kubeconfig(cluster, SYSTEM_NS, "r1-gpt-oss-operator", tmp_path)
    op = OperatorProcess(
        cluster, tmp_path / "operator.log", kubeconfig=kubeconfig, env={"GPTOSS_PULL_SECRETS": "regcred"}
    )
    namespace = cluster.create_namespace("helm-rbac")
    op.start()
    try:
        cluster.apply(model_deployment("m", "gpt-oss-20b", "A100-80GB"), namespace)
        cluster.apply(route_policy("chat"), namespace)
        wait_ready(cluster, namespace, "m")
        wait_for(
            lambda: (cluster.get("routepolicy", "chat", "-n", namespace).get("status") or {}).get(
                "routeCount"
            ),
            timeout=60,
            what="the RoutePolicy to be reconciled",
        )
        assert cluster.get("role", "chat-router", "-n", namespace)["rules"][0]["resources"] == [
            "endpointslices"
        ]
        # GPTOSS_PULL_SECRETS (the chart's workloadImagePullSecrets) on the pods it creates.
        for deployment in ("m", "chat-router"):
            pod = cluster.get("deployment", deployment, "-n", namespace)["spec"]["template"]["spec"]
            assert pod["imagePullSecrets"] == [{"name": "regcred"}]
        # The mounted token cannot read a Secret's value with a GET.
        old = tmp_path / "old-token"
        shutil.copy(token_file, old)
        assert status_with_token(cluster, old, "/api/v1/namespaces/kube-system/secrets") == 200
        assert status_with_token(cluster, old, "/api/v1/namespaces/kube-system/secrets/any") == 403
        assert status_with_token(cluster, old, "/api/v1/nodes/any-node", method="DELETE") == 403

        # Rotation: the token is revoked (its ServiceAccount deleted and recreated) and a new one
        # lands in the token file; the running operator keeps reconciling.
        cluster.kubectl("delete", "serviceaccount", "r1-gpt-oss-operator", "-n", SYSTEM_NS)
        cluster.kubectl("create", "serviceaccount", "r1-gpt-oss-operator", "-n", SYSTEM_NS)
        write_token(cluster, SYSTEM_NS, "r1-gpt-oss-operator", token_file)
        # Revoked (the API server notices the ServiceAccount's new uid within seconds).
        wait_for(
            lambda: status_with_token(cluster, old, "/api/v1/nodes") == 401,
            timeout=30,
            what="the old token to be refused",
        )
        cluster.apply(model_deployment("after-rotation", "gpt-oss-20b", "H100-80GB"), namespace)
        wait_ready(cluster, namespace, "after-rotation", timeout=120)
        op.assert_alive()
        assert forbidden_lines(op) == []
    finally:
        op.stop()


def test_upgrade_with_a_crd_change_rollback_and_uninstall_keep_crds(
    own_cluster: LocalCluster, tmp_path: Path
) -> None:
    cluster = own_cluster
    if helm(cluster, "status", "r1", "-n", SYSTEM_NS, check=False).returncode != 0:
        helm(cluster, "install", "r1", str(CHART), "-n", SYSTEM_NS, "--create-namespace", "--wait")
    namespace = cluster.create_namespace("helm-upgrade")
    with_new_field = model_deployment("m", "gpt-oss-20b", "L4")
    with_new_field["spec"]["notes"] = "added by the upgrade"
    body = json.dumps(with_new_field)

    def apply_strict() -> subprocess.CompletedProcess[str]:
        return cluster.kubectl(
            "apply", "--server-side", "--validate=strict", "-n", namespace, "-f", "-", stdin=body, check=False
        )

    refused = apply_strict()
    assert refused.returncode != 0
    assert "notes" in refused.stderr

    # A chart whose CRD has a new field: Helm upgrades CRD templates (not crds/ files).
    chart = tmp_path / "gpt-oss-operator"
    shutil.copytree(CHART, chart)
    crd_path = chart / "templates" / "crd-modeldeployments.gptoss.dev.yaml"
    text = crd_path.read_text()
    marker = "            description: Desired state.\n            properties:\n"
    assert marker in text, "the CRD layout changed; adjust this test's edit"
    crd_path.write_text(
        text.replace(
            marker,
            marker + "              notes:\n                type: string\n",
            1,
        )
    )
    helm(cluster, "upgrade", "r1", str(chart), "-n", SYSTEM_NS, "--wait")
    wait_for(lambda: apply_strict().returncode == 0, timeout=30, what="the upgraded CRD to accept spec.notes")
    assert cluster.get("modeldeployment", "m", "-n", namespace)["spec"]["notes"] == "added by the upgrade"

    helm(cluster, "rollback", "r1", "1", "-n", SYSTEM_NS, "--wait")
    crd = cluster.get("crd", "modeldeployments.gptoss.dev")
    spec_props = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
    assert "notes" not in spec_props
    history = helm(cluster, "history", "r1", "-n", SYSTEM_NS, "-o", "json").stdout
    assert [h["revision"] for h in json.loads(history)][-1] >= 3

    helm(cluster, "uninstall", "r1", "-n", SYSTEM_NS, "--wait")
    # crds.keep: the CRDs, and so every ModelDeployment, survive the uninstall.
    assert (
        cluster.kubectl("get", "crd", "modeldeployments.gptoss.dev", "routepolicies.gptoss.dev").returncode
        == 0
    )
    assert cluster.get("modeldeployment", "m", "-n", namespace)["metadata"]["name"] == "m"
    assert (
        cluster.kubectl("get", "deployment", "r1-gpt-oss-operator", "-n", SYSTEM_NS, check=False).returncode
        != 0
    )


def test_second_release_in_namespaced_mode(own_cluster: LocalCluster, tmp_path: Path) -> None:
    cluster = own_cluster
    team = cluster.create_namespace("team-a")
    other = cluster.create_namespace("team-b")
    ns = "team-a-operator"
    # The CRDs belong to the first release (or were kept by its uninstall): this one skips them.
    if cluster.kubectl("get", "crd", "modeldeployments.gptoss.dev", check=False).returncode != 0:
        helm(cluster, "install", "r1", str(CHART), "-n", SYSTEM_NS, "--create-namespace", "--wait")
    helm(
        cluster,
        "install",
        "r2",
        str(CHART),
        "-n",
        ns,
        "--create-namespace",
        "--wait",
        "--set",
        f"watchNamespaces={{{team}}}",
        "--set",
        "crds.enabled=false",
    )
    sa = f"{ns}:r2-gpt-oss-operator"
    assert can_i(cluster, sa, "create", "deployments", "-n", team)
    assert not can_i(cluster, sa, "create", "deployments", "-n", other)
    assert not can_i(cluster, sa, "list", "secrets", "-n", other)
    assert can_i(cluster, sa, "list", "namespaces")
    assert not can_i(cluster, sa, "get", "namespaces", other)
    assert can_i(cluster, sa, "list", "nodes")

    kubeconfig, _ = sa_kubeconfig(cluster, ns, "r2-gpt-oss-operator", tmp_path)
    op = OperatorProcess(
        cluster, tmp_path / "operator.log", kubeconfig=kubeconfig, extra_args=("--namespace", team)
    )
    op.start()
    try:
        cluster.apply(model_deployment("m", "gpt-oss-20b", "L40S"), team)
        cluster.apply(model_deployment("m", "gpt-oss-20b", "L40S"), other)
        wait_ready(cluster, team, "m")
        assert "status" not in cluster.get("modeldeployment", "m", "-n", other)
        op.assert_alive()
        assert forbidden_lines(op) == []
    finally:
        op.stop()
        helm(cluster, "uninstall", "r2", "-n", ns, check=False)


def test_monitoring_objects_alert_on_metrics_the_code_exports(own_cluster: LocalCluster) -> None:
    docs = render(
        own_cluster,
        "metrics.prometheusRule.enabled=true",
        "metrics.serviceMonitor.enabled=true",
        "metrics.routerPodMonitor.enabled=true",
    )
    (monitor,) = of_kind(docs, "ServiceMonitor")
    (service,) = [s for s in of_kind(docs, "Service") if s["metadata"]["name"].endswith("-metrics")]
    assert monitor["spec"]["endpoints"][0]["port"] == service["spec"]["ports"][0]["name"] == "metrics"
    (pod_monitor,) = of_kind(docs, "PodMonitor")
    assert pod_monitor["spec"]["selector"]["matchLabels"]["app.kubernetes.io/component"] == "router"
    (rule,) = of_kind(docs, "PrometheusRule")
    alerts = {r["alert"]: r["expr"] for r in rule["spec"]["groups"][0]["rules"]}
    assert set(alerts) == {
        "GptOssOperatorDown",
        "GptOssOperatorReconcileErrors",
        "GptOssModelDeploymentDegraded",
        "GptOssRouterErrors",
        "GptOssRouterResidencyBlocked",
    }
    # Every series an alert reads is one the operator or the router exports.
    operator_metrics = OperatorMetrics()
    operator_metrics.watch_objects(
        lambda: {"ModelDeployment": [{"status": {"conditions": [{"type": "Degraded", "status": "True"}]}}]}
    )
    families = [*operator_metrics.registry.collect(), *RouterMetrics(CollectorRegistry()).registry.collect()]
    # Counter families are named without _total; their samples carry it.
    exported = {f.name for f in families} | {f"{f.name}_total" for f in families if f.type == "counter"}
    for name in (
        "gptoss_operator_reconcile_errors_total",
        "gptoss_operator_object_conditions",
        "gptoss_router_requests_total",
        "gptoss_router_residency_blocked_total",
    ):
        assert any(name in expr for expr in alerts.values())
        assert name in exported, name


CRDS = ("modeldeployments.gptoss.dev", "routepolicies.gptoss.dev")
HELM_OWNER_ANNOTATIONS = ("meta.helm.sh/release-name", "meta.helm.sh/release-namespace")


def test_crds_applied_with_kubectl_are_kept_or_adopted(own_cluster: LocalCluster) -> None:
    # docs/install.md, "From kubectl to the chart": both ways past Helm's refusal to import CRDs
    # it did not create, and neither touches an object of the CRDs' kinds.
    cluster = own_cluster
    for crd in CRDS:  # CRDs an earlier release kept still name it: let it go, and its metadata
        found = cluster.kubectl("get", "crd", crd, "-o", "json", check=False)
        if found.returncode == 0:
            owner = json.loads(found.stdout)["metadata"].get("annotations", {})
            if HELM_OWNER_ANNOTATIONS[0] in owner:
                helm(
                    cluster,
                    "uninstall",
                    owner[HELM_OWNER_ANNOTATIONS[0]],
                    "-n",
                    owner[HELM_OWNER_ANNOTATIONS[1]],
                    "--wait",
                    check=False,
                )
            cluster.kubectl("label", "crd", crd, "app.kubernetes.io/managed-by-")
            cluster.kubectl("annotate", "crd", crd, *(f"{a}-" for a in HELM_OWNER_ANNOTATIONS))
    cluster.kubectl("apply", "-f", str(REPO / "crds"))  # what running the operator locally needs
    for crd in CRDS:
        cluster.kubectl("wait", "--for=condition=Established", "--timeout=60s", f"crd/{crd}")
    namespace = cluster.create_namespace("adopted")
    cluster.apply(model_deployment("m", "gpt-oss-20b", "L4"), namespace)
    uid = cluster.get("modeldeployment", "m", "-n", namespace)["metadata"]["uid"]
    install = ("install", "r3", str(CHART), "-n", SYSTEM_NS, "--create-namespace", "--wait",
               "--set", f"watchNamespaces={{{namespace}}}")  # fmt: skip

    refused = helm(cluster, *install, check=False)
    assert refused.returncode != 0
    assert "invalid ownership metadata" in refused.stderr, refused.stderr

    # Keep them yours.
    helm(cluster, *install, "--set", "crds.enabled=false")
    labels = cluster.get("crd", CRDS[0])["metadata"].get("labels", {})
    assert "app.kubernetes.io/managed-by" not in labels
    helm(cluster, "uninstall", "r3", "-n", SYSTEM_NS, "--wait")

    # Hand them to the release: the commands of docs/install.md.
    cluster.kubectl("label", "crd", *CRDS, "app.kubernetes.io/managed-by=Helm", "--overwrite")
    cluster.kubectl(
        "annotate", "crd", *CRDS,
        "meta.helm.sh/release-name=r3", f"meta.helm.sh/release-namespace={SYSTEM_NS}", "--overwrite",
    )  # fmt: skip
    helm(cluster, *install)
    for crd in CRDS:
        annotations = cluster.get("crd", crd)["metadata"]["annotations"]
        assert annotations["helm.sh/resource-policy"] == "keep"  # the chart's template now applies
    manifest = helm(cluster, "get", "manifest", "r3", "-n", SYSTEM_NS).stdout
    assert all(f"name: {crd}" in manifest for crd in CRDS)
    helm(cluster, "upgrade", "r3", str(CHART), "-n", SYSTEM_NS, "--reuse-values", "--wait")
    helm(cluster, "uninstall", "r3", "-n", SYSTEM_NS, "--wait")
    assert cluster.kubectl("get", "crd", *CRDS).returncode == 0
    assert cluster.get("modeldeployment", "m", "-n", namespace)["metadata"]["uid"] == uid
