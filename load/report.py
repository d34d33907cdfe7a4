"""``make report``: the test plan's report of the latest runs,
``tests/test-report/realtime-monitoring-test-YYYYMMDD.md`` (the UTC date of this run).

It is filled only from results on disk: pytest's JUnit XML of the latest ``make test``
(``.run/reports/junit.xml``), the latest ``make bench`` (``docs/results/bench-latest.json``) and the
latest ``make soak`` (``docs/results/soak-latest.json``). A source that is missing makes its sections
say "not run" and how to run it; nothing is ever estimated or filled in. Each source's date, machine
and command are stated next to its numbers.

Usage: ``python load/report.py [--junit PATH] [--bench PATH] [--soak PATH] [--out-dir DIR]``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import report_junit
from report_junit import Case, Run

from aws_masker.config import MaskerConfig
from aws_masker.engine import Masker

ROOT = Path(__file__).resolve().parents[1]
JUNIT = Path(".run/reports/junit.xml")
BENCH = Path("docs/results/bench-latest.json")
SOAK = Path("docs/results/soak-latest.json")
OUT_DIR = Path("tests/test-report")

HOW = {
    "tests": "`make test` (writes `.run/reports/junit.xml`), then `make report`",
    "bench": "`make bench` (writes `docs/results/bench-latest.json`), then `make report`",
    "soak": "`make soak` (writes `docs/results/soak-latest.json`), then `make report`",
}

# The test plan's performance sections, by bench mode.
PLAN_MODES: tuple[tuple[int, str], ...] = (
    (0, "No plugin (reference)"),
    (1, "Baseline: plugin on, monitoring off"),
    (2, "10% sampling"),
    (3, "100% sampling, batch 10 (the deployed configuration)"),
    (4, "100% sampling, batch 1"),
)
SEED_SCENARIOS = (
    (1000, "1000 requests at concurrency 50"),
    (100, "100 parallel requests"),
    (200, "200 sequential requests"),
)

_masker: Masker | None = None


def scrub(text: str, limit: int = 200) -> str:
    """One line of a failure or skip message, with any AWS identifier in it masked (a report never
    carries one) and markdown table pipes escaped."""
    global _masker
    if _masker is None:
        _masker = Masker(MaskerConfig(token_secret="make-report"))
    line = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    line = _masker.mask_text(line)[0]
    if len(line) > limit:
        line = line[: limit - 1] + "…"
    return line.replace("|", "\\|")


def load_json(path: Path) -> dict[str, Any] | None:
    """A results file, or None when it does not exist (not run)."""
    if not path.is_file():
        return None
    data = json.loads(path.read_text())
    if not isinstance(data, dict):
        raise ValueError(f"{path}: not a JSON object")
    return data


def fmt(value: Any, digits: int = 1) -> str:
    """A number as the report prints it; absent values are a dash, never a guess."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return str(value)


def _plain(value: Any) -> str:
    """A limit as written in the bench (0.02 stays 0.02)."""
    return f"{value:g}" if isinstance(value, (int, float)) and not isinstance(value, bool) else fmt(value)


def verdict(passed: bool | None) -> str:
    return "not run" if passed is None else ("pass" if passed else "**FAIL**")


def table(header: Iterable[str], rows: Iterable[Iterable[Any]]) -> list[str]:
    header = list(header)
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return out


def source_lines(name: str, path: Path, data: dict[str, Any]) -> list[str]:
    """Where a results file's numbers come from: its date, machine, command and settings."""
    lines = [
        f"Source: `{path.as_posix()}` ({name}), run {data.get('date', '—')}",
        f"on {data.get('machine', '—')}, with `{data.get('command', '—')}`.",
    ]
    if data.get("config") is not None:
        lines.append(f"Settings: `{json.dumps(data['config'], sort_keys=True)}`.")
    return [" ".join(lines), ""]


# ---- functional -------------------------------------------------------------------------------


def section_status(c: dict[str, int]) -> str:
    if c["total"] == 0 or c["total"] == c["skipped"]:
        return "not run"
    return "**FAILED**" if c["failed"] else "passed"


def tests_part(run: Run | None, junit_path: Path) -> tuple[list[str], list[str]]:
    """The functional part and the in-suite stability lines."""
    out = ["## 1. Functional tests", ""]
    if run is None:
        out += [f"Not run: no JUnit XML at `{junit_path.as_posix()}`. Run {HOW['tests']}.", ""]
        stab = [f"Memory in the test suite: not run (run {HOW['tests']})."]
        return out, stab
    total = report_junit.counts(run.cases)
    out += [
        f"Source: `{junit_path.as_posix()}`, pytest's JUnit XML of the run started {run.timestamp or '—'}",
        f"on {run.machine or run.hostname or '—'}, with `{run.command or '—'}`"
        f" ({fmt(run.duration_s, 0)} s). All tests: {total['passed']:,} passed, {total['failed']:,} failed,"
        f" {total['skipped']:,} skipped of {total['total']:,}.",
        "",
    ]
    groups = report_junit.assign(run.cases)
    functional = [s for s in report_junit.SECTIONS if s.part == "functional"] + [report_junit.OTHER]
    rows = []
    for s in functional:
        c = report_junit.counts(groups[s.key])
        rows.append([s.title, c["passed"], c["failed"], c["skipped"], c["total"], section_status(c)])
    out += table(["Section", "passed", "failed", "skipped", "total", "result"], rows)
    out.append("")
    for i, s in enumerate(functional, 1):
        out += section_detail(f"1.{i}", s, groups[s.key])
    stab: list[str] = []
    for s in (s for s in report_junit.SECTIONS if s.part == "stability"):
        c = report_junit.counts(groups[s.key])
        stab.append(
            f"Covers: {s.covers}. Result: {section_status(c)}: {c['passed']} passed, {c['failed']} failed,"
            f" {c['skipped']} skipped (source: the JUnit XML above)."
        )
        stab += [f"- {line}" for line in problem_lines(groups[s.key])]
    return out, stab


def problem_lines(cases: list[Case]) -> list[str]:
    """The failed and skipped tests by name, with their message's first line."""
    lines = []
    for case in cases:
        if case.outcome != "passed":
            label = {"failed": "**FAILED**", "error": "**ERROR**", "skipped": "skipped"}[case.outcome]
            lines.append(f"{label} `{case.nodeid}`: {scrub(case.message) or '(no message)'}")
    return lines


def section_detail(number: str, section: report_junit.Section, cases: list[Case]) -> list[str]:
    c = report_junit.counts(cases)
    out = [f"### {number} {section.title}", "", f"Covers: {section.covers}.", ""]
    if c["total"] == 0:
        out += ["Not run: no test of this section was in the latest run.", ""]
        return out
    out += [
        f"Result: {section_status(c)}: {c['passed']} passed, {c['failed']} failed, {c['skipped']} skipped"
        f" of {c['total']}.",
        "",
    ]
    if section.key != "other":
        modules = sorted({case.nodeid.split("::", 1)[0] for case in cases})
        out += ["Tests: " + ", ".join(f"`{m}`" for m in modules) + ".", ""]
    problems = problem_lines(cases)
    if problems:
        out += [f"- {p}" for p in problems] + [""]
    return out


# ---- performance ------------------------------------------------------------------------------


def _pct_change(value: Any, base: Any) -> str:
    if not isinstance(value, (int, float)) or not isinstance(base, (int, float)) or base == 0:
        return "—"
    return f"{(value - base) / base * 100:+.1f}%"


def plugin_leaks(bench: dict[str, Any]) -> int:
    """Raw identifiers the stub received in the modes with the plugin (mode 0 has none: its leaks are
    the point of a no-plugin baseline, not a failure)."""
    modes = [m for m in bench.get("modes", []) if isinstance(m, dict) and m.get("mode")]
    return sum(int(m.get("leaks") or 0) for m in modes)


def performance_part(bench: dict[str, Any] | None, bench_path: Path, link_from: Path = OUT_DIR) -> list[str]:
    out = ["## 2. Performance tests", ""]
    if bench is None:
        out += [f"Not run: no `{bench_path.as_posix()}`. Run {HOW['bench']}.", ""]
        return out
    out += source_lines("make bench", bench_path, bench)
    modes = {m.get("mode"): m for m in bench.get("modes", []) if isinstance(m, dict)}
    base_p50 = (modes.get(1) or {}).get("locust", {}).get("p50_ms")
    rows = []
    for mode, title in PLAN_MODES:
        m = modes.get(mode)
        if m is None:
            rows.append([mode, title, *(["not run"] * 10)])
            continue
        lo = m.get("locust", {})
        rows.append([
            mode, m.get("name", title), fmt(lo.get("requests")), fmt(lo.get("failures")), fmt(lo.get("rps")),
            fmt(lo.get("avg_ms")), fmt(lo.get("p50_ms")), fmt(lo.get("p95_ms")), fmt(lo.get("p99_ms")),
            fmt(lo.get("ttfb_p50_ms")), fmt(m.get("leaks")),
            _pct_change(lo.get("p50_ms"), base_p50) if mode > 1 else "",
        ])
    out += table(
        ["mode", "name", "requests", "failures", "RPS", "avg ms", "p50 ms", "p95 ms", "p99 ms",
         "TTFB p50 ms", "leaks", "p50 vs baseline"],
        rows,
    )
    out.append("")
    for i, (mode, title) in enumerate(PLAN_MODES):
        out += mode_detail(f"2.{i + 1}", mode, title, modes.get(mode), modes.get(1))
    if modes.get(0, {}).get("leaks"):
        out += ["Mode 0 runs without the plugin, so its leak count (identifiers reaching the stub) is"
                " expected there.", ""]  # fmt: skip
    problems = [str(p) for p in bench.get("problems") or []]
    if problems:
        out += ["The bench reported that its run broke:", "", *[f"- {scrub(p)}" for p in problems], ""]
    out += checks_lines(bench)
    out += profile_lines(bench, bench_path.parent, link_from)
    return out


def profile_lines(bench: dict[str, Any], results: Path, link_from: Path) -> list[str]:
    """Where the time goes, when a check failed: the py-spy profiles the same bench run wrote."""
    if all(c.get("passed") for c in bench.get("checks", []) if isinstance(c, dict)):
        return []
    profiles = sorted(results.glob("profile-mode*.md"))
    if not profiles:
        return ["A check failed and the bench wrote no profile (run `make bench` without --no-profile).", ""]
    links = ", ".join(
        f"[{p.name}]({Path(os.path.relpath(p.resolve(), link_from.resolve())).as_posix()})" for p in profiles
    )
    return [
        f"Where the time goes (py-spy profiles of the gateway and the plugin server in this run): {links}.",
        "",
    ]


def mode_detail(number: str, mode: int, title: str, m: dict[str, Any] | None,
                base: dict[str, Any] | None) -> list[str]:  # fmt: skip
    out = [f"### {number} Mode {mode}: {title}", ""]
    if m is None:
        return [*out, f"Not run: mode {mode} is not in the latest bench. Run {HOW['bench']}.", ""]
    lo = m.get("locust", {})
    out.append(
        f"{fmt(lo.get('requests'))} requests, {fmt(lo.get('failures'))} failures, {fmt(lo.get('rps'))} RPS;"
        f" p50 {fmt(lo.get('p50_ms'))} ms, p95 {fmt(lo.get('p95_ms'))} ms, p99 {fmt(lo.get('p99_ms'))} ms;"
        f" stub leak count {fmt(m.get('leaks'))}."
    )
    if base is not None and mode > 1:
        blo = base.get("locust", {})
        out.append(
            f"Against the baseline (mode 1): avg {_pct_change(lo.get('avg_ms'), blo.get('avg_ms'))},"
            f" p50 {_pct_change(lo.get('p50_ms'), blo.get('p50_ms'))},"
            f" RPS {_pct_change(lo.get('rps'), blo.get('rps'))}."
        )
    rc = m.get("redis_clients")
    if isinstance(rc, dict):
        out.append(f"Redis connected clients: {fmt(rc.get('min'))} to {fmt(rc.get('max'))}.")
    ev = m.get("events")
    if isinstance(ev, dict):
        out.append(
            f"Events published {fmt(ev.get('published'))}, dropped {fmt(ev.get('dropped'))},"
            f" received by the subscriber {fmt(ev.get('received'))}."
        )
    out.append("")
    procs = m.get("processes") or {}
    if procs:
        out += table(
            ["process", "CPU s", "RSS peak MB", "RSS final MB"],
            [[name, fmt(p.get("cpu_s"), 2), fmt(p.get("rss_peak_mb")), fmt(p.get("rss_final_mb"))]
             for name, p in procs.items()],
        )  # fmt: skip
        out.append("")
    return out


def checks_lines(bench: dict[str, Any]) -> list[str]:
    checks = [c for c in bench.get("checks", []) if isinstance(c, dict)]
    out = ["### 2.6 Budgets and goals", ""]
    if not checks:
        return [*out, "The bench recorded no checks.", ""]
    out += table(
        ["check", "kind", "mode", "value", "limit", "result"],
        [[c.get("name", "—"), c.get("kind", "—"), fmt(c.get("mode")), fmt(c.get("value"), 3),
          _plain(c.get("budget")), verdict(c.get("passed"))] for c in checks],
    )  # fmt: skip
    return [*out, ""]


# ---- stability --------------------------------------------------------------------------------


def scenario_size(s: dict[str, Any]) -> int | None:
    """The requests a seed scenario asks for: its ``expected``, else the number its name starts with."""
    if isinstance(s.get("expected"), int):
        return int(s["expected"])
    m = re.match(r"\s*(\d+)", str(s.get("scenario", "")))
    return int(m.group(1)) if m else None


def seed_passed(s: dict[str, Any]) -> bool:
    size = scenario_size(s)
    requests = s.get("requests")
    return s.get("failures") == 0 and isinstance(requests, int) and (size is None or requests >= size)


def seed_lines(bench: dict[str, Any] | None) -> tuple[list[str], bool | None]:
    """The original's seed scenarios, and whether all of them ran and succeeded (None: not all ran,
    none failed)."""
    out = ["### 3.2 Seed scenarios", ""]
    seed = [s for s in (bench or {}).get("seed", []) if isinstance(s, dict)]
    if bench is None or not seed:
        return [*out, f"Not run. Run {HOW['bench']} (it runs the seed scenarios).", ""], None
    out += [
        "Each scenario must have all its requests succeed (source: the bench above).",
        "",
        *table(
            ["scenario", "mode", "requests", "of", "failures", "result"],
            [[s.get("scenario", "—"), fmt(s.get("mode")), fmt(s.get("requests")), fmt(scenario_size(s)),
              fmt(s.get("failures")), verdict(seed_passed(s))] for s in seed],
        ),
        "",
    ]  # fmt: skip
    missing = [label for size, label in SEED_SCENARIOS if all(scenario_size(s) != size for s in seed)]
    modes = sorted(m.get("mode") for m in bench.get("modes", []) if isinstance(m, dict))
    per_mode = {s.get("mode") for s in seed if scenario_size(s) == SEED_SCENARIOS[0][0]}
    unseeded = [str(m) for m in modes if m not in per_mode]
    if SEED_SCENARIOS[0][1] not in missing and unseeded:
        missing.append(f"{SEED_SCENARIOS[0][1]} in mode {', '.join(unseeded)}")
    if missing:
        out += ["Not run: " + "; ".join(missing) + ".", ""]
    if not all(seed_passed(s) for s in seed):
        return out, False
    return out, None if missing else True


def _share(value: Any) -> str:
    return f"{value:.0%}" if isinstance(value, (int, float)) else "—"


def soak_lines(soak: dict[str, Any] | None, soak_path: Path, png: Path, link_from: Path) -> list[str]:
    out = ["### 3.1 Soak", ""]
    if soak is None:
        return [*out, f"Not run: no `{soak_path.as_posix()}`. Run {HOW['soak']}"
                " (`make soak SOAK_REQUESTS=… SOAK_MINUTES=…` for a longer one).", ""]  # fmt: skip
    out += source_lines("make soak", soak_path, soak)
    out.append(
        f"{fmt(soak.get('requests'))} requests in {fmt(soak.get('duration_s'), 0)} s,"
        f" {fmt(soak.get('failures'))} failures, stub leak count {fmt(soak.get('leaks'))}:"
        f" {verdict(soak.get('passed'))}."
    )
    cfg = soak.get("config") or {}
    if cfg.get("threshold_mb_per_100k") is not None:
        out.append(
            f"A process passes when its RSS slope after the first {_share(cfg.get('warmup_fraction'))}"
            f" of the requests (the warm-up) is at most {fmt(cfg.get('threshold_mb_per_100k'))} MB per 100k"
            f" requests, or (basis \"noise\", a short run) when the fitted line rises at most"
            f" {fmt(cfg.get('noise_mb'))} MB."
        )
    target = cfg.get("requests")
    if isinstance(target, int) and isinstance(soak.get("requests"), int) and soak["requests"] < target:
        out.append(f"It stopped at its time limit before its {target:,} requests.")
    out.append("")
    procs = soak.get("processes") or {}
    out += table(
        ["process", "RSS start MB", "RSS end MB", "RSS peak MB", "slope MB/100k requests", "samples",
         "basis", "result"],
        [[name, fmt(p.get("rss_start_mb")), fmt(p.get("rss_end_mb")), fmt(p.get("rss_peak_mb")),
          fmt(p.get("slope_mb_per_100k"), 2), fmt(len(p.get("samples") or [])), fmt(p.get("basis")),
          verdict(p.get("passed"))]
         for name, p in procs.items()],
    )  # fmt: skip
    out.append("")
    if png.is_file():
        link = Path(os.path.relpath(png.resolve(), link_from.resolve())).as_posix()
        out += [f"![RSS against requests during the soak]({link})", ""]
    return out


# ---- the report -------------------------------------------------------------------------------


def commit() -> str:
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                             text=True, timeout=10).stdout.strip()  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return "—"
    return rev or "—"


def summary(run: Run | None, bench: dict[str, Any] | None, soak: dict[str, Any] | None,
            seed_ok: bool | None, seed_runs: list[dict[str, Any]]) -> list[str]:  # fmt: skip
    rows: list[list[str]] = []
    results: list[bool | None] = []
    if run is None:
        rows.append(["Functional tests", "not run", HOW["tests"]])
        results.append(None)
    else:
        c = report_junit.counts(run.cases)
        ok = c["failed"] == 0 and c["total"] > 0
        results.append(ok)
        rows.append([
            "Functional tests", verdict(ok),
            f"{c['passed']:,} passed, {c['failed']:,} failed, {c['skipped']:,} skipped"
            f" (JUnit {run.timestamp})",
        ])
    if bench is None:
        rows.append(["Performance", "not run", HOW["bench"]])
        results.append(None)
    else:
        checks = [c for c in bench.get("checks", []) if isinstance(c, dict)]
        failing = [f"{c.get('name')} (mode {c.get('mode')})" for c in checks if not c.get("passed")]
        leaks = plugin_leaks(bench)
        problems = [str(p) for p in bench.get("problems") or []]
        ok = bool(checks) and not failing and leaks == 0 and not problems
        results.append(ok)
        detail = f"{len(checks) - len(failing)}/{len(checks)} checks passed, stub leaks {leaks} (modes 1-4)"
        if problems:
            detail += f"; the run reported {len(problems)} problem(s)"
        if failing:
            detail += "; failing: " + ", ".join(failing)
        rows.append(["Performance", verdict(ok), f"{detail} (bench {bench.get('date', '—')})"])
    if seed_runs:
        good = sum(seed_passed(s) for s in seed_runs)
        seed_what = f"{good}/{len(seed_runs)} scenario runs succeeded" + (
            "; some scenarios did not run" if seed_ok is None else ""
        )
    else:
        seed_what = HOW["bench"]
    rows.append(["Seed scenarios", verdict(seed_ok), seed_what])
    results.append(seed_ok)
    if soak is None:
        rows.append(["Soak", "not run", HOW["soak"]])
        results.append(None)
    else:
        procs = soak.get("processes") or {}
        worst = max((p.get("slope_mb_per_100k") for p in procs.values()
                     if isinstance(p.get("slope_mb_per_100k"), (int, float))), default=None)  # fmt: skip
        results.append(bool(soak.get("passed")))
        rows.append([
            "Soak", verdict(soak.get("passed")),
            f"{fmt(soak.get('requests'))} requests, {fmt(soak.get('failures'))} failures, leaks"
            f" {fmt(soak.get('leaks'))}, largest RSS slope {fmt(worst, 2)} MB/100k"
            f" (soak {soak.get('date', '—')})",
        ])
    if any(r is False for r in results):
        overall = "**FAIL**: at least one part failed (below)."
    elif any(r is None for r in results):
        overall = "Incomplete: every part that ran passed, but not every part ran."
    else:
        overall = "Pass: every part ran and passed."
    return ["## Summary", "", overall, "", *table(["part", "result", "details"], rows), ""]


def render(junit_path: Path, bench_path: Path, soak_path: Path, png: Path, now: datetime,
           link_from: Path = OUT_DIR) -> str:  # fmt: skip
    """The report's markdown; ``link_from`` is the report's folder, for the plot's relative link."""
    run = report_junit.parse(junit_path)
    bench = load_json(bench_path)
    soak = load_json(soak_path)
    functional, in_suite = tests_part(run, junit_path)
    seed, seed_ok = seed_lines(bench)
    seed_runs = [s for s in (bench or {}).get("seed", []) if isinstance(s, dict)]
    lines = [
        f"# Real-time monitoring test report, {now:%Y-%m-%d}",
        "",
        f"Written by `make report` at {now:%Y-%m-%d %H:%M} UTC from commit {commit()}, only from the results"
        " of the latest runs on disk; a part without results says \"not run\".",
        "",
        *summary(run, bench, soak, seed_ok, seed_runs),
        *functional,
        *performance_part(bench, bench_path, link_from),
        "## 3. Stability tests",
        "",
        *soak_lines(soak, soak_path, png, link_from),
        *seed,
        "### 3.3 Memory in the test suite",
        "",
        *in_suite,
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--junit", type=Path, default=JUNIT)
    ap.add_argument("--bench", type=Path, default=BENCH)
    ap.add_argument("--soak", type=Path, default=SOAK)
    ap.add_argument("--png", type=Path, default=Path("docs/results/soak-rss.png"),
                    help="the soak's plot, linked when it exists")  # fmt: skip
    ap.add_argument("--out-dir", type=Path, default=OUT_DIR)
    args = ap.parse_args(argv)
    now = datetime.now(timezone.utc)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    out = args.out_dir / f"realtime-monitoring-test-{now:%Y%m%d}.md"
    out.write_text(render(args.junit, args.bench, args.soak, args.png, now, link_from=args.out_dir))
    print(f"report: wrote {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
