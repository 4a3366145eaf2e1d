"""``Files``: the Files API served by the sidecar (``files.store: local``), and the file lookups
that resolve ``{"type": "file", "file_id"}`` sources (``sidecar.files.resolve``).

Contents live on disk under ``files.dir`` (one file per id), metadata in a ``FileStore`` beside
the batches: the ``files`` table of the batches' SQLite database, or, when batches are in Redis
(``batches.store: {kind: redis}``), the same Redis, so replicas that share it and a volume for
``files.dir`` share the files. An upload is parsed as it arrives and written to a temporary file
next to its final place; only once the whole body has been read, within the size limit, is it
renamed and recorded, so a refused or broken upload leaves nothing behind. With client keys
(``admission``) a key sees only its own files (the owner is the key's hash, as for batches);
another key's id is unknown to it. Without, there is one tenant.
"""

from __future__ import annotations

import asyncio
import os
import re
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, TypeVar
from urllib.parse import parse_qs

from ..config.model import BatchStoreConfig, FilesConfig, RedisBatchStore
from ..core import Answer, new_request_id
from ..core.credentials import CREDENTIAL_HEADERS
from ..errors import InvalidRequest, NotFound, RequestTooLarge, SidecarError
from .mime import detect_mime
from .multipart import PART_END, MalformedMultipart, MultipartParser, Part, boundary_of
from .store import FileRecord, FileStore

if TYPE_CHECKING:
    from ..admission.gate import Admission

__all__ = ["PREFIX", "Files"]

T = TypeVar("T")

PREFIX = "/v1/files"
_ID = re.compile(r"^file_[0-9A-Za-z]{1,64}$")
_TEMP = ".upload-"
_WRITE_AT = 1 << 20  # bytes gathered before each write to disk
_SNIFF = 512  # bytes of a file MIME detection looks at
_FORM_OVERHEAD = 64 * 1024  # what a form adds around the file: the early content-length check
_FIELD_MAX = 64 * 1024  # a form field other than `file`
_STALE_UPLOAD = 86400.0  # temporary files older than this (a killed process) are removed


def _rfc3339(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def metadata(record: FileRecord) -> dict[str, Any]:
    """The API's FileMetadata."""
    return {
        "id": record.id,
        "type": "file",
        "filename": record.filename,
        "mime_type": record.mime_type,
        "size_bytes": record.size_bytes,
        "created_at": _rfc3339(record.created_at),
        "downloadable": record.downloadable,
    }


def _not_allowed(method: str, path: str, allowed: str) -> SidecarError:
    return SidecarError(
        f"{method} {path} is not allowed; use {allowed}", status=405, error_type="invalid_request_error"
    )


async def _io(fn: Callable[..., T], *args: Any) -> T:
    return await asyncio.get_running_loop().run_in_executor(None, fn, *args)


class _Upload:
    """One upload being written: its temporary file, size and first bytes."""

    def __init__(self, path: Path, limit: int) -> None:
        self.path = path
        self.limit = limit
        self.size = 0
        self.head = b""
        self._pending: list[bytes] = []
        self._pending_size = 0
        self._fd: int | None = None

    async def open(self) -> None:
        self._fd = await _io(os.open, self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)

    async def write(self, data: bytes) -> None:
        self.size += len(data)
        if self.size > self.limit:
            raise RequestTooLarge(f"the file exceeds the maximum size of {self.limit} bytes")
        if len(self.head) < _SNIFF:
            self.head += data[: _SNIFF - len(self.head)]
        self._pending.append(data)
        self._pending_size += len(data)
        if self._pending_size >= _WRITE_AT:
            await self.flush()

    async def flush(self) -> None:
        if self._pending:
            data = b"".join(self._pending)
            self._pending.clear()
            self._pending_size = 0
            await _io(self._write_all, data)

    def _write_all(self, data: bytes) -> None:
        assert self._fd is not None
        view = memoryview(data)
        while view:
            view = view[os.write(self._fd, view) :]

    async def close(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            await _io(os.close, fd)


class Files:
    """The sidecar's own file store: one per process (it outlives config snapshots)."""

    def __init__(
        self,
        config: FilesConfig,
        *,
        database: Path,
        batches_store: BatchStoreConfig | None = None,
        store: FileStore | None = None,
    ) -> None:
        """The metadata goes where batches go (``batches_store``): in the SQLite file
        ``database`` (the batches'; also when None), or in the batches' Redis (same url, key
        prefix and timeout, a connection of its own, made at first use). ``store``: one to use
        instead (tests). Nothing is created on disk before the first upload."""
        self.config = config
        self.database = database
        self.dir = Path(config.dir) if config.dir is not None else database.parent / "files"
        if store is None and isinstance(batches_store, RedisBatchStore):
            assert batches_store.url is not None, "build_config fills batches.store.url"
            from .redis import RedisFileStore  # only when configured

            store = RedisFileStore.from_url(
                batches_store.url, key_prefix=batches_store.key_prefix, timeout=batches_store.timeout
            )
        self._store = store
        self._swept = False

    # -- storage --------------------------------------------------------------------------------

    def _opened(self) -> FileStore | None:
        """The store, opened if it exists on disk; None before the first upload."""
        if self._store is None and self.database.exists():
            return self._open()
        return self._store

    def _open(self) -> FileStore:
        if self._store is None:
            from .sqlite import SqliteFileStore  # sqlite3 is loaded by the first upload

            self._store = SqliteFileStore(self.database)
        return self._store

    def _content(self, file_id: str) -> Path:
        return self.dir / file_id

    def _sweep(self) -> None:
        """Remove uploads a killed process left half-written (old enough not to be running)."""
        cutoff = time.time() - _STALE_UPLOAD
        for path in self.dir.glob(_TEMP + "*"):
            try:
                if path.stat().st_mtime < cutoff:
                    path.unlink()
            except OSError:
                pass

    async def aclose(self) -> None:
        if self._store is not None:
            await self._store.aclose()

    # -- operations -----------------------------------------------------------------------------

    async def upload(
        self, owner: str, content_type: str, length: int | None, body: AsyncIterator[bytes]
    ) -> FileRecord:
        """Store the ``file`` part of a multipart body read from ``body``."""
        limit = self.config.max_bytes
        if length is not None and length > limit + _FORM_OVERHEAD:
            raise RequestTooLarge(f"the file exceeds the maximum size of {limit} bytes")
        boundary = boundary_of(content_type)
        if boundary is None:
            raise InvalidRequest("content-type must be multipart/form-data with a boundary")
        store = self._open()
        await _io(self.dir.mkdir, 0o700, True, True)
        if not self._swept:  # once per process
            self._swept = True
            await _io(self._sweep)
        file_id = new_request_id("file_")
        upload = _Upload(self.dir / f"{_TEMP}{file_id}", limit)
        committed = False
        try:
            part = await self._receive(boundary, body, upload)
            final = self._content(file_id)
            await _io(os.replace, upload.path, final)
            record = FileRecord(
                id=file_id,
                owner=owner,
                filename=part.filename or "",
                mime_type=detect_mime(upload.head, part.content_type, part.filename),
                size_bytes=upload.size,
                created_at=time.time(),
            )
            try:
                await store.create(record)
            except BaseException:
                await _io(final.unlink, True)
                raise
            committed = True
            return record
        finally:
            await upload.close()
            if not committed:
                await _io(upload.path.unlink, True)

    async def _receive(self, boundary: str, body: AsyncIterator[bytes], upload: _Upload) -> Part:
        """Read the whole body, the ``file`` part's data into ``upload``; returns that part."""
        parser = MultipartParser(boundary)
        current: Part | None = None
        found: Part | None = None
        field = 0
        try:
            async for chunk in body:
                for event in parser.feed(chunk):
                    if isinstance(event, Part):
                        current = event
                        if event.name == "file" and found is None:
                            found = event
                            await upload.open()
                        field = 0
                    elif event is PART_END:
                        current = None
                    elif isinstance(event, bytes) and current is not None:
                        if current is found:
                            await upload.write(event)
                        else:
                            field += len(event)
                            if field > _FIELD_MAX:
                                raise InvalidRequest(
                                    f"{current.name}: a form field may be at most {_FIELD_MAX} bytes"
                                )
            parser.close()
        except MalformedMultipart as exc:
            raise InvalidRequest(f"malformed multipart body: {exc}") from None
        if found is None:
            raise InvalidRequest("file: Field required (a multipart part named `file`)")
        await upload.flush()
        return found

    async def get(self, owner: str | None, file_id: str) -> FileRecord | None:
        """The file if ``owner`` may see it (None: any owner)."""
        if not _ID.match(file_id):
            return None
        store = self._opened()
        if store is None:
            return None
        record = await store.get(file_id)
        if record is None or (owner is not None and record.owner != owner):
            return None
        return record

    async def read(self, record: FileRecord) -> bytes | None:
        """The whole contents (for inlining into a request); None if they are gone."""
        try:
            return await _io(self._content(record.id).read_bytes)
        except FileNotFoundError:
            return None

    async def delete(self, owner: str | None, file_id: str) -> bool:
        record = await self.get(owner, file_id)
        if record is None:
            return False
        store = self._open()
        # Metadata first: a crash in between leaves an orphan content file, never a dangling id.
        deleted = await store.delete(file_id)
        await _io(self._content(file_id).unlink, True)
        return deleted

    async def list(
        self,
        owner: str | None,
        *,
        limit: int = 20,
        after_id: str | None = None,
        before_id: str | None = None,
        ids: list[str] | None = None,
    ) -> dict[str, Any]:
        """A list page in both shapes: ``{data, has_more, first_id, last_id}`` (SDKs up to 1.0,
        id paging) and ``next_page`` (newer SDKs, a ``page_`` cursor)."""
        store = self._opened()
        records: list[FileRecord] = []
        has_more = False
        if store is not None:
            page = await store.page(owner, limit, after_id=after_id, before_id=before_id, ids=ids)
            records, has_more = page.records, page.has_more
        data = [metadata(r) for r in records]
        last = data[-1]["id"] if data else None
        return {
            "data": data,
            "has_more": has_more,
            "first_id": data[0]["id"] if data else None,
            "last_id": last,
            "next_page": f"page_{last}" if has_more and before_id is None and last else None,
        }

    async def _chunks(self, path: Path) -> AsyncIterator[bytes]:
        with await _io(_open_binary, path) as fh:
            while chunk := await _io(fh.read, _WRITE_AT):
                yield chunk

    # -- the HTTP shape -------------------------------------------------------------------------

    async def handle(
        self,
        admission: Admission | None,
        method: str,
        path: str,
        query: str,
        headers: dict[str, str],
        body: AsyncIterator[bytes],
    ) -> Answer:
        """One request under ``/v1/files`` (``headers``: the client's, lower-case; ``body``: the
        request body as it arrives, read only by an upload)."""
        owner = _owner(admission, headers)
        scope = owner if admission is not None else None
        rest = path[len(PREFIX) :].strip("/")
        parts = rest.split("/") if rest else []
        if not parts:
            if method == "POST":
                length = headers.get("content-length", "")
                uploaded = await self.upload(
                    owner, headers.get("content-type", ""), int(length) if length.isdigit() else None, body
                )
                return _json(metadata(uploaded))
            if method == "GET":
                return _json(await self._list(scope, query))
            raise _not_allowed(method, path, "GET or POST")
        file_id = parts[0]
        record = await self.get(scope, file_id)
        if len(parts) == 1:
            if method not in ("GET", "DELETE"):
                raise _not_allowed(method, path, "GET or DELETE")
            if record is None:
                raise NotFound(f"File not found: {file_id}")
            if method == "GET":
                return _json(metadata(record))
            await self.delete(scope, file_id)
            return _json({"id": file_id, "type": "file_deleted"})
        if len(parts) == 2 and parts[1] == "content":
            if method != "GET":
                raise _not_allowed(method, path, "GET")
            if record is None:
                raise NotFound(f"File not found: {file_id}")
            if not record.downloadable:
                raise InvalidRequest(
                    f"file_not_downloadable: file {file_id} was uploaded and cannot be downloaded; "
                    "only files created by tools or skills can"
                )
            return Answer(
                headers=[("content-type", record.mime_type)],
                chunks=self._chunks(self._content(file_id)),
                upstream="sidecar",
            )
        raise NotFound(f"Not found: {method} {path}")

    async def _list(self, owner: str | None, query: str) -> dict[str, Any]:
        q = parse_qs(query)
        limit = q.get("limit", ["20"])[-1]
        if not limit.isdigit() or not 1 <= int(limit) <= 1000:
            raise InvalidRequest("limit: Input should be an integer between 1 and 1000")
        after_id = q.get("after_id", [None])[-1]
        page = q.get("page", [None])[-1]
        if page is not None:
            if not page.startswith("page_"):
                raise InvalidRequest("page: must be a cursor from an earlier list's next_page")
            after_id = page[len("page_") :]
        ids: list[str] | None = None
        given = q.get("ids[]", []) + q.get("ids", [])
        if given:
            ids = [i for value in given for i in value.split(",") if i]
            if len(ids) > 100:
                raise InvalidRequest("ids: at most 100 ids")
        return await self.list(
            owner, limit=int(limit), after_id=after_id, before_id=q.get("before_id", [None])[-1], ids=ids
        )


def _owner(admission: Admission | None, headers: dict[str, str]) -> str:
    """The key's hash with client keys, else "" (one tenant). The key is taken out of
    ``headers``."""
    if admission is None:
        return ""
    record = admission.authenticate(headers)
    for name in CREDENTIAL_HEADERS:
        headers.pop(name, None)
    return record.digest if record is not None else ""


def _open_binary(path: Path) -> BinaryIO:
    return path.open("rb")


def _json(data: dict[str, Any]) -> Answer:
    return Answer(message=data, upstream="sidecar")
