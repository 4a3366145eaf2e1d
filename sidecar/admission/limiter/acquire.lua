-- Admit one request, on Redis's clock: every limited rate dimension and the concurrency leases
-- are checked and, when all fit, charged (RedisLimiter._try).
-- KEYS: state hash, leases sorted set. ARGV: period, lease, lease_ttl, concurrency (0: none),
-- then (limit, cost) for each of DIMENSIONS (limit 0: none), then the retry-after of a
-- concurrency refusal.
-- Returns {ok, reason, retry_after, then (limit, remaining, reset) per dimension}; reason "" when
-- admitted, "too_large:<dim>" when a cost exceeds its limit. Numbers as strings (Lua -> Redis
-- truncates floats).
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local period = tonumber(ARGV[1])
local names = {'requests', 'input_tokens', 'output_tokens', 'tokens'}
local eps = 0.000001
local refused = ''
local retry = 0
local bases = {}
local newtats = {}
for i = 1, 4 do
  local limit = tonumber(ARGV[3 + 2 * i])
  local cost = tonumber(ARGV[4 + 2 * i])
  if limit > 0 then
    local need = math.max(cost, 1)
    if need > limit then
      return {'0', 'too_large:' .. names[i], '0'}
    end
    local interval = period / limit
    -- RESCALED_TAT
    local base = math.max(tat, now)
    bases[i] = base
    local allow_at = base + need * interval - period
    if allow_at > now + eps then
      if allow_at - now > retry then
        refused = names[i]
        retry = allow_at - now
      end
    elseif cost > 0 then
      newtats[i] = base + cost * interval
    end
  end
end
local concurrency = tonumber(ARGV[4])
if concurrency > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
  if refused == '' and redis.call('ZCARD', KEYS[2]) >= concurrency then
    refused = 'concurrency'
    retry = tonumber(ARGV[13])
  end
end
local ok = '0'
if refused == '' then
  ok = '1'
  local last = now
  for i, tat in pairs(newtats) do
    redis.call('HSET', KEYS[1], names[i], string.format('%.6f', tat), names[i] .. ':limit', ARGV[3 + 2 * i])
    bases[i] = tat
  end
  for i, base in pairs(bases) do
    if base > last then last = base end
  end
  redis.call('PEXPIRE', KEYS[1], math.ceil((last - now + 1) * 1000))
  if concurrency > 0 then
    local ttl = tonumber(ARGV[3])
    redis.call('ZADD', KEYS[2], now + ttl, ARGV[2])
    redis.call('PEXPIRE', KEYS[2], math.ceil(ttl * 1000) + 1000)
  end
end
local out = {ok, refused, string.format('%.6f', retry)}
for i = 1, 4 do
  local limit = tonumber(ARGV[3 + 2 * i])
  if limit > 0 then
    local interval = period / limit
    local remaining = math.floor((now + period - bases[i]) / interval + 0.000000001)
    remaining = math.max(0, math.min(limit, remaining))
    table.insert(out, string.format('%d', limit))
    table.insert(out, string.format('%d', remaining))
    table.insert(out, string.format('%.6f', bases[i]))
  else
    table.insert(out, '0')
    table.insert(out, '0')
    table.insert(out, '0')
  end
end
return out
