-- Restore tokens in an Anthropic Messages SSE stream, chunk by chunk.
--
-- The Lua twin of plugin/aws_masker/sse.py (read its docstring): per content block, the longest tail
-- of the text that could still become one of this request's tokens moves to the block's next delta;
-- the delta that produced it is held back (one event) until then. Deltas are edited in place (only
-- the bytes of their text string change); other events get whole tokens restored in place. At most
-- `max_held` bytes are held; past that the rest of the stream passes on with its tokens.

local jsonspan = require "kong.plugins.aws-masker-restore.jsonspan"

local byte, sub, find, concat = string.byte, string.sub, string.find, table.concat

local DELTA_FIELDS = { text_delta = "text", input_json_delta = "partial_json", thinking_delta = "thinking" }

-- the first event end (\r\n\r\n, \n\n or \r\r, tried in that order at the leftmost place) at or
-- after `init`: its first and last positions
local function event_end(s, init)
  local i = init
  while true do
    local a = find(s, "[\r\n]", i)
    if not a then return nil end
    local b1, b2, b3 = byte(s, a + 1, a + 3)
    if byte(s, a) == 13 then
      if b1 == 10 and b2 == 13 and b3 == 10 then return a, a + 3 end
      if b1 == 13 then return a, a + 1 end
    elseif b1 == 10 then
      return a, a + 1
    end
    i = a + 1
  end
end

-- the payload span { first, stop } of the event's only "data:" line (one leading space dropped), or
-- nil if the event has no data line or several
local function single_data_line(raw)
  local found
  local pos, n = 1, #raw
  while pos <= n do
    local a = find(raw, "[\r\n]", pos)
    local line_stop = a or n + 1
    local next_pos
    if not a then
      next_pos = n + 1
    elseif byte(raw, a) == 13 and byte(raw, a + 1) == 10 then
      next_pos = a + 2
    else
      next_pos = a + 1
    end
    if line_stop - pos >= 5 and sub(raw, pos, pos + 4) == "data:" then
      if found then return nil end
      local first = pos + 5
      if first < line_stop and byte(raw, first) == 32 then first = first + 1 end
      found = { first, line_stop }
    end
    pos = next_pos
  end
  return found
end

local SSERestorer = {}
SSERestorer.__index = SSERestorer

function SSERestorer.new(tokens, max_held)
  return setmetatable({
    tokens = tokens, max_held = max_held, passed = false,
    buf = "", scanned = 0, consumed = 0,
    queue = {}, head = 1, tail = 0, queued = 0,
    held = {},
  }, SSERestorer)
end

local function finalize(event, first, stop, text)
  local raw = event.raw
  if sub(raw, first, stop - 1) == text then
    event.out = raw
  else
    event.out = sub(raw, 1, first - 1) .. text .. sub(raw, stop)
  end
end

function SSERestorer:release(index)
  local h = self.held[index]
  self.held[index] = nil
  finalize(h.event, h.first, h.stop, h.restored .. h.carry)
end

function SSERestorer:delta(event, index, first, stop)
  local tokens = self.tokens
  local h = self.held[index]
  local carry = ""
  if h then
    self.held[index] = nil
    carry = h.carry
    finalize(h.event, h.first, h.stop, h.restored)
  end
  local combined = carry .. sub(event.raw, first, stop - 1)
  local keep = tokens:carry_len(combined)
  local restored = tokens:restore(sub(combined, 1, #combined - keep))
  if keep > 0 then
    self.held[index] = { event = event, first = first, stop = stop, restored = restored,
                         carry = sub(combined, #combined - keep + 1) }
  else
    finalize(event, first, stop, restored)
  end
end

function SSERestorer:handle(raw)
  local event = { raw = raw }
  self.tail = self.tail + 1
  self.queue[self.tail] = event
  self.queued = self.queued + #raw
  local info
  local span = single_data_line(raw)
  if span then info = jsonspan.scan(raw, span[1], span[2]) end
  if info and info.type == "content_block_delta" and info.index then
    local fld = info.delta_type and DELTA_FIELDS[info.delta_type]
    local field_span = fld and info.fields[fld]
    if field_span then
      self:delta(event, info.index, field_span[1], field_span[2])
      return
    end
  end
  if info and info.type == "content_block_stop" and info.index and self.held[info.index] then
    self:release(info.index)
  end
  event.out = self.tokens:restore(raw)
end

function SSERestorer:drain()
  local out, n = {}, 0
  local queue = self.queue
  while self.head <= self.tail and queue[self.head].out do
    local event = queue[self.head]
    queue[self.head] = nil
    self.head = self.head + 1
    self.queued = self.queued - #event.raw
    n = n + 1
    out[n] = event.out
  end
  return concat(out)
end

function SSERestorer:feed(data)
  if self.passed or self.tokens.empty then return data end
  self.buf = self.buf .. data
  local buf = self.buf
  local pos = 1
  while true do
    local _, last = event_end(buf, math.max(pos, self.scanned - 2))
    if not last then break end
    self.consumed = last  -- from here on the event is in the queue (see give_up)
    self:handle(sub(buf, pos, last))
    pos = last + 1
  end
  self.buf = sub(buf, pos)
  self.scanned, self.consumed = #self.buf, 0
  local out = self:drain()
  if #self.buf + self.queued > self.max_held then
    return out .. self:give_up()
  end
  return out
end

function SSERestorer:finish()
  if self.passed or self.tokens.empty then return "" end
  if #self.buf > 0 then
    self.consumed = #self.buf
    self:handle(self.buf)  -- a last event without its blank line
    self.buf, self.consumed = "", 0
  end
  for index in pairs(self.held) do self:release(index) end
  return self:drain()
end

-- release everything as it stands and pass the rest of the stream on untouched; an event whose
-- restore is not final goes out as received
function SSERestorer:give_up()
  for index in pairs(self.held) do
    local ok = pcall(self.release, self, index)
    if not ok then self.held[index] = nil end
  end
  local out, n = {}, 0
  for k = self.head, self.tail do
    local event = self.queue[k]
    n = n + 1
    out[n] = event.out or event.raw
    self.queue[k] = nil
  end
  n = n + 1
  out[n] = sub(self.buf, self.consumed + 1)
  self.head, self.tail, self.queued, self.buf, self.consumed = 1, 0, 0, "", 0
  self.passed = true
  return concat(out)
end

return { SSERestorer = SSERestorer, single_data_line = single_data_line, event_end = event_end }
