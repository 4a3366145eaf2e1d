"""The incremental entry scanner against msgspec decoding the whole body: bodies with every JSON
trick (escaped quotes and backslashes, brackets and commas in strings, unicode escapes and
surrogate pairs, raw non-ASCII, nested arrays and objects, scalars as entries, any whitespace,
an escaped key), cut into chunks at any place, give the same entries; a body broken by one byte
is refused exactly when msgspec refuses it."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sidecar.batches.scan import EntryScanner, MalformedBatch
from sidecar.core.jsonbytes import BAD_JSON

TRICKY = '"\\/[]{},: \t\n\u00e9\u2028\U0001f600\x00\x1fab'
texts = st.one_of(st.text(alphabet=st.sampled_from(TRICKY), max_size=12), st.text(max_size=8))
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    texts,
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(texts, inner, max_size=4)),
    max_leaves=12,
)
WHITESPACE = st.text(alphabet=st.sampled_from(" \t\n\r"), max_size=3)


def scan(body: bytes, cuts: list[int]) -> list[Any]:
    """The entries the scanner cuts from ``body`` fed in pieces, each decoded on its own."""
    scanner = EntryScanner()
    raw: list[bytes] = []
    edges = [0, *sorted({c % (len(body) + 1) for c in cuts}), len(body)]
    for a, b in zip(edges, edges[1:], strict=False):
        raw += scanner.feed(body[a:b])
    scanner.close()
    assert scanner.count == len(raw)
    return [msgspec.json.decode(r) for r in raw]


def full(body: bytes) -> list[Any]:
    """The entries as a whole-body decode sees them, with the shape the scanner demands."""
    data = msgspec.json.decode(body)
    if not isinstance(data, dict) or list(data) != ["requests"]:
        raise ValueError("shape")
    entries = data["requests"]
    if not isinstance(entries, list) or not entries:
        raise ValueError("shape")
    return entries


@st.composite
def bodies(draw: st.DrawFn) -> bytes:
    """``{"requests": [...]}`` written with random whitespace, escaping and key spelling."""
    entries = draw(st.lists(values, min_size=1, max_size=6))
    ascii_only = draw(st.booleans())

    def ws() -> str:
        return draw(WHITESPACE)

    def dump(value: Any) -> str:
        if isinstance(value, list):
            return "[" + ws() + ("," + ws()).join(dump(v) + ws() for v in value) + "]"
        if isinstance(value, dict):
            members = (
                json.dumps(k, ensure_ascii=ascii_only) + ws() + ":" + ws() + dump(v) for k, v in value.items()
            )
            return "{" + ws() + ("," + ws()).join(m + ws() for m in members) + "}"
        return json.dumps(value, ensure_ascii=ascii_only)

    key = draw(st.sampled_from(['"requests"', '"requ\\u0065sts"', '"\\u0072equests"']))
    items = ("," + ws()).join(dump(e) + ws() for e in entries)
    text = ws() + "{" + ws() + key + ws() + ":" + ws() + "[" + ws() + items + "]" + ws() + "}" + ws()
    return text.encode("utf-8", "surrogatepass")


@settings(max_examples=400, deadline=None)
@given(bodies(), st.lists(st.integers(min_value=0), max_size=12))
def test_valid_bodies_give_the_entries_msgspec_sees(body: bytes, cuts: list[int]) -> None:
    assert scan(body, cuts) == full(body)
    assert scan(body, list(range(len(body)))) == full(body)  # one byte at a time


def accepted(body: bytes, cuts: list[int]) -> list[Any] | None:
    try:
        return scan(body, cuts)
    except (MalformedBatch, *BAD_JSON):
        return None


def reference(body: bytes) -> list[Any] | None:
    try:
        return full(body)
    except (ValueError, *BAD_JSON):
        return None


@settings(max_examples=600, deadline=None)
@given(
    bodies(),
    st.integers(min_value=0),
    st.sampled_from(["delete", "insert", "replace", "truncate"]),
    st.sampled_from(list(b'"\\[]{},: 0x\x00\xff') + [0xC3]),
    st.lists(st.integers(min_value=0), max_size=6),
)
def test_a_body_broken_by_one_byte_is_refused_when_msgspec_refuses_it(
    body: bytes, where: int, how: str, byte: int, cuts: list[int]
) -> None:
    i = where % (len(body) + 1)
    if how == "delete":
        broken = body[:i] + body[i + 1 :]
    elif how == "insert":
        broken = body[:i] + bytes([byte]) + body[i:]
    elif how == "replace":
        broken = body[:i] + bytes([byte]) + body[i + 1 :]
    else:
        broken = body[:i]
    assert accepted(broken, cuts) == reference(broken)


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b"", "request body is not valid JSON: it is empty"),
        (b"  ", "request body is not valid JSON: it is empty"),
        (b"[]", "request body must be a JSON object"),
        (b'"x"', "request body must be a JSON object"),
        (b"{}", "requests: Field required"),
        (b'{"requests": {}}', "requests: Field required"),
        (b'{"requests": null}', "requests: Field required"),
        (b'{"requests": []}', "requests: List should have at least 1 item"),
        (b'{"extra": 1, "requests": [{}]}', "extra: Extra inputs are not permitted"),
        (b'{"requests": [{}], "extra": 1}', "extra: Extra inputs are not permitted"),
        (b'{"requests": [{}], "requests": [{}]}', "requests: given twice"),
        (b'{"requests": [{}]', "not valid JSON: truncated at byte 17"),
        (b'{"requests": [{},]}', "not valid JSON: expected a value, got ']' at byte 17"),
        (b'{"requests": [{}]} {}', "not valid JSON: expected the end of the body, got '{' at byte 19"),
        (b'\xef\xbb\xbf{"requests": [{}]}', "not valid JSON: expected a JSON object"),
        (b'{"requ\xffests": [{}]}', "not valid JSON: a key is not a valid string"),
    ],
)
def test_what_is_refused_and_how_it_is_said(body: bytes, says: str) -> None:
    with pytest.raises(MalformedBatch) as info:
        scan(body, [])
    assert says in str(info.value)


def test_it_holds_one_entry_and_one_chunk_not_the_body() -> None:
    entry = b'{"custom_id": "a", "params": {"text": "' + b"x" * 10_000 + b'"}}'
    scanner = EntryScanner()
    scanner.feed(b'{"requests": [')
    held = 0
    for _ in range(200):
        assert scanner.feed(entry[:5000]) == []
        held = max(held, len(scanner._buf))
        assert scanner.feed(entry[5000:] + b",") == [entry]
        held = max(held, len(scanner._buf))
    assert held <= len(entry) + 1
