"""The gRPC door's own server (``listeners.grpc.server: native``, the default): gRPC over our
HTTP/2 server (``sidecar.http2``), running the same servicers as grpc.aio would
(``registry.MethodSpec``), with a context that has the part of grpc.aio's they use.

The protocol (gRPC's "PROTOCOL-HTTP2" document)::

    request     POST, ``content-type: application/grpc[+proto]``, the path names the method;
                ``grpc-timeout`` sets the deadline (the handler is cancelled when it passes and
                the call ends DEADLINE_EXCEEDED); ``grpc-encoding`` identity, gzip or deflate
                (else UNIMPLEMENTED); messages length-prefixed, at most ``max_message`` bytes
                (else RESOURCE_EXHAUSTED)
    response    headers (``:status: 200``, content-type, initial metadata) before the first
                message, trailers with ``grpc-status``, ``grpc-message`` (percent-encoded) and
                trailing metadata; a call that fails before any message answers with trailers
                only. A unary answer goes out in one write.
    metadata    keys ending in ``-bin`` are base64 both ways; text values as latin-1
    errors      a handler's ``abort`` ends the call with its status; an exception it lets
                escape is logged and ends the call UNKNOWN; a client that resets its stream (or
                leaves) cancels the handler at once, as grpc.aio does
    not gRPC    another method: 405; another content type: 415 (both with a grpc-status)

Why not grpc.aio: each of its completions crosses from grpc's threads to a poller thread and
then to the loop through a socket, five per unary call, and its core is ~10 MB resident. On the
bench's machine a bare grpc.aio server answered a trivial call in 0.38 ms at 231 µs of CPU and
37.6 MB; a bare server of this design, 0.26 ms at 67 µs and 23.6 MB (README, "Performance").
"""

from __future__ import annotations

import asyncio
import base64
import logging
import socket
import time
import zlib
from collections.abc import Callable, Sequence
from typing import Any

from ..core import new_request_id
from ..errors import GRPC_STATUS_CODES, SidecarError
from ..http2.server import Http2Limits, Http2Server, Stream, StreamReset
from .calls import error_trailers
from .registry import Metadata, MethodSpec

__all__ = ["AbortError", "GrpcServer", "NativeContext"]

log = logging.getLogger("sidecar.grpc")

OK = 0
CANCELLED = GRPC_STATUS_CODES["CANCELLED"]
UNKNOWN = GRPC_STATUS_CODES["UNKNOWN"]
DEADLINE_EXCEEDED = GRPC_STATUS_CODES["DEADLINE_EXCEEDED"]
RESOURCE_EXHAUSTED = GRPC_STATUS_CODES["RESOURCE_EXHAUSTED"]
UNIMPLEMENTED = GRPC_STATUS_CODES["UNIMPLEMENTED"]
INTERNAL = GRPC_STATUS_CODES["INTERNAL"]
UNAVAILABLE = GRPC_STATUS_CODES["UNAVAILABLE"]

_RESPONSE_HEAD = [(b":status", b"200"), (b"content-type", b"application/grpc")]
_ACCEPT_ENCODING = b"identity,deflate,gzip"
# Request fields that are gRPC's or HTTP's own, not the call's metadata.
_NOT_METADATA = frozenset(
    {b"te", b"content-type", b"grpc-timeout", b"grpc-encoding", b"grpc-accept-encoding", b"content-length"}
)
_TIMEOUT_UNITS = {b"H": 3600.0, b"M": 60.0, b"S": 1.0, b"m": 1e-3, b"u": 1e-6, b"n": 1e-9}
# grpc-message: percent-encode all but printable ASCII other than "%" (the spec's rule).
_PLAIN = frozenset(range(0x20, 0x7F)) - {ord("%")}


class AbortError(Exception):
    """Raised by ``NativeContext.abort``: the call ends with the context's status."""


def _status_number(code: Any) -> int:
    """A status as a number: an int, or grpc.StatusCode-like (``value[0]``), else UNKNOWN."""
    if isinstance(code, int):
        return code if 0 <= code <= 16 else UNKNOWN
    try:
        number = code.value[0]
    except (AttributeError, IndexError, TypeError):
        return UNKNOWN
    return number if isinstance(number, int) else UNKNOWN


def _percent(message: str) -> bytes:
    raw = message.encode("utf-8", "replace")
    for byte in raw:
        if byte not in _PLAIN:
            return b"".join([bytes((b,)) if b in _PLAIN else b"%%%02X" % b for b in raw])
    return raw


def _metadata_out(metadata: Metadata) -> list[tuple[bytes, bytes]]:
    out = []
    for key, value in metadata:
        name = key.lower().encode("ascii")
        if name.endswith(b"-bin"):
            raw = value if isinstance(value, bytes) else value.encode("latin-1")
            out.append((name, base64.b64encode(raw).rstrip(b"=")))
        else:
            out.append((name, value.encode("latin-1") if isinstance(value, str) else value))
    return out


def _timeout(value: bytes) -> float | None:
    """``grpc-timeout`` (1-8 digits and a unit) in seconds; None when malformed."""
    digits, unit = value[:-1], value[-1:]
    if not digits.isdigit() or len(digits) > 8 or unit not in _TIMEOUT_UNITS:
        return None
    return int(digits) * _TIMEOUT_UNITS[unit]


class NativeContext:
    """A call's context: grpc.aio's ``ServicerContext`` as far as the servicers use it."""

    __slots__ = (
        "_code",
        "_deadline",
        "_details",
        "_metadata",
        "_serialize",
        "_stream",
        "_trailing",
        "deadline_passed",
        "headers_sent",
        "server",
    )

    def __init__(
        self, server: GrpcServer, stream: Stream, metadata: tuple[tuple[str, str | bytes], ...]
    ) -> None:
        self.server = server
        self._stream = stream
        self._metadata = metadata
        self._serialize: Callable[[Any], bytes] | None = None  # a streaming method's serializer
        self._deadline: float | None = None
        self._trailing: Metadata = ()
        self._code = OK
        self._details = ""
        self.headers_sent = False
        self.deadline_passed = False

    # grpc.aio's API -------------------------------------------------------------------------

    def invocation_metadata(self) -> tuple[tuple[str, str | bytes], ...]:
        return self._metadata

    def time_remaining(self) -> float | None:
        if self._deadline is None:
            return None
        return max(0.0, self._deadline - time.monotonic())

    def set_trailing_metadata(self, trailing_metadata: Metadata) -> None:
        self._trailing = tuple(trailing_metadata)

    def trailing_metadata(self) -> Metadata:
        return self._trailing

    def set_code(self, code: Any) -> None:
        self._code = _status_number(code)

    def set_details(self, details: str) -> None:
        self._details = details

    def code(self) -> int:
        return self._code

    def details(self) -> str:
        return self._details

    def peer(self) -> str:
        return self._stream.peer

    def cancelled(self) -> bool:
        return self._stream.reset_code is not None

    def done(self) -> bool:
        return self._stream.local_closed or self._stream.reset_code is not None

    async def send_initial_metadata(self, initial_metadata: Metadata) -> None:
        if self.headers_sent:
            raise RuntimeError("initial metadata was already sent")
        self.headers_sent = True
        self._stream.send_headers(_RESPONSE_HEAD + _metadata_out(initial_metadata))

    async def abort(self, code: Any, details: str = "", trailing_metadata: Metadata = ()) -> Any:
        number = _status_number(code)
        if number == OK:
            raise ValueError("abort with the OK status")
        self._code = number
        self._details = details
        if trailing_metadata:
            self._trailing = tuple(trailing_metadata)
        raise AbortError(details)

    async def write(self, message: Any) -> None:
        await self.send_message(message)

    # the server's side ----------------------------------------------------------------------

    async def send_message(self, message: Any) -> None:
        serialize = self._serialize
        if serialize is None:
            raise RuntimeError("write() on a call that does not stream its answer")
        data = serialize(message)
        if len(data) > self.server.max_message:
            raise _CallFailed(
                RESOURCE_EXHAUSTED, f"the answer's message ({len(data)} bytes) is over the limit"
            )
        if not self.headers_sent:
            self.headers_sent = True
            self._stream.send_headers(_RESPONSE_HEAD)
        await self._stream.send_data(b"\x00" + len(data).to_bytes(4, "big") + data)

    def trailers(self, code: int, details: str) -> list[tuple[bytes, bytes]]:
        fields = [(b"grpc-status", b"%d" % code)]
        if details:
            fields.append((b"grpc-message", _percent(details)))
        fields.extend(_metadata_out(self._trailing))
        if not self.headers_sent:  # trailers only
            self.headers_sent = True
            return _RESPONSE_HEAD + fields
        return fields

    def finish(self, code: int, details: str) -> None:
        """End the call with a status (nothing if the stream is already gone)."""
        stream = self._stream
        if stream.reset_code is not None or stream.local_closed:
            return
        stream.send_trailers(self.trailers(code, details))


class _CallFailed(Exception):
    """A call that ends with a status of the server's own (not the handler's); with an
    ``error_type``, a client error that carries the Anthropic trailers as a servicer's errors do."""

    def __init__(self, code: int, message: str, error_type: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.error_type = error_type


def _refused(context: NativeContext, failure: _CallFailed) -> None:
    if failure.error_type:
        error = SidecarError(failure.message, error_type=failure.error_type)
        context.set_trailing_metadata(error_trailers(error, new_request_id()))
    context.finish(failure.code, failure.message)


def _not_grpc(stream: Stream, head: list[tuple[bytes, bytes]], code: int, message: bytes) -> None:
    """Answer a request the door does not serve with trailers only: ``head``, then the status."""
    stream.send_headers([*head, (b"grpc-status", b"%d" % code), (b"grpc-message", message)], end_stream=True)


class _Messages:
    """The length-prefixed messages of a request stream, decompressed, each at most
    ``max_message`` bytes."""

    __slots__ = ("_buffer", "_encoding", "_max", "_stream")

    def __init__(self, stream: Stream, encoding: bytes, max_message: int) -> None:
        self._stream = stream
        self._encoding = encoding
        self._max = max_message
        self._buffer = b""

    async def next(self) -> bytes | None:
        """The next message, or None at the end of the stream."""
        buffer = self._buffer
        while True:
            if len(buffer) >= 5:
                size = int.from_bytes(buffer[1:5], "big")
                if size > self._max:
                    raise _CallFailed(
                        RESOURCE_EXHAUSTED,
                        f"Received message larger than max ({size} vs. {self._max})",
                        "request_too_large",
                    )
                if len(buffer) >= 5 + size:
                    flag = buffer[0]
                    message = buffer[5 : 5 + size]
                    self._buffer = buffer[5 + size :]
                    return self._decompress(message) if flag else message
            chunk = await self._stream.read()
            if not chunk:
                if buffer:
                    raise _CallFailed(INTERNAL, "the request stream ended inside a message")
                self._buffer = b""
                return None
            buffer = buffer + chunk if buffer else chunk

    def _decompress(self, message: bytes) -> bytes:
        encoding = self._encoding
        if encoding in (b"", b"identity"):
            raise _CallFailed(INTERNAL, "a compressed message without grpc-encoding")
        try:
            if encoding == b"gzip":
                inflater = zlib.decompressobj(wbits=31)
            else:
                inflater = zlib.decompressobj()
            data = inflater.decompress(message, self._max + 1)
        except zlib.error as exc:
            raise _CallFailed(INTERNAL, f"cannot decompress a message: {exc}") from None
        if len(data) > self._max or inflater.unconsumed_tail:
            raise _CallFailed(
                RESOURCE_EXHAUSTED,
                f"a decompressed message over the limit ({self._max} bytes)",
                "request_too_large",
            )
        return data


class _Requests:
    """A client-streaming method's requests: an async iterator over the stream's messages (a
    class, not an async generator, so that mypyc compiles it)."""

    __slots__ = ("_deserialize", "_messages")

    def __init__(self, deserialize: Callable[[bytes], Any], messages: _Messages) -> None:
        self._deserialize = deserialize
        self._messages = messages

    def __aiter__(self) -> _Requests:
        return self

    async def __anext__(self) -> Any:
        data = await self._messages.next()
        if data is None:
            raise StopAsyncIteration
        return self._deserialize(data)


class GrpcServer:
    """gRPC over ``sidecar.http2``, serving ``methods``."""

    def __init__(
        self, methods: Sequence[MethodSpec], max_message: int, limits: Http2Limits | None = None
    ) -> None:
        self.methods = {m.path.encode("ascii"): m for m in methods}
        self.max_message = max_message
        self.http2 = Http2Server(self.handle, limits)

    async def start(self, sock: socket.socket) -> None:
        await self.http2.start(sock)

    async def stop(self, grace: float | None) -> None:
        """As grpc.aio's ``stop``: no new calls, those running get ``grace`` seconds, then they
        are cancelled."""
        await self.http2.shutdown(grace or 0.0)

    async def handle(self, stream: Stream) -> None:
        """One call: its stream's task."""
        method_name = path = content_type = b""
        timeout = encoding = b""
        metadata: list[tuple[str, str | bytes]] = []
        for name, value in stream.headers:
            if name[:1] == b":":
                if name == b":path":
                    path = value
                elif name == b":method":
                    method_name = value
            elif name == b"content-type":
                content_type = value
            elif name == b"grpc-timeout":
                timeout = value
            elif name == b"grpc-encoding":
                encoding = value
            elif name not in _NOT_METADATA:
                key = name.decode("latin-1")
                if name.endswith(b"-bin"):
                    try:
                        metadata.append((key, base64.b64decode(value + b"=" * (-len(value) % 4))))
                    except ValueError:
                        continue  # not base64: dropped, as grpc's core drops it
                else:
                    metadata.append((key, value.decode("latin-1")))
        if method_name != b"POST":
            _not_grpc(stream, [(b":status", b"405")], UNIMPLEMENTED, b"not POST")
            return
        if not content_type.startswith(b"application/grpc"):
            _not_grpc(stream, [(b":status", b"415")], INTERNAL, b"content-type is not application/grpc")
            return
        context = NativeContext(self, stream, tuple(metadata))
        if stream.oversized:
            limit = stream.conn.limits.max_header_list
            _refused(
                context, _CallFailed(RESOURCE_EXHAUSTED, f"metadata over {limit} bytes", "request_too_large")
            )
            return
        method = self.methods.get(path)
        if method is None:
            context.finish(UNIMPLEMENTED, "Method not found!")
            return
        if encoding not in (b"", b"identity", b"gzip", b"deflate"):
            head = [*_RESPONSE_HEAD, (b"grpc-accept-encoding", _ACCEPT_ENCODING)]
            _not_grpc(stream, head, UNIMPLEMENTED, b"unsupported grpc-encoding")
            return
        deadline_timer = None
        if timeout:
            seconds = _timeout(timeout)
            if seconds is not None:
                context._deadline = time.monotonic() + seconds
                task = stream.task  # this one
                assert task is not None
                deadline_timer = stream.conn.loop.call_later(seconds, self._deadline, context, task)
        try:
            await self._run(method, context, _Messages(stream, encoding, self.max_message))
        except AbortError:
            context.finish(context._code, context._details)
        except _CallFailed as exc:
            _refused(context, exc)
        except StreamReset:
            pass  # the client left (its handler was cancelled, or a send found the stream reset)
        except asyncio.CancelledError:
            if context.deadline_passed:
                context.finish(DEADLINE_EXCEEDED, "Deadline Exceeded")
            elif stream.reset_code is None:
                # Cancelled by the server (a drain's grace ran out): tell the client.
                context.finish(UNAVAILABLE, "the server is shutting down")
                raise
        except Exception:
            log.exception("the handler of %s failed", method.path)
            context.finish(UNKNOWN, "Unexpected error in RPC handling")
        finally:
            if deadline_timer is not None:
                deadline_timer.cancel()

    def _deadline(self, context: NativeContext, task: asyncio.Task[Any]) -> None:
        if not task.done():
            context.deadline_passed = True
            task.cancel()

    async def _run(self, method: MethodSpec, context: NativeContext, messages: _Messages) -> None:
        if method.client_streaming:
            request: Any = _Requests(method.deserialize, messages)
        else:
            data = await messages.next()
            if data is None:
                raise _CallFailed(INTERNAL, "the request carried no message")
            request = method.deserialize(data)
        if method.server_streaming:
            context._serialize = method.serialize
            result = method.func(request, context)
            if not hasattr(result, "__aiter__"):
                await result  # a handler that writes with ``context.write``
            else:
                try:
                    async for response in result:
                        await context.send_message(response)
                except BaseException:
                    # Left early (cancelled, a send failed): the generator's own cleanup runs
                    # now, not when it is collected.
                    await result.aclose()
                    raise
            context.finish(context._code, context._details)
            return
        response = await method.func(request, context)
        stream = context._stream
        if stream.reset_code is not None or stream.local_closed:
            return
        if context._code != OK:  # set_code without abort
            context.finish(context._code, context._details)
            return
        data = method.serialize(response)
        if len(data) > self.max_message:
            raise _CallFailed(
                RESOURCE_EXHAUSTED, f"the answer's message ({len(data)} bytes) is over the limit"
            )
        message = b"\x00" + len(data).to_bytes(4, "big") + data
        trailers = [(b"grpc-status", b"0"), *_metadata_out(context._trailing)]
        if not context.headers_sent:
            context.headers_sent = True
            head = stream.conn.header_frames(stream.id, _RESPONSE_HEAD, False)
            if stream.try_send_all(head, message, trailers):
                return
            stream.conn.write(b"".join(head))
        await stream.send_data(message)
        stream.send_trailers(trailers)
