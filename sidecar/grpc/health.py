"""``grpc.health.v1.Health`` without grpcio: ``Check`` and ``Watch`` over a status per service
name ("" is the whole server), as grpcio-health-checking's asyncio servicer answers them, and
``List`` (which that servicer leaves UNIMPLEMENTED)."""

from __future__ import annotations

import asyncio
from collections import defaultdict

from grpc_health.v1 import health_pb2

from ..errors import GRPC_STATUS_CODES
from .registry import MethodSpec, ServicerContext, plain_deserializer, service_methods

__all__ = ["HealthServicer", "health_methods"]

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
SERVICE_UNKNOWN = health_pb2.HealthCheckResponse.SERVICE_UNKNOWN
_NOT_FOUND = GRPC_STATUS_CODES["NOT_FOUND"]


class HealthServicer:
    def __init__(self) -> None:
        self._status: dict[str, int] = {"": SERVING}
        self._changed: defaultdict[str, asyncio.Condition] = defaultdict(asyncio.Condition)
        self._shutting_down = False

    async def Check(
        self, request: health_pb2.HealthCheckRequest, context: ServicerContext
    ) -> health_pb2.HealthCheckResponse:
        status = self._status.get(request.service)
        if status is None:
            await context.abort(_NOT_FOUND)
        return health_pb2.HealthCheckResponse(status=status)

    async def List(
        self, request: health_pb2.HealthListRequest, context: ServicerContext
    ) -> health_pb2.HealthListResponse:
        """Every service's status now."""
        response = health_pb2.HealthListResponse()
        for service, status in self._status.items():
            response.statuses[service].status = status
        return response

    async def Watch(self, request: health_pb2.HealthCheckRequest, context: ServicerContext) -> None:
        """The service's status now, then each change (SERVICE_UNKNOWN while it has none)."""
        condition = self._changed[request.service]
        last: int | None = None
        async with condition:
            while True:
                status = self._status.get(request.service, SERVICE_UNKNOWN)
                if status != last:
                    await context.write(health_pb2.HealthCheckResponse(status=status))
                    last = status
                await condition.wait()

    async def set(self, service: str, status: int) -> None:
        if self._shutting_down:
            return
        await self._set(service, status)

    async def _set(self, service: str, status: int) -> None:
        condition = self._changed.get(service)
        if condition is None:
            self._status[service] = status
            return
        async with condition:
            self._status[service] = status
            condition.notify_all()

    async def enter_graceful_shutdown(self) -> None:
        """Every service NOT_SERVING from now on; later ``set`` calls are ignored."""
        if self._shutting_down:
            return
        self._shutting_down = True
        for service in list(self._status):
            await self._set(service, NOT_SERVING)


def health_methods(servicer: HealthServicer) -> list[MethodSpec]:
    return service_methods(servicer, health_pb2.DESCRIPTOR.services_by_name["Health"], plain_deserializer)
