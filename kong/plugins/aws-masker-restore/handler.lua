-- aws-masker-restore: puts the originals back into the response, chunk by chunk, as it streams.
--
-- aws-masker (the Python plugin) masks the request in `access` and leaves this request's token map
-- in kong.ctx.shared.aws_masker (a JSON string: {"v":2,"tokens":{token: original},"cat":{kind:
-- category},"masked":{...counts}}). Kong gives external plugins no body filter, so the restore is
-- this small Lua plugin. access (after aws-masker's: lower priority) decodes the map once and, when
-- there are tokens, asks the upstream for an uncompressed answer (in Lua, so aws-masker saves a
-- round trip); header_filter clears Content-Length; body_filter restores each chunk as it passes
-- (restore.lua for JSON and text, sse.lua for event streams), holding back only what could still
-- become a token. Only this request's tokens are restored; any other token-shaped text passes
-- untouched.
--
-- A compressed upstream body (aws-masker asks for identity, so only an upstream that ignores
-- Accept-Encoding sends one) passes with its tokens, never corrupted. So does the rest of a response
-- whose restore fails or would hold more than max_held_bytes. Either way no original is exposed.
--
-- The counts (never values) go into kong.log.serialize() as `aws_masker`, for any logging plugin,
-- and, when aws-masker's monitoring is on, into kong.ctx.shared.aws_masker_event in the log phase,
-- which Kong runs before aws-masker's own log phase (a timer): one small string for its events.

local cjson = require "cjson.safe"
local restore = require "kong.plugins.aws-masker-restore.restore"
local sse = require "kong.plugins.aws-masker-restore.sse"

local STATE_KEY = "aws_masker"
local EVENT_KEY = "aws_masker_event"  -- this request's counts for aws-masker's monitoring events
local STATE_VERSION = 2
local SERIALIZE_KEY = "aws_masker"

local lower, match, clock, floor, tostring = string.lower, string.match, os.clock, math.floor, tostring

local AwsMaskerRestore = {
  -- Low, so that every plugin that transforms or inspects the response body (response-transformer
  -- 800, ai-proxy 770, ...) sees tokens, and the originals appear only on the way to the client.
  PRIORITY = 5,
  VERSION = "0.2.0",
}

local function media_type(content_type)
  return lower(match(match(content_type or "", "^[^;]*"), "^%s*(.-)%s*$"))
end

-- this request's state from aws-masker, decoded once (nil if there is none or it is unreadable)
local function state_of(ctx)
  if ctx.state ~= nil then
    return ctx.state or nil
  end
  local raw = kong.ctx.shared[STATE_KEY]
  if type(raw) ~= "string" then
    ctx.state = false
    return nil  -- aws-masker did not process this request (the guard refuses it)
  end
  local state = cjson.decode(raw)
  if type(state) ~= "table" or state.v ~= STATE_VERSION or type(state.tokens) ~= "table" then
    kong.log.err("aws-masker-restore: aws-masker's state is unreadable; the response keeps its tokens")
    ctx.state = false
    return nil
  end
  ctx.state = state
  return state
end

function AwsMaskerRestore:access(conf)
  local state = state_of(kong.ctx.plugin)
  if state ~= nil and next(state.tokens) ~= nil then
    -- restoring needs the answer uncompressed (a compressed one would pass with its tokens)
    kong.service.request.set_header("Accept-Encoding", "identity")
  end
end

function AwsMaskerRestore:header_filter(conf)
  local state = state_of(kong.ctx.plugin)
  if state == nil then
    return
  end
  local restored = { count = 0, categories = {}, processing_time_ms = 0, body_size = 0,
                     restore = "not_run" }
  kong.ctx.plugin.restored = restored
  -- the table is read when the log phase serializes, so the updates below show
  kong.log.set_serialize_value(SERIALIZE_KEY, { masked = state.masked, restored = restored })
  if kong.response.get_source() ~= "service" then
    return  -- Kong's own response (an exit, an error page): there is nothing to restore
  end
  local status = kong.response.get_status()
  if kong.request.get_method() == "HEAD" or status == 204 or status == 304 then
    restored.restore = "complete"  -- no body: nginx runs no body filter, Content-Length stays right
    return
  end
  local ctx = kong.ctx.plugin
  ctx.record = restored
  ctx.clock = 0  -- seconds spent restoring (os.clock)
  restored.restore = "incomplete"  -- until the end of the body is seen
  if next(state.tokens) == nil then
    return
  end
  local encoding = kong.response.get_header("Content-Encoding")
  if encoding ~= nil and lower(encoding) ~= "identity" then
    restored.restore = "passed"
    kong.log.warn("aws-masker-restore: the upstream body is compressed (", encoding, "); ",
                  "it passes with its tokens")
    return
  end
  local mtype = media_type(kong.response.get_header("Content-Type"))
  local is_sse = mtype == "text/event-stream"
  local escaped = is_sse or mtype == "application/json" or match(mtype, "%+json$") ~= nil
  local tokens = restore.TokenMap.new(state.tokens, type(state.cat) == "table" and state.cat or {},
                                      escaped)
  restored.categories = tokens.counts
  if is_sse then
    ctx.restorer = sse.SSERestorer.new(tokens, conf.max_held_bytes)
  else
    ctx.restorer = restore.StreamRestorer.new(tokens)
  end
  ctx.tokens = tokens
  kong.response.clear_header("Content-Length")  -- the body is about to change length
end

function AwsMaskerRestore:body_filter(conf)
  local ctx = kong.ctx.plugin
  local record = ctx.record
  if record == nil then
    return
  end
  local chunk, eof = ngx.arg[1] or "", ngx.arg[2]
  local r = ctx.restorer
  if r ~= nil then
    local started = clock()
    local ok, out = pcall(r.feed, r, chunk)
    if ok and eof then
      local tail
      ok, tail = pcall(r.finish, r)
      out = ok and out .. tail or tail
    end
    if not ok then
      kong.log.err("aws-masker-restore: restoring failed (", tostring(out), "); ",
                   "the rest of the response keeps its tokens")
      local given, held = pcall(r.give_up, r)
      out = given and held or ""
      r.passed = true
    end
    ctx.clock = ctx.clock + clock() - started
    record.processing_time_ms = floor(ctx.clock * 1e6 + 0.5) / 1000  -- ms, 3 decimals
    record.count = ctx.tokens.total
    ngx.arg[1] = out
    chunk = out
  end
  record.body_size = record.body_size + #chunk
  if eof and record.restore == "incomplete" then
    record.restore = (r ~= nil and r.passed) and "passed" or "complete"
  end
end

function AwsMaskerRestore:log(conf)
  local state = state_of(kong.ctx.plugin)
  if state == nil or not state.events then
    return  -- monitoring is off: nothing to hand over
  end
  local route, service = kong.router.get_route(), kong.router.get_service()
  kong.ctx.shared[EVENT_KEY] = cjson.encode({
    request_id = ngx.var.kong_request_id,
    route = route and (route.name or route.id),
    service = service and (service.name or service.id),
    masked = state.masked,
    restored = kong.ctx.plugin.restored,
  })
end

return AwsMaskerRestore
