"""The gRPC door: service ``sidecar.messages.v1.Messages``, thin over the same core as HTTP.

Protobuf lives only here: requests are converted to Anthropic JSON dicts at the edge, answers
back to protos. Credentials and ``anthropic-*`` headers come from the call's metadata. Errors end
the call with the mapped status code and carry the Anthropic error type, message and request id
in the trailing metadata (``anthropic-error-type``, ``anthropic-error-message``, ``request-id``).
A cancelled call or a passed deadline cancels the handler, and with it the upstream request.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, NoReturn

import grpc
from grpc import aio as grpc_aio

from ..core import Answer, Call, new_request_id
from ..errors import InvalidRequest, SidecarError, grpc_code_for_type
from ..messages.v1 import messages_pb2 as pb
from ..messages.v1 import messages_pb2_grpc as pb_grpc
from ..service import Sidecar, page_models
from . import convert

if TYPE_CHECKING:
    from ..server import Runtime

__all__ = ["MessagesService", "add_messages_service"]

log = logging.getLogger("sidecar.grpc")

# Metadata that belongs to gRPC itself, never forwarded upstream.
_INTERNAL = ("grpc-", ":")
_DROP = frozenset({"content-type", "te", "user-agent", "accept-encoding", "host", "content-length"})


def _forward_headers(context: grpc_aio.ServicerContext[Any, Any]) -> dict[str, str]:
    headers: dict[str, str] = {}
    for key, value in context.invocation_metadata() or ():
        if key.startswith(_INTERNAL) or key in _DROP or key.endswith("-bin"):
            continue
        headers[key] = value if isinstance(value, str) else value.decode("latin-1")
    return headers


async def _abort(context: grpc_aio.ServicerContext[Any, Any], exc: SidecarError, request_id: str) -> NoReturn:
    rid = exc.request_id or request_id
    trailing = [
        ("anthropic-error-type", exc.error_type),
        ("anthropic-error-message", exc.message),
        ("request-id", rid),
        ("sidecar-request-id", request_id),
    ]
    for key, value in exc.headers:
        if key in ("retry-after", "retry-after-ms", "x-should-retry") or key.startswith(
            "anthropic-ratelimit-"
        ):
            trailing.append((key, value))
    context.set_trailing_metadata(tuple(trailing))
    await context.abort(exc.grpc_code, exc.message)
    raise AssertionError("abort returned")  # pragma: no cover - abort always raises


def _header_metadata(answer: Answer, request_id: str) -> tuple[tuple[str, str], ...]:
    upstream_id = next((v for k, v in answer.headers if k == "request-id"), None)
    return (("request-id", upstream_id or request_id), ("sidecar-request-id", request_id))


class MessagesService(pb_grpc.MessagesServicer):  # type: ignore[misc]  # untyped generated base
    """Thin servicer: convert, call the core, convert back, map errors once."""

    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime

    def _sidecar(self) -> Sidecar:
        return self._runtime.current()

    def _call(
        self,
        body: dict[str, Any],
        context: grpc_aio.ServicerContext[Any, Any],
        endpoint: str,
        request_id: str,
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
            headers=_forward_headers(context),
            deadline=time.monotonic() + remaining if remaining is not None else None,
            requested_model=model if isinstance(model, str) else "",
        )

    async def CreateMessage(
        self, request: pb.CreateMessageRequest, context: grpc_aio.ServicerContext[Any, Any]
    ) -> pb.Message:
        request_id = new_request_id()
        try:
            body = convert.request_from_proto(request)
            if body.get("stream") is True:
                raise InvalidRequest("stream: CreateMessage answers one Message; use StreamMessage to stream")
            answer = await self._sidecar().messages(self._call(body, context, "messages", request_id))
            await context.send_initial_metadata(_header_metadata(answer, request_id))
            return convert.message_to_proto(answer.json())
        except SidecarError as exc:
            await _abort(context, exc, request_id)

    async def StreamMessage(
        self, request: pb.CreateMessageRequest, context: grpc_aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[pb.StreamEvent]:
        request_id = new_request_id()
        try:
            body = convert.request_from_proto(request)
            if body.get("stream") is not True:
                body["stream"] = True
            answer = await self._sidecar().messages(self._call(body, context, "messages", request_id))
        except SidecarError as exc:
            await _abort(context, exc, request_id)
        await context.send_initial_metadata(_header_metadata(answer, request_id))
        if answer.events is None:
            # An upstream that answered a stream request with one JSON Message (allowed for
            # non-Anthropic upstreams): deliver it as the one-event equivalent is not possible,
            # so say so plainly.
            await _abort(
                context, SidecarError("upstream answered a stream request without a stream"), request_id
            )
        events = answer.events
        failure: SidecarError | None = None
        try:
            async for event in events:
                if not event.name:
                    continue  # SSE comments carry nothing
                data = event.data
                yield convert.event_to_proto(data)
                if event.name == "error":
                    err = data.get("error")
                    err = err if isinstance(err, dict) else {}
                    etype, message = err.get("type"), err.get("message")
                    failure = SidecarError(
                        message if isinstance(message, str) else "upstream error",
                        error_type=etype if isinstance(etype, str) else "api_error",
                    )
                    break
        except SidecarError as exc:
            failure = exc
            yield convert.event_to_proto(exc.body(exc.request_id or request_id))
        finally:
            await events.aclose()
        if failure is not None:
            await _abort(context, failure, request_id)

    async def CountTokens(
        self, request: pb.CountTokensRequest, context: grpc_aio.ServicerContext[Any, Any]
    ) -> pb.CountTokensResponse:
        request_id = new_request_id()
        try:
            body = convert.count_tokens_request_from_proto(request)
            answer = await self._sidecar().count_tokens(self._call(body, context, "count_tokens", request_id))
            await context.send_initial_metadata(_header_metadata(answer, request_id))
            return convert.count_tokens_response_to_proto(answer.json())
        except SidecarError as exc:
            await _abort(context, exc, request_id)

    async def ListModels(
        self, request: pb.ListModelsRequest, context: grpc_aio.ServicerContext[Any, Any]
    ) -> pb.ListModelsResponse:
        request_id = new_request_id()
        try:
            params = convert.list_models_request_from_proto(request)
            models = await self._sidecar().list_models(_forward_headers(context))
            page = page_models(
                models, int(params.get("limit", 20)), params.get("after_id"), params.get("before_id")
            )
            return convert.list_models_response_to_proto(page)
        except SidecarError as exc:
            await _abort(context, exc, request_id)

    async def GetModel(
        self, request: pb.GetModelRequest, context: grpc_aio.ServicerContext[Any, Any]
    ) -> pb.ModelInfo:
        request_id = new_request_id()
        try:
            info = await self._sidecar().get_model(request.model_id, _forward_headers(context))
            return convert.model_info_to_proto(info)
        except SidecarError as exc:
            await _abort(context, exc, request_id)


def add_messages_service(server: grpc_aio.Server, runtime: Runtime) -> str:
    """Register the service; returns its full name (for health and reflection)."""
    pb_grpc.add_MessagesServicer_to_server(MessagesService(runtime), server)
    return pb.DESCRIPTOR.services_by_name["Messages"].full_name


# Keep the mapping visible where the door uses it (and testable from here).
assert grpc_code_for_type("invalid_request_error") == grpc.StatusCode.INVALID_ARGUMENT
