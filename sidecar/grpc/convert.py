"""Anthropic JSON (Python dicts, as the pipeline speaks it) <-> sidecar.messages.v1 protobuf.

Explicit and fast: each message type has a conversion plan compiled at import from the
descriptors and the options in ``proto/sidecar/messages/v1/options.proto`` (see ``_plan``), so a
call is a loop of dict lookups. ``json_format`` is never used (10-30x slower), free-form JSON
travels as JSON text (never ``Struct``), and nothing is dropped: members without a typed field,
or whose value does not fit it exactly, ride in ``extra_json``; objects of unknown ``type`` ride
whole in ``unknown_json``. For every JSON value of the API, ``x_from_proto(x_to_proto(v)) == v``,
with the same JSON types (``1`` stays ``1``, ``1.0`` stays ``1.0``); only key order may differ.

``*_to_proto`` take the JSON value of the HTTP API (a dict). ``*_from_proto`` take a message from
a gRPC client and raise :class:`sidecar.errors.InvalidRequest` naming the field path
(``messages.0.content.1.input: invalid JSON text``) when it holds something with no JSON meaning.
"""

from __future__ import annotations

from typing import Any

from google.protobuf.message import Message as _ProtoMessage

from sidecar.errors import InvalidRequest
from sidecar.grpc.codec import NOFIT, BadProto, Plan, plan_for
from sidecar.messages.v1 import batches_pb2 as bpb
from sidecar.messages.v1 import messages_pb2 as pb

__all__ = [
    "batch_from_proto",
    "batch_result_from_proto",
    "batch_result_to_proto",
    "batch_to_proto",
    "count_tokens_request_from_proto",
    "count_tokens_request_to_proto",
    "count_tokens_response_from_proto",
    "count_tokens_response_to_proto",
    "create_batch_request_from_proto",
    "create_batch_request_to_proto",
    "deleted_batch_from_proto",
    "deleted_batch_to_proto",
    "event_from_proto",
    "event_to_proto",
    "list_batches_request_from_proto",
    "list_batches_request_to_proto",
    "list_batches_response_from_proto",
    "list_batches_response_to_proto",
    "list_models_request_from_proto",
    "list_models_request_to_proto",
    "list_models_response_from_proto",
    "list_models_response_to_proto",
    "message_from_proto",
    "message_to_proto",
    "model_info_from_proto",
    "model_info_to_proto",
    "request_from_proto",
    "request_to_proto",
]


def _plan(cls: type[_ProtoMessage]) -> Plan:
    desc: Any = cls.DESCRIPTOR  # upb's Descriptor is not the stubs' Descriptor
    return plan_for(desc)


# Compiled at import: a schema the converter cannot map fails here, not on the first request.
_REQUEST = _plan(pb.CreateMessageRequest)
_MESSAGE = _plan(pb.Message)
_EVENT = _plan(pb.StreamEvent)
_COUNT_REQUEST = _plan(pb.CountTokensRequest)
_COUNT_RESPONSE = _plan(pb.CountTokensResponse)
_MODEL_INFO = _plan(pb.ModelInfo)
_LIST_REQUEST = _plan(pb.ListModelsRequest)
_LIST_RESPONSE = _plan(pb.ListModelsResponse)
_CREATE_BATCH = _plan(bpb.CreateBatchRequest)
_BATCH = _plan(bpb.MessageBatch)
_LIST_BATCHES_REQUEST = _plan(bpb.ListBatchesRequest)
_LIST_BATCHES_RESPONSE = _plan(bpb.ListBatchesResponse)
_DELETED_BATCH = _plan(bpb.DeletedMessageBatch)
_BATCH_RESULT = _plan(bpb.MessageBatchIndividualResponse)


def _kwargs(plan: Plan, value: Any, what: str) -> dict[str, Any]:
    kw = plan.to(value)
    if kw is NOFIT:
        raise InvalidRequest(f"{what} must be a JSON object, not {type(value).__name__}")
    result: dict[str, Any] = kw
    return result


def _json(plan: Plan, m: _ProtoMessage) -> dict[str, Any]:
    if m.DESCRIPTOR is not plan.desc:
        raise TypeError(f"expected {plan.desc.full_name}, got {m.DESCRIPTOR.full_name}")
    try:
        out: dict[str, Any] = plan.frm(m)
    except BadProto as e:
        where = e.where()
        raise InvalidRequest(f"{where}: {e.message}" if where else e.message) from None
    return out


# --- POST /v1/messages ---------------------------------------------------------------------------


def request_to_proto(body: dict[str, Any]) -> pb.CreateMessageRequest:
    """A Messages request body -> CreateMessageRequest."""
    return pb.CreateMessageRequest(**_kwargs(_REQUEST, body, "the request body"))


def request_from_proto(m: pb.CreateMessageRequest) -> dict[str, Any]:
    """CreateMessageRequest -> the Messages request body."""
    return _json(_REQUEST, m)


def message_to_proto(d: dict[str, Any]) -> pb.Message:
    """A response Message -> Message."""
    return pb.Message(**_kwargs(_MESSAGE, d, "a Message"))


def message_from_proto(m: pb.Message) -> dict[str, Any]:
    """Message -> the response Message."""
    return _json(_MESSAGE, m)


def event_to_proto(d: dict[str, Any]) -> pb.StreamEvent:
    """An SSE event's data (``{"type": "content_block_delta", ...}``, also an error envelope)."""
    return pb.StreamEvent(**_kwargs(_EVENT, d, "a stream event"))


def event_from_proto(m: pb.StreamEvent) -> dict[str, Any]:
    """StreamEvent -> the SSE event's data; its ``type`` is the SSE event name."""
    return _json(_EVENT, m)


# --- POST /v1/messages/count_tokens --------------------------------------------------------------


def count_tokens_request_to_proto(body: dict[str, Any]) -> pb.CountTokensRequest:
    return pb.CountTokensRequest(**_kwargs(_COUNT_REQUEST, body, "the request body"))


def count_tokens_request_from_proto(m: pb.CountTokensRequest) -> dict[str, Any]:
    return _json(_COUNT_REQUEST, m)


def count_tokens_response_to_proto(d: dict[str, Any]) -> pb.CountTokensResponse:
    return pb.CountTokensResponse(**_kwargs(_COUNT_RESPONSE, d, "a count_tokens response"))


def count_tokens_response_from_proto(m: pb.CountTokensResponse) -> dict[str, Any]:
    return _json(_COUNT_RESPONSE, m)


# --- GET /v1/models ------------------------------------------------------------------------------


def model_info_to_proto(d: dict[str, Any]) -> pb.ModelInfo:
    return pb.ModelInfo(**_kwargs(_MODEL_INFO, d, "a ModelInfo"))


def model_info_from_proto(m: pb.ModelInfo) -> dict[str, Any]:
    return _json(_MODEL_INFO, m)


def list_models_request_to_proto(params: dict[str, Any]) -> pb.ListModelsRequest:
    """Query parameters as JSON values (``{"limit": 20, "lifecycle": ["active"]}``)."""
    return pb.ListModelsRequest(**_kwargs(_LIST_REQUEST, params, "the list parameters"))


def list_models_request_from_proto(m: pb.ListModelsRequest) -> dict[str, Any]:
    """ListModelsRequest -> the query parameters that are set, as JSON values."""
    return _json(_LIST_REQUEST, m)


def list_models_response_to_proto(d: dict[str, Any]) -> pb.ListModelsResponse:
    return pb.ListModelsResponse(**_kwargs(_LIST_RESPONSE, d, "a model list"))


def list_models_response_from_proto(m: pb.ListModelsResponse) -> dict[str, Any]:
    return _json(_LIST_RESPONSE, m)


# --- /v1/messages/batches ------------------------------------------------------------------------


def create_batch_request_to_proto(body: dict[str, Any]) -> bpb.CreateBatchRequest:
    """A batch creation body (``{"requests": [{custom_id, params}]}``) -> CreateBatchRequest."""
    return bpb.CreateBatchRequest(**_kwargs(_CREATE_BATCH, body, "the request body"))


def create_batch_request_from_proto(m: bpb.CreateBatchRequest) -> dict[str, Any]:
    """CreateBatchRequest -> the batch creation body (errors name ``requests.N.params...``)."""
    return _json(_CREATE_BATCH, m)


def batch_to_proto(d: dict[str, Any]) -> bpb.MessageBatch:
    return bpb.MessageBatch(**_kwargs(_BATCH, d, "a MessageBatch"))


def batch_from_proto(m: bpb.MessageBatch) -> dict[str, Any]:
    return _json(_BATCH, m)


def list_batches_request_to_proto(params: dict[str, Any]) -> bpb.ListBatchesRequest:
    """Query parameters as JSON values (``{"limit": 20, "after_id": "msgbatch_..."}``)."""
    return bpb.ListBatchesRequest(**_kwargs(_LIST_BATCHES_REQUEST, params, "the list parameters"))


def list_batches_request_from_proto(m: bpb.ListBatchesRequest) -> dict[str, Any]:
    """ListBatchesRequest -> the query parameters that are set, as JSON values."""
    return _json(_LIST_BATCHES_REQUEST, m)


def list_batches_response_to_proto(d: dict[str, Any]) -> bpb.ListBatchesResponse:
    return bpb.ListBatchesResponse(**_kwargs(_LIST_BATCHES_RESPONSE, d, "a batch list"))


def list_batches_response_from_proto(m: bpb.ListBatchesResponse) -> dict[str, Any]:
    return _json(_LIST_BATCHES_RESPONSE, m)


def deleted_batch_to_proto(d: dict[str, Any]) -> bpb.DeletedMessageBatch:
    return bpb.DeletedMessageBatch(**_kwargs(_DELETED_BATCH, d, "a deleted batch"))


def deleted_batch_from_proto(m: bpb.DeletedMessageBatch) -> dict[str, Any]:
    return _json(_DELETED_BATCH, m)


def batch_result_to_proto(d: dict[str, Any]) -> bpb.MessageBatchIndividualResponse:
    """One line of a batch's results (``{"custom_id", "result"}``)."""
    return bpb.MessageBatchIndividualResponse(**_kwargs(_BATCH_RESULT, d, "a batch result"))


def batch_result_from_proto(m: bpb.MessageBatchIndividualResponse) -> dict[str, Any]:
    return _json(_BATCH_RESULT, m)
