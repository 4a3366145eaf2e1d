"""A batch create read as it arrives (issue 16): never the whole body, nor its entries as objects.

``Intake.read`` feeds the body, chunk by chunk, to ``scan.EntryScanner``, which cuts it into the
raw bytes of each entry. Each entry is then decoded, validated as a Messages call (errors name
``requests.N.params...``), checked against the caller's key and routed on its own, and written
where the batch is going:

- while every entry so far goes to one Anthropic upstream on a route without a policy, the batch
  may still be forwarded: entries are spooled, the client's bytes one a line (a raw line break
  in JSON is whitespace), to an anonymous temporary file in ``batches.dir``, which the OS
  deletes when it is closed or the process dies (not /tmp: in the deploy that is a 64 MiB
  tmpfs, counted as the pod's memory);
- from the first entry that goes elsewhere, the batch runs locally: the spooled entries, then
  every later one, go to the store as they come, staged (``BatchStore.stage``) in pieces of at
  most ``_PIECE_ENTRIES`` entries or ``_PIECE_BYTES`` bytes, invisible until the commit.

At the end the caller forwards a forwardable batch from the spool (``forward_body``: each entry's
model renamed as its route says) or commits the local one (``commit``). Whatever ends a create
before that (a bad entry, too many, too large, malformed JSON, the client leaving, a cancel)
leaves through ``aclose``, which drops the spool and discards the staged entries: nothing is
stored half-way. Held at a time: the scanner's chunk and entry, one piece, the custom_ids seen.
"""

from __future__ import annotations

import asyncio
import re
import tempfile
import time
from collections.abc import AsyncIterable, AsyncIterator, Callable
from pathlib import Path
from types import TracebackType
from typing import IO, TYPE_CHECKING, Any, TypeVar

import msgspec

from ..core.jsonbytes import BAD_JSON, replace_member
from ..core.validate import validate_messages
from ..errors import InvalidRequest, PermissionDenied, RequestTooLarge
from ..pipeline import Pipeline
from .scan import EntryScanner, MalformedBatch
from .store import BatchRecord, BatchStore, NewEntry, StagedBatch

if TYPE_CHECKING:
    from ..admission.keys import KeyRecord

__all__ = ["Intake"]

T = TypeVar("T")

_CUSTOM_ID = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
_READ_PIECE = 1 << 20  # a body given whole (the gRPC door) is scanned this much at a time
_PIECE_ENTRIES = 1000  # entries staged per store call at most
_FORWARD_OPEN, _FORWARD_CLOSE = b'{"requests":[', b"]}"
_PIECE_BYTES = 1 << 20  # params bytes staged (or spooled) per call at most
_decode = msgspec.json.decode
_encode = msgspec.json.encode
_members = msgspec.json.Decoder(dict[str, msgspec.Raw])


async def _io(fn: Callable[..., T], *args: Any) -> T:
    return await asyncio.get_running_loop().run_in_executor(None, fn, *args)


def _entry_error(index: int, exc: InvalidRequest) -> InvalidRequest:
    """``exc`` (a Messages validation error, ``field: message``) for entry ``index``."""
    head, sep, rest = exc.message.partition(": ")
    if sep and " " not in head:
        return InvalidRequest(f"requests.{index}.params.{head}: {rest}")
    return InvalidRequest(f"requests.{index}.params: {exc.message}")


def _entry(i: int, entry: object, seen: set[str]) -> tuple[str, dict[str, Any]]:
    if not isinstance(entry, dict):
        raise InvalidRequest(f"requests.{i}: Input should be an object with custom_id and params")
    for key in entry:
        if key not in ("custom_id", "params"):
            raise InvalidRequest(f"requests.{i}.{key}: Extra inputs are not permitted")
    custom_id = entry.get("custom_id")
    if not isinstance(custom_id, str) or not _CUSTOM_ID.match(custom_id):
        raise InvalidRequest(
            f"requests.{i}.custom_id: must be 1 to 64 letters, digits, underscores or hyphens"
        )
    if custom_id in seen:
        raise InvalidRequest(f"requests.{i}.custom_id: {custom_id!r} is used by another request")
    seen.add(custom_id)
    params = entry.get("params")
    if not isinstance(params, dict):
        raise InvalidRequest(f"requests.{i}.params: Field required (an object)")
    return custom_id, params


async def _pieces(body: bytes | AsyncIterable[bytes], limit: int) -> AsyncIterator[bytes]:
    """``body`` in pieces; RequestTooLarge once it passes ``limit`` bytes."""
    if isinstance(body, bytes):
        if len(body) > limit:
            raise RequestTooLarge(f"a batch may be at most {limit} bytes, got {len(body)}")
        for start in range(0, len(body), _READ_PIECE):
            yield body[start : start + _READ_PIECE]
        return
    size = 0
    async for chunk in body:
        size += len(chunk)
        if size > limit:
            raise RequestTooLarge(f"a batch may be at most {limit} bytes")
        yield chunk


class Intake:
    """One create's entries as they come (module docstring). ``async with`` it: leaving without
    ``commit`` drops everything it wrote."""

    def __init__(
        self,
        pipeline: Pipeline,
        *,
        batch_id: str,
        version: str | None,
        key: KeyRecord | None,
        max_requests: int,
        spool_dir: Path,
        open_store: Callable[[], BatchStore],
    ) -> None:
        self.pipeline = pipeline
        self.batch_id = batch_id
        self.count = 0  # entries taken
        #: The Anthropic upstream every entry so far goes to (None before the first entry, or
        #: once the batch runs locally).
        self.upstream: str | None = None
        self.local = False
        self._version = version
        self._key = key
        self._max_requests = max_requests
        self._spool_dir = spool_dir
        self._open_store = open_store
        self._seen: set[str] = set()
        self._renames: dict[str, str] = {}  # requested model -> the model its route asks for
        self._spool: IO[bytes] | None = None
        self._staged: StagedBatch | None = None
        self._piece: list[NewEntry] = []
        self._piece_bytes = 0
        self._spooled: list[bytes] = []  # lines not written to the spool yet
        self._spooled_bytes = 0
        self._forward_bytes = 0  # forward_body's entries, renamed, each with its separator
        self._committed = False

    async def __aenter__(self) -> Intake:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Drop the spool; discard the staged entries unless committed (even when cancelled)."""
        if self._spool is not None:
            self._spool.close()  # anonymous: the OS deletes it
            self._spool = None
        staged, self._staged = self._staged, None
        if staged is not None and not self._committed:
            await asyncio.shield(staged.discard())

    # -- reading -------------------------------------------------------------------------------

    async def read(self, body: bytes | AsyncIterable[bytes], *, max_bytes: int) -> None:
        """Take every entry of ``body``; raises the 4xx error of the first thing wrong."""
        scanner = EntryScanner()
        try:
            async for chunk in _pieces(body, max_bytes):
                for raw in scanner.feed(chunk):
                    await self._take(raw)
            scanner.close()
        except MalformedBatch as exc:
            raise InvalidRequest(str(exc)) from None
        await self._flush()

    async def _take(self, raw: bytes) -> None:
        i = self.count
        if i >= self._max_requests:
            raise InvalidRequest(
                f"requests: a batch may hold at most {self._max_requests} requests, got more"
            )
        try:
            entry = _decode(raw)
        except BAD_JSON as exc:
            raise InvalidRequest(f"request body is not valid JSON: {exc} (in requests.{i})") from None
        custom_id, params = _entry(i, entry, self._seen)
        try:
            validate_messages(params, self._version)
        except InvalidRequest as exc:
            raise _entry_error(i, exc) from None
        if params.get("stream") is True:
            raise InvalidRequest(f"requests.{i}.params.stream: batch requests cannot stream")
        pipeline = self.pipeline
        model = params["model"]
        resolved = pipeline.router.resolve(model)
        if resolved.route is None or resolved.target is None:
            raise InvalidRequest(f"requests.{i}.params.model: no route serves model {model!r}")
        shadow = pipeline.admission is not None and pipeline.admission.shadow
        if self._key is not None and not self._key.allows(resolved.name) and not shadow:
            raise PermissionDenied(
                f"requests.{i}.params.model: this API key may not use model {resolved.name!r}"
            )
        self.count += 1
        target = resolved.target
        if not self.local:
            if (
                resolved.route.policy is None
                and pipeline.upstreams[target.upstream].provider == "anthropic"
                and self.upstream in (None, target.upstream)
            ):
                self.upstream = target.upstream
                line = raw.replace(b"\n", b" ")
                if target.model != model:
                    self._renames[model] = target.model
                    self._forward_bytes += len(self._renamed(line)) + 1  # as forward_body sends it
                else:
                    self._forward_bytes += len(line) + 1  # and its comma (or the closing ']}')
                await self._spool_line(line)
                return
            await self._go_local()
        await self._stage(NewEntry(custom_id, _encode(params)))

    # -- the local batch: staged in the store --------------------------------------------------

    async def _go_local(self) -> None:
        """The batch runs locally: stage what was spooled, and from now on every entry."""
        self.local = True
        self.upstream = None
        self._staged = await self._open_store().stage(self.batch_id, now=time.time())
        async for lines in self._spooled_lines():
            for line in lines:
                entry = _members.decode(line)
                await self._stage(NewEntry(_decode(entry["custom_id"]), bytes(entry["params"])))
        if self._spool is not None:
            self._spool.close()
            self._spool = None

    async def _stage(self, entry: NewEntry) -> None:
        self._piece.append(entry)
        self._piece_bytes += len(entry.params)
        if len(self._piece) >= _PIECE_ENTRIES or self._piece_bytes >= _PIECE_BYTES:
            await self._flush()

    async def _flush(self) -> None:
        if self._piece:
            assert self._staged is not None
            piece, self._piece, self._piece_bytes = self._piece, [], 0
            await self._staged.add(piece, now=time.time())
        if self._spooled:
            await self._write_spool()

    async def commit(self, record: BatchRecord) -> None:
        """Store the local batch: ``record`` with every entry taken."""
        assert self.local and self._staged is not None
        await self._flush()
        await self._staged.commit(record)
        self._committed = True

    # -- the forwardable batch: spooled ---------------------------------------------------------

    async def _spool_line(self, line: bytes) -> None:
        self._spooled.append(line)
        self._spooled_bytes += len(line)
        if self._spooled_bytes >= _PIECE_BYTES:
            await self._write_spool()

    async def _write_spool(self) -> None:
        if self._spool is None:
            self._spool = await _io(self._open_spool)
        data = b"\n".join(self._spooled) + b"\n"
        self._spooled, self._spooled_bytes = [], 0
        await _io(self._spool.write, data)

    def _open_spool(self) -> IO[bytes]:
        self._spool_dir.mkdir(parents=True, exist_ok=True)
        return tempfile.TemporaryFile(dir=self._spool_dir, prefix=".batch-create-")

    async def _spooled_lines(self) -> AsyncIterator[list[bytes]]:
        """The spooled entries, a block of lines at a time."""
        if self._spooled:
            await self._write_spool()
        spool = self._spool
        if spool is None:
            return
        await _io(spool.seek, 0)
        rest = b""
        while block := await _io(spool.read, _PIECE_BYTES):
            *lines, rest = (rest + block).split(b"\n")
            yield lines
        assert not rest

    @property
    def forward_length(self) -> int:
        """The length of ``forward_body``: the upstream gets the batch with its content-length,
        as the SDK would send it, not chunked."""
        return len(_FORWARD_OPEN) + max(self._forward_bytes - 1, 0) + len(_FORWARD_CLOSE)

    async def forward_body(self) -> AsyncIterator[bytes]:
        """The forwardable batch as the upstream gets it, each entry's model renamed as its route
        says, in pieces read from the spool."""
        yield _FORWARD_OPEN
        comma = b""
        async for lines in self._spooled_lines():
            if self._renames:
                lines = [self._renamed(line) for line in lines]
            yield comma + b",".join(lines)
            comma = b","
        yield _FORWARD_CLOSE

    def _renamed(self, line: bytes) -> bytes:
        entry = _members.decode(line)
        params = _members.decode(entry["params"])
        target = self._renames.get(_decode(params["model"]))
        if target is None:
            return line
        entry["params"] = msgspec.Raw(replace_member(entry["params"], "model", target))
        return _encode(entry)
