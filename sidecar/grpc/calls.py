"""What every gRPC method of the door does around its work: the call's metadata as forwarded
headers (refusing control characters), and ending a call with an error's status and its
Anthropic trailers (``anthropic-error-type``, ``anthropic-error-message``, ``request-id``)."""

from __future__ import annotations

from typing import Any, NoReturn

from ..core import Answer
from ..core.credentials import add_header
from ..errors import InvalidRequest, SidecarError
from .registry import ServicerContext, Undecodable

__all__ = [
    "MAX_ERROR_MESSAGE",
    "abort",
    "clean",
    "decoded",
    "error_trailers",
    "forward_headers",
    "header_metadata",
    "metadata_value",
]

Context = ServicerContext

# Metadata that belongs to gRPC itself, never forwarded upstream.
_INTERNAL = ("grpc-", ":")
_DROP = frozenset({"content-type", "te", "user-agent", "accept-encoding", "host", "content-length"})


def forward_headers(context: Context) -> dict[str, str]:
    headers: dict[str, str] = {}
    for key, value in context.invocation_metadata() or ():
        if key.startswith(_INTERNAL) or key in _DROP or key.endswith("-bin"):
            continue
        add_header(headers, key, value if isinstance(value, str) else value.decode("latin-1"))
    return headers


# Control characters an HTTP field value may not hold (RFC 9110: VCHAR, obs-text, SP, HTAB).
# gRPC's core passes them through in metadata values sent as raw HTTP/2.
_CONTROL = frozenset(chr(c) for c in (*range(0x20), 0x7F)) - {"\t"}


def clean(headers: dict[str, str]) -> dict[str, str]:
    """``headers``, or InvalidRequest when a value holds CR, LF, NUL or another control
    character: forwarded, it would be refused by the upstream client (an internal error) or, for
    a NUL, reach the upstream as a malformed request."""
    for key, value in headers.items():
        if not _CONTROL.isdisjoint(value):
            raise InvalidRequest(f"metadata {key!r}: a control character (CR, LF, NUL ...) in its value")
    return headers


# The longest error message a status carries (gRPC refuses metadata over 16 KB outright, and a
# message may quote client input: a model id, a field's value).
MAX_ERROR_MESSAGE = 1024


def metadata_value(text: str, limit: int = MAX_ERROR_MESSAGE) -> str:
    """``text`` as a legal gRPC metadata value: printable ASCII (anything else escaped the way a
    Python literal would be: ``\\n``, ``\\xe9``), at most ``limit`` characters. gRPC ends a call
    whose trailers hold anything else with INTERNAL "Invalid metadata", losing the error."""
    if not (text.isascii() and text.isprintable()):
        text = text.encode("unicode_escape").decode("ascii")
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return text


def error_trailers(exc: SidecarError, request_id: str) -> tuple[tuple[str, str], ...]:
    """The trailing metadata an error ends a call with: its Anthropic type and message, the
    request ids, and the retry and rate-limit headers it relays."""
    rid = exc.request_id or request_id
    trailing = [
        ("anthropic-error-type", metadata_value(exc.error_type, 100)),
        ("anthropic-error-message", metadata_value(exc.message)),
        ("request-id", metadata_value(rid, 200)),
        ("sidecar-request-id", request_id),
    ]
    for key, value in exc.headers:
        if key in ("retry-after", "retry-after-ms", "x-should-retry") or key.startswith(
            "anthropic-ratelimit-"
        ):
            trailing.append((key, metadata_value(value, 200)))
    return tuple(trailing)


async def abort(context: Context, exc: SidecarError, request_id: str) -> NoReturn:
    context.set_trailing_metadata(error_trailers(exc, request_id))
    await context.abort(exc.grpc_status, metadata_value(exc.message))
    raise AssertionError("abort returned")  # pragma: no cover - abort always raises


def decoded(request: object) -> Any:
    """The request message; INVALID_ARGUMENT when its bytes did not decode (``Undecodable``)."""
    if isinstance(request, Undecodable):
        raise InvalidRequest(f"the request is not a valid {request.message_type} protobuf message")
    return request


def header_metadata(answer: Answer, request_id: str) -> tuple[tuple[str, str], ...]:
    upstream_id = next((v for k, v in answer.headers if k == "request-id"), None)
    return (("request-id", upstream_id or request_id), ("sidecar-request-id", request_id))
