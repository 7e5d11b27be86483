"""``gptoss-operator plan``: print the plan the operator would write to status.plan, or its refusal.

``-f FILE`` reads ModelDeployment manifests (one or many YAML documents, ``-`` for stdin) and
plans each exactly as the operator does: the same parsing of every field it reads (source.cache,
image, vllm.extraArgs and env included) and the same settings from the environment
(``GPTOSS_IMAGE_NVIDIA``/``GPTOSS_IMAGE_AMD``), so the output is the ``status.plan`` it would write.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, get_args

from gptoss_operator.api.v1alpha1 import MODEL_NAMES, GPUType

# A refusal is an answer, not a crash: its own exit code, distinct from usage errors (2).
EXIT_REFUSED = 3


def _count(value: str) -> str | int:
    if value == "auto":
        return value
    try:
        return int(value)
    except ValueError:
        raise argparse.ArgumentTypeError("must be auto, 1, 2, 4 or 8") from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-f",
        "--filename",
        metavar="FILE",
        action="append",
        help=(
            "ModelDeployment manifest(s) to plan, one or many YAML documents; - reads stdin; "
            "repeat -f for more files"
        ),
    )
    parser.add_argument(
        "--diff",
        action="store_true",
        help=(
            "with -f: compare each object's status.plan (kubectl get -o yaml output carries it) with the "
            "plan this version writes; exit 1 when any differs (before an upgrade, docs/operator.md)"
        ),
    )
    parser.add_argument("--model", choices=MODEL_NAMES, help="gpt-oss model")
    parser.add_argument("--gpu", choices=get_args(GPUType), help="GPU type from the catalog")
    parser.add_argument(
        "--count", type=_count, default="auto", help="GPUs per replica: auto (default), 1, 2, 4 or 8"
    )
    parser.add_argument("--max-model-len", type=int, help="context length (default: the model's 131072)")
    parser.add_argument(
        "--min-concurrent-sequences", type=int, default=1, help="full-length sequences the KV cache must hold"
    )
    parser.add_argument("--gpu-memory-utilization", type=float, help="override the GPU's default utilization")
    parser.add_argument("--no-tool-calling", action="store_true", help="leave out the tool-call parser flags")
    parser.add_argument(
        "--image", help="vLLM image to plan for (default: the pinned image); its tag sets the vLLM version"
    )
    parser.add_argument(
        "--vllm-version", help="vLLM version inside --image when its tag names none (spec.vllm.version)"
    )
    parser.add_argument(
        "-o", "--output", choices=("json", "yaml", "text"), default=None, help="output format (default: text)"
    )
    parser.add_argument(
        "--table", action="store_true", help="print the sizing table for every model and GPU (docs/sizing.md)"
    )


def _spec_body(args: argparse.Namespace) -> dict[str, Any]:
    serving: dict[str, Any] = {
        "minConcurrentSequences": args.min_concurrent_sequences,
        "toolCalling": not args.no_tool_calling,
    }
    if args.max_model_len is not None:
        serving["maxModelLen"] = args.max_model_len
    if args.gpu_memory_utilization is not None:
        serving["gpuMemoryUtilization"] = args.gpu_memory_utilization
    body: dict[str, Any] = {
        "model": args.model,
        "gpu": {"type": args.gpu, "count": args.count},
        "serving": serving,
    }
    if args.image is not None:
        body["image"] = args.image
    if args.vllm_version is not None:
        body["vllm"] = {"version": args.vllm_version}
    return body


def run(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from gptoss_operator.api import ModelDeploymentSpec, describe_validation_error
    from gptoss_operator.planning.table import render_sizing_table

    if args.table:
        if args.output not in (None, "text") or args.filename is not None:
            # The table is a markdown document (docs/sizing.md); refuse rather than print
            # markdown to a caller that asked for JSON.
            print("plan: --table prints markdown only; drop -o/-f or leave out --table", file=sys.stderr)
            return 2
        print(render_sizing_table(), end="")
        return 0
    if args.filename is not None:
        if args.model is not None or args.gpu is not None:
            print("plan: give either -f FILE or --model/--gpu, not both", file=sys.stderr)
            return 2
        return _plan_manifests(args.filename, args.output or "text", diff=args.diff)
    if args.diff:
        print("plan: --diff compares manifests: give -f FILE", file=sys.stderr)
        return 2
    if args.model is None or args.gpu is None:
        print("plan: --model and --gpu are required (or use -f FILE, or --table)", file=sys.stderr)
        return 2
    try:
        spec = ModelDeploymentSpec.model_validate(_spec_body(args))
    except ValidationError as e:
        print(f"plan: invalid spec: {describe_validation_error(e)}", file=sys.stderr)
        return 2
    return _print_plans([("", spec)], args.output or "text")


def _plan_manifests(filenames: list[str], output: str, diff: bool = False) -> int:
    import yaml
    from pydantic import ValidationError

    from gptoss_operator.api import ModelDeployment, describe_validation_error
    from gptoss_operator.api.v1alpha1 import KIND
    from gptoss_operator.yaml_errors import describe_yaml_error

    docs: list[tuple[str, int, Any]] = []  # (file, document number in it, document)
    for filename in filenames:
        try:
            text = sys.stdin.read() if filename == "-" else Path(filename).read_text()
            found = _expand_lists([d for d in yaml.safe_load_all(text) if d is not None])
        except OSError as e:
            print(f"plan: cannot read {filename}: {e.strerror}", file=sys.stderr)
            return 2
        except yaml.YAMLError as e:
            print(f"plan: {filename}: {describe_yaml_error(e)}", file=sys.stderr)
            return 2
        docs += [(filename, i, doc) for i, doc in enumerate(found, 1)]
    specs = []
    stored: dict[str, Any] = {}
    for filename, i, doc in docs:
        if not isinstance(doc, dict) or doc.get("kind") != KIND:
            kind = doc.get("kind") if isinstance(doc, dict) else type(doc).__name__
            print(f"plan: {filename}: document {i} is a {kind}, not a {KIND}; skipped", file=sys.stderr)
            continue
        meta = doc.get("metadata") or {}
        name = str(
            meta.get("name") or (f"document {i}" if len(filenames) == 1 else f"{filename} document {i}")
        )
        if meta.get("namespace"):
            name = f"{meta['namespace']}/{name}"
        try:
            # As the operator parses it (controller gather): the whole object, status ignored.
            md = ModelDeployment.model_validate({k: v for k, v in doc.items() if k != "status"})
        except ValidationError as e:
            print(f"plan: {name}: invalid spec: {describe_validation_error(e)}", file=sys.stderr)
            return 2
        specs.append((name, md.spec))
        stored[name] = (doc.get("status") or {}).get("plan")
    if not specs:
        print(
            f"plan: {', '.join(filenames)} {'holds' if len(filenames) == 1 else 'hold'} no {KIND}",
            file=sys.stderr,
        )
        return 2
    if diff:
        return _diff_plans(specs, stored)
    return _print_plans(specs, output, named=len(specs) > 1)


def _diff_plans(specs: list[tuple[str, Any]], stored: dict[str, Any]) -> int:
    """One line per object (a unified diff under it when the plan changes); exit 1 if any does."""
    import difflib
    import json

    from gptoss_operator.planning.planner import Refusal, plan_deployment
    from gptoss_operator.settings import OperatorSettings

    settings = OperatorSettings.from_env().planner
    changed = refused = False
    for name, spec in specs:
        result = plan_deployment(spec, settings)
        if isinstance(result, Refusal):
            print(f"{name}: refused by this version: {result.reason}: {result.message}")
            refused = True
            continue
        new = result.model_dump(by_alias=True, mode="json")
        old = stored.get(name)
        if old is None:
            print(f"{name}: no status.plan to compare with (not planned yet, or not from the cluster)")
            changed = True
        elif old == new:
            print(f"{name}: same plan")
        else:
            changed = True
            print(f"{name}: plan changes (its pods roll):")
            before = json.dumps(old, indent=2, sort_keys=True).splitlines()
            after = json.dumps(new, indent=2, sort_keys=True).splitlines()
            for line in difflib.unified_diff(before, after, "status.plan", "new plan", lineterm="", n=1):
                print("  " + line)
    return EXIT_REFUSED if refused else (1 if changed else 0)


def _expand_lists(docs: list[Any]) -> list[Any]:
    """``kubectl get -o yaml`` of several objects is one ``kind: List`` document: its items."""
    out: list[Any] = []
    for doc in docs:
        if isinstance(doc, dict) and doc.get("kind") == "List" and isinstance(doc.get("items"), list):
            out += doc["items"]
        else:
            out.append(doc)
    return out


def _print_plans(specs: list[tuple[str, Any]], output: str, named: bool = False) -> int:
    """Plan each spec with the operator's settings; refusals go to stderr (exit 3)."""
    import json

    import yaml

    from gptoss_operator.planning.planner import Refusal, plan_deployment
    from gptoss_operator.settings import OperatorSettings

    settings = OperatorSettings.from_env().planner
    code = 0
    plans: list[tuple[str, Any, Any]] = []
    for name, spec in specs:
        result = plan_deployment(spec, settings)
        if isinstance(result, Refusal):
            print(f"{name + ': ' if named or name else ''}{result.reason}: {result.message}", file=sys.stderr)
            code = EXIT_REFUSED
        else:
            plans.append((name, spec, result))
    if output == "json":
        bodies = [{"name": n, "plan": p.model_dump(by_alias=True, mode="json")} for n, _, p in plans]
        if not named and len(plans) == 1:
            print(json.dumps(bodies[0]["plan"], indent=2))
        elif named:
            print(json.dumps(bodies, indent=2))
    elif output == "yaml":
        for n, _, p in plans:
            if named:
                print(f"---\n# {n}")
            print(yaml.safe_dump(p.model_dump(by_alias=True, mode="json"), sort_keys=False), end="")
    else:
        for i, (n, spec, p) in enumerate(plans):
            if named:
                print(("\n" if i else "") + f"# {n}")
            _print_text(spec, p, settings)
    return code


def _print_text(spec: Any, result: Any, settings: Any) -> None:
    from gptoss_operator.planning.planner import budget_for
    from gptoss_operator.planning.startup import startup_budget

    b = budget_for(spec, result.tensor_parallel_size)
    startup = startup_budget(spec, settings)
    print(
        f"{spec.model} on {spec.gpu.type}: {result.gpus_per_replica} GPU(s) per replica, TP {result.tensor_parallel_size}"
    )
    print(
        f"per GPU: {b.usable_gib:.1f} GiB usable ({result.gpu_memory_utilization:g} x {b.gpu.memory_gib:.1f} GiB) = "
        f"{b.weights_gib:.1f} weights + {b.overhead_gib:.1f} runtime + {b.kv_free_gib:.1f} KV"
    )
    print(f"KV cache: {result.kv_cache_tokens:,} tokens at maxModelLen {result.max_model_len}")
    print(
        f"{startup.explain()} (startupProbe: failureThreshold {startup.failure_threshold} x "
        f"periodSeconds {startup.period_seconds}, about {round(startup.total_seconds / 60)} min)"
    )
    print(_weights_line(spec, settings))
    print(f"image: {result.image} (vLLM {result.vllm_version})")
    print("args: " + " ".join(result.args))
    print("env: " + (" ".join(e.describe() for e in result.env) or "(none)"))


def _weights_line(spec: Any, settings: Any) -> str:
    """Where the pods get the weights (source), in words; ``--model`` in the args says the path."""
    from gptoss_operator.planning.model_profiles import model_profile
    from gptoss_operator.planning.vllm_args import model_location

    mount = settings.model_mount_path
    volume = spec.source.persistent_volume_claim
    if volume is not None:
        where = f"directory {volume.path} of " if volume.path else ""
        return (
            f"weights: {where}PersistentVolumeClaim {volume.claim_name}, mounted read-only at {mount}; "
            "no download (HF_HUB_OFFLINE=1)"
        )
    hf = spec.source.huggingface
    repo = f"{hf.repo or model_profile(spec.model).hf_repo}@{hf.revision}"
    if spec.source.cache is not None:
        return (
            f"weights: Hugging Face {repo}, downloaded once by a Job into the cache PVC, "
            f"read-only at {model_location(spec, model_profile(spec.model), settings)}"
        )
    return f"weights: Hugging Face {repo}, downloaded by each pod when it starts"
