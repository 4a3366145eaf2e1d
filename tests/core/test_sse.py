from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from sidecar.core.sse import SSESplitter

STREAM = (
    b'event: message_start\ndata: {"type":"message_start","message":{"id":"m"}}\n\n'
    b'event: ping\ndata: {"type": "ping"}\n\n'
    b": a comment\n\n"
    b'event: multi\ndata: {"a":\ndata: 1}\n\n'
    b"event: crlf\r\ndata: {}\r\n\r\n"
    b'event: message_stop\ndata: {"type":"message_stop"}\n\n'
)


def _split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    out, last = [], 0
    for p in points:
        out.append(data[last:p])
        last = p
    out.append(data[last:])
    return out


@given(st.lists(st.integers(min_value=0, max_value=10_000), max_size=12))
def test_any_chunking_gives_the_same_events_and_bytes(cuts: list[int]) -> None:
    splitter = SSESplitter()
    events = []
    for chunk in _split(STREAM, cuts):
        events.extend(splitter.feed(chunk))
    tail = splitter.flush()
    assert tail is None
    assert b"".join(e.raw or b"" for e in events) == STREAM
    assert [e.name for e in events] == ["message_start", "ping", "", "multi", "crlf", "message_stop"]
    assert events[0].data == {"type": "message_start", "message": {"id": "m"}}
    assert events[3].data == {"a": 1}
    assert events[4].data == {}


def test_unterminated_whole_event_is_flushed_with_its_terminator() -> None:
    splitter = SSESplitter()
    assert splitter.feed(b'event: a\ndata: {"x":1}') == []
    tail = splitter.flush()
    assert tail is not None and tail.name == "a" and tail.data == {"x": 1}
    assert tail.raw == b'event: a\ndata: {"x":1}\n\n'


def test_cut_off_tail_is_dropped() -> None:
    for tail in (b'event: a\ndata: {"x', b": comment", b"event: a", b"\n"):
        splitter = SSESplitter()
        splitter.feed(tail)
        assert splitter.flush() is None


HEAD_STREAM = (
    b'event: message_start\ndata: {"type":"message_start"}\n\n'
    b'event: ping\ndata: {"type": "ping"}\n\n'
    b'event: content_block_delta\ndata: {"type":"content_block_delta"}\n\n'
    b'event: content_block_delta\ndata: {"type":"content_block_delta"}\n\n'
    b'event: message_stop\ndata: {"type":"message_stop"}\n\n'
)


@given(st.lists(st.integers(min_value=0, max_value=10_000), max_size=12))
def test_feed_until_stops_after_the_named_event_and_keeps_the_rest(cuts: list[int]) -> None:
    splitter = SSESplitter()
    events = []
    head = True
    for chunk in _split(HEAD_STREAM, cuts):
        if head:
            got = splitter.feed_until(chunk, "content_block_delta")
            events.extend(got)
            if got and got[-1].name == "content_block_delta":
                head = False
                assert [e.name for e in events] == ["message_start", "ping", "content_block_delta"]
                chunk = b""
            else:
                continue
        events.extend(splitter.feed(chunk))
    assert splitter.flush() is None
    assert b"".join(e.raw or b"" for e in events) == HEAD_STREAM
    assert [e.name for e in events] == [
        "message_start",
        "ping",
        "content_block_delta",
        "content_block_delta",
        "message_stop",
    ]
