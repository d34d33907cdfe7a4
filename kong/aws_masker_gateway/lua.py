"""An in-process Lua runtime (LuaJIT via lupa) for Kong's serverless plugins and ``kong.ctx.shared``.

User code runs in a sandbox equivalent to ``kong.tools.kong-lua-sandbox`` (only the safe base
functions; no ``io``, ``os`` beyond the clock functions, ``load*``, ``require``, ``debug``,
metatables or ``python``), with a small ``kong``/``ngx`` API backed by the request being served.
``kong.response.exit`` yields out of the plugin like Kong's delayed response.

Each request owns a real Lua table for ``kong.ctx.shared``, so values set by an external plugin
over RPC become Lua strings/tables and read back with Lua semantics (an empty dict comes back as
``[]``, byte strings come back as msgpack str).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

try:  # prefer LuaJIT 2.1, which is what Kong runs
    import lupa.luajit21 as _lupa
except ImportError:  # pragma: no cover - depends on the lupa build
    import lupa as _lupa  # type: ignore[no-redef]

from .luamsgpack import Bin, PackError

log = logging.getLogger("aws_masker_gateway.lua")

LUA_LEVELS = ("debug", "info", "notice", "warn", "err", "crit", "alert", "emerg")


class LuaHost(Protocol):
    """What the Lua ``kong``/``ngx`` API needs from the request being served."""

    def lua_request_header(self, name: str) -> str | None: ...
    def lua_request_headers(self) -> dict[str, list[str]]: ...
    def lua_request_method(self) -> str: ...
    def lua_request_path(self) -> str: ...
    def lua_ngx_var(self, name: str) -> str | None: ...
    def lua_response_status(self) -> int | None: ...
    def lua_response_header(self, name: str) -> str | None: ...
    def lua_set_response_header(self, name: str, values: list[str] | None, add: bool) -> None: ...
    def lua_log(self, level: str, message: str) -> None: ...


@dataclass(frozen=True)
class LuaOutcome:
    kind: str  # "ok" | "exit" | "error"
    message: str = ""


@dataclass(frozen=True)
class LuaExit:
    status: int
    body: Any  # a Lua value: None, bytes or a converted table
    headers: dict[Any, Any] | None


_BOOTSTRAP = r"""
local host = ...
local EXIT = setmetatable({}, { __tostring = function() return "kong.response.exit" end })
local current = nil

local function cur(level)
  if current == nil then error("no request in context", (level or 1) + 1) end
  return current
end

local PHASES_REQUEST = { rewrite = true, access = true, response = true, header_filter = true,
                         body_filter = true, log = true }
local REWRITE_ACCESS_HEADER = { rewrite = true, access = true, response = true, header_filter = true }
local HEADER_BODY_LOG = { response = true, header_filter = true, body_filter = true, log = true }
local BODY_FILTER = { body_filter = true }

local function check_phase(allowed)
  local phase = cur(2).phase
  if not allowed[phase] then
    local names = {}
    for _, p in ipairs({ "rewrite", "access", "response", "header_filter", "body_filter", "log" }) do
      if allowed[p] then names[#names + 1] = p end
    end
    error(string.format("function cannot be called in %s phase (only in: %s)", phase,
                        table.concat(names, ", ")), 3)
  end
end

local function proxy(field)
  return setmetatable({}, {
    __index = function(_, k) return cur(2)[field][k] end,
    __newindex = function(_, k, v) cur(2)[field][k] = v end,
  })
end

local function logger(level)
  return function(...)
    local parts = {}
    for i = 1, select("#", ...) do parts[i] = tostring((select(i, ...))) end
    host.log(cur(2).handle, level, table.concat(parts))
  end
end

local function header_values(value)
  local tv = type(value)
  if tv == "string" or tv == "number" or tv == "boolean" then return { tostring(value) } end
  if tv == "table" then
    local out = {}
    for i, v in ipairs(value) do out[i] = tostring(v) end
    return out
  end
  error("invalid header value for \"" .. tostring(value) .. "\": got " .. tv ..
        ", expected array of string, string, number or boolean", 3)
end

local kong = {
  ctx = { shared = proxy("shared"), plugin = proxy("plugin") },
  log = {},
  request = {
    get_header = function(name)
      check_phase(PHASES_REQUEST)
      if type(name) ~= "string" then error("header name must be a string", 2) end
      return host.request_header(cur().handle, name)
    end,
    get_headers = function()
      check_phase(PHASES_REQUEST)
      return host.request_headers(cur().handle)
    end,
    get_method = function() check_phase(PHASES_REQUEST) return host.request_method(cur().handle) end,
    get_path = function() check_phase(PHASES_REQUEST) return host.request_path(cur().handle) end,
  },
  response = {
    exit = function(status, body, headers)
      local r = cur()
      if r.phase ~= "rewrite" and r.phase ~= "access" then
        error(string.format("function cannot be called in %s phase (only in: rewrite, access)", r.phase), 2)
      end
      if type(status) ~= "number" then error("code must be a number", 2) end
      if status < 100 or status > 599 then error("code must be a number between 100 and 599", 2) end
      if body ~= nil and type(body) ~= "string" and type(body) ~= "table" then
        error("body must be a nil, string or table", 2)
      end
      if headers ~= nil and type(headers) ~= "table" then error("headers must be a nil or table", 2) end
      r.exit = { status = status, body = body, headers = headers }
      coroutine.yield(EXIT)
    end,
    get_status = function() check_phase(HEADER_BODY_LOG) return host.response_status(cur().handle) end,
    get_header = function(name)
      check_phase(HEADER_BODY_LOG)
      if type(name) ~= "string" then error("header name must be a string", 2) end
      return host.response_header(cur().handle, name)
    end,
    set_header = function(name, value)
      check_phase(REWRITE_ACCESS_HEADER)
      if type(name) ~= "string" then error("invalid header name \"" .. tostring(name) .. "\"", 2) end
      host.set_response_header(cur().handle, name, header_values(value), false)
    end,
    add_header = function(name, value)
      check_phase(REWRITE_ACCESS_HEADER)
      if type(name) ~= "string" then error("invalid header name \"" .. tostring(name) .. "\"", 2) end
      host.set_response_header(cur().handle, name, header_values(value), true)
    end,
    clear_header = function(name)
      check_phase(REWRITE_ACCESS_HEADER)
      if type(name) ~= "string" then error("invalid header name \"" .. tostring(name) .. "\"", 2) end
      host.set_response_header(cur().handle, name, nil, false)
    end,
    get_raw_body = function() check_phase(BODY_FILTER) return cur().arg[1] end,
    set_raw_body = function(body)
      check_phase(BODY_FILTER)
      if type(body) ~= "string" then error("body must be a string", 2) end
      cur().arg[1] = body
    end,
  },
}
for _, level in ipairs({ "debug", "info", "notice", "warn", "err", "crit", "alert", "emerg" }) do
  kong.log[level] = logger(level)
end

local NGX_LEVELS = { [1] = "alert", [2] = "crit", [3] = "err", [4] = "err", [5] = "warn",
                     [6] = "notice", [7] = "info", [8] = "debug" }
local ngx = {
  var = setmetatable({}, {
    __index = function(_, k) return host.ngx_var(cur(2).handle, k) end,
    __newindex = function(_, k) error("variable \"" .. tostring(k) .. "\" cannot be assigned here", 2) end,
  }),
  ctx = proxy("ngx_ctx"),
  arg = proxy("arg"),
  log = function(level, ...)
    local parts = {}
    for i = 1, select("#", ...) do parts[i] = tostring((select(i, ...))) end
    host.log(cur().handle, NGX_LEVELS[level] or "notice", table.concat(parts))
  end,
  ALERT = 1, CRIT = 2, ERR = 4, WARN = 5, NOTICE = 6, INFO = 7, DEBUG = 8,
  now = function() return host.now() end,
  time = function() return math.floor(host.now()) end,
}

local SAFE = {
  "_VERSION", "assert", "error", "ipairs", "next", "pairs", "pcall", "select", "tonumber",
  "tostring", "type", "unpack", "xpcall",
}
local SAFE_MODULES = {
  coroutine = { "create", "resume", "running", "status", "wrap", "yield" },
  math = { "abs", "acos", "asin", "atan", "atan2", "ceil", "cos", "cosh", "deg", "exp", "fmod",
           "floor", "frexp", "huge", "ldexp", "log", "log10", "max", "min", "modf", "pi", "pow",
           "rad", "random", "sin", "sinh", "sqrt", "tan", "tanh" },
  os = { "clock", "date", "difftime", "time" },
  string = { "byte", "char", "find", "format", "gmatch", "gsub", "len", "lower", "match", "rep",
             "reverse", "sub", "upper" },
  table = { "concat", "insert", "maxn", "remove", "sort" },
}

local function protect(module, name)
  return setmetatable({}, {
    __index = module,
    __newindex = function(_, attr)
      error("Can not modify " .. name .. "." .. attr .. ". Protected by the sandbox.", 2)
    end,
  })
end

local function sandbox_env()
  local env = {}
  for _, id in ipairs(SAFE) do env[id] = _G[id] end
  for name, fns in pairs(SAFE_MODULES) do
    local t = {}
    for _, f in ipairs(fns) do t[f] = _G[name][f] end
    env[name] = protect(t, name)
  end
  env.kong = kong
  env.ngx = ngx
  env.require = function(m)
    error(string.format("require '%s' not allowed within sandbox", tostring(m)), 2)
  end
  env._G = env
  return env
end

local api = {}

function api.compile(source, chunkname)
  if source:byte(1) == 27 then return nil, "attempt to load a binary chunk" end
  local fn, err = loadstring(source, chunkname)
  if not fn then return nil, err end
  setfenv(fn, sandbox_env())
  return { fn = fn, first = true }
end

-- kong/plugins/pre-function/_handler.lua: a chunk returning a function is the 0.2.0+ style
local function run_entry(entry)
  if entry.first then
    entry.first = false
    local result = entry.fn()
    if type(result) == "function" then
      entry.fn = result
      result()
    end
  else
    entry.fn()
  end
end

function api.new_request(handle)
  return { handle = handle, shared = {}, ngx_ctx = {}, plugin = {}, arg = {}, phase = "rewrite" }
end

function api.run(rstate, phase, entries)
  rstate.phase = phase
  local co = coroutine.create(function()
    for i = 1, #entries do run_entry(entries[i]) end
  end)
  local previous = current
  current = rstate
  local ok, res = coroutine.resume(co)
  current = previous
  if not ok then return "error", tostring(res) end
  if coroutine.status(co) == "suspended" then
    if res == EXIT then return "exit", "" end
    return "error", "attempt to yield from a plugin"
  end
  return "ok", ""
end

function api.shared_get(rstate, key) return rstate.shared[key] end
function api.shared_set(rstate, key, value) rstate.shared[key] = value end
function api.set_phase(rstate, phase) rstate.phase = phase end

return api
"""


class LuaChunk:
    """A compiled sandboxed chunk (state kept across requests, like Kong's config cache)."""

    def __init__(self, handle: Any, source_name: str) -> None:
        self.handle = handle
        self.source_name = source_name


class LuaRequestState:
    """The Lua side of one request: ``kong.ctx.shared``, ``ngx.ctx``, ``kong.ctx.plugin``, exit."""

    def __init__(self, engine: LuaEngine, table: Any) -> None:
        self._engine = engine
        self.table = table

    def shared_get(self, key: Any) -> Any:
        return self._engine.lua_to_py(self._engine.api.shared_get(self.table, self._engine.py_to_lua(key)))

    def shared_set(self, key: Any, value: Any) -> None:
        self._engine.api.shared_set(self.table, self._engine.py_to_lua(key), self._engine.py_to_lua(value))

    def shared_snapshot(self) -> dict[Any, Any]:
        value = self._engine.lua_to_py(self.table[b"shared"])
        return value if isinstance(value, dict) else {}

    def take_exit(self) -> LuaExit | None:
        raw = self.table[b"exit"]
        if raw is None:
            return None
        self.table[b"exit"] = None
        headers = self._engine.lua_to_py(raw[b"headers"]) if raw[b"headers"] is not None else None
        return LuaExit(
            status=int(raw[b"status"]),
            body=self._engine.lua_to_py(raw[b"body"]),
            headers=headers if isinstance(headers, dict) else None,
        )

    @property
    def arg(self) -> Any:
        return self.table[b"arg"]


class LuaEngine:
    """One Lua VM per gateway; Lua runs synchronously on the event loop thread."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.runtime = _lupa.LuaRuntime(
            encoding=None,
            register_eval=False,
            register_builtins=False,
            unpack_returned_tuples=True,
            attribute_filter=self._deny_attributes,
        )
        self._lua_type = _lupa.lua_type
        host = self.runtime.table_from(
            {
                b"request_header": lambda h, name: _b(h.lua_request_header(_s(name))),
                b"request_headers": lambda h: self.py_to_lua(h.lua_request_headers()),
                b"request_method": lambda h: _b(h.lua_request_method()),
                b"request_path": lambda h: _b(h.lua_request_path()),
                b"ngx_var": lambda h, name: _b(h.lua_ngx_var(_s(name))),
                b"response_status": lambda h: h.lua_response_status(),
                b"response_header": lambda h, name: _b(h.lua_response_header(_s(name))),
                b"set_response_header": self._set_response_header,
                b"log": lambda h, level, msg: h.lua_log(_s(level), _s(msg)),
                b"now": clock,
            }
        )
        self.api = self.runtime.execute(_BOOTSTRAP, host)

    @staticmethod
    def _deny_attributes(obj: Any, attr_name: Any, is_setting: bool) -> Any:
        raise AttributeError("access to Python attributes is not allowed from Lua")

    def _set_response_header(self, handle: LuaHost, name: bytes, values: Any, add: bool) -> None:
        converted = self.lua_to_py(values) if values is not None else None
        handle.lua_set_response_header(
            _s(name), None if converted is None else [_s(v) for v in converted], bool(add)
        )

    # -- chunks and phases -----------------------------------------------------------------------
    def compile(self, source: str, chunk_name: str) -> LuaChunk:
        """Compile ``source`` in a fresh sandbox; raise ``SyntaxError`` with Lua's message."""
        result = self.api.compile(source.encode("utf-8"), f"={chunk_name}".encode())
        handle, err = (result if isinstance(result, tuple) else (result, None))[:2]
        if handle is None:
            raise SyntaxError(_s(err))
        return LuaChunk(handle, chunk_name)

    def new_request(self, host: LuaHost) -> LuaRequestState:
        return LuaRequestState(self, self.api.new_request(host))

    def run(self, state: LuaRequestState, phase: str, chunks: list[LuaChunk]) -> LuaOutcome:
        entries = self.runtime.table_from([c.handle for c in chunks])
        kind, message = self.api.run(state.table, phase.encode(), entries)
        return LuaOutcome(_s(kind), _s(message))

    def set_phase(self, state: LuaRequestState, phase: str) -> None:
        self.api.set_phase(state.table, phase.encode())

    # -- value conversion ------------------------------------------------------------------------
    def py_to_lua(self, value: Any) -> Any:
        """msgpack-decoded (Lua) value -> Lua value; ``None`` entries leave holes like Kong's unpacker."""
        if value is None or isinstance(value, bool | int | float):
            return value
        if isinstance(value, Bin | bytes | bytearray):
            return bytes(value)
        if isinstance(value, str):
            return value.encode("utf-8")
        if isinstance(value, list | tuple):
            table = self.runtime.table()
            for i, item in enumerate(value, 1):
                if item is not None:
                    table[i] = self.py_to_lua(item)
            return table
        if isinstance(value, dict):
            table = self.runtime.table()
            for k, v in value.items():
                if v is not None and k is not None:
                    table[self.py_to_lua(k)] = self.py_to_lua(v)
            return table
        raise PackError(f"cannot convert {type(value).__name__} to a Lua value")

    def lua_to_py(self, value: Any) -> Any:
        """Lua value -> Lua value as packed by lua-MessagePack (tables: array iff keys are 1..n)."""
        if value is None or isinstance(value, bool | int | float | bytes):
            if isinstance(value, float) and value.is_integer() and abs(value) < 2**63:
                return int(value)
            return value
        kind = self._lua_type(value)
        if kind == "table":
            items = list(value.items())
            if not items:
                return []
            n = len(items)
            if all(isinstance(k, int) and 1 <= k <= n for k, _ in items):
                ordered = sorted(items, key=lambda kv: kv[0])
                return [self.lua_to_py(v) for _, v in ordered]
            return {self.lua_to_py(k): self.lua_to_py(v) for k, v in items}
        raise PackError(f"pack '{kind or 'userdata'}' is unimplemented")


def _b(value: str | bytes | None) -> bytes | None:
    if value is None or isinstance(value, bytes):
        return value
    return value.encode("utf-8")


def _s(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return "" if value is None else str(value)
