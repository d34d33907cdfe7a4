"""Fixtures for the gateway tests; the harness itself lives in ``gateway_harness.py``."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from gateway_harness import SHARED_YML, GatewayHarness


@pytest.fixture
def make_gateway() -> Iterator[Callable[..., GatewayHarness]]:
    """Factory: ``make_gateway(kong_yml, rpc_timeout=..., respawn=..., env=...)``; all stopped at teardown."""
    started: list[GatewayHarness] = []

    def factory(kong_yml: str, **kwargs: Any) -> GatewayHarness:
        harness = GatewayHarness(kong_yml, **kwargs)
        started.append(harness)
        return harness

    yield factory
    for harness in reversed(started):
        harness.stop()


@pytest.fixture(scope="module")
def shared_gateway() -> Iterator[GatewayHarness]:
    """One gateway for the read-only end-to-end tests of a module (default 8k body buffer)."""
    harness = GatewayHarness(SHARED_YML)
    try:
        yield harness
    finally:
        harness.stop()
