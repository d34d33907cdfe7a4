"""The pure part of ``make bench``: ratios between modes, the pass/fail checks, and the
docs/benchmarks.md section. Works on the results document (``bench_stack.py`` describes its schema),
so it can be tested without running anything."""

from __future__ import annotations

import math
from typing import Any

START, END = "<!-- bench-stack:start -->", "<!-- bench-stack:end -->"
# The processes whose CPU and memory the plugin and its monitoring cost: the stub and the subscriber
# are the test's upstream and observer, not the gateway side.
GATEWAY_SIDE = ("gateway", "plugin-server", "redis")
BASE_MODE = 1  # the budgets compare monitoring modes against the plugin with monitoring off
GOAL_MODE = 3  # our goal: 100% sampling, batch 10, costs almost nothing
MONITORING_MODES = (2, 3, 4)

# the original test plan's budgets (modes 2-4 against mode 1) and our goals (mode 3 against mode 1)
AVG_INCREASE_MAX = 0.10
CPU_INCREASE_MAX = 0.05
MEMORY_INCREASE_MAX_MB = 50.0
REDIS_CLIENTS_SPREAD_MAX = 100
P50_GOAL_MAX = 0.02
PLUGIN_RSS_GOAL_MAX_MB = 5.0


def ratio(value: float | None, base: float | None) -> float | None:
    """``value / base - 1`` (a relative change), or None when either is missing or base is 0."""
    if value is None or base is None or base == 0 or math.isnan(value) or math.isnan(base):
        return None
    return value / base - 1


def is_side(name: str) -> bool:
    return any(name == p or name.startswith(p + "-") for p in GATEWAY_SIDE)


def side_cpu_ms_per_request(mode: dict[str, Any]) -> float | None:
    """CPU milliseconds of the gateway side per request served during the main load."""
    requests = mode["locust"]["requests"]
    if not requests:
        return None
    cpu = sum(p["cpu_s"] for name, p in mode["processes"].items() if is_side(name))
    return cpu * 1000 / requests


def side_rss_peak_mb(mode: dict[str, Any]) -> float:
    return sum(p["rss_peak_mb"] for name, p in mode["processes"].items() if is_side(name))


def plugin_rss_peak_mb(mode: dict[str, Any]) -> float | None:
    peaks = [p["rss_peak_mb"] for name, p in mode["processes"].items() if name.startswith("plugin-server")]
    return sum(peaks) if peaks else None


def _check(name: str, mode: int | None, value: float | None, budget: float, kind: str) -> dict[str, Any]:
    passed = value is not None and value < budget if kind != "goal" else value is not None and value <= budget
    return {
        "name": name,
        "mode": mode,
        "value": None if value is None else round(value, 4),
        "budget": budget,
        "passed": bool(passed),
        "kind": kind,
    }


def compute_checks(modes: list[dict[str, Any]], seed: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The budgets and goals. A missing mode makes its checks fail (value None), never vanish."""
    by_number = {m["mode"]: m for m in modes}
    base = by_number.get(BASE_MODE)
    checks: list[dict[str, Any]] = []
    for number in MONITORING_MODES:
        mode = by_number.get(number)
        if mode is None:
            continue
        avg = ratio(mode["locust"]["avg_ms"], base["locust"]["avg_ms"]) if base else None
        checks.append(
            _check("average response time increase vs mode 1", number, avg, AVG_INCREASE_MAX, "budget")
        )
        cpu = ratio(side_cpu_ms_per_request(mode), side_cpu_ms_per_request(base)) if base else None
        checks.append(
            _check("gateway-side CPU per request increase vs mode 1", number, cpu, CPU_INCREASE_MAX, "budget")
        )
        mem = side_rss_peak_mb(mode) - side_rss_peak_mb(base) if base else None
        checks.append(
            _check(
                "gateway-side peak RSS increase vs mode 1 (MB)", number, mem, MEMORY_INCREASE_MAX_MB, "budget"
            )
        )
    for mode in modes:
        clients = mode.get("redis_clients") or {}
        spread = None if clients.get("max") is None else clients["max"] - clients["min"]
        checks.append(
            _check(
                "Redis connected clients max - min", mode["mode"], spread, REDIS_CLIENTS_SPREAD_MAX, "budget"
            )
        )
    for run in seed:
        if run["scenario"] == "1000 requests, concurrency 50":
            failed = run["failures"] + max(0, run["expected"] - run["requests"])
            checks.append(
                _check("1000 requests at concurrency 50: failed or missing", run["mode"], failed, 1, "budget")
            )
    goal = by_number.get(GOAL_MODE)
    if goal is not None:
        p50 = ratio(goal["locust"]["p50_ms"], base["locust"]["p50_ms"]) if base else None
        checks.append(_check("p50 increase vs mode 1", GOAL_MODE, p50, P50_GOAL_MAX, "goal"))
        g, b = plugin_rss_peak_mb(goal), plugin_rss_peak_mb(base) if base else None
        rss = g - b if g is not None and b is not None else None
        checks.append(
            _check(
                "plugin-server peak RSS increase vs mode 1 (MB)",
                GOAL_MODE,
                rss,
                PLUGIN_RSS_GOAL_MAX_MB,
                "goal",
            )
        )
    return checks


def broken(modes: list[dict[str, Any]], seed: list[dict[str, Any]]) -> list[str]:
    """Why the run itself failed: request failures anywhere, or identifiers that reached the stub
    in a mode with the plugin (mode 0 has no plugin: its leaks are expected and only reported)."""
    problems = []
    for mode in modes:
        if mode["locust"]["failures"]:
            problems.append(f"mode {mode['mode']}: {mode['locust']['failures']} failed requests under load")
        if mode["mode"] != 0 and mode["leaks"]:
            problems.append(f"mode {mode['mode']}: {mode['leaks']} raw AWS identifiers reached the stub")
    for run in seed:
        if run["failures"] or run["requests"] < run["expected"]:
            problems.append(
                f"mode {run['mode']}, {run['scenario']}: {run['requests']} of {run['expected']} requests, "
                f"{run['failures']} failed"
            )
    return problems


# -- the docs/benchmarks.md section --------------------------------------------------------------------


def _f(value: float | None, digits: int = 1) -> str:
    return (
        "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"
    )


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:+.1%}"


def _check_value(check: dict[str, Any]) -> str:
    value = check["value"]
    if value is None:
        return "n/a"
    if "MB" in check["name"]:
        return (
            f"{value:+.1f} MB (< {check['budget']:g})"
            if check["kind"] == "budget"
            else f"{value:+.1f} MB (<= {check['budget']:g})"
        )
    if "increase" in check["name"]:
        op = "<" if check["kind"] == "budget" else "<="
        return f"{value:+.1%} ({op} {check['budget']:+.0%})"
    return f"{value:g} (< {check['budget']:g})"


def markdown(doc: dict[str, Any]) -> str:
    modes = doc["modes"]
    by_number = {m["mode"]: m for m in modes}
    m0, m1 = by_number.get(0), by_number.get(1)
    cfg = doc["config"]
    lines = [
        START,
        "## Whole stack under Locust (`make bench`)",
        "",
        f"- Run: {doc['date']}; machine: {doc['machine']}; command: `{doc['command']}`.",
        f"- Per mode, one after the other on one machine: a fresh `aws-masker up` (gateway, plugin server, "
        f"Claude stub, subscriber, a private Redis), {cfg['warmup_s']:g} s warm-up, then Locust "
        f"`--scenario {cfg['scenario']}` with {cfg['users']} users (spawn rate {cfg['spawn_rate']:g}/s), "
        f"each pausing {cfg.get('think_ms', 0)} ms between requests, for {cfg['duration_s']:g} s: the "
        "same moderate load for every mode, so latency is service time rather than queueing; then the "
        "original test plan's seed scenarios, without pauses (their req/s is the mode's throughput).",
        "- Latency in ms, every response time as measured (the locustfile's `--timings-out`; Locust's "
        "own statistics round times over 100 ms to 10 ms). The stream's time to the first text delta "
        "is its own entry (TTFB) and not in the request numbers. CPU: the gateway side (gateway, "
        "plugin server, Redis) during the main load, per request.",
        "",
        "| mode | requests | failures | req/s | avg | p50 | p95 | p99 | TTFB p50 | p50 vs 1 | p50 vs 0 "
        "| req/s vs 1 | req/s vs 0 | CPU ms/req | vs 1 | plugin RSS peak MB | Redis clients | events "
        "published / dropped / received | leaks |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for m in modes:
        lo = m["locust"]
        cpu = side_cpu_ms_per_request(m)
        ev = m["events"]
        clients = m["redis_clients"]
        lines.append(
            f"| {m['mode']} {m['name']} | {lo['requests']} | {lo['failures']} | {_f(lo['rps'])} | "
            f"{_f(lo['avg_ms'])} | {_f(lo['p50_ms'])} | {_f(lo['p95_ms'])} | {_f(lo['p99_ms'])} | "
            f"{_f(lo['ttfb_p50_ms'])} | "
            f"{_pct(ratio(lo['p50_ms'], m1['locust']['p50_ms']) if m1 else None)} | "
            f"{_pct(ratio(lo['p50_ms'], m0['locust']['p50_ms']) if m0 else None)} | "
            f"{_pct(ratio(lo['rps'], m1['locust']['rps']) if m1 else None)} | "
            f"{_pct(ratio(lo['rps'], m0['locust']['rps']) if m0 else None)} | "
            f"{_f(cpu, 2)} | {_pct(ratio(cpu, side_cpu_ms_per_request(m1)) if m1 else None)} | "
            f"{_f(plugin_rss_peak_mb(m))} | {clients['min']}-{clients['max']} | "
            f"{ev['published']} / {ev['dropped']} / {ev['received']} | {m['leaks']} |"
        )
    lines += [
        "",
        "Processes (main load CPU seconds; RSS MB peak over the mode / at its end):",
        "",
        "| mode | " + " | ".join(_process_names(modes)) + " |",
        "|---|" + "---:|" * len(_process_names(modes)),
    ]
    for m in modes:
        cells = []
        for name in _process_names(modes):
            p = m["processes"].get(name)
            cells.append(
                "-" if p is None else f"{p['cpu_s']:.1f} s, {p['rss_peak_mb']:.0f}/{p['rss_final_mb']:.0f}"
            )
        lines.append(f"| {m['mode']} | " + " | ".join(cells) + " |")
    if doc["seed"]:
        lines += [
            "",
            "Seed scenarios (the original test plan), per mode:",
            "",
            "| mode | scenario | requests | failures | req/s | p50 ms | p95 ms |",
            "|---|---|---:|---:|---:|---:|---:|",
        ]
        for run in doc["seed"]:
            lines.append(
                f"| {run['mode']} | {run['scenario']} | {run['requests']} of {run['expected']} "
                f"| {run['failures']} | {_f(run.get('rps'))} | {_f(run.get('p50_ms'))} "
                f"| {_f(run.get('p95_ms'))} |"
            )
    lines += [
        "",
        "Checks (budgets: the original test plan's; goals: ours). A failed check is reported here, "
        "not hidden:",
        "",
    ]
    lines += ["| check | mode | value | result |", "|---|---:|---|---|"]
    for c in doc["checks"]:
        verdict = "pass" if c["passed"] else "**FAIL**"
        lines.append(f"| {c['kind']}: {c['name']} | {c['mode']} | {_check_value(c)} | {verdict} |")
    if doc.get("problems"):
        lines += ["", "The run itself failed: " + "; ".join(doc["problems"]) + "."]
    lines += [
        "",
        "Plots: `docs/results/bench-latency.png`, `bench-rps.png`, `bench-rss.png`; "
        "where the time goes with monitoring off and on (py-spy): `docs/results/profile-mode1.md`, "
        "`profile-mode3.md`; every number: `docs/results/bench-latest.json`.",
        END,
    ]
    return "\n".join(lines)


def _process_names(modes: list[dict[str, Any]]) -> list[str]:
    order = ["gateway", "plugin-server", "redis", "stub", "subscriber"]
    names = {n for m in modes for n in m["processes"]}
    return [n for n in order if n in names] + sorted(names - set(order))
