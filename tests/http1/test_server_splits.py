"""Where the reads split the bytes must not matter: the same pipelined requests, cut at any points
(hypothesis), get the same answers from the server's protocol over an in-memory transport; and a
header block over the limit gets 431 wherever it is cut."""

from __future__ import annotations

import asyncio
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sidecar.http1.server import HttpServer, ServerLimits, _Connection
from tests.http1.server_peers import Recorder, make_app, parse_responses

REQUESTS = (
    b"POST /echo?1 HTTP/1.1\r\nHost: t\r\nContent-Length: 11\r\n\r\nhello world"
    b"GET /echo?2 HTTP/1.1\r\nHost: t\r\n\r\n"
    b"POST /echo?3 HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"4;ext=1\r\nabcd\r\n2\r\nef\r\n0\r\nTrailer: x\r\n\r\n"
    b"HEAD /echo?4 HTTP/1.1\r\nHost: t\r\n\r\n"
    b"GET /stream?2 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
)
METHODS = ["POST", "GET", "POST", "HEAD", "GET"]


class MemoryTransport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.out = bytearray()
        self.closed = asyncio.Event()
        self.paused = False
        self.protocol: _Connection | None = None

    def write(self, data: Any) -> None:
        self.out += data

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 1), "sockname": ("127.0.0.1", 2)}.get(name, default)

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        pass

    def get_write_buffer_size(self) -> int:
        return 0

    def pause_reading(self) -> None:
        self.paused = True

    def resume_reading(self) -> None:
        self.paused = False

    def is_closing(self) -> bool:
        return self.closed.is_set()

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        self.close()

    def close(self) -> None:
        if not self.closed.is_set():
            self.closed.set()
            assert self.protocol is not None
            asyncio.get_running_loop().call_soon(self.protocol.connection_lost, None)

    def abort(self) -> None:
        self.close()


async def _serve(chunks: list[bytes], limits: ServerLimits | None = None) -> bytes:
    rec = Recorder()
    server = HttpServer(make_app(rec), limits, cancel_on_disconnect=True)
    server.loop = asyncio.get_running_loop()
    conn = _Connection(server)
    transport = MemoryTransport()
    transport.protocol = conn
    conn.connection_made(transport)
    for chunk in chunks:
        while transport.paused and not transport.closed.is_set():
            await asyncio.sleep(0)
        if transport.closed.is_set():
            break
        conn.data_received(chunk)
        await asyncio.sleep(0)
    await asyncio.wait_for(transport.closed.wait(), 5)
    return bytes(transport.out)


def _cut(data: bytes, points: list[int]) -> list[bytes]:
    cuts = sorted({p % (len(data) + 1) for p in points})
    edges = [0, *cuts, len(data)]
    return [data[a:b] for a, b in zip(edges, edges[1:], strict=False) if b > a]


def _answers(data: bytes) -> list[tuple[int, bytes]]:
    return [(r.status, r.body) for r in parse_responses(data, METHODS)]


EXPECTED: list[tuple[int, bytes]] = []


async def test_in_one_read() -> None:
    answers = _answers(await _serve([REQUESTS]))
    assert [status for status, _ in answers] == [200] * 5
    assert b'"body": "hello world"' in answers[0][1]
    assert b'"body": "abcdef"' in answers[2][1]
    assert answers[3][1] == b""
    assert answers[4][1] == b"part 0\npart 1\n"
    EXPECTED[:] = answers


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(points=st.lists(st.integers(min_value=0, max_value=len(REQUESTS)), max_size=40))
def test_any_split_gets_the_same_answers(points: list[int]) -> None:
    if not EXPECTED:
        asyncio.run(test_in_one_read())
    answers = _answers(asyncio.run(_serve(_cut(REQUESTS, points))))
    assert [status for status, _ in answers] == [status for status, _ in EXPECTED]
    # The echo bodies hold no per-run values but the request-id-free JSON of the request.
    assert answers == EXPECTED


BIG_HEAD = (
    b"GET /echo HTTP/1.1\r\nHost: t\r\n"
    + b"".join(b"X-%d: %s\r\n" % (i, b"v" * 40) for i in range(40))
    + b"\r\n"
)


@settings(max_examples=30, deadline=None)
@given(points=st.lists(st.integers(min_value=0, max_value=len(BIG_HEAD) * 2), max_size=20))
def test_a_large_header_block_gets_431_wherever_it_is_cut(points: list[int]) -> None:
    data = b"GET /echo HTTP/1.1\r\nHost: t\r\n\r\n" + BIG_HEAD
    out = asyncio.run(_serve(_cut(data, points), ServerLimits(max_header_bytes=1024)))
    first, second = parse_responses(out, ["GET", "GET"])
    assert first.status == 200
    assert second.status == 431
