"""The Locust load file (load/locustfile.py) against the local stack of ``aws-masker up``: a short
headless run passes every answer check with no leak; the same run against the Claude stub directly
(so nothing is masked or restored) fails, with failure names that hold no identifier. No timings."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from redis_server import RedisServer

from aws_masker.config import MaskerConfig
from aws_masker.engine import Masker
from aws_masker_stack.ports import free_port, free_ports

from .stack import CLI, ROOT, Proc, http

pytestmark = pytest.mark.e2e

LOCUSTFILE = ROOT / "load" / "locustfile.py"
TTFB = "stream: time to first text delta"


def locust(tmp_path: Path, host: str, *extra: str) -> tuple[subprocess.CompletedProcess[str], Path]:
    prefix = tmp_path / "locust" / "run"
    env = {k: v for k, v in os.environ.items() if k != "ANTHROPIC_API_KEY"}
    out = subprocess.run(
        [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "-u", "4", "-r", "4",
         "--host", host, "--csv", str(prefix), "--exit-code-on-error", "1", "--only-summary", *extra],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    return out, prefix


def rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


@pytest.mark.timeout(240)
def test_a_locust_run_through_the_local_stack_passes_every_check(
    tmp_path: Path, make_redis: Callable[..., RedisServer]
) -> None:
    server = make_redis()
    env = {**os.environ, "REDIS_URL": f"redis://127.0.0.1:{server.port}/0"}
    env.pop("ANTHROPIC_API_KEY", None)
    gateway, stub, subscriber = free_ports(3)
    stack = Proc(
        [*CLI, "up", "--no-demo", "--run-dir", str(tmp_path / "run"), "--listen", f"127.0.0.1:{gateway}",
         "--stub-listen", f"127.0.0.1:{stub}", "--subscriber-listen", f"127.0.0.1:{subscriber}"],
        env, "Ctrl-C stops everything",
    )  # fmt: skip
    try:
        out, prefix = locust(tmp_path, f"http://127.0.0.1:{gateway}", "-t", "10s")
        stats = json.loads(http("GET", f"http://127.0.0.1:{stub}/stats")[2])
    finally:
        stack.stop()
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    entries = {row["Name"]: row for row in rows(Path(f"{prefix}_stats.csv"))}
    assert int(entries["Aggregated"]["Request Count"]) > 0
    assert all(row["Failure Count"] == "0" for row in entries.values())
    assert rows(Path(f"{prefix}_failures.csv")) == []
    assert entries[TTFB]["Type"] == "TTFB" and int(entries[TTFB]["Request Count"]) > 0
    assert {"stream", "complex request", "conversation turn 3"} <= set(entries)
    assert stats["leaks"] == 0 and stats["messages"] > 0 and stats["streams"] > 0


@pytest.mark.timeout(180)
def test_the_same_run_against_the_stub_directly_fails(tmp_path: Path) -> None:
    """Nothing masks or restores there: every answer lacks the identifiers. The run stops after
    --max-requests, and neither Locust's output nor its CSV files name an identifier."""
    port = free_port()
    stub = Proc([*CLI, "stub", "--listen", f"127.0.0.1:{port}"], dict(os.environ), "listening on")
    try:
        out, prefix = locust(tmp_path, f"http://127.0.0.1:{port}", "-t", "60s", "--max-requests", "30")
    finally:
        stub.stop()
    assert out.returncode == 1, out.stdout[-3000:] + out.stderr[-3000:]
    entries = {row["Name"]: row for row in rows(Path(f"{prefix}_stats.csv"))}
    total = entries.pop("Aggregated")
    ttfb = int(entries.pop(TTFB, {"Request Count": "0"})["Request Count"])
    assert int(total["Request Count"]) - ttfb == 30  # --max-requests: exactly, TTFB entries aside
    failures = rows(Path(f"{prefix}_failures.csv"))
    assert {f["Error"] for f in failures} == {"CatchResponseError('identifier not restored')"}
    # every request failed but the echo's (the stub echoes the text as sent: nothing to restore)
    echo = entries.pop("echo round trip", {"Failure Count": "0"})
    assert echo["Failure Count"] == "0"
    assert all(row["Failure Count"] == row["Request Count"] != "0" for row in entries.values())
    shown = out.stdout + out.stderr + "".join(p.read_text() for p in prefix.parent.iterdir())
    assert "identifier not restored" in shown
    assert sum(f.mask for f in Masker(MaskerConfig(token_secret="t")).find(shown)) == 0
