"""Faults on the real local control plane: components killed with SIGKILL and started again,
a deletion while the watches reconnect, the operator killed mid-way, a CRD deleted and
re-created, a child deleted.

The tests that need the controller-manager to make pods run before the API server is killed
(after a restart it can lag for minutes, see RESTART_CONTROLLERS). Every test runs on a cluster of this module's own (killing the API server must not disturb
other tests) against one operator process, and asserts the same things: the operator converges
without being restarted, no object is duplicated, running models are not rolled out again, the
writes per object stay bounded, and nothing is left orphaned. Each prints its figure (``-s``).

GPTOSS_SOAK=1 makes the API server outage 90 s instead of 20 s.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import re
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devtools.cluster import REPO, LocalCluster, wait_for
from devtools.operator_process import OperatorProcess
from devtools.ports import free_port
from tests.support.figures import record
from tests.support.modeldeployments import get_md, model_deployment, wait_ready

OUTAGE_SECONDS = 90.0 if os.environ.get("GPTOSS_SOAK") == "1" else 20.0
RELIST_SECONDS = "3"
INSTANCE = "app.kubernetes.io/instance"
MANAGED = "app.kubernetes.io/managed-by=gptoss-operator"
# Writes one Ready object may cost across a fault: status patches, events, a re-apply of each
# child. A storm (every child event re-applying children) is hundreds.
WRITES_PER_OBJECT = 8
# After an API server restart the tests restart the controllers too: in this control plane the
# controller-manager's informers stop syncing ReplicaSets after one ("read version ... is not
# as new as written version", for minutes), so Deployments would never count their pods ready
# again. That is the controller-manager's problem, not the operator's, which these tests measure.
TOKENS: list[str] = []  # secret values the tests created, to look for in the log at the end
RESTART_CONTROLLERS = ("kube-controller-manager", "kube-scheduler", "kwok")
# While etcd is down every write fails and is retried with per-object exponential backoff
# (1, 2, 4, 8 s ...): failed attempts count as writes sent. An attempt sends at most the two
# child applies and a status patch, and an outage of T seconds fits at most log2(T + 1) + 1
# attempts per object; a storm would be hundreds a second.
WRITES_PER_ATTEMPT = 3


def etcd_outage_write_bound(objects: int, outage_s: float) -> float:
    failed_attempts = math.floor(math.log2(outage_s + 1)) + 1
    # then the writes of an ordinary recovery (WRITES_PER_OBJECT, as after an API server restart)
    return objects * (WRITES_PER_ATTEMPT * failed_attempts + WRITES_PER_OBJECT)


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalCluster]:
    local = LocalCluster.start(name=f"faults-{os.getpid()}", reuse_env=False)
    try:
        yield local
    finally:
        local.stop()


@pytest.fixture(scope="module")
def operator(cluster: LocalCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[OperatorProcess]:
    proc = OperatorProcess(
        cluster,
        Path(tmp_path_factory.mktemp("faults")) / "operator.log",
        env={"GPTOSS_RELIST_SECONDS": RELIST_SECONDS},
        liveness_port=free_port(),
    )
    proc.cluster.install_crds()
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture
def namespace(cluster: LocalCluster, request: pytest.FixtureRequest) -> Iterator[str]:
    name = cluster.create_namespace(request.node.name)
    yield name
    cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)


def total_writes(operator: OperatorProcess) -> float:
    return sum(operator.writes().values())


def deployments(cluster: LocalCluster, namespace: str) -> dict[str, tuple[int, str]]:
    """name -> (generation, pod template hash): a rollout changes one or the other."""
    items = cluster.get("deployments", "-n", namespace)["items"]
    return {
        d["metadata"]["name"]: (
            d["metadata"]["generation"],
            json.dumps(d["spec"]["template"], sort_keys=True),
        )
        for d in items
    }


def children_of(cluster: LocalCluster, namespace: str, name: str) -> list[str]:
    found = cluster.get(
        "deployments,services,poddisruptionbudgets", "-n", namespace, "-l", f"{INSTANCE}={name}"
    )
    return [f"{o['kind']}/{o['metadata']['name']}" for o in found["items"]]


def no_duplicates(cluster: LocalCluster, namespace: str, names: list[str]) -> None:
    per_owner: dict[str, int] = {}
    for d in cluster.get("deployments", "-n", namespace)["items"]:
        owner = d["metadata"]["labels"][INSTANCE]
        per_owner[owner] = per_owner.get(owner, 0) + 1
    assert per_owner == dict.fromkeys(names, 1), per_owner


def healthz(operator: OperatorProcess) -> int:
    """/healthz's status code; 0 when nothing answers (the process is gone or too busy), which
    a kubelet counts as a failed probe too."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{operator.liveness_port}/healthz", timeout=3) as r:
            return int(r.status)
    except urllib.error.HTTPError as e:
        return int(e.code)
    except (urllib.error.URLError, TimeoutError, ConnectionError):
        return 0


def create(
    cluster: LocalCluster, namespace: str, names: list[str], gpu: str = "H100-80GB", **spec: Any
) -> None:
    cluster.apply([model_deployment(n, "gpt-oss-20b", gpu, **spec) for n in names], namespace)


def wait_all_ready(cluster: LocalCluster, namespace: str, names: list[str], timeout: float = 90) -> None:
    for name in names:
        wait_ready(cluster, namespace, name, timeout=timeout)


def test_a_deleted_child_comes_back_once(
    cluster: LocalCluster, operator: OperatorProcess, namespace: str
) -> None:
    create(cluster, namespace, ["c"])
    wait_ready(cluster, namespace, "c")
    writes = total_writes(operator)
    cluster.kubectl("delete", "deployment", "c", "-n", namespace)
    cluster.kubectl("delete", "service", "c", "-n", namespace)
    wait_for(lambda: len(children_of(cluster, namespace, "c")) == 2 or None, timeout=30, what="children back")
    wait_ready(cluster, namespace, "c", timeout=120)
    time.sleep(3)
    spent = total_writes(operator) - writes
    no_duplicates(cluster, namespace, ["c"])
    # Two applies, and status going Ready -> Progressing -> Ready again (patches and events).
    assert spent <= 12, f"{spent} writes to bring two children back"
    record(
        "child_deleted",
        f"Deployment and Service deleted by hand: both back, Ready, {spent:.0f} writes",
        writes=spent,
    )


MD_CRD = "modeldeployments.gptoss.dev"


def recreate_crd(cluster: LocalCluster) -> None:
    cluster.kubectl(
        "apply", "--server-side", "--field-manager=pytest", "-f", str(REPO / "crds" / f"{MD_CRD}.yaml")
    )
    cluster.kubectl("wait", "--for=condition=Established", "--timeout=60s", f"crd/{MD_CRD}")


# kopf's line when a watch request for the kind fails (here: 404, the CRD was gone).
KOPF_WATCH_FAILED = re.compile(r"Watcher for modeldeployments\.\S+ has failed")


def assert_exited_for_the_deleted_crd(operator: OperatorProcess) -> None:
    """Exit code 1, and the last log line says why: what the kubelet and a person see."""
    assert operator.proc is not None
    assert operator.proc.poll() == 1, operator.log_tail()
    last = operator.log_path.read_text(errors="replace").strip().splitlines()[-1]
    assert "the modeldeployments CRD was deleted while it was watched" in last, operator.log_tail()


def test_crd_deleted_and_recreated(cluster: LocalCluster, operator: OperatorProcess, namespace: str) -> None:
    assert operator.proc is not None
    pid = operator.proc.pid
    create(cluster, namespace, ["before"])
    wait_ready(cluster, namespace, "before")
    assert healthz(operator) == 200
    log_before = operator.log_path.stat().st_size
    cluster.kubectl("delete", "crd", MD_CRD)
    try:
        wait_for(
            lambda: healthz(operator) != 200 or None, timeout=60, what="/healthz failing without the CRD"
        )
    finally:
        # Back whatever happened above: every later test of this module needs the kind.
        # The children of "before" are the garbage collector's to remove (it may only manage
        # once the CRD is back); the last test checks that nothing stayed orphaned.
        recreate_crd(cluster)
    # kopf re-opens a watch the API server closed at once; when that request beats kopf's own
    # CRD watch to the deletion it gets 404, which stops kopf. The operator then exits 1, its
    # last log line saying why, and the kubelet would restart it: so does this test. kopf logs
    # the 404 as it comes, long before the CRD is back; the exit follows once kopf has stopped
    # its other tasks, a few seconds later (CI once looked in between and saw it still running).
    with operator.log_path.open("rb") as log:
        log.seek(log_before)
        since_deletion = log.read().decode(errors="replace")
    if KOPF_WATCH_FAILED.search(since_deletion):
        wait_for(
            lambda: (operator.proc is not None and operator.proc.poll() is not None) or None,
            timeout=60,
            what="the operator to exit after kopf's watch of the deleted CRD got 404",
        )
    exited = operator.proc.poll()
    if exited is not None:
        assert_exited_for_the_deleted_crd(operator)
        operator.start()
    back = time.monotonic()
    create(cluster, namespace, ["after"])
    wait_ready(cluster, namespace, "after")
    ready = time.monotonic() - back
    cluster.kubectl("scale", "modeldeployment", "after", "-n", namespace, "--replicas=2")
    wait_for(
        lambda: cluster.get("deployment", "after", "-n", namespace)["spec"]["replicas"] == 2 or None,
        timeout=30,
        what="a change to the new object acted on",
    )
    operator.assert_alive()
    assert (operator.proc.pid == pid) == (exited is None), "the operator was restarted though it never exited"
    # Liveness passes again only once kopf's own watch has delivered the objects (it re-opens
    # the watch when API discovery lists the kind in time, not always); until then it fails so
    # that the kubelet restarts the operator, and the relist keeps objects reconciled meanwhile.
    time.sleep(2 * float(RELIST_SECONDS))
    watched = healthz(operator) == 200
    how = (
        "the operator exited 1 (kopf's watch got 404) and was restarted"
        if exited is not None
        else "same process"
    )
    record(
        "crd_recreated",
        f"CRD deleted: /healthz failed; re-created: a new object Ready {ready:.1f} s later and a scale "
        f"acted on, {how}; kopf's watch {'came back, /healthz passes' if watched else 'did not come back, /healthz still fails (the kubelet restarts the operator)'}",
        ready_s=round(ready, 2),
        watch_resumed=watched,
        restarted=exited is not None,
    )


def test_a_crd_deleted_while_the_operator_is_paused(
    cluster: LocalCluster, operator: OperatorProcess, namespace: str
) -> None:
    """The race the test above meets only on a busy machine, made likely: with the operator
    stopped (SIGSTOP), the CRD is deleted, so on SIGCONT the closed watch and the CRD's DELETED
    event are both waiting and kopf often re-opens the watch first, gets 404 and stops. The
    operator exits 1 with one line, and its restart serves the re-created CRD."""
    attempts = 0
    while True:
        attempts += 1
        assert operator.proc is not None
        os.kill(operator.proc.pid, signal.SIGSTOP)
        try:
            cluster.kubectl("delete", "crd", MD_CRD)
            time.sleep(1)  # past the API server's "storage is (re)initializing" answers (429)
        finally:
            os.kill(operator.proc.pid, signal.SIGCONT)
        try:
            operator.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pass  # kopf's CRD watch won: the same process goes on (the test above)
        finally:
            recreate_crd(cluster)
        if operator.proc.poll() is not None:
            break
        assert attempts < 6, "kopf's CRD watch won the race 6 times running"
        # kopf may not watch the kind again (the test above): only a fresh process races.
        operator.restart()
        wait_for(
            lambda: healthz(operator) == 200 or None, timeout=60, what="/healthz before the next attempt"
        )
    assert_exited_for_the_deleted_crd(operator)
    operator.start()
    create(cluster, namespace, ["after-exit"])
    wait_ready(cluster, namespace, "after-exit")
    wait_for(lambda: healthz(operator) == 200 or None, timeout=60, what="/healthz of the restarted operator")
    record(
        "crd_deleted_while_paused",
        f"CRD deleted under a paused operator: exited 1 with one line after {attempts} attempt(s); "
        "its restart made a new object Ready and passes /healthz",
        attempts=attempts,
    )


def test_no_secret_reaches_a_log_or_a_child(
    cluster: LocalCluster, operator: OperatorProcess, namespace: str
) -> None:
    """A Hugging Face token the operator wires into pods by reference only: its value is in no
    log line and no child (the last test checks the log again, after every fault)."""
    token = f"hf_{uuid.uuid4().hex}"
    TOKENS.append(token)
    cluster.kubectl("create", "secret", "generic", "hf", "-n", namespace, f"--from-literal=token={token}")
    create(
        cluster, namespace, ["s"], source={"huggingface": {"tokenSecretRef": {"name": "hf", "key": "token"}}}
    )
    wait_ready(cluster, namespace, "s")
    cluster.kubectl("scale", "modeldeployment", "s", "-n", namespace, "--replicas=2")  # more events
    wait_ready(cluster, namespace, "s")
    children = json.dumps(cluster.get("deployments,services,events", "-n", namespace))
    leaked = [
        where
        for where, text in (
            ("operator log", operator.log_path.read_text(errors="replace")),
            ("children", children),
        )
        if token in text
    ]
    assert not leaked, f"the token leaked into: {leaked}"
    record(
        "secrets", "a Hugging Face token referenced by a model: found in 0 log lines and 0 children", leaked=0
    )


def test_operator_killed_midway_through_50_creations(
    cluster: LocalCluster, operator: OperatorProcess, namespace: str
) -> None:
    names = [f"n{i:02}" for i in range(50)]
    halfway = threading.Event()

    def creations() -> None:
        # One at a time, as a CI pipeline or a user would: the operator is killed after 25.
        # replicas 0: the cluster has GPUs for a few dozen replicas, and convergence is the point.
        for i, name in enumerate(names):
            create(cluster, namespace, [name], replicas=0)
            if i == 24:
                halfway.set()

    creator = threading.Thread(target=creations)
    creator.start()
    assert halfway.wait(timeout=120)
    assert operator.proc is not None
    operator.proc.kill()  # SIGKILL: no cleanup
    operator.proc.wait()
    made = len(cluster.get("deployments", "-n", namespace)["items"])
    creator.join(timeout=120)
    operator.start()
    started = time.monotonic()

    def converged() -> bool | None:
        mds = cluster.get("modeldeployments", "-n", namespace)["items"]
        done = [
            m
            for m in mds
            if m.get("status", {}).get("observedGeneration") == m["metadata"]["generation"]
            and m["status"].get("phase") == "ScaledToZero"  # replicas 0
        ]
        assert len(done) == 50, f"{len(done)} of 50 converged"
        return len(cluster.get("deployments", "-n", namespace)["items"]) == 50 or None

    wait_for(converged, timeout=120, what="all 50 converged after the operator restart")
    no_duplicates(cluster, namespace, names)
    assert all(g == 1 for g, _ in deployments(cluster, namespace).values()), "a Deployment was changed again"
    record(
        "operator_killed_midway",
        f"operator SIGKILLed after 25 of 50 creations ({made} Deployments made), the rest created while it was "
        f"down: all 50 converged {time.monotonic() - started:.1f} s "
        "after the restart; 0 duplicates, 0 Deployments changed twice",
        made_before_kill=made,
    )


def test_etcd_kill_while_reconciling(
    cluster: LocalCluster, operator: OperatorProcess, namespace: str
) -> None:
    names = [f"e{i}" for i in range(6)]
    pid = operator.proc and operator.proc.pid
    writes = total_writes(operator)
    before = operator.writes()
    create(cluster, namespace, names)
    cluster.kill("etcd")  # while the operator applies their children
    killed = time.monotonic()
    time.sleep(8)
    cluster.start_component("etcd")
    # The local controller-manager can stall after its storage went away (docs/reliability.md,
    # Limits): restart the control loops, as after an API server restart, so the test measures
    # the operator, not that stall.
    for component in RESTART_CONTROLLERS:
        cluster.kill(component)
        cluster.start_component(component)
    started = time.monotonic()
    wait_all_ready(cluster, namespace, names, timeout=120)
    converged = time.monotonic() - started
    operator.assert_alive()
    assert operator.proc is not None
    assert operator.proc.pid == pid, "the operator was restarted"
    no_duplicates(cluster, namespace, names)
    assert all(g == 1 for g, _ in deployments(cluster, namespace).values()), "a Deployment was changed again"
    spent = total_writes(operator) - writes
    # The outage as the operator saw it: until the control loops were back (on a loaded machine
    # etcd and the restarted components take longer, and the backoff fits more attempts).
    # Every model the operator holds recovers from the outage (the earlier tests' too: the
    # restarted controller-manager re-reports their pods), and its counter counts them all.
    held = len(cluster.get("modeldeployments", "-A")["items"])
    bound = etcd_outage_write_bound(held, started - killed)
    assert spent <= bound, (
        f"{spent} writes, {held} models ({started - killed:.0f} s outage; bound {bound}): "
        f"{ {k: v - before.get(k, 0) for k, v in operator.writes().items() if v != before.get(k, 0)} }"
    )
    record(
        "etcd_kill_restart",
        f"etcd killed for 8 s while {len(names)} new models were reconciled: all Ready {converged:.1f} s after "
        f"etcd was back; {spent:.0f} writes; no restart, no duplicate",
        converge_s=round(converged, 2),
        writes=spent,
    )


def test_api_server_kill_and_restart(
    cluster: LocalCluster, operator: OperatorProcess, namespace: str
) -> None:
    names = [f"m{i}" for i in range(4)]
    create(cluster, namespace, names)
    wait_all_ready(cluster, namespace, names)
    before, pid = deployments(cluster, namespace), operator.proc and operator.proc.pid
    writes = total_writes(operator)
    reconciles = operator.metric("gptoss_operator_reconcile_seconds_count")
    resyncs = operator.metric("gptoss_operator_resyncs_total")

    cluster.kill("kube-apiserver")
    time.sleep(OUTAGE_SECONDS)
    cluster.start_component("kube-apiserver")
    back = time.monotonic()
    # Every object is reconciled again soon after the API server answers (the resync), so
    # whatever changed meanwhile shows in status without waiting for each object's next event.
    wait_for(
        lambda: (
            operator.metric("gptoss_operator_resyncs_total") > resyncs
            and operator.metric("gptoss_operator_reconcile_seconds_count") >= reconciles + len(names)
        ),
        timeout=15,
        what=f"a resync and a reconcile of all {len(names)} objects after the API server came back",
    )
    resynced = time.monotonic() - back
    for component in RESTART_CONTROLLERS:
        cluster.kill(component)
        cluster.start_component(component)
    # ... and the watches are open again: a change made now is acted on. (The Deployment's
    # spec is what the operator writes; its pods come when the controller-manager's own watches
    # are back, which can take client-go's backoff longer.)
    scaled = time.monotonic()
    cluster.kubectl("scale", "modeldeployment", "m0", "-n", namespace, "--replicas=2")
    wait_for(
        lambda: cluster.get("deployment", "m0", "-n", namespace)["spec"]["replicas"] == 2 or None,
        timeout=30,
        what="m0's Deployment scaled to 2 after the restart",
    )
    watched = time.monotonic() - scaled

    operator.assert_alive()
    assert operator.proc is not None
    assert operator.proc.pid == pid, "the operator was restarted"
    # Status tells the truth promptly: each model's readyReplicas is its Deployment's. (After a
    # 90 s outage the node controller has marked the kwok nodes' pods unready meanwhile, so
    # Ready must turn False; after 20 s nothing changed and the others keep serving.)
    started = time.monotonic()

    def status_matches() -> bool:
        for name in names:
            dep = cluster.get("deployment", name, "-n", namespace).get("status", {})
            md = get_md(cluster, namespace, name).get("status", {})
            assert md.get("readyReplicas") == dep.get("readyReplicas", 0), (
                f"{name}: {md.get('readyText')} vs {dep}"
            )
        return True

    wait_for(status_matches, timeout=30, what="every model's status agreeing with its Deployment")
    agreed = time.monotonic() - started
    if OUTAGE_SECONDS < 40:  # below the node controller's grace period: nothing was marked unready
        wait_all_ready(cluster, namespace, names[1:], timeout=120)
    after = deployments(cluster, namespace)
    assert {n: after[n] for n in names[1:]} == {n: before[n] for n in names[1:]}, "a running model rolled out"
    no_duplicates(cluster, namespace, names)
    spent = total_writes(operator) - writes
    # Every model the operator holds is resynced (the earlier tests' too), and its counter
    # counts them all.
    held = len(cluster.get("modeldeployments", "-A")["items"])
    assert spent <= WRITES_PER_OBJECT * held, f"{spent} writes, {held} models held"
    record(
        "api_server_kill_restart",
        f"{OUTAGE_SECONDS:.0f} s outage, {len(names)} models: all reconciled {resynced:.1f} s after the API "
        f"server was back, a later scale applied {watched:.1f} s after it was made, status agreed with every "
        f"Deployment {agreed:.1f} s after that; {spent:.0f} writes; no restart, "
        "no rollout, no duplicate",
        outage_s=OUTAGE_SECONDS,
        resync_s=round(resynced, 2),
        watch_s=round(watched, 2),
        writes=spent,
    )


def test_deletion_while_the_watches_reconnect(
    cluster: LocalCluster, operator: OperatorProcess, namespace: str
) -> None:
    names = ["keep", "gone"]
    create(cluster, namespace, names)
    wait_all_ready(cluster, namespace, names)
    kept = deployments(cluster, namespace)["keep"]
    cluster.kill("kube-apiserver")
    time.sleep(3)
    cluster.start_component("kube-apiserver")
    cluster.kubectl("delete", "modeldeployment", "gone", "-n", namespace, "--wait=false")
    for component in RESTART_CONTROLLERS:
        cluster.kill(component)
        cluster.start_component(component)
    writes = total_writes(operator)

    # Writes per second over 30 s: a storm (children re-applied on every GC event) shows here.
    samples = [writes]
    for _ in range(30):
        time.sleep(1)
        samples.append(total_writes(operator))
    per_second = max(b - a for a, b in itertools.pairwise(samples))
    spent = samples[-1] - writes

    wait_for(
        lambda: children_of(cluster, namespace, "gone") == [] or None,
        timeout=90,
        what="the garbage collector removing the deleted object's children",
    )
    operator.assert_alive()
    # Every object in the cluster is resynced after the restart (a status patch where something
    # changed); a storm is hundreds of writes a second.
    assert per_second <= 20, f"write storm: {per_second} writes in one second"
    assert spent <= 40, f"{spent} writes in the 30 s after the deletion"
    assert deployments(cluster, namespace)["keep"] == kept
    wait_ready(cluster, namespace, "keep")
    record(
        "deletion_during_restart",
        f"a model deleted as the API server came back: children gone, {spent:.0f} writes in the next 30 s "
        f"(peak {per_second:.0f}/s)",
        writes=spent,
        peak_writes_per_s=per_second,
    )


def test_every_fault_left_nothing_orphaned(cluster: LocalCluster, operator: OperatorProcess) -> None:
    """Run last: across all namespaces, every child the operator made has a live owner."""

    def no_orphans() -> bool:
        owners = {m["metadata"]["uid"] for m in cluster.get("modeldeployments", "-A")["items"]}
        children = cluster.get("deployments,services,poddisruptionbudgets", "-A", "-l", MANAGED)["items"]
        found = [
            f"{o['kind']}/{o['metadata']['namespace']}/{o['metadata']['name']}"
            for o in children
            if not {r["uid"] for r in o["metadata"].get("ownerReferences", [])} & owners
        ]
        assert not found, f"orphans: {found}"
        return True

    started = time.monotonic()
    wait_for(no_orphans, timeout=120, what="no orphaned children")
    log = operator.log_path.read_text(errors="replace")
    assert not [t for t in TOKENS if t in log], "a secret value reached the operator's log"
    record(
        "no_orphans",
        f"no orphaned child across all tests ({time.monotonic() - started:.1f} s of waiting for the GC)",
    )
    operator.assert_alive()
