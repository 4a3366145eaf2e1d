"""An incremental ``multipart/form-data`` parser: bytes go in as they arrive, parts come out.

Hand-written rather than a dependency: the Files API needs one shape (a ``file`` part and a few
small fields), the delimiter search is ``bytes.find`` (C, at memory speed), and it holds at most
one chunk plus a delimiter's length of the body, whatever the part's size.

``MultipartParser.feed(data)`` returns events in order: ``Part`` (a part's headers), ``bytes``
(its data, in pieces) and ``PART_END``; ``close()`` checks the body ended with its closing
delimiter. A malformed body raises ``MalformedMultipart``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

__all__ = ["PART_END", "MalformedMultipart", "MultipartParser", "Part", "boundary_of"]

_MAX_HEADERS = 16 * 1024  # a part's header block
_PARAM = re.compile(r';\s*([^=;\s]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;]*)')
_TOKEN = re.compile(r"^[0-9A-Za-z'()+_,\-./:=? ]{1,70}$")


class MalformedMultipart(ValueError):
    """The body is not the multipart/form-data its content-type says."""


class _PartEnd:
    __slots__ = ()

    def __repr__(self) -> str:
        return "PART_END"


PART_END = _PartEnd()


@dataclass(frozen=True, slots=True)
class Part:
    """A part's headers: its form field name, its filename (file parts) and content-type."""

    name: str
    filename: str | None = None
    content_type: str | None = None
    headers: dict[str, str] = field(default_factory=dict)


Event = Part | bytes | _PartEnd


def _params(value: str) -> tuple[str, dict[str, str]]:
    """``type; a=1; b="x"`` as ("type", {"a": "1", "b": "x"}) (names lower-case)."""
    head, _, _ = value.partition(";")
    params: dict[str, str] = {}
    for match in _PARAM.finditer(value[len(head) :]):
        name, raw = match.group(1).lower(), match.group(2).strip()
        if raw.startswith('"') and raw.endswith('"') and len(raw) >= 2:
            raw = re.sub(r"\\(.)", r"\1", raw[1:-1])
        params[name] = raw
    return head.strip().lower(), params


def boundary_of(content_type: str) -> str | None:
    """The boundary of a ``multipart/form-data`` content-type, or None when it is not one."""
    kind, params = _params(content_type)
    boundary = params.get("boundary")
    if kind != "multipart/form-data" or not boundary or not _TOKEN.match(boundary):
        return None
    return boundary


def _decode(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def _part(block: bytes) -> Part:
    headers: dict[str, str] = {}
    for line in block.split(b"\r\n"):
        if not line:
            continue
        name, sep, value = line.partition(b":")
        if not sep or not name.strip():
            raise MalformedMultipart(f"a part has a malformed header line {line[:80]!r}")
        headers[_decode(name).strip().lower()] = _decode(value).strip()
    disposition = headers.get("content-disposition")
    if disposition is None:
        raise MalformedMultipart("a part has no content-disposition header")
    kind, params = _params(disposition)
    if kind != "form-data" or "name" not in params:
        raise MalformedMultipart("a part's content-disposition is not form-data with a name")
    filename = params.get("filename")
    encoded = params.get("filename*")  # RFC 5987: utf-8''name
    if encoded and "''" in encoded:
        from urllib.parse import unquote

        charset, _, quoted = encoded.partition("''")
        filename = unquote(quoted, encoding=charset or "utf-8", errors="replace")
    return Part(params["name"], filename, headers.get("content-type"), headers)


class MultipartParser:
    def __init__(self, boundary: str) -> None:
        self._delimiter = b"\r\n--" + boundary.encode("latin-1")
        # The body starts with the first delimiter, without the CRLF before it: feed one.
        self._buffer = b"\r\n"
        self._state = "preamble"  # preamble | after | headers | body | done
        self.complete = False

    def feed(self, data: bytes) -> list[Event]:
        events: list[Event] = []
        buf = self._buffer + data if self._buffer else data
        delim = self._delimiter
        while True:
            state = self._state
            if state == "done":
                buf = b""  # the epilogue is ignored
                break
            if state in ("preamble", "body"):
                at = buf.find(delim)
                if at < 0:
                    keep = len(delim) - 1
                    if state == "body" and len(buf) > keep:
                        events.append(buf[: len(buf) - keep])
                    buf = buf[-keep:] if len(buf) > keep else buf
                    break
                if state == "body":
                    if at:
                        events.append(buf[:at])
                    events.append(PART_END)
                buf = buf[at + len(delim) :]
                self._state = "after"
            elif state == "after":
                if len(buf) < 2:
                    break
                if buf.startswith(b"--"):
                    self._state = "done"
                    self.complete = True
                    continue
                end = buf.find(b"\r\n")
                if end < 0:
                    if len(buf) > 256:
                        raise MalformedMultipart("a delimiter is not followed by a line break")
                    break
                if buf[:end].strip(b" \t"):
                    raise MalformedMultipart("a delimiter is followed by stray bytes")
                buf = buf[end + 2 :]
                self._state = "headers"
            else:  # headers
                end = buf.find(b"\r\n\r\n")
                if end < 0:
                    if len(buf) > _MAX_HEADERS:
                        raise MalformedMultipart(f"a part's headers exceed {_MAX_HEADERS} bytes")
                    # An empty header block ends right at the first CRLF.
                    if buf.startswith(b"\r\n"):
                        raise MalformedMultipart("a part has no content-disposition header")
                    break
                events.append(_part(buf[:end]))
                buf = buf[end + 4 :]
                self._state = "body"
        self._buffer = buf
        return events

    def close(self) -> None:
        """The body ended: raises ``MalformedMultipart`` unless its closing delimiter came."""
        if not self.complete:
            raise MalformedMultipart("the body ended before its closing boundary")
