"""API key files: read, re-read on change, problems name the file and never the key."""

from __future__ import annotations

import os
from pathlib import Path

from gptoss_operator.router.keys import KeyStore


def test_missing_empty_present_rotated(tmp_path: Path) -> None:
    path = tmp_path / "key"
    store = KeyStore()
    r = store.read(str(path))
    assert r.key is None
    assert r.problem == f"API key file {path} is missing"
    path.write_text("  \n")
    assert store.read(str(path)).problem == f"API key file {path} is empty"
    path.write_text("sk-one\n")
    r = store.read(str(path))
    assert (r.key, r.problem, r.changed) == ("sk-one", None, True)
    assert not store.read(str(path)).changed, "unchanged file: served from cache"
    tmp = tmp_path / "new"
    tmp.write_text("sk-two")
    os.replace(tmp, path)
    r = store.read(str(path))
    assert (r.key, r.changed) == ("sk-two", True)
    assert "sk-two" not in repr(r)
    path.unlink()
    r = store.read(str(path))
    assert r.key is None
    assert r.changed


def test_unreadable_file(tmp_path: Path) -> None:
    d = tmp_path / "dir"
    d.mkdir()
    r = KeyStore().read(str(d))
    assert r.key is None
    assert r.problem is not None
    assert str(d) in r.problem
