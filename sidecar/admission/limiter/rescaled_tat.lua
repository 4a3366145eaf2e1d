    -- A fragment, spliced into acquire.lua and adjust.lua by redis.py: the tat of dimension i,
    -- its debt rescaled when it was counted against another limit (a reload changed it: the units
    -- used count against the new limit at once).
    local tat = tonumber(redis.call('HGET', KEYS[1], names[i]) or '0')
    local seen = tonumber(redis.call('HGET', KEYS[1], names[i] .. ':limit') or '0')
    if seen > 0 and seen ~= limit and tat > now then
      tat = now + (tat - now) * seen / limit
    end
