"""Raw HTTP/1.1 for the HTTP door's campaigns (``http_fuzz``, ``http_slow``): a request as bytes,
the answers on a connection parsed, and the rule every 4xx must follow (the Anthropic error
envelope as JSON)."""

from __future__ import annotations

import json
from dataclasses import dataclass

VALID = b'{"model":"claude-sonnet-4-6","max_tokens":16,"messages":[{"role":"user","content":"Hello"}]}'


def post(body: bytes, extra: bytes = b"", path: bytes = b"/v1/messages") -> bytes:
    """A ``POST`` of ``body`` with a client's headers, ``extra`` header lines before its length."""
    return (
        b"POST " + path + b" HTTP/1.1\r\nhost: sidecar\r\ncontent-type: application/json\r\n"
        b"x-api-key: sk-fuzz\r\nanthropic-version: 2023-06-01\r\n"
        + extra
        + b"content-length: "
        + str(len(body)).encode()
        + b"\r\n\r\n"
        + body
    )


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes


def parse_responses(data: bytes, head: bool = False) -> tuple[list[Response], bytes]:
    """Complete HTTP/1.1 responses (content-length or chunked) at the start of ``data``, and what
    follows them (``head``: answers to HEAD, which have no body whatever their headers say)."""
    out: list[Response] = []
    while data:
        end = data.find(b"\r\n\r\n")
        if end < 0:
            break
        lines = data[:end].decode("latin-1").split("\r\n")
        parts = lines[0].split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
            raise ValueError(f"not a status line: {lines[0][:80]!r}")
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        rest = data[end + 4 :]
        status = int(parts[1])
        if status < 200 or status in (204, 304) or head:
            body, data = b"", rest
        elif "content-length" in headers:
            n = int(headers["content-length"])
            if len(rest) < n:
                break
            body, data = rest[:n], rest[n:]
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            body_parts, pos, done = [], 0, False
            while True:
                line_end = rest.find(b"\r\n", pos)
                if line_end < 0:
                    break
                size = int(rest[pos:line_end].split(b";")[0], 16)
                if size == 0:
                    trailer_end = rest.find(b"\r\n\r\n", line_end)
                    if trailer_end < 0 and rest[line_end : line_end + 4] != b"\r\n\r\n":
                        break
                    pos = (trailer_end if trailer_end >= 0 else line_end) + 4
                    done = True
                    break
                if len(rest) < line_end + 2 + size + 2:
                    break
                body_parts.append(rest[line_end + 2 : line_end + 2 + size])
                pos = line_end + 2 + size + 2
            if not done:
                break
            body, data = b"".join(body_parts), rest[pos:]
        else:
            body, data = rest, b""  # close-delimited
        out.append(Response(status, headers, body))
    return out, data


def answer_problem(r: Response, head: bool = False) -> str | None:
    """What is wrong with one answer, if anything: a 5xx (but 529 with ``retry-after``), a 4xx
    without the Anthropic error envelope as JSON. An answer to HEAD (``head``) has no body to
    check: its content-type must still say JSON."""
    if head and 400 <= r.status < 500:
        if not r.headers.get("content-type", "").startswith("application/json"):
            return f"HTTP {r.status} to HEAD without a JSON content-type"
        return None
    if r.status >= 500 and not (r.status == 529 and "retry-after" in r.headers):
        return f"HTTP {r.status}: {r.body[:200]!r}"
    if 400 <= r.status < 500:
        try:
            envelope = json.loads(r.body)
        except ValueError:
            return f"HTTP {r.status} without a JSON body: {r.body[:120]!r}"
        error = envelope.get("error") if isinstance(envelope, dict) else None
        if not (
            isinstance(envelope, dict)
            and envelope.get("type") == "error"
            and isinstance(error, dict)
            and isinstance(error.get("type"), str)
            and isinstance(error.get("message"), str)
        ):
            return f"HTTP {r.status} without the Anthropic envelope: {r.body[:120]!r}"
    return None
