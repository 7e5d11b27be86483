"""``gptoss-operator plan``: print the plan the operator would write to status.plan, or its refusal."""

from __future__ import annotations

import argparse
import sys
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
        "-o", "--output", choices=("json", "yaml", "text"), default="text", help="output format"
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
    return {"model": args.model, "gpu": {"type": args.gpu, "count": args.count}, "serving": serving}


def run(args: argparse.Namespace) -> int:
    import json

    import yaml
    from pydantic import ValidationError

    from gptoss_operator.api import ModelDeploymentSpec, describe_validation_error
    from gptoss_operator.planning.planner import Refusal, budget_for, plan_deployment
    from gptoss_operator.planning.table import render_sizing_table

    if args.table:
        print(render_sizing_table(), end="")
        return 0
    if args.model is None or args.gpu is None:
        print("plan: --model and --gpu are required (or use --table)", file=sys.stderr)
        return 2
    try:
        spec = ModelDeploymentSpec.model_validate(_spec_body(args))
    except ValidationError as e:
        print(f"plan: invalid spec: {describe_validation_error(e)}", file=sys.stderr)
        return 2
    result = plan_deployment(spec)
    if isinstance(result, Refusal):
        print(f"{result.reason}: {result.message}", file=sys.stderr)
        return EXIT_REFUSED
    body = result.model_dump(by_alias=True, mode="json")
    if args.output == "json":
        print(json.dumps(body, indent=2))
    elif args.output == "yaml":
        print(yaml.safe_dump(body, sort_keys=False), end="")
    else:
        b = budget_for(spec, result.tensor_parallel_size)
        print(
            f"{spec.model} on {spec.gpu.type}: {result.gpus_per_replica} GPU(s) per replica, TP {result.tensor_parallel_size}"
        )
        print(
            f"per GPU: {b.usable_gib:.1f} GiB usable ({result.gpu_memory_utilization:g} x {b.gpu.memory_gib:.1f} GiB) = "
            f"{b.weights_gib:.1f} weights + {b.overhead_gib:.1f} runtime + {b.kv_free_gib:.1f} KV"
        )
        print(f"KV cache: {result.kv_cache_tokens:,} tokens at maxModelLen {result.max_model_len}")
        print(f"image: {result.image}")
        print("args: " + " ".join(result.args))
        print("env: " + (" ".join(f"{e.name}={e.value}" for e in result.env) or "(none)"))
    return 0
