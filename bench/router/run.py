"""Router benchmark: direct vs our router vs LiteLLM proxy vs nginx, one run, one load generator.

    .venv/bin/pip install -e '.[dev,bench]' && apt-get install -y nginx
    python3 -m venv /opt/litellm-venv && /opt/litellm-venv/bin/pip install 'litellm[proxy]'
    .venv/bin/python -m bench.router.run --out bench/router/results --litellm /opt/litellm-venv/bin/litellm

Every target proxies to the same vLLM simulator (operator/gptoss_operator/simulators/vllm.py) and is driven by the
same closed-loop Go load generator (bench/router/loadgen). For each target and concurrency the
script records latency (non-streaming) and TTFT (streaming) percentiles, subtracts the direct
numbers measured in the same run, and derives requests per CPU-second of the target's process
tree (/proc utime+stime). Finally it opens 1,000 concurrent streams through each target and
samples the target's RSS while they are all open. Writes results.json, results.md and a PNG.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from devtools.ports import free_port

REPO = Path(__file__).resolve().parents[2]
MODEL = "gpt-oss-20b"
CHAT = {"model": MODEL, "messages": [{"role": "user", "content": "Say something short."}], "max_tokens": 16}
CLK_TCK = os.sysconf("SC_CLK_TCK")


def tree(pid: int) -> list[int]:
    """``pid`` and all its descendants (nginx workers, LiteLLM workers)."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            ppid = int(stat[stat.rfind(")") + 2 :].split()[1])
            parents.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(parents.get(p, []))
    return out


def cpu_seconds(pid: int) -> float:
    total = 0
    for p in tree(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime + stime
    return total / CLK_TCK


def rss_mb(pid: int) -> float:
    total = 0
    for p in tree(pid):
        try:
            m = re.search(r"VmRSS:\s+(\d+) kB", Path(f"/proc/{p}/status").read_text())
        except OSError:
            continue
        total += int(m.group(1)) if m else 0
    return total / 1024


@dataclass
class Target:
    name: str
    url: str  # base URL ending in /v1
    proc: subprocess.Popen[bytes] | None = None
    notes: str = ""
    results: dict[str, Any] = field(default_factory=dict)

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None


def wait_http(url: str, proc: subprocess.Popen[bytes] | None, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{url}: process exited with {proc.returncode}")
        try:
            if httpx.get(url, timeout=2, trust_env=False).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} not ready after {timeout}s")


def spawn(cmd: list[str], log: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    full_env = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    with open(log, "wb") as f:
        return subprocess.Popen(cmd, cwd=REPO, env=full_env, stdout=f, stderr=subprocess.STDOUT)


def start_sim(work: Path, behaviour: dict[str, Any]) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gptoss_operator.simulators.vllm",
            "--port",
            "0",
            "--config",
            json.dumps(behaviour),
        ],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    port = int(proc.stdout.readline().split()[1])
    return proc, f"http://127.0.0.1:{port}"


def start_router(work: Path, sim: str, server: str) -> Target:
    cfg = work / f"router-{server}.yaml"
    cfg.write_text(
        json.dumps(
            {
                "version": 1,
                "server": {"scrape": {"interval": "1s"}},
                "routes": [
                    {"model": MODEL, "backends": [{"name": "local", "cluster": {"endpoints": [sim]}}]}
                ],
            }
        )
    )
    port = free_port()
    if server == "uvicorn":
        cmd = [sys.executable, "-m", "gptoss_operator", "router", "--config", str(cfg), "--host", "127.0.0.1"]
        proc = spawn([*cmd, "--port", str(port)], work / "router-uvicorn.log")
        name, notes = "gptoss router", "uvicorn + httptools + uvloop, 1 process, access log on"
    else:
        granian = str(Path(sys.executable).parent / "granian")
        cmd = [granian, "--interface", "asgi", "--factory", "--loop", "uvloop", "--workers", "1"]
        cmd += [
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "bench.router.granian_app:create",
        ]
        proc = spawn(cmd, work / "router-granian.log", {"GPTOSS_ROUTER_CONFIG": str(cfg)})
        name, notes = "gptoss router (granian)", "same ASGI app under granian, 1 worker"
    wait_http(f"http://127.0.0.1:{port}/readyz", proc)
    return Target(name, f"http://127.0.0.1:{port}/v1", proc, notes)


def start_litellm(work: Path, sim: str, litellm: str) -> Target:
    cfg = work / "litellm.yaml"
    cfg.write_text(
        json.dumps(
            {
                "model_list": [
                    {
                        "model_name": MODEL,
                        "litellm_params": {
                            "model": f"openai/{MODEL}",
                            "api_base": sim + "/v1",
                            "api_key": "sk-bench",
                        },
                    }
                ],
                "litellm_settings": {"telemetry": False, "drop_params": True},
                "general_settings": {"disable_spend_logs": True},
            }
        )
    )
    port = free_port()
    env = {
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "LITELLM_LOG": "ERROR",
        "LITELLM_TELEMETRY": "False",
        # Our router and nginx take no client key here either; equivalent setup, no auth cost.
        "LITELLM_DANGEROUSLY_PERMIT_WEAK_OR_UNSET_MASTER_KEY": "true",
    }
    cmd = [litellm, "--config", str(cfg), "--host", "127.0.0.1", "--port", str(port), "--num_workers", "1"]
    proc = spawn(cmd, work / "litellm.log", env)
    wait_http(f"http://127.0.0.1:{port}/health/liveliness", proc, timeout=180)
    return Target(
        "LiteLLM proxy", f"http://127.0.0.1:{port}/v1", proc, "1 worker, no DB, equivalent model_list"
    )


def start_nginx(work: Path, sim: str) -> Target:
    port = free_port()
    (work / "nginx").mkdir(exist_ok=True)
    conf = work / "nginx" / "nginx.conf"
    conf.write_text(
        f"""
worker_processes 1;
pid {work}/nginx/nginx.pid;
error_log {work}/nginx/error.log warn;
events {{ worker_connections 4096; }}
http {{
  access_log {work}/nginx/access.log;
  client_body_temp_path {work}/nginx/body;
  proxy_temp_path {work}/nginx/proxy;
  upstream sim {{ server {sim.removeprefix("http://")}; keepalive 512; }}
  server {{
    listen 127.0.0.1:{port};
    location / {{
      proxy_pass http://sim;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
    }}
  }}
}}
"""
    )
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    proc = spawn([nginx, "-c", str(conf), "-g", "daemon off;"], work / "nginx.log")
    wait_http(f"http://127.0.0.1:{port}/v1/models", proc)
    return Target(
        "nginx",
        f"http://127.0.0.1:{port}/v1",
        proc,
        "Debian nginx 1 worker, keepalive upstream, proxy_buffering off",
    )


def load(loadgen: str, target: Target, *, conc: int, stream: bool, seconds: float) -> dict[str, Any]:
    body = {**CHAT, "stream": True} if stream else CHAT
    warm = 1.0
    cmd = [loadgen, "-url", target.url + "/chat/completions", "-body", json.dumps(body), "-c", str(conc)]
    cmd += ["-d", f"{seconds}s", "-warmup", f"{warm}s"] + (["-stream"] if stream else [])
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    time.sleep(warm)
    cpu0 = cpu_seconds(target.pid) if target.pid else 0.0
    out, _ = proc.communicate()
    cpu = (cpu_seconds(target.pid) - cpu0) if target.pid else 0.0
    r: dict[str, Any] = json.loads(out)
    r["cpu_seconds"] = cpu
    r["rps_per_core"] = r["requests"] / cpu if cpu > 0 else None
    return r


def hold(loadgen: str, target: Target, n: int) -> dict[str, Any]:
    body = json.dumps({**CHAT, "stream": True})
    cmd = [
        loadgen,
        "-url",
        target.url + "/chat/completions",
        "-body",
        body,
        "-hold",
        str(n),
        "-hold-for",
        "3s",
    ]
    idle = rss_mb(target.pid) if target.pid else 0.0
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    line = proc.stderr.readline()
    time.sleep(1.0)  # every stream is open; let the target settle
    peak = rss_mb(target.pid) if target.pid else 0.0
    out, _ = proc.communicate()
    r: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    r.update(rss_idle_mb=idle, rss_mb=peak, holding=line.strip())
    return r


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default=str(REPO / "bench/router/results"))
    p.add_argument("--seconds", type=float, default=5.0, help="measured seconds per run")
    p.add_argument("--concurrency", default="1,64,256")
    p.add_argument("--targets", default="direct,router,granian,litellm,nginx")
    p.add_argument(
        "--sim-latency", type=float, default=0.05, help="simulated non-streaming generation time (s)"
    )
    p.add_argument("--streams", type=int, default=1000)
    p.add_argument(
        "--litellm",
        default=shutil.which("litellm") or "/opt/litellm-venv/bin/litellm",
        help="the litellm CLI, from its own venv: python -m venv V && V/bin/pip install 'litellm[proxy]'",
    )
    args = p.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="gptoss-bench-"))
    loadgen = str(work / "loadgen")
    subprocess.run(["go", "build", "-o", loadgen, "main.go"], cwd=REPO / "bench/router/loadgen", check=True)

    behaviour = {
        "latency": args.sim_latency,
        "ttft": args.sim_latency,
        "itl": 0.002,
        "output_tokens": 16,
        "max_num_seqs": 4096,  # the simulator itself never queues: every target sees the same upstream
    }
    sim_proc, sim = start_sim(work, behaviour)
    wanted = args.targets.split(",")
    targets: list[Target] = []
    try:
        starters = {
            "direct": lambda: Target("direct (simulator)", sim + "/v1", None, "no proxy"),
            "router": lambda: start_router(work, sim, "uvicorn"),
            "granian": lambda: start_router(work, sim, "granian"),
            "litellm": lambda: start_litellm(work, sim, args.litellm),
            "nginx": lambda: start_nginx(work, sim),
        }
        concs = [int(c) for c in args.concurrency.split(",")]
        direct = starters["direct"]()
        targets.append(direct)
        # One proxy at a time, each run right after a direct run under the same conditions: an
        # idle proxy still burns CPU (LiteLLM's background loops) and would tax the others.
        for key in [k for k in wanted if k != "direct"]:
            t = starters[key]()
            targets.append(t)
            for conc in concs:
                for stream in (False, True):
                    mode = f"{'stream' if stream else 'plain'}-{conc}"
                    for who in (direct, t):
                        r = load(loadgen, who, conc=conc, stream=stream, seconds=args.seconds)
                        if who is direct:
                            direct.results.setdefault(mode, r)
                            t.results.setdefault("baseline", {})[mode] = r
                        else:
                            t.results[mode] = r
                        print(f"{who.name:28} {mode:12} rps={r['rps']:8.1f} p50={r['latency_ms']['p50']:8.2f} "
                              f"ttft50={r['ttft_ms']['p50']:7.2f} err={r['errors']} cpu={r['cpu_seconds']:.2f}", flush=True)  # fmt: skip
            # 1,000 concurrent streams: 16 tokens 0.4 s apart (about 7 s per stream).
            httpx.post(sim + "/admin/config", json={"itl": 0.4}, trust_env=False).raise_for_status()
            t.results["hold"] = hold(loadgen, t, args.streams)
            httpx.post(
                sim + "/admin/config", json={"itl": behaviour["itl"]}, trust_env=False
            ).raise_for_status()
            print(
                f"{t.name:28} hold ready={t.results['hold']['hold_ready']} rss={t.results['hold']['rss_mb']:.0f} MB",
                flush=True,
            )
            assert t.proc is not None
            t.proc.terminate()
            t.proc.wait(30)
            t.proc = None
    finally:
        for t in targets:
            if t.proc is not None:
                t.proc.terminate()
                t.proc.wait(20)
        sim_proc.terminate()
        sim_proc.wait(10)
    data = {
        "conditions": {
            "cpus": os.cpu_count(),
            "seconds_per_run": args.seconds,
            "simulator": behaviour,
            "request": CHAT,
            "note": "load generator, simulator and target share the same host cores",
        },
        "targets": {t.name: {"notes": t.notes, "results": t.results} for t in targets},
    }
    (out / "results.json").write_text(json.dumps(data, indent=1))
    from bench.router.report import write_report

    write_report(data, out)
    print((out / "results.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
