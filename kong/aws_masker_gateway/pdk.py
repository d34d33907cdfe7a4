"""Kong's PDK as seen by an external plugin: one PDK call of one request in one phase.

Dispatch is by the dotted method name the plugin sent. Each function enforces Kong's phase check
(``function cannot be called in <phase> phase (only in: ...)``) and argument checks by raising
:class:`LuaError`, which the caller turns into Kong's reaction (500 in access/response, a logged
timer error in log) without replying to the plugin. ``fix_mmap``/``fix_raw`` post-processing is
applied to the same methods as ``mp_rpc.lua``; a nil raw body is a Lua error, as on Kong.

The log phase runs in a timer on Kong: only the methods ``plugin.lua`` serves from its saved
snapshot, and methods that only touch context tables, work there; everything else raises
``API disabled in the context of ngx.timer``.
"""

from __future__ import annotations

import json
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode

from multidict import CIMultiDict

from .context import (
    ExitResponse,
    LuaError,
    PdkExit,
    RequestBody,
    RequestContext,
    UpstreamRequest,
    entity,
    multimap,
)
from .declarative import DEFAULT_WS_ID
from .errors import error_body
from .lua import EXIT_BODY_ENCODING_FAILED, JsonBody, LuaEngine, LuaRequestState
from .luamsgpack import EMPTY_MAP, Bin, to_text
from .router import normalize_path

REWRITE, ACCESS, BALANCER, RESPONSE = "rewrite", "access", "balancer", "response"
HEADER_FILTER, BODY_FILTER, LOG = "header_filter", "body_filter", "log"
_PHASE_ORDER = (REWRITE, ACCESS, BALANCER, RESPONSE, HEADER_FILTER, BODY_FILTER, LOG)

PHASES_REQUEST = frozenset({REWRITE, ACCESS, BALANCER, RESPONSE, HEADER_FILTER, BODY_FILTER, LOG})
BEFORE_CONTENT = frozenset({REWRITE, ACCESS, RESPONSE})
ACCESS_REWRITE_BALANCER = frozenset({REWRITE, ACCESS, BALANCER})
ACCESS_AND_REWRITE = frozenset({REWRITE, ACCESS})
HEADER_BODY_LOG = frozenset({RESPONSE, HEADER_FILTER, BODY_FILTER, LOG})
REWRITE_ACCESS_HEADER = frozenset({REWRITE, ACCESS, RESPONSE, BALANCER, HEADER_FILTER})
ONLY_BODY_FILTER = frozenset({BODY_FILTER})
ANY_PHASE = frozenset(_PHASE_ORDER)

MULTIMAP_METHODS = frozenset(
    {
        "kong.request.get_query",
        "kong.request.get_headers",
        "kong.response.get_headers",
        "kong.service.response.get_headers",
    }
)
RAW_BODY_METHODS = frozenset(
    {"kong.request.get_raw_body", "kong.response.get_raw_body", "kong.service.response.get_raw_body"}
)
STEP_METHODS = {
    "kong.client.get_credential": "plugin.StepCredential",
    "kong.client.load_consumer": "plugin.StepConsumer",
    "kong.client.get_consumer": "plugin.StepConsumer",
    "kong.client.authenticate": "plugin.StepCredential",
    "kong.node.get_memory_stats": "plugin.StepMemoryStats",
    "kong.router.get_route": "plugin.StepRoute",
    "kong.router.get_service": "plugin.StepService",
    **{m: "plugin.StepMultiMap" for m in MULTIMAP_METHODS},
}
# plugin.lua's exposed_api overrides read the saved snapshot in the log timer; these plus the
# ctx-only helpers are the only PDK calls that work from an external plugin's log phase.
LOG_TIMER_SAFE = frozenset(
    {
        "kong.log.serialize",
        "kong.nginx.get_ctx",
        "kong.nginx.set_ctx",
        "kong.ctx.shared.get",
        "kong.ctx.shared.set",
        "kong.request.get_headers",
        "kong.request.get_header",
        "kong.request.get_uri_captures",
        "kong.response.get_status",
        "kong.response.get_headers",
        "kong.response.get_header",
        "kong.response.get_source",
        "kong.nginx.req_start_time",
        "kong.plugin.get_id",
        "kong.node.get_id",
        "kong.node.get_hostname",
        "kong.service.response.get_raw_body",
        "kong.router.get_route",
        "kong.router.get_service",
    }
)
DEFAULT_MAX_REQ_HEADERS = 100  # Kong's lua_max_req_headers
LOG_LEVELS = ("debug", "info", "notice", "warn", "err", "crit", "alert", "emerg")
NODE_ID = str(uuid.uuid4())


class UnknownPdkMethod(LookupError):
    """``could not find pdk method``: Kong logs it and replies with ``Data`` absent."""


@dataclass
class PdkCall:
    ctx: RequestContext
    plugin_name: str
    plugin_id: str
    args: list[Any]
    body_buffer_size: int

    def arg(self, i: int) -> Any:
        return self.args[i] if i < len(self.args) else None


PdkFunction = Callable[[PdkCall], Any]


@dataclass(frozen=True)
class _Entry:
    phases: frozenset[str]
    fn: PdkFunction


_REGISTRY: dict[str, _Entry] = {}


def _pdk(name: str, phases: frozenset[str]) -> Callable[[PdkFunction], PdkFunction]:
    def register(fn: PdkFunction) -> PdkFunction:
        _REGISTRY[name] = _Entry(phases, fn)
        return fn

    return register


def known_methods() -> frozenset[str]:
    return frozenset(_REGISTRY)


def _check_phase(phase: str, allowed: frozenset[str]) -> None:
    if phase not in allowed:
        names = ", ".join(p for p in _PHASE_ORDER if p in allowed)
        raise LuaError(f"function cannot be called in {phase} phase (only in: {names})")


def call_pdk(method: str, call: PdkCall) -> Any:
    """Run one PDK method; return its (first) result, already fixed like ``must_fix``."""
    entry = _REGISTRY.get(method)
    if entry is None:
        raise UnknownPdkMethod(method)
    phase = call.ctx.phase
    if phase == LOG and method not in LOG_TIMER_SAFE and not method.startswith("kong.log."):
        raise LuaError("API disabled in the context of ngx.timer")
    _check_phase(phase, entry.phases)
    result = entry.fn(call)
    if method in MULTIMAP_METHODS:
        return fix_mmap(result)
    if method in RAW_BODY_METHODS:
        return fix_raw(result)
    return result


def fix_mmap(table: dict[str, Any] | None) -> Any:
    """``fix_mmap``: every value an array (``true`` -> ``[]``); an empty result is an empty *map*."""
    if not table:
        return EMPTY_MAP
    out: dict[str, Any] = {}
    for k, v in table.items():
        if v is True:
            out[k] = []
        elif isinstance(v, str | bytes):
            out[k] = [v]
        else:
            out[k] = v
    return out


def fix_raw(body: bytes | None) -> Bin:
    """``fix_raw``: pack as bin; packing a nil raises in Lua (the request then fails with 500)."""
    if body is None:
        raise LuaError("attempt to get length of local 'str' (a nil value)")
    return Bin(body)


# -- argument helpers ------------------------------------------------------------------------------
def _text(value: Any) -> str:
    return to_text(value)


def _require_string(value: Any, message: str) -> str:
    if not isinstance(value, bytes | str):
        raise LuaError(message)
    return _text(value)


def _header_name(value: Any) -> str:
    if not isinstance(value, bytes | str):
        raise LuaError(f'invalid header name "{_text(value)}": got {_lua_type(value)}, expected string')
    return _text(value)


def _header_values(name: str, value: Any, allow_table: bool = True) -> list[str]:
    if isinstance(value, bytes | str):
        return [_text(value)]
    if isinstance(value, bool):
        return ["true" if value else "false"]
    if isinstance(value, int | float):
        return [_text(value)]
    if allow_table and isinstance(value, list) and all(isinstance(v, bytes | str) for v in value):
        return [_text(v) for v in value]
    raise LuaError(
        f'invalid header value for "{name}": got {_lua_type(value)}, expected array of string, string, '
        "number or boolean"
    )


def _lua_type(value: Any) -> str:
    if value is None:
        return "nil"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, bytes | str):
        return "string"
    return "table"


def _max_headers(value: Any, what: str = "max_headers") -> None:
    if value is None:
        return
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise LuaError(f"{what} must be a number")
    if value < 1:
        raise LuaError(f"{what} must be >= 1")
    if value > 1000:
        raise LuaError(f"{what} must be <= 1000")


def _upstream(call: PdkCall) -> UpstreamRequest:
    if call.ctx.upstream is None:
        raise LuaError("no upstream request in this context")
    return call.ctx.upstream


# -- kong.request ------------------------------------------------------------------------------------
@_pdk("kong.request.get_scheme", PHASES_REQUEST)
@_pdk("kong.request.get_forwarded_scheme", PHASES_REQUEST)
def _req_scheme(call: PdkCall) -> str:
    return call.ctx.scheme


@_pdk("kong.request.get_host", PHASES_REQUEST)
@_pdk("kong.request.get_forwarded_host", PHASES_REQUEST)
def _req_host(call: PdkCall) -> str:
    return call.ctx.host


@_pdk("kong.request.get_port", ANY_PHASE)
@_pdk("kong.request.get_forwarded_port", PHASES_REQUEST)
def _req_port(call: PdkCall) -> int:
    return call.ctx.server_port


@_pdk("kong.request.get_forwarded_path", PHASES_REQUEST)
def _req_forwarded_path(call: PdkCall) -> str:
    return call.ctx.raw_path


@_pdk("kong.request.get_forwarded_prefix", PHASES_REQUEST)
def _req_forwarded_prefix(call: PdkCall) -> str | None:
    match = call.ctx.match
    return match.prefix if match and match.prefix != "/" else None


@_pdk("kong.request.get_http_version", PHASES_REQUEST)
def _req_http_version(call: PdkCall) -> float:
    return float(call.ctx.http_version)


@_pdk("kong.request.get_method", PHASES_REQUEST)
def _req_method(call: PdkCall) -> str:
    return call.ctx.method


@_pdk("kong.request.get_path", PHASES_REQUEST)
def _req_path(call: PdkCall) -> str:
    return normalize_path(call.ctx.raw_path)


@_pdk("kong.request.get_raw_path", PHASES_REQUEST)
def _req_raw_path(call: PdkCall) -> str:
    return call.ctx.raw_path


@_pdk("kong.request.get_path_with_query", PHASES_REQUEST)
def _req_path_with_query(call: PdkCall) -> str:
    return call.ctx.request_uri  # Kong 3.9: ``var.request_uri``, raw, as the client wrote it


@_pdk("kong.request.get_raw_query", PHASES_REQUEST)
def _req_raw_query(call: PdkCall) -> str:
    return call.ctx.query_string


def _query_pairs(query: str) -> list[tuple[str, Any]]:
    pairs: list[tuple[str, Any]] = []
    for part in query.split("&"):
        if not part:
            continue
        if "=" in part:
            pairs.extend(parse_qsl(part, keep_blank_values=True))
        else:
            pairs.append((parse_qsl(part + "=", keep_blank_values=True)[0][0], True))
    return pairs


@_pdk("kong.request.get_query", PHASES_REQUEST)
def _req_query(call: PdkCall) -> dict[str, Any]:
    _max_headers(call.arg(0), "max_args")
    out: dict[str, Any] = {}
    for k, v in _query_pairs(call.ctx.query_string):
        if k in out:
            existing = out[k]
            if existing is True:
                existing = []
            out[k] = [*existing, v] if isinstance(existing, list) else [existing, v]
        else:
            out[k] = v
    return out


@_pdk("kong.request.get_query_arg", PHASES_REQUEST)
def _req_query_arg(call: PdkCall) -> Any:
    name = _require_string(call.arg(0), "query argument name must be a string")
    for k, v in _query_pairs(call.ctx.query_string):
        if k == name:
            return v
    return None


@_pdk("kong.request.get_header", PHASES_REQUEST)
def _req_header(call: PdkCall) -> str | None:
    name = _require_string(call.arg(0), "header name must be a string")
    return call.ctx.headers.get(name.replace("_", "-"))


@_pdk("kong.request.get_headers", PHASES_REQUEST)
def _req_headers(call: PdkCall) -> dict[str, Any]:
    """``ngx.req.get_headers(max)``: the first ``max`` header lines (default ``lua_max_req_headers``,
    100); nginx still sends every header upstream."""
    _max_headers(call.arg(0))
    limit = int(call.arg(0) or DEFAULT_MAX_REQ_HEADERS)
    return multimap(list(call.ctx.headers.items())[:limit])


@_pdk("kong.request.get_raw_body", BEFORE_CONTENT)
def _req_raw_body(call: PdkCall) -> bytes | None:
    return call.ctx.body.read(call.arg(0))


@_pdk("kong.request.get_body", BEFORE_CONTENT)
def _req_body(call: PdkCall) -> Any:
    mime = _text(call.arg(0)) if call.arg(0) is not None else call.ctx.headers.get("Content-Type", "")
    data = _req_raw_body(call)
    if data is None:
        return None
    if "application/json" in mime:
        try:
            return json.loads(data)
        except ValueError:
            return None
    if "application/x-www-form-urlencoded" in mime:
        return dict(parse_qsl(data.decode("latin-1"), keep_blank_values=True))
    return None


@_pdk("kong.request.get_start_time", PHASES_REQUEST)
def _req_start_time(call: PdkCall) -> int:
    return int(call.ctx.start_time * 1000)


@_pdk("kong.request.get_uri_captures", PHASES_REQUEST)
def _req_uri_captures(call: PdkCall) -> dict[str, Any]:
    captures = call.ctx.match.captures if call.ctx.match else {}
    return {"unnamed": [], "named": dict(captures)}


# -- kong.service.request ----------------------------------------------------------------------------
@_pdk("kong.service.request.enable_buffering", ACCESS_REWRITE_BALANCER)
def _svc_enable_buffering(call: PdkCall) -> None:
    call.ctx.buffered = True


@_pdk("kong.service.request.set_scheme", ACCESS_REWRITE_BALANCER)
def _svc_set_scheme(call: PdkCall) -> None:
    scheme = _require_string(call.arg(0), "scheme must be a string")
    if scheme not in ("http", "https"):
        raise LuaError(f"invalid scheme: {scheme}")
    _upstream(call).scheme = scheme


@_pdk("kong.service.request.set_path", ACCESS_REWRITE_BALANCER)
def _svc_set_path(call: PdkCall) -> None:
    path = _require_string(call.arg(0), "path must be a string")
    if not path.startswith("/"):
        raise LuaError("path must start with /")
    _upstream(call).path = path


@_pdk("kong.service.request.set_raw_query", ACCESS_AND_REWRITE)
def _svc_set_raw_query(call: PdkCall) -> None:
    _upstream(call).query = _require_string(call.arg(0), "query must be a string")


@_pdk("kong.service.request.set_query", ACCESS_AND_REWRITE)
def _svc_set_query(call: PdkCall) -> None:
    args = call.arg(0)
    if not isinstance(args, dict | list):
        raise LuaError("args must be a table")
    pairs: list[tuple[str, str]] = []
    for k, v in sorted((args.items() if isinstance(args, dict) else []), key=lambda kv: _text(kv[0])):
        for item in v if isinstance(v, list) else [v]:
            pairs.append((_text(k), "" if item is True else _text(item)))
    _upstream(call).query = urlencode(pairs)


@_pdk("kong.service.request.clear_query_arg", ACCESS_AND_REWRITE)
def _svc_clear_query_arg(call: PdkCall) -> None:
    name = _require_string(call.arg(0), "query argument name must be a string")
    upstream = _upstream(call)
    kept = [p for p in upstream.query.split("&") if p and p.split("=", 1)[0] != name]
    upstream.query = "&".join(kept)


@_pdk("kong.service.request.set_method", ACCESS_AND_REWRITE)
def _svc_set_method(call: PdkCall) -> None:
    method = _require_string(call.arg(0), "method must be a string")
    _upstream(call).method = method.upper()


@_pdk("kong.service.request.set_header", ACCESS_REWRITE_BALANCER)
def _svc_set_header(call: PdkCall) -> None:
    name = _header_name(call.arg(0))
    values = _header_values(name, call.arg(1), allow_table=False)
    headers = _upstream(call).headers
    headers.popall(name, None)
    headers.add(name, values[0])


@_pdk("kong.service.request.add_header", ACCESS_AND_REWRITE)
def _svc_add_header(call: PdkCall) -> None:
    name = _header_name(call.arg(0))
    for value in _header_values(name, call.arg(1), allow_table=False):
        _upstream(call).headers.add(name, value)


@_pdk("kong.service.request.clear_header", ACCESS_AND_REWRITE)
def _svc_clear_header(call: PdkCall) -> None:
    name = _header_name(call.arg(0))
    _upstream(call).headers.popall(name, None)


@_pdk("kong.service.request.set_headers", ACCESS_AND_REWRITE)
def _svc_set_headers(call: PdkCall) -> None:
    table = call.arg(0)
    if not isinstance(table, dict):
        if table == []:
            return
        raise LuaError(f"headers must be a table, got {_lua_type(table)}")
    headers = _upstream(call).headers
    for raw_name, raw_value in table.items():
        name = _header_name(raw_name)
        values = _header_values(name, raw_value)
        headers.popall(name, None)
        for value in values:
            headers.add(name, value)


@_pdk("kong.service.request.set_raw_body", ACCESS_REWRITE_BALANCER)
def _svc_set_raw_body(call: PdkCall) -> None:
    body = call.arg(0)
    if not isinstance(body, bytes | str):
        raise LuaError("body must be a string")
    data = body if isinstance(body, bytes) else body.encode("utf-8")
    call.ctx.body = RequestBody(data=data, spilled=False)  # ngx.req.set_body_data keeps it in memory


@_pdk("kong.service.request.set_body", ACCESS_AND_REWRITE)
def _svc_set_body(call: PdkCall) -> None:
    if not isinstance(call.arg(0), dict | list):
        raise LuaError("args must be a table")
    mime = _text(call.arg(1)) if call.arg(1) is not None else call.ctx.headers.get("Content-Type", "")
    if "application/json" not in mime:
        raise LuaError(f"unsupported content type '{mime}' in this gateway")
    data = cjson_encode(_engine(call), call.arg(0), "")  # error(err, 3): the bare message
    call.ctx.body = RequestBody(data=data, spilled=False)
    _upstream(call).headers["Content-Type"] = mime


# -- kong.service.response ---------------------------------------------------------------------------
@_pdk("kong.service.response.get_status", HEADER_BODY_LOG)
def _svcr_status(call: PdkCall) -> int | None:
    sr = call.ctx.service_response
    return sr.status if sr else None


@_pdk("kong.service.response.get_headers", HEADER_BODY_LOG)
def _svcr_headers(call: PdkCall) -> dict[str, Any]:
    _max_headers(call.arg(0))
    sr = call.ctx.service_response
    return multimap(list(sr.headers.items())) if sr else {}


@_pdk("kong.service.response.get_header", HEADER_BODY_LOG)
def _svcr_header(call: PdkCall) -> str | None:
    name = _require_string(call.arg(0), "header name must be a string")
    sr = call.ctx.service_response
    return sr.headers.get(name.replace("_", "-")) if sr else None


@_pdk("kong.service.response.get_raw_body", HEADER_BODY_LOG)
def _svcr_raw_body(call: PdkCall) -> bytes:
    if not call.ctx.buffered or call.ctx.service_response is None:
        raise LuaError("service body is only available with buffered proxying")
    return call.ctx.service_response.body


# -- kong.response -----------------------------------------------------------------------------------
@_pdk("kong.response.get_status", HEADER_BODY_LOG)
def _resp_status(call: PdkCall) -> int | None:
    return call.ctx.response_status


@_pdk("kong.response.get_header", HEADER_BODY_LOG)
def _resp_header(call: PdkCall) -> str | None:
    name = _require_string(call.arg(0), "header name must be a string")
    return call.ctx.response_headers.get(name.replace("_", "-"))


@_pdk("kong.response.get_headers", HEADER_BODY_LOG)
def _resp_headers(call: PdkCall) -> dict[str, Any]:
    _max_headers(call.arg(0))
    return multimap(list(call.ctx.response_headers.items()))


@_pdk("kong.response.get_source", HEADER_BODY_LOG)
def _resp_source(call: PdkCall) -> str:
    return call.ctx.source


@_pdk("kong.response.set_status", REWRITE_ACCESS_HEADER)
def _resp_set_status(call: PdkCall) -> None:
    status = call.arg(0)
    if not isinstance(status, int | float) or isinstance(status, bool):
        raise LuaError("code must be a number")
    if not 100 <= status <= 599:
        raise LuaError("code must be a number between 100 and 599")
    call.ctx.response_status = int(status)


@_pdk("kong.response.set_header", REWRITE_ACCESS_HEADER)
def _resp_set_header(call: PdkCall) -> None:
    name = _header_name(call.arg(0))
    values = _header_values(name, call.arg(1), allow_table=False)
    call.ctx.response_headers.popall(name, None)
    call.ctx.response_headers.add(name, values[0])


@_pdk("kong.response.add_header", REWRITE_ACCESS_HEADER)
def _resp_add_header(call: PdkCall) -> None:
    name = _header_name(call.arg(0))
    for value in _header_values(name, call.arg(1), allow_table=False):
        call.ctx.response_headers.add(name, value)


@_pdk("kong.response.clear_header", REWRITE_ACCESS_HEADER)
def _resp_clear_header(call: PdkCall) -> None:
    call.ctx.response_headers.popall(_header_name(call.arg(0)), None)


@_pdk("kong.response.set_headers", REWRITE_ACCESS_HEADER)
def _resp_set_headers(call: PdkCall) -> None:
    table = call.arg(0)
    if table == []:
        return
    if not isinstance(table, dict):
        raise LuaError(f"headers must be a table, got {_lua_type(table)}")
    for raw_name, raw_value in table.items():
        name = _header_name(raw_name)
        call.ctx.response_headers.popall(name, None)
        for value in _header_values(name, raw_value):
            call.ctx.response_headers.add(name, value)


def exit_headers(table: Any) -> CIMultiDict[str]:
    """Validate an exit ``headers`` table (``validate_headers``) into a multidict."""
    headers: CIMultiDict[str] = CIMultiDict()
    if table is None or table == []:
        return headers
    if not isinstance(table, dict):
        raise LuaError("headers must be a nil or table")
    for raw_name, raw_value in table.items():
        name = _header_name(raw_name)
        if name.lower() in ("transfer-encoding", "transfer_encoding"):
            continue  # "manually setting Transfer-Encoding. Ignored."
        for value in _header_values(name, raw_value):
            headers.add(name, value)
    return headers


def cjson_encode(engine: LuaEngine, value: Any, error_prefix: str) -> bytes:
    """``cjson.encode(value)`` by lua-cjson in the Lua engine (Kong's encoding rules: ``{}`` for an
    empty table, ``\\/`` for ``/``, bytes >= 0x80 copied through, 14 significant digits here where
    Kong has 16, see :meth:`LuaEngine.try_encode_json`); a failure is the Lua error
    ``error_prefix`` + lua-cjson's message."""
    encoded, err = engine.try_encode_json(value)
    if encoded is None:
        raise LuaError(error_prefix + (err or ""))
    return encoded


def build_exit(status: Any, body: Any, headers: Any, engine: LuaEngine) -> ExitResponse:
    """``kong.response.exit`` argument checks and body encoding: a table body becomes JSON, encoded
    by lua-cjson in ``engine`` (a :class:`JsonBody` comes encoded already, from a Lua exit)."""
    if not isinstance(status, int | float) or isinstance(status, bool):
        raise LuaError("code must be a number")
    if not 100 <= status <= 599:
        raise LuaError("code must be a number between 100 and 599")
    if body is not None and not isinstance(body, bytes | str | dict | list):
        raise LuaError("body must be a nil, string or table")
    if headers is not None and not isinstance(headers, dict | list):
        raise LuaError("headers must be a nil or table")
    hdrs = exit_headers(headers)
    if isinstance(body, dict | list):
        body = JsonBody(cjson_encode(engine, body, EXIT_BODY_ENCODING_FAILED))
    if isinstance(body, JsonBody):
        data = bytes(body)
        if "Content-Type" not in hdrs:
            hdrs["Content-Type"] = "application/json; charset=utf-8"
    elif isinstance(body, str):
        data = body.encode("utf-8")
    else:
        data = body or b""
    if "Content-Length" not in hdrs:
        hdrs["Content-Length"] = str(len(data))
    return ExitResponse(status=int(status), body=data, headers=hdrs)


@_pdk("kong.response.exit", REWRITE_ACCESS_HEADER)
def _resp_exit(call: PdkCall) -> None:
    call.ctx.exit = build_exit(call.arg(0), call.arg(1), call.arg(2), _engine(call))
    raise PdkExit


@_pdk("kong.response.error", REWRITE_ACCESS_HEADER)
def _resp_error(call: PdkCall) -> None:
    status = call.arg(0)
    if not isinstance(status, int | float) or isinstance(status, bool):
        raise LuaError("code must be a number")
    if not 400 <= status <= 599:
        raise LuaError("code must be a number between 400 and 599")
    message = call.arg(1)
    if isinstance(message, dict | list):
        message = cjson_encode(_engine(call), message, "could not JSON encode the error message: ")
    if message is not None and not isinstance(message, bytes | str):
        raise LuaError("message must be a nil, a string or a table")
    headers = exit_headers(call.arg(2))
    accept = headers.get("Content-Type") or call.ctx.headers.get("Accept")
    content_type, body = error_body(
        int(status), _text(message) if message is not None else None, accept, call.ctx
    )
    headers["Content-Type"] = content_type
    headers.setdefault("Content-Length", str(len(body)))
    call.ctx.exit = ExitResponse(status=int(status), body=body, headers=headers)
    raise PdkExit


@_pdk("kong.response.get_raw_body", ONLY_BODY_FILTER)
@_pdk("kong.response.set_raw_body", ONLY_BODY_FILTER)
def _resp_body_filter_only(call: PdkCall) -> None:  # pragma: no cover - the phase check always raises
    return None


# -- kong.ctx / kong.nginx / kong.log / misc ---------------------------------------------------------
def _lua_state(call: PdkCall) -> LuaRequestState:
    if call.ctx.lua is None:
        raise LuaError("kong.ctx.shared is not available")
    return call.ctx.lua


def _engine(call: PdkCall) -> LuaEngine | None:
    return call.ctx.lua.engine if call.ctx.lua is not None else None


@_pdk("kong.ctx.shared.get", ANY_PHASE)
def _ctx_get(call: PdkCall) -> Any:
    return _lua_state(call).shared_get(call.arg(0))


@_pdk("kong.ctx.shared.set", ANY_PHASE)
def _ctx_set(call: PdkCall) -> None:
    if call.arg(0) is None:
        raise LuaError("table index is nil")
    _lua_state(call).shared_set(call.arg(0), call.arg(1))


@_pdk("kong.nginx.get_var", ANY_PHASE)
def _ngx_get_var(call: PdkCall) -> str | None:
    return call.ctx.ngx_var(_require_string(call.arg(0), "variable name must be a string"))


@_pdk("kong.nginx.get_ctx", ANY_PHASE)
def _ngx_get_ctx(call: PdkCall) -> Any:
    return call.ctx.ngx_ctx.get(call.arg(0))


@_pdk("kong.nginx.set_ctx", ANY_PHASE)
def _ngx_set_ctx(call: PdkCall) -> None:
    call.ctx.ngx_ctx[call.arg(0)] = call.arg(1)


@_pdk("kong.nginx.req_start_time", ANY_PHASE)
def _ngx_req_start_time(call: PdkCall) -> float:
    return call.ctx.start_time


@_pdk("kong.nginx.get_subsystem", ANY_PHASE)
def _ngx_subsystem(call: PdkCall) -> str:
    return "http"


@_pdk("kong.nginx.get_tls1_version_str", ANY_PHASE)
def _ngx_tls(call: PdkCall) -> None:
    return None


def _log_function(level: str) -> PdkFunction:
    def log_call(call: PdkCall) -> None:
        call.ctx.kong_log(level, "".join(_text(a) for a in call.args), plugin=call.plugin_name)

    return log_call


for _level in LOG_LEVELS:
    _pdk(f"kong.log.{_level}", ANY_PHASE)(_log_function(_level))


@_pdk("kong.log.serialize", frozenset({LOG}))
def _log_serialize(call: PdkCall) -> str:
    """``kong.log.serialize()`` as the bridge returns it: JSON text (``cjson_encode``), with the
    values Lua plugins set with ``kong.log.set_serialize_value``."""
    ctx = call.ctx
    record = ctx.record
    uri = ctx.raw_path + (f"?{ctx.query_string}" if ctx.query_string else "")
    headers: dict[str, Any] = {}
    for k, v in ctx.headers.items():
        headers.setdefault(k.lower(), []).append(v)
    request_headers = {k: v[0] if len(v) == 1 else v for k, v in headers.items()}
    for name in ("authorization", "proxy-authorization"):
        if name in request_headers:
            request_headers[name] = "REDACTED"
    response_headers: dict[str, Any] = {}
    for k, v in ctx.response_headers.items():
        response_headers.setdefault(k.lower(), []).append(v)
    route = ctx.match.route if ctx.match else None
    service = ctx.match.service if ctx.match else None
    root = {
        "request": {
            "id": ctx.request_id,
            "uri": uri,
            "url": f"{ctx.scheme}://{ctx.host}:{ctx.server_port}{uri}",
            "querystring": _req_query(PdkCall(ctx, call.plugin_name, call.plugin_id, [], 0)),
            "method": ctx.method,
            "headers": request_headers,
            "size": len(ctx.body.data),
        },
        "upstream_uri": ctx.upstream.path if ctx.upstream else "",
        "upstream_status": str(ctx.record.status or "") if record.proxied else "",
        "response": {
            "status": ctx.response_status,
            "headers": {k: v[0] if len(v) == 1 else v for k, v in response_headers.items()},
            "size": record.response_size,
        },
        "latencies": {
            "kong": record.proxy_latency_ms or 0,
            "proxy": record.upstream_latency_ms if record.upstream_latency_ms is not None else -1,
            "request": record.total_latency_ms or ctx.elapsed_ms(),
            "receive": 0,
        },
        "route": entity(route),
        "service": entity(service),
        "client_ip": ctx.client_ip,
        "started_at": int(ctx.start_time * 1000),
        "source": ctx.source,
        "workspace": DEFAULT_WS_ID,
        "workspace_name": "default",
    }
    state = _lua_state(call)
    return state.engine.serialize(state, root).decode("utf-8", "replace")


@_pdk("kong.plugin.get_id", ANY_PHASE)
def _plugin_id(call: PdkCall) -> str:
    return call.plugin_id


@_pdk("kong.node.get_id", ANY_PHASE)
def _node_id(call: PdkCall) -> str:
    return NODE_ID


@_pdk("kong.node.get_hostname", ANY_PHASE)
def _node_hostname(call: PdkCall) -> str:
    return socket.gethostname()


@_pdk("kong.client.get_ip", PHASES_REQUEST)
@_pdk("kong.client.get_forwarded_ip", PHASES_REQUEST)
def _client_ip(call: PdkCall) -> str:
    return call.ctx.client_ip


@_pdk("kong.client.get_consumer", ANY_PHASE)
@_pdk("kong.client.get_credential", ANY_PHASE)
def _client_none(call: PdkCall) -> None:
    return None


@_pdk("kong.router.get_route", ANY_PHASE)
def _router_route(call: PdkCall) -> dict[str, Any] | None:
    return entity(call.ctx.route_entity())


@_pdk("kong.router.get_service", ANY_PHASE)
def _router_service(call: PdkCall) -> dict[str, Any] | None:
    return entity(call.ctx.service_entity())


@_pdk("kong.ip.is_trusted", ANY_PHASE)
def _ip_trusted(call: PdkCall) -> bool:
    return False
