#!/usr/bin/env python3
"""A do-nothing external plugin for ``make bench-gateway``: ``access`` returns at once, with no PDK
call. Its cost is what Kong's external-plugin machinery costs (one HandleEvent round trip and a
plugin-server thread per request), the floor under any Python plugin."""

from __future__ import annotations

import sys
import warnings

Schema: list[dict] = []
version = "1.0.0"
priority = 771


class Plugin:
    def __init__(self, config: dict) -> None:
        self.config = config

    def access(self, kong: object) -> None:
        return None


if __name__ == "__main__":
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    from kong_pdk.cli import start_dedicated_server

    sys.argv.append("--no-lua-style")
    start_dedicated_server("noop", Plugin, version, priority, Schema)
