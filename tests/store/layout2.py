"""What the previous release (layout 2) wrote, frozen here so the migration is tested against
it: its push script, verbatim, and its untagged global key names."""

from __future__ import annotations

from typing import Final

LAYOUT_KEY: Final = "xcom:layout"
POLICIES_KEY: Final = "xcom:policies"
POLICIES_REV_KEY: Final = "xcom:policies:rev"
RETIRED_POLICIES_KEY: Final = "xcom:policies:retired"
RUNS_ALL_KEY: Final = "xcom:runs:all"


def dag_runs_key(escaped_dag: str) -> str:
    return f"xcom:runs:dag:{escaped_dag}"


# KEYS: value, index, expiry, meta, by_key, quota, runs (all), runs (this DAG)
# ARGV: value, ttl_ms, member, run_info, run member, four quota limits
PUSH: Final = """#!lua
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[2])
local expires = now + ttl
local member = ARGV[3]
local size = string.len(ARGV[1])
local ti = string.match(member, '^(.*!)')
local I, E, M, K, Q = KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]

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
  redis.call('HSETNX', KEYS[4], '@run', ARGV[4])
end
-- keys.RUN_FIRST_PUSH_FIELD: kept from the run's first push on (the UI's fallback run time).
redis.call('HSETNX', KEYS[4], '@first', now)
-- Run keys live exactly as long as their longest-lived member. They are created and extended
-- together, so the index's TTL speaks for all five.
if redis.call('PTTL', I) < ttl then
  for i = 2, 6 do
    redis.call('PEXPIRE', KEYS[i], ttl)
  end
end
-- Register the run on every push (idempotent; GT keeps its newest expiry), drop a bounded
-- number of runs that expired, and let the run indexes outlive no run either.
for i = 7, 8 do
  redis.call('ZADD', KEYS[i], 'GT', expires, ARGV[5])
  local gone = math.min(redis.call('ZCOUNT', KEYS[i], '-inf', now), 64)
  if gone > 0 then
    redis.call('ZREMRANGEBYRANK', KEYS[i], 0, gone - 1)
  end
  if redis.call('PTTL', KEYS[i]) < ttl then
    redis.call('PEXPIRE', KEYS[i], ttl)
  end
end
return {expires}
"""
