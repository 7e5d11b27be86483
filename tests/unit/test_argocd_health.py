"""The Argo CD health checks (deploy/argocd/health/*.lua), run by Argo CD's own evaluator.

The argocd CLI is built from its Go module (kind/build-argocd.sh) and evaluates each status
fixture with `argocd admin settings resource-overrides health --argocd-cm-path`, exactly as an
Argo CD application controller would with the shipped argocd-cm. The fixtures cover every
condition and reason the operator writes (docs/api.md); tests/cluster/test_argocd_live.py does
the same for objects the running operator reconciled.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest
import yaml

from devtools.argocd import (
    CM_FILE,
    COMMON,
    HEALTH_CHECKS,
    VALUES_FILE,
    build_argocd,
    health,
    health_script,
    render_cm,
    render_values,
)
from gptoss_operator.status import FAILING_WAIT_REASONS

Fixture = tuple[str, dict[str, Any], str, str]  # id, object, expected status, message part


def _cond(type_: str, status: str, reason: str, message: str = "") -> dict[str, Any]:
    return {"type": type_, "status": status, "reason": reason, "message": message}


def md(
    conditions: list[dict[str, Any]] | None,
    phase: str = "",
    *,
    replicas: int = 1,
    generation: int = 2,
    observed: int | None = 2,
) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "gptoss.dev/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": "oss-20b", "namespace": "llm", "generation": generation},
        "spec": {"model": "gpt-oss-20b", "gpu": {"type": "L4"}, "replicas": replicas},
    }
    if conditions is not None:
        obj["status"] = {"conditions": conditions, "phase": phase}
        if observed is not None:
            obj["status"]["observedGeneration"] = observed
    return obj


def rp(conditions: list[dict[str, Any]] | None, *, generation: int = 1, observed: int = 1) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "gptoss.dev/v1alpha1",
        "kind": "RoutePolicy",
        "metadata": {"name": "chat", "namespace": "llm", "generation": generation},
        "spec": {"routes": [{"model": "gpt-oss-20b", "backends": [{"name": "local"}]}]},
    }
    if conditions is not None:
        obj["status"] = {"observedGeneration": observed, "conditions": conditions}
    return obj


PLANNED = _cond("Planned", "True", "Planned", "1x L4, TP 1")
WEIGHTS_OK = _cond("WeightsReady", "True", "Downloaded", "weights cached")
NOT_DEGRADED = _cond("Degraded", "False", "AsExpected")
SERVING = _cond("Ready", "True", "Serving", "1/1 replicas serve gpt-oss-20b")
COMPLETE = _cond("Progressing", "False", "Complete", "1 replicas up to date")


def _refused(reason: str) -> Fixture:
    message = f"{reason} explained"
    return (
        f"md-planned-false-{reason}",
        md(
            [
                _cond("Planned", "False", reason, message),
                _cond("WeightsReady", "False", "NotPlanned"),
                _cond("Progressing", "False", "NotPlanned"),
                _cond("Ready", "False", "NotPlanned"),
                _cond("Degraded", "True", reason, message),
            ],
            "Failed",
        ),
        "Degraded",
        f"{reason}: {message}",
    )


def _degraded(reason: str, phase: str = "Degraded") -> Fixture:
    return (
        f"md-degraded-{reason}",
        md(
            [
                PLANNED,
                WEIGHTS_OK,
                _cond("Progressing", "True", "RollingOut", "0 of 1 replicas updated"),
                _cond("Ready", "False", "Starting", "0/1 replicas ready"),
                _cond("Degraded", "True", reason, f"1 vLLM pods are in {reason}"),
            ],
            phase,
        ),
        "Degraded",
        f"{reason}: 1 vLLM pods are in {reason}",
    )


MODEL_DEPLOYMENT_FIXTURES: list[Fixture] = [
    ("md-no-status", md(None), "Progressing", "Waiting for the operator to report status"),
    (
        "md-generation-not-observed",
        md([PLANNED, WEIGHTS_OK, COMPLETE, SERVING, NOT_DEGRADED], "Ready", generation=3, observed=2),
        "Progressing",
        "Waiting for the operator to observe generation 3",
    ),
    (
        "md-no-observed-generation",
        md([PLANNED, WEIGHTS_OK, COMPLETE, SERVING, NOT_DEGRADED], "Ready", observed=None),
        "Progressing",
        "observe generation 2",
    ),
    (
        "md-ready",
        md([PLANNED, WEIGHTS_OK, COMPLETE, SERVING, NOT_DEGRADED], "Ready"),
        "Healthy",
        "Serving: 1/1",
    ),
    (
        "md-ready-no-cache",
        md(
            [PLANNED, _cond("WeightsReady", "True", "DownloadAtStart"), COMPLETE, SERVING, NOT_DEGRADED],
            "Ready",
        ),
        "Healthy",
        "Serving",
    ),
    (
        "md-rolling-out-while-serving",
        md(
            [
                PLANNED,
                WEIGHTS_OK,
                _cond("Progressing", "True", "RollingOut", "1 of 2"),
                SERVING,
                NOT_DEGRADED,
            ],
            "Ready",
        ),
        "Progressing",
        "RollingOut: 1 of 2",
    ),
    (
        "md-creating",
        md(
            [
                PLANNED,
                WEIGHTS_OK,
                _cond("Progressing", "True", "Creating", "creating the vLLM Deployment"),
                _cond("Ready", "False", "Starting", "0/1 replicas ready"),
                NOT_DEGRADED,
            ],
            "Pending",
        ),
        "Progressing",
        "Creating",
    ),
    (
        "md-starting",
        md(
            [
                PLANNED,
                WEIGHTS_OK,
                COMPLETE,
                _cond("Ready", "False", "Starting", "0/1 replicas ready"),
                NOT_DEGRADED,
            ],
            "Starting",
        ),
        "Progressing",
        "Starting: 0/1 replicas ready",
    ),
    (
        "md-downloading",
        md(
            [
                PLANNED,
                _cond("WeightsReady", "False", "Downloading", "download Job oss-20b-download running"),
                _cond(
                    "Progressing",
                    "False",
                    "WaitingForWeights",
                    "the Deployment starts once the weights are cached",
                ),
                _cond("Ready", "False", "Starting", "0/1 replicas ready"),
                NOT_DEGRADED,
            ],
            "Downloading",
        ),
        "Progressing",
        "Downloading: download Job",
    ),
    (
        "md-download-failed",
        md(
            [
                PLANNED,
                _cond("WeightsReady", "False", "DownloadFailed", "the download Job failed"),
                _cond("Progressing", "False", "WaitingForWeights"),
                _cond("Ready", "False", "Starting"),
                _cond("Degraded", "True", "DownloadFailed", "the download Job failed"),
            ],
            "Failed",
        ),
        "Degraded",
        "DownloadFailed: the download Job failed",
    ),
    (
        "md-scaled-to-zero",
        md(
            [
                PLANNED,
                WEIGHTS_OK,
                COMPLETE,
                _cond("Ready", "False", "ScaledToZero", "spec.replicas is 0"),
                NOT_DEGRADED,
            ],
            "ScaledToZero",
            replicas=0,
        ),
        "Suspended",
        "ScaledToZero: spec.replicas is 0",
    ),
    (
        "md-scaled-to-zero-but-refused",
        md(
            [
                _cond("Planned", "False", "UnsupportedGPU", "T4 cannot run it"),
                _cond("Ready", "False", "NotPlanned"),
                _cond("Degraded", "True", "UnsupportedGPU", "T4 cannot run it"),
            ],
            "Failed",
            replicas=0,
        ),
        "Degraded",
        "UnsupportedGPU",
    ),
    *[
        _refused(r)
        for r in (
            "InvalidSpec",
            "UnsupportedGPU",
            "InsufficientGPUMemory",
            "ContextTooLong",
            "UnsupportedVLLMVersion",
        )
    ],
    *[_degraded(r) for r in sorted(FAILING_WAIT_REASONS)],
    _degraded("ApplyFailed"),
    _degraded("ProgressDeadlineExceeded"),
    # Waiting for GPU nodes with none serving: phase Pending, but Degraded=True says why.
    _degraded("InsufficientGPU", phase="Pending"),
    _degraded("Unschedulable", phase="Pending"),
]

RP_SERVING = _cond("Ready", "True", "Serving", "2 router pods ready")


def _rp_backend(reason: str, expected: str) -> Fixture:
    return (
        f"rp-backend-{reason}",
        rp([RP_SERVING, _cond("Degraded", "True", reason, f"route gpt-oss-20b backend local: {reason}")]),
        expected,
        f"{reason}: route gpt-oss-20b backend local",
    )


ROUTE_POLICY_FIXTURES: list[Fixture] = [
    ("rp-no-status", rp(None), "Progressing", "Waiting for the operator to report status"),
    (
        "rp-generation-not-observed",
        rp([RP_SERVING, NOT_DEGRADED], generation=2, observed=1),
        "Progressing",
        "observe generation 2",
    ),
    ("rp-serving", rp([RP_SERVING, NOT_DEGRADED]), "Healthy", "Serving: 2 router pods ready"),
    (
        "rp-router-starting",
        rp([_cond("Ready", "False", "RouterStarting", "no router pod is ready"), NOT_DEGRADED]),
        "Progressing",
        "RouterStarting",
    ),
    (
        "rp-scaled-to-zero",
        rp([_cond("Ready", "False", "ScaledToZero", "router.replicas is 0"), NOT_DEGRADED]),
        "Suspended",
        "ScaledToZero",
    ),
    *[
        _rp_backend(r, "Degraded")
        for r in ("ModelDeploymentNotFound", "ServiceNotFound", "SecretNotFound", "SecretKeyMissing")
    ],
    _rp_backend("ModelDeploymentNotReady", "Progressing"),
    # Its model is off on purpose (Suspended itself): Progressing would last until a scale-up.
    _rp_backend("ModelDeploymentScaledToZero", "Suspended"),
    (
        "rp-no-ready-backend-secret",
        rp(
            [
                _cond("Ready", "False", "NoReadyBackend", "route gpt-oss-20b has no ready backend"),
                _cond("Degraded", "True", "SecretNotFound", "secret provider-key not found"),
            ]
        ),
        "Degraded",
        "SecretNotFound",
    ),
    (
        "rp-no-ready-backend-model-starting",
        rp(
            [
                _cond("Ready", "False", "NoReadyBackend", "route gpt-oss-20b has no ready backend"),
                _cond("Degraded", "True", "ModelDeploymentNotReady", "oss-20b is Downloading"),
            ]
        ),
        "Progressing",
        "ModelDeploymentNotReady",
    ),
    (
        "rp-no-ready-backend-alone",
        rp(
            [
                _cond("Ready", "False", "NoReadyBackend", "route gpt-oss-20b has no ready backend"),
                NOT_DEGRADED,
            ]
        ),
        "Degraded",
        "NoReadyBackend",
    ),
    *[
        (
            f"rp-{reason}",
            rp([_cond("Ready", "False", reason, "bad"), _cond("Degraded", "True", reason, "bad")]),
            "Degraded",
            f"{reason}: bad",
        )
        for reason in ("InvalidSpec", "ApplyFailed")
    ],
]

# The reasons docs/api.md lists for a RoutePolicy; every one must be among the fixtures.
RP_DOC_REASONS = {
    "Serving", "InvalidSpec", "ScaledToZero", "RouterStarting", "NoReadyBackend", "ApplyFailed", "AsExpected",
    "ModelDeploymentNotFound", "ModelDeploymentNotReady", "ModelDeploymentScaledToZero", "ServiceNotFound",
    "SecretNotFound", "SecretKeyMissing",
}  # fmt: skip
# ...and for a ModelDeployment (docs/api.md, operator/gptoss_operator/status.py).
MD_DOC_REASONS = {
    "Planned", "InvalidSpec", "UnsupportedGPU", "InsufficientGPUMemory", "ContextTooLong",
    "UnsupportedVLLMVersion", "DownloadAtStart", "Downloaded", "Downloading", "DownloadFailed", "NotPlanned",
    "Creating", "RollingOut", "Complete", "InsufficientGPU", "ProgressDeadlineExceeded", "WaitingForWeights",
    "Serving", "ScaledToZero", "Starting", "ApplyFailed", "Unschedulable", "AsExpected", *FAILING_WAIT_REASONS,
}  # fmt: skip


def _reasons(fixtures: list[Fixture]) -> set[str]:
    return {c["reason"] for _, obj, _, _ in fixtures for c in obj.get("status", {}).get("conditions", [])}


@pytest.fixture(scope="module")
def argocd() -> Path:
    return build_argocd()


def test_fixtures_cover_every_documented_reason() -> None:
    assert MD_DOC_REASONS - _reasons(MODEL_DEPLOYMENT_FIXTURES) == set()
    assert RP_DOC_REASONS - _reasons(ROUTE_POLICY_FIXTURES) == set()


def test_shipped_config_is_generated_from_the_lua() -> None:
    assert CM_FILE.read_text() == render_cm(), "run: python -m devtools.argocd"
    assert VALUES_FILE.read_text() == render_values(), "run: python -m devtools.argocd"


@pytest.mark.parametrize("check", sorted(HEALTH_CHECKS.values()), ids=lambda p: p.name)
def test_each_check_is_its_comment_then_the_shared_part_then_its_body(check: Path) -> None:
    text, common = check.read_text(), COMMON.read_text()
    comment = "".join(itertools.takewhile(lambda line: line.startswith("--"), text.splitlines(True)))
    assert comment.startswith("-- Argo CD health of a gptoss.dev")
    assert health_script(check) == comment + common + text[len(comment) :]
    assert "local function" not in text  # the helpers live in common.lua only


@pytest.mark.parametrize(
    ("obj", "expected", "message"),
    [
        pytest.param(obj, status, msg, id=name)
        for name, obj, status, msg in MODEL_DEPLOYMENT_FIXTURES + ROUTE_POLICY_FIXTURES
    ],
)
def test_health(argocd: Path, tmp_path: Path, obj: dict[str, Any], expected: str, message: str) -> None:
    resource = tmp_path / "resource.yaml"
    resource.write_text(yaml.safe_dump(obj))
    status, said = health(argocd, resource)
    assert (status, message in said) == (expected, True), f"{status}: {said}"


def test_values_file_evaluates_the_same(argocd: Path, tmp_path: Path) -> None:
    # The chart values are the same keys: an argocd-cm built from them gives the same verdicts.
    values = yaml.safe_load(VALUES_FILE.read_text())
    cm = tmp_path / "argocd-cm.yaml"
    cm.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": "argocd-cm"},
                "data": values["configs"]["cm"],
            }
        )
    )
    for name, obj, expected, _ in (MODEL_DEPLOYMENT_FIXTURES[3], ROUTE_POLICY_FIXTURES[5]):
        resource = tmp_path / f"{name}.yaml"
        resource.write_text(yaml.safe_dump(obj))
        assert health(argocd, resource, cm)[0] == expected


def test_example_application_syncs_server_side_in_waves() -> None:
    apps = list(yaml.safe_load_all((CM_FILE.parents[2] / "examples" / "argocd-application.yaml").read_text()))
    assert [a["kind"] for a in apps] == ["Application", "Application"]
    waves = [int(a["metadata"]["annotations"]["argocd.argoproj.io/sync-wave"]) for a in apps]
    assert waves[0] < waves[1], "the operator's chart (and its CRDs) before the models"
    assert apps[0]["spec"]["source"]["chart"] == "gpt-oss-operator"
    for app in apps:
        assert "ServerSideApply=true" in app["spec"]["syncPolicy"]["syncOptions"]
    models = apps[1]["spec"]["source"]
    for name in models["directory"]["include"].strip("{}").split(","):
        assert (CM_FILE.parents[2] / models["path"] / name).exists(), name
