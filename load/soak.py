"""``make soak``: a bounded soak that proves the stack does not leak memory.

The local stack runs in the deployed configuration (bench mode 3: monitoring on, every request
sampled, batches of 10) under a Locust load of small requests (``--scenario small``, for the rate)
until ``--requests`` requests are done or ``--minutes`` have passed, whichever comes first (defaults
300,000 and 15; ``make soak SOAK_REQUESTS=… SOAK_MINUTES=…`` for the original plan's 24 h). Every
``--interval`` seconds it records the RSS of every process of the stack (gateway, plugin server,
stub, subscriber, redis) against the number of requests the stub has answered so far, and prints a
progress line.

The verdict per process is the least-squares slope of RSS against requests done, fitted after a
warm-up (the first ``--warmup`` fraction of the requests, 30% by default), in MB per 100k requests.
The warm-up is where bounded caches fill: the gateway keeps its last 10,000 request records and the
plugin server's token minter caches 65,536 tokens, and a 25k-request run of the small scenario showed
both processes' RSS rising to about 100 MB until roughly 15k (gateway) and 20k (plugin server)
requests. The gateway's keeps rising more slowly for longer (allocator and Lua heap growth): two
100k-request runs fitted after their first 30k still gave it +4.8 and +5.2 MB per 100k, while a
300k-request run of the same code gave +0.6 once past its first 90k. Hence the default of 300k
requests (7 to 14 minutes on the 2-core VMs it was run on). A shorter run still sees the caches
filling, so its slope says little about a leak.

A process passes at or below ``--threshold``: 5 MB per 100k requests, 50 bytes per request, less than
keeping one small object per request would cost (an empty dict is 64 bytes; a token map entry, an
event or an identifier's string is hundreds), so a per-request leak shows above it; it is also the
issue's own memory budget for monitoring. A run too short for the slope to mean anything (the fitted
line rises at most ``--noise`` MB, 2 MB by default, over the fitted requests: Python's RSS moves in
allocator steps of about that size) passes too, and says so (basis "noise").
The soak passes when every process passes, no request failed and the stub saw no leaked identifier.

It writes ``docs/results/soak-latest.json`` and ``docs/results/soak-rss.png``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
import statistics
import sys
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import benchlib
import locustrun
import stackrun as stack

ROOT = Path(__file__).resolve().parents[1]
LOCUSTFILE = ROOT / "load" / "locustfile.py"
MODE = 3  # monitoring on, 100% sampling, batch 10: the deployed configuration
REQUESTS = 300_000
MINUTES = 15.0
INTERVAL_S = 2.0
WARMUP = 0.3
THRESHOLD_MB_PER_100K = 5.0
NOISE_MB = 2.0
USERS = 20
SPAWN_RATE = 20.0
MB = 1024 * 1024


# ---- the verdict ------------------------------------------------------------------------------


def least_squares_line(points: list[tuple[float, float]]) -> tuple[float, float] | None:
    """The least-squares line through ``points`` (x, y) as (slope, intercept); None with fewer than
    three points or no spread in x."""
    if len(points) < 3:
        return None
    try:
        slope, intercept = statistics.linear_regression([x for x, _ in points], [y for _, y in points])
    except statistics.StatisticsError:  # every x the same
        return None
    return slope, intercept


def least_squares_slope(points: list[tuple[float, float]]) -> float | None:
    line = least_squares_line(points)
    return None if line is None else line[0]


def after_warmup(samples: list[list[float]], warmup: float) -> list[list[float]]:
    """The samples ``[elapsed_s, requests_done, rss_mb]`` once ``warmup`` of the run's requests are
    done."""
    if not samples:
        return []
    total = max(s[1] for s in samples)
    return [s for s in samples if s[1] >= warmup * total]


@dataclass(frozen=True)
class Verdict:
    slope_mb_per_100k: float | None
    growth_mb: float | None  # the fitted line's rise over the fitted requests
    passed: bool
    basis: str  # "slope", "noise" (short run, the fitted rise is below the noise) or "too few samples"


def verdict(samples: list[list[float]], warmup: float = WARMUP, threshold: float = THRESHOLD_MB_PER_100K,
            noise_mb: float = NOISE_MB) -> Verdict:  # fmt: skip
    """Whether one process's RSS grows with the requests done (see the module's docstring)."""
    fitted = after_warmup(samples, warmup)
    slope = least_squares_slope([(s[1], s[2]) for s in fitted])
    if slope is None:
        return Verdict(None, None, False, "too few samples")
    per_100k = slope * 100_000
    growth = slope * (max(s[1] for s in fitted) - min(s[1] for s in fitted))
    if per_100k <= threshold:
        return Verdict(round(per_100k, 3), round(growth, 3), True, "slope")
    if growth <= noise_mb:
        return Verdict(round(per_100k, 3), round(growth, 3), True, "noise")
    return Verdict(round(per_100k, 3), round(growth, 3), False, "slope")


def process_result(
    samples: list[list[float]], warmup: float, threshold: float, noise_mb: float
) -> dict[str, Any]:
    v = verdict(samples, warmup, threshold, noise_mb)
    rss = [s[2] for s in samples]
    return {
        "rss_start_mb": rss[0] if rss else None,
        "rss_end_mb": rss[-1] if rss else None,
        "rss_peak_mb": max(rss) if rss else None,
        "slope_mb_per_100k": v.slope_mb_per_100k,
        "growth_mb": v.growth_mb,
        "basis": v.basis,
        "passed": v.passed,
        "samples": samples,
    }


# ---- the run ----------------------------------------------------------------------------------


def command_line(argv: list[str]) -> str:
    script = "python load/soak.py" + (" " + shlex.join(argv) if argv else "")
    return f"make soak ({script})" if os.environ.get("MAKELEVEL") else script


class LoadThread(threading.Thread):
    """Locust headless in a thread (``locustrun.run_locust`` blocks until it ends)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(name="soak-locust", daemon=True)
        self.kwargs = kwargs
        self.result: locustrun.LocustResult | None = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.result = locustrun.run_locust(**self.kwargs)
        except BaseException as exc:  # reported by the main thread
            self.error = exc


def requests_done(st: stack.Stack, last: int) -> int:
    """Requests the stub has answered (``last`` when it cannot say)."""
    try:
        return int(st.stub_stats().get("requests", last))
    except (OSError, ValueError):
        return last


def rss_now(st: stack.Stack) -> dict[str, float]:
    """Each process's RSS in MB, read by the stack's own sampler (which also finds new processes)."""
    return {name: round(rss / MB, 2) for name, rss in st.read_now().rss.items()}


def progress(elapsed: float, done: int, prev: tuple[float, int], rss: dict[str, float]) -> str:
    dt = elapsed - prev[0]
    rps = (done - prev[1]) / dt if dt > 0 else 0.0
    procs = "  ".join(f"{name} {mb:.1f} MB" for name, mb in sorted(rss.items()))
    return f"soak {elapsed:6.0f} s  {done:>9,} requests  {rps:6.1f} rps  |  {procs}"


def run(args: argparse.Namespace) -> dict[str, Any]:
    workdir = ROOT / ".run" / "soak"
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    mode = stack.mode_by_number(MODE)
    st = stack.Stack(mode, workdir)
    print(f"soak: starting the local stack, mode {mode.number} ({mode.name})", file=sys.stderr)
    st.start()
    if st.sampler is not None:  # the soak samples on its own, every few seconds: a day of the
        st.sampler.stop()  # stack's half-second samples would be the biggest thing in memory
    samples: dict[str, list[list[float]]] = {}
    try:
        t0 = time.monotonic()
        duration_s = args.minutes * 60
        load = LoadThread(
            locustfile=LOCUSTFILE, host=st.gateway_url, prefix=workdir / "locust", users=args.users,
            spawn_rate=args.spawn_rate, duration_s=duration_s, max_requests=args.requests,
            scenario="small", cwd=ROOT,
        )  # fmt: skip
        done, prev = 0, (0.0, 0)
        load.start()
        while True:
            elapsed = time.monotonic() - t0
            done = requests_done(st, done)
            rss = rss_now(st)
            for name, mb in rss.items():
                samples.setdefault(name, []).append([round(elapsed, 1), done, mb])
            print(progress(elapsed, done, prev, rss), file=sys.stderr, flush=True)
            prev = (elapsed, done)
            if not load.is_alive():
                break
            load.join(args.interval)
        if load.error is not None:
            raise RuntimeError(f"the Locust run failed: {load.error}") from load.error
        assert load.result is not None
        duration = time.monotonic() - t0
        stub = st.stub_stats()
    finally:
        st.stop()
    result = load.result
    processes = {
        name: process_result(s, args.warmup, args.threshold, args.noise) for name, s in samples.items()
    }
    leaks = int(stub.get("leaks", 0))
    return {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": benchlib.machine(),
        "command": command_line(args.argv),
        "config": {
            "mode": mode.number, "mode_name": mode.name, "scenario": "small", "users": args.users,
            "spawn_rate": args.spawn_rate, "requests": args.requests, "minutes": args.minutes,
            "interval_s": args.interval, "warmup_fraction": args.warmup,
            "threshold_mb_per_100k": args.threshold, "noise_mb": args.noise,
        },
        "requests": result.requests,
        "failures": result.failures,
        "rps": result.rps,
        "leaks": leaks,
        "duration_s": round(duration, 1),
        "processes": processes,
        "passed": bool(processes)
        and all(p["passed"] for p in processes.values())
        and result.failures == 0
        and leaks == 0,
    }


# ---- output -----------------------------------------------------------------------------------


def plot(result: dict[str, Any], path: Path) -> None:
    """RSS of each process against requests done, the warm-up shaded, the fitted line dashed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 5), dpi=110)
    warmup = result["config"]["warmup_fraction"]
    total = max((s[1] for p in result["processes"].values() for s in p["samples"]), default=0)
    for name, p in sorted(result["processes"].items()):
        xs = [s[1] / 1000 for s in p["samples"]]
        ys = [s[2] for s in p["samples"]]
        (line,) = ax.plot(xs, ys, label=f"{name} ({_slope_label(p)})", linewidth=1.2)
        fitted = after_warmup(p["samples"], warmup)
        fit = least_squares_line([(s[1], s[2]) for s in fitted])
        if fit is not None:
            slope, intercept = fit
            x0, x1 = fitted[0][1], fitted[-1][1]
            ax.plot([x0 / 1000, x1 / 1000], [intercept + slope * x0, intercept + slope * x1], "--",
                    color=line.get_color(), linewidth=0.9)  # fmt: skip
    ax.axvspan(0, warmup * total / 1000, color="grey", alpha=0.12, label=f"warm-up (first {warmup:.0%})")
    ax.set_xlabel("requests done (thousands)")
    ax.set_ylabel("RSS (MB)")
    verdict_text = "passed" if result["passed"] else "FAILED"
    ax.set_title(f"make soak {result['date']}: {result['requests']:,} requests, {verdict_text}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


# below this many requests a growing RSS is most likely the caches filling, which the summary says
SHORT_RUN = 50_000


def _slope_label(p: dict[str, Any]) -> str:
    s = p.get("slope_mb_per_100k")
    return "slope n/a" if s is None else f"{s:+.2f} MB/100k"


def summary_lines(result: dict[str, Any]) -> list[str]:
    lines = [
        f"soak: {result['requests']:,} requests in {result['duration_s']:.0f} s,"
        f" {result['failures']} failures, {result['leaks']} leaks:"
        f" {'PASSED' if result['passed'] else 'FAILED'}"
    ]
    for name, p in sorted(result["processes"].items()):
        lines.append(
            f"  {name:<14} RSS {p['rss_start_mb']:.1f} -> {p['rss_end_mb']:.1f} MB"
            f" (peak {p['rss_peak_mb']:.1f}),"
            f" {_slope_label(p)}: {'pass' if p['passed'] else 'FAIL'} ({p['basis']})"
        )
    only_memory = not result["failures"] and not result["leaks"]
    if not result["passed"] and only_memory and result["requests"] < SHORT_RUN:
        lines.append(
            f"soak: {result['requests']:,} requests is too few to tell a leak from the bounded caches"
            f" filling (the gateway's last 10,000 request records, the plugin server's token cache: about"
            f" the first 20,000 requests); run at least {SHORT_RUN:,} (the default is {REQUESTS:,})"
        )
    return lines


def to_json(result: dict[str, Any]) -> str:
    """Indented JSON with each sample on one line."""
    text = json.dumps(result, indent=1)
    return re.sub(r"\[\s+([-\d.eE+]+),\s+([-\d.eE+]+),\s+([-\d.eE+]+)\s+\]", r"[\1, \2, \3]", text) + "\n"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=REQUESTS, help="stop after this many requests")
    ap.add_argument("--minutes", type=float, default=MINUTES, help="or after this many minutes")
    ap.add_argument("--interval", type=float, default=INTERVAL_S, help="seconds between RSS samples")
    ap.add_argument("--warmup", type=float, default=WARMUP, help="share of requests not fitted")
    ap.add_argument("--threshold", type=float, default=THRESHOLD_MB_PER_100K, help="MB per 100k requests")
    ap.add_argument("--noise", type=float, default=NOISE_MB, help="MB of fitted rise a short run may show")
    ap.add_argument("--users", type=int, default=USERS)
    ap.add_argument("--spawn-rate", type=float, default=SPAWN_RATE)
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "results" / "soak-latest.json")
    ap.add_argument("--png", type=Path, default=ROOT / "docs" / "results" / "soak-rss.png")
    args = ap.parse_args(argv)
    args.argv = argv
    result = run(args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(to_json(result))
    plot(result, args.png)
    for line in summary_lines(result):
        print(line, file=sys.stderr)
    print(f"soak: wrote {args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out}"
          f" and {args.png.name}", file=sys.stderr)  # fmt: skip
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
