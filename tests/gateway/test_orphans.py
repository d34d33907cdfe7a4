"""A child started with ``die_with_parent`` stops when its parent is killed with SIGKILL; one
started without it keeps running (so the first check can fail)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import psutil
import pytest

PARENT = """
import subprocess, sys, time
from aws_masker_gateway.orphans import die_with_parent
kwargs = {"preexec_fn": die_with_parent} if sys.argv[1] == "guarded" else {}
child = subprocess.Popen(["sleep", "60"], start_new_session=True, **kwargs)
print(child.pid, flush=True)
time.sleep(60)
"""


def child_after_parent_killed(mode: str) -> psutil.Process:
    parent = subprocess.Popen([sys.executable, "-c", PARENT, mode], stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    child = psutil.Process(int(parent.stdout.readline()))
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    return child


def gone(proc: psutil.Process, within: float) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if not proc.is_running() or proc.status() == psutil.STATUS_ZOMBIE:
            return True
        time.sleep(0.05)
    return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux only")
def test_guarded_child_stops_with_its_parent() -> None:
    assert gone(child_after_parent_killed("guarded"), within=10)


def test_unguarded_child_outlives_its_parent() -> None:
    child = child_after_parent_killed("plain")
    try:
        assert not gone(child, within=0.5)
    finally:
        os.kill(child.pid, signal.SIGKILL)
