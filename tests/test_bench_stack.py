"""``make bench`` (load/bench_stack.py and its modules): the pure parts, and one short start/stop of
the stack in two modes. Nothing here looks at timings."""

from __future__ import annotations

import importlib
import json
import sys
import tempfile
import urllib.request
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from aws_masker_gateway.declarative import parse_declarative
from aws_masker_gateway.router import Router
from aws_masker_gateway.settings import load_settings
from aws_masker_stack.up import configures_masker

ROOT = Path(__file__).resolve().parents[1]
KONG_YML = (ROOT / "kong.yml").read_text()


def _load(name: str) -> ModuleType:
    if str(ROOT / "load") not in sys.path:
        sys.path.insert(0, str(ROOT / "load"))
    return importlib.import_module(name)


stack = _load("stackrun")
locustrun = _load("locustrun")
benchreport = _load("benchreport")
bench_stack = _load("bench_stack")


# -- config per mode ---------------------------------------------------------------------------------


def _masker_config(text: str) -> dict[str, Any]:
    doc = yaml.safe_load(text)
    return next(p["config"] for p in doc["plugins"] if p["name"] == "aws-masker")


def test_mode_0_has_no_plugin_and_keeps_every_route() -> None:
    text = stack.kong_config(KONG_YML, stack.mode_by_number(0))
    doc, original = yaml.safe_load(text), yaml.safe_load(KONG_YML)
    assert "plugins" not in doc and "aws-masker" not in text and "post-function" not in text
    assert not configures_masker(text) and configures_masker(KONG_YML)
    assert doc["services"] == original["services"]
    # the gateway loads it and routes the stack's paths (no plugin server needed without plugins)
    config = parse_declarative(text, load_settings(env={}), {})
    assert config.plugins == ()
    router = Router(config)
    for path in ("/claude-proxy/v1/messages", "/analyze-claude", "/v1/messages"):
        match = router.match("POST", path, "127.0.0.1")
        assert match is not None, path


def test_route_level_plugins_are_removed_too() -> None:
    text = """_format_version: "3.0"
services:
  - name: s
    url: http://127.0.0.1:1
    plugins: [{name: aws-masker}]
    routes:
      - {name: r, paths: ["/r"], plugins: [{name: post-function}]}
plugins: [{name: aws-masker-restore}]
"""
    doc = yaml.safe_load(stack.without_plugins(text))
    assert doc == {
        "_format_version": "3.0",
        "services": [{"name": "s", "url": "http://127.0.0.1:1", "routes": [{"name": "r", "paths": ["/r"]}]}],
    }


@pytest.mark.parametrize(
    ("number", "monitoring", "sampling", "batch"),
    [(1, False, None, None), (2, True, 0.1, 10), (3, True, 1.0, 10), (4, True, 1.0, 1)],
)
def test_plugin_modes_set_the_event_fields(
    number: int, monitoring: bool, sampling: float | None, batch: int | None
) -> None:
    text = stack.kong_config(KONG_YML, stack.mode_by_number(number), stats_interval_s=2)
    config = _masker_config(text)
    assert config["enable_event_monitoring"] is monitoring
    assert [p["name"] for p in yaml.safe_load(text)["plugins"]] == [
        "aws-masker",
        "aws-masker-restore",
        "aws-masker-collect",
        "post-function",
    ]
    if monitoring:
        assert config["event_sampling_rate"] == sampling
        assert config["event_batch_size"] == batch
        assert config["event_stats_interval_s"] == 2


def test_modes_are_0_to_4_and_unknown_ones_are_refused() -> None:
    assert [m.number for m in stack.MODES] == [0, 1, 2, 3, 4]
    # without the plugin nothing comes back restored: Locust checks status and shape only
    assert stack.mode_by_number(0).locust_args == ("--answer-check", "tokens")
    assert all(m.locust_args == () for m in stack.MODES[1:])
    with pytest.raises(ValueError, match="no mode 7"):
        stack.mode_by_number(7)


@pytest.mark.parametrize(
    ("cmdline", "role"),
    [
        (["/v/bin/python", "-m", "aws_masker.cli", "gateway", "--config", "k.yml"], "gateway"),
        (["/v/bin/python", "-m", "aws_masker.cli", "stub", "--listen", "x"], "stub"),
        (["/v/bin/python", "-m", "aws_masker.cli", "subscriber", "--listen", "x"], "subscriber"),
        (["/v/bin/python", "/v/bin/aws-masker-server", "--kong-prefix", "/p"], "plugin-server"),
        (["/usr/bin/redis-server", "127.0.0.1:6379"], "redis"),
        (["/bin/sh", "-c", "true"], None),
    ],
)
def test_processes_are_told_apart_by_command_line(cmdline: list[str], role: str | None) -> None:
    assert stack.role(cmdline) == role


def test_event_counters_sum_the_publishers() -> None:
    stats = {
        "events": {"total": 7},
        "publishers": [
            {"enqueued": 5, "published": 4, "dropped": 1},
            {"enqueued": 3, "published": 3, "dropped": 0},
        ],
    }
    assert stack.events_from_stats(stats) == {"enqueued": 8, "published": 7, "dropped": 1, "received": 7}
    assert stack.events_from_stats({}) == {"enqueued": 0, "published": 0, "dropped": 0, "received": 0}


# -- Locust's output ---------------------------------------------------------------------------------

HEADER = (
    "Type,Name,Request Count,Failure Count,Median Response Time,Average Response Time,Min Response Time,"
    "Max Response Time,Average Content Size,Requests/s,Failures/s,50%,66%,75%,80%,90%,95%,98%,99%,99.9%,"
    "99.99%,100%"
)
CSV = f"""{HEADER}
POST,json <=4 KB,300,2,40,50.0,10,400,1000,30.0,0.2,40,45,50,55,60,90,120,150,300,400,400
POST,stream,100,0,80,100.0,20,500,0,10.0,0.0,80,85,90,95,100,200,300,400,500,500,500
TTFB,stream: time to first text delta,100,0,25,30.0,5,90,0,10.0,0.0,25,26,27,28,30,60,70,80,90,90,90
POST,conversation turn 3,0,0,0,0,0,0,0,0.0,0.0,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A
,Aggregated,500,2,45,60.0,5,500,600,50.0,0.2,45,50,55,60,70,150,250,300,450,500,500
"""


def _rows(tmp_path: Path) -> list[dict[str, str]]:
    path = tmp_path / "run_stats.csv"
    path.write_text(CSV)
    return locustrun.read_stats_csv(path)


def test_csv_summary_leaves_the_first_delta_entry_out_of_the_requests(tmp_path: Path) -> None:
    result = locustrun.summarize(_rows(tmp_path))
    assert result.requests == 400 and result.failures == 2
    assert result.rps == pytest.approx(40.0)
    assert result.avg_ms == pytest.approx((300 * 50.0 + 100 * 100.0) / 400)
    assert result.ttfb_p50_ms == 25.0
    # without histograms, the percentiles are the Aggregated row's
    assert (result.p50_ms, result.p95_ms, result.p99_ms) == (45.0, 150.0, 300.0)


def test_histograms_give_the_request_percentiles_without_the_first_delta(tmp_path: Path) -> None:
    entries = [
        {"name": "json <=4 KB", "response_times": {"10": 50, "20": 45, "100": 5}},
        {"name": "stream", "response_times": {"30": 100}},
        {"name": "stream: time to first text delta", "response_times": {"1": 100}},
    ]
    result = locustrun.summarize(_rows(tmp_path), entries)  # the first-delta entry's 1 ms: not there
    assert (result.p50_ms, result.p95_ms, result.p99_ms) == (30.0, 30.0, 100.0)
    entries[1]["response_times"] = {"30": 4}
    result = locustrun.summarize(_rows(tmp_path), entries)
    assert (result.p50_ms, result.p95_ms, result.p99_ms) == (20.0, 30.0, 100.0)


def test_histogram_percentile_follows_locust() -> None:
    histogram = {10: 90, 200: 9, 1000: 1}
    assert locustrun.histogram_percentile(histogram, 0.5) == 10
    assert locustrun.histogram_percentile(histogram, 0.95) == 200
    assert locustrun.histogram_percentile(histogram, 0.999) == 1000
    assert locustrun.histogram_percentile({}, 0.5) != locustrun.histogram_percentile({}, 0.5)  # NaN


def test_a_single_request_entry_gives_its_own_percentiles(tmp_path: Path) -> None:
    path = tmp_path / "one_stats.csv"
    path.write_text(
        f"{HEADER}\nPOST,json,10,0,40,41.0,10,90,1,5.0,0.0,40,45,50,55,60,70,80,90,90,90,90\n"
        ",Aggregated,10,0,40,41.0,10,90,1,5.0,0.0,41,45,50,55,60,71,80,91,90,90,90\n"
    )
    result = locustrun.summarize(locustrun.read_stats_csv(path))
    assert (result.p50_ms, result.p95_ms, result.p99_ms, result.ttfb_p50_ms) == (40.0, 70.0, 90.0, None)


def test_unrounded_timings_replace_locusts_rounded_numbers(tmp_path: Path) -> None:
    rounded = locustrun.summarize(_rows(tmp_path))
    times = [float(t) for t in range(101, 201)]  # 101..200 ms: Locust would round them to 10 ms
    result = locustrun.exact({"requests_ms": times, "first_delta_ms": [7.25, 8.5, 9.0]}, rounded)
    assert (result.p50_ms, result.p95_ms, result.p99_ms) == (150.0, 195.0, 199.0)
    assert result.avg_ms == pytest.approx(150.5) and result.ttfb_p50_ms == 8.5
    assert (result.requests, result.failures, result.rps) == (rounded.requests, rounded.failures, rounded.rps)
    assert locustrun.exact({"requests_ms": []}, rounded) == rounded


def test_an_empty_csv_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "empty_stats.csv"
    path.write_text(HEADER + "\n")
    with pytest.raises(ValueError, match="no rows"):
        locustrun.summarize(locustrun.read_stats_csv(path))


# -- ratios, checks, the section ---------------------------------------------------------------------


def _mode(
    number: int,
    avg: float = 100.0,
    p50: float = 90.0,
    cpu: float = 10.0,
    plugin_mb: float = 100.0,
    requests: int = 1000,
    leaks: int = 0,
    failures: int = 0,
    clients: tuple[int, int] = (2, 3),
) -> dict[str, Any]:
    return {
        "mode": number,
        "name": f"mode {number}",
        "locust": {
            "requests": requests,
            "failures": failures,
            "rps": 50.0,
            "avg_ms": avg,
            "p50_ms": p50,
            "p95_ms": 200.0,
            "p99_ms": 300.0,
            "ttfb_p50_ms": 30.0,
        },
        "processes": {
            "gateway": {"cpu_s": cpu / 2, "rss_peak_mb": 70.0, "rss_final_mb": 69.0},
            "plugin-server": {"cpu_s": cpu / 2, "rss_peak_mb": plugin_mb, "rss_final_mb": plugin_mb},
            "redis": {"cpu_s": 0.0, "rss_peak_mb": 12.0, "rss_final_mb": 12.0},
            "stub": {"cpu_s": 50.0, "rss_peak_mb": 500.0, "rss_final_mb": 50.0},  # not the gateway side
        },
        "redis_clients": {"min": clients[0], "max": clients[1]},
        "events": {"published": 0, "dropped": 0, "received": 0, "enqueued": 0},
        "leaks": leaks,
    }


def _seed(mode: int, requests: int = 1000, failures: int = 0) -> dict[str, Any]:
    return {
        "mode": mode,
        "scenario": "1000 requests, concurrency 50",
        "requests": requests,
        "failures": failures,
        "expected": 1000,
    }


def _by_name(checks: list[dict[str, Any]], fragment: str, mode: int) -> dict[str, Any]:
    return next(c for c in checks if fragment in c["name"] and c["mode"] == mode)


def test_ratio() -> None:
    assert benchreport.ratio(110.0, 100.0) == pytest.approx(0.10)
    assert benchreport.ratio(1.0, 0.0) is None and benchreport.ratio(None, 1.0) is None
    assert benchreport.ratio(float("nan"), 1.0) is None


def test_checks_pass_within_the_budgets_and_goals() -> None:
    modes = [_mode(0), _mode(1), _mode(2, avg=105.0), _mode(3, p50=91.0, plugin_mb=104.0), _mode(4)]
    checks = benchreport.compute_checks(modes, [_seed(n) for n in range(5)])
    assert all(c["passed"] for c in checks), [c for c in checks if not c["passed"]]
    assert _by_name(checks, "average response time", 2)["value"] == pytest.approx(0.05)
    assert {c["kind"] for c in checks} == {"budget", "goal"}
    # 3 budgets x modes 2-4, Redis clients x 5 modes, the seed run x 5 modes, 2 goals
    assert len(checks) == 9 + 5 + 5 + 2


def test_checks_fail_beyond_the_budgets_and_goals() -> None:
    modes = [
        _mode(1),
        _mode(2, avg=111.0),
        _mode(3, p50=92.0, plugin_mb=106.0, cpu=10.6, clients=(2, 150)),
        _mode(4, cpu=10.4),
    ]
    modes[3]["processes"]["gateway"]["rss_peak_mb"] = 121.0  # +51 MB on the gateway side
    checks = benchreport.compute_checks(modes, [_seed(1), _seed(3, requests=999), _seed(4, failures=1)])
    failed = {(c["name"], c["mode"]) for c in checks if not c["passed"]}
    assert failed == {
        ("average response time increase vs mode 1", 2),
        ("gateway-side CPU per request increase vs mode 1", 3),
        ("gateway-side peak RSS increase vs mode 1 (MB)", 4),
        ("Redis connected clients max - min", 3),
        ("1000 requests at concurrency 50: failed or missing", 3),
        ("1000 requests at concurrency 50: failed or missing", 4),
        ("p50 increase vs mode 1", 3),
        ("plugin-server peak RSS increase vs mode 1 (MB)", 3),
    }
    assert _by_name(checks, "CPU per request", 4)["passed"]  # +4%: within the budget


def test_without_the_base_mode_the_checks_fail_rather_than_vanish() -> None:
    checks = benchreport.compute_checks([_mode(3)], [])
    assert _by_name(checks, "average response time", 3) == {
        "name": "average response time increase vs mode 1",
        "mode": 3,
        "value": None,
        "budget": benchreport.AVG_INCREASE_MAX,
        "passed": False,
        "kind": "budget",
    }
    assert not _by_name(checks, "p50 increase", 3)["passed"]


def test_a_broken_run_names_failures_leaks_and_missing_requests_but_not_mode_0_leaks() -> None:
    modes = [_mode(0, leaks=40), _mode(1), _mode(3, leaks=2), _mode(4, failures=5)]
    problems = benchreport.broken(modes, [_seed(1), _seed(4, requests=998)])
    assert problems == [
        "mode 3: 2 raw AWS identifiers reached the stub",
        "mode 4: 5 failed requests under load",
        "mode 4, 1000 requests, concurrency 50: 998 of 1000 requests, 0 failed",
    ]
    assert benchreport.broken([_mode(0, leaks=40), _mode(1)], [_seed(1)]) == []


def test_the_section_has_its_markers_every_mode_and_the_failed_checks() -> None:
    modes = [_mode(0), _mode(1), _mode(3, p50=99.0)]
    doc = {
        "date": "2026-12-06T00:00:00Z",
        "machine": "test machine",
        "command": "make bench",
        "config": {"users": 20, "spawn_rate": 10.0, "duration_s": 60.0, "warmup_s": 5.0, "scenario": "mixed"},
        "modes": modes,
        "seed": [_seed(1)],
        "checks": benchreport.compute_checks(modes, [_seed(1)]),
        "problems": [],
    }
    section = benchreport.markdown(doc)
    assert section.startswith(benchreport.START) and section.endswith(benchreport.END)
    assert "test machine" in section and "`make bench`" in section
    for number in (0, 1, 3):
        assert f"\n| {number} mode {number} |" in section
    assert "| goal: p50 increase vs mode 1 | 3 | +10.0% (<= +2%) | **FAIL** |" in section
    assert "| +10.0% | +10.0% |" in section  # p50 against mode 1 and against mode 0
    assert "1000 of 1000" in section


def test_process_summary_and_redis_clients_come_from_the_samples() -> None:
    mb = bench_stack.MB
    samples = [
        stack.Sample(0.0, {"gateway": 50 * mb}, {"gateway": 1.0}, 2),
        stack.Sample(0.5, {"gateway": 80 * mb, "plugin-server": 40 * mb}, {"gateway": 2.0}, 4),
        stack.Sample(1.0, {"gateway": 60 * mb, "plugin-server": 45 * mb}, {"gateway": 3.5}, None),
    ]
    summary = bench_stack.process_summary(samples, samples[0], samples[2])
    assert summary["gateway"] == {"cpu_s": 2.5, "rss_peak_mb": 80.0, "rss_final_mb": 60.0}
    assert summary["plugin-server"] == {"cpu_s": 0.0, "rss_peak_mb": 45.0, "rss_final_mb": 45.0}
    assert bench_stack.redis_clients(samples) == {"min": 2, "max": 4}
    assert bench_stack.series(samples)["rss_mb"]["plugin-server"] == [None, 40.0, 45.0]


def test_the_json_keeps_no_nan() -> None:
    cleaned = bench_stack._clean({"a": [float("nan"), 1.0], "b": {"c": float("nan")}})
    assert json.dumps(cleaned) == '{"a": [null, 1.0], "b": {"c": null}}'


def test_plots_are_written(tmp_path: Path) -> None:
    plots = _load("benchplots")
    modes = [_mode(1), _mode(3)]
    for m in modes:
        m["series"] = {"t": [0.0, 0.5], "rss_mb": {"gateway": [50.0, None]}, "redis_clients": [2, 2]}
        m["phases"] = {"main": [0.0, 0.5]}
    paths = plots.write_plots(modes, tmp_path / "results")
    assert [p.name for p in paths] == ["bench-latency.png", "bench-rps.png", "bench-rss.png"]
    assert all(p.read_bytes().startswith(b"\x89PNG") for p in paths)
    alone = paths[1].read_bytes()
    seed = [{"mode": n, "scenario": plots.THROUGHPUT_SCENARIO, "rps": 300.0} for n in (1, 3)]
    plots.write_plots(modes, tmp_path / "results", seed)  # the seed throughput bars are drawn too
    assert paths[1].read_bytes() != alone


# -- the stack, started and stopped ------------------------------------------------------------------


@pytest.mark.e2e
@pytest.mark.parametrize("number", [0, 3])
def test_stack_starts_serves_and_leaves_nothing_behind(number: int) -> None:
    mode = stack.mode_by_number(number)
    with tempfile.TemporaryDirectory() as tmp:
        s = stack.Stack(mode, Path(tmp), stats_interval_s=1)
        s.start()
        try:
            assert {"gateway", "stub", "subscriber", "redis"} <= set(s.processes)
            if mode.plugin:
                assert "plugin-server" in s.processes
            body = json.dumps(
                {"model": "m", "max_tokens": 20, "messages": [{"role": "user", "content": "EC2 i-0abc"}]}
            ).encode()
            request = urllib.request.Request(
                s.gateway_url + "/claude-proxy/v1/messages",
                data=body,
                headers={
                    "content-type": "application/json",
                    "x-api-key": "t",
                    "anthropic-version": "2023-06-01",
                },
            )
            with urllib.request.urlopen(request, timeout=30) as resp:
                assert resp.status == 200
            sample = s.read_now()
            assert sample.rss["gateway"] > 0 and sample.redis_clients is not None
            if mode.monitoring:
                events = s.events(settle_s=15)
                assert events["published"] > 0 and events["received"] == events["published"]
            assert s.stub_stats()["requests"] == 1
        finally:
            watched = list(s.processes.values())
            s.stop()
        assert not [p for p in watched if p.is_running() and p.status() != "zombie"]


def test_one_percentile_definition_for_every_bench() -> None:
    """Nearest rank: the smallest sample with at least q of them at or below it."""
    benchlib = _load("benchlib")
    ten = [float(n) for n in range(10, 0, -1)]
    assert [benchlib.pct(ten, q) for q in (0.0, 0.1, 0.5, 0.9, 0.95, 0.99, 1.0)] == [1, 1, 5, 9, 10, 10, 10]
    assert benchlib.pct([4.0], 0.99) == 4.0
