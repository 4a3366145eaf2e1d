"""Where a client's key travels: the credential header names, and how a repeated one is read.

Both doors and admission read credentials through this module, so the names and the rule for
a header sent twice live in one place.
"""

from __future__ import annotations

__all__ = ["CREDENTIAL_HEADERS", "add_header"]

# Where a client's key comes (lower-case header names), ``x-api-key`` first: it wins when both do.
CREDENTIAL_HEADERS = ("x-api-key", "authorization")


def add_header(headers: dict[str, str], name: str, value: str) -> None:
    """Add one incoming header (lower-case ``name``) to ``headers``. A credential sent twice with
    different values is combined (RFC 9110), so admission sees both and refuses, instead of the
    last one silently winning; any other repeated header keeps its last value."""
    if name in CREDENTIAL_HEADERS:
        previous = headers.get(name)
        if previous is not None and previous != value:
            value = f"{previous}, {value}"
    headers[name] = value
