"""Pods that really serve: `kind/cluster up --serve` and its pod runner (kind/podrunner.py).

Every request here is made from inside the served cluster's own network namespace, the only
place where pod IPs are addresses (tests/support/netns.py).
"""

from __future__ import annotations

import ipaddress
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import yaml

from devtools.cluster import CLUSTER_SCRIPT, LocalCluster, running_pod, wait_for
from devtools.hosted_provider import api_key_secret, hosted_provider_pod
from tests.support.netns import http, port_open

POD_CIDR = ipaddress.ip_network("10.0.0.0/16")  # kind/cluster.py POD_CIDR
MODEL = "gpt-oss-20b"
MAX_MODEL_LEN = 64
# A GPU pool of kind/nodes.yaml (tainted like real GPU pools).
GPU_NODE = {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"}
ROUTER_PORT = 8080
MOUNT_POINT = Path("/etc/router")


def runner_log(cluster: LocalCluster) -> str:
    path = cluster.kubeconfig.parent / "logs" / "podrunner.log"
    return path.read_text(errors="replace")[-4000:] if path.exists() else "(no pod runner log)"


def vllm_pod_spec(served: str = MODEL, max_len: int = MAX_MODEL_LEN) -> dict[str, Any]:
    """What a vLLM pod looks like (the image's entrypoint is the OpenAI server)."""
    return {
        "nodeSelector": GPU_NODE,
        "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
        "containers": [
            {
                "name": "vllm",
                "image": "vllm/vllm-openai:v0.11.0",
                "args": [
                    "--model",
                    "openai/gpt-oss-20b",
                    "--served-model-name",
                    served,
                    "--port",
                    "8000",
                    "--max-model-len",
                    str(max_len),
                ],
                "ports": [{"name": "http", "containerPort": 8000}],
                "resources": {"requests": {"nvidia.com/gpu": "1"}, "limits": {"nvidia.com/gpu": "1"}},
            }
        ],
    }


def vllm_deployment(name: str, served: str = MODEL) -> list[dict[str, Any]]:
    labels = {"app": name}
    return [
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": labels},
                "template": {"metadata": {"labels": labels}, "spec": vllm_pod_spec(served)},
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": name},
            "spec": {"selector": labels, "ports": [{"name": "http", "port": 8000, "targetPort": "http"}]},
        },
    ]


def wait_answering(cluster: LocalCluster, url: str, timeout: float = 30) -> None:
    netns = cluster.netns
    assert netns is not None

    def probe() -> bool:
        try:
            return http(netns, "GET", url, timeout=2).status_code == 200
        except Exception as e:  # connection refused while the process starts
            raise AssertionError(f"{type(e).__name__}: {e}") from None

    try:
        wait_for(probe, timeout=timeout, what=f"{url} to answer")
    except AssertionError as e:
        raise AssertionError(f"{e}\n--- pod runner log ---\n{runner_log(cluster)}") from None


def chat(cluster: LocalCluster, url: str, **body: Any) -> Any:
    assert cluster.netns is not None
    payload = {"model": MODEL, "messages": [{"role": "user", "content": "hello"}], **body}
    return http(cluster.netns, "POST", url + "/v1/chat/completions", json=payload)


def test_vllm_pod_answers_at_its_ip(served_cluster: LocalCluster, served_namespace: str) -> None:
    served_cluster.apply(vllm_deployment("oss"), served_namespace)
    ip = running_pod(served_cluster, served_namespace, "app=oss")["status"]["podIP"]
    base = f"http://{ip}:8000"
    wait_answering(served_cluster, base + "/health")
    assert served_cluster.netns is not None

    r = chat(served_cluster, base)
    assert r.status_code == 200, r.text
    assert r.json()["model"] == MODEL
    assert r.json()["choices"][0]["message"]["content"]

    models = http(served_cluster.netns, "GET", base + "/v1/models").json()
    assert [m["id"] for m in models["data"]] == [MODEL]

    # Another name than --served-model-name is refused, as vLLM does.
    assert chat(served_cluster, base, model="gpt-oss-120b").status_code == 404

    # The names the router scrapes (gptoss_operator/router/load.py).
    metrics = http(served_cluster.netns, "GET", base + "/metrics").text
    for name in ("vllm:num_requests_waiting", "vllm:num_requests_running", "vllm:kv_cache_usage_perc"):
        assert f'{name}{{engine="0",model_name="{MODEL}"}}' in metrics

    # --max-model-len from the pod's args: prompt + max_tokens above it is vLLM's 400.
    over = chat(served_cluster, base, max_tokens=MAX_MODEL_LEN)
    assert over.status_code == 400
    assert f"maximum context length is {MAX_MODEL_LEN} tokens" in over.json()["error"]["message"]
    assert chat(served_cluster, base, max_tokens=8).status_code == 200


def test_pod_ips_are_in_the_pod_cidr_and_in_endpointslices(
    served_cluster: LocalCluster, served_namespace: str
) -> None:
    served_cluster.apply(vllm_deployment("cidr"), served_namespace)
    ip = ipaddress.ip_address(running_pod(served_cluster, served_namespace, "app=cidr")["status"]["podIP"])
    assert ip in POD_CIDR
    assert not ip.is_loopback

    def slice_addresses() -> list[str] | None:
        slices = served_cluster.get(
            "endpointslices", "-n", served_namespace, "-l", "kubernetes.io/service-name=cidr"
        )["items"]
        return [a for s in slices for e in s.get("endpoints") or [] for a in e["addresses"]] or None

    assert wait_for(slice_addresses, timeout=30, what="the Service's EndpointSlice") == [str(ip)]
    wait_answering(served_cluster, f"http://{ip}:8000/health")


def router_objects(
    namespace: str,
    config: dict[str, Any],
    volumes: list[dict[str, Any]] | None = None,
    mounts: list[dict[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """The router as a pod: config in a ConfigMap volume, a ServiceAccount allowed to watch
    EndpointSlices (the router's in-cluster discovery reads its projected token)."""
    labels = {"app": "router"}
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "router"}},
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": "router"},
            "rules": [
                {
                    "apiGroups": ["discovery.k8s.io"],
                    "resources": ["endpointslices"],
                    "verbs": ["get", "list", "watch"],
                }
            ],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": "router"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "router"},
            "subjects": [{"kind": "ServiceAccount", "name": "router", "namespace": namespace}],
        },
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "router"},
            "data": {"config.yaml": yaml.safe_dump(config)},
        },
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "router"},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "serviceAccountName": "router",
                        "containers": [
                            {
                                "name": "router",
                                "image": "ghcr.io/example/gptoss-operator:dev",
                                "command": [
                                    "gptoss-operator",
                                    "router",
                                    "--config",
                                    "/etc/router/config.yaml",
                                    "--port",
                                    str(ROUTER_PORT),
                                ],
                                "env": [
                                    {
                                        "name": "POD_NAME",
                                        "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}},
                                    }
                                ],
                                "ports": [{"name": "http", "containerPort": ROUTER_PORT}],
                                "volumeMounts": [
                                    {"name": "config", "mountPath": "/etc/router", "readOnly": True},
                                    *(mounts or []),
                                ],
                            }
                        ],
                        "volumes": [{"name": "config", "configMap": {"name": "router"}}, *(volumes or [])],
                    },
                },
            },
        },
    ]


def router_config(namespace: str, *extra_routes: dict[str, Any]) -> dict[str, Any]:
    service = {"name": "oss", "namespace": namespace, "port": "http"}
    return {
        "version": 1,
        "server": {"reloadInterval": "200ms"},
        "routes": [
            {"model": MODEL, "backends": [{"name": "local", "cluster": {"service": service}}]},
            *extra_routes,
        ],
    }


def test_router_pod_serves_from_its_configmap(served_cluster: LocalCluster, served_namespace: str) -> None:
    netns = served_cluster.netns
    assert netns is not None
    ns = served_namespace
    mount_point_existed = MOUNT_POINT.exists()
    served_cluster.apply(vllm_deployment("oss"), ns)
    sim_ip = running_pod(served_cluster, ns, "app=oss")["status"]["podIP"]
    served_cluster.apply(router_objects(ns, router_config(ns)), ns)
    router = running_pod(served_cluster, ns, "app=router")
    base = f"http://{router['status']['podIP']}:{ROUTER_PORT}"
    wait_answering(served_cluster, base + "/readyz")
    assert json.loads(http(netns, "GET", base + "/readyz").text)["routes"] == [MODEL]

    # The route's backend is the Service: the router found the vLLM pod through its
    # EndpointSlice, with the pod's service-account token.
    def routed() -> bool:
        r = chat(served_cluster, base)
        if r.status_code != 200:
            raise AssertionError(f"{r.status_code} {r.text[:300]}")
        return bool(r.json()["model"] == MODEL)

    wait_for(routed, timeout=30, what="a chat completion through the router pod")
    stats = http(netns, "GET", f"http://{sim_ip}:8000/admin/stats").json()
    assert stats["completed"] >= 1

    # A ConfigMap edit reaches the file the running router reads (the kubelet's ..data swap),
    # and the router reloads it: a new route appears without a restart.
    alias = {
        "model": "alias",
        "backends": [{"name": "direct", "cluster": {"endpoints": [f"http://{sim_ip}:8000"], "model": MODEL}}],
    }
    served_cluster.apply(router_objects(ns, router_config(ns, alias))[3], ns)

    def reloaded() -> bool:
        body = json.loads(http(netns, "GET", base + "/readyz").text)
        if sorted(body["routes"]) != ["alias", MODEL]:
            raise AssertionError(f"routes {body['routes']}")
        return True

    wait_for(reloaded, timeout=30, what="the router to reload the edited ConfigMap")
    r = chat(served_cluster, base, model="alias")
    assert r.status_code == 200, r.text
    assert router["metadata"]["name"] == running_pod(served_cluster, ns, "app=router")["metadata"]["name"]

    # The mount is private to the router's mount namespace: the host's /etc/router (a mount
    # point the runner had to create) shows nothing, and goes once the pod is gone.
    assert list(MOUNT_POINT.iterdir()) == []
    served_cluster.kubectl("delete", "deployment", "router", "-n", ns, "--wait=false")
    wait_for(lambda: not port_open(netns, router["status"]["podIP"], ROUTER_PORT), timeout=30,
             what="the router pod's port to close")  # fmt: skip
    if not mount_point_existed:
        wait_for(lambda: not MOUNT_POINT.exists(), timeout=15, what=f"{MOUNT_POINT} to be removed")


def bare_vllm_pod(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"pod": name}},
            "spec": {**vllm_pod_spec(), "terminationGracePeriodSeconds": 1}}  # fmt: skip


def simulator_pid(pod_name: str) -> int | None:
    """The pid of the simulator the pod runner started for ``pod_name`` (from its command line)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"gptoss_operator.simulators.vllm" in argv and pod_name.encode() in argv:
            return int(entry.name)
    return None


def test_deleting_a_pod_stops_its_process(served_cluster: LocalCluster, served_namespace: str) -> None:
    netns = served_cluster.netns
    assert netns is not None
    served_cluster.apply(bare_vllm_pod("gone"), served_namespace)
    ip = running_pod(served_cluster, served_namespace, "pod=gone")["status"]["podIP"]
    wait_answering(served_cluster, f"http://{ip}:8000/health")
    served_cluster.kubectl("delete", "pod", "gone", "-n", served_namespace, "--wait=false")
    wait_for(lambda: not port_open(netns, ip, 8000), timeout=30, what=f"{ip}:8000 to close")
    wait_for(lambda: simulator_pid("gone") is None, timeout=15, what="the simulator process to exit")


def test_a_crashed_process_is_restarted(served_cluster: LocalCluster, served_namespace: str) -> None:
    served_cluster.apply(bare_vllm_pod("crash"), served_namespace)
    ip = running_pod(served_cluster, served_namespace, "pod=crash")["status"]["podIP"]
    wait_answering(served_cluster, f"http://{ip}:8000/health")
    pid = simulator_pid("crash")
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    time.sleep(0.2)
    # restartPolicy Always: the runner starts it again (a new process) at the same pod IP.
    wait_answering(served_cluster, f"http://{ip}:8000/health")
    assert simulator_pid("crash") not in (None, pid)


def test_kind_cluster_exec_runs_inside_the_namespace(
    served_cluster: LocalCluster, served_namespace: str
) -> None:
    """`kind/cluster exec` is the user's way in: kubectl and pod IPs work there."""
    served_cluster.apply(bare_vllm_pod("viaexec"), served_namespace)
    ip = running_pod(served_cluster, served_namespace, "pod=viaexec")["status"]["podIP"]
    wait_answering(served_cluster, f"http://{ip}:8000/health")
    script = (
        "import json, urllib.request; "
        f"print(json.load(urllib.request.urlopen('http://{ip}:8000/v1/models'))['data'][0]['id'])"
    )
    exec_ = [str(CLUSTER_SCRIPT), "exec", "--name", served_cluster.name, "--"]
    out = subprocess.run([*exec_, sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == MODEL
    got = subprocess.run(
        [*exec_, "kubectl", "get", "pod", "viaexec", "-n", served_namespace, "-o", "jsonpath={.status.podIP}"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert got.returncode == 0, got.stderr
    assert got.stdout == ip


def test_router_pod_reaches_a_hosted_provider_pod_with_the_secret_key(
    served_cluster: LocalCluster, served_namespace: str
) -> None:
    """The hybrid path: an `external` backend (the hosted-provider simulator as a pod), its API
    key in a Secret mounted into both pods, read by the router through `apiKeyFile`."""
    netns = served_cluster.netns
    assert netns is not None
    ns = served_namespace
    key = f"sk-test-{uuid.uuid4().hex}"
    key_dir = "/var/run/secrets/provider"
    secret_volume = {"name": "provider-key", "secret": {"secretName": "provider"}}
    secret_mount = {"name": "provider-key", "mountPath": key_dir, "readOnly": True}
    served_cluster.apply(
        [
            api_key_secret("provider", key),
            hosted_provider_pod(model="openai/gpt-oss-20b", secret="provider", key_dir=key_dir),
        ],
        ns,
    )
    provider_ip = running_pod(served_cluster, ns, "pod=provider")["status"]["podIP"]
    provider = f"http://{provider_ip}:8443"
    wait_answering(served_cluster, provider + "/health")
    assert chat(served_cluster, provider, model="openai/gpt-oss-20b").status_code == 401  # no key

    external = {"baseURL": provider + "/v1", "model": "openai/gpt-oss-20b", "apiKeyFile": f"{key_dir}/apiKey"}
    config = {
        "version": 1,
        "routes": [{"model": MODEL, "backends": [{"name": "hosted", "external": external}]}],
    }
    served_cluster.apply(router_objects(ns, config, [secret_volume], [secret_mount]), ns)
    router_ip = running_pod(served_cluster, ns, "app=router")["status"]["podIP"]
    base = f"http://{router_ip}:{ROUTER_PORT}"
    wait_answering(served_cluster, base + "/readyz")
    r = chat(served_cluster, base)
    assert r.status_code == 200, r.text
    stats = http(netns, "GET", provider + "/admin/stats").json()
    assert stats["last_body"]["model"] == "openai/gpt-oss-20b"  # the provider's id went upstream
    assert key in stats["keys_seen"]  # the router sent the Secret's key


def test_operator_pod_deploys_a_model_that_answers(
    served_cluster: LocalCluster, served_namespace: str
) -> None:
    """The operator itself as a pod (kopf's service-account login through the pod's token and
    /etc/hosts), reconciling a ModelDeployment whose vLLM pod then answers at its IP."""
    netns = served_cluster.netns
    assert netns is not None
    ns = served_namespace
    served_cluster.install_crds()
    labels = {"app": "gptoss-operator"}
    served_cluster.apply(
        [
            {
                "apiVersion": "v1",
                "kind": "ServiceAccount",
                "metadata": {"name": "gptoss-operator", "namespace": ns},
            },
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "ClusterRoleBinding",
                "metadata": {"name": f"gptoss-operator-{ns}"},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "ClusterRole",
                    "name": "cluster-admin",
                },
                "subjects": [{"kind": "ServiceAccount", "name": "gptoss-operator", "namespace": ns}],
            },
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": "gptoss-operator", "namespace": ns},
                "spec": {
                    "replicas": 1,
                    "selector": {"matchLabels": labels},
                    "template": {
                        "metadata": {"labels": labels},
                        "spec": {
                            "serviceAccountName": "gptoss-operator",
                            "containers": [
                                {
                                    "name": "operator",
                                    "image": "ghcr.io/example/gptoss-operator:dev",
                                    "command": [
                                        "gptoss-operator",
                                        "run",
                                        f"--namespace={ns}",
                                        "--metrics-port=9090",
                                        "--liveness-port=0",
                                    ],
                                }
                            ],
                        },
                    },
                },
            },
        ]
    )
    try:
        served_cluster.apply(
            {
                "apiVersion": "gptoss.dev/v1alpha1",
                "kind": "ModelDeployment",
                "metadata": {"name": "oss-120b"},
                "spec": {"model": "gpt-oss-120b", "gpu": {"type": "H100-80GB"}},
            },
            ns,
        )
        pod = running_pod(
            served_cluster, ns, "app.kubernetes.io/instance=oss-120b,app.kubernetes.io/component=server"
        )
        base = f"http://{pod['status']['podIP']}:8000"
        wait_answering(served_cluster, base + "/v1/models")
        r = chat(served_cluster, base, model="gpt-oss-120b")
        assert r.status_code == 200, r.text
        assert r.json()["model"] == "gpt-oss-120b"
    finally:
        served_cluster.kubectl("delete", "clusterrolebinding", f"gptoss-operator-{ns}", check=False)
