"""Test access to the real local control plane started by ``kind/cluster``.

One cluster per test session (``LocalCluster.start``), a fresh namespace per test, and
polling helpers that fail with what they last saw instead of a bare timeout.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml

REPO = Path(__file__).resolve().parents[1]
CLUSTER_SCRIPT = REPO / "kind" / "cluster"
T = TypeVar("T")


class ClusterStartError(RuntimeError):
    pass


@dataclass(frozen=True)
class LocalCluster:
    name: str
    kubeconfig: Path
    bindir: Path
    owned: bool  # True when this session started it (and so stops it)
    # A served cluster (`kind/cluster up --serve`): its network namespace. Its API server and
    # pod IPs are reachable only from inside, so kubectl runs there too.
    netns: Path | None = None

    @classmethod
    def start(
        cls,
        name: str | None = None,
        nodes: list[Path] | None = None,
        reuse_env: bool = True,
        serve: bool = False,
        real_node: bool = False,
    ) -> LocalCluster:
        """Start a cluster for this session, or reuse the one named in GPTOSS_TEST_CLUSTER.

        Reuse is for quick local iteration (`kind/cluster up --name dev`, then
        `GPTOSS_TEST_CLUSTER=dev pytest ...`); CI always starts its own. ``nodes`` replaces
        kind/nodes.yaml (a benchmark's node pools); such a cluster is never a reused one.
        ``serve``: `kind/cluster up --serve` (GPTOSS_TEST_SERVED_CLUSTER names one to reuse).
        ``real_node``: with ``serve``, `--real-node` too (a real kubelet; never a reused cluster).
        """
        bindir = Path(
            _run([str(CLUSTER_SCRIPT), "bindir"], "build the control plane").strip().splitlines()[-1]
        )
        env_name = "GPTOSS_TEST_SERVED_CLUSTER" if serve else "GPTOSS_TEST_CLUSTER"
        reuse = os.environ.get(env_name) if reuse_env and nodes is None and not real_node else None
        if reuse:
            kubeconfig = _run([str(CLUSTER_SCRIPT), "kubeconfig", "--name", reuse], "find the cluster")
            return cls(reuse, Path(kubeconfig.strip()), bindir, owned=False, netns=_netns(reuse, serve))
        # Served clusters get a short name: it becomes part of the network namespace's name.
        name = name or (
            f"pytest-{os.getpid()}-{uuid.uuid4().hex[:4]}" if not serve else f"sv-{uuid.uuid4().hex[:6]}"
        )
        node_args = [arg for f in nodes or [] for arg in ("--nodes", str(f))]
        serve_args = (["--serve"] if serve else []) + (["--real-node"] if real_node else [])
        out = _run(
            [str(CLUSTER_SCRIPT), "up", "--name", name, *node_args, *serve_args],
            "start the local control plane",
        )
        last = out.strip().splitlines()[-1]
        if not last.startswith("KUBECONFIG="):
            raise ClusterStartError(f"kind/cluster up did not print KUBECONFIG=...; it printed {last!r}")
        return cls(
            name, Path(last.removeprefix("KUBECONFIG=")), bindir, owned=True, netns=_netns(name, serve)
        )

    def stop(self) -> None:
        if self.owned:
            _run([str(CLUSTER_SCRIPT), "down", "--name", self.name], "stop the local control plane")

    def kill(self, component: str) -> None:
        """SIGKILL one control-plane component (``kind/cluster kill``)."""
        _run(
            [str(CLUSTER_SCRIPT), "kill", "--name", self.name, "--component", component], f"kill {component}"
        )

    def start_component(self, component: str) -> None:
        """Start a killed component again and wait for its health endpoint (``kind/cluster start``)."""
        _run(
            [str(CLUSTER_SCRIPT), "start", "--name", self.name, "--component", component],
            f"start {component}",
        )

    @property
    def env(self) -> dict[str, str]:
        """Environment for subprocesses (kubectl, helm, the operator) aimed at this cluster."""
        return {
            **os.environ,
            "KUBECONFIG": str(self.kubeconfig),
            "PATH": f"{self.bindir}:{os.environ['PATH']}",
        }

    def inline_kubeconfig(self, path: Path) -> Path:
        """Write a copy of the kubeconfig with certificate-authority-data, client-certificate-data
        and client-key-data (base64 PEM) instead of file paths: how kind, EKS and GKE write them."""
        config = yaml.safe_load(self.kubeconfig.read_text())
        for section, fields in (
            (config["clusters"][0]["cluster"], ("certificate-authority",)),
            (config["users"][0]["user"], ("client-certificate", "client-key")),
        ):
            for field in fields:
                section[f"{field}-data"] = base64.b64encode(Path(section.pop(field)).read_bytes()).decode()
        path.write_text(yaml.safe_dump(config))
        path.chmod(0o600)
        return path

    def command(self, *argv: str) -> list[str]:
        """``argv`` as run against this cluster: inside its network namespace when it has one."""
        return ["nsenter", f"--net={self.netns}", "--", *argv] if self.netns else list(argv)

    def kubectl(
        self, *args: str, stdin: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            self.command(str(self.bindir / "kubectl"), *args),
            input=stdin,
            capture_output=True,
            text=True,
            env=self.env,
            check=False,
            timeout=120,
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"kubectl {' '.join(args)} failed ({proc.returncode}): {proc.stderr.strip()}"
            )
        return proc

    def get(self, *args: str) -> Any:
        """`kubectl get ... -o json`, parsed."""
        return json.loads(self.kubectl("get", *args, "-o", "json").stdout)

    def apply(self, manifest: dict[str, Any] | list[dict[str, Any]], namespace: str | None = None) -> None:
        docs = manifest if isinstance(manifest, list) else [manifest]
        body = json.dumps({"apiVersion": "v1", "kind": "List", "items": docs})
        ns = ["-n", namespace] if namespace else []
        self.kubectl("apply", "--server-side", "--field-manager=pytest", *ns, "-f", "-", stdin=body)

    def install_crds(self) -> None:
        """Both CRDs from crds/ (the generator's output), server-side applied, Established, and
        their schemas published in the API server's OpenAPI v3 document, which happens after
        Established (kubectl explain and kubectl's field validation read that document)."""
        self.kubectl(
            "apply", "--server-side", "--force-conflicts", "--field-manager=pytest", "-f", str(REPO / "crds")
        )
        for crd in ("modeldeployments.gptoss.dev", "routepolicies.gptoss.dev"):
            self.kubectl("wait", "--for=condition=Established", "--timeout=60s", f"crd/{crd}")

        def published() -> bool:
            doc = self.kubectl("get", "--raw", "/openapi/v3/apis/gptoss.dev/v1alpha1", check=False)
            return doc.returncode == 0 and all(
                f"dev.gptoss.v1alpha1.{kind}" in doc.stdout for kind in ("ModelDeployment", "RoutePolicy")
            )

        wait_for(published, timeout=60, what="the CRDs' schemas in /openapi/v3")

    def create_namespace(self, prefix: str) -> str:
        # Namespace names are DNS labels: lower-case, <= 63 characters.
        slug = re.sub(r"[^a-z0-9-]+", "-", prefix.lower()).strip("-")[:40].rstrip("-")
        name = f"{slug}-{uuid.uuid4().hex[:6]}"
        self.kubectl("create", "namespace", name)
        # Pods are refused until the controller-manager has created the "default" ServiceAccount.
        wait_for(
            lambda: self.kubectl("get", "serviceaccount", "default", "-n", name, check=False).returncode == 0,
            timeout=30,
            what=f"the default ServiceAccount in {name}",
        )
        return name


def _netns(name: str, serve: bool) -> Path | None:
    if not serve:
        return None
    return Path(_run([str(CLUSTER_SCRIPT), "netns", "--name", name], "find the network namespace").strip())


def _run(argv: list[str], what: str) -> str:
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise ClusterStartError(
            f"could not {what}: {' '.join(argv)} exited {proc.returncode}\n{proc.stderr[-4000:]}"
        )
    return proc.stdout


def wait_for(probe: Callable[[], T | None], *, timeout: float, what: str, interval: float = 0.25) -> T:
    """Poll ``probe`` until it returns something truthy; fail naming ``what`` and the last value.

    The probe may raise AssertionError to report why it is not done yet; the last such message
    ends up in the failure.
    """
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        try:
            value = probe()
            if value:
                return value
            last = value
        except AssertionError as e:
            last = str(e)
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}; last seen: {last!r}")
        time.sleep(interval)


def running_pod(cluster: LocalCluster, namespace: str, selector: str) -> dict[str, Any]:
    """A Running pod matching ``selector`` that has its IP (waits up to a minute)."""

    def probe() -> dict[str, Any] | None:
        pods = cluster.get("pods", "-n", namespace, "-l", selector)["items"]
        running = [p for p in pods if p["status"].get("phase") == "Running" and p["status"].get("podIP")]
        return running[0] if running else None

    return wait_for(probe, timeout=60, what=f"a Running pod {selector} in {namespace}")


def condition(obj: dict[str, Any], type_: str) -> dict[str, Any] | None:
    for cond in obj.get("status", {}).get("conditions", []) or []:
        if cond.get("type") == type_:
            return dict(cond)
    return None
