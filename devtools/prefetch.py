"""Fetch what the tests download on first use, so CI can do it while the Go tools compile.

    .venv/bin/python -m devtools.prefetch

On a fresh machine `make test` would otherwise wait, in the middle of the run, for the Debian
base root file system of the operator image (`mmdebstrap`, devtools/images.py) and for one vLLM
wheel per verified release (`pip download`, devtools/vllm_wheel.py). Both are network and disk
bound, and the control-plane and argocd builds before `make test` are CPU bound, so `.ci/run`
starts this in the background first and waits for it before the tests. Each item is cached
outside the repository and taken from the cache when it is there; the tests fetch whatever is
still missing themselves, so this is only ever a head start.
"""

from __future__ import annotations

import functools
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from devtools.images import base_rootfs, missing_tools
from devtools.vllm_wheel import download_wheel
from gptoss_operator.planning.vllm_versions import VERIFIED_VERSIONS


def _timed(label: str, fetch: Callable[[], object]) -> str:
    start = time.monotonic()
    fetch()
    return f"{label}: {time.monotonic() - start:.0f} s"


def main() -> int:
    jobs: dict[str, Callable[[], object]] = {}
    # Without podman/mmdebstrap the image tests fail with their own message; nothing to fetch.
    if not missing_tools():
        jobs["Debian base rootfs"] = base_rootfs
    for version in VERIFIED_VERSIONS:
        jobs[f"vllm {version} wheel"] = functools.partial(download_wheel, version)
    # Two at a time: the rootfs build and one wheel download share the network well enough,
    # and more would only queue behind the same link.
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {label: pool.submit(_timed, label, fetch) for label, fetch in jobs.items()}
    failed = 0
    for label, future in futures.items():
        error = future.exception()
        if error is None:
            print(f"[prefetch] {future.result()}", flush=True)
        else:
            failed += 1
            print(f"[prefetch] {label} failed: {type(error).__name__}: {error}", file=sys.stderr, flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
