"""One sample of everything ``aws-masker monitor`` shows, from three sources:

- the subscriber's ``/health`` and ``/stats`` (events by type and per second, identifiers per
  category, the rate-limited count, and every plugin process's latest ``publisher_stats``);
- Redis ``INFO`` (instantaneous ops/s, connected clients, the server's pid);
- the processes themselves (psutil), see :mod:`.procs`.

A source that does not answer becomes an error line in the sample, never an exception.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from .procs import ProcessUsage, find_processes

TIMEOUT_S = 2.0


@dataclass
class Sample:
    taken_at: float  # epoch seconds
    subscriber_url: str
    health: dict[str, Any] | None = None
    healthy: bool | None = None
    stats: dict[str, Any] | None = None
    redis_info: dict[str, Any] | None = None
    redis_target: str | None = None
    processes: list[ProcessUsage] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    # --- derived views (all tolerate a missing source) ---

    def events_by_type(self) -> dict[str, int]:
        return dict((self.stats or {}).get("events", {}).get("by_type", {}))

    def events_per_second(self) -> dict[str, float]:
        return dict((self.stats or {}).get("events", {}).get("per_second", {}))

    def masked_by_category(self) -> dict[str, int]:
        return dict((self.stats or {}).get("patterns", {}).get("mask", {}))

    def publisher_totals(self) -> dict[str, int]:
        totals = dict.fromkeys(("enqueued", "published", "dropped", "errors"), 0)
        for pub in (self.stats or {}).get("publishers", []):
            for key in totals:
                totals[key] += int(pub.get(key, 0))
        return totals

    def rate_limited(self) -> int | None:
        return None if self.stats is None else int(self.stats.get("rate_limited", 0))

    def problems(self) -> list[str]:
        """The last errors: sources that did not answer, an unhealthy subscriber, Redis and publisher
        errors, malformed messages."""
        lines = list(self.errors)
        if self.healthy is False and self.health:
            lines.append(f"subscriber unhealthy: {self.health.get('reason', 'unknown')}")
        stats = self.stats or {}
        last = stats.get("redis", {}).get("last_error")
        if last:
            lines.append(f"subscriber's last Redis error: {last}")
        for pub in stats.get("publishers", []):
            if pub.get("errors") or pub.get("dropped"):
                lines.append(
                    f"publisher {pub.get('node')}/{pub.get('pid')}: {pub.get('errors', 0)} Redis errors, "
                    f"{pub.get('dropped', 0)} events dropped"
                    + ("" if pub.get("connected", True) else ", not connected")
                )
        for reason, count in stats.get("messages", {}).get("malformed_by_reason", {}).items():
            lines.append(f"{count} malformed messages ({reason})")
        return lines


def _get_json(url: str, token: str | None) -> tuple[int, dict[str, Any]]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        body = err.read()
        try:
            return err.code, json.loads(body)
        except ValueError:
            return err.code, {}


def redis_url_from_stats(stats: dict[str, Any] | None) -> str | None:
    """The subscriber's Redis, when ``/stats`` shows it without a hidden password."""
    url = (stats or {}).get("redis", {}).get("url")
    if not url or "***" in url:
        return None
    return str(url)


def redis_info(url: str) -> dict[str, Any]:
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=TIMEOUT_S, socket_timeout=TIMEOUT_S)
    try:
        return dict(client.info())
    finally:
        client.close()


def _display(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}:{parts.port or 6379}"


def take_sample(subscriber_url: str, redis_url: str | None, token: str | None = None) -> Sample:
    sample = Sample(taken_at=time.time(), subscriber_url=subscriber_url)
    base = subscriber_url.rstrip("/")
    try:
        status, sample.health = _get_json(base + "/health", token)
        sample.healthy = status == 200
        status, stats = _get_json(base + "/stats", token)
        if status == 200:
            sample.stats = stats
        else:
            sample.errors.append(f"subscriber /stats answered HTTP {status}")
    except (OSError, ValueError) as exc:
        sample.errors.append(f"subscriber at {subscriber_url} does not answer: {_reason(exc)}")
    url = redis_url or redis_url_from_stats(sample.stats)
    if url is None:
        if (sample.stats or {}).get("redis", {}).get("enabled"):  # not when the subscriber runs without
            sample.errors.append(
                "Redis: not shown (set REDIS_URL or --redis-url; the subscriber's has a password)"
            )
    else:
        sample.redis_target = _display(url)
        try:
            sample.redis_info = redis_info(url)
        except Exception as exc:
            sample.errors.append(f"Redis at {sample.redis_target} does not answer: {_reason(exc)}")
    sample.processes = find_processes(sample.stats, sample.redis_info)
    return sample


def _reason(exc: BaseException) -> str:
    reason = getattr(exc, "reason", None) or getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return str(reason)
