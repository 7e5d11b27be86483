"""Real processes on loopback for router tests: the vLLM simulator and the router itself."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import openai

from devtools.ports import free_port

REPO = Path(__file__).resolve().parents[2]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return env


class Sim:
    """One simulator process (``gptoss_operator.simulators.vllm``), controlled over its admin API."""

    def __init__(
        self,
        name: str,
        *,
        host: str = "127.0.0.1",
        certfile: Path | None = None,
        keyfile: Path | None = None,
        **behaviour: Any,
    ) -> None:
        """``host``: address to listen on; ``certfile`` + ``keyfile``: serve HTTPS instead of HTTP."""
        self.name = name
        cmd = [
            sys.executable,
            "-m",
            "gptoss_operator.simulators.vllm",
            "--host",
            host,
            "--port",
            "0",
            "--name",
            name,
        ]
        if certfile is not None and keyfile is not None:
            cmd += ["--ssl-certfile", str(certfile), "--ssl-keyfile", str(keyfile)]
        if behaviour:
            cmd += ["--config", json.dumps(behaviour)]
        self.proc = subprocess.Popen(
            cmd, cwd=REPO, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        m = re.match(r"READY (\d+)", line)
        if not m:
            self.proc.kill()
            raise RuntimeError(f"simulator {name} did not start: {line!r}")
        self.port = int(m.group(1))
        self.tls = certfile is not None
        hostport = f"[{host}]" if ":" in host else host
        self.url = f"{'https' if self.tls else 'http'}://{hostport}:{self.port}"
        # The admin channel is test plumbing: it does not check the (throw-away) certificate.
        self._http = httpx.Client(base_url=self.url, timeout=10, trust_env=False, verify=not self.tls)

    def configure(self, **behaviour: Any) -> None:
        self._http.post("/admin/config", json=behaviour).raise_for_status()

    def reset(self, **behaviour: Any) -> None:
        self.configure(reset=True, **behaviour)
        self._http.post("/admin/reset-stats").raise_for_status()

    def stats(self) -> dict[str, Any]:
        r = self._http.get("/admin/stats")
        r.raise_for_status()
        data: dict[str, Any] = r.json()
        return data

    def stop(self) -> None:
        self._http.close()
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()


class Router:
    """``gptoss-operator router`` as a subprocess with its config in a file we can rewrite."""

    def __init__(
        self, config: dict[str, Any], workdir: Path | None = None, env: dict[str, str] | None = None
    ) -> None:
        """``env``: extra environment for the router process (e.g. ``SSL_CERT_FILE``)."""
        self.dir = workdir or Path(tempfile.mkdtemp(prefix="gptoss-router-test-"))
        self.config_path = self.dir / "router.json"
        self.write_config(config)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.base_url = self.url + "/v1"
        self.log_path = self.dir / "router.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115 (closed in stop)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gptoss_operator", "router", "--config", str(self.config_path),
             "--host", "127.0.0.1", "--port", str(self.port), "--log-level", "debug"],
            cwd=REPO, env={**_env(), **(env or {})}, stdout=self._log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        self.http = httpx.Client(base_url=self.url, timeout=30, trust_env=False)
        self._clients: dict[str, openai.OpenAI] = {}
        deadline = time.monotonic() + 20
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"router exited with {self.proc.returncode}:\n{self.logs()}")
            try:
                if self.http.get("/readyz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"router not ready:\n{self.logs()}")
            time.sleep(0.05)

    def openai(self, api_key: str = "unused") -> openai.OpenAI:
        """A sync OpenAI client for this router (closed in ``stop``: no leaked sockets)."""
        c = self._clients.get(api_key)
        if c is None:
            c = self._clients[api_key] = openai.OpenAI(base_url=self.base_url, api_key=api_key, max_retries=0)
        return c

    def write_config(self, config: dict[str, Any] | str) -> None:
        """Replace the file atomically (as a ConfigMap update does), so a reader never sees half."""
        text = config if isinstance(config, str) else json.dumps(config, indent=1)
        tmp = self.config_path.with_suffix(".tmp")
        tmp.write_text(text)
        os.replace(tmp, self.config_path)

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")

    def log_records(self) -> list[dict[str, Any]]:
        out = []
        for line in self.logs().splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
        return out

    def metric(self, name: str, **labels: str) -> float:
        """Sum of the samples of ``name`` whose labels include ``labels`` (0 if none)."""
        text = self.http.get("/metrics").text
        total = 0.0
        for line in text.splitlines():
            if not line.startswith(name + "{") and not line.startswith(name + " "):
                continue
            head, _, value = line.rpartition(" ")
            found = dict(re.findall(r'(\w+)="([^"]*)"', head))
            if all(found.get(k) == v for k, v in labels.items()):
                total += float(value)
        return total

    def wait_for(self, predicate: Any, timeout: float = 10.0, what: str = "condition") -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"timed out waiting for {what}\n--- router log tail ---\n{self.logs()[-3000:]}"
                )
            time.sleep(0.05)

    def stop(self) -> None:
        self.http.close()
        for c in self._clients.values():
            c.close()
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._log.close()


def cluster_backend(name: str, *sims: Sim | str, weight: int = 1, **extra: Any) -> dict[str, Any]:
    urls = [s if isinstance(s, str) else s.url for s in sims]
    return {"name": name, "weight": weight, "cluster": {"endpoints": urls, **extra}}


def external_backend(
    name: str, sim: Sim | str, *, weight: int = 1, model: str = "openai/gpt-oss-20b", **extra: Any
) -> dict[str, Any]:
    url = sim if isinstance(sim, str) else sim.url
    return {"name": name, "weight": weight, "external": {"baseURL": url + "/v1", "model": model, **extra}}


def config(
    *routes: dict[str, Any], residency: list[dict[str, Any]] | None = None, **server: Any
) -> dict[str, Any]:
    srv: dict[str, Any] = {
        "scrape": {"interval": "100ms", "timeout": "500ms", "staleAfter": "2s"},
        "reloadInterval": "100ms",
    }
    srv.update(server)
    return {"version": 1, "server": srv, "routes": list(routes), "residency": residency or []}


def route(model: str, *backends: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"model": model, "backends": list(backends), **extra}
