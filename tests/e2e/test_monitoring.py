"""Monitoring end to end: gateway, plugin server (its log phase and publisher), a private
redis-server, a raw listener on the channel and the subscriber process. Nothing an event, Redis or a
log carries may hold an original identifier or a token."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from redis_server import ChannelListener, RedisServer

from aws_masker.tokens import TOKEN_RE

from .stack import CLI, Proc, Stack, http, running, stub_config

pytestmark = pytest.mark.e2e

PROMPT = "Analyze: EC2 i-1234567890abcdef0, S3 my-bucket, RDS prod-db, IP 10.0.1.100"
ORIGINALS = ("i-1234567890abcdef0", "my-bucket", "prod-db", "10.0.1.100")


def request(text: str = PROMPT, **extra: Any) -> dict[str, Any]:
    return {
        "model": "claude-sonnet-5",
        "max_tokens": 300,
        "messages": [{"role": "user", "content": text}],
        **extra,
    }


def wait_for(condition: Callable[[], bool], timeout: float = 15.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what} not met in time"
        time.sleep(0.05)


@pytest.fixture
def monitored(tmp_path: Path, make_redis: Callable[..., RedisServer]) -> Iterator[tuple[Stack, RedisServer]]:
    server = make_redis(password="redis-test-password")
    fields = {
        "enable_event_monitoring": True,
        "redis_host": "127.0.0.1",
        "redis_port": server.port,
        "redis_password": "redis-test-password",
        "event_batch_size": 10,
        "event_flush_interval_ms": 50,
        "event_stats_interval_s": 1,
    }
    stack = Stack(tmp_path, config_factory=lambda url: stub_config(url, **fields), log_level="info")
    try:
        yield stack, server
    finally:
        stack.stop()


def by_request(events: list[dict[str, Any]]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for e in events:
        out.setdefault(e["request_id"], []).append(e["event_type"])
    return out


def test_each_request_gets_both_events_with_kongs_request_id(monitored: tuple[Stack, RedisServer]) -> None:
    stack, server = monitored
    listener = ChannelListener(server)
    ids = []
    for body in (request(), request(stream=True), request("nothing to mask")):
        status, headers, _ = stack.post("/claude-proxy/v1/messages", body)
        assert status == 200
        ids.append(headers["X-Kong-Request-Id"])
    wait_for(lambda: len(listener.events()) == 6, what="six events")
    grouped = by_request(listener.events())
    assert set(grouped) == set(ids) and all(
        sorted(v) == ["data_masked", "data_unmasked"] for v in grouped.values()
    )
    events = {(e["request_id"], e["event_type"]): e for e in listener.events()}
    for request_id in ids[:2]:
        masked = events[(request_id, "data_masked")]["details"]
        unmasked = events[(request_id, "data_unmasked")]["details"]
        assert masked["patterns_used"] == {"ec2": 1, "s3": 1, "rds": 1, "private_ip": 1}
        assert unmasked["patterns_used"] == masked["patterns_used"]  # the stub quotes every token once
        assert unmasked["restore"] == "complete" and unmasked["body_size"] > 0
        assert events[(request_id, "data_masked")]["route"] == "claude-proxy"
    assert events[(ids[2], "data_unmasked")]["details"]["pattern_count"] == 0
    # a sampled request spends one PDK call in the log phase (serialize)
    assert stack.log_record(ids[0])["phases"] in ("access:3,log:1", "access:3,log:2")
    everything = b"\n".join(listener.raw).decode() + "\n".join(stack.gateway.lines)
    assert not TOKEN_RE.search(everything) and not any(o in everything for o in ORIGINALS)
    assert "redis-test-password" not in everything
    listener.close()


def test_sampling_keeps_both_events_of_a_request_together(
    tmp_path: Path, make_redis: Callable[..., RedisServer]
) -> None:
    server = make_redis()
    fields = {
        "enable_event_monitoring": True,
        "redis_host": "127.0.0.1",
        "redis_port": server.port,
        "event_sampling_rate": 0.5,
        "event_flush_interval_ms": 50,
    }
    with running(tmp_path, config_factory=lambda url: stub_config(url, **fields)) as stack:
        listener = ChannelListener(server)
        for _ in range(40):
            assert stack.post("/claude-proxy/v1/messages", request())[0] == 200
        time.sleep(1.5)
        grouped = by_request(listener.events())
        assert 0 < len(grouped) < 40
        assert all(sorted(v) == ["data_masked", "data_unmasked"] for v in grouped.values())
        listener.close()


def test_redis_down_then_back(monitored: tuple[Stack, RedisServer]) -> None:
    stack, server = monitored
    assert stack.post("/claude-proxy/v1/messages", request())[0] == 200
    server.stop()
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: stack.post("/claude-proxy/v1/messages", request()), range(40)))
    assert all(status == 200 for status, _, _ in results)  # nothing waits on, or fails with, Redis
    assert all(o in json.loads(body)["content"][0]["text"] for _, _, body in results for o in ORIGINALS)
    assert stack.stub_stats()["leaks"] == 0
    server.start()
    listener = ChannelListener(server)
    resumed_at = time.monotonic()
    while not listener.events():
        assert time.monotonic() - resumed_at < 15, "publishing did not resume"
        stack.post("/claude-proxy/v1/messages", request())
        time.sleep(0.2)
    wait_for(lambda: any("events: cannot publish" in line for line in stack.gateway.lines), what="error line")
    errors = [line for line in stack.gateway.lines if "events: cannot publish" in line]
    assert len(errors) <= 3  # one per outage (and at most one per 30 s), never one per request
    listener.close()


def test_a_hundred_concurrent_requests_one_redis_connection(monitored: tuple[Stack, RedisServer]) -> None:
    stack, server = monitored
    listener = ChannelListener(server)
    with ThreadPoolExecutor(100) as pool:
        results = list(pool.map(lambda _: stack.post("/claude-proxy/v1/messages", request())[0], range(100)))
    assert results == [200] * 100
    wait_for(lambda: len(listener.events()) == 200, what="200 events")
    with server.client() as client:
        publishers = [c for c in client.client_list() if c.get("name") == "aws-masker-publisher"]
    assert len(publishers) == 1
    listener.close()


def test_the_subscriber_sees_the_events(monitored: tuple[Stack, RedisServer]) -> None:
    stack, server = monitored
    sub = Proc(
        [
            *CLI,
            "subscriber",
            "--listen",
            "127.0.0.1:0",
            "--redis-port",
            str(server.port),
            "--redis-password",
            "redis-test-password",
        ],
        stack.env,
        "ready on",
    )
    try:
        url = re.search(r"ready on (http://[\d.:]+)", "\n".join(sub.lines)).group(1)  # type: ignore[union-attr]
        wait_for(lambda: json.loads(http("GET", url + "/health")[2]).get("status") == "ok", what="subscribed")
        for _ in range(5):
            assert stack.post("/claude-proxy/v1/messages", request())[0] == 200

        def totals() -> dict[str, Any]:
            return json.loads(http("GET", url + "/stats")[2])

        wait_for(lambda: totals()["events"]["by_type"].get("data_unmasked") == 5, what="subscriber totals")
        stats = totals()
        assert stats["events"]["by_type"]["data_masked"] == 5
    finally:
        sub.stop()
    output = "\n".join(sub.lines)
    assert not TOKEN_RE.search(output) and not any(o in output for o in ORIGINALS)
    assert "redis-test-password" not in output
