"""Only what telemetry reads from a JSON Message (ids, stop reason, usage), decoded by msgspec in
one typed pass that skips everything else, content included.

A module of its own because ``attempt`` is compiled (``setup.py``) and these classes must not
be: msgspec reads a Struct's field annotations, which a mypyc-compiled class does not keep.
"""

from __future__ import annotations

import msgspec

__all__ = ["Message", "decode_message"]


class Details(msgspec.Struct):
    thinking_tokens: int | None = None


class Usage(msgspec.Struct):
    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_creation_input_tokens: int | None = None
    cache_read_input_tokens: int | None = None
    output_tokens_details: Details | None = None


class Message(msgspec.Struct):
    id: str | None = None
    model: str | None = None
    stop_reason: str | None = None
    usage: Usage | None = None


decode_message = msgspec.json.Decoder(Message).decode
