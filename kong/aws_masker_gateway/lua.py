"""An in-process Lua runtime (LuaJIT via lupa) for Kong's Lua plugins and ``kong.ctx.shared``.

Two kinds of Lua run here, as in Kong:

* Lua plugins loaded by name from the Lua path (``kong.plugins.<name>.handler`` and ``.schema``,
  ``KONG_LUA_PACKAGE_PATH``), like ``aws-masker-restore``. They run unsandboxed with the global
  ``kong`` and ``ngx``, and can ``require`` modules, including the real lua-cjson.
* The serverless functions of ``pre-function``/``post-function``, in a sandbox equivalent to
  ``kong.tools.kong-lua-sandbox`` (only the safe base functions; no ``io``, ``os`` beyond the clock
  functions, ``load*``, ``require``, ``debug``, metatables or ``python``).

Both see a subset of Kong's ``kong``/``ngx`` API backed by the request being served.
``kong.response.exit`` yields out of the plugin like Kong's delayed response. lua-cjson (Debian's
``lua-cjson``, the C module Kong ships) must be installed: it encodes exit bodies and the log
serializer's JSON exactly as Kong does.

Each request owns a real Lua table for ``kong.ctx.shared``, so values set by an external plugin
over RPC become Lua strings/tables and read back with Lua semantics (an empty dict comes back as
``[]``, byte strings come back as msgpack str).
"""

from __future__ import annotations

import base64
import binascii
import ctypes
import functools
import glob
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from .context import LuaError, entity
from .luamsgpack import Bin, PackError

try:  # prefer LuaJIT 2.1, which is what Kong runs
    import lupa.luajit21 as _lupa
except ImportError:  # pragma: no cover - depends on the lupa build
    import lupa as _lupa  # type: ignore[no-redef]

# lupa links LuaJIT into its own extension module, whose symbols Python loads privately. A Lua C
# module (lua-cjson) needs them global to link against, so promote the loaded module to RTLD_GLOBAL.
if hasattr(os, "RTLD_NOLOAD"):
    ctypes.CDLL(_lupa.__file__, mode=os.RTLD_NOLOAD | os.RTLD_GLOBAL)

# Kong's defaults (kong/templates/kong_defaults.lua); ";;" stands for LuaJIT's own path, as in nginx
DEFAULT_PACKAGE_PATH = "./?.lua;./?/init.lua;"
# where Linux distributions install Lua 5.1 C modules (Debian's lua-cjson: /usr/lib/<triplet>/lua/5.1)
SYSTEM_CPATHS = ("/usr/local/lib/lua/5.1/?.so", *sorted(glob.glob("/usr/lib/*/lua/5.1")), "/usr/lib/lua/5.1")
LUA_PHASES = ("rewrite", "access", "header_filter", "body_filter", "log")

log = logging.getLogger("aws_masker_gateway.lua")

LUA_LEVELS = ("debug", "info", "notice", "warn", "err", "crit", "alert", "emerg")


def _encode_base64(data: bytes, no_padding: bool) -> bytes:
    """``ngx.encode_base64``: standard alphabet, padded unless ``no_padding``."""
    encoded = base64.b64encode(data)
    return encoded.rstrip(b"=") if no_padding else encoded


def _decode_base64(data: bytes) -> bytes | None:
    """``ngx.decode_base64``: ``nil`` for input that is not base64 (padding may be left out)."""
    try:
        return base64.b64decode(data + b"=" * (-len(data) % 4), validate=True)
    except (binascii.Error, ValueError):
        return None


class LuaSetupError(RuntimeError):
    """The Lua runtime cannot be set up (lua-cjson missing) or a Lua plugin cannot be loaded."""


class LuaHost(Protocol):
    """What the Lua ``kong``/``ngx`` API needs from the request being served."""

    def lua_request_header(self, name: str) -> str | None: ...
    def lua_request_headers(self, max_headers: int) -> dict[str, Any]: ...
    def lua_request_target(self) -> str: ...
    def lua_request_body(self, max_allowed_file_size: Any) -> bytes | None: ...
    def lua_request_method(self) -> str: ...
    def lua_request_path(self) -> str: ...
    def lua_ngx_var(self, name: str) -> str | None: ...
    def lua_response_status(self) -> int | None: ...
    def lua_response_source(self) -> str: ...
    def lua_response_header(self, name: str) -> str | None: ...
    def lua_set_response_header(self, name: str, values: list[str] | None, add: bool) -> None: ...
    def lua_set_upstream_header(self, name: str, value: str) -> None: ...
    def route_entity(self) -> Any: ...
    def service_entity(self) -> Any: ...
    def lua_log(self, level: str, message: str) -> None: ...


@dataclass(frozen=True)
class LuaOutcome:
    kind: str  # "ok" | "exit" | "error"
    message: str = ""


class JsonBody(bytes):
    """A table body of ``kong.response.exit``, already encoded by lua-cjson (Kong sends it with
    ``Content-Type: application/json; charset=utf-8`` unless the exit's headers set one)."""


# kong/pdk/response.lua send(): what a table body that lua-cjson cannot encode raises
EXIT_BODY_ENCODING_FAILED = "body encoding failed while flushing response: "


@dataclass(frozen=True)
class LuaExit:
    status: int
    body: bytes | None  # a Lua string, or a table body encoded by lua-cjson (:class:`JsonBody`)
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
local BEFORE_CONTENT = { rewrite = true, access = true, response = true }

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

local ACCESS_REWRITE_BALANCER = { rewrite = true, access = true, balancer = true }
local ROUTER_PHASES = { access = true, header_filter = true, response = true, body_filter = true,
                        log = true }

-- kong.router's tables: as Kong's router does, one table per route or service, shared by every
-- request matched to it. Keyed by the entity's type, id and contents (a reloaded config with other
-- contents gets new tables); 4096 of them at most, then the cache starts over.
local entity_tables, entity_count = {}, 0
local function entity_table(kind)
  local handle = cur(2).handle
  local key = host.entity_key(handle, kind)
  if key == nil then return nil end
  local t = entity_tables[key]
  if t == nil then
    if entity_count >= 4096 then entity_tables, entity_count = {}, 0 end
    t = host.entity(handle, kind)
    entity_tables[key], entity_count = t, entity_count + 1
  end
  return t
end

local kong = {
  ctx = { shared = proxy("shared"), plugin = proxy("plugin") },
  router = {
    get_route = function() check_phase(ROUTER_PHASES) return entity_table("route") end,
    get_service = function() check_phase(ROUTER_PHASES) return entity_table("service") end,
  },
  service = {
    request = {
      set_header = function(name, value)
        check_phase(ACCESS_REWRITE_BALANCER)
        if type(name) ~= "string" then error("invalid header name \"" .. tostring(name) .. "\"", 2) end
        local tv = type(value)
        if tv ~= "string" and tv ~= "number" and tv ~= "boolean" then
          error("invalid header value for \"" .. name .. "\": got " .. tv ..
                ", expected string, number or boolean", 2)
        end
        host.set_upstream_header(cur().handle, name, tostring(value))
      end,
    },
  },
  log = {
    set_serialize_value = function(key, value, options)
      check_phase(PHASES_REQUEST)
      if type(key) ~= "string" then error("key must be a string", 2) end
      local mode = options and options.mode or "set"
      if mode ~= "set" and mode ~= "add" and mode ~= "replace" then
        error("mode must be 'set', 'add' or 'replace'", 2)
      end
      local values = cur().serialize_values
      values[#values + 1] = { key = key, value = value, mode = mode }
    end,
  },
  request = {
    get_header = function(name)
      check_phase(PHASES_REQUEST)
      if type(name) ~= "string" then error("header name must be a string", 2) end
      return host.request_header(cur().handle, name)
    end,
    get_headers = function(max_headers)
      check_phase(PHASES_REQUEST)
      if max_headers ~= nil then
        if type(max_headers) ~= "number" then error("max_headers must be a number", 2) end
        if max_headers < 1 then error("max_headers must be >= 1", 2) end
        if max_headers > 1000 then error("max_headers must be <= 1000", 2) end
      end
      return host.request_headers(cur().handle, max_headers or 100)  -- lua_max_req_headers
    end,
    get_path_with_query = function()
      check_phase(PHASES_REQUEST)
      return host.request_target(cur().handle)
    end,
    get_raw_body = function(max_allowed_file_size)
      check_phase(BEFORE_CONTENT)
      local body = host.request_body(cur().handle, max_allowed_file_size)
      if body == nil then
        return nil, "request body did not fit into client body buffer, consider raising " ..
                    "'client_body_buffer_size'"
      end
      return body
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
    get_source = function() check_phase(HEADER_BODY_LOG) return host.response_source(cur().handle) end,
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
  encode_base64 = function(s, no_padding)
    if type(s) ~= "string" then error("string argument only", 2) end
    return host.encode_base64(s, no_padding and true or false)
  end,
  decode_base64 = function(s)
    if type(s) ~= "string" then error("string argument only", 2) end
    return host.decode_base64(s)
  end,
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

-- Lua plugins (require'd modules) see the same API as globals, like Kong's
_G.kong = kong
_G.ngx = ngx

local cjson = require "cjson.safe"
-- kong/globalpatches.lua sets 16 digits (OpenResty's lua-cjson); Debian's upstream build stops at 14
if not pcall(cjson.encode_number_precision, 16) then cjson.encode_number_precision(14) end
cjson.encode_sparse_array(nil, nil, 2 ^ 15)  -- kong/globalpatches.lua

local api = {}

-- kong/db/dao/plugins.lua load_plugin_handler + plugin_loader.load_subschema: nil when there is no
-- such module on the Lua path, an error when the module fails to load
local function load_module_if_exists(name)
  local ok, result = pcall(require, name)
  if ok then return true, result end
  if type(result) == "string" and result:find("module '" .. name .. "' not found", 1, true) then
    return false, result
  end
  error(result, 0)
end

function api.load_plugin(name)
  local found, handler = load_module_if_exists("kong.plugins." .. name .. ".handler")
  if not found then return nil end
  local has_schema, schema = load_module_if_exists("kong.plugins." .. name .. ".schema")
  if not has_schema then error("no configuration schema found for plugin: " .. name, 0) end
  return handler, schema
end

function api.encode_json(value)
  local encoded, err = cjson.encode(value)
  if encoded == nil then error(err, 0) end
  return encoded
end

-- cjson.safe.encode as Kong's PDK calls it: the JSON text, or nil and lua-cjson's message
function api.cjson_encode(value) return cjson.encode(value) end

-- kong/db/schema/init.lua validators.match/not_match test `value:match(pattern)`. string.match,
-- not string.find: find does a plain search when the pattern has no magic character, so a
-- malformed pattern such as "a)" would pass where Kong raises "invalid pattern capture".
-- true/false, or nil and Lua's message for a malformed pattern
function api.find(value, pattern)
  local ok, m = pcall(string.match, value, pattern)
  if not ok then return nil, m end
  return m ~= nil
end

-- kong/pdk/log.lua edit_result: apply kong.log.set_serialize_value() edits, then cjson-encode
function api.serialize(rstate, root)
  for _, item in ipairs(rstate.serialize_values) do
    local key, mode = item.key, item.mode
    local node, start = root, 1
    for i = 2, #key do
      if key:byte(i) == 46 then  -- "."
        local subkey = key:sub(start, i - 1)
        start = i + 1
        if node[subkey] == nil then
          if mode == "replace" then node = nil break end
          node[subkey] = {}
        elseif type(node[subkey]) ~= "table" then
          error("The key '" .. key .. "' could not be used as a serialize value. Subkey '" .. subkey ..
                "' is not a table. It's " .. tostring(node[subkey]), 0)
        end
        node = node[subkey]
      end
    end
    if type(node) == "table" then
      local last = key:sub(start)
      if mode == "set" or (mode == "add" and node[last] == nil)
         or (mode == "replace" and node[last] ~= nil) then
        node[last] = item.value
      end
    end
  end
  return api.encode_json(root)
end

-- run fn(a, b) as plugin `name`'s `phase` of the request, in a coroutine (kong.response.exit yields
-- out): "ok", "exit" or "error" and its message. The coroutines are reused: one that ran its function
-- to the end yields DONE and waits for the next (a new coroutine per phase cost more than the phase);
-- one that raised, exited or yielded anything else is dropped.
local DONE = {}
local idle, n_idle = {}, 0
local function worker(fn, a, b)
  while true do
    fn(a, b)
    fn, a, b = coroutine.yield(DONE)
  end
end
local function resume(rstate, phase, name, fn, a, b)
  rstate.phase = phase
  rstate.plugin = api.namespace(rstate, name)
  local co
  if n_idle > 0 then
    co = idle[n_idle]
    idle[n_idle], n_idle = nil, n_idle - 1
  else
    co = coroutine.create(worker)
  end
  local previous = current
  current = rstate
  local ok, res = coroutine.resume(co, fn, a, b)
  current = previous
  if not ok then return "error", tostring(res) end
  if res == DONE then
    if n_idle < 64 then idle[n_idle + 1], n_idle = co, n_idle + 1 end
    return "ok", ""
  end
  if res == EXIT then return "exit", "" end
  return "error", "attempt to yield from a plugin"
end

-- a Lua plugin's phase: handler[phase](handler, conf), inside a coroutine like kong.response.exit needs
function api.run_handler(rstate, phase, name, handler, conf)
  return resume(rstate, phase, name, handler[phase], handler, conf)
end

-- kong.ctx.plugin: one table per plugin and request
function api.namespace(rstate, name)
  local ns = rstate.plugins[name]
  if ns == nil then
    ns = {}
    rstate.plugins[name] = ns
  end
  return ns
end

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
  return { handle = handle, shared = {}, ngx_ctx = {}, plugins = {}, plugin = {}, arg = {},
           serialize_values = {}, phase = "rewrite" }
end

local function run_entries(entries)
  for i = 1, #entries do run_entry(entries[i]) end
end

function api.run(rstate, phase, entries, name)
  return resume(rstate, phase, name, run_entries, entries)
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

    def close(self) -> None:
        """The request is over: drop the Lua table's link back to the request. The request holds
        the table and the table its request, and that cycle crosses the Lua registry, where neither
        Python's nor Lua's collector can see it: without this, every request stayed in memory."""
        self.table[b"handle"] = None

    def shared_get(self, key: Any) -> Any:
        return self._engine.lua_to_py(self._engine._shared_get(self.table, self._engine.py_to_lua(key)))

    def shared_set(self, key: Any, value: Any) -> None:
        self._engine._shared_set(self.table, self._engine.py_to_lua(key), self._engine.py_to_lua(value))

    def shared_snapshot(self) -> dict[Any, Any]:
        value = self._engine.lua_to_py(self.table[b"shared"])
        return value if isinstance(value, dict) else {}

    def take_exit(self) -> LuaExit | None:
        raw = self.table[b"exit"]
        if raw is None:
            return None
        self.table[b"exit"] = None
        headers = self._engine.lua_to_py(raw[b"headers"]) if raw[b"headers"] is not None else None
        body = raw[b"body"]
        if body is not None and not isinstance(body, bytes):  # a table: lua-cjson encodes it as is
            encoded, err = self._engine.try_encode_json(body)
            if encoded is None:
                raise LuaError(EXIT_BODY_ENCODING_FAILED + (err or ""))
            body = JsonBody(encoded)
        return LuaExit(
            status=int(raw[b"status"]),
            body=body,
            headers=headers if isinstance(headers, dict) else None,
        )

    @property
    def arg(self) -> Any:
        return self.table[b"arg"]

    @property
    def engine(self) -> LuaEngine:
        return self._engine


@dataclass
class LuaPlugin:
    """A Lua plugin loaded from the Lua path: its handler table and what Kong checks of it."""

    name: str
    handler: Any
    priority: int
    version: str
    phases: frozenset[str]
    config_fields: list[Any]
    _conf_tables: dict[int, Any] = field(default_factory=dict)


def _cpath(extra: str | None) -> str:
    parts = [extra.replace(";;", ";") if extra else ""]
    for entry in SYSTEM_CPATHS:
        parts.append(entry if entry.endswith(".so") else f"{entry}/?.so")
    return ";".join(p for p in parts if p) + ";"


def _entity_of(handle: LuaHost, kind: bytes) -> Any:
    return handle.route_entity() if kind == b"route" else handle.service_entity()


def _entity_key(obj: Any) -> bytes | None:
    """Which of kong.router's cached tables is ``obj``'s (None: no entity)."""
    return None if obj is None else f"{type(obj).__name__}:{obj.id}:{hash(obj)}".encode()


class LuaEngine:
    """One Lua VM per gateway; Lua runs synchronously on the event loop thread."""

    def __init__(
        self,
        clock: Callable[[], float],
        package_path: str | None = None,
        package_cpath: str | None = None,
    ) -> None:
        self.runtime = _lupa.LuaRuntime(
            encoding=None,
            register_eval=False,
            register_builtins=False,
            unpack_returned_tuples=True,
            attribute_filter=self._deny_attributes,
        )
        self._lua_type = _lupa.lua_type
        package = self.runtime.globals()[b"package"]
        default_path = package[b"path"].decode()
        path = package_path or DEFAULT_PACKAGE_PATH
        package[b"path"] = (path.replace(";;", f";{default_path};") if ";;" in path else path).encode()
        package[b"cpath"] = (_cpath(package_cpath) + package[b"cpath"].decode()).encode()
        host = self.runtime.table_from(
            {
                b"request_header": lambda h, name: _b(h.lua_request_header(_s(name))),
                b"request_headers": lambda h, n: self._headers_table(h.lua_request_headers(int(n))),
                b"request_target": lambda h: _b(h.lua_request_target()),
                b"request_body": lambda h, limit: h.lua_request_body(limit),
                b"encode_base64": lambda data, no_padding: _encode_base64(data, no_padding),
                b"decode_base64": lambda data: _decode_base64(data),
                b"request_method": lambda h: _b(h.lua_request_method()),
                b"request_path": lambda h: _b(h.lua_request_path()),
                b"ngx_var": lambda h, name: _b(h.lua_ngx_var(_s(name))),
                b"response_status": lambda h: h.lua_response_status(),
                b"response_source": lambda h: _b(h.lua_response_source()),
                b"response_header": lambda h, name: _b(h.lua_response_header(_s(name))),
                b"set_response_header": self._set_response_header,
                b"set_upstream_header": lambda h, name, value: h.lua_set_upstream_header(_s(name), _s(value)),
                b"entity_key": lambda h, kind: _entity_key(_entity_of(h, kind)),
                b"entity": lambda h, kind: self.py_to_lua(entity(_entity_of(h, kind))),
                b"log": lambda h, level, msg: h.lua_log(_s(level), _s(msg)),
                b"now": clock,
            }
        )
        try:
            self.api = self.runtime.execute(_BOOTSTRAP, host)
        except _lupa.LuaError as exc:
            if b"cjson" in str(exc).encode():
                raise LuaSetupError(
                    "lua-cjson (the C module Kong ships) is not installed or not on the Lua C path: "
                    "install Debian's lua-cjson (apt-get install lua-cjson) or set KONG_LUA_PACKAGE_CPATH"
                ) from exc
            raise
        # the functions every request calls, looked up once (each lookup through lupa is a Lua
        # table read and a new Python wrapper: about 2 us, several times a request)
        api = self.api
        self._run_handler, self._run, self._new_request = api.run_handler, api.run, api.new_request
        self._shared_get, self._shared_set, self._set_phase = api.shared_get, api.shared_set, api.set_phase

    @staticmethod
    def _deny_attributes(obj: Any, attr_name: Any, is_setting: bool) -> Any:
        raise AttributeError("access to Python attributes is not allowed from Lua")

    def _headers_table(self, headers: dict[str, Any]) -> Any:
        """``kong.request.get_headers()``'s table (a string per name, a list for a repeated one),
        built by lupa in one call: :meth:`py_to_lua`'s walk took five times as long, on every
        request aws-masker-collect reads."""
        return self.runtime.table_from(
            {
                name.encode(): value.encode() if isinstance(value, str) else [v.encode() for v in value]
                for name, value in headers.items()
            },
            recursive=True,
        )

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
        return LuaRequestState(self, self._new_request(host))

    def run(self, state: LuaRequestState, phase: str, chunks: list[LuaChunk], plugin: str = "") -> LuaOutcome:
        """Run serverless ``chunks`` in ``phase`` (``plugin`` names their ``kong.ctx.plugin``)."""
        entries = self.runtime.table_from([c.handle for c in chunks])
        kind, message = self._run(state.table, _ascii(phase), entries, _ascii(plugin))
        return LuaOutcome(_s(kind), _s(message))

    # -- Lua plugins -----------------------------------------------------------------------------
    def load_plugin(self, name: str) -> LuaPlugin | None:
        """``kong.plugins.<name>.handler`` and ``.schema`` from the Lua path; None if there is none."""
        try:
            loaded = self.api.load_plugin(name.encode())
        except _lupa.LuaError as exc:
            message = _s(exc.args[0] if exc.args else exc)
            raise LuaSetupError(f"error loading plugin {name}: {message}") from exc
        handler, schema = loaded if isinstance(loaded, tuple) else (loaded, None)
        if handler is None:
            return None
        if self._lua_type(handler) != "table":
            raise LuaSetupError(f"plugin {name}: its handler module must return a table")
        priority, version = handler[b"PRIORITY"], handler[b"VERSION"]
        if isinstance(priority, bool) or not isinstance(priority, int | float) or priority != int(priority):
            raise LuaSetupError(
                f'Plugin "{name}" cannot be loaded because its PRIORITY field is not a valid integer '
                f'number, got: "{_s(priority)}".'
            )
        if not isinstance(version, bytes):
            raise LuaSetupError(f'Plugin "{name}" cannot be loaded because its VERSION field is not a string')
        phases = frozenset(p for p in (*LUA_PHASES, "response") if handler[p.encode()] is not None)
        if "response" in phases:
            raise LuaSetupError(
                f"plugin {name}: a Lua `response` phase is not supported by the local gateway"
            )
        return LuaPlugin(
            name=name,
            handler=handler,
            priority=int(priority),
            version=version.decode(),
            phases=phases,
            config_fields=_config_fields(name, self.lua_to_plain(schema)),
        )

    def conf_table(self, plugin: LuaPlugin, seq: int, config: dict[str, Any]) -> Any:
        """The Lua table a handler gets as ``conf`` (built once per configuration version)."""
        table = plugin._conf_tables.get(seq)
        if table is None:
            table = self.py_to_lua(config)
            plugin._conf_tables[seq] = table
        return table

    def run_handler(self, state: LuaRequestState, plugin: LuaPlugin, phase: str, conf: Any) -> LuaOutcome:
        kind, message = self._run_handler(
            state.table, _ascii(phase), _ascii(plugin.name), plugin.handler, conf
        )
        return LuaOutcome(_s(kind), _s(message))

    # -- JSON ------------------------------------------------------------------------------------
    def try_encode_json(self, value: Any) -> tuple[bytes, None] | tuple[None, str]:
        """``cjson.safe.encode``, as Kong's PDK calls it: ``(json, None)``, or ``(None, message)``
        with lua-cjson's message ("Cannot serialise function: type not supported"). ``value`` is
        a Lua table, or a Lua value as :meth:`py_to_lua` takes it.

        Numbers keep 14 significant digits where Kong's OpenResty lua-cjson keeps 16
        (``encode_number_precision``, see the bootstrap): ``1/3`` is ``0.33333333333333`` here and
        ``0.3333333333333333`` on Kong, ``2^53`` is ``9.007199254741e+15`` and ``9007199254740992``.
        """
        if self._lua_type(value) is None:
            value = self.py_to_lua(value)
        result = self.api.cjson_encode(value)
        if isinstance(result, tuple):
            return None, _s(result[1])
        return bytes(result), None

    def lua_find(self, value: str | bytes, pattern: str | bytes) -> bool:
        """Whether the Lua pattern ``pattern`` matches somewhere in ``value``, as Kong's schema
        ``match`` rule tests it (``value:match(pattern)``) by LuaJIT itself; a malformed pattern
        raises ``ValueError`` with Lua's message ("malformed pattern (ends with '%')")."""
        result = self.api.find(_b(value), _b(pattern))
        if isinstance(result, tuple):
            raise ValueError(_s(result[1]))
        return bool(result)

    def serialize(self, state: LuaRequestState, base: dict[str, Any]) -> bytes:
        """``kong.log.serialize()`` as JSON: ``base`` with the request's ``set_serialize_value``
        edits applied, encoded by lua-cjson (Lua tables set by plugins are read now, not copied)."""
        return bytes(self.api.serialize(state.table, self.py_to_lua(base)))

    def set_phase(self, state: LuaRequestState, phase: str) -> None:
        self._set_phase(state.table, _ascii(phase))

    # -- value conversion ------------------------------------------------------------------------
    def py_to_lua(self, value: Any) -> Any:
        """msgpack-decoded (Lua) value -> Lua value; ``None`` entries leave holes like Kong's unpacker."""
        if value is None or isinstance(value, bool | float):
            return value
        if isinstance(value, int):
            return value if -(2**63) <= value < 2**63 else float(value)  # a Lua number is a double
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

    def lua_to_plain(self, value: Any) -> Any:
        """A Lua value as plain Python (strings as ``str``), for schemas read from Lua files."""
        value = self.lua_to_py(value)

        def plain(v: Any) -> Any:
            if isinstance(v, bytes):
                return v.decode("utf-8", "replace")
            if isinstance(v, list):
                return [plain(x) for x in v]
            if isinstance(v, dict):
                return {plain(k): plain(x) for k, x in v.items()}
            return v

        return plain(value)

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


@functools.lru_cache(maxsize=256)
def _ascii(name: str) -> bytes:
    """A phase or plugin name as a Lua string (the same few names, every call)."""
    return name.encode()


def _b(value: str | bytes | None) -> bytes | None:
    if value is None or isinstance(value, bytes):
        return value
    return value.encode("utf-8")


def _s(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return "" if value is None else str(value)


def _config_fields(name: str, schema: Any) -> list[Any]:
    """The ``config`` record's fields of a Lua plugin schema (MetaSubSchema: ``fields`` with a
    ``config`` record)."""
    fields = schema.get("fields") if isinstance(schema, dict) else None
    if not isinstance(fields, list):
        raise LuaSetupError(f"plugin {name}: its schema has no fields")
    for entry in fields:
        if isinstance(entry, dict) and isinstance(entry.get("config"), dict):
            config = entry["config"]
            if config.get("type") != "record":
                break
            config_fields = config.get("fields", [])
            return config_fields if isinstance(config_fields, list) else []
    raise LuaSetupError(f"plugin {name}: its schema must have a config field of type record")
