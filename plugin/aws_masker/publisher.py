"""Fire-and-forget publishing of monitoring events to Redis Pub/Sub.

One ``Publisher`` per distinct Redis configuration in the plugin server process (normally one),
with one bounded queue, one background thread and one Redis connection, whatever the number of
concurrent requests. The request path only calls ``enqueue``, which never blocks and never raises: a
full queue drops the event and counts it. The thread sends a batch with one ``PUBLISH`` when it is
full or ``flush_interval`` after its first event; it is woken for the first event of a batch and
for a full batch only, not for every event. While Redis is unreachable it does not take from the
queue (so a full queue is what drops events), and it reconnects with capped exponential backoff.

Operators see the counters three ways: a ``publisher_stats`` message on the channel, a summary line
in the plugin server's own log, and the same line in Kong's log at notice level, written by the log
phase of the next sampled request (``take_line``), which is also how a Redis error becomes visible at
Kong's default log level: one line when it starts, then at most one per ``ERROR_REPORT_INTERVAL``.
"""

from __future__ import annotations

import json
import logging
import os
import random
import socket
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

log = logging.getLogger(__name__)

SOURCE = "kong-aws-masker"
BACKOFF_BASE = 0.1  # seconds; doubles per failed attempt
BACKOFF_CAP = 2.0  # so a Redis that comes back is in use again within a few seconds
ERROR_REPORT_INTERVAL = 30.0  # a lasting outage is reported this often, never once per request
IDLE_CLOSE = 300.0  # a publisher no plugin instance uses any more closes after this long


@dataclass(frozen=True)
class PublisherSettings:
    host: str = "127.0.0.1"
    port: int = 6379
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    db: int = 0
    ssl: bool = False
    ssl_verify: bool = True
    ssl_ca_file: str | None = None
    timeout_ms: int = 2000
    channel: str = "aws-masker:events"
    batch_size: int = 10
    flush_interval_ms: int = 1000
    queue_size: int = 10000
    stats_interval_s: int = 60

    @classmethod
    def from_mapping(cls, conf: Mapping[str, Any]) -> PublisherSettings:
        defaults = cls()

        def get(name: str, key: str) -> Any:
            value = conf.get(key)
            return getattr(defaults, name) if value is None or value == "" else value

        return cls(
            host=str(get("host", "redis_host")),
            port=int(get("port", "redis_port")),
            username=get("username", "redis_username"),
            password=get("password", "redis_password"),
            db=int(get("db", "redis_db")),
            ssl=bool(get("ssl", "redis_ssl")),
            ssl_verify=bool(get("ssl_verify", "redis_ssl_verify")),
            ssl_ca_file=get("ssl_ca_file", "redis_ssl_ca_file"),
            timeout_ms=int(get("timeout_ms", "redis_timeout_ms")),
            channel=str(get("channel", "redis_event_channel")),
            batch_size=int(get("batch_size", "event_batch_size")),
            flush_interval_ms=int(get("flush_interval_ms", "event_flush_interval_ms")),
            queue_size=int(get("queue_size", "event_queue_size")),
            stats_interval_s=int(get("stats_interval_s", "event_stats_interval_s")),
        )

    def describe(self) -> str:
        """Where events go, for log lines (never the password)."""
        scheme = "rediss" if self.ssl else "redis"
        user = f"{self.username}@" if self.username else ""
        return f"{scheme}://{user}{self.host}:{self.port}/{self.db} channel {self.channel}"


def connect(settings: PublisherSettings) -> redis.Redis:
    """One connection, no client-side retries (the publisher thread does its own backoff)."""
    timeout = settings.timeout_ms / 1000
    kwargs: dict[str, Any] = {}
    if settings.ssl:
        kwargs = {
            "ssl": True,
            "ssl_cert_reqs": "required" if settings.ssl_verify else "none",
            "ssl_check_hostname": settings.ssl_verify,
            "ssl_ca_certs": settings.ssl_ca_file,
        }
    client = redis.Redis(
        host=settings.host,
        port=settings.port,
        db=settings.db,
        username=settings.username,
        password=settings.password,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        single_connection_client=True,
        retry=Retry(NoBackoff(), 0),
        client_name="aws-masker-publisher",
        **kwargs,
    )
    client.ping()
    return client


def describe_error(exc: BaseException) -> str:
    """A one-line reason for a Redis failure; never the password, never a traceback."""
    if isinstance(exc, redis.AuthenticationError):
        return "authentication failed (wrong redis_password or redis_username)"
    text = str(exc).splitlines()[0].rstrip(".") if str(exc) else type(exc).__name__
    if isinstance(exc, redis.ResponseError) and text.startswith("NOAUTH"):
        return "authentication required (set redis_password)"
    if isinstance(exc, redis.TimeoutError):
        return f"timed out ({text})"
    return text


class Publisher:
    def __init__(
        self,
        settings: PublisherSettings,
        connector: Callable[[PublisherSettings], Any] = connect,
        on_close: Callable[[Publisher], None] | None = None,
    ) -> None:
        self.settings = settings
        self._connect = connector
        self._on_close = on_close
        self._queue: deque[dict[str, Any]] = deque()
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self.enqueued = self.published = self.dropped = self.errors = self.batches = 0
        self._client: Any = None
        self._failures = 0
        self._error_since: float | None = None
        self._last_error_report = 0.0
        self._lines: list[tuple[str, str]] = []  # (kong log level, line) for take_line
        self._users: weakref.WeakSet[Any] = weakref.WeakSet()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="aws-masker-publisher", daemon=True)
        self._thread.start()

    # -- request side ----------------------------------------------------------------------------
    def add_user(self, user: Any) -> None:
        self._users.add(user)

    def enqueue(self, event: dict[str, Any]) -> bool:
        """Queue an event for publishing; never blocks, never raises. False if it was dropped."""
        held = len(self._queue)
        if held >= self.settings.queue_size:
            self._count(dropped=1)
            return False
        self._queue.append(event)
        self._count(enqueued=1)
        if held == 0 or held + 1 >= self.settings.batch_size:
            self._wake.set()  # a batch's timer starts, or a batch is full
        return True

    def alive(self) -> bool:
        """False once the thread has stopped (closed, or idle without users): get a new one."""
        return self._thread.is_alive()

    def take_line(self) -> tuple[str, str] | None:
        """A line for Kong's log (an error, or the periodic summary), at most once each."""
        with self._lock:
            return self._lines.pop(0) if self._lines else None

    def counters(self) -> dict[str, Any]:
        with self._lock:
            return {
                "enqueued": self.enqueued,
                "published": self.published,
                "dropped": self.dropped,
                "errors": self.errors,
                "batches": self.batches,
                "queue_depth": len(self._queue),
                "connected": self._client is not None,
            }

    def close(self, timeout: float = 5.0) -> None:
        """Stop the thread after it has sent what it holds (best effort within ``timeout``)."""
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout)

    # -- the thread ------------------------------------------------------------------------------
    def _count(self, **deltas: int) -> None:
        with self._lock:
            for name, delta in deltas.items():
                setattr(self, name, getattr(self, name) + delta)

    def _say(self, level: str, line: str) -> None:
        getattr(log, "warning" if level == "warn" else "info")(line)
        with self._lock:
            self._lines = [*self._lines[-4:], (level, line)]

    def _run(self) -> None:
        flush = self.settings.flush_interval_ms / 1000
        size = self.settings.batch_size
        stats_every = float(self.settings.stats_interval_s)
        next_stats = time.monotonic() + stats_every
        first_at: float | None = None  # when the batch being gathered got its first event
        idle_since: float | None = None
        retry_at = 0.0
        held = self._queue
        try:
            while True:
                self._wake.clear()  # before looking: an event queued after this look sets it again
                now = time.monotonic()
                if now >= next_stats:
                    self._stats(stats_every)
                    next_stats = now + stats_every
                stopping = self._stop.is_set()
                if stopping and (self._client is None or not held):
                    return
                if self._client is None:
                    if now < retry_at:
                        self._stop.wait(min(retry_at - now, max(0.0, next_stats - now)) or 0.01)
                        continue
                    retry_at = now + self._reconnect()
                    continue
                if held and first_at is None:
                    first_at = now
                if held and (len(held) >= size or now >= first_at + flush or stopping):  # type: ignore[operator]
                    batch = [held.popleft() for _ in range(min(size, len(held)))]
                    first_at = now if held else None
                    if not self._send(batch):
                        retry_at = time.monotonic() + self._backoff()
                    continue
                if not held and len(self._users) == 0:
                    idle_since = idle_since or now
                    if now - idle_since >= IDLE_CLOSE:
                        return
                else:
                    idle_since = None
                until = next_stats if first_at is None else min(next_stats, first_at + flush)
                self._wake.wait(max(until - now, 0.0))
        finally:
            self._disconnect()
            if self._on_close is not None:
                self._on_close(self)

    def _backoff(self) -> float:
        delay = min(BACKOFF_CAP, BACKOFF_BASE * 2 ** max(0, self._failures - 1))
        return delay * random.uniform(0.8, 1.0)

    def _reconnect(self) -> float:
        """Try to connect; return the delay before the next attempt (0 when connected)."""
        try:
            self._client = self._connect(self.settings)
        except Exception as exc:
            self._failed(exc)
            return self._backoff()
        if self._error_since is not None:
            down = time.monotonic() - self._error_since
            self._say(
                "notice", f"aws-masker: events: reconnected to {self.settings.describe()} after {down:.1f} s"
            )
        self._failures = 0
        self._error_since = None
        return 0.0

    def _failed(self, exc: BaseException) -> None:
        self._count(errors=1)
        self._failures += 1
        self._disconnect()
        now = time.monotonic()
        first = self._error_since is None
        if first:
            self._error_since = now
        if first or now - self._last_error_report >= ERROR_REPORT_INTERVAL:
            self._last_error_report = now
            since = (
                "" if first else f" (failing for {now - self._error_since:.0f} s, {self._failures} attempts)"
            )
            self._say(
                "warn",
                f"aws-masker: events: cannot publish to {self.settings.describe()}: {describe_error(exc)}"
                f"{since}; events are dropped until it is back (requests are not affected)",
            )

    def _send(self, batch: list[dict[str, Any]]) -> bool:
        if len(batch) == 1:
            message = batch[0]
        else:
            message = {
                "event_type": "batch",
                "timestamp": int(time.time() * 1000),
                "source": SOURCE,
                "count": len(batch),
                "events": batch,
            }
        try:
            self._client.publish(self.settings.channel, json.dumps(message, separators=(",", ":")))
        except Exception as exc:
            self._count(dropped=len(batch))
            self._failed(exc)
            return False
        self._count(published=len(batch), batches=1)
        return True

    def _stats(self, interval: float) -> None:
        counters = self.counters()
        line = (
            "aws-masker: events: enqueued={enqueued} published={published} dropped={dropped} "
            "errors={errors} batches={batches} queue={queue_depth} connected={connected}".format(**counters)
        )
        self._say("notice", line)
        if self._client is None:
            return
        message = {
            "event_type": "publisher_stats",
            "timestamp": int(time.time() * 1000),
            "source": SOURCE,
            "node": socket.gethostname(),
            "pid": os.getpid(),
            "interval_s": interval,
            **counters,
        }
        try:
            self._client.publish(self.settings.channel, json.dumps(message, separators=(",", ":")))
        except Exception as exc:
            self._failed(exc)

    def _disconnect(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            try:
                client.close()
            except Exception:  # already broken; nothing to release
                log.debug("closing the Redis connection failed", exc_info=True)


_registry: dict[PublisherSettings, Publisher] = {}
_registry_lock = threading.Lock()


def _forget(publisher: Publisher) -> None:
    with _registry_lock:
        if _registry.get(publisher.settings) is publisher:
            del _registry[publisher.settings]


def publisher_for(settings: PublisherSettings, user: Any) -> Publisher:
    """The process's publisher for ``settings`` (started on first use); ``user`` keeps it alive."""
    with _registry_lock:
        publisher = _registry.get(settings)
        if publisher is None or not publisher.alive():
            publisher = Publisher(settings, on_close=_forget)
            _registry[settings] = publisher
        publisher.add_user(user)
        return publisher
