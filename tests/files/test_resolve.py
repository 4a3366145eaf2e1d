"""File references made inline sources: images, PDFs and text, wherever the API reads them; the
caller's body is never changed; unknown ids are returned; a file of the wrong kind is a 400."""

from __future__ import annotations

import base64
import copy
from typing import Any

import pytest

from sidecar.errors import InvalidRequest
from sidecar.files import FileRecord, has_file_sources, inline_files

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 20
PDF = b"%PDF-1.4 tiny"
FILES = {
    "file_png": (PNG, "image/png"),
    "file_pdf": (PDF, "application/pdf"),
    "file_txt": ("héllo".encode(), "text/plain"),
    "file_zip": (b"PK\x03\x04", "application/zip"),
}


async def lookup(file_id: str) -> tuple[FileRecord, bytes] | None:
    if file_id not in FILES:
        return None
    content, mime = FILES[file_id]
    record = FileRecord(
        id=file_id, owner="", filename="x", mime_type=mime, size_bytes=len(content), created_at=0.0
    )
    return record, content


def ref(kind: str, file_id: str, **extra: Any) -> dict[str, Any]:
    return {"type": kind, "source": {"type": "file", "file_id": file_id}, **extra}


def body(*blocks: Any) -> dict[str, Any]:
    return {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": [*blocks]}]}


async def test_image_pdf_text_inlined_and_unknown_returned() -> None:
    original = body(
        ref("image", "file_png"),
        ref("document", "file_pdf", title="T"),
        ref("document", "file_txt"),
        ref("image", "file_nope"),
        {"type": "text", "text": "hi"},
    )
    kept = copy.deepcopy(original)
    got, unknown = await inline_files(original, lookup)
    assert original == kept  # the caller's body is untouched
    blocks = got["messages"][0]["content"]
    assert blocks[0]["source"] == {
        "type": "base64",
        "media_type": "image/png",
        "data": base64.b64encode(PNG).decode(),
    }
    assert blocks[1]["source"]["media_type"] == "application/pdf" and blocks[1]["title"] == "T"
    assert blocks[2]["source"] == {"type": "text", "media_type": "text/plain", "data": "héllo"}
    assert blocks[3] == ref("image", "file_nope")
    assert unknown == [("messages.0.content.3", "file_nope")]


async def test_nested_in_tool_results_and_documents() -> None:
    original = body(
        {"type": "tool_result", "tool_use_id": "t", "content": [ref("image", "file_png")]},
        {"type": "document", "source": {"type": "content", "content": [ref("image", "file_png")]}},
    )
    got, unknown = await inline_files(original, lookup)
    content = got["messages"][0]["content"]
    assert content[0]["content"][0]["source"]["type"] == "base64"
    assert content[1]["source"]["content"][0]["source"]["type"] == "base64"
    assert original["messages"][0]["content"][0]["content"][0]["source"]["type"] == "file"
    assert unknown == []


async def test_nothing_to_do() -> None:
    plain = body({"type": "text", "text": "hi"})
    assert not has_file_sources(plain)
    assert not has_file_sources(plain, b'{"no": 1}')
    assert has_file_sources(body(ref("image", "x")))
    got, unknown = await inline_files(plain, lookup)
    assert got is plain and unknown == []


@pytest.mark.parametrize(
    ("block", "says"),
    [
        (ref("image", "file_pdf"), "messages.0.content.0.source: file file_pdf is application/pdf"),
        (ref("document", "file_zip"), "a document block takes a PDF or plain text"),
    ],
)
async def test_wrong_kind(block: dict[str, Any], says: str) -> None:
    with pytest.raises(InvalidRequest, match=says):
        await inline_files(body(block), lookup)
