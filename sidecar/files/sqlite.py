"""``SqliteFileStore``: file metadata as a table (``files``) of the batches' SQLite database.

Its own connection and thread (``sidecar.core.sqlite_thread``: the event loop never waits on the
disk), WAL mode like the batch store, so both share the file without blocking each other's
readers. Each method is one
statement.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..core.sqlite_thread import SqliteThread, newest_first
from .store import FilePage, FileRecord, FileStore

__all__ = ["SqliteFileStore"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS files (
    id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    filename TEXT NOT NULL,
    mime_type TEXT NOT NULL,
    size_bytes INTEGER NOT NULL,
    created_at REAL NOT NULL,
    downloadable INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS files_by_owner ON files (owner, created_at, id);
CREATE INDEX IF NOT EXISTS files_by_time ON files (created_at, id);
"""
_COLUMNS = "id, owner, filename, mime_type, size_bytes, created_at, downloadable"


def _record(row: tuple[Any, ...]) -> FileRecord:
    return FileRecord(
        id=row[0],
        owner=row[1],
        filename=row[2],
        mime_type=row[3],
        size_bytes=row[4],
        created_at=row[5],
        downloadable=bool(row[6]),
    )


class SqliteFileStore(FileStore):
    """A ``FileStore`` in one SQLite file (``":memory:"``: a private in-memory database)."""

    def __init__(self, path: str | Path) -> None:
        self._thread = SqliteThread(path, _SCHEMA, name="sidecar-files")
        self.path = self._thread.path
        self._db = self._thread.db
        self._run = self._thread.run

    async def create(self, record: FileRecord) -> None:
        await self._run(
            self._db.execute,
            f"INSERT INTO files ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                record.id,
                record.owner,
                record.filename,
                record.mime_type,
                record.size_bytes,
                record.created_at,
                int(record.downloadable),
            ),
        )

    async def get(self, file_id: str) -> FileRecord | None:
        return await self._run(self._get, file_id)

    def _get(self, file_id: str) -> FileRecord | None:
        row = self._db.execute(f"SELECT {_COLUMNS} FROM files WHERE id = ?", (file_id,)).fetchone()
        return _record(row) if row is not None else None

    async def delete(self, file_id: str) -> bool:
        return await self._run(self._delete, file_id)

    def _delete(self, file_id: str) -> bool:
        return self._db.execute("DELETE FROM files WHERE id = ?", (file_id,)).rowcount > 0

    async def page(
        self,
        owner: str | None,
        limit: int,
        *,
        after_id: str | None = None,
        before_id: str | None = None,
        ids: Sequence[str] | None = None,
    ) -> FilePage:
        return await self._run(self._page, owner, limit, after_id, before_id, ids)

    def _page(
        self,
        owner: str | None,
        limit: int,
        after_id: str | None,
        before_id: str | None,
        ids: Sequence[str] | None,
    ) -> FilePage:
        where = ["1"] if owner is None else ["owner = ?"]
        args: list[Any] = [] if owner is None else [owner]
        if ids is not None:
            if not ids:
                return FilePage([], False)
            where.append(f"id IN ({', '.join('?' * len(ids))})")
            rows = self._db.execute(
                f"SELECT {_COLUMNS} FROM files WHERE {' AND '.join(where)} ORDER BY created_at DESC, id DESC",
                (*args, *ids),
            ).fetchall()
            return FilePage([_record(r) for r in rows], False)
        cursor_id = after_id if after_id is not None else before_id
        newer = after_id is None and before_id is not None
        at: tuple[float, str] | None = None
        if cursor_id is not None:
            cursor = self._get(cursor_id)
            if cursor is None or (owner is not None and cursor.owner != owner):
                return FilePage([], False)
            at = (cursor.created_at, cursor.id)
        rows, more = newest_first(self._db, f"SELECT {_COLUMNS} FROM files", where, args, at, newer, limit)
        return FilePage([_record(r) for r in rows], more)

    async def aclose(self) -> None:
        await self._thread.aclose()
