"""One real node (`kind/cluster up --serve --real-node`, kind/README.md "A real node").

Upstream's kubelet with containerd and runc joins the served cluster as `real-node-0`; the
project's image, built and saved by `python -m devtools.operator_image` (podman) and imported
into containerd by `kind/cluster load-image`, runs there as real containers. Proved in order:
the node registers Ready; a restricted pod runs as a real container with its projected
service-account token and a ConfigMap volume that follows an edit through the kubelet's
`..data` symlink swap; the Helm chart's operator pod and a RoutePolicy's router pods run there
(real probes), and a router answers at its pod IP from inside the cluster's network namespace,
forwarding to a simulated backend.

The node pools here are tainted kwok pools only (a GPU pool and a CPU pool for simulators),
so whatever tolerates nothing can only land on the real node.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import yaml

from devtools.cluster import (
    CLUSTER_SCRIPT,
    REPO,
    ClusterStartError,
    LocalCluster,
    condition,
    running_pod,
    wait_for,
)
from devtools.operator_image import CHART, chart_image
from gptoss_operator.manifests.common import POD_SECURITY
from tests.support.netns import http, in_netns
from tests.support.routepolicies import route_policy

# The image build (podman; the Debian base is cached after its first build) dominates.
pytestmark = pytest.mark.timeout(1500)

NODE = "real-node-0"
REAL_POD_CIDR = "10.1.0."  # kind/realnode.py POD_CIDR 10.1.0.0/24
SIM_TAINT = {"key": "gptoss.dev/simulated", "operator": "Exists", "effect": "NoSchedule"}
PROVIDER_PORT = 8443
PROVIDER_MODEL = "openai/gpt-oss-120b"
MODEL = "gpt-oss-120b"
ROUTER_PODS = "app.kubernetes.io/instance=chat,app.kubernetes.io/component=router"
# Host settings the kubelet would otherwise rewrite (kind/realnode.py KUBELET_SYSCTLS).
WATCHED_SYSCTLS = ("vm/overcommit_memory", "kernel/panic", "kernel/panic_on_oops")
# Exit on SIGTERM as PID 1 (a bare `sleep` ignores it and waits for the grace period's SIGKILL).
IDLE = [
    "python",
    "-c",
    "import signal, sys; signal.signal(signal.SIGTERM, lambda *_: sys.exit(0)); signal.pause()",
]
RESTRICTED_CONTAINER = {
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "runAsNonRoot": True,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}
# From inside the container: who the API server says the projected token is (a SelfSubjectReview
# needs no RBAC). Prints the user name only, never the token.
WHOAMI = """
import json, os, ssl, urllib.request
sa = "/var/run/secrets/kubernetes.io/serviceaccount"
host, port = os.environ["KUBERNETES_SERVICE_HOST"], os.environ["KUBERNETES_SERVICE_PORT"]
req = urllib.request.Request(
    f"https://{host}:{port}/apis/authentication.k8s.io/v1/selfsubjectreviews", method="POST",
    data=json.dumps({"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}).encode(),
    headers={"Content-Type": "application/json", "Authorization": "Bearer " + open(sa + "/token").read()})
ctx = ssl.create_default_context(cafile=sa + "/ca.crt")
print(json.load(urllib.request.urlopen(req, context=ctx))["status"]["userInfo"]["username"])
"""


def _nodes_file(path: Path) -> Path:
    path.write_text(
        yaml.safe_dump(
            {
                "defaults": {"cpu": 32, "memory": "256Gi", "pods": 110},
                "pools": [
                    {
                        "name": "sim-cpu",
                        "count": 1,
                        "taints": [{"key": "gptoss.dev/simulated", "value": "true", "effect": "NoSchedule"}],
                    },
                    {
                        "name": "h100",
                        "count": 1,
                        "cpu": 208,
                        "memory": "1800Gi",
                        "taints": [{"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}],
                        "gpu": {
                            "resource": "nvidia.com/gpu",
                            "product": "NVIDIA-H100-80GB-HBM3",
                            "memoryMiB": 81559,
                            "perNode": 8,
                            "compute": "9.0",
                            "family": "hopper",
                        },
                    },
                ],
            }
        )
    )
    return path


@dataclass
class Node:
    cluster: LocalCluster
    image: str
    import_seconds: float
    sysctls_before: dict[str, str]

    @property
    def netns(self) -> Path:
        assert self.cluster.netns is not None
        return self.cluster.netns

    @property
    def state(self) -> dict[str, Any]:
        result: dict[str, Any] = json.loads((self.cluster.kubeconfig.parent / "state.json").read_text())
        return result

    def log(self, component: str, lines: int = 40) -> str:
        path = self.cluster.kubeconfig.parent / "logs" / f"{component}.log"
        text = path.read_text(errors="replace").splitlines() if path.exists() else ["(no log)"]
        return "\n".join(text[-lines:])

    def pod(self, namespace: str, name: str) -> dict[str, Any]:
        result: dict[str, Any] = self.cluster.get("pod", name, "-n", namespace)
        return result

    def exec(
        self, namespace: str, pod: str, *argv: str, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        return self.cluster.kubectl("exec", "-n", namespace, pod, "--", *argv, check=check)

    def wait_running(self, namespace: str, name: str, timeout: float = 90) -> dict[str, Any]:
        def ready() -> dict[str, Any] | None:
            pod = self.pod(namespace, name)
            ready = condition(pod, "Ready")
            assert pod["status"].get("phase") != "Failed", pod["status"]
            return pod if ready and ready["status"] == "True" else None

        try:
            return wait_for(ready, timeout=timeout, what=f"pod {namespace}/{name} Ready")
        except AssertionError as e:
            events = self.cluster.kubectl("get", "events", "-n", namespace, check=False).stdout
            raise AssertionError(f"{e}\nevents:\n{events}\nkubelet:\n{self.log('kubelet')}") from None


def _read_sysctls() -> dict[str, str]:
    return {key: Path("/proc/sys", key).read_text().strip() for key in WATCHED_SYSCTLS}


@pytest.fixture(scope="module")
def image_archive(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    """The operator/router image as the chart names it, saved as an OCI archive by the command
    kind/README.md gives for it ("A real node"), run as a user runs it."""
    archive = tmp_path_factory.mktemp("real-node-image") / "operator-image.tar"
    proc = subprocess.run(
        [sys.executable, "-m", "devtools.operator_image", "--output", str(archive)],
        cwd=REPO, capture_output=True, text=True, check=False, timeout=1200,
    )  # fmt: skip
    if proc.returncode != 0:
        # Never a skip: missing podman/mmdebstrap/runc is a broken machine (.ci/run installs them).
        pytest.fail(f"python -m devtools.operator_image failed:\n{proc.stderr.strip()}", pytrace=False)
    print(f"\n{proc.stdout.strip()}")
    image = chart_image()
    # It says what it wrote, under the name the chart runs by default.
    assert f"wrote {image} to {archive} (" in proc.stdout, proc.stdout
    return image, archive


@pytest.fixture(scope="module")
def node(image_archive: tuple[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    image, archive = image_archive
    sysctls_before = _read_sysctls()
    nodes = _nodes_file(tmp_path_factory.mktemp("real-node-pools") / "nodes.yaml")
    name = f"rn-{uuid.uuid4().hex[:6]}"
    started = time.monotonic()
    try:
        cluster = LocalCluster.start(name=name, nodes=[nodes], serve=True, real_node=True)
    except ClusterStartError as e:
        pytest.fail(f"the cluster with a real node could not start:\n{e}", pytrace=False)
    up_seconds = time.monotonic() - started
    try:
        begun = time.monotonic()
        proc = subprocess.run(
            [str(CLUSTER_SCRIPT), "load-image", "--name", name, str(archive)],
            capture_output=True, text=True, check=False, timeout=600,
        )  # fmt: skip
        assert proc.returncode == 0, f"kind/cluster load-image failed:\n{proc.stderr}"
        result = Node(cluster, image, time.monotonic() - begun, sysctls_before)
        print(
            f"\nkind/cluster up --serve --real-node: {up_seconds:.1f} s; real node Ready"
            f" {result.state['real_node']['seconds']:.1f} s after its first file was written"
            f" ({result.state['real_node']['snapshotter']} snapshotter);"
            f" image import {result.import_seconds:.1f} s"
        )
        yield result
    finally:
        cluster.stop()


def test_the_node_registers_ready_without_touching_host_settings(node: Node) -> None:
    got = node.cluster.get("node", NODE)
    ready = condition(got, "Ready")
    assert ready is not None, got["status"]
    assert ready["status"] == "True", got["status"].get("conditions")
    info = got["status"]["nodeInfo"]
    assert info["kubeletVersion"] == "v1.36.3", info
    assert info["containerRuntimeVersion"].startswith("containerd://1.6."), info
    assert got["metadata"]["labels"]["type"] == "real"
    assert "kwok.x-k8s.io/node" not in got["metadata"].get("annotations", {})
    # The kubelet found its kernel settings as it wants them in its own mount namespace, and
    # wrote nothing to the host's.
    assert _read_sysctls() == node.sysctls_before
    # The image is in containerd's CRI namespace under the exact name the chart uses (the
    # kubelet reports the node's images in its status).
    wait_for(
        lambda: (
            node.image
            in {n for i in node.cluster.get("node", NODE)["status"].get("images", []) for n in i["names"]}
        ),
        timeout=30,
        what=f"{node.image} in the node's status.images",
    )


def test_a_restricted_pod_runs_with_its_token_and_follows_a_configmap_edit(node: Node) -> None:
    cluster = node.cluster
    ns = cluster.create_namespace("real-node-pod")
    # Admission enforces the restricted Pod Security Standard on this namespace.
    cluster.kubectl("label", "namespace", ns, "pod-security.kubernetes.io/enforce=restricted")
    cluster.apply({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings"},
                   "data": {"greeting": "one"}}, ns)  # fmt: skip
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "restricted"},
        "spec": {
            "nodeSelector": {"type": "real"},
            "securityContext": {"runAsNonRoot": True, "runAsUser": 65532, "runAsGroup": 65532, "fsGroup": 65532,
                                "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{
                "name": "main", "image": node.image, "imagePullPolicy": "Never", "command": IDLE,
                "securityContext": RESTRICTED_CONTAINER,
                "volumeMounts": [{"name": "settings", "mountPath": "/etc/settings", "readOnly": True}],
            }],
            "volumes": [{"name": "settings", "configMap": {"name": "settings"}}],
        },
    }  # fmt: skip
    cluster.apply(pod, ns)
    running = node.wait_running(ns, "restricted")
    assert running["spec"]["nodeName"] == NODE
    assert running["status"]["podIP"].startswith(REAL_POD_CIDR), running["status"]
    status = running["status"]["containerStatuses"][0]
    assert status["containerID"].startswith("containerd://"), status
    # The pod runner left it alone: no process of its own for this pod.
    pods_dir = cluster.kubeconfig.parent / "pods"
    assert not list(pods_dir.glob(f"{ns}_restricted_*")), "the pod runner ran a pod of the real node"

    assert node.exec(ns, "restricted", "id", "-u").stdout.strip() == "65532"
    touched = node.exec(ns, "restricted", "touch", "/written", check=False)
    assert touched.returncode != 0, touched
    assert "Read-only file system" in touched.stderr, touched
    status_lines = node.exec(ns, "restricted", "cat", "/proc/1/status").stdout.splitlines()
    caps = {k: v.strip() for k, v in (line.split(":", 1) for line in status_lines if line.startswith("Cap"))}
    assert caps["CapEff"] == caps["CapPrm"] == caps["CapBnd"] == "0000000000000000", caps
    assert "NoNewPrivs:\t1" in status_lines
    seccomp = [line for line in status_lines if line.startswith("Seccomp:")]
    assert seccomp == ["Seccomp:\t2"], seccomp  # filter mode: containerd's RuntimeDefault profile

    # The projected token authenticates to the API server from inside the container.
    whoami = node.exec(ns, "restricted", "python", "-c", WHOAMI).stdout.strip()
    assert whoami == f"system:serviceaccount:{ns}:default"

    def data_link() -> str:
        return node.exec(ns, "restricted", "readlink", "/etc/settings/..data").stdout.strip()

    before = data_link()
    assert before.startswith("..20"), before  # the kubelet's timestamped directory
    assert (
        node.exec(ns, "restricted", "readlink", "/etc/settings/greeting").stdout.strip() == "..data/greeting"
    )
    assert node.exec(ns, "restricted", "cat", "/etc/settings/greeting").stdout == "one"
    edited = time.monotonic()
    cluster.kubectl(
        "patch", "configmap", "settings", "-n", ns, "--type=merge", "-p", '{"data":{"greeting":"two"}}'
    )
    wait_for(
        lambda: node.exec(ns, "restricted", "cat", "/etc/settings/greeting").stdout == "two",
        timeout=60,
        what="the ConfigMap edit in the container's file",
    )
    print(f"\nConfigMap edit visible in the container after {time.monotonic() - edited:.1f} s")
    after = data_link()
    assert after.startswith("..20"), after
    assert after != before, (before, after)
    cluster.kubectl("delete", "namespace", ns, "--wait=false", check=False)


def _helm(cluster: LocalCluster, *args: str) -> None:
    proc = subprocess.run(
        cluster.command(str(cluster.bindir / "helm"), *args),
        capture_output=True, text=True, env=cluster.env, check=False, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, f"helm {' '.join(args)} failed: {proc.stderr.strip()}"


def _provider(key: str) -> list[dict[str, Any]]:
    """The hosted-provider simulator, a pod-runner process on the tainted kwok CPU pool."""
    return [
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "provider-key"}, "stringData": {"apiKey": key}},
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "provider", "labels": {"pod": "provider"}},
            "spec": {
                "tolerations": [SIM_TAINT],
                "nodeSelector": {"gptoss.dev/pool": "sim-cpu"},
                "containers": [{
                    "name": "provider", "image": "python:3.11-slim",
                    "command": ["python", "-m", "gptoss_operator.simulators.hosted", "--host", "$(POD_IP)",
                                "--port", str(PROVIDER_PORT), "--model", PROVIDER_MODEL,
                                "--api-key-file", "/var/run/secrets/provider/apiKey"],
                    "env": [{"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}],
                    "volumeMounts": [{"name": "key", "mountPath": "/var/run/secrets/provider", "readOnly": True}],
                }],
                "volumes": [{"name": "key", "secret": {"secretName": "provider-key"}}],
            },
        },
    ]  # fmt: skip


def test_the_charts_operator_and_a_routepolicys_routers_run_on_the_real_node(node: Node) -> None:
    cluster = node.cluster
    ns = cluster.create_namespace("real-node-chart")
    cluster.install_crds()
    key = f"sk-test-{uuid.uuid4().hex}"
    cluster.apply(_provider(key), ns)
    started = time.monotonic()
    # The chart's defaults (image, pull policy IfNotPresent, restricted security contexts,
    # probes), namespaced, steered to the real node by its nodeSelector value.
    try:
        _helm(
            cluster,
            "install", "gptoss", str(CHART), "-n", ns,
            "--set", f"watchNamespaces={{{ns}}}", "--set", "crds.enabled=false",
            "--set", "nodeSelector.type=real",
            "--wait", "--timeout=180s",
        )  # fmt: skip
    except AssertionError as e:
        # e.g. the container exiting at start: its last run's output, from the kubelet
        logs = cluster.kubectl(
            "logs", "-n", ns, "deploy/gptoss-gpt-oss-operator", "--previous", "--tail=30", check=False
        )
        events = cluster.kubectl("get", "events", "-n", ns, check=False).stdout
        raise AssertionError(
            f"{e}\noperator's last run:\n{logs.stdout}{logs.stderr}\nevents:\n{events}"
        ) from None
    operator = cluster.get("pods", "-n", ns, "-l", "app.kubernetes.io/name=gpt-oss-operator")["items"]
    assert len(operator) == 1, [p["metadata"]["name"] for p in operator]
    op = operator[0]
    assert op["spec"]["nodeName"] == NODE
    assert op["spec"]["containers"][0]["image"] == node.image
    assert op["status"]["containerStatuses"][0]["containerID"].startswith("containerd://")
    assert op["status"]["podIP"].startswith(REAL_POD_CIDR)
    print(f"\nhelm install --wait with the operator on the real node: {time.monotonic() - started:.1f} s")

    provider_pod = running_pod(cluster, ns, "pod=provider")
    provider = f"http://{provider_pod['status']['podIP']}:{PROVIDER_PORT}"
    policy = route_policy("chat")
    route = policy["spec"]["routes"][0]
    hosted = route["backends"][1]
    hosted["weight"] = 100
    hosted["external"]["baseURL"] = provider + "/v1"
    route["backends"] = [hosted]
    route.pop("overflow")
    policy["spec"].pop("residency")
    cluster.apply(policy, ns)

    def routers_ready() -> list[dict[str, Any]] | None:
        pods = cluster.get("pods", "-n", ns, "-l", ROUTER_PODS)["items"]
        ready = [p for p in pods if (c := condition(p, "Ready")) and c["status"] == "True"]
        return ready if len(ready) == 2 else None

    try:
        routers = wait_for(
            routers_ready, timeout=120, what="2 router pods Ready (their kubelet readiness probes)"
        )
    except AssertionError as e:
        events = cluster.kubectl("get", "events", "-n", ns, check=False).stdout
        logs = cluster.kubectl("logs", "-n", ns, "deploy/gptoss-gpt-oss-operator", "--tail=40", check=False)
        raise AssertionError(f"{e}\nevents:\n{events}\noperator:\n{logs.stdout}{logs.stderr}") from None
    for pod in routers:
        assert pod["spec"]["nodeName"] == NODE, pod["spec"].get("nodeName")
        assert pod["status"]["podIP"].startswith(REAL_POD_CIDR)
        assert pod["status"]["containerStatuses"][0]["containerID"].startswith("containerd://")
    print(
        f"RoutePolicy -> 2 routers Ready on the real node: {time.monotonic() - started:.1f} s after helm install"
    )

    base = f"http://{routers[0]['status']['podIP']}:8080"
    assert http(node.netns, "GET", base + "/readyz").status_code == 200

    def chat() -> str:
        with openai.OpenAI(base_url=base + "/v1", api_key="unused", max_retries=0, timeout=30) as client:
            raw = client.chat.completions.with_raw_response.create(
                model=MODEL, messages=[{"role": "user", "content": "hello"}]
            )
            assert raw.parse().choices[0].message.content
            return str(raw.headers.get("x-gptoss-backend"))

    # The real container reaches the simulated provider in the cluster's namespace and back.
    assert in_netns(node.netns, chat) == "hosted"
    stats = http(node.netns, "GET", provider + "/admin/stats").json()
    assert stats["requests"] >= 1, stats

    # Deleting the RoutePolicy removes its routers; the kubelet stops their containers.
    cluster.kubectl("delete", "routepolicy", "chat", "-n", ns)
    wait_for(
        lambda: not cluster.get("pods", "-n", ns, "-l", ROUTER_PODS)["items"], timeout=90, what="routers gone"
    )
    with pytest.raises(httpx.TransportError):
        http(node.netns, "GET", base + "/readyz", timeout=2)
    _helm(cluster, "uninstall", "gptoss", "-n", ns, "--wait", "--timeout=120s")
    cluster.kubectl("delete", "namespace", ns, "--wait=false", check=False)


def _cache_pod(node: Node, name: str, claim: str, security: dict[str, Any]) -> dict[str, Any]:
    """A pod as the gptoss-vllm image runs (uid 2000, group 0) with ``security`` as its pod
    security context, the claim mounted where the operator mounts the models volume."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "nodeSelector": {"type": "real"},
            "securityContext": {**security, "runAsUser": 2000, "runAsGroup": 0},
            "containers": [{
                "name": "main", "image": node.image, "imagePullPolicy": "Never", "command": IDLE,
                "securityContext": RESTRICTED_CONTAINER,
                "volumeMounts": [{"name": "models", "mountPath": "/models"}],
            }],
            "volumes": [{"name": "models", "persistentVolumeClaim": {"claimName": claim}}],
        },
    }  # fmt: skip


def _local_claim(node: Node, ns: str, name: str, path: Path) -> None:
    """A PVC bound to a ``local`` PV at ``path`` on the real node (a volume type whose ownership
    the kubelet manages, like a cloud disk)."""
    storage_class = f"{ns}-{name}"
    node.cluster.apply({
        "apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": storage_class},
        "spec": {
            "capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
            "storageClassName": storage_class, "local": {"path": str(path)},
            "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                {"key": "kubernetes.io/hostname", "operator": "In", "values": [NODE]}]}]}},
        },
    })  # fmt: skip
    node.cluster.apply({
        "apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": name},
        "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": storage_class,
                 "resources": {"requests": {"storage": "1Gi"}}},
    }, ns)  # fmt: skip


def test_the_operators_fs_group_lets_the_non_root_vllm_image_write_a_root_owned_cache(
    node: Node, tmp_path: Path
) -> None:
    cluster = node.cluster
    ns = cluster.create_namespace("real-node-cache")
    write = ["python", "-c", "open('/models/written', 'w').write('weights')"]
    # What a provisioner hands out: a fresh volume whose root is root:root 0755.
    roots = {name: tmp_path / name for name in ("without", "with")}
    for root in roots.values():
        root.mkdir()
        root.chmod(0o755)
        assert (root.stat().st_uid, root.stat().st_gid) == (0, 0)
        _local_claim(node, ns, root.name, root)
    restricted = {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}
    try:
        # Without fsGroup, uid 2000 cannot write it (the gap this closes).
        cluster.apply(_cache_pod(node, "without", "without", restricted), ns)
        node.wait_running(ns, "without")
        denied = node.exec(ns, "without", *write, check=False)
        assert denied.returncode != 0, denied
        assert "Permission denied" in denied.stderr, denied

        # The operator's own pod security context (vLLM pods and the download Job).
        operators = {**POD_SECURITY["securityContext"], "runAsNonRoot": True}
        cluster.apply(_cache_pod(node, "first", "with", operators), ns)
        node.wait_running(ns, "first")
        node.exec(ns, "first", *write)
        top, written = roots["with"].stat(), (roots["with"] / "written").stat()
        assert top.st_gid == 0
        assert top.st_mode & 0o2070 == 0o2070, oct(top.st_mode)  # setgid, group rwx
        assert (written.st_uid, written.st_gid) == (2000, 0)

        # OnRootMismatch: with the root already right, the next pod start walks nothing, so a
        # file of another group keeps it (Always would change it to group 0 at every start).
        marker = roots["with"] / "marker"
        marker.write_text("x")
        os.chown(marker, 0, 4242)
        cluster.kubectl("delete", "pod", "first", "-n", ns, "--wait=true", "--timeout=60s")
        cluster.apply(_cache_pod(node, "second", "with", operators), ns)
        node.wait_running(ns, "second")
        assert node.exec(ns, "second", "cat", "/models/written").stdout == "weights"
        assert marker.stat().st_gid == 4242
    finally:
        cluster.kubectl("delete", "namespace", ns, "--wait=true", "--timeout=90s", check=False)
        for root in roots.values():
            cluster.kubectl("delete", "pv", f"{ns}-{root.name}", "--wait=false", check=False)
