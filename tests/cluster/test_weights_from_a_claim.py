"""source.persistentVolumeClaim on the real control plane and operator: the API server's rules,
a ModelDeployment whose weights claim appears, then binds, after it was created, and one whose
claim a provisioner was asked for but never fills (reported once its time to bind is up).

The claim and the ModelDeployment are the ones of examples/weights-volume-20b-l4.yaml; only the
PersistentVolume they bind to is the test's (a hostPath volume, named per namespace), and, for the
claim nothing provisions, a StorageClass whose provisioner does not run.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from typing import Any

import pytest
import yaml

from devtools.cluster import REPO, LocalCluster, condition, wait_for
from devtools.operator_process import OperatorProcess
from gptoss_operator.api.v1alpha1 import (
    VOLUME_PATH_MESSAGE,
    VOLUME_WITH_CACHE_MESSAGE,
    VOLUME_WITH_HUGGINGFACE_MESSAGE,
)
from gptoss_operator.observed import PROVISIONER_ANNOTATIONS
from gptoss_operator.settings import FIELD_MANAGER
from gptoss_operator.status import CLAIM_PROVISIONING_SECONDS, UNBOUND_CLAIM
from tests.support.modeldeployments import (
    arg_value,
    get_md,
    host_path_volume,
    model_deployment,
    vllm_container,
    wait_condition,
    wait_ready,
)

EXAMPLE = REPO / "examples" / "weights-volume-20b-l4.yaml"
VOLUME = {"claimName": "w"}
REFUSED = [
    ("with-cache", {"persistentVolumeClaim": VOLUME, "cache": {}}, VOLUME_WITH_CACHE_MESSAGE),
    (
        "with-repo",
        {"persistentVolumeClaim": VOLUME, "huggingface": {"repo": "openai/gpt-oss-20b"}},
        VOLUME_WITH_HUGGINGFACE_MESSAGE,
    ),
    (
        "with-revision",
        {"persistentVolumeClaim": VOLUME, "huggingface": {"revision": "abc123"}},
        VOLUME_WITH_HUGGINGFACE_MESSAGE,
    ),
    ("absolute-path", {"persistentVolumeClaim": {"claimName": "w", "path": "/etc"}}, VOLUME_PATH_MESSAGE),
    ("parent-path", {"persistentVolumeClaim": {"claimName": "w", "path": "a/../../b"}}, VOLUME_PATH_MESSAGE),
]


@pytest.fixture(scope="module")
def crds(cluster: LocalCluster) -> LocalCluster:
    cluster.install_crds()
    return cluster


@pytest.mark.parametrize(("case", "source", "message"), REFUSED, ids=[r[0] for r in REFUSED])
def test_the_api_server_refuses_a_volume_with_another_source_or_a_path_outside_it(
    crds: LocalCluster, namespace: str, case: str, source: dict[str, Any], message: str
) -> None:
    body = model_deployment(case, "gpt-oss-20b", "L4", source=source)
    proc = crds.kubectl("create", "-n", namespace, "-f", "-", stdin=json.dumps(body), check=False)
    assert proc.returncode != 0, f"the API server accepted {case}"
    assert message in proc.stderr, proc.stderr


def test_the_api_server_accepts_a_volume_with_default_huggingface(crds: LocalCluster, namespace: str) -> None:
    source = {"persistentVolumeClaim": {"claimName": "w", "path": "models/v1.2"}, "huggingface": {}}
    body = model_deployment("defaults", "gpt-oss-20b", "L4", source=source)
    proc = crds.kubectl("create", "-n", namespace, "-f", "-", stdin=json.dumps(body), check=False)
    assert proc.returncode == 0, proc.stderr
    stored = get_md(crds, namespace, "defaults")["spec"]["source"]
    assert stored["huggingface"] == {"revision": "main"}  # the default the rule lets through


def test_weights_ready_follows_the_claim_from_missing_to_bound(
    cluster: LocalCluster, operator: OperatorProcess, namespace: str
) -> None:
    claim, md = yaml.safe_load_all(EXAMPLE.read_text())
    claim_name, name = claim["metadata"]["name"], md["metadata"]["name"]
    path = md["spec"]["source"]["persistentVolumeClaim"]["path"]
    pv_name = f"gpt-oss-weights-{namespace}"
    claim["spec"]["volumeName"] = pv_name

    # The ModelDeployment first: no claim of that name exists.
    cluster.apply(md, namespace)
    got = wait_condition(cluster, namespace, name, "WeightsReady", "False", "VolumeNotFound")
    assert claim_name in condition(got, "WeightsReady")["message"]  # type: ignore[index]
    assert (got["status"]["phase"], got["status"]["reason"]) == ("Degraded", "VolumeNotFound")
    assert cluster.get("deployments", "-n", namespace)["items"] == []  # nothing to mount yet

    # The claim, bound to a volume that does not exist yet: it stays Pending; the pods may be
    # created (only a pod binds a WaitForFirstConsumer claim).
    cluster.apply(claim, namespace)
    wait_condition(cluster, namespace, name, "WeightsReady", "False", "VolumeNotBound")
    wait_for(
        lambda: cluster.get("deployments", "-n", namespace)["items"] or None,
        timeout=30,
        what="the Deployment once the claim exists",
    )
    # Its pods cannot be scheduled while it is unbound ("pod has unbound immediate
    # PersistentVolumeClaims"): that is the claim's doing, and what the user sees names it.
    got = wait_condition(cluster, namespace, name, "Degraded", "True", "VolumeNotBound")
    assert (got["status"]["phase"], got["status"]["reason"]) == ("Pending", "VolumeNotBound")
    row = cluster.kubectl("get", "md", name, "-n", namespace, "--no-headers").stdout.split()
    assert row[6:8] == ["Pending", "VolumeNotBound"], row  # the Phase and Reason columns
    about_it = f"involvedObject.kind=ModelDeployment,involvedObject.name={name},type=Warning"
    warnings = cluster.get("events", "-n", namespace, "--field-selector", about_it)["items"]
    by_reason = {e["reason"]: e["message"] for e in warnings}
    assert sorted(by_reason) == ["VolumeNotBound", "VolumeNotFound"], by_reason  # not Unschedulable
    assert f"PersistentVolumeClaim {claim_name} is Pending, not Bound" in by_reason["VolumeNotBound"]

    cluster.apply(host_path_volume(pv_name, storage="200Gi", access_mode="ReadOnlyMany", storage_class=""))
    try:
        got = wait_ready(cluster, namespace, name, timeout=120)
        weights = condition(got, "WeightsReady")
        assert weights is not None
        assert (weights["status"], weights["reason"]) == ("True", "ProvidedVolume")
        assert claim_name in weights["message"]

        dep = cluster.get("deployment", name, "-n", namespace)
        volumes = {v["name"]: v for v in dep["spec"]["template"]["spec"]["volumes"]}
        assert volumes["models"]["persistentVolumeClaim"] == {"claimName": claim_name, "readOnly": True}
        container = vllm_container(dep)
        mount = next(m for m in container["volumeMounts"] if m["name"] == "models")
        assert mount["readOnly"] is True
        assert arg_value(container["args"], "--model") == f"{mount['mountPath']}/{path}"
        assert arg_value(container["args"], "--served-model-name") == "gpt-oss-20b"
        assert {e["name"]: e.get("value") for e in container["env"]}["HF_HUB_OFFLINE"] == "1"
        assert container["args"] == got["status"]["plan"]["args"]

        # The operator made no claim and no Job, and left the user's claim as it was.
        assert cluster.get("jobs", "-n", namespace)["items"] == []
        claims = cluster.get("pvc", "-n", namespace)["items"]
        assert [c["metadata"]["name"] for c in claims] == [claim_name]
        (stored,) = claims
        assert stored["status"]["phase"] == "Bound"
        assert "ownerReferences" not in stored["metadata"]
        managers = {f["manager"] for f in stored["metadata"].get("managedFields", [])}
        assert FIELD_MANAGER not in managers
        operator.assert_alive()
    finally:
        cluster.kubectl("delete", "pv", pv_name, "--wait=false", check=False)


# A provisioner nothing runs: the PV controller hands the claim to it (an external provisioner,
# not one of its own) and waits for a PersistentVolume that never comes.
NEVER_PROVISIONS = "example.com/never-provisions"
# How late past its time to bind the report may come. The operator asks to be run again 1 s
# after the time is up (status.recheck_after), so on an idle machine it is 1-2 s late; the rest
# is for a loaded 2-core CI machine (five control planes, the operator's event loop and kubectl
# all sharing it). Without the requeue no event brings the object back at all before the
# operator's next relist, which only requeues objects that changed: the report never comes.
LATE_BY_AT_MOST = 30


def _instant(timestamp: str) -> dt.datetime:
    return dt.datetime.fromisoformat(timestamp.replace("Z", "+00:00"))


def _warnings(cluster: LocalCluster, namespace: str, name: str) -> list[dict[str, Any]]:
    about_it = f"involvedObject.kind=ModelDeployment,involvedObject.name={name},type=Warning"
    events: dict[str, Any] = cluster.get("events", "-n", namespace, "--field-selector", about_it)
    items: list[dict[str, Any]] = events["items"]
    return items


def test_a_claim_its_provisioner_never_fills_is_reported_when_its_time_to_bind_is_up(
    cluster: LocalCluster, operator: OperatorProcess, namespace: str
) -> None:
    claim, md = yaml.safe_load_all(EXAMPLE.read_text())
    claim_name, name = claim["metadata"]["name"], md["metadata"]["name"]
    # StorageClasses and PersistentVolumes are cluster-wide: named after the test's namespace.
    storage_class = f"never-provisions-{namespace}"
    pv_name = f"gpt-oss-weights-{namespace}"
    claim["spec"]["storageClassName"] = storage_class
    del claim["spec"]["volumeName"]  # a claim to be provisioned, not one for a volume of yours
    cluster.apply(
        {
            "apiVersion": "storage.k8s.io/v1",
            "kind": "StorageClass",
            "metadata": {"name": storage_class},
            "provisioner": NEVER_PROVISIONS,
            "volumeBindingMode": "Immediate",
        }
    )
    try:
        # (1) The real controller-manager's PV controller hands the claim to the provisioner.
        cluster.apply(claim, namespace)

        def handed_over() -> dict[str, Any] | None:
            stored: dict[str, Any] = cluster.get("pvc", claim_name, "-n", namespace)
            return stored if PROVISIONER_ANNOTATIONS[0] in stored["metadata"].get("annotations", {}) else None

        stored = wait_for(handed_over, timeout=30, what=f"the {PROVISIONER_ANNOTATIONS[0]} annotation")
        assert stored["metadata"]["annotations"][PROVISIONER_ANNOTATIONS[0]] == NEVER_PROVISIONS
        assert stored["status"]["phase"] == "Pending"
        created = _instant(stored["metadata"]["creationTimestamp"])
        time_up = created + dt.timedelta(seconds=CLAIM_PROVISIONING_SECONDS)

        # The Deployment is created for a Pending claim, and the scheduler refuses its pod for the
        # claim alone: the wait the operator excuses until the claim's time is up.
        cluster.apply(md, namespace)

        def refused_for_the_claim() -> bool:
            pods = cluster.get("pods", "-n", namespace)["items"]
            scheduled = [condition(p, "PodScheduled") or {} for p in pods]
            assert scheduled, "no vLLM pod yet"
            return all(
                c.get("status") == "False" and UNBOUND_CLAIM in c.get("message", "") for c in scheduled
            )

        wait_for(
            refused_for_the_claim, timeout=60, what=f"the vLLM pod refused with {UNBOUND_CLAIM!r}", interval=1
        )

        # (2) Until shortly before the time is up it waits: WeightsReady says why, the Reason
        # column shows it, and nothing is Degraded or warned about. Looked at every few seconds
        # (reads only: nothing may touch the objects, the report must come on its own).
        wait_condition(cluster, namespace, name, "WeightsReady", "False", "VolumeNotBound")
        row = cluster.kubectl("get", "md", name, "-n", namespace, "--no-headers").stdout.split()
        assert row[6:8] == ["Pending", "VolumeNotBound"], row  # the Phase and Reason columns
        looked_at: list[dt.datetime] = []
        while (now := dt.datetime.now(dt.UTC)) < time_up - dt.timedelta(seconds=10):
            got = get_md(cluster, namespace, name)
            degraded = condition(got, "Degraded")
            assert degraded is not None
            assert (degraded["status"], degraded["reason"]) == ("False", "AsExpected"), (
                now - created,
                degraded,
            )
            weights = condition(got, "WeightsReady")
            assert weights is not None
            assert (weights["status"], weights["reason"]) == ("False", "VolumeNotBound"), weights
            assert claim_name in weights["message"]
            assert (got["status"]["phase"], got["status"]["reason"]) == ("Pending", "VolumeNotBound")
            assert _warnings(cluster, namespace, name) == [], now - created
            looked_at.append(now)
            time.sleep(5)
        assert looked_at, "the setup outlasted the claim's time to bind: nothing was checked before it"
        assert looked_at[-1] - created >= dt.timedelta(seconds=CLAIM_PROVISIONING_SECONDS - 20), looked_at

        # (3) Once the time is up, with no write to any object since, the claim is reported.
        def degraded_for_the_claim() -> dict[str, Any]:
            got = get_md(cluster, namespace, name)
            degraded = condition(got, "Degraded")
            assert (degraded or {}).get("status") == "True", f"Degraded: {degraded}"
            return got

        deadline = time_up + dt.timedelta(seconds=LATE_BY_AT_MOST)
        wait_for(
            degraded_for_the_claim,
            timeout=(deadline - dt.datetime.now(dt.UTC)).total_seconds(),
            what=f"Degraded=True within {LATE_BY_AT_MOST}s after the claim's time to bind",
            interval=1,
        )
        got = get_md(cluster, namespace, name)
        degraded = condition(got, "Degraded")
        assert degraded is not None
        assert degraded["reason"] == "VolumeNotBound"
        said = (
            f"PersistentVolumeClaim {claim_name} is Pending, not Bound "
            f"(provisioner {NEVER_PROVISIONS} has not provided a volume)"
        )
        assert said in degraded["message"], degraded["message"]
        assert (got["status"]["phase"], got["status"]["reason"]) == ("Pending", "VolumeNotBound")
        row = cluster.kubectl("get", "md", name, "-n", namespace, "--no-headers").stdout.split()
        assert row[6:8] == ["Pending", "VolumeNotBound"], row  # the Phase and Reason columns

        # (4) When: not before the time was up, and within LATE_BY_AT_MOST after it. The
        # condition's lastTransitionTime and the event's firstTimestamp are the operator's clock
        # when it decided; the claim's creationTimestamp the API server's, on the same machine.
        turned = _instant(degraded["lastTransitionTime"])
        assert time_up <= turned <= deadline, (created, turned)
        print(f"Degraded {(turned - time_up).total_seconds():.0f}s after the claim's time to bind (-s)")
        (warning,) = wait_for(
            lambda: _warnings(cluster, namespace, name), timeout=10, what="the Warning event"
        )
        assert (warning["reason"], warning["count"]) == ("VolumeNotBound", 1), warning
        assert said in warning["message"], warning["message"]
        assert time_up <= _instant(warning["firstTimestamp"]) <= deadline, (
            created,
            warning["firstTimestamp"],
        )

        # (5) A PersistentVolume for the claim (pre-bound to it, of its class): it binds, the
        # pods are scheduled and the Degraded clears, with no second Warning.
        volume = host_path_volume(
            pv_name, storage="200Gi", access_mode="ReadOnlyMany", storage_class=storage_class
        )
        volume["spec"]["claimRef"] = {"namespace": namespace, "name": claim_name}
        cluster.apply(volume)
        got = wait_ready(cluster, namespace, name, timeout=90)
        degraded = condition(got, "Degraded")
        assert degraded is not None
        assert (degraded["status"], degraded["reason"]) == ("False", "AsExpected")
        assert [w["reason"] for w in _warnings(cluster, namespace, name)] == ["VolumeNotBound"]
        operator.assert_alive()
    finally:
        cluster.kubectl("delete", "pv", pv_name, "--wait=false", "--ignore-not-found", check=False)
        cluster.kubectl("delete", "storageclass", storage_class, "--wait=false", check=False)
