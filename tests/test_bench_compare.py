"""``make bench-compare`` exports a revision's engine beside this checkout's and times both (a smoke
test: nothing here looks at timings)."""

from __future__ import annotations

import importlib
import shutil
import subprocess
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).parents[1]


def _bench_compare(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.syspath_prepend(str(ROOT / "load"))
    return importlib.import_module("bench_compare")


@pytest.mark.skipif(
    shutil.which("git") is None or not (ROOT / ".git").exists(), reason="needs the git checkout"
)
def test_a_quick_run_against_head_prints_both_inputs(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    bench_compare = _bench_compare(monkeypatch)
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    assert bench_compare.main(["--base", head.stdout.strip(), "--quick"]) == 0
    table = capsys.readouterr().out
    assert table.count("\n| ") == 2  # the two inputs, under the header and its rule line
    assert "| 8 KB prompt |" in table and "| 1 MB dump |" in table and table.count("x |") == 2


def test_an_unknown_revision_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    bench_compare = _bench_compare(monkeypatch)
    with pytest.raises(SystemExit, match="cannot export 'no-such-revision'"):
        bench_compare.main(["--base", "no-such-revision", "--quick"])
