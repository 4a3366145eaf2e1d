"""The gRPC listener: the Messages and Batches servicers, grpc.health.v1 and reflection, on the
configured server: our own (``sidecar.grpc.native``, the default) or grpc.aio
(``sidecar.grpc.grpcio``, ``listeners.grpc.server: grpcio``)."""

from __future__ import annotations

import logging
from typing import Any, Literal

from ..batches import Batches
from ..http1.listen import bind_socket
from ..lifecycle import Lifecycle
from ..telemetry import Telemetry
from .batches import batches_methods
from .health import SERVING, HealthServicer, health_methods
from .reflection import SERVICE_NAME as REFLECTION
from .reflection import ReflectionServicer, reflection_methods
from .servicer import messages_methods

__all__ = ["start_grpc"]

GrpcServerKind = Literal["native", "grpcio"]


def __getattr__(name: str) -> Any:
    if name == "CallEndedFilter":  # grpcio's log filter, from its module (which imports grpc)
        from .grpcio import CallEndedFilter

        return CallEndedFilter
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


async def start_grpc(
    lifecycle: Lifecycle,
    telemetry: Telemetry,
    host: str,
    port: int,
    max_message: int,
    *,
    batches: Batches | None = None,
    http_origin: str = "",
    server: GrpcServerKind = "native",
) -> tuple[Any, int]:
    """Start the gRPC door on the running loop; returns the server (``stop(grace)``) and the
    bound port. ``batches``: the process's Message Batches (the HTTP door's), served as the
    Batches service, with ``results_url`` on ``http_origin`` (the HTTP door's; "": none, the
    bare path). Messages and sizes up to ``max_message`` bytes, as the HTTP door accepts."""
    # The API's services first.
    methods = messages_methods(lifecycle, telemetry)
    if batches is not None:
        methods += batches_methods(batches, lifecycle, http_origin=http_origin)
    services = list(dict.fromkeys(m.service for m in methods))
    health = HealthServicer()
    methods += health_methods(health)
    services.append(methods[-1].service)
    methods += reflection_methods(ReflectionServicer([*services, REFLECTION]))
    if server == "grpcio":
        from .grpcio import start_grpcio

        target = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        started, bound = await start_grpcio(methods, target, max_message)
    else:
        from .native import GrpcServer

        sock = bind_socket(host, port)
        bound = sock.getsockname()[1]
        started = GrpcServer(methods, max_message)
        await started.start(sock)
    for name in ("", *services):  # reflection has no health status of its own, as before
        await health.set(name, SERVING)
    logging.getLogger("sidecar.grpc").debug("gRPC door on %s server, %d methods", server, len(methods))
    return started, bound
