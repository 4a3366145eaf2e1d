"""Raw HTTP/1.1 for the HTTP campaigns (reliability/http_wire.py): answers parsed off a
connection, and the envelope rule every 4xx must follow."""

from __future__ import annotations

import json

from reliability import http_wire as hw

ENVELOPE = json.dumps({"type": "error", "error": {"type": "invalid_request_error", "message": "x"}}).encode()


def _answer(status: int, body: bytes, extra: str = "") -> bytes:
    return f"HTTP/1.1 {status} X\r\ncontent-length: {len(body)}\r\n{extra}\r\n".encode() + body


def test_answers_are_parsed_by_length_and_chunked_and_partial_ones_left() -> None:
    chunked = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nab\r\n1\r\nc\r\n0\r\n\r\n"
    data = _answer(400, ENVELOPE) + chunked + b"HTTP/1.1 200 OK\r\ncontent-length: 9\r\n\r\nhalf"
    answers, rest = hw.parse_responses(data)
    assert [(a.status, a.body) for a in answers] == [(400, ENVELOPE), (200, b"abc")]
    assert rest.endswith(b"half")
    (head,), _ = hw.parse_responses(b"HTTP/1.1 404 N\r\ncontent-length: 50\r\n\r\n", head=True)
    assert head.status == 404 and head.body == b""


def test_4xx_need_the_envelope_and_5xx_are_refused_but_529_with_retry_after() -> None:
    (ok,), _ = hw.parse_responses(_answer(400, ENVELOPE))
    assert hw.answer_problem(ok) is None
    for body in (b"not json", b"[1]", b'{"type": "error"}', b'{"error": {"type": "x", "message": "y"}}'):
        (bad,), _ = hw.parse_responses(_answer(400, body))
        assert hw.answer_problem(bad) is not None, body
    (overloaded,), _ = hw.parse_responses(_answer(529, ENVELOPE, "retry-after: 1\r\n"))
    assert hw.answer_problem(overloaded) is None
    (plain_529,), _ = hw.parse_responses(_answer(529, ENVELOPE))
    assert hw.answer_problem(plain_529) is not None
    (internal,), _ = hw.parse_responses(_answer(500, ENVELOPE))
    assert hw.answer_problem(internal) is not None


def test_a_4xx_to_head_needs_only_a_json_content_type() -> None:
    answer = b"HTTP/1.1 405 X\r\ncontent-type: application/json\r\ncontent-length: 80\r\n\r\n"
    (r,), _ = hw.parse_responses(answer, head=True)
    assert hw.answer_problem(r, head=True) is None
    (r,), _ = hw.parse_responses(answer.replace(b"application/json", b"text/plain"), head=True)
    assert hw.answer_problem(r, head=True) is not None


def test_post_frames_its_body_by_length() -> None:
    data = hw.post(hw.VALID, b"x-extra: 1\r\n", path=b"/v1/messages/count_tokens")
    assert data.startswith(b"POST /v1/messages/count_tokens HTTP/1.1\r\n")
    assert b"x-extra: 1\r\ncontent-length: %d\r\n\r\n" % len(hw.VALID) in data
    assert data.endswith(hw.VALID)
