"""The gRPC door: service ``sidecar.messages.v1.Messages``, thin over the same core as HTTP.

Protobuf lives only here: requests are converted to Anthropic JSON dicts at the edge, answers
back to protos. Credentials and ``anthropic-*`` headers come from the call's metadata. Errors end
the call with the mapped status code and carry the Anthropic error type, message and request id
in the trailing metadata (``anthropic-error-type``, ``anthropic-error-message``, ``request-id``).
A cancelled call or a passed deadline cancels the handler, and with it the upstream request.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

from ..core import (
    NOOP_REQUEST,
    Call,
    RequestObserver,
    new_request_id,
)
from ..errors import InvalidRequest, SidecarError
from ..lifecycle import Lifecycle, shutdown_error
from ..messages.v1 import messages_pb2 as pb
from ..pipeline import Pipeline, page_models
from ..telemetry import Telemetry
from . import convert
from .calls import abort, clean, decoded, forward_headers, header_metadata
from .registry import MethodSpec, ServicerContext, service_methods
from .streaming import stream_message

__all__ = ["MessagesService", "messages_methods"]

log = logging.getLogger("sidecar.grpc")
T = TypeVar("T")
Context = ServicerContext


class MessagesService:
    """Thin servicer: convert, call the pipeline, convert back, map errors once."""

    def __init__(self, lifecycle: Lifecycle, telemetry: Telemetry) -> None:
        self._lifecycle = lifecycle
        self._telemetry = telemetry

    def _pipeline(self) -> Pipeline:
        """The config snapshot of the running call (entered in ``_tracked``)."""
        return self._lifecycle.snapshot()

    def _begin(self, method: str, context: Context) -> tuple[dict[str, str], RequestObserver]:
        """The call's forwarded metadata, and its telemetry (continuing a caller's traceparent)."""
        headers = forward_headers(context)
        return headers, self._telemetry.begin("grpc", method, headers)

    def _call(
        self,
        body: dict[str, Any],
        context: Context,
        endpoint: str,
        request_id: str,
        headers: dict[str, str] | None = None,
        observer: RequestObserver = NOOP_REQUEST,
    ) -> Call:
        remaining = context.time_remaining()
        model = body.get("model")
        return Call(
            endpoint=endpoint,
            body=body,
            raw=None,
            model=model if isinstance(model, str) else "",
            stream=body.get("stream") is True,
            request_id=request_id,
            door="grpc",
            headers=clean(forward_headers(context) if headers is None else headers),
            deadline=time.monotonic() + remaining if remaining is not None else None,
            requested_model=model if isinstance(model, str) else "",
            observer=observer,
        )

    async def _guard(
        self,
        context: Context,
        request_id: str,
        work: Awaitable[T],
        observer: RequestObserver = NOOP_REQUEST,
        *,
        finish: bool = True,
    ) -> T:
        """Await ``work``; any failure ends the call with its mapped status, in one place.

        ``observer`` is finished with the failure (or the cancellation), and with success too
        unless ``finish`` is false (a stream goes on after its start)."""
        try:
            result = await work
        except SidecarError as exc:
            observer.finish(exc)
            await abort(context, exc, request_id)
        except asyncio.CancelledError:
            if not self._lifecycle.cut:
                observer.finish(cancelled=True)
                raise
            # The drain deadline passed: end the call with a retryable status.
            asyncio.current_task().uncancel()  # type: ignore[union-attr]
            failure: SidecarError = shutdown_error()
            observer.finish(failure)
            await abort(context, failure, request_id)
        except Exception:
            log.exception("unexpected error (request %s)", request_id)
            failure = SidecarError("Internal server error")
            observer.finish(failure)
            await abort(context, failure, request_id)
        if finish and observer is not NOOP_REQUEST:
            # Once the answer is out: grpc writes a unary answer as soon as the handler returns,
            # in the same step of the loop, so the telemetry's work is off the call's latency.
            asyncio.get_running_loop().call_soon(observer.finish)
        return result

    async def CreateMessage(self, request: object, context: Context) -> pb.Message:
        self._lifecycle.enter()  # ``tracked()`` without contextlib's Python on the unary path
        try:
            return await self._create_message(request, context)
        finally:
            self._lifecycle.leave()

    async def _create_message(self, request: object, context: Context) -> pb.Message:
        request_id = new_request_id()
        headers, observer = self._begin("CreateMessage", context)
        observer.identify(request_id)

        async def work() -> pb.Message:
            body = convert.request_from_proto(decoded(request))
            if body.get("stream") is True:
                raise InvalidRequest("stream: CreateMessage answers one Message; use StreamMessage to stream")
            call = self._call(body, context, "messages", request_id, headers, observer)
            answer = await self._pipeline().messages(call)
            # A unary answer's ids go with its status: initial metadata of their own would be
            # one more operation through grpc's core (~0.1 ms per call, measured).
            context.set_trailing_metadata(header_metadata(answer, request_id))
            return convert.message_to_proto(answer.json())

        return await self._guard(context, request_id, work(), observer)

    @property
    def StreamMessage(self) -> Callable[[object, Context], AsyncIterator[pb.StreamEvent]]:
        """The streaming method: an async generator function of ``sidecar.grpc.streaming``
        (this module is compiled, and mypyc compiles no async generator), bound to this
        service as a partial, which grpc.aio still takes for an async generator function."""
        return functools.partial(stream_message, self)

    async def CountTokens(self, request: object, context: Context) -> pb.CountTokensResponse:
        self._lifecycle.enter()
        try:
            return await self._count_tokens(request, context)
        finally:
            self._lifecycle.leave()

    async def _count_tokens(self, request: object, context: Context) -> pb.CountTokensResponse:
        request_id = new_request_id()
        headers, observer = self._begin("CountTokens", context)
        observer.identify(request_id)

        async def work() -> pb.CountTokensResponse:
            body = convert.count_tokens_request_from_proto(decoded(request))
            call = self._call(body, context, "count_tokens", request_id, headers, observer)
            answer = await self._pipeline().count_tokens(call)
            context.set_trailing_metadata(header_metadata(answer, request_id))
            return convert.count_tokens_response_to_proto(answer.json())

        return await self._guard(context, request_id, work(), observer)

    async def ListModels(self, request: object, context: Context) -> pb.ListModelsResponse:
        async def work() -> pb.ListModelsResponse:
            params = convert.list_models_request_from_proto(decoded(request))
            models = await self._pipeline().list_models(clean(forward_headers(context)))
            page = page_models(
                models,
                int(params.get("limit", 20)),
                params.get("after_id"),
                params.get("before_id"),
                params.get("lifecycle", ()),
            )
            return convert.list_models_response_to_proto(page)

        return await self._guard(context, new_request_id(), work())

    async def GetModel(self, request: object, context: Context) -> pb.ModelInfo:
        async def work() -> pb.ModelInfo:
            info = await self._pipeline().get_model(
                decoded(request).model_id, clean(forward_headers(context))
            )
            return convert.model_info_to_proto(info)

        return await self._guard(context, new_request_id(), work())


def messages_methods(lifecycle: Lifecycle, telemetry: Telemetry) -> list[MethodSpec]:
    """The service's methods, for a server to register."""
    service = MessagesService(lifecycle, telemetry)
    return service_methods(service, pb.DESCRIPTOR.services_by_name["Messages"])
