"""Our HTTP/2 server: an asyncio Protocol speaking HTTP/2 with prior knowledge (RFC 9113), with
HPACK (RFC 7541) decoding of our own (``sidecar.http2.hpack``), for the gRPC door.

What gRPC over cleartext HTTP/2 needs, and nothing else::

    connection      the client preface, then SETTINGS both ways (ours: max concurrent streams,
                    initial window, max header list size), PING answered, GOAWAY on drain
    streams         client-initiated, one task each (``handler(stream)``), up to
                    ``max_concurrent_streams`` open (above: RST_STREAM REFUSED_STREAM); a
                    RST_STREAM from the client cancels its task at once, and so does the
                    connection closing
    headers         HEADERS + CONTINUATION, padding and priority fields, HPACK with the dynamic
                    table; a header list over ``max_header_list`` reaches the handler marked
                    ``oversized`` (gRPC answers RESOURCE_EXHAUSTED); a malformed request (missing
                    or unknown pseudo-headers, upper-case names, connection-specific fields)
                    is reset with PROTOCOL_ERROR
    flow control    both ways: the client's windows bound what we send (a handler's ``send``
                    waits for WINDOW_UPDATE), ours bound what it sends, given back as the
                    handler reads (per stream) or as frames arrive (the connection)
    backpressure    ``send`` also waits while the transport's buffer is over its high-water
                    mark, and reading pauses meanwhile (a client that reads nothing holds its
                    streams and its PINGs, not our memory)
    errors          a protocol violation ends the connection with GOAWAY and its error code, or
                    the stream with RST_STREAM (RFC 9113 section 5.4); never a traceback
    drain           ``shutdown``: stop accepting, GOAWAY on every connection, let open streams
                    finish, cancel what remains at the grace

Not here: TLS (the door is cleartext on loopback or the pod network; a mesh adds mTLS), server
push, priorities (accepted and ignored), HTTP/1.1 upgrade (an HTTP/1.1 request gets a plain 400
naming the port's protocol, then the connection closes).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, cast

import msgspec

from ..core import new_request_id
from ..errors import error_body
from .hpack import Decoder, HpackError, HpackOversized

__all__ = ["Http2Limits", "Http2Server", "Stream", "StreamReset", "encode_headers"]

log = logging.getLogger("sidecar.http2")

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
_LINGER = 1.0  # seconds a closed connection waits for the client's own close

# Frame types and flags.
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = (
    range(10)
)
END_STREAM = 0x1
ACK = 0x1
END_HEADERS = 0x4
PADDED = 0x8
PRIORITY_FLAG = 0x20

# Error codes (section 7).
NO_ERROR = 0x0
PROTOCOL_ERROR = 0x1
INTERNAL_ERROR = 0x2
FLOW_CONTROL_ERROR = 0x3
STREAM_CLOSED = 0x5
FRAME_SIZE_ERROR = 0x6
REFUSED_STREAM = 0x7
CANCEL = 0x8
COMPRESSION_ERROR = 0x9
ENHANCE_YOUR_CALM = 0xB

# Settings (section 6.5.2).
S_HEADER_TABLE_SIZE = 0x1
S_ENABLE_PUSH = 0x2
S_MAX_CONCURRENT_STREAMS = 0x3
S_INITIAL_WINDOW_SIZE = 0x4
S_MAX_FRAME_SIZE = 0x5
S_MAX_HEADER_LIST_SIZE = 0x6

DEFAULT_WINDOW = 65_535
DEFAULT_FRAME = 16_384
MAX_WINDOW = 2**31 - 1
MAX_FRAME_LIMIT = 2**24 - 1

_HEAD = struct.Struct(">IBI")  # (length << 8 | type), flags, stream id
_CONNECTION_SPECIFIC = frozenset(
    {b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding", b"upgrade"}
)
_REQUEST_PSEUDO = frozenset({b":method", b":scheme", b":path", b":authority"})
_HTTP1_METHODS = (b"GET ", b"POST ", b"PUT ", b"HEAD ", b"DELETE ", b"OPTIONS ", b"PATCH ", b"CONNECT ")


def frame(ftype: int, flags: int, stream_id: int, payload: bytes = b"") -> bytes:
    return _HEAD.pack(len(payload) << 8 | ftype, flags, stream_id) + payload


def _int(value: int, prefix_bits: int, first: int) -> bytes:
    """An HPACK integer (section 5.1) with ``first``'s high bits set in its first byte."""
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes((first | value,))
    out = bytearray((first | limit,))
    value -= limit
    while value >= 128:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


_STATUS_200 = b"\x88"  # indexed: static table entry 8, ":status: 200"


def encode_headers(headers: list[tuple[bytes, bytes]]) -> bytes:
    """An HPACK header block that uses no dynamic table: ``:status: 200`` indexed, every other
    field a literal without indexing (section 6.2.2), never Huffman-coded. Names lower-case."""
    out = []
    for name, value in headers:
        if name == b":status" and value == b"200":
            out.append(_STATUS_200)
            continue
        out.append(b"\x00")
        out.append(_int(len(name), 7, 0))
        out.append(name)
        out.append(_int(len(value), 7, 0))
        out.append(value)
    return b"".join(out)


class StreamReset(Exception):
    """The stream was reset (by the client, by a protocol error) or its connection is gone."""


class _Failure(Exception):
    """A connection error (section 5.4.1): GOAWAY with ``code``."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class Http2Limits:
    """The server's settings and limits (the defaults suit gRPC between services)."""

    max_concurrent_streams: int = 1000
    # What a client may send on a stream before we give window back (read by the handler):
    # 256 KiB takes a large agent request (80-90 KB) in one flight.
    stream_window: int = 256 * 1024
    # The connection's window, given back as frames arrive.
    connection_window: int = 16 * 1024 * 1024
    # The header list a request may carry (advertised as SETTINGS_MAX_HEADER_LIST_SIZE); a
    # larger one is decoded (to keep HPACK's table in step) and marked ``oversized``.
    max_header_list: int = 16 * 1024
    # The header block fragments buffered before decoding: past this the connection ends
    # (ENHANCE_YOUR_CALM), since HPACK state cannot be kept without decoding them.
    max_header_block: int = 1024 * 1024
    # From accepting a connection to its preface and SETTINGS.
    preface_timeout: float = 10.0
    write_high: int = 256 * 1024
    write_low: int = 64 * 1024


class Stream:
    """One request stream, as the handler sees it: its headers, its body as it arrives
    (``read``), and the ways to answer (``send_headers``, ``send_data``, ``send_trailers``)."""

    __slots__ = (
        "_data",
        "_reader",
        "_window_waiter",
        "conn",
        "headers",
        "id",
        "local_closed",
        "oversized",
        "recv_window",
        "remote_closed",
        "reset_code",
        "send_window",
        "task",
        "unacked",
    )

    def __init__(self, conn: _Connection, stream_id: int, headers: list[tuple[bytes, bytes]]) -> None:
        self.conn = conn
        self.id = stream_id
        self.headers = headers
        self.oversized = False
        self._data: list[bytes] = []
        self._reader: asyncio.Future[None] | None = None
        self._window_waiter: asyncio.Future[None] | None = None
        self.remote_closed = False  # END_STREAM received
        self.local_closed = False  # END_STREAM sent
        self.reset_code: int | None = None
        self.send_window = conn.peer_window
        self.recv_window = conn.stream_window  # what the client may still send
        self.unacked = 0  # bytes read (or padding) not yet given back to the client as window
        self.task: asyncio.Task[None] | None = None

    @property
    def peer(self) -> str:
        return self.conn.peer

    # --- reading -------------------------------------------------------------------------------

    async def read(self) -> bytes:
        """The next body bytes, b"" at the end of the stream; StreamReset if it was reset."""
        while not self._data:
            if self.reset_code is not None:
                raise StreamReset(self.reset_code)
            if self.remote_closed:
                return b""
            waiter = self._reader = self.conn.loop.create_future()
            try:
                await waiter
            finally:
                self._reader = None
        chunks = self._data
        data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        chunks.clear()
        self.conn.consumed(self, len(data))
        return data

    def _wake(self) -> None:
        waiter = self._reader
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # --- answering ---------------------------------------------------------------------------

    def send_headers(self, headers: list[tuple[bytes, bytes]], end_stream: bool = False) -> None:
        """Write a header block (response headers, or trailers with ``end_stream``)."""
        if self.reset_code is not None:
            raise StreamReset(self.reset_code)
        self.conn.write_headers(self, headers, end_stream)
        if end_stream:
            self._closed_local()

    def send_trailers(self, headers: list[tuple[bytes, bytes]]) -> None:
        self.send_headers(headers, end_stream=True)

    async def send_data(self, data: bytes, end_stream: bool = False) -> None:
        """Write ``data`` in DATA frames as the client's windows allow; waits for window and
        for the transport's buffer to drain below its low-water mark."""
        conn = self.conn
        view = memoryview(data)
        while True:
            if self.reset_code is not None:
                raise StreamReset(self.reset_code)
            if conn.write_paused:
                await conn.drained()
                continue
            size = min(len(view), self.send_window, conn.send_window, conn.peer_max_frame)
            if size <= 0 and view:
                waiter = self._window_waiter = conn.loop.create_future()
                conn.blocked.add(self)
                try:
                    await waiter
                finally:
                    self._window_waiter = None
                    conn.blocked.discard(self)
                continue
            last = size == len(view)
            flags = END_STREAM if (end_stream and last) else 0
            conn.write(frame(DATA, flags, self.id, bytes(view[:size])))
            self.send_window -= size
            conn.send_window -= size
            view = view[size:]
            if last:
                break
        if end_stream:
            self._closed_local()

    def try_send_all(self, chunks: list[bytes], data: bytes, trailers: list[tuple[bytes, bytes]]) -> bool:
        """A whole answer in one write (``chunks``: its header frames, from
        ``_Connection.header_frames``), when the windows and the transport allow it at once;
        else False and nothing is written."""
        conn = self.conn
        size = len(data)
        if (
            self.reset_code is not None
            or conn.write_paused
            or size > self.send_window
            or size > conn.send_window
            or size > conn.peer_max_frame
        ):
            return False
        self.send_window -= size
        conn.send_window -= size
        chunks.append(frame(DATA, 0, self.id, data))
        chunks.extend(conn.header_frames(self.id, trailers, True))
        conn.write(b"".join(chunks))
        self._closed_local()
        return True

    def reset(self, code: int = CANCEL) -> None:
        """End the stream with RST_STREAM (the handler's task is not cancelled)."""
        if self.reset_code is None:
            self.reset_code = code
            self.conn.write(frame(RST_STREAM, 0, self.id, code.to_bytes(4, "big")))
            self.conn.forget(self)
            self._wake()
            self._wake_window()

    def handler_done(self, task: asyncio.Task[None]) -> None:
        self.conn.handler_done(self)

    def _wake_window(self) -> None:
        waiter = self._window_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _closed_local(self) -> None:
        self.local_closed = True
        if self.remote_closed:
            self.conn.forget(self)
        else:
            # The answer is complete before the request: the client need send no more.
            self.reset_code = NO_ERROR
            self.conn.write(frame(RST_STREAM, 0, self.id, b"\x00\x00\x00\x00"))
            self.conn.forget(self)


Handler = Callable[[Stream], Coroutine[Any, Any, None]]


class _Connection(asyncio.Protocol):
    def __init__(self, server: Http2Server) -> None:
        self.server = server
        self.limits = server.limits
        self.loop = server.loop
        self.transport: asyncio.Transport | None = None
        self.peer = ""
        self.buffer = b""
        self.preface = False  # the client preface was read
        self.settings_seen = False  # the client's first SETTINGS
        self.decoder = Decoder(max_list=self.limits.max_header_block)
        self.streams: dict[int, Stream] = {}
        self.last_stream = 0  # the highest stream id the client opened
        self.goaway_sent = False
        self.closed = False
        self.lingering = False  # our side is closed; what the client still sends is dropped
        self.peer_window = DEFAULT_WINDOW  # the client's SETTINGS_INITIAL_WINDOW_SIZE
        self.peer_max_frame = DEFAULT_FRAME
        self.send_window = DEFAULT_WINDOW  # the connection's window for what we send
        self.recv_window = max(self.limits.connection_window, DEFAULT_WINDOW)
        # A new stream's receive window: until the client acknowledges our SETTINGS it may use
        # the default (section 6.9.2), however small ours is.
        self.stream_window = max(self.limits.stream_window, DEFAULT_WINDOW)
        self.table_update = b""  # a dynamic table size update owed at the next header block
        self.blocked: set[Stream] = set()
        self.write_paused = False
        self._drain: asyncio.Future[None] | None = None
        # A header block being received in CONTINUATION frames: (stream id, flags, fragments).
        self.pending_block: tuple[int, int, list[bytes]] | None = None
        self.pending_size = 0
        self.preface_timer: asyncio.TimerHandle | None = None

    # --- asyncio.Protocol --------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self.transport = transport
        transport.set_write_buffer_limits(high=self.limits.write_high, low=self.limits.write_low)
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        peername = transport.get_extra_info("peername")
        if isinstance(peername, tuple) and len(peername) >= 2:
            host = peername[0]
            self.peer = f"ipv6:[{host}]:{peername[1]}" if ":" in host else f"ipv4:{host}:{peername[1]}"
        self.server.connections.add(self)
        self.preface_timer = self.loop.call_later(self.limits.preface_timeout, self._preface_late)

    def _start(self) -> None:
        """The client's preface is in: our SETTINGS (and the connection's larger window)."""
        limits = self.limits
        settings = struct.pack(
            ">HIHIHI",
            S_MAX_CONCURRENT_STREAMS,
            limits.max_concurrent_streams,
            S_INITIAL_WINDOW_SIZE,
            limits.stream_window,
            S_MAX_HEADER_LIST_SIZE,
            limits.max_header_list,
        )
        out = frame(SETTINGS, 0, 0, settings)
        if limits.connection_window > DEFAULT_WINDOW:
            increment = limits.connection_window - DEFAULT_WINDOW
            out += frame(WINDOW_UPDATE, 0, 0, increment.to_bytes(4, "big"))
        self.write(out)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.server.connections.discard(self)
        if self.preface_timer is not None:
            self.preface_timer.cancel()
        for stream in list(self.streams.values()):
            self._gone(stream, CANCEL)
        self.streams.clear()
        waiter = self._drain
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        self.server.check_idle()

    def pause_writing(self) -> None:
        # Reading pauses too: what a client sends while it reads nothing (PINGs, SETTINGS) would
        # have us queue answers without bound; it waits in the socket instead.
        self.write_paused = True
        if self.transport is not None and not self.lingering:
            self.transport.pause_reading()

    def resume_writing(self) -> None:
        self.write_paused = False
        if self.transport is not None and not self.lingering and not self.closed:
            self.transport.resume_reading()
        waiter = self._drain
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def drained(self) -> None:
        if self.closed:
            raise StreamReset(CANCEL)
        if self._drain is None or self._drain.done():
            self._drain = self.loop.create_future()
        await self._drain

    def data_received(self, data: bytes) -> None:
        if self.closed or self.lingering:
            return
        buffer = self.buffer + data if self.buffer else data
        try:
            if not self.preface:
                if len(buffer) < len(PREFACE):
                    if not PREFACE.startswith(buffer):
                        self._not_http2(buffer)
                        return
                    self.buffer = buffer
                    return
                if not buffer.startswith(PREFACE):
                    self._not_http2(buffer)
                    return
                self.preface = True
                self._start()
                buffer = buffer[len(PREFACE) :]
            self.buffer = self._frames(buffer)
        except _Failure as exc:
            self.fail(exc.code, str(exc))
        except Exception:  # a bug of ours: end the connection, not the process
            log.exception("HTTP/2 connection failed")
            self.fail(INTERNAL_ERROR, "internal error")

    def eof_received(self) -> bool | None:
        return None  # close: a half-closed gRPC client has nothing more to say

    # --- frames ------------------------------------------------------------------------------

    def _frames(self, buffer: bytes) -> bytes:
        pos = 0
        end = len(buffer)
        max_frame = DEFAULT_FRAME  # ours: we never raise SETTINGS_MAX_FRAME_SIZE
        unpack = _HEAD.unpack_from
        while end - pos >= 9:
            head, flags, stream_id = unpack(buffer, pos)
            length = head >> 8
            if length > max_frame:
                raise _Failure(FRAME_SIZE_ERROR, f"a frame of {length} bytes")
            if end - pos - 9 < length:
                break
            ftype = head & 0xFF
            stream_id &= 0x7FFFFFFF
            payload = buffer[pos + 9 : pos + 9 + length]
            pos += 9 + length
            if self.closed:
                return b""
            if not self.settings_seen:
                if ftype != SETTINGS or flags & ACK:
                    raise _Failure(PROTOCOL_ERROR, "the client's first frame must be SETTINGS")
                self.settings_seen = True
                if self.preface_timer is not None:
                    self.preface_timer.cancel()
                    self.preface_timer = None
            if self.pending_block is not None and ftype != CONTINUATION:
                raise _Failure(PROTOCOL_ERROR, "a header block interrupted")
            if ftype == DATA:
                self._data(flags, stream_id, payload)
            elif ftype == HEADERS:
                self._headers(flags, stream_id, payload)
            elif ftype == CONTINUATION:
                self._continuation(flags, stream_id, payload)
            elif ftype == SETTINGS:
                self._settings(flags, stream_id, payload)
            elif ftype == WINDOW_UPDATE:
                self._window_update(stream_id, payload)
            elif ftype == PING:
                if stream_id != 0:
                    raise _Failure(PROTOCOL_ERROR, "PING on a stream")
                if length != 8:
                    raise _Failure(FRAME_SIZE_ERROR, "PING of a size other than 8")
                if not flags & ACK:
                    self.write(frame(PING, ACK, 0, payload))
            elif ftype == RST_STREAM:
                self._rst_stream(stream_id, payload)
            elif ftype == PRIORITY:
                if stream_id == 0:
                    raise _Failure(PROTOCOL_ERROR, "PRIORITY on stream 0")
                if length != 5:
                    self._stream_error(stream_id, FRAME_SIZE_ERROR)
            elif ftype == GOAWAY:
                if stream_id != 0:
                    raise _Failure(PROTOCOL_ERROR, "GOAWAY on a stream")
                # The client leaves: its open streams finish, then it closes.
            elif ftype == PUSH_PROMISE:
                raise _Failure(PROTOCOL_ERROR, "PUSH_PROMISE from a client")
            # Unknown frame types are ignored (section 4.1).
        return buffer[pos:]

    def _settings(self, flags: int, stream_id: int, payload: bytes) -> None:
        if stream_id != 0:
            raise _Failure(PROTOCOL_ERROR, "SETTINGS on a stream")
        if flags & ACK:
            if payload:
                raise _Failure(FRAME_SIZE_ERROR, "a SETTINGS ACK with a payload")
            delta = self.limits.stream_window - self.stream_window
            if delta:  # our initial window now holds for every stream (section 6.9.2)
                self.stream_window = self.limits.stream_window
                for stream in self.streams.values():
                    stream.recv_window += delta
            return
        if len(payload) % 6:
            raise _Failure(FRAME_SIZE_ERROR, "SETTINGS of a size not a multiple of 6")
        for i in range(0, len(payload), 6):
            key, value = struct.unpack_from(">HI", payload, i)
            if key == S_INITIAL_WINDOW_SIZE:
                if value > MAX_WINDOW:
                    raise _Failure(FLOW_CONTROL_ERROR, "SETTINGS_INITIAL_WINDOW_SIZE too large")
                delta = value - self.peer_window
                self.peer_window = value
                for stream in self.streams.values():
                    stream.send_window += delta
                    if stream.send_window > MAX_WINDOW:
                        raise _Failure(FLOW_CONTROL_ERROR, "a stream window too large")
                    if delta > 0:
                        stream._wake_window()
            elif key == S_MAX_FRAME_SIZE:
                if not DEFAULT_FRAME <= value <= MAX_FRAME_LIMIT:
                    raise _Failure(PROTOCOL_ERROR, "SETTINGS_MAX_FRAME_SIZE out of range")
                self.peer_max_frame = value
            elif key == S_ENABLE_PUSH:
                if value > 1:
                    raise _Failure(PROTOCOL_ERROR, "SETTINGS_ENABLE_PUSH not 0 or 1")
            elif key == S_HEADER_TABLE_SIZE:
                # We never add to our encoder's dynamic table; a smaller table is still owed a
                # size update at the start of our next header block (RFC 7541 section 4.2).
                if value < 4096:
                    self.table_update = _int(value, 5, 0x20)
        self.write(frame(SETTINGS, ACK, 0))

    def _window_update(self, stream_id: int, payload: bytes) -> None:
        if len(payload) != 4:
            raise _Failure(FRAME_SIZE_ERROR, "WINDOW_UPDATE of a size other than 4")
        increment = int.from_bytes(payload, "big") & 0x7FFFFFFF
        if stream_id == 0:
            if increment == 0:
                raise _Failure(PROTOCOL_ERROR, "a WINDOW_UPDATE of 0")
            self.send_window += increment
            if self.send_window > MAX_WINDOW:
                raise _Failure(FLOW_CONTROL_ERROR, "the connection window overflowed")
            for blocked in list(self.blocked):
                blocked._wake_window()
            return
        stream = self.streams.get(stream_id)
        if stream is None:
            if stream_id > self.last_stream:
                raise _Failure(PROTOCOL_ERROR, "WINDOW_UPDATE on an idle stream")
            return  # a closed stream: ignored
        if increment == 0:
            self._stream_error(stream_id, PROTOCOL_ERROR)
            return
        stream.send_window += increment
        if stream.send_window > MAX_WINDOW:
            self._stream_error(stream_id, FLOW_CONTROL_ERROR)
            return
        stream._wake_window()

    def _rst_stream(self, stream_id: int, payload: bytes) -> None:
        if stream_id == 0:
            raise _Failure(PROTOCOL_ERROR, "RST_STREAM on stream 0")
        if len(payload) != 4:
            raise _Failure(FRAME_SIZE_ERROR, "RST_STREAM of a size other than 4")
        if stream_id > self.last_stream:
            raise _Failure(PROTOCOL_ERROR, "RST_STREAM on an idle stream")
        stream = self.streams.pop(stream_id, None)
        if stream is not None:
            self._gone(stream, int.from_bytes(payload, "big"))
            self.server.check_idle()

    def _strip_padding(self, flags: int, payload: bytes) -> bytes:
        if flags & PADDED:
            if not payload:
                raise _Failure(PROTOCOL_ERROR, "a padded frame without its pad length")
            pad = payload[0]
            if pad >= len(payload):
                raise _Failure(PROTOCOL_ERROR, "padding as long as the frame")
            return payload[1 : len(payload) - pad]
        return payload

    def _data(self, flags: int, stream_id: int, payload: bytes) -> None:
        if stream_id == 0:
            raise _Failure(PROTOCOL_ERROR, "DATA on stream 0")
        size = len(payload)
        self.recv_window -= size
        if self.recv_window < 0:
            raise _Failure(FLOW_CONTROL_ERROR, "DATA beyond the connection window")
        full = max(self.limits.connection_window, DEFAULT_WINDOW)
        if self.recv_window < full // 2:
            # Given back as frames arrive: the streams' windows bound what a handler leaves
            # unread.
            increment = full - self.recv_window
            self.recv_window = full
            self.write(frame(WINDOW_UPDATE, 0, 0, increment.to_bytes(4, "big")))
        stream = self.streams.get(stream_id)
        if stream is None:
            if stream_id > self.last_stream:
                raise _Failure(PROTOCOL_ERROR, "DATA on an idle stream")
            return  # a stream we reset or finished: dropped (section 5.1, closed)
        data = self._strip_padding(flags, payload)
        if stream.remote_closed:
            self._stream_error(stream_id, STREAM_CLOSED)
            return
        stream.recv_window -= size
        if stream.recv_window < 0:
            self._stream_error(stream_id, FLOW_CONTROL_ERROR)
            return
        if size > len(data):  # padding: given back as it is read, with the data
            self.consumed(stream, size - len(data))
        if data:
            stream._data.append(data)
        if flags & END_STREAM:
            stream.remote_closed = True
            if stream.local_closed:
                self.forget(stream)
        stream._wake()

    def consumed(self, stream: Stream, size: int) -> None:
        """The handler read ``size`` bytes: give the stream's window back once half is used."""
        if stream.remote_closed or stream.reset_code is not None:
            return
        stream.unacked += size
        if stream.unacked >= self.limits.stream_window // 2:
            self.write(frame(WINDOW_UPDATE, 0, stream.id, stream.unacked.to_bytes(4, "big")))
            stream.recv_window += stream.unacked
            stream.unacked = 0

    def _headers(self, flags: int, stream_id: int, payload: bytes) -> None:
        if stream_id == 0:
            raise _Failure(PROTOCOL_ERROR, "HEADERS on stream 0")
        block = self._strip_padding(flags, payload)
        if flags & PRIORITY_FLAG:
            if len(block) < 5:
                raise _Failure(FRAME_SIZE_ERROR, "HEADERS too short for its priority")
            if int.from_bytes(block[:4], "big") & 0x7FFFFFFF == stream_id:
                self._stream_error(stream_id, PROTOCOL_ERROR)  # depends on itself; still decoded
            block = block[5:]
        if flags & END_HEADERS:
            self._header_block(stream_id, flags, block)
        else:
            self.pending_block = (stream_id, flags, [block])
            self.pending_size = len(block)

    def _continuation(self, flags: int, stream_id: int, payload: bytes) -> None:
        pending = self.pending_block
        if pending is None or pending[0] != stream_id:
            raise _Failure(PROTOCOL_ERROR, "CONTINUATION without its HEADERS")
        pending[2].append(payload)
        self.pending_size += len(payload)
        if self.pending_size > self.limits.max_header_block:
            raise _Failure(ENHANCE_YOUR_CALM, "a header block too large")
        if flags & END_HEADERS:
            self.pending_block = None
            self._header_block(stream_id, pending[1], b"".join(pending[2]))

    def _header_block(self, stream_id: int, flags: int, block: bytes) -> None:
        try:
            headers = self.decoder.decode(block)
        except HpackOversized:
            raise _Failure(ENHANCE_YOUR_CALM, "a header list too large") from None
        except HpackError as exc:
            raise _Failure(COMPRESSION_ERROR, f"HPACK: {exc}") from None
        stream = self.streams.get(stream_id)
        if stream is not None:
            # Trailers: they end the request body.
            if stream.remote_closed:
                self._stream_error(stream_id, STREAM_CLOSED)
            elif not flags & END_STREAM:
                self._stream_error(stream_id, PROTOCOL_ERROR)
            else:
                stream.remote_closed = True
                if stream.local_closed:
                    self.forget(stream)
                stream._wake()
            return
        if stream_id <= self.last_stream:
            raise _Failure(STREAM_CLOSED, "HEADERS on a closed stream")
        if stream_id % 2 == 0:
            raise _Failure(PROTOCOL_ERROR, "a client stream with an even id")
        self.last_stream = stream_id
        if self.goaway_sent or self.server.draining:
            self.write(frame(RST_STREAM, 0, stream_id, REFUSED_STREAM.to_bytes(4, "big")))
            return
        if len(self.streams) >= self.limits.max_concurrent_streams:
            self.write(frame(RST_STREAM, 0, stream_id, REFUSED_STREAM.to_bytes(4, "big")))
            return
        if not _well_formed(headers):
            self.write(frame(RST_STREAM, 0, stream_id, PROTOCOL_ERROR.to_bytes(4, "big")))
            return
        stream = Stream(self, stream_id, headers)
        if self.decoder.list_size > self.limits.max_header_list:
            stream.oversized = True
        if flags & END_STREAM:
            stream.remote_closed = True
        self.streams[stream_id] = stream
        stream.task = self.loop.create_task(self.server.handler(stream))
        stream.task.add_done_callback(stream.handler_done)

    def handler_done(self, stream: Stream) -> None:
        task = stream.task
        if task is not None and not task.cancelled():
            exc = task.exception()
            if exc is not None and not isinstance(exc, StreamReset):
                log.error("a stream handler failed", exc_info=exc)
        if not self.closed and stream.reset_code is None and not stream.local_closed:
            stream.reset(INTERNAL_ERROR if not (task is not None and task.cancelled()) else CANCEL)
        self.forget(stream)

    # --- writing -----------------------------------------------------------------------------

    def write(self, data: bytes) -> None:
        if not self.closed and not self.lingering and self.transport is not None:
            self.transport.write(data)

    def header_frames(
        self, stream_id: int, headers: list[tuple[bytes, bytes]], end_stream: bool
    ) -> list[bytes]:
        block = encode_headers(headers)
        if self.table_update:
            block = self.table_update + block
            self.table_update = b""
        flags = END_STREAM if end_stream else 0
        limit = self.peer_max_frame
        if len(block) <= limit:
            return [frame(HEADERS, flags | END_HEADERS, stream_id, block)]
        frames = [frame(HEADERS, flags, stream_id, block[:limit])]
        for pos in range(limit, len(block), limit):
            last = pos + limit >= len(block)
            frames.append(
                frame(CONTINUATION, END_HEADERS if last else 0, stream_id, block[pos : pos + limit])
            )
        return frames

    def write_headers(self, stream: Stream, headers: list[tuple[bytes, bytes]], end_stream: bool) -> None:
        self.write(b"".join(self.header_frames(stream.id, headers, end_stream)))

    def forget(self, stream: Stream) -> None:
        if self.streams.get(stream.id) is stream:
            del self.streams[stream.id]
            self.blocked.discard(stream)
            if self.goaway_sent and not self.streams:
                self.close()
            self.server.check_idle()

    def _gone(self, stream: Stream, code: int) -> None:
        """The client reset the stream, or the connection is gone: cancel its handler."""
        if stream.reset_code is None:
            stream.reset_code = code
        stream._wake()
        stream._wake_window()
        task = stream.task
        if task is not None and not task.done():
            task.cancel()

    def _stream_error(self, stream_id: int, code: int) -> None:
        stream = self.streams.get(stream_id)
        if stream is not None:
            stream.reset(code)
            self._gone(stream, code)
        else:
            self.write(frame(RST_STREAM, 0, stream_id, code.to_bytes(4, "big")))

    def fail(self, code: int, message: str) -> None:
        """A connection error: GOAWAY with ``code``, then close."""
        if self.closed:
            return
        log.debug("HTTP/2 connection error %d from %s: %s", code, self.peer, message)
        self.write(
            frame(
                GOAWAY, 0, 0, struct.pack(">II", self.last_stream, code) + message.encode("ascii", "replace")
            )
        )
        self.close()

    def goaway(self) -> None:
        """Drain: no new streams; the connection closes once its open streams end."""
        if self.goaway_sent or self.closed:
            return
        self.goaway_sent = True
        self.write(frame(GOAWAY, 0, 0, struct.pack(">II", self.last_stream, NO_ERROR)))
        if not self.streams:
            self.close()

    def close(self) -> None:
        """Close after what was written: our side first (FIN), then, once the client closes
        its own or ``_LINGER`` seconds pass, the socket. Closing at once with the client's
        frames unread would reset the connection, and the client could lose our last frames
        (a GOAWAY, an answer)."""
        transport = self.transport
        if transport is None or transport.is_closing() or self.lingering:
            return
        self.lingering = True
        if transport.can_write_eof():
            with contextlib.suppress(OSError, RuntimeError):
                transport.write_eof()
            self.loop.call_later(_LINGER, transport.close)
        else:
            transport.close()

    def _preface_late(self) -> None:
        self.preface_timer = None
        if not self.settings_seen:
            self.fail(PROTOCOL_ERROR, "no preface in time")

    def _not_http2(self, data: bytes) -> None:
        """Not the HTTP/2 preface: an HTTP/1.1 request gets a plain 400 saying what this port
        speaks; anything else, a GOAWAY."""
        if data.startswith(_HTTP1_METHODS):
            body = msgspec.json.encode(
                error_body(
                    "invalid_request_error",
                    "this port serves gRPC (HTTP/2 with prior knowledge); send HTTP/1.1 requests "
                    "to the sidecar's HTTP port",
                    new_request_id(),
                )
            )
            head = (
                b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\n"
                b"connection: close\r\ncontent-length: " + str(len(body)).encode() + b"\r\n\r\n"
            )
            self.write(head + body)
            self.close()
            return
        self.fail(PROTOCOL_ERROR, "not the HTTP/2 client preface")


def _well_formed(headers: list[tuple[bytes, bytes]]) -> bool:
    """A request's header list as section 8.3 wants it: the pseudo-headers first, each once,
    :method, :scheme and :path present; names lower-case; no connection-specific field; ``te``
    only as ``trailers``."""
    seen: set[bytes] = set()
    regular = False
    for name, value in headers:
        if not name:
            return False
        if name[:1] == b":":
            if regular or name not in _REQUEST_PSEUDO or name in seen:
                return False
            seen.add(name)
            continue
        regular = True
        if name.lower() != name or name in _CONNECTION_SPECIFIC:
            return False
        if name == b"te" and value != b"trailers":
            return False
    return b":method" in seen and b":scheme" in seen and b":path" in seen


class Http2Server:
    """An HTTP/2 listener running ``handler(stream)`` as a task per request stream."""

    def __init__(self, handler: Handler, limits: Http2Limits | None = None) -> None:
        self.handler = handler
        self.limits = limits or Http2Limits()
        self.connections: set[_Connection] = set()
        self.draining = False
        self._server: asyncio.AbstractServer | None = None
        self._idle: asyncio.Event | None = None
        self.loop: asyncio.AbstractEventLoop

    async def start(self, sock: socket.socket) -> None:
        self.loop = asyncio.get_running_loop()
        self._server = await self.loop.create_server(lambda: _Connection(self), sock=sock, backlog=2048)

    def open_streams(self) -> int:
        return sum(len(c.streams) for c in self.connections)

    def check_idle(self) -> None:
        if self._idle is not None and self.open_streams() == 0:
            self._idle.set()

    async def shutdown(self, grace: float) -> None:
        """Stop accepting; GOAWAY on every connection; wait up to ``grace`` seconds for the
        open streams, then cancel their handlers (which may still send a status) and close."""
        self.draining = True
        if self._server is not None:
            self._server.close()
        for conn in list(self.connections):
            conn.goaway()
        if self.open_streams():
            self._idle = asyncio.Event()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._idle.wait(), grace)
        tasks = [s.task for c in self.connections for s in c.streams.values() if s.task is not None]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=1.0)
        for conn in list(self.connections):
            conn.close()
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 1.0)
