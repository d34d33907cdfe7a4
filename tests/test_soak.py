"""``make soak``'s verdict (load/soak.py): the least-squares slope of RSS against requests done after
the warm-up, in MB per 100k requests, against the threshold; a short run's rise within the noise; the
soak's JSON. The soak itself is not run here (it takes minutes); these use made-up samples."""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def soak(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    pytest.importorskip("psutil")
    monkeypatch.syspath_prepend(str(ROOT / "load"))
    try:
        import soak
    except ImportError as exc:  # load/stackrun.py or load/locustrun.py missing
        pytest.fail(f"load/soak.py does not import: {exc}")
    return soak


def _samples(n: int, total: int, base: float, mb_per_100k: float, warm_rise: float = 0.0,
             jitter: float = 0.0) -> list[list[float]]:  # fmt: skip
    """``n`` samples up to ``total`` requests: RSS rises ``warm_rise`` MB over the first 20%, then
    by ``mb_per_100k``, with an alternating ``jitter``."""
    out = []
    for i in range(n):
        done = total * i // (n - 1)
        rss = base + min(done, total * 0.2) / (total * 0.2) * warm_rise + done * mb_per_100k / 100_000
        out.append([float(i * 5), done, rss + (jitter if i % 2 else -jitter)])
    return out


def test_slope_is_the_least_squares_line(soak: ModuleType) -> None:
    assert soak.least_squares_slope([(0, 1), (1, 3), (2, 5)]) == pytest.approx(2.0)
    assert soak.least_squares_slope([(0, 1), (1, 2), (2, 1), (3, 2)]) == pytest.approx(0.2)
    assert soak.least_squares_slope([(0, 1), (1, 3)]) is None  # too few points
    assert soak.least_squares_slope([(5, 1), (5, 3), (5, 4)]) is None  # no spread


def test_a_flat_process_after_a_steep_warm_up_passes(soak: ModuleType) -> None:
    v = soak.verdict(_samples(41, 100_000, 50.0, 0.0, warm_rise=30.0, jitter=0.5))
    assert v.passed and v.basis == "slope"
    assert v.slope_mb_per_100k == pytest.approx(0.0, abs=0.2)


def test_a_leak_fails_and_its_slope_is_measured(soak: ModuleType) -> None:
    v = soak.verdict(_samples(41, 100_000, 50.0, 12.0, warm_rise=30.0, jitter=0.5))
    assert not v.passed and v.basis == "slope"
    assert v.slope_mb_per_100k == pytest.approx(12.0, rel=0.05)


def test_the_threshold_is_inclusive_and_settable(soak: ModuleType) -> None:
    samples = _samples(41, 100_000, 50.0, 4.0)
    assert soak.verdict(samples).passed  # 4 <= 5
    assert not soak.verdict(samples, threshold=3.0, noise_mb=0.0).passed


def test_the_warm_up_fraction_is_left_out(soak: ModuleType) -> None:
    samples = _samples(41, 100_000, 50.0, 0.0, warm_rise=30.0)
    assert soak.verdict(samples, warmup=0.2).passed
    assert not soak.verdict(samples, warmup=0.0).passed  # the warm-up's rise counted as a leak


def test_a_short_run_within_the_noise_passes_on_that_basis(soak: ModuleType) -> None:
    samples = _samples(11, 2_000, 50.0, 60.0)  # 60 MB/100k, but 0.84 MB over the fitted 1,400 requests
    v = soak.verdict(samples, noise_mb=2.0)
    assert v.passed and v.basis == "noise"
    assert not soak.verdict(samples, noise_mb=0.5).passed


def test_too_few_samples_is_no_pass(soak: ModuleType) -> None:
    v = soak.verdict([[0, 0, 50.0], [5, 1000, 50.0]])
    assert not v.passed and v.basis == "too few samples" and v.slope_mb_per_100k is None


def test_process_result_and_json(soak: ModuleType) -> None:
    samples = _samples(5, 1000, 40.0, 0.0)
    p = soak.process_result(samples, 0.2, 5.0, 2.0)
    assert (p["rss_start_mb"], p["rss_end_mb"], p["rss_peak_mb"]) == (40.0, 40.0, 40.0)
    assert p["passed"] and p["samples"] == samples
    text = soak.to_json({"processes": {"stub": p}})
    assert json.loads(text)["processes"]["stub"]["samples"] == samples
    assert "[0.0, 0, 40.0]" in text  # one line per sample


def test_plot_writes_a_png(soak: ModuleType, tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    result = {
        "date": "2026-12-06T00:00:00Z", "requests": 1000, "passed": True,
        "config": {"warmup_fraction": 0.2},
        "processes": {"stub": soak.process_result(_samples(5, 1000, 40.0, 0.0), 0.2, 5.0, 2.0)},
    }  # fmt: skip
    soak.plot(result, tmp_path / "soak.png")
    assert (tmp_path / "soak.png").read_bytes()[:4] == b"\x89PNG"


def test_a_failed_short_run_says_it_is_too_short(soak: ModuleType) -> None:
    growing = soak.process_result(_samples(20, 3000, 40.0, 300.0), 0.2, 5.0, 2.0)
    assert not growing["passed"]
    result = {"requests": 3000, "duration_s": 9.0, "failures": 0, "leaks": 0, "passed": False,
              "processes": {"gateway": growing}}  # fmt: skip
    assert "too few to tell a leak" in soak.summary_lines(result)[-1]
    for change in ({"requests": 300_000}, {"failures": 1}):  # long enough, or failed for another reason
        assert "too few" not in "\n".join(soak.summary_lines({**result, **change}))
