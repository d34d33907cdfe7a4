-- Restore one request's tokens in a body that arrives in chunks cut at any byte.
--
-- The Lua twin of plugin/aws_masker/restore.py (TokenMap, StreamRestorer); it must produce the same
-- bytes for the same chunks (tests/test_restore_lua.py). A token is AWS_<KIND>_<12 hex>; only the
-- tokens this request issued are restored, any other token-shaped text passes untouched.

local byte, sub, find, format, gsub = string.byte, string.sub, string.find, string.format, string.gsub
local concat, sort = table.concat, table.sort

local JSON_ESCAPES = { ['"'] = '\\"', ["\\"] = "\\\\", ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t",
                       ["\b"] = "\\b", ["\f"] = "\\f" }

-- `value` as the inside of a JSON string, exactly as Python's json.dumps(ensure_ascii=False) writes
-- it: quote, backslash and control characters escaped (\u00XX in lowercase hex), the rest as it is
local ESCAPED = '[%z\1-\31"\\]'
local function json_escape(value)
  if not find(value, ESCAPED) then return value end  -- the usual case: nothing to escape
  return (gsub(value, ESCAPED, function(c)
    return JSON_ESCAPES[c] or format("\\u%04x", byte(c))
  end))
end

local TokenMap = {}
TokenMap.__index = TokenMap

-- tokens: token -> original; categories: token kind -> category; escaped: restore JSON-escaped
function TokenMap.new(tokens, categories, escaped)
  local replacement, category, lengths = {}, {}, {}
  local self = setmetatable({ replacement = replacement, category = category, sorted = nil,
                              lengths = lengths, longest = 0, counts = {}, total = 0, empty = true },
                            TokenMap)
  local seen_length, longest = {}, 0
  for token, original in pairs(tokens) do
    replacement[token] = escaped and json_escape(original) or original
    category[token] = categories[sub(token, 5, -14)] or ""
    local len = #token
    if not seen_length[len] then
      seen_length[len] = true
      lengths[#lengths + 1] = len
    end
    if len > longest then longest = len end
  end
  self.longest, self.empty = longest, longest == 0
  sort(lengths)
  return self
end

-- the tokens in order, for is_prefix: built the first time a chunk ends in what may be a token's
-- start (most responses never do)
function TokenMap:sorted_tokens()
  local sorted = self.sorted
  if sorted == nil then
    sorted = {}
    for token in pairs(self.replacement) do sorted[#sorted + 1] = token end
    sort(sorted)
    self.sorted = sorted
  end
  return sorted
end

-- every whole token of this map in `data` replaced (and counted)
function TokenMap:restore(data)
  if self.empty or not find(data, "AWS_", 1, true) then return data end
  local parts, n = {}, 0
  local pos, search = 1, 1
  local replacement, lengths = self.replacement, self.lengths
  while true do
    local p = find(data, "AWS_", search, true)
    if not p then break end
    local matched = false
    for k = 1, #lengths do
      local len = lengths[k]
      local token = sub(data, p, p + len - 1)
      local new = replacement[token]
      if new then
        parts[n + 1], parts[n + 2] = sub(data, pos, p - 1), new
        n = n + 2
        local category = self.category[token]
        self.counts[category] = (self.counts[category] or 0) + 1
        self.total = self.total + 1
        pos = p + len
        matched = true
        break
      end
    end
    search = matched and pos or p + 1
  end
  if n == 0 then return data end
  parts[n + 1] = sub(data, pos)
  return concat(parts)
end

function TokenMap:is_prefix(tail)
  local sorted = self:sorted_tokens()
  local lo, hi = 1, #sorted + 1  -- first k with sorted[k] >= tail
  while lo < hi do
    local mid = math.floor((lo + hi) / 2)
    if sorted[mid] < tail then lo = mid + 1 else hi = mid end
  end
  local token = sorted[lo]
  return token ~= nil and #token > #tail and sub(token, 1, #tail) == tail
end

-- length of the longest suffix of `data` that is a proper prefix of one of our tokens
function TokenMap:carry_len(data)
  local n = #data
  for i = math.max(1, n - self.longest + 2), n do
    if byte(data, i) == 65 and self:is_prefix(sub(data, i)) then  -- "A"
      return n - i + 1
    end
  end
  return 0
end

local StreamRestorer = {}
StreamRestorer.__index = StreamRestorer

function StreamRestorer.new(tokens)
  return setmetatable({ tokens = tokens, carry = "", passed = false }, StreamRestorer)
end

-- the chunk joins the carry first, so after a failed call give_up still has every byte
function StreamRestorer:feed(data)
  if self.passed or self.tokens.empty then return data end
  self.carry = self.carry .. data
  data = self.carry
  local cut = #data - self.tokens:carry_len(data)
  local out = self.tokens:restore(sub(data, 1, cut))
  self.carry = sub(data, cut + 1)
  return out
end

function StreamRestorer:finish()
  local out = self.carry
  self.carry = ""
  return out
end

-- everything not yet emitted, as received; the rest of the body then passes untouched
function StreamRestorer:give_up()
  self.passed = true
  return self:finish()
end

return { TokenMap = TokenMap, StreamRestorer = StreamRestorer, json_escape = json_escape }
