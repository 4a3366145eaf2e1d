"""The gRPC door's own server (``sidecar.grpc.native``) with grpcio's client as the peer, and h2
for what grpcio's client does not send (other methods, content types, encodings): statuses,
metadata, deadlines, compression, flow control, drain, and the health service."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
import h2.config
import h2.connection
import h2.events
import pytest
from grpc import aio as grpc_aio
from grpc_health.v1 import health_pb2, health_pb2_grpc

from sidecar.grpc.health import SERVING, HealthServicer, health_methods
from sidecar.grpc.native import GrpcServer
from sidecar.grpc.registry import MethodSpec, ServicerContext
from sidecar.http1.listen import bind_socket


def _same(data: bytes) -> bytes:
    return data


def method(
    name: str, func: Callable[..., Any], *, stream_in: bool = False, stream_out: bool = False
) -> MethodSpec:
    return MethodSpec("test.Raw", name, func, _same, _same, stream_in, stream_out)


class Raw:
    """Methods on raw bytes (no protobuf), each probing one part of the server."""

    def __init__(self) -> None:
        self.metadata: tuple[tuple[str, str | bytes], ...] = ()
        self.remaining: float | None = None
        self.cancelled = asyncio.Event()

    async def Echo(self, request: bytes, context: ServicerContext) -> bytes:
        self.metadata = tuple(context.invocation_metadata() or ())
        self.remaining = context.time_remaining()
        context.set_trailing_metadata((("x-trailer", "t"), ("x-trailer-bin", b"\x00\xff")))
        return request

    async def Big(self, request: bytes, context: ServicerContext) -> bytes:
        return bytes(range(256)) * (int(request) // 256)

    async def Fail(self, request: bytes, context: ServicerContext) -> bytes:
        await context.abort(
            grpc.StatusCode.FAILED_PRECONDITION, "déjà vu 100% \n done", (("x-why", "because"),)
        )
        raise AssertionError("unreachable")

    async def Crash(self, request: bytes, context: ServicerContext) -> bytes:
        raise RuntimeError("a bug")

    async def Hang(self, request: bytes, context: ServicerContext) -> bytes:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.cancelled.set()
            raise
        return b""

    async def Count(self, request: bytes, context: ServicerContext) -> AsyncIterator[bytes]:
        await context.send_initial_metadata((("x-initial", "i"),))
        for i in range(int(request)):
            yield b"%d" % i

    async def Sum(self, requests: AsyncIterator[bytes], context: ServicerContext) -> bytes:
        total = 0
        async for request in requests:
            total += int(request)
        return b"%d" % total

    def methods(self) -> list[MethodSpec]:
        plain = [method(n, getattr(self, n)) for n in ("Echo", "Big", "Fail", "Crash", "Hang")]
        return [
            *plain,
            method("Count", self.Count, stream_out=True),
            method("Sum", self.Sum, stream_in=True),
        ]


@pytest.fixture
async def door() -> AsyncIterator[tuple[GrpcServer, Raw, HealthServicer, str]]:
    raw = Raw()
    health = HealthServicer()
    await health.set("test.Raw", SERVING)
    sock = bind_socket("127.0.0.1", 0)
    server = GrpcServer([*raw.methods(), *health_methods(health)], max_message=1_000_000)
    await server.start(sock)
    yield server, raw, health, f"127.0.0.1:{sock.getsockname()[1]}"
    await server.stop(0.1)


async def call(target: str, name: str, request: bytes, **kwargs: Any) -> tuple[bytes, Any]:
    async with grpc_aio.insecure_channel(target) as channel:
        rpc = channel.unary_unary(f"/test.Raw/{name}")
        call = rpc(request, **kwargs)
        return await call, await call.trailing_metadata()


async def failure(target: str, name: str, request: bytes = b"", **kwargs: Any) -> grpc_aio.AioRpcError:
    with pytest.raises(grpc_aio.AioRpcError) as info:
        await call(target, name, request, **kwargs)
    return info.value


async def test_a_unary_call_with_metadata_both_ways(door: Any) -> None:
    _, raw, _, target = door
    answer, trailing = await call(
        target, "Echo", b"hello", metadata=(("x-key", "v"), ("x-bytes-bin", b"\x01\x02\x03")), timeout=30
    )
    assert answer == b"hello"
    assert dict(trailing)["x-trailer"] == "t" and dict(trailing)["x-trailer-bin"] == b"\x00\xff"
    seen = dict(raw.metadata)
    assert seen["x-key"] == "v" and seen["x-bytes-bin"] == b"\x01\x02\x03"
    assert not [k for k in seen if k.startswith(":") or k in ("te", "content-type", "grpc-timeout")]
    assert raw.remaining is not None and 25 < raw.remaining <= 30


async def test_an_abort_is_the_status_with_its_details_and_trailers(door: Any) -> None:
    _, _, _, target = door
    error = await failure(target, "Fail")
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error.details() == "déjà vu 100% \n done"  # percent-encoded on the wire, decoded back
    assert dict(error.trailing_metadata())["x-why"] == "because"


async def test_a_handler_that_raises_is_unknown_and_logged(
    door: Any, caplog: pytest.LogCaptureFixture
) -> None:
    _, _, _, target = door
    with caplog.at_level(logging.ERROR):
        error = await failure(target, "Crash")
    assert error.code() == grpc.StatusCode.UNKNOWN
    assert [r for r in caplog.records if r.exc_info and "a bug" in str(r.exc_info[1])]


async def test_an_unknown_method_is_unimplemented(door: Any) -> None:
    _, _, _, target = door
    assert (await failure(target, "Nope")).code() == grpc.StatusCode.UNIMPLEMENTED


async def test_a_deadline_cancels_the_handler_and_ends_the_call(door: Any) -> None:
    _, raw, _, target = door
    error = await failure(target, "Hang", timeout=0.3)
    assert error.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    await asyncio.wait_for(raw.cancelled.wait(), 5)


async def test_a_client_that_cancels_cancels_the_handler(door: Any) -> None:
    _, raw, _, target = door
    async with grpc_aio.insecure_channel(target) as channel:
        pending = channel.unary_unary("/test.Raw/Hang")(b"")
        await asyncio.sleep(0.2)
        pending.cancel()
        await asyncio.wait_for(raw.cancelled.wait(), 5)


async def test_compressed_requests_are_read(door: Any) -> None:
    _, _, _, target = door
    for compression in (grpc.Compression.Gzip, grpc.Compression.Deflate):
        answer, _ = await call(target, "Echo", b"z" * 10_000, compression=compression)
        assert answer == b"z" * 10_000


async def test_an_answer_larger_than_the_clients_windows(door: Any) -> None:
    _, _, _, target = door
    answer, _ = await call(target, "Big", b"%d" % 900_000)
    assert answer == bytes(range(256)) * (900_000 // 256)


async def test_messages_over_the_limit_are_resource_exhausted(door: Any) -> None:
    _, _, _, target = door
    error = await failure(target, "Echo", b"x" * 1_000_001)
    # A client error of the door's own, with the trailers the servicers' errors carry.
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    trailers = dict(error.trailing_metadata())
    assert trailers["anthropic-error-type"] == "request_too_large"
    assert (
        trailers["request-id"].startswith("req_") and "larger than max" in trailers["anthropic-error-message"]
    )
    assert (await failure(target, "Big", b"%d" % 2_000_000)).code() == grpc.StatusCode.RESOURCE_EXHAUSTED


async def test_server_and_client_streaming(door: Any) -> None:
    _, _, _, target = door
    async with grpc_aio.insecure_channel(target) as channel:
        stream = channel.unary_stream("/test.Raw/Count")(b"5")
        assert [m async for m in stream] == [b"0", b"1", b"2", b"3", b"4"]
        assert dict(await stream.initial_metadata())["x-initial"] == "i"
        assert await stream.code() == grpc.StatusCode.OK

        async def numbers() -> AsyncIterator[bytes]:
            for i in range(10):
                yield b"%d" % i

        assert await channel.stream_unary("/test.Raw/Sum")(numbers()) == b"45"


async def test_health_check_list_and_watch(door: Any) -> None:
    _, _, health, target = door
    async with grpc_aio.insecure_channel(target) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        answer = await stub.Check(health_pb2.HealthCheckRequest(service="test.Raw"))
        assert answer.status == health_pb2.HealthCheckResponse.SERVING
        with pytest.raises(grpc_aio.AioRpcError) as info:
            await stub.Check(health_pb2.HealthCheckRequest(service="other"))
        assert info.value.code() == grpc.StatusCode.NOT_FOUND
        listed = await stub.List(health_pb2.HealthListRequest())
        assert {k: v.status for k, v in listed.statuses.items()} == {"": SERVING, "test.Raw": SERVING}
        watch = stub.Watch(health_pb2.HealthCheckRequest(service="test.Raw"))
        assert (await watch.read()).status == health_pb2.HealthCheckResponse.SERVING
        await health.enter_graceful_shutdown()
        assert (await watch.read()).status == health_pb2.HealthCheckResponse.NOT_SERVING
        watch.cancel()


async def test_drain_lets_a_call_finish_and_cancels_one_past_the_grace(door: Any) -> None:
    server, raw, _, target = door
    async with grpc_aio.insecure_channel(target) as channel:
        hanging = channel.unary_unary("/test.Raw/Hang")(b"")
        await asyncio.sleep(0.2)
        await asyncio.wait_for(server.stop(0.3), 5)
        with pytest.raises(grpc_aio.AioRpcError) as info:
            await hanging
        assert info.value.code() == grpc.StatusCode.UNAVAILABLE
        assert raw.cancelled.is_set()


async def h2_call(target: str, headers: list[tuple[bytes, bytes]], body: bytes = b"") -> dict[bytes, bytes]:
    """One request by h2; the answer's headers and trailers, merged."""
    host, port = target.split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding=None))
    conn.initiate_connection()
    conn.send_headers(1, headers, end_stream=not body)
    if body:
        conn.send_data(1, body, end_stream=True)
    writer.write(conn.data_to_send())
    fields: dict[bytes, bytes] = {}
    async with asyncio.timeout(5):
        while True:
            data = await reader.read(65536)
            assert data, "closed before the answer ended"
            for event in conn.receive_data(data):
                if isinstance(event, h2.events.ResponseReceived | h2.events.TrailersReceived):
                    fields.update(dict(event.headers))
                if isinstance(event, h2.events.StreamEnded):
                    writer.close()
                    return fields
            writer.write(conn.data_to_send())


BASE = [(b":method", b"POST"), (b":scheme", b"http"), (b":path", b"/test.Raw/Echo"), (b":authority", b"x")]


async def test_what_grpcio_never_sends(door: Any) -> None:
    _, _, _, target = door
    message = b"\x00\x00\x00\x00\x02hi"
    grpc_ct = (b"content-type", b"application/grpc")
    answer = await h2_call(target, [*BASE, grpc_ct], message)
    assert answer[b":status"] == b"200" and answer[b"grpc-status"] == b"0"
    answer = await h2_call(target, [(b":method", b"GET"), *BASE[1:], grpc_ct])
    assert answer[b":status"] == b"405"
    answer = await h2_call(target, [*BASE, (b"content-type", b"application/json")], b"{}")
    assert answer[b":status"] == b"415"
    answer = await h2_call(target, [*BASE, grpc_ct, (b"grpc-encoding", b"snappy")], message)
    assert answer[b"grpc-status"] == b"12" and b"gzip" in answer[b"grpc-accept-encoding"]
    answer = await h2_call(target, [*BASE, grpc_ct])  # no message at all
    assert answer[b"grpc-status"] == b"13"
    answer = await h2_call(target, [*BASE, grpc_ct], message[:5])  # a message cut short
    assert answer[b"grpc-status"] == b"13"
    answer = await h2_call(target, [*BASE, grpc_ct, (b"x-big", b"v" * 20_000)], message)
    assert answer[b"grpc-status"] == b"8"  # metadata over the limit
    assert answer[b"anthropic-error-type"] == b"request_too_large"
    answer = await h2_call(target, [*BASE, grpc_ct], b"\x01\x00\x00\x00\x02hi")  # compressed, no encoding
    assert answer[b"grpc-status"] == b"13"
    bomb = b"\x01" + (10).to_bytes(4, "big") + b"not gzip!!"
    answer = await h2_call(target, [*BASE, grpc_ct, (b"grpc-encoding", b"gzip")], bomb)
    assert answer[b"grpc-status"] == b"13"
