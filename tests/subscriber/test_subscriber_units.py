"""Subscriber parts without Redis: settings, parsing, the rate limit, stats, backoff, error phrases,
and the subscriber's message handling fed payloads directly (with a fake clock)."""

from __future__ import annotations

import io
import json
import math

import pytest
from redis import exceptions as redis_errors
from subscriber_harness import FakeClock, batch, dumps, masked_event, publisher_stats, unmasked_event

from aws_masker.cli import main as aws_masker_main
from aws_masker.config import CATEGORY_TOGGLES
from aws_masker_subscriber.cli import subscriber_main
from aws_masker_subscriber.events import (
    CATEGORIES,
    Batch,
    Malformed,
    MaskingEvent,
    PublisherStats,
    parse_message,
)
from aws_masker_subscriber.health import ConnectionState, verdict
from aws_masker_subscriber.ratelimit import LogRateLimiter
from aws_masker_subscriber.reconnect import backoff_delay, describe_error
from aws_masker_subscriber.settings import OPTIONS, Settings, SettingsError, load_settings, redact_url
from aws_masker_subscriber.stats import Stats
from aws_masker_subscriber.subscriber import Subscriber

CANARY = "CANARY-i-0123456789abcdef0-10.0.1.100"

# --- settings -----------------------------------------------------------------------------------


def test_defaults() -> None:
    settings = load_settings([], {})
    assert settings == Settings()
    assert settings.enable_redis_events is True
    assert settings.event_log_rate_limit == 100
    assert settings.environment == "production"
    assert (settings.listen_host, settings.listen_port) == ("127.0.0.1", 8090)
    assert settings.channel == "aws-masker:events"
    assert (settings.reconnect_base_s, settings.reconnect_cap_s) == (0.5, 5.0)
    assert settings.unhealthy_after_failures == 3
    assert settings.redis_display_url == "redis://127.0.0.1:6379/0"


def test_env_is_read_and_flags_win() -> None:
    env = {
        "ENABLE_REDIS_EVENTS": "false",
        "EVENT_LOG_RATE_LIMIT": "7",
        "AWS_MASKER_ENV": "development",
        "REDIS_HOST": "redis.internal",
        "REDIS_PORT": "6380",
        "REDIS_DB": "2",
        "REDIS_USERNAME": "monitor",
        "REDIS_PASSWORD": "s3cret",
        "AWS_MASKER_EVENT_CHANNEL": "env-channel",
        "AWS_MASKER_SUBSCRIBER_LISTEN": "0.0.0.0:9000",
        "AWS_MASKER_RECONNECT_BASE_S": "0.25",
        "AWS_MASKER_RECONNECT_CAP_S": "4",
        "AWS_MASKER_UNHEALTHY_AFTER_FAILURES": "5",
        "AWS_MASKER_UNHEALTHY_AFTER_S": "30",
        "AWS_MASKER_REDIS_TIMEOUT_S": "1.5",
    }
    settings = load_settings([], env)
    assert settings.enable_redis_events is False
    assert settings.event_log_rate_limit == 7
    assert settings.environment == "development"
    assert (settings.redis_host, settings.redis_port, settings.redis_db) == ("redis.internal", 6380, 2)
    assert (settings.redis_username, settings.redis_password) == ("monitor", "s3cret")
    assert settings.channel == "env-channel"
    assert (settings.listen_host, settings.listen_port) == ("0.0.0.0", 9000)
    assert (settings.reconnect_base_s, settings.reconnect_cap_s, settings.redis_timeout_s) == (0.25, 4.0, 1.5)
    assert (settings.unhealthy_after_failures, settings.unhealthy_after_s) == (5, 30.0)
    assert settings.redis_display_url == "redis://monitor:***@redis.internal:6380/2"

    flags = ["--enable-redis-events", "yes", "--event-log-rate-limit", "9", "--env", "production"]
    flags += ["--redis-port", "6381", "--channel", "flag-channel", "--listen", "[::1]:0"]
    settings = load_settings(flags, env)
    assert settings.enable_redis_events is True
    assert settings.event_log_rate_limit == 9
    assert settings.environment == "production"
    assert settings.redis_port == 6381
    assert settings.redis_host == "redis.internal"  # not given as a flag: the env value stays
    assert settings.channel == "flag-channel"
    assert (settings.listen_host, settings.listen_port) == ("::1", 0)


def test_empty_env_counts_as_unset() -> None:
    assert load_settings([], {"REDIS_PORT": "", "REDIS_PASSWORD": "", "REDIS_URL": " "}) == Settings()


def test_redis_url_wins_and_its_password_is_masked() -> None:
    env = {"REDIS_URL": "rediss://monitor:p%40ss@cache.example:6390/1", "REDIS_HOST": "ignored"}
    settings = load_settings([], env)
    assert settings.redis_url == env["REDIS_URL"]
    assert settings.redis_display_url == "rediss://monitor:***@cache.example:6390/1"
    assert "p%40ss" not in settings.redis_display_url


def test_redact_url() -> None:
    assert redact_url("redis://:pw@h:1/0") == "redis://:***@h:1/0"
    assert redact_url("redis://user@h:1/0") == "redis://user@h:1/0"
    assert redact_url("rediss://h/0?ssl_ca_certs=/x/ca.pem&password=pw") == (
        "rediss://h/0?ssl_ca_certs=/x/ca.pem&password=***"
    )
    assert "pw" not in Settings(redis_password="pw").redis_display_url


@pytest.mark.parametrize(
    ("argv", "env", "names"),
    [
        (["--redis-port", "abc"], {}, "--redis-port"),
        ([], {"REDIS_PORT": "70000"}, "REDIS_PORT"),
        ([], {"REDIS_DB": "-1"}, "REDIS_DB"),
        ([], {"EVENT_LOG_RATE_LIMIT": "many"}, "EVENT_LOG_RATE_LIMIT"),
        ([], {"ENABLE_REDIS_EVENTS": "maybe"}, "ENABLE_REDIS_EVENTS"),
        ([], {"AWS_MASKER_ENV": "staging"}, "AWS_MASKER_ENV"),
        (["--listen", "localhost"], {}, "--listen"),
        ([], {"AWS_MASKER_RECONNECT_BASE_S": "0"}, "AWS_MASKER_RECONNECT_BASE_S"),
        ([], {"AWS_MASKER_RECONNECT_CAP_S": "nan"}, "AWS_MASKER_RECONNECT_CAP_S"),
        (["--reconnect-base", "2", "--reconnect-cap", "1"], {}, "--reconnect-cap"),
        ([], {"AWS_MASKER_UNHEALTHY_AFTER_FAILURES": "0"}, "AWS_MASKER_UNHEALTHY_AFTER_FAILURES"),
        ([], {"REDIS_URL": "http://:topsecret@h/0"}, "REDIS_URL"),
        ([], {"REDIS_URL": "redis://:topsecret@h:99999/0"}, "REDIS_URL"),
        ([], {"REDIS_URL": "rediss://h/0?ssl_ca_certs=/does/not/exist.pem"}, "ssl_ca_certs"),
        ([], {"REDIS_URL": "redis://:topsecret@h/0?no_such_option=1"}, "no_such_option"),
        ([], {"REDIS_URL": "rediss://h/0?ssl_cert_reqs=sometimes"}, "sometimes"),
        (["--no-such-flag"], {}, "--no-such-flag"),
    ],
)
def test_bad_values_exit_2_with_one_line(
    argv: list[str],
    env: dict[str, str],
    names: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with pytest.raises(SettingsError):
        load_settings(argv, env)
    for opt in OPTIONS:
        monkeypatch.delenv(opt.env, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert subscriber_main(argv) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1 and err.startswith("aws-masker subscriber: error: ")
    assert names in err
    assert "topsecret" not in err
    assert "Traceback" not in err


def test_help_documents_every_setting(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        aws_masker_main(["subscriber", "--help"])
    assert exit_info.value.code == 0
    out = " ".join(capsys.readouterr().out.split())  # undo argparse's line wrapping
    for opt in OPTIONS:
        assert opt.flag in out and opt.env in out, opt.env


# --- parsing ------------------------------------------------------------------------------------


def test_parse_single_events_and_publisher_stats() -> None:
    event = parse_message(dumps(masked_event()))
    assert isinstance(event, MaskingEvent)
    assert (event.event_type, event.action, event.pattern_count) == ("data_masked", "mask", 7)
    assert event.patterns_used == {"ec2": 3, "private_ip": 2, "s3": 1, "rds": 1}
    restored = parse_message(dumps(unmasked_event(route=None, service=None)))
    assert isinstance(restored, MaskingEvent)
    assert (restored.restore, restored.route, restored.service) == ("complete", None, None)
    stats = parse_message(dumps(publisher_stats()))
    assert isinstance(stats, PublisherStats)
    assert (stats.node, stats.pid, stats.dropped, stats.connected) == ("kong-7f9c", 4242, 10, True)


def test_unknown_fields_are_dropped_and_unknown_categories_become_other() -> None:
    event = parse_message(
        dumps(masked_event(extra=CANARY, details={"patterns_used": {"ec2": 1, CANARY: 2}, "x": CANARY}))
    )
    assert isinstance(event, MaskingEvent)
    assert event.patterns_used == {"ec2": 1, "other": 2}
    assert CANARY not in repr(event)


def test_batch_keeps_good_elements_and_rejects_bad_ones() -> None:
    bad = masked_event(details={"pattern_count": "seven"})
    message = parse_message(dumps(batch([masked_event(), bad, unmasked_event(), [CANARY]])))
    assert isinstance(message, Batch)
    kinds = [type(item).__name__ for item in message.items]
    assert kinds == ["MaskingEvent", "Malformed", "MaskingEvent", "Malformed"]
    reasons = [item.reason for item in message.items if isinstance(item, Malformed)]
    assert reasons == ["bad_field", "not_object"]
    assert all(CANARY not in str(item) for item in message.items)


def _without(obj: dict, path: str) -> dict:
    *parents, leaf = path.split(".")
    target = obj
    for key in parents:
        target = target[key]
    del target[leaf]
    return obj


MALFORMED = [
    (b"\xff\xfe" + CANARY.encode(), "not_utf8"),
    (CANARY.encode(), "not_json"),
    (b'{"event_type": "data_masked", "x": NaN}', "not_json"),
    (b"[" * 100_000, "not_json"),
    (dumps([CANARY]), "not_object"),
    (dumps(CANARY), "not_object"),
    (dumps({"hello": CANARY}), "missing_field"),
    (dumps({"event_type": CANARY}), "unknown_event_type"),
    (dumps(_without(masked_event(), "details.action")), "missing_field"),
    (dumps(_without(masked_event(), "request_id")), "missing_field"),
    (dumps(_without(masked_event(), "details")), "missing_field"),
    (dumps(masked_event(timestamp=CANARY)), "bad_field"),
    (dumps(masked_event(timestamp=True)), "bad_field"),
    (dumps(masked_event(request_id=CANARY + "\n")), "bad_field"),
    (dumps(masked_event(route="x" * 300)), "bad_field"),
    (dumps(masked_event(details={"action": "unmask"})), "bad_field"),
    (dumps(masked_event(details={"processing_time_ms": -1})), "bad_field"),
    (dumps(masked_event(details={"body_size": 1.5})), "bad_field"),
    (dumps(masked_event(details={"pattern_count": 10**400})), "bad_field"),
    (dumps(masked_event(details={"patterns_used": {"ec2": CANARY}})), "bad_field"),
    (dumps(masked_event(details={"patterns_used": [CANARY]})), "bad_field"),
    (dumps(unmasked_event(details={"restore": CANARY})), "bad_field"),
    (dumps(publisher_stats(connected="yes")), "bad_field"),
    (dumps(_without(publisher_stats(), "pid")), "missing_field"),
    (dumps({"event_type": "batch", "events": CANARY}), "bad_batch"),
    (dumps({"event_type": "batch", "count": 3, "events": [masked_event()]}), "bad_batch"),
]


@pytest.mark.parametrize(("payload", "reason"), MALFORMED)
def test_malformed_messages_are_rejected_without_their_content(payload: bytes, reason: str) -> None:
    with pytest.raises(Malformed) as info:
        parse_message(payload)
    assert info.value.reason == reason
    assert CANARY not in str(info.value) and "\n" not in info.value.detail


def test_categories_match_the_plugin() -> None:
    assert set(CATEGORIES) == set(CATEGORY_TOGGLES.values())


# --- rate limit, stats, health, backoff, error phrases -------------------------------------------


def test_rate_limiter_windows() -> None:
    limiter = LogRateLimiter(100)
    allowed = [limiter.allow(10.0 + i * 0.004) for i in range(200)]  # 200 events within 0.8 s
    assert allowed.count(True) == 100 and allowed[:100] == [True] * 100
    assert limiter.roll(10.9) == 0  # the window is still open
    assert limiter.roll(11.0) == 100  # closed: its summary, once
    assert limiter.roll(11.1) == 0
    assert limiter.allow(11.2)  # a new window
    assert not LogRateLimiter(0).allow(1.0)
    quiet = LogRateLimiter(5)
    assert [quiet.allow(1.0) for _ in range(3)] == [True] * 3
    assert quiet.roll(5.0) == 0  # a window without suppressions is not summarised
    final = LogRateLimiter(1)
    final.allow(1.0), final.allow(1.1)
    assert final.close() == 1  # at shutdown, the open window too


def test_events_per_minute_is_a_sliding_60_s_window() -> None:
    stats = Stats(now=0.0, wall=0.0)
    event = parse_message(dumps(masked_event()))
    assert isinstance(event, MaskingEvent)
    for t in (0.5, 10.0, 10.2, 59.0, 61.0):
        stats.record_event(event, now=t, wall=1.0)
    assert stats.events_per_minute(61.0) == 4  # the event at 0.5 s is older than 60 s
    assert stats.events_per_minute(200.0) == 0
    assert stats.events_total == 5


def test_health_verdict() -> None:
    state = ConnectionState.initial(True, now=0.0)
    assert verdict(state, now=1.0, max_failures=3, max_disconnected_s=10)[0]
    for _ in range(3):
        state.attempt_failed("Redis unreachable: connection refused")
    healthy, body = verdict(state, now=1.0, max_failures=3, max_disconnected_s=10)
    assert not healthy and "3 consecutive failed connection attempts" in body["reason"]
    assert "connection refused" in body["reason"]
    state.subscribed(now=2.0)
    assert verdict(state, now=2.0, max_failures=3, max_disconnected_s=10) == (
        True,
        {"status": "ok", "redis": "connected"},
    )
    state.lost(now=3.0, reason="connection closed by Redis")
    assert verdict(state, now=5.0, max_failures=3, max_disconnected_s=10)[0]
    healthy, body = verdict(state, now=14.0, max_failures=3, max_disconnected_s=10)
    assert not healthy and "no Redis subscription for 11.0 s" in body["reason"]
    disabled = ConnectionState.initial(False, now=0.0)
    assert verdict(disabled, now=1e6, max_failures=3, max_disconnected_s=10)[0]


def test_backoff_is_full_jitter_with_a_cap() -> None:
    top = [backoff_delay(n, base=0.5, cap=5.0, rng=lambda: 1.0) for n in range(0, 8)]
    assert top == [0.5, 0.5, 1.0, 2.0, 4.0, 5.0, 5.0, 5.0]
    assert backoff_delay(3, base=0.5, cap=5.0, rng=lambda: 0.0) == 0.0
    assert backoff_delay(10**6, base=0.5, cap=5.0, rng=lambda: 1.0) == 5.0  # no overflow, forever


def test_error_phrases() -> None:
    wrong = redis_errors.AuthenticationError("invalid username-password pair or user is disabled.")
    assert describe_error(wrong) == "authentication failed: wrong password or username"
    for text in ("Authentication required.", "HELLO must be called with the client already authenticated"):
        assert describe_error(redis_errors.AuthenticationError(text)).startswith(
            "authentication failed: Redis requires a password"
        )
    try:
        try:
            raise ConnectionRefusedError(111, "Connection refused")
        except OSError as exc:
            raise redis_errors.ConnectionError("Error 111 connecting to 127.0.0.1:1.") from exc
    except redis_errors.ConnectionError as exc:
        assert describe_error(exc) == "Redis unreachable: connection refused"
    assert describe_error(redis_errors.ConnectionError("Connection closed by server.")) == (
        "connection closed by Redis"
    )
    assert describe_error(redis_errors.TimeoutError("Timeout connecting to server")) == (
        "Redis unreachable: timed out"
    )
    assert describe_error(redis_errors.ResponseError("NOPERM no permissions")).startswith(
        "Redis refused the subscription: NOPERM"
    )


# --- the subscriber's message handling, fed directly -------------------------------------------


def _subscriber(clock: FakeClock, **overrides: object) -> tuple[Subscriber, io.StringIO]:
    stream = io.StringIO()
    settings = Settings(enable_redis_events=False, **overrides)  # type: ignore[arg-type]
    return Subscriber(settings, stream=stream, clock=clock, wall=lambda: 1764923456.0), stream


def test_rate_limit_logs_exactly_the_limit_and_counts_everything() -> None:
    clock = FakeClock()
    sub, stream = _subscriber(clock)
    for i in range(200):  # 200 events within 1 s
        clock.now = 1000.0 + i * 0.004
        sub.handle_payload(dumps(masked_event(request_id=f"req-{i:03d}")))
    clock.now = 1001.0
    sub.summarise_suppressed()
    records = [json.loads(line) for line in stream.getvalue().splitlines()]
    logged = [r for r in records if r.get("event_type") == "data_masked"]
    assert len(logged) == 100
    assert [r["request_id"] for r in logged] == [f"req-{i:03d}" for i in range(100)]
    summaries = [r for r in records if r["message"].startswith("suppressed")]
    assert [r["message"] for r in summaries] == ["suppressed 100 events in the last 1 s"]
    assert summaries[0]["suppressed"] == 100
    doc = sub.stats_document()
    assert doc["events"]["total"] == 200 and doc["events"]["by_type"]["data_masked"] == 200
    assert doc["events"]["per_minute"] == 200
    assert doc["rate_limited"] == 100
    assert doc["patterns"]["mask"]["ec2"] == 600  # suppressed events count in every statistic


def test_production_line_has_the_documented_fields_only() -> None:
    sub, stream = _subscriber(FakeClock())
    sub.handle_payload(dumps(masked_event(extra=CANARY, details={"x": CANARY})))
    record = json.loads(stream.getvalue().splitlines()[-1])
    assert set(record) == {"timestamp", "level", "message", "event_type", "request_id", "processing_time_ms"}
    assert record["message"] == "[data_masked] 8a1f3c0e2b7d4e6f9a0b1c2d3e4f5a6b - 0.41ms"
    assert (record["event_type"], record["processing_time_ms"]) == ("data_masked", 0.41)
    assert CANARY not in stream.getvalue()


def test_development_line_is_detailed_and_human_readable() -> None:
    sub, stream = _subscriber(FakeClock(), environment="development")
    sub.handle_payload(dumps(unmasked_event(extra=CANARY)))
    line = stream.getvalue().splitlines()[-1]
    with pytest.raises(json.JSONDecodeError):
        json.loads(line)
    assert "[data_unmasked] 8a1f3c0e2b7d4e6f9a0b1c2d3e4f5a6b - 1.5ms" in line
    for field in ("route=claude-proxy", "service=claude-messages", "body_size=2048", "restore=complete"):
        assert field in line
    assert "patterns_used=" in line and "'ec2': 3" in line
    assert CANARY not in stream.getvalue()


def test_malformed_warnings_have_size_and_reason_only_and_are_rate_limited() -> None:
    clock = FakeClock()
    sub, stream = _subscriber(clock, event_log_rate_limit=3)
    for payload, _reason in MALFORMED:
        sub.handle_payload(payload)
    clock.now += 1.0
    sub.summarise_suppressed()
    text = stream.getvalue()
    assert CANARY not in text
    records = [json.loads(line) for line in text.splitlines()]
    warnings = [r for r in records if r["level"] == "warning"]
    assert len(warnings) == 3
    assert (
        warnings[0]["message"] == f"malformed message ignored ({len(MALFORMED[0][0])} bytes): not valid UTF-8"
    )
    assert set(warnings[0]) == {"timestamp", "level", "message", "reason", "detail", "size"}
    expected = len(MALFORMED) - 3
    assert records[-1]["message"] == f"suppressed {expected} malformed-message warnings in the last 1 s"
    doc = sub.stats_document()
    assert doc["messages"]["malformed"] == len(MALFORMED)
    assert doc["malformed_logs_suppressed"] == expected
    assert doc["events"]["total"] == 0


def test_processing_time_is_printed_like_the_original() -> None:
    sub, stream = _subscriber(FakeClock())
    sub.handle_payload(dumps(masked_event(details={"processing_time_ms": 5})))
    sub.handle_payload(dumps(masked_event(request_id=None, details={"processing_time_ms": 12.25})))
    messages = [json.loads(line)["message"] for line in stream.getvalue().splitlines()]
    assert messages == [
        "[data_masked] 8a1f3c0e2b7d4e6f9a0b1c2d3e4f5a6b - 5ms",
        "[data_masked] - - 12.25ms",
    ]
    assert math.isclose(sub.stats_document()["events"]["processing_time_ms_total"]["data_masked"], 17.25)
