"""The release workflow (.github/workflows/release.yaml), linted by actionlint built from its
Go module (kind/build.sh) with shellcheck for the `run:` scripts, and read for what it must do."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from devtools.cluster import REPO

WORKFLOW = REPO / ".github" / "workflows" / "release.yaml"


@pytest.fixture(scope="module")
def actionlint() -> list[str]:
    shellcheck = shutil.which("shellcheck")
    if shellcheck is None:
        pytest.fail("shellcheck is missing: apt-get install shellcheck (.ci/run does)", pytrace=False)
    out = subprocess.run(
        [str(REPO / "kind" / "cluster"), "bindir"], capture_output=True, text=True, check=True, timeout=3600
    )
    binary = Path(out.stdout.strip().splitlines()[-1]) / "actionlint"
    assert binary.exists(), f"kind/build.sh did not build {binary}"
    return [str(binary), "-no-color", f"-shellcheck={shellcheck}"]


def test_release_workflow_passes_actionlint(actionlint: list[str]) -> None:
    out = subprocess.run([*actionlint, str(WORKFLOW)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr


def test_actionlint_catches_a_broken_workflow(actionlint: list[str], tmp_path: Path) -> None:
    # The lint above means something only if the same command fails on a real mistake.
    broken = tmp_path / ".github" / "workflows" / "release.yaml"
    broken.parent.mkdir(parents=True)
    text = WORKFLOW.read_text().replace("${{ matrix.file }}", "${{ matrix.dockerfile }}", 1)
    text = text.replace('chart_version="${VERSION#v}"', "chart_version=$(echo ${VERSION#v})", 1)
    broken.write_text(text)
    out = subprocess.run([*actionlint, str(broken)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 1, out.stdout + out.stderr
    assert 'property "dockerfile" is not defined' in out.stdout
    assert "shellcheck reported issue" in out.stdout


def _steps(workflow: dict[str, Any], job: str) -> list[dict[str, Any]]:
    steps: list[dict[str, Any]] = workflow["jobs"][job]["steps"]
    return steps


def test_release_workflow_builds_both_images_and_pushes_the_chart() -> None:
    workflow = yaml.safe_load(WORKFLOW.read_text())
    # YAML 1.1 reads the bare key `on` as True.
    assert workflow[True]["push"]["tags"] == ["v*.*.*"]
    images = workflow["jobs"]["images"]
    assert images["permissions"] == {"contents": "read", "packages": "write"}
    files = {entry["file"] for entry in images["strategy"]["matrix"]["include"]}
    assert files == {"runtime-image/operator.Dockerfile", "runtime-image/vllm.Dockerfile"}
    for path in files:
        assert (REPO / path).exists()
    uses = [step.get("uses", "") for step in _steps(workflow, "images")]
    assert "docker/setup-buildx-action@v3" in uses
    build = next(
        s for s in _steps(workflow, "images") if s.get("uses", "").startswith("docker/build-push-action")
    )
    assert "REVISION=${{ github.sha }}" in build["with"]["build-args"]
    assert workflow["env"]["REGISTRY"] == "ghcr.io"
    chart_runs = "\n".join(step.get("run", "") for step in _steps(workflow, "chart"))
    assert "helm package charts/gpt-oss-operator" in chart_runs
    assert 'helm push dist/gpt-oss-operator-"${VERSION#v}".tgz "oci://${REGISTRY}/' in chart_runs
    assert workflow["jobs"]["chart"]["needs"] == "images"
