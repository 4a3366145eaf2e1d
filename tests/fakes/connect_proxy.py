"""A small forward proxy on 127.0.0.1 for tests: CONNECT tunnels (https upstreams) and
absolute-form requests (http ones), each recorded. It only ever connects to 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from urllib.parse import urlsplit

__all__ = ["ConnectProxy", "ProxyRequest"]


@dataclass(frozen=True)
class ProxyRequest:
    method: str  # CONNECT, or the method of an absolute-form request
    target: str  # host:port for CONNECT, else the absolute URL
    headers: dict[str, str]  # lower-case names


class ConnectProxy:
    """``async with ConnectProxy() as proxy``: serves on ``proxy.url`` in the running loop."""

    def __init__(self) -> None:
        self.requests: list[ProxyRequest] = []
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def __aenter__(self) -> ConnectProxy:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)  # type: ignore[arg-type]
        try:
            await self._tunnel(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self._tasks.discard(task)  # type: ignore[arg-type]
            writer.close()

    async def _tunnel(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        line, _, rest = head.partition(b"\r\n")
        method, target, _version = line.decode("latin-1").split(" ", 2)
        headers = {}
        for field in rest.decode("latin-1").split("\r\n"):
            name, sep, value = field.partition(":")
            if sep:
                headers[name.strip().lower()] = value.strip()
        self.requests.append(ProxyRequest(method, target, headers))
        if method == "CONNECT":
            host, _, port = target.rpartition(":")
            first = b""
        else:
            url = urlsplit(target)
            host, port = url.hostname or "", str(url.port or 80)
            first = head  # an origin server accepts the absolute form (RFC 9112 3.2.2)
        if host != "127.0.0.1":
            writer.write(b"HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\n\r\n")
            return
        up_reader, up_writer = await asyncio.open_connection(host, int(port))
        if method == "CONNECT":
            writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        else:
            up_writer.write(first)
        try:
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        finally:
            up_writer.close()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    with contextlib.suppress(OSError, RuntimeError):
        writer.write_eof()
