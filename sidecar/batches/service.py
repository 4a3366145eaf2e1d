"""``Batches``: the Message Batches endpoints, whatever model family sits behind the sidecar.

One per process (it owns the store and the runner), called by the doors with the caller's config
snapshot (``Pipeline``). ``create`` reads the body as it comes and validates every entry on its
own (errors name ``requests.N.params...``), resolves each entry's model through aliases and
routes (``sidecar.batches.create``: the body is never held whole), and then:

- forwards the batch, as the API would get it, with each entry's model renamed as its route
  says, when every entry goes to the same Anthropic upstream on a route without a policy;
- otherwise stores it and lets the ``BatchRunner`` run it through the pipeline.

Either way the batch is recorded (id, owner, where it runs), so retrieve, cancel, results and
delete go where it is, and list merges local and forwarded batches. With client keys
(``admission``) a batch needs a key, each entry's model must be one the key may use, and a key
sees only its own batches (another key's id is unknown to it); without, there is one tenant.
An id the sidecar never recorded goes, as before, to the Anthropic upstream ``Pipeline.forward``
picks (batches created before the sidecar recorded them), and is 404 where there is none.
"""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

import msgspec

from ..config.model import BatchesConfig, RedisBatchStore
from ..core import Answer, ForwardRequest, new_request_id
from ..core.credentials import CREDENTIAL_HEADERS
from ..errors import InvalidRequest, NoRoute, NotFound, SidecarError
from ..pipeline import Pipeline
from ..telemetry import NOOP_TELEMETRY, Telemetry
from .create import Intake
from .runner import BatchRunner, Snapshots
from .store import BatchRecord, BatchStore

if TYPE_CHECKING:
    from ..admission.keys import KeyRecord

__all__ = ["PREFIX", "Batches", "database_path", "default_dir"]

PREFIX = "/v1/messages/batches"
# Request headers every entry of a local batch is sent with; never credentials.
_KEPT_HEADERS = ("anthropic-version", "anthropic-beta")
_FILE = "batches.sqlite3"
_decode = msgspec.json.decode
_encode = msgspec.json.encode


def default_dir() -> Path:
    """``$XDG_STATE_HOME/messages-sidecar`` (``~/.local/state/messages-sidecar`` without it)."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "messages-sidecar"


def database_path(config: BatchesConfig) -> Path:
    """The SQLite file batches (and the sidecar's file metadata) are stored in, with
    ``batches.store`` ``sqlite``."""
    return (Path(config.dir) if config.dir is not None else default_dir()) / _FILE


def _rfc3339(t: float | None) -> str | None:
    if t is None:
        return None
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _parse_time(value: object, default: float) -> float:
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
        except ValueError:
            pass
    return default


def _not_allowed(method: str, path: str, allowed: str) -> SidecarError:
    return SidecarError(
        f"{method} {path} is not allowed; use {allowed}", status=405, error_type="invalid_request_error"
    )


class Batches:
    def __init__(
        self,
        config: BatchesConfig,
        snapshots: Snapshots,
        *,
        telemetry: Telemetry = NOOP_TELEMETRY,
        store: BatchStore | None = None,
    ) -> None:
        """``store``: one to use instead of the configured one (tests). A Redis store
        (``batches.store.kind: redis``) is made here, connected at first use, and its runner
        starts with ``start``: every replica runs the shared batches."""
        self.config = config
        self.path = database_path(config)
        self._snapshots = snapshots
        self._telemetry = telemetry
        spec = config.store
        if store is None and isinstance(spec, RedisBatchStore):
            assert spec.url is not None, "build_config fills batches.store.url"
            from .redis import RedisStore  # only when configured (as SQLite below: at first use)

            store = RedisStore.from_url(spec.url, key_prefix=spec.key_prefix, timeout=spec.timeout)
        self._store = store
        self._runner: BatchRunner | None = None
        if store is not None:
            self._runner = BatchRunner(store, snapshots, config, telemetry=telemetry)

    # -- process -------------------------------------------------------------------------------

    def start(self) -> None:
        """Resume the batches of an earlier run, if there is a store (it is created lazily, at
        the first batch, so a sidecar that never sees one writes nothing)."""
        if self._runner is not None:
            self._runner.start()
        elif self.path.exists():
            self._open()

    def _open(self) -> tuple[BatchStore, BatchRunner]:
        if self._store is None or self._runner is None:
            from .sqlite import SqliteStore  # sqlite3 is loaded by the first batch, not at start

            self._store = SqliteStore(self.path)
            self._runner = BatchRunner(self._store, self._snapshots, self.config, telemetry=self._telemetry)
        self._runner.start()
        return self._store, self._runner

    async def aclose(self) -> None:
        if self._runner is not None:
            await self._runner.aclose()
        if self._store is not None:
            await self._store.aclose()

    # -- the HTTP shape --------------------------------------------------------------------------

    async def handle(
        self,
        pipeline: Pipeline,
        method: str,
        path: str,
        query: str,
        headers: dict[str, str],
        body: bytes | AsyncIterable[bytes],
        origin: str,
    ) -> Answer:
        """One request under ``/v1/messages/batches`` (``headers``: the client's, lower-case;
        ``body``: read only by a create, as it comes)."""
        rest = path[len(PREFIX) :].strip("/")
        parts = rest.split("/") if rest else []
        if not parts:
            if method == "POST":
                return _json(await self.create(pipeline, headers, body, origin))
            if method == "GET":
                q = parse_qs(query)
                limit = q.get("limit", ["20"])[-1]
                if not limit.isdigit() or not 1 <= int(limit) <= 1000:
                    raise InvalidRequest("limit: Input should be an integer between 1 and 1000")
                page = await self.list(
                    pipeline,
                    headers,
                    origin,
                    limit=int(limit),
                    after_id=q.get("after_id", [None])[-1],
                    before_id=q.get("before_id", [None])[-1],
                )
                return _json(page)
            raise _not_allowed(method, path, "GET or POST")
        batch_id = parts[0]
        if len(parts) == 1:
            if method == "GET":
                return await self.retrieve(pipeline, headers, batch_id, origin)
            if method == "DELETE":
                return await self.delete(pipeline, headers, batch_id)
            raise _not_allowed(method, path, "GET or DELETE")
        if len(parts) == 2 and parts[1] == "cancel":
            if method != "POST":
                raise _not_allowed(method, path, "POST")
            return await self.cancel(pipeline, headers, batch_id, origin)
        if len(parts) == 2 and parts[1] == "results":
            if method != "GET":
                raise _not_allowed(method, path, "GET")
            return await self.results(pipeline, headers, batch_id)
        raise NotFound(f"Not found: {method} {path}")

    # -- who asks ------------------------------------------------------------------------------

    def _owner(self, pipeline: Pipeline, headers: dict[str, str]) -> tuple[str, KeyRecord | None]:
        """(owner, key record): the key's hash with client keys, else "" (one tenant). The key
        is taken out of ``headers``: it never goes upstream once admission is on."""
        if pipeline.admission is None:
            return "", None
        record = pipeline.admission.authenticate(headers)
        for name in CREDENTIAL_HEADERS:
            headers.pop(name, None)
        return (record.digest if record is not None else ""), record

    async def _find(self, pipeline: Pipeline, headers: dict[str, str], batch_id: str) -> BatchRecord | None:
        """The caller's recorded batch, or None (unknown, or another key's)."""
        owner, _ = self._owner(pipeline, headers)
        if self._store is None:
            if not self.path.exists():
                return None
            self._open()
        assert self._store is not None
        record = await self._store.get(batch_id)
        if record is None or (pipeline.admission is not None and record.owner != owner):
            return None
        return record

    # -- create --------------------------------------------------------------------------------

    async def create(
        self, pipeline: Pipeline, headers: dict[str, str], body: bytes | AsyncIterable[bytes], origin: str
    ) -> dict[str, Any]:
        """Create a batch from ``body``, read as it comes (``sidecar.batches.create``)."""
        headers = dict(headers)
        credentials = {k: headers[k] for k in CREDENTIAL_HEADERS if k in headers}
        owner, key = self._owner(pipeline, headers)
        intake = Intake(
            pipeline,
            batch_id=new_request_id("msgbatch_"),
            version=headers.get("anthropic-version"),
            key=key,
            max_requests=self.config.max_requests,
            spool_dir=self.path.parent,
            open_store=lambda: self._open()[0],
        )
        async with intake:
            await intake.read(body, max_bytes=self.config.max_body_bytes)
            if intake.upstream is not None:
                return await self._forward_create(pipeline, intake, headers, owner, origin)
            return await self._create_local(pipeline, intake, headers, credentials, owner, origin)

    async def _create_local(
        self,
        pipeline: Pipeline,
        intake: Intake,
        headers: dict[str, str],
        credentials: dict[str, str],
        owner: str,
        origin: str,
    ) -> dict[str, Any]:
        store, runner = self._open()
        now = time.time()
        record = BatchRecord(
            id=intake.batch_id,
            owner=owner,
            created_at=now,
            expires_at=now + self.config.expiry_hours * 3600,
            total=intake.count,
            headers={k: headers[k] for k in _KEPT_HEADERS if k in headers},
        )
        await intake.commit(record)
        if pipeline.admission is None:
            runner.remember(record.id, credentials)
        runner.wake()
        return self._object(record, origin)

    async def _forward_create(
        self, pipeline: Pipeline, intake: Intake, headers: dict[str, str], owner: str, origin: str
    ) -> dict[str, Any]:
        upstream = intake.upstream
        assert upstream is not None
        answer = await self._upstream_call(
            pipeline, upstream, "POST", PREFIX, headers, intake.forward_body(), intake.forward_length
        )
        data = answer.json()
        batch_id = data.get("id")
        if isinstance(batch_id, str) and batch_id:
            now = time.time()
            store, _ = self._open()
            created = _parse_time(data.get("created_at"), now)
            record = BatchRecord(
                id=batch_id,
                owner=owner,
                location=upstream,
                status=str(data.get("processing_status") or "in_progress"),
                created_at=created,
                expires_at=_parse_time(data.get("expires_at"), created + 86400),
                total=intake.count,
                snapshot=answer.body_bytes(),
            )
            await store.create(record, [])
        return _with_origin(data, origin)

    # -- the others ----------------------------------------------------------------------------

    async def retrieve(
        self, pipeline: Pipeline, headers: dict[str, str], batch_id: str, origin: str
    ) -> Answer:
        headers = dict(headers)
        record = await self._find(pipeline, headers, batch_id)
        if record is None:
            return await self._unrecorded(pipeline, "GET", batch_id, "", headers, origin)
        if record.local:
            return _json(self._object(record, origin))
        return _json(await self._refresh(pipeline, record, headers, origin))

    async def cancel(self, pipeline: Pipeline, headers: dict[str, str], batch_id: str, origin: str) -> Answer:
        headers = dict(headers)
        record = await self._find(pipeline, headers, batch_id)
        if record is None:
            return await self._unrecorded(pipeline, "POST", batch_id, "/cancel", headers, origin)
        assert self._store is not None and self._runner is not None
        if record.local:
            canceled = await self._store.cancel(batch_id, time.time())
            self._runner.wake()
            assert canceled is not None
            return _json(self._object(canceled, origin))
        answer = await self._upstream_call(
            pipeline, record.location, "POST", f"{PREFIX}/{batch_id}/cancel", headers, b""
        )
        data = answer.json()
        await self._store.update_snapshot(
            batch_id, answer.body_bytes(), str(data.get("processing_status") or record.status)
        )
        return _json(_with_origin(data, origin))

    async def delete(self, pipeline: Pipeline, headers: dict[str, str], batch_id: str) -> Answer:
        headers = dict(headers)
        record = await self._find(pipeline, headers, batch_id)
        if record is None:
            return await self._unrecorded(pipeline, "DELETE", batch_id, "", headers, "")
        assert self._store is not None
        if record.local:
            if record.status != "ended":
                raise InvalidRequest(
                    f"batch {batch_id} is still {record.status}; only ended batches can be deleted "
                    "(cancel it first)"
                )
            await self._store.delete(batch_id)
            return _json({"id": batch_id, "type": "message_batch_deleted"})
        answer = await self._upstream_call(
            pipeline, record.location, "DELETE", f"{PREFIX}/{batch_id}", headers, b""
        )
        await self._store.delete(batch_id)
        return answer

    async def results(self, pipeline: Pipeline, headers: dict[str, str], batch_id: str) -> Answer:
        headers = dict(headers)
        record = await self._find(pipeline, headers, batch_id)
        if record is None:
            return await self._unrecorded(pipeline, "GET", batch_id, "/results", headers, "")
        assert self._store is not None
        if not record.local:
            return await self._upstream_call(
                pipeline, record.location, "GET", f"{PREFIX}/{batch_id}/results", headers, b""
            )
        if record.status != "ended":
            raise InvalidRequest(f"batch {batch_id} has not ended yet; its results come once it has")
        if record.archived_at is not None:
            raise NotFound(f"the results of batch {batch_id} have been deleted (retention)")
        lines = self._store.results(batch_id)
        close = getattr(lines, "aclose", None)  # an async generator: closed if the client leaves
        return Answer(
            headers=[("content-type", "application/binary")],
            chunks=lines,
            close=close,
            upstream="sidecar",
        )

    async def list(
        self,
        pipeline: Pipeline,
        headers: dict[str, str],
        origin: str,
        *,
        limit: int = 20,
        after_id: str | None = None,
        before_id: str | None = None,
    ) -> dict[str, Any]:
        headers = dict(headers)
        owner, _ = self._owner(pipeline, headers)
        data: list[dict[str, Any]] = []
        has_more = False
        if self._store is not None or self.path.exists():
            store, _ = self._open()
            page = await store.page(
                owner if pipeline.admission is not None else None,
                limit,
                after_id=after_id,
                before_id=before_id,
            )
            has_more = page.has_more
            for record in page.records:
                if record.local:
                    data.append(self._object(record, origin))
                else:
                    data.append(await self._refresh(pipeline, record, headers, origin, quiet=True))
        return {
            "data": data,
            "has_more": has_more,
            "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else None,
        }

    # -- helpers -------------------------------------------------------------------------------

    def _object(self, record: BatchRecord, origin: str) -> dict[str, Any]:
        """The API's MessageBatch for a local batch."""
        ended = record.status == "ended"
        counts: dict[str, int] = {"processing": 0 if ended else record.total}
        counts.update({k: (v if ended else 0) for k, v in record.counts.items()})
        return {
            "id": record.id,
            "type": "message_batch",
            "processing_status": record.status,
            "request_counts": counts,
            "created_at": _rfc3339(record.created_at),
            "expires_at": _rfc3339(record.expires_at),
            "ended_at": _rfc3339(record.ended_at),
            "cancel_initiated_at": _rfc3339(record.cancel_initiated_at),
            "archived_at": _rfc3339(record.archived_at),
            "results_url": f"{origin}{PREFIX}/{record.id}/results"
            if ended and record.archived_at is None
            else None,
        }

    async def _refresh(
        self,
        pipeline: Pipeline,
        record: BatchRecord,
        headers: dict[str, str],
        origin: str,
        *,
        quiet: bool = False,
    ) -> dict[str, Any]:
        """A forwarded batch as its upstream says now (``quiet``: the last seen object when the
        upstream cannot say, for lists; an ended batch is not asked again)."""
        assert self._store is not None
        snapshot = _decode(record.snapshot) if record.snapshot else {"id": record.id}
        if quiet and record.status == "ended":
            return _with_origin(snapshot, origin)
        try:
            answer = await self._upstream_call(
                pipeline, record.location, "GET", f"{PREFIX}/{record.id}", headers, b""
            )
        except SidecarError:
            if quiet:
                return _with_origin(snapshot, origin)
            raise
        data = answer.json()
        await self._store.update_snapshot(
            record.id, answer.body_bytes(), str(data.get("processing_status") or record.status)
        )
        return _with_origin(data, origin)

    async def _upstream_call(
        self,
        pipeline: Pipeline,
        upstream: str,
        method: str,
        path: str,
        headers: dict[str, str],
        body: bytes | AsyncIterable[bytes],
        length: int | None = None,
    ) -> Answer:
        """``length``: the total of a body given in pieces (sent as a content-length body)."""
        adapter = pipeline.upstreams.get(upstream)
        if adapter is None:
            raise NoRoute(
                f"this batch was forwarded to upstream {upstream!r}, which the config no longer has"
            )
        sent = dict(headers)
        if body:
            sent["content-type"] = "application/json"
        answer = await adapter.forward(
            ForwardRequest(
                method=method, path=path, headers=sent, body=body, request_id=new_request_id(), length=length
            )
        )
        return answer

    async def _unrecorded(
        self,
        pipeline: Pipeline,
        method: str,
        batch_id: str,
        suffix: str,
        headers: dict[str, str],
        origin: str,
    ) -> Answer:
        """A batch id the sidecar has no record of (for this caller)."""
        if pipeline.admission is not None:
            # A key sees only the batches it created through the sidecar.
            raise NotFound(f"message batch {batch_id!r} not found")
        answer = await pipeline.forward(
            ForwardRequest(
                method=method,
                path=f"{PREFIX}/{batch_id}{suffix}",
                headers=headers,
                body=b"",
                request_id=new_request_id(),
            )
        )
        if answer.raw is not None and origin:
            answer.raw = _encode(_with_origin(answer.json(), origin))
        return answer


def _json(data: Mapping[str, Any]) -> Answer:
    return Answer(message=dict(data), upstream="sidecar")


def _with_origin(data: dict[str, Any], origin: str) -> dict[str, Any]:
    """A batch object whose ``results_url`` points at the sidecar: the SDK GETs it verbatim."""
    url = data.get("results_url")
    if isinstance(url, str) and "/v1/" in url:
        data["results_url"] = origin + url[url.index("/v1/") :]
    return data
