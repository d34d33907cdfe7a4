-- aws-masker-collect: hands aws-masker (the Python plugin) the request in one piece.
--
-- Every PDK call an external plugin makes is a round trip to its plugin server. Reading the request
-- takes aws-masker three of them (kong.request.get_headers, get_path_with_query, get_raw_body);
-- this plugin makes the same three calls in Lua, where they cost no round trip, and leaves the
-- result in kong.ctx.shared.aws_masker_request, which aws-masker reads with one call:
--
--   { v = 2, target = "/v1/messages?x=1", headers = { ["content-type"] = "application/json", ... },
--     body = "<the body, bytes 128-255 as two-byte UTF-8>" }
--
-- target and headers are what those calls return (headers: lower-case names, a list for a repeated
-- header, at most 1000 header lines as aws-masker asks for). The table reaches the plugin server as
-- a msgpack map, whose strings must be UTF-8 (Python drops the connection on any other), and a
-- request body need not be UTF-8: so every byte from 128 to 255 goes as the UTF-8 of the character
-- with that code (Latin-1 read as Unicode), and aws-masker gets the bytes back with
-- str.encode("latin-1"). ASCII, most JSON, passes unchanged; nothing has to be escaped or decoded
-- as base64 or JSON would. (A target or header value that is not UTF-8 fails there exactly as it
-- does through aws-masker's own get_headers call: the connection drops and the guard refuses the
-- request.) A body over max_inline_body_bytes (0: every body) is left out, and aws-masker then
-- reads it itself. Nothing here masks anything or decides anything: without this plugin (or when its
-- value is missing or unreadable) aws-masker reads the request with its own calls, and the masking
-- is the same.
--
-- Its priority is just above aws-masker's (771), so it sees the request as every plugin that
-- changes it (request-transformer 801, ai-prompt-template 773, ...) left it. ai-prompt-decorator
-- has 772 too, and Kong does not order equal priorities: aws-masker always sends upstream the body
-- it masked, so with that plugin on the same request its additions could be lost, never sent
-- unmasked. Leave this plugin off where ai-prompt-decorator runs.

local KEY = "aws_masker_request"
local VERSION = 2
local MAX_HEADERS = 1000  -- as aws-masker's own kong.request.get_headers(1000)

local ffi = require "ffi"
local bit = require "bit"

local rshift, band = bit.rshift, bit.band
local bytes_t = ffi.typeof("const uint8_t *")
local buffer_t = ffi.typeof("uint8_t[?]")

-- body with each byte from 128 to 255 written as the UTF-8 of the character with that code. A loop
-- over the bytes, which LuaJIT compiles: a Lua pattern ("[\128-\255]") takes about 15 ns a byte.
local function latin1_as_utf8(body)
  local n = #body
  local p = ffi.cast(bytes_t, body)
  for i = 0, n - 1 do
    if p[i] >= 128 then
      local out = buffer_t(2 * n)
      ffi.copy(out, p, i)
      local j = i
      for k = i, n - 1 do
        local b = p[k]
        if b < 128 then
          out[j] = b
          j = j + 1
        else
          out[j], out[j + 1] = 0xC0 + rshift(b, 6), 0x80 + band(b, 63)
          j = j + 2
        end
      end
      return ffi.string(out, j)
    end
  end
  return body  -- ASCII (most JSON) as it is
end

local AwsMaskerCollect = {
  PRIORITY = 772,
  VERSION = "0.2.0",
}

function AwsMaskerCollect:access(conf)
  local entry = {
    v = VERSION,
    target = kong.request.get_path_with_query(),
    headers = kong.request.get_headers(MAX_HEADERS),
  }
  local limit = conf.max_inline_body_bytes
  if limit > 0 then
    -- a body nginx spilled to disk (past client_body_buffer_size, 8k by default) is read back from
    -- its file when it is no larger than limit (Kong 3.8+; older Kong returns nil); nil: aws-masker
    -- reads the body itself
    local body = kong.request.get_raw_body(limit)
    if body ~= nil and #body <= limit then
      entry.body = latin1_as_utf8(body)
    end
  end
  kong.ctx.shared[KEY] = entry
end

return AwsMaskerCollect
