-- MicroGate token bucket: one atomic step for one bucket. Loaded with refill.lua in front (refill, save).
-- KEYS[1] = bucket key (a hash: tk = tokens, ts = time of tk in ms)
-- ARGV[1] = capacity, ARGV[2] = refill per second, ARGV[3] = cost (0 = peek: answer for one token, write nothing)
-- Returns { allowed (1|0), whole tokens left, retry-after ms (0 when allowed), ms until full }.
-- Time comes from Redis TIME, so gateway instances with skewed clocks agree.
-- A rejected take costs nothing and writes nothing; every write sets a TTL of the time to refill
-- plus a margin, after which the bucket would be full anyway, so expiry loses nothing.

local capacity = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])

local now, tokens = refill(KEYS[1], capacity, rate)

local allowed = 0
local retry = 0
if cost == 0 then -- a peek: would one token be there? Writes nothing.
  if tokens + 1e-9 >= 1 then allowed = 1 else retry = math.ceil((1 - tokens) * 1000 / rate) end
  return { allowed, math.floor(tokens), retry, math.ceil((capacity - tokens) * 1000 / rate) }
end
if tokens + 1e-9 >= cost then -- tolerate floating-point refill sums
  tokens = math.max(tokens - cost, 0)
  allowed = 1
  save(KEYS[1], tokens, now, capacity, rate)
else
  retry = math.ceil((cost - tokens) * 1000 / rate)
end

local reset = math.ceil((capacity - tokens) * 1000 / rate)
return { allowed, math.floor(tokens), retry, reset }
