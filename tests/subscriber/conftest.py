"""Fixtures for the subscriber tests: private redis-servers and subscriber subprocesses, all stopped
at teardown. Helpers live in ``subscriber_harness.py``."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from subscriber_harness import RedisServer, SubscriberProcess


@pytest.fixture
def redis_server(make_redis: Callable[..., RedisServer]) -> RedisServer:
    return make_redis()


@pytest.fixture
def spawn() -> Iterator[Callable[[list[str]], SubscriberProcess]]:
    """Factory: ``spawn(args)`` runs ``aws-masker subscriber --listen 127.0.0.1:0 *args``."""
    procs: list[SubscriberProcess] = []

    def factory(args: list[str]) -> SubscriberProcess:
        proc = SubscriberProcess(args)
        procs.append(proc)
        return proc

    yield factory
    for proc in procs:
        proc.kill()
