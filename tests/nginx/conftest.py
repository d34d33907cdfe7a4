"""Fixtures for tests/nginx: one nginx (with lua-nginx-module) and one upstream for the session.

Without nginx or its Lua module every test here is skipped, saying why; with
AWS_MASKER_REQUIRE_NGINX=1 (CI) that is a failure instead.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from nginx_harness import REQUIRE_ENV, Nginx, Upstream, find_nginx


@pytest.fixture(scope="session")
def nginx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Nginx]:
    install, why = find_nginx()
    if install is None:
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail(f"{REQUIRE_ENV}=1 but {why}", pytrace=False)
        pytest.skip(f"nginx tests need nginx with lua-nginx-module: {why}")
    upstream = Upstream()
    upstream.start()
    server = Nginx(install, Path(tmp_path_factory.mktemp("nginx")), upstream)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        upstream.stop()
