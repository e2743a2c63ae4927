-- Adds one instance's counts for one bucket into the shared hash KEYS[1].
-- ARGV[1]: TTL in ms (the retention); then field/value pairs. Field "lm" (latency max) keeps the
-- largest value; every other field is added. Atomic, so concurrent instances never lose counts.
local key = KEYS[1]
for i = 2, #ARGV, 2 do
  local field = ARGV[i]
  local value = ARGV[i + 1]
  if field == 'lm' then
    local current = tonumber(redis.call('HGET', key, field) or '0')
    if tonumber(value) > current then redis.call('HSET', key, field, value) end
  else
    redis.call('HINCRBYFLOAT', key, field, value)
  end
end
redis.call('PEXPIRE', key, ARGV[1])
return 1
