-- MicroGate adaptive route bucket: one gateway instance reports what it admitted since its last sync.
-- KEYS[1] = route bucket key (a hash: tk = tokens, ts = time of tk in ms)
-- ARGV[1] = tokens consumed locally since the last sync, ARGV[2] = refill per second,
-- ARGV[3] = capacity, ARGV[4] = floor (most negative tokens allowed: fair clients borrow)
-- Returns the bucket's tokens after the step, as a string (Lua numbers would be truncated to integers).
-- Time comes from Redis TIME, so instances with skewed clocks agree. Every write sets a TTL of the time
-- to refill plus a margin, after which the bucket would be full anyway, so expiry loses nothing.

if redis.replicate_commands then redis.replicate_commands() end -- TIME in a script that writes, before Redis 5

local consumed = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local capacity = tonumber(ARGV[3])
local floor = tonumber(ARGV[4])

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000

local state = redis.call('HMGET', KEYS[1], 'tk', 'ts')
local tokens = tonumber(state[1])
local last = tonumber(state[2])
if tokens == nil or last == nil then
  tokens = capacity
else
  if now > last then tokens = tokens + (now - last) * rate / 1000 end
  if tokens > capacity then tokens = capacity end
end
tokens = tokens - consumed
if tokens < floor then tokens = floor end

local ttl = math.min(math.ceil((capacity - tokens) * 1000 / rate) + 1000, 1e12)
redis.call('HSET', KEYS[1], 'tk', tokens, 'ts', now)
redis.call('PEXPIRE', KEYS[1], string.format('%d', ttl))
return tostring(tokens)
