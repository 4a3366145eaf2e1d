"""``[mock ...]`` directives: read from the last user text, and the errors they ask for."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from ...errors import (
    TYPE_STATUS,
    AuthenticationFailed,
    BillingError,
    Conflict,
    InvalidRequest,
    NotFound,
    Overloaded,
    PermissionDenied,
    RateLimited,
    RequestTooLarge,
    SidecarError,
    Timeout,
    UpstreamError,
    error_type_for_status,
)

__all__ = ["Directives", "make_error", "parse_directives", "strip_directives"]

# Directive value limits, so a typo cannot ask for a gigabyte of text or a day of waiting.
_MAX_WORDS = 1_000_000
_MAX_MS = 3_600_000

_OPEN = "[mock"

# Anthropic error type -> (class, message) for the error directives.
_ERRORS: dict[str, tuple[type[SidecarError], str]] = {
    "invalid_request_error": (InvalidRequest, "mock: invalid request"),
    "authentication_error": (AuthenticationFailed, "invalid x-api-key"),
    "billing_error": (BillingError, "Your credit balance is too low to access the Anthropic API."),
    "permission_error": (
        PermissionDenied,
        "Your API key does not have permission to use the specified resource.",
    ),
    "not_found_error": (NotFound, "Not found"),
    "conflict_error": (Conflict, "Conflict"),
    "request_too_large": (RequestTooLarge, "Request exceeds the maximum allowed number of bytes."),
    "rate_limit_error": (RateLimited, "Number of request tokens has exceeded your per-minute rate limit."),
    "api_error": (UpstreamError, "Internal server error"),
    "timeout_error": (Timeout, "Request timed out"),
    "overloaded_error": (Overloaded, "Overloaded"),
}


@dataclass(slots=True)
class Directives:
    words: int | None = None
    echo: bool = False
    tool: str | None = None
    error: str | None = None  # an error type, or "type:status" when a status was given
    stream_error: str | None = None
    after: int = 0
    ttft_ms: float | None = None
    gap_ms: float | None = None
    words_per_delta: int | None = None


def _int_value(key: str, value: str | None, low: int, high: int) -> int:
    if value is None or not value.isdigit() or not low <= int(value) <= high:
        raise InvalidRequest(f"mock directive {key} needs an integer from {low} to {high}, not {value!r}")
    return int(value)


def _error_value(key: str, value: str | None) -> str:
    if value is None:
        raise InvalidRequest(f"mock directive {key} needs an error type, e.g. {key}=overloaded_error")
    if value.isdigit() and 400 <= int(value) <= 599:
        return value
    if value not in _ERRORS:
        raise InvalidRequest(
            f"mock directive {key}={value}: unknown error type (one of {', '.join(_ERRORS)})"
        )
    return value


def _directives(text: str) -> Iterator[tuple[int, int, str]]:
    """(start, end, inside) of each directive: ``[mock`` then whitespace or ``]``, up to the next
    ``]``. A scan rather than a regular expression: one tried every unclosed ``[mock`` against all
    the text after it, and stripping the whitespace before a directive tried every whitespace
    character so, both quadratic (seconds of the event loop for 100 KB of text)."""
    pos = 0
    while (start := text.find(_OPEN, pos)) >= 0:
        after = start + len(_OPEN)
        if after < len(text) and (text[after] == "]" or text[after].isspace()):
            end = text.find("]", after)
            if end < 0:
                return  # no bracket closes it, nor any later one
            yield start, end + 1, text[after:end]
            pos = end + 1
        else:
            pos = start + 1


def strip_directives(text: str) -> str:
    """``text`` without its directives, nor the whitespace just before each."""
    parts = []
    pos = 0
    for start, end, _ in _directives(text):
        parts.append(text[pos:start].rstrip())
        pos = end
    parts.append(text[pos:])
    return "".join(parts)


def parse_directives(text: str) -> Directives:
    out = Directives()
    for _, _, inside in _directives(text):
        for item in inside.split():
            key, eq, raw = item.partition("=")
            value = raw if eq else None
            if key == "echo" and value is None:
                out.echo = True
            elif key == "words":
                out.words = _int_value(key, value, 0, _MAX_WORDS)
            elif key == "words_per_delta":
                out.words_per_delta = _int_value(key, value, 1, _MAX_WORDS)
            elif key == "ttft_ms":
                out.ttft_ms = _int_value(key, value, 0, _MAX_MS)
            elif key == "gap_ms":
                out.gap_ms = _int_value(key, value, 0, _MAX_MS)
            elif key == "after":
                out.after = _int_value(key, value, 0, _MAX_WORDS)
            elif key == "tool" and value:
                out.tool = value
            elif key == "error":
                out.error = _error_value(key, value)
            elif key == "stream_error":
                out.stream_error = _error_value(key, value)
            else:
                raise InvalidRequest(f"unknown mock directive {item!r} (see sidecar.upstreams.mock)")
    return out


def make_error(spec: str) -> SidecarError:
    if spec.isdigit():
        status = int(spec)
        error_type = error_type_for_status(status)
    else:
        error_type = spec
        status = TYPE_STATUS[error_type]
    cls, message = _ERRORS[error_type]
    headers = [("retry-after", "1")] if error_type == "rate_limit_error" else None
    return cls(message, status=status, error_type=error_type, headers=headers)
