"""`make demo`: the operator and its hybrid router end to end on a served local cluster.

From a fresh clone: build (or reuse) the control-plane binaries, start the served local cluster
(`kind/cluster up --serve`, kind/README.md), install the operator with its Helm chart, apply the
samples in examples/, then send requests with the official ``openai`` client through the router
and print what happened: the 80/20 split, a fallback, a residency refusal and the router's
metrics. Run by kind/demo.sh (``python -m devtools.demo [--name N]``); it needs root, like
`kind/cluster up --serve` (a network namespace).

The process joins the cluster's network namespace once the cluster is up (setns(2) on the main
thread; subprocesses inherit it), so kubectl, helm and the client reach the API server and the
pod IPs directly, as `kind/cluster exec` does. Nothing is sent anywhere else.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import os
import re
import secrets
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import yaml

from devtools.cluster import CLUSTER_SCRIPT, REPO, wait_for

EXAMPLES = REPO / "examples"
CHART = REPO / "charts" / "gpt-oss-operator"
BUILD_SCRIPT = REPO / "kind" / "build.sh"
NAMESPACE = "llm"
OPERATOR_NAMESPACE = "gptoss-system"
POLICY = "hybrid"
MODEL = "gpt-oss-120b"
MD_120B = "oss-120b"
PROVIDER_POD = "hosted-provider-simulator"
PROVIDER_PORT = 8443
RESTRICTED = {"x-data-class": "restricted"}
ROUTER_PODS = f"app.kubernetes.io/instance={POLICY},app.kubernetes.io/component=router"
SERVER_PODS = f"app.kubernetes.io/instance={MD_120B},app.kubernetes.io/component=server"
# Cold build of the Go binaries on this project's 2-core CI machine (kind/README.md, "Measured").
COLD_BUILD = "about 8 minutes on 2 cores (7 min 41 s measured, kind/README.md)"
CLONE_NEWNET = 0x40000000  # <linux/sched.h>
# The router's counters worth reading after the demo (docs/router.md, "Metrics").
METRICS = (
    "gptoss_router_requests_total",
    "gptoss_router_fallback_total",
    "gptoss_router_residency_blocked_total",
    "gptoss_router_overflow_total",
    "gptoss_router_ejections_total",
)
STEPS = (
    "Control-plane binaries (kind/build.sh)",
    "Served local cluster (kind/cluster up --serve)",
    "GPU nodes",
    "The operator, installed with its Helm chart",
    "Samples from examples/",
    "kubectl get gptoss: the plans",
    "The 80/20 split",
    "Residency: restricted requests with no in-cluster capacity",
    "Fallback: the hosted provider fails",
    "The router's /metrics",
)


class Demo:
    def __init__(self, name: str, requests: int) -> None:
        self.name = name
        self.requests = requests
        self.started = time.monotonic()
        self.step_no = 0
        self.kubeconfig = ""
        self.provider = ""  # the provider simulator's base URL (its pod IP)

    # ---- output ---------------------------------------------------------------------------

    @contextlib.contextmanager
    def step(self) -> Iterator[None]:
        title = STEPS[self.step_no]
        self.step_no += 1
        begun = time.monotonic()
        print(f"\n[{begun - self.started:6.1f}s] step {self.step_no}/{len(STEPS)}: {title}", flush=True)
        yield
        print(f"         ({time.monotonic() - begun:.1f}s)", flush=True)

    @staticmethod
    def say(text: str = "") -> None:
        for line in text.splitlines() or [""]:
            print(f"  {line}" if line else "", flush=True)

    # ---- commands -------------------------------------------------------------------------

    def run(self, *argv: str, stdin: str | None = None, show: bool = False, timeout: float = 300) -> str:
        """``argv`` with the cluster's KUBECONFIG and binaries; its stdout. ``show``: echo the
        command and its output (the kubectl lines a user would type)."""
        if show:
            self.say("$ " + " ".join(_short(a) for a in argv))
        proc = subprocess.run(argv, input=stdin, capture_output=True, text=True, check=False, timeout=timeout)
        if proc.returncode != 0:
            raise DemoError(f"{' '.join(argv)} exited {proc.returncode}:\n{proc.stderr.strip()}")
        if show:
            self.say(proc.stdout.rstrip())
        return proc.stdout

    def kubectl(self, *args: str, stdin: str | None = None, show: bool = False) -> str:
        return self.run("kubectl", *args, stdin=stdin, show=show)

    def get(self, *args: str) -> Any:
        return json.loads(self.kubectl("get", *args, "-o", "json"))

    def apply(self, doc: dict[str, Any]) -> None:
        self.kubectl(
            "apply", "--server-side", "--field-manager=gptoss-demo", "-n", NAMESPACE, "-f", "-",
            stdin=json.dumps(doc),
        )  # fmt: skip

    def running_pods(self, selector: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = self.get("pods", "-n", NAMESPACE, "-l", selector)["items"]
        return [
            p
            for p in items
            if p["status"].get("phase") == "Running"
            and p["status"].get("podIP")
            and not p["metadata"].get("deletionTimestamp")
        ]

    # ---- steps ----------------------------------------------------------------------------

    def build(self) -> None:
        bindir = Path(self.run("bash", str(BUILD_SCRIPT), "--print").strip())
        if (bindir / ".complete").exists():
            self.say(f"cached: {bindir} (the first run compiles them: {COLD_BUILD})")
        else:
            self.say(
                "first run: compiling kube-apiserver, etcd, kwok, helm, ... from the pinned Go modules;\n"
                f"this takes {COLD_BUILD}. Later runs reuse {bindir.parent}/."
            )
        # Not captured: the build's own progress lines stay visible.
        built = subprocess.run(["bash", str(BUILD_SCRIPT)], stdout=subprocess.PIPE, text=True, check=False)
        if built.returncode != 0:
            raise DemoError(f"kind/build.sh exited {built.returncode}")
        os.environ["PATH"] = f"{built.stdout.strip().splitlines()[-1]}:{os.environ['PATH']}"

    def cluster(self) -> None:
        listed = self.run(str(CLUSTER_SCRIPT), "list")
        state = next(
            (line.split("\t") for line in listed.splitlines() if line.split("\t")[0] == self.name), None
        )
        if state and state[1] == "running (served)":
            self.say(f'reusing the running served cluster "{self.name}" (the demo namespace is recreated)')
            self.kubeconfig = state[2]
        else:
            if state:
                self.say(
                    f'"{self.name}" exists but is not a running served cluster ({state[1]}): replacing it'
                )
                self.run(str(CLUSTER_SCRIPT), "down", "--name", self.name)
            self.say(f"$ kind/cluster up --serve --name {self.name}")
            out = self.run(str(CLUSTER_SCRIPT), "up", "--serve", "--name", self.name, timeout=600)
            self.kubeconfig = out.strip().splitlines()[-1].removeprefix("KUBECONFIG=")
        netns = self.run(str(CLUSTER_SCRIPT), "netns", "--name", self.name).strip()
        _join_netns(netns)
        os.environ["KUBECONFIG"] = self.kubeconfig
        self.say(f"network namespace {netns}: this process now runs inside it, like `kind/cluster exec`")
        self.say(self.kubectl("version").rstrip())

    def nodes(self) -> None:
        self.say("SIMULATED: these are kwok nodes. They have GPU labels and allocatable GPUs, no GPUs.")
        self.kubectl(
            "get", "nodes", "-L", "nvidia.com/gpu.product", "-L", "nvidia.com/gpu.count",
            "-L", "amd.com/gpu.product-name", show=True,
        )  # fmt: skip

    def operator(self) -> None:
        if self.kubectl("get", "namespace", NAMESPACE, "--ignore-not-found").strip():
            self.say(f"deleting the namespace {NAMESPACE} of an earlier run")
            self.kubectl("delete", "namespace", NAMESPACE, "--wait=true", "--timeout=120s")
        self.run(
            "helm", "upgrade", "--install", "gptoss", str(CHART), "-n", OPERATOR_NAMESPACE,
            "--create-namespace",
            # Every process of a served cluster shares one network namespace; the operator's
            # default 8080 is the routers' port.
            "--set", "metrics.port=9411", "--set", "livenessPort=9412",
            "--wait", "--timeout=180s", show=True, timeout=240,
        )  # fmt: skip
        for crd in ("modeldeployments.gptoss.dev", "routepolicies.gptoss.dev"):
            self.kubectl("wait", "--for=condition=Established", "--timeout=60s", f"crd/{crd}")
        self.kubectl("get", "pods", "-n", OPERATOR_NAMESPACE, "-o", "wide", show=True)
        self.say(
            "The operator is the chart's pod: the local pod runner runs its container command\n"
            "(gptoss-operator run) with this checkout's .venv, under the chart's ServiceAccount and RBAC."
        )

    def samples(self) -> None:
        self.kubectl("create", "namespace", NAMESPACE, show=True)
        # Pods are refused until the controller-manager has created the "default" ServiceAccount.
        wait_for(
            lambda: bool(
                self.kubectl("get", "serviceaccount", "-n", NAMESPACE, "--ignore-not-found").strip()
            ),
            timeout=60,
            what=f"the default ServiceAccount in {NAMESPACE}",
        )
        # A fresh random key, never printed: the router reads it from the Secret, the
        # provider simulator accepts only it.
        self.say("Secret provider-key: a random API key for the hosted provider (not shown)")
        self.apply(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": "provider-key"},
                "stringData": {"apiKey": f"sk-demo-{secrets.token_hex(16)}"},
            }
        )
        for example in (
            "hosted-provider-simulator.yaml",
            "modeldeployment-120b-h100.yaml",
            "modeldeployment-20b-l4-cached.yaml",
        ):
            self.kubectl("apply", "-n", NAMESPACE, "-f", str(EXAMPLES / example), show=True)
        pod = wait_for(
            lambda: next(iter(self.running_pods("app.kubernetes.io/name=" + PROVIDER_POD)), None),
            timeout=60,
            what="the hosted-provider simulator pod",
        )
        self.provider = f"http://{pod['status']['podIP']}:{PROVIDER_PORT}"
        wait_for(lambda: self._answers(self.provider + "/health"), timeout=60, what="the provider simulator")
        policy = yaml.safe_load((EXAMPLES / "routepolicy-hybrid.yaml").read_text())
        hosted = next(b for b in policy["spec"]["routes"][0]["backends"] if b["name"] == "hosted")
        hosted["external"]["baseURL"] = self.provider + "/v1"
        self.say(
            "$ kubectl apply -n llm -f examples/routepolicy-hybrid.yaml"
            f"   # with baseURL: {self.provider}/v1 (the simulator pod)"
        )
        self.apply(policy)
        self.kubectl(
            "wait", "-n", NAMESPACE, "--for=condition=Ready", "--timeout=180s",
            "modeldeployment/oss-120b", "modeldeployment/oss-20b", f"routepolicy/{POLICY}", show=True,
        )  # fmt: skip

    def plans(self) -> None:
        self.kubectl("get", "gptoss", "-n", NAMESPACE, show=True)
        for md in ("oss-120b", "oss-20b"):
            plan = self.get("modeldeployment", md, "-n", NAMESPACE)["status"].get("plan", {})
            self.say(
                f"{md}: {plan.get('gpusPerReplica')} GPU(s) per replica, tensor parallel "
                f"{plan.get('tensorParallelSize')}, max-model-len {plan.get('maxModelLen')}, "
                f"KV cache {plan.get('kvCacheTokens')} tokens, {plan.get('image')}\n"
                f"  vllm serve {' '.join(plan.get('args', []))}"
            )
        self.kubectl("get", "pods", "-n", NAMESPACE, "-o", "wide", show=True)
        self.say(
            "SIMULATED: the vLLM pods run this project's vLLM simulator (no model, no GPU);\n"
            f"{PROVIDER_POD} is a simulated hosted provider. The routers are the real router."
        )

    def split(self) -> None:
        routers = self.wait_routers(lambda text: bool(_endpoints(text, "local")) and _pool_normal(text))
        endpoint = self.get("routepolicy", POLICY, "-n", NAMESPACE)["status"].get("endpoint")
        self.say(f"status.endpoint {endpoint}: the router Service; its endpoints: {', '.join(routers)}")
        self.say(
            "the local cluster has no kube-proxy and no cluster DNS, so the client dials the Service's\n"
            "endpoints (its EndpointSlice) round-robin, from inside the cluster's network namespace"
        )
        seen = self.send(routers, self.requests)
        local, hosted = seen["local"], seen["hosted"]
        self.say(
            f"split over {self.requests} requests: local {local} ({100 * local / self.requests:.1f}%), "
            f"hosted {hosted} ({100 * hosted / self.requests:.1f}%), "
            f"other {self.requests - local - hosted}; configured 80/20"
        )
        self.say("(local: in-cluster gpt-oss-120b, simulated vLLM; hosted: the simulated provider)")

    def residency(self) -> None:
        before = self.provider_requests()
        self.kubectl("scale", "modeldeployment", MD_120B, "-n", NAMESPACE, "--replicas=0", show=True)
        wait_for(lambda: not self.running_pods(SERVER_PODS), timeout=60, what="no gpt-oss-120b pods")
        routers = self.wait_routers(lambda text: not _endpoints(text, "local"))
        seen = self.send(routers, 20, headers=RESTRICTED)
        reached = self.provider_requests() - before
        refused = sum(n for k, n in seen.items() if k == "error:503:residency_blocked")
        self.say(
            f"residency: {refused}/20 restricted requests refused (503 residency_blocked); "
            f"requests that reached the provider: {reached}"
        )
        self.say(f"  one refusal: {self.last_error}")
        seen = self.send(routers, 20)
        self.say(
            f"fallback: with no in-cluster pods, {seen['hosted']}/20 untagged requests answered by hosted\n"
            "  (counted as overflow: an in-cluster pool without endpoints has no capacity)"
        )
        self.kubectl("scale", "modeldeployment", MD_120B, "-n", NAMESPACE, "--replicas=1", show=True)

    def fallback(self) -> None:
        pod = wait_for(
            lambda: next(iter(self.running_pods(SERVER_PODS)), None), timeout=60, what="a gpt-oss-120b pod"
        )
        ip = pod["status"]["podIP"]
        routers = self.wait_routers(
            lambda text: any(ip in e for e in _endpoints(text, "local")) and _pool_normal(text)
        )
        fallbacks_before = self.counter(routers, "gptoss_router_fallback_total", 'backend="hosted"')
        self.say(
            f"the provider simulator now answers every request with 503 (POST {self.provider}/admin/config)"
        )
        self._provider_config({"fail_status": 503})
        try:
            seen = self.send(routers, 50)
        finally:
            self._provider_config({"fail_status": None})
        retried = self.counter(routers, "gptoss_router_fallback_total", 'backend="hosted"') - fallbacks_before
        self.say(
            f"fallback: {seen['local']}/50 answered by local while the provider failed, "
            f"{50 - seen['local']} not; {retried:.0f} attempts on hosted failed and were retried on local"
        )
        self.say(
            "(after 3 failures in a row a router ejects the provider for 10 s: passive health, docs/router.md)"
        )
        self.say("the provider simulator answers normally again")

    def metrics(self) -> None:
        routers = self.router_endpoints()
        totals: dict[str, float] = {}
        for router in routers:
            for line in httpx.get(f"{router}/metrics", timeout=5, trust_env=False).text.splitlines():
                if line.startswith(METRICS):
                    series, _, value = line.rpartition(" ")
                    totals[series] = totals.get(series, 0.0) + float(value)
        self.say(f"counters summed over the {len(routers)} router pods (GET <pod IP>:8080/metrics):")
        for series in sorted(totals):
            self.say(f"  {series} {totals[series]:.0f}")

    def finish(self) -> None:
        routers = self.router_endpoints()
        state = Path(self.kubeconfig).parent
        down = f"kind/cluster down --name {self.name}"
        exec_ = f"kind/cluster exec --name {self.name} --"
        print(
            f"""
Done in {time.monotonic() - self.started:.0f}s. Simulated here: the GPU nodes (kwok), the vLLM pods (the
project's vLLM simulator) and the hosted provider (a simulator pod). Real: the control plane,
the operator (installed by Helm) and the router.

The cluster "{self.name}" keeps running. Its pods answer only inside its network namespace, so
run clients there (KUBECONFIG and PATH are set):
  {exec_} kubectl get gptoss -n {NAMESPACE}
  {exec_} curl -s {routers[0]}/v1/chat/completions -H 'content-type: application/json' \\
      -d '{{"model": "gpt-oss-20b", "messages": [{{"role": "user", "content": "hello"}}]}}'
  {exec_} bash        # a shell inside
Edit and re-apply the samples in examples/ (in routepolicy-hybrid.yaml, keep baseURL
{self.provider}/v1: the provider simulator); the pods' process logs are in {state}/pods/.
Tear it down with:
  {down}""",
            flush=True,
        )

    # ---- helpers --------------------------------------------------------------------------

    last_error = ""

    def router_endpoints(self) -> list[str]:
        """Base URLs of the router Service's ready endpoints (its EndpointSlices), sorted."""
        svc = self.get("services", "-n", NAMESPACE, "-l", ROUTER_PODS)["items"][0]["metadata"]["name"]
        slices = self.get("endpointslices", "-n", NAMESPACE, "-l", f"kubernetes.io/service-name={svc}")
        urls = {
            f"http://{address}:{port['port']}"
            for s in slices["items"]
            for port in s.get("ports") or []
            for ep in s.get("endpoints") or []
            if ep.get("conditions", {}).get("ready")
            for address in ep["addresses"]
        }
        return sorted(urls)

    def wait_routers(self, ok: Any) -> list[str]:
        """The router endpoints, once every one answers /metrics and ``ok(metrics text)`` holds
        (kwok marks pods Ready before their process listens; the routers learn EndpointSlice
        changes and vLLM load within a few scrapes)."""

        def check() -> list[str] | None:
            routers = self.router_endpoints()
            if not routers:
                return None
            for router in routers:
                try:
                    text = httpx.get(f"{router}/metrics", timeout=2, trust_env=False).text
                except httpx.TransportError:
                    return None
                if not ok(text):
                    return None
            return routers

        result: list[str] = wait_for(check, timeout=90, what="the routers to see the expected endpoints")
        return result

    def send(self, routers: list[str], n: int, headers: dict[str, str] | None = None) -> Counter[str]:
        """``n`` chat completions with the official client, round-robin over the routers; the
        answering backend of each (the router's x-gptoss-backend header) or error:<status>:<code>."""
        seen: Counter[str] = Counter()
        clients = [
            openai.OpenAI(
                base_url=f"{r}/v1",
                api_key="unused",  # the router holds the provider's key; clients need none here
                max_retries=0,
                timeout=30,
            )
            for r in routers
        ]
        try:
            for i in range(n):
                try:
                    raw = clients[i % len(clients)].chat.completions.with_raw_response.create(
                        model=MODEL,
                        messages=[{"role": "user", "content": "Say hello."}],
                        extra_headers=headers or {},
                    )
                except openai.APIStatusError as e:
                    seen[f"error:{e.status_code}:{e.code}"] += 1
                    body = e.body if isinstance(e.body, dict) else {}
                    self.last_error = f"{e.status_code} {e.code}: {body.get('message', e.message)}"
                    continue
                if raw.parse().choices[0].message.content:
                    seen[raw.headers.get("x-gptoss-backend", "?")] += 1
        finally:
            for client in clients:
                client.close()
        return seen

    def counter(self, routers: list[str], name: str, label: str) -> float:
        total = 0.0
        for router in routers:
            for line in httpx.get(f"{router}/metrics", timeout=5, trust_env=False).text.splitlines():
                if line.startswith(name + "{") and label in line:
                    total += float(line.rpartition(" ")[2])
        return total

    def provider_requests(self) -> int:
        stats = httpx.get(self.provider + "/admin/stats", timeout=5, trust_env=False).json()
        count: int = stats["requests"]
        return count

    def _provider_config(self, patch: dict[str, Any]) -> None:
        httpx.post(self.provider + "/admin/config", json=patch, timeout=5, trust_env=False).raise_for_status()

    @staticmethod
    def _answers(url: str) -> bool:
        try:
            return httpx.get(url, timeout=2, trust_env=False).status_code == 200
        except httpx.TransportError:
            return False


class DemoError(RuntimeError):
    pass


def _endpoints(metrics: str, backend: str) -> set[str]:
    """The endpoints a router has for ``backend`` of the 120b route (its backend_healthy gauge)."""
    return {
        m.group(1)
        for line in metrics.splitlines()
        if line.startswith("gptoss_router_backend_healthy{")
        and f'route="{MODEL}"' in line
        and f'backend="{backend}"' in line
        and (m := re.search(r'endpoint="([^"]+)"', line))
    }


def _pool_normal(metrics: str) -> bool:
    # Until a router has scraped the vLLM pods their samples are stale and the pool counts as
    # saturated, which spills to the overflow backend (docs/router.md): not the split.
    return f'gptoss_router_pool_saturated{{route="{MODEL}"}} 0.0' in metrics


def _short(arg: str) -> str:
    return os.path.relpath(arg, REPO) if arg.startswith(str(REPO)) else arg


def _join_netns(path: str) -> None:
    """Move this (main) thread into the network namespace at ``path``; children inherit it.
    setns(2) with CLONE_NEWNET (os.setns is Python >= 3.12 only)."""
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(path, os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns({path}); the served cluster needs root")
    finally:
        os.close(fd)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="make demo", description=__doc__.splitlines()[0])
    p.add_argument("--name", default="demo", help="the local cluster's name (default: demo)")
    p.add_argument("--requests", type=int, default=200, help="requests for the split (default: 200)")
    args = p.parse_args(argv)
    demo = Demo(args.name, args.requests)
    print(
        "gpt-oss-operator demo. SIMULATED: GPU nodes (kwok), vLLM pods (a vLLM simulator), the hosted\n"
        "provider (a simulator pod). Real: the Kubernetes control plane, the operator, the router.",
        flush=True,
    )
    try:
        for action in (
            demo.build,
            demo.cluster,
            demo.nodes,
            demo.operator,
            demo.samples,
            demo.plans,
            demo.split,
            demo.residency,
            demo.fallback,
            demo.metrics,
        ):
            with demo.step():
                action()
    except (DemoError, AssertionError) as e:
        print(f"\ndemo failed: {e}", file=sys.stderr)
        print(f"The cluster is left as it is for a look; stop it with: kind/cluster down --name {args.name}")
        return 1
    demo.finish()
    return 0


if __name__ == "__main__":
    sys.exit(main())
