"""Free TCP ports for the processes tests and benchmarks start."""

from __future__ import annotations

import contextlib
import random
import socket
from pathlib import Path

# Ports handed out by bind(("", 0)) come from the kernel's ephemeral range, the same range every
# outgoing connection (kubectl, a watch, a client) takes its local port from. A port chosen there
# and passed to a process that binds it a second later can be taken meanwhile: a restarted
# operator exited with "cannot listen for /metrics ... Address already in use" in CI. Ports
# below the range are never given to outgoing connections.
LOWEST = 10000


def ephemeral_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999  # Linux's default


def free_port() -> int:
    """A port nothing listens on now (on any address), below the ephemeral range."""
    return free_ports(1)[0]


def free_ports(count: int) -> list[int]:
    """``count`` distinct such ports: each stays bound until all are chosen."""
    below = ephemeral_range()[0]
    with contextlib.ExitStack() as held:
        ports: list[int] = []
        for _ in range(200 * count):
            port = random.randrange(LOWEST, below)
            s = held.enter_context(socket.socket())
            try:
                s.bind(("0.0.0.0", port))  # also taken if bound on 127.0.0.1 alone
            except OSError:
                continue
            ports.append(port)
            if len(ports) == count:
                return ports
    raise RuntimeError(f"no {count} free ports between {LOWEST} and {below}")
