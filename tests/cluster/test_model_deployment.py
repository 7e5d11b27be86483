"""The operator on the real control plane: ModelDeployment -> correctly sized vLLM, honest status."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from devtools.cluster import LocalCluster, condition, wait_for
from devtools.operator_process import OperatorProcess, settle
from tests.support.modeldeployments import (
    arg_value,
    get_md,
    host_path_volume,
    model_deployment,
    vllm_container,
    wait_condition,
    wait_ready,
)


def test_120b_on_h100_gets_two_gpus_tp2_and_serves(
    cluster: LocalCluster, operator: OperatorProcess, namespace: str
) -> None:
    cluster.apply(model_deployment("oss-120b", "gpt-oss-120b", "H100-80GB"), namespace)
    md = wait_ready(cluster, namespace, "oss-120b")

    plan = md["status"]["plan"]
    assert plan["gpusPerReplica"] == 2
    assert plan["tensorParallelSize"] == 2
    assert md["status"]["endpoint"] == f"http://oss-120b.{namespace}.svc:8000/v1"
    assert md["status"]["readyReplicas"] == 1
    assert md["status"]["observedGeneration"] == md["metadata"]["generation"]

    dep = cluster.get("deployment", "oss-120b", "-n", namespace)
    container = vllm_container(dep)
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "2"
    assert arg_value(container["args"], "--tensor-parallel-size") == "2"
    assert container["args"] == plan["args"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/v1/models"
    assert container["startupProbe"]["failureThreshold"] * container["startupProbe"]["periodSeconds"] >= 600
    assert dep["metadata"]["ownerReferences"][0]["kind"] == "ModelDeployment"

    pod = cluster.get("pods", "-n", namespace, "-l", "app.kubernetes.io/instance=oss-120b")["items"][0]
    node = cluster.get("node", pod["spec"]["nodeName"])
    assert node["metadata"]["labels"]["nvidia.com/gpu.product"] == "NVIDIA-H100-80GB-HBM3"

    svc = cluster.get("service", "oss-120b", "-n", namespace)
    assert svc["spec"]["ports"] == [{"name": "http", "port": 8000, "protocol": "TCP", "targetPort": "http"}]


def test_20b_on_l4_gets_one_gpu(cluster: LocalCluster, operator: OperatorProcess, namespace: str) -> None:
    cluster.apply(model_deployment("oss-20b", "gpt-oss-20b", "L4"), namespace)
    md = wait_ready(cluster, namespace, "oss-20b")
    assert md["status"]["plan"]["gpusPerReplica"] == 1
    dep = cluster.get("deployment", "oss-20b", "-n", namespace)
    assert vllm_container(dep)["resources"]["limits"]["nvidia.com/gpu"] == "1"


def test_120b_on_t4_is_refused_and_creates_nothing(
    cluster: LocalCluster, operator: OperatorProcess, namespace: str
) -> None:
    cluster.apply(model_deployment("on-t4", "gpt-oss-120b", "T4"), namespace)
    md = wait_condition(cluster, namespace, "on-t4", "Planned", "False", "UnsupportedGPU")
    assert "compute capability 7.5" in condition(md, "Planned")["message"]  # type: ignore[index]
    assert md["status"]["phase"] == "Failed"
    assert "plan" not in md["status"]
    settle(2)
    assert cluster.get("deployments", "-n", namespace)["items"] == []


def test_explicit_count_that_cannot_fit_names_the_smallest_plan(
    cluster: LocalCluster, operator: OperatorProcess, namespace: str
) -> None:
    cluster.apply(model_deployment("a10g-one", "gpt-oss-120b", "A10G", gpu_extra={"count": 1}), namespace)
    md = wait_condition(cluster, namespace, "a10g-one", "Planned", "False", "InsufficientGPUMemory")
    message = condition(md, "Planned")["message"]  # type: ignore[index]
    assert "Smallest feasible plan" in message
    assert "gpu.count 8" in message
    assert cluster.get("deployments", "-n", namespace)["items"] == []


def test_api_server_refuses_bad_count_and_managed_extra_args(
    cluster: LocalCluster, operator: OperatorProcess, namespace: str
) -> None:
    bad_count = model_deployment("bad-count", "gpt-oss-20b", "L4", gpu_extra={"count": 3})
    proc = cluster.kubectl("create", "-n", namespace, "-f", "-", stdin=json.dumps(bad_count), check=False)
    assert proc.returncode != 0
    assert "gpu.count must be auto, 1, 2, 4 or 8" in proc.stderr

    managed = model_deployment(
        "bad-args", "gpt-oss-20b", "L4", vllm={"extraArgs": ["--tensor-parallel-size=4"]}
    )
    proc = cluster.kubectl("create", "-n", namespace, "-f", "-", stdin=json.dumps(managed), check=False)
    assert proc.returncode != 0
    assert "--tensor-parallel-size" in proc.stderr
    assert "manage" in proc.stderr  # the rule's message says the operator manages that flag

    long_name = model_deployment("n" * 55, "gpt-oss-20b", "L4")
    proc = cluster.kubectl("create", "-n", namespace, "-f", "-", stdin=json.dumps(long_name), check=False)
    assert proc.returncode != 0
    assert "metadata.name must be at most 54 characters" in proc.stderr

    secret = {"secretKeyRef": {"name": "proxy", "key": "url"}}
    for env, message in [
        (
            {"name": "HTTPS_PROXY", "value": "http://p:3128", "valueFrom": secret},
            "a value or a valueFrom, not both",
        ),
        ({"name": "HTTPS_PROXY", "valueFrom": {}}, "exactly one of secretKeyRef and configMapKeyRef"),
    ]:
        body = model_deployment("bad-env", "gpt-oss-20b", "L4", vllm={"env": [env]})
        proc = cluster.kubectl("create", "-n", namespace, "-f", "-", stdin=json.dumps(body), check=False)
        assert proc.returncode != 0
        assert message in proc.stderr


def test_negative_replicas_is_one_message(
    cluster: LocalCluster, operator: OperatorProcess, namespace: str
) -> None:
    body = model_deployment("negative", "gpt-oss-20b", "L4", replicas=-1)
    proc = cluster.kubectl("create", "-n", namespace, "-f", "-", stdin=json.dumps(body), check=False)
    assert proc.returncode != 0
    problems = [line for line in proc.stderr.splitlines() if "spec.replicas" in line]
    assert len(problems) == 1, proc.stderr
    assert "Invalid value: -1: should be a non-negative integer" in problems[0]


def test_api_server_refuses_abbreviations_of_managed_flags(
    cluster: LocalCluster, operator: OperatorProcess, namespace: str
) -> None:
    # vLLM's argparse expands unambiguous prefixes (allow_abbrev), so these set managed flags too.
    for i, arg in enumerate(["--gpu-memory-util=0.99", "--max-model=4096", "--tensor-parallel=4", "-t"]):
        md = model_deployment(
            f"abbrev-{i}", "gpt-oss-20b", "L4", vllm={"extraArgs": ["--max-num-seqs=8", arg]}
        )
        proc = cluster.kubectl("create", "-n", namespace, "-f", "-", stdin=json.dumps(md), check=False)
        assert proc.returncode != 0, arg
        assert "nor an abbreviation vLLM would expand to one" in proc.stderr, (arg, proc.stderr)

    # Flags that merely share a stem with a managed one are the user's to set.
    fine = model_deployment(
        "not-managed",
        "gpt-oss-20b",
        "L4",
        vllm={"extraArgs": ["--max-num-seqs=8", "--max-num-batched-tokens=8192"]},
    )
    cluster.kubectl("create", "-n", namespace, "-f", "-", stdin=json.dumps(fine))

    bad_version = model_deployment("bad-version", "gpt-oss-20b", "L4", vllm={"version": "latest"})
    proc = cluster.kubectl("create", "-n", namespace, "-f", "-", stdin=json.dumps(bad_version), check=False)
    assert proc.returncode != 0
    assert "spec.vllm.version" in proc.stderr


def test_vllm_version_outside_the_supported_range_is_refused(
    cluster: LocalCluster, operator: OperatorProcess, namespace: str
) -> None:
    cluster.apply(
        model_deployment("old-vllm", "gpt-oss-20b", "L4", image="vllm/vllm-openai:v0.14.1"), namespace
    )
    md = wait_condition(cluster, namespace, "old-vllm", "Planned", "False", "UnsupportedVLLMVersion")
    assert "0.15.1 to 0.33.x" in condition(md, "Planned")["message"]  # type: ignore[index]
    assert "plan" not in md["status"]
    assert cluster.get("deployments", "-n", namespace)["items"] == []


def test_changing_max_model_len_rolls_out(
    cluster: LocalCluster, operator: OperatorProcess, namespace: str
) -> None:
    cluster.apply(model_deployment("roll", "gpt-oss-20b", "L40S"), namespace)
    wait_ready(cluster, namespace, "roll")
    before = cluster.get("deployment", "roll", "-n", namespace)

    cluster.kubectl(
        "patch",
        "md",
        "roll",
        "-n",
        namespace,
        "--type=merge",
        "-p",
        '{"spec":{"serving":{"maxModelLen":32768}}}',
    )

    def rolled() -> dict[str, Any] | None:
        md = get_md(cluster, namespace, "roll")
        assert md["status"]["observedGeneration"] == 2, (
            f"status at generation {md['status']['observedGeneration']}"
        )
        assert md["status"]["plan"]["maxModelLen"] == 32768
        assert condition(md, "Ready")["status"] == "True"  # type: ignore[index]
        return md

    wait_for(rolled, timeout=90, what="the maxModelLen change to roll out")
    after = cluster.get("deployment", "roll", "-n", namespace)
    assert arg_value(vllm_container(after)["args"], "--max-model-len") == "32768"
    assert after["metadata"]["generation"] > before["metadata"]["generation"]
    replica_sets = cluster.get("replicasets", "-n", namespace, "-l", "app.kubernetes.io/instance=roll")[
        "items"
    ]
    assert len(replica_sets) == 2  # a real rollout: a new ReplicaSet for the new template


def test_full_gpu_nodes_show_insufficient_gpu(
    cluster: LocalCluster, operator: OperatorProcess, namespace: str
) -> None:
    # Other tests' H100 pods may still be terminating; start from empty H100 nodes.
    def h100_pods() -> list[str]:
        pods = cluster.get("pods", "-A")["items"]
        return [p["metadata"]["name"] for p in pods if p["spec"].get("nodeName", "").startswith("h100-")]

    wait_for(lambda: not h100_pods() or None, timeout=90, what="H100 nodes to be empty")
    # 2 nodes x 8 H100 = 16 GPUs = 8 replicas of TP 2.
    cluster.apply(model_deployment("fill", "gpt-oss-120b", "H100-80GB", replicas=8), namespace)
    md = wait_ready(cluster, namespace, "fill", timeout=120)
    assert md["status"]["readyReplicas"] == 8

    cluster.kubectl("scale", "md", "fill", "-n", namespace, "--replicas=9")
    md = wait_condition(cluster, namespace, "fill", "Degraded", "True", "InsufficientGPU", timeout=60)
    message = condition(md, "Degraded")["message"]  # type: ignore[index]
    assert "Insufficient nvidia.com/gpu" in message
    assert md["status"]["phase"] == "Degraded"  # 8 of 9 serve
    progressing = condition(md, "Progressing")
    assert progressing is not None
    assert progressing["reason"] == "InsufficientGPU"
    events = cluster.get(
        "events", "-n", namespace, "--field-selector", "involvedObject.name=fill,reason=InsufficientGPU"
    )
    assert events["items"], "a Warning event marks the transition"
    assert events["items"][0]["type"] == "Warning"


def test_kubectl_get_says_why_a_model_is_pending(
    cluster: LocalCluster, operator: OperatorProcess, namespace: str
) -> None:
    # No B200 nodes in the local pools: the pods wait, and the reason is in `kubectl get`.
    cluster.apply(model_deployment("nowhere", "gpt-oss-20b", "B200"), namespace)
    md = wait_condition(cluster, namespace, "nowhere", "Degraded", "True", "Unschedulable")
    assert md["status"]["phase"] == "Pending"
    row = cluster.kubectl("get", "md", "nowhere", "-n", namespace, "--no-headers").stdout.split()
    assert row[6:8] == ["Pending", "Unschedulable"], row


def test_kubectl_get_shows_columns_and_scale_works(
    cluster: LocalCluster, operator: OperatorProcess, namespace: str
) -> None:
    cluster.apply(model_deployment("cols", "gpt-oss-20b", "L40S"), namespace)
    wait_ready(cluster, namespace, "cols")
    out = cluster.kubectl("get", "md", "-n", namespace).stdout.splitlines()
    assert out[0].split() == ["NAME", "MODEL", "GPU", "GPUS", "TP", "READY", "PHASE", "REASON", "AGE"]
    assert out[1].split()[:7] == ["cols", "gpt-oss-20b", "L40S", "1", "1", "1/1", "Ready"]
    assert len(out[1].split()) == 8  # no reason when Ready
    assert "cols" in cluster.kubectl("get", "gptoss", "-n", namespace).stdout  # the category

    cluster.kubectl("scale", "md", "cols", "-n", namespace, "--replicas=2")

    def scaled() -> bool:
        dep = cluster.get("deployment", "cols", "-n", namespace)
        md = get_md(cluster, namespace, "cols")
        assert dep["spec"]["replicas"] == 2, "Deployment not scaled yet"
        assert md["status"]["readyText"] == "2/2", md["status"]["readyText"]
        return True

    wait_for(scaled, timeout=60, what="kubectl scale md to reach the Deployment")
    # replicas > 1 brings a PodDisruptionBudget; back to 1 removes it.
    assert cluster.get("pdb", "cols", "-n", namespace)["spec"]["maxUnavailable"] == 1
    cluster.kubectl("scale", "md", "cols", "-n", namespace, "--replicas=1")
    wait_for(
        lambda: cluster.kubectl("get", "pdb", "cols", "-n", namespace, check=False).returncode != 0,
        timeout=30,
        what="the PodDisruptionBudget to go with replicas 1",
    )

    # Scaled to zero: off on purpose, and the columns say so (not Pending, not Complete).
    cluster.kubectl("scale", "md", "cols", "-n", namespace, "--replicas=0")

    def off() -> list[str]:
        row = cluster.kubectl("get", "md", "cols", "-n", namespace, "--no-headers").stdout.split()
        assert row[5:8] == ["0/0", "ScaledToZero", "ScaledToZero"], row
        return row

    wait_for(off, timeout=60, what="kubectl get md to show a model scaled to zero")
    ready = [c for c in get_md(cluster, namespace, "cols")["status"]["conditions"] if c["type"] == "Ready"]
    assert [(c["status"], c["reason"]) for c in ready] == [("False", "ScaledToZero")]


def test_resync_and_restart_write_nothing(
    cluster: LocalCluster, operator: OperatorProcess, namespace: str
) -> None:
    # The operator's write counter is process-wide: let other tests' namespaces finish
    # terminating first (their children vanishing is real work for the operator).
    def others_terminating() -> list[str]:
        spaces = cluster.get("namespaces")["items"]
        return [n["metadata"]["name"] for n in spaces if n["status"].get("phase") == "Terminating"]

    wait_for(
        lambda: not others_terminating() or None, timeout=120, what="other test namespaces to be deleted"
    )
    cluster.apply(model_deployment("quiet", "gpt-oss-20b", "L4"), namespace)
    wait_ready(cluster, namespace, "quiet")
    settle(3)

    def versions() -> dict[str, str]:
        objs = [("modeldeployment", "quiet"), ("deployment", "quiet"), ("service", "quiet")]
        return {
            kind: cluster.get(kind, name, "-n", namespace)["metadata"]["resourceVersion"]
            for kind, name in objs
        }

    before = versions()
    writes_before = operator.writes()
    settle(5)  # watch bookmarks / unrelated events: still nothing to do
    assert operator.writes() == writes_before
    assert versions() == before

    # A restart lists everything again (a full resync) and must converge with zero writes.
    operator.restart()
    settle(6)
    assert operator.writes() == {}, "a restarted operator wrote to a converged cluster"
    assert versions() == before
    assert len(cluster.get("deployments", "-n", namespace)["items"]) == 1  # no duplicates


def test_deleting_the_model_deployment_removes_every_child(
    cluster: LocalCluster, operator: OperatorProcess, namespace: str
) -> None:
    cluster.apply(model_deployment("gone", "gpt-oss-20b", "L40S", replicas=2), namespace)
    wait_ready(cluster, namespace, "gone")
    md = get_md(cluster, namespace, "gone")
    assert not md["metadata"].get("finalizers")
    cluster.kubectl("delete", "md", "gone", "-n", namespace, "--timeout=20s")

    def children() -> list[str]:
        out = cluster.kubectl(
            "get",
            "deployment,service,pdb,replicaset,pod",
            "-n",
            namespace,
            "-l",
            "app.kubernetes.io/instance=gone",
            "-o",
            "name",
        ).stdout.split()
        return out

    wait_for(lambda: not children() or None, timeout=60, what="the garbage collector to remove every child")


def test_unparseable_resource_is_degraded_and_others_keep_working(
    cluster: LocalCluster, operator: OperatorProcess, namespace: str
) -> None:
    # A ModelDeployment stored under a looser CRD (e.g. before an upgrade tightened a rule) can
    # hold what today's models refuse. Simulate it by loosening the schema for one create.
    crd = cluster.get("crd", "modeldeployments.gptoss.dev")
    loose = json.loads(json.dumps(crd))
    for key in ("resourceVersion", "uid", "creationTimestamp", "generation", "managedFields"):
        loose["metadata"].pop(key, None)
    loose.pop("status", None)
    spec_schema = loose["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    spec_schema.clear()
    spec_schema.update({"type": "object", "x-kubernetes-preserve-unknown-fields": True})
    cluster.kubectl("replace", "-f", "-", stdin=json.dumps(loose))
    try:
        bad = model_deployment("bad", "gpt-oss-20b", "L4", serving={"maxModelLen": "lots"})
        wait_for(
            lambda: (
                cluster.kubectl(
                    "create", "-n", namespace, "-f", "-", stdin=json.dumps(bad), check=False
                ).returncode
                == 0
            ),
            timeout=30,
            what="the loosened schema to accept the bad object",
        )
    finally:
        crd_now = cluster.get("crd", "modeldeployments.gptoss.dev")
        crd["metadata"]["resourceVersion"] = crd_now["metadata"]["resourceVersion"]
        cluster.kubectl("replace", "-f", "-", stdin=json.dumps(crd))

    md = wait_condition(cluster, namespace, "bad", "Degraded", "True", "InvalidSpec")
    assert "spec.serving.maxModelLen" in condition(md, "Degraded")["message"]  # type: ignore[index]
    assert md["status"]["phase"] == "Failed"

    cluster.apply(model_deployment("good", "gpt-oss-20b", "L4"), namespace)
    wait_ready(cluster, namespace, "good")
    operator.assert_alive()


def test_weight_cache_is_filled_by_a_job_before_the_deployment_starts(
    cluster: LocalCluster, operator: OperatorProcess, namespace: str
) -> None:
    pv_name = f"weights-{namespace}"
    cluster.apply(
        host_path_volume(
            pv_name, storage="100Gi", access_mode="ReadWriteOnce", storage_class=f"manual-{namespace}"
        )
    )
    try:
        proxy = {"name": "HTTPS_PROXY", "valueFrom": {"secretKeyRef": {"name": "proxy", "key": "url"}}}
        mirror = {"name": "HF_ENDPOINT", "value": "https://hf-mirror.internal"}
        spec = {
            "source": {"cache": {"size": "80Gi", "storageClassName": f"manual-{namespace}"}},
            "vllm": {"env": [mirror, proxy, {"name": "VLLM_LOGGING_LEVEL", "value": "DEBUG"}]},
        }
        cluster.apply(model_deployment("cached", "gpt-oss-20b", "L4", **spec), namespace)
        md = wait_ready(cluster, namespace, "cached", timeout=120)
        assert condition(md, "WeightsReady")["reason"] == "Downloaded"  # type: ignore[index]
        # The claim bound at the PV controller's first look: no Warning for the scheduler's first
        # try of the download pod, made before that.
        about_it = "involvedObject.kind=ModelDeployment,involvedObject.name=cached,type=Warning"
        assert cluster.get("events", "-n", namespace, "--field-selector", about_it)["items"] == []

        job = cluster.get("job", "cached-download", "-n", namespace)
        script = job["spec"]["template"]["spec"]["containers"][0]["command"][-1]
        assert "snapshot_download" in script
        assert "original/*" in script  # root files only
        assert "metal/*" in script
        # The Hub mirror and the proxy reach the download, the vLLM-only variable does not.
        job_env = {e["name"]: e for e in job["spec"]["template"]["spec"]["containers"][0]["env"]}
        assert (job_env["HF_ENDPOINT"], job_env["HTTPS_PROXY"]) == (mirror, proxy)
        assert "VLLM_LOGGING_LEVEL" not in job_env
        pvc = cluster.get("pvc", "cached-weights", "-n", namespace)
        assert pvc["status"]["phase"] == "Bound"
        dep = cluster.get("deployment", "cached", "-n", namespace)
        volumes = {v["name"]: v for v in dep["spec"]["template"]["spec"]["volumes"]}
        assert volumes["models"]["persistentVolumeClaim"] == {"claimName": "cached-weights", "readOnly": True}
        assert {e["name"]: e for e in vllm_container(dep)["env"]}["HTTPS_PROXY"] == proxy
        # The cache volume is group-writable for the container, changed only on a mismatch.
        for pod in (job["spec"]["template"]["spec"], dep["spec"]["template"]["spec"]):
            context = pod["securityContext"]
            assert (context["fsGroup"], context["fsGroupChangePolicy"]) == (0, "OnRootMismatch")
    finally:
        cluster.kubectl("delete", "pv", pv_name, "--wait=false", check=False)


def test_restart_mid_way_converges_without_duplicates(
    cluster: LocalCluster, operator: OperatorProcess, namespace: str
) -> None:
    operator.stop()
    try:
        cluster.apply(model_deployment("midway", "gpt-oss-20b", "A100-80GB", replicas=2), namespace)
        operator.start()
        # Stop it again as soon as it has started writing, then bring it back.
        wait_for(
            lambda: (
                cluster.kubectl("get", "deployment", "midway", "-n", namespace, check=False).returncode == 0
            ),
            timeout=30,
            what="the first reconcile to create the Deployment",
        )
        operator.restart()
    finally:
        if operator.proc is None:
            operator.start()
    md = wait_ready(cluster, namespace, "midway")
    assert md["status"]["readyReplicas"] == 2
    for kind in ("deployments", "services", "poddisruptionbudgets"):
        assert len(cluster.get(kind, "-n", namespace)["items"]) == 1, kind
    assert len(cluster.get("replicasets", "-n", namespace)["items"]) == 1  # no second rollout


def test_the_cached_example_goes_ready_on_the_default_storage_class(
    cluster: LocalCluster, operator: OperatorProcess, namespace: str
) -> None:
    example = yaml.safe_load(
        (Path(__file__).resolve().parents[2] / "examples" / "modeldeployment-20b-l4-cached.yaml").read_text()
    )
    cluster.apply(example, namespace)
    name = example["metadata"]["name"]
    md = wait_ready(cluster, namespace, name, timeout=120)
    assert condition(md, "WeightsReady")["reason"] == "Downloaded"  # type: ignore[index]
    pvc = cluster.get("pvc", f"{name}-weights", "-n", namespace)
    assert pvc["spec"]["storageClassName"] == "standard"  # the default class, filled in by admission
    assert pvc["status"]["phase"] == "Bound"
    # A healthy install posts no Warning: the scheduler's first try of the download pod often
    # comes before the provisioner's volume ("unbound immediate PersistentVolumeClaims"), which
    # is the claim being made, not a stuck download (docs/operator.md, a claim's time to bind).
    about_it = f"involvedObject.kind=ModelDeployment,involvedObject.name={name}"
    events = cluster.get("events", "-n", namespace, "--field-selector", about_it)["items"]
    assert {(e["type"], e["reason"]) for e in events} <= {("Normal", "Downloaded")}, [
        (e["type"], e["reason"], e["message"]) for e in events
    ]


def test_a_cache_no_class_can_provision_is_degraded_with_the_schedulers_reason(
    cluster: LocalCluster, operator: OperatorProcess, namespace: str
) -> None:
    spec = {"source": {"cache": {"size": "20Gi", "storageClassName": f"missing-{namespace}"}}}
    cluster.apply(model_deployment("stuck", "gpt-oss-20b", "L4", **spec), namespace)
    # No provisioner is asked for a class that does not exist: reported once the claim's short
    # time to bind (the PV controller's first look) is up, by the requeue that ends it.
    md = wait_condition(cluster, namespace, "stuck", "Degraded", "True", "DownloadUnschedulable")
    message = condition(md, "Degraded")["message"]  # type: ignore[index]
    assert "unbound immediate PersistentVolumeClaims" in message
    assert (
        f"PVC stuck-weights is Pending (storageClassName missing-{namespace}; no provisioner was asked "
        "for a volume: does the class exist?)"
    ) in message
    assert md["status"]["phase"] == "Degraded"
    assert md["status"]["reason"] == "DownloadUnschedulable"
    assert condition(md, "WeightsReady")["reason"] == "DownloadUnschedulable"  # type: ignore[index]


def test_a_refused_edit_of_a_serving_model_reports_the_plan_that_still_serves(
    cluster: LocalCluster, operator: OperatorProcess, namespace: str
) -> None:
    cluster.apply(model_deployment("big", "gpt-oss-120b", "H100-80GB"), namespace)
    wait_ready(cluster, namespace, "big")
    cluster.apply(model_deployment("big", "gpt-oss-120b", "H100-80GB", gpu_extra={"count": 1}), namespace)
    md = wait_condition(cluster, namespace, "big", "Planned", "False", "InsufficientGPUMemory")
    assert md["status"]["phase"] == "Degraded"
    assert md["status"]["reason"] == "InsufficientGPUMemory"
    assert (md["status"]["plan"]["gpusPerReplica"], md["status"]["plan"]["tensorParallelSize"]) == (2, 2)
    assert md["status"]["readyText"] == "1/1"
    row = cluster.kubectl("get", "md", "big", "-n", namespace, "--no-headers").stdout.split()
    assert row[3:8] == ["2", "2", "1/1", "Degraded", "InsufficientGPUMemory"], row
    # The ModelDeployment's own events: its Service "big" can get the API server's
    # ClusterIPNotAllocated warning from the ClusterIP repair loop, which is not the operator's.
    about_it = "involvedObject.kind=ModelDeployment,involvedObject.name=big,type=Warning"
    warnings = cluster.get("events", "-n", namespace, "--field-selector", about_it)["items"]
    assert [e["reason"] for e in warnings] == ["InsufficientGPUMemory"]
    assert warnings[0].get("count", 1) == 1


def test_the_upgrade_check_in_the_docs_works_as_written(
    cluster: LocalCluster, operator: OperatorProcess, namespace: str
) -> None:
    cluster.apply(model_deployment("up-a", "gpt-oss-20b", "L4"), namespace)
    cluster.apply(
        model_deployment("up-b", "gpt-oss-120b", "H100-80GB", serving={"maxModelLen": 32768}), namespace
    )
    wait_ready(cluster, namespace, "up-a")
    wait_ready(cluster, namespace, "up-b")
    # docs/operator.md, "Upgrading the operator" (one namespace here: the cluster is shared).
    command = f"kubectl get md -n {namespace} -o yaml | {sys.executable} -m gptoss_operator plan -f - --diff"
    same = subprocess.run(
        ["bash", "-o", "pipefail", "-c", command],
        env=cluster.env | {"PATH": f"{cluster.bindir}:{os.environ['PATH']}"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert same.returncode == 0, same.stdout + same.stderr
    assert same.stdout.splitlines() == [f"{namespace}/up-a: same plan", f"{namespace}/up-b: same plan"]
    # A new default image (what an upgrade of the operator brings) rolls both: exit 1, with the diff.
    moved = subprocess.run(
        ["bash", "-o", "pipefail", "-c", command],
        env=cluster.env
        | {
            "PATH": f"{cluster.bindir}:{os.environ['PATH']}",
            "GPTOSS_IMAGE_NVIDIA": "vllm/vllm-openai:v0.31.0",
        },
        capture_output=True,
        text=True,
        check=False,
    )
    assert moved.returncode == 1, moved.stdout + moved.stderr
    assert f"{namespace}/up-a: plan changes (its pods roll):" in moved.stdout
    assert '+  "image": "vllm/vllm-openai:v0.31.0",' in moved.stdout
