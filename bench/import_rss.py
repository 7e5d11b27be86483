"""Resident memory a process gains by importing modules: VmRSS before and after, in MiB.

    python -m bench.import_rss kubernetes.config kubernetes.client
    python -m bench.import_rss kopf aiohttp pydantic gptoss_operator.controller.controller

Run it with the interpreter of the environment to measure (docs/install.md, "Credentials", and
docs/figures.md give the exact environments). Linux only: it reads /proc/self/status.
"""

from __future__ import annotations

import importlib
import re
import sys
from pathlib import Path


def rss_mib() -> float:
    status = Path("/proc/self/status").read_text()
    match = re.search(r"^VmRSS:\s+(\d+) kB$", status, re.M)
    assert match is not None, "no VmRSS in /proc/self/status"
    return int(match[1]) / 1024


def main(modules: list[str]) -> None:
    before = rss_mib()
    for name in modules:
        importlib.import_module(name)
    after = rss_mib()
    kubernetes = "kubernetes" in sys.modules
    print(
        f"{' '.join(modules)}: {before:.1f} -> {after:.1f} MiB (+{after - before:.1f}); kubernetes imported: {kubernetes}"
    )


if __name__ == "__main__":
    main(sys.argv[1:])
