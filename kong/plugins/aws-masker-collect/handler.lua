-- aws-masker-collect: hands aws-masker (the Python plugin) the request in one piece.
--
-- Every PDK call an external plugin makes is a round trip to its plugin server. Reading the request
-- takes aws-masker three of them (kong.request.get_headers, get_path_with_query, get_raw_body);
-- this plugin makes the same three calls in Lua, where they cost no round trip, and leaves the
-- result in kong.ctx.shared.aws_masker_request, which aws-masker reads with one call:
--
--   {"v":1,"target":"/v1/messages?x=1","headers":{"content-type":"application/json",...},
--    "body":"<base64>"}
--
-- target and headers are what those calls return (headers: lower-case names, a list for a repeated
-- header, at most 1000 header lines as aws-masker asks for). The body is base64, because
-- kong.ctx.shared crosses to the plugin server as a UTF-8 string and a request body need not be
-- UTF-8 (a target or header value that is not UTF-8 fails there exactly as it does through
-- aws-masker's own get_headers call: the connection drops and the guard refuses the request). A
-- body over max_inline_body_bytes (0: every body) is left out, and aws-masker then reads it itself. Nothing here masks anything or decides anything: without this
-- plugin (or when its value is missing or unreadable) aws-masker reads the request with its own
-- calls, and the masking is the same.
--
-- Its priority is just above aws-masker's (771), so it sees the request as every plugin that
-- changes it (request-transformer 801, ai-prompt-template 773, ...) left it. ai-prompt-decorator
-- has 772 too, and Kong does not order equal priorities: aws-masker always sends upstream the body
-- it masked, so with that plugin on the same request its additions could be lost, never sent
-- unmasked. Leave this plugin off where ai-prompt-decorator runs.

local cjson = require "cjson.safe"

local KEY = "aws_masker_request"
local VERSION = 1
local MAX_HEADERS = 1000  -- as aws-masker's own kong.request.get_headers(1000)

local encode_base64 = ngx.encode_base64
local sub = string.sub

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
  local body
  local limit = conf.max_inline_body_bytes
  if limit > 0 then
    -- a body nginx spilled to disk (past client_body_buffer_size, 8k by default) is read back from
    -- its file when it is no larger than limit (Kong 3.8+; older Kong returns nil); nil: aws-masker
    -- reads the body itself
    body = kong.request.get_raw_body(limit)
    if body ~= nil and #body > limit then
      body = nil
    end
  end
  local encoded = cjson.encode(entry)
  if encoded == nil then
    return  -- unencodable (it should not happen): aws-masker reads the request itself
  end
  if body ~= nil then
    -- base64 needs no escaping in a JSON string, so it is spliced in as it is: lua-cjson would copy
    -- it character by character and write every "/" as "\/" (for an 8 KB body about ten times the
    -- splice's time, and a parse in aws-masker three times as slow). The object cjson wrote ends
    -- with its closing brace.
    encoded = sub(encoded, 1, -2) .. ',"body":"' .. encode_base64(body) .. '"}'
  end
  kong.ctx.shared[KEY] = encoded
end

return AwsMaskerCollect
