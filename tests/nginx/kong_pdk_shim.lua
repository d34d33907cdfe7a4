-- A minimal stand-in for Kong's PDK under plain lua-nginx-module, for tests/nginx only.
--
-- It provides exactly what kong/plugins/aws-masker-restore/handler.lua calls, with Kong's semantics
-- (kong/pdk/ctx.lua, log.lua, response.lua) and Kong's phase checks, and nothing more:
--   kong.ctx.shared, kong.ctx.plugin          per request (ngx.ctx); .plugin also per plugin
--   kong.log.err/warn/notice                  ngx.log, prefixed with the plugin's name
--   kong.log.set_serialize_value              kept in ngx.ctx.serialize_values (by reference, so
--                                             later updates show when the log phase serializes)
--   kong.response.get_source                  "service" once the access phase decided to proxy
--   kong.response.get_header / clear_header   ngx.resp.get_headers() / ngx.header
--   kong.response.get_status                  ngx.status
--   kong.request.get_method                   ngx.req.get_method()
--   kong.request.get_headers(max)             ngx.req.get_headers(max) (Kong's bounds on max)
--   kong.request.get_path_with_query          ngx.var.request_uri
--   kong.request.get_raw_body(max)            ngx.req.read_body + get_body_data; a body nginx
--                                             spilled to a file read back as Kong 3.9 does (up
--                                             to max; 0: any size; no max: nil and Kong's message)
--   kong.service.request.set_header           ngx.req.set_header (the upstream request's header)
--   kong.router.get_route / get_service       fixed entities named "nginx-route" / "nginx-service"
-- run() calls a plugin's phase method the way Kong's plugin iterator does; serialize() is the part
-- of kong.log.serialize() that applies the values set above.

local ngx = ngx

local HEADER_BODY_LOG = { header_filter = true, body_filter = true, log = true }
local WITH_CTX = { rewrite = true, access = true, header_filter = true, body_filter = true, log = true }
local REWRITE_ACCESS_HEADER = { rewrite = true, access = true, header_filter = true }
local MAX_HEADERS = 100

local function check_phase(allowed)
  local phase = ngx.get_phase()
  if not allowed[phase] then
    error("function cannot be called in " .. phase .. " phase", 3)
  end
end

local SHARED_KEY, PLUGIN_KEY = {}, {}

local ctx = setmetatable({}, {
  __index = function(_, k)
    if k ~= "shared" and k ~= "plugin" then return nil end
    check_phase(WITH_CTX)
    local nctx = ngx.ctx
    local store
    if k == "shared" then
      store = nctx[SHARED_KEY] or {}
      nctx[SHARED_KEY] = store
    else
      local name = nctx.plugin_name
      if name == nil then error("kong.ctx.plugin used outside a plugin's phase handler", 2) end
      local by_plugin = nctx[PLUGIN_KEY] or {}
      nctx[PLUGIN_KEY] = by_plugin
      store = by_plugin[name] or {}
      by_plugin[name] = store
    end
    return store
  end,
})

local function logger(level)
  return function(...)
    local parts = { "[", ngx.ctx.plugin_name or "kong", "] " }
    for i = 1, select("#", ...) do parts[#parts + 1] = tostring((select(i, ...))) end
    ngx.log(level, table.concat(parts))
  end
end

local log = { err = logger(ngx.ERR), warn = logger(ngx.WARN), notice = logger(ngx.NOTICE) }

function log.set_serialize_value(key, value, options)
  check_phase(WITH_CTX)
  if type(key) ~= "string" then error("key must be a string", 2) end
  local mode = options and options.mode or "set"
  if mode ~= "set" then error("this shim implements mode 'set' only", 2) end
  local values = ngx.ctx.serialize_values or {}
  values[#values + 1] = { key = key, value = value, mode = mode }
  ngx.ctx.serialize_values = values
end

local response = {}

function response.get_source()
  check_phase(HEADER_BODY_LOG)
  local nctx = ngx.ctx
  if nctx.KONG_UNEXPECTED then return "error" end
  if nctx.KONG_EXITED then return "exit" end
  if nctx.KONG_PROXIED then return "service" end
  return "error"
end

function response.get_header(name)
  check_phase(HEADER_BODY_LOG)
  local value = ngx.resp.get_headers(MAX_HEADERS)[name]
  if type(value) == "table" then return value[1] end
  return value
end

function response.clear_header(name)
  check_phase(REWRITE_ACCESS_HEADER)
  if ngx.headers_sent then error("headers have already been sent", 2) end
  ngx.header[name] = nil
end

function response.get_status()
  check_phase(HEADER_BODY_LOG)
  return ngx.status
end

local request = {}

function request.get_method()
  check_phase(WITH_CTX)
  return ngx.req.get_method()
end

function request.get_headers(max_headers)
  check_phase(WITH_CTX)
  if max_headers == nil then return ngx.req.get_headers() end
  if type(max_headers) ~= "number" then error("max_headers must be a number", 2) end
  if max_headers < 1 then error("max_headers must be >= 1", 2) end
  if max_headers > 1000 then error("max_headers must be <= 1000", 2) end
  return ngx.req.get_headers(max_headers)
end

function request.get_path_with_query()
  check_phase(WITH_CTX)
  return ngx.var.request_uri
end

function request.get_raw_body(max_allowed_file_size)
  check_phase({ rewrite = true, access = true })
  ngx.req.read_body()
  local body = ngx.req.get_body_data()
  if body then return body end
  local path = ngx.req.get_body_file()
  if not path then return "" end
  if not max_allowed_file_size or max_allowed_file_size < 0 then
    return nil, "request body did not fit into client body buffer, consider raising 'client_body_buffer_size'"
  end
  local file = assert(io.open(path, "rb"))
  local size = file:seek("end") or 0
  if max_allowed_file_size > 0 and size > max_allowed_file_size then
    file:close()
    return nil, ("request body file too big: %d > %d"):format(size, max_allowed_file_size)
  end
  file:seek("set")
  local data = file:read("*a")
  file:close()
  return data
end

local service = { request = {} }

function service.request.set_header(name, value)
  check_phase({ rewrite = true, access = true })
  ngx.req.set_header(name, value)
end

local ROUTER_PHASES = { access = true, header_filter = true, body_filter = true, log = true }
local router = {}

function router.get_route()
  check_phase(ROUTER_PHASES)
  return { id = "00000000-0000-0000-0000-000000000001", name = "nginx-route" }
end

function router.get_service()
  check_phase(ROUTER_PHASES)
  return { id = "00000000-0000-0000-0000-000000000002", name = "nginx-service" }
end

local kong = { ctx = ctx, log = log, response = response, request = request, service = service,
               router = router }

-- Kong's plugin iterator: the plugin's namespace for kong.ctx.plugin and kong.log, then its method
local function run(name, handler, phase, conf)
  local nctx = ngx.ctx
  nctx.plugin_name = name
  handler[phase](handler, conf)
  nctx.plugin_name = nil
end

-- the values set with kong.log.set_serialize_value, applied to a fresh root (keys without dots)
local function serialize()
  local root = {}
  for _, item in ipairs(ngx.ctx.serialize_values or {}) do
    if string.find(item.key, ".", 1, true) then error("this shim does not split dotted keys") end
    root[item.key] = item.value
  end
  return root
end

return { kong = kong, run = run, serialize = serialize }
