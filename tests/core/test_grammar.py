"""The stream-grammar validator: what it accepts and each rule it enforces."""

from __future__ import annotations

from typing import Any

import pytest

from sidecar.core.answer import encode_sse
from sidecar.core.grammar import GrammarChecker, check_events, check_sse

START = {
    "type": "message_start",
    "message": {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "m",
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {"input_tokens": 3, "output_tokens": 1},
    },
}
DELTA = {
    "type": "message_delta",
    "delta": {"stop_reason": "end_turn", "stop_sequence": None},
    "usage": {"output_tokens": 2},
}
STOP = {"type": "message_stop"}
PING = {"type": "ping"}


def block(index: int, kind: str, *deltas: dict[str, Any]) -> list[dict[str, Any]]:
    shell: dict[str, Any] = {"type": kind}
    return [
        {"type": "content_block_start", "index": index, "content_block": shell},
        *({"type": "content_block_delta", "index": index, "delta": d} for d in deltas),
        {"type": "content_block_stop", "index": index},
    ]


TEXT = {"type": "text_delta", "text": "hi"}
THINK = {"type": "thinking_delta", "thinking": "hmm"}
SIG = {"type": "signature_delta", "signature": "s"}
JSON = {"type": "input_json_delta", "partial_json": "{}"}
VALID = [
    PING,
    START,
    *block(0, "thinking", THINK, SIG),
    PING,
    *block(1, "text", TEXT, {"type": "citations_delta", "citation": {}}),
    {"type": "future_event", "x": 1},
    *block(2, "tool_use", JSON),
    *block(3, "server_tool_use", JSON),
    *block(4, "web_search_tool_result"),
    *block(5, "text", {"type": "future_delta"}),
    DELTA,
    DELTA,
    STOP,
]


def test_a_full_valid_stream() -> None:
    assert check_events(VALID) == []
    assert check_sse(b"".join(encode_sse(e["type"], e) for e in VALID) + b": comment\n\n") == []


@pytest.mark.parametrize(
    ("events", "words"),
    [
        ([START, START, DELTA, STOP], "second message_start"),
        ([*block(0, "text", TEXT), START, DELTA, STOP], "before message_start"),
        ([START, *block(1, "text", TEXT), DELTA, STOP], "index 1, expected 0"),
        ([START, *block(0, "text"), *block(0, "text"), DELTA, STOP], "index 0, expected 1"),
        ([START, block(0, "text")[0], block(1, "text")[0], DELTA, STOP], "while block 0 is open"),
        ([START, *block(0, "text", JSON), DELTA, STOP], "input_json_delta in a text block"),
        ([START, *block(0, "tool_use", TEXT), DELTA, STOP], "text_delta in a tool_use block"),
        ([START, *block(0, "thinking", THINK), DELTA, STOP], "without a signature_delta"),
        ([START, *block(0, "thinking", SIG, THINK), DELTA, STOP], "after the signature_delta"),
        ([START, block(0, "text")[0], DELTA, STOP], "message_delta while block 0 is open"),
        ([START, {**block(0, "text", TEXT)[1], "index": 3}, DELTA, STOP], "open block is None"),
        ([START, DELTA, *block(0, "text"), STOP], "content_block_start after message_delta"),
        ([START, STOP], "message_stop without a message_delta"),
        ([START, {"type": "message_delta", "delta": {}, "usage": {"output_tokens": 1}}, STOP], "stop_reason"),
        (
            [START, {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {}}, STOP],
            "output_tokens",
        ),
        ([START, DELTA, STOP, PING], "ping after the stream ended"),
        (
            [START, {"type": "error", "error": {"type": "api_error", "message": "x"}}, PING],
            "after the stream ended",
        ),
        ([START, *block(0, "text", TEXT)], "ended without message_stop or error"),
        (
            [{**START, "message": {**START["message"], "content": [{"type": "text"}]}}, DELTA, STOP],
            "content is not []",
        ),
        (
            [{**START, "message": {**START["message"], "usage": {"output_tokens": 1}}}, DELTA, STOP],
            "input_tokens",
        ),
    ],
)
def test_each_rule(events: list[dict[str, Any]], words: str) -> None:
    violations = check_events(events)
    assert any(words in v for v in violations), violations


def test_an_error_is_a_legal_end_anywhere() -> None:
    error = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    assert check_events([error]) == []
    assert check_events([START, block(0, "text")[0], error]) == []


def test_framing_in_bytes_mode() -> None:
    assert "differs from data type" in check_sse(b'event: ping\ndata: {"type":"pong"}\n\n')[0]
    assert "without an event: line" in check_sse(b'data: {"type":"ping"}\n\n')[0]
    assert "not a JSON object" in check_sse(b"event: ping\ndata: [1]\n\n")[0]
    whole = b"".join(encode_sse(e["type"], e) for e in [START, DELTA, STOP])
    assert "unterminated" in check_sse(whole[:-1] + b"x")[-2]


def test_incremental_bytes_split_anywhere() -> None:
    whole = b"".join(encode_sse(e["type"], e) for e in VALID)
    checker = GrammarChecker()
    for i in range(0, len(whole), 7):
        assert checker.feed_bytes(whole[i : i + 7]) == []
    assert checker.close() == []
