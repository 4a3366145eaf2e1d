"""The gRPC door's ``sidecar.messages.v1.Batches`` service: thin over ``sidecar.batches.Batches``.

Each RPC calls the same ``Batches`` method the HTTP door's ``/v1/messages/batches`` calls, with the
call's metadata as the request headers (the credentials decide the owner with client keys) and
the config snapshot the call is pinned to: same validation errors (``requests.1.params.messages:
...``), same store, same local-vs-forwarded decision. Errors end the call as ``calls.abort``
ends a Messages call (status, ``anthropic-error-*`` trailers). ``Results`` streams one message per
JSON Lines line as the store (or the upstream) yields them; the results are never held whole.

Batch objects carry ``results_url`` on the HTTP door's origin (``http_origin``: its configured
``public_origin``, else its host and bound port), so a client can GET it as the SDK does; a gRPC
call has no Host header to take it from (and grpc.aio does not show the ``:authority``). With the
HTTP door off it is the bare path. A gRPC client reads the results with ``Results`` either way.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import msgspec

from ..batches import Batches
from ..core import Answer, new_request_id
from ..core.jsonbytes import BAD_JSON
from ..errors import InvalidRequest, SidecarError, UpstreamProtocolError
from ..lifecycle import Lifecycle, shutdown_error
from ..messages.v1 import batches_pb2 as bpb
from ..pipeline import Pipeline
from . import convert
from .calls import abort as _abort
from .calls import clean as _clean
from .calls import decoded as _decoded
from .calls import forward_headers as _forward_headers
from .registry import MethodSpec, ServicerContext, service_methods

__all__ = ["BatchesService", "batches_methods"]

log = logging.getLogger("sidecar.grpc")
T = TypeVar("T")
Context = ServicerContext

# What a batch id may hold: it becomes a path segment of a forwarded request.
_BATCH_ID = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
_decode = msgspec.json.decode
_encode = msgspec.json.encode


def _batch_id(value: str) -> str:
    if not _BATCH_ID.match(value):
        raise InvalidRequest("batch_id: must be a batch id (letters, digits, '_' and '-')")
    return value


def _on_origin(batch: dict[str, Any], origin: str) -> dict[str, Any]:
    """``results_url`` on ``origin`` (a forwarded batch's upstream URL too; "": the bare path)."""
    url = batch.get("results_url")
    if isinstance(url, str) and "/v1/" in url:
        batch["results_url"] = origin + url[url.index("/v1/") :]
    return batch


def _json(answer: Answer) -> dict[str, Any]:
    """The JSON object of a ``Batches`` answer; an error status (an in-process adapter may answer
    one instead of raising) becomes the error it describes."""
    data = answer.json()
    if answer.status >= 400:
        error = data.get("error")
        error = error if isinstance(error, dict) else {}
        raise SidecarError(
            str(error.get("message") or f"upstream answered {answer.status}"),
            status=answer.status,
            error_type=str(error.get("type") or "api_error"),
            headers=answer.headers,
        )
    return data


def _ids(answer: Answer | None, request_id: str) -> tuple[tuple[str, str], ...]:
    upstream_id = next((v for k, v in answer.headers if k == "request-id"), None) if answer else None
    return (("request-id", upstream_id or request_id), ("sidecar-request-id", request_id))


async def _lines(chunks: AsyncIterator[bytes]) -> AsyncGenerator[bytes, None]:
    """Complete lines of a JSON Lines body, however its chunks split them."""
    pending: list[bytes] = []
    async for chunk in chunks:
        if b"\n" not in chunk:
            pending.append(chunk)
            continue
        *lines, rest = chunk.split(b"\n")
        if pending:
            pending.append(lines[0])
            lines[0] = b"".join(pending)
            pending = []
        for line in lines:
            if line.strip():
                yield line
        if rest:
            pending.append(rest)
    last = b"".join(pending)
    if last.strip():
        yield last


def _result(line: bytes) -> bpb.MessageBatchIndividualResponse:
    try:
        data = _decode(line)
    except BAD_JSON as exc:
        raise UpstreamProtocolError(f"a batch results line is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise UpstreamProtocolError("a batch results line is not a JSON object")
    return convert.batch_result_to_proto(data)


class BatchesService:
    """Thin servicer: convert, call ``Batches`` as the HTTP door does, convert back."""

    def __init__(self, batches: Batches, lifecycle: Lifecycle, *, http_origin: str = "") -> None:
        self._batches = batches
        self._lifecycle = lifecycle
        self._origin = http_origin

    def _results_url(self, batch: dict[str, Any]) -> dict[str, Any]:
        return _on_origin(batch, self._origin)

    async def _guard(self, context: Context, request_id: str, work: Awaitable[T]) -> T:
        """Await ``work``; any failure ends the call with its mapped status."""
        try:
            return await work
        except SidecarError as exc:
            await _abort(context, exc, request_id)
        except asyncio.CancelledError:
            if not self._lifecycle.cut:
                raise
            # The drain deadline passed: end the call with a retryable status.
            asyncio.current_task().uncancel()  # type: ignore[union-attr]
            await _abort(context, shutdown_error(), request_id)
        except Exception:
            log.exception("unexpected error (request %s)", request_id)
            await _abort(context, SidecarError("Internal server error"), request_id)

    async def _unary(
        self,
        context: Context,
        call: Callable[[Pipeline, dict[str, str]], Awaitable[tuple[dict[str, Any], Answer | None]]],
        out: Callable[[dict[str, Any]], T],
    ) -> T:
        """One unary RPC: ``call(pipeline, headers)`` gives the JSON answer (and the ``Answer``
        it came in, for its request id); ``out`` converts it."""
        request_id = new_request_id()
        with self._lifecycle.tracked() as pipeline:

            async def work() -> T:
                data, answer = await call(pipeline, _clean(_forward_headers(context)))
                context.set_trailing_metadata(_ids(answer, request_id))
                return out(data)

            return await self._guard(context, request_id, work())

    async def CreateBatch(self, request: bpb.CreateBatchRequest, context: Context) -> bpb.MessageBatch:
        async def call(pipeline: Pipeline, headers: dict[str, str]) -> tuple[dict[str, Any], None]:
            body = _encode(convert.create_batch_request_from_proto(_decoded(request)))
            return self._results_url(await self._batches.create(pipeline, headers, body, "")), None

        return await self._unary(context, call, convert.batch_to_proto)

    async def GetBatch(self, request: bpb.GetBatchRequest, context: Context) -> bpb.MessageBatch:
        async def call(pipeline: Pipeline, headers: dict[str, str]) -> tuple[dict[str, Any], Answer]:
            answer = await self._batches.retrieve(
                pipeline, headers, _batch_id(_decoded(request).batch_id), ""
            )
            return self._results_url(_json(answer)), answer

        return await self._unary(context, call, convert.batch_to_proto)

    async def ListBatches(self, request: bpb.ListBatchesRequest, context: Context) -> bpb.ListBatchesResponse:
        async def call(pipeline: Pipeline, headers: dict[str, str]) -> tuple[dict[str, Any], None]:
            params = convert.list_batches_request_from_proto(_decoded(request))
            limit = params.get("limit", 20)
            if not isinstance(limit, int) or not 1 <= limit <= 1000:
                raise InvalidRequest("limit: Input should be an integer between 1 and 1000")
            after_id, before_id = params.get("after_id"), params.get("before_id")
            page = await self._batches.list(
                pipeline,
                headers,
                "",
                limit=limit,
                # As the HTTP door's query string: an empty value is no value.
                after_id=after_id if isinstance(after_id, str) and after_id else None,
                before_id=before_id if isinstance(before_id, str) and before_id else None,
            )
            for batch in page["data"]:
                self._results_url(batch)
            return page, None

        return await self._unary(context, call, convert.list_batches_response_to_proto)

    async def CancelBatch(self, request: bpb.CancelBatchRequest, context: Context) -> bpb.MessageBatch:
        async def call(pipeline: Pipeline, headers: dict[str, str]) -> tuple[dict[str, Any], Answer]:
            answer = await self._batches.cancel(pipeline, headers, _batch_id(_decoded(request).batch_id), "")
            return self._results_url(_json(answer)), answer

        return await self._unary(context, call, convert.batch_to_proto)

    async def DeleteBatch(self, request: bpb.DeleteBatchRequest, context: Context) -> bpb.DeletedMessageBatch:
        async def call(pipeline: Pipeline, headers: dict[str, str]) -> tuple[dict[str, Any], Answer]:
            answer = await self._batches.delete(pipeline, headers, _batch_id(_decoded(request).batch_id))
            return _json(answer), answer

        return await self._unary(context, call, convert.deleted_batch_to_proto)

    async def Results(
        self, request: bpb.BatchResultsRequest, context: Context
    ) -> AsyncIterator[bpb.MessageBatchIndividualResponse]:
        with self._lifecycle.tracked() as pipeline:
            async for result in self._results(pipeline, request, context):
                yield result

    async def _results(
        self, pipeline: Pipeline, request: bpb.BatchResultsRequest, context: Context
    ) -> AsyncIterator[bpb.MessageBatchIndividualResponse]:
        request_id = new_request_id()

        async def start() -> Answer:
            batch_id = _batch_id(_decoded(request).batch_id)
            answer = await self._batches.results(pipeline, _clean(_forward_headers(context)), batch_id)
            if answer.chunks is None:
                _json(answer)  # an error status raises; a JSON body is not results
                raise UpstreamProtocolError(f"the results of batch {batch_id} came as one JSON object")
            return answer

        answer = await self._guard(context, request_id, start())
        assert answer.chunks is not None
        failure: SidecarError | None = None
        lines = _lines(answer.chunks)
        try:
            await context.send_initial_metadata(_ids(answer, request_id))
            async for line in lines:
                yield _result(line)
        except SidecarError as exc:
            failure = exc
        except asyncio.CancelledError:
            if not self._lifecycle.cut:
                raise  # the client went away or the deadline passed
            asyncio.current_task().uncancel()  # type: ignore[union-attr]
            failure = shutdown_error()
        except Exception:
            log.exception("batch results failed (request %s)", request_id)
            failure = SidecarError("Internal server error")
        finally:
            try:
                await lines.aclose()
            finally:
                if answer.close is not None:
                    await answer.close()
        if failure is not None:
            await _abort(context, failure, request_id)


def batches_methods(batches: Batches, lifecycle: Lifecycle, *, http_origin: str = "") -> list[MethodSpec]:
    """The service's methods (``results_url`` on ``http_origin``), for a server to register."""
    service = BatchesService(batches, lifecycle, http_origin=http_origin)
    return service_methods(service, bpb.DESCRIPTOR.services_by_name["Batches"])
