-- Where a Messages SSE event keeps its model text: a strict JSON scan that returns byte spans.
--
-- The Lua twin of plugin/aws_masker/jsonspan.py (read its docstring): scan(s, start, stop) reads
-- s[start, stop) as one JSON object and returns { type, index, delta_type, fields } or nil. Spans
-- in `fields` are { first, stop } byte positions of a string's raw content, s:sub(first, stop - 1).
-- Keys are compared raw; a key of interest that occurs twice, or any syntax error, gives nil.

local byte, sub, find = string.byte, string.sub, string.find

local QUOTE, BACKSLASH, COLON, COMMA = 34, 92, 58, 44
local LBRACE, RBRACE, LBRACKET, RBRACKET = 123, 125, 91, 93
local MINUS, ZERO, NINE, DOT = 45, 48, 57, 46

local DELTA_FIELD_NAMES = { text = true, partial_json = true, thinking = true }
local ESCAPES = { [34] = true, [92] = true, [47] = true, [98] = true, [102] = true, [110] = true,
                  [114] = true, [116] = true }
local LITERALS = { [116] = "true", [102] = "false", [110] = "null" }
local MAX_INDEX_DIGITS = 9

local INVALID = {}  -- raised (as an error value) on any syntax error

local function invalid() error(INVALID, 0) end

local function ws(s, i, stop)
  while i < stop do
    local c = byte(s, i)
    if c ~= 32 and c ~= 9 and c ~= 10 and c ~= 13 then return i end
    i = i + 1
  end
  return i
end

local function expect(s, i, stop, b)
  if i >= stop or byte(s, i) ~= b then invalid() end
  return i + 1
end

local function is_digit(c) return c ~= nil and c >= ZERO and c <= NINE end

local function is_hex(c)
  return c ~= nil and ((c >= 48 and c <= 57) or (c >= 97 and c <= 102) or (c >= 65 and c <= 70))
end

-- s[i] is an opening quote; return the position of the closing quote
local function string_end(s, i, stop)
  i = expect(s, i, stop, QUOTE)
  while i < stop do
    local c = byte(s, i)
    if c == QUOTE then return i end
    if c == BACKSLASH then
      if i + 1 >= stop then invalid() end
      local e = byte(s, i + 1)
      if e == 117 then  -- \uXXXX
        if i + 6 > stop then invalid() end
        for k = i + 2, i + 5 do
          if not is_hex(byte(s, k)) then invalid() end
        end
        i = i + 6
      elseif ESCAPES[e] then
        i = i + 2
      else
        invalid()
      end
    elseif c < 32 then
      invalid()
    else
      i = i + 1
    end
  end
  invalid()
end

local function number_end(s, i, stop)
  if i < stop and byte(s, i) == MINUS then i = i + 1 end
  if i >= stop or not is_digit(byte(s, i)) then invalid() end
  if byte(s, i) == ZERO then
    i = i + 1
  else
    while i < stop and is_digit(byte(s, i)) do i = i + 1 end
  end
  if i < stop and byte(s, i) == DOT then
    i = i + 1
    if i >= stop or not is_digit(byte(s, i)) then invalid() end
    while i < stop and is_digit(byte(s, i)) do i = i + 1 end
  end
  if i < stop and (byte(s, i) == 101 or byte(s, i) == 69) then
    i = i + 1
    if i < stop and (byte(s, i) == 43 or byte(s, i) == MINUS) then i = i + 1 end
    if i >= stop or not is_digit(byte(s, i)) then invalid() end
    while i < stop and is_digit(byte(s, i)) do i = i + 1 end
  end
  return i
end

-- skip one JSON value starting at i (no leading whitespace); return its end
local function value_end(s, i, stop)
  if i >= stop then invalid() end
  local c = byte(s, i)
  if c == QUOTE then return string_end(s, i, stop) + 1 end
  if c == MINUS or is_digit(c) then return number_end(s, i, stop) end
  local literal = LITERALS[c]
  if literal then
    if i + #literal > stop or sub(s, i, i + #literal - 1) ~= literal then invalid() end
    return i + #literal
  end
  if c ~= LBRACE and c ~= LBRACKET then invalid() end
  -- a container: an explicit stack of closing brackets, no recursion
  local stack, n = { c == LBRACE and RBRACE or RBRACKET }, 1
  i = ws(s, i + 1, stop)
  local first = true
  while true do
    local close = stack[n]
    local descended = false
    if first and i < stop and byte(s, i) == close then
      stack[n] = nil
      n = n - 1
      i = i + 1
    else
      if close == RBRACE then
        i = ws(s, string_end(s, i, stop) + 1, stop)
        i = ws(s, expect(s, i, stop, COLON), stop)
      end
      if i >= stop then invalid() end
      c = byte(s, i)
      if c == LBRACE or c == LBRACKET then
        n = n + 1
        stack[n] = c == LBRACE and RBRACE or RBRACKET
        i = ws(s, i + 1, stop)
        first = true
        descended = true
      else
        i = value_end(s, i, stop)
      end
    end
    if not descended then
      -- after a value (or a closed container): a comma or the closing bracket, as often as needed
      while true do
        if n == 0 then return i end
        i = ws(s, i, stop)
        if i < stop and byte(s, i) == COMMA then
          i = ws(s, i + 1, stop)
          first = false
          break
        end
        i = expect(s, i, stop, stack[n])
        stack[n] = nil
        n = n - 1
      end
    end
  end
end

-- scan the object at i; visit(key, value_start) returns the end of a value it read itself (a key of
-- interest, which must not occur twice), or nil to have it skipped
local function object_end(s, i, stop, visit)
  i = ws(s, expect(s, i, stop, LBRACE), stop)
  if i < stop and byte(s, i) == RBRACE then return i + 1 end
  local seen = {}
  while true do
    local key_end = string_end(s, i, stop)
    local key = sub(s, i + 1, key_end - 1)
    local value = ws(s, expect(s, ws(s, key_end + 1, stop), stop, COLON), stop)
    local e = visit(key, value)
    if e == nil then
      e = value_end(s, value, stop)
    elseif seen[key] then
      invalid()
    else
      seen[key] = true
    end
    i = ws(s, e, stop)
    if i < stop and byte(s, i) == COMMA then
      i = ws(s, i + 1, stop)
    else
      return expect(s, i, stop, RBRACE)
    end
  end
end

-- the raw content span of the string at i, or nil if the value is not a string
local function string_content(s, i, stop)
  if i < stop and byte(s, i) == QUOTE then
    return i + 1, string_end(s, i, stop)
  end
  return nil
end

-- the raw content of the string at v when it has no escapes, else nil
local function plain_string(s, v, stop)
  local first, last = string_content(s, v, stop)
  if first then
    local raw = sub(s, first, last - 1)
    if not find(raw, "\\", 1, true) then return raw end
  end
  return nil
end

local function scan_object(s, i, stop)
  local result = { fields = {} }

  local function delta(key, v)
    if key == "type" then
      result.delta_type = plain_string(s, v, stop)
      return value_end(s, v, stop)
    end
    if DELTA_FIELD_NAMES[key] then
      local first, last = string_content(s, v, stop)
      if first then result.fields[key] = { first, last } end
      return value_end(s, v, stop)
    end
    return nil
  end

  local function top(key, v)
    if key == "type" then
      result.type = plain_string(s, v, stop)
      return value_end(s, v, stop)
    end
    if key == "index" then
      local e = value_end(s, v, stop)
      local digits = sub(s, v, e - 1)
      if #digits <= MAX_INDEX_DIGITS and not find(digits, "%D")
         and (digits == "0" or byte(digits, 1) ~= ZERO) then
        result.index = tonumber(digits)
      end
      return e
    end
    if key == "delta" then
      if v < stop and byte(s, v) == LBRACE then return object_end(s, v, stop, delta) end
      return value_end(s, v, stop)
    end
    return nil
  end

  return result, object_end(s, i, stop, top)
end

local function scan(s, start, stop)
  local ok, result, pos = pcall(scan_object, s, ws(s, start, stop), stop)
  if not ok then
    if result == INVALID then return nil end
    error(result, 0)
  end
  if ws(s, pos, stop) ~= stop then return nil end
  return result
end

return { scan = scan, DELTA_FIELD_NAMES = DELTA_FIELD_NAMES }
