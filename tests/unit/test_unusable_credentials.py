"""Credentials that cannot be used end a command with one line and exit code 1: no traceback,
and no operator that retries its login every minute forever."""

from __future__ import annotations

from pathlib import Path

import pytest

from gptoss_operator.commands import main

COMMANDS = [
    ["run", "--metrics-port", "0", "--liveness-port", "0"],
    ["check-operator", "--namespace", "gptoss-system", "--service", "gptoss-metrics", "--wait", "0"],
]


@pytest.mark.parametrize("argv", COMMANDS, ids=lambda a: a[0])
def test_a_kubeconfig_that_is_not_there(argv: list[str], tmp_path: Path, monkeypatch, capsys) -> None:
    missing = tmp_path / "no-such-kubeconfig"
    monkeypatch.setenv("KUBECONFIG", str(missing))
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1, err
    assert err.startswith(f"gptoss-operator {argv[0]}: cannot use kubeconfig {missing}: FileNotFoundError")


@pytest.mark.parametrize("argv", COMMANDS, ids=lambda a: a[0])
def test_outside_a_pod_without_a_kubeconfig(argv: list[str], tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.kube/config
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1
    assert err.startswith(f"gptoss-operator {argv[0]}: ")
    assert "kubeconfig" in err
