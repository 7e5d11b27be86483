"""Run test code inside a served cluster's network namespace (kind/cluster up --serve).

Pod IPs are local addresses of that namespace only. Joining a network namespace is per thread
(setns(2) with CLONE_NEWNET changes the calling thread alone), so each call runs in a fresh
thread that joins the namespace first: sockets it opens live there, the test process stays out.
"""

from __future__ import annotations

import ctypes
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx

T = TypeVar("T")
CLONE_NEWNET = 0x40000000  # <linux/sched.h>


def in_netns(netns: Path, fn: Callable[[], T]) -> T:
    """``fn()`` run in a thread that lives in ``netns``; its result, or its exception re-raised."""
    out: dict[str, Any] = {}

    def body() -> None:
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            fd = os.open(netns, os.O_RDONLY)
            try:
                if libc.setns(fd, CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), f"setns({netns})")
            finally:
                os.close(fd)
            out["value"] = fn()
        except BaseException as e:
            out["error"] = e

    t = threading.Thread(target=body, name="in-netns")
    t.start()
    t.join()
    if "error" in out:
        raise out["error"]
    value: T = out["value"]
    return value


def http(netns: Path, method: str, url: str, **kwargs: Any) -> httpx.Response:
    """One HTTP request made from inside ``netns`` (body read before the thread ends)."""

    def call() -> httpx.Response:
        with httpx.Client(timeout=kwargs.pop("timeout", 10), trust_env=False) as client:
            r = client.request(method, url, **kwargs)
            r.read()
            return r

    return in_netns(netns, call)


def port_open(netns: Path, host: str, port: int) -> bool:
    """Whether something accepts TCP connections at host:port inside ``netns``."""
    import socket

    def probe() -> bool:
        with socket.socket() as s:
            s.settimeout(2)
            return s.connect_ex((host, port)) == 0

    return in_netns(netns, probe)
