"""Counters of what arrived: every event counts here, whether or not its log line was suppressed.

``now`` arguments are monotonic seconds (the subscriber's clock); ``wall`` ones are epoch seconds.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, OrderedDict, deque
from dataclasses import dataclass
from typing import Any

from .events import ACTIONS, CATEGORIES, MASKING_EVENT_TYPES, OTHER_CATEGORY, MaskingEvent, PublisherStats

EVENTS_WINDOW_S = 60
RATE_WINDOW_S = 10  # ``events.per_second``: the average over the last 10 whole seconds
# Publishers are keyed by (node, pid): a restarted process is a new publisher. Keep the most recent.
MAX_PUBLISHERS = 256


@dataclass(frozen=True)
class PublisherRecord:
    stats: PublisherStats
    received_wall: float
    received_at: float  # monotonic


class Stats:
    def __init__(self, now: float, wall: float) -> None:
        self.started_at = now
        self.started_wall = wall
        self.messages = 0
        self.batches = 0
        self.publisher_stats_messages = 0
        self.events_by_type: Counter[str] = Counter(dict.fromkeys(MASKING_EVENT_TYPES, 0))
        self.patterns: dict[str, Counter[str]] = {action: Counter() for action in ACTIONS.values()}
        self.processing_ms: dict[str, float] = dict.fromkeys(MASKING_EVENT_TYPES, 0.0)
        self.restore: Counter[str] = Counter()
        self.malformed: Counter[str] = Counter()
        self.suppressed_event_logs = 0
        self.suppressed_malformed_logs = 0
        self.connection_failures = 0
        self.reconnects = 0
        self.last_event_wall: float | None = None
        self.publishers: OrderedDict[tuple[str, int], PublisherRecord] = OrderedDict()
        self._per_second: deque[list[int]] = deque()  # [second, events] for the last 60 s
        # (second, events by type, identifiers masked by category) for the last 60 s: the live views
        self._series: deque[tuple[int, Counter[str], Counter[str]]] = deque()

    # --- recording ---

    def record_event(self, event: MaskingEvent, now: float, wall: float) -> None:
        self.events_by_type[event.event_type] += 1
        self.patterns[event.action].update(event.patterns_used)
        self.processing_ms[event.event_type] += event.processing_time_ms
        if event.restore is not None:
            self.restore[event.restore] += 1
        self.last_event_wall = wall
        second = int(now)
        if self._per_second and self._per_second[-1][0] == second:
            self._per_second[-1][1] += 1
        else:
            self._per_second.append([second, 1])
            self._prune(second)
        if not self._series or self._series[-1][0] != second:
            self._series.append((second, Counter(), Counter()))
        _second, by_type, masked = self._series[-1]
        by_type[event.event_type] += 1
        if event.action == "mask":
            masked.update(event.patterns_used)

    def record_publisher(self, stats: PublisherStats, now: float, wall: float) -> None:
        self.publisher_stats_messages += 1
        key = (stats.node, stats.pid)
        self.publishers.pop(key, None)
        self.publishers[key] = PublisherRecord(stats, wall, now)
        while len(self.publishers) > MAX_PUBLISHERS:
            self.publishers.popitem(last=False)

    def record_malformed(self, reason: str) -> None:
        self.malformed[reason] += 1

    # --- reading ---

    @property
    def events_total(self) -> int:
        return sum(self.events_by_type.values())

    @property
    def malformed_total(self) -> int:
        return sum(self.malformed.values())

    def events_per_minute(self, now: float) -> int:
        self._prune(int(now))
        return sum(count for _second, count in self._per_second)

    def pattern_counts(self, action: str) -> dict[str, int]:
        """Per category for ``mask`` or ``unmask``: every known category, and ``other`` once seen."""
        counts = self.patterns[action]
        result = {category: counts[category] for category in CATEGORIES}
        if OTHER_CATEGORY in counts:
            result[OTHER_CATEGORY] = counts[OTHER_CATEGORY]
        return result

    def uptime_s(self, now: float) -> float:
        return now - self.started_at

    def _prune(self, second: int) -> None:
        while self._per_second and self._per_second[0][0] <= second - EVENTS_WINDOW_S:
            self._per_second.popleft()
        while self._series and self._series[0][0] <= second - EVENTS_WINDOW_S:
            self._series.popleft()

    def per_second(self, now: float, window_s: int = RATE_WINDOW_S) -> dict[str, float]:
        """Events per second by type, averaged over the ``window_s`` whole seconds before ``now``'s."""
        current = int(now)
        self._prune(current)
        totals: Counter[str] = Counter(dict.fromkeys(MASKING_EVENT_TYPES, 0))
        for second, by_type, _masked in self._series:
            if current - window_s <= second < current:
                totals.update(by_type)
        return {kind: round(count / window_s, 3) for kind, count in totals.items()}

    def series(self, now: float, seconds: int = EVENTS_WINDOW_S) -> dict[str, Any]:
        """The last ``seconds`` whole seconds (oldest first, the current one excluded): events by type
        and identifiers masked by category per second. Aggregates only."""
        current = int(now)
        self._prune(current)
        rows = {second: (by_type, masked) for second, by_type, masked in self._series}
        empty: Counter[str] = Counter()
        span = range(current - seconds, current)
        categories = [
            c for c in (*CATEGORIES, OTHER_CATEGORY) if any(rows.get(s, (empty, empty))[1][c] for s in span)
        ]
        return {
            "seconds": seconds,
            "events": {
                kind: [rows.get(s, (empty, empty))[0][kind] for s in span] for kind in MASKING_EVENT_TYPES
            },
            "masked": {c: [rows.get(s, (empty, empty))[1][c] for s in span] for c in categories},
        }

    def document(self, now: float) -> dict[str, Any]:
        """The statistics part of ``/stats`` (JSON-ready)."""
        return {
            "uptime_s": round(self.uptime_s(now), 3),
            "started_at": iso(self.started_wall),
            "events": {
                "total": self.events_total,
                "by_type": dict(self.events_by_type),
                "per_minute": self.events_per_minute(now),
                "per_second": self.per_second(now),
                "last_event_at": iso(self.last_event_wall) if self.last_event_wall is not None else None,
                "processing_time_ms_total": {k: round(v, 3) for k, v in self.processing_ms.items()},
                "restore": dict(sorted(self.restore.items())),
            },
            "patterns": {action: self.pattern_counts(action) for action in self.patterns},
            "messages": {
                "received": self.messages,
                "batches": self.batches,
                "publisher_stats": self.publisher_stats_messages,
                "malformed": self.malformed_total,
                "malformed_by_reason": dict(sorted(self.malformed.items())),
            },
            "rate_limited": self.suppressed_event_logs,
            "malformed_logs_suppressed": self.suppressed_malformed_logs,
            "publishers": [
                {
                    "node": rec.stats.node,
                    "pid": rec.stats.pid,
                    "received_at": iso(rec.received_wall),
                    "age_s": round(now - rec.received_at, 3),
                    "timestamp": rec.stats.timestamp,
                    "interval_s": rec.stats.interval_s,
                    "enqueued": rec.stats.enqueued,
                    "published": rec.stats.published,
                    "dropped": rec.stats.dropped,
                    "errors": rec.stats.errors,
                    "batches": rec.stats.batches,
                    "queue_depth": rec.stats.queue_depth,
                    "connected": rec.stats.connected,
                }
                for rec in self.publishers.values()
            ],
        }


def iso(wall: float) -> str:
    """Epoch seconds -> ``2026-01-02T03:04:05.678Z``."""
    moment = dt.datetime.fromtimestamp(wall, tz=dt.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
