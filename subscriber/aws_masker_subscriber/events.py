"""Parse one Pub/Sub message into typed events, per docs/events.md; anything else is malformed.

A message is a masking event (``data_masked``/``data_unmasked``), a batch of masking events, or a
``publisher_stats`` message. Parsing keeps only the documented fields, so nothing else a publisher
put in a message can reach a log line. :class:`Malformed` carries a fixed reason code (a metrics
label) and a detail that names the offending field, never its value.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

MASKING_EVENT_TYPES = ("data_masked", "data_unmasked")
ACTIONS = {"data_masked": "mask", "data_unmasked": "unmask"}
CATEGORIES = (
    "ec2",
    "s3",
    "rds",
    "private_ip",
    "public_ip",
    "ipv6",
    "arn",
    "account",
    "credentials",
    "hostname",
)
# A category a newer plugin may add is counted here: its name is publisher-controlled text, and it
# becomes neither a stats key nor a metrics label.
OTHER_CATEGORY = "other"
RESTORE_OUTCOMES = ("complete", "incomplete", "passed", "not_run")
MAX_MESSAGE_BYTES = 4 * 1024 * 1024
MAX_TEXT = 256
MAX_NUMBER = 2**53

# Reason codes of malformed messages (bounded: they are a metrics label).
MALFORMED_REASONS = (
    "too_large",
    "not_utf8",
    "not_json",
    "not_object",
    "unknown_event_type",
    "missing_field",
    "bad_field",
    "bad_batch",
    "internal_error",
)


class Malformed(Exception):
    """Why a message (or one element of a batch) was rejected. ``detail`` never holds message content."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class MaskingEvent:
    event_id: str
    event_type: str
    timestamp: float
    request_id: str | None
    route: str | None
    service: str | None
    source: str
    action: str
    processing_time_ms: float
    pattern_count: int
    patterns_used: Mapping[str, int]
    body_size: int
    plugin_version: str
    restore: str | None


@dataclass(frozen=True)
class PublisherStats:
    timestamp: float
    source: str
    node: str
    pid: int
    interval_s: float
    enqueued: int
    published: int
    dropped: int
    errors: int
    batches: int
    queue_depth: int
    connected: bool


@dataclass(frozen=True)
class Batch:
    """The elements of a batch message, in order; a malformed element does not spoil the others."""

    items: tuple[MaskingEvent | Malformed, ...]


Message = MaskingEvent | PublisherStats | Batch


def parse_message(data: bytes) -> Message:
    """One Pub/Sub payload -> a typed message; raises :class:`Malformed`."""
    if len(data) > MAX_MESSAGE_BYTES:
        raise Malformed("too_large", f"larger than {MAX_MESSAGE_BYTES} bytes")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise Malformed("not_utf8", "not valid UTF-8") from None
    try:
        obj = json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        raise Malformed("not_json", "not valid JSON") from None
    if not isinstance(obj, dict):
        raise Malformed("not_object", "not a JSON object")
    event_type = obj.get("event_type")
    if event_type in MASKING_EVENT_TYPES:
        return parse_masking_event(obj)
    if event_type == "batch":
        return _parse_batch(obj)
    if event_type == "publisher_stats":
        return _parse_publisher_stats(obj)
    if "event_type" not in obj:
        raise Malformed("missing_field", "missing field event_type")
    raise Malformed(
        "unknown_event_type", "event_type is not data_masked, data_unmasked, batch or publisher_stats"
    )


def parse_masking_event(obj: Any, where: str = "") -> MaskingEvent:
    if not isinstance(obj, dict):
        raise Malformed("not_object", f"{where}not a JSON object")
    event_type = obj.get("event_type")
    if event_type not in MASKING_EVENT_TYPES:
        raise Malformed("unknown_event_type", f"{where}event_type is not data_masked or data_unmasked")
    f = _Fields(obj, where)
    details = _Fields(f.object("details"), f"{where}details.")
    action = details.text("action")
    if action != ACTIONS[event_type]:
        raise Malformed("bad_field", f"{where}details.action does not match event_type")
    restore = details.optional_text("restore")
    if restore is not None and (event_type != "data_unmasked" or restore not in RESTORE_OUTCOMES):
        raise Malformed("bad_field", f"{where}details.restore is not a documented outcome")
    return MaskingEvent(
        event_id=f.text("event_id"),
        event_type=event_type,
        timestamp=f.number("timestamp"),
        request_id=f.nullable_text("request_id"),
        route=f.nullable_text("route"),
        service=f.nullable_text("service"),
        source=f.text("source"),
        action=action,
        processing_time_ms=details.number("processing_time_ms"),
        pattern_count=details.count("pattern_count"),
        patterns_used=_patterns_used(details.object("patterns_used"), f"{where}details.patterns_used"),
        body_size=details.count("body_size"),
        plugin_version=details.text("plugin_version"),
        restore=restore,
    )


def _parse_batch(obj: dict[str, Any]) -> Batch:
    events = obj.get("events")
    if not isinstance(events, list):
        raise Malformed("bad_batch", "batch without an events list")
    count = obj.get("count")
    if not _is_int(count) or count != len(events):
        raise Malformed("bad_batch", "batch count is missing or differs from the number of events")
    items: list[MaskingEvent | Malformed] = []
    for index, element in enumerate(events):
        try:
            items.append(parse_masking_event(element, f"events[{index}]."))
        except Malformed as exc:
            items.append(exc)
    return Batch(tuple(items))


def _parse_publisher_stats(obj: dict[str, Any]) -> PublisherStats:
    f = _Fields(obj, "")
    pid = f.count("pid")
    interval_s = f.number("interval_s")
    connected = obj.get("connected")
    if "connected" not in obj:
        raise Malformed("missing_field", "missing field connected")
    if not isinstance(connected, bool):
        raise Malformed("bad_field", "connected must be true or false")
    node = f.text("node")
    return PublisherStats(
        timestamp=f.number("timestamp"),
        source=f.text("source"),
        node=node,
        pid=pid,
        interval_s=interval_s,
        enqueued=f.count("enqueued"),
        published=f.count("published"),
        dropped=f.count("dropped"),
        errors=f.count("errors"),
        batches=f.count("batches"),
        queue_depth=f.count("queue_depth"),
        connected=connected,
    )


def _patterns_used(obj: Mapping[str, Any], where: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    for key, value in obj.items():
        if not _is_int(value) or not _is_number(value):
            raise Malformed("bad_field", f"{where} values must be non-negative integers")
        category = key if key in CATEGORIES else OTHER_CATEGORY
        counts[category] = counts.get(category, 0) + value
    return counts


class _Fields:
    """Typed access to the fields of one JSON object; every failure names the field, not its value."""

    def __init__(self, obj: dict[str, Any], where: str) -> None:
        self.obj = obj
        self.where = where

    def _get(self, name: str) -> Any:
        if name not in self.obj:
            raise Malformed("missing_field", f"missing field {self.where}{name}")
        return self.obj[name]

    def _bad(self, name: str, expected: str) -> Malformed:
        return Malformed("bad_field", f"{self.where}{name} must be {expected}")

    def text(self, name: str) -> str:
        value = self._get(name)
        if not isinstance(value, str) or not value or len(value) > MAX_TEXT or not value.isprintable():
            raise self._bad(name, f"a non-empty printable string of at most {MAX_TEXT} characters")
        return value

    def nullable_text(self, name: str) -> str | None:
        return None if self._get(name) is None else self.text(name)

    def optional_text(self, name: str) -> str | None:
        return None if self.obj.get(name) is None else self.text(name)

    def number(self, name: str) -> float:
        value = self._get(name)
        if not _is_number(value):
            raise self._bad(name, "a non-negative number")
        return cast(float, value)  # an int stays an int (5 is logged as 5, as the publisher sent it)

    def count(self, name: str) -> int:
        value = self._get(name)
        if not _is_int(value) or not _is_number(value):
            raise self._bad(name, "a non-negative integer")
        return int(value)

    def object(self, name: str) -> dict[str, Any]:
        value = self._get(name)
        if not isinstance(value, dict):
            raise self._bad(name, "an object")
        return value


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    """A JSON number from 0 to 2**53 (beyond that a double is no longer exact, and sums could overflow)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return 0 <= value <= MAX_NUMBER


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")
