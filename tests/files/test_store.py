"""Both file stores (the in-memory fake and SQLite) against one contract: create, get, delete,
and the API's paging (newest first, after_id to older, before_id to newer, ids), per owner."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from sidecar.files import FileRecord, FileStore, MemoryFileStore, SqliteFileStore


def rec(i: int, owner: str = "") -> FileRecord:
    return FileRecord(
        id=f"file_{i:03d}",
        owner=owner,
        filename=f"f{i}.txt",
        mime_type="text/plain",
        size_bytes=i,
        created_at=1000.0 + i,
    )


@pytest.fixture(params=["memory", "sqlite"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[FileStore]:
    s: FileStore = (
        MemoryFileStore() if request.param == "memory" else SqliteFileStore(tmp_path / "db.sqlite3")
    )
    async with s:
        yield s


async def test_create_get_delete(store: FileStore) -> None:
    await store.create(rec(1, "k"))
    assert await store.get("file_001") == rec(1, "k")
    assert await store.get("file_002") is None
    assert await store.delete("file_001") is True
    assert await store.delete("file_001") is False
    assert await store.get("file_001") is None


async def test_paging_both_ways(store: FileStore) -> None:
    for i in range(7):
        await store.create(rec(i))
    first = await store.page(None, 3)
    assert [r.id for r in first.records] == ["file_006", "file_005", "file_004"] and first.has_more
    second = await store.page(None, 3, after_id="file_004")
    assert [r.id for r in second.records] == ["file_003", "file_002", "file_001"] and second.has_more
    last = await store.page(None, 3, after_id="file_001")
    assert [r.id for r in last.records] == ["file_000"] and not last.has_more
    back = await store.page(None, 2, before_id="file_003")
    assert [r.id for r in back.records] == ["file_005", "file_004"] and back.has_more
    assert (await store.page(None, 3, after_id="file_999")).records == []


async def test_owners_and_ids(store: FileStore) -> None:
    for i in range(4):
        await store.create(rec(i, "a" if i % 2 else "b"))
    assert [r.id for r in (await store.page("a", 10)).records] == ["file_003", "file_001"]
    # Another owner's id is no cursor.
    assert (await store.page("a", 10, after_id="file_002")).records == []
    got = await store.page("a", 10, ids=["file_001", "file_002", "file_009"])
    assert [r.id for r in got.records] == ["file_001"] and not got.has_more
    assert len((await store.page(None, 10, ids=["file_001", "file_002"])).records) == 2


async def test_sqlite_shares_the_batches_database(tmp_path: Path) -> None:
    from sidecar.batches import SqliteStore

    path = tmp_path / "batches.sqlite3"
    async with SqliteStore(path), SqliteFileStore(path) as files:
        await files.create(rec(1))
    async with SqliteFileStore(path) as again:
        assert await again.get("file_001") == rec(1)
