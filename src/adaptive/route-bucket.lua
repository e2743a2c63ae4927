-- MicroGate adaptive route bucket: one gateway instance reports what it admitted since its last sync.
-- Loaded with src/store/refill.lua in front (refill, save).
-- KEYS[1] = route bucket key (a hash: tk = tokens, ts = time of tk in ms)
-- ARGV[1] = tokens consumed locally since the last sync, ARGV[2] = refill per second,
-- ARGV[3] = capacity, ARGV[4] = floor (most negative tokens allowed: fair clients borrow)
-- Returns the bucket's tokens after the step, as a string (Lua numbers would be truncated to integers).
-- Time comes from Redis TIME, so instances with skewed clocks agree. Every write sets a TTL of the time
-- to refill plus a margin, after which the bucket would be full anyway, so expiry loses nothing.

local consumed = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local capacity = tonumber(ARGV[3])
local floor = tonumber(ARGV[4])

local now, tokens = refill(KEYS[1], capacity, rate)
tokens = tokens - consumed
if tokens < floor then tokens = floor end

save(KEYS[1], tokens, now, capacity, rate)
return tostring(tokens)
