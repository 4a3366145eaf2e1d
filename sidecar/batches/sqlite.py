"""``SqliteStore``: the embedded batch store, one SQLite file (WAL mode) under ``batches.dir``.

Every method is one small transaction, run on the store's own thread
(``sidecar.core.sqlite_thread``) so the event loop never waits on the disk; a large create is
many (``stage``): its entries go into ``entries`` under the new batch's id as they come, a row in ``staging`` says they are being written, and ``commit``
inserts the batch's row and deletes that one in one transaction. Every reader starts from
``batches``, so entries without a batch row are invisible; ``settle`` deletes the ones whose
staging row has not been touched for ``STAGE_TTL`` (a create whose process was killed). Write
transactions start with ``BEGIN IMMEDIATE``, so two processes sharing the file (a restart
overlapping the old process) never claim the same entry twice. With WAL and
``synchronous=NORMAL`` a committed transaction survives the process being killed (SIGKILL); only
an OS crash may lose the last ones.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import msgspec

from ..core.sqlite_thread import SqliteThread, newest_first
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

__all__ = ["SqliteStore"]

T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS batches (
    id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    location TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at REAL NOT NULL,
    expires_at REAL NOT NULL,
    ended_at REAL,
    cancel_initiated_at REAL,
    archived_at REAL,
    total INTEGER NOT NULL,
    succeeded INTEGER NOT NULL DEFAULT 0,
    errored INTEGER NOT NULL DEFAULT 0,
    canceled INTEGER NOT NULL DEFAULT 0,
    expired INTEGER NOT NULL DEFAULT 0,
    headers BLOB NOT NULL,
    snapshot BLOB
);
CREATE INDEX IF NOT EXISTS batches_by_owner ON batches (owner, created_at, id);
CREATE INDEX IF NOT EXISTS batches_by_time ON batches (created_at, id);
CREATE INDEX IF NOT EXISTS batches_by_status ON batches (status, location);
CREATE TABLE IF NOT EXISTS entries (
    batch_id TEXT NOT NULL,
    idx INTEGER NOT NULL,
    custom_id TEXT NOT NULL,
    params BLOB,
    worker TEXT,
    lease_until REAL NOT NULL DEFAULT 0,
    result_type TEXT,
    result BLOB,
    PRIMARY KEY (batch_id, idx)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS entries_open ON entries (batch_id, lease_until) WHERE result_type IS NULL;
CREATE TABLE IF NOT EXISTS staging (
    batch_id TEXT PRIMARY KEY,
    touched_at REAL NOT NULL
);
"""

_COLUMNS = (
    "id, owner, location, status, created_at, expires_at, ended_at, cancel_initiated_at, "
    "archived_at, total, succeeded, errored, canceled, expired, headers, snapshot"
)
_RESULT_PAGE = 1000  # result lines read per query while streaming results
_CANCELED = b'{"type":"canceled"}'
_EXPIRED = b'{"type":"expired"}'


def _record(row: tuple[Any, ...]) -> BatchRecord:
    return BatchRecord(
        id=row[0],
        owner=row[1],
        location=row[2],
        status=row[3],
        created_at=row[4],
        expires_at=row[5],
        ended_at=row[6],
        cancel_initiated_at=row[7],
        archived_at=row[8],
        total=row[9],
        counts=dict(zip(RESULT_TYPES, row[10:14], strict=True)),
        headers=msgspec.json.decode(row[14]),
        snapshot=row[15],
    )


class _Staged(StagedBatch):
    def __init__(self, store: SqliteStore, batch_id: str) -> None:
        self._store = store
        self._batch_id = batch_id
        self._count = 0
        self._committed = False

    async def add(self, entries: Sequence[NewEntry], *, now: float) -> None:
        if entries:
            store = self._store
            await store._run(store._write, store._add, self._batch_id, self._count, entries, now)
            self._count += len(entries)

    async def commit(self, batch: BatchRecord) -> None:
        if batch.id != self._batch_id:
            raise ValueError(f"staged as batch {self._batch_id}, committed as {batch.id}")
        store = self._store
        await store._run(store._write, store._commit, batch, self._count)
        self._committed = True

    async def discard(self) -> None:
        if not self._committed:
            store = self._store
            await store._run(store._write, store._discard, self._batch_id)


class SqliteStore(BatchStore):
    """A ``BatchStore`` in one SQLite file (``":memory:"``: a private in-memory database)."""

    def __init__(self, path: str | Path) -> None:
        self._thread = SqliteThread(path, _SCHEMA, name="sidecar-batches")
        self.path = self._thread.path
        self._db = self._thread.db
        self._run = self._thread.run

    def _write(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` in one write transaction (on the store's thread)."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            out = fn(*args)
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")
        return out

    # -- batches -----------------------------------------------------------------------------

    async def stage(self, batch_id: str, *, now: float) -> StagedBatch:
        await self._run(self._write, self._stage, batch_id, now)
        return _Staged(self, batch_id)

    def _stage(self, batch_id: str, now: float) -> None:
        # One create per id at a time (the primary key), and never an id that is taken: the
        # entries of a batch are whatever ``entries`` holds under its id.
        if self._db.execute("SELECT 1 FROM batches WHERE id = ?", (batch_id,)).fetchone() is not None:
            raise sqlite3.IntegrityError(f"batch {batch_id} exists")
        self._db.execute("INSERT INTO staging VALUES (?, ?)", (batch_id, now))

    def _add(self, batch_id: str, first: int, entries: Sequence[NewEntry], now: float) -> None:
        touched = self._db.execute(
            "UPDATE staging SET touched_at = ? WHERE batch_id = ?", (now, batch_id)
        ).rowcount
        if not touched:
            raise RuntimeError(f"batch {batch_id}: its staged entries were deleted as stale")
        self._db.executemany(
            "INSERT INTO entries (batch_id, idx, custom_id, params) VALUES (?, ?, ?, ?)",
            ((batch_id, first + i, e.custom_id, e.params) for i, e in enumerate(entries)),
        )

    def _commit(self, batch: BatchRecord, staged: int) -> None:
        gone = self._db.execute("DELETE FROM staging WHERE batch_id = ?", (batch.id,)).rowcount == 0
        (count,) = self._db.execute("SELECT COUNT(*) FROM entries WHERE batch_id = ?", (batch.id,)).fetchone()
        if gone or count != staged:
            raise RuntimeError(f"batch {batch.id}: its staged entries are incomplete ({count} of {staged})")
        self._db.execute(
            f"INSERT INTO batches ({_COLUMNS}) VALUES ({', '.join('?' * 16)})",
            (
                batch.id,
                batch.owner,
                batch.location,
                batch.status,
                batch.created_at,
                batch.expires_at,
                batch.ended_at,
                batch.cancel_initiated_at,
                batch.archived_at,
                batch.total,
                *(batch.counts[t] for t in RESULT_TYPES),
                msgspec.json.encode(batch.headers),
                batch.snapshot,
            ),
        )

    def _discard(self, batch_id: str) -> None:
        # Only while the staging row is there: a committed batch's entries are never touched.
        if self._db.execute("DELETE FROM staging WHERE batch_id = ?", (batch_id,)).rowcount:
            self._db.execute("DELETE FROM entries WHERE batch_id = ?", (batch_id,))

    async def get(self, batch_id: str) -> BatchRecord | None:
        return await self._run(self._get, batch_id)

    def _get(self, batch_id: str) -> BatchRecord | None:
        row = self._db.execute(f"SELECT {_COLUMNS} FROM batches WHERE id = ?", (batch_id,)).fetchone()
        return _record(row) if row is not None else None

    async def update_snapshot(self, batch_id: str, snapshot: bytes, status: str) -> None:
        await self._run(
            self._db.execute,
            "UPDATE batches SET snapshot = ?, status = ? WHERE id = ?",
            (snapshot, status, batch_id),
        )

    async def page(
        self, owner: str | None, limit: int, *, after_id: str | None = None, before_id: str | None = None
    ) -> Page:
        return await self._run(self._page, owner, limit, after_id, before_id)

    def _page(self, owner: str | None, limit: int, after_id: str | None, before_id: str | None) -> Page:
        where = ["1"] if owner is None else ["owner = ?"]
        args: list[Any] = [] if owner is None else [owner]
        cursor_id = after_id if after_id is not None else before_id
        newer = after_id is None and before_id is not None
        at: tuple[float, str] | None = None
        if cursor_id is not None:
            cursor = self._get(cursor_id)
            if cursor is None or (owner is not None and cursor.owner != owner):
                return Page([], False)
            at = (cursor.created_at, cursor.id)
        rows, more = newest_first(self._db, f"SELECT {_COLUMNS} FROM batches", where, args, at, newer, limit)
        return Page([_record(r) for r in rows], more)

    async def cancel(self, batch_id: str, now: float) -> BatchRecord | None:
        return await self._run(self._write, self._cancel, batch_id, now)

    def _cancel(self, batch_id: str, now: float) -> BatchRecord | None:
        self._db.execute(
            "UPDATE batches SET status = 'canceling', cancel_initiated_at = ? "
            "WHERE id = ? AND status = 'in_progress'",
            (now, batch_id),
        )
        return self._get(batch_id)

    async def delete(self, batch_id: str) -> bool:
        return await self._run(self._write, self._delete, batch_id)

    def _delete(self, batch_id: str) -> bool:
        self._db.execute("DELETE FROM entries WHERE batch_id = ?", (batch_id,))
        return self._db.execute("DELETE FROM batches WHERE id = ?", (batch_id,)).rowcount > 0

    # -- entries -----------------------------------------------------------------------------

    async def claim(self, worker: str, limit: int, *, lease: float, now: float) -> list[Claim]:
        if limit <= 0:
            return []
        return await self._run(self._write, self._claim, worker, limit, now + lease, now)

    def _claim(self, worker: str, limit: int, until: float, now: float) -> list[Claim]:
        claims: list[Claim] = []
        batches = self._db.execute(
            "SELECT id, owner, headers, expires_at FROM batches WHERE status = 'in_progress' "
            "AND location = ? AND expires_at > ? ORDER BY created_at, id",
            (LOCAL, now),
        ).fetchall()
        for batch_id, owner, headers, expires_at in batches:
            rows = self._db.execute(
                "SELECT idx, custom_id, params FROM entries WHERE batch_id = ? AND result_type IS NULL "
                "AND lease_until <= ? ORDER BY idx LIMIT ?",
                (batch_id, now, limit - len(claims)),
            ).fetchall()
            if not rows:
                continue
            self._db.executemany(
                "UPDATE entries SET worker = ?, lease_until = ? WHERE batch_id = ? AND idx = ?",
                ((worker, until, batch_id, idx) for idx, _, _ in rows),
            )
            decoded = msgspec.json.decode(headers)
            claims.extend(
                Claim(EntryKey(batch_id, idx), custom_id, params, owner, decoded, expires_at)
                for idx, custom_id, params in rows
            )
            if len(claims) >= limit:
                break
        return claims

    async def renew(self, worker: str, keys: Sequence[EntryKey], *, until: float) -> None:
        if keys:
            await self._run(self._write, self._lease, worker, keys, worker, until)

    async def release(self, worker: str, keys: Sequence[EntryKey], *, not_before: float) -> None:
        if keys:
            await self._run(self._write, self._lease, worker, keys, None, not_before)

    def _lease(self, worker: str, keys: Sequence[EntryKey], new_worker: str | None, until: float) -> None:
        self._db.executemany(
            "UPDATE entries SET worker = ?, lease_until = ? "
            "WHERE batch_id = ? AND idx = ? AND worker = ? AND result_type IS NULL",
            ((new_worker, until, k.batch_id, k.index, worker) for k in keys),
        )

    async def finish(self, key: EntryKey, result_type: str, result: bytes, *, now: float) -> bool:
        if result_type not in RESULT_TYPES:
            raise ValueError(f"unknown result type {result_type!r}")
        return await self._run(self._write, self._finish, key, result_type, result)

    def _finish(self, key: EntryKey, result_type: str, result: bytes) -> bool:
        changed = self._db.execute(
            "UPDATE entries SET result_type = ?, result = ?, params = NULL, worker = NULL "
            "WHERE batch_id = ? AND idx = ? AND result_type IS NULL",
            (result_type, result, key.batch_id, key.index),
        ).rowcount
        if changed:
            # result_type is one of RESULT_TYPES (checked above): a column name.
            self._db.execute(
                f"UPDATE batches SET {result_type} = {result_type} + 1 WHERE id = ?", (key.batch_id,)
            )
        return changed > 0

    async def settle(self, now: float, *, retention: float) -> list[str]:
        return await self._run(self._write, self._settle, now, retention)

    def _settle(self, now: float, retention: float) -> list[str]:
        db = self._db
        open_batches = db.execute(
            "SELECT id, status, expires_at FROM batches WHERE status != 'ended' AND location = ?", (LOCAL,)
        ).fetchall()
        for batch_id, status, expires_at in open_batches:
            # Entries running now finish first (their result counts); the others end here.
            if status == "canceling":
                outcome, body = "canceled", _CANCELED
            elif expires_at <= now:
                outcome, body = "expired", _EXPIRED
            else:
                continue
            n = db.execute(
                "UPDATE entries SET result_type = ?, result = ?, params = NULL, worker = NULL "
                "WHERE batch_id = ? AND result_type IS NULL AND (worker IS NULL OR lease_until <= ?)",
                (outcome, body, batch_id, now),
            ).rowcount
            if n:
                db.execute(f"UPDATE batches SET {outcome} = {outcome} + ? WHERE id = ?", (n, batch_id))
        ended = [
            row[0]
            for row in db.execute(
                "SELECT id FROM batches WHERE status != 'ended' AND location = ? "
                "AND succeeded + errored + canceled + expired >= total",
                (LOCAL,),
            ).fetchall()
        ]
        db.executemany(
            "UPDATE batches SET status = 'ended', ended_at = ? WHERE id = ?", ((now, i) for i in ended)
        )
        # Retention: results go, the batch stays (archived) as the API keeps it.
        old = db.execute(
            "SELECT id FROM batches WHERE status = 'ended' AND location = ? AND archived_at IS NULL "
            "AND ended_at <= ?",
            (LOCAL, now - retention),
        ).fetchall()
        for (batch_id,) in old:
            db.execute("DELETE FROM entries WHERE batch_id = ?", (batch_id,))
            db.execute("UPDATE batches SET archived_at = ? WHERE id = ?", (now, batch_id))
        # Creates that stopped without committing or discarding (their process was killed).
        for (batch_id,) in db.execute(
            "SELECT batch_id FROM staging WHERE touched_at <= ?", (now - STAGE_TTL,)
        ).fetchall():
            self._discard(batch_id)
        return ended

    async def results(self, batch_id: str) -> AsyncIterator[bytes]:
        after = -1
        while True:
            rows = await self._run(self._results_page, batch_id, after)
            if not rows:
                return
            encode = msgspec.json.encode
            yield b"".join(
                b'{"custom_id":' + encode(custom_id) + b',"result":' + result + b"}\n"
                for _, custom_id, result in rows
            )
            if len(rows) < _RESULT_PAGE:
                return
            after = rows[-1][0]

    def _results_page(self, batch_id: str, after: int) -> list[tuple[int, str, bytes]]:
        return self._db.execute(
            "SELECT idx, custom_id, result FROM entries WHERE batch_id = ? AND idx > ? "
            "AND result_type IS NOT NULL ORDER BY idx LIMIT ?",
            (batch_id, after, _RESULT_PAGE),
        ).fetchall()

    async def aclose(self) -> None:
        await self._thread.aclose()
