"""Micro-benchmark: summarizing a child's watch event, with and without the owned-digest memo.

    .venv/bin/python -m bench.owned_digests [--n 1000] [--events 5]

Every watch event of a child the operator owns goes through ``observed.summarize_child``, which
digests the fields the operator's field manager owns (to notice hand edits). At 1,000
ModelDeployments most of those events are the deployment controller's status updates of the
Deployments. This builds N Deployments with the operator's own builders, turns each into the
body the API server returns for it once it has been applied and has run (server-set metadata,
defaults, status, and managedFields: the operator's Apply entry, computed from the applied
manifest as the API server computes a field set, plus the kube-controller-manager's entries),
checks that each is a converged child (its owned digest equals the manifest's), then times
``summarize_child`` over ``--events`` status-only events per Deployment, each body parsed from
JSON afresh as a watch delivers it: without the memo (the digest computed every time) and with
it (the first event of each object computes it, the rest find it). It also times an event after
a hand edit (the field set changed: the memo must compute it again) and measures the memo's
memory. No cluster, no network.
"""

from __future__ import annotations

import argparse
import copy
import gc
import json
import time
import tracemalloc
from collections.abc import Callable, Iterator
from typing import Any

from gptoss_operator.api.v1alpha1 import ModelDeployment, Plan
from gptoss_operator.manifests.vllm import deployment, pod_template
from gptoss_operator.observed import OwnedDigests, applied_digest, owned_digest, summarize_child
from gptoss_operator.planning import plan_deployment, startup_budget
from gptoss_operator.settings import FIELD_MANAGER, OperatorSettings

NAMESPACE = "bench"
JSONDict = dict[str, Any]

# Keys of the associative lists in a Deployment (the Kubernetes API's listMapKeys); every other
# list is atomic: its field set is the list itself.
LIST_KEYS: dict[str, tuple[str, ...]] = {
    "containers": ("name",),
    "initContainers": ("name",),
    "env": ("name",),
    "ports": ("containerPort", "protocol"),
    "volumes": ("name",),
    "volumeMounts": ("mountPath",),
    "ownerReferences": ("uid",),
    "imagePullSecrets": ("name",),
}


def field_set(value: Any, name: str = "") -> JSONDict:
    """The fieldsV1 of an applied configuration (what the API server records for an Apply)."""
    if isinstance(value, dict):
        return {f"f:{k}": field_set(v, k) for k, v in value.items()}
    if isinstance(value, list) and name in LIST_KEYS and all(isinstance(e, dict) for e in value):
        out: JSONDict = {}
        for element in value:
            key = {k: element.get(k, "TCP" if k == "protocol" else None) for k in LIST_KEYS[name]}
            out["k:" + json.dumps(key, separators=(",", ":"), sort_keys=True)] = {
                ".": {},
                **field_set(element),
            }
        return out
    return {}


def server_defaults(dep: JSONDict) -> None:
    """The defaults the API server fills into a Deployment the operator applied."""
    spec = dep["spec"]
    spec.setdefault("revisionHistoryLimit", 10)
    spec.setdefault("progressDeadlineSeconds", 600)
    pod = spec["template"]["spec"]
    for k, v in {
        "restartPolicy": "Always",
        "dnsPolicy": "ClusterFirst",
        "schedulerName": "default-scheduler",
        "securityContext": {},
        "terminationGracePeriodSeconds": 30,
    }.items():
        pod.setdefault(k, v)
    for c in pod.get("containers", []) + pod.get("initContainers", []):
        c.setdefault("terminationMessagePath", "/dev/termination-log")
        c.setdefault("terminationMessagePolicy", "File")
        c.setdefault("imagePullPolicy", "IfNotPresent")
        for port in c.get("ports", []):
            port.setdefault("protocol", "TCP")
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            if probe in c:
                for k, v in {"timeoutSeconds": 1, "periodSeconds": 10, "successThreshold": 1}.items():
                    c[probe].setdefault(k, v)
                c[probe].setdefault("failureThreshold", 3)
                if "httpGet" in c[probe]:
                    c[probe]["httpGet"].setdefault("scheme", "HTTP")


def status(ready: int, t: str) -> JSONDict:
    return {
        "observedGeneration": 1,
        "replicas": 1,
        "updatedReplicas": 1,
        "readyReplicas": ready,
        "availableReplicas": ready,
        **({"unavailableReplicas": 1} if not ready else {}),
        "conditions": [
            {
                "type": "Available",
                "status": "True" if ready else "False",
                "reason": "MinimumReplicasAvailable" if ready else "MinimumReplicasUnavailable",
                "message": "Deployment has minimum availability.",
                "lastUpdateTime": t,
                "lastTransitionTime": t,
            },
            {
                "type": "Progressing",
                "status": "True",
                "reason": "NewReplicaSetAvailable" if ready else "ReplicaSetUpdated",
                "message": "ReplicaSet has successfully progressed.",
                "lastUpdateTime": t,
                "lastTransitionTime": "2026-11-28T10:00:00Z",
            },
        ],
    }


STATUS_FIELDS: JSONDict = {
    "f:status": {
        "f:availableReplicas": {},
        "f:conditions": {
            ".": {},
            'k:{"type":"Available"}': {".": {}, **{f"f:{k}": {} for k in status(1, "")["conditions"][0]}},
            'k:{"type":"Progressing"}': {".": {}, **{f"f:{k}": {} for k in status(1, "")["conditions"][1]}},
        },
        "f:observedGeneration": {},
        "f:readyReplicas": {},
        "f:replicas": {},
        "f:updatedReplicas": {},
    }
}


def live_deployment(i: int) -> tuple[JSONDict, JSONDict]:
    """(the manifest the operator applies for object i, the Deployment the API server serves)."""
    md = ModelDeployment.model_validate(
        {
            "apiVersion": "gptoss.dev/v1alpha1",
            "kind": "ModelDeployment",
            "metadata": {
                "name": f"md-{i:04d}",
                "namespace": NAMESPACE,
                "uid": f"00000000-0000-0000-0000-{i:012d}",
            },
            "spec": {"model": "gpt-oss-20b", "gpu": {"type": "L4"}},
        }
    )
    plan = plan_deployment(md.spec)
    assert isinstance(plan, Plan), plan
    startup = startup_budget(md.spec)
    manifest = deployment(md, pod_template(md, plan, OperatorSettings(), startup), startup, "Surge")
    live = copy.deepcopy(manifest)
    server_defaults(live)
    applied = {k: v for k, v in manifest.items() if k not in ("apiVersion", "kind")}
    applied["metadata"] = {k: v for k, v in manifest["metadata"].items() if k not in ("name", "namespace")}
    meta = live["metadata"]
    meta.update(
        uid=f"11111111-0000-0000-0000-{i:012d}",
        resourceVersion=str(100_000 + i),
        generation=1,
        creationTimestamp="2026-11-28T10:00:00Z",
    )
    meta["annotations"]["deployment.kubernetes.io/revision"] = "1"
    meta["managedFields"] = [
        {
            "manager": FIELD_MANAGER,
            "operation": "Apply",
            "apiVersion": "apps/v1",
            "time": "2026-11-28T10:00:00Z",
            "fieldsType": "FieldsV1",
            "fieldsV1": field_set(applied),
        },
        {
            "manager": "kube-controller-manager",
            "operation": "Update",
            "apiVersion": "apps/v1",
            "time": "2026-11-28T10:00:00Z",
            "fieldsType": "FieldsV1",
            "fieldsV1": {"f:metadata": {"f:annotations": {"f:deployment.kubernetes.io/revision": {}}}},
        },
        {
            "manager": "kube-controller-manager",
            "operation": "Update",
            "apiVersion": "apps/v1",
            "time": "2026-11-28T10:00:00Z",
            "fieldsType": "FieldsV1",
            "fieldsV1": STATUS_FIELDS,
            "subresource": "status",
        },
    ]
    live["status"] = status(0, "2026-11-28T10:00:00Z")
    return manifest, live


def status_events(live: JSONDict, n: int) -> Iterator[str]:
    """``n`` status-only changes of ``live``, serialized as the API server sends them."""
    for e in range(n):
        t = f"2026-11-28T10:{e // 60:02d}:{e % 60:02d}Z"
        body = dict(live)
        body["metadata"] = dict(
            live["metadata"], resourceVersion=str(int(live["metadata"]["resourceVersion"]) + e)
        )
        body["metadata"]["managedFields"] = [
            *live["metadata"]["managedFields"][:2],
            {**live["metadata"]["managedFields"][2], "time": t},
        ]
        body["status"] = status(e % 2, t)
        yield json.dumps(body)


def timed(events: list[list[str]], summarize: Callable[[JSONDict], object]) -> tuple[float, float]:
    """Seconds spent in ``summarize``: (first event of each object, every later event).
    The garbage collector is off meanwhile, so a collection of what an earlier phase left is not
    charged to whichever call it happens to interrupt."""
    gc.collect()
    gc.disable()
    try:
        return _timed(events, summarize)
    finally:
        gc.enable()


def _timed(events: list[list[str]], summarize: Callable[[JSONDict], object]) -> tuple[float, float]:
    first = rest = 0.0
    for per_object in events:
        for e, raw in enumerate(per_object):
            body = json.loads(raw)  # a fresh body per event, as a watch delivers it
            start = time.perf_counter()
            summarize(body)
            took = time.perf_counter() - start
            if e == 0:
                first += took
            else:
                rest += took
    return first, rest


def best(runs: list[tuple[float, float]]) -> tuple[float, float]:
    return min(r[0] for r in runs), min(r[1] for r in runs)


def memoized(digests: OwnedDigests) -> Callable[[JSONDict], object]:
    return lambda body: summarize_child(body, digests)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000, help="Deployments (one per ModelDeployment)")
    parser.add_argument("--events", type=int, default=5, help="status-only watch events per Deployment")
    args = parser.parse_args()

    objects = [live_deployment(i) for i in range(args.n)]
    for manifest, live in objects:  # each is a converged child: no drift
        assert owned_digest(live, FIELD_MANAGER) == applied_digest(manifest), manifest["metadata"]["name"]
    events = [list(status_events(live, args.events)) for _, live in objects]
    size = sum(len(e) for per_object in events for e in per_object) / (args.n * args.events)

    digests = OwnedDigests()
    for per_object in events:  # the memo's answers are the digest's answers
        for raw in per_object:
            body = json.loads(raw)
            assert summarize_child(body, digests) == summarize_child(body)
    # The best of 3 rounds, row by row (the machine may be shared). A fresh memo each round: the
    # first event of every object computes the digest.
    rounds = {
        "without memo": best([timed(events, summarize_child) for _ in range(3)]),
        "with memo": best([timed(events, memoized(OwnedDigests())) for _ in range(3)]),
    }

    # A hand edit: kubectl edit took the vLLM container's args (the field set changes).
    edited = []
    for _, live in objects:
        body = copy.deepcopy(live)
        container = body["metadata"]["managedFields"][0]["fieldsV1"]["f:spec"]["f:template"]["f:spec"][
            "f:containers"
        ]
        del next(iter(container.values()))["f:args"]
        body["spec"]["template"]["spec"]["containers"][0]["args"].append("--enforce-eager")
        edited.append(json.dumps(body))
    warm = OwnedDigests()
    for per_object in events:
        summarize_child(json.loads(per_object[0]), warm)
    edit_memo, _ = timed([[raw] for raw in edited], memoized(warm))
    edit_plain, _ = timed([[raw] for raw in edited], summarize_child)

    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    memo = OwnedDigests()
    for per_object in events:
        summarize_child(json.loads(per_object[0]), memo)
    memo_bytes = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()

    later = args.n * (args.events - 1)
    print(
        f"{args.n} Deployments, {args.events} status-only events each, {size / 1024:.1f} KiB of JSON per event"
    )
    print("| summarize_child per event | without memo | with memo | ratio |")
    print("| --- | ---: | ---: | ---: |")
    (plain_first, plain_rest), (memo_first, memo_rest) = rounds["without memo"], rounds["with memo"]
    print(
        f"| first event of an object | {plain_first / args.n * 1e6:.1f} us | {memo_first / args.n * 1e6:.1f} us"
        f" | {memo_first / plain_first:.2f} |"
    )
    print(
        f"| later status-only event | {plain_rest / later * 1e6:.1f} us | {memo_rest / later * 1e6:.1f} us"
        f" | {memo_rest / plain_rest:.2f} |"
    )
    print(
        f"| event after a hand edit | {edit_plain / args.n * 1e6:.1f} us | {edit_memo / args.n * 1e6:.1f} us"
        f" | {edit_memo / edit_plain:.2f} |"
    )
    print(
        f"| all {args.n * args.events} events | {sum(rounds['without memo']):.3f} s | {sum(rounds['with memo']):.3f} s"
        f" | {sum(rounds['with memo']) / sum(rounds['without memo']):.2f} |"
    )
    print(
        f"memo: {len(memo)} entries, {memo_bytes / 1024:.0f} KiB ({memo_bytes / len(memo) / 1024:.1f} KiB each)"
    )


if __name__ == "__main__":
    main()
