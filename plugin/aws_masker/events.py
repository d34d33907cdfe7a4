"""Monitoring events: the sampling decision and the event documents (docs/events.md).

``Monitor`` is what the plugin's ``log`` phase talks to: ``sampled()`` draws the one sampling
decision of a request (no PDK call is made for a request that is not sampled), ``report()`` builds
the request's ``data_masked`` and ``data_unmasked`` events from counts and hands them to the
process's publisher, which never blocks. Events carry counts, sizes, timings and Kong entity names:
never an identifier, a token or any part of a body.
"""

from __future__ import annotations

import logging
import random
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from . import __version__
from .publisher import PublisherSettings, publisher_for

log = logging.getLogger(__name__)

SOURCE = "kong-aws-masker"
RESTORE_STATES = frozenset({"complete", "incomplete", "passed", "not_run"})


@dataclass(frozen=True)
class EventSettings:
    enabled: bool
    sampling_rate: float
    publisher: PublisherSettings

    @classmethod
    def from_mapping(cls, conf: Mapping[str, Any]) -> EventSettings:
        return cls(
            enabled=bool(conf.get("enable_event_monitoring", False)),
            sampling_rate=float(conf.get("event_sampling_rate", 1.0)),
            publisher=PublisherSettings.from_mapping(conf),
        )


class Monitor:
    def __init__(self, settings: EventSettings, rng: random.Random | None = None) -> None:
        self.settings = settings
        self._random = (rng or random.Random()).random

    def sampled(self) -> bool:
        """This request's one sampling decision: both of its events, or neither."""
        rate = self.settings.sampling_rate
        if not self.settings.enabled or rate <= 0.0:
            return False
        return rate >= 1.0 or self._random() < rate

    def report(
        self, serialized: Mapping[str, Any], masked: Mapping[str, Any], restored: Mapping[str, Any] | None
    ) -> None:
        # the publisher starts (thread, connection) with the first sampled request, not at import
        publisher = publisher_for(self.settings.publisher, self)
        for event in build_events(serialized, masked, restored):
            publisher.enqueue(event)

    def failed(self, exc: BaseException) -> None:
        """The log phase failed: this request's events are lost (counted in the plugin server's log
        by the error's class only, never its message, which could quote data)."""
        log.warning(
            "aws-masker: events: the log phase failed (%s); the request's events are lost", type(exc).__name__
        )

    def take_line(self) -> tuple[str, str] | None:
        """A line the publisher wants in Kong's log (a Redis error, the periodic counters)."""
        return publisher_for(self.settings.publisher, self).take_line()


def _name(entity: Any) -> str | None:
    if not isinstance(entity, dict):
        return None
    name = entity.get("name") or entity.get("id")
    return name if isinstance(name, str) else None


def _counts(value: Any) -> dict[str, int]:
    if not isinstance(value, dict):
        return {}
    return {k: v for k, v in value.items() if isinstance(k, str) and isinstance(v, int) and v > 0}


def _number(value: Any) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0


def build_events(
    serialized: Mapping[str, Any], masked: Mapping[str, Any], restored: Mapping[str, Any] | None
) -> list[dict[str, Any]]:
    """The ``data_masked`` and ``data_unmasked`` events of one request, from ``kong.log.serialize()``
    (request id, route, service) and the counts aws-masker and aws-masker-restore left."""
    request = serialized.get("request")
    request_id = request.get("id") if isinstance(request, dict) else None
    common = {
        "request_id": request_id if isinstance(request_id, str) and request_id else None,
        "route": _name(serialized.get("route")),
        "service": _name(serialized.get("service")),
        "source": SOURCE,
    }
    masked_counts = _counts(masked.get("categories"))
    at = masked.get("at")
    events = [
        {
            "event_id": uuid.uuid4().hex,
            "event_type": "data_masked",
            "timestamp": at if isinstance(at, int) else int(time.time() * 1000),
            **common,
            "details": {
                "action": "mask",
                "processing_time_ms": round(_number(masked.get("processing_time_ms")), 3),
                "pattern_count": sum(masked_counts.values()),
                "patterns_used": masked_counts,
                "body_size": int(_number(masked.get("body_size"))),
                "plugin_version": __version__,
            },
        }
    ]
    restored = restored if isinstance(restored, dict) else {}
    restored_counts = _counts(restored.get("categories"))
    state = restored.get("restore")
    events.append(
        {
            "event_id": uuid.uuid4().hex,
            "event_type": "data_unmasked",
            "timestamp": int(time.time() * 1000),
            **common,
            "details": {
                "action": "unmask",
                "processing_time_ms": round(_number(restored.get("processing_time_ms")), 3),
                "pattern_count": sum(restored_counts.values()),
                "patterns_used": restored_counts,
                "body_size": int(_number(restored.get("body_size"))),
                "plugin_version": __version__,
                "restore": state if state in RESTORE_STATES else "not_run",
            },
        }
    )
    return events
