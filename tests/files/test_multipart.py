"""The incremental multipart parser: bodies httpx builds, cut at every possible place, parse to
the same parts and bytes; malformed bodies are refused."""

from __future__ import annotations

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sidecar.files.multipart import PART_END, MalformedMultipart, MultipartParser, Part, boundary_of


def build(content: bytes, filename: str = "a.bin", **fields: str) -> tuple[str, bytes]:
    request = httpx.Request(
        "POST", "http://x/", files={"file": (filename, content, "application/x-thing")}, data=fields
    )
    return request.headers["content-type"], request.read()


def parse(ctype: str, body: bytes, cuts: list[int]) -> tuple[list[Part], dict[str, bytes]]:
    boundary = boundary_of(ctype)
    assert boundary is not None
    parser = MultipartParser(boundary)
    parts: list[Part] = []
    data: dict[str, bytes] = {}
    current: Part | None = None
    edges = [0, *sorted(set(c % (len(body) + 1) for c in cuts)), len(body)]
    for a, b in zip(edges, edges[1:], strict=False):
        for event in parser.feed(body[a:b]):
            if isinstance(event, Part):
                current = event
                parts.append(event)
                data[event.name] = b""
            elif event is PART_END:
                current = None
            else:
                assert current is not None and isinstance(event, bytes)
                data[current.name] += event
    parser.close()
    return parts, data


@settings(max_examples=200, deadline=None)
@given(
    content=st.binary(max_size=3000) | st.just(b"\r\n--\r\n--x" * 50),
    cuts=st.lists(st.integers(min_value=0, max_value=10_000), max_size=12),
)
def test_any_chunking_gives_the_same_parts(content: bytes, cuts: list[int]) -> None:
    ctype, body = build(content, note="hi there")
    parts, data = parse(ctype, body, cuts)
    assert [p.name for p in parts] == ["note", "file"]
    assert parts[1].filename == "a.bin" and parts[1].content_type == "application/x-thing"
    assert data == {"note": b"hi there", "file": content}


def test_utf8_filename() -> None:
    ctype, body = build(b"x", filename="résumé.txt")
    parts, _ = parse(ctype, body, [])
    assert parts[0].filename == "résumé.txt"


@pytest.mark.parametrize(
    "ctype",
    ["application/json", "multipart/form-data", "multipart/mixed; boundary=abc", "text/plain; boundary=x"],
)
def test_not_a_form(ctype: str) -> None:
    assert boundary_of(ctype) is None


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b'--b\r\ncontent-disposition: form-data; name="f"\r\n\r\nabc', "closing boundary"),
        (b"--b\r\nx-thing: 1\r\n\r\nabc\r\n--b--\r\n", "no content-disposition"),
        (b"--b\r\ncontent-disposition: attachment\r\n\r\nabc\r\n--b--\r\n", "not form-data"),
        (b"--bxyz\r\n", "stray bytes"),
        (b"no delimiter at all", "closing boundary"),
    ],
)
def test_malformed(body: bytes, says: str) -> None:
    parser = MultipartParser("b")
    with pytest.raises(MalformedMultipart, match=says):
        parser.feed(body)
        parser.close()
