"""Provider API keys, read from files (mounted Secrets) and re-read when the file changes.

A key is held in memory only; it is never logged, never part of a repr, never echoed in an
error. Errors name the *file*, not its content. Kubernetes updates a mounted Secret by swapping a
symlink, so change detection uses ``stat`` of the resolved path (inode, size, mtime).

A key goes into an upstream request head (``Authorization: Bearer KEY`` or ``api-key: KEY``),
so a file is accepted only when it holds one token of printable ASCII: a second line, a CR or LF,
or any other control character would otherwise become a header of its own (header injection),
and whitespace inside would not be a token. Surrounding whitespace (the usual trailing newline)
is dropped.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class KeyResult:
    key: str | None = field(repr=False)
    problem: str | None  # why there is no key, naming the file only
    changed: bool = False


class KeyStore:
    def __init__(self) -> None:
        self._cache: dict[str, tuple[tuple[int, int, int], str]] = {}

    def read(self, path: str) -> KeyResult:
        """The key in ``path``; re-reads only when the file changed since the last call."""
        try:
            st = os.stat(path)
        except FileNotFoundError:
            changed = self._cache.pop(path, None) is not None
            return KeyResult(None, f"API key file {path} is missing", changed)
        except OSError as e:
            self._cache.pop(path, None)
            return KeyResult(None, f"API key file {path} cannot be read ({e.strerror})")
        sig = (st.st_ino, st.st_size, st.st_mtime_ns)
        cached = self._cache.get(path)
        if cached is not None and cached[0] == sig:
            return KeyResult(cached[1], None)
        try:
            with open(path, encoding="utf-8") as f:
                key = f.read().strip()
        except (OSError, UnicodeDecodeError) as e:
            self._cache.pop(path, None)
            reason = e.strerror if isinstance(e, OSError) else "not UTF-8 text"
            return KeyResult(None, f"API key file {path} cannot be read ({reason})")
        if not key:
            self._cache.pop(path, None)
            return KeyResult(None, f"API key file {path} is empty")
        problem = key_problem(key)
        if problem is not None:
            self._cache.pop(path, None)
            return KeyResult(None, f"API key file {path} {problem}")
        self._cache[path] = (sig, key)
        return KeyResult(key, None, changed=cached is None or cached[1] != key)


def key_problem(key: str) -> str | None:
    """Why ``key`` (already stripped) cannot go into a header, without quoting any of it."""
    if any(c in "\r\n" for c in key):
        return "holds more than one line; expected one token"
    if any(c.isspace() for c in key):
        return "holds whitespace inside the key; expected one token"
    if not all("\x21" <= c <= "\x7e" for c in key):
        return "holds control or non-ASCII characters; expected one token of printable ASCII"
    return None
