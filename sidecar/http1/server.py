"""Our HTTP/1.1 server: an asyncio Protocol on httptools (llhttp) hosting an ASGI3 app.

What the API listener needs, and nothing else::

    keep-alive, pipelining      answers strictly in request order; a pipelined request is parsed
                                (reading then pauses) and served once the previous answer is out
                                and the write buffer is below its high-water mark
    HTTP/1.0                    closed after the answer unless it asked for keep-alive; a
                                streamed answer is delimited by the close
    Expect: 100-continue        `100 Continue` only when the app first reads the body
    request bodies              content-length or chunked (extensions and trailers ignored)
    responses                   content-length when known, else chunked; HEAD has no body
    limits                      header block (431), body (413 before reading it), timeouts for
                                the header block, between body chunks and between requests, for
                                a client that reads nothing of its answer (cut), requests in
                                flight per listener (529 + retry-after, app not run)
    protocol errors             a 400 Anthropic error envelope with `connection: close`, then
                                the connection closes (lingering: the rest is read and dropped
                                for a moment so the client sees the answer, not a reset)
    backpressure                `send` waits while the client does not read (the transport's
                                high/low water marks), and so does the next pipelined request;
                                reading pauses while the app does not take the body (a bounded
                                buffer)
    disconnect                  `receive()` says `http.disconnect` at once; with
                                ``cancel_on_disconnect`` the server also cancels the app's task
                                (scope extension ``sidecar.cancel_on_disconnect``), so the app
                                needs no watcher task of its own; a half-close counts as leaving
    drain                       ``shutdown``: stop accepting, close idle connections, close busy
                                ones after their answer, cut what remains at the grace

Upgrade requests (websocket, h2c) get a plain answer and the connection closes; CONNECT is
refused. No ``server`` header; ``date`` is cached per second. Errors answered here carry a
request id (``request-id``) like every other answer of the sidecar.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from email.utils import formatdate
from http import HTTPStatus
from typing import Any, cast
from urllib.parse import unquote

import httptools
import msgspec

from ..core import new_request_id
from ..errors import error_body, error_type_for_status
from .timer import LazyTimer

__all__ = ["CANCEL_ON_DISCONNECT", "HttpServer", "ServerLimits"]

log = logging.getLogger("sidecar.http1")

Scope = dict[str, Any]
Message = dict[str, Any]
App = Callable[
    [Scope, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]], Awaitable[None]
]

# The scope extension: present when the server cancels the app's task if the client goes away
# before the response is complete (the app then needs no disconnect watcher of its own).
CANCEL_ON_DISCONNECT = "sidecar.cancel_on_disconnect"

_INF = float("inf")
_LINGER = 2.0  # seconds a closing connection keeps reading (and dropping) what the client sends
_DISCONNECT: Message = {"type": "http.disconnect"}
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
_NO_BODY_STATUS = frozenset({204, 304})
_FRAMING = frozenset({b"content-length", b"connection", b"transfer-encoding", b"date"})
# Request headers looked at while they are parsed.
_WATCHED = frozenset({b"content-length", b"transfer-encoding", b"expect"})
_encode = msgspec.json.encode


@dataclass(frozen=True, slots=True)
class ServerLimits:
    """Per-listener limits (``listeners.http`` in the config; README, config reference)."""

    max_header_bytes: int = 16 * 1024  # request line + header block; over it: 431
    max_body_bytes: int = 512 * 1024 * 1024  # a larger content-length: 413 before reading it
    header_timeout: float = 10.0  # seconds for the whole header block, from its first byte
    body_timeout: float = 30.0  # seconds of silence between request body chunks
    keep_alive_timeout: float = 75.0  # seconds an idle keep-alive connection is kept
    # Seconds a client may leave its answer unread (the write buffer stays above its high-water
    # mark); then the connection is cut and the call cancelled (nginx's send_timeout).
    send_timeout: float = 60.0
    max_in_flight: int = 1024  # app calls running on this listener; more: 529 + retry-after
    write_high_water: int = 64 * 1024  # `send` waits while more than this is unsent ...
    write_low_water: int = 16 * 1024  # ... until it is below this
    read_buffer: int = 64 * 1024  # request body buffered for the app before reading pauses


def _status_line(status: int) -> bytes:
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Overloaded" if status == 529 else ""
    return f"HTTP/1.1 {status} {phrase}\r\n".encode("latin-1")


_STATUS_LINES: dict[int, bytes] = {}
_date_cache: list[Any] = [0, b""]


def _date_line() -> bytes:
    now = int(time.time())
    if now != _date_cache[0]:
        _date_cache[0] = now
        _date_cache[1] = b"date: " + formatdate(now, usegmt=True).encode("ascii") + b"\r\n"
    line: bytes = _date_cache[1]
    return line


class _Refuse(Exception):
    """Raised inside a parser callback: answer ``status`` with ``message`` and close."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _error_answer(
    status: int, message: str, extra: tuple[tuple[bytes, bytes], ...] = (), close: bool = True
) -> bytes:
    """A whole response: the Anthropic error envelope for ``status``."""
    request_id = new_request_id()
    body = _encode(error_body(error_type_for_status(status), message, request_id))
    lines = [
        _STATUS_LINES.get(status) or _status_line(status),
        b"content-type: application/json\r\n",
        b"content-length: %d\r\n" % len(body),
        b"request-id: " + request_id.encode() + b"\r\n",
        _date_line(),
    ]
    lines.extend(k + b": " + v + b"\r\n" for k, v in extra)
    if close:
        lines.append(b"connection: close\r\n")
    lines.append(b"\r\n")
    lines.append(body)
    return b"".join(lines)


class _Cycle:
    """One request and its answer: the ASGI ``receive`` and ``send`` of one app call."""

    __slots__ = (
        "body",
        "body_size",
        "chunked",
        "complete",
        "conn",
        "expect_100",
        "final_read",
        "gone",
        "head",
        "head_only",
        "keep_alive",
        "left",
        "local",
        "more_body",
        "received",
        "scope",
        "started",
        "task",
        "waiter",
    )

    def __init__(self, conn: _Connection, scope: Scope | None, keep_alive: bool) -> None:
        self.conn = conn
        self.scope = scope
        self.keep_alive = keep_alive
        self.local: bytes | None = None  # an answer the server gives itself (no app call)
        self.body: list[bytes] = []
        self.body_size = 0  # bytes buffered in ``body``
        self.received = 0  # bytes of request body received in all
        self.more_body = True  # the request message is not complete yet
        self.final_read = False  # the app has been given the last of the body
        self.expect_100 = False
        self.started = False  # http.response.start seen
        self.head: list[bytes] | None = None  # the response head, written with the first body
        self.chunked = False
        self.head_only = False if scope is None else scope["method"] == "HEAD"
        self.left = -1  # response body bytes still due by content-length (-1: not by length)
        self.complete = False  # the whole response has been handed to the transport
        self.gone = False  # the connection was lost (or cut) before the response completed
        self.task: asyncio.Task[None] | None = None
        self.waiter: asyncio.Future[None] | None = None

    def wake(self) -> None:
        waiter = self.waiter
        if waiter is not None:
            self.waiter = None
            if not waiter.done():
                waiter.set_result(None)

    async def receive(self) -> Message:
        if self.expect_100:
            self.expect_100 = False
            if not self.started and not self.gone:
                conn = self.conn
                conn.transport.write(_CONTINUE)
                if conn.parsing is self:  # the client sends its body now: the body timeout runs
                    conn.activity = conn.loop.time()
                    conn.arm(conn.activity + conn.limits.body_timeout)
        while True:
            if self.gone or self.complete:
                return _DISCONNECT
            if not self.final_read and (self.body_size or not self.more_body):
                body = self.body
                data = body[0] if len(body) == 1 else b"".join(body)
                self.body = []
                self.body_size = 0
                more = self.more_body
                if not more:
                    self.final_read = True
                else:
                    self.conn.check_reading()
                return {"type": "http.request", "body": data, "more_body": more}
            waiter = self.waiter = self.conn.loop.create_future()
            await waiter

    async def send(self, message: Message) -> None:
        if self.gone:
            return  # the client left (or the server answered for the app): nothing to send
        kind = message["type"]
        if kind == "http.response.body":
            if not self.started:
                raise RuntimeError("http.response.body before http.response.start")
            if self.complete:
                raise RuntimeError("http.response.body after the response completed")
            conn = self.conn
            body: bytes = message.get("body", b"")
            more: bool = message.get("more_body", False)
            out = self._frame(body, more)
            if not more:
                self.complete = True
            if out:
                conn.transport.write(out)
            if not more:
                self.wake()
                conn.response_done(self)
            elif conn.write_paused:
                await conn.drain()
        elif kind == "http.response.start":
            if self.started:
                raise RuntimeError("http.response.start sent twice")
            self._start(message["status"], message.get("headers", ()))
            self.started = True
        else:
            raise RuntimeError(f"unexpected ASGI message {kind!r}")

    def _start(self, status: int, headers: Any) -> None:
        conn = self.conn
        lines: list[bytes] = []
        length = -1
        have_date = False
        for name, value in headers:
            name = name.lower()
            if name in _FRAMING:
                if name == b"content-length":
                    length = int(value)
                elif name == b"connection":
                    if b"close" in value.lower():
                        self.keep_alive = False
                    continue
                elif name == b"transfer-encoding":
                    continue  # the framing is decided here
                else:
                    have_date = True
            lines.append(name + b": " + value + b"\r\n")
        block = b"".join(lines)
        if block.count(b"\n") != len(lines) or block.count(b"\r") != len(lines):
            # A line break inside a name or value would split the head (response splitting).
            raise RuntimeError(f"a response header holds a line break: {block!r}")
        head = [_STATUS_LINES.get(status) or _STATUS_LINES.setdefault(status, _status_line(status)), block]
        if not have_date:
            head.append(_date_line())
        if self.more_body:
            # Answered before the request was read to its end: the rest cannot be skipped
            # reliably (100-continue, a large body), so this connection serves no other request.
            self.keep_alive = False
        if conn.draining or conn.eof:
            self.keep_alive = False
        if length >= 0:
            self.left = length
        elif status < 200 or status in _NO_BODY_STATUS:
            self.left = 0
        self.head = head
        if status < 200 or status in _NO_BODY_STATUS:
            self.head_only = True

    def _frame(self, body: bytes, more: bool) -> bytes:
        head = self.head
        if head is not None:
            self.head = None
            if self.left < 0 and not self.head_only:
                if not more:
                    # The whole body at once: say its length rather than chunk it.
                    self.left = len(body)
                    head.append(b"content-length: %d\r\n" % len(body))
                elif self.scope is not None and self.scope["http_version"] == "1.1":
                    self.chunked = True
                    head.append(b"transfer-encoding: chunked\r\n")
                else:
                    self.keep_alive = False  # HTTP/1.0: the close ends the body
            elif self.left < 0:
                self.left = 0 if not more else -1
            if not self.keep_alive:
                head.append(b"connection: close\r\n")
            elif self.scope is not None and self.scope["http_version"] == "1.0":
                head.append(b"connection: keep-alive\r\n")
            head.append(b"\r\n")
            if self.head_only:
                return b"".join(head)
            head.append(self._body(body, more))
            return b"".join(head)
        if self.head_only:
            return b""
        return self._body(body, more)

    def _body(self, body: bytes, more: bool) -> bytes:
        if self.chunked:
            if body:
                out = b"%x\r\n%b\r\n" % (len(body), body)
                return out if more else out + b"0\r\n\r\n"
            return b"" if more else b"0\r\n\r\n"
        if self.left >= 0:
            self.left -= len(body)
            if self.left < 0:
                raise RuntimeError("response body longer than its content-length")
            if not more and self.left > 0:
                self.keep_alive = False  # shorter than promised: the close tells the client
        return body


class _BodyOnly:
    """The parser's callbacks for the body of an upgrade request, which llhttp does not read
    (it stops after the header block): a second parser reads it after a synthetic head."""

    def __init__(self, conn: _Connection) -> None:
        self.on_body = conn.on_body
        self.on_message_complete = conn.on_message_complete


class _Connection(asyncio.Protocol):
    def __init__(self, server: HttpServer) -> None:
        self.server = server
        self.limits = server.limits
        self.loop = server.loop
        self.transport: asyncio.Transport = None  # type: ignore[assignment]
        self.parser = httptools.HttpRequestParser(self)
        self.cycle: _Cycle | None = None  # the request being served
        self.queue: deque[_Cycle] = deque()  # parsed (pipelined), waiting for their turn
        self.parsing: _Cycle | None = None  # the request whose body the parser is reading
        self.in_head = False  # between a request's first byte and the end of its header block
        # Raw bytes read since the last header block ended, counting only reads that began outside
        # a body: an upper bound on the header block's size unless it began after another message
        # in the same read (``exact`` then: it is measured from its parts).
        self.head_bytes = 0
        self.after_message = False  # within a read, after a message ended
        self.exact = False
        self.length = 0  # the request's content-length
        self.transfer_encoding = False
        self.expect_100 = False
        self.head_start = 0.0
        self.url = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.upgrade = False
        self.broken = False  # no more requests are parsed on this connection
        self.closing = False
        self.lingering = False
        self.eof = False
        self.draining = server.draining
        self.read_paused = False
        self.write_paused = False
        self.drain_waiter: asyncio.Future[None] | None = None
        self.write_paused_at = 0.0  # since when the client has not read (write_paused)
        self.activity = 0.0  # last request body bytes (for the body timeout)
        self.idle_since = 0.0
        self.fresh = True  # no request has begun yet: the header timeout covers the wait for one
        self.linger_until = 0.0
        self.upgrade_cycle: _Cycle | None = None
        self.timer = LazyTimer(self.loop, self.on_timer)
        self.client: tuple[str, int] | None = None
        self.local_addr: tuple[str, int] | None = None

    # --- asyncio.Protocol ---------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport = cast(asyncio.Transport, transport)
        limits = self.limits
        transport.set_write_buffer_limits(limits.write_high_water, limits.write_low_water)
        peer = transport.get_extra_info("peername")
        self.client = tuple(peer[:2]) if isinstance(peer, tuple) else None
        local = transport.get_extra_info("sockname")
        self.local_addr = tuple(local[:2]) if isinstance(local, tuple) else None
        self.server.connections.add(self)
        self.idle_since = self.loop.time()
        # A client that connects and sends nothing is cut like one that drips its headers.
        self.arm(self.deadline()[0])

    def connection_lost(self, exc: Exception | None) -> None:
        self.closing = True
        self.server.connections.discard(self)
        if not self.server.connections:
            self.server.idle.set()
        self.timer.cancel()
        cycle = self.cycle
        if cycle is not None and not cycle.complete:
            self.lose(cycle)
        for queued in self.queue:
            queued.gone = True
        self.queue.clear()
        self.parsing = None
        self.write_paused = False
        self.wake_writer()

    def eof_received(self) -> bool | None:
        # A client that closes its side is taken as gone (as uvicorn does): a half-close
        # cannot be told apart from a closed socket until a write fails.
        self.eof = True
        cycle = self.cycle
        if cycle is not None and not cycle.complete and self.transport.get_write_buffer_size():
            # Part of an answer waits in the buffer: the transport would close once it is
            # written, never if the client reads nothing, and the call would wait as long.
            self.lose(cycle)
            self.closing = True
            self.transport.abort()
        return None

    def pause_writing(self) -> None:
        self.write_paused = True
        self.write_paused_at = now = self.loop.time()
        self.arm(now + self.limits.send_timeout)

    def resume_writing(self) -> None:
        self.write_paused = False
        self.wake_writer()
        if self.cycle is None and self.queue:
            self.loop.call_soon(self.start_next)  # not from inside the transport's write callback

    def wake_writer(self) -> None:
        waiter = self.drain_waiter
        if waiter is not None:
            self.drain_waiter = None
            if not waiter.done():
                waiter.set_result(None)

    async def drain(self) -> None:
        if self.closing or not self.write_paused:
            return
        waiter = self.drain_waiter
        if waiter is None:
            waiter = self.drain_waiter = self.loop.create_future()
        await waiter

    def data_received(self, data: bytes) -> None:
        if self.broken:
            return  # lingering, or after an error: what follows is dropped
        if self.parsing is None:
            self.head_bytes += len(data)
        self.after_message = False
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade as upgrade:
            self.upgraded(data, upgrade.args[0] if upgrade.args else len(data))
        except httptools.HttpParserError as malformed:
            refuse = malformed.__context__
            if isinstance(refuse, _Refuse):
                self.protocol_error(refuse.status, refuse.message)
            else:
                self.protocol_error(400, f"malformed HTTP/1.1 request: {malformed}")
            return
        if self.in_head and self.head_bytes > self.limits.max_header_bytes:
            self.protocol_error(431, self.too_large_head())
            return
        self.check_reading()

    # --- parser callbacks ---------------------------------------------------------------------

    def on_message_begin(self) -> None:
        self.fresh = False
        self.in_head = True
        self.url = b""
        self.headers = []
        self.exact = self.after_message
        self.length = 0
        self.transfer_encoding = self.expect_100 = False
        self.upgrade = False
        now = self.loop.time()
        self.head_start = now
        if not self.busy:
            self.arm(now + self.limits.header_timeout)

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        name = name.lower()
        self.headers.append((name, value))
        if name in _WATCHED:
            if name == b"content-length":
                self.length = int(value)  # llhttp has checked it: digits, only one
            elif name == b"transfer-encoding":
                self.transfer_encoding = True
            else:
                self.expect_100 = value.lower() == b"100-continue"

    def on_headers_complete(self) -> None:
        self.in_head = False
        limits = self.limits
        if self.exact or self.head_bytes > limits.max_header_bytes:
            size = len(self.url) + sum([len(k) + len(v) + 4 for k, v in self.headers])
            if size > limits.max_header_bytes:
                raise _Refuse(431, self.too_large_head())
        self.head_bytes = 0
        parser = self.parser
        method = parser.get_method().decode("ascii")
        if method == "CONNECT":
            raise _Refuse(400, "CONNECT is not supported: this is not a forward proxy")
        version = parser.get_http_version()
        if version != "1.1":
            if version != "1.0":
                raise _Refuse(400, f"HTTP/{version} is not supported; use HTTP/1.1")
            if self.transfer_encoding:
                raise _Refuse(400, "transfer-encoding is not allowed in HTTP/1.0")
        if self.length > limits.max_body_bytes:
            raise _Refuse(
                413, f"Request exceeds the maximum allowed number of bytes ({limits.max_body_bytes})"
            )
        url = self.url
        if url[:1] == b"/" and b"#" not in url:
            raw_path, _, query = url.partition(b"?")
        elif url == b"*":
            raw_path, query = url, b""
        else:
            try:
                parsed = httptools.parse_url(url)
            except httptools.HttpParserInvalidURLError:
                raise _Refuse(400, "malformed request target") from None
            raw_path, query = parsed.path or b"/", parsed.query or b""
        path = raw_path.decode("latin-1")
        if "%" in path:
            path = unquote(path)
        keep_alive = parser.should_keep_alive() and not self.draining
        if parser.should_upgrade():
            # A plain answer, no upgrade (websocket, h2c): then this connection closes.
            self.upgrade = True
            keep_alive = False
            upgrade = True
        else:
            upgrade = False
        scope: Scope = {
            "type": "http",
            "asgi": self.server.asgi,
            "http_version": version,
            "server": self.local_addr,
            "client": self.client,
            "scheme": "http",
            "method": method,
            "root_path": "",
            "path": path,
            "raw_path": raw_path,
            "query_string": query,
            "headers": self.headers,
            "extensions": self.server.extensions,
        }
        cycle = _Cycle(self, scope, keep_alive)
        cycle.expect_100 = self.expect_100 and version == "1.1"
        self.parsing = cycle
        if upgrade:
            self.upgrade_cycle = cycle
        self.activity = self.loop.time()
        self.arm(self.activity + limits.body_timeout)
        self.start_or_queue(cycle)

    def on_body(self, body: bytes) -> None:
        cycle = self.parsing
        if cycle is None:
            return
        cycle.received += len(body)
        if cycle.received > self.limits.max_body_bytes:
            raise _Refuse(
                413, f"Request exceeds the maximum allowed number of bytes ({self.limits.max_body_bytes})"
            )
        self.activity = self.loop.time()
        if cycle.gone or cycle.complete or cycle.local is not None:
            return  # nobody will read it
        cycle.body.append(body)
        cycle.body_size += len(body)
        cycle.wake()

    def on_message_complete(self) -> None:
        cycle = self.parsing
        self.parsing = None
        self.after_message = True
        if cycle is not None:
            cycle.more_body = False
            if cycle.local is not None and cycle is self.cycle and not cycle.complete:
                self.write_local(cycle)  # an answer that waited for the body to be read
            cycle.wake()
        if self.upgrade:
            self.broken = True  # the request was answered plainly; nothing more is read
        elif not self.busy:
            self.idle_since = self.loop.time()
            self.arm(self.idle_since + self.limits.keep_alive_timeout)

    # --- the requests -------------------------------------------------------------------------

    @property
    def busy(self) -> bool:
        """A request is being served or waits its turn."""
        return self.cycle is not None or bool(self.queue)

    def start_or_queue(self, cycle: _Cycle) -> None:
        if self.busy or self.write_paused:
            self.queue.append(cycle)
        else:
            self.start(cycle)

    def start_next(self) -> None:
        """The next pipelined request, once its turn has come: the answer before it is out of
        the way and the write buffer below its high-water mark. Otherwise a client that sends
        many requests and reads none would have every answer pile up in the buffer."""
        if self.cycle is None and self.queue and not self.write_paused and not self.closing:
            self.start(self.queue.popleft())
            self.check_reading()

    def start(self, cycle: _Cycle) -> None:
        self.cycle = cycle
        server = self.server
        if cycle.local is not None:
            self.write_local(cycle)
            return
        if server.in_flight >= self.limits.max_in_flight:
            server.refused += 1
            # Its body is read and dropped, and the answer goes once it is in (the connection
            # stays usable); a client waiting for `100 Continue` is answered at once instead.
            if cycle.expect_100 and cycle.more_body:
                cycle.keep_alive = False
            cycle.local = _error_answer(
                529,
                "the sidecar has too many requests in flight; retry the request",
                ((b"retry-after", b"1"),),
                close=not cycle.keep_alive,
            )
            if not cycle.more_body or not cycle.keep_alive:
                self.write_local(cycle)
            return
        server.in_flight += 1
        cycle.task = self.loop.create_task(self.run(cycle))
        # Counted down when the task is done, however: a task cancelled before its first step
        # (the client left at once) never runs the body of ``run``, its ``finally`` included.
        cycle.task.add_done_callback(server.call_done)

    def write_local(self, cycle: _Cycle) -> None:
        assert cycle.local is not None
        cycle.started = True
        cycle.complete = True
        self.transport.write(cycle.local)
        self.response_done(cycle)

    async def run(self, cycle: _Cycle) -> None:
        server = self.server
        scope = cycle.scope
        assert scope is not None
        try:
            await server.app(scope, cycle.receive, cycle.send)
        except asyncio.CancelledError:
            if not cycle.gone:
                self.cut(cycle)  # cancelled from outside (shutdown): close what it left
        except BaseException:
            if cycle.gone:
                log.debug("app failed after the client left", exc_info=True)
            else:
                log.exception("the app failed on %s %s", scope["method"], scope["path"])
                self.failed(cycle)
        else:
            if not cycle.complete and not cycle.gone:
                log.error(
                    "the app returned without a complete response to %s %s", scope["method"], scope["path"]
                )
                self.failed(cycle)

    def failed(self, cycle: _Cycle) -> None:
        """The app raised or returned early: a 500 envelope if nothing was sent, else a cut."""
        if (not cycle.started or cycle.head is not None) and not self.closing:
            # Nothing written yet (a head is written with the first body).
            cycle.started = cycle.complete = True
            cycle.keep_alive = False
            self.transport.write(_error_answer(500, "Internal server error"))
            self.response_done(cycle)
        else:
            self.cut(cycle)

    def cut(self, cycle: _Cycle) -> None:
        if not cycle.complete:
            cycle.gone = True
            cycle.wake()
            if not self.closing:
                self.closing = True
                self.transport.close()

    def lose(self, cycle: _Cycle) -> None:
        """The connection went away (or was cut) before the response completed."""
        cycle.gone = True
        cycle.wake()
        task = cycle.task
        if task is not None and self.server.cancel_on_disconnect and not task.done():
            task.cancel()

    def response_done(self, cycle: _Cycle) -> None:
        if cycle is not self.cycle:
            return
        self.cycle = None
        if not cycle.keep_alive or self.draining or self.eof or (self.broken and not self.queue):
            self.close(linger=self.parsing is not None or self.in_head or self.broken)
            return
        if self.queue:
            self.start_next()  # or when the buffer is drained (``resume_writing``)
        else:
            now = self.loop.time()
            if self.in_head:
                self.head_start = now
                self.arm(now + self.limits.header_timeout)
            elif self.parsing is None:
                self.idle_since = now
                self.arm(now + self.limits.keep_alive_timeout)
        self.check_reading()

    def close(self, linger: bool = False) -> None:
        if self.closing:
            return
        self.broken = True
        if linger and self.transport.can_write_eof():
            # Keep reading (and dropping) for a moment, so a client still sending sees our
            # answer rather than a reset.
            self.lingering = True
            self.parsing = None
            self.in_head = False
            with contextlib.suppress(OSError, RuntimeError):
                self.transport.write_eof()
            self.check_reading()
            self.linger_until = self.loop.time() + _LINGER
            self.arm(self.linger_until)
            return
        self.closing = True
        self.transport.close()

    def protocol_error(self, status: int, message: str) -> None:
        """The request cannot be parsed (or is refused before the app sees it): answer ``status``
        in order, then close."""
        log.debug("HTTP/1.1 %d from %s: %s", status, self.client, message)
        if self.closing or self.lingering:
            return
        self.broken = True
        self.in_head = False
        victim = self.parsing
        self.parsing = None
        if victim is not None:
            if victim is self.cycle:
                # Broken mid-body of the request being served.
                started = victim.started
                self.lose(victim)
                if started:
                    self.closing = True
                    self.transport.close()
                    return
                victim.started = victim.complete = True
                self.transport.write(_error_answer(status, message))
                self.cycle = None
                self.close(linger=True)
                return
            with contextlib.suppress(ValueError):
                self.queue.remove(victim)
        answer = _Cycle(self, None, keep_alive=False)
        answer.more_body = False
        answer.local = _error_answer(status, message)
        self.start_or_queue(answer)
        self.check_reading()

    def too_large_head(self) -> str:
        return f"the request's header block is larger than {self.limits.max_header_bytes} bytes"

    def upgraded(self, data: bytes, offset: int) -> None:
        """llhttp stopped after an upgrade request's head; it is served as a plain request. If it
        has a body, a second parser reads it (after a synthetic head with the same framing)."""
        cycle = self.upgrade_cycle
        self.upgrade_cycle = None
        self.broken = True  # after this request, nothing more is read
        if cycle is None or cycle.scope is None:
            return
        length = b"0"
        chunked = False
        for name, value in cycle.scope["headers"]:
            if name == b"content-length":
                length = value
            elif name == b"transfer-encoding":
                chunked = True
        if length == b"0" and not chunked:
            return
        # on_message_complete came after the head alone: the body is still to come.
        self.broken = False
        cycle.more_body = True
        self.parsing = cycle
        self.parser = httptools.HttpRequestParser(_BodyOnly(self))
        framing = b"transfer-encoding: chunked" if chunked else b"content-length: " + length
        try:
            self.parser.feed_data(b"POST / HTTP/1.1\r\n" + framing + b"\r\n\r\n")
            self.parser.feed_data(data[offset:])
        except httptools.HttpParserError as exc:
            refuse = exc.__context__
            if isinstance(refuse, _Refuse):
                self.protocol_error(refuse.status, refuse.message)
            else:
                self.protocol_error(400, f"malformed HTTP/1.1 request body: {exc}")

    # --- flow control and timers --------------------------------------------------------------

    def check_reading(self) -> None:
        """Reading pauses while a pipelined request waits or the body buffer is full."""
        if self.closing:
            return
        if self.lingering:
            pause = False
        elif self.broken:
            pause = True
        else:
            parsing = self.parsing
            pause = bool(self.queue) or (parsing is not None and parsing.body_size >= self.limits.read_buffer)
        if pause != self.read_paused:
            self.read_paused = pause
            if pause:
                self.transport.pause_reading()
            else:
                self.transport.resume_reading()
                if self.parsing is not None:
                    now = self.loop.time()
                    self.activity = now
                    self.arm(now + self.limits.body_timeout)

    def arm(self, deadline: float) -> None:
        """Make sure the timer fires by ``deadline`` (it checks the state when it fires)."""
        if not self.closing:
            self.timer.arm(deadline)

    def deadline(self) -> tuple[float, str]:
        at, what = self.read_deadline()
        if self.write_paused and not self.lingering:
            send = self.write_paused_at + self.limits.send_timeout
            if send < at:
                return send, "send"
        return at, what

    def read_deadline(self) -> tuple[float, str]:
        limits = self.limits
        if self.lingering:
            return self.linger_until, "linger"
        parsing = self.parsing
        if parsing is not None:
            if self.read_paused or parsing is not self.cycle or parsing.expect_100:
                return _INF, ""  # waiting on the app (to read, or to say 100 Continue)
            return self.activity + limits.body_timeout, "body"
        if self.in_head:
            if self.busy:
                return _INF, ""  # reading waits for the requests before this one
            return self.head_start + limits.header_timeout, "head"
        if self.busy or self.broken:
            return _INF, ""
        if self.fresh:
            return self.idle_since + min(limits.header_timeout, limits.keep_alive_timeout), "idle"
        return self.idle_since + limits.keep_alive_timeout, "idle"

    def on_timer(self) -> None:
        if self.closing:
            return
        at, what = self.deadline()
        if at > self.loop.time():
            if at != _INF:
                self.arm(at)
            return
        if what == "linger" or what == "idle":
            self.closing = True
            self.transport.close()
        elif what == "send":
            # The client has not read for send_timeout: what it left unread is dropped, and the
            # call it was for (and its upstream request) ends now.
            log.debug("HTTP/1.1 client %s read nothing for %g s: cut", self.client, self.limits.send_timeout)
            for cycle in (self.cycle, *self.queue):
                if cycle is not None and not cycle.complete:
                    self.lose(cycle)
            self.closing = True
            self.transport.abort()
        elif what == "head":
            self.protocol_error(
                408, f"the request's header block did not arrive within {self.limits.header_timeout:g} s"
            )
        elif what == "body":
            self.protocol_error(408, f"the request body stalled for more than {self.limits.body_timeout:g} s")

    def shut(self) -> None:
        """Shutdown: an idle connection closes now; a busy one after its current answer."""
        self.draining = True
        if self.cycle is None and not self.in_head and self.parsing is None:
            # (Requests queued behind a full write buffer are dropped, as after any answer.)
            if not self.closing:
                self.closing = True
                self.transport.close()
        elif self.cycle is not None and not self.cycle.started:
            self.cycle.keep_alive = False

    def abort(self) -> None:
        for cycle in (self.cycle, *self.queue):
            if cycle is not None and cycle.task is not None and not cycle.task.done():
                cycle.task.cancel()
        self.closing = True
        self.transport.abort()


class HttpServer:
    """An HTTP/1.1 listener serving one ASGI app on this event loop."""

    def __init__(
        self,
        app: App,
        limits: ServerLimits | None = None,
        *,
        cancel_on_disconnect: bool = False,
    ) -> None:
        self.app = app
        self.limits = limits or ServerLimits()
        self.cancel_on_disconnect = cancel_on_disconnect
        self.extensions: dict[str, Any] = {CANCEL_ON_DISCONNECT: {}} if cancel_on_disconnect else {}
        self.asgi = {"version": "3.0", "spec_version": "2.3"}
        self.connections: set[_Connection] = set()
        self.idle = asyncio.Event()
        self.in_flight = 0  # app calls running (counted down by ``call_done``)
        self.refused = 0  # answered 529 because max_in_flight calls were running
        self.draining = False
        self._server: asyncio.AbstractServer | None = None
        self.loop: asyncio.AbstractEventLoop

    def call_done(self, task: asyncio.Task[None]) -> None:
        """An app call's task is done (finished, failed or cancelled, even before it started)."""
        self.in_flight -= 1

    async def start(self, sock: socket.socket) -> None:
        self.loop = asyncio.get_running_loop()
        self._server = await self.loop.create_server(lambda: _Connection(self), sock=sock, backlog=2048)

    async def shutdown(self, grace: float) -> None:
        """Stop accepting; close idle connections now and busy ones after their answer; after
        ``grace`` seconds cut what remains (the app tasks are cancelled)."""
        self.draining = True
        if self._server is not None:
            self._server.close()
        for conn in list(self.connections):
            conn.shut()
        if self.connections:
            self.idle.clear()
            if self.connections:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.idle.wait(), grace)
        tasks = [
            c.task
            for conn in self.connections
            for c in (conn.cycle, *conn.queue)
            if c is not None and c.task is not None
        ]
        for conn in list(self.connections):
            conn.abort()
        if tasks:
            await asyncio.wait(tasks, timeout=1.0)
        if self._server is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._server.wait_closed(), 1.0)
