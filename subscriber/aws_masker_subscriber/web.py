"""The HTTP endpoint (aiohttp): ``/health``, ``/stats`` and ``/metrics``; nothing else."""

from __future__ import annotations

from typing import Any, Protocol

from aiohttp import web

from .metrics import CONTENT_TYPE


class Observable(Protocol):
    def health(self) -> tuple[bool, dict[str, Any]]: ...

    def stats_document(self) -> dict[str, Any]: ...

    def metrics_text(self) -> bytes: ...


def build_app(source: Observable) -> web.Application:
    async def health(_request: web.Request) -> web.Response:
        healthy, body = source.health()
        return web.json_response(body, status=200 if healthy else 503)

    async def stats(_request: web.Request) -> web.Response:
        return web.json_response(source.stats_document())

    async def metrics(_request: web.Request) -> web.Response:
        return web.Response(body=source.metrics_text(), headers={"Content-Type": CONTENT_TYPE})

    app = web.Application()
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
