"""The gRPC listener: grpc.aio serving the Messages and Batches servicers, grpc.health.v1 and
reflection."""

from __future__ import annotations

import logging
from typing import Any

from grpc import aio as grpc_aio
from grpc._cython import cygrpc  # type: ignore[attr-defined]  # untyped
from grpc_health.v1 import _async as health_aio
from grpc_health.v1 import health_pb2
from grpc_reflection.v1alpha import _async as reflection_aio
from grpc_reflection.v1alpha import reflection, reflection_pb2

from ..batches import Batches
from ..lifecycle import Lifecycle
from ..telemetry import Telemetry
from .batches import add_batches_service
from .servicer import add_messages_service, add_service

__all__ = ["CallEndedFilter", "start_grpc"]


class CallEndedFilter(logging.Filter):
    """grpcio logs an ERROR with a traceback when a handler's last send fails because the call
    already ended: its deadline passed or its client left just as the handler finished (a race
    the handler cannot close). Nothing is wrong on our side then: one line at DEBUG instead."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, cygrpc.ExecuteBatchError):
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
            record.msg, record.args = "a call ended before its answer was sent: %s", (record.getMessage(),)
            record.exc_info, record.exc_text = None, None
            return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)
        return True


async def start_grpc(
    lifecycle: Lifecycle,
    telemetry: Telemetry,
    host: str,
    port: int,
    max_message: int,
    *,
    batches: Batches | None = None,
    http_origin: str = "",
) -> tuple[Any, int]:
    """Start grpc.aio on the running loop; returns the server and the bound port. ``batches``:
    the process's Message Batches (the HTTP door's), served as the Batches service, with
    ``results_url`` on ``http_origin`` (the HTTP door's; "": none, the bare path)."""
    # Accept messages as large as the HTTP door does (gRPC's default 4 MB would refuse them).
    grpc_log = logging.getLogger("grpc._cython.cygrpc")
    if not any(isinstance(f, CallEndedFilter) for f in grpc_log.filters):
        grpc_log.addFilter(CallEndedFilter())
    options = [
        ("grpc.max_receive_message_length", max_message),
        ("grpc.max_send_message_length", max_message),
        ("grpc.so_reuseport", 0),
    ]
    server = grpc_aio.server(options=options)
    # The API's services first: grpc asks the generic handlers in the order they were added.
    services = [add_messages_service(server, lifecycle, telemetry)]
    if batches is not None:
        services.append(add_batches_service(server, batches, lifecycle, http_origin=http_origin))
    # Health and reflection with grpcio's own deserializers, registered the way ours are
    # (``add_service``: generic handlers, which keep grpc.aio's per-call work flat).
    health_servicer = health_aio.HealthServicer()
    services.append(add_service(server, health_servicer, _service(health_pb2, "Health"), _plain))
    reflection_servicer = reflection_aio.ReflectionServicer([*services, reflection.SERVICE_NAME])
    add_service(server, reflection_servicer, _service(reflection_pb2, "ServerReflection"), _plain)
    target = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    bound = server.add_insecure_port(target)
    if bound == 0:
        raise OSError(f"cannot bind gRPC to {target}")
    await server.start()
    await health_servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    for name in services:  # reflection has no health status of its own, as before
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    return server, bound


def _service(module: Any, name: str) -> Any:
    return module.DESCRIPTOR.services_by_name[name]


def _plain(cls: Any) -> Any:
    return cls.FromString
