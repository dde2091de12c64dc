-- Dovecot 2.3 Lua passdb (package dovecot-auth-lua) for the oauth2mail sandbox: OAuth bearer
-- tokens checked by RFC 7662 introspection, with shared-mailbox delegation.
--
-- For every XOAUTH2 / OAUTHBEARER login Dovecot calls auth_password_verify(req, token):
--   1. req.user is the mailbox asked for (XOAUTH2 user=, OAUTHBEARER a=; lowercased by Dovecot's
--      default auth_username_format %Lu); `token` is the bearer token.
--   2. The token is introspected at each endpoint listed in the INTROSPECTION file, in order, until
--      one says "active": true. Lines are "URL BASIC|-": BASIC is the precomputed base64 of
--      client_id:secret for HTTP Basic client authentication (Dovecot's Lua has no base64), "-" for
--      none. scripts/sandbox writes oidc-provider's endpoint there; scripts/e2e adds the fake
--      Microsoft server's. The file is re-read at every login.
--   3. The token owner is the top-level "sub" (oidc-provider) or else "username" (the fake
--      Microsoft server) of the answer, parsed by the strict JSON decoder below.
--   4. The login is accepted when owner == mailbox, or when the DELEGATIONS file has a line
--      "owner mailbox" (re-read at every login, so delegations can change while running).
--   5. Otherwise PASSWORD_MISMATCH; when no endpoint said active and one of them could not be
--      asked (HTTP error, bad JSON), INTERNAL_FAILURE (the client sees a temporary failure).
--
-- @INTROSPECTION@ and @DELEGATIONS@ are replaced by scripts/sandbox with absolute paths.
--
-- Traps (Dovecot 2.3.19):
--   * the entry point must be auth_password_verify(req, password); auth_passdb_lookup must NOT
--     exist (Dovecot would call it instead and the token would never reach this script)
--   * dovecot.http.client{} ignores unknown keys: request_timeout_msecs, not "timeout"
--   * set_payload() always sends "Expect: 100-continue"; the server must answer it (node does)
--   * the script runs in the auth process as user "dovecot": the files must be world-readable
local INTROSPECTION = "@INTROSPECTION@"
local DELEGATIONS = "@DELEGATIONS@"

local http_client = nil

local function urlencode(s)
  return (string.gsub(s, "[^%w%-%._~]", function(c) return string.format("%%%02X", string.byte(c)) end))
end

-- ---------------------------------------------------------------- minimal strict JSON decoder
-- Handles objects, arrays, strings (all escapes incl. \uXXXX and surrogate pairs), numbers,
-- true/false/null. JSON null becomes the sentinel JSON_NULL. Raises an error on malformed input.
local JSON_NULL = setmetatable({}, { __tostring = function() return "null" end })
local ESC = { ['"'] = '"', ['\\'] = '\\', ['/'] = '/', b = '\b', f = '\f', n = '\n', r = '\r', t = '\t' }

local function json_decode(s)
  local pos = 1
  local function skip_ws() pos = string.find(s, "[^ \t\r\n]", pos) or (#s + 1) end
  local function fail(what) error(string.format("JSON: %s at byte %d", what, pos), 0) end
  local parse_value

  local function parse_string()
    -- s:sub(pos, pos) == '"'
    local out, i = {}, pos + 1
    while true do
      local j = string.find(s, '["\\\0-\31]', i)   -- quote, backslash or U+0000..U+001F
      if not j then pos = i; fail("unterminated string") end
      out[#out + 1] = string.sub(s, i, j - 1)
      local c = string.sub(s, j, j)
      if c == '"' then pos = j + 1; return table.concat(out) end
      if c ~= "\\" then pos = j; fail("raw control character in string") end
      local e = string.sub(s, j + 1, j + 1)
      if ESC[e] then
        out[#out + 1] = ESC[e]; i = j + 2
      elseif e == "u" then
        local hex = string.sub(s, j + 2, j + 5)
        if not string.match(hex, "^%x%x%x%x$") then pos = j; fail("bad \\u escape") end
        local cp = tonumber(hex, 16); i = j + 6
        if cp >= 0xD800 and cp <= 0xDBFF and string.match(string.sub(s, i, i + 5), "^\\u%x%x%x%x$") then
          local lo = tonumber(string.sub(s, i + 2, i + 5), 16)
          if lo >= 0xDC00 and lo <= 0xDFFF then cp = 0x10000 + (cp - 0xD800) * 0x400 + (lo - 0xDC00); i = i + 6 end
        end
        out[#out + 1] = utf8.char(cp)
      else
        pos = j; fail("bad escape")
      end
    end
  end

  local function parse_object()
    local obj = {}
    pos = pos + 1; skip_ws()
    if string.sub(s, pos, pos) == "}" then pos = pos + 1; return obj end
    while true do
      skip_ws()
      if string.sub(s, pos, pos) ~= '"' then fail("object key expected") end
      local k = parse_string()
      skip_ws()
      if string.sub(s, pos, pos) ~= ":" then fail("':' expected") end
      pos = pos + 1
      obj[k] = parse_value()
      skip_ws()
      local c = string.sub(s, pos, pos)
      pos = pos + 1
      if c == "}" then return obj end
      if c ~= "," then pos = pos - 1; fail("',' or '}' expected") end
    end
  end

  local function parse_array()
    local arr = {}
    pos = pos + 1; skip_ws()
    if string.sub(s, pos, pos) == "]" then pos = pos + 1; return arr end
    while true do
      arr[#arr + 1] = parse_value()
      skip_ws()
      local c = string.sub(s, pos, pos)
      pos = pos + 1
      if c == "]" then return arr end
      if c ~= "," then pos = pos - 1; fail("',' or ']' expected") end
    end
  end

  parse_value = function()
    skip_ws()
    local c = string.sub(s, pos, pos)
    if c == "{" then return parse_object() end
    if c == "[" then return parse_array() end
    if c == '"' then return parse_string() end
    if string.sub(s, pos, pos + 3) == "true" then pos = pos + 4; return true end
    if string.sub(s, pos, pos + 4) == "false" then pos = pos + 5; return false end
    if string.sub(s, pos, pos + 3) == "null" then pos = pos + 4; return JSON_NULL end
    local num = string.match(s, "^-?%d+%.?%d*[eE]?[-+]?%d*", pos)
    if num and tonumber(num) then pos = pos + #num; return tonumber(num) end
    fail("unexpected character '" .. c .. "'")
  end

  local v = parse_value()
  skip_ws()
  if pos <= #s then fail("trailing garbage") end
  return v
end

-- ---------------------------------------------------------------- configuration files
-- true if the delegations file lists "owner target" (compared lowercased, like Dovecot's %Lu)
local function is_delegated(owner, target)
  local f = io.open(DELEGATIONS, "r")
  if f == nil then return false end
  for line in f:lines() do
    local o, t = string.match(line, "^%s*([^%s#]+)%s+([^%s#]+)")
    if o and string.lower(o) == owner and string.lower(t) == target then
      f:close()
      return true
    end
  end
  f:close()
  return false
end

-- list of { url = ..., basic = ... or nil } from the introspection file
local function introspection_endpoints()
  local list = {}
  local f = io.open(INTROSPECTION, "r")
  if f == nil then return list end
  for line in f:lines() do
    local url, basic = string.match(line, "^%s*([^%s#]+)%s*([^%s#]*)")
    if url then list[#list + 1] = { url = url, basic = (basic ~= "" and basic ~= "-") and basic or nil } end
  end
  f:close()
  return list
end

-- ask one endpoint; returns (owner or nil, error or nil)
local function introspect(req, ep, token)
  local r = http_client:request({ url = ep.url, method = "POST" })
  if ep.basic then r:add_header("Authorization", "Basic " .. ep.basic) end
  r:add_header("Content-Type", "application/x-www-form-urlencoded")
  r:add_header("Accept", "application/json")
  r:set_payload("token=" .. urlencode(token) .. "&token_type_hint=access_token")
  local resp = r:submit()
  local status = resp:status()
  if status ~= 200 then
    -- >= 9000 are Dovecot http-client errors (connection refused, timeout)
    return nil, "introspection at " .. ep.url .. ": HTTP " .. status .. " " .. tostring(resp:reason())
  end
  local ok, doc = pcall(json_decode, resp:payload())
  if not ok or type(doc) ~= "table" then
    return nil, "introspection at " .. ep.url .. ": unparsable answer"
  end
  if doc.active ~= true then return nil, nil end
  local owner = doc.sub
  if type(owner) ~= "string" or owner == "" then owner = doc.username end
  if type(owner) ~= "string" or owner == "" then
    req:log_info("active token without sub/username at " .. ep.url .. " (app-only token?)")
    return nil, nil
  end
  return string.lower(owner), nil
end

-- ---------------------------------------------------------------- Dovecot entry points
function script_init()
  for _, v in ipairs({ INTROSPECTION, DELEGATIONS }) do
    if string.match(v, "^@[%u_]+@$") then
      error("sandbox passdb: placeholder " .. v .. " not substituted (start it with scripts/sandbox)")
    end
  end
  http_client = dovecot.http.client({
    request_timeout_msecs = 5000,
    connect_timeout_msecs = 2000,
    max_attempts = 1,
    user_agent = "oauth2mail-sandbox-passdb",
    debug = false,
  })
  return 0
end

function script_deinit()
  http_client = nil
end

function auth_password_verify(req, password)
  if http_client == nil then script_init() end
  local login = string.lower(req.user)
  local owner, failure = nil, nil
  for _, ep in ipairs(introspection_endpoints()) do
    local o, err = introspect(req, ep, password)
    if o then owner = o; break end
    if err then req:log_error(err); failure = err end
  end
  if owner == nil then
    if failure then return dovecot.auth.PASSDB_RESULT_INTERNAL_FAILURE, failure end
    req:log_info("token rejected for " .. login .. ": inactive (unknown, expired or revoked)")
    return dovecot.auth.PASSDB_RESULT_PASSWORD_MISMATCH, "token inactive"
  end
  if owner == login then
    req:log_debug("token of " .. owner .. " accepted (owner)")
    return dovecot.auth.PASSDB_RESULT_OK, {}
  end
  if is_delegated(owner, login) then
    req:log_info("delegated login: token of " .. owner .. " accepted for " .. login)
    return dovecot.auth.PASSDB_RESULT_OK, {}
  end
  req:log_info("token of " .. owner .. " rejected for " .. login .. ": no delegation in " .. DELEGATIONS)
  return dovecot.auth.PASSDB_RESULT_PASSWORD_MISMATCH, "no delegation"
end
-- NB: no auth_passdb_lookup() here, on purpose (see the traps above).
