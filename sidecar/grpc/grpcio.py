"""The gRPC door on grpcio (``listeners.grpc.server: grpcio``): grpc.aio on the running loop.
The server the door ran on until the native one (``sidecar.grpc.native``); kept as a fallback
while the native one proves itself."""

from __future__ import annotations

import logging
from typing import Any

import grpc
from grpc import aio as grpc_aio

from .registry import MethodSpec

__all__ = ["CallEndedFilter", "start_grpcio"]

_HANDLER_KINDS = {  # (client streaming, server streaming) -> grpc's handler factory
    (False, False): grpc.unary_unary_rpc_method_handler,
    (False, True): grpc.unary_stream_rpc_method_handler,
    (True, False): grpc.stream_unary_rpc_method_handler,
    (True, True): grpc.stream_stream_rpc_method_handler,
}


class CallEndedFilter(logging.Filter):
    """grpcio logs an ERROR with a traceback when a handler's last send fails because the call
    already ended: its deadline passed or its client left just as the handler finished (a race
    the handler cannot close). Nothing is wrong on our side then: one line at DEBUG instead."""

    def filter(self, record: logging.LogRecord) -> bool:
        from grpc._cython import cygrpc  # type: ignore[attr-defined]  # untyped

        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, cygrpc.ExecuteBatchError):
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
            record.msg, record.args = "a call ended before its answer was sent: %s", (record.getMessage(),)
            record.exc_info, record.exc_text = None, None
            return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)
        return True


async def start_grpcio(methods: list[MethodSpec], target: str, max_message: int) -> tuple[Any, int]:
    """grpc.aio serving ``methods`` on ``target`` (host:port); returns the server and its port.

    Generic handlers only, no registered methods: grpc.aio's server (1.85) keeps one pending
    request per *registered* method and awaits them all with ``asyncio.wait`` for every incoming
    call (about 940 Python opcodes per call with our 15 methods); a generic handler is one dict
    lookup. grpc asks the generic handlers in the order they were added.
    """
    grpc_log = logging.getLogger("grpc._cython.cygrpc")
    if not any(isinstance(f, CallEndedFilter) for f in grpc_log.filters):
        grpc_log.addFilter(CallEndedFilter())
    options = [
        ("grpc.max_receive_message_length", max_message),
        ("grpc.max_send_message_length", max_message),
        ("grpc.so_reuseport", 0),
    ]
    server = grpc_aio.server(options=options)
    by_service: dict[str, dict[str, Any]] = {}
    for method in methods:
        make = _HANDLER_KINDS[method.client_streaming, method.server_streaming]
        by_service.setdefault(method.service, {})[method.name] = make(
            method.func,
            request_deserializer=method.deserialize,
            response_serializer=method.serialize,
        )
    server.add_generic_rpc_handlers(
        tuple(grpc.method_handlers_generic_handler(name, handlers) for name, handlers in by_service.items())
    )
    bound = server.add_insecure_port(target)
    if bound == 0:
        raise OSError(f"cannot bind gRPC to {target}")
    await server.start()
    return server, bound
