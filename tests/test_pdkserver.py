"""The plugin server's replacements for kong-pdk internals (aws_masker/pdkserver.py). The protocol
itself is exercised end to end by tests/e2e, which run aws-masker-server behind the local gateway."""

from __future__ import annotations

import threading
import time

import pytest

from aws_masker import pdkserver
from aws_masker.pdkserver import PhasePool


def wait_for(condition, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline
        time.sleep(0.01)


def test_method_names_convert_like_kong_pdk() -> None:
    for cmd, name in (
        ("HandleEvent", "handle_event"),
        ("StepMultiMap", "step_multi_map"),
        ("GetStatus", "get_status"),
        ("Step", "step"),
    ):
        assert pdkserver._method_name(cmd) == name


def test_idle_threads_are_reused() -> None:
    pool = PhasePool()
    threads: list[str] = []
    for _ in range(20):
        done = threading.Event()
        pool.submit(lambda d=done: (threads.append(threading.current_thread().name), d.set()))
        assert done.wait(5)
        wait_for(lambda: pool.idle == 1)
    assert pool.started == 1 and len(threads) == 20


def test_grows_to_the_phases_in_flight() -> None:
    """Each phase waits on Kong between PDK calls: a waiting phase must not hold up another."""
    pool = PhasePool()
    release = threading.Event()
    running = []
    for _ in range(8):
        pool.submit(lambda: (running.append(1), release.wait(10)))
    wait_for(lambda: len(running) == 8)
    assert pool.started == 8
    release.set()
    wait_for(lambda: pool.idle == 8)


def test_idle_threads_exit() -> None:
    pool = PhasePool(idle_exit=0.05)
    for _ in range(3):
        pool.submit(lambda: time.sleep(0.1))
    wait_for(lambda: pool.started == 3 and pool.alive == 0 and pool.idle == 0)
    done = threading.Event()
    pool.submit(done.set)  # a new thread starts when none is left
    assert done.wait(5) and pool.started == 4


def test_an_exception_is_reported_not_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    seen = []
    monkeypatch.setattr(threading, "excepthook", lambda args: seen.append(args.exc_type))
    pool = PhasePool()
    pool.submit(lambda: 1 / 0)
    wait_for(lambda: seen == [ZeroDivisionError])
    done = threading.Event()
    pool.submit(done.set)  # the thread lives on
    assert done.wait(5) and pool.started == 1
