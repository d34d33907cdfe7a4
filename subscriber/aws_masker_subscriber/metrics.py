"""``/metrics``: the statistics in Prometheus text format, from a registry of the subscriber's own.

A collector reads :class:`Stats` and the connection state at scrape time, so there is one set of
counters (no second bookkeeping that could drift), and several subscribers can share a process.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from .events import MALFORMED_REASONS, RESTORE_OUTCOMES
from .health import ConnectionState
from .stats import Stats

PREFIX = "aws_masker_subscriber"
CONTENT_TYPE = CONTENT_TYPE_LATEST


class SubscriberCollector(Collector):
    def __init__(self, stats: Stats, state: ConnectionState, clock: Callable[[], float]) -> None:
        self.stats = stats
        self.state = state
        self.clock = clock

    def collect(self) -> Iterable[Metric]:
        s, now = self.stats, self.clock()

        events = CounterMetricFamily(f"{PREFIX}_events", "Masking events received", labels=["event_type"])
        for event_type, n in s.events_by_type.items():
            events.add_metric([event_type], n)
        yield events

        patterns = CounterMetricFamily(
            f"{PREFIX}_patterns",
            "Identifiers masked or restored, from details.patterns_used",
            labels=["action", "category"],
        )
        for action in s.patterns:
            for category, n in s.pattern_counts(action).items():
                patterns.add_metric([action, category], n)
        yield patterns

        processing = CounterMetricFamily(
            f"{PREFIX}_processing_seconds", "Sum of details.processing_time_ms", labels=["event_type"]
        )
        for event_type, ms in s.processing_ms.items():
            processing.add_metric([event_type], ms / 1000.0)
        yield processing

        restore = CounterMetricFamily(
            f"{PREFIX}_restore", "data_unmasked events by details.restore", labels=["outcome"]
        )
        for outcome in RESTORE_OUTCOMES:
            restore.add_metric([outcome], s.restore[outcome])
        yield restore

        yield _counter("messages", "Pub/Sub messages received", s.messages)
        yield _counter("batches", "Batch messages received", s.batches)
        yield _counter(
            "publisher_stats_messages", "publisher_stats messages received", s.publisher_stats_messages
        )

        malformed = CounterMetricFamily(
            f"{PREFIX}_malformed_messages", "Malformed messages (or batch elements)", labels=["reason"]
        )
        for reason in MALFORMED_REASONS:
            malformed.add_metric([reason], s.malformed[reason])
        yield malformed

        yield _counter(
            "rate_limited_events", "Event log lines suppressed by the log rate limit", s.suppressed_event_logs
        )
        yield _counter(
            "rate_limited_malformed",
            "Malformed-message log lines suppressed by the rate limit",
            s.suppressed_malformed_logs,
        )
        yield _counter("reconnects", "Subscriptions re-established after a loss or failure", s.reconnects)
        yield _counter("connection_failures", "Failed connection attempts", s.connection_failures)

        yield _gauge("connected", "1 while subscribed to the channel", 1.0 if self.state.connected else 0.0)
        yield _gauge(
            "consecutive_connection_failures",
            "Failed attempts since the last subscription",
            self.state.consecutive_failures,
        )
        yield _gauge(
            "events_per_minute", "Masking events received in the last 60 s", s.events_per_minute(now)
        )
        if s.last_event_wall is not None:
            yield _gauge(
                "last_event_timestamp_seconds",
                "When the last masking event arrived (epoch)",
                s.last_event_wall,
            )
        yield _gauge("uptime_seconds", "Seconds since the subscriber started", s.uptime_s(now))

        labels = ["node", "pid"]
        families = {
            name: CounterMetricFamily(
                f"{PREFIX}_publisher_{name}",
                f"Publisher's own {name} counter (latest publisher_stats)",
                labels=labels,
            )
            for name in ("enqueued", "published", "dropped", "errors", "batches")
        }
        depth = GaugeMetricFamily(f"{PREFIX}_publisher_queue_depth", "Publisher's queue depth", labels=labels)
        up = GaugeMetricFamily(
            f"{PREFIX}_publisher_connected", "1 if the publisher was connected", labels=labels
        )
        for (node, pid), rec in s.publishers.items():
            key = [node, str(pid)]
            for name, family in families.items():
                family.add_metric(key, getattr(rec.stats, name))
            depth.add_metric(key, rec.stats.queue_depth)
            up.add_metric(key, 1.0 if rec.stats.connected else 0.0)
        yield from families.values()
        yield depth
        yield up


def _counter(name: str, doc: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(f"{PREFIX}_{name}", doc, value=value)


def _gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(f"{PREFIX}_{name}", doc, value=value)


def make_registry(collector: Collector) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return registry


def exposition(registry: CollectorRegistry) -> bytes:
    return generate_latest(registry)
