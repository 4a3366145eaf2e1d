"""The upstream HTTP/1.1 client: per-origin keep-alive pools of asyncio Protocol connections
parsed by ``httptools.HttpResponseParser``, for the HTTP adapters (``sidecar.upstreams``).

What it does, and what it promises:

- **Pools.** One pool per origin (scheme, host, port; or the proxy, for absolute-form requests),
  at most ``max_connections`` connections open or opening, a FIFO queue of requests waiting for
  one, idle connections closed after ``keepalive`` seconds (or when the server closes them).
  A connection goes back to its pool the moment its response is complete (the body stays
  buffered in the response), and only then: a response not read to its end, one that said
  ``connection: close`` (or HTTP/1.0 without keep-alive) and a close-delimited one end their
  connection.
- **Framing.** Responses by content-length, chunked (extensions and trailers ignored) or
  close-delimited; no body for HEAD, 1xx, 204 and 304. Interim 1xx answers are skipped. Request
  bodies are bytes (content-length) or an async iterable of bytes (chunked, sent as it comes).
  Bodies are never decompressed: callers ask for ``accept-encoding: identity``. HTTP/1.1 only.
- **A stale pooled connection**, closed by the server while idle, is retried once on a fresh
  connection, only when the request provably was not processed: the connection was reused, no
  response byte came back, and either it was found closed before the request was written or the
  peer reset it (the server's kernel refused the request's bytes: its application had closed the
  socket without reading them). A plain close after the request was written is ambiguous (the
  server may have read it), so it is never retried.
- **TLS** with the given ``ssl.SSLContext`` (else the system's defaults; verification is never
  switched off), SNI and verification against the URL's host. Through an ``http://`` proxy, https
  origins are reached through a CONNECT tunnel (``Proxy-Authorization: Basic`` when the proxy URL
  has credentials), http ones by absolute-form requests that carry those credentials.
- **Timeouts**, each raised as a ``sidecar.errors.Timeout`` subclass: ``connect`` (a pool slot,
  TCP, the proxy's tunnel and the TLS handshake: ``ConnectTimeout``), ``first_byte`` (the
  request written to its response's headers; None: ``read``), ``read`` (silence while a reader
  waits for body bytes) and ``total`` (the request to the body's end; None: unbounded), those
  three ``ResponseTimeout`` with its ``phase``. A timeout ends the connection.
- **Cancellation** while waiting for a slot, connecting, sending or waiting for headers aborts
  the connection at once (the upstream sees it close) and never leaks a slot; so do ``close()``
  on an unfinished response, cancelling ``read()`` and leaving a ``chunks()`` loop early.
  ``read_chunk()`` alone may be cancelled and called again (a reader's ping timer).
- **Flow control.** A response buffers at most ``read_buffer`` bytes (plus one socket read)
  before the transport stops reading, so a slow consumer backpressures the upstream; reading
  resumes once the buffer is drained.
- **Failures** are ``sidecar.errors`` subclasses the adapters' session names: ``ConnectFailed``,
  ``TLSFailed``, ``ProxyRefused`` (connect errors), ``ConnectionBroken`` (closed before the
  response ended; bytes that arrived before are delivered first), ``ProtocolError``.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import ssl as _ssl
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Mapping
from typing import Literal, TypeVar, cast
from urllib.parse import unquote, urlsplit

import httptools

from ..errors import Timeout, UpstreamConnectError, UpstreamError, UpstreamProtocolError
from .timer import LazyTimer

__all__ = [
    "ConnectFailed",
    "ConnectTimeout",
    "ConnectionBroken",
    "HTTPClient",
    "Headers",
    "ProtocolError",
    "ProxyRefused",
    "Response",
    "ResponseTimeout",
    "TLSFailed",
]

_T = TypeVar("_T")
Phase = Literal["first_byte", "read", "total"]
Body = bytes | AsyncIterable[bytes] | None

# Framing is ours: these caller headers are dropped (the client writes Host and the length).
_OURS = frozenset(
    {"host", "content-length", "transfer-encoding", "connection", "keep-alive", "te", "upgrade"}
)
_INLINE_BODY = 16 * 1024  # bodies up to this size leave in the same write as the head
_RESET = (ConnectionResetError, BrokenPipeError)
_INF = float("inf")


# ---- errors -------------------------------------------------------------------------------------


class ConnectFailed(UpstreamConnectError):
    """No connection: refused, unreachable, DNS, the proxy's tunnel or TLS."""


class TLSFailed(ConnectFailed):
    """The TLS handshake failed; ``verify_message`` is set when the certificate did not verify."""

    def __init__(self, message: str, verify_message: str | None = None) -> None:
        super().__init__(message)
        self.verify_message = verify_message


class ProxyRefused(ConnectFailed):
    """The proxy answered CONNECT with something other than 2xx."""

    def __init__(self, message: str, *, status_code: int = 0, reason: str = "") -> None:
        super().__init__(message)
        self.status_code = status_code
        self.reason = reason


class ConnectTimeout(Timeout):
    """No connection within the connect timeout (``seconds``)."""

    def __init__(self, message: str, *, seconds: float = 0.0) -> None:
        super().__init__(message)
        self.seconds = seconds


class ResponseTimeout(Timeout):
    """No response headers in time (``first_byte``), silence mid-body (``read``), or the whole
    exchange over its ``total``."""

    def __init__(self, message: str, *, phase: Phase = "read", seconds: float = 0.0) -> None:
        super().__init__(message)
        self.phase: Phase = phase
        self.seconds = seconds


_WORDS = {"first_byte": "no response headers", "read": "no data", "total": "no complete response"}


def _response_timeout(phase: Phase, seconds: float) -> ResponseTimeout:
    return ResponseTimeout(f"{_WORDS[phase]} within {seconds:g} s", phase=phase, seconds=seconds)


class ConnectionBroken(UpstreamError):
    """The connection ended before the response did. ``headers_received``: it broke mid-body."""

    def __init__(self, message: str, *, headers_received: bool = False, retryable: bool = False) -> None:
        super().__init__(message)
        self.headers_received = headers_received
        self.retryable = retryable  # the request provably was not processed (see the module doc)


class ProtocolError(UpstreamProtocolError):
    """The upstream's bytes are not an HTTP/1.1 response."""


# ---- headers ------------------------------------------------------------------------------------


class Headers:
    """Response headers in order, names lower-case, repeated ones kept."""

    __slots__ = ("_items",)

    def __init__(self, items: list[tuple[str, str]]) -> None:
        self._items = items

    def get(self, name: str, default: _T = None) -> str | _T:  # type: ignore[assignment]
        name = name.lower()
        for key, value in self._items:
            if key == name:
                return value
        return default

    def getall(self, name: str) -> list[str]:
        name = name.lower()
        return [value for key, value in self._items if key == name]

    def items(self) -> list[tuple[str, str]]:
        return self._items

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"Headers({self._items!r})"


# ---- the response -------------------------------------------------------------------------------


class Response:
    """One response: ``status``, ``reason``, ``headers`` once returned by ``HTTPClient.request``,
    then the body by ``read()``, ``read_chunk()`` or ``chunks()``; ``release()`` or ``close()``
    when done (``async with`` releases)."""

    __slots__ = (
        "_buffer",
        "_conn",
        "_deadline",
        "_eof",
        "_error",
        "_head",
        "_headers",
        "_keep",
        "_loop",
        "_paused",
        "_read_timeout",
        "_reason",
        "_size",
        "_total",
        "_wait_phase",
        "_wait_seconds",
        "_wait_until",
        "_waiter",
        "close_delimited",
        "headers",
        "interim",
        "reason",
        "status",
    )

    def __init__(
        self,
        conn: _Connection,
        head: bool,
        read_timeout: float | None,
        total: float | None,
        deadline: float | None,
    ) -> None:
        self._conn: _Connection | None = conn
        self._loop = conn.loop
        self._head = head
        self._read_timeout = read_timeout
        self._total = total
        self._deadline = deadline
        self._buffer: collections.deque[bytes] = collections.deque()
        self._size = 0
        self._eof = False
        self._error: BaseException | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._wait_until = _INF  # when the current wait times out
        self._wait_phase: Phase = "read"
        self._wait_seconds: float | None = None
        self._paused = False
        self._keep = False
        self._headers: list[tuple[str, str]] = []
        self._reason = b""
        self.interim = False
        self.close_delimited = False
        self.status = 0
        self.reason = ""
        self.headers = Headers(self._headers)

    # -- the consumer's side

    @property
    def at_eof(self) -> bool:
        """The body arrived whole and was all read."""
        return self._eof and not self._buffer

    @property
    def complete(self) -> bool:
        """The body arrived whole (it may not all be read yet)."""
        return self._eof

    async def read(self, limit: int | None = None) -> bytes:
        """The body (its first ``limit`` bytes, or fewer at its end). Cancelling it ends the
        connection."""
        parts: list[bytes] = []
        size = 0
        try:
            while limit is None or size < limit:
                chunk = await self.read_chunk()
                if not chunk:
                    break
                if limit is not None and size + len(chunk) > limit:
                    keep = limit - size
                    self._buffer.appendleft(chunk[keep:])
                    self._size += len(chunk) - keep
                    chunk = chunk[:keep]
                parts.append(chunk)
                size += len(chunk)
        except asyncio.CancelledError:
            self.close()
            raise
        return parts[0] if len(parts) == 1 else b"".join(parts)

    async def read_chunk(self) -> bytes:
        """The body bytes that arrived since the last read (waiting for some), b"" at its end.
        Bytes received before a failure come first; the failure is raised after. Cancelling it
        leaves the response as it was."""
        while True:
            buffer = self._buffer
            if buffer:
                chunk = buffer.popleft() if len(buffer) == 1 else b"".join(buffer)
                buffer.clear()
                self._size = 0
                if self._paused:
                    self._paused = False
                    conn = self._conn
                    if conn is not None and conn.transport is not None:
                        conn.transport.resume_reading()
                return chunk
            if self._error is not None:
                raise self._error
            if self._eof:
                return b""
            await self._wait()

    def chunks(self) -> AsyncIterator[bytes]:
        """The body's chunks as they arrive. Leaving the loop before the end (``aclose``), or a
        failure, closes the response."""
        return _Chunks(self)

    def release(self) -> None:
        """Done with the response: a finished connection is already back in its pool; an
        unfinished one is closed (it cannot carry another request)."""
        if self._conn is not None:
            self.close()

    def close(self) -> None:
        """End the response now: an unfinished exchange aborts its connection."""
        conn = self._conn
        if conn is not None:
            self._conn = None
            conn.abort()
        if not self._eof and self._error is None:
            self._error = ConnectionBroken("the response was closed", headers_received=True)

    async def __aenter__(self) -> Response:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.release()

    # -- the connection's side

    async def _wait(self) -> None:
        """Wait for the connection to bring something (bytes, the end, a failure), at most the
        read timeout (or what is left of the total)."""
        timeout = self._read_timeout
        phase: Phase = "read"
        seconds = timeout
        if self._deadline is not None:
            left = self._deadline - self._loop.time()
            if timeout is None or left < timeout:
                timeout, phase, seconds = max(left, 0.0), "total", self._total
        await self._wait_for(timeout, phase, seconds)

    async def _wait_for(self, timeout: float | None, phase: Phase, seconds: float | None) -> None:
        """One wait on the connection, failed with ``phase``'s timeout after ``timeout`` seconds.

        The timer is the connection's (``LazyTimer``): a wait never cancels it, and when it fires
        early it is armed again for the wait then current (``_Connection.on_timer``)."""
        loop = self._loop
        waiter = self._waiter = loop.create_future()
        conn = self._conn
        if timeout is not None and conn is not None:
            assert seconds is not None
            self._wait_until = loop.time() + timeout
            self._wait_phase = phase
            self._wait_seconds = seconds
            conn.timer.arm(self._wait_until)
        try:
            await waiter
        finally:
            self._waiter = None
            self._wait_until = _INF

    def _timed_out(self) -> None:
        """The wait's deadline passed (``_Connection.on_timer``)."""
        waiter = self._waiter
        if waiter is None or waiter.done():
            return
        assert self._wait_seconds is not None
        self._fail(_response_timeout(self._wait_phase, self._wait_seconds))
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.abort()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _fail(self, error: BaseException) -> None:
        if self._error is None and not self._eof:
            self._error = error
        self._wake()

    def _feed(self, data: bytes) -> None:
        self._buffer.append(data)
        self._size += len(data)
        conn = self._conn
        if not self._paused and conn is not None and self._size > conn.pool.client.read_buffer:
            self._paused = True
            if conn.transport is not None:
                conn.transport.pause_reading()
        self._wake()

    def _finish(self) -> None:
        self._eof = True
        self._conn = None
        self._wake()


class _Chunks:
    """``Response.chunks``: the body's chunks, an async iterator that closes the response when
    left before the end (``aclose``) or when a read fails, as an async generator with a
    ``finally`` would (a class, so that mypyc compiles it: ``setup.py``)."""

    __slots__ = ("_done", "_resp", "_started")

    def __init__(self, resp: Response) -> None:
        self._resp = resp
        self._started = False
        self._done = False

    def __del__(self) -> None:
        # Dropped once started (a loop left with ``break``): closed, as a generator's finalizer
        # runs its ``finally``.
        if self._started:
            self._end()

    def __aiter__(self) -> _Chunks:
        return self

    async def __anext__(self) -> bytes:
        if self._done:
            raise StopAsyncIteration
        self._started = True
        try:
            chunk = await self._resp.read_chunk()
        except BaseException:
            self._end()
            raise
        if not chunk:
            self._end()
            raise StopAsyncIteration
        return chunk

    async def aclose(self) -> None:
        self._end()

    def _end(self) -> None:
        if not self._done:
            self._done = True
            if not self._resp.at_eof:
                self._resp.close()


# ---- connections --------------------------------------------------------------------------------


class _Connection(asyncio.Protocol):
    """One upstream connection: a transport, its response parser, the response being received."""

    __slots__ = (
        "_drain",
        "_tunnel",
        "_tunnel_done",
        "_write_paused",
        "closed",
        "got_bytes",
        "idle_since",
        "loop",
        "lost",
        "parser",
        "pool",
        "resp",
        "reused",
        "timer",
        "transport",
    )

    def __init__(self, pool: _Pool) -> None:
        self.pool = pool
        self.loop: asyncio.AbstractEventLoop = pool.loop
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.resp: Response | None = None
        self.closed = False
        self.lost: BaseException | None = None
        self.reused = False  # a response completed on it before
        self.got_bytes = False  # a byte of the current response arrived
        self.idle_since = 0.0
        self._tunnel: bytearray | None = None
        self._tunnel_done: asyncio.Future[None] | None = None
        self._drain: asyncio.Future[None] | None = None
        self._write_paused = False
        self.timer = LazyTimer(self.loop, self.on_timer)  # by the current wait's deadline

    def on_timer(self) -> None:
        resp = self.resp
        if resp is None or resp._waiter is None or self.closed:
            return
        if resp._wait_until <= self.loop.time():
            resp._timed_out()
        elif resp._wait_until != _INF:
            self.timer.arm(resp._wait_until)

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses

    def data_received(self, data: bytes) -> None:
        tunnel = self._tunnel
        if tunnel is not None:
            tunnel += data
            self.pool.tunnel_data(self)
            return
        resp = self.resp
        if resp is None:  # nothing asked: a server speaking out of turn is not reused
            self.abort()
            return
        self.got_bytes = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._protocol_error("an unrequested protocol upgrade")
        except httptools.HttpParserCallbackError as failed:
            cause = failed.__context__
            self._protocol_error(str(cause) if cause is not None else str(failed))
        except httptools.HttpParserError as malformed:
            self._protocol_error(str(malformed) or type(malformed).__name__)

    def forget(self, resp: Response) -> None:
        """A failed exchange: ``resp`` is no longer this connection's, if it still was. (Read
        here, ``self.resp`` is the attribute's declared type: in ``_exchange`` mypy narrows it to
        what was assigned before the awaits, and a compiled read checks that narrowed type.)"""
        if self.resp is resp:
            self.resp = None

    def eof_received(self) -> bool | None:
        return None  # close; connection_lost says what it meant

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.lost = exc
        self.timer.cancel()
        self.pool.forget(self)
        waiter = self._drain
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        if self._tunnel is not None:
            self.pool.tunnel_data(self)
        resp = self.resp
        if resp is None:
            return
        self.resp = None
        if resp.status and resp.close_delimited:
            resp._finish()
            return
        if resp.status:
            message = "closed the connection before the body ended"
        elif self.got_bytes:
            message = "closed the connection before the response headers ended"
        else:
            message = "closed the connection before answering"
        retryable = self.reused and not self.got_bytes and isinstance(exc, _RESET)
        resp._fail(ConnectionBroken(message, headers_received=bool(resp.status), retryable=retryable))

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        waiter = self._drain
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def drain(self) -> None:
        if self._write_paused and not self.closed:
            waiter = self._drain = self.loop.create_future()
            try:
                await waiter
            finally:
                self._drain = None
        if self.closed:
            raise self._broken_while_sending()

    def _broken_while_sending(self) -> ConnectionBroken:
        return ConnectionBroken(
            "closed the connection while the request was sent",
            retryable=self.reused and not self.got_bytes and isinstance(self.lost, _RESET),
        )

    # httptools callbacks

    def on_status(self, status: bytes) -> None:
        resp = self.resp
        if resp is not None:
            resp._reason += status

    def on_header(self, name: bytes, value: bytes) -> None:
        resp = self.resp
        if resp is not None:
            resp._headers.append((name.decode("latin-1").lower(), value.decode("latin-1")))

    def on_headers_complete(self) -> None:
        resp = self.resp
        if resp is None:
            raise ValueError("a response nobody asked for")
        status = self.parser.get_status_code()
        if 100 <= status < 200:
            if status == 101:
                raise ValueError("an unrequested protocol upgrade (101)")
            resp.interim = True  # 100 Continue, 103 Early Hints: wait for the real answer
            resp._headers.clear()
            resp._reason = b""
            return
        resp.status = status
        resp.reason = resp._reason.decode("latin-1").strip()
        headers = resp._headers
        if not any(k == "content-length" or k == "transfer-encoding" for k, _ in headers):
            resp.close_delimited = not (resp._head or status in (204, 304))
        if resp._head:
            # No body follows, whatever the headers say; a fresh parser for the next response.
            keep = self.parser.get_http_version() == "1.1"
            self.parser = httptools.HttpResponseParser(self)
            self._complete(resp, keep)
        resp._wake()

    def on_body(self, body: bytes) -> None:
        resp = self.resp
        if resp is None:
            raise ValueError("body bytes after the response ended")
        resp._feed(body)

    def on_message_complete(self) -> None:
        resp = self.resp
        if resp is None:
            raise ValueError("a response nobody asked for")
        if resp.interim:
            resp.interim = False
            return
        self._complete(resp, self.parser.should_keep_alive())

    # the rest

    def _complete(self, resp: Response, keep_alive: bool) -> None:
        self.resp = None
        resp.close_delimited = False
        if resp._paused and self.transport is not None:
            resp._paused = False
            self.transport.resume_reading()
        resp._finish()
        if keep_alive and "close" not in _connection_tokens(resp._headers):
            self.reused = True
            self.pool.put(self)
        else:
            self.pool.forget(self)
            if self.transport is not None:
                self.transport.close()

    def _protocol_error(self, detail: str) -> None:
        resp = self.resp
        self.abort()
        if resp is not None:
            resp._fail(ProtocolError(f"malformed HTTP response: {detail}"))

    def abort(self) -> None:
        """End the connection now (the upstream sees it close) and give back its slot."""
        self.pool.forget(self)
        self.closed = True
        self.resp = None
        self.timer.cancel()
        if self.transport is not None:
            self.transport.abort()


def _connection_tokens(headers: list[tuple[str, str]]) -> set[str]:
    tokens: set[str] = set()
    for key, value in headers:
        if key == "connection":
            tokens.update(t.strip().lower() for t in value.split(","))
    return tokens


# ---- pools --------------------------------------------------------------------------------------


class _Pool:
    """The connections to one origin (or one proxy, for absolute-form requests)."""

    __slots__ = (
        "_sweep",
        "client",
        "granted",
        "host",
        "idle",
        "loop",
        "open",
        "port",
        "tls",
        "tunnel",
        "waiters",
    )

    def __init__(self, client: HTTPClient, host: str, port: int, tls: bool, tunnel: bool) -> None:
        self.client = client
        self.loop: asyncio.AbstractEventLoop = client.loop
        self.host = host  # the origin's host (TLS name, CONNECT target), else the proxy's
        self.port = port
        self.tls = tls
        self.tunnel = tunnel  # reached through a CONNECT tunnel via the client's proxy
        self.open: set[_Connection] = set()  # connections open or opening: the bound applies
        self.idle: list[_Connection] = []  # most recently used last
        self.waiters: collections.deque[asyncio.Future[_Connection | None]] = collections.deque()
        self._sweep: asyncio.TimerHandle | None = None
        self.granted = 0  # slots handed to waiters that have not connected yet

    def take_idle(self) -> _Connection | None:
        idle = self.idle
        if not idle:
            return None
        keepalive = self.client.keepalive
        now = self.loop.time()
        while idle:
            conn = idle.pop()
            if conn.closed or conn.transport is None or conn.transport.is_closing():
                self.forget(conn)
                continue
            if now - conn.idle_since >= keepalive:
                conn.abort()
                continue
            return conn
        return None

    async def acquire(self, fresh: bool) -> _Connection:
        """A connection for one request: an idle one (unless ``fresh``), a new one while under
        the bound, else the first one freed, in the order asked. No timeout here (the caller's)."""
        if not fresh:
            conn = self.take_idle()
            if conn is not None:
                return conn
        limit = self.client.max_connections
        while True:
            if len(self.open) + self.granted >= limit and fresh and self.idle:
                self.idle[0].abort()  # make room for the fresh one
            if len(self.open) + self.granted < limit and not self.waiters:
                return await self.connect()
            waiter: asyncio.Future[_Connection | None] = self.loop.create_future()
            self.waiters.append(waiter)
            try:
                conn = await waiter
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled():
                    self._pass_on(waiter.result())
                else:
                    try:
                        self.waiters.remove(waiter)
                    except ValueError:
                        pass
                raise
            if conn is None:  # a slot: connect
                self.granted -= 1
                return await self.connect()
            if not conn.closed and not fresh:
                return conn
            if not conn.closed:
                conn.abort()

    def _pass_on(self, conn: _Connection | None) -> None:
        """A slot or connection handed to a waiter that was cancelled meanwhile."""
        if conn is None:
            self.granted -= 1
            self._wake_one()
        else:
            self.put(conn)

    def _wake_one(self) -> None:
        while self.waiters and len(self.open) + self.granted < self.client.max_connections:
            waiter = self.waiters.popleft()
            if not waiter.done():
                self.granted += 1
                waiter.set_result(None)
                return

    async def connect(self) -> _Connection:
        conn = _Connection(self)
        self.open.add(conn)
        client = self.client
        loop = self.loop
        proxy = client.proxy
        try:
            if self.tunnel:
                assert proxy is not None
                await loop.create_connection(lambda: conn, proxy.host, proxy.port)
                await self._open_tunnel(conn)
            elif self.tls:
                await loop.create_connection(
                    lambda: conn, self.host, self.port, ssl=client.ssl_context(), server_hostname=self.host
                )
            else:
                await loop.create_connection(lambda: conn, self.host, self.port)
        except BaseException as exc:
            conn.abort()
            if isinstance(exc, _ssl.SSLCertVerificationError):
                reason = exc.verify_message or str(exc)
                raise TLSFailed(f"TLS certificate verification failed: {reason}", reason) from exc
            if isinstance(exc, _ssl.SSLError):
                raise TLSFailed(f"TLS handshake failed: {exc.reason or exc}") from exc
            if isinstance(exc, OSError):
                where = f"{proxy.host}:{proxy.port}" if self.tunnel and proxy else f"{self.host}:{self.port}"
                detail = exc.strerror or str(exc) or type(exc).__name__
                raise ConnectFailed(f"cannot connect to {where}: {detail}") from exc
            raise
        if conn.closed:  # lost during the handshake's last step
            raise ConnectFailed(f"the connection to {self.host}:{self.port} closed at once")
        return conn

    async def _open_tunnel(self, conn: _Connection) -> None:
        transport = conn.transport
        assert transport is not None
        target = f"{_host_literal(self.host)}:{self.port}"
        head = f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n"
        auth = self.client.proxy_authorization
        if auth is not None:
            head += f"Proxy-Authorization: {auth}\r\n"
        conn._tunnel = bytearray()
        done = conn._tunnel_done = self.loop.create_future()
        try:
            transport.write((head + "\r\n").encode("latin-1"))
            await done
        finally:
            conn._tunnel_done = None
        answer = bytes(conn._tunnel)
        conn._tunnel = None
        if conn.closed:
            raise ConnectionError("the proxy closed the connection")
        line = answer.split(b"\r\n", 1)[0].decode("latin-1")
        parts = line.split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
            raise ConnectFailed(f"the proxy answered CONNECT with {line[:80]!r}")
        status = int(parts[1])
        if not 200 <= status < 300:
            reason = parts[2] if len(parts) > 2 else ""
            message = f"the proxy answered HTTP {status} {reason}".rstrip()
            raise ProxyRefused(message, status_code=status, reason=reason)
        tls = await self.loop.start_tls(transport, conn, self.client.ssl_context(), server_hostname=self.host)
        if tls is None:
            raise ConnectionError("the tunnel closed during the TLS handshake")
        conn.transport = tls

    def tunnel_data(self, conn: _Connection) -> None:
        done = conn._tunnel_done
        tunnel = conn._tunnel
        if done is None or done.done():
            return
        if conn.closed or (tunnel is not None and b"\r\n\r\n" in tunnel):
            done.set_result(None)

    def put(self, conn: _Connection) -> None:
        """A connection free for the next request: to the first waiter, else idle."""
        if conn.closed:
            return
        while self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_result(conn)
                return
        conn.got_bytes = False
        conn.idle_since = self.loop.time()
        self.idle.append(conn)
        if self._sweep is None:
            self._sweep = self.loop.call_later(self.client.keepalive, self._expire)

    def _expire(self) -> None:
        self._sweep = None
        now = self.loop.time()
        keepalive = self.client.keepalive
        for conn in [c for c in self.idle if now - c.idle_since >= keepalive]:
            conn.abort()
        if self.idle:
            oldest = min(c.idle_since for c in self.idle)
            self._sweep = self.loop.call_later(max(oldest + keepalive - now, 0.01), self._expire)

    def forget(self, conn: _Connection) -> None:
        """``conn`` no longer counts: closed, or closing."""
        if conn in self.open:
            self.open.discard(conn)
            self._wake_one()
        if conn in self.idle:
            self.idle.remove(conn)

    def close(self) -> None:
        if self._sweep is not None:
            self._sweep.cancel()
            self._sweep = None
        for conn in list(self.open):
            conn.abort()
        for waiter in self.waiters:
            if not waiter.done():
                waiter.set_exception(ConnectFailed("the client is closed"))
        self.waiters.clear()


def _host_literal(host: str) -> str:
    return f"[{host}]" if ":" in host else host


class _Proxy:
    __slots__ = ("host", "port")

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port


# ---- the client ---------------------------------------------------------------------------------


class HTTPClient:
    """Pools of HTTP/1.1 connections, one per origin; ``request`` sends and returns the response
    once its headers arrived. Built and used in one event loop; ``aclose`` ends every connection.

    ``ssl``: the context for https origins (None: the system's defaults). ``proxy``: an
    ``http://[user:password@]host[:port]`` URL every request goes through (see the module doc).
    Timeouts in seconds (see the module doc); ``read_buffer``: bytes a response buffers before
    its connection stops reading."""

    def __init__(
        self,
        *,
        ssl: _ssl.SSLContext | None = None,
        proxy: str | None = None,
        max_connections: int = 256,
        keepalive: float = 60.0,
        connect_timeout: float | None = 10.0,
        first_byte_timeout: float | None = None,
        read_timeout: float | None = 600.0,
        total_timeout: float | None = None,
        read_buffer: int = 256 * 1024,
    ) -> None:
        if max_connections < 1:
            raise ValueError("max_connections must be at least 1")
        self.loop = asyncio.get_running_loop()
        self._ssl = ssl
        self.max_connections = max_connections
        self.keepalive = keepalive
        self.connect_timeout = connect_timeout
        self.first_byte_timeout = first_byte_timeout
        self.read_timeout = read_timeout
        self.total_timeout = total_timeout
        self.read_buffer = read_buffer
        self.proxy: _Proxy | None = None
        self.proxy_authorization: str | None = None
        if proxy:
            parts = urlsplit(proxy)
            if parts.scheme != "http" or not parts.hostname:
                raise ValueError("proxy: only http://host[:port] proxies are supported")
            self.proxy = _Proxy(parts.hostname, parts.port or 80)
            if parts.username is not None:
                credentials = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
                self.proxy_authorization = "Basic " + base64.b64encode(credentials.encode()).decode()
        self._pools: dict[tuple[str, str, int], _Pool] = {}
        self._routes: dict[str, tuple[_Pool, str, str, tuple[str, str] | None]] = {}
        self._closed = False

    def ssl_context(self) -> _ssl.SSLContext:
        if self._ssl is None:
            self._ssl = _ssl.create_default_context()
        return self._ssl

    def _pool(self, scheme: str, host: str, port: int) -> _Pool:
        key = (scheme, host, port)
        pool = self._pools.get(key)
        if pool is None:
            proxy = self.proxy
            if proxy is not None and scheme == "http":
                key = ("proxy", proxy.host, proxy.port)  # absolute-form: one pool for every origin
                pool = self._pools.get(key)
                if pool is None:
                    pool = self._pools[key] = _Pool(self, proxy.host, proxy.port, False, False)
                self._pools[(scheme, host, port)] = pool
            else:
                pool = self._pools[key] = _Pool(self, host, port, scheme == "https", proxy is not None)
        return pool

    async def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | Iterable[tuple[str, str]] = (),
        body: Body = None,
        connect_timeout: float | None = None,
        length: int | None = None,
    ) -> Response:
        """Send ``method url`` and return the response once its headers arrived (the body is
        read from it). ``connect_timeout`` replaces the client's for this request. A body given
        in pieces is sent chunked, or, with its ``length``, as that many bytes (fewer or more
        abort the connection: the server would misread the next request)."""
        if self._closed:
            raise ConnectFailed("the client is closed")
        route = self._routes.get(url)
        if route is None:
            route = self._route(url)
        pool, target, netloc, extra = route
        head = _head(method, target, netloc, headers, body, extra, length)
        loop = self.loop
        total = self.total_timeout
        deadline = None if total is None else loop.time() + total
        fresh = False
        while True:
            conn = await self._acquire(pool, fresh, connect_timeout, deadline)
            try:
                resp = await self._exchange(conn, method, head, body, deadline, length)
            except ConnectionBroken as exc:
                if exc.retryable and not fresh and not isinstance(body, AsyncIterable):
                    fresh = True  # once, on a fresh connection
                    continue
                raise
            return resp

    def _route(self, url: str) -> tuple[_Pool, str, str, tuple[str, str] | None]:
        """The pool, request target, Host and proxy header for ``url`` (remembered: an upstream's
        few URLs are asked for again and again)."""
        parts = urlsplit(url)
        scheme = parts.scheme
        host = parts.hostname
        if scheme not in ("http", "https") or not host:
            raise ValueError(f"not an http(s) URL: {url!r}")
        port = parts.port or (443 if scheme == "https" else 80)
        pool = self._pool(scheme, host, port)
        netloc = parts.netloc.rpartition("@")[2]
        query = f"?{parts.query}" if parts.query else ""
        if self.proxy is not None and scheme == "http":
            target = f"http://{netloc}{parts.path or '/'}{query}"
        else:
            target = (parts.path or "/") + query
        if port == (443 if scheme == "https" else 80) and netloc.endswith(f":{port}"):
            netloc = netloc[: -len(f":{port}")]
        extra = None
        if self.proxy_authorization is not None and scheme == "http":
            # No tunnel: the request itself goes to the proxy, so it carries the credentials.
            extra = ("Proxy-Authorization", self.proxy_authorization)
        if len(self._routes) >= 1024:
            self._routes.clear()
        route = self._routes[url] = (pool, target, netloc, extra)
        return route

    async def _acquire(
        self, pool: _Pool, fresh: bool, connect_timeout: float | None, deadline: float | None
    ) -> _Connection:
        if not fresh:
            conn = pool.take_idle()
            if conn is not None:
                return conn
        timeout = self.connect_timeout if connect_timeout is None else connect_timeout
        limit, total = timeout, False
        if deadline is not None:
            left = max(deadline - self.loop.time(), 0.0)
            if limit is None or left < limit:
                limit, total = left, True
        try:
            async with asyncio.timeout(limit):
                return await pool.acquire(fresh)
        except TimeoutError:
            if total:
                assert self.total_timeout is not None
                raise _response_timeout("total", self.total_timeout) from None
            assert timeout is not None
            raise ConnectTimeout(f"no connection within {timeout:g} s", seconds=timeout) from None

    async def _exchange(
        self,
        conn: _Connection,
        method: str,
        head: bytes,
        body: Body,
        deadline: float | None,
        length: int | None = None,
    ) -> Response:
        resp = Response(conn, method == "HEAD", self.read_timeout, self.total_timeout, deadline)
        transport = conn.transport
        if conn.closed or transport is None or transport.is_closing():
            conn.abort()
            raise ConnectionBroken(
                "closed a pooled connection before the request was written", retryable=True
            )
        conn.resp = resp
        conn.got_bytes = False
        try:
            if body is None:
                transport.write(head)
            elif isinstance(body, (bytes, bytearray, memoryview)):
                if len(body) <= _INLINE_BODY:
                    transport.write(head + body)
                else:
                    transport.write(head)
                    transport.write(body)
            else:
                transport.write(head)
                await self._send_stream(conn, body, length)
            if conn.closed and resp._error is None and not resp.status:
                # The write found the connection gone (reset): nothing reached the server.
                raise conn._broken_while_sending()
            await self._headers(resp, deadline)
        except BaseException:
            conn.forget(resp)
            conn.abort()
            resp._conn = None
            raise
        return resp

    async def _send_stream(
        self, conn: _Connection, body: AsyncIterable[bytes], length: int | None = None
    ) -> None:
        transport = conn.transport
        assert transport is not None
        left = length
        async for chunk in body:
            if chunk:
                if conn.closed:
                    raise conn._broken_while_sending()
                if left is None:
                    transport.write(b"%x\r\n%b\r\n" % (len(chunk), chunk))
                else:
                    left -= len(chunk)
                    if left < 0:
                        raise ValueError(f"the body is longer than its length ({length})")
                    transport.write(chunk)
                await conn.drain()
        if left is None:
            transport.write(b"0\r\n\r\n")
        elif left:
            raise ValueError(f"the body ended {left} bytes short of its length ({length})")
        await conn.drain()

    async def _headers(self, resp: Response, deadline: float | None) -> None:
        loop = self.loop
        timeout = self.first_byte_timeout
        phase: Phase = "first_byte"
        if timeout is None:
            timeout, phase = self.read_timeout, "read"
        seconds = timeout
        if deadline is not None:
            left = max(deadline - loop.time(), 0.0)
            if timeout is None or left < timeout:
                timeout, phase, seconds = left, "total", self.total_timeout
        while not resp.status:
            if resp._error is not None:
                raise resp._error
            await resp._wait_for(timeout, phase, seconds)

    def connections(self) -> tuple[int, int]:
        """(busy, idle): connections open or opening with a request on them, and kept alive
        for the next one, over every origin (for metrics; a busy count that stays up once
        traffic stops is a leaked connection)."""
        busy = idle = 0
        for pool in set(self._pools.values()):
            idle += len(pool.idle)
            busy += len(pool.open) - len(pool.idle)
        return busy, idle

    async def aclose(self) -> None:
        """Close every connection (unfinished responses break) and refuse further requests."""
        self._closed = True
        for pool in set(self._pools.values()):
            pool.close()
        self._pools.clear()
        self._routes.clear()


# Header names already seen to be free of line breaks and colons (bounded: cleared when full).
_GOOD_NAMES: set[str] = set()


def _check_names(pairs: Iterable[tuple[str, str]]) -> None:
    for key, _ in pairs:
        if key not in _GOOD_NAMES:
            if "\n" in key or "\r" in key or ":" in key:
                raise ValueError(f"header {key!r}: a line break or colon where none may be")
            if len(_GOOD_NAMES) >= 1024:
                _GOOD_NAMES.clear()
            _GOOD_NAMES.add(key)


def _head(
    method: str,
    target: str,
    host: str,
    headers: Mapping[str, str] | Iterable[tuple[str, str]],
    body: Body,
    extra: tuple[str, str] | None,
    length: int | None = None,
) -> bytes:
    pairs: Iterable[tuple[str, str]]
    if isinstance(headers, dict) or isinstance(headers, Mapping):  # (a dict without the ABC's check)
        pairs = headers.items()
        known = _GOOD_NAMES.issuperset(headers)
    else:
        pairs = list(headers)
        known = _GOOD_NAMES.issuperset([key for key, _ in pairs])
    if not known:
        _check_names(pairs)
    lines = [f"{key}: {value}\r\n" for key, value in pairs if key.lower() not in _OURS]
    # A line break in a value would split the head (request smuggling): each line has one.
    block = "".join(lines)
    if block.count("\n") != len(lines) or block.count("\r") != len(lines):
        bad = next((key for key, value in pairs if "\n" in value or "\r" in value), "")
        raise ValueError(f"header {bad!r}: a line break or colon where none may be")
    lines = [f"{method} {target} HTTP/1.1\r\nhost: {host}\r\n", block]
    if body is None:
        if method in ("POST", "PUT", "PATCH"):
            lines.append("content-length: 0\r\n")
    elif isinstance(body, (bytes, bytearray, memoryview)):
        lines.append(f"content-length: {len(body)}\r\n")
    elif length is not None:
        lines.append(f"content-length: {length}\r\n")
    else:
        lines.append("transfer-encoding: chunked\r\n")
    if extra is not None:
        lines.append(f"{extra[0]}: {extra[1]}\r\n")
    lines.append("\r\n")
    text = "".join(lines)
    try:
        return text.encode("latin-1")
    except UnicodeEncodeError:
        return text.encode()
