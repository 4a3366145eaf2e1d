"""A small Redis client for the limiter's scripts: one pipelined connection, RESP2, EVALSHA.

The limiter needs one thing from Redis: run a Lua script atomically, as fast as possible, and
never hang. redis-py did it with about 0.3 ms of CPU per call in the sidecar's process (command
packing, reply parsing, its connection pool), more than Redis spent running the script. This
client keeps one connection per process and pipelines every call on it: requests are written as
they come, replies are matched to callers in order by an ``asyncio.Protocol`` that parses them
from the socket buffer.

``redis://[user:password@]host[:port][/db]``, ``rediss://`` (TLS, verified) and
``unix:///path[?db=N]`` URLs are accepted (``password=`` in the query too). A call that times out
(the caller's ``asyncio.timeout``) drops the connection, so a hung server cannot hold replies
hostage; the next call connects again. A script Redis does not know (``NOSCRIPT``, after a
restart or a failover) is loaded and run again.

The stores that keep state in Redis (batches, file metadata) turn its failures into the
sidecar's own error through ``unavailable()``, the one table of them here: a client is told
503 (gRPC UNAVAILABLE), never a 500. The limiter applies its own policy instead (fail open or
refuse, ``limiter/redis.py``), to the same failures.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import ssl
from collections import deque
from collections.abc import Iterator
from typing import Any, cast
from urllib.parse import parse_qs, unquote, urlsplit

from ..errors import Unavailable

__all__ = ["RespClient", "RespError", "Script", "unavailable"]

_INCOMPLETE = object()


class RespError(Exception):
    """An error reply from Redis (``-ERR ...``, ``-NOSCRIPT ...``)."""


class Script:
    """A Lua script and its SHA1, as EVALSHA wants it."""

    __slots__ = ("sha", "source")

    def __init__(self, source: str) -> None:
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()


def newest_first_page(record: str) -> str:
    """Lua for one page of a newest-first list (the batches', the files'), both API paging shapes.

    ARGV: key prefix, index key suffix (a sorted set of ids by creation time), limit, cursor id
    ('' none), direction ('after': older, 'before': newer). Returns up to limit + 1 records,
    newest first, each {id, HGETALL of prefix .. record .. ':' .. id}; for 'before' the ones
    nearest the cursor are the last. A cursor not in the index is an empty page.
    """
    return (
        """
local p, index, limit, cursor = ARGV[1], ARGV[1] .. ARGV[2], tonumber(ARGV[3]), ARGV[4]
local start, stop = 0, limit
if cursor ~= '' then
  local r = redis.call('ZREVRANK', index, cursor)
  if not r then return {} end
  if ARGV[5] == 'before' then
    if r == 0 then return {} end
    start, stop = math.max(r - 1 - limit, 0), r - 1
  else
    start, stop = r + 1, r + 1 + limit
  end
end
local out = {}
for _, id in ipairs(redis.call('ZREVRANGE', index, start, stop)) do
  out[#out + 1] = {id, redis.call('HGETALL', p .. '"""
        + record
        + """:' .. id)}
end
return out
"""
    )


def encode_command(args: tuple[Any, ...]) -> bytes:
    """One command in RESP: an array of bulk strings."""
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = arg if isinstance(arg, bytes) else str(arg).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


def parse_reply(buf: bytes | bytearray, pos: int) -> tuple[Any, int]:
    """One reply at ``pos``: (value, position after it), or (``_INCOMPLETE``, pos) when the buffer
    holds only part of it. Bulk strings are decoded as UTF-8; an error reply is a ``RespError``."""
    end = buf.find(b"\r\n", pos)
    if end < 0:
        return _INCOMPLETE, pos
    kind = buf[pos : pos + 1]
    line = bytes(buf[pos + 1 : end])
    after = end + 2
    if kind == b"$":
        size = int(line)
        if size < 0:
            return None, after
        if len(buf) < after + size + 2:
            return _INCOMPLETE, pos
        return bytes(buf[after : after + size]).decode("utf-8", "replace"), after + size + 2
    if kind == b"*":
        count = int(line)
        if count < 0:
            return None, after
        items = []
        for _ in range(count):
            item, after = parse_reply(buf, after)
            if item is _INCOMPLETE:
                return _INCOMPLETE, pos
            items.append(item)
        return items, after
    if kind == b":":
        return int(line), after
    if kind == b"+":
        return line.decode("utf-8", "replace"), after
    if kind == b"-":
        return RespError(line.decode("utf-8", "replace")), after
    raise ConnectionError(f"Redis sent a reply of unknown type {kind!r}")


class _Protocol(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.waiters: deque[asyncio.Future[Any]] = deque()
        self.buffer = bytearray()
        self.lost: BaseException | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses

    def data_received(self, data: bytes) -> None:
        buf = self.buffer
        buf += data
        pos = 0
        try:
            while pos < len(buf) and self.waiters:
                value, pos = parse_reply(buf, pos)
                if value is _INCOMPLETE:
                    break
                waiter = self.waiters.popleft()
                if not waiter.done():  # a caller that timed out is gone
                    waiter.set_result(value)
        except (ValueError, ConnectionError) as exc:
            self._fail(ConnectionError(f"Redis sent a reply that cannot be read: {exc}"))
            if self.transport is not None:
                self.transport.abort()
            return
        del buf[:pos]

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(exc or ConnectionError("Redis closed the connection"))

    def _fail(self, exc: BaseException) -> None:
        self.lost = exc
        while self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_exception(ConnectionError(str(exc) or type(exc).__name__))

    @property
    def alive(self) -> bool:
        return self.lost is None and self.transport is not None and not self.transport.is_closing()

    def send(self, payload: bytes) -> asyncio.Future[Any]:
        transport = self.transport
        if transport is None or not self.alive:
            raise ConnectionError("the Redis connection is closed")
        waiter: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.waiters.append(waiter)
        transport.write(payload)
        return waiter


class RespClient:
    """One pipelined connection to the Redis of ``url``, opened on first use, reopened after a
    failure. Every method is safe to cancel (a timeout drops the connection)."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        query = parse_qs(parts.query)
        self.scheme = parts.scheme
        self.path = unquote(parts.path) if parts.scheme == "unix" else ""
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 6379
        self.username = unquote(parts.username) if parts.username else None
        password = unquote(parts.password) if parts.password else None
        self.password = password or (query["password"][0] if "password" in query else None)
        db = query["db"][0] if "db" in query else (parts.path.strip("/") if parts.scheme != "unix" else "")
        self.db = int(db) if db else 0
        self._proto: _Protocol | None = None
        self._connecting: asyncio.Lock | None = None

    async def _connection(self) -> _Protocol:
        proto = self._proto
        if proto is not None and proto.alive:
            return proto
        if self._connecting is None:
            self._connecting = asyncio.Lock()
        async with self._connecting:
            proto = self._proto
            if proto is not None and proto.alive:
                return proto
            loop = asyncio.get_running_loop()
            if self.scheme == "unix":
                _, proto = await loop.create_unix_connection(_Protocol, self.path)
            else:
                context = ssl.create_default_context() if self.scheme == "rediss" else None
                _, proto = await loop.create_connection(_Protocol, self.host, self.port, ssl=context)
            setup = []
            if self.password is not None:
                auth = ("AUTH", self.username, self.password) if self.username else ("AUTH", self.password)
                setup.append(proto.send(encode_command(auth)))
            if self.db:
                setup.append(proto.send(encode_command(("SELECT", self.db))))
            for reply in setup:
                result = await reply
                if isinstance(result, RespError):
                    if proto.transport is not None:
                        proto.transport.abort()
                    raise ConnectionError(f"Redis refused the connection setup: {result}")
            self._proto = proto
            return proto

    async def call(self, *args: Any) -> Any:
        """Send one command and return its reply (a ``RespError`` reply is raised)."""
        proto = await self._connection()
        try:
            reply = await proto.send(encode_command(args))
        except asyncio.CancelledError:
            # Timed out (or the caller left): the reply may still come, out of anyone's reach;
            # a fresh connection is cheaper than a doubt.
            if proto.transport is not None:
                proto.transport.abort()
            raise
        if isinstance(reply, RespError):
            raise reply
        return reply

    async def evalsha(self, script: Script, keys: list[str], args: list[Any]) -> Any:
        """Run ``script`` by its SHA1, loading it first when Redis does not have it."""
        try:
            return await self.call("EVALSHA", script.sha, len(keys), *keys, *args)
        except RespError as exc:
            if not str(exc).startswith("NOSCRIPT"):
                raise
        await self.call("SCRIPT", "LOAD", script.source)
        return await self.call("EVALSHA", script.sha, len(keys), *keys, *args)

    async def aclose(self) -> None:
        proto, self._proto = self._proto, None
        if proto is not None and proto.transport is not None:
            proto.transport.close()
            with contextlib.suppress(Exception):
                await asyncio.sleep(0)


# What a failed Redis call means, most specific first (TimeoutError is an OSError): whichever it
# is, Redis cannot serve the call now (as the limiter counts it), and the client may retry.
_FAILURES: dict[type[Exception], str] = {
    TimeoutError: "did not answer in time",  # the caller's asyncio.timeout
    RespError: "answered with an error",  # LOADING, READONLY after a failover, OOM, NOAUTH ...
    OSError: "cannot be reached",  # refused, reset, closed, DNS, TLS
}


@contextlib.contextmanager
def unavailable(what: str) -> Iterator[None]:
    """Raise a Redis failure in the block as ``Unavailable`` (503, ``retry-after: 1``, gRPC
    UNAVAILABLE) from the original; ``what`` names the store (``"the batch store"``). The
    message names the failure's class, never Redis's own text."""
    try:
        yield
    except tuple(_FAILURES) as exc:
        says = next(text for cls, text in _FAILURES.items() if isinstance(exc, cls))
        raise Unavailable(
            f"{what} (Redis) {says} ({type(exc).__name__}); retry shortly",
            headers=[("retry-after", "1")],
        ) from exc
