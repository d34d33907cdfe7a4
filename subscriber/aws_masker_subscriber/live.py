"""The live page (``/``) and its feed (``/events/stream``): aggregates only.

The document sent every second is built from counters: events by type (totals, per second, and a
60 s series), identifiers masked per category (totals and a 60 s series), the publishers' summed
counters, the rate-limited and malformed counts and the health verdict. Never an event's id,
request id, route, or anything else an event carries.

The page is one static file (``static/live.html``, no build step, no external resource): its
``{{name}}`` slots are filled here with the numbers at request time, so it reads as plain numbers
without JavaScript; with it, the numbers and two hand-drawn SVG charts follow the stream.
"""

from __future__ import annotations

import html
import json
import re
from functools import lru_cache
from importlib import resources
from typing import Any
from urllib.parse import quote

from .events import CATEGORIES, MASKING_EVENT_TYPES, OTHER_CATEGORY
from .stats import Stats

_SLOT = re.compile(r"\{\{([a-z0-9_]+)\}\}")
PUBLISHER_COUNTERS = ("enqueued", "published", "dropped", "errors")


def live_document(stats: Stats, health: tuple[bool, dict[str, Any]], now: float) -> dict[str, Any]:
    healthy, body = health
    publishers = dict.fromkeys(PUBLISHER_COUNTERS, 0)
    for record in stats.publishers.values():
        for key in PUBLISHER_COUNTERS:
            publishers[key] += int(getattr(record.stats, key))
    return {
        "uptime_s": round(stats.uptime_s(now), 1),
        "health": {"ok": healthy, "status": body.get("status"), "redis": body.get("redis")},
        "events": {
            "total": stats.events_total,
            "by_type": dict(stats.events_by_type),
            "per_second": stats.per_second(now),
            "per_minute": stats.events_per_minute(now),
        },
        "masked": stats.pattern_counts("mask"),
        "publishers": {"count": len(stats.publishers), **publishers},
        "rate_limited": stats.suppressed_event_logs,
        "malformed": stats.malformed_total,
        "series": stats.series(now),
    }


@lru_cache(maxsize=1)
def _template() -> str:
    return resources.files(__package__).joinpath("static/live.html").read_text(encoding="utf-8")


def _category_rows(masked: dict[str, int]) -> str:
    top = max(masked.values(), default=0)
    rows = []
    for category in (*CATEGORIES, OTHER_CATEGORY):
        if category not in masked:
            continue
        count = masked[category]
        width = round(100 * count / top) if top else 0
        rows.append(
            f'<tr><th scope="row">{category}</th>'
            f'<td class="bar"><span id="bar-{category}" style="width:{width}%"></span></td>'
            f'<td class="num" id="cat-{category}">{count}</td></tr>'
        )
    return "\n".join(rows)


def render_page(doc: dict[str, Any], token: str | None = None) -> str:
    """The page with the current numbers in place (escaped); ``token`` is passed on to the stream."""
    events = doc["events"]
    pub = doc["publishers"]
    values: dict[str, str] = {
        "health": "ok" if doc["health"]["ok"] else "unhealthy",
        "redis": str(doc["health"]["redis"]),
        "events_total": str(events["total"]),
        "uptime_s": f"{doc['uptime_s']:g}",
        "published": str(pub["published"]),
        "dropped": str(pub["dropped"]),
        "enqueued": str(pub["enqueued"]),
        "publisher_errors": str(pub["errors"]),
        "publishers": str(pub["count"]),
        "rate_limited": str(doc["rate_limited"]),
        "malformed": str(doc["malformed"]),
        "per_minute": str(events["per_minute"]),
        "initial": json.dumps(doc, separators=(",", ":")),
        "stream_url": "events/stream" + (f"?token={quote(token, safe='')}" if token else ""),
    }
    for kind in MASKING_EVENT_TYPES:
        values[f"{kind}_total"] = str(events["by_type"].get(kind, 0))
        values[f"{kind}_rate"] = f"{events['per_second'].get(kind, 0):g}"
    escaped = {key: html.escape(value) for key, value in values.items()}
    escaped["category_rows"] = _category_rows(doc["masked"])
    return _SLOT.sub(lambda m: escaped[m.group(1)], _template())
