"""`gptoss-operator plan` prints exactly the planner's Plan, or a refusal with exit code 3."""

from __future__ import annotations

import io
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
        "vllmVersion",
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
    assert "image: vllm/vllm-openai:v0.33.0 (vLLM 0.33.0)" in out


def test_image_picks_the_vllm_version(capsys):
    argv = ["plan", "--model", "gpt-oss-20b", "--gpu", "B200", "-o", "json"]
    assert main([*argv, "--image", "vllm/vllm-openai:v0.23.0"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert (out["image"], out["vllmVersion"]) == ("vllm/vllm-openai:v0.23.0", "0.23.0")
    assert {"name": "VLLM_USE_FLASHINFER_MOE_MXFP4_MXFP8", "value": "1"} in out["env"]
    assert "--moe-backend" not in out["args"]
    assert main([*argv, "--image", "registry.local/vllm@sha256:" + "c" * 64, "--vllm-version", "0.33.0"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["vllmVersion"] == "0.33.0"
    assert out["args"][-2:] == ["--moe-backend", "flashinfer_trtllm"]


def test_image_outside_the_supported_range_is_refused(capsys):
    argv = ["plan", "--model", "gpt-oss-20b", "--gpu", "L4", "--image", "vllm/vllm-openai:v0.11.2"]
    assert main(argv) == 3
    assert "UnsupportedVLLMVersion: vLLM 0.11.2" in capsys.readouterr().err


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


# ---------------------------------------------------------------------------- plan -f


def _md(name: str, **spec: object) -> dict[str, object]:
    return {
        "apiVersion": "gptoss.dev/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": name, "namespace": "llm", "uid": "u-1", "generation": 1},
        "spec": spec,
    }


REAL_SPECS = [
    _md("plain", model="gpt-oss-120b", gpu={"type": "H100-80GB"}),
    _md(
        "cached",
        model="gpt-oss-20b",
        gpu={"type": "L4"},
        serving={"maxModelLen": 32768, "toolCalling": False},
        source={"huggingface": {"revision": "abc123"}, "cache": {"size": "30Gi"}},
    ),
    _md(
        "custom",
        model="gpt-oss-120b",
        gpu={"type": "B200", "count": 2},
        image="registry.example/vllm:v0.30.1",
        vllm={
            "extraArgs": ["--enable-prefix-caching"],
            "env": [{"name": "VLLM_LOGGING_LEVEL", "value": "DEBUG"}],
        },
    ),
    _md("amd", model="gpt-oss-120b", gpu={"type": "MI300X"}, serving={"gpuMemoryUtilization": 0.92}),
]


def _status_plan(body: dict[str, object]) -> object:
    """What the operator's decide() writes to status.plan for ``body``."""
    from gptoss_operator.api import ModelDeployment
    from gptoss_operator.controller.modeldeployment.decide import decide
    from gptoss_operator.controller.modeldeployment.gathered import Gathered
    from gptoss_operator.settings import OperatorSettings

    g = Gathered(
        key=("llm", str(body["metadata"]["name"])),  # type: ignore[index]
        body=body,
        model=ModelDeployment.model_validate(body),
        spec_error=None,
        children={},
        server_pods=(),
        nodes=(),
        gpus_in_use={},
    )
    d = decide(g, OperatorSettings.from_env(), "2026-01-01T00:00:00Z")
    assert d.status.patch is not None
    return d.status.patch["plan"]


@pytest.mark.parametrize("body", REAL_SPECS, ids=lambda b: b["metadata"]["name"])
def test_plan_f_prints_what_the_operator_writes(body, tmp_path, capsys, monkeypatch):
    # The operator's image settings apply to both (a default image pinned by the environment).
    monkeypatch.setenv("GPTOSS_IMAGE_NVIDIA", "vllm/vllm-openai:v0.31.0")
    path = tmp_path / "md.yaml"
    path.write_text(yaml.safe_dump(body))
    assert main(["plan", "-f", str(path), "-o", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == _status_plan(body)


def test_plan_f_reads_many_documents(tmp_path, capsys):
    path = tmp_path / "all.yaml"
    path.write_text(yaml.safe_dump_all(REAL_SPECS))
    assert main(["plan", "-f", str(path), "-o", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [o["name"] for o in out] == [f"llm/{b['metadata']['name']}" for b in REAL_SPECS]  # type: ignore[index]
    assert [o["plan"] for o in out] == [_status_plan(b) for b in REAL_SPECS]


def test_plan_f_repeated_reads_every_file(tmp_path, capsys):
    # As kubectl's -f: each file is planned, in the order given (not only the last one).
    paths = []
    for body in REAL_SPECS[:2]:
        paths.append(tmp_path / f"{body['metadata']['name']}.yaml")  # type: ignore[index]
        paths[-1].write_text(yaml.safe_dump(body))
    assert main(["plan", "-f", str(paths[0]), "-f", str(paths[1]), "-o", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [o["name"] for o in out] == [f"llm/{b['metadata']['name']}" for b in REAL_SPECS[:2]]  # type: ignore[index]
    assert [o["plan"] for o in out] == [_status_plan(b) for b in REAL_SPECS[:2]]


def test_plan_f_names_an_unnamed_document_by_its_file_when_there_are_several(tmp_path, capsys):
    unnamed = {k: v for k, v in REAL_SPECS[0].items() if k != "metadata"}
    first, second = tmp_path / "a.yaml", tmp_path / "b.yaml"
    first.write_text(yaml.safe_dump(REAL_SPECS[0]))
    second.write_text(yaml.safe_dump(unnamed))
    assert main(["plan", "-f", str(first), "-f", str(second), "-o", "json"]) == 0
    assert [o["name"] for o in json.loads(capsys.readouterr().out)] == [
        f"llm/{REAL_SPECS[0]['metadata']['name']}",  # type: ignore[index]
        f"{second} document 1",
    ]


def test_plan_f_refusal_names_the_object_and_exits_3(tmp_path, capsys):
    path = tmp_path / "md.yaml"
    bad = _md(
        "tight", model="gpt-oss-120b", gpu={"type": "H100-80GB", "count": 1}, serving={"maxModelLen": 8192}
    )
    path.write_text(yaml.safe_dump_all([REAL_SPECS[0], bad]))
    assert main(["plan", "-f", str(path), "-o", "json"]) == 3
    captured = capsys.readouterr()
    assert [o["name"] for o in json.loads(captured.out)] == ["llm/plain"]
    assert captured.err.startswith("llm/tight: InsufficientGPUMemory: ")
    assert "serving.gpuMemoryUtilization 0.94" in captured.err


def test_plan_f_text_prints_the_startup_budget(tmp_path, capsys):
    path = tmp_path / "md.yaml"
    path.write_text(yaml.safe_dump(REAL_SPECS[0]))
    assert main(["plan", "-f", str(path), "-o", "text"]) == 0
    out = capsys.readouterr().out
    assert "startup budget 6500 s = download 5224 s + load 676 s + engine init 600 s" in out
    assert "failureThreshold 650 x periodSeconds 10, about 108 min" in out


def test_table_with_json_output_is_refused_not_markdown(capsys):
    assert main(["plan", "--table", "-o", "json"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "--table prints markdown only" in captured.err


def test_a_yaml_syntax_error_is_one_line(tmp_path, capsys):
    path = tmp_path / "md.yaml"
    path.write_text("spec:\n  model: [gpt-oss-20b,\n  gpu: {type: L4}\n")
    assert main(["plan", "-f", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "invalid YAML at line 4, column 1" in err


def test_plan_piped_into_head_prints_no_traceback(tmp_path):
    path = tmp_path / "all.yaml"
    path.write_text(yaml.safe_dump_all(REAL_SPECS * 50))
    proc = subprocess.run(
        f"{sys.executable} -m gptoss_operator plan -f {path} -o text | head -1",
        shell=True,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.stdout == "# llm/plain\n"
    assert "Traceback" not in proc.stderr
    assert "BrokenPipeError" not in proc.stderr


def test_plan_f_reads_kubectl_list_output_with_status(capsys, monkeypatch):
    # `kubectl get md -A -o yaml | gptoss-operator plan -f -` (docs/operator.md, upgrading).
    items = [b | {"status": {"phase": "Ready", "plan": {"gpusPerReplica": 99}}} for b in REAL_SPECS[:2]]
    monkeypatch.setattr(
        sys, "stdin", io.StringIO(yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": items}))
    )
    assert main(["plan", "-f", "-", "-o", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [o["name"] for o in out] == ["llm/plain", "llm/cached"]
    assert [o["plan"] for o in out] == [_status_plan(b) for b in REAL_SPECS[:2]]


def test_plan_diff_compares_each_status_plan(capsys, monkeypatch):
    same = REAL_SPECS[0] | {"status": {"plan": _status_plan(REAL_SPECS[0])}}
    stale_plan = dict(_status_plan(REAL_SPECS[1]))  # type: ignore[call-overload]
    stale_plan["image"] = "vllm/vllm-openai:v0.15.1"
    stale = REAL_SPECS[1] | {"status": {"plan": stale_plan}}
    listing = yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": [same, stale]})
    monkeypatch.setattr(sys, "stdin", io.StringIO(listing))
    assert main(["plan", "-f", "-", "--diff"]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "llm/plain: same plan"
    assert out[1] == "llm/cached: plan changes (its pods roll):"
    assert '  -  "image": "vllm/vllm-openai:v0.15.1",' in out
    monkeypatch.setattr(sys, "stdin", io.StringIO(yaml.safe_dump(same)))
    assert main(["plan", "-f", "-", "--diff"]) == 0
