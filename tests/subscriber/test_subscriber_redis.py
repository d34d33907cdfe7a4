"""The subscriber in-process against a real, private redis-server: messages, stats, /metrics, log
formats, the rate limit end to end, a Redis restart, AUTH, TLS, the disabled mode, and the drain
at shutdown."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from subscriber_harness import (
    CHANNEL,
    FakeClock,
    LiveSubscriber,
    RedisServer,
    batch,
    dumps,
    make_tls_files,
    masked_event,
    publish,
    publisher_stats,
    redis_server_has_tls,
    run,
    settings_for,
    unmasked_event,
)

CANARY = "CANARY-i-0123456789abcdef0-10.0.1.100"


def test_single_batch_publisher_stats_and_malformed(redis_server: RedisServer) -> None:
    payloads = [
        dumps(masked_event()),
        dumps(unmasked_event()),
        dumps(
            batch(
                [
                    masked_event(request_id="b1"),
                    {"event_type": "data_masked", "leak": CANARY},
                    unmasked_event(),
                ]
            )
        ),
        dumps(publisher_stats()),
        dumps(publisher_stats(pid=4243, dropped=0, connected=False)),
        dumps(publisher_stats(published=1300)),  # newer counters of the first publisher
        CANARY.encode(),
        b"\xff" + CANARY.encode(),
        dumps([CANARY]),
        dumps(masked_event(details={"pattern_count": CANARY})),
    ]

    async def scenario() -> None:
        async with LiveSubscriber(settings_for(redis_server)) as live:
            await live.wait_connected()
            await publish(redis_server, payloads)
            doc = await live.wait_messages(len(payloads))
            assert doc["events"]["by_type"] == {"data_masked": 2, "data_unmasked": 2}
            assert doc["events"]["total"] == 4 and doc["events"]["per_minute"] == 4
            assert doc["events"]["last_event_at"] is not None
            assert doc["events"]["restore"] == {"complete": 2}
            assert doc["patterns"]["mask"]["ec2"] == 6 and doc["patterns"]["mask"]["private_ip"] == 4
            assert doc["patterns"]["unmask"]["ec2"] == 6 and doc["patterns"]["unmask"]["private_ip"] == 0
            assert doc["messages"]["batches"] == 1
            assert doc["messages"]["publisher_stats"] == 3
            assert doc["messages"]["malformed"] == 5  # 4 messages and 1 batch element
            assert doc["messages"]["malformed_by_reason"] == {
                "bad_field": 1,
                "missing_field": 1,
                "not_json": 1,
                "not_object": 1,
                "not_utf8": 1,
            }
            publishers = {(p["node"], p["pid"]): p for p in doc["publishers"]}
            assert set(publishers) == {("kong-7f9c", 4242), ("kong-7f9c", 4243)}
            assert publishers["kong-7f9c", 4242]["published"] == 1300
            assert publishers["kong-7f9c", 4243]["connected"] is False
            assert doc["redis"]["connected"] is True and doc["redis"]["status"] == "connected"
            assert doc["uptime_s"] > 0
        assert CANARY not in live.log_text
        malformed = [r for r in live.json_lines() if r["message"].startswith("malformed message ignored")]
        assert len(malformed) == 5
        assert all(set(r) == {"timestamp", "level", "message", "reason", "detail", "size"} for r in malformed)

    run(scenario())


def test_metrics_parse_as_prometheus_text(redis_server: RedisServer) -> None:
    async def scenario() -> None:
        async with LiveSubscriber(settings_for(redis_server)) as live:
            await live.wait_connected()
            await publish(redis_server, [dumps(masked_event()), dumps(publisher_stats()), b"junk"])
            await live.wait_messages(3)
            assert live.http is not None
            async with live.http.get(live.sub.url + "/metrics") as response:
                assert response.status == 200
                assert response.headers["Content-Type"].startswith("text/plain")
                text = await response.text()
        samples = {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
        }
        prefix = "aws_masker_subscriber_"
        assert samples[prefix + "events_total", (("event_type", "data_masked"),)] == 1
        assert samples[prefix + "events_total", (("event_type", "data_unmasked"),)] == 0
        assert samples[prefix + "patterns_total", (("action", "mask"), ("category", "ec2"))] == 3
        assert samples[prefix + "messages_total", ()] == 3
        assert samples[prefix + "malformed_messages_total", (("reason", "not_json"),)] == 1
        assert samples[prefix + "rate_limited_events_total", ()] == 0
        assert samples[prefix + "reconnects_total", ()] == 0
        assert samples[prefix + "connected", ()] == 1
        assert samples[prefix + "events_per_minute", ()] == 1
        assert samples[prefix + "publisher_dropped_total", (("node", "kong-7f9c"), ("pid", "4242"))] == 10

    run(scenario())


def test_several_subscribers_in_one_process(redis_server: RedisServer) -> None:
    async def scenario() -> None:
        async with (
            LiveSubscriber(settings_for(redis_server)) as one,
            LiveSubscriber(settings_for(redis_server)) as two,
        ):
            await one.wait_connected()
            await two.wait_connected()
            await publish(redis_server, [dumps(masked_event())])
            await one.wait_messages(1)
            await two.wait_messages(1)
            assert one.sub.metrics_text().count(b"\naws_masker_subscriber_messages_total 1.0") == 1

    run(scenario())


def test_rate_limit_end_to_end(redis_server: RedisServer) -> None:
    """200 events in one 1 s window (a frozen clock: no timing luck), limit 100."""
    clock = FakeClock()

    async def scenario() -> None:
        async with LiveSubscriber(settings_for(redis_server), clock=clock) as live:
            await live.wait_connected()
            await publish(redis_server, [dumps(masked_event(request_id=f"r{i}")) for i in range(200)])
            await live.wait_messages(200)
            clock.now += 1.0  # the window ends; the tick summarises it

            async def summarised() -> bool:
                return "suppressed 100 events in the last 1 s" in live.log_text

            await live.wait_for(summarised, "the suppression summary")
            doc = await live.stats()
        records = live.json_lines()
        assert len([r for r in records if r.get("event_type") == "data_masked"]) == 100
        summaries = [r for r in records if r["message"].startswith("suppressed ")]
        assert [r["message"] for r in summaries] == ["suppressed 100 events in the last 1 s"]
        assert doc["events"]["total"] == 200
        assert doc["rate_limited"] == 100
        assert doc["patterns"]["mask"]["ec2"] == 600

    run(scenario())


@pytest.mark.parametrize("environment", ["production", "development"])
def test_log_format_by_environment(redis_server: RedisServer, environment: str) -> None:
    async def scenario() -> list[str]:
        async with LiveSubscriber(settings_for(redis_server, environment=environment)) as live:
            await live.wait_connected()
            await publish(redis_server, [dumps(masked_event())])
            await live.wait_messages(1)
        return live.lines()

    lines = run(scenario())
    line = next(line for line in lines if "[data_masked]" in line)
    if environment == "production":
        records = [json.loads(x) for x in lines]  # every line is JSON
        event = next(r for r in records if r.get("event_type") == "data_masked")
        assert event["message"] == "[data_masked] 8a1f3c0e2b7d4e6f9a0b1c2d3e4f5a6b - 0.41ms"
        assert (
            event["request_id"] == "8a1f3c0e2b7d4e6f9a0b1c2d3e4f5a6b" and event["processing_time_ms"] == 0.41
        )
        assert "route" not in event
        assert records[0]["message"].startswith("aws-masker subscriber ready on http://127.0.0.1:")
        assert records[-1]["message"].startswith("final stats: 1 events")
    else:
        with pytest.raises(json.JSONDecodeError):
            json.loads(line)
        assert "[data_masked] 8a1f3c0e2b7d4e6f9a0b1c2d3e4f5a6b - 0.41ms" in line
        assert "route=claude-proxy" in line and "pattern_count=7" in line
        assert "aws-masker subscriber ready on http://127.0.0.1:" in lines[0]


def test_redis_restart_turns_health_503_and_it_resubscribes(redis_server: RedisServer) -> None:
    async def scenario() -> None:
        settings = settings_for(redis_server, unhealthy_after_failures=3, unhealthy_after_s=60)
        async with LiveSubscriber(settings) as live:
            await live.wait_connected()
            await publish(redis_server, [dumps(masked_event())])
            await live.wait_messages(1)

            await asyncio.to_thread(redis_server.stop)
            body = await live.wait_health(503)
            assert body["status"] == "unhealthy"
            assert "consecutive failed connection attempts" in body["reason"]
            assert "Redis unreachable: connection refused" in body["reason"]

            await asyncio.to_thread(redis_server.start)  # the same port
            await live.wait_connected()
            await publish(redis_server, [dumps(unmasked_event())])
            doc = await live.wait_messages(2)
            assert doc["events"]["by_type"] == {"data_masked": 1, "data_unmasked": 1}
            assert doc["redis"]["reconnects"] == 1
            assert doc["redis"]["connection_failures"] >= 3
        text = live.log_text
        assert "lost the Redis subscription: connection closed by Redis" in text
        assert "Redis unreachable: connection refused" in text
        assert "resubscribed to aws-masker:events" in text
        assert "Traceback" not in text

    run(scenario())


def test_auth_right_password_works(make_redis: Callable[..., RedisServer]) -> None:
    server = make_redis(password="correct horse")

    async def scenario() -> None:
        url = f"redis://:correct%20horse@127.0.0.1:{server.port}/0"
        async with LiveSubscriber(settings_for(None, redis_url=url)) as live:
            await live.wait_connected()
            await publish(server, [dumps(masked_event())])
            await live.wait_messages(1)
        parts = settings_for(None, redis_port=server.port, redis_password="correct horse")
        async with LiveSubscriber(parts) as live2:
            await live2.wait_connected()
        for text in (live.log_text, live2.log_text):
            assert "correct" not in text and "horse" not in text
            assert ":***@" in text

    run(scenario())


def test_auth_wrong_password_says_so_once_per_attempt(make_redis: Callable[..., RedisServer]) -> None:
    server = make_redis(password="right-one")

    async def scenario() -> None:
        wrong = settings_for(
            None, redis_port=server.port, redis_password="wrong-one", unhealthy_after_failures=2
        )
        async with LiveSubscriber(wrong) as live:
            body = await live.wait_health(503)
            assert "authentication failed: wrong password or username" in body["reason"]
            _status, stats = await live.get("/stats")
            assert stats["redis"]["last_error"] == "authentication failed: wrong password or username"
        none = settings_for(None, redis_port=server.port, unhealthy_after_failures=2)
        async with LiveSubscriber(none) as live2:
            body2 = await live2.wait_health(503)
            assert "authentication failed: Redis requires a password" in body2["reason"]
        text = live.log_text
        assert "Traceback" not in text and "wrong-one" not in text
        failures = [
            r for r in live.json_lines() if r["message"].startswith("Redis connection attempt failed")
        ]
        assert len(failures) >= 2
        assert all(r["reason"] == "authentication failed: wrong password or username" for r in failures)
        assert all(len(r["message"].splitlines()) == 1 for r in failures)

    run(scenario())


def _tls_server(make_redis: Callable[..., RedisServer], tmp_path: Path) -> RedisServer:
    tls = make_tls_files(tmp_path / "tls")
    try:
        return make_redis(tls=tls)
    except RuntimeError:
        if not redis_server_has_tls():
            pytest.skip("redis-server was built without TLS (no OpenSSL in its binary)")
        raise


def test_tls_with_a_private_ca(make_redis: Callable[..., RedisServer], tmp_path: Path) -> None:
    server = _tls_server(make_redis, tmp_path)
    other_ca = make_tls_files(tmp_path / "other", name="other").ca

    async def scenario() -> None:
        assert server.url.startswith("rediss://") and "ssl_ca_certs=" in server.url
        async with LiveSubscriber(settings_for(server)) as live:
            await live.wait_connected()
            await publish(server, [dumps(masked_event())])
            doc = await live.wait_messages(1)
            assert doc["redis"]["url"].startswith("rediss://127.0.0.1:")
        untrusted = f"rediss://127.0.0.1:{server.port}/0?ssl_ca_certs={other_ca}"
        async with LiveSubscriber(settings_for(None, redis_url=untrusted, unhealthy_after_failures=1)) as bad:
            body = await bad.wait_health(503)
            assert "TLS handshake failed: certificate verification failed" in body["reason"]
        assert "Traceback" not in bad.log_text

    run(scenario())


def test_disabled_means_no_redis_at_all(redis_server: RedisServer) -> None:
    async def scenario() -> None:
        settings = settings_for(redis_server, enable_redis_events=False)
        async with LiveSubscriber(settings) as live:
            status, body = await live.get("/health")
            assert (status, body) == (200, {"status": "ok", "redis": "disabled"})
            _status, doc = await live.get("/stats")
            assert doc["redis"]["enabled"] is False and doc["redis"]["url"] is None
            with redis_server.client() as client:
                assert client.pubsub_numsub(CHANNEL) == [(CHANNEL.encode(), 0)]
        lines = [r["message"] for r in live.json_lines()]
        assert lines[0].endswith("(channel aws-masker:events, redis events disabled)")
        assert sum("Redis events disabled" in m for m in lines) == 1
        assert not any(m.startswith(("subscribed", "Redis connection attempt")) for m in lines)

    run(scenario())


def test_stop_processes_what_redis_already_sent(redis_server: RedisServer) -> None:
    async def scenario() -> None:
        async with LiveSubscriber(settings_for(redis_server)) as live:
            await live.wait_connected()
            await publish(redis_server, [dumps(masked_event(request_id=f"d{i}")) for i in range(300)])
            await live.sub.stop()  # at once: the messages are in flight or in the socket buffer
            assert live.sub.stats.events_total == 300
            await live.sub.stop()  # idempotent
        finals = [r for r in live.json_lines() if r.get("final_stats")]
        assert len(finals) == 1 and finals[0]["events_total"] == 300

    run(scenario())


def test_stop_while_in_backoff_does_not_wait_for_it() -> None:
    async def scenario() -> None:
        from aws_masker_stack.ports import free_port

        settings = settings_for(None, redis_port=free_port(), reconnect_base_s=30.0, reconnect_cap_s=60.0)
        live = LiveSubscriber(settings, rng=lambda: 1.0)  # the first backoff is the full 30 s
        async with live:

            async def failed_once() -> bool:
                return "Redis connection attempt failed" in live.log_text

            await live.wait_for(failed_once, "a failed attempt")
            await asyncio.wait_for(live.sub.stop(), 5.0)  # a 30-60 s backoff must not hold it
        lines = [r["message"] for r in live.json_lines()]
        assert sum("Redis connection attempt failed" in m for m in lines) == 1
        assert lines[-1].startswith("final stats:")

    run(scenario())
