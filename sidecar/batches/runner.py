"""``BatchRunner``: runs the entries of the batches the sidecar does not forward.

One per process. A loop settles the store (cancels, expiry, ends, retention), claims as many
entries as it has free slots (``batches.concurrency``: low, so interactive traffic keeps the
upstreams), and runs each through the pipeline exactly as a non-streaming Messages call
(``Pipeline.batch_entry``: validation, aliases, routes, policies with their retries and
fallbacks, pacing, admission's token limits, telemetry). Each claimed entry is under a lease the
loop renews every third of ``lease_seconds``; a runner killed mid-batch leaves leases that
expire, and the next runner (after a restart) claims those entries again. A result is stored
once per entry (``BatchStore.finish``), so an entry that has one never runs again.

A rate limit or an overload (429, 529: the key's token limits, the upstream's) does not end an
entry: it goes back to the store and is tried again after the ``retry-after`` (or 10 s), until
the batch expires. Every other error is the entry's ``errored`` result.

The client's credentials (needed where an upstream has no ``api_key`` of its own and the
client's is forwarded) are held in memory only, never stored: entries resumed after a restart
go without them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Iterator
from contextlib import AbstractContextManager
from typing import Protocol

import msgspec

from ..config.model import BatchesConfig
from ..core import Call, new_request_id
from ..core.clock import Clock, SystemClock
from ..errors import Overloaded, RateLimited, SidecarError
from ..pipeline import Pipeline
from ..telemetry import NOOP_TELEMETRY, Telemetry
from .store import BatchStore, Claim, EntryKey

__all__ = ["BatchRunner", "Snapshots", "fixed_snapshot"]

log = logging.getLogger("sidecar.batches")

_RETRY_STATUSES = frozenset({429, 503, 529})
_DEFAULT_RETRY = 10.0  # seconds before a rate-limited entry is tried again without retry-after


class Snapshots(Protocol):
    """Where the runner gets the pipeline an entry runs on (``Lifecycle`` is one)."""

    def pinned(self) -> AbstractContextManager[Pipeline]: ...


class _Fixed:
    def __init__(self, pipeline: Pipeline) -> None:
        self._pipeline = pipeline

    @contextlib.contextmanager
    def pinned(self) -> Iterator[Pipeline]:
        yield self._pipeline


def fixed_snapshot(pipeline: Pipeline) -> Snapshots:
    """One pipeline for every entry (tests, and callers without a lifecycle)."""
    return _Fixed(pipeline)


class _RetryLater(Exception):
    def __init__(self, delay: float) -> None:
        self.delay = delay


class BatchRunner:
    def __init__(
        self,
        store: BatchStore,
        snapshots: Snapshots,
        config: BatchesConfig,
        *,
        clock: Clock | None = None,
        telemetry: Telemetry = NOOP_TELEMETRY,
        worker: str | None = None,
    ) -> None:
        self.store = store
        self._snapshots = snapshots
        self.config = config
        self._clock = clock or SystemClock()
        self._telemetry = telemetry
        # Unique per process (and per runner): leases name it.
        self.worker = worker or f"{socket.gethostname()}:{os.getpid()}:{new_request_id('')}"
        self._running: dict[EntryKey, asyncio.Task[None]] = {}
        self._credentials: dict[str, dict[str, str]] = {}
        self._wake = asyncio.Event()
        self._loop_task: asyncio.Task[None] | None = None
        self._closing = False

    # -- control -------------------------------------------------------------------------------

    def start(self) -> None:
        if self._loop_task is None:
            self._loop_task = asyncio.get_running_loop().create_task(self._loop(), name="batch-runner")

    def wake(self) -> None:
        """Look for work now (a batch was created or canceled)."""
        self._wake.set()

    def remember(self, batch_id: str, credentials: dict[str, str]) -> None:
        """The creating client's credentials for the entries of ``batch_id`` (memory only)."""
        if credentials:
            self._credentials[batch_id] = credentials

    @property
    def running(self) -> int:
        return len(self._running)

    async def aclose(self) -> None:
        """Stop: entries in flight are cancelled and their leases given back at once, so the
        next start runs them again without waiting for the leases to expire."""
        self._closing = True
        if self._loop_task is not None:
            self._loop_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop_task
        tasks = list(self._running.values())
        keys = list(self._running)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        try:
            await self.store.release(self.worker, keys, not_before=self._clock.time())
        except Exception:  # the leases then expire by themselves
            log.exception("batch runner: could not give back %d leases", len(keys))

    # -- the loop ------------------------------------------------------------------------------

    async def _loop(self) -> None:
        cfg = self.config
        renew_every = cfg.lease_seconds / 3
        last_renew = self._clock.monotonic()
        while not self._closing:
            try:
                now = self._clock.time()
                ended = await self.store.settle(now, retention=cfg.retention_days * 86400)
                for batch_id in ended:
                    self._credentials.pop(batch_id, None)
                free = cfg.concurrency - len(self._running)
                if free > 0:
                    for claim in await self.store.claim(self.worker, free, lease=cfg.lease_seconds, now=now):
                        task = asyncio.get_running_loop().create_task(self._entry(claim))
                        self._running[claim.key] = task
                if self._clock.monotonic() - last_renew >= renew_every:
                    last_renew = self._clock.monotonic()
                    await self.store.renew(
                        self.worker, list(self._running), until=self._clock.time() + cfg.lease_seconds
                    )
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("batch runner: store failure; trying again")
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), min(cfg.poll_interval, renew_every))

    async def _entry(self, claim: Claim) -> None:
        try:
            try:
                result_type, result = await self._execute(claim)
            except _RetryLater as later:
                await self.store.release(
                    self.worker, [claim.key], not_before=self._clock.time() + later.delay
                )
                return
            await self.store.finish(claim.key, result_type, result, now=self._clock.time())
        except asyncio.CancelledError:
            raise
        except Exception:
            # The lease expires and the entry runs again (its result was not stored).
            log.exception("batch runner: entry %s of %s failed", claim.key.index, claim.key.batch_id)
        finally:
            self._running.pop(claim.key, None)
            self._wake.set()

    async def _execute(self, claim: Claim) -> tuple[str, bytes]:
        params = msgspec.json.decode(claim.params)
        model = params.get("model") if isinstance(params, dict) else None
        headers = {**claim.headers, **self._credentials.get(claim.key.batch_id, {})}
        observer = self._telemetry.begin("batch", "/v1/messages", headers)
        call = Call(
            endpoint="messages",
            body=params,
            raw=claim.params,
            model=model if isinstance(model, str) else "",
            stream=False,
            request_id=new_request_id(),
            door="batch",
            headers=headers,
            requested_model=model if isinstance(model, str) else "",
            observer=observer,
        )
        observer.identify(call.request_id)
        try:
            with self._snapshots.pinned() as pipeline:
                answer = await pipeline.batch_entry(call, claim.owner or None)
                body = answer.body_bytes()
        except SidecarError as exc:
            observer.finish(exc)
            if self._retryable(exc) and self._clock.time() < claim.expires_at:
                raise _RetryLater(_retry_after(exc)) from None
            envelope = msgspec.json.encode(exc.body(exc.request_id or call.request_id))
            return "errored", b'{"type":"errored","error":' + envelope + b"}"
        except asyncio.CancelledError:
            observer.finish(cancelled=True)
            raise
        except Exception as exc:
            observer.finish(exc)
            log.exception("batch entry %s of %s failed", claim.key.index, claim.key.batch_id)
            error = SidecarError("Internal server error")
            envelope = msgspec.json.encode(error.body(call.request_id))
            return "errored", b'{"type":"errored","error":' + envelope + b"}"
        observer.finish()
        return "succeeded", b'{"type":"succeeded","message":' + body + b"}"

    @staticmethod
    def _retryable(exc: SidecarError) -> bool:
        return isinstance(exc, RateLimited | Overloaded) or exc.status in _RETRY_STATUSES


def _retry_after(exc: SidecarError) -> float:
    for key, value in exc.headers:
        if key.lower() == "retry-after":
            try:
                return min(max(float(value), 0.5), 3600.0)
            except ValueError:
                break
    return _DEFAULT_RETRY
