"""The upstream leg: Kong's request headers (``X-Forwarded-*``, ``Via``, Host) and the HTTP call."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from . import SERVER_TOKEN
from .context import RequestContext, UpstreamRequest
from .declarative import Service
from .router import RouteMatch, quote_path

HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)


class UpstreamError(Exception):
    """The upstream could not be reached or answered badly; ``status`` is what Kong returns.
    ``reason`` names the failure and the error's class, never the URL (its query is the client's)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status


def _connection_tokens(headers: CIMultiDictProxy[str] | CIMultiDict[str]) -> set[str]:
    tokens = set()
    for value in headers.getall("Connection", []):
        tokens.update(t.strip().lower() for t in value.split(",") if t.strip())
    return tokens


def end_to_end(headers: CIMultiDictProxy[str] | CIMultiDict[str]) -> CIMultiDict[str]:
    """Copy ``headers`` without hop-by-hop headers (and those named in ``Connection``)."""
    dropped = HOP_BY_HOP | _connection_tokens(headers)
    return CIMultiDict((k, v) for k, v in headers.items() if k.lower() not in dropped)


def build_upstream_request(ctx: RequestContext, match: RouteMatch, service: Service) -> UpstreamRequest:
    """The request nginx would send: client headers plus Kong's proxy headers (``runloop/handler.lua``)."""
    headers = end_to_end(ctx.headers)
    headers.popall("Content-Length", None)
    client_host = ctx.headers.get("Host", "")
    if match.route.preserve_host and client_host:
        host_header = client_host
    else:
        default_port = 443 if service.protocol == "https" else 80
        host_header = service.host if service.port == default_port else f"{service.host}:{service.port}"
    headers["Host"] = host_header
    forwarded_for = ctx.headers.get("X-Forwarded-For")
    headers["X-Forwarded-For"] = f"{forwarded_for}, {ctx.client_ip}" if forwarded_for else ctx.client_ip
    headers["X-Forwarded-Proto"] = ctx.scheme
    headers["X-Forwarded-Host"] = ctx.host
    headers["X-Forwarded-Port"] = str(ctx.server_port)
    headers["X-Forwarded-Path"] = ctx.raw_path
    headers.popall("X-Forwarded-Prefix", None)
    if match.prefix and match.prefix != "/":
        headers["X-Forwarded-Prefix"] = match.prefix
    headers["X-Real-IP"] = ctx.client_ip
    inbound_via = f"{ctx.http_version} {SERVER_TOKEN}"
    req_via = ctx.headers.get("Via")
    headers["Via"] = f"{req_via}, {inbound_via}" if req_via else inbound_via
    return UpstreamRequest(
        method=ctx.method,
        path=quote_path(match.upstream_path),
        query=ctx.query_string,
        headers=headers,
        scheme=service.protocol,
        host=service.host,
        port=service.port,
    )


@dataclass
class UpstreamResponse:
    status: int
    headers: CIMultiDict[str]
    response: aiohttp.ClientResponse
    upstream_latency_ms: int
    proxy_latency_ms: int

    async def read_all(self) -> bytes:
        try:
            return await self.response.read()
        except (asyncio.TimeoutError, aiohttp.ServerTimeoutError) as exc:
            raise UpstreamError(504, "upstream timed out") from exc
        except aiohttp.ClientError as exc:
            raise UpstreamError(502, f"upstream body error: {type(exc).__name__}") from exc
        finally:
            self.response.release()

    async def iter_chunks(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self.response.content.iter_any():
                yield chunk
        finally:
            self.response.release()


class UpstreamClient:
    def __init__(self) -> None:
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(
            auto_decompress=False,
            connector=aiohttp.TCPConnector(limit=0, ttl_dns_cache=60),
            cookie_jar=aiohttp.DummyCookieJar(),
            skip_auto_headers=("User-Agent", "Accept-Encoding", "Accept", "Content-Type"),
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def send(self, ctx: RequestContext, service: Service) -> UpstreamResponse:
        """Send ``ctx.upstream`` with the service's timeouts; connect failures are retried."""
        assert self._session is not None and ctx.upstream is not None
        up = ctx.upstream
        target = f"{up.scheme}://{up.host}:{up.port}{up.path}" + (f"?{up.query}" if up.query else "")
        url = URL(target, encoded=True)
        timeout = aiohttp.ClientTimeout(
            total=None,
            sock_connect=service.connect_timeout / 1000,
            sock_read=service.read_timeout / 1000,
        )
        body = ctx.body.data
        has_body = bool(body) or "Content-Length" in ctx.headers or "Transfer-Encoding" in ctx.headers
        attempts = service.retries + 1
        for attempt in range(attempts):
            sent_at = time.monotonic()
            try:
                response = await self._session.request(
                    up.method,
                    url,
                    headers=up.headers,
                    data=body if has_body else None,
                    timeout=timeout,
                    allow_redirects=False,
                    ssl=None if up.scheme == "https" else False,
                )
            except aiohttp.ClientConnectorError as exc:
                if attempt + 1 < attempts:
                    continue
                raise UpstreamError(502, f"connect() failed: {type(exc).__name__}") from exc
            except (asyncio.TimeoutError, aiohttp.ServerTimeoutError) as exc:
                raise UpstreamError(504, "upstream timed out") from exc
            except aiohttp.ClientError as exc:
                raise UpstreamError(
                    502, f"upstream prematurely closed connection: {type(exc).__name__}"
                ) from exc
            received_at = time.monotonic()
            return UpstreamResponse(
                status=response.status,
                headers=end_to_end(response.headers),
                response=response,
                upstream_latency_ms=int((received_at - sent_at) * 1000),
                proxy_latency_ms=int((sent_at - ctx.start_monotonic) * 1000),
            )
        raise AssertionError("unreachable")
