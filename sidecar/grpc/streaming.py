"""``StreamMessage``, the door's streaming method, as an async generator: the one part of the
Messages service that stays interpreted (mypyc compiles no async generator; the rest of it,
``sidecar.grpc.servicer``, is compiled). One message per SSE event, then the status."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable
from typing import Any, Protocol, TypeVar

from ..core import Call, EventStream, RequestObserver, error_from_event, grammar, new_request_id
from ..errors import SidecarError, UpstreamProtocolError
from ..lifecycle import Lifecycle, shutdown_error
from ..messages.v1 import messages_pb2 as pb
from ..pipeline import Pipeline
from . import convert
from .calls import abort, decoded, header_metadata
from .registry import ServicerContext

__all__ = ["stream_message"]

log = logging.getLogger("sidecar.grpc")
T = TypeVar("T")
Context = ServicerContext


class _Service(Protocol):
    """What of ``servicer.MessagesService`` a stream uses."""

    _lifecycle: Lifecycle

    def _pipeline(self) -> Pipeline: ...

    def _begin(self, method: str, context: Context) -> tuple[dict[str, str], RequestObserver]: ...

    def _call(
        self,
        body: dict[str, Any],
        context: Context,
        endpoint: str,
        request_id: str,
        headers: dict[str, str] | None = None,
        observer: RequestObserver = ...,
    ) -> Call: ...

    async def _guard(
        self,
        context: Context,
        request_id: str,
        work: Awaitable[T],
        observer: RequestObserver = ...,
        *,
        finish: bool = True,
    ) -> T: ...


async def stream_message(
    service: _Service, request: object, context: Context
) -> AsyncIterator[pb.StreamEvent]:
    """The call, counted by the drain and pinned to its config snapshot until it ends."""
    with service._lifecycle.tracked():
        async for event in _events(service, request, context):
            yield event


async def _events(self: _Service, request: object, context: Context) -> AsyncIterator[pb.StreamEvent]:
    request_id = new_request_id()
    headers, observer = self._begin("StreamMessage", context)
    observer.identify(request_id)

    async def start() -> EventStream:
        body = convert.request_from_proto(decoded(request))
        body["stream"] = True
        call = self._call(body, context, "messages", request_id, headers, observer)
        answer = await self._pipeline().messages(call)
        if answer.events is None:
            raise UpstreamProtocolError("the upstream answered a stream request with a single JSON body")
        try:
            await context.send_initial_metadata(header_metadata(answer, request_id))
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
        await abort(context, failure, request_id)
