"""Running Locust headless as a subprocess and reading what it wrote (for ``make bench``).

The locustfile's contract: ``locust -f load/locustfile.py --headless -u U -r R -t T --host URL --csv
PREFIX [--max-requests N] [--scenario NAME]``. Locust writes ``PREFIX_stats.csv`` (one row per entry
name plus ``Aggregated``); the stream's time to the first text delta is an entry of its own whose
name contains "first". That entry times a part of a request already counted, so it is left out of the
request counts, the rate and the latency; it gives ``ttfb_p50_ms``. The request percentiles come from
Locust's ``--json-file`` histograms of the other entries when there is one (exact to Locust's
buckets), else from the ``Aggregated`` row (which then includes the first-delta times). When the
locustfile wrote ``PREFIX.timings.json`` (``--timings-out``: every response time, unrounded), the
average, the percentiles and the first-delta median come from it instead: Locust's histograms round
times over 100 ms to 10 ms, too coarse to compare two modes within a few percent.
"""

from __future__ import annotations

import csv
import json
import statistics
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from benchlib import pct

from aws_masker_gateway.orphans import die_with_parent

PERCENTILES = {"p50_ms": 0.5, "p95_ms": 0.95, "p99_ms": 0.99}


@dataclass(frozen=True)
class LocustResult:
    requests: int
    failures: int
    rps: float
    avg_ms: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    ttfb_p50_ms: float | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def is_first_delta(name: str) -> bool:
    return "first" in name.lower()


def _num(value: str | None) -> float:
    try:
        return float(value or "nan")
    except ValueError:  # "N/A" when an entry has no requests
        return float("nan")


def read_stats_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def histogram_percentile(histogram: dict[int, int], q: float) -> float:
    """Locust's own percentile of a response-time histogram (ms bucket -> count)."""
    total = sum(histogram.values())
    if total == 0:
        return float("nan")
    wanted = int(total * q)
    processed = 0
    for bucket in sorted(histogram, reverse=True):
        processed += histogram[bucket]
        if total - processed <= wanted:
            return float(bucket)
    return float(min(histogram))


def merged_histogram(entries: list[dict[str, Any]]) -> dict[int, int]:
    """The response-time histograms of Locust ``--json-file`` entries that are requests, merged."""
    merged: dict[int, int] = {}
    for entry in entries:
        if is_first_delta(str(entry.get("name", ""))):
            continue
        for bucket, count in (entry.get("response_times") or {}).items():
            merged[int(float(bucket))] = merged.get(int(float(bucket)), 0) + int(count)
    return merged


def summarize(rows: list[dict[str, str]], json_entries: list[dict[str, Any]] | None = None) -> LocustResult:
    """One run's numbers from its ``_stats.csv`` rows (and ``--json-file`` entries, if any)."""
    aggregated = next((r for r in rows if r.get("Name") == "Aggregated"), None)
    requests_rows = [r for r in rows if r.get("Name") != "Aggregated" and not is_first_delta(r["Name"])]
    first_rows = [r for r in rows if r.get("Name") != "Aggregated" and is_first_delta(r["Name"])]
    if aggregated is None and not requests_rows:
        raise ValueError("the Locust stats CSV has no rows")
    requests = sum(int(_num(r["Request Count"])) for r in requests_rows)
    failures = sum(int(_num(r["Failure Count"])) for r in requests_rows)
    rps = sum(_num(r["Requests/s"]) for r in requests_rows)
    total_ms = sum(_num(r["Average Response Time"]) * int(_num(r["Request Count"])) for r in requests_rows)
    avg_ms = total_ms / requests if requests else float("nan")
    histogram = merged_histogram(json_entries) if json_entries else {}
    if histogram:
        pcts = {key: histogram_percentile(histogram, q) for key, q in PERCENTILES.items()}
    else:
        source = aggregated if (first_rows or len(requests_rows) != 1) and aggregated else requests_rows[0]
        pcts = {key: _num(source[f"{round(q * 100)}%"]) for key, q in PERCENTILES.items()}
    ttfb = None
    if first_rows:
        counted = [r for r in first_rows if int(_num(r["Request Count"])) > 0]
        if counted:
            ttfb = _num(max(counted, key=lambda r: int(_num(r["Request Count"])))["50%"])
    return LocustResult(requests, failures, round(rps, 3), round(avg_ms, 3), ttfb_p50_ms=ttfb, **pcts)


def exact(timings: dict[str, list[float]], result: LocustResult) -> LocustResult:
    """``result`` with the average, percentiles and first-delta median of the unrounded times."""
    times = sorted(timings.get("requests_ms") or [])
    if not times:
        return result
    first = timings.get("first_delta_ms") or []

    return replace(
        result,
        avg_ms=round(statistics.fmean(times), 3),
        ttfb_p50_ms=round(statistics.median(first), 3) if first else result.ttfb_p50_ms,
        **{key: round(pct(times, q), 3) for key, q in PERCENTILES.items()},
    )


def run_locust(
    locustfile: Path,
    host: str,
    prefix: Path,
    users: int,
    spawn_rate: float,
    duration_s: float,
    max_requests: int | None = None,
    scenario: str | None = None,
    cwd: Path | None = None,
    extra: Sequence[str] = (),
) -> LocustResult:
    """Run Locust headless; its output goes to ``PREFIX.log``. Raises when it wrote no stats."""
    argv = [
        sys.executable, "-m", "locust", "-f", str(locustfile), "--headless", "--only-summary",
        "-u", str(users), "-r", str(spawn_rate), "-t", f"{max(1, round(duration_s))}s",
        "--host", host, "--csv", str(prefix), "--json-file", str(prefix), "--exit-code-on-error", "0",
        "--timings-out", str(prefix.with_name(prefix.name + ".timings.json")),
    ]  # fmt: skip
    if max_requests is not None:
        argv += ["--max-requests", str(max_requests)]
    if scenario is not None:
        argv += ["--scenario", scenario]
    argv += list(extra)
    log = prefix.with_name(prefix.name + ".log")
    with log.open("wb") as out:
        proc = subprocess.run(
            argv,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            timeout=duration_s + 120,
            check=False,
            preexec_fn=die_with_parent,  # a killed benchmark leaves no Locust behind
        )
    stats = prefix.with_name(prefix.name + "_stats.csv")
    if proc.returncode != 0 or not stats.exists():
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-20:])
        raise RuntimeError(f"locust exited with {proc.returncode} (log {log}):\n{tail}")
    json_path = prefix.with_name(prefix.name + ".json")
    entries = json.loads(json_path.read_text()) if json_path.exists() else None
    result = summarize(read_stats_csv(stats), entries)
    timings = prefix.with_name(prefix.name + ".timings.json")
    return exact(json.loads(timings.read_text()), result) if timings.exists() else result
