"""Pure helpers for the mock upstream: text, ids, token estimates, tool inputs, model names.

Everything here is a pure function of its arguments, built on ``hashlib`` so results are the same
in every process and on every Python version (``hash()`` and ``random`` are not).
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import re
from collections.abc import Iterator
from typing import Any

__all__ = [
    "DOCUMENT_TOKENS",
    "IMAGE_TOKENS",
    "content_tokens",
    "count_words",
    "digest",
    "display_name",
    "estimate_input_tokens",
    "find_stop",
    "generate_text",
    "json_tokens",
    "make_id",
    "make_signature",
    "sample_input",
    "split_fragments",
    "split_words",
    "text_tokens",
]

#: Flat input-token estimate for one image block, whatever its size or source.
IMAGE_TOKENS = 1600
#: Flat input-token estimate for one PDF document (base64, url or file source).
DOCUMENT_TOKENS = 1600

# 128 plain words: a byte modulo 128 picks one without bias.
_WORDS: tuple[str, ...] = (
    "the", "model", "answer", "request", "token", "stream", "quiet", "river", "stone", "light",
    "paper", "signal", "window", "garden", "market", "engine", "bridge", "circle", "forest", "harbor",
    "island", "journey", "kettle", "ladder", "meadow", "needle", "orange", "pencil", "rocket", "silver",
    "timber", "valley", "wander", "yellow", "anchor", "basket", "candle", "desert", "feather", "glacier",
    "hollow", "ivory", "jacket", "lantern", "marble", "nectar", "orbit", "pebble", "quartz", "ribbon",
    "saddle", "thunder", "umbrella", "velvet", "whisper", "zephyr", "amber", "breeze", "cobalt", "dawn",
    "ember", "fable", "granite", "horizon", "indigo", "jasmine", "kindle", "lotus", "mosaic", "north",
    "ocean", "prism", "quill", "rain", "summit", "tide", "unity", "vapor", "willow", "cedar",
    "is", "and", "of", "to", "in", "with", "for", "on", "by", "from",
    "a", "an", "it", "this", "that", "as", "at", "each", "every", "some",
    "calm", "bright", "steady", "simple", "gentle", "clear", "small", "large", "early", "late",
    "moves", "holds", "finds", "keeps", "turns", "reads", "writes", "builds", "counts", "waits",
    "slowly", "softly", "often", "again", "always", "never", "here", "there",
)  # fmt: skip
assert len(_WORDS) == 128

_B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
# A word with the spaces before it; trailing spaces are added to the last word.
_PIECE = re.compile(r"\s*\S+")


def digest(*parts: str | bytes) -> bytes:
    """SHA-256 over the parts, each length-prefixed so ("ab", "c") and ("a", "bc") differ."""
    h = hashlib.sha256()
    for part in parts:
        data = part.encode() if isinstance(part, str) else part
        h.update(len(data).to_bytes(8, "big"))
        h.update(data)
    return h.digest()


def _byte_stream(seed: bytes) -> Iterator[int]:
    counter = 0
    while True:
        yield from hashlib.sha256(seed + counter.to_bytes(8, "big")).digest()
        counter += 1


def generate_text(seed: bytes, words: int, limit: int | None = None) -> str:
    """``words`` words of sentence-shaped text from ``seed``; only the first ``limit`` when given.

    Word ``i`` depends only on the seed and ``i`` (the total only decides where the final full stop
    goes), so a longer answer starts with the shorter one.
    """
    count = words if limit is None else max(0, min(words, limit))
    rnd = _byte_stream(seed)
    out: list[str] = []
    left = 0  # words left in the current sentence
    for i in range(count):
        start = left == 0
        if start:
            left = 5 + next(rnd) % 8
        word = _WORDS[next(rnd) % 128]
        if start:
            word = word.capitalize()
        left -= 1
        if left == 0 or i == words - 1:
            word += "."
            left = 0
        out.append(word)
    return " ".join(out)


def split_words(text: str) -> list[str]:
    """``text`` cut into one-word pieces (spaces kept with the word after them) that join back to it."""
    # The trailing whitespace is cut off first: ``\s*\S+`` tried at each of its positions would
    # scan it all to the end every time (quadratic: seconds of the event loop for 100 KB).
    body = text.rstrip()
    pieces: list[str] = _PIECE.findall(body)
    tail = text[len(body) :]
    if tail:
        if pieces:
            pieces[-1] += tail
        else:
            pieces.append(tail)
    return pieces


def count_words(text: str) -> int:
    """Output tokens for generated text: one per word (a piece of ``split_words``)."""
    return len(split_words(text))


def split_fragments(text: str, parts: int = 3) -> list[str]:
    """``text`` cut into at most ``parts`` non-empty pieces of about equal length."""
    parts = max(1, min(parts, len(text)))
    cuts = [len(text) * k // parts for k in range(parts + 1)]
    return [text[cuts[k] : cuts[k + 1]] for k in range(parts)]


def _base62(data: bytes, width: int = 22) -> str:
    n = int.from_bytes(data, "big")
    out = []
    while n:
        n, r = divmod(n, 62)
        out.append(_B62[r])
    return "".join(reversed(out)).rjust(width, "0")[:width]


def make_id(prefix: str, *parts: str | bytes) -> str:
    """An id in the API's style (``msg_01...``, ``toolu_01...``) derived from ``parts``."""
    return prefix + "01" + _base62(digest(prefix, *parts)[:16])


def make_signature(*parts: str | bytes) -> str:
    """An opaque, deterministic thinking signature (base64 text, like the real one)."""
    raw = hashlib.sha512(digest("signature", *parts)).digest()
    return base64.b64encode(raw + hashlib.sha512(raw).digest()).decode()


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


def text_tokens(text: str) -> int:
    """Input tokens for a piece of text: a character count over four, rounded up, at least one."""
    return max(1, math.ceil(len(text) / 4))


def json_tokens(value: Any) -> int:
    """Tokens for a JSON value (tool inputs, tool definitions, unknown blocks): its text over four."""
    return text_tokens(_dumps(value))


def _source_tokens(source: Any) -> int:
    if isinstance(source, dict):
        kind = source.get("type")
        if kind == "text" and isinstance(source.get("data"), str):
            return text_tokens(source["data"])
        if kind == "content":
            return content_tokens(source.get("content"))
    return DOCUMENT_TOKENS


def _block_tokens(block: Any) -> int:
    if isinstance(block, str):
        return text_tokens(block)
    if not isinstance(block, dict):
        return json_tokens(block)
    kind = block.get("type")
    if kind == "text":
        text = block.get("text")
        return text_tokens(text if isinstance(text, str) else "")
    if kind == "image":
        return IMAGE_TOKENS
    if kind == "document":
        return _source_tokens(block.get("source"))
    if kind in ("search_result", "tool_result"):
        return content_tokens(block.get("content"))
    if kind in ("tool_use", "server_tool_use"):
        return json_tokens({"name": block.get("name"), "input": block.get("input")})
    if kind == "thinking":
        thinking = block.get("thinking")
        return text_tokens(thinking if isinstance(thinking, str) else "")
    if kind == "redacted_thinking":
        data = block.get("data")
        return text_tokens(data if isinstance(data, str) else "")
    return json_tokens(block)


def content_tokens(content: Any) -> int:
    """Input tokens for message or block content: a string, a list of blocks, or nothing (1)."""
    if isinstance(content, str):
        return text_tokens(content)
    if isinstance(content, list):
        return max(1, sum(_block_tokens(block) for block in content))
    return 1


def estimate_input_tokens(body: dict[str, Any]) -> int:
    """Input tokens for a Messages or count_tokens body: system + messages + tools.

    Text is about four characters a token (at least one per block); an image is ``IMAGE_TOKENS``;
    a PDF document is ``DOCUMENT_TOKENS``; a tool definition or unknown block is its JSON text.
    """
    total = 0
    system = body.get("system")
    if system is not None:
        total += content_tokens(system)
    messages = body.get("messages")
    if isinstance(messages, list):
        for message in messages:
            total += content_tokens(message.get("content")) if isinstance(message, dict) else 1
    tools = body.get("tools")
    if isinstance(tools, list):
        total += sum(json_tokens(tool) for tool in tools)
    return max(1, total)


def find_stop(text: str, sequences: Any) -> tuple[int, int, str] | None:
    """(start, end, sequence) of the stop sequence that completes first in ``text``."""
    best: tuple[int, int, str] | None = None
    if not isinstance(sequences, list):
        return None
    for seq in sequences:
        if not isinstance(seq, str) or not seq:
            continue
        start = text.find(seq)
        if start >= 0 and (best is None or (start + len(seq), start) < (best[1], best[0])):
            best = (start, start + len(seq), seq)
    return best


def _sample(schema: Any, depth: int = 0) -> Any:
    """A small value that fits ``schema`` (first enum value, or a sample of its type)."""
    if not isinstance(schema, dict):
        return "sample"
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return schema["enum"][0]
    if "const" in schema:
        return schema["const"]
    for key in ("anyOf", "oneOf", "allOf"):
        options = schema.get(key)
        if isinstance(options, list) and options:
            return _sample(options[0], depth)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), kind[0] if kind else None)
    if kind == "object" or (kind is None and "properties" in schema):
        return _sample_object(schema, depth + 1, all_when_none_required=False) if depth < 8 else {}
    return {"string": "sample", "integer": 1, "number": 1.5, "boolean": True, "array": [], "null": None}.get(
        kind if isinstance(kind, str) else "", "sample"
    )


def _sample_object(schema: dict[str, Any], depth: int, *, all_when_none_required: bool) -> dict[str, Any]:
    properties = schema.get("properties")
    properties = properties if isinstance(properties, dict) else {}
    required = schema.get("required")
    names = [n for n in required if isinstance(n, str)] if isinstance(required, list) else []
    if not names and all_when_none_required:
        names = list(properties)
    ordered = [n for n in properties if n in names] + [n for n in names if n not in properties]
    return {n: _sample(properties.get(n), depth) for n in dict.fromkeys(ordered)}


def sample_input(schema: dict[str, Any]) -> dict[str, Any]:
    """A tool input for ``input_schema``: its required properties (all when none is required)."""
    return _sample_object(schema, 0, all_when_none_required=True)


def display_name(model_id: str) -> str:
    """``claude-haiku-4-5-20251001`` -> ``Claude Haiku 4.5``; ``mock-1`` -> ``Mock 1``."""
    parts = model_id.split("-")
    if len(parts) > 1 and len(parts[-1]) == 8 and parts[-1].isdigit():
        parts = parts[:-1]
    out: list[str] = []
    for part in parts:
        if part.isdigit() and out and out[-1][-1:].isdigit():
            out[-1] += "." + part
        else:
            out.append(part[:1].upper() + part[1:])
    return " ".join(out)
