"""``make bench-gateway --quick`` runs to the end, exits 0 and writes its section (a smoke test:
nothing here looks at timings)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_quick_run_writes_its_section(tmp_path: Path) -> None:
    out = tmp_path / "benchmarks.md"
    out.write_text("# Benchmarks\n\nnotes kept\n")
    proc = subprocess.run(
        [sys.executable, str(ROOT / "load" / "bench_gateway.py"), "--quick", "--out", str(out)],
        capture_output=True, text=True, timeout=300, cwd=ROOT / "load",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    doc = out.read_text()
    assert "notes kept" in doc
    section = doc.split("<!-- bench-gateway:start -->", 1)[1].split("<!-- bench-gateway:end -->", 1)[0]
    for mode in ("| none |", "| noop |", "| aws-masker |", "| aws-masker+events |"):
        assert mode in section
    assert "Monitoring at 100% sampling" in section and "PDK calls 3 (access 3)" in section
    lua = re.search(r"the guard\) in this gateway's LuaJIT ([0-9.]+) ms", section)
    assert lua and float(lua[1]) > 0  # the Lua plugins' time is counted
    assert "CPU per request with 8 concurrent clients" in section
    cpu_rows = [
        line for line in section.splitlines() if line.startswith("| aws-masker | ") and line.count("|") == 7
    ]
    assert cpu_rows and float(cpu_rows[0].split("|")[3]) > 0  # the plugin server did work on its route
    memory = re.search(r"Monitoring's memory: .* per pair: ([0-9.]+) and ([0-9.]+) MB", section)
    assert memory and float(memory[1]) > 10 and float(memory[2]) > 10  # one pair, both plugin servers
    assert "round 2/2" in proc.stderr and "memory, pair 1/1" in proc.stderr  # progress while it runs
