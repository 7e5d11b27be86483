"""Argo CD support files, generated from the Lua health checks in deploy/argocd/health/.

The Lua files are the one source. Argo CD runs each health check as one self-contained script
(it cannot load another file), so the part both kinds share, health/common.lua, is put in front of
each kind's check here: after the kind's leading comment, before its body. ``python -m
devtools.argocd`` writes the two ways to ship the result (a unit test fails when the committed
files differ from what this renders):

- deploy/argocd/argocd-cm.yaml: the keys to merge into the ``argocd-cm`` ConfigMap;
- deploy/argocd/values-argo-cd.yaml: the same keys as values of the argo-cd Helm chart
  (``configs.cm``).

Plus the argocd CLI built from its Go module (kind/build-argocd.sh), which evaluates the checks
with Argo CD's own Lua runtime: ``argocd admin settings resource-overrides health``.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from devtools.cluster import REPO

ARGOCD_DIR = REPO / "deploy" / "argocd"
COMMON = ARGOCD_DIR / "health" / "common.lua"
HEALTH_CHECKS = {
    "gptoss.dev_ModelDeployment": ARGOCD_DIR / "health" / "modeldeployment.lua",
    "gptoss.dev_RoutePolicy": ARGOCD_DIR / "health" / "routepolicy.lua",
}
CM_FILE = ARGOCD_DIR / "argocd-cm.yaml"
VALUES_FILE = ARGOCD_DIR / "values-argo-cd.yaml"
HEADER = "# Generated from deploy/argocd/health/*.lua (common.lua + each kind) by `python -m devtools.argocd`; do not edit.\n"


def health_script(check: Path) -> str:
    """The complete Lua script of one kind: its leading comment, common.lua, then its body."""
    lines = check.read_text().splitlines(keepends=True)
    head = 0
    while head < len(lines) and lines[head].startswith("--"):
        head += 1
    return "".join(lines[:head]) + COMMON.read_text() + "".join(lines[head:])


def _block(text: str, indent: int) -> str:
    pad = " " * indent
    return "".join(f"{pad}{line}\n" if line else "\n" for line in text.splitlines())


def _keys(indent: int, quote: bool) -> str:
    out = ""
    for group_kind, path in HEALTH_CHECKS.items():
        key = f"resource.customizations.health.{group_kind}"
        out += (
            " " * indent + (f'"{key}"' if quote else key) + ": |\n" + _block(health_script(path), indent + 2)
        )
    return out


def render_cm() -> str:
    return (
        HEADER
        + "# Merge these keys into the argocd-cm ConfigMap of your Argo CD installation\n"
        + "# (kubectl patch, kustomize, or configs.cm of the argo-cd chart: values-argo-cd.yaml).\n"
        + "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: argocd-cm\n  namespace: argocd\n"
        + "  labels:\n    app.kubernetes.io/name: argocd-cm\n    app.kubernetes.io/part-of: argocd\n"
        + "data:\n"
        + _keys(2, quote=False)
    )


def render_values() -> str:
    return (
        HEADER
        + "# Values for the argo-cd Helm chart: helm upgrade --install argocd argo/argo-cd -f this-file\n"
        + "configs:\n  cm:\n"
        + _keys(4, quote=True)
    )


def build_argocd() -> Path:
    """The argocd CLI (built on first use, then cached; see kind/build-argocd.sh)."""
    out = subprocess.run(
        ["bash", str(REPO / "kind" / "build-argocd.sh")], capture_output=True, text=True, check=False
    )
    if out.returncode != 0:
        raise RuntimeError(f"kind/build-argocd.sh failed ({out.returncode}):\n{out.stderr[-4000:]}")
    return Path(out.stdout.strip().splitlines()[-1]) / "argocd"


def health(argocd: Path, resource: Path, argocd_cm: Path = CM_FILE) -> tuple[str, str]:
    """(status, message) of one resource file, as Argo CD's evaluator computes it."""
    out = subprocess.run(
        [
            str(argocd),
            "admin",
            "settings",
            "resource-overrides",
            "health",
            str(resource),
            "--argocd-cm-path",
            str(argocd_cm),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    if out.returncode != 0:
        raise RuntimeError(f"argocd health {resource} failed ({out.returncode}): {out.stderr}{out.stdout}")
    fields = dict(
        line.split(":", 1) for line in out.stdout.splitlines() if line.startswith(("STATUS:", "MESSAGE:"))
    )
    return fields.get("STATUS", "").strip(), fields.get("MESSAGE", "").strip()


if __name__ == "__main__":
    CM_FILE.write_text(render_cm())
    VALUES_FILE.write_text(render_values())
    print(f"wrote {CM_FILE.relative_to(REPO)} and {VALUES_FILE.relative_to(REPO)}")
