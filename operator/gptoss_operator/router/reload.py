"""Watching the configuration file: refuse a bad file loudly, keep serving the last good one.

Kubernetes updates a mounted ConfigMap by swapping a ``..data`` symlink, so the file is polled
(``stat`` of the resolved path plus a content hash), not watched with inotify on the path.
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass

from gptoss_operator.router.config import ConfigError, RouterConfig, parse_config

log = logging.getLogger("gptoss_operator.router.config")


@dataclass(frozen=True, slots=True)
class Loaded:
    config: RouterConfig
    digest: str


class ConfigSource:
    def __init__(self, path: str) -> None:
        self.path = path
        self._stat: tuple[int, int, int] | None = None
        self._digest: str | None = None  # of the last file seen, good or bad

    def load(self) -> Loaded:
        """Read and parse now; ConfigError if missing or invalid (the caller decides what to do)."""
        try:
            st = os.stat(self.path)
            with open(self.path, "rb") as f:
                data = f.read()
        except OSError as e:
            raise ConfigError(f"cannot read {self.path}: {e.strerror}") from None
        self._stat = (st.st_ino, st.st_size, st.st_mtime_ns)
        digest = hashlib.sha256(data).hexdigest()
        self._digest = digest
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise ConfigError(f"{self.path} is not UTF-8 text") from None
        return Loaded(parse_config(text), digest)

    def changed(self) -> bool:
        """True when the file on disk differs from the one last read (by stat, then by hash)."""
        try:
            st = os.stat(self.path)
        except OSError:
            return False  # a missing file mid-update is not a new configuration
        sig = (st.st_ino, st.st_size, st.st_mtime_ns)
        if sig == self._stat:
            return False
        try:
            with open(self.path, "rb") as f:
                digest = hashlib.sha256(f.read()).hexdigest()
        except OSError:
            return False
        if digest == self._digest:
            self._stat = sig
            return False
        return True
