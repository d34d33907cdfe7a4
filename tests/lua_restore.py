"""The Lua restore modules (kong/plugins/aws-masker-restore/) in an embedded LuaJIT, for tests.

They are loaded with ``require`` from the repository's Lua path, exactly the files Kong loads.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import lupa.luajit21 as lupa

ROOT = Path(__file__).resolve().parents[1]
PREFIX = "kong.plugins.aws-masker-restore."


class LuaRestore:
    def __init__(self) -> None:
        self.lua = lupa.LuaRuntime(encoding=None, register_eval=False)
        self.lua.execute(f'package.path = "{ROOT}/?.lua;" .. package.path'.encode())
        self.restore = self.lua.eval(f'require "{PREFIX}restore"'.encode())
        self.sse = self.lua.eval(f'require "{PREFIX}sse"'.encode())
        self.jsonspan = self.lua.eval(f'require "{PREFIX}jsonspan"'.encode())

    def table(self, mapping: Mapping[str, str]) -> object:
        return self.lua.table_from({k.encode(): v.encode("utf-8") for k, v in mapping.items()})

    def token_map(self, tokens: Mapping[str, str], categories: Mapping[str, str], escaped: bool) -> object:
        return self.restore.TokenMap.new(self.table(tokens), self.table(categories), escaped)

    def restorer(
        self, tokens: Mapping[str, str], categories: Mapping[str, str], kind: str, max_held: int = 1 << 20
    ) -> object:
        """``kind``: ``sse``, ``json`` or ``text``."""
        token_map = self.token_map(tokens, categories, kind != "text")
        if kind == "sse":
            return self.sse.SSERestorer.new(token_map, max_held)
        return self.restore.StreamRestorer.new(token_map)

    def run(self, restorer: object, chunks: list[bytes]) -> bytes:
        out = [restorer.feed(restorer, chunk) for chunk in chunks]  # type: ignore[attr-defined]
        out.append(restorer.finish(restorer))  # type: ignore[attr-defined]
        return b"".join(out)
