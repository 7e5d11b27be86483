"""Start and stop a real Kubernetes control plane on loopback, with kwok GPU nodes.

Processes: etcd, kube-apiserver (RBAC, client-certificate admin), kube-controller-manager,
kube-scheduler and kwok, every one built from Go modules by kind/build.sh. Each cluster has
its own work directory and free loopback ports, so several run side by side (parallel tests).

With ``up --serve`` the whole cluster runs in a private network namespace where the pod CIDR
is local, and kind/podrunner.py makes pods answer at their IPs (kind/README.md, "Served pods").
``up --serve --real-node`` adds one real node there: upstream's kubelet with containerd and runc
(kind/realnode.py; kind/README.md, "A real node").

Usage is in kind/cluster (the shell entry point) and kind/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import os
import shutil
import signal
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

# kind/realnode.py as the package `kind` of the repository, and devtools/ports.py (run as a
# script, only kind/ itself is on sys.path; appended, so nothing at the repository's top
# shadows anything).
sys.path.append(str(Path(__file__).resolve().parents[1]))
from devtools.ports import free_ports
from kind import realnode

HERE = Path(__file__).resolve().parent
STATE_ROOT = Path(
    os.environ.get("GPTOSS_KIND_STATE")
    or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "gptoss-kind" / "clusters"
)
COMPONENTS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")
# Annotation kwok is told to manage: nodes without it (none here) would be left alone.
KWOK_NODE_ANNOTATION = "kwok.x-k8s.io/node"
SERVICE_CIDR = "10.96.0.0/16"
# kwok hands pod IPs out of this range. In a served cluster the whole range is assigned to the
# namespace's `lo`, so every pod IP is a local address there (and nowhere else).
POD_CIDR = "10.0.0.0/16"
NODE_IP = "10.0.0.1"
NETNS_DIR = Path("/run/netns")  # where `ip netns add` bind-mounts a named namespace
CLONE_NEWNET = 0x40000000  # <linux/sched.h>


class ClusterError(RuntimeError):
    """A cluster could not be started; the message says which step and why."""


def log(msg: str) -> None:
    print(f"[kind/cluster {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------- binaries


def build_bindir() -> Path:
    out = subprocess.run(["bash", str(HERE / "build.sh")], stdout=subprocess.PIPE, text=True, check=False)
    if out.returncode != 0:
        raise ClusterError(f"kind/build.sh failed with exit code {out.returncode} (its log is above)")
    return Path(out.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------------------- PKI


def openssl(*args: str, cwd: Path) -> None:
    proc = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise ClusterError(f"openssl {args[0]} failed: {proc.stderr.strip()}")


def make_pki(pki: Path) -> None:
    """A throw-away CA, the API server's serving cert, an admin client cert, SA keys.

    EC P-256 keys: generating them is instant, unlike RSA, and every component accepts them
    (service-account tokens are then signed ES256).
    """
    pki.mkdir(parents=True)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    openssl("req", "-x509", *ec, "-days", "30", "-subj", "/CN=gptoss-kind-ca",
            "-keyout", "ca.key", "-out", "ca.crt", cwd=pki)  # fmt: skip
    sans = "subjectAltName=IP:127.0.0.1,IP:10.96.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc"
    certs = {
        "apiserver": ("/CN=kube-apiserver", sans + "\nextendedKeyUsage=serverAuth"),
        # O=system:masters is bound to cluster-admin by the API server's bootstrap policy.
        "admin": ("/O=system:masters/CN=gptoss-kind-admin", "extendedKeyUsage=clientAuth"),
    }
    for name, (subject, ext) in certs.items():
        openssl("req", *ec, "-subj", subject, "-keyout", f"{name}.key", "-out", f"{name}.csr", cwd=pki)
        (pki / f"{name}.ext").write_text(ext + "\n")
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
                "-CAcreateserial", "-days", "30", "-extfile", f"{name}.ext", "-out", f"{name}.crt",
                cwd=pki)  # fmt: skip
    openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "sa.key", cwd=pki)
    openssl("ec", "-in", "sa.key", "-pubout", "-out", "sa.pub", cwd=pki)
    for key in pki.glob("*.key"):
        key.chmod(0o600)


def write_kubeconfig(path: Path, pki: Path, port: int, name: str) -> None:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": name, "cluster": {
            "server": f"https://127.0.0.1:{port}", "certificate-authority": str(pki / "ca.crt")}}],
        "users": [{"name": "admin", "user": {
            "client-certificate": str(pki / "admin.crt"), "client-key": str(pki / "admin.key")}}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": "admin"}}],
        "current-context": name,
    }  # fmt: skip
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    path.chmod(0o600)


# ---------------------------------------------------------------------------- nodes


def expand_nodes(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """kind/nodes.yaml pools -> Node objects (GFD-style labels, GPUs as allocatable)."""
    defaults = doc.get("defaults", {})
    nodes: list[dict[str, Any]] = []
    for pool in doc["pools"]:
        spec = {**defaults, **pool}
        gpu = spec.get("gpu")
        labels = {
            "kubernetes.io/os": "linux",
            "kubernetes.io/arch": "amd64",
            "type": "kwok",
            "gptoss.dev/pool": spec["name"],
        }
        if gpu is None:
            pass  # a CPU pool
        elif gpu["resource"] == "nvidia.com/gpu":
            major, minor = str(gpu["compute"]).split(".")
            labels |= {
                "nvidia.com/gpu.present": "true",
                "nvidia.com/gpu.product": gpu["product"],
                "nvidia.com/gpu.memory": str(gpu["memoryMiB"]),
                "nvidia.com/gpu.count": str(gpu["perNode"]),
                "nvidia.com/gpu.compute.major": major,
                "nvidia.com/gpu.compute.minor": minor,
                "nvidia.com/gpu.family": gpu["family"],
            }
        else:  # AMD node labeller keys
            labels |= {
                "amd.com/gpu.product-name": gpu["product"],
                "amd.com/gpu.vram": f"{gpu['memoryMiB'] // 1024}G",
                "amd.com/gpu.count": str(gpu["perNode"]),
                "amd.com/gpu.family": gpu["family"].upper(),
                "amd.com/gpu.device-id": str(gpu["compute"]),
            }
        resources = {
            "cpu": str(spec["cpu"]),
            "memory": str(spec["memory"]),
            "pods": str(spec["pods"]),
            "ephemeral-storage": "2Ti",
        }
        if gpu is not None:
            resources[gpu["resource"]] = str(gpu["perNode"])
        for i in range(int(spec["count"])):
            name = f"{spec['name']}-{i}"
            nodes.append({
                "apiVersion": "v1",
                "kind": "Node",
                "metadata": {
                    "name": name,
                    "labels": labels | {"kubernetes.io/hostname": name},
                    "annotations": {KWOK_NODE_ANNOTATION: "fake", "node.alpha.kubernetes.io/ttl": "0"},
                },
                "spec": {"taints": spec.get("taints", [])},
                "status": {"capacity": resources, "allocatable": resources},
            })  # fmt: skip
    return nodes


# ---------------------------------------------------------------------------- network namespace


def netns_name(cluster: str) -> str:
    return f"gptoss-kind-{cluster}"


def ip(*args: str) -> None:
    proc = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise ClusterError(f"ip {' '.join(args)} failed: {proc.stderr.strip()}")


def make_netns(cluster: str) -> Path:
    """A private network namespace with only `lo`, up, owning the whole pod CIDR.

    `ip netns add` keeps it alive without a process (a bind mount of the namespace file under
    /run/netns), so it outlives `kind/cluster up` and `down` removes it. Assigning a /16 to
    `lo` makes the kernel add `local 10.0.0.0/16 dev lo` to the local routing table: any
    address in it can be bound and reached, which is what kwok's pod IPs need.
    """
    name = netns_name(cluster)
    if (NETNS_DIR / name).exists():
        ip("netns", "delete", name)  # a leftover of a cluster that was not brought down
    ip("netns", "add", name)
    ip("-n", name, "link", "set", "lo", "up")
    ip("-n", name, "addr", "add", f"{NODE_IP}/{POD_CIDR.split('/')[1]}", "dev", "lo")
    return NETNS_DIR / name


def enter_netns(path: Path) -> None:
    """Move this process into the namespace; every process it starts afterwards is born there.

    setns(2) through libc: os.setns exists only from Python 3.12. Joining a network namespace
    is allowed in a threaded process too (it is per thread), but `up` has no other thread.
    """
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(path, os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise ClusterError(f"setns({path}) failed: {os.strerror(err)} (needs root / CAP_SYS_ADMIN)")
    finally:
        os.close(fd)


def netns_pids(path: Path) -> list[int]:
    """Every process whose network namespace is the one bind-mounted at ``path``."""
    try:
        want = os.stat(path).st_ino
    except OSError:
        return []
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if os.stat(entry / "ns" / "net").st_ino == want:
                    pids.append(int(entry.name))
    return pids


# ---------------------------------------------------------------------------- processes


class Cluster:
    def __init__(self, name: str) -> None:
        self.name = name
        self.dir = STATE_ROOT / name
        self.pki = self.dir / "pki"
        self.logs = self.dir / "logs"
        self.kubeconfig = self.dir / "kubeconfig"
        self.state_file = self.dir / "state.json"

    # state.json: {"pids": {component: pid}, "ports": {...}, "bindir": ...}
    def load_state(self) -> dict[str, Any]:
        try:
            state: dict[str, Any] = json.loads(self.state_file.read_text())
            return state
        except FileNotFoundError:
            return {"pids": {}, "ports": {}}

    def save_state(self, state: dict[str, Any]) -> None:
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=2))
        tmp.replace(self.state_file)

    def running_pids(self) -> dict[str, int]:
        return {c: p for c, p in self.load_state()["pids"].items() if pid_alive(p)}

    def start(self, state: dict[str, Any], component: str, argv: list[str]) -> subprocess.Popen[bytes]:
        logfile = (self.logs / f"{component}.log").open("ab")
        # A session of its own: Ctrl-C in the terminal that ran `up` must not stop the cluster,
        # and `down` can signal the whole process group.
        proc = subprocess.Popen(
            argv, stdout=logfile, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True, cwd=self.dir,
        )  # fmt: skip
        logfile.close()
        state["pids"][component] = proc.pid
        # Kept so `kind/cluster start --component` can bring a killed component back as it was.
        state.setdefault("argv", {})[component] = argv
        self.save_state(state)
        return proc

    def log_tail(self, component: str, lines: int = 25) -> str:
        try:
            text = (self.logs / f"{component}.log").read_text(errors="replace").splitlines()
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(text[-lines:])


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (exited child not yet reaped) counts as dead.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except OSError:
        return False


def stop_pids(pids: dict[str, int], timeout: float = 15.0) -> None:
    """SIGTERM each component and wait for it, in reverse start order (kwok and the controllers,
    then the API server, etcd last); SIGKILL what is still running after ``timeout``.

    One at a time: a kube-apiserver whose etcd is already gone does not finish its graceful
    shutdown (it was still running 20 s after SIGTERM), while one stopped before its etcd exits
    in about a second. Signalled together, every `down` waited the full timeout.
    """
    order = sorted(pids, key=lambda c: COMPONENTS.index(c) if c in COMPONENTS else 99, reverse=True)
    for component in order:
        pid = pids[component]
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and pid_alive(pid):
            time.sleep(0.05)
        if pid_alive(pid):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)


def tls_context(c: Cluster) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(c.pki / "ca.crt"))
    ctx.load_cert_chain(str(c.pki / "admin.crt"), str(c.pki / "admin.key"))
    return ctx


def wait_http(
    url: str, proc: subprocess.Popen[bytes], what: str, cluster: Cluster, component: str,
    ctx: ssl.SSLContext | None = None, timeout: float = 120.0,
) -> None:  # fmt: skip
    deadline = time.monotonic() + timeout
    last = "no answer yet"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ClusterError(
                f"{component} exited with code {proc.returncode} while waiting for {what}; "
                f"last log lines:\n{cluster.log_tail(component)}"
            )
        try:
            with urllib.request.urlopen(url, timeout=2, context=ctx) as resp:
                if resp.status == 200:
                    return
                last = f"HTTP {resp.status}"
        except urllib.error.HTTPError as e:
            last = f"HTTP {e.code}: {e.read()[:300].decode(errors='replace')}"
        except (OSError, ssl.SSLError) as e:
            last = str(e)
        time.sleep(0.2)
    raise ClusterError(
        f"{what} not ready after {timeout:.0f}s ({last}); last log lines of {component}:\n"
        f"{cluster.log_tail(component)}"
    )


def kubectl(bindir: Path, kubeconfig: Path, *args: str, stdin: str | None = None) -> str:
    proc = subprocess.run(
        [str(bindir / "kubectl"), f"--kubeconfig={kubeconfig}", *args],
        input=stdin, capture_output=True, text=True, check=False,
    )  # fmt: skip
    if proc.returncode != 0:
        raise ClusterError(f"kubectl {' '.join(args)} failed: {proc.stderr.strip()}")
    return proc.stdout


def kwok_config(bindir: Path) -> str:
    """KwokConfiguration + the upstream fast stages (kwok >= 0.8 has none built in)."""
    docs = [
        "apiVersion: config.kwok.x-k8s.io/v1alpha1\nkind: KwokConfiguration\noptions:\n"
        # kwok applies its option defaults only when it reads no config file, so every
        # parallelism is set here. Pod stages get 16 workers instead of the default 4 so a
        # scale benchmark's pods turn Ready as fast as the scheduler binds them.
        "  podPlayStageParallelism: 16\n  nodePlayStageParallelism: 8\n"
        "  nodeLeaseParallelism: 8\n  podsOnNodeSyncParallelism: 2\n"
        "  enablePodsOnNodeSyncListPager: true\n  enablePodsOnNodeSyncStreamWatch: true\n"
    ]
    docs += [p.read_text() for p in sorted((bindir / "kwok-stages").glob("*.yaml"))]
    return "\n---\n".join(d.strip() for d in docs) + "\n"


def up(
    name: str, node_files: list[Path], timeout: float, serve: bool = False, real_node: bool = False
) -> Cluster:
    c = Cluster(name)
    if real_node and not serve:
        raise ClusterError(
            "--real-node needs --serve: the node's pods live in the served cluster's namespace"
        )
    if c.running_pids():
        raise ClusterError(f"cluster {name!r} is already running (kind/cluster down --name {name})")
    if c.dir.exists():
        shutil.rmtree(c.dir)
    c.logs.mkdir(parents=True)
    started = time.monotonic()

    nodes: list[dict[str, Any]] = []
    for f in node_files:
        nodes += expand_nodes(yaml.safe_load(f.read_text()))
    bindir = build_bindir()
    make_pki(c.pki)
    netns: Path | None = None
    if serve:
        netns = make_netns(name)
        # From here on this process and all it starts live in the namespace; the ports below
        # are then free ports of the namespace's own loopback.
        try:
            enter_netns(netns)
        except ClusterError:
            remove_netns(netns)
            raise
    p_etcd, p_peer, p_api, p_kcm, p_sched, p_kwok = free_ports(6)
    if serve:
        # The namespace's loopback is the cluster's own, so the API server takes 443 there:
        # in-cluster clients that assume https://kubernetes.default.svc (kopf's service-account
        # login does) reach it through the pods' /etc/hosts (kind/podrunner.py).
        p_api = 443
    state: dict[str, Any] = {
        "pids": {}, "bindir": str(bindir), "netns": str(netns) if netns else None,
        "ports": {"etcd": p_etcd, "etcd-peer": p_peer, "kube-apiserver": p_api,
                  "kube-controller-manager": p_kcm, "kube-scheduler": p_sched, "kwok": p_kwok},
    }  # fmt: skip
    c.save_state(state)
    write_kubeconfig(c.kubeconfig, c.pki, p_api, f"gptoss-kind-{name}")
    kc = str(c.kubeconfig)
    pki = c.pki

    try:
        etcd = c.start(state, "etcd", [
            str(bindir / "etcd"), "--name=node0", f"--data-dir={c.dir / 'etcd'}",
            # A disposable test cluster: durability is not worth the fsync latency.
            "--unsafe-no-fsync=true", "--auto-compaction-retention=1", "--quota-backend-bytes=8589934592",
            f"--listen-client-urls=http://127.0.0.1:{p_etcd}", f"--advertise-client-urls=http://127.0.0.1:{p_etcd}",
            f"--listen-peer-urls=http://127.0.0.1:{p_peer}", f"--initial-advertise-peer-urls=http://127.0.0.1:{p_peer}",
            f"--initial-cluster=node0=http://127.0.0.1:{p_peer}", "--listen-metrics-urls=",
        ])  # fmt: skip
        wait_http(f"http://127.0.0.1:{p_etcd}/health", etcd, "etcd /health", c, "etcd", timeout=60)

        api = c.start(state, "kube-apiserver", [
            str(bindir / "kube-apiserver"), f"--etcd-servers=http://127.0.0.1:{p_etcd}",
            # A real node's containers reach the API server from their own network namespaces,
            # through the bridge (kind/realnode.py): then it listens on every address of the
            # cluster's private namespace, never of the host's.
            f"--bind-address={'0.0.0.0' if real_node else '127.0.0.1'}", "--advertise-address=127.0.0.1",
            f"--secure-port={p_api}",
            f"--cert-dir={pki}", f"--tls-cert-file={pki / 'apiserver.crt'}",
            f"--tls-private-key-file={pki / 'apiserver.key'}", f"--client-ca-file={pki / 'ca.crt'}",
            "--authorization-mode=Node,RBAC",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-account-key-file={pki / 'sa.pub'}", f"--service-account-signing-key-file={pki / 'sa.key'}",
            f"--service-cluster-ip-range={SERVICE_CIDR}", "--allow-privileged=true",
            # No kubelets or kube-proxy here: the `kubernetes` Service needs no endpoints.
            "--endpoint-reconciler-type=none",
            # Scale benchmarks create thousands of objects from one client: no inflight caps.
            "--max-requests-inflight=0", "--max-mutating-requests-inflight=0",
            "--enable-priority-and-fairness=false",
            # `kubectl exec/logs` on the real node: the API server calls its kubelet, which
            # accepts client certificates of the cluster's CA only (anonymous is off).
            # By its InternalIP: there is no DNS to look its name up in.
            *([f"--kubelet-client-certificate={pki / 'admin.crt'}", f"--kubelet-client-key={pki / 'admin.key'}",
               "--kubelet-preferred-address-types=InternalIP"] if real_node else []),
        ])  # fmt: skip
        wait_http(f"https://127.0.0.1:{p_api}/readyz", api, "kube-apiserver /readyz", c,
                  "kube-apiserver", ctx=tls_context(c), timeout=120)  # fmt: skip

        common = [f"--kubeconfig={kc}", "--leader-elect=false", "--bind-address=127.0.0.1",
                  f"--authentication-kubeconfig={kc}", f"--authorization-kubeconfig={kc}"]  # fmt: skip
        kcm = c.start(state, "kube-controller-manager", [
            str(bindir / "kube-controller-manager"), *common, f"--secure-port={p_kcm}",
            f"--service-account-private-key-file={pki / 'sa.key'}", f"--root-ca-file={pki / 'ca.crt'}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            # Defaults are 20/30 QPS, far too slow for a scale benchmark's thousands of objects.
            "--kube-api-qps=500", "--kube-api-burst=1000", "--concurrent-deployment-syncs=20",
            "--concurrent-replicaset-syncs=20", "--concurrent-gc-syncs=50",
            "--enable-hostpath-provisioner",  # binds DEFAULT_STORAGE_CLASS's claims
        ])  # fmt: skip
        sched = c.start(state, "kube-scheduler", [
            str(bindir / "kube-scheduler"), *common, f"--secure-port={p_sched}",
            "--kube-api-qps=500", "--kube-api-burst=1000",
        ])  # fmt: skip
        (c.dir / "kwok.yaml").write_text(kwok_config(bindir))
        kwok = c.start(state, "kwok", [
            str(bindir / "kwok"), f"--kubeconfig={kc}", f"--config={c.dir / 'kwok.yaml'}",
            "--manage-all-nodes=false",
            f"--manage-nodes-with-annotation-selector={KWOK_NODE_ANNOTATION}=fake",
            "--node-lease-duration-seconds=40", f"--cidr={POD_CIDR}", f"--node-ip={NODE_IP}",
            f"--server-address=127.0.0.1:{p_kwok}",
        ])  # fmt: skip
        wait_http(f"https://127.0.0.1:{p_kcm}/healthz", kcm, "kube-controller-manager /healthz", c,
                  "kube-controller-manager", ctx=tls_context_insecure(), timeout=90)  # fmt: skip
        wait_http(f"https://127.0.0.1:{p_sched}/healthz", sched, "kube-scheduler /healthz", c,
                  "kube-scheduler", ctx=tls_context_insecure(), timeout=90)  # fmt: skip
        wait_http(f"http://127.0.0.1:{p_kwok}/healthz", kwok, "kwok /healthz", c, "kwok", timeout=60)

        if nodes:
            kubectl(bindir, c.kubeconfig, "apply", "--server-side", "--field-manager=gptoss-kind",
                    "-f", "-", stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": nodes}))  # fmt: skip
            wait_nodes_ready(bindir, c, [n["metadata"]["name"] for n in nodes], kwok, timeout)
        # Pods need the namespace's "default" ServiceAccount (ServiceAccount admission), which
        # the controller-manager creates: waiting for it proves that controller is running.
        wait_default_serviceaccount(bindir, c, kcm, timeout)
        kubectl(bindir, c.kubeconfig, "apply", "--server-side", "--field-manager=gptoss-kind",
                "-f", "-", stdin=json.dumps(DEFAULT_STORAGE_CLASS))  # fmt: skip
        if serve:
            start_podrunner(c, state, timeout)
        if real_node:
            started_node = realnode.start(
                name, c.dir, c.pki, bindir, p_api, c.kubeconfig, NODE_IP,
                start_process=lambda component, argv: c.start(state, component, argv),
                log_tail=c.log_tail, log=log, timeout=timeout,
            )  # fmt: skip
            state["real_node"] = {"name": realnode.NODE_NAME, "snapshotter": started_node.snapshotter,
                                  "seconds": round(started_node.seconds, 2)}  # fmt: skip
            c.save_state(state)
    except BaseException:
        stop_pids(c.running_pids())
        realnode.stop(name, c.dir)
        if netns is not None:
            remove_netns(netns)
        raise
    where = f"in network namespace {netns}, pods served" if netns else "on loopback"
    if real_node:
        where += f", real node {realnode.NODE_NAME!r}"
    log(f"cluster {name!r} up in {time.monotonic() - started:.1f}s with {len(nodes)} nodes {where} "
        f"(API server https://127.0.0.1:{p_api}, logs in {c.logs})")  # fmt: skip
    return c


# A default StorageClass provisioned by the controller-manager's hostPath provisioner
# (--enable-hostpath-provisioner: a directory under /tmp/hostpath_pv per claim, ReadWriteOnce
# only, for single-machine development as its --help says), so a claim without a class (a
# ModelDeployment's source.cache) binds here as it would on a real cluster.
DEFAULT_STORAGE_CLASS: dict[str, Any] = {
    "apiVersion": "storage.k8s.io/v1",
    "kind": "StorageClass",
    "metadata": {"name": "standard", "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
    "provisioner": "kubernetes.io/host-path",
    "reclaimPolicy": "Delete",
    "volumeBindingMode": "Immediate",
}


def podrunner_python() -> str:
    """The project's venv interpreter: the pod runner starts `gptoss-operator` and the simulator
    from this checkout, and needs httpx."""
    venv = HERE.parent / ".venv" / "bin" / "python"
    return str(venv) if venv.exists() else sys.executable


def start_podrunner(c: Cluster, state: dict[str, Any], timeout: float) -> None:
    proc = c.start(state, "podrunner", [
        podrunner_python(), str(HERE / "podrunner.py"), f"--kubeconfig={c.kubeconfig}",
        f"--state-dir={c.dir}", f"--pod-cidr={POD_CIDR}",
    ])  # fmt: skip
    # It writes this file once its first pod list succeeded (it then follows a watch).
    ready = c.dir / "podrunner.ready"
    deadline = time.monotonic() + timeout
    while not ready.exists():
        if proc.poll() is not None:
            raise ClusterError(f"podrunner exited with code {proc.returncode}:\n{c.log_tail('podrunner')}")
        if time.monotonic() > deadline:
            raise ClusterError(f"podrunner not ready after {timeout:.0f}s:\n{c.log_tail('podrunner')}")
        time.sleep(0.1)


def remove_netns(path: Path) -> None:
    # Processes still in the namespace (a pod process whose runner was killed) would keep it
    # alive after the name is gone: end them first, by pid.
    for pid in netns_pids(path):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    if path.exists():
        with contextlib.suppress(ClusterError):
            ip("netns", "delete", path.name)


def tls_context_insecure() -> ssl.SSLContext:
    # The controller-manager and scheduler serve /healthz with self-signed certs they make
    # themselves at start; we only ask whether they answer, nothing secret crosses.
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def wait_nodes_ready(
    bindir: Path, c: Cluster, names: list[str], kwok: subprocess.Popen[bytes], timeout: float
) -> None:
    deadline = time.monotonic() + timeout
    pending = set(names)
    while pending and time.monotonic() < deadline:
        if kwok.poll() is not None:
            raise ClusterError(f"kwok exited with code {kwok.returncode}:\n{c.log_tail('kwok')}")
        out = json.loads(kubectl(bindir, c.kubeconfig, "get", "nodes", "-o", "json"))
        for node in out["items"]:
            conds = {x["type"]: x["status"] for x in node.get("status", {}).get("conditions", [])}
            if conds.get("Ready") == "True":
                pending.discard(node["metadata"]["name"])
        if pending:
            time.sleep(0.5)
    if pending:
        raise ClusterError(
            f"{len(pending)} nodes not Ready after {timeout:.0f}s (e.g. {sorted(pending)[:3]}); "
            f"kwok log:\n{c.log_tail('kwok')}"
        )


def wait_default_serviceaccount(
    bindir: Path, c: Cluster, kcm: subprocess.Popen[bytes], timeout: float
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if kcm.poll() is not None:
            raise ClusterError(
                f"kube-controller-manager exited with code {kcm.returncode}:\n"
                f"{c.log_tail('kube-controller-manager')}"
            )
        proc = subprocess.run(
            [str(bindir / "kubectl"), f"--kubeconfig={c.kubeconfig}", "get", "serviceaccount", "default",
             "-n", "default", "-o", "name"], capture_output=True, text=True, check=False,
        )  # fmt: skip
        if proc.returncode == 0:
            return
        time.sleep(0.3)
    raise ClusterError("kube-controller-manager did not create the default ServiceAccount in time")


def down(name: str) -> None:
    c = Cluster(name)
    state = c.load_state()
    pids = dict(state["pids"])
    if "podrunner" in pids:
        # First, and alone: it stops its pod processes and cleans up after them while the
        # API server still answers.
        stop_pids({"podrunner": pids.pop("podrunner")}, timeout=30)
    stop_pids(pids)
    realnode.stop(name, c.dir)  # the containers outlive the kubelet and containerd
    netns = state.get("netns") or (
        str(NETNS_DIR / netns_name(name)) if (NETNS_DIR / netns_name(name)).exists() else None
    )
    if netns:
        remove_netns(Path(netns))
    if c.dir.exists():
        shutil.rmtree(c.dir, ignore_errors=True)
    log(f"cluster {name!r} stopped" if state["pids"] else f"cluster {name!r} was not running")


# ---------------------------------------------------------------------------- fault injection


def kill_component(name: str, component: str) -> None:
    """SIGKILL one component (its process group), as a crash or an OOM kill would end it."""
    c = Cluster(name)
    pid = c.load_state()["pids"].get(component)
    if pid is None or not pid_alive(pid):
        raise ClusterError(f"{component} of cluster {name!r} is not running")
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while pid_alive(pid):
        if time.monotonic() > deadline:
            raise ClusterError(f"{component} (pid {pid}) survived SIGKILL")
        time.sleep(0.05)
    log(f"killed {component} of cluster {name!r}")


def start_component(name: str, component: str, timeout: float) -> None:
    """Start a stopped component again with the command line it was first started with, and
    wait until it answers its health endpoint."""
    c = Cluster(name)
    state = c.load_state()
    pid = state["pids"].get(component)
    if pid is not None and pid_alive(pid):
        raise ClusterError(f"{component} of cluster {name!r} is already running (pid {pid})")
    argv = state.get("argv", {}).get(component)
    if argv is None:
        raise ClusterError(f"cluster {name!r} has no recorded command line for {component}")
    port = state["ports"][component]
    if state.get("netns"):
        enter_netns(Path(state["netns"]))  # a served cluster: its components live in there
    proc = c.start(state, component, argv)
    url, ctx = {
        "etcd": (f"http://127.0.0.1:{port}/health", None),
        "kube-apiserver": (f"https://127.0.0.1:{port}/readyz", tls_context(c)),
        "kwok": (f"http://127.0.0.1:{port}/healthz", None),
    }.get(component, (f"https://127.0.0.1:{port}/healthz", tls_context_insecure()))
    wait_http(url, proc, f"{component} health", c, component, ctx=ctx, timeout=timeout)
    log(f"started {component} of cluster {name!r}")


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def served_netns(c: Cluster) -> Path:
    netns = c.load_state().get("netns")
    if not c.running_pids():
        raise ClusterError(f"cluster {c.name!r} is not running")
    if not netns:
        raise ClusterError(f"cluster {c.name!r} was not started with --serve: it has no network namespace")
    return Path(netns)


def clusters() -> Iterator[Cluster]:
    if STATE_ROOT.exists():
        for d in sorted(STATE_ROOT.iterdir()):
            if d.is_dir():
                yield Cluster(d.name)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="kind/cluster", description=__doc__)
    sub = parser.add_subparsers(dest="cmd", required=True)
    p_up = sub.add_parser("up", help="start a cluster; the last line printed is KUBECONFIG=<path>")
    p_up.add_argument("--name", default="gptoss")
    p_up.add_argument("--nodes", type=Path, action="append",
                      help="node pool file(s); default kind/nodes.yaml")  # fmt: skip
    p_up.add_argument("--timeout", type=float, default=180.0, help="seconds to wait for each step")
    p_up.add_argument("--serve", action="store_true",
                      help="run in a private network namespace where pods answer at their IPs")  # fmt: skip
    p_up.add_argument("--real-node", action="store_true",
                      help=f"with --serve: add {realnode.NODE_NAME}, a real kubelet with containerd and runc")  # fmt: skip
    p_load = sub.add_parser(
        "load-image",
        help="import an image archive (docker-archive or oci-archive) into the real node's containerd",
    )
    p_load.add_argument("--name", default="gptoss")
    p_load.add_argument("archive", type=Path)
    p_down = sub.add_parser("down", help="stop a cluster and remove its work directory")
    p_down.add_argument("--name", default="gptoss")
    p_down.add_argument("--all", action="store_true", help="every cluster under the state directory")
    sub.add_parser("bindir", help="build the binaries if needed and print their directory")
    sub.add_parser("list", help="clusters and whether they run")
    p_nodes = sub.add_parser("nodes", help="print the Node objects a node pool file expands to (JSON List)")
    p_nodes.add_argument("--nodes", type=Path, action="append", help="default kind/nodes.yaml")
    p_stats = sub.add_parser("stats", help="resident memory of each running component")
    p_stats.add_argument("--name", default="gptoss")
    p_kc = sub.add_parser("kubeconfig", help="print a running cluster's kubeconfig path")
    p_kc.add_argument("--name", default="gptoss")
    for verb, text in (("kill", "SIGKILL one component (fault injection)"),
                       ("start", "start a killed component again and wait for its health endpoint")):  # fmt: skip
        p_fault = sub.add_parser(verb, help=text)
        p_fault.add_argument("--name", default="gptoss")
        p_fault.add_argument("--component", choices=COMPONENTS, required=True)
        p_fault.add_argument("--timeout", type=float, default=120.0)
    p_ns = sub.add_parser("netns", help="print a served cluster's network namespace file")
    p_ns.add_argument("--name", default="gptoss")
    p_exec = sub.add_parser(
        "exec", help="run a command in a served cluster's network namespace (KUBECONFIG and PATH set)"
    )
    p_exec.add_argument("--name", default="gptoss")
    p_exec.add_argument("command", nargs=argparse.REMAINDER, help="-- COMMAND [ARG]...")
    args = parser.parse_args(argv)

    try:
        if args.cmd == "up":
            c = up(args.name, args.nodes or [HERE / "nodes.yaml"], args.timeout, serve=args.serve,
                   real_node=args.real_node)  # fmt: skip
            print(f"KUBECONFIG={c.kubeconfig}")
        elif args.cmd == "down":
            for name in [c.name for c in clusters()] if args.all else [args.name]:
                down(name)
        elif args.cmd == "bindir":
            print(build_bindir())
        elif args.cmd == "list":
            for c in clusters():
                running, started = c.running_pids(), c.load_state()["pids"]
                state = (
                    "running"
                    if started and len(running) == len(started)
                    else f"{len(running)}/{len(started)} processes"
                )
                if c.load_state().get("netns"):
                    state += " (served)"
                print(f"{c.name}\t{state}\t{c.kubeconfig}")
        elif args.cmd == "nodes":
            items = [
                n
                for f in args.nodes or [HERE / "nodes.yaml"]
                for n in expand_nodes(yaml.safe_load(f.read_text()))
            ]
            print(json.dumps({"apiVersion": "v1", "kind": "List", "items": items}, indent=2))
        elif args.cmd == "stats":
            running = Cluster(args.name).running_pids()
            if not running:
                raise ClusterError(f"cluster {args.name!r} is not running")
            total = 0.0
            for component, pid in running.items():
                rss = rss_mib(pid)
                total += rss
                print(f"{component:<24} {rss:>7.1f} MiB")
            print(f"{'total':<24} {total:>7.1f} MiB")
        elif args.cmd == "load-image":
            node = Cluster(args.name).load_state().get("real_node")
            if not node:
                raise ClusterError(
                    f"cluster {args.name!r} has no real node (kind/cluster up --serve --real-node)"
                )
            seconds = realnode.import_image(realnode.Paths(Cluster(args.name).dir / "node"), args.archive,
                                            node["snapshotter"])  # fmt: skip
            log(f"imported {args.archive} into {node['name']} in {seconds:.1f}s")
            print(f"{seconds:.2f}")
        elif args.cmd == "kill":
            kill_component(args.name, args.component)
        elif args.cmd == "start":
            start_component(args.name, args.component, args.timeout)
        elif args.cmd == "kubeconfig":
            c = Cluster(args.name)
            if not c.running_pids():
                raise ClusterError(f"cluster {args.name!r} is not running")
            print(c.kubeconfig)
        elif args.cmd == "netns":
            print(served_netns(Cluster(args.name)))
        elif args.cmd == "exec":
            c = Cluster(args.name)
            command = args.command[1:] if args.command[:1] == ["--"] else args.command
            if not command:
                raise ClusterError("exec needs a command: kind/cluster exec --name N -- COMMAND...")
            netns = served_netns(c)
            bindir = c.load_state()["bindir"]
            os.environ["KUBECONFIG"] = str(c.kubeconfig)
            os.environ["PATH"] = f"{bindir}:{os.environ.get('PATH', '')}"
            os.execvp("nsenter", ["nsenter", f"--net={netns}", "--", *command])
    except (ClusterError, realnode.RealNodeError) as e:
        print(f"kind/cluster: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
