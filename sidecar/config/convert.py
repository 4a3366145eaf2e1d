"""The one decoder of config trees: msgspec conversion with errors that name the field.

A leaf (it imports only ``sidecar.errors``), so every config section, the main file's and the
admission keys file's alike, decodes through it without importing the loader.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec

from ..errors import ConfigError

__all__ = ["convert"]

_PATH_AT = re.compile(r" - at `\$(.*)`$")
_FIELD_FIRST = re.compile(r"^([A-Za-z_][A-Za-z0-9_.]*): (.*)$", re.S)


def _dotted(msgspec_path: str) -> str:
    # msgspec says `$.routes[0].match`; we say `routes.0.match`.
    return re.sub(r"\[(\d+)\]", r".\1", msgspec_path).lstrip(".").replace("[", ".").replace("]", "")


def convert(data: Any, kind: Any, prefix: str) -> Any:
    """Decode ``data`` into ``kind`` (msgspec); a failure is one ConfigError naming the field
    (``prefix.routes.0.match: ...``). A check of ours that says ``field: ...`` (a
    ``__post_init__`` ValueError) has that field folded into the path."""
    try:
        return msgspec.convert(data, kind, str_keys=True)
    except msgspec.ValidationError as exc:
        text = str(exc)
        m = _PATH_AT.search(text)
        where = ".".join(p for p in (prefix, _dotted(m.group(1)) if m else "") if p)
        message = text[: m.start()] if m else text
        inner = _FIELD_FIRST.match(message)
        if inner:
            where = ".".join(p for p in (where, inner.group(1)) if p)
            message = inner.group(2)
        raise ConfigError(f"{where}: {message}" if where else message) from None
