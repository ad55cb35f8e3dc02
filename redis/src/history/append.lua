-- Appends one broadcast to a topic's history and publishes it with its position, atomically.
-- KEYS: stream, meta hash {e: epoch, s: latest offset, b: bytes of the kept entries}.
-- ARGV: 1 envelope head, 2 tail (topic, event, payload: what the entry keeps), 3 count kept,
--       4 age in ms ('0': none), 5 idle expiry in ms, 6 epoch if a new one starts, 7 channel,
--       8 bytes kept at most.
-- An entry's size is the length of its tail. Entries go oldest first while the stream is over
-- any of its bounds (count, age, bytes); what goes is subtracted from `b` before it goes, and
-- the stream is trimmed exactly, so that `b` always equals what the stream holds.
local e = redis.call('HGET', KEYS[2], 'e')
local s = tonumber(redis.call('HGET', KEYS[2], 's') or '0')
if (not e) or (s > 0 and redis.call('EXISTS', KEYS[1]) == 0) then
  e = ARGV[6]
  redis.call('DEL', KEYS[1])
  redis.call('HSET', KEYS[2], 'e', e, 's', 0, 'b', 0)
end
s = redis.call('HINCRBY', KEYS[2], 's', 1)
redis.call('XADD', KEYS[1], '*', 'o', s, 'd', ARGV[2])
local bytes = tonumber(redis.call('HGET', KEYS[2], 'b') or '0') + #ARGV[2]
local len = redis.call('XLEN', KEYS[1])
local keep = tonumber(ARGV[3])
local most = tonumber(ARGV[8])
-- Entries whose id (Redis time, in ms) is below `oldest` are past the age.
local oldest = -1
if ARGV[4] ~= '0' then
  local t = redis.call('TIME')
  oldest = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) - tonumber(ARGV[4])
end
local drop = 0
local from = '-'
local done = false
while not done and drop < len do
  local excess = len - drop - keep
  if excess <= 0 and bytes <= most and oldest < 0 then
    break
  end
  -- Enough entries to settle the count, one more to look at the age of the first kept, a few
  -- at a time while over the bytes.
  local want = math.max(excess, 0) + 1
  if bytes > most then
    want = math.max(want, 16)
  end
  local batch = redis.call('XRANGE', KEYS[1], from, '+', 'COUNT', math.min(want, 512))
  if #batch == 0 then
    break
  end
  for _, entry in ipairs(batch) do
    local id = entry[1]
    local ms = tonumber(string.match(id, '^(%d+)'))
    if len - drop > keep or bytes > most or ms < oldest then
      local fields = entry[2]
      for i = 1, #fields, 2 do
        if fields[i] == 'd' then
          bytes = bytes - #fields[i + 1]
        end
      end
      drop = drop + 1
      from = '(' .. id
    else
      done = true
      break
    end
  end
end
if drop > 0 then
  redis.call('XTRIM', KEYS[1], 'MAXLEN', '=', len - drop)
end
if len - drop == 0 or bytes < 0 then
  bytes = 0
end
redis.call('HSET', KEYS[2], 'b', bytes)
redis.call('PEXPIRE', KEYS[1], ARGV[5])
redis.call('PEXPIRE', KEYS[2], ARGV[5])
local position = e .. '-' .. s
redis.call('PUBLISH', ARGV[7], ARGV[1] .. string.char(#position) .. position .. ARGV[2])
return {e, s}
