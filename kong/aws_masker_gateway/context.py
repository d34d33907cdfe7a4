"""Per-request state shared by the phases, the PDK emulation and the Lua plugins (Kong's ``ngx.ctx``)."""

from __future__ import annotations

import logging
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from multidict import CIMultiDict, CIMultiDictProxy

from .declarative import DEFAULT_WS_ID

if TYPE_CHECKING:
    from .lua import LuaRequestState
    from .router import RouteMatch

log = logging.getLogger("aws_masker_gateway.kong")

_LOG_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "notice": 25,
    "warn": logging.WARNING,
    "err": logging.ERROR,
    "crit": logging.CRITICAL,
    "alert": logging.CRITICAL,
    "emerg": logging.CRITICAL,
}


class LuaError(Exception):
    """A Lua error raised by Kong while serving a PDK call (wrong phase, bad argument, nil body...)."""


class PdkExit(Exception):
    """``kong.response.exit``/``error`` ran: the phase ends and Kong sends no reply to the plugin."""


@dataclass
class RequestBody:
    """The client body as nginx holds it: in memory, or spilled to a temp file when too large."""

    data: bytes
    spilled: bool

    def read(self, max_allowed_file_size: Any = None) -> bytes | None:
        """``kong.request.get_raw_body(max_allowed_file_size)``: a spilled body only when a size
        is given (0: any), else ``nil`` ("request body did not fit into client body buffer")."""
        if not self.spilled:
            return self.data
        limit = max_allowed_file_size
        if limit is None or not isinstance(limit, int | float) or isinstance(limit, bool) or limit < 0:
            return None
        if limit > 0 and len(self.data) > limit:
            return None  # "request body file too big: %d > %d"
        return self.data


def multimap(pairs: list[tuple[str, str]], lower: bool = True) -> dict[str, Any]:
    """Headers as Kong's PDK returns them: a string per name, a list for a repeated one."""
    out: dict[str, Any] = {}
    for k, v in pairs:
        key = k.lower() if lower else k
        if key in out:
            existing = out[key]
            out[key] = [*existing, v] if isinstance(existing, list) else [existing, v]
        else:
            out[key] = v
    return out


@dataclass
class ServiceResponse:
    """The buffered upstream response (``ctx.buffered_status/headers/body``)."""

    status: int
    headers: CIMultiDict[str]
    body: bytes


@dataclass
class ExitResponse:
    status: int
    body: bytes
    headers: CIMultiDict[str]


@dataclass
class UpstreamRequest:
    """What will be sent to the service; PDK ``kong.service.request.*`` calls edit it."""

    method: str
    path: str
    query: str
    headers: CIMultiDict[str]
    scheme: str
    host: str
    port: int


@dataclass
class RequestRecord:
    """What the gateway remembers about a finished request (for logs, tests and diagnostics)."""

    request_id: str
    method: str
    route: str | None
    status: int | None = None
    pdk_calls: Counter[str] = field(default_factory=Counter)
    """PDK calls per plugin name."""
    pdk_phases: Counter[str] = field(default_factory=Counter)
    """PDK calls per phase."""
    response_size: int = 0
    """Body bytes sent to the client."""
    rpc_seconds: float = 0.0
    """Time spent waiting for plugin-server replies (HandleEvent and Steps): what Kong waits too."""
    pdk_seconds: float = 0.0
    """Time spent serving PDK calls in this gateway (Kong serves them in Lua, in microseconds)."""
    lua_seconds: float = 0.0
    """Time spent running Lua plugins' phases here (LuaJIT through lupa; every call into Lua and back
    into this gateway's Python crosses a boundary that Kong, all in LuaJIT, does not have)."""
    protocol_errors: list[str] = field(default_factory=list)
    plugin_errors: list[str] = field(default_factory=list)
    proxied: bool = False
    upstream_latency_ms: int | None = None
    proxy_latency_ms: int | None = None
    total_latency_ms: int | None = None

    @property
    def pdk_call_total(self) -> int:
        return sum(self.pdk_calls.values())


class RequestContext:
    """One client request travelling through Kong's phases."""

    def __init__(
        self,
        *,
        method: str,
        raw_path: str,
        query_string: str,
        headers: CIMultiDictProxy[str],
        body: RequestBody,
        scheme: str,
        server_port: int,
        client_ip: str,
        http_version: str = "1.1",
        request_uri: str | None = None,
    ) -> None:
        self.request_id = uuid.uuid4().hex
        self.start_time = time.time()
        self.start_monotonic = time.monotonic()
        self.method = method
        self.raw_path = raw_path
        self.query_string = query_string
        # nginx's $request_uri: the target as the client wrote it (with a fragment, if any)
        self.request_uri = request_uri or raw_path + (f"?{query_string}" if query_string else "")
        self.headers = headers
        self.body = body
        self.scheme = scheme
        self.server_port = server_port
        self.client_ip = client_ip
        self.http_version = http_version
        host_header = headers.get("Host", "")
        self.host = (
            host_header.rsplit(":", 1)[0] if not host_header.startswith("[") else host_header
        ).lower()
        self.phase = "rewrite"
        self.match: RouteMatch | None = None
        self.upstream: UpstreamRequest | None = None
        self.buffered = False
        self.service_response: ServiceResponse | None = None
        self.response_status: int | None = None
        self.response_headers: CIMultiDict[str] = CIMultiDict()
        self.exit: ExitResponse | None = None
        # kong.response.get_source(): "service" (proxied), "exit" (a plugin's exit) or "error"
        self.source = "error"
        self.lua: LuaRequestState | None = None
        self.ngx_ctx: dict[Any, Any] = {}
        self.current_plugin: str | None = None
        self.record = RequestRecord(self.request_id, method, None)

    # -- helpers ----------------------------------------------------------------------------------
    def elapsed_ms(self) -> int:
        return int((time.monotonic() - self.start_monotonic) * 1000)

    def kong_log(self, level: str, message: str, plugin: str | None = None) -> None:
        namespace = plugin or self.current_plugin
        prefix = f"[kong] [{namespace}] " if namespace else "[kong] "
        log.log(
            _LOG_LEVELS.get(level, logging.INFO), "%s%s, request_id: %s", prefix, message, self.request_id
        )

    def ngx_var(self, name: str) -> str | None:
        if name in ("request_id", "kong_request_id"):
            return self.request_id
        if name.startswith("http_"):
            return self.headers.get(name[5:].replace("_", "-"))
        values = {
            "request_method": self.method,
            "request_uri": self.request_uri,
            "uri": self.raw_path,
            "args": self.query_string or None,
            "scheme": self.scheme,
            "host": self.host,
            "server_port": str(self.server_port),
            "remote_addr": self.client_ip,
            "realip_remote_addr": self.client_ip,
            "upstream_uri": self.upstream.path if self.upstream else None,
            "status": str(self.response_status) if self.response_status is not None else None,
        }
        return values.get(name)

    # -- LuaHost (see lua.py) ------------------------------------------------------------------------
    def lua_request_header(self, name: str) -> str | None:
        return self.headers.get(name.replace("_", "-"))

    def lua_request_headers(self, max_headers: int) -> dict[str, Any]:
        return multimap(list(self.headers.items())[:max_headers])

    def lua_request_target(self) -> str:
        return self.request_uri  # Kong 3.9's get_path_with_query: var.request_uri, raw

    def lua_request_body(self, max_allowed_file_size: Any) -> bytes | None:
        return self.body.read(max_allowed_file_size)

    def lua_request_method(self) -> str:
        return self.method

    def lua_request_path(self) -> str:
        from .router import normalize_path

        return normalize_path(self.raw_path)

    def lua_ngx_var(self, name: str) -> str | None:
        return self.ngx_var(name)

    def lua_response_status(self) -> int | None:
        return self.response_status

    def lua_response_source(self) -> str:
        return self.source

    def lua_response_header(self, name: str) -> str | None:
        return self.response_headers.get(name.replace("_", "-"))

    def lua_set_response_header(self, name: str, values: list[str] | None, add: bool) -> None:
        if not add:
            self.response_headers.popall(name, None)
        for value in values or []:
            self.response_headers.add(name, value)

    def lua_set_upstream_header(self, name: str, value: str) -> None:
        if self.upstream is None:
            raise LuaError("no upstream request in this context")
        self.upstream.headers.popall(name, None)
        self.upstream.headers.add(name, value)

    def route_entity(self) -> Any:
        """The matched route (``kong.router.get_route()``; :func:`entity` gives Kong's view of it)."""
        return self.match.route if self.match else None

    def service_entity(self) -> Any:
        return self.match.service if self.match else None

    def lua_log(self, level: str, message: str) -> None:
        self.kong_log(level, message)


def entity(obj: Any) -> dict[str, Any] | None:
    """A route or service as Kong hands it to plugins (``ctx.route``, ``kong.router.get_route()``,
    the log serializer's copy): its fields, unset ones absent, and its workspace."""
    if obj is None:
        return None
    out = {k: list(v) if isinstance(v, tuple) else v for k, v in vars(obj).items() if v is not None}
    out["ws_id"] = DEFAULT_WS_ID
    return out
