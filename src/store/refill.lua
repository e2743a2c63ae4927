-- MicroGate: what the bucket scripts share (token-bucket.lua, route-bucket.lua). Redis scripts cannot
-- load one another, so this file is put in front of each script when it is loaded (src/store/lua.ts).
-- A bucket is a hash: tk = tokens, ts = time of tk in ms. Time comes from Redis TIME, so gateway
-- instances with skewed clocks agree.

if redis.replicate_commands then redis.replicate_commands() end -- TIME in a script that writes, before Redis 5

-- Returns now (ms) and the tokens of bucket `key` refilled at `rate` per second up to `capacity`
-- (a bucket not there is full).
local function refill(key, capacity, rate)
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
  local state = redis.call('HMGET', key, 'tk', 'ts')
  local tokens = tonumber(state[1])
  local last = tonumber(state[2])
  if tokens == nil or last == nil then
    tokens = capacity
  else
    if now > last then tokens = tokens + (now - last) * rate / 1000 end
    -- clamp also when capacity shrank (config change) or the Redis clock stepped back
    if tokens > capacity then tokens = capacity end
  end
  return now, tokens
end

-- Writes bucket `key` with a TTL of the time to refill plus a 1 s margin, after which the bucket
-- would be full anyway, so expiry loses nothing.
local function save(key, tokens, now, capacity, rate)
  -- formatted as an integer because Redis may print a Lua number in exponent form
  local ttl = math.min(math.ceil((capacity - tokens) * 1000 / rate) + 1000, 1e12)
  redis.call('HSET', key, 'tk', tokens, 'ts', now)
  redis.call('PEXPIRE', key, string.format('%d', ttl))
end
