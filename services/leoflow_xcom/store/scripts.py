"""Server-side Lua scripts. Each touches only the keys it declares (one run's hash slot).

PUSH is the hot path: one round trip, one integer reply, atomic. The value and its index
entries are written together or not at all; TIME comes from Redis so expiry stamps match the
clock Redis expires keys by. The `#!lua` shebang makes Redis check maxmemory before the script
starts (noeviction: a full store refuses the whole push, never half of it).
"""

from __future__ import annotations

from typing import Final

# KEYS: value, index, expiry, meta
# ARGV: value, ttl_ms, member, run_info ("" when none)
# Returns {expiry (Unix ms), 1 if this push created the run's index else 0}.
PUSH: Final = """#!lua
local fresh = redis.call('EXISTS', KEYS[2]) == 0 and 1 or 0
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[2])
local expires = now + ttl
local member = ARGV[3]
redis.call('SET', KEYS[1], ARGV[1], 'PX', ttl)
redis.call('ZADD', KEYS[2], 0, member)
redis.call('ZADD', KEYS[3], expires, member)
redis.call('HSET', KEYS[4], member, string.len(ARGV[1]) .. ':' .. now .. ':' .. expires)
if ARGV[4] ~= '' then
  redis.call('HSETNX', KEYS[4], '@run', ARGV[4])
end
-- keys.RUN_FIRST_PUSH_FIELD: kept from the run's first push on (the UI's fallback run time).
redis.call('HSETNX', KEYS[4], '@first', now)
-- Drop index entries whose values Redis has already expired (bounded work per push).
local dead = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now, 'LIMIT', 0, 64)
if #dead > 0 then
  redis.call('ZREM', KEYS[2], unpack(dead))
  redis.call('ZREM', KEYS[3], unpack(dead))
  redis.call('HDEL', KEYS[4], unpack(dead))
end
-- Index keys live exactly as long as their longest-lived member.
for i = 2, 4 do
  if redis.call('PTTL', KEYS[i]) < ttl then
    redis.call('PEXPIRE', KEYS[i], ttl)
  end
end
return {expires, fresh}
"""

# Read-only listing, one round trip, O(log N + offset + page) when nothing expired is indexed.
# KEYS: index, expiry, meta
# ARGV: min, max (ZRANGEBYLEX bounds), key suffix ("" = any key), offset, limit,
#       map-index infix (":<encoded map index>:" = one map index of any task; "" = any)
# Returns {total, {member, meta, member, meta, ...}, run_info or false, first push ms or false}
LIST: Final = """#!lua flags=no-writes
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local min, max, suffix = ARGV[1], ARGV[2], ARGV[3]
local offset, limit = tonumber(ARGV[4]), tonumber(ARGV[5])
local infix = ARGV[6] or ''
local page
local total
local stale = redis.call('ZCOUNT', KEYS[2], '-inf', now)
if suffix == '' and infix == '' and stale == 0 then
  total = redis.call('ZLEXCOUNT', KEYS[1], min, max)
  page = redis.call('ZRANGEBYLEX', KEYS[1], min, max, 'LIMIT', offset, limit)
else
  -- Slow path: a key filter, or expired entries not pruned yet. Scan the range, keep live ones.
  local all = redis.call('ZRANGEBYLEX', KEYS[1], min, max)
  local live = {}
  local n = #suffix
  for _, m in ipairs(all) do
    -- Escaped ids hold no separator, so the infix can only match the map-index field.
    if (n == 0 or string.sub(m, -n) == suffix)
        and (infix == '' or string.find(m, infix, 1, true)) then
      local exp = redis.call('ZSCORE', KEYS[2], m)
      if exp and tonumber(exp) > now then
        live[#live + 1] = m
      end
    end
  end
  total = #live
  page = {}
  for i = offset + 1, math.min(offset + limit, total) do
    page[#page + 1] = live[i]
  end
end
local out = {}
if #page > 0 then
  local metas = redis.call('HMGET', KEYS[3], unpack(page))
  for i, m in ipairs(page) do
    out[#out + 1] = m
    out[#out + 1] = metas[i] or ''
  end
end
return {total, out, redis.call('HGET', KEYS[3], '@run'), redis.call('HGET', KEYS[3], '@first')}
"""

# Read-only summary of one run for the XCom browser, one round trip, O(XComs of the run):
# live XComs only (expiry checked against the Redis clock, as LIST does).
# KEYS: meta
# Returns {count, bytes, first pushed (Unix ms, -1 when none), last pushed, run_info or false}
RUN_SUMMARY: Final = """#!lua flags=no-writes
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local all = redis.call('HGETALL', KEYS[1])
local count, bytes, first, last = 0, 0, -1, -1
for i = 1, #all, 2 do
  if all[i] ~= '@run' then
    local size, pushed, expires = string.match(all[i + 1], '^(%d+):(%d+):(%d+)$')
    if size and tonumber(expires) > now then
      count = count + 1
      bytes = bytes + tonumber(size)
      pushed = tonumber(pushed)
      if first < 0 or pushed < first then first = pushed end
      if pushed > last then last = pushed end
    end
  end
end
return {count, bytes, first, last, redis.call('HGET', KEYS[1], '@run')}
"""
