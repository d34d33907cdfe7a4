"""The PNG plots of ``make bench`` (matplotlib, Agg backend: no display needed), from the results
document: latency percentiles per mode, requests per second per mode, and RSS over time per process,
one panel per mode (the main Locust load shaded; the seed scenarios follow it)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def _labels(modes: list[dict[str, Any]]) -> list[str]:
    return [f"{m['mode']}: {m['name']}" for m in modes]


def latency_plot(modes: list[dict[str, Any]], path: Path) -> None:
    keys = [("avg_ms", "avg"), ("p50_ms", "p50"), ("p95_ms", "p95"), ("p99_ms", "p99")]
    fig, ax = plt.subplots(figsize=(9, 4.5))
    width = 0.8 / len(keys)
    for i, (key, label) in enumerate(keys):
        xs = [n + (i - (len(keys) - 1) / 2) * width for n in range(len(modes))]
        ax.bar(xs, [m["locust"][key] or 0 for m in modes], width, label=label)
    ax.set_xticks(range(len(modes)), _labels(modes), rotation=15, ha="right")
    ax.set_ylabel("ms")
    ax.set_title("Response time per mode (Locust)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


THROUGHPUT_SCENARIO = "1000 requests, concurrency 50"


def rps_plot(modes: list[dict[str, Any]], path: Path, seed: list[dict[str, Any]] | None = None) -> None:
    """Per mode: the paced main load's rate and, when it ran, the throughput of the seed scenario
    with 50 users and no pauses (the most each mode serves)."""
    fig, ax = plt.subplots(figsize=(8, 4))
    saturated = {r["mode"]: r.get("rps") for r in seed or [] if r["scenario"] == THROUGHPUT_SCENARIO}
    xs = range(len(modes))
    if saturated:
        ax.bar([x - 0.2 for x in xs], [m["locust"]["rps"] or 0 for m in modes], 0.4, label="paced main load")
        ax.bar(
            [x + 0.2 for x in xs],
            [saturated.get(m["mode"]) or 0 for m in modes],
            0.4,
            label="50 users, no pauses (seed scenario)",
        )
        ax.legend()
    else:
        ax.bar(xs, [m["locust"]["rps"] or 0 for m in modes], color="tab:green")
    ax.set_xticks(range(len(modes)), _labels(modes), rotation=15, ha="right")
    ax.set_ylabel("requests/s")
    ax.set_title("Requests per second per mode (Locust)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def rss_plot(modes: list[dict[str, Any]], path: Path) -> None:
    fig, axes = plt.subplots(1, len(modes), figsize=(3.6 * len(modes), 3.8), sharey=True, squeeze=False)
    for ax, mode in zip(axes[0], modes, strict=True):
        series = mode.get("series") or {}
        for name, values in sorted((series.get("rss_mb") or {}).items()):
            ax.plot(series["t"], [float("nan") if v is None else v for v in values], label=name)
        main = (mode.get("phases") or {}).get("main")
        if main:
            ax.axvspan(main[0], main[1], color="grey", alpha=0.15, label="main load")
        ax.set_title(f"mode {mode['mode']}: {mode['name']}", fontsize=9)
        ax.set_xlabel("s since start")
    axes[0][0].set_ylabel("RSS MB")
    axes[0][-1].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_plots(
    modes: list[dict[str, Any]], out_dir: Path, seed: list[dict[str, Any]] | None = None
) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / "bench-latency.png", out_dir / "bench-rps.png", out_dir / "bench-rss.png"]
    latency_plot(modes, paths[0])
    rps_plot(modes, paths[1], seed)
    rss_plot(modes, paths[2])
    return paths
