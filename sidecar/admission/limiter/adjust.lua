-- Charge streamed output, reconcile with the real usage, release the lease (RedisLimiter._adjust).
-- KEYS: state hash, leases sorted set. ARGV: period, lease, lease_ttl, release (1/0), then
-- (limit, delta) for each of DIMENSIONS (limit 0: none). Deltas may be negative (refunds).
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local period = tonumber(ARGV[1])
local names = {'requests', 'input_tokens', 'output_tokens', 'tokens'}
local last = now
for i = 1, 4 do
  local limit = tonumber(ARGV[3 + 2 * i])
  local delta = tonumber(ARGV[4 + 2 * i])
  if limit > 0 then
    -- RESCALED_TAT
    local base = math.max(tat, now)
    if delta ~= 0 then
      base = math.max(base + delta * period / limit, now)
      redis.call('HSET', KEYS[1], names[i], string.format('%.6f', base), names[i] .. ':limit', ARGV[3 + 2 * i])
    end
    if base > last then last = base end
  end
end
if last > now then
  redis.call('PEXPIRE', KEYS[1], math.ceil((last - now + 1) * 1000))
end
if ARGV[4] == '1' then
  redis.call('ZREM', KEYS[2], ARGV[2])
elseif redis.call('ZSCORE', KEYS[2], ARGV[2]) then
  local ttl = tonumber(ARGV[3])
  redis.call('ZADD', KEYS[2], 'XX', now + ttl, ARGV[2])
  redis.call('PEXPIRE', KEYS[2], math.ceil(ttl * 1000) + 1000)
end
return 1
