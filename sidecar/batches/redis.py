"""``RedisStore``: batches in Redis, shared by every replica pointing at it (``batches.store``).

Any replica answers for any batch, and every replica's runner claims entries from the same
place. Each change is one Lua script (``EVALSHA`` on ``sidecar.admission.resp``'s pipelined
connection), so every change that touches several keys is atomic: a batch is created with all
its entries or not at all (the entries go up as the body arrives, in chunks of at most 1,000, to
staging keys nothing refers to, which expire ``STAGE_TTL`` after the last chunk, and one script
renames them into place with the batch: Redis, which admission may share, is never busy with one
call for long), a claim leases entries of several batches at
once, a result is stored only if the entry has none, with the batch's counts in the same step.
Keys, all under
``key_prefix`` (a Redis Cluster needs a hash tag in it, ``"{sidecar-batches}:"``, so every key
is in one slot):

- ``batch:<id>``   hash: the batch (``owner``, ``status``, times, ``total``, one count per result
  type, ``headers``, ``snapshot``); times are written as Python's ``repr`` of the float, so they
  come back exactly.
- ``cids:<id>``, ``params:<id>``, ``results:<id>``  hashes by entry index; params go once the
  entry has a result.
- ``open:<id>``    sorted set of the entries without a result (zero-padded index), scored by
  their lease's expiry (0: never claimed); ``workers:<id>`` hash index -> the worker leasing it.
- ``all``, ``owner:<owner>``  sorted sets by ``created_at``: the newest-first paging.
- ``stage:<random>:cids|params|open``  a create's entries until it commits (expire ``STAGE_TTL``
  after the last chunk: a create whose process was killed).
- ``active``       local batches not ended, by ``created_at`` (claims go oldest batch first);
  ``ended``        local batches ended and not archived, by ``ended_at`` (retention).

Times come from the callers (``now``), as with SQLite: replicas' clocks should agree to within a
fraction of ``lease_seconds``. A call that Redis does not answer within ``timeout``, or that
fails, raises ``Unavailable`` (``sidecar.admission.resp.unavailable``: 503, gRPC UNAVAILABLE);
the runner tries again at its next turn.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator, Sequence
from typing import Any

import msgspec

from ..admission.resp import RespClient, Script, newest_first_page, unavailable
from .store import (
    LOCAL,
    RESULT_TYPES,
    STAGE_TTL,
    BatchRecord,
    BatchStore,
    Claim,
    EntryKey,
    NewEntry,
    Page,
    StagedBatch,
)

__all__ = ["RedisStore"]

_RESULT_PAGE = 1000  # result lines read per script call while streaming results
_STAGE_CHUNK = 1000  # entries sent to Redis per call while creating a batch
_STAGED = ("cids", "params", "open")
_WHAT = "the batch store"  # what a client is told is unavailable

# Shared by the scripts: the zero-padded member of an entry in ``open:<id>`` (so members with
# the same score sort by index).
_MEMBER = "local function member(idx) return string.format('%08d', tonumber(idx)) end\n"

# A create's entries go up in chunks to staging keys (invisible: nothing refers to them, and they
# expire), then one script renames them into place with the batch and its indexes. So a create
# is atomic, and Redis is never busy with one call for long (admission shares it).
# ARGV: prefix, staging name, first index, seconds to expiry, then custom_id, params for each
# entry of the chunk.
_STAGE = """
local s = ARGV[1] .. 'stage:' .. ARGV[2] .. ':'
local ckey, pkey, okey = s .. 'cids', s .. 'params', s .. 'open'
local cids, params, open = {}, {}, {}
local idx = tonumber(ARGV[3])
for i = 5, #ARGV, 2 do
  local field = tostring(idx)
  cids[#cids + 1] = field
  cids[#cids + 1] = ARGV[i]
  params[#params + 1] = field
  params[#params + 1] = ARGV[i + 1]
  open[#open + 1] = 0
  open[#open + 1] = member(idx)
  idx = idx + 1
end
if #cids > 0 then
  redis.call('HSET', ckey, unpack(cids))
  redis.call('HSET', pkey, unpack(params))
  redis.call('ZADD', okey, unpack(open))
end
for _, key in ipairs({ckey, pkey, okey}) do redis.call('EXPIRE', key, ARGV[4]) end
return 1
"""

# ARGV: prefix, id, staging name, entries, owner, created_at, active (1/0), then the batch
# hash's field/value pairs.
_CREATE = """
local p, id = ARGV[1], ARGV[2]
local bkey = p .. 'batch:' .. id
local s = p .. 'stage:' .. ARGV[3] .. ':'
local staged = {s .. 'cids', s .. 'params', s .. 'open'}
if redis.call('EXISTS', bkey) == 1 then
  redis.call('DEL', unpack(staged))
  return redis.error_reply('ERR batch ' .. id .. ' exists')
end
local n = tonumber(ARGV[4])
if redis.call('HLEN', staged[1]) ~= n or redis.call('ZCARD', staged[3]) ~= n then
  redis.call('DEL', unpack(staged))
  return redis.error_reply('ERR batch ' .. id .. ': its staged entries are incomplete')
end
if n > 0 then
  for i, name in ipairs({'cids:', 'params:', 'open:'}) do
    redis.call('RENAME', staged[i], p .. name .. id)
    redis.call('PERSIST', p .. name .. id)
  end
end
local fields = {}
for i = 8, #ARGV do fields[#fields + 1] = ARGV[i] end
redis.call('HSET', bkey, unpack(fields))
redis.call('ZADD', p .. 'all', ARGV[6], id)
redis.call('ZADD', p .. 'owner:' .. ARGV[5], ARGV[6], id)
if ARGV[7] == '1' then redis.call('ZADD', p .. 'active', ARGV[6], id) end
return 1
"""

# ARGV: prefix, worker, limit, until, now. Returns, per batch with claimed entries:
# {id, expires_at, owner, headers, {idx, custom_id, params, ...}}.
_CLAIM = """
local p, worker, limit, now = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[5])
local out, got = {}, 0
for _, id in ipairs(redis.call('ZRANGE', p .. 'active', 0, -1)) do
  if got >= limit then break end
  local b = redis.call('HMGET', p .. 'batch:' .. id, 'status', 'expires_at', 'owner', 'headers', 'location')
  if b[1] == 'in_progress' and b[5] == ARGV[6] and tonumber(b[2]) > now then
    local okey, wkey = p .. 'open:' .. id, p .. 'workers:' .. id
    local ckey, pkey = p .. 'cids:' .. id, p .. 'params:' .. id
    local members = redis.call('ZRANGEBYSCORE', okey, '-inf', ARGV[5], 'LIMIT', 0, limit - got)
    if #members > 0 then
      local rows = {}
      for _, m in ipairs(members) do
        local idx = tostring(tonumber(m))
        redis.call('ZADD', okey, ARGV[4], m)
        redis.call('HSET', wkey, idx, worker)
        rows[#rows + 1] = idx
        rows[#rows + 1] = redis.call('HGET', ckey, idx)
        rows[#rows + 1] = redis.call('HGET', pkey, idx)
      end
      out[#out + 1] = {id, b[2], b[3], b[4], rows}
      got = got + #members
    end
  end
end
return out
"""

# ARGV: prefix, worker, score, release (1/0), then batch id, index for each entry. Only the
# worker's own leases on entries still without a result change.
_LEASE = """
local p, worker, score, release = ARGV[1], ARGV[2], ARGV[3], ARGV[4] == '1'
for i = 5, #ARGV, 2 do
  local id, idx = ARGV[i], ARGV[i + 1]
  local wkey = p .. 'workers:' .. id
  if redis.call('HGET', wkey, idx) == worker then
    local okey, m = p .. 'open:' .. id, member(idx)
    if redis.call('ZSCORE', okey, m) then
      redis.call('ZADD', okey, 'XX', score, m)
      if release then redis.call('HDEL', wkey, idx) end
    end
  end
end
return 1
"""

# ARGV: prefix, id, index, result type, result. 1 when stored, 0 when the entry already has a
# result (or the batch is gone).
_FINISH = """
local p, id, idx = ARGV[1], ARGV[2], ARGV[3]
local bkey = p .. 'batch:' .. id
if redis.call('EXISTS', bkey) == 0 then return 0 end
if redis.call('ZREM', p .. 'open:' .. id, member(idx)) == 0 then return 0 end
redis.call('HSET', p .. 'results:' .. id, idx, ARGV[5])
redis.call('HDEL', p .. 'params:' .. id, idx)
redis.call('HDEL', p .. 'workers:' .. id, idx)
redis.call('HINCRBY', bkey, ARGV[4], 1)
return 1
"""

# ARGV: prefix, now, retention cutoff (now - retention). Returns the ids of the batches ended.
_SETTLE = """
local p, now, nowv = ARGV[1], ARGV[2], tonumber(ARGV[2])
local ended = {}
for _, id in ipairs(redis.call('ZRANGE', p .. 'active', 0, -1)) do
  local bkey = p .. 'batch:' .. id
  local b = redis.call('HMGET', bkey, 'status', 'expires_at', 'total',
    'succeeded', 'errored', 'canceled', 'expired')
  if not b[1] then
    redis.call('ZREM', p .. 'active', id)
  else
    local done = tonumber(b[4]) + tonumber(b[5]) + tonumber(b[6]) + tonumber(b[7])
    local outcome, body = nil, nil
    if b[1] == 'canceling' then
      outcome, body = 'canceled', '{"type":"canceled"}'
    elseif tonumber(b[2]) <= nowv then
      outcome, body = 'expired', '{"type":"expired"}'
    end
    if outcome then
      -- Entries running now finish first (their result counts); the others end here.
      local okey, wkey = p .. 'open:' .. id, p .. 'workers:' .. id
      local rkey, pkey = p .. 'results:' .. id, p .. 'params:' .. id
      local open = redis.call('ZRANGE', okey, 0, -1, 'WITHSCORES')
      local n = 0
      for i = 1, #open, 2 do
        local idx = tostring(tonumber(open[i]))
        if tonumber(open[i + 1]) <= nowv or redis.call('HEXISTS', wkey, idx) == 0 then
          redis.call('ZREM', okey, open[i])
          redis.call('HSET', rkey, idx, body)
          redis.call('HDEL', pkey, idx)
          redis.call('HDEL', wkey, idx)
          n = n + 1
        end
      end
      if n > 0 then redis.call('HINCRBY', bkey, outcome, n) end
      done = done + n
    end
    if done >= tonumber(b[3]) then
      redis.call('HSET', bkey, 'status', 'ended', 'ended_at', now)
      redis.call('ZREM', p .. 'active', id)
      redis.call('ZADD', p .. 'ended', now, id)
      ended[#ended + 1] = id
    end
  end
end
-- Retention: results go, the batch stays (archived) as the API keeps it.
for _, id in ipairs(redis.call('ZRANGEBYSCORE', p .. 'ended', '-inf', ARGV[3])) do
  redis.call('DEL', p .. 'cids:' .. id, p .. 'params:' .. id, p .. 'results:' .. id,
    p .. 'open:' .. id, p .. 'workers:' .. id)
  if redis.call('EXISTS', p .. 'batch:' .. id) == 1 then
    redis.call('HSET', p .. 'batch:' .. id, 'archived_at', now)
  end
  redis.call('ZREM', p .. 'ended', id)
end
return ended
"""

# ARGV: prefix, id, now. Returns the batch's hash (empty: unknown).
_CANCEL = """
local bkey = ARGV[1] .. 'batch:' .. ARGV[2]
if redis.call('HGET', bkey, 'status') == 'in_progress' then
  redis.call('HSET', bkey, 'status', 'canceling', 'cancel_initiated_at', ARGV[3])
end
return redis.call('HGETALL', bkey)
"""

# ARGV: prefix, id, snapshot, status.
_SNAPSHOT = """
local bkey = ARGV[1] .. 'batch:' .. ARGV[2]
if redis.call('EXISTS', bkey) == 1 then
  redis.call('HSET', bkey, 'snapshot', ARGV[3], 'status', ARGV[4])
end
return 1
"""

# ARGV: prefix, id. 1 when the batch was there.
_DELETE = """
local p, id = ARGV[1], ARGV[2]
local bkey = p .. 'batch:' .. id
local owner = redis.call('HGET', bkey, 'owner')
if not owner then return 0 end
redis.call('DEL', bkey, p .. 'cids:' .. id, p .. 'params:' .. id, p .. 'results:' .. id,
  p .. 'open:' .. id, p .. 'workers:' .. id)
redis.call('ZREM', p .. 'all', id)
redis.call('ZREM', p .. 'owner:' .. owner, id)
redis.call('ZREM', p .. 'active', id)
redis.call('ZREM', p .. 'ended', id)
return 1
"""

# A page of batches, newest first; the index key suffix is 'all' or 'owner:<owner>'.
_PAGE = newest_first_page("batch")

# ARGV: prefix, id, first index, count. Returns {idx, custom_id, result, ...} of the entries in
# the range that have a result.
_RESULTS = """
local p, id = ARGV[1], ARGV[2]
local rkey, ckey = p .. 'results:' .. id, p .. 'cids:' .. id
local first = tonumber(ARGV[3])
local out = {}
for i = first, first + tonumber(ARGV[4]) - 1 do
  local r = redis.call('HGET', rkey, tostring(i))
  if r then
    out[#out + 1] = i
    out[#out + 1] = redis.call('HGET', ckey, tostring(i))
    out[#out + 1] = r
  end
end
return out
"""

_FLOATS = ("created_at", "expires_at", "ended_at", "cancel_initiated_at", "archived_at")


def _bytes(value: Any) -> bytes:
    return value.encode() if isinstance(value, str) else bytes(value)


def _record(batch_id: str, flat: list[Any]) -> BatchRecord | None:
    """A batch from its hash (``HGETALL``'s flat list); None when it is empty."""
    if not flat:
        return None
    h = dict(zip(flat[::2], flat[1::2], strict=True))
    times = {name: float(h[name]) if name in h else None for name in _FLOATS}
    return BatchRecord(
        id=batch_id,
        owner=h["owner"],
        location=h["location"],
        status=h["status"],
        created_at=float(h["created_at"]),
        expires_at=float(h["expires_at"]),
        ended_at=times["ended_at"],
        cancel_initiated_at=times["cancel_initiated_at"],
        archived_at=times["archived_at"],
        total=int(h["total"]),
        counts={t: int(h.get(t, 0)) for t in RESULT_TYPES},
        headers=msgspec.json.decode(h["headers"]),
        snapshot=_bytes(h["snapshot"]) if "snapshot" in h else None,
    )


def _fields(batch: BatchRecord) -> list[Any]:
    """The batch hash's field/value pairs."""
    fields: list[Any] = [
        "owner", batch.owner,
        "location", batch.location,
        "status", batch.status,
        "created_at", repr(batch.created_at),
        "expires_at", repr(batch.expires_at),
        "total", batch.total,
        "headers", msgspec.json.encode(batch.headers),
    ]  # fmt: skip
    fields += [t for name in RESULT_TYPES for t in (name, batch.counts[name])]
    for name in ("ended_at", "cancel_initiated_at", "archived_at"):
        value = getattr(batch, name)
        if value is not None:
            fields += [name, repr(value)]
    if batch.snapshot is not None:
        fields += ["snapshot", batch.snapshot]
    return fields


class _Staged(StagedBatch):
    """Entries under ``stage:<name>:``; nothing refers to them until the create script."""

    def __init__(self, store: RedisStore, name: str) -> None:
        self._store = store
        self._name = name
        self._count = 0
        self._committed = False

    async def add(self, entries: Sequence[NewEntry], *, now: float) -> None:
        for first in range(0, len(entries), _STAGE_CHUNK):
            chunk = entries[first : first + _STAGE_CHUNK]
            pairs = (x for e in chunk for x in (e.custom_id, e.params))
            await self._store._run("stage", self._name, self._count, int(STAGE_TTL), *pairs)
            self._count += len(chunk)

    async def commit(self, batch: BatchRecord) -> None:
        await self._store._run(
            "create",
            batch.id,
            self._name,
            self._count,
            batch.owner,
            repr(batch.created_at),
            "1" if batch.local and batch.status != "ended" else "0",
            *_fields(batch),
        )
        self._committed = True

    async def discard(self) -> None:
        # The create script drops them when it fails; drop them now rather than when they expire.
        if not self._committed:
            store = self._store
            keys = [f"{store.prefix}stage:{self._name}:{n}" for n in _STAGED]
            with contextlib.suppress(Exception):
                async with asyncio.timeout(store.timeout):
                    await store.client.call("DEL", *keys)


class RedisStore(BatchStore):
    """A ``BatchStore`` in the Redis of ``client`` (``sidecar.admission.resp``), every key under
    ``key_prefix``; each call bounded by ``timeout`` seconds."""

    def __init__(
        self, client: RespClient, *, key_prefix: str = "sidecar:batches:", timeout: float = 5.0
    ) -> None:
        self.client = client
        self.prefix = key_prefix
        self.timeout = timeout
        self._loaded: set[str] = set()
        self._scripts = {
            name: Script(_MEMBER + source)
            for name, source in (
                ("stage", _STAGE),
                ("create", _CREATE),
                ("claim", _CLAIM),
                ("lease", _LEASE),
                ("finish", _FINISH),
                ("settle", _SETTLE),
                ("cancel", _CANCEL),
                ("snapshot", _SNAPSHOT),
                ("delete", _DELETE),
                ("page", _PAGE),
                ("results", _RESULTS),
            )
        }

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> RedisStore:
        """A store on a new client for ``url`` (connected on first use)."""
        return cls(RespClient(url), **kwargs)

    async def _run(self, name: str, *args: Any) -> Any:
        script = self._scripts[name]
        with unavailable(_WHAT):
            async with asyncio.timeout(self.timeout):
                if script.sha not in self._loaded:
                    # Loaded once up front, so a large call is not sent twice (NOSCRIPT, then again).
                    await self.client.call("SCRIPT", "LOAD", script.source)
                    self._loaded.add(script.sha)
                return await self.client.evalsha(script, [], [self.prefix, *args])

    async def _call(self, *args: Any) -> Any:
        """One plain command, bounded and mapped as the scripts are."""
        with unavailable(_WHAT):
            async with asyncio.timeout(self.timeout):
                return await self.client.call(*args)

    # -- batches -----------------------------------------------------------------------------

    async def stage(self, batch_id: str, *, now: float) -> StagedBatch:
        return _Staged(self, secrets.token_hex(8))

    async def get(self, batch_id: str) -> BatchRecord | None:
        return _record(batch_id, await self._call("HGETALL", f"{self.prefix}batch:{batch_id}"))

    async def update_snapshot(self, batch_id: str, snapshot: bytes, status: str) -> None:
        await self._run("snapshot", batch_id, snapshot, status)

    async def page(
        self, owner: str | None, limit: int, *, after_id: str | None = None, before_id: str | None = None
    ) -> Page:
        if limit <= 0:
            return Page([], False)
        cursor = after_id if after_id is not None else before_id
        newer = after_id is None and before_id is not None
        rows = await self._run(
            "page",
            "all" if owner is None else f"owner:{owner}",
            limit,
            cursor or "",
            "before" if newer else "after",
        )
        records = [r for r in (_record(batch_id, flat) for batch_id, flat in rows) if r is not None]
        has_more = len(rows) > limit
        if has_more:
            records = records[-limit:] if newer else records[:limit]
        return Page(records, has_more)

    async def cancel(self, batch_id: str, now: float) -> BatchRecord | None:
        return _record(batch_id, await self._run("cancel", batch_id, repr(now)))

    async def delete(self, batch_id: str) -> bool:
        return bool(await self._run("delete", batch_id))

    # -- entries -----------------------------------------------------------------------------

    async def claim(self, worker: str, limit: int, *, lease: float, now: float) -> list[Claim]:
        if limit <= 0:
            return []
        batches = await self._run("claim", worker, limit, repr(now + lease), repr(now), LOCAL)
        claims: list[Claim] = []
        for batch_id, expires_at, owner, headers, rows in batches:
            decoded = msgspec.json.decode(headers)
            expires = float(expires_at)
            for i in range(0, len(rows), 3):
                idx, custom_id, params = rows[i : i + 3]
                claims.append(
                    Claim(EntryKey(batch_id, int(idx)), custom_id, _bytes(params), owner, decoded, expires)
                )
        return claims

    async def renew(self, worker: str, keys: Sequence[EntryKey], *, until: float) -> None:
        if keys:
            await self._lease(worker, keys, repr(until), release=False)

    async def release(self, worker: str, keys: Sequence[EntryKey], *, not_before: float) -> None:
        if keys:
            await self._lease(worker, keys, repr(not_before), release=True)

    async def _lease(self, worker: str, keys: Sequence[EntryKey], score: str, *, release: bool) -> None:
        pairs = [x for k in keys for x in (k.batch_id, k.index)]
        await self._run("lease", worker, score, "1" if release else "0", *pairs)

    async def finish(self, key: EntryKey, result_type: str, result: bytes, *, now: float) -> bool:
        if result_type not in RESULT_TYPES:
            raise ValueError(f"unknown result type {result_type!r}")
        return bool(await self._run("finish", key.batch_id, key.index, result_type, result))

    async def settle(self, now: float, *, retention: float) -> list[str]:
        ended = await self._run("settle", repr(now), repr(now - retention))
        return [str(batch_id) for batch_id in ended]

    async def results(self, batch_id: str) -> AsyncIterator[bytes]:
        total = await self._call("HGET", f"{self.prefix}batch:{batch_id}", "total")
        if total is None:
            return
        encode = msgspec.json.encode
        for first in range(0, int(total), _RESULT_PAGE):
            rows = await self._run("results", batch_id, first, _RESULT_PAGE)
            if rows:
                yield b"".join(
                    b'{"custom_id":' + encode(rows[i + 1]) + b',"result":' + _bytes(rows[i + 2]) + b"}\n"
                    for i in range(0, len(rows), 3)
                )

    async def aclose(self) -> None:
        await self.client.aclose()
