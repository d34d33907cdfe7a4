"""Test helpers for the subscriber: a private redis-server, TLS files, event builders, an in-process
subscriber with an HTTP client, and the subscriber as a real subprocess.

Never the machine's shared Redis: every server here runs on a free port in a temporary directory.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import io
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import replace
from typing import Any, TypeVar

import aiohttp
from redis_server import CHANNEL as CHANNEL
from redis_server import WAIT_S as WAIT_S
from redis_server import RedisServer as RedisServer
from redis_server import TlsFiles as TlsFiles
from redis_server import make_tls_files as make_tls_files
from redis_server import redis_server_has_tls as redis_server_has_tls

from aws_masker_subscriber.settings import OPTIONS, Settings
from aws_masker_subscriber.subscriber import Subscriber

T = TypeVar("T")

# Fast reconnects for tests; the defaults are tested in test_subscriber_units.
FAST: dict[str, Any] = {"reconnect_base_s": 0.05, "reconnect_cap_s": 0.3, "redis_timeout_s": 2.0}


def run(coro: Coroutine[Any, Any, T], timeout: float = 60.0) -> T:
    """Run an async scenario from a sync test (the suite has no asyncio plugin)."""
    return asyncio.run(asyncio.wait_for(coro, timeout))


# --- events -------------------------------------------------------------------------------------


_MASKED: dict[str, Any] = {
    "event_id": "5f0c1e9a6d3b4c2f8e7a9b1c0d2e3f4a",
    "event_type": "data_masked",
    "timestamp": 1764923456789,
    "request_id": "8a1f3c0e2b7d4e6f9a0b1c2d3e4f5a6b",
    "route": "claude-proxy",
    "service": "claude-messages",
    "source": "kong-aws-masker",
    "details": {
        "action": "mask",
        "processing_time_ms": 0.41,
        "pattern_count": 7,
        "patterns_used": {"ec2": 3, "private_ip": 2, "s3": 1, "rds": 1},
        "body_size": 8123,
        "plugin_version": "0.2.0",
    },
}


def masked_event(**overrides: Any) -> dict[str, Any]:
    event = copy.deepcopy(_MASKED)
    details = overrides.pop("details", {})
    event.update(overrides)
    event["details"].update(details)
    return event


def unmasked_event(**overrides: Any) -> dict[str, Any]:
    details = {
        "action": "unmask",
        "processing_time_ms": 1.5,
        "pattern_count": 4,
        "patterns_used": {"ec2": 3, "s3": 1},
        "body_size": 2048,
        "restore": "complete",
        **overrides.pop("details", {}),
    }
    return masked_event(event_type="data_unmasked", details=details, **overrides)


def publisher_stats(**overrides: Any) -> dict[str, Any]:
    message = {
        "event_type": "publisher_stats",
        "timestamp": 1764923456790,
        "source": "kong-aws-masker",
        "node": "kong-7f9c",
        "pid": 4242,
        "interval_s": 60,
        "enqueued": 1200,
        "published": 1190,
        "dropped": 10,
        "errors": 1,
        "batches": 119,
        "queue_depth": 0,
        "connected": True,
    }
    message.update(overrides)
    return message


def batch(events: list[Any]) -> dict[str, Any]:
    return {
        "event_type": "batch",
        "timestamp": 1764923456790,
        "source": "kong-aws-masker",
        "count": len(events),
        "events": events,
    }


def dumps(message: Any) -> bytes:
    return json.dumps(message, separators=(",", ":")).encode()


# --- the subscriber in-process ------------------------------------------------------------------


class FakeClock:
    """A monotonic clock that moves only when told to."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


class LiveSubscriber:
    """An in-process Subscriber on a free HTTP port, its log in memory, and an HTTP client."""

    def __init__(
        self,
        settings: Settings,
        clock: Callable[[], float] = time.monotonic,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.stream = io.StringIO()
        self.sub = Subscriber(settings, stream=self.stream, clock=clock, rng=rng)
        self.http: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> LiveSubscriber:
        await self.sub.start()
        self.http = aiohttp.ClientSession()
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.http is not None:
            await self.http.close()
        await self.sub.stop()

    @property
    def log_text(self) -> str:
        return self.stream.getvalue()

    def lines(self) -> list[str]:
        return self.log_text.splitlines()

    def json_lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.lines()]

    async def get(self, path: str) -> tuple[int, Any]:
        assert self.http is not None
        async with self.http.get(self.sub.url + path) as response:
            if response.content_type == "application/json":
                return response.status, await response.json()
            return response.status, await response.text()

    async def stats(self) -> dict[str, Any]:
        status, body = await self.get("/stats")
        assert status == 200
        return body

    async def wait_for(
        self, condition: Callable[[], Awaitable[bool]], what: str, timeout: float = WAIT_S
    ) -> None:
        deadline = time.monotonic() + timeout
        while not await condition():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}; log:\n{self.log_text[-3000:]}")
            await asyncio.sleep(0.02)

    async def wait_health(self, status: int, timeout: float = WAIT_S) -> dict[str, Any]:
        seen: dict[str, Any] = {}

        async def check() -> bool:
            code, body = await self.get("/health")
            seen.update(body=body)
            return code == status

        await self.wait_for(check, f"/health {status}", timeout)
        return seen["body"]

    async def wait_connected(self, timeout: float = WAIT_S) -> None:
        """Wait until /health says the SUBSCRIBE is confirmed (a PUBLISH from now on reaches it)."""

        async def check() -> bool:
            code, body = await self.get("/health")
            return code == 200 and body.get("redis") == "connected"

        await self.wait_for(check, "a confirmed subscription", timeout)

    async def wait_messages(self, count: int) -> dict[str, Any]:
        """Wait until ``count`` Pub/Sub messages arrived; return /stats."""
        seen: dict[str, Any] = {}

        async def check() -> bool:
            seen.update(await self.stats())
            return seen["messages"]["received"] >= count

        await self.wait_for(check, f"{count} messages")
        return seen


def settings_for(server: RedisServer | None, **overrides: Any) -> Settings:
    base = Settings(listen_host="127.0.0.1", listen_port=0, **FAST)
    if server is not None:
        base = replace(base, redis_url=server.url)
    return replace(base, **overrides)


async def publish(server: RedisServer, payloads: list[bytes]) -> None:
    await asyncio.to_thread(server.publish, payloads)


# --- the subscriber as a subprocess -------------------------------------------------------------


class SubscriberProcess:
    """``python -m aws_masker.cli subscriber ...`` with its stdout lines collected by a thread."""

    def __init__(self, args: list[str]) -> None:
        env = {k: v for k, v in os.environ.items() if k not in {opt.env for opt in OPTIONS}}
        env["PYTHONUNBUFFERED"] = "1"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "aws_masker.cli", "subscriber", "--listen", "127.0.0.1:0", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        self._lines: list[str] = []
        self._stderr: list[str] = []
        self._cond = threading.Condition()
        self._threads = [
            threading.Thread(target=self._pump, args=(self.proc.stdout, self._lines), daemon=True),
            threading.Thread(target=self._pump, args=(self.proc.stderr, self._stderr), daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def _pump(self, pipe: Any, sink: list[str]) -> None:
        for raw in iter(pipe.readline, b""):
            with self._cond:
                sink.append(raw.decode("utf-8", "replace").rstrip("\n"))
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    @property
    def lines(self) -> list[str]:
        with self._cond:
            return list(self._lines)

    @property
    def stderr(self) -> str:
        with self._cond:
            return "\n".join(self._stderr)

    def records(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.lines]

    def wait_line(self, needle: str, timeout: float = WAIT_S) -> str:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for line in self._lines:
                    if needle in line:
                        return line
                remaining = deadline - time.monotonic()
                if remaining <= 0 or (
                    self.proc.poll() is not None and not any(t.is_alive() for t in self._threads)
                ):
                    raise AssertionError(
                        f"no line with {needle!r}; stdout:\n"
                        + "\n".join(self._lines[-30:])
                        + f"\nstderr:\n{chr(10).join(self._stderr[-30:])}"
                    )
                self._cond.wait(min(remaining, 0.1))

    def ready_url(self) -> str:
        line = self.wait_line("aws-masker subscriber ready on ")
        return json.loads(line)["listen"]

    def signal(self, sig: signal.Signals) -> None:
        self.proc.send_signal(sig)

    def wait(self, timeout: float = WAIT_S) -> int:
        code = self.proc.wait(timeout)
        for thread in self._threads:
            thread.join(5)
        return code

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait(5)
