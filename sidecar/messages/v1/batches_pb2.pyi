from sidecar.messages.v1 import messages_pb2 as _messages_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CreateBatchRequest(_message.Message):
    __slots__ = ("requests", "extra_json")
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    EXTRA_JSON_FIELD_NUMBER: _ClassVar[int]
    requests: _containers.RepeatedCompositeFieldContainer[BatchEntry]
    extra_json: str
    def __init__(self, requests: _Optional[_Iterable[_Union[BatchEntry, _Mapping]]] = ..., extra_json: _Optional[str] = ...) -> None: ...

class BatchEntry(_message.Message):
    __slots__ = ("custom_id", "params", "extra_json")
    CUSTOM_ID_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    EXTRA_JSON_FIELD_NUMBER: _ClassVar[int]
    custom_id: str
    params: _messages_pb2.CreateMessageRequest
    extra_json: str
    def __init__(self, custom_id: _Optional[str] = ..., params: _Optional[_Union[_messages_pb2.CreateMessageRequest, _Mapping]] = ..., extra_json: _Optional[str] = ...) -> None: ...

class GetBatchRequest(_message.Message):
    __slots__ = ("batch_id",)
    BATCH_ID_FIELD_NUMBER: _ClassVar[int]
    batch_id: str
    def __init__(self, batch_id: _Optional[str] = ...) -> None: ...

class ListBatchesRequest(_message.Message):
    __slots__ = ("limit", "after_id", "before_id", "extra_json")
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    AFTER_ID_FIELD_NUMBER: _ClassVar[int]
    BEFORE_ID_FIELD_NUMBER: _ClassVar[int]
    EXTRA_JSON_FIELD_NUMBER: _ClassVar[int]
    limit: int
    after_id: str
    before_id: str
    extra_json: str
    def __init__(self, limit: _Optional[int] = ..., after_id: _Optional[str] = ..., before_id: _Optional[str] = ..., extra_json: _Optional[str] = ...) -> None: ...

class CancelBatchRequest(_message.Message):
    __slots__ = ("batch_id",)
    BATCH_ID_FIELD_NUMBER: _ClassVar[int]
    batch_id: str
    def __init__(self, batch_id: _Optional[str] = ...) -> None: ...

class DeleteBatchRequest(_message.Message):
    __slots__ = ("batch_id",)
    BATCH_ID_FIELD_NUMBER: _ClassVar[int]
    batch_id: str
    def __init__(self, batch_id: _Optional[str] = ...) -> None: ...

class BatchResultsRequest(_message.Message):
    __slots__ = ("batch_id",)
    BATCH_ID_FIELD_NUMBER: _ClassVar[int]
    batch_id: str
    def __init__(self, batch_id: _Optional[str] = ...) -> None: ...

class MessageBatch(_message.Message):
    __slots__ = ("id", "type", "processing_status", "request_counts", "ended_at", "created_at", "expires_at", "archived_at", "cancel_initiated_at", "results_url", "extra_json")
    ID_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    PROCESSING_STATUS_FIELD_NUMBER: _ClassVar[int]
    REQUEST_COUNTS_FIELD_NUMBER: _ClassVar[int]
    ENDED_AT_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    ARCHIVED_AT_FIELD_NUMBER: _ClassVar[int]
    CANCEL_INITIATED_AT_FIELD_NUMBER: _ClassVar[int]
    RESULTS_URL_FIELD_NUMBER: _ClassVar[int]
    EXTRA_JSON_FIELD_NUMBER: _ClassVar[int]
    id: str
    type: str
    processing_status: str
    request_counts: MessageBatchRequestCounts
    ended_at: str
    created_at: str
    expires_at: str
    archived_at: str
    cancel_initiated_at: str
    results_url: str
    extra_json: str
    def __init__(self, id: _Optional[str] = ..., type: _Optional[str] = ..., processing_status: _Optional[str] = ..., request_counts: _Optional[_Union[MessageBatchRequestCounts, _Mapping]] = ..., ended_at: _Optional[str] = ..., created_at: _Optional[str] = ..., expires_at: _Optional[str] = ..., archived_at: _Optional[str] = ..., cancel_initiated_at: _Optional[str] = ..., results_url: _Optional[str] = ..., extra_json: _Optional[str] = ...) -> None: ...

class MessageBatchRequestCounts(_message.Message):
    __slots__ = ("processing", "succeeded", "errored", "canceled", "expired", "extra_json")
    PROCESSING_FIELD_NUMBER: _ClassVar[int]
    SUCCEEDED_FIELD_NUMBER: _ClassVar[int]
    ERRORED_FIELD_NUMBER: _ClassVar[int]
    CANCELED_FIELD_NUMBER: _ClassVar[int]
    EXPIRED_FIELD_NUMBER: _ClassVar[int]
    EXTRA_JSON_FIELD_NUMBER: _ClassVar[int]
    processing: int
    succeeded: int
    errored: int
    canceled: int
    expired: int
    extra_json: str
    def __init__(self, processing: _Optional[int] = ..., succeeded: _Optional[int] = ..., errored: _Optional[int] = ..., canceled: _Optional[int] = ..., expired: _Optional[int] = ..., extra_json: _Optional[str] = ...) -> None: ...

class ListBatchesResponse(_message.Message):
    __slots__ = ("data", "has_more", "first_id", "last_id", "extra_json")
    DATA_FIELD_NUMBER: _ClassVar[int]
    HAS_MORE_FIELD_NUMBER: _ClassVar[int]
    FIRST_ID_FIELD_NUMBER: _ClassVar[int]
    LAST_ID_FIELD_NUMBER: _ClassVar[int]
    EXTRA_JSON_FIELD_NUMBER: _ClassVar[int]
    data: _containers.RepeatedCompositeFieldContainer[MessageBatch]
    has_more: bool
    first_id: str
    last_id: str
    extra_json: str
    def __init__(self, data: _Optional[_Iterable[_Union[MessageBatch, _Mapping]]] = ..., has_more: _Optional[bool] = ..., first_id: _Optional[str] = ..., last_id: _Optional[str] = ..., extra_json: _Optional[str] = ...) -> None: ...

class DeletedMessageBatch(_message.Message):
    __slots__ = ("id", "type", "extra_json")
    ID_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    EXTRA_JSON_FIELD_NUMBER: _ClassVar[int]
    id: str
    type: str
    extra_json: str
    def __init__(self, id: _Optional[str] = ..., type: _Optional[str] = ..., extra_json: _Optional[str] = ...) -> None: ...

class MessageBatchIndividualResponse(_message.Message):
    __slots__ = ("custom_id", "result", "extra_json")
    CUSTOM_ID_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    EXTRA_JSON_FIELD_NUMBER: _ClassVar[int]
    custom_id: str
    result: MessageBatchResult
    extra_json: str
    def __init__(self, custom_id: _Optional[str] = ..., result: _Optional[_Union[MessageBatchResult, _Mapping]] = ..., extra_json: _Optional[str] = ...) -> None: ...

class MessageBatchResult(_message.Message):
    __slots__ = ("succeeded", "errored", "canceled", "expired", "unknown_json")
    SUCCEEDED_FIELD_NUMBER: _ClassVar[int]
    ERRORED_FIELD_NUMBER: _ClassVar[int]
    CANCELED_FIELD_NUMBER: _ClassVar[int]
    EXPIRED_FIELD_NUMBER: _ClassVar[int]
    UNKNOWN_JSON_FIELD_NUMBER: _ClassVar[int]
    succeeded: MessageBatchSucceededResult
    errored: MessageBatchErroredResult
    canceled: MessageBatchCanceledResult
    expired: MessageBatchExpiredResult
    unknown_json: str
    def __init__(self, succeeded: _Optional[_Union[MessageBatchSucceededResult, _Mapping]] = ..., errored: _Optional[_Union[MessageBatchErroredResult, _Mapping]] = ..., canceled: _Optional[_Union[MessageBatchCanceledResult, _Mapping]] = ..., expired: _Optional[_Union[MessageBatchExpiredResult, _Mapping]] = ..., unknown_json: _Optional[str] = ...) -> None: ...

class MessageBatchSucceededResult(_message.Message):
    __slots__ = ("message", "extra_json")
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    EXTRA_JSON_FIELD_NUMBER: _ClassVar[int]
    message: _messages_pb2.Message
    extra_json: str
    def __init__(self, message: _Optional[_Union[_messages_pb2.Message, _Mapping]] = ..., extra_json: _Optional[str] = ...) -> None: ...

class MessageBatchErroredResult(_message.Message):
    __slots__ = ("error", "extra_json")
    ERROR_FIELD_NUMBER: _ClassVar[int]
    EXTRA_JSON_FIELD_NUMBER: _ClassVar[int]
    error: ErrorResponse
    extra_json: str
    def __init__(self, error: _Optional[_Union[ErrorResponse, _Mapping]] = ..., extra_json: _Optional[str] = ...) -> None: ...

class MessageBatchCanceledResult(_message.Message):
    __slots__ = ("extra_json",)
    EXTRA_JSON_FIELD_NUMBER: _ClassVar[int]
    extra_json: str
    def __init__(self, extra_json: _Optional[str] = ...) -> None: ...

class MessageBatchExpiredResult(_message.Message):
    __slots__ = ("extra_json",)
    EXTRA_JSON_FIELD_NUMBER: _ClassVar[int]
    extra_json: str
    def __init__(self, extra_json: _Optional[str] = ...) -> None: ...

class ErrorResponse(_message.Message):
    __slots__ = ("type", "error", "request_id", "extra_json")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    EXTRA_JSON_FIELD_NUMBER: _ClassVar[int]
    type: str
    error: _messages_pb2.ErrorObject
    request_id: str
    extra_json: str
    def __init__(self, type: _Optional[str] = ..., error: _Optional[_Union[_messages_pb2.ErrorObject, _Mapping]] = ..., request_id: _Optional[str] = ..., extra_json: _Optional[str] = ...) -> None: ...
