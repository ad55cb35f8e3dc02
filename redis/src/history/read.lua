-- Reads a topic's epoch and latest offset, and the entries after `since` when they can all be
-- replayed (newest first).
-- KEYS: stream, meta hash (see append.lua).
-- ARGV: 1 epoch if a new one starts, 2 since's epoch ('' for none), 3 since's offset,
--       4 replay limit, 5 idle expiry in ms.
local e = redis.call('HGET', KEYS[2], 'e')
local s = tonumber(redis.call('HGET', KEYS[2], 's') or '0')
if (not e) or (s > 0 and redis.call('EXISTS', KEYS[1]) == 0) then
  e = ARGV[1]
  s = 0
  redis.call('DEL', KEYS[1])
  redis.call('HSET', KEYS[2], 'e', e, 's', 0, 'b', 0)
end
redis.call('PEXPIRE', KEYS[1], ARGV[5])
redis.call('PEXPIRE', KEYS[2], ARGV[5])
local entries = {}
if ARGV[2] == e then
  local missed = s - tonumber(ARGV[3])
  if missed > 0 and missed <= tonumber(ARGV[4]) then
    entries = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', missed)
  end
end
return {e, s, entries}
