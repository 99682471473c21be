"""Server-side Lua scripts. Each touches one run's keys (one hash slot) plus, for PUSH and
CLEAR outside a cluster, the run indexes (REGISTER_RUN writes those on a cluster).

PUSH is the hot path: one round trip, one small reply, atomic. The value, its index entries,
the quota counters and the run's registration are written together or not at all; a push over
a quota is refused inside the same script, so concurrent pushes can never overshoot it. TIME
comes from Redis so expiry stamps match the clock Redis expires keys by. The `#!lua` shebang
makes Redis check maxmemory before the script starts (noeviction: a full store refuses the
whole push, never half of it).
"""

from __future__ import annotations

from typing import Final

from leoflow_xcom.core import keys


def _with_fields(script: str) -> str:
    """The script with the meta hash's reserved fields declared after its shebang line, from
    core/keys.py: the Lua reads RUN_INFO and FIRST_PUSH, never copies of their spellings."""
    shebang, body = script.split("\n", 1)
    fields = (keys.RUN_INFO_FIELD, keys.RUN_FIRST_PUSH_FIELD)
    assert not any("'" in f or "\\" in f for f in fields)  # safe as Lua '...' literals
    return f"{shebang}\nlocal RUN_INFO, FIRST_PUSH = '{fields[0]}', '{fields[1]}'\n{body}"


# Shared by PUSH and CLEAR: forget index entries (members of the run's `:i` index) and take
# their sizes off the quota counters. The script defines I, E, M, K, Q (index, expiry, meta,
# by_key, quota keys) first. Deleting values is the caller's business (expired ones are gone).
_FORGET = """
local function size_of(meta)
  if not meta then return 0 end
  return tonumber(string.match(meta, '^(%d+):')) or 0
end
local function forget(members)
  if #members == 0 then return 0 end
  local metas = redis.call('HMGET', M, unpack(members))
  local by_key = {}
  local freed = 0
  for i, m in ipairs(members) do
    local ti = string.match(m, '^(.*!)')
    local size = size_of(metas[i])
    by_key[i] = string.sub(m, #ti + 1) .. '!' .. string.sub(ti, 1, -2)
    if metas[i] then
      freed = freed + size
      redis.call('HINCRBY', Q, 'n', -1)
      redis.call('HINCRBY', Q, 'b', -size)
      if redis.call('HINCRBY', Q, 'n:' .. ti, -1) <= 0 then
        redis.call('HDEL', Q, 'n:' .. ti, 'b:' .. ti)  -- no empty task instances pile up
      else
        redis.call('HINCRBY', Q, 'b:' .. ti, -size)
      end
    end
  end
  redis.call('ZREM', I, unpack(members))
  redis.call('ZREM', E, unpack(members))
  redis.call('ZREM', K, unpack(by_key))
  redis.call('HDEL', M, unpack(members))
  return freed
end
"""

# Shared by PUSH and REGISTER_RUN: list a run in both run indexes (idempotent; GT keeps its
# newest expiry), drop a bounded number of runs that expired, and let the run indexes outlive
# no run either.
_REGISTER = """
local function register(all_runs, dag_runs, expires, ttl, run, now)
  for _, idx in ipairs({all_runs, dag_runs}) do
    redis.call('ZADD', idx, 'GT', expires, run)
    local gone = math.min(redis.call('ZCOUNT', idx, '-inf', now), 64)
    if gone > 0 then
      redis.call('ZREMRANGEBYRANK', idx, 0, gone - 1)
    end
    if redis.call('PTTL', idx) < ttl then
      redis.call('PEXPIRE', idx, ttl)
    end
  end
end
"""

# KEYS: value, index, expiry, meta, by_key, quota[, runs (all), runs (this DAG)]
# ARGV: value, ttl_ms, member, run_info ("" when none), run member, then the four quota limits
#       (run bytes, run count, task instance bytes, task instance count; 0 = none)
# Returns {expiry (Unix ms), 1 if the run was just (re)created else 0} or, refused over a quota,
# {-1, which limit (1..4), usage, limit}.
PUSH: Final = _with_fields(
    """#!lua
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[2])
local expires = now + ttl
local member = ARGV[3]
local size = string.len(ARGV[1])
local ti = string.match(member, '^(.*!)')
local I, E, M, K, Q = KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
"""
    + _FORGET
    + _REGISTER
    + """
local function prune(n)
  local dead = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now, 'LIMIT', 0, n)
  forget(dead)
  return #dead
end
-- Expired values leave the index and the usage counters (bounded work per push).
prune(64)
-- Usage after this push; an overwrite replaces the old value's size and count.
local old
local function usage()
  old = redis.call('HGET', M, member)
  local q = redis.call('HMGET', Q, 'b', 'n', 'b:' .. ti, 'n:' .. ti)
  local is_new = old and 0 or 1
  local delta = size - size_of(old)
  local used = {tonumber(q[1]) or 0, tonumber(q[2]) or 0, tonumber(q[3]) or 0,
                tonumber(q[4]) or 0}
  local adding = {delta, is_new, delta, is_new}
  for i = 1, 4 do
    local limit = tonumber(ARGV[5 + i])
    -- Refuse only growth past a limit: an overwrite that shrinks always goes through.
    if limit > 0 and adding[i] > 0 and used[i] + adding[i] > limit then
      return i, used[i], limit
    end
  end
  return 0
end
local over, used, limit = usage()
if over > 0 and prune(4096) > 0 then
  over, used, limit = usage()
end
if over > 0 then
  return {-1, over, used, limit}
end
local delta = size - size_of(old)
if not old then
  redis.call('HINCRBY', Q, 'n', 1)
  redis.call('HINCRBY', Q, 'n:' .. ti, 1)
end
if delta ~= 0 then
  redis.call('HINCRBY', Q, 'b', delta)
  redis.call('HINCRBY', Q, 'b:' .. ti, delta)
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ttl)
redis.call('ZADD', KEYS[2], 0, member)
redis.call('ZADD', KEYS[3], expires, member)
redis.call('ZADD', KEYS[5], 0, string.sub(member, #ti + 1) .. '!' .. string.sub(ti, 1, -2))
redis.call('HSET', KEYS[4], member, size .. ':' .. now .. ':' .. expires)
if ARGV[4] ~= '' then
  redis.call('HSETNX', KEYS[4], RUN_INFO, ARGV[4])
end
-- Kept from the run's first push on (the UI's fallback run time). Set here means the run was
-- just (re)created: its first push, or the first after a clear emptied it or its values expired.
local fresh = redis.call('HSETNX', KEYS[4], FIRST_PUSH, now)
-- Run keys live exactly as long as their longest-lived member. They are created and extended
-- together, so the index's TTL speaks for all five.
if redis.call('PTTL', I) < ttl then
  for i = 2, 6 do
    redis.call('PEXPIRE', KEYS[i], ttl)
  end
end
-- The run indexes, when given (outside a cluster: same call; on a cluster REGISTER_RUN writes
-- them in their own slot).
if #KEYS >= 8 then
  register(KEYS[7], KEYS[8], expires, ttl, ARGV[5], now)
end
return {expires, fresh}
"""
)

# Register a run in the run indexes on a cluster, where they live in another slot than the run:
# sent beside the push script, or after it when the writer must (store/registrations.py says
# when); idempotent, so a retry after a partial failure lists the run.
# KEYS: runs (all), runs (this DAG)
# ARGV: expiry to register (Unix ms), or 0 for this node's now + ttl + grace; ttl_ms; run member;
#       grace_ms (the push runs on another node a moment later, on another clock)
# Returns the expiry it registered (the run's score is at least that).
REGISTER_RUN: Final = (
    """#!lua
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[2])
local expires = tonumber(ARGV[1])
if expires <= 0 then
  expires = now + ttl + tonumber(ARGV[4])
end
"""
    + _REGISTER
    + """
-- The indexes live at least as long as the score just written says the run does.
register(KEYS[1], KEYS[2], expires, math.max(ttl, expires - now), ARGV[3], now)
return expires
"""
)

# Deletes one bounded batch of a run's XComs, the index and quota counters kept in step. The
# `allow-oom` flag lets it run when Redis is at maxmemory (it only frees memory): MULTI/EXEC
# would be refused there, so the store could never be cleared while full.
# KEYS: as PUSH's 2..8 (index, expiry, meta, by_key, quota[, runs (all), runs (this DAG)])
# ARGV: min, max (ZRANGEBYLEX bounds on the index), batch size, run key tag, run member
# Returns {deleted, left in the range, 1 when the run is now empty}
CLEAR: Final = (
    """#!lua flags=allow-oom
local I, E, M, K, Q = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local members = redis.call('ZRANGEBYLEX', I, ARGV[1], ARGV[2], 'LIMIT', 0, tonumber(ARGV[3]))
"""
    + _FORGET
    + """
if #members > 0 then
  local values = {}
  for i, m in ipairs(members) do values[i] = ARGV[4] .. ':v:' .. m end
  redis.call('DEL', unpack(values))
  forget(members)
end
local left = redis.call('ZLEXCOUNT', I, ARGV[1], ARGV[2])
local emptied = 0
if redis.call('EXISTS', I) == 0 then
  -- The run has nothing left: drop its bookkeeping and unlist it (on a cluster the run
  -- indexes are in another slot: the caller unlists it when `emptied` says so).
  redis.call('DEL', E, M, K, Q)
  emptied = 1
  if #KEYS >= 7 then
    redis.call('ZREM', KEYS[6], ARGV[5])
    redis.call('ZREM', KEYS[7], ARGV[5])
  end
end
return {#members, left, emptied}
"""
)

# Read-only listing, one round trip, O(log N + offset + page) when nothing expired is indexed.
# KEYS: index, expiry, meta, by_key
# ARGV: min, max (ZRANGEBYLEX bounds, on the by-key index when ARGV[6] is "1"), offset, limit,
#       map-index infix ("!<encoded map index>!" = one map index of any task; "" = any),
#       "1" to range over the by-key index (a key filter), "0" for the index
# Returns {total, {member, meta, member, meta, ...}, run_info or false, first push ms or false}
LIST: Final = _with_fields(
    """#!lua flags=no-writes
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local min, max = ARGV[1], ARGV[2]
local offset, limit = tonumber(ARGV[3]), tonumber(ARGV[4])
local infix = ARGV[5]
local by_key = ARGV[6] == '1'
local idx = by_key and KEYS[4] or KEYS[1]
-- By-key members are <key>!<task>!<map>; the index's are <task>!<map>!<key>.
local function member_of(m)
  if not by_key then return m end
  local key, rest = string.match(m, '^([^!]*)!(.*)$')
  if not key then return m end
  return rest .. '!' .. key
end
local page = {}
local total
local stale = redis.call('ZCOUNT', KEYS[2], '-inf', now)
if infix == '' and stale == 0 then
  total = redis.call('ZLEXCOUNT', idx, min, max)
  for _, m in ipairs(redis.call('ZRANGEBYLEX', idx, min, max, 'LIMIT', offset, limit)) do
    page[#page + 1] = member_of(m)
  end
else
  -- Slow path: a map index of any task, or expired entries not pruned yet. Scan the range
  -- (one task, one key, or the run), keep live ones.
  local live = {}
  for _, raw in ipairs(redis.call('ZRANGEBYLEX', idx, min, max)) do
    local m = member_of(raw)
    -- Escaped ids hold no separator, so the infix can only match the map-index field.
    if infix == '' or string.find(m, infix, 1, true) then
      local exp = redis.call('ZSCORE', KEYS[2], m)
      if exp and tonumber(exp) > now then
        live[#live + 1] = m
      end
    end
  end
  total = #live
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
return {total, out, redis.call('HGET', KEYS[3], RUN_INFO), redis.call('HGET', KEYS[3], FIRST_PUSH)}
"""
)

# Read-only summary of one run for the XCom browser, one round trip, O(XComs of the run):
# live XComs only (expiry checked against the Redis clock, as LIST does).
# KEYS: meta
# Returns {count, bytes, first pushed (Unix ms, -1 when none), last pushed, run_info or false}
RUN_SUMMARY: Final = _with_fields(
    """#!lua flags=no-writes
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local all = redis.call('HGETALL', KEYS[1])
local count, bytes, first, last = 0, 0, -1, -1
for i = 1, #all, 2 do
  if all[i] ~= RUN_INFO then
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
return {count, bytes, first, last, redis.call('HGET', KEYS[1], RUN_INFO)}
"""
)

# A batch fetch, bounded before any value is read, in one round trip. References are counted
# first (ZLEXCOUNT on the by-key index for "every map index" selectors), then sized from the
# meta hash; only a batch within both limits reads its values.
# KEYS: by_key, meta
# ARGV: max references, max bytes, run key tag, then per selector a kind and a text:
#       "r", index member (one XCom) | "m", by-key prefix (every map index of a task's key)
# Returns {0, {member, ...}, {value or false, ...}} or {-1, references} or {-2, bytes}
FETCH_MANY: Final = """#!lua flags=no-writes
local max_refs, max_bytes, tag = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]
local total = 0
for i = 4, #ARGV, 2 do
  if ARGV[i] == 'm' then
    total = total + redis.call('ZLEXCOUNT', KEYS[1], '[' .. ARGV[i + 1],
                               '[' .. ARGV[i + 1] .. '\127')
  else
    total = total + 1
  end
end
if total > max_refs then
  return {-1, total}
end
local members = {}
for i = 4, #ARGV, 2 do
  if ARGV[i] == 'm' then
    local found = redis.call('ZRANGEBYLEX', KEYS[1], '[' .. ARGV[i + 1],
                             '[' .. ARGV[i + 1] .. '\127', 'LIMIT', 0, max_refs - #members)
    for _, m in ipairs(found) do
      -- <key>!<task>!<map> -> <task>!<map>!<key>
      local key, rest = string.match(m, '^([^!]*)!(.*)$')
      if key then members[#members + 1] = rest .. '!' .. key end
    end
  else
    members[#members + 1] = ARGV[i + 1]
  end
end
if #members == 0 then
  return {0, {}, {}}
end
local bytes = 0
local metas = redis.call('HMGET', KEYS[2], unpack(members))
for i = 1, #members do
  if metas[i] then
    -- Unreadable meta counts as the largest value there can be.
    bytes = bytes + (tonumber(string.match(metas[i], '^(%d+):')) or 262144)
  end
end
if bytes > max_bytes then
  return {-2, bytes}
end
local value_keys = {}
for i, m in ipairs(members) do value_keys[i] = tag .. ':v:' .. m end
return {0, members, redis.call('MGET', unpack(value_keys))}
"""
