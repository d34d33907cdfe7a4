"""The live page (``/``) and its Server-Sent Events feed (``/events/stream``), in process: numbers
rendered into the HTML (readable without JavaScript), aggregates only on the stream, and the
optional bearer token."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

import aiohttp
import pytest
from subscriber_harness import LiveSubscriber, dumps, masked_event, run, settings_for, unmasked_event

from aws_masker_subscriber.settings import SettingsError, load_settings

TOKEN = "a-long-enough-test-token-0123"
# What events carry besides counts: none of it may reach the page or the stream.
EVENT_ONLY = (masked_event()["event_id"], masked_event()["request_id"], "claude-proxy", "claude-messages")


def feed(live: LiveSubscriber, masked: int, unmasked: int = 0) -> None:
    for _ in range(masked):
        live.sub.handle_payload(dumps(masked_event()))  # ec2 3, private_ip 2, s3 1, rds 1
    for _ in range(unmasked):
        live.sub.handle_payload(dumps(unmasked_event()))


def number(page: str, element_id: str) -> str:
    match = re.search(rf'id="{re.escape(element_id)}"[^>]*>([^<]*)<', page)
    assert match is not None, f"no element {element_id}"
    return match.group(1)


async def stream_messages(
    live: LiveSubscriber, count: int, path: str = "/events/stream"
) -> list[dict[str, Any]]:
    assert live.http is not None
    messages: list[dict[str, Any]] = []
    async with live.http.get(live.sub.url + path) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/event-stream")
        async for raw in response.content:
            line = raw.decode()
            if line.startswith("data: "):
                messages.append(json.loads(line[len("data: ") :]))
                if len(messages) == count:
                    break
    return messages


def test_the_page_carries_the_numbers_without_javascript() -> None:
    async def scenario() -> None:
        async with LiveSubscriber(settings_for(None, enable_redis_events=False)) as live:
            feed(live, masked=2, unmasked=1)
            assert live.http is not None
            async with live.http.get(live.sub.url + "/") as response:
                assert response.status == 200 and response.content_type == "text/html"
                csp = response.headers["Content-Security-Policy"]
                page = await response.text()
            assert "default-src 'none'" in csp and "connect-src 'self'" in csp
            assert number(page, "events-total") == "3"
            assert number(page, "data_masked-total") == "2" and number(page, "data_unmasked-total") == "1"
            assert number(page, "cat-ec2") == "6" and number(page, "cat-private_ip") == "4"
            assert number(page, "cat-arn") == "0"
            assert 'id="bar-ec2" style="width:100%"' in page and 'id="bar-s3" style="width:33%"' in page
            assert "{{" not in page and "http://" not in page.replace("http://www.w3.org/2000/svg", "")
            assert not any(value in page for value in EVENT_ONLY)

    run(scenario())


def test_the_stream_sends_aggregates_that_follow_the_counts() -> None:
    async def scenario() -> None:
        async with LiveSubscriber(settings_for(None, enable_redis_events=False)) as live:
            feed(live, masked=1)
            first, second = await stream_messages(live, 1) + await _after(live)
            assert first["events"]["by_type"] == {"data_masked": 1, "data_unmasked": 0}
            assert second["events"]["by_type"] == {"data_masked": 4, "data_unmasked": 2}
            assert second["masked"]["ec2"] == 12 and second["publishers"]["count"] == 0
            assert len(second["series"]["events"]["data_masked"]) == 60
            assert set(second) == {
                "uptime_s", "health", "events", "masked", "publishers", "rate_limited", "malformed", "series"
            }  # fmt: skip
            text = json.dumps([first, second])
            assert not any(value in text for value in EVENT_ONLY)

    async def _after(live: LiveSubscriber) -> list[dict[str, Any]]:
        feed(live, masked=3, unmasked=2)
        return await stream_messages(live, 1)

    run(scenario())


def test_the_subscriber_stops_with_a_stream_open() -> None:
    async def scenario() -> None:
        async with LiveSubscriber(settings_for(None, enable_redis_events=False)) as live:
            reader = asyncio.ensure_future(stream_messages(live, 1000))
            await asyncio.sleep(0.3)
            await asyncio.wait_for(live.sub.stop(), 5)  # the open stream does not hold the shutdown
            reader.cancel()

    run(scenario(), timeout=20)


@pytest.mark.parametrize("path", ["/", "/events/stream", "/stats", "/metrics"])
def test_a_token_guards_everything_but_health(path: str) -> None:
    async def scenario() -> None:
        async with LiveSubscriber(settings_for(None, enable_redis_events=False, token=TOKEN)) as live:
            assert live.http is not None
            url = live.sub.url + path
            async with live.http.get(url) as response:
                assert response.status == 401 and "Bearer" in response.headers["WWW-Authenticate"]
            async with live.http.get(
                url, headers={"Authorization": "Bearer wrong-token-wrong-token"}
            ) as response:
                assert response.status == 401
            async with live.http.get(live.sub.url + "/health") as response:
                assert response.status == 200
            for kwargs in ({"headers": {"Authorization": f"Bearer {TOKEN}"}}, {"params": {"token": TOKEN}}):
                async with live.http.get(url, **kwargs, timeout=aiohttp.ClientTimeout(total=5)) as response:
                    assert response.status == 200
                    if path == "/":
                        page = await response.text()
                        assert f'data-stream-url="events/stream?token={TOKEN}"' in page

    run(scenario())


def test_the_token_setting() -> None:
    assert load_settings([], {"AWS_MASKER_SUBSCRIBER_TOKEN": TOKEN}).token == TOKEN
    assert load_settings(["--token", TOKEN], {}).token == TOKEN
    assert load_settings([], {}).token is None
    with pytest.raises(SettingsError, match="AWS_MASKER_SUBSCRIBER_TOKEN: expected at least 16"):
        load_settings([], {"AWS_MASKER_SUBSCRIBER_TOKEN": "short"})


def test_a_public_bind_without_a_token_is_warned_about() -> None:
    async def scenario() -> None:
        settings = settings_for(None, enable_redis_events=False, listen_host="0.0.0.0")
        async with LiveSubscriber(settings) as live:
            assert "without a token" in live.log_text
        async with LiveSubscriber(settings_for(None, enable_redis_events=False)) as live:
            assert (
                "without a token" not in live.log_text and "live page on http://127.0.0.1:" in live.log_text
            )

    run(scenario())


def test_the_monitor_presents_the_token() -> None:
    from aws_masker_subscriber.monitor.sample import take_sample

    async def scenario() -> None:
        async with LiveSubscriber(settings_for(None, enable_redis_events=False, token=TOKEN)) as live:
            feed(live, masked=1)
            url = live.sub.url
            with_token = await asyncio.to_thread(take_sample, url, None, TOKEN)
            assert with_token.events_by_type() == {"data_masked": 1, "data_unmasked": 0}
            assert with_token.healthy is True and not with_token.errors
            without = await asyncio.to_thread(take_sample, url, None, None)
            assert without.stats is None and "subscriber /stats answered HTTP 401" in without.errors

    run(scenario())
