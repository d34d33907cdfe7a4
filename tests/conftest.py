"""Shared fixtures. Tests never print or snapshot original identifiers beyond their own inputs."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from junit_file import configure as configure_junit_file
from redis_server import RedisServer

from aws_masker.config import MaskerConfig
from aws_masker.engine import Masker

SECRET = "test-secret"


def pytest_configure(config: pytest.Config) -> None:
    configure_junit_file(config)  # make test's JUnit XML for make report


@pytest.fixture(scope="session")
def masker() -> Masker:
    return Masker(MaskerConfig(token_secret=SECRET))


@pytest.fixture
def make_redis(tmp_path: Path) -> Iterator[Callable[..., RedisServer]]:
    """Factory: ``make_redis(password=..., tls=...)`` starts a private redis-server on a free port."""
    servers: list[RedisServer] = []

    def factory(**kwargs: Any) -> RedisServer:
        server = RedisServer(tmp_path / f"redis{len(servers)}", **kwargs)
        servers.append(server)
        return server.start()

    yield factory
    for server in servers:
        server.stop()
