"""load/profiles.py: py-spy's collapsed stacks summarised into self/total shares."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "load"))
profiles = importlib.import_module("profiles")

RAW = """\
<module> (srv.py);handle (listener.py);access (phases.py);mask_request (body.py) 6
<module> (srv.py);handle (listener.py);access (phases.py) 2
<module> (srv.py);handle (listener.py);recv (socket.py) 2
garbage line without count
"""


def test_self_and_total_shares() -> None:
    profile = profiles.summarise(RAW)
    assert profile.samples == 10
    rows = {row.function: row for row in profile.rows}
    assert rows["mask_request (body.py)"].self_share == pytest.approx(0.6)
    assert rows["access (phases.py)"].self_share == pytest.approx(0.2)
    assert rows["access (phases.py)"].total_share == pytest.approx(0.8)
    assert rows["<module> (srv.py)"].total_share == pytest.approx(1.0)
    assert profile.rows[0].function == "mask_request (body.py)"  # most self time first


def test_recursive_frame_counts_once_per_sample() -> None:
    profile = profiles.summarise("a (x.py);b (x.py);a (x.py) 4\n")
    rows = {row.function: row for row in profile.rows}
    assert rows["a (x.py)"].total_share == pytest.approx(1.0)


def test_top_limits_rows_and_markdown_escapes_pipes() -> None:
    profile = profiles.summarise("a|b (x.py) 1\nc (y.py) 3\n", top=1)
    assert [row.function for row in profile.rows] == ["c (y.py)"]
    text = profiles.markdown(profiles.summarise("a|b (x.py) 1\n"), "t")
    assert "a\\|b" in text and "1 samples" in text


def test_empty_input() -> None:
    assert profiles.summarise("") == profiles.Profile(0, [])


def test_records_a_running_process() -> None:
    try:
        profiles.py_spy()
    except profiles.ProfileError:
        pytest.skip("py-spy is not installed")
    busy = subprocess.Popen(
        [sys.executable, "-c", "def spin():\n    while True: sum(range(1000))\nspin()"]
    )
    try:
        time.sleep(0.3)
        try:
            profile = profiles.record(busy.pid, 1)
        except profiles.ProfileError as exc:
            if os.geteuid() != 0:
                pytest.skip(f"no permission to sample: {exc}")
            raise
    finally:
        busy.kill()
        busy.wait()
    assert profile.samples > 0
    assert any(row.function.startswith("spin ") for row in profile.rows)
