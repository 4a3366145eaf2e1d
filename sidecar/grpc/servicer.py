"""The gRPC door: service ``sidecar.messages.v1.Messages``, thin over the same core as HTTP.

Protobuf lives only here: requests are converted to Anthropic JSON dicts at the edge, answers
back to protos. Credentials and ``anthropic-*`` headers come from the call's metadata. Errors end
the call with the mapped status code and carry the Anthropic error type, message and request id
in the trailing metadata (``anthropic-error-type``, ``anthropic-error-message``, ``request-id``).
A cancelled call or a passed deadline cancels the handler, and with it the upstream request.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, NoReturn, TypeVar

import grpc
from google.protobuf import message_factory
from google.protobuf.descriptor import ServiceDescriptor
from google.protobuf.message import DecodeError
from grpc import aio as grpc_aio

from ..core import (
    NOOP_REQUEST,
    Answer,
    Call,
    EventStream,
    RequestObserver,
    error_from_event,
    grammar,
    new_request_id,
)
from ..core.credentials import add_header
from ..errors import InvalidRequest, SidecarError, UpstreamProtocolError
from ..lifecycle import Lifecycle, shutdown_error
from ..messages.v1 import messages_pb2 as pb
from ..messages.v1 import messages_pb2_grpc as pb_grpc
from ..pipeline import Pipeline, page_models
from ..telemetry import Telemetry
from . import convert

__all__ = ["MessagesService", "add_messages_service"]

log = logging.getLogger("sidecar.grpc")
T = TypeVar("T")
Context = grpc_aio.ServicerContext[Any, Any]

# Metadata that belongs to gRPC itself, never forwarded upstream.
_INTERNAL = ("grpc-", ":")
_DROP = frozenset({"content-type", "te", "user-agent", "accept-encoding", "host", "content-length"})


def _forward_headers(context: Context) -> dict[str, str]:
    headers: dict[str, str] = {}
    for key, value in context.invocation_metadata() or ():
        if key.startswith(_INTERNAL) or key in _DROP or key.endswith("-bin"):
            continue
        add_header(headers, key, value if isinstance(value, str) else value.decode("latin-1"))
    return headers


# Control characters an HTTP field value may not hold (RFC 9110: VCHAR, obs-text, SP, HTAB).
# gRPC's core passes them through in metadata values sent as raw HTTP/2.
_CONTROL = frozenset(chr(c) for c in (*range(0x20), 0x7F)) - {"\t"}


def _clean(headers: dict[str, str]) -> dict[str, str]:
    """``headers``, or InvalidRequest when a value holds CR, LF, NUL or another control
    character: forwarded, it would be refused by the upstream client (an internal error) or, for
    a NUL, reach the upstream as a malformed request."""
    for key, value in headers.items():
        if not _CONTROL.isdisjoint(value):
            raise InvalidRequest(f"metadata {key!r}: a control character (CR, LF, NUL ...) in its value")
    return headers


# The longest error message a status carries (gRPC refuses metadata over 16 KB outright, and a
# message may quote client input: a model id, a field's value).
MAX_ERROR_MESSAGE = 1024


def metadata_value(text: str, limit: int = MAX_ERROR_MESSAGE) -> str:
    """``text`` as a legal gRPC metadata value: printable ASCII (anything else escaped the way a
    Python literal would be: ``\\n``, ``\\xe9``), at most ``limit`` characters. gRPC ends a call
    whose trailers hold anything else with INTERNAL "Invalid metadata", losing the error."""
    if not (text.isascii() and text.isprintable()):
        text = text.encode("unicode_escape").decode("ascii")
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return text


async def _abort(context: Context, exc: SidecarError, request_id: str) -> NoReturn:
    rid = exc.request_id or request_id
    message = metadata_value(exc.message)
    trailing = [
        ("anthropic-error-type", metadata_value(exc.error_type, 100)),
        ("anthropic-error-message", message),
        ("request-id", metadata_value(rid, 200)),
        ("sidecar-request-id", request_id),
    ]
    for key, value in exc.headers:
        if key in ("retry-after", "retry-after-ms", "x-should-retry") or key.startswith(
            "anthropic-ratelimit-"
        ):
            trailing.append((key, metadata_value(value, 200)))
    context.set_trailing_metadata(tuple(trailing))
    await context.abort(exc.grpc_code, message)
    raise AssertionError("abort returned")  # pragma: no cover - abort always raises


class Undecodable:
    """A request whose bytes do not decode as its message. grpcio itself would end such a call
    with UNKNOWN and log a traceback; the handler answers INVALID_ARGUMENT instead."""

    __slots__ = ("message_type",)

    def __init__(self, message_type: str) -> None:
        self.message_type = message_type


def tolerant_deserializer(cls: Any) -> Callable[[bytes], Any]:
    """``cls.FromString``, but an undecodable request becomes an ``Undecodable``."""
    parse = cls.FromString
    name = cls.DESCRIPTOR.full_name

    def deserialize(data: bytes) -> Any:
        try:
            return parse(data)
        except DecodeError:
            return Undecodable(name)

    return deserialize


def _decoded(request: T | Undecodable) -> T:
    if isinstance(request, Undecodable):
        raise InvalidRequest(f"the request is not a valid {request.message_type} protobuf message")
    return request


def _header_metadata(answer: Answer, request_id: str) -> tuple[tuple[str, str], ...]:
    upstream_id = next((v for k, v in answer.headers if k == "request-id"), None)
    return (("request-id", upstream_id or request_id), ("sidecar-request-id", request_id))


class MessagesService(pb_grpc.MessagesServicer):  # type: ignore[misc]  # untyped generated base
    """Thin servicer: convert, call the pipeline, convert back, map errors once."""

    def __init__(self, lifecycle: Lifecycle, telemetry: Telemetry) -> None:
        self._lifecycle = lifecycle
        self._telemetry = telemetry

    def _pipeline(self) -> Pipeline:
        """The config snapshot of the running call (entered in ``_tracked``)."""
        return self._lifecycle.snapshot()

    def _begin(self, method: str, context: Context) -> tuple[dict[str, str], RequestObserver]:
        """The call's forwarded metadata, and its telemetry (continuing a caller's traceparent)."""
        headers = _forward_headers(context)
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
            headers=_clean(_forward_headers(context) if headers is None else headers),
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
            await _abort(context, exc, request_id)
        except asyncio.CancelledError:
            if not self._lifecycle.cut:
                observer.finish(cancelled=True)
                raise
            # The drain deadline passed: end the call with a retryable status.
            asyncio.current_task().uncancel()  # type: ignore[union-attr]
            failure: SidecarError = shutdown_error()
            observer.finish(failure)
            await _abort(context, failure, request_id)
        except Exception:
            log.exception("unexpected error (request %s)", request_id)
            failure = SidecarError("Internal server error")
            observer.finish(failure)
            await _abort(context, failure, request_id)
        if finish and observer is not NOOP_REQUEST:
            # Once the answer is out: grpc writes a unary answer as soon as the handler returns,
            # in the same step of the loop, so the telemetry's work is off the call's latency.
            asyncio.get_running_loop().call_soon(observer.finish)
        return result

    async def CreateMessage(self, request: pb.CreateMessageRequest, context: Context) -> pb.Message:
        with self._lifecycle.tracked():
            return await self._create_message(request, context)

    async def _create_message(self, request: pb.CreateMessageRequest, context: Context) -> pb.Message:
        request_id = new_request_id()
        headers, observer = self._begin("CreateMessage", context)
        observer.identify(request_id)

        async def work() -> pb.Message:
            body = convert.request_from_proto(_decoded(request))
            if body.get("stream") is True:
                raise InvalidRequest("stream: CreateMessage answers one Message; use StreamMessage to stream")
            call = self._call(body, context, "messages", request_id, headers, observer)
            answer = await self._pipeline().messages(call)
            # A unary answer's ids go with its status: initial metadata of their own would be
            # one more operation through grpc's core (~0.1 ms per call, measured).
            context.set_trailing_metadata(_header_metadata(answer, request_id))
            return convert.message_to_proto(answer.json())

        return await self._guard(context, request_id, work(), observer)

    async def StreamMessage(
        self, request: pb.CreateMessageRequest, context: Context
    ) -> AsyncIterator[pb.StreamEvent]:
        with self._lifecycle.tracked():
            async for event in self._stream_message(request, context):
                yield event

    async def _stream_message(
        self, request: pb.CreateMessageRequest, context: Context
    ) -> AsyncIterator[pb.StreamEvent]:
        request_id = new_request_id()
        headers, observer = self._begin("StreamMessage", context)
        observer.identify(request_id)

        async def start() -> EventStream:
            body = convert.request_from_proto(_decoded(request))
            body["stream"] = True
            call = self._call(body, context, "messages", request_id, headers, observer)
            answer = await self._pipeline().messages(call)
            if answer.events is None:
                raise UpstreamProtocolError("the upstream answered a stream request with a single JSON body")
            try:
                await context.send_initial_metadata(_header_metadata(answer, request_id))
            except BaseException:
                # Cancelled before the first event: nobody will iterate the stream, so close
                # it here (the upstream request, the admission lease, the attempt's telemetry).
                await answer.events.aclose()
                raise
            return answer.events

        events = await self._guard(context, request_id, start(), observer, finish=False)
        failure: SidecarError | None = None
        relayed = False  # the failure already went out as the upstream's own error event
        gone = False
        check = grammar.stream_check(f"grpc {request_id}") if grammar.CHECK_LOG else None
        try:
            async for event in events if check is None else check.watch(events):
                if not event.name:
                    continue  # SSE comments carry nothing
                data = event.data
                yield convert.event_to_proto(data)
                if event.name == "error":
                    # The upstream's in-band error: the event went out, the status follows.
                    failure = error_from_event(event)
                    relayed = True
                    break
        except SidecarError as exc:
            failure = exc
        except Exception:
            log.exception("stream failed (request %s)", request_id)
            failure = SidecarError("Internal server error")
        except asyncio.CancelledError:
            if not self._lifecycle.cut:
                gone = True  # the client went away or the deadline passed
                raise
            # The drain deadline passed: end the stream well-formed (error event, then status).
            asyncio.current_task().uncancel()  # type: ignore[union-attr]
            failure = shutdown_error()
        except BaseException:
            # Closed (GeneratorExit) or another interruption.
            gone = True
            raise
        finally:
            try:
                await events.aclose()
            except BaseException:
                # Cancelled while the upstream closes (the client left after the last event):
                # the call ends here, and its telemetry with it.
                gone = True
                raise
            finally:
                if gone:  # after aclose: the usage seen so far is counted first
                    observer.finish(cancelled=True)
        if check is not None:  # test mode (SIDECAR_CHECK_STREAMS): the error event too, then the end
            if failure is not None and not relayed:
                check.event(failure.body(failure.request_id or request_id))
            check.done(cut=False)
        observer.finish(failure)
        if failure is not None:
            if not relayed:
                yield convert.event_to_proto(failure.body(failure.request_id or request_id))
            await _abort(context, failure, request_id)

    async def CountTokens(self, request: pb.CountTokensRequest, context: Context) -> pb.CountTokensResponse:
        with self._lifecycle.tracked():
            return await self._count_tokens(request, context)

    async def _count_tokens(self, request: pb.CountTokensRequest, context: Context) -> pb.CountTokensResponse:
        request_id = new_request_id()
        headers, observer = self._begin("CountTokens", context)
        observer.identify(request_id)

        async def work() -> pb.CountTokensResponse:
            body = convert.count_tokens_request_from_proto(_decoded(request))
            call = self._call(body, context, "count_tokens", request_id, headers, observer)
            answer = await self._pipeline().count_tokens(call)
            context.set_trailing_metadata(_header_metadata(answer, request_id))
            return convert.count_tokens_response_to_proto(answer.json())

        return await self._guard(context, request_id, work(), observer)

    async def ListModels(self, request: pb.ListModelsRequest, context: Context) -> pb.ListModelsResponse:
        async def work() -> pb.ListModelsResponse:
            params = convert.list_models_request_from_proto(_decoded(request))
            models = await self._pipeline().list_models(_clean(_forward_headers(context)))
            page = page_models(
                models,
                int(params.get("limit", 20)),
                params.get("after_id"),
                params.get("before_id"),
                params.get("lifecycle", ()),
            )
            return convert.list_models_response_to_proto(page)

        return await self._guard(context, new_request_id(), work())

    async def GetModel(self, request: pb.GetModelRequest, context: Context) -> pb.ModelInfo:
        async def work() -> pb.ModelInfo:
            info = await self._pipeline().get_model(
                _decoded(request).model_id, _clean(_forward_headers(context))
            )
            return convert.model_info_to_proto(info)

        return await self._guard(context, new_request_id(), work())


_HANDLER_KINDS = {  # (client streaming, server streaming) -> grpc's handler factory
    (False, False): grpc.unary_unary_rpc_method_handler,
    (False, True): grpc.unary_stream_rpc_method_handler,
    (True, False): grpc.stream_unary_rpc_method_handler,
    (True, True): grpc.stream_stream_rpc_method_handler,
}


def add_service(
    server: grpc_aio.Server,
    servicer: Any,
    service: ServiceDescriptor,
    deserializer: Callable[[Any], Callable[[bytes], Any]] = tolerant_deserializer,
) -> str:
    """Register ``servicer``'s methods for ``service`` (every method of the descriptor, of any
    cardinality); returns the service's full name (for health and reflection).

    As the generated ``add_*Servicer_to_server`` do, with two differences:

    - ``deserializer`` makes each request deserializer from the request's message class. The
      default, ``tolerant_deserializer``, lets an undecodable request reach the method (which
      answers INVALID_ARGUMENT with the trailers) instead of grpcio's UNKNOWN and a logged
      traceback; pass ``lambda cls: cls.FromString`` for grpcio's own behaviour.
    - Generic handlers only, no registered methods. grpc.aio's server (1.85) keeps one pending
      request per registered method and awaits them all with ``asyncio.wait`` for every incoming
      call, adding and removing a callback on each: with the 15 methods of our four services,
      about 940 Python opcodes per call (measured in process). A generic handler is one dict
      lookup.
    """
    handlers = {}
    for method in service.methods:
        request = message_factory.GetMessageClass(method.input_type)
        response = message_factory.GetMessageClass(method.output_type)
        make = _HANDLER_KINDS[method.client_streaming, method.server_streaming]
        handlers[method.name] = make(
            getattr(servicer, method.name),
            request_deserializer=deserializer(request),
            response_serializer=response.SerializeToString,
        )
    name: str = service.full_name
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(name, handlers),))
    return name


def add_messages_service(server: grpc_aio.Server, lifecycle: Lifecycle, telemetry: Telemetry) -> str:
    """Register the service; returns its full name (for health and reflection)."""
    service = MessagesService(lifecycle, telemetry)
    return add_service(server, service, pb.DESCRIPTOR.services_by_name["Messages"])
