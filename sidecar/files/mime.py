"""The MIME type of an uploaded file: its first bytes first, then what the client said, then
its name."""

from __future__ import annotations

import mimetypes

__all__ = ["IMAGE_TYPES", "detect_mime"]

#: The image types an ``image`` block takes.
IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})
_GENERIC = ("application/octet-stream", "")


def _sniff(head: bytes) -> str | None:
    if head.startswith(b"%PDF-"):
        return "application/pdf"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "image/webp"
    return None


def _texty(head: bytes) -> bool:
    if b"\x00" in head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A multi-byte character cut at the end of the sample is still text.
        return exc.start >= len(head) - 3 and exc.reason == "unexpected end of data"
    return True


def detect_mime(head: bytes, declared: str | None, filename: str | None) -> str:
    """``head``: the file's first bytes (up to 512); ``declared``: the part's content-type."""
    sniffed = _sniff(head)
    if sniffed is not None:
        return sniffed
    kind = (declared or "").partition(";")[0].strip().lower()
    if kind not in _GENERIC and "/" in kind:
        return kind
    guessed = mimetypes.guess_type(filename or "", strict=False)[0]
    if guessed:
        return guessed
    return "text/plain" if head and _texty(head) else "application/octet-stream"
