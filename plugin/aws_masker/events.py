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
from .publisher import Publisher, PublisherSettings, publisher_for

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
        self._publisher: Publisher | None = None

    def publisher(self) -> Publisher:
        """The process's publisher for these settings, started with the first sampled request (not
        at import) and looked up again only if it has stopped."""
        publisher = self._publisher
        if publisher is None or not publisher.alive():
            publisher = self._publisher = publisher_for(self.settings.publisher, self)
        return publisher

    def sampled(self) -> bool:
        """This request's one sampling decision: both of its events, or neither."""
        rate = self.settings.sampling_rate
        if not self.settings.enabled or rate <= 0.0:
            return False
        return rate >= 1.0 or self._random() < rate

    def report(
        self,
        request: RequestInfo,
        masked: Mapping[str, Any],
        restored: Mapping[str, Any] | None,
    ) -> None:
        publisher = self.publisher()
        for event in build_events(request, masked, restored):
            publisher.enqueue(event)

    def failed(self, exc: BaseException) -> None:
        """The log phase failed: this request's events are lost (counted in the plugin server's log
        by the error's class only, never its message, which could quote data)."""
        log.warning(
            "aws-masker: events: the log phase failed (%s); the request's events are lost", type(exc).__name__
        )

    def take_line(self) -> tuple[str, str] | None:
        """A line the publisher wants in Kong's log (a Redis error, the periodic counters)."""
        return self.publisher().take_line()


@dataclass(frozen=True)
class RequestInfo:
    """What an event says about its request: Kong's request id, route and service names."""

    request_id: str | None
    route: str | None
    service: str | None

    @classmethod
    def from_values(cls, request_id: Any, route: Any, service: Any) -> RequestInfo:
        def text(value: Any) -> str | None:
            return value if isinstance(value, str) and value else None

        return cls(text(request_id), text(route), text(service))

    @classmethod
    def from_serialized(cls, serialized: Mapping[str, Any]) -> RequestInfo:
        """From ``kong.log.serialize()`` (route and service are whole entities there)."""

        def name(entity: Any) -> Any:
            return (entity.get("name") or entity.get("id")) if isinstance(entity, dict) else None

        request = serialized.get("request")
        request_id = request.get("id") if isinstance(request, dict) else None
        return cls.from_values(request_id, name(serialized.get("route")), name(serialized.get("service")))


def _counts(value: Any) -> dict[str, int]:
    if not isinstance(value, dict):
        return {}
    return {k: v for k, v in value.items() if isinstance(k, str) and isinstance(v, int) and v > 0}


def _number(value: Any) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0


def build_events(
    request: RequestInfo, masked: Mapping[str, Any], restored: Mapping[str, Any] | None
) -> list[dict[str, Any]]:
    """The ``data_masked`` and ``data_unmasked`` events of one request, from the counts aws-masker
    and aws-masker-restore left."""
    now = int(time.time() * 1000)
    at = masked.get("at")
    restored = restored if isinstance(restored, dict) else {}
    state = restored.get("restore")
    return [
        _event("data_masked", "mask", at if isinstance(at, int) else now, request, masked),
        _event("data_unmasked", "unmask", now, request, restored,
               restore=state if state in RESTORE_STATES else "not_run"),
    ]  # fmt: skip


def _event(
    event_type: str,
    action: str,
    timestamp: int,
    request: RequestInfo,
    counts: Mapping[str, Any],
    **extra: str,
) -> dict[str, Any]:
    categories = _counts(counts.get("categories"))
    return {
        "event_id": uuid.uuid4().hex,
        "event_type": event_type,
        "timestamp": timestamp,
        "request_id": request.request_id,
        "route": request.route,
        "service": request.service,
        "source": SOURCE,
        "details": {
            "action": action,
            "processing_time_ms": round(_number(counts.get("processing_time_ms")), 3),
            "pattern_count": sum(categories.values()),
            "patterns_used": categories,
            "body_size": int(_number(counts.get("body_size"))),
            "plugin_version": __version__,
            **extra,
        },
    }
