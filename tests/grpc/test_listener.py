"""The gRPC listener: it serves the Messages service on the configured server (ours, or grpc.aio,
the fallback, with the same answers), or start-up fails loudly."""

from __future__ import annotations

import sys
from typing import Any

import grpc
import msgspec
import pytest
from grpc import aio as grpc_aio
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from sidecar.config import default_config
from sidecar.config.model import AdminListener, GrpcListener, HttpListener, Listeners
from sidecar.grpc import convert
from sidecar.messages.v1 import messages_pb2 as pb
from sidecar.messages.v1 import messages_pb2_grpc as pb_grpc
from sidecar.runtime import Runtime


def _grpc_only() -> Runtime:
    config = msgspec.structs.replace(
        default_config(),
        listeners=Listeners(http=HttpListener(enabled=False), grpc=GrpcListener(port=0)),
        admin=AdminListener(enabled=False),
    )
    return Runtime(config)


async def test_a_broken_servicer_import_fails_start_up(monkeypatch: pytest.MonkeyPatch) -> None:
    # None in sys.modules makes `import sidecar.grpc.servicer` raise ImportError, as a real
    # import error in the servicer (or anything it imports) would.
    monkeypatch.setitem(sys.modules, "sidecar.grpc.servicer", None)
    monkeypatch.delitem(sys.modules, "sidecar.grpc.listener", raising=False)
    runtime = _grpc_only()
    try:
        with pytest.raises(ImportError):
            await runtime.start()
        assert runtime.grpc_port is None and not runtime.ready
    finally:
        await runtime.stop(0)


def test_a_send_after_the_call_ended_is_not_an_error_with_a_traceback() -> None:
    # grpcio logs ERROR with a traceback when a handler's last send fails because the call's
    # deadline passed or its client left as it finished (found by the grpc_fuzz campaign).
    import logging

    from grpc._cython import cygrpc

    from sidecar.grpc.listener import CallEndedFilter

    try:
        raise cygrpc.ExecuteBatchError('Failed "execute_batch"')
    except cygrpc.ExecuteBatchError:
        record = logging.LogRecord(
            "grpc._cython.cygrpc", logging.ERROR, "x", 1, "%s raised by %s", ("E", "m"), sys.exc_info()
        )
    assert CallEndedFilter().filter(record) is False  # DEBUG is off for that logger
    assert record.levelno == logging.DEBUG and record.exc_info is None
    other = logging.LogRecord("grpc._cython.cygrpc", logging.ERROR, "x", 1, "other", (), None)
    assert CallEndedFilter().filter(other) is True and other.levelno == logging.ERROR


async def _exchange(server: str) -> list[Any]:
    """The same calls on a gRPC door running ``server``: a message, a stream, an error, health
    and reflection; what came back, with the parts that differ per call (ids) left out."""
    config = msgspec.structs.replace(
        default_config(),
        listeners=Listeners(http=HttpListener(enabled=False), grpc=GrpcListener(port=0, server=server)),
        admin=AdminListener(enabled=False),
    )
    runtime = Runtime(config)
    await runtime.start()
    seen: list[Any] = []
    try:
        async with grpc_aio.insecure_channel(f"127.0.0.1:{runtime.grpc_port}") as channel:
            stub = pb_grpc.MessagesStub(channel)
            request = convert.request_to_proto(
                {
                    "model": "claude-sonnet-4-6",
                    "max_tokens": 16,
                    "messages": [{"role": "user", "content": "hi"}],
                }
            )
            call = stub.CreateMessage(request, metadata=(("x-api-key", "k"),))
            message = await call
            trailing = dict(await call.trailing_metadata())
            seen.append((message.content[0].text.text, message.usage.output_tokens, sorted(trailing)))
            events = [
                e.WhichOneof("event")
                async for e in stub.StreamMessage(request, metadata=(("x-api-key", "k"),))
            ]
            seen.append(events)
            with pytest.raises(grpc_aio.AioRpcError) as info:
                await stub.CreateMessage(pb.CreateMessageRequest(model="m"), metadata=(("x-api-key", "k"),))
            error = info.value
            seen.append(
                (error.code(), error.details(), dict(error.trailing_metadata())["anthropic-error-type"])
            )
            with pytest.raises(grpc_aio.AioRpcError) as info:
                await channel.unary_unary("/sidecar.messages.v1.Messages/CreateMessage")(b"\xff\xff")
            seen.append((info.value.code(), dict(info.value.trailing_metadata())["anthropic-error-type"]))
            health = health_pb2_grpc.HealthStub(channel)
            answer = await health.Check(health_pb2.HealthCheckRequest(service="sidecar.messages.v1.Messages"))
            seen.append(answer.status)
            reflection = reflection_pb2_grpc.ServerReflectionStub(channel)

            async def ask() -> Any:
                yield reflection_pb2.ServerReflectionRequest(list_services="")
                yield reflection_pb2.ServerReflectionRequest(
                    file_containing_symbol="sidecar.messages.v1.Messages"
                )

            answers = [a async for a in reflection.ServerReflectionInfo(ask())]
            seen.append(sorted(s.name for s in answers[0].list_services_response.service))
            seen.append(len(answers[1].file_descriptor_response.file_descriptor_proto) > 1)
    finally:
        await runtime.stop(0)
    return seen


async def test_the_native_server_answers_as_grpcio_does() -> None:
    """``listeners.grpc.server``: our server (the default) and grpc.aio, the fallback, give a
    client the same answers, statuses and trailers."""
    native = await _exchange("native")
    assert native == await _exchange("grpcio")
    assert native[0][2] == ["request-id", "sidecar-request-id"]
    assert native[2][0] == grpc.StatusCode.INVALID_ARGUMENT
    assert native[3][0] == grpc.StatusCode.INVALID_ARGUMENT  # undecodable bytes: our status, not grpc's
    assert "grpc.reflection.v1alpha.ServerReflection" in native[5] and "grpc.health.v1.Health" in native[5]


def test_without_the_grpcio_fallback_grpc_is_never_imported() -> None:
    """The native door, its servicers, health and reflection load no grpcio (its core is
    ~10 MB resident): checked in a fresh interpreter."""
    import subprocess

    code = (
        "import sys, asyncio\n"
        "from sidecar.grpc import listener, native, servicer, batches, health, reflection\n"
        "assert not [m for m in sys.modules if m == 'grpc' or m.startswith('grpc.')], sorted(sys.modules)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
