"""Servers the HTTP/1.1 client is tested against, in the test's own event loop on 127.0.0.1:
``H11Server`` (h11, an independent HTTP/1.1 implementation, answering what a test plans) and
``RawServer`` (a script of raw bytes, for what h11 would refuse to send)."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import h11

__all__ = ["H11Server", "RawServer", "Received", "Reply"]


@dataclass
class Received:
    """One request as the server read it."""

    method: str
    target: str
    headers: list[tuple[str, str]]  # lower-case names, in order
    body: bytes
    connection: int  # which accepted connection (1, 2, ...)

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k == name), None)


@dataclass
class Reply:
    status: int = 200
    headers: list[tuple[str, str]] = field(default_factory=lambda: [("content-type", "application/json")])
    body: bytes | list[bytes] = (
        b'{"ok":true}'  # a list: chunks sent one by one (chunked unless a length is set)
    )
    delay: float = 0.0  # before the headers
    gap: float = 0.0  # between body chunks
    hang: bool = False  # never answer (until the client closes)
    hang_after: int | None = None  # send this many body chunks, then hang
    close: bool = False  # close the connection after this answer
    read_body: bool = True  # read the request body before answering


Handler = Callable[[Received], Reply | Awaitable[Reply]]


class H11Server:
    """``async with H11Server(handler) as server``: serves ``server.url``; records requests,
    connections and when each connection closed."""

    def __init__(self, handler: Handler | None = None, tls: ssl.SSLContext | None = None) -> None:
        self.handler: Handler = handler or (lambda rec: Reply())
        self.tls = tls
        self.requests: list[Received] = []
        self.connections = 0
        self.closed: list[int] = []  # connection numbers, as the server saw each end
        self.written = 0  # body bytes written (drained into the socket) so far
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.port = 0

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    async def __aenter__(self) -> H11Server:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self.tls)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._server.wait_closed(), 2)

    async def wait_closed(self, connection: int, timeout: float = 5.0) -> bool:
        """Whether the server saw ``connection`` end within ``timeout`` seconds."""
        deadline = asyncio.get_running_loop().time() + timeout
        while connection not in self.closed:
            if asyncio.get_running_loop().time() > deadline:
                return False
            await asyncio.sleep(0.005)
        return True

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)  # type: ignore[arg-type]
        self.connections += 1
        number = self.connections
        conn = h11.Connection(h11.SERVER)
        try:
            await self._requests(conn, number, reader, writer)
        except (ConnectionError, h11.ProtocolError, asyncio.IncompleteReadError, ssl.SSLError):
            pass
        except asyncio.CancelledError:
            pass  # the server is stopping (a cancelled handler would be logged as an error)
        finally:
            self.closed.append(number)
            self._tasks.discard(task)  # type: ignore[arg-type]
            writer.close()

    async def _next(self, conn: h11.Connection, reader: asyncio.StreamReader) -> object:
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                data = await reader.read(65536)
                conn.receive_data(data)
                continue
            return event

    async def _requests(
        self, conn: h11.Connection, number: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        while True:
            event = await self._next(conn, reader)
            if isinstance(event, h11.ConnectionClosed) or event is h11.PAUSED:
                return
            assert isinstance(event, h11.Request), event
            headers = [(k.decode().lower(), v.decode("latin-1")) for k, v in event.headers]
            rec = Received(event.method.decode(), event.target.decode(), headers, b"", number)
            body = bytearray()
            while True:
                part = await self._next(conn, reader)
                if isinstance(part, h11.Data):
                    body += part.data
                elif isinstance(part, h11.EndOfMessage):
                    break
                else:
                    return
            rec.body = bytes(body)
            self.requests.append(rec)
            reply = self.handler(rec)
            if not isinstance(reply, Reply):
                reply = await reply
            await self._answer(conn, reply, reader, writer, head=rec.method == "HEAD")
            if reply.close or conn.our_state is h11.MUST_CLOSE:
                return
            conn.start_next_cycle()

    async def _answer(
        self,
        conn: h11.Connection,
        reply: Reply,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        head: bool = False,
    ) -> None:
        if reply.hang:
            await reader.read()  # until the client closes
            return
        if reply.delay:
            await asyncio.sleep(reply.delay)
        headers = list(reply.headers)
        chunks = [] if head else reply.body if isinstance(reply.body, list) else [reply.body]
        if isinstance(reply.body, bytes) and not any(k == "content-length" for k, _ in headers):
            headers.append(("content-length", str(len(reply.body))))
        if reply.close:
            headers.append(("connection", "close"))
        writer.write(conn.send(h11.Response(status_code=reply.status, headers=headers)) or b"")
        await writer.drain()
        for i, chunk in enumerate(chunks):
            if reply.hang_after is not None and i == reply.hang_after:
                await reader.read()
                return
            if reply.gap and i:
                await asyncio.sleep(reply.gap)
            if chunk:
                writer.write(conn.send(h11.Data(data=chunk)) or b"")
                await writer.drain()
                self.written += len(chunk)
        writer.write(conn.send(h11.EndOfMessage()) or b"")
        await writer.drain()


Script = Callable[[asyncio.StreamReader, asyncio.StreamWriter, int], Awaitable[None]]


class RawServer:
    """``async with RawServer(script) as server``: each connection runs ``script(reader, writer,
    number)``; the connection is closed when it returns."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.connections = 0
        self.closed: list[int] = []
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def wait_closed(self, connection: int, timeout: float = 5.0) -> bool:
        """Whether the server saw ``connection`` end within ``timeout`` seconds."""
        deadline = asyncio.get_running_loop().time() + timeout
        while connection not in self.closed:
            if asyncio.get_running_loop().time() > deadline:
                return False
            await asyncio.sleep(0.005)
        return True

    async def __aenter__(self) -> RawServer:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)  # type: ignore[arg-type]
        self.connections += 1
        number = self.connections
        try:
            await self.script(reader, writer, number)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass
        finally:
            self.closed.append(number)
            self._tasks.discard(task)  # type: ignore[arg-type]
            writer.close()


async def read_request(reader: asyncio.StreamReader) -> bytes:
    """One request's head and its content-length body, raw."""
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    return head + (await reader.readexactly(length) if length else b"")
