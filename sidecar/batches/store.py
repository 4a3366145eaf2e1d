"""The batch store interface: where batches, their entries and their results live.

One small base class (``BatchStore``) with its two implementations beside it: the embedded
SQLite one (``sidecar.batches.sqlite``) and the one replicas share (``sidecar.batches.redis``).
The contract a runner relies on:

- ``create`` stores a batch and all its entries at once, or nothing. A large batch is written as
  its body arrives: ``stage`` gives a ``StagedBatch`` that takes the entries in pieces, invisible
  to every reader (get, page, claim, settle) until ``commit`` puts them in place with the batch
  in one step; ``discard`` drops them. Staged entries of a create that neither commits nor
  discards (its process was killed) stay invisible and are deleted ``STAGE_TTL`` seconds after
  their last piece.
- ``claim`` hands out entries to run, each under a *lease* that expires: an entry whose runner
  died (a SIGKILL, a lost replica) is handed out again once its lease has passed. ``renew``
  extends the leases of the entries still running; ``release`` gives entries back early (a
  graceful stop, a rate limit: ``not_before`` delays the next claim).
- ``finish`` stores an entry's result only if it has none yet: exactly one result per entry,
  whichever runner finishes first, and an entry is never run again once it has one.
- ``settle`` is the clock's work: entries of canceled batches become ``canceled``, unfinished
  entries of batches past ``expires_at`` become ``expired``, batches whose entries all have a
  result end, and results past their retention are deleted (the batch is then archived).
- ``results`` yields one page of result lines at a time, so results are streamed from storage.

Times are wall-clock seconds since the epoch (floats); every method takes ``now`` where time
matters, so tests drive the clock. Methods may block briefly; implementations keep each one a
small transaction.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from types import TracebackType

__all__ = [
    "RESULT_TYPES",
    "STAGE_TTL",
    "BatchRecord",
    "BatchStore",
    "Claim",
    "EntryKey",
    "NewEntry",
    "Page",
    "StagedBatch",
]

#: Result types, in the order of ``request_counts``.
RESULT_TYPES = ("succeeded", "errored", "canceled", "expired")

#: Seconds after its last piece that a create's staged entries are deleted, if it never ends
#: (commits or discards): far longer than a live create waits between pieces (its client's body
#: arrives within the server's read timeout).
STAGE_TTL = 3600.0

#: Where a batch runs: ``LOCAL`` (this sidecar's runner) or an upstream's name (forwarded).
LOCAL = "local"


@dataclass(slots=True, kw_only=True)
class BatchRecord:
    """One batch the sidecar knows: run locally (with entries) or forwarded to an upstream.

    ``owner`` is the owning key's hash ("" without client keys). ``status`` is the API's
    ``processing_status``. A forwarded batch keeps the upstream's last batch object
    (``snapshot``, JSON bytes) and its own times there; the counts are a local batch's.
    """

    id: str
    owner: str
    location: str = LOCAL
    status: str = "in_progress"  # in_progress | canceling | ended
    created_at: float
    expires_at: float
    ended_at: float | None = None
    cancel_initiated_at: float | None = None
    archived_at: float | None = None
    total: int = 0
    # Finished entries by result type (RESULT_TYPES order).
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(RESULT_TYPES, 0))
    # Request headers every entry is sent with (anthropic-version, anthropic-beta): never keys.
    headers: dict[str, str] = field(default_factory=dict)
    snapshot: bytes | None = None

    @property
    def local(self) -> bool:
        return self.location == LOCAL

    @property
    def processing(self) -> int:
        return self.total - sum(self.counts.values())


@dataclass(frozen=True, slots=True)
class NewEntry:
    """An entry of a batch being created: its ``custom_id`` and its params (JSON bytes)."""

    custom_id: str
    params: bytes


@dataclass(frozen=True, slots=True)
class EntryKey:
    batch_id: str
    index: int


@dataclass(frozen=True, slots=True)
class Claim:
    """An entry handed to a runner, with what it needs to run it."""

    key: EntryKey
    custom_id: str
    params: bytes
    owner: str
    headers: dict[str, str]
    expires_at: float


@dataclass(frozen=True, slots=True)
class Page:
    records: list[BatchRecord]
    has_more: bool


class StagedBatch:
    """The entries of a batch being created (``BatchStore.stage``), invisible until ``commit``."""

    async def add(self, entries: Sequence[NewEntry], *, now: float) -> None:
        """Stage ``entries``, numbered on from the ones staged before."""
        raise NotImplementedError("StagedBatch.add")

    async def commit(self, batch: BatchRecord) -> None:
        """Store ``batch`` with every entry staged, in one step; raises (and stores nothing) if
        they are no longer all there (deleted as stale)."""
        raise NotImplementedError("StagedBatch.commit")

    async def discard(self) -> None:
        """Drop the staged entries; nothing once committed (safe to call more than once)."""
        raise NotImplementedError("StagedBatch.discard")


class BatchStore:
    """Base class of batch stores (subclass and implement every method but ``create``)."""

    async def stage(self, batch_id: str, *, now: float) -> StagedBatch:
        """Begin creating batch ``batch_id``: its entries go to the ``StagedBatch`` returned."""
        raise NotImplementedError("BatchStore.stage")

    async def create(
        self, batch: BatchRecord, entries: Sequence[NewEntry], *, now: float | None = None
    ) -> None:
        """Store ``batch`` and its entries atomically (a forwarded batch has none): ``stage``,
        ``add`` and ``commit`` in one go (``now``: the staging's time; default the clock)."""
        now = time.time() if now is None else now
        staged = await self.stage(batch.id, now=now)
        try:
            if entries:
                await staged.add(entries, now=now)
            await staged.commit(batch)
        except BaseException:
            await staged.discard()
            raise

    async def get(self, batch_id: str) -> BatchRecord | None:
        raise NotImplementedError("BatchStore.get")

    async def update_snapshot(self, batch_id: str, snapshot: bytes, status: str) -> None:
        """A forwarded batch's latest object from its upstream."""
        raise NotImplementedError("BatchStore.update_snapshot")

    async def page(
        self, owner: str | None, limit: int, *, after_id: str | None = None, before_id: str | None = None
    ) -> Page:
        """Batches of ``owner`` (None: everyone's), newest first; ``after_id`` pages to older
        ones, ``before_id`` to newer ones (the API's paging). Unknown cursor ids: an empty page."""
        raise NotImplementedError("BatchStore.page")

    async def cancel(self, batch_id: str, now: float) -> BatchRecord | None:
        """An ``in_progress`` batch becomes ``canceling``; other batches are left as they are."""
        raise NotImplementedError("BatchStore.cancel")

    async def delete(self, batch_id: str) -> bool:
        """Forget the batch, its entries and results (the caller checks it has ended)."""
        raise NotImplementedError("BatchStore.delete")

    async def claim(self, worker: str, limit: int, *, lease: float, now: float) -> list[Claim]:
        """Up to ``limit`` entries without a result and without a live lease, of ``in_progress``
        batches not past ``expires_at``, oldest batch first; each leased to ``worker`` until
        ``now + lease``."""
        raise NotImplementedError("BatchStore.claim")

    async def renew(self, worker: str, keys: Sequence[EntryKey], *, until: float) -> None:
        """Extend ``worker``'s leases on ``keys`` (entries it still runs)."""
        raise NotImplementedError("BatchStore.renew")

    async def release(self, worker: str, keys: Sequence[EntryKey], *, not_before: float) -> None:
        """Give ``worker``'s leases on ``keys`` back; the entries may be claimed from ``not_before``."""
        raise NotImplementedError("BatchStore.release")

    async def finish(self, key: EntryKey, result_type: str, result: bytes, *, now: float) -> bool:
        """Store the entry's one result (``result``: the JSON of the API's ``result`` object).
        False (and nothing changes) when it already has one."""
        raise NotImplementedError("BatchStore.finish")

    async def settle(self, now: float, *, retention: float) -> list[str]:
        """Cancel, expire, end and archive as time says (module docstring); returns the ids of
        the batches that ended."""
        raise NotImplementedError("BatchStore.settle")

    def results(self, batch_id: str) -> AsyncIterator[bytes]:
        """The batch's results as JSON Lines (``{"custom_id", "result"}``), in entry order, one
        chunk of lines at a time."""
        raise NotImplementedError("BatchStore.results")

    async def aclose(self) -> None:
        """Release the storage."""

    async def __aenter__(self) -> BatchStore:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()
