"""Our HTTP/2 server (``sidecar.http2.server``) against h2, an independent HTTP/2 implementation
from PyPI, as the client (it checks every frame we send), and raw frames for what a correct
client never sends: every violation ends as RFC 9113 says (GOAWAY or RST_STREAM with the right
code), never with a traceback or a hang."""

from __future__ import annotations

import asyncio
import logging
import struct
from collections.abc import AsyncIterator, Callable
from typing import Any

import h2.config
import h2.connection
import h2.events
import h2.settings
import hpack
import pytest
from h2.settings import SettingCodes

from sidecar.http1.listen import bind_socket
from sidecar.http2.server import (
    COMPRESSION_ERROR,
    ENHANCE_YOUR_CALM,
    FLOW_CONTROL_ERROR,
    FRAME_SIZE_ERROR,
    GOAWAY,
    PREFACE,
    PROTOCOL_ERROR,
    REFUSED_STREAM,
    RST_STREAM,
    SETTINGS,
    STREAM_CLOSED,
    Http2Limits,
    Http2Server,
    Stream,
    StreamReset,
    frame,
)

REQUEST = [(b":method", b"POST"), (b":scheme", b"http"), (b":path", b"/echo"), (b":authority", b"t")]


async def echo(stream: Stream) -> None:
    """Answers the request's body (or the path), after reading all of it."""
    body = b""
    while chunk := await stream.read():
        body += chunk
    stream.send_headers([(b":status", b"200"), (b"x-path", dict(stream.headers)[b":path"])])
    await stream.send_data(body or b"empty", end_stream=True)


class Held:
    """A handler that waits until cancelled, and says so."""

    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.cancelled = asyncio.Event()

    async def __call__(self, stream: Stream) -> None:
        self.started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.cancelled.set()
            raise


@pytest.fixture
async def serve() -> AsyncIterator[Callable[..., Any]]:
    servers: list[Http2Server] = []

    async def start(handler: Any = echo, **limits: Any) -> tuple[Http2Server, int]:
        sock = bind_socket("127.0.0.1", 0)
        server = Http2Server(handler, Http2Limits(**limits))
        await server.start(sock)
        servers.append(server)
        return server, sock.getsockname()[1]

    yield start
    for server in servers:
        await server.shutdown(0.1)


class Client:
    """An h2 client connection; ``raw`` writes bytes h2 would refuse to."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, **settings: int) -> None:
        self.reader, self.writer = reader, writer
        config = h2.config.H2Configuration(client_side=True, header_encoding=None)
        self.h2 = h2.connection.H2Connection(config)
        self.h2.initiate_connection()
        if settings:
            self.h2.update_settings({getattr(SettingCodes, k.upper()): v for k, v in settings.items()})
        self.flush()
        self.events: list[Any] = []
        self.pending: dict[int, bytes] = {}  # request bodies waiting for window

    @classmethod
    async def connect(cls, port: int, **settings: int) -> Client:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer, **settings)

    def flush(self) -> None:
        self.writer.write(self.h2.data_to_send())

    def raw(self, data: bytes) -> None:
        self.writer.write(data)

    def request(self, body: bytes = b"", headers: list[tuple[bytes, bytes]] | None = None) -> int:
        """Open a stream; a body that fits the windows goes at once (else ``send_body``)."""
        stream_id: int = self.h2.get_next_available_stream_id()
        self.h2.send_headers(stream_id, headers or REQUEST, end_stream=not body)
        if body:
            self.pending[stream_id] = body
            self._send_pending()
        self.flush()
        return stream_id

    def _send_pending(self) -> None:
        for stream_id, body in list(self.pending.items()):
            while body:
                size = min(
                    len(body), self.h2.local_flow_control_window(stream_id), self.h2.max_outbound_frame_size
                )
                if size <= 0:
                    break
                self.h2.send_data(stream_id, body[:size], end_stream=size == len(body))
                body = body[size:]
            if body:
                self.pending[stream_id] = body
            else:
                del self.pending[stream_id]

    async def until(self, done: Callable[[Any], bool], timeout: float = 5.0) -> Any:
        """Read until an event satisfies ``done``; returns it (every event is kept in ``events``)."""
        async with asyncio.timeout(timeout):
            while True:
                for event in self.events:
                    if done(event):
                        return event
                data = await self.reader.read(65536)
                if not data:
                    raise ConnectionError("closed")
                for event in self.h2.receive_data(data):
                    if isinstance(event, h2.events.DataReceived):
                        self.h2.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                    self.events.append(event)
                self._send_pending()
                self.flush()

    async def answer(self, stream_id: int) -> tuple[dict[bytes, bytes], bytes]:
        await self.until(lambda e: isinstance(e, h2.events.StreamEnded) and e.stream_id == stream_id)
        headers: dict[bytes, bytes] = {}
        body = b""
        for e in self.events:
            if isinstance(e, h2.events.ResponseReceived) and e.stream_id == stream_id:
                headers = dict(e.headers)
            elif isinstance(e, h2.events.DataReceived) and e.stream_id == stream_id:
                body += e.data
        return headers, body

    def close(self) -> None:
        self.writer.close()


async def read_frame(reader: asyncio.StreamReader) -> tuple[int, int, int, bytes]:
    head = await reader.readexactly(9)
    payload = await reader.readexactly(int.from_bytes(head[:3], "big"))
    return head[3], head[4], int.from_bytes(head[5:9], "big") & 0x7FFFFFFF, payload


async def raw_frames(reader: asyncio.StreamReader, timeout: float = 5.0) -> list[tuple[int, int, int, bytes]]:
    """Every frame the server sends until it closes: (type, flags, stream, payload)."""
    frames = []
    async with asyncio.timeout(timeout):
        while True:
            try:
                frames.append(await read_frame(reader))
            except asyncio.IncompleteReadError:
                return frames


async def goaway_code(port: int, *chunks: bytes) -> int:
    """The error code of the GOAWAY the server answers ``chunks`` (sent after the preface and
    an empty SETTINGS) with; the connection must close after it."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(PREFACE + frame(SETTINGS, 0, 0))
    for chunk in chunks:
        writer.write(chunk)
    frames = await raw_frames(reader)
    writer.close()
    goaways = [f for f in frames if f[0] == GOAWAY]
    assert len(goaways) == 1, frames
    return int(struct.unpack(">II", goaways[0][3][:8])[1])


def block(headers: list[tuple[bytes, bytes]]) -> bytes:
    return hpack.Encoder().encode(headers)


# --- the normal exchanges ---------------------------------------------------------------------


async def test_settings_then_requests_answered_on_one_connection(serve: Any) -> None:
    _, port = await serve(max_concurrent_streams=7, stream_window=100_000, max_header_list=9000)
    client = await Client.connect(port)
    await client.until(lambda e: isinstance(e, h2.events.RemoteSettingsChanged))
    settings = client.h2.remote_settings
    assert (settings.max_concurrent_streams, settings.initial_window_size, settings.max_header_list_size) == (
        7,
        100_000,
        9000,
    )
    for i in range(50):  # many requests, some with a body, on the same connection
        body = b"x" * i
        sid = client.request(body)
        headers, answer = await client.answer(sid)
        assert headers[b":status"] == b"200" and answer == (body or b"empty")
    client.close()


async def test_concurrent_streams_interleave(serve: Any) -> None:
    _, port = await serve()
    client = await Client.connect(port)
    ids = [client.request(b"%d" % i) for i in range(20)]
    for i, sid in enumerate(ids):
        assert (await client.answer(sid))[1] == b"%d" % i
    client.close()


async def test_ping_is_answered_with_its_payload(serve: Any) -> None:
    _, port = await serve()
    client = await Client.connect(port)
    client.h2.ping(b"12345678")
    client.flush()
    ack = await client.until(lambda e: isinstance(e, h2.events.PingAckReceived))
    assert ack.ping_data == b"12345678"
    client.close()


async def test_a_header_block_in_continuation_frames_and_padding(serve: Any) -> None:
    _, port = await serve()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    encoded = block([*REQUEST, (b"x-long", b"v" * 3000)])
    writer.write(PREFACE + frame(SETTINGS, 0, 0))
    # HEADERS (padded, with a priority field) + two CONTINUATIONs, then padded DATA.
    first = bytes((4,)) + struct.pack(">IB", 0, 16) + encoded[:1000] + b"\0" * 4
    writer.write(frame(1, 0x8 | 0x20, 1, first))
    writer.write(frame(9, 0, 1, encoded[1000:2000]))
    writer.write(frame(9, 0x4, 1, encoded[2000:]))
    writer.write(frame(0, 0x8 | 0x1, 1, bytes((3,)) + b"body" + b"\0\0\0"))
    frames = []
    async with asyncio.timeout(5):
        while not any(f[0] == 0 and f[1] & 1 for f in frames):
            frames.append(await read_frame(reader))
    assert b"".join(f[3] for f in frames if f[0] == 0) == b"body"
    writer.close()


async def test_an_answer_waits_for_the_clients_window(serve: Any) -> None:
    """The client's stream window (100 bytes) bounds each flight of DATA; the rest follows its
    WINDOW_UPDATEs."""
    _, port = await serve()
    client = await Client.connect(port, initial_window_size=100)
    body = bytes(range(256)) * 40  # 10 KB
    sid = client.request(body)
    _, answer = await client.answer(sid)
    assert answer == body
    client.close()


async def test_a_body_larger_than_our_window_is_read_as_the_handler_reads(serve: Any) -> None:
    _, port = await serve(stream_window=1000, connection_window=4000)
    client = await Client.connect(port)
    body = b"y" * 50_000  # 50x the stream window: window comes back as the handler reads
    sid = client.request(body)
    assert (await client.answer(sid))[1] == body
    client.close()


async def test_a_client_that_resets_its_stream_cancels_the_handler(serve: Any) -> None:
    held = Held()
    server, port = await serve(held)
    client = await Client.connect(port)
    sid = client.request(b"x")
    await asyncio.wait_for(held.started.wait(), 5)
    client.h2.reset_stream(sid)
    client.flush()
    await asyncio.wait_for(held.cancelled.wait(), 5)
    client.close()


async def test_a_client_that_leaves_cancels_its_handlers(serve: Any) -> None:
    held = Held()
    _, port = await serve(held)
    client = await Client.connect(port)
    client.request(b"x")
    await asyncio.wait_for(held.started.wait(), 5)
    client.close()
    await asyncio.wait_for(held.cancelled.wait(), 5)


async def test_streams_over_the_limit_are_refused(serve: Any) -> None:
    held = Held()
    _, port = await serve(held, max_concurrent_streams=2)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    encoder = hpack.Encoder()
    writer.write(PREFACE + frame(SETTINGS, 0, 0))
    for sid in (1, 3, 5):  # raw: h2 would hold the third back itself
        writer.write(frame(1, 0x4 | 0x1, sid, encoder.encode(REQUEST)))
    frames = []
    async with asyncio.timeout(5):
        while not any(f[0] == RST_STREAM for f in frames):
            frames.append(await read_frame(reader))
    rst = next(f for f in frames if f[0] == RST_STREAM)
    assert rst[2] == 5 and int.from_bytes(rst[3], "big") == REFUSED_STREAM
    writer.close()


async def test_drain_lets_open_streams_finish_and_refuses_new_ones(serve: Any) -> None:
    """GOAWAY names the last stream; it is answered; a later stream is refused; then the
    connection closes. (Raw frames: h2 stops at a GOAWAY.)"""
    release = asyncio.Event()

    async def slow(stream: Stream) -> None:
        await release.wait()
        await echo(stream)

    server, port = await serve(slow)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    encoder = hpack.Encoder()
    writer.write(PREFACE + frame(SETTINGS, 0, 0) + frame(1, 0x4 | 0x1, 1, encoder.encode(REQUEST)))
    await asyncio.sleep(0.1)
    shutdown = asyncio.create_task(server.shutdown(5))
    seen = []
    async with asyncio.timeout(5):
        while not any(f[0] == GOAWAY for f in seen):
            seen.append(await read_frame(reader))
    goaway = next(f for f in seen if f[0] == GOAWAY)
    assert struct.unpack(">II", goaway[3][:8]) == (1, 0)
    writer.write(frame(1, 0x4 | 0x1, 3, encoder.encode(REQUEST)))  # after the GOAWAY: refused
    await asyncio.sleep(0.1)
    release.set()
    rest = await raw_frames(reader)
    assert any(
        f[0] == RST_STREAM and f[2] == 3 and int.from_bytes(f[3], "big") == REFUSED_STREAM for f in rest
    )
    assert any(f[0] == 0 and f[2] == 1 and f[1] & 1 and f[3] == b"empty" for f in rest)
    await asyncio.wait_for(shutdown, 5)
    writer.close()


async def test_drain_cancels_what_outlasts_the_grace(serve: Any) -> None:
    held = Held()
    server, port = await serve(held)
    client = await Client.connect(port)
    client.request(b"x")
    await asyncio.wait_for(held.started.wait(), 5)
    await asyncio.wait_for(server.shutdown(0.2), 5)
    assert held.cancelled.is_set()
    client.close()


async def test_a_smaller_header_table_gets_a_size_update_first(serve: Any) -> None:
    _, port = await serve()
    client = await Client.connect(port, header_table_size=0)
    sid = client.request(b"z")
    # h2's decoder refuses a block without the update after the table shrank.
    headers, body = await client.answer(sid)
    assert headers[b":status"] == b"200" and body == b"z"
    client.close()


async def test_an_oversized_header_list_reaches_the_handler_marked(serve: Any) -> None:
    seen: list[bool] = []

    async def record(stream: Stream) -> None:
        seen.append(stream.oversized)
        await echo(stream)

    _, port = await serve(record, max_header_list=1000)
    client = await Client.connect(port)
    sid = client.request(b"a", [*REQUEST, (b"x-big", b"b" * 2000)])
    await client.answer(sid)
    sid = client.request(b"a")
    await client.answer(sid)
    assert seen == [True, False]
    client.close()


# --- what a client must not send -------------------------------------------------------------


async def test_not_the_preface(serve: Any) -> None:
    _, port = await serve()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n")
    frames = await raw_frames(reader)
    goaway = [f for f in frames if f[0] == GOAWAY]
    assert goaway and struct.unpack(">II", goaway[0][3][:8])[1] == PROTOCOL_ERROR
    writer.close()


async def test_an_http1_request_gets_a_plain_400_naming_the_protocol(serve: Any) -> None:
    _, port = await serve()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"POST /v1/messages HTTP/1.1\r\nhost: x\r\ncontent-length: 0\r\n\r\n")
    answer = await asyncio.wait_for(reader.read(), 5)
    assert answer.startswith(b"HTTP/1.1 400 ") and b"invalid_request_error" in answer and b"gRPC" in answer
    writer.close()


async def test_a_client_that_sends_no_preface_is_dropped(serve: Any) -> None:
    _, port = await serve(preface_timeout=0.2)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    frames = await raw_frames(reader, timeout=5)
    assert frames[-1][0] == GOAWAY
    writer.close()


@pytest.mark.parametrize(
    ("chunks", "code"),
    [
        pytest.param([frame(0, 0, 1, b"x")], PROTOCOL_ERROR, id="DATA on an idle stream"),
        pytest.param([frame(1, 0x4, 2, block(REQUEST))], PROTOCOL_ERROR, id="an even stream id"),
        pytest.param([frame(1, 0x4, 0, block(REQUEST))], PROTOCOL_ERROR, id="HEADERS on stream 0"),
        pytest.param([frame(0, 0, 0, b"x")], PROTOCOL_ERROR, id="DATA on stream 0"),
        pytest.param([frame(6, 0, 0, b"1234")], FRAME_SIZE_ERROR, id="a short PING"),
        pytest.param([frame(6, 0, 1, b"12345678")], PROTOCOL_ERROR, id="PING on a stream"),
        pytest.param([frame(4, 0, 0, b"12345")], FRAME_SIZE_ERROR, id="SETTINGS not a multiple of 6"),
        pytest.param(
            [frame(4, 0, 0, struct.pack(">HI", 4, 2**31))], FLOW_CONTROL_ERROR, id="window too large"
        ),
        pytest.param(
            [frame(4, 0, 0, struct.pack(">HI", 5, 100))], PROTOCOL_ERROR, id="max frame size too small"
        ),
        pytest.param([frame(8, 0, 0, b"\0\0\0\0")], PROTOCOL_ERROR, id="a WINDOW_UPDATE of 0"),
        pytest.param(
            [frame(8, 0, 0, struct.pack(">I", 2**31 - 1))],
            FLOW_CONTROL_ERROR,
            id="the connection window overflows",
        ),
        pytest.param([frame(3, 0, 1, b"\0\0\0\x08")], PROTOCOL_ERROR, id="RST_STREAM on an idle stream"),
        pytest.param([frame(5, 0x4, 1, b"\0\0\0\x02")], PROTOCOL_ERROR, id="PUSH_PROMISE"),
        pytest.param([frame(0, 0, 1, b"x" * 20000)], FRAME_SIZE_ERROR, id="a frame over 16 KiB"),
        pytest.param(
            [frame(1, 0, 1, block(REQUEST)), frame(0, 0, 1, b"x")], PROTOCOL_ERROR, id="CONTINUATION expected"
        ),
        pytest.param([frame(9, 0x4, 1, block(REQUEST))], PROTOCOL_ERROR, id="CONTINUATION without HEADERS"),
        pytest.param([frame(1, 0x4, 1, b"\xff\xff\xff\xff\x0f")], COMPRESSION_ERROR, id="HPACK garbage"),
        pytest.param([frame(0, 0x8, 1, b"\x05abc")], PROTOCOL_ERROR, id="padding longer than the frame"),
        pytest.param(
            [
                frame(1, 0x4 | 0x1, 1, block(REQUEST)),
                frame(1, 0x4 | 0x1, 1, block(REQUEST)),
                frame(1, 0x5, 1, b""),
            ],
            STREAM_CLOSED,
            id="HEADERS on a closed stream",
        ),
        pytest.param([frame(4, 1, 0, b"\0" * 6)], FRAME_SIZE_ERROR, id="a SETTINGS ACK with a payload"),
    ],
)
async def test_connection_errors_end_in_goaway(
    serve: Any, chunks: list[bytes], code: int, caplog: pytest.LogCaptureFixture
) -> None:
    _, port = await serve()
    with caplog.at_level(logging.DEBUG):
        assert await goaway_code(port, *chunks) == code
    assert not [r for r in caplog.records if r.exc_info], "no traceback"


async def test_the_first_frame_must_be_settings(serve: Any) -> None:
    _, port = await serve()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(PREFACE + frame(6, 0, 0, b"12345678"))
    frames = await raw_frames(reader)
    assert struct.unpack(">II", frames[-1][3][:8])[1] == PROTOCOL_ERROR
    writer.close()


async def test_a_header_block_too_large_to_buffer_ends_the_connection(serve: Any) -> None:
    _, port = await serve(max_header_block=20_000)
    chunks = [frame(1, 0, 1, b"\0" * 10_000)] + [frame(9, 0, 1, b"\0" * 10_000)] * 3
    assert await goaway_code(port, *chunks) == ENHANCE_YOUR_CALM


@pytest.mark.parametrize(
    "headers",
    [
        [(b":method", b"POST"), (b":scheme", b"http"), (b":authority", b"t")],  # no :path
        [*REQUEST, (b"X-Upper", b"1")],
        [*REQUEST, (b"connection", b"keep-alive")],
        [*REQUEST, (b"te", b"gzip")],
        [(b"x-first", b"1"), *REQUEST],  # a pseudo-header after a regular one
        [*REQUEST, (b":status", b"200")],  # a response pseudo-header
        [*REQUEST, (b":path", b"/again")],
    ],
    ids=["no :path", "upper case", "connection", "te gzip", "pseudo after regular", ":status", "two :path"],
)
async def test_a_malformed_request_is_reset_and_the_connection_lives_on(
    serve: Any, headers: list[tuple[bytes, bytes]]
) -> None:
    _, port = await serve()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    encoder = hpack.Encoder()
    writer.write(PREFACE + frame(SETTINGS, 0, 0))
    writer.write(frame(1, 0x4 | 0x1, 1, encoder.encode(headers)))
    writer.write(frame(1, 0x4 | 0x1, 3, encoder.encode(REQUEST)))
    seen = []
    async with asyncio.timeout(5):
        while not any(f[0] == 0 and f[2] == 3 for f in seen):
            seen.append(await read_frame(reader))
    rst = [f for f in seen if f[0] == RST_STREAM and f[2] == 1]
    assert rst and int.from_bytes(rst[0][3], "big") == PROTOCOL_ERROR
    writer.close()


async def test_data_beyond_the_stream_window_resets_the_stream(serve: Any) -> None:
    held = Held()
    _, port = await serve(held, stream_window=1000)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    # Our SETTINGS acknowledged: the stream's window is ours (1000), no longer the default.
    writer.write(PREFACE + frame(SETTINGS, 0, 0) + frame(SETTINGS, 1, 0) + frame(1, 0x4, 1, block(REQUEST)))
    await asyncio.wait_for(held.started.wait(), 5)
    writer.write(frame(0, 0, 1, b"x" * 1500))
    seen = []
    async with asyncio.timeout(5):
        while not any(f[0] == RST_STREAM for f in seen):
            seen.append(await read_frame(reader))
    rst = next(f for f in seen if f[0] == RST_STREAM)
    assert rst[2] == 1 and int.from_bytes(rst[3], "big") == FLOW_CONTROL_ERROR
    await asyncio.wait_for(held.cancelled.wait(), 5)
    writer.close()


async def test_a_send_on_a_reset_stream_raises_stream_reset(serve: Any) -> None:
    outcome: list[BaseException] = []
    reset = asyncio.Event()

    async def late(stream: Stream) -> None:
        try:
            await asyncio.shield(reset.wait())
        except asyncio.CancelledError:
            pass
        try:
            await stream.send_data(b"late")
        except StreamReset as exc:
            outcome.append(exc)

    _, port = await serve(late)
    client = await Client.connect(port)
    sid = client.request(b"x")
    await asyncio.sleep(0.1)
    client.h2.reset_stream(sid)
    client.flush()
    await asyncio.sleep(0.1)
    reset.set()
    await asyncio.sleep(0.1)
    assert len(outcome) == 1
    client.close()


async def test_a_client_that_reads_nothing_cannot_grow_our_buffers(serve: Any) -> None:
    """PINGs from a client that never reads: their ACKs fill our write buffer to its high-water
    mark, then reading pauses, and the rest wait in the sockets, not in our memory."""
    import socket

    server, port = await serve(write_high=64 * 1024, write_low=16 * 1024)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    writer.transport.set_write_buffer_limits(high=64 * 1024 * 1024)  # the flood may queue here
    writer.write(PREFACE + frame(SETTINGS, 0, 0))
    await asyncio.sleep(0.1)
    (conn,) = server.connections
    assert conn.transport is not None
    conn.transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    ping = frame(6, 0, 0, b"12345678")
    writer.write(ping * 100_000)  # 1.7 MB of PINGs: 1.7 MB of ACKs owed, nothing read
    await asyncio.sleep(0.5)
    assert conn.write_paused
    assert conn.transport.get_write_buffer_size() < 256 * 1024
    writer.close()
