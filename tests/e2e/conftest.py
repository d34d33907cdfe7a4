from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from redis_server import RedisServer

from .stack import CLI, Proc, Stack, http, stub_config


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    s = Stack(Path(tmp_path_factory.mktemp("stack")))
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture
def live(tmp_path: Path, make_redis: Callable[..., RedisServer]) -> Iterator[tuple[Stack, str, RedisServer]]:
    """The stack with monitoring on (a private redis-server), the subscriber on it, and its URL."""
    server = make_redis()
    fields = {
        "enable_event_monitoring": True,
        "redis_host": "127.0.0.1",
        "redis_port": server.port,
        "event_batch_size": 10,
        "event_flush_interval_ms": 50,
        "event_stats_interval_s": 1,
    }
    stack = Stack(tmp_path, config_factory=lambda url: stub_config(url, **fields), log_level="info")
    sub = None
    try:
        sub = Proc(
            [*CLI, "subscriber", "--listen", "127.0.0.1:0", "--redis-port", str(server.port)],
            stack.env,
            "ready on",
        )
        match = re.search(r"ready on (http://[\d.:]+)", "\n".join(sub.lines))
        assert match is not None
        url = match.group(1)
        deadline = time.monotonic() + 15
        while json.loads(http("GET", url + "/health")[2]).get("status") != "ok":
            assert time.monotonic() < deadline, "the subscriber did not subscribe"
            time.sleep(0.05)
        yield stack, url, server
    finally:
        if sub is not None:
            sub.stop()
        stack.stop()
