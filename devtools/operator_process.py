"""The real operator process (`gptoss-operator run`) against a local cluster."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from devtools.cluster import LocalCluster, wait_for
from devtools.ports import free_port

_SAMPLE = re.compile(
    r'^gptoss_operator_api_writes_total\{resource="([^"]+)",verb="([^"]+)"\} ([0-9.e+]+)$', re.M
)


@dataclass
class OperatorProcess:
    cluster: LocalCluster
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None
    metrics_port: int = field(default_factory=free_port)
    extra_args: tuple[str, ...] = ()
    kubeconfig: Path | None = None  # instead of the cluster's own (e.g. an inline-data copy)
    env: dict[str, str] = field(default_factory=dict)  # extra environment, e.g. GPTOSS_RELIST_SECONDS
    liveness_port: int = 0  # 0: no /healthz endpoint

    def start(self) -> None:
        self.metrics_port = free_port()
        log = self.log_path.open("ab")
        argv = [
            sys.executable,
            "-m",
            "gptoss_operator",
            "run",
            f"--metrics-port={self.metrics_port}",
            f"--liveness-port={self.liveness_port}",
            *self.extra_args,
        ]
        # GPTOSS_OPERATOR_WRAPPER: a profiler command line to run the operator under, e.g.
        # "py-spy record -o profile.txt -f raw --" (investigating the benchmark, never in CI).
        wrapper = os.environ.get("GPTOSS_OPERATOR_WRAPPER", "").split()
        self.proc = subprocess.Popen(
            [*wrapper, *argv],
            env=self.cluster.env
            | ({"KUBECONFIG": str(self.kubeconfig)} if self.kubeconfig else {})
            | self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        wait_for(self._metrics_answer, timeout=30, what="the operator's /metrics endpoint")

    def _metrics_answer(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError(f"the operator exited with {self.proc.returncode}:\n{self.log_tail()}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=2):
                return True
        except OSError:
            return False

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def writes(self) -> dict[tuple[str, str], float]:
        """The operator's own count of write requests, by (resource, verb), since it started."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5) as resp:
            text = resp.read().decode()
        return {(m[1], m[2]): float(m[3]) for m in _SAMPLE.finditer(text)}

    def metric(self, name: str) -> float:
        """The sum of one metric's samples (e.g. gptoss_operator_reconcile_seconds_count)."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5) as resp:
            text = resp.read().decode()
        pattern = re.compile(rf"^{re.escape(name)}(?:\{{[^}}]*\}})? ([0-9.e+-]+)$", re.M)
        return sum(float(v) for v in pattern.findall(text))

    def log_tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"

    def assert_alive(self) -> None:
        assert self.proc is not None, "the operator is not running"
        assert self.proc.poll() is None, f"the operator died:\n{self.log_tail()}"


def settle(seconds: float) -> None:
    """Let watch events and any reconciles they trigger run their course."""
    time.sleep(seconds)
