"""The gateway: Kong's request lifecycle on aiohttp, wired to plugin servers and the Lua runtime.

Phases per request (``kong/init.lua``): rewrite (global plugins) -> router -> access (collecting;
an exit or a Lua error skips the remaining access plugins) -> proxy (buffered when a plugin
implements ``response`` or called ``enable_buffering``; then the ``response`` plugins run on the
buffered upstream response) -> header_filter (Lua plugins) -> body_filter (Lua plugins, once per
chunk as it streams to the client, ``ngx.arg[1]``/``ngx.arg[2]``) -> log (after the response,
like Kong's timer).

Streaming follows the route's ``response_buffering``, as nginx's proxy module hands the body to the
body filters (checked against a real nginx with lua-nginx-module, tests/nginx): a first empty call
when the upstream's headers arrive, then with buffering off every read from the upstream, at once;
with buffering on (Kong's default) the body in pieces of ``PROXY_BUFFER`` bytes (an event stream is
held back until a buffer fills or the upstream ends); the end is always a separate empty call with
``ngx.arg[2]`` set. A response without a body (HEAD, 204, 304) runs no body filter, like nginx.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import re
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass

from aiohttp import web, web_protocol
from multidict import CIMultiDict

from . import SERVER_TOKEN
from .bridge import run_external_phase
from .context import ExitResponse, LuaError, RequestBody, RequestContext, RequestRecord, ServiceResponse
from .declarative import ConfigValidator, DeclarativeConfig, parse_declarative, schema_validator
from .errors import NO_ROUTE, UNEXPECTED_ERROR_JSON, error_body
from .instances import InstanceCache
from .logs import NOTICE
from .lua import LuaEngine, LuaOutcome, LuaPlugin, LuaSetupError
from .pdk import build_exit
from .plugins import ConfiguredPlugin, ExternalPluginRuntime, PluginSet, build_plugin_set
from .pluginserver import ExternalPluginInfo, PluginServerProcess, query_plugin_info
from .proxy import UpstreamClient, UpstreamError, UpstreamResponse, build_upstream_request
from .router import Router
from .rpc import DEFAULT_TIMEOUT, ConnectionPool, RpcClient
from .serverless import PRIORITIES, make_validator
from .settings import GatewaySettings

log = logging.getLogger("aws_masker_gateway.gateway")
access_log = logging.getLogger("aws_masker_gateway.access")

MAX_RECORDS = 10_000
CLIENT_MAX_BODY = 1 << 30
PROXY_BUFFER = 8192  # nginx proxy_buffer_size / proxy_buffers: one memory page, 4k or 8k


_ABSOLUTE_FORM = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://[^/?#]*")


def split_target(target: str) -> tuple[str, str, str]:
    """``($request_uri, path, query)`` of a request target as nginx splits it: an absolute-form target
    (``http://host/v1/messages``) is routed by its path, and a ``#fragment`` ends the path and the
    query (nginx's ``$uri`` and ``$args``); ``$request_uri`` keeps it."""
    absolute = _ABSOLUTE_FORM.match(target)
    if absolute:
        target = target[absolute.end() :]
        target = target if target.startswith("/") else "/" + target
    path, _, query = target.split("#", 1)[0].partition("?")
    return target, path, query


class _AbortResponse(Exception):
    """A body filter raised: nginx logs it and cuts the connection (the client sees a short body)."""


class GatewayError(RuntimeError):
    """The gateway cannot start with this configuration."""


@dataclass
class Outcome:
    """What goes back to the client, before Kong's header_filter and body_filter."""

    status: int
    headers: CIMultiDict[str]
    body: bytes | None = None
    stream: UpstreamResponse | None = None
    proxied: bool = False


class _KongResponse(web.StreamResponse):
    """aiohttp adds ``Content-Type: application/octet-stream`` by default; nginx does not."""

    def __init__(self, *, status: int, headers: CIMultiDict[str]) -> None:
        super().__init__(status=status, headers=headers)
        self._had_content_type = "Content-Type" in headers

    async def _write_headers(self) -> None:
        if not self._had_content_type:
            self.headers.popall("Content-Type", None)
        await super()._write_headers()


def plugin_validators(
    infos: Mapping[str, ExternalPluginInfo], lua_plugins: Mapping[str, LuaPlugin], engine: LuaEngine
) -> dict[str, ConfigValidator]:
    validators: dict[str, ConfigValidator] = {name: make_validator(name, engine) for name in PRIORITIES}
    validators.update(
        {name: schema_validator(info.config_fields, engine.lua_find) for name, info in infos.items()}
    )
    validators.update(
        {name: schema_validator(p.config_fields, engine.lua_find) for name, p in lua_plugins.items()}
    )
    return validators


def check_installed(
    settings: GatewaySettings, infos: Mapping[str, ExternalPluginInfo], lua_plugins: Mapping[str, LuaPlugin]
) -> None:
    """Kong refuses to start when ``plugins`` names a plugin nobody provides."""
    for name in settings.plugins:
        if name in ("bundled", "off") or name in PRIORITIES or name in infos or name in lua_plugins:
            continue
        raise GatewayError(f"{name} plugin is enabled but not installed")


def load_lua_plugins(settings: GatewaySettings, engine: LuaEngine) -> dict[str, LuaPlugin]:
    """Every enabled plugin that has a Lua module on the Lua path (Kong tries Lua first)."""
    plugins: dict[str, LuaPlugin] = {}
    for name in settings.plugins:
        if name in ("bundled", "off") or name in PRIORITIES:
            continue
        try:
            plugin = engine.load_plugin(name)
        except LuaSetupError as exc:
            raise GatewayError(str(exc)) from exc
        if plugin is not None:
            plugins[name] = plugin
    return plugins


class Gateway:
    """One Kong node (one worker) serving a declarative configuration."""

    def __init__(
        self,
        settings: GatewaySettings,
        config: DeclarativeConfig,
        infos: Mapping[str, ExternalPluginInfo],
        engine: LuaEngine,
        lua_plugins: Mapping[str, LuaPlugin] | None = None,
        *,
        rpc_timeout: float = DEFAULT_TIMEOUT,
        respawn: bool = True,
    ) -> None:
        self.lua_plugins = dict(lua_plugins or {})
        check_installed(settings, infos, self.lua_plugins)
        self.settings = settings
        self.engine = engine
        self.infos = dict(infos)
        self.validators = plugin_validators(infos, self.lua_plugins, engine)
        self.processes = {
            s.name: PluginServerProcess(s, respawn=respawn) for s in settings.plugin_servers if s.start_cmd
        }
        self.externals: dict[str, ExternalPluginRuntime] = {}
        for name, info in infos.items():
            rpc = RpcClient(ConnectionPool(info.server.socket), timeout=rpc_timeout)
            self.externals[name] = ExternalPluginRuntime(info, rpc, InstanceCache(name, rpc))
        self._seq = itertools.count(1)
        self.upstream = UpstreamClient()
        self.records: OrderedDict[str, RequestRecord] = OrderedDict()
        self._finished: dict[str, asyncio.Event] = {}
        self._log_tasks: set[asyncio.Task[None]] = set()
        self.apply_config(config)

    # -- configuration ---------------------------------------------------------------------------
    def apply_config(self, config: DeclarativeConfig) -> None:
        """Switch to ``config`` (DB-less ``POST /config``): every plugin gets a new ``__seq__``."""
        self.config = config
        self.router = Router(config)
        self.plugin_set: PluginSet = build_plugin_set(
            config, self.externals, self.lua_plugins, self.engine, self._seq
        )

    def reload(self, text: str) -> None:
        self.apply_config(parse_declarative(text, self.settings, self.validators))

    # -- lifecycle -------------------------------------------------------------------------------
    async def start(self) -> None:
        """Start plugin servers (without waiting, like Kong) and the upstream client."""
        await self.upstream.start()
        for process in self.processes.values():
            process.start()

    async def wait_ready(self, timeout: float = 30.0) -> None:
        await asyncio.gather(*(p.wait_ready(timeout) for p in self.processes.values()))

    async def stop(self) -> None:
        if self._log_tasks:
            await asyncio.wait(self._log_tasks, timeout=5)
        for runtime in self.externals.values():
            runtime.rpc.pool.close()
        await asyncio.gather(*(p.stop() for p in self.processes.values()))
        await self.upstream.close()

    def make_app(self) -> web.Application:
        app = web.Application(client_max_size=CLIENT_MAX_BODY)
        app.router.add_route("*", "/{tail:.*}", self.handle)
        return app

    # -- diagnostics -----------------------------------------------------------------------------
    def record(self, request_id: str) -> RequestRecord | None:
        return self.records.get(request_id)

    async def wait_record(self, request_id: str, timeout: float = 10.0) -> RequestRecord:
        """The record of a request once its log phase has finished."""
        event = self._finished.get(request_id)
        if event is not None:
            await asyncio.wait_for(event.wait(), timeout)
        record = self.records.get(request_id)
        if record is None:
            raise KeyError(request_id)
        return record

    # -- request lifecycle -----------------------------------------------------------------------
    async def handle(self, request: web.Request) -> web.StreamResponse:
        request_uri, path, query = split_target(request.raw_path)
        body = await request.read()
        sockname = request.transport.get_extra_info("sockname") if request.transport else None
        ctx = RequestContext(
            method=request.method,
            raw_path=path,
            query_string=query,
            headers=request.headers,
            body=RequestBody(body, spilled=len(body) > self.settings.client_body_buffer_size),
            scheme=request.scheme,
            server_port=sockname[1] if sockname else 0,
            client_ip=request.remote or "",
            http_version=f"{request.version.major}.{request.version.minor}",
            request_uri=request_uri,
        )
        ctx.lua = self.engine.new_request(ctx)
        self._finished[ctx.request_id] = asyncio.Event()
        plugin_set, router = self.plugin_set, self.router
        plugins: list[ConfiguredPlugin] = plugin_set.global_plugins()
        try:
            outcome, plugins = await self._process(ctx, plugin_set, router)
            outcome = self._header_filter(ctx, plugins, outcome)
            return await self._send(request, ctx, plugins, outcome)
        finally:
            task = asyncio.get_running_loop().create_task(self._log_phase(ctx, plugins))
            self._log_tasks.add(task)
            task.add_done_callback(self._log_tasks.discard)

    async def _process(
        self, ctx: RequestContext, plugin_set: PluginSet, router: Router
    ) -> tuple[Outcome, list[ConfiguredPlugin]]:
        global_plugins = plugin_set.global_plugins()
        for plugin in global_plugins:
            if "rewrite" in plugin.phases:
                result = await self._run_plugin(plugin, ctx, "rewrite")
                if result == "error":
                    return self._error_outcome(ctx, 500), global_plugins
                if result == "exit":
                    return self._exit_outcome(ctx), global_plugins
        match = router.match(ctx.method, ctx.raw_path, ctx.host)
        if match is None:
            return self._error_outcome(ctx, 404, NO_ROUTE), global_plugins
        ctx.match = match
        ctx.record.route = match.route.name or match.route.id
        plugins = plugin_set.for_request(match)
        if match.service is None:
            ctx.exit = build_exit(503, {"message": "no Service found with those values"}, None, self.engine)
            return self._exit_outcome(ctx), plugins
        ctx.upstream = build_upstream_request(ctx, match, match.service)
        ctx.buffered = any(p.external is not None and "response" in p.phases for p in plugins)
        for plugin in plugins:
            if "access" not in plugin.phases:
                continue
            result = await self._run_plugin(plugin, ctx, "access")
            if result == "error":
                # the collecting iterator stores kong.response.exit(500, {message=...}) and skips the rest
                headers = CIMultiDict({"Content-Type": "application/json; charset=utf-8"})
                ctx.exit = ExitResponse(500, UNEXPECTED_ERROR_JSON, headers)
            if ctx.exit is not None:
                ctx.buffered = False
                return self._exit_outcome(ctx), plugins
        return await self._proxy(ctx, plugins), plugins

    async def _proxy(self, ctx: RequestContext, plugins: list[ConfiguredPlugin]) -> Outcome:
        assert ctx.match is not None and ctx.match.service is not None
        ctx.phase = "balancer"
        access_headers = ctx.response_headers
        try:
            upstream = await self.upstream.send(ctx, ctx.match.service)
        except UpstreamError as exc:
            log.error("upstream error: %s (request_id: %s)", exc, ctx.request_id)
            if not ctx.buffered:
                return self._error_outcome(ctx, exc.status)
            content_type, body = error_body(exc.status, None, ctx.headers.get("Accept"), ctx)
            headers = CIMultiDict({"Content-Type": content_type})
            return await self._response_phase(ctx, plugins, ServiceResponse(exc.status, headers, body))
        ctx.record.proxied = True
        ctx.source = "service"
        ctx.record.upstream_latency_ms = upstream.upstream_latency_ms
        ctx.record.proxy_latency_ms = upstream.proxy_latency_ms
        if ctx.buffered:
            body = await self._read_upstream(ctx, upstream)
            if isinstance(body, Outcome):
                return body
            return await self._response_phase(
                ctx, plugins, ServiceResponse(upstream.status, upstream.headers, body)
            )
        headers = CIMultiDict(upstream.headers)
        for name in set(access_headers.keys()):  # headers set by plugins in access win
            headers.popall(name, None)
        headers.extend(access_headers)
        ctx.response_status = upstream.status
        ctx.response_headers = headers
        return Outcome(upstream.status, headers, stream=upstream, proxied=True)

    async def _read_upstream(self, ctx: RequestContext, upstream: UpstreamResponse) -> bytes | Outcome:
        try:
            return await upstream.read_all()
        except UpstreamError as exc:
            log.error("upstream error: %s (request_id: %s)", exc, ctx.request_id)
            return self._error_outcome(ctx, exc.status)

    async def _response_phase(
        self, ctx: RequestContext, plugins: list[ConfiguredPlugin], service_response: ServiceResponse
    ) -> Outcome:
        """``Kong.response()``: copy status and headers, run ``response`` plugins, send the original body."""
        ctx.service_response = service_response
        ctx.response_status = service_response.status
        for name in set(service_response.headers.keys()):  # kong.response.set_headers(upstream headers)
            ctx.response_headers.popall(name, None)
        ctx.response_headers.extend(service_response.headers)
        for plugin in plugins:
            if plugin.external is None or "response" not in plugin.phases:
                continue
            result = await self._run_plugin(plugin, ctx, "response")
            if result == "error":
                return self._error_outcome(ctx, 500)
            if result == "exit":
                assert ctx.exit is not None
                headers = ctx.response_headers
                for name in set(ctx.exit.headers.keys()):
                    headers.popall(name, None)
                headers.extend(ctx.exit.headers)
                ctx.response_status = ctx.exit.status
                return Outcome(ctx.exit.status, headers, body=ctx.exit.body, proxied=True)
        return Outcome(
            service_response.status, ctx.response_headers, body=service_response.body, proxied=True
        )

    async def _run_plugin(self, plugin: ConfiguredPlugin, ctx: RequestContext, phase: str) -> str:
        """Run one plugin's phase; return ``"ok"``, ``"exit"`` or ``"error"`` (a Lua error, logged)."""
        ctx.phase = phase
        ctx.current_plugin = plugin.name
        try:
            if plugin.external is not None:
                await run_external_phase(plugin, ctx, phase, self.settings.client_body_buffer_size)
            else:
                outcome = self._run_lua(ctx, plugin, phase)
                if outcome.kind == "error":
                    raise LuaError(outcome.message)
                if outcome.kind == "exit":
                    assert ctx.lua is not None
                    lua_exit = ctx.lua.take_exit()
                    assert lua_exit is not None
                    ctx.exit = build_exit(lua_exit.status, lua_exit.body, lua_exit.headers, self.engine)
        except LuaError as exc:
            ctx.kong_log("err", str(exc), plugin=plugin.name)
            ctx.record.plugin_errors.append(f"{plugin.name}: {exc}")
            return "error"
        finally:
            ctx.current_plugin = None
        if ctx.exit is not None:
            ctx.source = "exit"
            return "exit"
        return "ok"

    def _run_lua(self, ctx: RequestContext, plugin: ConfiguredPlugin, phase: str) -> LuaOutcome:
        """One phase of a Lua plugin (from the Lua path) or of a serverless function."""
        assert ctx.lua is not None
        ctx.phase = phase
        started = time.perf_counter()
        try:
            if plugin.lua_plugin is not None:
                conf = self.engine.conf_table(plugin.lua_plugin, plugin.seq, plugin.entity.config)
                return self.engine.run_handler(ctx.lua, plugin.lua_plugin, phase, conf)
            return self.engine.run(ctx.lua, phase, plugin.lua_chunks.get(phase, []), plugin.name)
        finally:
            ctx.record.lua_seconds += time.perf_counter() - started

    def _exit_outcome(self, ctx: RequestContext) -> Outcome:
        assert ctx.exit is not None
        headers = ctx.response_headers
        for name in set(ctx.exit.headers.keys()):
            headers.popall(name, None)
        headers.extend(ctx.exit.headers)
        return Outcome(ctx.exit.status, headers, body=ctx.exit.body)

    def _error_outcome(self, ctx: RequestContext, status: int, message: str | None = None) -> Outcome:
        """``kong.response.error``/the error handler: Kong's template, negotiated on ``Accept``."""
        content_type, body = error_body(status, message, ctx.headers.get("Accept"), ctx)
        ctx.source = "error"
        headers = CIMultiDict({"Content-Type": content_type, "Content-Length": str(len(body))})
        ctx.exit = ExitResponse(status, body, headers)
        ctx.response_headers = CIMultiDict()
        return self._exit_outcome(ctx)

    # -- header_filter / body_filter / send ------------------------------------------------------
    def _header_filter(
        self, ctx: RequestContext, plugins: list[ConfiguredPlugin], outcome: Outcome
    ) -> Outcome:
        ctx.response_status = outcome.status
        ctx.response_headers = outcome.headers
        for plugin in plugins:
            if plugin.is_lua and "header_filter" in plugin.phases:
                ctx.current_plugin = plugin.name
                result = self._run_lua(ctx, plugin, "header_filter")
                ctx.current_plugin = None
                if result.kind == "error":
                    ctx.kong_log("err", result.message, plugin=plugin.name)
                    if outcome.stream is not None:
                        outcome.stream.response.release()
                    return self._header_filter(ctx, [], self._error_outcome(ctx, 500))
        headers = ctx.response_headers
        total = ctx.elapsed_ms()
        if outcome.proxied:
            headers["X-Kong-Upstream-Latency"] = str(ctx.record.upstream_latency_ms or 0)
            headers["X-Kong-Proxy-Latency"] = str(ctx.record.proxy_latency_ms or 0)
            upstream_via = headers.get("Via")
            via = f"1.1 {SERVER_TOKEN}"
            headers["Via"] = f"{upstream_via}, {via}" if upstream_via else via
            headers.setdefault("Server", SERVER_TOKEN)
        else:
            headers["X-Kong-Response-Latency"] = str(total)
            if headers.get("Via") != SERVER_TOKEN:
                headers["Server"] = SERVER_TOKEN
        headers["X-Kong-Request-Id"] = ctx.request_id
        outcome.status = ctx.response_status or outcome.status
        outcome.headers = headers
        return outcome

    def _body_filter(
        self, ctx: RequestContext, filters: list[ConfiguredPlugin], data: bytes, eof: bool
    ) -> bytes:
        """One ``body_filter`` call of every filtering plugin, in order: ``ngx.arg[1]`` is the chunk,
        ``ngx.arg[2]`` the end flag; what a plugin leaves in ``ngx.arg[1]`` goes to the next."""
        assert ctx.lua is not None
        arg = ctx.lua.arg
        for plugin in filters:
            arg[1], arg[2] = data, eof
            ctx.current_plugin = plugin.name
            result = self._run_lua(ctx, plugin, "body_filter")
            ctx.current_plugin = None
            if result.kind == "error":
                message = f"failed to run body_filter_by_lua*: {result.message}"
                ctx.kong_log("err", message, plugin=plugin.name)
                raise _AbortResponse
            new = arg[1]
            data = new if isinstance(new, bytes) else b""
        return data

    async def _pieces(self, ctx: RequestContext, outcome: Outcome) -> AsyncIterator[tuple[bytes, bool]]:
        """The response body as nginx hands it to the body filters: ``(chunk, eof)`` pairs."""
        if outcome.stream is None:
            yield outcome.body or b"", True
            return
        buffering = ctx.match.route.response_buffering if ctx.match is not None else True
        yield b"", False
        pending = bytearray()
        async for chunk in outcome.stream.iter_chunks():
            if not buffering:
                yield chunk, False
                continue
            pending += chunk
            while len(pending) >= PROXY_BUFFER:
                yield bytes(pending[:PROXY_BUFFER]), False
                del pending[:PROXY_BUFFER]
        if pending:
            yield bytes(pending), False
        yield b"", True

    async def _send(
        self, request: web.Request, ctx: RequestContext, plugins: list[ConfiguredPlugin], outcome: Outcome
    ) -> web.StreamResponse:
        """Headers as the header filters left them (a ``Content-Length`` they kept is sent as is, a
        cleared one means chunked), then the body through the body filters, chunk by chunk."""
        headers = CIMultiDict(outcome.headers)
        length = headers.popall("Content-Length", None)
        ctx.record.status = outcome.status
        response = _KongResponse(status=outcome.status, headers=headers)
        filters = [p for p in plugins if p.is_lua and "body_filter" in p.phases]
        if length:
            response.content_length = int(length[-1])
        elif outcome.stream is None and not filters:
            response.content_length = len(outcome.body or b"")
        await response.prepare(request)
        head = request.method == "HEAD"
        if head or outcome.status in (204, 304):
            if outcome.stream is not None:
                outcome.stream.response.release()
            await response.write_eof()
            return response
        try:
            async for data, eof in self._pieces(ctx, outcome):
                if filters:
                    data = self._body_filter(ctx, filters, data, eof)
                if data:
                    ctx.record.response_size += len(data)
                    await response.write(data)
        except _AbortResponse:
            if request.transport is not None:
                request.transport.abort()
            return response
        except Exception as exc:  # upstream died mid-body: nginx closes the client connection
            log.error("upstream body error: %s (request_id: %s)", type(exc).__name__, ctx.request_id)
            raise
        finally:
            if outcome.stream is not None:
                outcome.stream.response.release()
        await response.write_eof()
        return response

    # -- log -------------------------------------------------------------------------------------
    async def _log_phase(self, ctx: RequestContext, plugins: list[ConfiguredPlugin]) -> None:
        """``Kong.log``: Lua plugins' ``log`` runs in nginx's log phase, by priority; an external
        plugin's ``log`` is a 0-delay timer scheduled there, so it runs after every Lua one and
        sees what they left in ``kong.ctx.shared``."""
        try:
            ctx.phase = "log"
            in_order = [p for p in plugins if p.is_lua] + [p for p in plugins if not p.is_lua]
            for plugin in in_order:
                if "log" not in plugin.phases:
                    continue
                try:
                    result = await self._run_plugin(plugin, ctx, "log")
                    if result == "exit":
                        ctx.exit = None
                except Exception:  # a timer error on Kong: log it, never break the gateway
                    log.exception("log phase of %s failed (request_id: %s)", plugin.name, ctx.request_id)
        finally:
            self._finish(ctx)

    def _finish(self, ctx: RequestContext) -> None:
        if ctx.lua is not None:
            ctx.lua.close()
            ctx.lua = None
        record = ctx.record
        record.total_latency_ms = ctx.elapsed_ms()
        self.records[record.request_id] = record
        while len(self.records) > MAX_RECORDS:
            self.records.popitem(last=False)
        event = self._finished.pop(record.request_id, None)
        if event is not None:
            event.set()
        phases = ",".join(f"{phase}:{n}" for phase, n in record.pdk_phases.items()) or "-"
        access_log.log(
            NOTICE,
            "%s route=%s status=%s latency=%sms upstream=%sms kong=%sms pdk_calls=%d pdk_phases=%s "
            "request_id=%s",
            record.method,
            record.route or "-",
            record.status,
            record.total_latency_ms,
            "-" if record.upstream_latency_ms is None else record.upstream_latency_ms,
            "-" if record.proxy_latency_ms is None else record.proxy_latency_ms,
            record.pdk_call_total,
            phases,
            record.request_id,
        )


def create_gateway(
    settings: GatewaySettings,
    config_text: str,
    *,
    rpc_timeout: float = DEFAULT_TIMEOUT,
    respawn: bool = True,
) -> Gateway:
    """Kong's startup: query every plugin server, validate the declarative config, build the node."""
    infos: dict[str, ExternalPluginInfo] = {}
    for server in settings.plugin_servers:
        info = query_plugin_info(server)
        if info.name in infos:
            log.warning("plugin '%s' is provided by several plugin servers; keeping the first", info.name)
            continue
        infos[info.name] = info
    try:
        engine = LuaEngine(time.time, settings.lua_package_path, settings.lua_package_cpath)
    except LuaSetupError as exc:
        raise GatewayError(str(exc)) from exc
    lua_plugins = load_lua_plugins(settings, engine)
    check_installed(settings, infos, lua_plugins)
    config = parse_declarative(config_text, settings, plugin_validators(infos, lua_plugins, engine))
    return Gateway(settings, config, infos, engine, lua_plugins, rpc_timeout=rpc_timeout, respawn=respawn)


_aiohttp_error_page = web_protocol.RequestHandler.handle_error


def _kong_error_page(
    self: web_protocol.RequestHandler,
    request: web.BaseRequest,
    status: int = 500,
    exc: BaseException | None = None,
    message: str | None = None,
) -> web.StreamResponse:
    """A request the HTTP parser refuses gets Kong's error page, as nginx's ``error_page`` sends it.

    aiohttp's own page quotes the offending bytes (``Invalid header token: b'role arn:aws:...'``), so
    an identifier in a malformed header line went back to the client; the message is dropped here and
    the status's fixed text answers instead. aiohttp still logs the error (by exception type only, in
    the gateway's log format) and closes the connection."""
    response = _aiohttp_error_page(self, request, status, exc, None)
    if isinstance(response, web.Response):
        content_type, body = error_body(status, None, None, None)
        response.body = body
        response.headers["Content-Type"] = content_type
    return response


# set once for the process: every aiohttp server here (the gateway, the Claude stub) answers so
web_protocol.RequestHandler.handle_error = _kong_error_page  # type: ignore[method-assign]


async def run_site(app: web.Application, host: str, port: int) -> tuple[web.AppRunner, int]:
    """Serve ``app`` on ``host:port`` (0 picks a free port); return the runner and the bound port."""
    # auto_decompress=False: nginx hands Kong (and the plugin) a request body as the client sent it,
    # compressed; the plugin decodes it (aws_masker/requestcoding.py), never the gateway.
    runner = web.AppRunner(app, access_log=None, handle_signals=False, auto_decompress=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port, reuse_address=True)
    try:
        await site.start()
    except BaseException:
        await runner.cleanup()
        raise
    server = site._server
    bound = port
    if server is not None and getattr(server, "sockets", None):
        bound = server.sockets[0].getsockname()[1]
    return runner, bound


async def shutdown_site(runner: web.AppRunner) -> None:
    with contextlib.suppress(Exception):
        await runner.cleanup()
