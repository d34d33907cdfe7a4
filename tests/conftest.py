"""Shared fixtures. Tests never print or snapshot original identifiers beyond their own inputs."""

from __future__ import annotations

import pytest

from aws_masker.config import MaskerConfig
from aws_masker.engine import Masker

SECRET = "test-secret"


@pytest.fixture(scope="session")
def masker() -> Masker:
    return Masker(MaskerConfig(token_secret=SECRET))
