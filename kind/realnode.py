"""One real node for a served cluster: upstream's kubelet with containerd and runc.

``kind/cluster up --serve --real-node`` calls :func:`start` after the control plane is up and
inside the cluster's network namespace. Everything lives under the cluster's work directory
(``<dir>/node``): containerd's root, state, socket and config, the kubelet's root directory,
its client certificate and configuration, the CNI configuration and host-local's leases. What
each piece is for, and why it is set as it is, is in kind/README.md ("A real node").

Kept out of kind/cluster.py on purpose: only clusters started with ``--real-node`` use it.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import shutil
import signal
import subprocess
import tarfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

NODE_NAME = "real-node-0"
# The node's pod CIDR. Not a slice of kwok's 10.0.0.0/16: that whole range is a local address
# of the namespace's `lo` (kind/README.md, "Served pods"), and the local routing table wins
# over any route to a bridge, so a real pod's IP in there could never be reached.
POD_CIDR = "10.1.0.0/24"
GATEWAY = "10.1.0.1"  # the bridge's address in the cluster's namespace (CNI isGateway)
BRIDGE = "gptoss-br0"
# The `kubernetes` Service's ClusterIP (the first address of kind/cluster.py's SERVICE_CIDR).
# The kubelet gives every container KUBERNETES_SERVICE_HOST=<it>; with no kube-proxy here, the
# address is put on the namespace's `lo`, where the API server listens on all addresses.
KUBERNETES_SERVICE_IP = "10.96.0.1"
# The pod sandbox image: built from kind/build/k8s/pause (nothing can be pulled here).
PAUSE_IMAGE = "localhost/gptoss-kind/pause:1"
NODE_LABELS = {"gptoss.dev/pool": "real-node", "type": "real"}
CNI_PLUGINS = ("bridge", "host-local", "loopback")
CNI_BIN_DIRS = (Path("/usr/lib/cni"), Path("/opt/cni/bin"))
# What the kubelet wants these kernel settings to be (kubernetes pkg/kubelet/cm
# setupKernelTunables): it writes them system-wide when they differ, unless
# protectKernelDefaults, which makes it refuse to start instead. The machine is shared, so the
# kubelet runs in a mount namespace of its own where each of these files is a plain file
# with the value it expects: it reads them, finds them right, and writes nothing.
KUBELET_SYSCTLS = {
    "vm/overcommit_memory": "1",
    "vm/panic_on_oom": "0",
    "kernel/panic": "10",
    "kernel/panic_on_oops": "1",
    "kernel/keys/root_maxkeys": "1000000",
    "kernel/keys/root_maxbytes": "25000000",
}
CGROUP_V1_ROOT = Path("/sys/fs/cgroup")
# uname -m -> the OCI architecture of the pause binary `go build` made for this machine.
GOARCH = {"x86_64": "amd64", "aarch64": "arm64"}


class RealNodeError(RuntimeError):
    """The real node could not be started; the message names the step and the error."""


@dataclass(frozen=True)
class Paths:
    root: Path  # <cluster dir>/node

    @property
    def containerd(self) -> Path:
        return self.root / "containerd"

    @property
    def socket(self) -> Path:
        return self.containerd / "containerd.sock"

    @property
    def kubelet(self) -> Path:
        return self.root / "kubelet"

    @property
    def cni_conf(self) -> Path:
        return self.root / "cni" / "net.d"


def missing_tools() -> list[str]:
    """Debian packages the real node needs (.ci/run installs them): containerd, runc, CNI."""
    missing = [
        tool for tool in ("containerd", "ctr", "runc", "containerd-shim-runc-v2") if not shutil.which(tool)
    ]
    if cni_bin_dir() is None:
        missing.append("containernetworking-plugins (" + ", ".join(CNI_PLUGINS) + ")")
    return missing


def cni_bin_dir() -> Path | None:
    for d in CNI_BIN_DIRS:
        if all((d / p).exists() for p in CNI_PLUGINS):
            return d
    return None


def cgroup_root(cluster: str) -> str:
    # Per cluster, so two clusters with a real node never share the kubelet's kubepods tree.
    return f"/gptoss-kind-{cluster}"


def cgroup_hierarchies(kinds: tuple[str, ...] = ("cgroup",)) -> list[Path]:
    """Mounted cgroup hierarchies of these file system types: v1 ("cgroup": cpu, memory, ...,
    name=systemd) and, on a "hybrid" host, the v2 one ("cgroup2", where runc also makes the
    container's cgroup)."""
    out = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split(" - ", 1)
        if len(fields) == 2 and fields[1].split(" ", 1)[0] in kinds:
            out.append(Path(line.split()[4]))
    return out


def cgroup_v2_only() -> bool:
    return (CGROUP_V1_ROOT / "cgroup.controllers").exists()


def make_cgroup_root(cluster: str) -> None:
    name = cgroup_root(cluster).lstrip("/")
    if cgroup_v2_only():
        root = CGROUP_V1_ROOT / name
        root.mkdir(exist_ok=True)
        return
    for hierarchy in cgroup_hierarchies():
        d = hierarchy / name
        d.mkdir(exist_ok=True)
        if (hierarchy / "cpuset.cpus").exists():
            # A new v1 cpuset has no CPUs and no memory nodes: nothing could join it.
            for f in ("cpuset.cpus", "cpuset.mems"):
                (d / f).write_text((hierarchy / f).read_text())


def remove_cgroup_root(cluster: str) -> None:
    name = cgroup_root(cluster).lstrip("/")
    bases = [CGROUP_V1_ROOT] if cgroup_v2_only() else cgroup_hierarchies(("cgroup", "cgroup2"))
    for base in bases:
        top = base / name
        if not top.exists():
            continue
        # Deepest first: a cgroup directory can only be removed once it has no children.
        for d in sorted((p for p in top.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True):
            with contextlib.suppress(OSError):
                d.rmdir()
        with contextlib.suppress(OSError):
            top.rmdir()


# ---------------------------------------------------------------------------- configuration


def containerd_config(p: Paths, snapshotter: str, cni_bin: Path) -> str:
    """containerd 1.6 (config version 2): its own root, state and socket; CRI with runc and
    the cgroupfs driver (the kubelet's cgroupDriver must match); the sandbox image imported
    at start; CNI from the cluster's own conf dir."""
    cri = 'plugins."io.containerd.grpc.v1.cri"'
    return f"""\
version = 2
root = "{p.containerd / "root"}"
state = "{p.containerd / "state"}"
disabled_plugins = ["io.containerd.internal.v1.tracing", "io.containerd.snapshotter.v1.aufs",
                    "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
                    "io.containerd.snapshotter.v1.devmapper"]

[grpc]
  address = "{p.socket}"

[ttrpc]
  address = "{p.containerd / "containerd.ttrpc.sock"}"

[plugins."io.containerd.internal.v1.opt"]
  path = "{p.containerd / "opt"}"

[{cri}]
  sandbox_image = "{PAUSE_IMAGE}"
  # Never below containerd's own OOM score: the sandbox asks for -998 and Guaranteed pods
  # for -997, and lowering a score needs CAP_SYS_RESOURCE, which this machine's root lacks
  # (runc: "nsexec: failed to update /proc/self/oom_score_adj: Permission denied").
  restrict_oom_score_adj = true
  enable_selinux = false
  disable_apparmor = true
  [{cri}.containerd]
    snapshotter = "{snapshotter}"
    default_runtime_name = "runc"
    [{cri}.containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [{cri}.containerd.runtimes.runc.options]
        BinaryName = "{shutil.which("runc") or "runc"}"
        Root = "{p.containerd / "runc"}"
        SystemdCgroup = false
  [{cri}.cni]
    bin_dir = "{cni_bin}"
    conf_dir = "{p.cni_conf}"
    max_conf_num = 1
"""


def cni_config(p: Paths) -> dict[str, Any]:
    """A bridge in the cluster's namespace with the gateway address; host-local IPAM over the
    node's pod CIDR, its leases under the cluster's directory. The default route sends
    everything else (kwok pods' IPs, the API server) to the cluster's namespace."""
    return {
        "cniVersion": "1.0.0",
        "name": "gptoss-kind",
        "plugins": [
            {
                "type": "bridge",
                "bridge": BRIDGE,
                "isGateway": True,
                "ipMasq": False,
                "hairpinMode": True,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": POD_CIDR, "gateway": GATEWAY}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                    "dataDir": str(p.root / "cni" / "ipam"),
                },
            }
        ],
    }


def kubelet_config(p: Paths, cluster: str, ca: Path) -> dict[str, Any]:
    return {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "containerRuntimeEndpoint": f"unix://{p.socket}",
        "imageServiceEndpoint": f"unix://{p.socket}",
        "cgroupDriver": "cgroupfs",  # containerd's runc options say SystemdCgroup = false
        "cgroupRoot": cgroup_root(cluster),
        # Kubernetes 1.35 made the kubelet refuse cgroup v1 hosts by default (KEP-5573); this
        # machine is one (v1 controllers, v2 mounted alongside: "hybrid").
        "failCgroupV1": False,
        "failSwapOn": False,
        "podCIDR": POD_CIDR,
        "podLogsDir": str(p.root / "pod-logs"),
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": True},
            "x509": {"clientCAFile": str(ca)},
        },
        "authorization": {"mode": "Webhook"},
        "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1",
        "healthzPort": 10248,
        "port": 10250,
        # No cluster DNS: containers resolve nothing (a nameserver on their own loopback that
        # nothing serves), so nothing leaves the namespace by name. The API server is reached
        # by KUBERNETES_SERVICE_HOST, an address.
        "resolvConf": str(p.root / "resolv.conf"),
        # ConfigMap/Secret volumes are refreshed on each pod sync: every 5 s instead of 1 min
        # plus jitter, so an edit reaches a container's files within seconds.
        "syncFrequency": "5s",
        "nodeStatusUpdateFrequency": "5s",
        # Nothing is ever pulled again once removed: keep every image (the disk is shared).
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        "evictionHard": {"memory.available": "50Mi", "nodefs.available": "1%", "imagefs.available": "1%"},
        "serializeImagePulls": False,
        "registerNode": True,
        "enableServer": True,
        "staticPodPath": "",
        "maxPods": 30,
        "shutdownGracePeriod": "0s",
    }


def kubeconfig(path: Path, pki: Path, api_port: int) -> None:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "local", "cluster": {
            "server": f"https://127.0.0.1:{api_port}", "certificate-authority": str(pki / "ca.crt")}}],
        "users": [{"name": NODE_NAME, "user": {
            "client-certificate": str(pki / "kubelet.crt"), "client-key": str(pki / "kubelet.key")}}],
        "contexts": [{"name": "local", "context": {"cluster": "local", "user": NODE_NAME}}],
        "current-context": "local",
    }  # fmt: skip
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    path.chmod(0o600)


def node_certificate(pki: Path) -> None:
    """The kubelet's client certificate: CN system:node:<name>, O system:nodes, which the Node
    authorizer and the NodeRestriction admission plugin recognise as that node."""
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    run(["openssl", "req", *ec, "-subj", f"/O=system:nodes/CN=system:node:{NODE_NAME}",
         "-keyout", "kubelet.key", "-out", "kubelet.csr"], "openssl req (kubelet)", cwd=pki)  # fmt: skip
    (pki / "kubelet.ext").write_text("extendedKeyUsage=clientAuth\n")
    run(["openssl", "x509", "-req", "-in", "kubelet.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
         "-CAcreateserial", "-days", "30", "-extfile", "kubelet.ext", "-out", "kubelet.crt"],
        "openssl x509 (kubelet)", cwd=pki)  # fmt: skip
    (pki / "kubelet.key").chmod(0o600)


# ---------------------------------------------------------------------------- the pause image


def pause_archive(pause_binary: Path, out: Path) -> None:
    """A docker-archive (what `docker save` writes; `ctr images import` reads it) holding one
    layer with /pause, named PAUSE_IMAGE. Built here from the binary kind/build.sh made."""
    layer_buf = io.BytesIO()
    with tarfile.open(fileobj=layer_buf, mode="w", format=tarfile.PAX_FORMAT) as layer:
        info = tarfile.TarInfo("pause")
        data = pause_binary.read_bytes()
        info.size, info.mode, info.mtime = len(data), 0o755, 0
        layer.addfile(info, io.BytesIO(data))
    layer_bytes = layer_buf.getvalue()
    diff_id = "sha256:" + hashlib.sha256(layer_bytes).hexdigest()
    config = json.dumps({
        "architecture": GOARCH.get(os.uname().machine, os.uname().machine), "os": "linux",
        "config": {"Entrypoint": ["/pause"], "User": "65535:65535"},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created_by": "kind/realnode.py: /pause from kind/build/k8s/pause"}],
    }, sort_keys=True).encode()  # fmt: skip
    config_name = hashlib.sha256(config).hexdigest() + ".json"
    manifest = json.dumps(
        [{"Config": config_name, "RepoTags": [PAUSE_IMAGE], "Layers": ["layer.tar"]}]
    ).encode()
    with tarfile.open(out, "w") as archive:
        for name, blob in ((config_name, config), ("layer.tar", layer_bytes), ("manifest.json", manifest)):
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(blob), 0o644, 0
            archive.addfile(info, io.BytesIO(blob))


# ---------------------------------------------------------------------------- processes


def run(argv: list[str], what: str, cwd: Path | None = None, timeout: float = 120) -> str:
    proc = subprocess.run(argv, capture_output=True, text=True, cwd=cwd, timeout=timeout, check=False)
    if proc.returncode != 0:
        raise RealNodeError(
            f"{what} failed: `{' '.join(argv)}` exited {proc.returncode}: {proc.stderr.strip()[-2000:]}"
        )
    return proc.stdout


def ctr(p: Paths, *args: str, timeout: float = 600) -> str:
    return run(
        ["ctr", f"--address={p.socket}", "--namespace=k8s.io", *args], f"ctr {args[0]}", timeout=timeout
    )


def import_image(p: Paths, archive: Path, snapshotter: str) -> float:
    """`ctr images import` into the k8s.io namespace (the one containerd's CRI serves), unpacked
    for the node's snapshotter; returns the seconds it took."""
    start = time.monotonic()
    ctr(p, "images", "import", f"--snapshotter={snapshotter}", str(archive))
    return time.monotonic() - start


def overlayfs_works(scratch: Path) -> bool:
    """Whether an overlay mount works here (containerd's overlayfs snapshotter needs it)."""
    dirs = {k: scratch / k for k in ("lower", "upper", "work", "merged")}
    for d in dirs.values():
        d.mkdir(parents=True, exist_ok=True)
    opts = f"lowerdir={dirs['lower']},upperdir={dirs['upper']},workdir={dirs['work']}"
    proc = subprocess.run(["mount", "-t", "overlay", "overlay", "-o", opts, str(dirs["merged"])],
                          capture_output=True, text=True, check=False)  # fmt: skip
    if proc.returncode == 0:
        subprocess.run(["umount", str(dirs["merged"])], check=False)
    shutil.rmtree(scratch, ignore_errors=True)
    return proc.returncode == 0


@dataclass
class Started:
    snapshotter: str
    seconds: float  # from the first file written to the node Ready


StartFn = Callable[[str, list[str]], "subprocess.Popen[bytes]"]
LogTail = Callable[[str], str]


def start(
    cluster: str, cluster_dir: Path, pki: Path, bindir: Path, api_port: int, admin_kubeconfig: Path,
    node_ip: str,
    start_process: StartFn, log_tail: LogTail, log: Callable[[str], None], timeout: float,
) -> Started:  # fmt: skip
    """Write the node's configuration, start containerd and the kubelet (``start_process``
    records them as cluster components), import the pause image and wait for the Node Ready."""
    began = time.monotonic()
    missing = missing_tools()
    if missing:
        raise RealNodeError(
            f"missing {', '.join(missing)}: apt-get install containerd runc containernetworking-plugins"
        )
    cni_bin = cni_bin_dir()
    assert cni_bin is not None
    p = Paths(cluster_dir / "node")
    for d in (p.containerd, p.kubelet, p.cni_conf, p.root / "pod-logs", p.root / "sysctl"):
        d.mkdir(parents=True, exist_ok=True)
    snapshotter = "overlayfs" if overlayfs_works(p.root / "overlay-check") else "native"
    (p.containerd / "config.toml").write_text(containerd_config(p, snapshotter, cni_bin))
    (p.cni_conf / "10-gptoss-kind.conflist").write_text(json.dumps(cni_config(p), indent=2))
    (p.root / "resolv.conf").write_text("nameserver 127.0.0.1\n")
    node_certificate(pki)
    kubeconfig(p.root / "kubelet.kubeconfig", pki, api_port)
    (p.root / "kubelet.yaml").write_text(yaml.safe_dump(kubelet_config(p, cluster, pki / "ca.crt")))
    make_cgroup_root(cluster)
    # The API server answers the kubelet's containers at the `kubernetes` Service's ClusterIP.
    subprocess.run(
        ["ip", "addr", "add", f"{KUBERNETES_SERVICE_IP}/32", "dev", "lo"], capture_output=True, check=False
    )

    containerd = start_process("containerd", ["containerd", f"--config={p.containerd / 'config.toml'}"])
    deadline = time.monotonic() + timeout
    while True:
        if containerd.poll() is not None:
            raise RealNodeError(
                f"containerd exited with code {containerd.returncode}:\n{log_tail('containerd')}"
            )
        if (
            p.socket.exists()
            and subprocess.run(
                ["ctr", f"--address={p.socket}", "version"], capture_output=True, check=False
            ).returncode
            == 0
        ):
            break
        if time.monotonic() > deadline:
            raise RealNodeError(f"containerd not answering after {timeout:.0f}s:\n{log_tail('containerd')}")
        time.sleep(0.1)
    pause_archive(bindir / "pause", p.root / "pause.tar")
    import_image(p, p.root / "pause.tar", snapshotter)

    # The kubelet's root directory must be a shared mount point, mounted in this (the host's)
    # mount namespace: its volume mounts (tmpfs for Secrets, ConfigMaps and tokens) are made in
    # the kubelet's own mount namespace (KUBELET_SYSCTLS) and must propagate here, where
    # containerd's shims bind them into containers.
    run(["mount", "--bind", str(p.kubelet), str(p.kubelet)], "bind-mount the kubelet root")
    run(["mount", "--make-rshared", str(p.kubelet)], "make the kubelet root shared")
    binds = []
    for key, value in KUBELET_SYSCTLS.items():
        f = p.root / "sysctl" / key.replace("/", ".")
        f.write_text(value + "\n")
        binds.append(f"mount --bind {f} /proc/sys/{key}")
    kubelet_argv = [
        str(bindir / "kubelet"), f"--config={p.root / 'kubelet.yaml'}",
        f"--kubeconfig={p.root / 'kubelet.kubeconfig'}", f"--root-dir={p.kubelet}",
        f"--cert-dir={p.kubelet / 'pki'}", f"--hostname-override={NODE_NAME}",
        f"--node-ip={node_ip}",
        "--node-labels=" + ",".join(f"{k}={v}" for k, v in NODE_LABELS.items()),
    ]  # fmt: skip
    script = " && ".join([*binds, 'exec "$@"'])
    kubelet = start_process("kubelet", ["unshare", "--mount", "--propagation", "unchanged", "--",
                                        "sh", "-c", script, "kubelet", *kubelet_argv])  # fmt: skip
    wait_ready(admin_kubeconfig, bindir, kubelet, log_tail, deadline)
    seconds = time.monotonic() - began
    log(
        f"real node {NODE_NAME} Ready in {seconds:.1f}s (containerd {snapshotter} snapshotter, pod CIDR {POD_CIDR})"
    )
    return Started(snapshotter, seconds)


def wait_ready(
    admin_kubeconfig: Path, bindir: Path, kubelet: subprocess.Popen[bytes], log_tail: LogTail, deadline: float
) -> None:
    last = "not registered"
    while time.monotonic() < deadline:
        if kubelet.poll() is not None:
            raise RealNodeError(f"kubelet exited with code {kubelet.returncode}:\n{log_tail('kubelet')}")
        proc = subprocess.run(
            [str(bindir / "kubectl"), f"--kubeconfig={admin_kubeconfig}", "get", "node", NODE_NAME, "-o", "json"],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if proc.returncode == 0:
            conds = {c["type"]: c for c in json.loads(proc.stdout).get("status", {}).get("conditions", [])}
            ready = conds.get("Ready", {})
            if ready.get("status") == "True":
                return
            last = f"Ready={ready.get('status')}: {ready.get('message')}"
        time.sleep(0.3)
    raise RealNodeError(f"node {NODE_NAME} not Ready ({last}); kubelet log:\n{log_tail('kubelet')}")


# ---------------------------------------------------------------------------- teardown


def stop(cluster: str, cluster_dir: Path) -> None:
    """After the kubelet and containerd are stopped: end the containers (their shims outlive
    containerd), remove the pods' network namespaces, unmount everything under the node's
    directory and remove the cgroups."""
    p = Paths(cluster_dir / "node")
    if not p.root.exists():
        return
    address = str(p.socket)
    shims = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            argv = (proc / "cmdline").read_bytes().split(b"\0")
            if argv and argv[0].endswith(b"containerd-shim-runc-v2") and address.encode() in argv:
                shims.append(int(proc.name))
    doomed = set(shims)
    for pid in shims:
        doomed |= descendants(pid)
    netns_inodes = set()
    for pid in doomed:
        with contextlib.suppress(OSError):
            netns_inodes.add(os.stat(f"/proc/{pid}/ns/net").st_ino)
    for pid in doomed:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    # containerd names each sandbox's network namespace /run/netns/cni-<uuid>.
    netns_dir = Path("/run/netns")
    if netns_dir.exists():
        for f in netns_dir.glob("cni-*"):
            with contextlib.suppress(OSError):
                if os.stat(f).st_ino in netns_inodes:
                    subprocess.run(["umount", "-l", str(f)], capture_output=True, check=False)
                    f.unlink()
    unmount_under(p.root)
    remove_cgroup_root(cluster)


def descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                ppid = int((proc / "stat").read_text().rsplit(") ", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(proc.name))
    out: set[int] = set()
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in out:
                out.add(child)
                todo.append(child)
    return out


def unmount_under(root: Path) -> None:
    prefix = str(root.resolve())
    mounts = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        target = line.split()[4].replace("\\040", " ")
        if target == prefix or target.startswith(prefix + "/"):
            mounts.append(target)
    for target in sorted(set(mounts), key=len, reverse=True):
        subprocess.run(["umount", "-l", target], capture_output=True, check=False)
