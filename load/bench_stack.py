"""Whole-stack benchmark: ``make bench``.

One command, one machine, one run:

1. ``load/bench_engine.py`` and ``load/bench_gateway.py`` (each writes its own section of
   docs/benchmarks.md);
2. per mode (load/stackrun.py: 0 no plugin, 1 plugin with monitoring off, 2 10% sampling, 3 100%
   sampling batch 10, 4 100% sampling batch 1): a fresh local stack (``aws-masker up`` on a private
   Redis), a short warm-up, Locust headless with a fixed, paced load (``--users``, ``--spawn-rate``,
   ``--think-ms``, ``--duration``; response times unrounded, from the locustfile's
   ``--timings-out``), then the original test plan's seed scenarios on the same stack (1000 requests at
   concurrency 50, 100 parallel requests, 200 sequential ones), while a sampler records each process's
   RSS and CPU and Redis' connected clients;
3. in modes 1 and 3, a further run of the same paced load while py-spy samples the gateway and the
   plugin server (load/profiles.py): ``docs/results/profile-mode{1,3}.md``, where the time goes;
4. writes ``docs/results/bench-latest.json``, the plots ``docs/results/bench-{latency,rps,rss}.png``
   and the ``bench-stack`` section of docs/benchmarks.md (tables, ratios against modes 1 and 0, and
   the pass/fail checks of benchreport.py).

Exit status: 1 when the run itself broke (a stack did not start, Locust wrote nothing, a request
failed, or a raw AWS identifier reached the stub in a mode with the plugin), with the reason on
stderr; budget and goal misses are reported in the outputs and do not change it (0).

``bench-latest.json`` (read by ``make report``; extra keys may appear, these stay)::

    date        ISO 8601 UTC of the run's start
    machine     CPU, cores, Python, OS (benchlib.machine)
    command     the command that ran
    config      {users, spawn_rate, think_ms, duration_s, warmup_s, scenario, stats_interval_s, modes,
                 locustfile}
    modes       [{mode: 0-4, name,
                  locust: {requests, failures, rps, avg_ms, p50_ms, p95_ms, p99_ms, ttfb_p50_ms},
                  processes: {gateway|plugin-server|redis|stub|subscriber: {cpu_s, rss_peak_mb,
                              rss_final_mb}},      cpu_s: during the main load; RSS over the mode
                  redis_clients: {min, max},       INFO clients, sampled every 0.5 s
                  events: {published, dropped, received, enqueued},
                  leaks,                           raw identifiers the stub received (mode 0: expected)
                  series: {t, rss_mb: {process: [MB or null]}, redis_clients},
                  phases: {main: [start, end]}}]   seconds on the series' clock
    seed        [{mode, scenario, requests, failures, expected, rps, avg_ms, p50_ms, p95_ms}]
    checks      [{name, mode, value, budget, passed, kind: budget|goal}]
    problems    [why the run failed], empty when it did not

Numbers are benchmarks, not tests: the tests (tests/test_bench_stack.py) assert on none of them.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from benchlib import machine, write_section
from benchplots import write_plots
from benchreport import END, START, broken, compute_checks, markdown
from locustrun import run_locust
from profiles import ProfileError, finish
from profiles import markdown as profile_markdown
from profiles import start as start_profile
from stackrun import MODES, Sample, Stack, mode_by_number

from aws_masker_gateway.orphans import die_with_parent

ROOT = Path(__file__).resolve().parents[1]
USERS = 20
SPAWN_RATE = 10.0
# Each user waits this long between requests, so the main load is an open, moderate rate (about
# USERS / (THINK_MS + service time) requests per second, well under what the stack can serve): the
# modes are compared at the same load, their latency is service time rather than queueing, and CPU
# per request is comparable. The seed scenarios run without pauses (the original's `ab -c 50`):
# their req/s is each mode's throughput.
THINK_MS = 400
DURATION_S = 40.0  # with the micro benchmarks, seed runs and profiles, `make bench` takes about 10 minutes
WARMUP_S = 5.0
WARMUP_USERS = 4
SCENARIO = "mixed"
STATS_INTERVAL_S = 1  # publisher counters every second, so /stats is fresh when a mode ends
SEED_TIME_CAP_S = 120.0  # -t for the seed runs; they stop at --max-requests long before
# (name, users, spawn rate, requests): the original test plan's scenarios
SEED_SCENARIOS: tuple[tuple[str, int, int, int], ...] = (
    ("1000 requests, concurrency 50", 50, 50, 1000),
    ("100 parallel requests", 100, 100, 100),
    ("200 sequential requests", 1, 1, 200),
)
MB = 2**20
# modes whose gateway and plugin server are profiled (py-spy) during an extra paced run after the main
# load, so that the cost of monitoring shows where it goes: monitoring off, and on at 100%, batch 10
PROFILED_MODES = (1, 3)
PROFILE_S = 15.0


class Progress:
    def __init__(self) -> None:
        self.t0 = time.monotonic()

    def __call__(self, msg: str) -> None:
        print(f"bench [{time.monotonic() - self.t0:6.1f} s] {msg}", file=sys.stderr, flush=True)


def process_summary(samples: list[Sample], cpu_before: Sample, cpu_after: Sample) -> dict[str, Any]:
    """Per process: CPU seconds between the two readings, peak and final RSS over ``samples``."""
    names = sorted({n for s in samples for n in s.rss} | set(cpu_after.cpu))
    result = {}
    for name in names:
        rss = [s.rss[name] for s in samples if name in s.rss]
        cpu = cpu_after.cpu.get(name, 0.0) - cpu_before.cpu.get(name, 0.0)
        result[name] = {
            "cpu_s": round(cpu, 3),
            "rss_peak_mb": round(max(rss) / MB, 2) if rss else 0.0,
            "rss_final_mb": round(rss[-1] / MB, 2) if rss else 0.0,
        }
    return result


def redis_clients(samples: list[Sample]) -> dict[str, int | None]:
    counts = [s.redis_clients for s in samples if s.redis_clients is not None]
    return {"min": min(counts) if counts else None, "max": max(counts) if counts else None}


def series(samples: list[Sample]) -> dict[str, Any]:
    names = sorted({n for s in samples for n in s.rss})
    return {
        "t": [round(s.t, 2) for s in samples],
        "rss_mb": {n: [round(s.rss[n] / MB, 2) if n in s.rss else None for s in samples] for n in names},
        "redis_clients": [s.redis_clients for s in samples],
    }


def run_mode(
    number: int, args: argparse.Namespace, workdir: Path, progress: Progress
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    mode = mode_by_number(number)
    label = f"mode {number} ({mode.name})"
    progress(f"{label}: starting the stack")
    stack = Stack(mode, workdir, stats_interval_s=args.stats_interval)
    stack.start()
    seed: list[dict[str, Any]] = []
    try:
        progress(f"{label}: warm-up, {WARMUP_USERS} users for {args.warmup:g} s")
        paced = [*mode.locust_args, "--think-ms", str(args.think_ms)]
        run_locust(
            args.locustfile, stack.gateway_url, workdir / f"mode{number}-warmup", WARMUP_USERS,
            WARMUP_USERS, args.warmup, scenario=args.scenario, cwd=ROOT, extra=paced,
        )  # fmt: skip
        progress(
            f"{label}: Locust, {args.users} users (spawn {args.spawn_rate:g}/s, {args.think_ms} ms "
            f"between requests) for {args.duration:g} s"
        )
        before = stack.read_now()
        result = run_locust(
            args.locustfile, stack.gateway_url, workdir / f"mode{number}-main", args.users,
            args.spawn_rate, args.duration, scenario=args.scenario, cwd=ROOT, extra=paced,
        )  # fmt: skip
        after = stack.read_now()
        progress(
            f"{label}: {result.requests} requests, {result.failures} failed, {result.rps:.1f}/s, "
            f"p50 {result.p50_ms:g} ms, p95 {result.p95_ms:g} ms"
        )
        if number in PROFILED_MODES and not args.no_profile:
            progress(f"{label}: profiling the gateway and the plugin server for {PROFILE_S:g} s (py-spy)")
            profiles = profile_mode(stack, args, workdir / f"mode{number}-profile", paced)
            (args.results / f"profile-mode{number}.md").write_text(
                f"# Where the time goes in mode {number} ({mode.name})\n\n"
                f"py-spy, {PROFILE_S:g} s of the same paced load as the main run, after it.\n\n"
                + "\n".join(profiles)
            )
        if not args.no_seed:
            for name, users, rate, requests in SEED_SCENARIOS:
                progress(f"{label}: seed scenario: {name}")
                prefix = workdir / f"mode{number}-seed-{users}u"
                got = run_locust(
                    args.locustfile, stack.gateway_url, prefix, users, rate, SEED_TIME_CAP_S,
                    max_requests=requests, scenario=args.scenario, cwd=ROOT, extra=mode.locust_args,
                )  # fmt: skip
                seed.append(
                    {
                        "mode": number,
                        "scenario": name,
                        "requests": got.requests,
                        "failures": got.failures,
                        "expected": requests,
                        "rps": got.rps,
                        "avg_ms": got.avg_ms,
                        "p50_ms": got.p50_ms,
                        "p95_ms": got.p95_ms,
                    }
                )
                progress(
                    f"{label}: {got.requests} of {requests} requests, {got.failures} failed, "
                    f"{got.rps:.1f}/s, p50 {got.p50_ms:g} ms"
                )
        progress(f"{label}: reading events and counters")
        events = stack.events() if mode.monitoring else stack.events(settle_s=0)
        leaks = int(stack.stub_stats().get("leaks", 0))
        assert stack.sampler is not None
        samples = [*stack.sampler.samples, stack.read_now()]
    finally:
        stack.stop()
    progress(f"{label}: stopped")
    return (
        {
            "mode": number,
            "name": mode.name,
            "locust": result.as_dict(),
            "processes": process_summary(samples, before, after),
            "redis_clients": redis_clients(samples),
            "events": {k: events[k] for k in ("published", "dropped", "received", "enqueued")},
            "leaks": leaks,
            "series": series(samples),
            "phases": {"main": [round(before.t, 2), round(after.t, 2)]},
        },
        seed,
    )


def profile_mode(stack: Stack, args: argparse.Namespace, prefix: Path, extra: list[str]) -> list[str]:
    """py-spy tables of the gateway and the plugin server under the paced load (or why not)."""
    recordings = {}
    for name in ("gateway", "plugin-server"):
        process = stack.processes.get(name)
        if process is None:
            continue
        try:
            recordings[name] = start_profile(process.pid, PROFILE_S)
        except ProfileError as exc:
            return [f"Not profiled: {exc}."]
    run_locust(
        args.locustfile, stack.gateway_url, prefix, args.users, args.spawn_rate, PROFILE_S,
        scenario=args.scenario, cwd=ROOT, extra=extra,
    )  # fmt: skip
    tables = []
    for name, (proc, out) in recordings.items():
        try:
            tables.append(profile_markdown(finish(proc, out, top=20), name))
        except ProfileError as exc:
            tables.append(f"**{name}**: not profiled: {exc}.\n")
    return tables


def run_script(script: str, args: list[str], progress: Progress) -> None:
    progress(f"running load/{script} {' '.join(args)}")
    proc = subprocess.run(
        [sys.executable, str(ROOT / "load" / script), *args],
        cwd=ROOT,
        check=False,
        preexec_fn=die_with_parent,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"load/{script} exited with {proc.returncode}")


def _clean(obj: Any) -> Any:
    """NaN (an entry with no requests) as null, so the JSON stays standard."""
    if isinstance(obj, float) and math.isnan(obj):
        return None
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_clean(v) for v in obj]
    return obj


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--users", type=int, default=USERS)
    p.add_argument("--spawn-rate", type=float, default=SPAWN_RATE)
    p.add_argument("--think-ms", type=int, default=THINK_MS, help="each user's pause between requests")
    p.add_argument("--duration", type=float, default=DURATION_S, help="seconds of the main load per mode")
    p.add_argument("--warmup", type=float, default=WARMUP_S, help="seconds of warm-up per mode")
    p.add_argument("--scenario", default=SCENARIO, help="the locustfile's --scenario")
    p.add_argument("--modes", default=",".join(str(m.number) for m in MODES), help="e.g. 0,1,3")
    p.add_argument("--stats-interval", type=int, default=STATS_INTERVAL_S, help="event_stats_interval_s")
    p.add_argument("--locustfile", type=Path, default=ROOT / "load" / "locustfile.py")
    p.add_argument("--no-seed", action="store_true", help="skip the seed scenarios")
    p.add_argument("--no-profile", action="store_true", help="skip the py-spy profiles of modes 1 and 3")
    p.add_argument("--skip-micro", action="store_true", help="skip bench_engine.py and bench_gateway.py")
    p.add_argument(
        "--quick",
        action="store_true",
        help="a smoke run: the micro benchmarks' --quick, at most 5 s of load and 2 s of warm-up per mode",
    )
    p.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks.md")
    p.add_argument("--results", type=Path, default=ROOT / "docs" / "results")
    return p


def command_line(argv: list[str]) -> str:
    script = "python load/bench_stack.py" + (" " + shlex.join(argv) if argv else "")
    return f"make bench ({script})" if os.environ.get("MAKELEVEL") else script


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    numbers = [int(n) for n in args.modes.split(",") if n.strip()]
    for n in numbers:
        mode_by_number(n)
    if args.quick:
        args.duration, args.warmup = min(args.duration, 5.0), min(args.warmup, 2.0)
    if not args.locustfile.is_file():
        print(f"bench: no locustfile at {args.locustfile}", file=sys.stderr)
        return 1
    progress = Progress()
    started = datetime.now(timezone.utc)
    modes: list[dict[str, Any]] = []
    seed: list[dict[str, Any]] = []
    try:
        if not args.skip_micro:
            quick = ["--quick"] if args.quick else []
            run_script("bench_engine.py", ["--out", str(args.out), *quick], progress)
            run_script("bench_gateway.py", ["--out", str(args.out), *quick], progress)
        args.results.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="aws-masker-bench-") as tmp:
            for n in numbers:
                mode, mode_seed = run_mode(n, args, Path(tmp), progress)
                modes.append(mode)
                seed += mode_seed
    except (RuntimeError, subprocess.TimeoutExpired) as exc:
        print(f"bench: the run broke: {exc}", file=sys.stderr)
        return 1
    doc = _clean(
        {
            "date": started.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "machine": machine(),
            "command": command_line(argv),
            "config": {
                "users": args.users,
                "spawn_rate": args.spawn_rate,
                "think_ms": args.think_ms,
                "duration_s": args.duration,
                "warmup_s": args.warmup,
                "scenario": args.scenario,
                "stats_interval_s": args.stats_interval,
                "modes": numbers,
                "locustfile": os.path.relpath(args.locustfile, ROOT),
                "seed_scenarios": [list(s) for s in SEED_SCENARIOS] if not args.no_seed else [],
            },
            "modes": modes,
            "seed": seed,
        }
    )
    doc["checks"] = compute_checks(doc["modes"], doc["seed"])
    doc["problems"] = broken(doc["modes"], doc["seed"])
    args.results.mkdir(parents=True, exist_ok=True)
    (args.results / "bench-latest.json").write_text(json.dumps(doc, indent=1) + "\n")
    write_plots(doc["modes"], args.results, doc["seed"])
    write_section(args.out, START, END, markdown(doc))
    failed = [c for c in doc["checks"] if not c["passed"]]
    progress(
        f"wrote {args.results}/bench-latest.json, the plots and {args.out}; "
        f"{len(doc['checks']) - len(failed)} of {len(doc['checks'])} checks passed"
        + "".join(f"\n  FAILED: {c['kind']} {c['name']} (mode {c['mode']}): {c['value']}" for c in failed)
    )
    if doc["problems"]:
        print("bench: the run failed:\n  " + "\n  ".join(doc["problems"]), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
