"""What a gRPC server needs of a servicer, whichever server runs it: its methods (``MethodSpec``,
from the service's descriptor) and the context a method is called with (``ServicerContext``,
the part of grpc.aio's that our servicers use, which ``sidecar.grpc.native`` implements too).

No grpc import here: with the native server (``listeners.grpc.server: native``) grpcio is never
loaded.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from google.protobuf import message_factory
from google.protobuf.descriptor import ServiceDescriptor
from google.protobuf.message import DecodeError

__all__ = [
    "MethodSpec",
    "ServicerContext",
    "Undecodable",
    "plain_deserializer",
    "service_methods",
    "tolerant_deserializer",
]

Metadata = Sequence[tuple[str, str | bytes]]


class ServicerContext(Protocol):
    """The call's side of a method: its metadata and deadline, and how it ends."""

    def invocation_metadata(self) -> Metadata | None: ...

    def time_remaining(self) -> float | None: ...

    def set_trailing_metadata(self, trailing_metadata: Metadata) -> None: ...

    async def send_initial_metadata(self, initial_metadata: Metadata) -> None: ...

    async def abort(self, code: Any, details: str = "", trailing_metadata: Metadata = ()) -> Any: ...

    async def write(self, message: Any) -> None: ...


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


def plain_deserializer(cls: Any) -> Callable[[bytes], Any]:
    """``cls.FromString``: an undecodable request fails the call (health, reflection)."""
    parse: Callable[[bytes], Any] = cls.FromString
    return parse


@dataclass(frozen=True, slots=True)
class MethodSpec:
    """One method of a service, as a server registers it."""

    service: str  # the service's full name
    name: str
    func: Callable[..., Any]  # the servicer's bound method
    deserialize: Callable[[bytes], Any]
    serialize: Callable[[Any], bytes]
    client_streaming: bool
    server_streaming: bool

    @property
    def path(self) -> str:
        return f"/{self.service}/{self.name}"


def service_methods(
    servicer: Any,
    service: ServiceDescriptor,
    deserializer: Callable[[Any], Callable[[bytes], Any]] = tolerant_deserializer,
) -> list[MethodSpec]:
    """``servicer``'s methods for every method of ``service`` (any cardinality). ``deserializer``
    makes each request deserializer from the request's message class: the default lets an
    undecodable request reach the method, which answers INVALID_ARGUMENT with its trailers."""
    methods = []
    for method in service.methods:
        request = message_factory.GetMessageClass(method.input_type)
        response = message_factory.GetMessageClass(method.output_type)
        methods.append(
            MethodSpec(
                service=service.full_name,
                name=method.name,
                func=getattr(servicer, method.name),
                deserialize=deserializer(request),
                serialize=response.SerializeToString,
                client_streaming=method.client_streaming,
                server_streaming=method.server_streaming,
            )
        )
    return methods
