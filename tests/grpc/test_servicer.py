"""The gRPC servicer in process, with a stand-in for grpc.aio's context: what it does at the
edges of a call that a socket cannot time precisely."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from typing import Any

import pytest

from sidecar.config.load import build_config
from sidecar.core import Answer, Call, EventStream, RequestObserver, StreamEvent, Target
from sidecar.grpc import convert
from sidecar.grpc.servicer import MessagesService
from sidecar.lifecycle import Lifecycle
from sidecar.pipeline import Pipeline
from sidecar.telemetry import NOOP_TELEMETRY, Telemetry
from tests.conftest import MOCK_CONFIG
from tests.core.test_grammar import START
from tests.inprocess import pipeline

KEY = "sk-servicer-test"


class CancelledAtMetadata:
    """A call whose client goes away just as the answer's metadata would be sent."""

    def invocation_metadata(self) -> tuple[tuple[str, str], ...]:
        return (("x-api-key", KEY),)

    def time_remaining(self) -> float | None:
        return None

    async def send_initial_metadata(self, metadata: Any) -> None:
        raise asyncio.CancelledError

    def set_trailing_metadata(self, metadata: Any) -> None:
        pass

    async def abort(self, code: Any, details: str) -> None:
        raise AssertionError(f"aborted: {code} {details}")


async def test_a_stream_cancelled_before_its_first_event_closes_it_and_frees_the_lease() -> None:
    # Found by the cancellation storm (python -m reliability storm): a gRPC client that left
    # just as its stream's metadata was sent kept its key's concurrency lease held for good,
    # and the upstream request open until garbage collection.
    config = build_config(
        {
            "upstreams": {"m": {"provider": "mock"}},
            "routes": [{"match": "*", "upstream": "m"}],
            "admission": {
                "queue": {"max_wait": 0},
                "tiers": {"one": {"concurrency": 1}},
                "keys": [{"name": "a", "sha256": hashlib.sha256(KEY.encode()).hexdigest(), "tier": "one"}],
            },
        }
    )
    pipeline = Pipeline(config)
    service = MessagesService(Lifecycle(pipeline), NOOP_TELEMETRY)
    request = convert.request_to_proto(
        {"model": "claude-sonnet-4-6", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}
    )
    assert pipeline.admission is not None
    for _ in range(2):  # with the lease leaked, the second would be refused (concurrency 1)
        with pytest.raises(asyncio.CancelledError):
            async for _event in service.StreamMessage(request, CancelledAtMetadata()):
                pass
        assert pipeline.admission.limiter.held_by_key() == {}
    await pipeline.aclose()


class Aborted(Exception):
    pass


class WithMetadata:
    """A call with the given metadata; ``abort`` records the status and trailers."""

    def __init__(self, metadata: tuple[tuple[str, str], ...]) -> None:
        self.metadata = metadata
        self.trailers: dict[str, str] = {}
        self.status: tuple[Any, str] | None = None

    def invocation_metadata(self) -> tuple[tuple[str, str], ...]:
        return self.metadata

    def time_remaining(self) -> float | None:
        return None

    async def send_initial_metadata(self, metadata: Any) -> None:
        pass

    def set_trailing_metadata(self, metadata: Any) -> None:
        self.trailers = dict(metadata)

    async def abort(self, code: Any, details: str) -> None:
        self.status = (code, details)
        raise Aborted


@pytest.mark.parametrize("value", ["a\r\nx-injected: 1", "a\nb", "2023-06-01\r", "a\x00b", "a\x7fb"])
async def test_metadata_with_control_characters_is_invalid_argument(value: str) -> None:
    # Found by the sweep campaign (raw HTTP/2: grpcio's client refuses such metadata, gRPC's
    # core on the server passes it): CR/LF made the upstream client raise ValueError, the
    # sidecar's own INTERNAL "Internal server error" with a traceback; a NUL reached the
    # upstream as a malformed request.
    import grpc

    config = build_config(
        {"upstreams": {"m": {"provider": "mock"}}, "routes": [{"match": "*", "upstream": "m"}]}
    )
    pipeline = Pipeline(config)
    service = MessagesService(Lifecycle(pipeline), NOOP_TELEMETRY)
    request = convert.request_to_proto(
        {"model": "claude-sonnet-4-6", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}
    )
    from sidecar.messages.v1 import messages_pb2 as pb

    calls = [
        lambda ctx: service.CreateMessage(request, ctx),
        lambda ctx: service.CountTokens(pb.CountTokensRequest(model="m", messages=request.messages), ctx),
        lambda ctx: service.ListModels(pb.ListModelsRequest(), ctx),
        lambda ctx: service.GetModel(pb.GetModelRequest(model_id="claude-sonnet-4-6"), ctx),
    ]
    for call in calls:
        context = WithMetadata((("x-api-key", KEY), ("anthropic-beta", value)))
        with pytest.raises(Aborted):
            await call(context)
        assert context.status is not None and context.status[0] == grpc.StatusCode.INVALID_ARGUMENT.value[0]
        assert context.trailers["anthropic-error-type"] == "invalid_request_error"
        assert "control character" in context.trailers["anthropic-error-message"]
    context = WithMetadata((("x-api-key", KEY), ("anthropic-beta", value)))
    with pytest.raises(Aborted):
        async for _event in service.StreamMessage(request, context):
            pass
    assert context.status is not None and context.status[0] == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    # A tab and non-ASCII text are field content like any other.
    fine = WithMetadata((("x-api-key", KEY), ("anthropic-beta", "a\tb, caf\u00e9")))
    assert (await service.CreateMessage(request, fine)).content
    await pipeline.aclose()


class ControlInMetadata(CancelledAtMetadata):
    """A call whose metadata value holds a CR (grpcio's client refuses it; raw HTTP/2 does not)."""

    def __init__(self) -> None:
        self.aborted: tuple[Any, str] | None = None
        self.trailers: Any = None

    def invocation_metadata(self) -> tuple[tuple[str, str], ...]:
        return (("x-api-key", KEY), ("anthropic-beta", "a\r\nx-injected: 1"))

    def set_trailing_metadata(self, metadata: Any) -> None:
        self.trailers = metadata

    async def abort(self, code: Any, details: str) -> None:
        self.aborted = (code, details)
        raise asyncio.CancelledError  # grpc.aio's abort ends the handler with an exception


async def test_batches_refuse_control_characters_in_metadata_as_messages_do(tmp_path: Any) -> None:
    # The Messages service refused them (found by the sweep); the Batches service forwarded them
    # to the upstream of a forwarded batch. Both now clean the call's metadata the same way.
    import grpc

    from sidecar.batches import Batches
    from sidecar.grpc.batches import BatchesService
    from sidecar.messages.v1 import batches_pb2 as bpb

    config = build_config(
        {
            "upstreams": {"m": {"provider": "mock"}},
            "routes": [{"match": "*", "upstream": "m"}],
            "batches": {"dir": str(tmp_path)},
        }
    )
    lifecycle = Lifecycle(Pipeline(config))
    service = BatchesService(Batches(config.batches, lifecycle), lifecycle)
    context = ControlInMetadata()
    with pytest.raises(asyncio.CancelledError):
        await service.GetBatch(bpb.GetBatchRequest(batch_id="msgbatch_x"), context)
    assert context.aborted is not None and context.aborted[0] == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert "control character" in context.aborted[1]


class Recorded(RequestObserver):
    """A request's telemetry that records how it was finished."""

    def __init__(self) -> None:
        self.finished: list[tuple[BaseException | None, bool]] = []

    def finish(self, error: BaseException | None = None, *, cancelled: bool = False) -> None:
        self.finished.append((error, cancelled))


class Recording(Telemetry):
    def __init__(self) -> None:
        self.requests: list[Recorded] = []

    def begin(self, door: str, method: str, headers: Any) -> RequestObserver:
        self.requests.append(Recorded())
        return self.requests[-1]


async def test_a_stream_cancelled_while_closing_its_upstream_still_ends_its_telemetry() -> None:
    # Found by the cancellation storm (python -m reliability storm): a gRPC client that left
    # after the last event, while the answer's upstream was being closed, left the request
    # counted in flight (sidecar_requests_in_flight) for good.
    closing, never = asyncio.Event(), asyncio.Event()

    async def handler(call: Call, target: Target) -> Answer:
        async def events() -> AsyncIterator[StreamEvent]:
            delta = {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn"},
                "usage": {"output_tokens": 1},
            }
            for data in (START, delta, {"type": "message_stop"}):
                yield StreamEvent(data["type"], data)

        async def close() -> None:
            closing.set()
            await never.wait()  # the upstream connection takes its time to close

        return Answer(events=EventStream.of_events(events(), close), upstream="handler")

    p = pipeline(MOCK_CONFIG, m=handler)
    telemetry = Recording()
    service = MessagesService(Lifecycle(p), telemetry)
    request = convert.request_to_proto(
        {"model": "claude-sonnet-4-6", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}
    )

    async def client() -> None:
        async for _event in service.StreamMessage(request, WithMetadata(())):
            pass

    task = asyncio.create_task(client())
    await closing.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert [r.finished for r in telemetry.requests] == [[(None, True)]]
    await p.aclose()
