"""The file store interface: the metadata of uploaded files (their contents live on disk).

One small base class (``FileStore``) with three implementations: ``MemoryFileStore`` beside it
(tests, and a model of the others), ``SqliteFileStore`` (``sidecar.files.sqlite``), a table in
the batches database, and ``RedisFileStore`` (``sidecar.files.redis``), in the batches' Redis,
shared by replicas; the contents then need a volume every replica mounts.

The contract: ``create`` records a file whose contents are already complete on disk (so a record
never points at half a file); ``delete`` forgets it and says whether it existed; ``page`` lists
newest first and pages as the API does. Times are wall-clock seconds since the epoch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType

__all__ = ["FilePage", "FileRecord", "FileStore", "MemoryFileStore"]


@dataclass(frozen=True, slots=True, kw_only=True)
class FileRecord:
    """One uploaded file. ``owner`` is the uploading key's hash ("" without client keys)."""

    id: str
    owner: str
    filename: str
    mime_type: str
    size_bytes: int
    created_at: float
    downloadable: bool = False  # only files created by tools or skills are; uploads never


@dataclass(frozen=True, slots=True)
class FilePage:
    records: list[FileRecord]
    has_more: bool


class FileStore:
    """Base class of file metadata stores (subclass and implement every method)."""

    async def create(self, record: FileRecord) -> None:
        raise NotImplementedError("FileStore.create")

    async def get(self, file_id: str) -> FileRecord | None:
        raise NotImplementedError("FileStore.get")

    async def delete(self, file_id: str) -> bool:
        """Forget the file; False when there was none."""
        raise NotImplementedError("FileStore.delete")

    async def page(
        self,
        owner: str | None,
        limit: int,
        *,
        after_id: str | None = None,
        before_id: str | None = None,
        ids: Sequence[str] | None = None,
    ) -> FilePage:
        """Files of ``owner`` (None: everyone's), newest first; ``after_id`` pages to older ones,
        ``before_id`` to newer ones; ``ids``: only those (one page). Unknown cursor ids: an
        empty page."""
        raise NotImplementedError("FileStore.page")

    async def aclose(self) -> None:
        """Release the storage."""

    async def __aenter__(self) -> FileStore:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()


def _key(record: FileRecord) -> tuple[float, str]:
    return (record.created_at, record.id)


class MemoryFileStore(FileStore):
    """A ``FileStore`` in a dict: for tests, and a model of what the others must do."""

    def __init__(self) -> None:
        self.records: dict[str, FileRecord] = {}

    async def create(self, record: FileRecord) -> None:
        if record.id in self.records:
            raise ValueError(f"file {record.id!r} exists")
        self.records[record.id] = record

    async def get(self, file_id: str) -> FileRecord | None:
        return self.records.get(file_id)

    async def delete(self, file_id: str) -> bool:
        return self.records.pop(file_id, None) is not None

    async def page(
        self,
        owner: str | None,
        limit: int,
        *,
        after_id: str | None = None,
        before_id: str | None = None,
        ids: Sequence[str] | None = None,
    ) -> FilePage:
        mine = [r for r in self.records.values() if owner is None or r.owner == owner]
        if ids is not None:
            wanted = set(ids)
            chosen = sorted((r for r in mine if r.id in wanted), key=_key, reverse=True)
            return FilePage(chosen, False)
        cursor_id = after_id if after_id is not None else before_id
        if cursor_id is not None:
            cursor = self.records.get(cursor_id)
            if cursor is None or (owner is not None and cursor.owner != owner):
                return FilePage([], False)
            if after_id is not None:
                mine = [r for r in mine if _key(r) < _key(cursor)]
            else:
                newer = sorted((r for r in mine if _key(r) > _key(cursor)), key=_key)
                return FilePage(sorted(newer[:limit], key=_key, reverse=True), len(newer) > limit)
        mine.sort(key=_key, reverse=True)
        return FilePage(mine[:limit], len(mine) > limit)
