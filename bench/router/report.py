"""Markdown table and PNG plot from bench/router/run.py's results.json."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def _added(results: dict[str, Any], direct: dict[str, Any], key: str, metric: str, q: str) -> float | None:
    r, d = results.get(key), direct.get(key)
    if not r or not d or not r["requests"]:
        return None
    return float(r[metric][q]) - float(d[metric][q])


def _fmt(v: float | None, digits: int = 2) -> str:
    return "n/a" if v is None else f"{v:.{digits}f}"


def write_report(data: dict[str, Any], out: Path) -> None:
    targets = data["targets"]
    direct_name = next(n for n in targets if n.startswith("direct"))
    direct = targets[direct_name]["results"]
    concs = sorted({int(k.split("-")[1]) for k in direct if k.startswith("plain-")})
    lines = [
        "| target | conc | RPS | p50 ms | p99 ms | added p50 ms | added p99 ms | stream TTFT p50 ms |"
        " added TTFT p50 ms | added TTFT p99 ms | RPS per core | errors |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, t in targets.items():
        res = t["results"]
        base = res.get("baseline", direct)  # the direct run measured right before this target's
        for c in concs:
            plain, stream = res.get(f"plain-{c}"), res.get(f"stream-{c}")
            if not plain or not stream:
                continue
            is_direct = name == direct_name
            lines.append(
                f"| {name} | {c} | {plain['rps']:.0f} | {plain['latency_ms']['p50']:.2f} | "
                f"{plain['latency_ms']['p99']:.2f} | "
                f"{'-' if is_direct else _fmt(_added(res, base, f'plain-{c}', 'latency_ms', 'p50'))} | "
                f"{'-' if is_direct else _fmt(_added(res, base, f'plain-{c}', 'latency_ms', 'p99'))} | "
                f"{stream['ttft_ms']['p50']:.2f} | "
                f"{'-' if is_direct else _fmt(_added(res, base, f'stream-{c}', 'ttft_ms', 'p50'))} | "
                f"{'-' if is_direct else _fmt(_added(res, base, f'stream-{c}', 'ttft_ms', 'p99'))} | "
                f"{'-' if is_direct else _fmt(plain.get('rps_per_core'), 0)} | "
                f"{plain['errors'] + stream['errors']} |"
            )
    lines += [
        "",
        "| target | streams held | errors | RSS idle MB | RSS with all streams open MB |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, t in targets.items():
        h = t["results"].get("hold")
        if h and name != direct_name:
            lines.append(
                f"| {name} | {h.get('hold_ready', 0)} | {h['errors']} | {h['rss_idle_mb']:.0f} | {h['rss_mb']:.0f} |"
            )
    cond = data["conditions"]
    lines += [
        "",
        f"Conditions: {cond['cpus']} CPUs shared by load generator, simulator and target; "
        f"{cond['seconds_per_run']:g} s per run after 1 s warm-up; simulator {cond['simulator']}. "
        'Proxies run one at a time; "added" subtracts a direct run made just before each proxy run. '
        "RPS per core = requests completed / CPU-seconds used by the target's process tree "
        "during the measured window (non-streaming run).",
    ]
    (out / "results.md").write_text("\n".join(lines) + "\n")
    _plot(data, concs, direct_name, out / "router-bench.png")


def _plot(data: dict[str, Any], concs: list[int], direct_name: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    targets = data["targets"]
    direct = targets[direct_name]["results"]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.5))
    panels = [("plain", "latency_ms", "p50", "added latency p50 (ms)"), ("plain", "latency_ms", "p99", "added latency p99 (ms)"),
              ("stream", "ttft_ms", "p50", "added TTFT p50 (ms)")]  # fmt: skip
    for ax, (mode, metric, q, title) in zip(axes, panels, strict=True):
        for name, t in targets.items():
            if name == direct_name:
                continue
            base = t["results"].get("baseline", direct)
            ys = [_added(t["results"], base, f"{mode}-{c}", metric, q) for c in concs]
            ax.plot([str(c) for c in concs], [max(y or 0.0, 0.01) for y in ys], marker="o", label=name)
        ax.set_yscale("log")
        ax.set_xlabel("concurrent clients")
        ax.set_title(title)
        ax.grid(True, which="both", alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle("Router overhead vs direct-to-simulator (lower is better)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
