"""`python -m devtools.operator_image` before it builds anything: its arguments and the tools it
needs. The build itself runs in tests/cluster/test_real_node.py (the whole command) and
tests/cluster/test_operator_image.py (its build step)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from devtools.cluster import REPO
from devtools.operator_image import CHART, chart_image


def _command(*args: str, path: str) -> subprocess.CompletedProcess[str]:
    # COLUMNS: argparse wraps help at the terminal's width, breaking long words at hyphens.
    return subprocess.run(
        [sys.executable, "-m", "devtools.operator_image", *args],
        cwd=REPO, env=os.environ | {"PATH": path, "COLUMNS": "200"},
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip


def test_missing_tools_fail_in_one_line_naming_the_debian_packages(tmp_path: Path) -> None:
    # A PATH with podman only: mmdebstrap and runc are missing.
    podman = shutil.which("podman")
    bindir = tmp_path / "bin"
    bindir.mkdir()
    if podman:
        (bindir / "podman").symlink_to(podman)
    else:
        (bindir / "podman").write_text("#!/bin/sh\n")
        (bindir / "podman").chmod(0o755)
    output = tmp_path / "operator-image.tar"
    proc = _command("--output", str(output), path=str(bindir))
    assert proc.returncode == 1, proc
    assert proc.stdout == ""
    assert proc.stderr.splitlines() == [
        "error: mmdebstrap, runc not found: install the Debian packages (apt-get install mmdebstrap runc)"
    ]
    assert not output.exists()


def test_an_output_that_cannot_be_written_fails_before_the_build(tmp_path: Path) -> None:
    output = tmp_path / "missing" / "operator-image.tar"
    proc = _command("--output", str(output), path=os.environ["PATH"])
    assert proc.returncode == 1, proc
    assert proc.stderr.splitlines() == [f"error: {output.parent} is not a directory"]
    proc = _command("--output", str(tmp_path), path=os.environ["PATH"])
    assert proc.returncode == 1, proc
    assert proc.stderr.splitlines() == [f"error: {tmp_path} is a directory; --output names the archive file"]


def test_the_default_tag_is_the_image_the_chart_runs() -> None:
    # The chart's pod finds the imported image only under exactly this name (pull policy
    # IfNotPresent, and a real node here never pulls).
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    expected = f"{values['image']['repository']}:{values['image']['tag'] or chart['appVersion']}"
    assert chart_image() == expected
    proc = _command("--help", path=os.environ["PATH"])
    assert proc.returncode == 0, proc
    assert f"(default: {expected}," in proc.stdout
