"""``grpc.reflection.v1alpha.ServerReflection`` without grpcio (what grpcurl and Postman ask):
the services served, and the protobuf files that describe them with their dependencies, from
the default descriptor pool, as grpcio-reflection answers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool
from grpc_reflection.v1alpha import reflection_pb2 as rpb

from ..errors import GRPC_STATUS_CODES
from .registry import MethodSpec, ServicerContext, plain_deserializer, service_methods

__all__ = ["SERVICE_NAME", "ReflectionServicer", "reflection_methods"]

SERVICE_NAME: str = rpb.DESCRIPTOR.services_by_name["ServerReflection"].full_name
_NOT_FOUND = GRPC_STATUS_CODES["NOT_FOUND"]
_INVALID_ARGUMENT = GRPC_STATUS_CODES["INVALID_ARGUMENT"]


def _error(request: Any, code: int, message: str) -> Any:
    return rpb.ServerReflectionResponse(
        error_response=rpb.ErrorResponse(error_code=code, error_message=message),
        original_request=request,
    )


class ReflectionServicer:
    def __init__(self, service_names: Iterable[str], pool: Any = None) -> None:
        self._service_names = tuple(sorted(service_names))
        self._pool = descriptor_pool.Default() if pool is None else pool

    async def ServerReflectionInfo(
        self, requests: AsyncIterator[Any], context: ServicerContext
    ) -> AsyncIterator[Any]:
        async for request in requests:
            yield self._answer(request)

    def _answer(self, request: Any) -> Any:
        pool = self._pool
        kind = request.WhichOneof("message_request")
        try:
            if kind == "file_by_filename":
                return self._files(request, pool.FindFileByName(request.file_by_filename))
            if kind == "file_containing_symbol":
                return self._files(request, pool.FindFileContainingSymbol(request.file_containing_symbol))
            if kind == "file_containing_extension":
                ask = request.file_containing_extension
                message = pool.FindMessageTypeByName(ask.containing_type)
                extension = pool.FindExtensionByNumber(message, ask.extension_number)
                return self._files(request, pool.FindFileContainingSymbol(extension.full_name))
            if kind == "all_extension_numbers_of_type":
                message = pool.FindMessageTypeByName(request.all_extension_numbers_of_type)
                numbers = sorted(extension.number for extension in pool.FindAllExtensions(message))
                return rpb.ServerReflectionResponse(
                    all_extension_numbers_response=rpb.ExtensionNumberResponse(
                        base_type_name=message.full_name, extension_number=numbers
                    ),
                    original_request=request,
                )
        except KeyError:
            return _error(request, _NOT_FOUND, "Not found")
        if kind == "list_services":
            return rpb.ServerReflectionResponse(
                list_services_response=rpb.ListServiceResponse(
                    service=[rpb.ServiceResponse(name=name) for name in self._service_names]
                ),
                original_request=request,
            )
        return _error(request, _INVALID_ARGUMENT, "Invalid argument")

    def _files(self, request: Any, descriptor: Any) -> Any:
        """``descriptor``'s file and every file it depends on, transitively."""
        files: dict[str, Any] = {}
        pending = [descriptor]
        while pending:
            current = pending.pop()
            if current.name in files:
                continue
            files[current.name] = current
            pending.extend(current.dependencies)
        serialized = []
        for file in files.values():
            proto = descriptor_pb2.FileDescriptorProto()
            file.CopyToProto(proto)
            serialized.append(proto.SerializeToString())
        return rpb.ServerReflectionResponse(
            file_descriptor_response=rpb.FileDescriptorResponse(file_descriptor_proto=serialized),
            original_request=request,
        )


def reflection_methods(servicer: ReflectionServicer) -> list[MethodSpec]:
    return service_methods(servicer, rpb.DESCRIPTOR.services_by_name["ServerReflection"], plain_deserializer)
