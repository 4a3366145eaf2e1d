"""One error tree for the whole sidecar, mapped once to HTTP and once to gRPC.

::

    SidecarError                      (api_error, 500)
    ├── InvalidRequest                (invalid_request_error, 400)
    │   ├── UnsupportedFeature        a request the chosen upstream cannot express
    │   └── ConfigError               a bad config file (never reaches a client)
    ├── AuthenticationFailed          (authentication_error, 401)
    ├── BillingError                  (billing_error, 402)
    ├── PermissionDenied              (permission_error, 403)
    ├── NotFound                      (not_found_error, 404)
    │   └── NoRoute                   no route for the model or path
    ├── Conflict                      (conflict_error, 409)
    ├── RequestTooLarge               (request_too_large, 413)
    ├── RateLimited                   (rate_limit_error, 429)
    ├── UpstreamError                 (api_error, 500)  the upstream failed or answered 5xx
    │   ├── UpstreamConnectError      (api_error, 502)  could not reach the upstream
    │   └── UpstreamProtocolError     (api_error, 502)  the upstream spoke nonsense
    ├── Timeout                       (timeout_error, 504)
    ├── HopLimitExceeded              (api_error, 508)  a chain of sidecars too long: a routing loop
    └── Overloaded                    (overloaded_error, 529)
        └── Unavailable               (overloaded_error, 503)  a store the sidecar needs (Redis) is down

Each class has a default Anthropic error type and HTTP status (the tree above). The gRPC status
follows from the error type alone, through ``ERROR_TYPES``, the one table both doors use; the
HTTP door answers the instance's ``status``. An instance may carry other values than its class's
defaults: an error that came from an upstream keeps the upstream's own status, type, message and
headers (``retry-after``), so the client sees what the real API said, and several classes share
``api_error`` with different statuses (500, 502, 508).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import grpc

__all__ = [
    "ERROR_TYPES",
    "TYPE_STATUS",
    "AuthenticationFailed",
    "BillingError",
    "ConfigError",
    "Conflict",
    "HopLimitExceeded",
    "InvalidRequest",
    "NoRoute",
    "NotFound",
    "Overloaded",
    "PermissionDenied",
    "RateLimited",
    "RequestTooLarge",
    "SidecarError",
    "Timeout",
    "Unavailable",
    "UnsupportedFeature",
    "UpstreamConnectError",
    "UpstreamError",
    "UpstreamProtocolError",
    "error_body",
    "error_type_for_status",
    "GRPC_STATUS_CODES",
    "grpc_code_for_type",
    "grpc_status_for_type",
]

# Anthropic error type -> (HTTP status, gRPC status code name). The one table both doors use.
# grpc is imported only when a gRPC code is asked for (``grpc_code_for_type``, ``ERROR_TYPES``):
# a sidecar without the gRPC door never loads it (grpcio's core is about 8 MB resident).
_TYPES: dict[str, tuple[int, str]] = {
    "invalid_request_error": (400, "INVALID_ARGUMENT"),
    "authentication_error": (401, "UNAUTHENTICATED"),
    "billing_error": (402, "FAILED_PRECONDITION"),
    "permission_error": (403, "PERMISSION_DENIED"),
    "not_found_error": (404, "NOT_FOUND"),
    "conflict_error": (409, "ABORTED"),
    "request_too_large": (413, "RESOURCE_EXHAUSTED"),
    "rate_limit_error": (429, "RESOURCE_EXHAUSTED"),
    "api_error": (500, "INTERNAL"),
    "timeout_error": (504, "DEADLINE_EXCEEDED"),
    "overloaded_error": (529, "UNAVAILABLE"),
}

# gRPC status code name -> its number (the gRPC spec's table; what goes in ``grpc-status``).
GRPC_STATUS_CODES: dict[str, int] = {
    name: number
    for number, name in enumerate(
        (
            "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
            "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
            "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS",
            "UNAUTHENTICATED",
        )
    )
}  # fmt: skip

# Anthropic error type -> the HTTP status it stands for (the keys of ``ERROR_TYPES``, no grpc).
TYPE_STATUS: dict[str, int] = {etype: status for etype, (status, _) in _TYPES.items()}

if TYPE_CHECKING:
    # Anthropic error type -> (HTTP status, gRPC status code); built on first use (``__getattr__``).
    ERROR_TYPES: dict[str, tuple[int, grpc.StatusCode]]


def __getattr__(name: str) -> Any:
    if name == "ERROR_TYPES":
        import grpc

        table = {etype: (status, grpc.StatusCode[code]) for etype, (status, code) in _TYPES.items()}
        globals()["ERROR_TYPES"] = table
        return table
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# HTTP status -> Anthropic error type, for upstream answers that carry no usable body.
_STATUS_TYPES: dict[int, str] = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    409: "conflict_error",
    413: "request_too_large",
    422: "invalid_request_error",
    429: "rate_limit_error",
    500: "api_error",
    502: "api_error",
    503: "overloaded_error",
    504: "timeout_error",
    529: "overloaded_error",
}


def error_type_for_status(status: int) -> str:
    """The Anthropic error type an HTTP status stands for (spec section 5 and 8.7)."""
    if status in _STATUS_TYPES:
        return _STATUS_TYPES[status]
    return "api_error" if status >= 500 else "invalid_request_error"


def grpc_code_for_type(error_type: str) -> grpc.StatusCode:
    """The gRPC status for an Anthropic error type; unknown types are INTERNAL (api_error)."""
    import grpc

    return grpc.StatusCode[grpc_status_for_type(error_type)[1]]


def grpc_status_for_type(error_type: str) -> tuple[int, str]:
    """``grpc_code_for_type`` without grpc: the status's number and name."""
    entry = _TYPES.get(error_type)
    name = entry[1] if entry else "INTERNAL"
    return GRPC_STATUS_CODES[name], name


class SidecarError(Exception):
    """Root of every error the sidecar reports to a client."""

    error_type = "api_error"
    status = 500

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        error_type: str | None = None,
        headers: list[tuple[str, str]] | None = None,
        details: dict[str, Any] | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if error_type is not None:
            self.error_type = error_type
        if status is not None:
            self.status = status
        # Headers to relay with the error (retry-after, x-should-retry, upstream request-id ...).
        self.headers: list[tuple[str, str]] = headers or []
        self.details = details
        # The upstream's request id when the error came from one.
        self.request_id = request_id

    @property
    def grpc_code(self) -> grpc.StatusCode:
        return grpc_code_for_type(self.error_type)

    @property
    def grpc_status(self) -> int:
        """The gRPC status code's number (no grpc import)."""
        return grpc_status_for_type(self.error_type)[0]

    def body(self, request_id: str) -> dict[str, Any]:
        return error_body(self.error_type, self.message, request_id, self.details)


class InvalidRequest(SidecarError):
    """The request is malformed or breaks a rule the sidecar relies on."""

    error_type = "invalid_request_error"
    status = 400


class UnsupportedFeature(InvalidRequest):
    """The request uses something the chosen upstream cannot express."""


class ConfigError(InvalidRequest):
    """The configuration is invalid; raised at load time, never per request."""


class AuthenticationFailed(SidecarError):
    """Missing, unknown or revoked credentials."""

    error_type = "authentication_error"
    status = 401


class BillingError(SidecarError):
    """The upstream reported a billing problem."""

    error_type = "billing_error"
    status = 402


class PermissionDenied(SidecarError):
    """The credentials may not use this model or resource."""

    error_type = "permission_error"
    status = 403


class NotFound(SidecarError):
    """Unknown path, model or id."""

    error_type = "not_found_error"
    status = 404


class NoRoute(NotFound):
    """No route serves this model, or the route's upstream cannot serve this endpoint."""


class Conflict(SidecarError):
    """The upstream reported a conflicting modification."""

    error_type = "conflict_error"
    status = 409


class RequestTooLarge(SidecarError):
    """The body is over the configured size limit."""

    error_type = "request_too_large"
    status = 413


class RateLimited(SidecarError):
    """A rate limit (the sidecar's or the upstream's) refused the request."""

    error_type = "rate_limit_error"
    status = 429


class UpstreamError(SidecarError):
    """The upstream failed; the status and type are the upstream's own when it sent them."""

    error_type = "api_error"
    status = 500


class UpstreamConnectError(UpstreamError):
    """The upstream could not be reached (refused, reset, DNS)."""

    status = 502


class UpstreamProtocolError(UpstreamError):
    """The upstream answered with something that is not the protocol it should speak."""

    status = 502


class Timeout(SidecarError):
    """A deadline passed (the client's, or an upstream timeout)."""

    error_type = "timeout_error"
    status = 504


class HopLimitExceeded(SidecarError):
    """The request already passed ``max_hops`` sidecars: a routing loop or a too-long chain
    (``sidecar.hops``)."""

    error_type = "api_error"
    status = 508


class Overloaded(SidecarError):
    """The upstream (or the sidecar) is overloaded."""

    error_type = "overloaded_error"
    status = 529


class Unavailable(Overloaded):
    """A store the sidecar needs to answer (the batches' and files' Redis) cannot serve the call
    now: 503, gRPC UNAVAILABLE, retried by the SDKs. Raised by ``sidecar.admission.resp``'s one
    table of Redis failures."""

    status = 503


def error_body(
    error_type: str, message: str, request_id: str, details: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The Anthropic error envelope (spec section 5)."""
    error: dict[str, Any] = {"type": error_type, "message": message}
    if details:
        error["details"] = details
    return {"type": "error", "error": error, "request_id": request_id}
