"""`gptoss-operator plan` prints exactly the planner's Plan, or a refusal with exit code 3."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from gptoss_operator.api import ModelDeploymentSpec, Plan
from gptoss_operator.commands import main
from gptoss_operator.planning import plan_deployment
from gptoss_operator.planning.table import render_sizing_table

SIZING_DOC = Path(__file__).resolve().parents[2] / "docs" / "sizing.md"


def test_json_is_the_status_plan(capsys):
    assert main(["plan", "--model", "gpt-oss-120b", "--gpu", "H100-80GB", "-o", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    expected = plan_deployment(
        ModelDeploymentSpec.model_validate({"model": "gpt-oss-120b", "gpu": {"type": "H100-80GB"}})
    )
    assert isinstance(expected, Plan)
    assert out == expected.model_dump(by_alias=True, mode="json")
    assert set(out) == {
        "gpusPerReplica",
        "tensorParallelSize",
        "gpuMemoryUtilization",
        "maxModelLen",
        "kvCacheTokens",
        "image",
        "args",
        "env",
    }
    assert (out["gpusPerReplica"], out["tensorParallelSize"]) == (2, 2)
    assert Plan.model_validate(out) == expected


def test_yaml_and_options(capsys):
    argv = ["plan", "--model", "gpt-oss-20b", "--gpu", "L4", "--count", "2", "--max-model-len", "8192"]
    assert main([*argv, "--min-concurrent-sequences", "2", "-o", "yaml"]) == 0
    out = yaml.safe_load(capsys.readouterr().out)
    assert (out["tensorParallelSize"], out["maxModelLen"]) == (2, 8192)


def test_text_shows_the_budget(capsys):
    assert main(["plan", "--model", "gpt-oss-20b", "--gpu", "L4"]) == 0
    out = capsys.readouterr().out
    assert "TP 1" in out
    assert "weights" in out
    assert "--reasoning-parser openai_gptoss" in out


@pytest.mark.parametrize(
    ("argv", "reason"),
    [
        (["--gpu", "T4"], "UnsupportedGPU"),
        (["--gpu", "A10G", "--count", "1"], "InsufficientGPUMemory"),
        (["--gpu", "L4", "--min-concurrent-sequences", "64"], "ContextTooLong"),
    ],
)
def test_refusals_exit_3_with_reason_on_stderr(capsys, argv, reason):
    assert main(["plan", "--model", "gpt-oss-120b", *argv, "-o", "json"]) == 3
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith(f"{reason}: ")


def test_invalid_count_is_a_usage_error(capsys):
    assert main(["plan", "--model", "gpt-oss-120b", "--gpu", "H100-80GB", "--count", "3"]) == 2
    assert "gpu.count: " in capsys.readouterr().err


def test_console_script_subprocess():
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "gptoss_operator",
            "plan",
            "--model",
            "gpt-oss-120b",
            "--gpu",
            "A10G",
            "--count",
            "1",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 3
    assert "InsufficientGPUMemory" in proc.stderr
    assert "8 x A10G" in proc.stderr


def test_sizing_doc_matches_the_generator():
    assert SIZING_DOC.read_text() == render_sizing_table(), (
        "docs/sizing.md drifted: run `gptoss-operator plan --table > docs/sizing.md`"
    )


def test_table_flag_prints_the_doc(capsys):
    assert main(["plan", "--table"]) == 0
    assert capsys.readouterr().out == render_sizing_table()
