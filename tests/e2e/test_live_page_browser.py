"""The live page in real headless Chromium: opened before any traffic, it must show the counters
change (without a reload: fed by the subscriber's Server-Sent Events) after known requests go through
the gateway, with the right counts per category, and draw both charts; opened with JavaScript off,
it shows the same numbers, rendered by the server.

Set ``AWS_MASKER_SCREENSHOT=docs/live-page.png`` to write the page's screenshot there, after 24
rounds of requests instead of 3 (how the one in the README was made)."""

from __future__ import annotations

import asyncio
import json
import os
from collections import Counter
from pathlib import Path

import pytest
from redis_server import RedisServer

from aws_masker.body import mask_request
from aws_masker.config import MaskerConfig
from aws_masker.engine import Masker

from .chromium import chromium_binary, open_page
from .stack import SECRET, Stack, http
from .test_monitoring import request

pytestmark = pytest.mark.e2e

PROMPTS = (
    "Analyze: EC2 i-1234567890abcdef0, S3 my-bucket, RDS prod-db, IP 10.0.1.100",
    "Role arn:aws:iam::123456789012:role/deploy in account 123456789012 behind 54.23.11.9",
    "nothing to mask here",
)
SCREENSHOT = os.environ.get("AWS_MASKER_SCREENSHOT")
ROUNDS = 24 if SCREENSHOT else 3


def expected_counts() -> tuple[int, Counter[str]]:
    """Requests sent and identifiers masked per category, as the engine counts them for these bodies."""
    masker = Masker(MaskerConfig(token_secret=SECRET))
    counts: Counter[str] = Counter()
    for text in PROMPTS:
        _masked, result = mask_request(json.dumps(request(text)).encode(), masker)
        counts.update(result.counts)
    return len(PROMPTS) * ROUNDS, Counter({cat: n * ROUNDS for cat, n in counts.items()})


def text_of(element_id: str) -> str:
    return f"(document.getElementById({json.dumps(element_id)}) || {{}}).textContent"


async def send_rounds(stack: Stack) -> None:
    for round_no in range(ROUNDS):
        for text in PROMPTS:
            status, _, _ = await asyncio.to_thread(stack.post, "/claude-proxy/v1/messages", request(text))
            assert status == 200
        await asyncio.sleep(0.3 + (round_no % 5) * 0.35)  # spread out: the charts show them per second


@pytest.fixture(autouse=True)
def needs_chromium() -> None:
    """Skip (fail under AWS_MASKER_REQUIRE_CHROMIUM=1) before the stack is started."""
    chromium_binary()


def test_the_page_follows_the_traffic_in_headless_chromium(live: tuple[Stack, str, RedisServer]) -> None:
    stack, url, _server = live
    requests, per_category = expected_counts()
    assert len(+per_category) >= 5  # the prompts cover several categories

    async def scenario() -> bytes:
        async with open_page(url + "/") as page:
            await page.wait_for("document.body.dataset.stream === 'open'", what="the stream is open")
            assert await page.evaluate(text_of("events-total")) == "0"
            assert await page.evaluate(text_of("cat-ec2")) == "0"
            await send_rounds(stack)
            total = str(2 * requests)
            await page.wait_for(f"{text_of('events-total')} === {json.dumps(total)}", what=f"{total} events")
            assert await page.evaluate(text_of("data_masked-total")) == str(requests)
            shown = await page.evaluate(
                "Object.fromEntries([...document.querySelectorAll('[id^=cat-]')]"
                ".map(e => [e.id.slice(4), Number(e.textContent)]))"
            )
            assert {cat: n for cat, n in shown.items() if n} == dict(+per_category)
            assert await page.evaluate("Number(document.body.dataset.updates)") >= 2
            assert await page.evaluate(text_of("stream-status")) == "live"
            # both charts drew bars for every series that had traffic, one colour each
            drawn = "new Set([...document.querySelectorAll('#%s rect')].map(r => r.dataset.series)).size"
            assert await page.evaluate(drawn % "chart-events") == 2
            assert await page.evaluate(drawn % "chart-masked") == len(+per_category)
            legend = await page.evaluate(text_of("legend-masked"))
            assert all(cat in legend for cat in per_category)
            rate = await page.evaluate(f"Number({text_of('data_masked-rate')})")
            assert rate > 0
            # the browser never received an identifier: the page and the stream carry counts only
            html = await page.evaluate("document.documentElement.outerHTML")
            assert not any(word in html for word in ("i-1234567890abcdef0", "123456789012", "54.23.11.9"))
            return await page.screenshot()

    async def without_javascript() -> None:
        async with open_page(url + "/", javascript=False) as page:
            await page.wait_for("document.readyState === 'complete'", what="the page loaded")
            assert await page.evaluate(text_of("events-total")) == str(2 * requests)
            assert await page.evaluate(text_of("cat-ec2")) == str(per_category["ec2"])
            # the page's script never ran (it draws the charts' axes at once): these are the server's numbers
            assert await page.evaluate("document.getElementById('chart-events').childElementCount") == 0
            assert await page.evaluate("document.body.dataset.stream") == "off"
            assert "reload to update" in await page.evaluate(text_of("stream-status"))

    png = asyncio.run(asyncio.wait_for(scenario(), 120))
    asyncio.run(asyncio.wait_for(without_javascript(), 60))
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    if SCREENSHOT:
        Path(SCREENSHOT).write_bytes(png)
    assert json.loads(http("GET", url + "/stats")[2])["events"]["total"] == 2 * requests
