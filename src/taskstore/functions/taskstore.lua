#!lua name=taskstore
--[[
taskstore's TASK semantics (docs/commands.md and docs/production.md) as a Redis Functions library,
for Redis >= 7 and Valkey >= 7, standalone or cluster.

Calling convention (docs/production.md):

    FCALL ts_<command> 1 ts:{<owner>}: <generation> <config> [<random>] <arguments of TASK.<COMMAND>>

* KEYS[1] is the owner's key prefix `ts:{<owner>}:`; every key the function touches starts
  with it (one hash slot per call), and the owner is read from it, never from an argument.
* <generation> is the MCP task generation the reply is rendered in: 2025-11-25 or 2026-07-28.
* <config> is the store limits, comma separated, in this order: default_ttl_ms, max_ttl_ms,
  max_tasks_per_owner, max_variable_size_bytes, max_variable_depth, max_string_length,
  max_result_bytes, max_input_bytes, default_poll_interval_ms, list_default_limit,
  list_max_limit, expired_retention_ms.
* ts_create takes 32 hex digits of secure random bytes (the client's os.urandom) before its
  arguments: the task id, a UUID v4, is made from them unless ID is given.
* The remaining arguments are those of the TASK command without the command name and without
  OWNER, with the same options, replies, error codes and texts.

Keys of one owner:
  ts:{o}:t:<id>  hash, one task; PEXPIREAT expires_at + expired_retention_ms
  ts:{o}:idx     sorted set: task ids by creation sequence (TASK.LIST), pruned lazily
  ts:{o}:exp     sorted set: task ids by expires_at (TASK.CLEANUP, the task limit)
  ts:{o}:meta    hash: seq (creation sequence), secret (cursor MAC key), now (clock high mark)
Every change is published (SPUBLISH) on tasks:{<owner>} as the task's 2025-11-25 JSON.
]]

local VERSION = '1.0.0'

local function build()
  local SAFE_MAX = 9007199254740991 -- 2**53 - 1
  local MAX_ID_LEN = 256
  local MAX_LEASE_MS = 86400000
  local JSON_MAX_DEPTH = 900 -- Python's json gives up near its recursion limit (~1000)

  local sfmt, sbyte, schar, ssub, sfind = string.format, string.byte, string.char, string.sub, string.find
  local tconcat = table.concat

  -- ---------------------------------------------------------------- errors

  local Fail = {}
  Fail.__index = Fail

  local function fail(text)
    error(setmetatable({ text = text }, Fail), 0)
  end

  local function not_found(id) fail('NOTFOUND task not found: ' .. id) end

  -- ---------------------------------------------------------------- small helpers

  local function num(n)
    return sfmt('%.0f', n)
  end

  -- Python's str.isdigit() on ASCII bytes
  local function is_digits(s)
    return s ~= '' and not sfind(s, '[^0-9]')
  end

  -- a digit string as a number, exact up to 2**53; bigger values give math.huge
  local function digits_value(s)
    local t = s:gsub('^0+', '')
    if t == '' then return 0 end
    if #t > 16 then return math.huge end
    return tonumber(t)
  end

  local function upper(s) return s:upper() end

  -- 1-256 bytes in 0x21-0x7e
  local function valid_key(s)
    return #s > 0 and #s <= MAX_ID_LEN and not sfind(s, '[^\33-\126]')
  end

  local function check_task_id(id)
    if not valid_key(id) then
      fail('ERR invalid task id: must be 1-256 printable ASCII characters (0x21-0x7e)')
    end
  end

  -- Python's strict UTF-8 decoding (no surrogates, no overlongs, <= U+10FFFF)
  local function valid_utf8(s)
    if not sfind(s, '[\128-\255]') then return true end
    local i, n = 1, #s
    while i <= n do
      local c = sbyte(s, i)
      if c < 0x80 then
        i = sfind(s, '[\128-\255]', i) -- skip the ASCII run at C speed
        if i == nil then return true end
      else
        local len, lo, hi
        if c >= 0xC2 and c <= 0xDF then len = 2
        elseif c >= 0xE0 and c <= 0xEF then len = 3
        elseif c >= 0xF0 and c <= 0xF4 then len = 4
        else return false end
        if i + len - 1 > n then return false end
        lo, hi = 0x80, 0xBF
        if c == 0xE0 then lo = 0xA0 elseif c == 0xED then hi = 0x9F
        elseif c == 0xF0 then lo = 0x90 elseif c == 0xF4 then hi = 0x8F end
        local c2 = sbyte(s, i + 1)
        if c2 < lo or c2 > hi then return false end
        for k = i + 2, i + len - 1 do
          local ck = sbyte(s, k)
          if ck < 0x80 or ck > 0xBF then return false end
        end
        i = i + len
      end
    end
    return true
  end

  -- number of characters (code points) in a UTF-8 string
  local function char_len(s)
    local _, cont = s:gsub('[\128-\191]', '')
    return #s - cont
  end

  -- Python's repr() of a str (what the store's error texts show for input keys)
  local function py_repr(s)
    local quote = "'"
    if sfind(s, "'", 1, true) and not sfind(s, '"', 1, true) then quote = '"' end
    local out = s:gsub('[%c\\\'"\127]', function(c)
      if c == '\\' then return '\\\\' end
      if c == quote then return '\\' .. c end
      if c == "'" or c == '"' then return c end
      if c == '\n' then return '\\n' end
      if c == '\r' then return '\\r' end
      if c == '\t' then return '\\t' end
      return sfmt('\\x%02x', sbyte(c))
    end)
    return quote .. out .. quote
  end

  -- ---------------------------------------------------------------- time

  local function civil(days)
    -- days since 1970-01-01 -> year, month, day (Howard Hinnant's algorithm)
    local z = days + 719468
    local era = math.floor(z / 146097)
    local doe = z - era * 146097
    local yoe = math.floor((doe - math.floor(doe / 1460) + math.floor(doe / 36524) - math.floor(doe / 146096)) / 365)
    local y = yoe + era * 400
    local doy = doe - (365 * yoe + math.floor(yoe / 4) - math.floor(yoe / 100))
    local mp = math.floor((5 * doy + 2) / 153)
    local d = doy - math.floor((153 * mp + 2) / 5) + 1
    local m = mp < 10 and mp + 3 or mp - 9
    if m <= 2 then y = y + 1 end
    return y, m, d
  end

  -- second -> "YYYY-MM-DDTHH:MM:SS" (tasks cluster in time; dropped wholesale when it grows)
  local second_cache, second_cached = {}, 0

  local function format_ms(ms)
    local secs = math.floor(ms / 1000)
    local millis = ms - secs * 1000
    local prefix = second_cache[secs]
    if prefix then return prefix .. sfmt('.%03dZ', millis) end
    local days = math.floor(secs / 86400)
    local rem = secs - days * 86400
    local y, m, d = civil(days)
    local hh = math.floor(rem / 3600)
    local mm = math.floor((rem - hh * 3600) / 60)
    local ss = rem - hh * 3600 - mm * 60
    prefix = sfmt('%04d-%02d-%02dT%02d:%02d:%02d', y, m, d, hh, mm, ss)
    if second_cached >= 4096 then second_cache, second_cached = {}, 0 end
    second_cache[secs] = prefix
    second_cached = second_cached + 1
    return prefix .. sfmt('.%03dZ', millis)
  end

  local function server_ms()
    local t = redis.call('TIME')
    return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  end

  -- ---------------------------------------------------------------- JSON

  local NULL = { kind = 'null' }
  local TRUE = { kind = 'true' }
  local FALSE = { kind = 'false' }

  -- Python's json.encoder.encode_basestring (ensure_ascii=False)
  local SHORT_ESC = { ['"'] = '\\"', ['\\'] = '\\\\', ['\n'] = '\\n', ['\r'] = '\\r', ['\t'] = '\\t', ['\b'] = '\\b', ['\f'] = '\\f' }
  local function quote(s)
    return '"' .. s:gsub('[%z\1-\31"\\]', function(c)
      return SHORT_ESC[c] or sfmt('\\u%04x', sbyte(c))
    end) .. '"'
  end

  -- encode_basestring_ascii: every non-ASCII character as \uXXXX (surrogate pairs above U+FFFF)
  local function quote_ascii(s)
    local out = {}
    local i, n = 1, #s
    while i <= n do
      local c = sbyte(s, i)
      if c < 0x80 then
        local ch = schar(c)
        if c < 0x20 or ch == '"' or ch == '\\' or c == 0x7f then
          out[#out + 1] = SHORT_ESC[ch] or sfmt('\\u%04x', c)
        else
          out[#out + 1] = ch
        end
        i = i + 1
      else
        local cp, len
        if c >= 0xF0 then cp, len = c - 0xF0, 4
        elseif c >= 0xE0 then cp, len = c - 0xE0, 3
        else cp, len = c - 0xC0, 2 end
        for k = i + 1, i + len - 1 do cp = cp * 64 + (sbyte(s, k) - 0x80) end
        if cp >= 0x10000 then
          local v = cp - 0x10000
          out[#out + 1] = sfmt('\\u%04x\\u%04x', 0xD800 + math.floor(v / 1024), 0xDC00 + v % 1024)
        else
          out[#out + 1] = sfmt('\\u%04x', cp)
        end
        i = i + len
      end
    end
    return '"' .. tconcat(out) .. '"'
  end

  -- Python's repr(float): the shortest digits that read back the same double
  local function float_repr(x)
    if x ~= x or x == math.huge or x == -math.huge then return nil end
    if x == 0 then
      if 1 / x < 0 then return '-0.0' end
      return '0.0'
    end
    local sign = ''
    if x < 0 then sign = '-'; x = -x end
    local mant, exp
    for p = 1, 17 do
      local s = sfmt('%.' .. (p - 1) .. 'e', x)
      if tonumber(s) == x or p == 17 then
        mant, exp = s:match('^([^e]+)e([-+]%d+)$')
        break
      end
    end
    local digits = mant:gsub('%.', ''):gsub('0+$', '')
    if digits == '' then digits = '0' end
    local e = tonumber(exp)
    local decpt = e + 1
    local nd = #digits
    if decpt > -4 and decpt <= 16 then
      if decpt <= 0 then
        return sign .. '0.' .. string.rep('0', -decpt) .. digits
      elseif decpt >= nd then
        return sign .. digits .. string.rep('0', decpt - nd) .. '.0'
      else
        return sign .. ssub(digits, 1, decpt) .. '.' .. ssub(digits, decpt + 1)
      end
    end
    local m = ssub(digits, 1, 1)
    if nd > 1 then m = m .. '.' .. ssub(digits, 2) end
    local es = e < 0 and '-' or '+'
    local ea = math.abs(e)
    return sign .. m .. 'e' .. es .. (ea < 10 and '0' .. ea or tostring(ea))
  end

  local function utf8_char(cp)
    if cp < 0x80 then return schar(cp) end
    if cp < 0x800 then return schar(0xC0 + math.floor(cp / 64), 0x80 + cp % 64) end
    if cp < 0x10000 then
      return schar(0xE0 + math.floor(cp / 4096), 0x80 + math.floor(cp / 64) % 64, 0x80 + cp % 64)
    end
    return schar(0xF0 + math.floor(cp / 262144), 0x80 + math.floor(cp / 4096) % 64,
      0x80 + math.floor(cp / 64) % 64, 0x80 + cp % 64)
  end

  -- A JSON parser in the manner of Python's json.loads (strict): values are
  --   NULL / TRUE / FALSE, { kind='num', text=<Python's re-encoding>, int=bool, value=number },
  --   { kind='str', s=<UTF-8 bytes> }, { kind='arr', n, [1..n] },
  --   { kind='obj', keys={...in first-seen order}, vals={key -> value} } (a repeated key keeps
  --   its first position and its last value, as a Python dict does).
  -- Errors: fail('ERR invalid JSON: ...') with Python's message and position; too deep:
  -- fail(<too_deep>).
  local function parse_json(text, what, finite, too_deep)
    local pos = 1
    local n = #text

    local function err_at(msg, p)
      local before = ssub(text, 1, p - 1)
      local line = 1
      local last_nl = nil
      for i in before:gmatch('()\n') do line = line + 1; last_nl = i end
      local charpos = char_len(before)
      local col
      if last_nl then col = charpos - char_len(ssub(text, 1, last_nl - 1)) else col = charpos + 1 end
      fail(sfmt('ERR invalid JSON: %s: line %d column %d (char %d)', msg, line, col, charpos))
    end

    local function skip_ws()
      local _, e = sfind(text, '^[ \t\n\r]*', pos)
      pos = e + 1
    end

    local parse_value

    local function parse_string()
      -- pos is at the opening quote
      local start = pos
      pos = pos + 1
      local parts = {}
      while true do
        local s, e = sfind(text, '^[^"\\%z\1-\31]*', pos)
        if e >= s then parts[#parts + 1] = ssub(text, s, e) end
        pos = e + 1
        if pos > n then err_at('Unterminated string starting at', start) end
        local c = ssub(text, pos, pos)
        if c == '"' then
          pos = pos + 1
          return { kind = 'str', s = tconcat(parts) }
        elseif c == '\\' then
          local esc = ssub(text, pos + 1, pos + 1)
          if esc == '' then err_at('Unterminated string starting at', start) end
          local simple = ({ ['"'] = '"', ['\\'] = '\\', ['/'] = '/', b = '\b', f = '\f', n = '\n', r = '\r', t = '\t' })[esc]
          if simple then
            parts[#parts + 1] = simple
            pos = pos + 2
          elseif esc == 'u' then
            local hex = ssub(text, pos + 2, pos + 5)
            if not hex:match('^%x%x%x%x$') then err_at('Invalid \\uXXXX escape', pos + 1) end
            local cp = tonumber(hex, 16)
            pos = pos + 6
            if cp >= 0xD800 and cp <= 0xDBFF and ssub(text, pos, pos + 1) == '\\u' then
              local hex2 = ssub(text, pos + 2, pos + 5)
              if not hex2:match('^%x%x%x%x$') then err_at('Invalid \\uXXXX escape', pos + 1) end
              local lo = tonumber(hex2, 16)
              if lo >= 0xDC00 and lo <= 0xDFFF then
                cp = 0x10000 + (cp - 0xD800) * 1024 + (lo - 0xDC00)
                pos = pos + 6
              end
            end
            parts[#parts + 1] = utf8_char(cp)
          else
            err_at('Invalid \\escape', pos)
          end
        else
          err_at('Invalid control character at', pos)
        end
      end
    end

    local function parse_number()
      local s, e = sfind(text, '^-?%d+', pos)
      local tok_int = ssub(text, s, e)
      -- JSON: no leading zeros (Python's scanner stops after a lone 0, leaving "Extra data")
      local lead = tok_int:match('^-?(0)%d')
      if lead then
        e = s + (ssub(tok_int, 1, 1) == '-' and 1 or 0)
        tok_int = ssub(text, s, e)
      end
      local frac_s, frac_e = sfind(text, '^%.%d+', e + 1)
      local last = e
      local is_int = true
      if frac_s then last = frac_e; is_int = false end
      local exp_s, exp_e = sfind(text, '^[eE][-+]?%d+', last + 1)
      if exp_s then last = exp_e; is_int = false end
      local tok = ssub(text, s, last)
      pos = last + 1
      if is_int then
        local t = tok
        if t == '-0' then t = '0' end
        return { kind = 'num', text = t, int = true, value = tonumber(tok) }
      end
      local v = tonumber(tok)
      local r = float_repr(v)
      if r == nil then
        if finite then fail('ERR invalid JSON: number ' .. ssub(tok, 1, 32) .. ' is out of range') end
        r = v > 0 and 'Infinity' or '-Infinity'
      end
      return { kind = 'num', text = r, int = false, value = v }
    end

    parse_value = function(depth)
      if depth > JSON_MAX_DEPTH then fail(too_deep) end
      if pos > n then err_at('Expecting value', pos) end
      local c = ssub(text, pos, pos)
      if c == '{' then
        local start = pos
        pos = pos + 1
        local obj = { kind = 'obj', keys = {}, vals = {} }
        skip_ws()
        if ssub(text, pos, pos) == '}' then pos = pos + 1; return obj end
        while true do
          if ssub(text, pos, pos) ~= '"' then
            err_at('Expecting property name enclosed in double quotes', pos)
          end
          local key = parse_string().s
          skip_ws()
          if ssub(text, pos, pos) ~= ':' then err_at("Expecting ':' delimiter", pos) end
          pos = pos + 1
          skip_ws()
          local v = parse_value(depth + 1)
          if obj.vals[key] == nil then obj.keys[#obj.keys + 1] = key end
          obj.vals[key] = v
          skip_ws()
          local d = ssub(text, pos, pos)
          if d == '}' then pos = pos + 1; return obj end
          if d ~= ',' then err_at("Expecting ',' delimiter", pos) end
          pos = pos + 1
          skip_ws()
          if ssub(text, pos, pos) ~= '"' then
            err_at('Expecting property name enclosed in double quotes', pos)
          end
        end
      elseif c == '[' then
        pos = pos + 1
        local arr = { kind = 'arr', n = 0 }
        skip_ws()
        if ssub(text, pos, pos) == ']' then pos = pos + 1; return arr end
        while true do
          local v = parse_value(depth + 1)
          arr.n = arr.n + 1
          arr[arr.n] = v
          skip_ws()
          local d = ssub(text, pos, pos)
          if d == ']' then pos = pos + 1; return arr end
          if d ~= ',' then err_at("Expecting ',' delimiter", pos) end
          pos = pos + 1
          skip_ws()
        end
      elseif c == '"' then
        return parse_string()
      elseif c == 'n' and ssub(text, pos, pos + 3) == 'null' then
        pos = pos + 4; return NULL
      elseif c == 't' and ssub(text, pos, pos + 3) == 'true' then
        pos = pos + 4; return TRUE
      elseif c == 'f' and ssub(text, pos, pos + 4) == 'false' then
        pos = pos + 5; return FALSE
      elseif c == 'N' and ssub(text, pos, pos + 2) == 'NaN' then
        fail('ERR invalid JSON: NaN is not valid JSON')
      elseif c == 'I' and ssub(text, pos, pos + 7) == 'Infinity' then
        fail('ERR invalid JSON: Infinity is not valid JSON')
      elseif c == '-' and ssub(text, pos, pos + 8) == '-Infinity' then
        fail('ERR invalid JSON: -Infinity is not valid JSON')
      elseif sfind(c, '^[-0-9]') and sfind(text, '^-?%d', pos) then
        return parse_number()
      end
      err_at('Expecting value', pos)
    end

    if not valid_utf8(text) then fail('ERR invalid JSON: ' .. what .. ' is not valid UTF-8') end
    if ssub(text, 1, 3) == '\239\187\191' then
      fail('ERR invalid JSON: Unexpected UTF-8 BOM (decode using utf-8-sig): line 1 column 1 (char 0)')
    end
    skip_ws()
    local value = parse_value(1)
    skip_ws()
    if pos <= n then err_at('Extra data', pos) end
    return value
  end

  -- compact JSON as Python's json.dumps(separators=(",", ":"), ensure_ascii=False) writes it;
  -- a string holding a lone surrogate makes the whole text ASCII (\u escapes), as the store does
  local function encode_with(value, q)
    local out = {}
    local function enc(v)
      local k = v.kind
      if k == 'str' then out[#out + 1] = q(v.s)
      elseif k == 'num' then out[#out + 1] = v.text
      elseif k == 'obj' then
        out[#out + 1] = '{'
        for i, key in ipairs(v.keys) do
          if i > 1 then out[#out + 1] = ',' end
          out[#out + 1] = q(key)
          out[#out + 1] = ':'
          enc(v.vals[key])
        end
        out[#out + 1] = '}'
      elseif k == 'arr' then
        out[#out + 1] = '['
        for i = 1, v.n do
          if i > 1 then out[#out + 1] = ',' end
          enc(v[i])
        end
        out[#out + 1] = ']'
      else out[#out + 1] = k end
    end
    enc(value)
    return tconcat(out)
  end

  local function has_surrogate(value)
    local k = value.kind
    if k == 'str' then return sfind(value.s, '\237[\160-\191]') ~= nil end
    if k == 'obj' then
      for _, key in ipairs(value.keys) do
        if sfind(key, '\237[\160-\191]') or has_surrogate(value.vals[key]) then return true end
      end
    elseif k == 'arr' then
      for i = 1, value.n do if has_surrogate(value[i]) then return true end end
    end
    return false
  end

  local function encode(value)
    if has_surrogate(value) then return encode_with(value, quote_ascii) end
    return encode_with(value, quote)
  end

  local function str_len(s)
    -- len(s.encode("utf-8", "surrogatepass")): our decoded strings are those bytes
    return #s
  end

  -- jsonutil.check_variable_values
  local function check_variable_values(update, max_depth, max_string)
    local deepest, longest = 1, 0
    local stack = {}
    for _, key in ipairs(update.keys) do
      local v = update.vals[key]
      if v ~= NULL then
        if str_len(key) > longest then longest = str_len(key) end
        stack[#stack + 1] = { v, 2 }
      end
    end
    while #stack > 0 do
      local item = table.remove(stack)
      local v, depth = item[1], item[2]
      if v.kind == 'str' then
        if str_len(v.s) > longest then longest = str_len(v.s) end
      elseif v.kind == 'obj' then
        if depth > deepest then deepest = depth end
        for _, key in ipairs(v.keys) do
          if str_len(key) > longest then longest = str_len(key) end
          local child = v.vals[key]
          local ck = child.kind
          if ck == 'obj' or ck == 'arr' or ck == 'str' then stack[#stack + 1] = { child, depth + 1 } end
        end
      elseif v.kind == 'arr' then
        if depth > deepest then deepest = depth end
        for i = 1, v.n do
          local ck = v[i].kind
          if ck == 'obj' or ck == 'arr' or ck == 'str' then stack[#stack + 1] = { v[i], depth + 1 } end
        end
      end
    end
    if deepest > max_depth then
      fail(sfmt('TOOLARGE variables nest %d levels deep (max %d)', deepest, max_depth))
    end
    if longest > max_string then
      fail(sfmt('TOOLARGE string of %d bytes exceeds max_string_length %d', longest, max_string))
    end
  end

  -- jsonutil.parse_object: a JSON object argument of at most max_bytes, re-encoded compactly
  local function parse_object(raw, what, max_bytes)
    if #raw > max_bytes then fail(sfmt('TOOLARGE %s is %d bytes (max %d)', what, #raw, max_bytes)) end
    local v = parse_json(raw, what, true, 'ERR invalid JSON: ' .. what .. ' nests too deeply')
    if v.kind ~= 'obj' then fail('ERR invalid JSON: ' .. what .. ' must be a JSON object') end
    return v
  end

  -- ---------------------------------------------------------------- context: owner, config, generation

  local CONFIG_NAMES = {
    'default_ttl_ms', 'max_ttl_ms', 'max_tasks_per_owner', 'max_variable_size_bytes',
    'max_variable_depth', 'max_string_length', 'max_result_bytes', 'max_input_bytes',
    'default_poll_interval_ms', 'list_default_limit', 'list_max_limit', 'expired_retention_ms',
  }
  local CONFIG_MIN = { 1, 0, 0, 2, 1, 1, 1, 1, 1, 1, 1, 0 }
  local config_cache = {}
  local config_cached = 0

  local function parse_config(text)
    local cfg = config_cache[text]
    if cfg then return cfg end
    cfg = {}
    local i = 0
    for part in (text .. ','):gmatch('([^,]*),') do
      i = i + 1
      local name = CONFIG_NAMES[i]
      if name == nil or not is_digits(part) then i = -1; break end
      local v = digits_value(part)
      if v < CONFIG_MIN[i] or v > SAFE_MAX then i = -1; break end
      cfg[name] = v
    end
    if i ~= #CONFIG_NAMES then
      fail('ERR invalid taskstore config argument: expected ' .. #CONFIG_NAMES .. ' whole numbers ('
        .. tconcat(CONFIG_NAMES, ',') .. ')')
    end
    -- StoreConfig's own consistency rules
    if cfg.max_ttl_ms ~= 0 and cfg.default_ttl_ms > cfg.max_ttl_ms then
      fail(sfmt('ERR invalid taskstore config argument: default_ttl_ms (%s) must not exceed '
        .. 'max_ttl_ms (%s)', num(cfg.default_ttl_ms), num(cfg.max_ttl_ms)))
    end
    if cfg.list_default_limit > cfg.list_max_limit then
      fail(sfmt('ERR invalid taskstore config argument: list_default_limit (%s) must not exceed '
        .. 'list_max_limit (%s)', num(cfg.list_default_limit), num(cfg.list_max_limit)))
    end
    if config_cached >= 64 then config_cache = {}; config_cached = 0 end
    config_cache[text] = cfg
    config_cached = config_cached + 1
    return cfg
  end

  local GENERATIONS = { ['2025-11-25'] = false, ['2026-07-28'] = true }

  local function context(keys, args, first)
    local prefix = keys[1]
    if #keys ~= 1 or prefix == nil then
      fail("ERR taskstore functions take one key: the owner's prefix ts:{<owner>}:")
    end
    local owner = prefix:match('^ts:{(.*)}:$')
    if owner == nil then fail('ERR invalid owner key: expected ts:{<owner>}:') end
    -- taskstore's rule for OWNER, and no braces: the owner is the keys' hash tag
    if not valid_key(owner) then
      fail('ERR OWNER must be 1-256 printable ASCII characters without spaces')
    end
    if sfind(owner, '[{}]') then fail('ERR OWNER must not contain { or } (the hash tag of its keys)') end
    local gen = args[1]
    local v2 = GENERATIONS[gen or '']
    if v2 == nil then
      local shown = gen or ''
      if #shown > 64 or sfind(shown, '[^\32-\126]') then shown = '<invalid>' end
      fail("ERR unsupported MCP version '" .. shown .. "' (supported: 2025-11-25, 2026-07-28)")
    end
    local cfg = parse_config(args[2] or '')
    local rest = {}
    for i = first, #args do rest[#rest + 1] = args[i] end
    return { owner = owner, prefix = prefix, v2 = v2, cfg = cfg, meta = prefix .. 'meta',
      idx = prefix .. 'idx', exp = prefix .. 'exp', channel = 'tasks:{' .. owner .. '}' }, rest
  end

  local function arity(rest, min, name)
    if #rest < min then fail("ERR wrong number of arguments for '" .. name .. "' command") end
  end

  -- owner-monotonic store time: never goes backwards (the store's now_ms)
  -- reads (ctx.reading) take the server's time as it is; a write stamps a time that never goes
  -- back below the owner's high-water mark
  local function now_ms(ctx)
    if ctx.now then return ctx.now end
    local now = server_ms()
    if not ctx.reading then
      local high = tonumber(redis.call('HGET', ctx.meta, 'now') or '0')
      if now < high then now = high end
    end
    ctx.now = now
    return now
  end

  -- a read that has to write after all (a lease ran out): from now on, a write's clock
  local function writing(ctx)
    if ctx.reading then
      ctx.reading, ctx.now = false, nil
      now_ms(ctx)
    end
  end

  local function touch_clock(ctx)
    redis.call('HSET', ctx.meta, 'now', num(ctx.now))
  end

  -- KEY value options and bare flags from rest[start]; anything else: ERR syntax error
  local function options(rest, start, names, flags)
    local opts = {}
    local i, n = start, #rest
    while i <= n do
      local key = upper(rest[i])
      if names[key] and i + 1 <= n then
        opts[key] = rest[i + 1]
        i = i + 2
      elseif flags and flags[key] then
        opts[key] = ''
        i = i + 1
      else
        fail('ERR syntax error')
      end
    end
    return opts
  end

  local function message_opt(opts)
    local m = opts.MESSAGE
    if m ~= nil and not valid_utf8(m) then fail('ERR MESSAGE must be valid UTF-8') end
    return m
  end

  local function check_message(ctx, m)
    if m ~= nil and #m > ctx.cfg.max_string_length then
      fail(sfmt('TOOLARGE status message is %d bytes (max %d)', #m, ctx.cfg.max_string_length))
    end
  end

  local STATUSES = { working = true, input_required = true, completed = true, failed = true, cancelled = true }
  local TERMINAL = { completed = true, failed = true, cancelled = true }

  local function parse_status(text)
    if STATUSES[text] then return text end
    local shown = text
    if #text > 64 or sfind(text, '[^\32-\126]') then shown = '<unprintable>' end
    fail("ERR invalid status '" .. shown .. "': expected working, input_required, completed, failed or cancelled")
  end

  local function can_transition(from, to)
    if TERMINAL[from] or from == to then return false end
    return STATUSES[to] == true
  end

  local function invalid_transition(id, from, to)
    fail('INVALIDTRANSITION invalid transition from ' .. from .. ' to ' .. to .. ' for task ' .. id)
  end

  -- BLOCK <ms>: a signed 64-bit integer, not negative (Redis's wording)
  local function timeout_arg(raw)
    local negative = ssub(raw, 1, 1) == '-'
    local digits = negative and ssub(raw, 2) or raw
    if not is_digits(digits) then fail('ERR timeout is not an integer or out of range') end
    local t = digits:gsub('^0+', '')
    local limit = negative and '9223372036854775808' or '9223372036854775807'
    if #t > 19 or (#t == 19 and t > limit) then
      fail('ERR timeout is not an integer or out of range')
    end
    if negative and t ~= '' then fail('ERR timeout is negative') end
    return digits_value(digits)
  end

  -- ---------------------------------------------------------------- task records

  local FIELDS = { 'id', 'st', 'msg', 'c', 'u', 'ttl', 'pi', 'm', 'seq', 'rev', 'vars', 'res',
    'reqs', 'iss', 'ans', 'ib', 'err', 'cra', 'lh', 'le' }

  local function task_key(ctx, id) return ctx.prefix .. 't:' .. id end

  local function load(ctx, id)
    local v = redis.call('HMGET', task_key(ctx, id), unpack(FIELDS))
    if not v[1] then return nil end
    local t = {}
    for i, name in ipairs(FIELDS) do
      local x = v[i]
      if x == false then x = nil end
      t[name] = x
    end
    t.c = tonumber(t.c); t.u = tonumber(t.u); t.pi = tonumber(t.pi); t.seq = tonumber(t.seq)
    t.rev = tonumber(t.rev)
    if t.ttl == 'none' then t.ttl = nil else t.ttl = tonumber(t.ttl) end
    t.ib = tonumber(t.ib or '0')
    t.reqs = t.reqs and cmsgpack.unpack(t.reqs) or {}
    t.iss = t.iss and cmsgpack.unpack(t.iss) or {}
    t.ans = t.ans and cmsgpack.unpack(t.ans) or {}
    t.cra = t.cra and tonumber(t.cra) or nil
    t.le = t.le and tonumber(t.le) or nil
    return t
  end

  local function expires_at(t) return t.ttl and t.c + t.ttl or nil end
  local function is_expired(t, now) return t.ttl ~= nil and now >= t.c + t.ttl end
  local function is_due(ctx, t, now) return t.ttl ~= nil and now >= t.c + t.ttl + ctx.cfg.expired_retention_ms end

  -- the 2025-11-25 Task / 2026-07-28 Task head
  local function head(t, v2)
    local parts = { '{"taskId":', quote(t.id), ',"status":"', t.st, '"' }
    if t.msg then parts[#parts + 1] = ',"statusMessage":'; parts[#parts + 1] = quote(t.msg) end
    local created = format_ms(t.c)
    local updated = t.u == t.c and created or format_ms(t.u)
    parts[#parts + 1] = ',"createdAt":"' .. created .. '","lastUpdatedAt":"' .. updated .. '"'
    local ttl = t.ttl and num(t.ttl) or 'null'
    if v2 then
      parts[#parts + 1] = ',"ttlMs":' .. ttl .. ',"pollIntervalMs":' .. num(t.pi)
    else
      parts[#parts + 1] = ',"ttl":' .. ttl .. ',"pollInterval":' .. num(t.pi)
    end
    return tconcat(parts)
  end

  local function pairs_object(list)
    local out = {}
    for i, kv in ipairs(list) do out[i] = quote(kv[1]) .. ':' .. kv[2] end
    return '{' .. tconcat(out, ',') .. '}'
  end

  local function render_v1(t)
    if t.vars then return head(t, false) .. ',"_meta":' .. t.vars .. '}' end
    return head(t, false) .. '}'
  end

  local function render_v2(t)
    local h = head(t, true)
    if t.st == 'input_required' then return h .. ',"inputRequests":' .. pairs_object(t.reqs) .. '}' end
    if t.st == 'completed' then return h .. ',"result":' .. (t.res or '{}') .. '}' end
    if t.st == 'failed' then
      local e = t.err
      if e == nil then
        e = '{"code":-32603,"message":' .. quote(t.msg or 'Task failed') .. '}'
      end
      return h .. ',"error":' .. e .. '}'
    end
    return h .. '}'
  end

  local function render(ctx, t)
    if ctx.v2 then return render_v2(t) end
    return render_v1(t)
  end

  local function result_json(t)
    if t.err then return '{"error":' .. t.err .. '}' end
    return t.res
  end

  local function publish(ctx, t)
    redis.call('SPUBLISH', ctx.channel, render_v1(t))
  end

  local function set_expiry(ctx, key, t)
    if t.ttl then
      redis.call('PEXPIREAT', key, num(t.c + t.ttl + ctx.cfg.expired_retention_ms))
    end
  end

  -- write the whole record (changed = a change clients see: lastUpdatedAt, rev, notification)
  local function save(ctx, t, changed, fresh)
    local key = task_key(ctx, t.id)
    if changed then
      t.u = ctx.now
      t.rev = (t.rev or 0) + 1
    end
    local fields = {
      'id', t.id, 'st', t.st, 'c', num(t.c), 'u', num(t.u), 'ttl', t.ttl and num(t.ttl) or 'none',
      'pi', num(t.pi), 'm', t.m, 'seq', num(t.seq), 'rev', num(t.rev), 'ib', num(t.ib),
    }
    local drop = {}
    local function opt(name, value)
      if value == nil then drop[#drop + 1] = name else fields[#fields + 1] = name; fields[#fields + 1] = value end
    end
    opt('msg', t.msg)
    opt('vars', t.vars)
    opt('res', t.res)
    opt('reqs', #t.reqs > 0 and cmsgpack.pack(t.reqs) or nil)
    opt('iss', #t.iss > 0 and cmsgpack.pack(t.iss) or nil)
    opt('ans', #t.ans > 0 and cmsgpack.pack(t.ans) or nil)
    opt('err', t.err)
    opt('cra', t.cra and num(t.cra) or nil)
    opt('lh', t.lh)
    opt('le', t.le and num(t.le) or nil)
    redis.call('HSET', key, unpack(fields))
    if #drop > 0 and not fresh then redis.call('HDEL', key, unpack(drop)) end
    if changed then
      touch_clock(ctx)
      publish(ctx, t)
    end
  end

  local function remove(ctx, t)
    redis.call('DEL', task_key(ctx, t.id))
    redis.call('ZREM', ctx.idx, t.id)
    redis.call('ZREM', ctx.exp, t.id)
  end

  -- a lease that ran out fails the task (the server's sweep; here on the next access)
  local function expire_lease(ctx, t, now)
    if t.le and t.le <= now and not TERMINAL[t.st] and not is_expired(t, now) then
      writing(ctx)
      local holder = t.lh
      t.lh, t.le = nil, nil
      t.err = '{"code":-32603,"message":"worker lost: lease expired","data":{"worker":' .. quote(holder) .. '}}'
      t.st = 'failed'
      t.msg = 'worker lost'
      save(ctx, t, true)
    end
  end

  -- the store's _find: NOTFOUND for a missing task or one past retention
  local function find(ctx, id)
    check_task_id(id)
    local t = load(ctx, id)
    if t == nil then not_found(id) end
    local now = now_ms(ctx)
    if is_due(ctx, t, now) then
      remove(ctx, t)
      publish(ctx, t)
      not_found(id)
    end
    expire_lease(ctx, t, now)
    return t
  end

  local function find_mutable(ctx, id)
    local t = find(ctx, id)
    if is_expired(t, ctx.now) then fail('EXPIRED task expired: ' .. id) end
    return t
  end

  -- evict the owner's tasks whose expires_at + retention <= now (at most `most` of them, the
  -- earliest first; all when nil); returns how many. Keys Redis expired already are only
  -- unindexed.
  local function evict_due(ctx, now, retention, most)
    local ids
    if most then
      ids = redis.call('ZRANGE', ctx.exp, '-inf', num(now - retention), 'BYSCORE', 'LIMIT', 0, most)
    else
      ids = redis.call('ZRANGE', ctx.exp, '-inf', num(now - retention), 'BYSCORE')
    end
    local count = 0
    for _, id in ipairs(ids) do
      local ttl_c = redis.call('HMGET', task_key(ctx, id), 'c', 'ttl')
      local c, ttl = tonumber(ttl_c[1]), tonumber(ttl_c[2])
      redis.call('ZREM', ctx.exp, id)
      redis.call('ZREM', ctx.idx, id)
      if c and ttl and now >= c + ttl + retention then
        local t = load(ctx, id)
        redis.call('DEL', task_key(ctx, id))
        publish(ctx, t)
        count = count + 1
      elseif c then
        -- not due after all (the retention changed): keep it indexed
        local seq = redis.call('HGET', task_key(ctx, id), 'seq')
        redis.call('ZADD', ctx.idx, seq, id)
        if ttl then redis.call('ZADD', ctx.exp, num(c + ttl), id) end
      end
    end
    return count
  end

  -- ---------------------------------------------------------------- cursors (HMAC-SHA1, owner-bound)

  local function hex2bin(h)
    return (h:gsub('..', function(c) return schar(tonumber(c, 16)) end))
  end

  local function hmac(key, msg)
    key = key .. string.rep('\0', 64 - #key)
    local ipad, opad = {}, {}
    for i = 1, 64 do
      local b = sbyte(key, i)
      ipad[i] = schar(bit.bxor(b, 0x36))
      opad[i] = schar(bit.bxor(b, 0x5c))
    end
    local inner = hex2bin(redis.sha1hex(tconcat(ipad) .. msg))
    return hex2bin(redis.sha1hex(tconcat(opad) .. inner))
  end

  local B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'
  local B64_INDEX = {}
  for i = 1, 64 do B64_INDEX[sbyte(B64, i)] = i - 1 end

  local function b64url(raw) -- #raw a multiple of 3
    local out = {}
    for i = 1, #raw, 3 do
      local a, b, c = sbyte(raw, i, i + 2)
      local v = a * 65536 + b * 256 + c
      out[#out + 1] = schar(sbyte(B64, math.floor(v / 262144) + 1), sbyte(B64, math.floor(v / 4096) % 64 + 1),
        sbyte(B64, math.floor(v / 64) % 64 + 1), sbyte(B64, v % 64 + 1))
    end
    return tconcat(out)
  end

  local function unb64url(text) -- #text a multiple of 4; nil if not in the alphabet
    local out = {}
    for i = 1, #text, 4 do
      local v = 0
      for k = i, i + 3 do
        local d = B64_INDEX[sbyte(text, k)]
        if d == nil then return nil end
        v = v * 64 + d
      end
      out[#out + 1] = schar(math.floor(v / 65536), math.floor(v / 256) % 256, v % 256)
    end
    return tconcat(out)
  end

  local function seq_bytes(seq)
    local out = {}
    for i = 8, 1, -1 do
      out[i] = schar(seq % 256)
      seq = math.floor(seq / 256)
    end
    return tconcat(out)
  end

  local function cursor_mac(ctx, secret, body)
    local o = ctx.owner
    local len = #o
    local prefix = schar(math.floor(len / 16777216) % 256, math.floor(len / 65536) % 256, math.floor(len / 256) % 256, len % 256)
    return ssub(hmac(secret, prefix .. o .. body), 1, 12)
  end

  local function encode_cursor(ctx, secret, seq)
    local body = '\1' .. seq_bytes(seq)
    return b64url(body .. cursor_mac(ctx, secret, body))
  end

  local function decode_cursor(ctx, secret, cursor)
    if #cursor ~= 28 or secret == nil then fail('ERR invalid cursor') end
    local raw = unb64url(cursor)
    if raw == nil or #raw ~= 21 or sbyte(raw, 1) ~= 1 then fail('ERR invalid cursor') end
    local body, mac = ssub(raw, 1, 9), ssub(raw, 10)
    if cursor_mac(ctx, secret, body) ~= mac then fail('ERR invalid cursor') end
    local seq = 0
    for i = 2, 9 do seq = seq * 256 + sbyte(body, i) end
    return seq
  end

  -- ---------------------------------------------------------------- operations

  local ops = {}

  local CREATE_OPTS = { TTL = true, POLLINTERVAL = true, ID = true }

  function ops.create(ctx, rest, random)
    arity(rest, 1, 'task.create')
    local opts = options(rest, 2, CREATE_OPTS)
    local cfg = ctx.cfg
    local method = rest[1]
    if not valid_utf8(method) then fail('ERR method must be valid UTF-8') end
    local ttl, unlimited = nil, false
    local ttl_text
    if opts.TTL ~= nil then
      if upper(opts.TTL) == 'NONE' then unlimited = true
      elseif is_digits(opts.TTL) then
        ttl = digits_value(opts.TTL); ttl_text = opts.TTL:gsub('^0+(%d)', '%1')
      else ttl = 0 end
    end
    local poll
    if opts.POLLINTERVAL ~= nil then
      poll = is_digits(opts.POLLINTERVAL) and digits_value(opts.POLLINTERVAL) or 0
      if poll < 1 then fail('ERR POLLINTERVAL must be a whole number >= 1') end
    end
    local task_id = opts.ID
    -- the store's checks
    if method == '' then fail('ERR request method must not be empty') end
    if #method > cfg.max_string_length then
      fail(sfmt('TOOLARGE request method is %d bytes (max %d)', #method, cfg.max_string_length))
    end
    if unlimited then
      if cfg.max_ttl_ms ~= 0 then
        fail('ERR unlimited TTL (TTL NONE) needs max_ttl_ms 0; max_ttl_ms is ' .. num(cfg.max_ttl_ms))
      end
    elseif ttl == nil then
      ttl = cfg.default_ttl_ms
    else
      if ttl < 1 then fail('ERR TTL must be a whole number >= 1 or NONE') end
      local maximum = cfg.max_ttl_ms ~= 0 and cfg.max_ttl_ms or SAFE_MAX
      if ttl > maximum then
        fail('ERR TTL ' .. ttl_text .. 'ms exceeds maximum allowed ' .. num(maximum) .. 'ms')
      end
    end
    if poll == nil then poll = cfg.default_poll_interval_ms
    elseif poll > SAFE_MAX then fail('ERR POLLINTERVAL must be a whole number >= 1') end
    if task_id ~= nil then check_task_id(task_id) end
    if not (random and #random == 32 and not sfind(random, '[^0-9a-f]')) then
      fail('ERR ts_create needs 32 lower-case hex digits of random bytes before its arguments')
    end

    local now = now_ms(ctx)
    local retention = cfg.expired_retention_ms
    if task_id ~= nil then
      local existing = load(ctx, task_id)
      if existing then
        if not is_due(ctx, existing, now) then fail('EXISTS task already exists: ' .. task_id) end
        remove(ctx, existing)
        publish(ctx, existing)
      end
    end
    -- a few due tasks go on every create, so the indexes of an owner that never lists, cleans
    -- up or reaches its limit do not keep the ids of tasks Redis expired long ago
    evict_due(ctx, now, retention, 8)
    local limit = cfg.max_tasks_per_owner
    if limit > 0 then
      local count = redis.call('ZCARD', ctx.idx)
      if count >= limit then
        evict_due(ctx, now, retention)
        count = redis.call('ZCARD', ctx.idx)
        if count >= limit then
          fail(sfmt('LIMIT owner has %d tasks (max %d): cancel or wait for existing tasks to expire', count, limit))
        end
      end
    end
    if task_id == nil then
      local hex = random
      while true do
        local b7 = tonumber(ssub(hex, 13, 14), 16)
        local b9 = tonumber(ssub(hex, 17, 18), 16)
        local h = ssub(hex, 1, 12) .. sfmt('%02x', b7 % 16 + 64) .. ssub(hex, 15, 16)
          .. sfmt('%02x', b9 % 64 + 128) .. ssub(hex, 19, 32)
        task_id = ssub(h, 1, 8) .. '-' .. ssub(h, 9, 12) .. '-' .. ssub(h, 13, 16) .. '-' .. ssub(h, 17, 20) .. '-' .. ssub(h, 21, 32)
        if redis.call('EXISTS', task_key(ctx, task_id)) == 0 then break end
        hex = ssub(redis.sha1hex(hex), 1, 32)
      end
    end
    if redis.call('HEXISTS', ctx.meta, 'secret') == 0 then
      redis.call('HSET', ctx.meta, 'secret', hex2bin(redis.sha1hex(random .. ctx.owner)))
    end
    local seq = redis.call('HINCRBY', ctx.meta, 'seq', 1)
    local t = { id = task_id, st = 'working', c = now, u = now, ttl = (not unlimited) and ttl or nil,
      pi = poll, m = method, seq = seq, rev = 0, ib = 0, reqs = {}, iss = {}, ans = {} }
    save(ctx, t, false, true)
    set_expiry(ctx, task_key(ctx, task_id), t)
    redis.call('ZADD', ctx.idx, seq, task_id)
    if t.ttl then redis.call('ZADD', ctx.exp, num(t.c + t.ttl), task_id) end
    touch_clock(ctx)
    local v1 = render_v1(t)
    redis.call('SPUBLISH', ctx.channel, v1)
    if ctx.v2 then return render_v2(t) end
    return v1
  end

  function ops.get(ctx, rest)
    ctx.reading = true
    arity(rest, 1, 'task.get')
    options(rest, 2, {})
    return render(ctx, find(ctx, rest[1]))
  end

  local MESSAGE_OPTS = { MESSAGE = true }

  function ops.update(ctx, rest)
    -- (the owner is always given, in the key: as TASK.UPDATE <id> OWNER <o> on taskstore)
    arity(rest, 1, 'task.update')
    local start = 2
    local status
    local word = upper(rest[2] or 'OWNER')
    if word ~= 'MESSAGE' and word ~= 'OWNER' then
      status = parse_status(rest[2])
      start = 3
    end
    local opts = options(rest, start, MESSAGE_OPTS)
    local set_message = opts.MESSAGE ~= nil
    if status == nil and not set_message then fail('ERR TASK.UPDATE needs a status, MESSAGE or both') end
    local message = message_opt(opts)
    check_message(ctx, message)
    local t = find_mutable(ctx, rest[1])
    if status ~= nil then
      if not can_transition(t.st, status) then invalid_transition(t.id, t.st, status) end
      t.st = status
    end
    t.msg = message
    save(ctx, t, true)
    return render(ctx, t)
  end

  -- the end of the JSON value starting at `pos` in compact JSON written by `encode`
  local function skip_value(text, pos)
    local c = ssub(text, pos, pos)
    if c == '"' then
      local p = pos + 1
      while true do
        local q = sfind(text, '["\\]', p)
        if ssub(text, q, q) == '"' then return q end
        p = q + 2
      end
    elseif c == '{' or c == '[' then
      local depth, p = 0, pos
      while true do
        local q = sfind(text, '["{}%[%]]', p)
        local d = ssub(text, q, q)
        if d == '"' then
          q = skip_value(text, q)
        elseif d == '{' or d == '[' then
          depth = depth + 1
        else
          depth = depth - 1
          if depth == 0 then return q end
        end
        p = q + 1
      end
    end
    return sfind(text, '[,}%]]', pos) - 1 -- a number or a literal
  end

  -- merge `update` (parsed; null deletes) into the stored compact JSON object `stored`
  local function splice_members(stored, update)
    local keys, vals, index = {}, {}, {}
    local pos = 2
    while ssub(stored, pos, pos) == '"' do
      local key_end = skip_value(stored, pos)
      local qkey = ssub(stored, pos, key_end)
      local value_end = skip_value(stored, key_end + 2)
      keys[#keys + 1] = qkey
      vals[qkey] = ssub(stored, key_end + 2, value_end)
      index[qkey] = #keys
      pos = value_end + 2 -- past the ',' (or the final '}')
    end
    -- each key occurs once in `update`: a null removes it, a value replaces it in place or
    -- comes last
    for _, key in ipairs(update.keys) do
      local qkey = quote(key)
      local v = update.vals[key]
      if v == NULL then
        vals[qkey] = nil
      else
        if index[qkey] == nil then
          keys[#keys + 1] = qkey
          index[qkey] = #keys
        end
        vals[qkey] = encode_with(v, quote)
      end
    end
    local out = {}
    for _, qkey in ipairs(keys) do
      local v = vals[qkey]
      if v ~= nil then out[#out + 1] = qkey .. ':' .. v end
    end
    return '{' .. tconcat(out, ',') .. '}'
  end

  function ops.setvars(ctx, rest)
    arity(rest, 2, 'task.setvars')
    options(rest, 3, {})
    local cfg = ctx.cfg
    local t = find_mutable(ctx, rest[1])
    local update = parse_json(rest[2], 'variables', true,
      sfmt('TOOLARGE variables nest too deeply (max %d levels)', cfg.max_variable_depth))
    if update.kind ~= 'obj' then fail('ERR invalid JSON: variables must be a JSON object') end
    check_variable_values(update, cfg.max_variable_depth, cfg.max_string_length)
    if t.vars and not has_surrogate(update) and not sfind(t.vars, '\\u[dD][89a-fA-F]') then
      -- the stored text is this library's own compact JSON: splice its top-level members
      -- instead of parsing it again (what Python's dict merge + json.dumps give, byte for byte)
      local encoded = splice_members(t.vars, update)
      if #encoded > cfg.max_variable_size_bytes then
        fail(sfmt('TOOLARGE variables are %d bytes (max %d)', #encoded, cfg.max_variable_size_bytes))
      end
      t.vars = encoded ~= '{}' and encoded or nil
      save(ctx, t, true)
      return render(ctx, t)
    end
    local merged
    if t.vars then merged = parse_json(t.vars, 'variables', false, 'ERR stored variables nest too deeply')
    else merged = { kind = 'obj', keys = {}, vals = {} } end
    for _, key in ipairs(update.keys) do
      local v = update.vals[key]
      if v == NULL then
        if merged.vals[key] ~= nil then
          merged.vals[key] = nil
          for i, k in ipairs(merged.keys) do
            if k == key then table.remove(merged.keys, i); break end
          end
        end
      else
        if merged.vals[key] == nil then merged.keys[#merged.keys + 1] = key end
        merged.vals[key] = v
      end
    end
    local encoded = encode(merged)
    if #encoded > cfg.max_variable_size_bytes then
      fail(sfmt('TOOLARGE variables are %d bytes (max %d)', #encoded, cfg.max_variable_size_bytes))
    end
    t.vars = #merged.keys > 0 and encoded or nil
    save(ctx, t, true)
    return render(ctx, t)
  end

  local strict_cjson -- a private cjson (its settings are not the shared module's)

  -- Whether `raw` is certainly JSON that Python's json.loads accepts, checked in C: a cjson
  -- that refuses NaN, Infinity, hex and leading zeros checks the grammar, and patterns catch
  -- what it still lets through (raw control characters in strings, "1." and "-.5"). False
  -- means "not certain": the full parser decides (and words the error as Python does).
  local function surely_valid(raw)
    if sfind(raw, '[%z\1-\31]') or sfind(raw, '%d%.[^%d]') or sfind(raw, '%d%.$')
      or sfind(raw, '%-%.') then
      return false
    end
    if strict_cjson == nil then
      strict_cjson = cjson.new()
      strict_cjson.decode_invalid_numbers(false)
      strict_cjson.decode_max_depth(JSON_MAX_DEPTH)
    end
    return (pcall(strict_cjson.decode, raw))
  end

  local function parse_result(ctx, raw)
    local max = ctx.cfg.max_result_bytes
    if #raw > max then fail(sfmt('TOOLARGE result is %d bytes (max %d)', #raw, max)) end
    -- only the syntax is checked: the text itself is what TASK.RESULT replies with
    if not valid_utf8(raw) then fail('ERR invalid JSON: result is not valid UTF-8') end
    if not surely_valid(raw) then
      parse_json(raw, 'result', false, 'ERR invalid JSON: result nests too deeply')
    end
    return raw
  end

  function ops.setresult(ctx, rest)
    arity(rest, 2, 'task.setresult')
    options(rest, 3, {})
    local t = find_mutable(ctx, rest[1])
    t.res = parse_result(ctx, rest[2])
    save(ctx, t, true)
    return redis.status_reply('OK')
  end

  local RESULT_OPTS = { BLOCK = true }
  local RESULT_FLAGS = { ANY = true }

  -- blocking.result_reply: the reply once ready, nil to keep waiting
  local function result_ready(t, any_status)
    local result = result_json(t)
    if any_status and result ~= nil then return result end
    if not TERMINAL[t.st] then return nil end
    if result == nil and t.st ~= 'cancelled' then return nil end
    if result == nil then fail('NOTREADY task ' .. t.id .. ' is ' .. t.st .. '; no result yet') end
    return result
  end

  -- with BLOCK the function never blocks: it answers the result when ready, else a null reply,
  -- and the client waits for a notification on tasks:{<owner>} and asks again
  function ops.result(ctx, rest)
    ctx.reading = true
    arity(rest, 1, 'task.result')
    local opts = options(rest, 2, RESULT_OPTS, RESULT_FLAGS)
    local id = rest[1]
    local any_status = opts.ANY ~= nil
    if opts.BLOCK == nil then
      local t = find(ctx, id)
      local result = result_json(t)
      if any_status then return result or false end
      if result == nil or not TERMINAL[t.st] then
        fail('NOTREADY task ' .. id .. ' is ' .. t.st .. '; no result yet')
      end
      return result
    end
    timeout_arg(opts.BLOCK)
    local t = find(ctx, id)
    return result_ready(t, any_status) or false
  end

  local COMPLETIONS = { completed = true, failed = true }

  function ops.complete(ctx, rest)
    arity(rest, 3, 'task.complete')
    local opts = options(rest, 4, MESSAGE_OPTS)
    local status = parse_status(rest[2])
    local message = message_opt(opts)
    if not COMPLETIONS[status] then fail('ERR status must be completed or failed') end
    check_message(ctx, message)
    local t = find_mutable(ctx, rest[1])
    if not can_transition(t.st, status) then invalid_transition(t.id, t.st, status) end
    t.res = parse_result(ctx, rest[3])
    t.st = status
    t.msg = message
    save(ctx, t, true)
    return render(ctx, t)
  end

  local CANCEL_FLAGS = { REQUEST = true }

  function ops.cancel(ctx, rest)
    arity(rest, 1, 'task.cancel')
    local opts = options(rest, 2, MESSAGE_OPTS, CANCEL_FLAGS)
    local message = message_opt(opts)
    check_message(ctx, message)
    local t = find_mutable(ctx, rest[1])
    if opts.REQUEST ~= nil then
      if TERMINAL[t.st] or t.cra ~= nil then return render(ctx, t) end
      t.cra = ctx.now
      if message ~= nil then t.msg = message end
      save(ctx, t, true)
      return render(ctx, t)
    end
    if not can_transition(t.st, 'cancelled') then invalid_transition(t.id, t.st, 'cancelled') end
    t.st = 'cancelled'
    t.msg = message
    save(ctx, t, true)
    return render(ctx, t)
  end

  local LIST_OPTS = { CURSOR = true, LIMIT = true }

  function ops.list(ctx, rest)
    local opts = options(rest, 1, LIST_OPTS)
    local cfg = ctx.cfg
    local limit = cfg.list_default_limit
    if opts.LIMIT ~= nil then
      limit = is_digits(opts.LIMIT) and digits_value(opts.LIMIT) or 0
      if limit < 1 or limit > cfg.list_max_limit then
        fail('ERR LIMIT must be between 1 and ' .. num(cfg.list_max_limit))
      end
    end
    local secret = redis.call('HGET', ctx.meta, 'secret') or nil
    local before = '+inf'
    if opts.CURSOR ~= nil then before = '(' .. num(decode_cursor(ctx, secret, opts.CURSOR)) end
    local now = now_ms(ctx)
    local page = {}
    local more = false
    local batch = limit + 1
    while not more do
      local ids = redis.call('ZRANGE', ctx.idx, before, '-inf', 'BYSCORE', 'REV', 'LIMIT', 0, batch, 'WITHSCORES')
      if #ids == 0 then break end
      for i = 1, #ids, 2 do
        local id = ids[i]
        before = '(' .. ids[i + 1]
        local t = load(ctx, id)
        if t == nil then
          redis.call('ZREM', ctx.idx, id)
          redis.call('ZREM', ctx.exp, id)
        elseif is_due(ctx, t, now) then
          remove(ctx, t)
          publish(ctx, t)
        elseif #page < limit then
          expire_lease(ctx, t, now)
          page[#page + 1] = t
        else
          more = true
          break
        end
      end
      if #ids < batch * 2 then break end
    end
    local items = {}
    for i, t in ipairs(page) do
      if ctx.v2 then items[i] = head(t, true) .. '}' else items[i] = render_v1(t) end
    end
    local body = '{"tasks":[' .. tconcat(items, ',') .. ']'
    if more then
      body = body .. ',"nextCursor":' .. quote(encode_cursor(ctx, secret, page[#page].seq))
    end
    return body .. '}'
  end

  function ops.cleanup(ctx, rest)
    options(rest, 1, {})
    return evict_due(ctx, now_ms(ctx), 0)
  end

  function ops.del(ctx, rest)
    arity(rest, 1, 'task.del')
    options(rest, 2, {})
    local id = rest[1]
    check_task_id(id)
    local t = load(ctx, id)
    if t == nil then return 0 end
    remove(ctx, t)
    publish(ctx, t)
    if is_due(ctx, t, now_ms(ctx)) then return 0 end
    return 1
  end

  local WAIT_OPTS = { STATUS = true, BLOCK = true, REV = true }

  -- TASK.WAIT without blocking: the task once its status differs from STATUS (or, without it,
  -- once its revision differs from REV, the revision an earlier call answered), else the
  -- current revision as an integer (the client waits for a notification and asks again)
  function ops.wait(ctx, rest)
    ctx.reading = true
    arity(rest, 1, 'task.wait')
    local opts = options(rest, 2, WAIT_OPTS)
    local status
    if opts.STATUS ~= nil then status = parse_status(opts.STATUS) end
    if opts.BLOCK ~= nil then timeout_arg(opts.BLOCK) end
    local rev
    if opts.REV ~= nil then
      if not is_digits(opts.REV) then fail('ERR REV must be a whole number') end
      rev = digits_value(opts.REV)
    end
    local t = find(ctx, rest[1])
    if status ~= nil then
      if t.st ~= status then return render(ctx, t) end
    elseif rev ~= nil and t.rev ~= rev then
      return render(ctx, t)
    end
    return t.rev
  end

  -- -- 2026-07-28 -----------------------------------------------------------------------------

  local function key_pairs(rest, start)
    local list = {}
    local i, n = start, #rest
    while i <= n do
      local w = upper(rest[i])
      if w == 'MESSAGE' or w == 'OWNER' then break end
      if i + 1 > n then fail('ERR syntax error: every key needs a JSON value') end
      list[#list + 1] = { rest[i], rest[i + 1] }
      i = i + 2
    end
    return list, i
  end

  local function check_input_size(ctx, size)
    local limit = ctx.cfg.max_input_bytes
    if size > limit then
      fail(sfmt('TOOLARGE input requests and answers are %d bytes (max %d)', size, limit))
    end
  end

  function ops.ask(ctx, rest)
    arity(rest, 1, 'task.ask')
    local requests, i = key_pairs(rest, 2)
    local opts = options(rest, i, MESSAGE_OPTS)
    local message = message_opt(opts)
    if #requests == 0 then fail('ERR TASK.ASK needs at least one key and request') end
    for _, kv in ipairs(requests) do
      if not valid_key(kv[1]) then
        fail('ERR invalid input request key: must be 1-256 printable ASCII characters (0x21-0x7e)')
      end
    end
    check_message(ctx, message)
    local t = find_mutable(ctx, rest[1])
    if TERMINAL[t.st] then invalid_transition(t.id, t.st, 'input_required') end
    local issued = {}
    for _, k in ipairs(t.iss) do issued[k] = true end
    local seen = {}
    for _, kv in ipairs(requests) do
      if issued[kv[1]] or seen[kv[1]] then fail('EXISTS input request key already used: ' .. kv[1]) end
      seen[kv[1]] = true
    end
    local size = t.ib
    local encoded = {}
    for _, kv in ipairs(requests) do
      local what = 'request ' .. py_repr(kv[1])
      local req = parse_object(kv[2], what, ctx.cfg.max_input_bytes)
      local m, p = req.vals.method, req.vals.params
      if not (m and m.kind == 'str' and p and p.kind == 'obj') then
        fail('ERR ' .. what .. ' must be a JSON object with a string method and an object params')
      end
      local data = encode(req)
      size = size + #kv[1] + #data
      encoded[#encoded + 1] = { kv[1], data }
    end
    check_input_size(ctx, size)
    for _, kv in ipairs(encoded) do
      t.reqs[#t.reqs + 1] = kv
      t.iss[#t.iss + 1] = kv[1]
    end
    t.ib = size
    if t.st ~= 'input_required' then
      t.st = 'input_required'
      t.msg = message
    elseif message ~= nil then
      t.msg = message
    end
    save(ctx, t, true)
    return render(ctx, t)
  end

  function ops.answer(ctx, rest)
    arity(rest, 1, 'task.answer')
    local answers, i = key_pairs(rest, 2)
    local opts = options(rest, i, MESSAGE_OPTS)
    if next(opts) ~= nil then fail('ERR syntax error') end
    if #answers == 0 then fail('ERR TASK.ANSWER needs at least one key and response') end
    local limit = ctx.cfg.max_input_bytes
    local parsed = {}
    for _, kv in ipairs(answers) do
      local key = kv[1]
      parsed[#parsed + 1] = { key, encode(parse_object(kv[2], 'response ' .. py_repr(key), limit)) }
    end
    local t = find(ctx, rest[1])
    if is_expired(t, ctx.now) or TERMINAL[t.st] or #t.reqs == 0 then return 0 end
    local outstanding = {}
    for idx, kv in ipairs(t.reqs) do outstanding[kv[1]] = idx end
    local accepted, order = {}, {}
    for _, kv in ipairs(parsed) do
      if outstanding[kv[1]] and accepted[kv[1]] == nil then
        accepted[kv[1]] = kv[2]
        order[#order + 1] = kv[1]
      end
    end
    if #order == 0 then return 0 end
    local size = t.ib
    for _, key in ipairs(order) do
      size = size + #accepted[key] - #t.reqs[outstanding[key]][2]
    end
    check_input_size(ctx, size)
    local remaining = {}
    for _, kv in ipairs(t.reqs) do
      if accepted[kv[1]] == nil then remaining[#remaining + 1] = kv end
    end
    t.reqs = remaining
    for _, key in ipairs(order) do t.ans[#t.ans + 1] = { key, accepted[key] } end
    t.ib = size
    if #t.reqs == 0 and t.st == 'input_required' then
      t.st = 'working'
      t.msg = nil
    end
    save(ctx, t, true)
    return #order
  end

  local ANSWERS_OPTS = { BLOCK = true }

  -- with BLOCK: the answers once no request is outstanding, the task is terminal or its
  -- cancellation was requested, else a null reply (the client waits and asks again)
  function ops.answers(ctx, rest)
    ctx.reading = true
    arity(rest, 1, 'task.answers')
    local opts = options(rest, 2, ANSWERS_OPTS)
    if opts.BLOCK == nil then return pairs_object(find(ctx, rest[1]).ans) end
    timeout_arg(opts.BLOCK)
    local t = find(ctx, rest[1])
    if TERMINAL[t.st] or #t.reqs == 0 or t.cra ~= nil then return pairs_object(t.ans) end
    return false
  end

  function ops.fail(ctx, rest)
    arity(rest, 2, 'task.fail')
    local opts = options(rest, 3, MESSAGE_OPTS)
    local message = message_opt(opts)
    check_message(ctx, message)
    local t = find_mutable(ctx, rest[1])
    if not can_transition(t.st, 'failed') then invalid_transition(t.id, t.st, 'failed') end
    local e = parse_object(rest[2], 'error', ctx.cfg.max_result_bytes)
    local code, msg = e.vals.code, e.vals.message
    if not (code and code.kind == 'num' and code.int and msg and msg.kind == 'str') then
      fail('ERR error must be a JSON-RPC error object: an integer code and a string message')
    end
    t.err = encode(e)
    t.st = 'failed'
    t.msg = message
    save(ctx, t, true)
    return render(ctx, t)
  end

  function ops.inspect(ctx, rest)
    ctx.reading = true
    arity(rest, 1, 'task.inspect')
    options(rest, 2, {})
    local t = find(ctx, rest[1])
    local issued = {}
    for i, k in ipairs(t.iss) do issued[i] = k end
    table.sort(issued)
    local exp = expires_at(t)
    return {
      'task', render(ctx, t),
      'owner', ctx.owner,
      'method', t.m,
      'variables', t.vars or '{}',
      'input_requests', pairs_object(t.reqs),
      'issued_keys', issued,
      'answers', pairs_object(t.ans),
      'error', t.err or false,
      'cancel_requested_at', t.cra and format_ms(t.cra) or false,
      'expires_at', exp and format_ms(exp) or false,
      'lease_holder', t.lh or false,
      'lease_expires_at', t.le and format_ms(t.le) or false,
    }
  end

  function ops.lease(ctx, rest)
    arity(rest, 3, 'task.lease')
    options(rest, 4, {})
    local raw = rest[3]
    if not is_digits(raw) then fail('ERR lease must be a whole number of ms') end
    local holder = rest[2]
    if not valid_key(holder) then
      fail('ERR invalid worker: must be 1-256 printable ASCII characters (0x21-0x7e)')
    end
    local ms = digits_value(raw)
    if ms > MAX_LEASE_MS then fail('ERR lease must be between 0 and ' .. MAX_LEASE_MS .. ' ms') end
    local t = find_mutable(ctx, rest[1])
    local now = ctx.now
    if TERMINAL[t.st] then
      if t.lh ~= nil then t.lh, t.le = nil, nil; save(ctx, t, false) end
      return 0
    end
    if t.lh ~= nil and t.lh ~= holder and t.le ~= nil and t.le > now then
      fail('LEASED task ' .. t.id .. ' is leased by another worker for ' .. num(t.le - now) .. ' ms')
    end
    if ms == 0 then
      if t.lh ~= nil then t.lh, t.le = nil, nil; save(ctx, t, false) end
      return 0
    end
    t.lh = holder
    t.le = now + ms
    save(ctx, t, false)
    touch_clock(ctx)
    return ms
  end

-- ---------------------------------------------------------------- dispatch

local function dispatch(name, first, with_random, keys, args)
  local ok, result = pcall(function()
    local ctx, rest = context(keys, args, first)
    if with_random then return ops[name](ctx, rest, args[3]) end
    return ops[name](ctx, rest)
  end)
  if ok then return result end
  if getmetatable(result) == Fail then return redis.error_reply(result.text) end
  error(result, 0)
end

return dispatch
end

-- ---------------------------------------------------------------- registration
-- At load time a library may only register functions (not even `string` is reachable), so
-- everything above is built at the first call and kept for the library's lifetime.

local dispatch

local function entry(name, first, with_random)
  return function(keys, args)
    if dispatch == nil then dispatch = build() end
    return dispatch(name, first, with_random, keys, args)
  end
end

local NAMES = { 'get', 'update', 'setvars', 'setresult', 'result', 'complete', 'cancel', 'list',
  'cleanup', 'del', 'wait', 'ask', 'answer', 'answers', 'fail', 'inspect', 'lease' }
for i = 1, #NAMES do
  redis.register_function('ts_' .. NAMES[i], entry(NAMES[i], 3, false))
end
redis.register_function('ts_create', entry('create', 4, true))

redis.register_function {
  function_name = 'ts_version',
  callback = function() return VERSION end,
  flags = { 'no-writes', 'allow-stale' },
}
