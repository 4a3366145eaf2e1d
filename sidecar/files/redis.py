"""``RedisFileStore``: file metadata in Redis, beside the batches (``batches.store: {kind: redis}``),
so every replica pointing at it sees every file; the contents then need a volume every replica
mounts (``files.dir``).

Same Redis, ``key_prefix`` and ``timeout`` as the batch store (``sidecar.batches.redis``), its own
connection. Each change is one Lua script, so a file and its two indexes change together. Keys,
under the prefix (on a Redis Cluster its hash tag puts them in the batches' slot):

- ``file:<id>``                hash: ``owner``, ``filename``, ``mime_type``, ``size_bytes``,
  ``created_at`` (Python's ``repr`` of the float, so it comes back exactly), ``downloadable``.
- ``files``, ``files:owner:<owner>``  sorted sets by ``created_at``: the newest-first paging.
  Equal times order by id, as SQLite's ``ORDER BY created_at, id`` does.

A call Redis does not answer within ``timeout``, or that fails, raises ``Unavailable``
(``sidecar.admission.resp.unavailable``: 503, gRPC UNAVAILABLE).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from ..admission.resp import RespClient, Script, newest_first_page, unavailable
from .store import FilePage, FileRecord, FileStore

__all__ = ["RedisFileStore"]

_WHAT = "the file store"  # what a client is told is unavailable

# ARGV: prefix, id, owner, created_at, then the file hash's field/value pairs.
_CREATE = Script(
    """
local p, id = ARGV[1], ARGV[2]
local fkey = p .. 'file:' .. id
if redis.call('EXISTS', fkey) == 1 then
  return redis.error_reply('ERR file ' .. id .. ' exists')
end
local fields = {}
for i = 5, #ARGV do fields[#fields + 1] = ARGV[i] end
redis.call('HSET', fkey, unpack(fields))
redis.call('ZADD', p .. 'files', ARGV[4], id)
redis.call('ZADD', p .. 'files:owner:' .. ARGV[3], ARGV[4], id)
return 1
"""
)

# ARGV: prefix, id. 1 when the file was there.
_DELETE = Script(
    """
local p, id = ARGV[1], ARGV[2]
local fkey = p .. 'file:' .. id
local owner = redis.call('HGET', fkey, 'owner')
if not owner then return 0 end
redis.call('DEL', fkey)
redis.call('ZREM', p .. 'files', id)
redis.call('ZREM', p .. 'files:owner:' .. owner, id)
return 1
"""
)

# A page of files, newest first; the index key suffix is 'files' or 'files:owner:<owner>' (a
# cursor of another owner's is an empty page).
_PAGE = Script(newest_first_page("file"))

# ARGV: prefix, then ids. Returns {id, hash} of each id that is a file.
_PICK = Script(
    """
local out = {}
for i = 2, #ARGV do
  local h = redis.call('HGETALL', ARGV[1] .. 'file:' .. ARGV[i])
  if #h > 0 then out[#out + 1] = {ARGV[i], h} end
end
return out
"""
)


def _record(file_id: str, flat: list[Any]) -> FileRecord | None:
    """A file from its hash (``HGETALL``'s flat list); None when it is empty."""
    if not flat:
        return None
    h = dict(zip(flat[::2], flat[1::2], strict=True))
    return FileRecord(
        id=file_id,
        owner=h["owner"],
        filename=h["filename"],
        mime_type=h["mime_type"],
        size_bytes=int(h["size_bytes"]),
        created_at=float(h["created_at"]),
        downloadable=h["downloadable"] == "1",
    )


def _newest_first(record: FileRecord) -> tuple[float, str]:
    return (record.created_at, record.id)


class RedisFileStore(FileStore):
    """A ``FileStore`` in the Redis of ``client`` (``sidecar.admission.resp``), every key under
    ``key_prefix``; each call bounded by ``timeout`` seconds."""

    def __init__(
        self, client: RespClient, *, key_prefix: str = "sidecar:batches:", timeout: float = 5.0
    ) -> None:
        self.client = client
        self.prefix = key_prefix
        self.timeout = timeout

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> RedisFileStore:
        """A store on a new client for ``url`` (connected on first use)."""
        return cls(RespClient(url), **kwargs)

    async def _run(self, script: Script, *args: Any) -> Any:
        with unavailable(_WHAT):
            async with asyncio.timeout(self.timeout):
                return await self.client.evalsha(script, [], [self.prefix, *args])

    async def create(self, record: FileRecord) -> None:
        created_at = repr(record.created_at)
        await self._run(
            _CREATE,
            record.id,
            record.owner,
            created_at,
            "owner", record.owner,
            "filename", record.filename,
            "mime_type", record.mime_type,
            "size_bytes", record.size_bytes,
            "created_at", created_at,
            "downloadable", "1" if record.downloadable else "0",
        )  # fmt: skip

    async def get(self, file_id: str) -> FileRecord | None:
        with unavailable(_WHAT):
            async with asyncio.timeout(self.timeout):
                flat = await self.client.call("HGETALL", f"{self.prefix}file:{file_id}")
        return _record(file_id, flat)

    async def delete(self, file_id: str) -> bool:
        return bool(await self._run(_DELETE, file_id))

    async def page(
        self,
        owner: str | None,
        limit: int,
        *,
        after_id: str | None = None,
        before_id: str | None = None,
        ids: Sequence[str] | None = None,
    ) -> FilePage:
        if ids is not None:
            picked = await self._run(_PICK, *ids) if ids else []
            records = [r for r in (_record(i, flat) for i, flat in picked) if r is not None]
            mine = {r.id: r for r in records if owner is None or r.owner == owner}  # ids may repeat
            return FilePage(sorted(mine.values(), key=_newest_first, reverse=True), False)
        if limit <= 0:
            return FilePage([], False)
        cursor = after_id if after_id is not None else before_id
        newer = after_id is None and before_id is not None
        rows = await self._run(
            _PAGE,
            "files" if owner is None else f"files:owner:{owner}",
            limit,
            cursor or "",
            "before" if newer else "after",
        )
        records = [r for r in (_record(i, flat) for i, flat in rows) if r is not None]
        has_more = len(rows) > limit
        if has_more:
            records = records[-limit:] if newer else records[:limit]
        return FilePage(records, has_more)

    async def aclose(self) -> None:
        await self.client.aclose()
