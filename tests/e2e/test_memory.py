"""The gateway's memory stays flat under load (issue 10, "Memory").

A request used to stay in memory for good (its Lua table and the request referred to each other
through the Lua registry, where no collector sees the cycle): about 20 KB per request, so RSS grew
linearly. This sends a few thousand requests with unique identifiers through the gateway and the
real plugin server and bounds the gateway's RSS growth after a warm-up. The bound is generous (the
gateway keeps its last 10,000 request records, about 2 KB each); the old leak exceeds it several
times over. Nothing here measures time.
"""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from .stack import Stack

pytestmark = pytest.mark.e2e

CLIENTS = 4
WARM_UP = 400
MEASURED = 2000
MAX_GROWTH_PER_1000 = 8 * 1024 * 1024  # bytes; measured: 2.5 MB fixed, 27 MB with the old leak


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    s = Stack(Path(tmp_path_factory.mktemp("memory")))
    try:
        yield s
    finally:
        s.stop()


def rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def body(n: int) -> bytes:
    """About 8 KB of prompt with identifiers unique to request ``n``."""
    line = f"instance i-{n:017x} at 10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255} bucket logs-{n}-archive\n"
    text = (line * (8192 // len(line) + 1))[:8192]
    message = {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": text}]}
    return json.dumps(message).encode()


def send_many(stack: Stack, start: int, count: int) -> None:
    port = int(stack.url.rsplit(":", 1)[1])
    headers = {"content-type": "application/json", "anthropic-version": "2023-06-01", "x-api-key": "k"}

    def client(first: int) -> list[int]:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        statuses = []
        try:
            for n in range(first, start + count, CLIENTS):
                conn.request("POST", "/v1/messages", body(n), headers)
                res = conn.getresponse()
                res.read()
                statuses.append(res.status)
        finally:
            conn.close()
        return statuses

    with ThreadPoolExecutor(CLIENTS) as pool:
        statuses = [s for part in pool.map(client, range(start, start + CLIENTS)) for s in part]
    assert statuses == [200] * count


def test_gateway_rss_stays_flat_after_warm_up(stack: Stack) -> None:
    pid = stack.gateway.proc.pid
    send_many(stack, 0, WARM_UP)
    before = rss(pid)
    send_many(stack, WARM_UP, MEASURED)
    growth = rss(pid) - before
    assert growth < MAX_GROWTH_PER_1000 * MEASURED / 1000, f"RSS grew {growth / 2**20:.1f} MB"
    assert stack.stub_stats()["leaks"] == 0
