"""Log lines, chosen once per subscriber by environment, and what an event's line may contain.

production: one JSON object per line (``message`` holds the text; ``level`` and ``timestamp`` are
added). development: structlog's console renderer, human-readable. Each subscriber gets its own
logger bound to its own stream (no global structlog configuration), so tests can run several.
A stream nobody reads any more (its pipe closed, e.g. ``aws-masker up`` was killed) drops lines
instead of raising: logging must never stop a shutdown.

An event's line holds documented fields only (:func:`event_fields`); a malformed message's line holds
its size and the reason, never its content.
"""

from __future__ import annotations

import logging
from typing import Any, TextIO

import structlog
from structlog.typing import EventDict, FilteringBoundLogger, Processor

from .events import MaskingEvent, PublisherStats


def make_logger(environment: str, stream: TextIO) -> FilteringBoundLogger:
    processors: list[Processor] = [
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    if environment == "production":
        processors += [
            structlog.processors.EventRenamer("message"),
            _lead_with_time_level_message,
            structlog.processors.JSONRenderer(),
        ]
    else:
        isatty = getattr(stream, "isatty", None)
        processors.append(structlog.dev.ConsoleRenderer(colors=bool(isatty and isatty())))
    logger: FilteringBoundLogger = structlog.wrap_logger(
        structlog.PrintLogger(_Tolerant(stream)),
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
        cache_logger_on_first_use=True,
    )
    return logger


class _Tolerant:
    """A text stream whose writes stop, silently, at the first OSError (EPIPE, EIO)."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._broken = False

    def write(self, text: str) -> int:
        if not self._broken:
            try:
                return self._stream.write(text)
            except OSError:
                self._broken = True
        return len(text)

    def flush(self) -> None:
        if not self._broken:
            try:
                self._stream.flush()
            except OSError:
                self._broken = True


def _lead_with_time_level_message(_logger: Any, _method: str, event_dict: EventDict) -> EventDict:
    """Put ``timestamp``, ``level`` and ``message`` first in a JSON line, for people reading it."""
    lead = {key: event_dict.pop(key) for key in ("timestamp", "level", "message") if key in event_dict}
    lead.update(event_dict)
    return lead


def format_ms(value: float) -> str:
    """As JavaScript prints a number: ``5``, ``0.41``."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def event_message(event: MaskingEvent) -> str:
    """The original system's line: ``[data_masked] <request_id> - 0.41ms``."""
    return f"[{event.event_type}] {event.request_id or '-'} - {format_ms(event.processing_time_ms)}ms"


def event_fields(event: MaskingEvent, environment: str) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "event_type": event.event_type,
        "request_id": event.request_id,
        "processing_time_ms": event.processing_time_ms,
    }
    if environment == "production":
        return fields
    fields.update(
        event_id=event.event_id,
        event_timestamp_ms=event.timestamp,
        route=event.route,
        service=event.service,
        action=event.action,
        pattern_count=event.pattern_count,
        patterns_used=dict(event.patterns_used),
        body_size=event.body_size,
        plugin_version=event.plugin_version,
    )
    if event.restore is not None:
        fields["restore"] = event.restore
    return fields


def publisher_message(stats: PublisherStats) -> str:
    state = "connected" if stats.connected else "NOT connected"
    return (
        f"[publisher_stats] {stats.node}/{stats.pid}: published {stats.published}, dropped {stats.dropped}, "
        f"errors {stats.errors}, queue {stats.queue_depth}, {state}"
    )


def publisher_fields(stats: PublisherStats, environment: str) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "event_type": "publisher_stats",
        "node": stats.node,
        "pid": stats.pid,
        "published": stats.published,
        "dropped": stats.dropped,
        "errors": stats.errors,
        "queue_depth": stats.queue_depth,
        "connected": stats.connected,
    }
    if environment != "production":
        fields.update(
            enqueued=stats.enqueued,
            batches=stats.batches,
            interval_s=stats.interval_s,
            event_timestamp_ms=stats.timestamp,
        )
    return fields
