"""The file stores (the in-memory model, SQLite, and Redis on a real redis-server) against one
contract: create, get, delete, and the API's paging (newest first, after_id to older, before_id
to newer, ids), per owner; then what each adds (SQLite shares the batches' file, two Redis
clients share the files)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from sidecar.files import FileRecord, FileStore, MemoryFileStore, RedisFileStore, SqliteFileStore
from tests.admission.conftest import RedisServer


def rec(i: int, owner: str = "", *, at: float | None = None) -> FileRecord:
    return FileRecord(
        id=f"file_{i:03d}",
        owner=owner,
        filename=f"f{i}.txt",
        mime_type="text/plain",
        size_bytes=i,
        created_at=1000.0 + i if at is None else at,
    )


def redis_store(server: RedisServer, prefix: str) -> RedisFileStore:
    return RedisFileStore.from_url(server.url, key_prefix=prefix, timeout=10.0)


@pytest.fixture(params=["memory", "sqlite", "redis"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[FileStore]:
    s: FileStore
    if request.param == "memory":
        s = MemoryFileStore()
    elif request.param == "sqlite":
        s = SqliteFileStore(tmp_path / "db.sqlite3")
    else:
        # Each test its own keys on the module's redis-server.
        s = redis_store(request.getfixturevalue("redis_server"), f"t:{uuid.uuid4().hex}:")
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
    both = await store.page(None, 10, ids=["file_001", "file_002", "file_001"])
    assert [r.id for r in both.records] == ["file_002", "file_001"]
    assert (await store.page(None, 10, ids=[])).records == []
    # "" is an owner too (no client keys): not everyone.
    await store.create(rec(9, ""))
    assert [r.id for r in (await store.page("", 10)).records] == ["file_009"]
    assert (await store.page("b", 10, before_id="file_001")).records == []


async def test_equal_times_order_by_id_and_every_field_comes_back(store: FileStore) -> None:
    at = 1_765_000_000.123456  # a time.time() value, with all its digits
    for i in (2, 0, 1):
        await store.create(rec(i, "k", at=at))
    await store.create(
        FileRecord(
            id="file_dl",
            owner="k",
            filename="é.pdf",
            mime_type="application/pdf",
            size_bytes=5,
            created_at=at - 1,
            downloadable=True,
        )
    )
    first = await store.page("k", 2)
    assert [r.id for r in first.records] == ["file_002", "file_001"] and first.has_more
    rest = await store.page("k", 2, after_id="file_001")
    assert [r.id for r in rest.records] == ["file_000", "file_dl"] and not rest.has_more
    back = await store.page("k", 2, before_id="file_000")
    assert [r.id for r in back.records] == ["file_002", "file_001"] and not back.has_more
    assert await store.get("file_001") == rec(1, "k", at=at)
    got = await store.get("file_dl")
    assert got is not None and got.downloadable and got.filename == "é.pdf" and got.created_at == at - 1


async def test_sqlite_shares_the_batches_database(tmp_path: Path) -> None:
    from sidecar.batches import SqliteStore

    path = tmp_path / "batches.sqlite3"
    async with SqliteStore(path), SqliteFileStore(path) as files:
        await files.create(rec(1))
    async with SqliteFileStore(path) as again:
        assert await again.get("file_001") == rec(1)


async def test_redis_clients_share_the_files(redis_server: RedisServer) -> None:
    """Two replicas' stores on one Redis and prefix: a file one records the other reads, pages
    and deletes; another prefix sees none of it."""
    prefix = f"t:{uuid.uuid4().hex}:"
    async with redis_store(redis_server, prefix) as one, redis_store(redis_server, prefix) as two:
        await one.create(rec(1, "k"))
        await two.create(rec(2, "k"))
        assert [r.id for r in (await one.page("k", 10)).records] == ["file_002", "file_001"]
        assert await two.get("file_001") == rec(1, "k")
        assert await two.delete("file_001") and await one.get("file_001") is None
        async with redis_store(redis_server, f"t:{uuid.uuid4().hex}:") as other:
            assert await other.get("file_002") is None and (await other.page(None, 10)).records == []
