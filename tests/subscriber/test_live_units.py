"""The live views' building blocks without processes: per-second rates and series in Stats, the
process roles ``aws-masker monitor`` recognises by command line, and its plain snapshot."""

from __future__ import annotations

from subscriber_harness import dumps, masked_event, unmasked_event

from aws_masker_subscriber.events import MaskingEvent, parse_message
from aws_masker_subscriber.monitor.procs import ProcessUsage, role_of
from aws_masker_subscriber.monitor.render import plain
from aws_masker_subscriber.monitor.sample import Sample, redis_url_from_stats
from aws_masker_subscriber.stats import Stats


def event(raw: dict) -> MaskingEvent:
    parsed = parse_message(dumps(raw))
    assert isinstance(parsed, MaskingEvent)
    return parsed


def test_per_second_averages_the_last_ten_whole_seconds_by_type() -> None:
    stats = Stats(now=0.0, wall=0.0)
    masked, unmasked = event(masked_event()), event(unmasked_event())
    for t in (1.0, 1.5, 9.9, 10.5):  # 10.5 is in the current second: not counted yet
        stats.record_event(masked, now=t, wall=1.0)
    stats.record_event(unmasked, now=2.0, wall=1.0)
    assert stats.per_second(10.7) == {"data_masked": 0.3, "data_unmasked": 0.1}
    assert stats.per_second(30.0) == {"data_masked": 0.0, "data_unmasked": 0.0}
    assert stats.document(10.7)["events"]["per_second"] == {"data_masked": 0.3, "data_unmasked": 0.1}


def test_series_has_one_slot_per_second_and_only_the_masked_categories_seen() -> None:
    stats = Stats(now=0.0, wall=0.0)
    masked = event(masked_event())  # ec2 3, private_ip 2, s3 1, rds 1
    stats.record_event(masked, now=57.2, wall=1.0)
    stats.record_event(masked, now=57.8, wall=1.0)
    stats.record_event(event(unmasked_event()), now=59.1, wall=1.0)
    series = stats.series(60.5)
    assert series["seconds"] == 60 and len(series["events"]["data_masked"]) == 60
    assert series["events"]["data_masked"][-3:] == [2, 0, 0]
    assert series["events"]["data_unmasked"][-3:] == [0, 0, 1]
    assert set(series["masked"]) == {"ec2", "private_ip", "s3", "rds"}  # unmask counts are not "masked"
    assert series["masked"]["ec2"][-3:] == [6, 0, 0]
    assert stats.series(200.0)["masked"] == {}


def test_roles_by_command_line() -> None:
    assert (
        role_of("python3", ["/v/bin/python", "-m", "aws_masker.cli", "gateway", "--config", "k"]) == "gateway"
    )
    assert role_of("aws-masker", ["/v/bin/python", "/v/bin/aws-masker", "subscriber"]) == "subscriber"
    assert (
        role_of("aws-masker-serv", ["/v/bin/python", "/v/bin/aws-masker-server", "-p", "/x"])
        == "plugin server"
    )
    assert role_of(
        "nginx", ["nginx: master process /usr/local/openresty/nginx/sbin/nginx -p /usr/local/kong/"]
    ) == ("gateway")
    assert role_of("redis-server", ["redis-server 127.0.0.1:6379"]) == "redis"
    assert role_of("python3", ["/v/bin/python", "-m", "aws_masker.cli", "mask"]) is None
    assert role_of("bash", ["bash", "-c", "aws-masker gateway"]) is None


def test_redis_url_from_stats_only_without_a_password() -> None:
    assert redis_url_from_stats({"redis": {"url": "redis://127.0.0.1:7000/0"}}) == "redis://127.0.0.1:7000/0"
    assert redis_url_from_stats({"redis": {"url": "redis://:***@127.0.0.1:7000/0"}}) is None
    assert redis_url_from_stats(None) is None


def test_plain_snapshot_lists_counts_and_problems() -> None:
    stats = {
        "pid": 10,
        "rate_limited": 7,
        "redis": {"last_error": None},
        "events": {"by_type": {"data_masked": 5}, "per_second": {"data_masked": 0.5}},
        "patterns": {"mask": {"ec2": 4, "arn": 0}},
        "messages": {"malformed_by_reason": {"not_json": 2}},
        "publishers": [
            {
                "node": "n",
                "pid": 1,
                "enqueued": 9,
                "published": 7,
                "dropped": 2,
                "errors": 1,
                "connected": False,
            }
        ],
    }
    sample = Sample(
        taken_at=0.0,
        subscriber_url="http://127.0.0.1:8090",
        health={"status": "ok", "redis": "connected"},
        healthy=True,
        stats=stats,
        processes=[ProcessUsage("subscriber", 10, 1.5, 50 * 1024 * 1024, "stats")],
    )
    text = plain(sample)
    assert "rate limited (log lines): 7\n" in text
    assert "  data_masked 0.5\n" in text and "  ec2 4\n  arn 0\n" in text
    assert "publishers: 1, enqueued 9, published 7, dropped 2, errors 1\n" in text
    assert "  subscriber pid 10 cpu 1.5% rss 50.0 MiB (stats)\n" in text
    assert "  publisher n/1: 1 Redis errors, 2 events dropped, not connected\n" in text
    assert "  2 malformed messages (not_json)\n" in text


def test_the_full_screen_view_fits_an_80x24_terminal_and_goes_side_by_side_when_wide() -> None:
    from rich.console import Console

    from aws_masker_subscriber.monitor.render import LiveView

    masked = {"ec2": 4, "s3": 2, "rds": 1, "private_ip": 3, "arn": 2, "account": 2, "ipv6": 0, "hostname": 0}
    stats = {
        "events": {"by_type": {"data_masked": 5, "data_unmasked": 5}, "per_second": {"data_masked": 0.5}},
        "patterns": {"mask": masked},
        "publishers": [],
    }
    roles = ("gateway", "plugin server", "subscriber", "redis")
    sample = Sample(
        taken_at=0.0,
        subscriber_url="http://127.0.0.1:8090",
        health={"status": "ok", "redis": "connected"},
        healthy=True,
        stats=stats,
        processes=[ProcessUsage(role, 10 + i, 0.0, 1 << 20, "stats") for i, role in enumerate(roles)],
    )
    heights = {}
    for width in (80, 130):
        console = Console(width=width, record=True, force_terminal=False)
        console.print(LiveView().render(sample, width))
        text = console.export_text()
        heights[width] = len(text.rstrip("\n").splitlines())
        assert "ipv6" not in text and "hostname" not in text  # only the categories seen
        assert all(cat in text for cat, n in masked.items() if n) and "plugin server" in text
    assert heights[80] <= 24 and heights[130] < heights[80]
