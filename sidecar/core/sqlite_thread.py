"""``SqliteThread``: one SQLite connection on a thread of its own, so the event loop never waits
on the disk. The batch store and the file store each open one on the same file.

The connection is in autocommit mode (``isolation_level=None``: callers that need a transaction
write ``BEGIN IMMEDIATE`` themselves), WAL with ``synchronous=NORMAL`` (readers never block the
writer, and a committed transaction survives the process being killed), and waits up to 10 s for
another connection's write lock. Every call runs on the one thread, in order.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

__all__ = ["SqliteThread", "newest_first"]

T = TypeVar("T")


def newest_first(
    db: sqlite3.Connection,
    query: str,
    where: list[str],
    args: list[Any],
    cursor: tuple[float, str] | None,
    newer: bool,
    limit: int,
) -> tuple[list[Any], bool]:
    """One page of rows newest first by ``(created_at, id)`` (the batches', the files'), and
    whether there are more. ``query`` is ``SELECT ... FROM table``; ``where`` and ``args`` its
    conditions. ``cursor``: the ``(created_at, id)`` paged from, towards older rows, or with
    ``newer`` towards newer ones (the rows nearest the cursor come last, as both API paging
    shapes want)."""
    if cursor is not None:
        where = [*where, "(created_at, id) > (?, ?)" if newer else "(created_at, id) < (?, ?)"]
        args = [*args, *cursor]
    order = "ASC" if newer else "DESC"
    rows = db.execute(
        f"{query} WHERE {' AND '.join(where)} ORDER BY created_at {order}, id {order} LIMIT ?",
        (*args, limit + 1),
    ).fetchall()
    page = rows[:limit]
    if newer:
        page.reverse()
    return page, len(rows) > limit


class SqliteThread:
    """A connection to ``path`` (``":memory:"``: a private in-memory database; otherwise its
    directory is created), opened on its thread (named ``name``), with ``schema`` run once."""

    def __init__(self, path: str | Path, schema: str, *, name: str) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        # Only ever used on the pool's thread (``run``), hence check_same_thread=False.
        self.db: sqlite3.Connection = self._pool.submit(self._connect, schema).result()
        self._closed = False

    def _connect(self, schema: str) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("PRAGMA busy_timeout=10000")
        db.executescript(schema)
        return db

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` on the connection's thread."""
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    async def aclose(self) -> None:
        """Close the connection and let the thread go; a second call does nothing."""
        if self._closed:
            return
        self._closed = True
        await self.run(self.db.close)
        self._pool.shutdown(wait=False)
