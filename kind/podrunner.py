"""The pod runner of a served cluster: makes kwok's Running pods answer at their pod IPs.

kwok marks pods Running and gives them IPs, but nothing runs. This process, started by
`kind/cluster up --serve` inside the cluster's network namespace (where the whole pod CIDR is
local), plays the kubelet's part for two kinds of containers:

- vLLM containers (image contains ``vllm``, or ``vllm serve`` / ``--served-model-name`` in the
  command line): the project's vLLM simulator (``gptoss_operator.simulators.vllm``) bound to
  podIP:port, serving the container's ``--served-model-name`` with its ``--max-model-len``.
- The project's own containers (command line starting with ``gptoss-operator``, or
  ``python -m gptoss_operator...`` such as the hosted-provider simulator): this checkout's
  ``gptoss-operator`` (or its venv's python) with the container's arguments and environment, in a private
  mount namespace where the pod's ConfigMap, Secret, projected (service-account token) and
  downward-API volumes are bind-mounted at their mountPaths. Their files are kept up to date
  the kubelet's way: a timestamped directory, a ``..data`` symlink swapped atomically, and one
  symlink per key (kubernetes pkg/volume/util/atomic_writer.go).

Other containers are left alone. A process that exits is handled as the pod's restartPolicy
says: restarted with a capped back-off (Always, and OnFailure after a non-zero exit), or left
terminated; once every container of a pod has terminated for good, the pod's status is written
the kubelet's way (phase Succeeded or Failed, containerStatuses[].state.terminated). A process
whose pod is deleted, stops Running or changes IP is stopped.
Logs: <state-dir>/logs/podrunner.log, and <state-dir>/pods/<namespace>_<pod>_<uid>/<container>.log.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import ipaddress
import json
import os
import re
import shlex
import shutil
import signal
import ssl
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

REPO = Path(__file__).resolve().parent.parent
VENV_BIN = REPO / ".venv" / "bin"
KWOK_NODE_ANNOTATION = "kwok.x-k8s.io/node"
VLLM_DEFAULT_PORT = 8000
# Service-account tokens: the kubelet asks for 1 h and renews at 80 % of the lifetime.
TOKEN_SECONDS = 3607
SA_MOUNT = "/var/run/secrets/kubernetes.io/serviceaccount"

Json = dict[str, Any]


def log(msg: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {msg}", flush=True)


# ---------------------------------------------------------------------------- API access


class Api:
    """The API server through the cluster's admin kubeconfig (client certificate)."""

    def __init__(self, kubeconfig: Path) -> None:
        cfg = yaml.safe_load(kubeconfig.read_text())
        cluster = cfg["clusters"][0]["cluster"]
        user = cfg["users"][0]["user"]
        ctx = ssl.create_default_context(cafile=cluster["certificate-authority"])
        ctx.load_cert_chain(user["client-certificate"], user["client-key"])
        self.server = str(cluster["server"])
        self.http = httpx.Client(base_url=self.server, verify=ctx, timeout=10, trust_env=False)
        self.ca_file = Path(cluster["certificate-authority"])

    def get(self, path: str, **params: str) -> Json | None:
        r = self.http.get(path, params=params)
        if r.status_code == 404:
            return None
        r.raise_for_status()
        out: Json = r.json()
        return out

    def patch_pod_status(self, namespace: str, name: str, patch: Json) -> bool:
        """A strategic merge patch of the pod's status (as the kubelet sends it); False when the
        pod is gone or is another pod of the same name (the uid precondition failed)."""
        r = self.http.patch(
            f"/api/v1/namespaces/{namespace}/pods/{name}/status",
            content=json.dumps(patch),
            headers={"Content-Type": "application/strategic-merge-patch+json"},
        )
        if r.status_code in (404, 409):
            return False
        r.raise_for_status()
        return True

    def token(self, pod: Json, sa: str, audience: list[str], seconds: int) -> str:
        namespace = pod["metadata"]["namespace"]
        # Bound to the pod, as the kubelet asks for it: the token dies with the pod.
        bound = {
            "kind": "Pod",
            "apiVersion": "v1",
            "name": pod["metadata"]["name"],
            "uid": pod["metadata"]["uid"],
        }
        body = {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {"audiences": audience, "expirationSeconds": seconds, "boundObjectRef": bound},
        }
        r = self.http.post(f"/api/v1/namespaces/{namespace}/serviceaccounts/{sa}/token", json=body)
        r.raise_for_status()
        return str(r.json()["status"]["token"])


class PodWatch(threading.Thread):
    """List + watch of all pods; keeps ``pods`` (uid -> pod) current and sets ``changed``."""

    def __init__(self, api: Api, ready_file: Path) -> None:
        super().__init__(daemon=True, name="pod-watch")
        self.api = api
        self.pods: dict[str, Json] = {}
        self.lock = threading.Lock()
        self.changed = threading.Event()
        self.ready_file = ready_file

    def run(self) -> None:
        while True:
            try:
                rv: str | None = self._list()
                self.ready_file.touch()
                while rv is not None:
                    rv = self._watch(rv)
            except (httpx.HTTPError, ValueError, KeyError) as e:
                log(f"pod watch: {type(e).__name__}: {e}; relisting in 1s")
                time.sleep(1)

    def _list(self) -> str:
        out = self.api.get("/api/v1/pods")
        assert out is not None
        with self.lock:
            self.pods = {p["metadata"]["uid"]: p for p in out["items"]}
        self.changed.set()
        return str(out["metadata"]["resourceVersion"])

    def _watch(self, rv: str) -> str | None:
        params = {"watch": "1", "resourceVersion": rv, "allowWatchBookmarks": "true", "timeoutSeconds": "300"}
        timeout = httpx.Timeout(10, read=330)
        with self.api.http.stream("GET", "/api/v1/pods", params=params, timeout=timeout) as r:
            r.raise_for_status()
            for line in r.iter_lines():
                if not line.strip():
                    continue
                ev = json.loads(line)
                obj = ev["object"]
                if ev["type"] == "ERROR":  # 410 Gone: our resourceVersion is too old
                    log(f"pod watch: {obj.get('message')}; relisting")
                    return None
                rv = obj["metadata"]["resourceVersion"]
                if ev["type"] == "BOOKMARK":
                    continue
                with self.lock:
                    if ev["type"] == "DELETED":
                        self.pods.pop(obj["metadata"]["uid"], None)
                    else:
                        self.pods[obj["metadata"]["uid"]] = obj
                self.changed.set()
        return rv

    def snapshot(self) -> list[Json]:
        with self.lock:
            return list(self.pods.values())


# ---------------------------------------------------------------------------- what to run


def command_line(container: Json) -> list[str]:
    return [str(a) for a in (container.get("command") or []) + (container.get("args") or [])]


def flag_values(argv: list[str], flag: str) -> list[str]:
    """Values of ``--flag v``, ``--flag v1 v2`` (nargs="+") and ``--flag=v``; the last use wins."""
    found: list[str] = []
    for i, arg in enumerate(argv):
        if arg.startswith(flag + "="):
            found = [arg.split("=", 1)[1]]
        elif arg == flag:
            found = []
            for value in argv[i + 1 :]:
                if value.startswith("--"):
                    break
                found.append(value)
    return found


def is_vllm(container: Json) -> bool:
    argv = command_line(container)
    joined = " ".join(argv)
    return (
        "vllm" in str(container.get("image", ""))
        or "vllm serve" in joined
        or "--served-model-name" in argv
        or any(a.startswith("--served-model-name=") for a in argv)
    )


def is_project(container: Json) -> bool:
    """``gptoss-operator ...``, or ``python -m gptoss_operator...`` (e.g. the simulators)."""
    argv = command_line(container)
    if not argv:
        return False
    if os.path.basename(argv[0]) == "gptoss-operator":
        return True
    return (
        os.path.basename(argv[0]).startswith("python")
        and len(argv) > 2
        and argv[1] == "-m"
        and argv[2].split(".")[0] == "gptoss_operator"
    )


def vllm_simulator_argv(pod: Json, container: Json) -> list[str]:
    """The simulator standing in for this vLLM container, with vLLM's own flags mapped."""
    argv = command_line(container)
    names = flag_values(argv, "--served-model-name")
    if not names:
        # vLLM serves the model under its path/repo when no name is given: `--model X` or
        # the positional of `vllm serve X`.
        model = flag_values(argv, "--model")
        if not model and "serve" in argv and argv.index("serve") + 1 < len(argv):
            model = [argv[argv.index("serve") + 1]]
        names = model[:1]
    port = (flag_values(argv, "--port") or [str(VLLM_DEFAULT_PORT)])[0]
    cmd = [
        str(VENV_BIN / "python") if (VENV_BIN / "python").exists() else sys.executable,
        "-m", "gptoss_operator.simulators.vllm",
        "--host", pod["status"]["podIP"], "--port", port, "--name", pod["metadata"]["name"],
    ]  # fmt: skip
    if names:
        cmd += ["--served-model-name", *names]
    max_len = flag_values(argv, "--max-model-len")
    if max_len:
        cmd += ["--max-model-len", max_len[0]]
    return cmd


# ---------------------------------------------------------------------------- env and volumes


class Stopping(BaseException):
    """SIGTERM or SIGINT: stop every pod process and exit."""


class NotYet(Exception):
    """A referenced object is missing: the kubelet would keep the container waiting."""


def field_value(pod: Json, path: str) -> str:
    meta, status, spec = pod["metadata"], pod.get("status", {}), pod["spec"]
    m = re.fullmatch(r"metadata\.(labels|annotations)\['(.+)'\]", path)
    if m:
        return str(meta.get(m.group(1), {}).get(m.group(2), ""))
    simple = {
        "metadata.name": meta["name"],
        "metadata.namespace": meta["namespace"],
        "metadata.uid": meta["uid"],
        "spec.nodeName": spec.get("nodeName", ""),
        "spec.serviceAccountName": spec.get("serviceAccountName", "default"),
        "status.podIP": status.get("podIP", ""),
        "status.hostIP": status.get("hostIP", ""),
    }
    if path not in simple:
        raise NotYet(f"unsupported fieldRef {path}")
    return str(simple[path])


class Objects:
    """ConfigMaps and Secrets of one pass, fetched once each."""

    def __init__(self, api: Api, namespace: str) -> None:
        self.api = api
        self.ns = namespace
        self.cache: dict[tuple[str, str], Json | None] = {}

    def data(self, kind: str, name: str, optional: bool) -> dict[str, bytes] | None:
        key = (kind, name)
        if key not in self.cache:
            plural = "configmaps" if kind == "configMap" else "secrets"
            self.cache[key] = self.api.get(f"/api/v1/namespaces/{self.ns}/{plural}/{name}")
        obj = self.cache[key]
        if obj is None:
            if optional:
                return None
            raise NotYet(f"{kind} {self.ns}/{name} not found")
        if kind == "configMap":
            out = {k: v.encode() for k, v in (obj.get("data") or {}).items()}
            out |= {k: base64.b64decode(v) for k, v in (obj.get("binaryData") or {}).items()}
            return out
        return {k: base64.b64decode(v) for k, v in (obj.get("data") or {}).items()}


def expand(value: str, env: dict[str, str]) -> str:
    """Kubernetes' $(VAR) expansion ($$ escapes; unknown references stay as written)."""
    return re.sub(
        r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)",
        lambda m: "$" if m.group(0) == "$$" else env.get(m.group(1), m.group(0)),
        value,
    )


def container_env(pod: Json, container: Json, objects: Objects) -> dict[str, str]:
    env: dict[str, str] = {}
    for src in container.get("envFrom") or []:
        prefix = src.get("prefix", "")
        for kind in ("configMap", "secret"):
            ref = src.get(f"{kind}Ref")
            if ref:
                data = objects.data(kind, ref["name"], bool(ref.get("optional"))) or {}
                env |= {prefix + k: v.decode() for k, v in data.items()}
    for var in container.get("env") or []:
        name = var["name"]
        if "value" in var or "valueFrom" not in var:
            env[name] = expand(str(var.get("value", "")), env)
            continue
        vf = var["valueFrom"]
        if "fieldRef" in vf:
            env[name] = field_value(pod, vf["fieldRef"]["fieldPath"])
            continue
        for kind in ("configMap", "secret"):
            ref = vf.get(f"{kind}KeyRef")
            if ref:
                values = objects.data(kind, ref["name"], bool(ref.get("optional")))
                if values is not None and ref["key"] in values:
                    env[name] = values[ref["key"]].decode()
                elif not ref.get("optional"):
                    raise NotYet(f"{kind} {ref['name']} has no key {ref['key']}")
    return env


@dataclass
class TokenCache:
    """Service-account tokens by (pod uid, account, audience), renewed at 80 % of their life.
    Per pod, as the kubelet keeps them: a ServiceAccount deleted and created again under the
    same name (a `helm test` hook's account, say) invalidates the old account's tokens."""

    tokens: dict[tuple[str, str, str], tuple[str, float]] = field(default_factory=dict)

    def get(self, api: Api, pod: Json, sa: str, audience: str, seconds: int) -> str:
        key = (pod["metadata"]["uid"], sa, audience)
        hit = self.tokens.get(key)
        if hit is None or time.monotonic() > hit[1]:
            token = api.token(pod, sa, [audience] if audience else [], seconds)
            hit = (token, time.monotonic() + 0.8 * seconds)
            self.tokens[key] = hit
        return hit[0]

    def forget(self, pod_uid: str) -> None:
        for key in [k for k in self.tokens if k[0] == pod_uid]:
            del self.tokens[key]


def keyed(data: dict[str, bytes], items: list[Json] | None, mode: int) -> dict[str, tuple[bytes, int]]:
    if not items:
        return {k: (v, mode) for k, v in data.items()}
    return {i["path"]: (data[i["key"]], i.get("mode", mode)) for i in items if i["key"] in data}


def volume_files(
    pod: Json, volume: Json, objects: Objects, api: Api, tokens: TokenCache
) -> dict[str, tuple[bytes, int]] | None:
    """File path -> (content, mode) of a ConfigMap/Secret/projected/downwardAPI volume; None
    for kinds this runner does not materialize (emptyDir becomes an empty directory)."""
    mode = volume.get("defaultMode", 0o644)
    if "configMap" in volume or "secret" in volume:
        kind = "configMap" if "configMap" in volume else "secret"
        src = volume[kind]
        name = src["name"] if kind == "configMap" else src["secretName"]
        mode = src.get("defaultMode", 0o644)
        data = objects.data(kind, name, bool(src.get("optional")))
        return keyed(data or {}, src.get("items"), mode)
    if "downwardAPI" in volume:
        src = volume["downwardAPI"]
        mode = src.get("defaultMode", 0o644)
        return {
            i["path"]: (field_value(pod, i["fieldRef"]["fieldPath"]).encode(), i.get("mode", mode))
            for i in src.get("items", [])
            if "fieldRef" in i
        }
    if "projected" in volume:
        src = volume["projected"]
        mode = src.get("defaultMode", 0o644)
        files: dict[str, tuple[bytes, int]] = {}
        for s in src.get("sources", []):
            if "serviceAccountToken" in s:
                t = s["serviceAccountToken"]
                sa = pod["spec"].get("serviceAccountName", "default")
                token = tokens.get(
                    api, pod, sa, t.get("audience", ""),
                    int(t.get("expirationSeconds", TOKEN_SECONDS)),
                )  # fmt: skip
                files[t["path"]] = (token.encode(), mode)
            elif "configMap" in s or "secret" in s:
                kind = "configMap" if "configMap" in s else "secret"
                ref = s[kind]
                data = objects.data(kind, ref["name"], bool(ref.get("optional")))
                files |= keyed(data or {}, ref.get("items"), mode)
            elif "downwardAPI" in s:
                for i in s["downwardAPI"].get("items", []):
                    if "fieldRef" in i:
                        files[i["path"]] = (field_value(pod, i["fieldRef"]["fieldPath"]).encode(), mode)
        return files
    return None


def write_hosts(w: Worker) -> Path:
    """The pod's /etc/hosts, as the kubelet manages it (localhost, the pod's IP and hostname),
    plus the API server's in-cluster names: there is no cluster DNS in a served cluster."""
    path = w.pod_dir / "etc-hosts"
    name = w.pod["metadata"]["name"]
    text = (
        "# Kubernetes-managed hosts file (kind/podrunner.py).\n"
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
        f"{w.ip}\t{w.pod['spec'].get('hostname', name)}\n"
        "127.0.0.1\tkubernetes kubernetes.default kubernetes.default.svc kubernetes.default.svc.cluster.local\n"
    )
    if not path.exists() or path.read_text() != text:  # written once: readers never see half
        path.write_text(text)
    return path


def atomic_write(target: Path, files: dict[str, tuple[bytes, int]]) -> None:
    """The kubelet's AtomicWriter layout: the data in ``..<timestamp>``, ``..data`` pointing at
    it (swapped with one rename), and ``<key>`` -> ``..data/<key>`` symlinks, so a reader sees
    either the old or the new set of files, never a mix."""
    target.mkdir(parents=True, exist_ok=True)
    stamp = target / f"..{time.strftime('%Y_%m_%d_%H_%M_%S')}.{time.monotonic_ns() % 10**9}"
    stamp.mkdir()
    for rel, (content, mode) in files.items():
        path = stamp / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        path.chmod(mode)
    tmp = target / "..data_tmp"
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    tmp.symlink_to(stamp.name)
    old = os.readlink(target / "..data") if (target / "..data").is_symlink() else None
    os.rename(tmp, target / "..data")
    tops = {rel.split("/", 1)[0] for rel in files}
    for top in tops:
        link = target / top
        if not link.is_symlink():
            link.symlink_to(f"..data/{top}")
    for entry in target.iterdir():
        if not entry.name.startswith("..") and entry.name not in tops and entry.is_symlink():
            entry.unlink()
    if old and old != stamp.name:
        shutil.rmtree(target / old, ignore_errors=True)


# ---------------------------------------------------------------------------- pod lifecycle


@dataclass(frozen=True)
class Exit:
    """How one container's process ended (what the kubelet keeps as ``state.terminated``)."""

    code: int  # Popen's returncode: negative for a signal
    started_at: str  # RFC 3339, seconds (as the kubelet writes container times)
    finished_at: str

    @property
    def exit_code(self) -> int:
        # A shell's (and containerd's) convention: killed by signal N is 128 + N.
        return 128 - self.code if self.code < 0 else self.code

    def terminated(self) -> Json:
        # Reasons as the kubelet reports them for a process that exited by itself: "Completed"
        # for 0, "Error" otherwise (OOMKilled and ContainerCannotRun need a runtime we lack).
        out: Json = {
            "exitCode": self.exit_code,
            "reason": "Completed" if self.code == 0 else "Error",
            "startedAt": self.started_at,
            "finishedAt": self.finished_at,
        }
        if self.code < 0:
            out["signal"] = -self.code
        return out


def restarts(restart_policy: str | None, code: int) -> bool:
    """Whether the kubelet restarts a container that exited with ``code``
    (pkg/kubelet/container ShouldContainerBeRestarted): Always always, OnFailure on non-zero."""
    policy = restart_policy or "Always"
    return policy == "Always" or (policy == "OnFailure" and code != 0)


def rfc3339(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def terminal_status(
    pod: Json, exits: dict[str, Exit], restart_counts: dict[str, int], now: str
) -> Json | None:
    """The status patch of a pod whose containers have all terminated for good, or None while
    one still runs (or will be restarted, or is not run here at all).

    As the kubelet's getPhase (pkg/kubelet/kubelet_pods.go): every container terminated ->
    Succeeded when all exited 0, else Failed; and generatePodReadyCondition's Ready /
    ContainersReady False with reason PodCompleted. ``metadata.uid`` makes the patch a
    precondition, as the kubelet's status manager sends it: a new pod of the same name is
    never touched.
    """
    containers = pod["spec"].get("containers", [])
    if not containers or any(c["name"] not in exits for c in containers):
        return None
    policy = pod["spec"].get("restartPolicy") or "Always"
    if any(restarts(policy, exits[c["name"]].code) for c in containers):
        return None
    failed = any(exits[c["name"]].code != 0 for c in containers)
    statuses = [
        {
            "name": c["name"],
            "image": c.get("image", ""),
            "imageID": "",
            "ready": False,
            "started": False,
            "restartCount": restart_counts.get(c["name"], 0),
            "state": {"terminated": exits[c["name"]].terminated()},
        }
        for c in containers
    ]
    conditions = [
        {"type": kind, "status": "False", "reason": "PodCompleted", "lastTransitionTime": now}
        for kind in ("Ready", "ContainersReady")
    ]
    return {
        "metadata": {"uid": pod["metadata"]["uid"]},
        "status": {
            "phase": "Failed" if failed else "Succeeded",
            "conditions": conditions,
            "containerStatuses": statuses,
        },
    }


# ---------------------------------------------------------------------------- processes


@dataclass
class Worker:
    """One container's stand-in process."""

    key: str  # <uid>/<container>
    pod: Json
    container: Json
    kind: str  # "vllm" | "project"
    pod_dir: Path
    proc: subprocess.Popen[bytes] | None = None
    restarts: int = 0  # recent crashes, for the back-off
    restart_count: int = 0  # every restart, as containerStatuses[].restartCount
    next_start: float = 0.0
    started_at: float = 0.0
    started_wall: float = 0.0  # time.time() at start, for containerStatuses
    exit: Exit | None = None  # terminated for good (restartPolicy Never / OnFailure)
    volume_digests: dict[str, str] = field(default_factory=dict)  # volume name -> content digest
    last_note: str | None = None
    mounts: list[tuple[Path, str, bool]] = field(default_factory=list)  # (source, mountPath, file)

    @property
    def ip(self) -> str:
        return str(self.pod["status"]["podIP"])

    def note(self, problem: str | None) -> None:
        """Log a problem once (it is retried every second), and when it clears."""
        if problem != self.last_note:
            if problem is not None:
                log(f"{self.key} ({pod_ref(self.pod)}): {problem}")
            elif self.last_note is not None:
                log(f"{self.key} ({pod_ref(self.pod)}): resolved")
            self.last_note = problem

    @property
    def log_path(self) -> Path:
        return self.pod_dir / f"{self.container['name']}.log"


class Runner:
    def __init__(self, api: Api, state_dir: Path, pod_cidr: str) -> None:
        self.api = api
        self.state_dir = state_dir
        self.pods_dir = state_dir / "pods"
        self.pod_cidr = ipaddress.ip_network(pod_cidr)
        self.workers: dict[str, Worker] = {}
        self.kwok_nodes: dict[str, bool] = {}
        self.tokens = TokenCache()
        self.ignored: set[str] = set()
        self.created: list[Path] = []  # mount points this runner made on the host file system
        self.retiring: list[Worker] = []  # removed from workers, being stopped
        # Pods whose terminal status this runner wrote: never started again, even while the
        # watch still shows them Running.
        self.completed: set[str] = set()
        self.api_port = httpx.URL(api.server).port or 443

    def on_kwok_node(self, pod: Json) -> bool:
        node = pod["spec"].get("nodeName")
        if not node:
            return False
        if node not in self.kwok_nodes:
            obj = self.api.get(f"/api/v1/nodes/{node}")
            if obj is None:
                return False  # not (yet) there: ask again next time
            annotations = obj.get("metadata", {}).get("annotations") or {}
            self.kwok_nodes[node] = KWOK_NODE_ANNOTATION in annotations
        return self.kwok_nodes[node]

    def runnable(self, pod: Json) -> bool:
        status = pod.get("status", {})
        ip = status.get("podIP")
        return (
            status.get("phase") == "Running"
            and not pod["metadata"].get("deletionTimestamp")
            and not pod["spec"].get("hostNetwork")
            and bool(ip)
            and ipaddress.ip_address(ip) in self.pod_cidr
            and self.on_kwok_node(pod)
        )

    def reconcile(self, pods: list[Json]) -> None:
        wanted: dict[str, tuple[Json, Json, str]] = {}
        for pod in pods:
            if pod["metadata"]["uid"] in self.completed or not self.runnable(pod):
                continue
            for c in pod["spec"].get("containers", []):
                key = f"{pod['metadata']['uid']}/{c['name']}"
                kind = "project" if is_project(c) else "vllm" if is_vllm(c) else None
                if kind is None:
                    if key not in self.ignored:
                        self.ignored.add(key)
                        log(
                            f"{pod_ref(pod)} container {c['name']}: not a vLLM or gptoss-operator container; not run"
                        )
                    continue
                wanted[key] = (pod, c, kind)
        for key in [
            k for k, w in self.workers.items() if k not in wanted or wanted[k][0]["status"]["podIP"] != w.ip
        ]:
            gone = self.workers.pop(key)
            # Tracked until stopped: a SIGTERM of the runner meanwhile must still clean it up.
            self.retiring.append(gone)
            self.stop(gone, "pod gone, not Running, or its IP changed")
            self.retiring.remove(gone)
        for key, (pod, c, kind) in wanted.items():
            w = self.workers.get(key)
            if w is None:
                pod_dir = (
                    self.pods_dir
                    / f"{pod['metadata']['namespace']}_{pod['metadata']['name']}_{pod['metadata']['uid'][:8]}"
                )
                w = self.workers[key] = Worker(key, pod, c, kind, pod_dir)
            w.pod = pod
            if w.proc is not None and w.proc.poll() is not None:
                self.exited(w, w.proc.returncode)
            if w.proc is None and w.exit is None and time.monotonic() >= w.next_start:
                self.start(w)
        self.report_terminated(wanted)
        present = {p["metadata"]["uid"] for p in pods}
        self.completed &= present

    def exited(self, w: Worker, code: int) -> None:
        w.proc = None
        policy = w.pod["spec"].get("restartPolicy") or "Always"
        if not restarts(policy, code):
            w.exit = Exit(code, rfc3339(w.started_wall), rfc3339(time.time()))
            log(f"{w.key} ({pod_ref(w.pod)}) exited with {code}; not restarted (restartPolicy {policy})")
            return
        # As the kubelet, forget old crashes once a run lasted (it waits 10 min).
        w.restarts = 1 if time.monotonic() - w.started_at > 60 else w.restarts + 1
        w.restart_count += 1
        # The kubelet's CrashLoopBackOff: 10 s doubling to 5 min; shorter here, a local
        # process restarts in well under a second.
        delay = min(10.0, 0.5 * 2 ** min(w.restarts, 5))
        w.next_start = time.monotonic() + delay
        log(f"{w.key} ({pod_ref(w.pod)}) exited with {code}; restart {w.restarts} in {delay:.1f}s")

    def report_terminated(self, wanted: dict[str, tuple[Json, Json, str]]) -> None:
        """Write the terminal status of each pod whose containers have all exited for good
        (a failed write is retried on the next pass: the workers keep their exits)."""
        by_pod: dict[str, list[Worker]] = {}
        for key in wanted:
            w = self.workers[key]
            by_pod.setdefault(w.pod["metadata"]["uid"], []).append(w)
        for uid, workers in by_pod.items():
            if any(w.exit is None for w in workers):
                continue
            pod = workers[0].pod
            patch = terminal_status(
                pod,
                {w.container["name"]: w.exit for w in workers if w.exit is not None},
                {w.container["name"]: w.restart_count for w in workers},
                rfc3339(time.time()),
            )
            if patch is None:
                continue
            written = self.api.patch_pod_status(pod["metadata"]["namespace"], pod["metadata"]["name"], patch)
            self.completed.add(uid)
            phase = patch["status"]["phase"]
            log(f"{pod_ref(pod)}: {phase}" + ("" if written else " (not written: the pod is gone)"))

    def refresh_volumes(self) -> None:
        for w in self.workers.values():
            if w.kind == "project" and w.proc is not None:
                try:
                    self.materialize(w)
                except (NotYet, httpx.HTTPError) as e:
                    w.note(f"volumes not refreshed (the files keep their last content): {e}")

    def materialize(self, w: Worker) -> None:
        """Write the pod's volumes (atomically, only when their content changed) and note the
        bind mounts the container needs."""
        pod = w.pod
        objects = Objects(self.api, pod["metadata"]["namespace"])
        by_volume: dict[str, dict[str, tuple[bytes, int]] | None] = {}
        for v in pod["spec"].get("volumes") or []:
            by_volume[v["name"]] = volume_files(pod, v, objects, self.api, self.tokens)
        vol_dir = w.pod_dir / "volumes"
        for name, files in by_volume.items():
            digest = hashlib.sha256(
                json.dumps(
                    {p: [base64.b64encode(c).decode(), m] for p, (c, m) in (files or {}).items()},
                    sort_keys=True,
                ).encode()
            ).hexdigest()
            if w.volume_digests.get(name) == digest:
                continue  # unchanged: no new generation, so readers see no change
            if files is not None:
                atomic_write(vol_dir / name, files)
            else:
                (vol_dir / name).mkdir(parents=True, exist_ok=True)  # emptyDir and the like
            if name in w.volume_digests:
                log(f"{w.key} ({pod_ref(pod)}): volume {name} updated")
            w.volume_digests[name] = digest
        w.note(None)
        mounts = [(write_hosts(w), "/etc/hosts", True)]
        for m in w.container.get("volumeMounts") or []:
            if m["name"] not in by_volume:
                continue
            src = vol_dir / m["name"]
            sub = m.get("subPath")
            if sub:  # the kubelet binds the file itself: never updated (as upstream)
                mounts.append((src / sub, m["mountPath"], (src / sub).is_file()))
            else:
                mounts.append((src, m["mountPath"], False))
        w.mounts = mounts

    def start(self, w: Worker) -> None:
        pod, c = w.pod, w.container
        w.pod_dir.mkdir(parents=True, exist_ok=True)
        env = {
            "PATH": f"{VENV_BIN}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "HOME": "/root",
            "HOSTNAME": pod["metadata"]["name"],
            # In-cluster clients find the API server through these (or through the name
            # kubernetes.default.svc, see write_hosts). There is no Service network here: they
            # point at the API server itself, on this namespace's loopback (its certificate
            # carries 127.0.0.1 and the kubernetes.default.svc names).
            "KUBERNETES_SERVICE_HOST": "127.0.0.1",
            "KUBERNETES_SERVICE_PORT": str(self.api_port),
        }
        try:
            env |= container_env(pod, c, Objects(self.api, pod["metadata"]["namespace"]))
            if w.kind == "project":
                self.materialize(w)
        except (NotYet, httpx.HTTPError) as e:
            w.next_start = time.monotonic() + 1
            w.note(f"waiting: {e}")
            return
        if w.kind == "vllm":
            argv = vllm_simulator_argv(pod, c)
        else:
            argv = [expand(a, env) for a in command_line(c)]
            # This checkout's code, whatever the image would hold.
            argv[0] = str(VENV_BIN / ("gptoss-operator" if argv[0].endswith("gptoss-operator") else "python"))
            if len(argv) > 1 and argv[1] == "router":
                # Listen on the pod's own IP (last --host wins in argparse): 0.0.0.0 would take
                # the port on every pod IP of the namespace.
                argv += ["--host", w.ip]
            if len(argv) > 1 and argv[1] == "run":
                # The same for the operator's /metrics and /healthz: two replicas (leader
                # election) would otherwise both want 0.0.0.0:<port> of the one namespace.
                argv += ["--metrics-address", w.ip, "--liveness-address", w.ip]
            argv = self.in_mount_namespace(w, argv)
        logf = w.log_path.open("ab")
        try:
            w.proc = subprocess.Popen(
                argv, env=env, stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                cwd=w.pod_dir, start_new_session=True,
            )  # fmt: skip
        finally:
            logf.close()
        w.started_at = time.monotonic()
        w.started_wall = time.time()
        log(f"{w.key} ({pod_ref(pod)} {w.ip}): started {w.kind} pid {w.proc.pid}: {shlex.join(argv[-12:])}")

    def in_mount_namespace(self, w: Worker, argv: list[str]) -> list[str]:
        """Run ``argv`` in a private mount namespace with the volumes bind-mounted at their
        mountPaths, so the container sees the paths its spec names (the host sees nothing)."""
        if not w.mounts:
            return argv
        q = shlex.quote
        # A volume mounted over a directory that holds one of the paths still to be bound hides
        # that path: an emptyDir at /tmp while this checkout (/tmp/ci) or the runner's own pod
        # directories (a cache under /tmp) live there. So every source, and the checkout the
        # process runs from, is first bound at a parking spot no mountPath covers; the
        # mountPaths are then bound from there, outer ones first, and the checkout last.
        mounts = sorted(w.mounts, key=lambda m: len(Path(m[1]).parts))
        sources = [src for src, _, _ in mounts]
        shadowed = any(REPO.is_relative_to(dst) for _, dst, _ in mounts)  # equal paths too
        if shadowed:
            sources.append(REPO)
        park = parking_dir([dst for _, dst, _ in mounts])
        park.mkdir(parents=True, exist_ok=True)
        # A tmpfs of this namespace's own: the parking spots never show on the host.
        steps = [f"mount -t tmpfs -o size=1m,mode=0700 gptoss-park {q(str(park))}"]
        for i, src in enumerate(sources):
            spot = q(str(park / str(i)))
            steps.append(
                f"{'touch' if src.is_file() else 'mkdir'} {spot} && mount --bind {q(str(src))} {spot}"
            )
        for i, (_, dst, is_file) in enumerate(mounts):
            self.ensure_mountpoint(Path(dst), is_file)
            # Inside an outer volume the mount point is made there (as the kubelet makes it
            # in the container's file system); on the host ensure_mountpoint made it already.
            make = f"[ -e {q(dst)} ] || touch {q(dst)}" if is_file else f"mkdir -p {q(dst)}"
            steps.append(f"{make} && mount --bind {q(str(park / str(i)))} {q(dst)}")
        if shadowed:
            repo = q(str(REPO))
            steps.append(f"mkdir -p {repo} && mount --bind {q(str(park / str(len(mounts))))} {repo}")
        script = " && ".join(steps) + ' && exec "$@"'
        return ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c", script, "sh", *argv]

    def ensure_mountpoint(self, dst: Path, is_file: bool) -> None:
        """A bind mount needs an existing target: missing ones are created on the host file
        system, empty, remembered, and removed once no pod of this runner mounts there."""
        missing = []
        d = dst.parent if is_file else dst
        while not d.exists():
            missing.append(d)
            d = d.parent
        for d in reversed(missing):
            d.mkdir()
            self.created.append(d)
        if is_file and not dst.exists():
            dst.touch()
            self.created.append(dst)

    def remove_unused_mountpoints(self, done: Worker) -> None:
        # Never while something is mounted there, by this runner's pods or any other process
        # (another served cluster's runner): removing a directory that is a mount point in
        # another mount namespace detaches that mount (Linux >= 3.18).
        if not self.created:
            return
        # Compared resolved: the kernel reports /run/secrets for a mount made at /var/run/secrets.
        live = [w for w in (*self.workers.values(), *self.retiring) if w is not done]
        used = [Path(os.path.realpath(dst)) for w in live for _, dst, _ in w.mounts]
        used += [Path(m) for m in mount_points_anywhere()]
        for path in sorted(self.created, key=lambda p: len(p.parts), reverse=True):
            real = Path(os.path.realpath(path))
            if any(u == real or real in u.parents for u in used):
                continue
            with contextlib.suppress(OSError):  # not empty (someone else wrote there): keep it
                if path.is_dir():
                    path.rmdir()
                elif path.stat().st_size == 0:
                    path.unlink()
            if not path.exists() and not path.is_symlink():
                self.created.remove(path)

    def stop(self, w: Worker, why: str, grace: float = 10.0) -> None:
        """Stop ``w`` (already removed from ``workers``) and drop its files."""
        if w.proc is not None:
            grace = min(grace, float(w.pod["spec"].get("terminationGracePeriodSeconds", 30)))
            with contextlib.suppress(ProcessLookupError):
                os.killpg(w.proc.pid, signal.SIGTERM)
            try:
                w.proc.wait(grace)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(w.proc.pid, signal.SIGKILL)
                w.proc.wait()
            log(f"{w.key} ({pod_ref(w.pod)}): stopped ({why})")
            w.proc = None
        shutil.rmtree(w.pod_dir / "volumes", ignore_errors=True)
        self.tokens.forget(w.pod["metadata"]["uid"])
        self.remove_unused_mountpoints(done=w)

    def stop_all(self) -> None:
        workers = [*self.workers.values(), *self.retiring]
        self.workers.clear()
        self.retiring.clear()
        for w in workers:  # all at once first: the grace periods then overlap
            if w.proc is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(w.proc.pid, signal.SIGTERM)
        for w in workers:
            self.stop(w, "pod runner stopping", grace=5.0)


# Where a pod's volume sources are parked in its mount namespace (in_mount_namespace): the
# first of these that no mountPath covers (a pod could mount a volume at /run).
PARKING_DIRS = (
    Path("/run/gptoss-podrunner"),
    Path("/var/lib/gptoss-podrunner"),
    Path("/mnt/gptoss-podrunner"),
)


def parking_dir(destinations: list[str]) -> Path:
    covered = [Path(os.path.realpath(d)) for d in destinations]
    for candidate in PARKING_DIRS:
        if not any(candidate.is_relative_to(d) for d in covered):
            return candidate
    raise RuntimeError(f"every parking directory is under a mountPath: {destinations}")


def mount_points_anywhere() -> set[str]:
    """Mount points of every mount namespace on the machine (one process read per namespace)."""
    seen: set[int] = set()
    points: set[str] = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ns = os.stat(entry / "ns" / "mnt").st_ino
            if ns in seen:
                continue
            text = (entry / "mountinfo").read_text()
        except OSError:
            continue
        seen.add(ns)
        for line in text.splitlines():
            # Field 5 is the mount point, with space, tab, newline and backslash octal-escaped.
            points.add(re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), line.split()[4]))
    return points


def pod_ref(pod: Json) -> str:
    return f"{pod['metadata']['namespace']}/{pod['metadata']['name']}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--kubeconfig", type=Path, required=True)
    p.add_argument("--state-dir", type=Path, required=True)
    p.add_argument("--pod-cidr", required=True)
    p.add_argument("--volume-sync", type=float, default=1.0, help="seconds between ConfigMap/Secret checks")
    args = p.parse_args(argv)
    api = Api(args.kubeconfig)
    runner = Runner(api, args.state_dir, args.pod_cidr)
    stopping = threading.Event()

    def on_term(signum: int, frame: object) -> None:
        # Raise, once: the main thread may be blocked in an API call (up to its timeout),
        # and `down` waits for this process before it stops the API server.
        if not stopping.is_set():
            stopping.set()
            raise Stopping

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    watch = PodWatch(api, args.state_dir / "podrunner.ready")
    watch.start()
    log(f"pod runner: pods in {args.pod_cidr} on kwok nodes, API server {api.server}")
    last_sync = 0.0
    try:
        while not stopping.is_set():
            watch.changed.wait(0.5)
            watch.changed.clear()
            try:
                runner.reconcile(watch.snapshot())
                if time.monotonic() - last_sync >= args.volume_sync:
                    runner.refresh_volumes()
                    last_sync = time.monotonic()
            except httpx.HTTPError as e:
                log(f"reconcile: {type(e).__name__}: {e}")
    except Stopping:
        pass
    finally:
        runner.stop_all()
    return 0


if __name__ == "__main__":
    sys.exit(main())
