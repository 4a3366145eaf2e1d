"""How telemetry classes the end of a request or an upstream attempt: its outcome, and the error
it failed with (raw, for spans; bounded, for labels)."""

from __future__ import annotations

from typing import Any

from ..errors import TYPE_STATUS, SidecarError

__all__ = [
    "CANCELLED",
    "CLIENT_ERROR",
    "SERVER_ERROR",
    "SUCCESS",
    "Failure",
    "failure_of",
    "failure_of_type",
]

# Outcomes: what an error type's HTTP status class says.
SUCCESS, CLIENT_ERROR, SERVER_ERROR, CANCELLED = "success", "client_error", "server_error", "cancelled"


class Failure:
    """An error as telemetry records it: its type (raw, for spans; bounded, for labels)."""

    __slots__ = ("error_type", "label", "outcome", "status")

    def __init__(self, error_type: str, status: int) -> None:
        self.error_type = error_type
        own = TYPE_STATUS.get(error_type)
        self.label = error_type if own is not None else "other"
        self.status = status  # the HTTP status the error was (or would be) answered with
        # The class of the type's own status (an upstream's 503 is an overloaded_error, 529).
        self.outcome = CLIENT_ERROR if (own if own is not None else status) < 500 else SERVER_ERROR


def failure_of(error: BaseException) -> Failure:
    if isinstance(error, SidecarError):
        return Failure(error.error_type, error.status)
    return Failure("api_error", 500)


def failure_of_type(error_type: Any) -> Failure:
    if not isinstance(error_type, str) or not error_type:
        error_type = "api_error"
    return Failure(error_type, TYPE_STATUS.get(error_type, 500))
