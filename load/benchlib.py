"""What the ``make bench-*`` scripts share: percentiles, the machine's description, and writing a
benchmark's own section of docs/benchmarks.md (between its markers, leaving the rest alone)."""

from __future__ import annotations

import math
import os
import platform
from collections.abc import Sequence
from pathlib import Path


def pct(samples: Sequence[float], q: float) -> float:
    """The ``q`` quantile by nearest rank (the smallest sample with at least ``q`` of them at or
    below it): one definition for every bench, Locust's runs included."""
    s = sorted(samples)
    return s[min(len(s) - 1, max(0, math.ceil(q * len(s)) - 1))]


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    system = f"{platform.system()} {platform.release()}"
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, {system}"


def write_section(out: Path, start: str, end: str, section: str) -> None:
    """Replace the text between ``start`` and ``end`` in ``out`` (``section`` includes both), or
    append it."""
    doc = out.read_text() if out.exists() else "# Benchmarks\n\nNumbers from `make bench-*` runs.\n"
    if start in doc and end in doc:
        before, rest = doc.split(start, 1)
        doc = before + section + rest.split(end, 1)[1]
    else:
        doc = doc.rstrip("\n") + "\n\n" + section + "\n"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(doc)
