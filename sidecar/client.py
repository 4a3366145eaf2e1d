"""A small Python client for the gRPC door, shaped like the anthropic SDK.

``messages.create(...)`` takes the keyword arguments of ``anthropic.Anthropic().messages.create``
and returns the same JSON Message as a dict; ``messages.stream(...)`` yields the stream's event
dicts (exactly what the SSE ``data:`` lines would hold). Internal services get the gRPC door
without writing protos::

    from sidecar.client import Client

    with Client("127.0.0.1:50051", api_key="...") as client:
        message = client.messages.create(model="claude-sonnet-4-6", max_tokens=256,
                                         messages=[{"role": "user", "content": "Hello"}])
        for event in client.messages.stream(model="claude-sonnet-4-6", max_tokens=256,
                                            messages=[{"role": "user", "content": "Hi"}]):
            ...

Message Batches are ``client.messages.batches``, as in the SDK (service
``sidecar.messages.v1.Batches``): ``create(requests=[...])``, ``retrieve(id)``, ``list(limit=,
after_id=, before_id=)`` (one page: ``{"data", "has_more", "first_id", "last_id"}``),
``cancel(id)``, ``delete(id)`` return the JSON objects as dicts; ``results(id)`` yields each
results line (``{"custom_id", "result"}``) as it is streamed from the sidecar's store.

``AsyncClient`` is the same on grpc.aio. A failed call raises ``SidecarAPIError`` with the
Anthropic error ``type``, ``message``, ``request_id`` and the gRPC ``code``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from typing import Any

import grpc
from grpc import aio as grpc_aio

from .grpc import convert
from .messages.v1 import batches_pb2 as bpb
from .messages.v1 import batches_pb2_grpc as bpb_grpc
from .messages.v1 import messages_pb2 as pb
from .messages.v1 import messages_pb2_grpc as pb_grpc

__all__ = ["AsyncClient", "Client", "SidecarAPIError"]

# SDK keyword arguments that are not body fields.
_OPTIONS = ("extra_headers", "extra_body", "extra_query", "timeout", "betas")
_DEFAULT_VERSION = "2023-06-01"
_MAX_MESSAGE = 64 * 1024 * 1024


class SidecarAPIError(Exception):
    """A call ended with an error status; the Anthropic error details come from the trailers."""

    def __init__(self, code: grpc.StatusCode, error_type: str, message: str, request_id: str | None) -> None:
        super().__init__(f"{code.name}: {error_type}: {message}")
        self.code = code
        self.type = error_type
        self.message = message
        self.request_id = request_id


def _error(exc: grpc.RpcError) -> SidecarAPIError:
    call: Any = exc  # a grpc.Call (sync) or an AioRpcError: both have code/details/trailers
    trailers: dict[str, Any] = {key: value for key, value in call.trailing_metadata() or ()}
    request_id = trailers.get("request-id")
    return SidecarAPIError(
        call.code(),
        str(trailers.get("anthropic-error-type", "api_error")),
        str(trailers.get("anthropic-error-message", call.details())),
        request_id if isinstance(request_id, str) else None,
    )


def _unary(rpc: Any, request: Any, metadata: list[tuple[str, str]], timeout: float | None) -> Any:
    """One unary call; a failure as ``SidecarAPIError``."""
    try:
        return rpc(request, metadata=metadata, timeout=timeout)
    except grpc.RpcError as exc:
        raise _error(exc) from None


async def _aunary(rpc: Any, request: Any, metadata: list[tuple[str, str]], timeout: float | None) -> Any:
    """One unary call on an aio channel; a failure as ``SidecarAPIError``."""
    try:
        return await rpc(request, metadata=metadata, timeout=timeout)
    except grpc.RpcError as exc:
        raise _error(exc) from None


class _Base:
    def __init__(
        self,
        target: str = "127.0.0.1:50051",
        *,
        api_key: str | None = None,
        auth_token: str | None = None,
        default_headers: dict[str, str] | None = None,
        timeout: float | None = 600.0,
    ) -> None:
        self.target = target
        headers = {"anthropic-version": _DEFAULT_VERSION}
        if api_key:
            headers["x-api-key"] = api_key
        if auth_token:
            headers["authorization"] = f"Bearer {auth_token}"
        headers.update({k.lower(): v for k, v in (default_headers or {}).items()})
        self._headers = headers
        self.timeout = timeout
        self._options = [
            ("grpc.max_receive_message_length", _MAX_MESSAGE),
            ("grpc.max_send_message_length", _MAX_MESSAGE),
        ]

    def _prepare(self, kwargs: dict[str, Any]) -> tuple[dict[str, Any], list[tuple[str, str]], float | None]:
        """SDK-style kwargs -> (body, metadata, timeout)."""
        body = {k: v for k, v in kwargs.items() if k not in _OPTIONS and v is not None}
        body.update(kwargs.get("extra_body") or {})
        headers = dict(self._headers)
        betas: Sequence[str] | None = kwargs.get("betas")
        if betas:
            headers["anthropic-beta"] = ",".join(betas)
        headers.update({k.lower(): v for k, v in (kwargs.get("extra_headers") or {}).items()})
        timeout = kwargs.get("timeout", self.timeout)
        return body, list(headers.items()), timeout if isinstance(timeout, int | float) else self.timeout

    def _call_options(self, options: dict[str, Any]) -> tuple[list[tuple[str, str]], float | None]:
        """(metadata, timeout) of a call without a body: only the SDK's request options."""
        unknown = sorted(set(options) - set(_OPTIONS))
        if unknown:
            raise TypeError(f"unexpected keyword argument {unknown[0]!r}")
        _, metadata, timeout = self._prepare(options)
        return metadata, timeout


def _list_batches_request(
    limit: int | None, after_id: str | None, before_id: str | None, options: dict[str, Any]
) -> bpb.ListBatchesRequest:
    params = {"limit": limit, "after_id": after_id, "before_id": before_id}
    params = {k: v for k, v in params.items() if v is not None}
    params.update(options.pop("extra_query", None) or {})
    return convert.list_batches_request_to_proto(params)


class _Batches:
    """``client.messages.batches``: the Batches service, shaped like the SDK's."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def create(self, *, requests: Iterable[dict[str, Any]], **options: Any) -> dict[str, Any]:
        body, metadata, timeout = self._client._prepare({**options, "requests": list(requests)})
        reply = _unary(
            self._client._batches.CreateBatch, convert.create_batch_request_to_proto(body), metadata, timeout
        )
        return convert.batch_from_proto(reply)

    def retrieve(self, message_batch_id: str, **options: Any) -> dict[str, Any]:
        metadata, timeout = self._client._call_options(options)
        reply = _unary(
            self._client._batches.GetBatch, bpb.GetBatchRequest(batch_id=message_batch_id), metadata, timeout
        )
        return convert.batch_from_proto(reply)

    def list(
        self,
        *,
        limit: int | None = None,
        after_id: str | None = None,
        before_id: str | None = None,
        **options: Any,
    ) -> dict[str, Any]:
        """One page, newest first; ``after_id=page["last_id"]`` gives the next."""
        request = _list_batches_request(limit, after_id, before_id, options)
        metadata, timeout = self._client._call_options(options)
        reply = _unary(self._client._batches.ListBatches, request, metadata, timeout)
        return convert.list_batches_response_from_proto(reply)

    def cancel(self, message_batch_id: str, **options: Any) -> dict[str, Any]:
        metadata, timeout = self._client._call_options(options)
        reply = _unary(
            self._client._batches.CancelBatch,
            bpb.CancelBatchRequest(batch_id=message_batch_id),
            metadata,
            timeout,
        )
        return convert.batch_from_proto(reply)

    def delete(self, message_batch_id: str, **options: Any) -> dict[str, Any]:
        metadata, timeout = self._client._call_options(options)
        reply = _unary(
            self._client._batches.DeleteBatch,
            bpb.DeleteBatchRequest(batch_id=message_batch_id),
            metadata,
            timeout,
        )
        return convert.deleted_batch_from_proto(reply)

    def results(self, message_batch_id: str, **options: Any) -> Iterator[dict[str, Any]]:
        """Each results line as it arrives (an ended batch only; otherwise INVALID_ARGUMENT)."""
        metadata, timeout = self._client._call_options(options)
        call = self._client._batches.Results(
            bpb.BatchResultsRequest(batch_id=message_batch_id), metadata=metadata, timeout=timeout
        )
        try:
            for line in call:
                yield convert.batch_result_from_proto(line)
        except grpc.RpcError as exc:
            raise _error(exc) from None
        finally:
            call.cancel()


class _Messages:
    def __init__(self, client: Client) -> None:
        self._client = client
        self.batches = _Batches(client)

    def create(self, **kwargs: Any) -> dict[str, Any]:
        body, metadata, timeout = self._client._prepare(kwargs)
        reply = _unary(self._client._stub.CreateMessage, convert.request_to_proto(body), metadata, timeout)
        return convert.message_from_proto(reply)

    def stream(self, **kwargs: Any) -> Iterator[dict[str, Any]]:
        body, metadata, timeout = self._client._prepare(kwargs)
        body["stream"] = True
        call = self._client._stub.StreamMessage(
            convert.request_to_proto(body), metadata=metadata, timeout=timeout
        )
        try:
            for event in call:
                yield convert.event_from_proto(event)
        except grpc.RpcError as exc:
            raise _error(exc) from None
        finally:
            call.cancel()

    def count_tokens(self, **kwargs: Any) -> dict[str, Any]:
        body, metadata, timeout = self._client._prepare(kwargs)
        reply = _unary(
            self._client._stub.CountTokens, convert.count_tokens_request_to_proto(body), metadata, timeout
        )
        return convert.count_tokens_response_from_proto(reply)


class _Models:
    def __init__(self, client: Client) -> None:
        self._client = client

    def list(self, **params: Any) -> dict[str, Any]:
        _, metadata, timeout = self._client._prepare({})
        reply = _unary(
            self._client._stub.ListModels, convert.list_models_request_to_proto(params), metadata, timeout
        )
        return convert.list_models_response_from_proto(reply)

    def retrieve(self, model_id: str) -> dict[str, Any]:
        _, metadata, timeout = self._client._prepare({})
        reply = _unary(self._client._stub.GetModel, pb.GetModelRequest(model_id=model_id), metadata, timeout)
        return convert.model_info_from_proto(reply)


class Client(_Base):
    """Blocking client over a gRPC channel (insecure: the sidecar is on localhost)."""

    def __init__(self, target: str = "127.0.0.1:50051", **kwargs: Any) -> None:
        super().__init__(target, **kwargs)
        self._channel = grpc.insecure_channel(target, options=self._options)
        self._stub = pb_grpc.MessagesStub(self._channel)
        self._batches = bpb_grpc.BatchesStub(self._channel)
        self.messages = _Messages(self)
        self.models = _Models(self)

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _AsyncBatches:
    """``client.messages.batches`` on grpc.aio."""

    def __init__(self, client: AsyncClient) -> None:
        self._client = client

    async def create(self, *, requests: Iterable[dict[str, Any]], **options: Any) -> dict[str, Any]:
        body, metadata, timeout = self._client._prepare({**options, "requests": list(requests)})
        reply = await _aunary(
            self._client._batches.CreateBatch, convert.create_batch_request_to_proto(body), metadata, timeout
        )
        return convert.batch_from_proto(reply)

    async def retrieve(self, message_batch_id: str, **options: Any) -> dict[str, Any]:
        metadata, timeout = self._client._call_options(options)
        reply = await _aunary(
            self._client._batches.GetBatch, bpb.GetBatchRequest(batch_id=message_batch_id), metadata, timeout
        )
        return convert.batch_from_proto(reply)

    async def list(
        self,
        *,
        limit: int | None = None,
        after_id: str | None = None,
        before_id: str | None = None,
        **options: Any,
    ) -> dict[str, Any]:
        request = _list_batches_request(limit, after_id, before_id, options)
        metadata, timeout = self._client._call_options(options)
        reply = await _aunary(self._client._batches.ListBatches, request, metadata, timeout)
        return convert.list_batches_response_from_proto(reply)

    async def cancel(self, message_batch_id: str, **options: Any) -> dict[str, Any]:
        metadata, timeout = self._client._call_options(options)
        reply = await _aunary(
            self._client._batches.CancelBatch,
            bpb.CancelBatchRequest(batch_id=message_batch_id),
            metadata,
            timeout,
        )
        return convert.batch_from_proto(reply)

    async def delete(self, message_batch_id: str, **options: Any) -> dict[str, Any]:
        metadata, timeout = self._client._call_options(options)
        reply = await _aunary(
            self._client._batches.DeleteBatch,
            bpb.DeleteBatchRequest(batch_id=message_batch_id),
            metadata,
            timeout,
        )
        return convert.deleted_batch_from_proto(reply)

    async def results(self, message_batch_id: str, **options: Any) -> AsyncIterator[dict[str, Any]]:
        metadata, timeout = self._client._call_options(options)
        call = self._client._batches.Results(
            bpb.BatchResultsRequest(batch_id=message_batch_id), metadata=metadata, timeout=timeout
        )
        try:
            async for line in call:
                yield convert.batch_result_from_proto(line)
        except grpc.RpcError as exc:
            raise _error(exc) from None
        finally:
            call.cancel()


class _AsyncMessages:
    def __init__(self, client: AsyncClient) -> None:
        self._client = client
        self.batches = _AsyncBatches(client)

    async def create(self, **kwargs: Any) -> dict[str, Any]:
        body, metadata, timeout = self._client._prepare(kwargs)
        reply = await _aunary(
            self._client._stub.CreateMessage, convert.request_to_proto(body), metadata, timeout
        )
        return convert.message_from_proto(reply)

    async def stream(self, **kwargs: Any) -> AsyncIterator[dict[str, Any]]:
        body, metadata, timeout = self._client._prepare(kwargs)
        body["stream"] = True
        call = self._client._stub.StreamMessage(
            convert.request_to_proto(body), metadata=metadata, timeout=timeout
        )
        try:
            async for event in call:
                yield convert.event_from_proto(event)
        except grpc.RpcError as exc:
            raise _error(exc) from None
        finally:
            call.cancel()

    async def count_tokens(self, **kwargs: Any) -> dict[str, Any]:
        body, metadata, timeout = self._client._prepare(kwargs)
        reply = await _aunary(
            self._client._stub.CountTokens, convert.count_tokens_request_to_proto(body), metadata, timeout
        )
        return convert.count_tokens_response_from_proto(reply)


class _AsyncModels:
    def __init__(self, client: AsyncClient) -> None:
        self._client = client

    async def list(self, **params: Any) -> dict[str, Any]:
        _, metadata, timeout = self._client._prepare({})
        reply = await _aunary(
            self._client._stub.ListModels, convert.list_models_request_to_proto(params), metadata, timeout
        )
        return convert.list_models_response_from_proto(reply)

    async def retrieve(self, model_id: str) -> dict[str, Any]:
        _, metadata, timeout = self._client._prepare({})
        reply = await _aunary(
            self._client._stub.GetModel, pb.GetModelRequest(model_id=model_id), metadata, timeout
        )
        return convert.model_info_from_proto(reply)


class AsyncClient(_Base):
    """The same on grpc.aio (create the client inside the event loop that uses it)."""

    def __init__(self, target: str = "127.0.0.1:50051", **kwargs: Any) -> None:
        super().__init__(target, **kwargs)
        self._channel = grpc_aio.insecure_channel(target, options=self._options)
        self._stub = pb_grpc.MessagesStub(self._channel)
        self._batches = bpb_grpc.BatchesStub(self._channel)
        self.messages = _AsyncMessages(self)
        self.models = _AsyncModels(self)

    async def close(self) -> None:
        await self._channel.close(None)

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
