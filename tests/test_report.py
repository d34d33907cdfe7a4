"""``make report`` (load/report.py) fills the test plan's report only from the results it is given:
fixture JUnit XML, bench and soak files here; a missing one says "not run", a failed test shows as
failed by name, and no figure appears that is not in the inputs."""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOW = datetime(2026, 12, 6, 4, 30, tzinfo=timezone.utc)

JUNIT = """<?xml version="1.0" encoding="utf-8"?>
<testsuites name="pytest tests"><testsuite name="pytest" errors="0" failures="1" skipped="1" tests="9"
 time="12.5" timestamp="2026-12-05T21:07:00.000000+00:00" hostname="box">
<properties><property name="command" value="pytest" /><property name="machine" value="Test CPU, 2 cores" />
</properties>
<testcase classname="tests.test_events" name="test_sampling_ten_percent_is_binomial" time="0.01">
<failure message="AssertionError: 10.0.1.100 sampled 31 of 1000">trace</failure></testcase>
<testcase classname="tests.test_events" name="test_sampling_rates_zero_and_one_are_exact[0.0]" time="0.01" />
<testcase classname="tests.test_events" name="test_a_full_batch_is_one_publish" time="0.01" />
<testcase classname="tests.test_events" name="test_events_carry_counts_and_names_only" time="0.01" />
<testcase classname="tests.e2e.test_monitoring" name="test_redis_down_then_back" time="2" />
<testcase classname="tests.e2e.test_live_page_browser" name="test_the_live_page" time="0">
<skipped type="pytest.skip" message="chromium is not installed">skip</skipped></testcase>
<testcase classname="tests.e2e.test_product" name="test_killed_plugin_server_fails_closed_through_the_guard"
 time="1" />
<testcase classname="tests.test_restore" name="test_sse_line_endings[\\n]" time="0.1" />
<testcase classname="tests.test_engine" name="test_something" time="0.1" />
</testsuite></testsuites>
"""


def _mode(mode: int, name: str, p50: float) -> dict[str, Any]:
    return {
        "mode": mode, "name": name,
        "locust": {"requests": 5000 + mode, "failures": 0, "rps": 80.5, "avg_ms": p50 + 1, "p50_ms": p50,
                   "p95_ms": p50 * 3, "p99_ms": p50 * 5, "ttfb_p50_ms": 9.25},
        "processes": {"gateway": {"cpu_s": 12.34, "rss_peak_mb": 150.5, "rss_final_mb": 149.0}},
        "redis_clients": {"min": 2, "max": 3},
        "events": {"published": 10 * mode, "dropped": 0, "received": 10 * mode},
        "leaks": 0,
    }  # fmt: skip


BENCH: dict[str, Any] = {
    "date": "2026-12-05T22:00:00Z",
    "machine": "Bench CPU, 2 cores",
    "command": "make bench",
    "config": {"users": 20},
    "modes": [_mode(0, "no plugin", 10.0), _mode(1, "monitoring off", 20.0), _mode(2, "10%", 21.0),
              _mode(3, "100% batch 10", 22.0)],
    "seed": [
        {"mode": m, "scenario": "1000 requests, concurrency 50", "requests": 1000, "failures": 0,
         "expected": 1000} for m in (0, 1, 2)
    ] + [
        {"mode": 3, "scenario": "1000 requests, concurrency 50", "requests": 1000, "failures": 2,
         "expected": 1000},
        {"mode": 3, "scenario": "100 parallel requests", "requests": 100, "failures": 0, "expected": 100},
        {"mode": 3, "scenario": "200 sequential requests", "requests": 200, "failures": 0, "expected": 200},
    ],
    "checks": [
        {"name": "p50 increase vs mode 1", "mode": 3, "value": 0.1, "budget": 0.02, "passed": False,
         "kind": "goal"},
        {"name": "plugin-server peak RSS increase vs mode 1 (MB)", "mode": 3, "value": 1.5, "budget": 5.0,
         "passed": True, "kind": "goal"},
    ],
    "problems": [],
}  # fmt: skip

SOAK: dict[str, Any] = {
    "date": "2026-12-06T01:00:00Z",
    "machine": "Soak CPU, 2 cores",
    "command": "make soak",
    "config": {"mode": 3, "requests": 100000, "minutes": 15, "warmup_fraction": 0.2,
               "threshold_mb_per_100k": 5.0},
    "requests": 43210,
    "failures": 0,
    "leaks": 0,
    "duration_s": 900.0,
    "processes": {
        "gateway": {"rss_start_mb": 140.0, "rss_end_mb": 141.0, "rss_peak_mb": 142.0,
                    "slope_mb_per_100k": 0.77, "passed": True, "samples": [[0, 0, 140.0], [5, 100, 141.0]]},
        "subscriber": {"rss_start_mb": 40.0, "rss_end_mb": 60.0, "rss_peak_mb": 60.0,
                       "slope_mb_per_100k": 46.3, "passed": False, "samples": [[0, 0, 40.0]]},
    },
    "passed": False,
}  # fmt: skip


@pytest.fixture
def report(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.syspath_prepend(str(ROOT / "load"))
    import report

    return report


def _render(report: ModuleType, tmp_path: Path, junit: str | None = None, bench: dict | None = None,
            soak: dict | None = None) -> str:  # fmt: skip
    paths = {name: tmp_path / f"{name}.{ext}" for name, ext in (("junit", "xml"), ("bench", "json"),
                                                                ("soak", "json"))}  # fmt: skip
    if junit is not None:
        paths["junit"].write_text(junit)
    if bench is not None:
        paths["bench"].write_text(json.dumps(bench))
    if soak is not None:
        paths["soak"].write_text(json.dumps(soak))
    text: str = report.render(paths["junit"], paths["bench"], paths["soak"], tmp_path / "soak-rss.png", NOW,
                              link_from=tmp_path / "out")  # fmt: skip
    return text


def _section(text: str, heading: str) -> str:
    """The text under one heading, up to the next heading of any level."""
    return text.split(heading, 1)[1].split("\n#", 1)[0]


def test_nothing_run_says_not_run_everywhere_and_shows_no_figures(report: ModuleType, tmp_path: Path) -> None:
    text = _render(report, tmp_path)
    assert "Incomplete" in text and "**FAIL**" not in text and "Pass:" not in text
    for heading in ("## 1. Functional tests", "## 2. Performance tests", "### 3.1 Soak", "### 3.2 Seed"):
        body = _section(text, heading)
        assert "Not run" in body, heading
        assert "make " in body, heading  # how to run it
    summary = _section(text, "## Summary")
    assert summary.count("| not run |") == 4
    # no measurement at all: the only digits are the date, the headings and the commit
    body = text.split("## Summary", 1)[1]
    assert not re.search(r"\b\d+(\.\d+)? (ms|MB|RPS|requests)", body)


def test_a_failed_test_shows_as_failed_in_its_section_and_the_summary(
    report: ModuleType, tmp_path: Path
) -> None:
    text = _render(report, tmp_path, junit=JUNIT)
    assert "**FAIL**" in _section(text, "## Summary").split("\n\n", 2)[1]
    rows = {line.split(" | ")[0].lstrip("| "): line for line in text.splitlines() if line.startswith("| ")}
    assert rows["Sampling"].endswith("| 1 | 1 | 0 | 2 | **FAILED** |")
    assert rows["Batching"].endswith("| 1 | 0 | 0 | 1 | passed |")
    assert rows["Redis connection"].endswith("| 1 | 0 | 0 | 1 | passed |")
    assert rows["Fail-closed and failure modes"].endswith("| 1 | 0 | 0 | 1 | passed |")
    assert rows["Subscriber"].endswith("| 0 | 0 | 1 | 1 | not run |")
    assert rows["Load smoke test (Locust)"].endswith("| 0 | 0 | 0 | 0 | not run |")
    sampling = _section(text, "### 1.3 Sampling")
    assert "**FAILED** `tests/test_events.py::test_sampling_ten_percent_is_binomial`" in sampling
    assert "10.0.1.100" not in text  # an identifier in a failure message is masked
    assert "AWS_PRIVATE_IP_" in sampling
    skipped = "skipped `tests/e2e/test_live_page_browser.py::test_the_live_page`: chromium is not installed"
    assert skipped in text
    assert "2026-12-05T21:07:00" in text and "Test CPU, 2 cores" in text  # the JUnit run's time and machine
    assert "8 passed, 1 failed" not in text and "7 passed, 1 failed, 1 skipped of 9" in text


def test_bench_numbers_checks_and_a_missing_mode(report: ModuleType, tmp_path: Path) -> None:
    text = _render(report, tmp_path, bench=BENCH)
    perf = text.split("## 2. Performance tests", 1)[1].split("## 3.", 1)[0]
    assert "2026-12-05T22:00:00Z" in perf and "Bench CPU, 2 cores" in perf and "`make bench`" in perf
    assert "| 3 | 100% batch 10 | 5,003 | 0 | 80.5 | 23.0 | 22.0 | 66.0 | 110.0 | 9.2 | 0 | +10.0% |" in perf
    assert "Not run: mode 4 is not in the latest bench" in _section(text, "### 2.5")
    assert "| p50 increase vs mode 1 | goal | 3 | 0.100 | 0.02 | **FAIL** |" in perf
    assert "| plugin-server peak RSS increase vs mode 1 (MB) | goal | 3 | 1.500 | 5 | pass |" in perf
    assert "Redis connected clients: 2 to 3." in _section(text, "### 2.4")
    summary = _section(text, "## Summary")
    assert "1/2 checks passed" in summary and "failing: p50 increase vs mode 1" in summary
    seed = _section(text, "### 3.2 Seed scenarios")
    assert "| 1000 requests, concurrency 50 | 3 | 1,000 | 1,000 | 2 | **FAIL** |" in seed
    assert "| 200 sequential requests | 3 | 200 | 200 | 0 | pass |" in seed
    assert "| Seed scenarios | **FAIL** | 5/6 scenario runs succeeded |" in text


def test_a_seed_scenario_that_did_not_run_says_so(report: ModuleType, tmp_path: Path) -> None:
    seed = [s for s in BENCH["seed"] if s["expected"] != 100 and not s["failures"]]
    bench = dict(BENCH, seed=seed)
    text = _render(report, tmp_path, bench=bench)
    assert "Not run: 100 parallel requests; 1000 requests at concurrency 50 in mode 3." in text
    assert "| Seed scenarios | not run |" in text


def test_leaks_without_the_plugin_are_expected_and_a_broken_run_fails(
    report: ModuleType, tmp_path: Path
) -> None:
    modes = [m | {"leaks": 7} if m["mode"] == 0 else m for m in BENCH["modes"]]
    checks = [c | {"passed": True} for c in BENCH["checks"]]
    text = _render(report, tmp_path, bench=dict(BENCH, modes=modes, checks=checks))
    assert "| Performance | pass | 2/2 checks passed, stub leaks 0 (modes 1-4)" in text
    assert "its leak count (identifiers reaching the stub) is expected there" in text
    modes = [m | {"leaks": 1} if m["mode"] == 2 else m for m in modes]
    text = _render(report, tmp_path, bench=dict(BENCH, modes=modes, checks=checks))
    assert "| Performance | **FAIL** | 2/2 checks passed, stub leaks 1 (modes 1-4)" in text
    problem = "mode 3: 2 requests failed"
    text = _render(report, tmp_path, bench=dict(BENCH, checks=checks, problems=[problem]))
    assert "| Performance | **FAIL** |" in text and f"- {problem}" in text


def test_soak_table_verdict_and_plot_link(report: ModuleType, tmp_path: Path) -> None:
    (tmp_path / "soak-rss.png").write_bytes(b"\x89PNG")
    text = _render(report, tmp_path, soak=SOAK)
    soak = _section(text, "### 3.1 Soak")
    assert "2026-12-06T01:00:00Z" in soak and "Soak CPU, 2 cores" in soak
    assert "43,210 requests in 900 s, 0 failures, stub leak count 0: **FAIL**." in soak
    assert "It stopped at its time limit before its 100,000 requests." in soak
    assert "| subscriber | 40.0 | 60.0 | 60.0 | 46.30 | 1 | — | **FAIL** |" in soak
    assert "| gateway | 140.0 | 141.0 | 142.0 | 0.77 | 2 | — | pass |" in soak
    assert "after the first 20% of the requests (the warm-up) is at most 5.0 MB per 100k requests" in soak
    assert "](../soak-rss.png)" in soak
    assert "largest RSS slope 46.30 MB/100k" in _section(text, "## Summary")


def test_all_parts_passing_is_a_pass(report: ModuleType, tmp_path: Path) -> None:
    junit = re.sub(r"<failure[^>]*>trace</failure>", "", JUNIT)
    bench = dict(BENCH, checks=[c | {"passed": True} for c in BENCH["checks"]],
                 seed=[s | {"failures": 0} for s in BENCH["seed"]])  # fmt: skip
    procs = {name: p | {"passed": True, "slope_mb_per_100k": 0.5} for name, p in SOAK["processes"].items()}
    soak = dict(SOAK, passed=True, requests=100000, processes=procs)
    text = _render(report, tmp_path, junit=junit, bench=bench, soak=soak)
    assert "Pass: every part ran and passed." in text
    assert "**FAIL**" not in text


def test_main_writes_the_dated_file(report: ModuleType, tmp_path: Path) -> None:
    before = datetime.now(timezone.utc)
    none = str(tmp_path / "none")
    args = ["--junit", none, "--bench", none, "--soak", none, "--out-dir", str(tmp_path / "out")]
    assert report.main(args) == 0
    (written,) = (tmp_path / "out").iterdir()
    assert re.fullmatch(r"realtime-monitoring-test-\d{8}\.md", written.name)
    assert written.name[-11:-3] in {f"{d:%Y%m%d}" for d in (before, datetime.now(timezone.utc))}
    assert "# Real-time monitoring test report" in written.read_text()


def test_the_sections_name_test_modules_that_exist(report: ModuleType) -> None:
    """A renamed test module must not silently empty its section."""
    import report_junit

    for section in report_junit.SECTIONS:
        for module, _ in section.rules:
            if module.startswith("~"):
                continue
            path = ROOT / module.replace(".", "/").rstrip("/")
            assert path.is_dir() or path.with_suffix(".py").is_file() or section.key == "smoke", module


def test_each_plan_section_claims_its_tests(report: ModuleType) -> None:
    import report_junit
    from report_junit import Case

    expect = {
        ("tests.test_events_redis", "test_redis_stopped_then_restarted"): "redis",
        ("tests.subscriber.test_subscriber_redis", "test_tls_with_a_private_ca"): "redis",
        ("tests.e2e.test_monitoring", "test_each_request_gets_both_events_with_kongs_request_id"): "publishing",  # noqa: E501
        ("tests.e2e.test_monitoring", "test_sampling_keeps_both_events_of_a_request_together"): "sampling",
        ("tests.test_events_redis", "test_batches_reach_the_channel_on_one_connection"): "batching",
        ("tests.e2e.test_monitoring", "test_the_subscriber_sees_the_events"): "subscriber",
        ("tests.nginx.test_nginx_restore", "test_foreign_tokens_pass_through"): "restore",
        ("tests.test_plugin", "test_unexpected_exception_fails_closed_with_503"): "failclosed",
        ("tests.e2e.test_locust_smoke", "test_ten_seconds"): "smoke",
        ("tests.e2e.test_memory", "test_gateway_rss_stays_flat_after_warm_up"): "memory",
        ("tests.test_engine", "test_anything"): "other",
    }
    cases = [Case(m, n, "passed") for m, n in expect]
    groups = report_junit.assign(cases)
    got = {(c.module, c.name): key for key, cs in groups.items() for c in cs}
    assert got == expect


def test_a_failed_check_links_the_profiles_of_the_same_run(report: ModuleType, tmp_path: Path) -> None:
    text = _render(report, tmp_path, bench=BENCH)  # BENCH fails its p50 goal
    assert "A check failed and the bench wrote no profile" in text
    (tmp_path / "profile-mode3.md").write_text("# profile\n")  # beside bench.json, as make bench writes it
    text = _render(report, tmp_path, bench=BENCH)
    assert "Where the time goes" in text and "[profile-mode3.md](../profile-mode3.md)" in text
