"""Monitoring events on the plugin side, without Redis: sampling, the event documents, the log
phase's PDK calls, and the publisher's queue, batching, backoff and lines (with a fake connection).
tests/test_events_redis.py runs the publisher against a real redis-server."""

from __future__ import annotations

import json
import math
import random
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from test_plugin import FakeKong, defaults, messages, run

from aws_masker import __version__, events, publisher
from aws_masker.events import EventSettings, Monitor, RequestInfo, build_events
from aws_masker.publisher import Publisher, PublisherSettings
from aws_masker.tokens import TOKEN_RE

SERIALIZED = {
    "request": {"id": "8a1f3c0e2b7d4e6f9a0b1c2d3e4f5a6b", "uri": "/v1/messages?note=i-1234567890abcdef0"},
    "route": {"id": "r-1", "name": "claude-proxy"},
    "service": {"id": "s-1", "name": None},
}
REQUEST = RequestInfo.from_serialized(SERIALIZED)


def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


# -- sampling -----------------------------------------------------------------------------------------


def settings(**conf: Any) -> EventSettings:
    return EventSettings.from_mapping({"enable_event_monitoring": True, **conf})


@pytest.mark.parametrize("rate", [0.0, 1.0])
def test_sampling_rates_zero_and_one_are_exact(rate: float) -> None:
    monitor = Monitor(settings(event_sampling_rate=rate))
    assert {monitor.sampled() for _ in range(5000)} == {rate == 1.0}


def test_sampling_ten_percent_is_binomial() -> None:
    n, p = 20_000, 0.1
    monitor = Monitor(settings(event_sampling_rate=p), rng=random.Random(20261205))
    hits = sum(monitor.sampled() for _ in range(n))
    sigma = math.sqrt(n * p * (1 - p))
    assert abs(hits - n * p) <= 4 * sigma


def test_monitoring_off_never_samples() -> None:
    monitor = Monitor(
        EventSettings.from_mapping({"enable_event_monitoring": False, "event_sampling_rate": 1})
    )
    assert not any(monitor.sampled() for _ in range(100))


# -- the documents ------------------------------------------------------------------------------------------


def test_events_carry_counts_and_names_only() -> None:
    masked = {
        "count": 3,
        "categories": {"ec2": 2, "private_ip": 1},
        "processing_time_ms": 0.4567,
        "body_size": 812,
        "at": 1764923456789,
    }
    restored = {
        "count": 2,
        "categories": {"ec2": 2},
        "processing_time_ms": 0.05,
        "body_size": 990,
        "restore": "complete",
    }
    masked_event, unmasked_event = build_events(REQUEST, masked, restored)
    assert masked_event["event_type"] == "data_masked" and unmasked_event["event_type"] == "data_unmasked"
    for event in (masked_event, unmasked_event):
        assert event["request_id"] == "8a1f3c0e2b7d4e6f9a0b1c2d3e4f5a6b"
        assert (event["route"], event["service"], event["source"]) == (
            "claude-proxy",
            "s-1",
            "kong-aws-masker",
        )
        assert len(event["event_id"]) == 32 and event["details"]["plugin_version"] == __version__
        assert "i-1234567890abcdef0" not in json.dumps(event)  # the URI is never copied
    assert masked_event["timestamp"] == 1764923456789
    assert masked_event["details"] == {
        "action": "mask",
        "processing_time_ms": 0.457,
        "pattern_count": 3,
        "patterns_used": {"ec2": 2, "private_ip": 1},
        "body_size": 812,
        "plugin_version": __version__,
    }
    assert unmasked_event["details"]["restore"] == "complete"
    assert unmasked_event["details"]["pattern_count"] == 2 and unmasked_event["details"]["body_size"] == 990


def test_missing_restore_counts_say_not_run() -> None:
    _, unmasked_event = build_events(REQUEST, {"count": 0, "categories": {}}, None)
    assert unmasked_event["details"]["restore"] == "not_run"
    assert unmasked_event["details"]["pattern_count"] == 0


# -- the plugin's log phase ---------------------------------------------------------------------------------


class FakePublisher:
    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.lines: list[tuple[str, str]] = []

    def enqueue(self, event: dict[str, Any]) -> bool:
        self.events.append(event)
        return True

    def take_line(self) -> tuple[str, str] | None:
        return self.lines.pop(0) if self.lines else None

    def alive(self) -> bool:
        return True


@pytest.fixture
def fake_publisher(monkeypatch: pytest.MonkeyPatch) -> FakePublisher:
    fake = FakePublisher()
    monkeypatch.setattr(events, "publisher_for", lambda _settings, _user: fake)
    return fake


def masked_request(conf: dict[str, Any]) -> tuple[FakeKong, Any]:
    kong = FakeKong(messages())
    plugin = run("access", kong, conf)
    kong.calls.clear()
    return kong, plugin


def test_log_phase_makes_no_pdk_call_when_monitoring_is_off(fake_publisher: FakePublisher) -> None:
    kong, plugin = masked_request(defaults())
    plugin.log(kong)
    assert kong.calls == [] and fake_publisher.events == []


def test_log_phase_makes_no_pdk_call_for_an_unsampled_request(fake_publisher: FakePublisher) -> None:
    kong, plugin = masked_request(defaults(enable_event_monitoring=True, event_sampling_rate=0.0))
    plugin.log(kong)
    assert kong.calls == [] and fake_publisher.events == []


def event_summary(kong: FakeKong, restored: dict[str, Any] | None) -> str:
    """What the restore plugin's log phase leaves in kong.ctx.shared.aws_masker_event."""
    state = json.loads(kong.shared["aws_masker"])
    assert state["events"] is True  # monitoring on: the restore plugin is asked to leave it
    return json.dumps(
        {
            "request_id": "8a1f3c0e2b7d4e6f9a0b1c2d3e4f5a6b",
            "route": "claude-proxy",
            "service": "claude-messages",
            "masked": state["masked"],
            "restored": restored,
        }
    )


def test_log_phase_reads_one_small_string(fake_publisher: FakePublisher) -> None:
    kong, plugin = masked_request(defaults(enable_event_monitoring=True))
    restored = {
        "count": 4,
        "categories": {"ec2": 1, "s3": 1, "rds": 1, "private_ip": 1},
        "processing_time_ms": 0.1,
        "body_size": 300,
        "restore": "complete",
    }
    kong.shared["aws_masker_event"] = event_summary(kong, restored)
    plugin.log(kong)
    assert kong.calls == [("kong.ctx.shared.get", ("aws_masker_event",))]
    kinds = [e["event_type"] for e in fake_publisher.events]
    assert kinds == ["data_masked", "data_unmasked"]
    assert all(e["request_id"] == "8a1f3c0e2b7d4e6f9a0b1c2d3e4f5a6b" for e in fake_publisher.events)
    assert fake_publisher.events[0]["details"]["patterns_used"] == {
        "ec2": 1,
        "s3": 1,
        "rds": 1,
        "private_ip": 1,
    }
    assert fake_publisher.events[1]["details"]["restore"] == "complete"
    text = json.dumps(fake_publisher.events)
    assert not TOKEN_RE.search(text) and "prod-db" not in text and "10.0.1.100" not in text


def test_monitoring_off_leaves_the_restore_plugin_nothing_to_do() -> None:
    kong, _ = masked_request(defaults())
    assert json.loads(kong.shared["aws_masker"])["events"] is False


def test_log_phase_without_the_restore_plugin_reads_serialize_and_our_state(
    fake_publisher: FakePublisher,
) -> None:
    kong, plugin = masked_request(defaults(enable_event_monitoring=True))
    kong.serialized = SERIALIZED  # the restore plugin did not run
    plugin.log(kong)
    assert [m for m, _ in kong.calls] == ["kong.ctx.shared.get", "kong.log.serialize", "kong.ctx.shared.get"]
    masked_event, unmasked_event = fake_publisher.events
    assert masked_event["request_id"] == "8a1f3c0e2b7d4e6f9a0b1c2d3e4f5a6b"
    assert masked_event["details"]["pattern_count"] == 4
    assert unmasked_event["details"]["restore"] == "not_run"


def test_log_phase_of_a_refused_request_reports_nothing(fake_publisher: FakePublisher) -> None:
    kong = FakeKong(b'{"x": "\xff"}')  # refused in access: no state
    plugin = run("access", kong, defaults(enable_event_monitoring=True))
    kong.calls.clear()
    kong.exit = None
    kong.serialized = SERIALIZED
    plugin.log(kong)
    assert fake_publisher.events == []


def test_publisher_lines_reach_kongs_log_on_sampled_requests(fake_publisher: FakePublisher) -> None:
    kong, plugin = masked_request(defaults(enable_event_monitoring=True))
    kong.shared["aws_masker_event"] = event_summary(kong, None)
    fake_publisher.lines = [("warn", "aws-masker: events: cannot publish"), ("notice", "counters")]
    plugin.log(kong)
    assert kong.calls[-1] == ("kong.log.warn", ("aws-masker: events: cannot publish",))
    assert len(kong.calls) == 2  # the summary + one line: at most two calls
    kong.calls.clear()
    plugin.log(kong)
    assert kong.calls[-1] == ("kong.log.notice", ("counters",))


def test_a_failing_log_phase_loses_events_not_requests(
    fake_publisher: FakePublisher, caplog: pytest.LogCaptureFixture
) -> None:
    kong, plugin = masked_request(defaults(enable_event_monitoring=True))
    kong.shared["aws_masker_event"] = "not json"
    plugin.log(kong)  # must not raise into the plugin server
    assert fake_publisher.events == []
    assert "the log phase failed (JSONDecodeError)" in caplog.text


# -- the publisher, with a fake connection ---------------------------------------------------------------


class FakeRedis:
    def __init__(self, fail: bool = False) -> None:
        self.messages: list[tuple[str, dict[str, Any]]] = []
        self.fail = fail
        self.closed = False

    def publish(self, channel: str, message: str) -> int:
        if self.fail:
            raise ConnectionError("Connection refused")
        self.messages.append((channel, json.loads(message)))
        return 1

    def close(self) -> None:
        self.closed = True


class Connector:
    """Hands out FakeRedis connections; ``down`` makes connecting fail."""

    def __init__(self) -> None:
        self.down = False
        self.clients: list[FakeRedis] = []
        self.attempts = 0

    def __call__(self, _settings: PublisherSettings) -> FakeRedis:
        self.attempts += 1
        if self.down:
            raise ConnectionError("Error 111 connecting to 127.0.0.1:1. Connection refused.")
        self.clients.append(FakeRedis())
        return self.clients[-1]

    def messages(self) -> list[dict[str, Any]]:
        return [m for c in self.clients for _, m in c.messages]


def make_publisher(connector: Connector, **overrides: Any) -> Publisher:
    conf = {
        "event_flush_interval_ms": 50,
        "event_batch_size": 10,
        "event_stats_interval_s": 3600,
        **overrides,
    }
    return Publisher(PublisherSettings.from_mapping(conf), connector=connector)


def event(n: int) -> dict[str, Any]:
    return {"event_type": "data_masked", "n": n}


def test_a_full_batch_is_one_publish() -> None:
    connector = Connector()
    pub = make_publisher(connector, event_flush_interval_ms=60_000)
    for n in range(10):
        assert pub.enqueue(event(n))
    wait_for(lambda: connector.messages())
    (message,) = connector.messages()
    assert message["event_type"] == "batch" and message["count"] == 10
    assert [e["n"] for e in message["events"]] == list(range(10))
    pub.close()


def test_a_partial_batch_goes_out_after_the_interval() -> None:
    connector = Connector()
    pub = make_publisher(connector)
    pub.enqueue(event(1))
    pub.enqueue(event(2))
    wait_for(lambda: connector.messages())
    assert connector.messages()[0]["count"] == 2
    pub.close()


def test_batch_size_one_publishes_each_event_as_itself() -> None:
    connector = Connector()
    pub = make_publisher(connector, event_batch_size=1)
    pub.enqueue(event(7))
    wait_for(lambda: connector.messages())
    assert connector.messages() == [event(7)]
    pub.close()


def test_a_full_queue_drops_and_counts_without_blocking() -> None:
    connector = Connector()
    connector.down = True  # nothing drains the queue
    pub = make_publisher(connector, event_queue_size=5)
    started = time.monotonic()
    accepted = [pub.enqueue(event(n)) for n in range(50)]
    assert time.monotonic() - started < 5  # generous: only proves enqueue does not wait for Redis
    assert accepted.count(True) == 5
    assert pub.counters()["dropped"] == 45 and pub.counters()["enqueued"] == 5
    pub.close()


def test_reconnects_with_backoff_and_reports_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(publisher, "BACKOFF_CAP", 0.05)
    connector = Connector()
    connector.down = True
    pub = make_publisher(connector)
    wait_for(lambda: connector.attempts >= 5)
    lines = []
    while (line := pub.take_line()) is not None:
        lines.append(line)
    assert len(lines) == 1  # one line when the outage starts, not one per attempt
    level, text = lines[0]
    assert (
        level == "warn"
        and "cannot publish to redis://127.0.0.1:6379/0" in text
        and "Connection refused" in text
    )
    connector.down = False
    pub.enqueue(event(1))
    wait_for(lambda: connector.messages())
    assert any("reconnected" in t for _, t in [pub.take_line() or ("", "")])
    assert pub.counters()["errors"] >= 5
    pub.close()


def test_a_failed_publish_drops_its_batch_and_reconnects(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(publisher, "BACKOFF_CAP", 0.05)
    connector = Connector()
    pub = make_publisher(connector, event_batch_size=1)
    pub.enqueue(event(1))
    wait_for(lambda: connector.messages())
    connector.clients[0].fail = True
    pub.enqueue(event(2))
    wait_for(lambda: pub.counters()["dropped"] == 1)
    assert connector.clients[0].closed
    pub.enqueue(event(3))
    wait_for(lambda: len(connector.messages()) == 2)
    assert connector.messages()[-1] == event(3)
    pub.close()


def test_stats_are_logged_and_published() -> None:
    connector = Connector()
    pub = make_publisher(connector, event_stats_interval_s=1)
    pub.enqueue(event(1))
    wait_for(lambda: any(m["event_type"] == "publisher_stats" for m in connector.messages()), timeout=10)
    stats = next(m for m in connector.messages() if m["event_type"] == "publisher_stats")
    assert {"enqueued", "published", "dropped", "errors", "batches", "queue_depth", "pid", "node"} <= set(
        stats
    )
    assert any("published=" in text for level, text in iter(pub.take_line, None) if level == "notice")
    pub.close()


def test_close_while_redis_is_down_does_not_hang() -> None:
    connector = Connector()
    connector.down = True
    pub = make_publisher(connector)
    pub.enqueue(event(1))
    done = threading.Event()
    threading.Thread(target=lambda: (pub.close(timeout=30), done.set()), daemon=True).start()
    assert done.wait(10)


class User:
    """A plugin instance's Monitor, as far as the registry is concerned."""


def test_one_publisher_per_settings_and_process() -> None:
    users = [User(), User(), User()]
    a = publisher.publisher_for(PublisherSettings(port=1, stats_interval_s=3600), users[0])
    b = publisher.publisher_for(PublisherSettings(port=1, stats_interval_s=3600), users[1])
    c = publisher.publisher_for(PublisherSettings(port=2, stats_interval_s=3600), users[2])
    assert a is b and a is not c
    for p in (a, c):
        p.close()


def test_the_password_never_shows() -> None:
    s = PublisherSettings.from_mapping({"redis_password": "hunter2-secret", "redis_username": "masker"})
    assert "hunter2" not in s.describe() and "masker@" in s.describe()
    assert "hunter2" not in repr(s)


def test_the_monitor_keeps_its_publisher_until_it_stops(monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[FakePublisher] = []

    def publisher_for(_settings: Any, _user: Any) -> FakePublisher:
        made.append(FakePublisher())
        return made[-1]

    monkeypatch.setattr(events, "publisher_for", publisher_for)
    monitor = Monitor(EventSettings.from_mapping({"enable_event_monitoring": True}))
    assert monitor.publisher() is monitor.publisher() is made[0] and len(made) == 1
    monkeypatch.setattr(made[0], "alive", lambda: False)  # closed: the next call gets a new one
    assert monitor.publisher() is made[1]
