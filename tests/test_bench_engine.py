"""``make bench-engine`` runs and writes its section (a smoke test: nothing here looks at timings)."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest


def test_quick_run_rewrites_only_its_own_section(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(Path(__file__).parents[1] / "load"))
    bench_engine = importlib.import_module("bench_engine")
    out = tmp_path / "benchmarks.md"
    out.write_text(
        "# Benchmarks\n\nnotes kept\n\n"
        f"{bench_engine.START}\nold numbers\n{bench_engine.END}\n\n## Gateway\n\nother section kept\n"
    )
    assert bench_engine.main(["--quick", "--out", str(out)]) == 0
    doc = out.read_text()
    assert "notes kept" in doc and "other section kept" in doc and "old numbers" not in doc
    section = doc.split(bench_engine.START, 1)[1].split(bench_engine.END, 1)[0]
    for row in ("8 KB prompt, mask |", "1 MB CLI dump, mask |", "10 MB CLI dump, mask |", "restore |"):
        assert row in section
    assert "fallback scanner" in section and "Linearity: masking 10 MB took" in section
    assert section.count("\n| ") == 9  # the header and eight cases
    assert section.strip() in capsys.readouterr().out
