"""The local token estimate: its rules, its additivity, and image sizes from headers."""

from __future__ import annotations

import base64
import struct

from sidecar.core.estimate import (
    UNKNOWN_IMAGE,
    TextCounter,
    estimate_input_tokens,
    image_tokens,
    text_tokens,
)


def test_text_rules() -> None:
    assert text_tokens("") == 0
    assert text_tokens("a") == 1
    assert text_tokens("x" * 400) == 100
    assert text_tokens("日本語のテキスト") == 8
    assert text_tokens("Привет мир") == round(1 / 4 + 9 / 2.5)


def test_counting_in_fragments_equals_counting_whole() -> None:
    text = "Hello, мир! 你好世界 " * 7
    whole = TextCounter()
    whole.add(text)
    parts = TextCounter()
    for i in range(0, len(text), 3):
        parts.add(text[i : i + 3])
    assert parts.tokens() == whole.tokens()


def test_english_is_in_the_documented_range() -> None:
    # 100 words of ordinary prose are about 130 BPE tokens (cl100k/o200k); within 15%.
    prose = ("The quick brown fox jumps over the lazy dog while the farmer watches from afar. " * 7)[:560]
    assert 0.85 * 130 <= text_tokens(prose) <= 1.15 * 130


def test_images_from_headers() -> None:
    assert image_tokens(1024, 1024) == 765
    assert image_tokens(512, 512) == 255
    assert image_tokens(4096, 2048) == 85 + 170 * 6
    png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + struct.pack(">II", 512, 512)
    gif = b"GIF89a" + struct.pack("<HH", 512, 512)
    jpeg = b"\xff\xd8\xff\xe0\x00\x04ab\xff\xc0\x00\x11\x08" + struct.pack(">HH", 512, 512) + b"\x03"
    for data in (png, gif, jpeg):
        block = {
            "type": "image",
            "source": {"type": "base64", "media_type": "image/png", "data": base64.b64encode(data).decode()},
        }
        assert estimate_input_tokens({"messages": [{"role": "user", "content": [block]}]}) == 255 + 3 + 3
    url = {"type": "image", "source": {"type": "url", "url": "https://x"}}
    assert estimate_input_tokens({"messages": [{"role": "user", "content": [url]}]}) == UNKNOWN_IMAGE + 6


def test_request_estimate_counts_everything() -> None:
    base = {"messages": [{"role": "user", "content": "hello world"}]}
    n = estimate_input_tokens(base)
    assert n == 3 + 3 + 3
    assert estimate_input_tokens({**base, "system": "s" * 40}) == n + 3 + 10
    tool = {"name": "f", "input_schema": {"type": "object"}}
    assert estimate_input_tokens({**base, "tools": [tool]}) > n
    assert estimate_input_tokens({"messages": []}) >= 1
