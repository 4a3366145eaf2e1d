"""File references in a Messages body, resolved into inline sources.

An ``image`` or ``document`` block whose source is ``{"type": "file", "file_id"}`` becomes the
inline source the API would have read from the file: an image as ``base64`` with its media type,
a PDF as ``base64`` ``application/pdf``, a text file as a ``text`` source. Blocks are found where
the API takes them: in message content, inside ``tool_result`` content, and inside a document's
``content`` source.

``inline_files`` inlines every id its lookup knows and returns the ids it did not know: the
pipeline refuses them (404) on routes that cannot read the API's files (translated upstreams,
the mock) and leaves them for an Anthropic upstream (they may be its own files).
"""

from __future__ import annotations

import base64
from collections.abc import Awaitable, Callable
from typing import Any

from ..errors import InvalidRequest
from .mime import IMAGE_TYPES
from .store import FileRecord

__all__ = ["FileLookup", "has_file_sources", "inline_files"]

#: ``file_id`` -> (its record, its contents), or None when the caller may not read such a file.
FileLookup = Callable[[str], Awaitable[tuple[FileRecord, bytes] | None]]


def _file_source(block: Any) -> str | None:
    """The file id of an image or document block with a file source."""
    if not isinstance(block, dict) or block.get("type") not in ("image", "document"):
        return None
    source = block.get("source")
    if isinstance(source, dict) and source.get("type") == "file":
        file_id = source.get("file_id")
        if isinstance(file_id, str):
            return file_id
    return None


def _children(block: dict[str, Any]) -> list[Any] | None:
    """Nested blocks the API reads file sources in."""
    btype = block.get("type")
    if btype == "tool_result":
        content = block.get("content")
        return content if isinstance(content, list) else None
    if btype == "document":
        source = block.get("source")
        if isinstance(source, dict) and source.get("type") == "content":
            content = source.get("content")
            return content if isinstance(content, list) else None
    return None


def _walk(blocks: list[Any], path: str, found: list[str]) -> None:
    for i, block in enumerate(blocks):
        if not isinstance(block, dict):
            continue
        if _file_source(block) is not None:
            found.append(f"{path}.{i}")
            continue
        children = _children(block)
        if children is not None:
            where = "content" if block.get("type") == "tool_result" else "source.content"
            _walk(children, f"{path}.{i}.{where}", found)


def _references(body: dict[str, Any]) -> list[str]:
    """The paths of the blocks with a file source."""
    found: list[str] = []
    messages = body.get("messages")
    if isinstance(messages, list):
        for m, message in enumerate(messages):
            content = message.get("content") if isinstance(message, dict) else None
            if isinstance(content, list):
                _walk(content, f"messages.{m}.content", found)
    return found


def has_file_sources(body: dict[str, Any], raw: bytes | None = None) -> bool:
    """True when ``body`` references a file (``raw``, its JSON bytes, makes the common "no"
    a substring search)."""
    if raw is not None and b'"file_id"' not in raw:
        return False
    return bool(_references(body))


def _source(block: dict[str, Any], record: FileRecord, content: bytes, path: str) -> dict[str, Any]:
    mime = record.mime_type
    if block["type"] == "image":
        if mime not in IMAGE_TYPES:
            raise InvalidRequest(
                f"{path}.source: file {record.id} is {mime}; an image block takes "
                "image/jpeg, image/png, image/gif or image/webp"
            )
        return {"type": "base64", "media_type": mime, "data": base64.b64encode(content).decode("ascii")}
    if mime == "application/pdf":
        return {"type": "base64", "media_type": mime, "data": base64.b64encode(content).decode("ascii")}
    if mime.startswith("text/"):
        try:
            text = content.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidRequest(f"{path}.source: file {record.id} is not UTF-8 text") from None
        return {"type": "text", "media_type": "text/plain", "data": text}
    raise InvalidRequest(
        f"{path}.source: file {record.id} is {mime}; a document block takes a PDF or plain text"
    )


async def inline_files(
    body: dict[str, Any], lookup: FileLookup
) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """``body`` with every file reference ``lookup`` knows inlined (a copy: the caller's body is
    left as it was; ``body`` itself when nothing changed), and the (path, id) of those it did not
    know."""
    unknown: list[tuple[str, str]] = []
    refs = _references(body)
    if not refs:
        return body, unknown
    # Copy the containers on the way to each reference, so the original is never changed.
    copy = _copy_messages(body)
    changed = False
    for path in refs:
        blocks, index = _locate(copy, path)
        block = blocks[index]
        file_id = _file_source(block)
        assert file_id is not None
        found = await lookup(file_id)
        if found is None:
            unknown.append((path, file_id))
            continue
        record, content = found
        blocks[index] = {**block, "source": _source(block, record, content, path)}
        changed = True
    return (copy if changed else body), unknown


def _copy_messages(body: dict[str, Any]) -> dict[str, Any]:
    """``body`` with its messages, their content lists and nested block lists copied (blocks
    are replaced, not changed, so the lists are all that must be new)."""

    def blocks(items: list[Any]) -> list[Any]:
        out: list[Any] = []
        for block in items:
            if isinstance(block, dict) and _children(block) is not None:
                if block.get("type") == "tool_result":
                    block = {**block, "content": blocks(block["content"])}
                else:
                    source = block["source"]
                    block = {**block, "source": {**source, "content": blocks(source["content"])}}
            out.append(block)
        return out

    messages = []
    for message in body["messages"]:
        if isinstance(message, dict) and isinstance(message.get("content"), list):
            message = {**message, "content": blocks(message["content"])}
        messages.append(message)
    return {**body, "messages": messages}


def _locate(body: dict[str, Any], path: str) -> tuple[list[Any], int]:
    """The list and index a reference's path (``messages.M.content.I[.content.J...]``) names."""
    parts = path.split(".")
    node: Any = body
    for part in parts[:-1]:
        node = node[int(part)] if part.isdigit() else node[part]
    return node, int(parts[-1])
