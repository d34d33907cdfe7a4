"""The HTTP endpoint (aiohttp): ``/health``, ``/stats``, ``/metrics``, the live page ``/`` and its
Server-Sent Events feed ``/events/stream``; nothing else.

With a token configured, every path but ``/health`` needs ``Authorization: Bearer <token>`` (or
``?token=<token>``, for a browser's page and its EventSource, which cannot send headers).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from aiohttp import web

from .live import render_page
from .metrics import CONTENT_TYPE

STREAM_INTERVAL_S = 1.0
# The page is self-contained: inline style and script, data it fetches only from here.
PAGE_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; "
    "connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
OPEN_PATHS = frozenset({"/health"})


class Observable(Protocol):
    def health(self) -> tuple[bool, dict[str, Any]]: ...

    def stats_document(self) -> dict[str, Any]: ...

    def metrics_text(self) -> bytes: ...

    def live_document(self) -> dict[str, Any]: ...

    @property
    def stopping(self) -> bool: ...


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def presented_token(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return request.query.get("token") or None


def _auth_middleware(token: str) -> Any:
    expected = token.encode()

    @web.middleware
    async def auth(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path not in OPEN_PATHS:
            given = presented_token(request)
            if given is None or not hmac.compare_digest(given.encode(), expected):
                return web.json_response(
                    {"error": "a bearer token is required"},
                    status=401,
                    headers={"WWW-Authenticate": 'Bearer realm="aws-masker subscriber"'},
                )
        return await handler(request)

    return auth


def build_app(source: Observable, token: str | None = None) -> web.Application:
    async def health(_request: web.Request) -> web.Response:
        healthy, body = source.health()
        return web.json_response(body, status=200 if healthy else 503)

    async def stats(_request: web.Request) -> web.Response:
        return web.json_response(source.stats_document())

    async def metrics(_request: web.Request) -> web.Response:
        return web.Response(body=source.metrics_text(), headers={"Content-Type": CONTENT_TYPE})

    async def page(request: web.Request) -> web.Response:
        return web.Response(
            text=render_page(source.live_document(), presented_token(request) if token else None),
            content_type="text/html",
            headers={"Content-Security-Policy": PAGE_CSP, "Cache-Control": "no-store"},
        )

    async def stream(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream",
                "Cache-Control": "no-store",
                "X-Accel-Buffering": "no",
            }
        )
        await response.prepare(request)
        with contextlib.suppress(ConnectionResetError):  # the browser went away
            await response.write(b"retry: 2000\n\n")
            while not source.stopping:
                data = json.dumps(source.live_document(), separators=(",", ":"))
                await response.write(f"data: {data}\n\n".encode())
                await asyncio.sleep(STREAM_INTERVAL_S)
        return response

    app = web.Application(middlewares=[_auth_middleware(token)] if token else [])
    app.router.add_get("/", page)
    app.router.add_get("/events/stream", stream)
    app.router.add_get("/health", health)
    app.router.add_get("/stats", stats)
    app.router.add_get("/metrics", metrics)
    return app


async def start_site(app: web.Application, host: str, port: int) -> tuple[web.AppRunner, int]:
    """Listen on ``host:port``; return the runner and the bound port (``port`` 0 picks one)."""
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
    except BaseException:
        await runner.cleanup()
        raise
    bound = port
    for address in runner.addresses:
        bound = int(address[1])
        break
    return runner, bound
