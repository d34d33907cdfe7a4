"""The subscriber: owns the Redis connection, the read loop, the HTTP endpoint and the shutdown.

Lifecycle (arq-style): :meth:`Subscriber.start` listens on HTTP and starts the connection loop;
:meth:`Subscriber.request_stop` (signal-safe, idempotent) asks it to stop; :meth:`Subscriber.stop`
performs the shutdown once, however often it is called: stop reading (UNSUBSCRIBE, then process
every message Redis sent before confirming it, within a deadline), log the last rate-limit
summaries and one line of final stats, close Redis and HTTP. :meth:`Subscriber.run` does it all,
with SIGTERM/SIGINT handlers.

The connection loop makes one attempt at a time with a fresh client: connect (with AUTH), SUBSCRIBE,
and wait for the confirmation. Only a confirmed SUBSCRIBE resets the failure count. After a failure
it waits an exponential, fully jittered delay (capped) and tries again, forever; a wait or an
attempt in progress ends at once when a stop is requested, and no attempt starts after that.
redis-py's own retries are off, so every reconnect is this loop's, and is logged once.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import socket
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any, TextIO, TypeVar

from aiohttp import web
from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from structlog.typing import FilteringBoundLogger

from . import health as health_mod
from .events import Batch, Malformed, MaskingEvent, PublisherStats, parse_message
from .health import ConnectionState
from .live import live_document
from .logs import event_fields, event_message, make_logger, publisher_fields, publisher_message
from .metrics import SubscriberCollector, exposition, make_registry
from .ratelimit import LogRateLimiter
from .reconnect import backoff_delay, describe_error
from .settings import Settings, http_url, is_loopback
from .stats import Stats
from .web import build_app, start_site

T = TypeVar("T")

POLL_S = 0.25  # how often the read loop looks at the stop flag while the channel is quiet
TICK_S = 0.25  # how often ended rate-limit windows are summarised
DRAIN_S = 2.0  # at shutdown: longest wait for the UNSUBSCRIBE confirmation
CLOSE_S = 0.5  # at shutdown: longest wait to close each Redis object, and HTTP's own grace period

# Detect a dead peer on an idle subscription (no traffic for a while) within about 30 s.
_KEEPALIVE: dict[int, int] = {
    opt: value
    for name, value in (("TCP_KEEPIDLE", 15), ("TCP_KEEPINTVL", 5), ("TCP_KEEPCNT", 3))
    if (opt := getattr(socket, name, None)) is not None
}


class Subscriber:
    """One subscriber: settings in, events counted and logged, HTTP out. Tests inject the clocks."""

    def __init__(
        self,
        settings: Settings,
        *,
        stream: TextIO | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.wall = wall
        self.rng = rng
        self.log: FilteringBoundLogger = make_logger(settings.environment, stream or sys.stdout)
        now = clock()
        self.stats = Stats(now, wall())
        self.state = ConnectionState.initial(settings.enable_redis_events, now)
        self.event_limiter = LogRateLimiter(settings.event_log_rate_limit)
        self.malformed_limiter = LogRateLimiter(settings.event_log_rate_limit)
        self.registry = make_registry(SubscriberCollector(self.stats, self.state, clock))
        self.bound_port: int | None = None
        self._stopping = asyncio.Event()
        self._ever_subscribed = False
        self._runner: web.AppRunner | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._connection_task: asyncio.Task[None] | None = None
        self._stop_task: asyncio.Task[None] | None = None

    # --- lifecycle -------------------------------------------------------------------------------

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    @property
    def url(self) -> str:
        return http_url(self.settings.listen_host, self.bound_port or self.settings.listen_port)

    async def start(self) -> None:
        """Listen on HTTP (raises OSError if it cannot), log the ready line, start consuming."""
        s = self.settings
        app = build_app(self, s.token)
        self._runner, self.bound_port = await start_site(app, s.listen_host, s.listen_port)
        target = f"redis {s.redis_display_url}" if s.enable_redis_events else "redis events disabled"
        self.log.info(
            f"aws-masker subscriber ready on {self.url} (channel {s.channel}, {target})",
            listen=self.url,
            channel=s.channel,
            redis=s.redis_display_url if s.enable_redis_events else None,
            environment=s.environment,
        )
        self.log.info(f"live page on {self.url}/", page=f"{self.url}/", token_required=s.token is not None)
        if s.token is None and not is_loopback(s.listen_host):
            self.log.warning(
                f"listening on {s.listen_host} without a token: anyone who reaches it sees the counters "
                "(set AWS_MASKER_SUBSCRIBER_TOKEN)"
            )
        if s.enable_redis_events:
            self._connection_task = asyncio.create_task(self._connection_loop(), name="redis-subscription")
        else:
            self.log.info(
                "Redis events disabled (ENABLE_REDIS_EVENTS=false): no Redis connection, serving HTTP only"
            )
        self._tasks.append(asyncio.create_task(self._tick(), name="log-summaries"))

    def request_stop(self, cause: str | None = None) -> None:
        """Ask for a shutdown; safe from a signal handler, and harmless when repeated."""
        if self._stopping.is_set():
            if cause:
                self.log.info(f"{cause} received again: already shutting down", cause=cause)
            return
        self._stopping.set()
        self.state.stopping()
        if cause:
            self.log.info(f"{cause} received: shutting down", cause=cause)

    async def stop(self) -> None:
        """Shut down (once; later or concurrent calls wait for the same shutdown)."""
        self.request_stop()
        if self._stop_task is None:
            self._stop_task = asyncio.ensure_future(self._shutdown())
        await asyncio.shield(self._stop_task)

    async def run(self) -> None:
        """Start, wait for SIGTERM/SIGINT (or :meth:`request_stop`), stop.

        Raises OSError if the HTTP endpoint cannot listen.
        """
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.request_stop, sig.name)
        # The handlers stay until the loop closes: a second signal during the shutdown only logs a line.
        await self.start()  # nothing is started if this fails
        await self._stopping.wait()
        await self.stop()

    async def _shutdown(self) -> None:
        """Every step is bounded (worst case about 4.5 s); the final stats line is always logged."""
        if self._connection_task is not None:
            # It stops on the flag: a backoff wait or a connection attempt ends at once; a subscription
            # drains what Redis sent before confirming the UNSUBSCRIBE (DRAIN_S), then closes (CLOSE_S).
            done, _ = await asyncio.wait({self._connection_task}, timeout=DRAIN_S + 2 * CLOSE_S)
            if not done:
                self.log.warning("shutdown: the Redis connection did not close in time; abandoning it")
                await _cancel(self._connection_task)
        for task in self._tasks:
            await _cancel(task)
        self.summarise_suppressed(final=True)
        self._log_final_stats()
        if self._runner is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._runner.cleanup(), 2 * CLOSE_S)

    # --- observable state (HTTP) -----------------------------------------------------------------

    def health(self) -> tuple[bool, dict[str, Any]]:
        return health_mod.verdict(
            self.state,
            now=self.clock(),
            max_failures=self.settings.unhealthy_after_failures,
            max_disconnected_s=self.settings.unhealthy_after_s,
        )

    def stats_document(self) -> dict[str, Any]:
        now = self.clock()
        s = self.settings
        redis: dict[str, Any] = {
            "enabled": s.enable_redis_events,
            "url": s.redis_display_url if s.enable_redis_events else None,
            "channel": s.channel,
            "status": self.state.status,
            "connected": self.state.connected,
            "consecutive_failures": self.state.consecutive_failures,
            "connection_failures": self.stats.connection_failures,
            "reconnects": self.stats.reconnects,
            "last_error": self.state.last_error,
            "connected_for_s": (
                round(now - self.state.connected_since, 3) if self.state.connected_since is not None else None
            ),
            "disconnected_for_s": (
                round(now - self.state.disconnected_since, 3)
                if self.state.disconnected_since is not None
                else None
            ),
        }
        return {
            "pid": os.getpid(),
            "redis": redis,
            "event_log_rate_limit": s.event_log_rate_limit,
            **self.stats.document(now),
        }

    def metrics_text(self) -> bytes:
        return exposition(self.registry)

    def live_document(self) -> dict[str, Any]:
        return live_document(self.stats, self.health(), self.clock())

    # --- the connection loop ---------------------------------------------------------------------

    async def _connection_loop(self) -> None:
        while not self._stopping.is_set():
            client: Redis | None = None
            pubsub: PubSub | None = None
            subscribed = False
            try:
                client = self._make_client()
                pubsub = client.pubsub()
                confirmed = await self._unless_stopping(
                    asyncio.wait_for(self._subscribe(pubsub), self.settings.redis_timeout_s * 2)
                )
                if confirmed is None:
                    break  # stop requested during the attempt: it was abandoned, not failed
                subscribed = True
                self._on_subscribed()
                await self._read(pubsub)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if self._stopping.is_set():
                    break  # the connection went away because we are stopping: no reconnect
                delay = self._on_connection_error(exc, subscribed)
                if await self._stop_requested_within(delay):
                    break
            finally:
                await _close_quietly(pubsub, client)

    def _make_client(self) -> Redis:
        s = self.settings
        common: dict[str, Any] = {
            "socket_connect_timeout": s.redis_timeout_s,
            "socket_timeout": s.redis_timeout_s,
            "socket_keepalive": True,
            "socket_keepalive_options": _KEEPALIVE,
            # No retry inside redis-py: a failed command raises at once, and this loop reconnects.
            "retry": Retry(NoBackoff(), 0, supported_errors=()),
        }
        if s.redis_url is not None:
            return Redis.from_url(s.redis_url, **common)
        return Redis(
            host=s.redis_host,
            port=s.redis_port,
            db=s.redis_db,
            username=s.redis_username,
            password=s.redis_password,
            **common,
        )

    async def _subscribe(self, pubsub: PubSub) -> bool:
        """Connect, SUBSCRIBE, and wait for Redis to confirm it (AUTH errors surface here too)."""
        await pubsub.subscribe(self.settings.channel)
        while True:
            message = await pubsub.get_message(ignore_subscribe_messages=False, timeout=POLL_S)
            if message is None:
                continue  # the caller's wait_for bounds this
            if message["type"] == "subscribe":
                return True
            self._on_pubsub_message(message)

    async def _read(self, pubsub: PubSub) -> None:
        """Read until a stop is requested (then drain) or the connection fails (raises)."""
        while not self._stopping.is_set():
            message = await pubsub.get_message(ignore_subscribe_messages=False, timeout=POLL_S)
            if message is not None:
                self._on_pubsub_message(message)
        await self._drain(pubsub)

    async def _drain(self, pubsub: PubSub) -> None:
        """UNSUBSCRIBE, then process every message Redis sent before its confirmation."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + DRAIN_S
        try:
            await pubsub.unsubscribe()
            while (remaining := deadline - loop.time()) > 0:
                message = await pubsub.get_message(
                    ignore_subscribe_messages=False, timeout=min(remaining, POLL_S)
                )
                if message is None:
                    continue
                if message["type"] == "unsubscribe":
                    return
                self._on_pubsub_message(message)
            self.log.warning("shutdown: no UNSUBSCRIBE confirmation in time; later messages were not read")
        except Exception as exc:  # the connection failed while draining: nothing more to read
            self.log.warning(f"shutdown: stopped reading early: {describe_error(exc)}")

    def _on_subscribed(self) -> None:
        now = self.clock()
        failures = self.state.consecutive_failures
        if self._ever_subscribed:
            self.stats.reconnects += 1
        after = f" after {failures} failed attempt{'s' if failures != 1 else ''}" if failures else ""
        verb = "resubscribed" if self._ever_subscribed else "subscribed"
        self.log.info(
            f"{verb} to {self.settings.channel} on {self.settings.redis_display_url}{after}",
            channel=self.settings.channel,
            redis=self.settings.redis_display_url,
            failed_attempts=failures,
        )
        self._ever_subscribed = True
        self.state.subscribed(now)

    def _on_connection_error(self, exc: BaseException, subscribed: bool) -> float:
        """Record and log one failure (one line, no traceback); return the delay before the next attempt."""
        reason = describe_error(exc)
        s = self.settings
        if subscribed:
            self.state.lost(self.clock(), reason)
            delay = backoff_delay(0, base=s.reconnect_base_s, cap=s.reconnect_cap_s, rng=self.rng)
            self.log.warning(
                f"lost the Redis subscription: {reason}; reconnecting in {delay:.2f} s",
                redis=s.redis_display_url,
                reason=reason,
                retry_in_s=round(delay, 3),
            )
            return delay
        self.state.attempt_failed(reason)
        self.stats.connection_failures += 1
        failures = self.state.consecutive_failures
        delay = backoff_delay(failures, base=s.reconnect_base_s, cap=s.reconnect_cap_s, rng=self.rng)
        self.log.warning(
            f"Redis connection attempt failed ({failures} in a row) for {s.redis_display_url}: {reason}; "
            f"retrying in {delay:.2f} s",
            redis=s.redis_display_url,
            reason=reason,
            consecutive_failures=failures,
            retry_in_s=round(delay, 3),
        )
        return delay

    async def _stop_requested_within(self, delay: float) -> bool:
        """Wait ``delay`` seconds unless a stop is requested first; True if it was."""
        with contextlib.suppress(asyncio.TimeoutError, TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), delay)
        return self._stopping.is_set()

    async def _unless_stopping(self, awaitable: Awaitable[T]) -> T | None:
        """Await ``awaitable`` unless a stop is requested first (then cancel it and return None)."""
        work = asyncio.ensure_future(awaitable)
        stop = asyncio.ensure_future(self._stopping.wait())
        try:
            await asyncio.wait({work, stop}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
            if not work.done():
                await _cancel(work)
        if work.cancelled():
            return None
        return work.result()

    # --- messages --------------------------------------------------------------------------------

    def _on_pubsub_message(self, message: dict[str, Any]) -> None:
        if message.get("type") not in ("message", "pmessage"):
            return
        data = message.get("data")
        if not isinstance(data, (bytes, bytearray)):
            return
        try:
            self.handle_payload(bytes(data))
        except Exception as exc:  # never let one message stop the subscriber
            self.log.error(f"internal error while handling a message: {type(exc).__name__}")

    def handle_payload(self, data: bytes) -> None:
        """Count and log one Pub/Sub payload (public so tests can feed payloads without Redis)."""
        now, wall = self.clock(), self.wall()
        self.stats.messages += 1
        try:
            message = parse_message(data)
        except Malformed as exc:
            self._malformed(len(data), exc, now)
            return
        except Exception as exc:  # a bug in parsing must not stop the subscriber either
            self._malformed(len(data), Malformed("internal_error", type(exc).__name__), now)
            return
        if isinstance(message, MaskingEvent):
            self._event(message, now, wall)
        elif isinstance(message, PublisherStats):
            self.stats.record_publisher(message, now, wall)
            self.summarise_suppressed(now)
            if self.event_limiter.allow(now):
                self.log.info(
                    publisher_message(message), **publisher_fields(message, self.settings.environment)
                )
            else:
                self.stats.suppressed_event_logs += 1
        elif isinstance(message, Batch):
            self.stats.batches += 1
            for item in message.items:
                if isinstance(item, MaskingEvent):
                    self._event(item, now, wall)
                else:
                    self._malformed(len(data), item, now)

    def _event(self, event: MaskingEvent, now: float, wall: float) -> None:
        self.stats.record_event(event, now, wall)
        self.summarise_suppressed(now)
        if self.event_limiter.allow(now):
            self.log.info(event_message(event), **event_fields(event, self.settings.environment))
        else:
            self.stats.suppressed_event_logs += 1

    def _malformed(self, size: int, exc: Malformed, now: float) -> None:
        self.stats.record_malformed(exc.reason)
        self.summarise_suppressed(now)
        if self.malformed_limiter.allow(now):
            self.log.warning(
                f"malformed message ignored ({size} bytes): {exc.detail}",
                reason=exc.reason,
                detail=exc.detail,
                size=size,
            )
        else:
            self.stats.suppressed_malformed_logs += 1

    def summarise_suppressed(self, now: float | None = None, *, final: bool = False) -> None:
        """Log one line per ended rate-limit window that suppressed lines (``final``: the open one too).

        Called before every log decision and from a periodic tick, so a burst followed by silence is
        summarised within a tick of its window's end.
        """
        window = f"{self.event_limiter.window_s:g} s"
        now = self.clock() if now is None else now
        events = self.event_limiter.close() if final else self.event_limiter.roll(now)
        if events:
            self.log.info(
                f"suppressed {events} events in the last {window}", suppressed=events, kind="events"
            )
        bad = self.malformed_limiter.close() if final else self.malformed_limiter.roll(now)
        if bad:
            self.log.info(
                f"suppressed {bad} malformed-message warnings in the last {window}",
                suppressed=bad,
                kind="malformed",
            )

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(TICK_S)
            self.summarise_suppressed(self.clock())

    def _log_final_stats(self) -> None:
        s = self.stats
        now = self.clock()
        by_type = ", ".join(f"{k} {v}" for k, v in s.events_by_type.items())
        self.log.info(
            f"final stats: {s.events_total} events ({by_type}), {s.batches} batches, "
            f"{s.publisher_stats_messages} publisher_stats, {s.malformed_total} malformed, "
            f"{s.suppressed_event_logs} log lines suppressed, {s.reconnects} reconnects, "
            f"{s.connection_failures} failed connection attempts, uptime {s.uptime_s(now):.1f} s",
            final_stats=True,
            events_total=s.events_total,
            events_by_type=dict(s.events_by_type),
            batches=s.batches,
            publisher_stats=s.publisher_stats_messages,
            malformed=s.malformed_total,
            rate_limited=s.suppressed_event_logs,
            reconnects=s.reconnects,
            connection_failures=s.connection_failures,
            uptime_s=round(s.uptime_s(now), 3),
        )


async def _cancel(task: asyncio.Future[Any]) -> None:
    """Cancel ``task`` and wait for it; a cancellation of the caller still propagates."""
    task.cancel()
    await asyncio.wait({task})
    if not task.cancelled():
        task.exception()  # retrieved, so asyncio does not report it as never retrieved


async def _close_quietly(pubsub: PubSub | None, client: Redis | None) -> None:
    for closer in (pubsub, client):
        if closer is None:
            continue
        close = getattr(closer, "aclose", None) or closer.close  # aclose: redis-py >= 5.0.1
        with contextlib.suppress(Exception):
            await asyncio.wait_for(close(), CLOSE_S)
