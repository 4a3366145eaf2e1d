"""What the server's tests drive it with: a small recording ASGI app, the server on 127.0.0.1:0 in
the test's event loop, and two client peers: raw sockets (asyncio streams) and h11, an
independent HTTP/1.1 implementation. The fixtures are in tests/http1/test_server.py; the upstream pool's peers are in peers.py."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import h11

from sidecar.http1.server import HttpServer


@dataclass
class Recorder:
    """What the test app saw: each call's path, how it ended, what ``receive`` said."""

    calls: list[str] = field(default_factory=list)
    ended: dict[str, str] = field(default_factory=dict)  # path -> done | cancelled | disconnect
    release: asyncio.Event = field(default_factory=asyncio.Event)  # /wait answers once set
    sent: int = 0  # bytes /big has handed to send
    started: list[str] = field(default_factory=list)
    finished: list[str] = field(default_factory=list)
    received: list[dict[str, Any]] = field(default_factory=list)


async def _read_all(receive: Callable[[], Any]) -> tuple[bytes, bool]:
    body = b""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return body, False
        body += message.get("body", b"")
        if not message.get("more_body", False):
            return body, True


def make_app(rec: Recorder) -> Callable[..., Any]:
    """Paths: /echo (JSON of the request), /stream?n (chunked), /big?n (n x 64 KiB streamed),
    /blob?n (n KiB in one body), /wait
    (answers once ``rec.release`` is set), /hang (never answers), /noread (answers without
    reading the body), /close (the app says connection: close), /raise, /raise-late, /empty
    (returns without answering), /nocontent (204), /drip (reads the body then waits for the end)."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        path = scope["path"]
        query = scope["query_string"].decode()
        rec.calls.append(path)
        rec.started.append(query or path)
        try:
            await _serve(path, query, scope, receive, send)
        except asyncio.CancelledError:
            rec.ended[path] = "cancelled"
            raise
        rec.finished.append(query or path)
        rec.ended.setdefault(path, "done")

    async def _serve(path: str, query: str, scope: dict[str, Any], receive: Any, send: Any) -> None:
        async def answer(status: int, body: bytes, headers: list[tuple[bytes, bytes]] | None = None) -> None:
            await send({"type": "http.response.start", "status": status, "headers": headers or []})
            await send({"type": "http.response.body", "body": body})

        if path == "/echo":
            body, whole = await _read_all(receive)
            if not whole:
                rec.ended[path] = "disconnect"
                return
            data = {
                "method": scope["method"],
                "path": path,
                "query": query,
                "version": scope["http_version"],
                "body": body.decode("latin-1"),
                "headers": [[k.decode(), v.decode()] for k, v in scope["headers"]],
            }
            await answer(200, json.dumps(data).encode(), [(b"content-type", b"application/json")])
        elif path == "/stream":
            await _read_all(receive)
            await send({"type": "http.response.start", "status": 200, "headers": [(b"x-a", b"1")]})
            for i in range(int(query or 3)):
                await send({"type": "http.response.body", "body": b"part %d\n" % i, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        elif path == "/big":
            await send({"type": "http.response.start", "status": 200, "headers": []})
            chunk = b"x" * 65536
            for _ in range(int(query)):
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
                rec.sent += len(chunk)
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        elif path == "/blob":
            await answer(200, b"b" * 1024 * int(query))
        elif path == "/wait":
            await _read_all(receive)
            await rec.release.wait()
            await answer(200, b"waited " + query.encode())
        elif path == "/hang":
            await _read_all(receive)
            await asyncio.Event().wait()
        elif path == "/listen":
            # Reads the body, then learns of a disconnect through receive() alone.
            await _read_all(receive)
            message = await receive()
            rec.received.append(message)
            rec.ended[path] = message["type"]
        elif path == "/slowread":
            await rec.release.wait()
            body, _ = await _read_all(receive)
            await answer(200, str(len(body)).encode())
        elif path == "/noread":
            await answer(200, b"not read")
        elif path == "/close":
            await _read_all(receive)
            await answer(200, b"bye", [(b"connection", b"close")])
        elif path == "/raise":
            raise RuntimeError("app bug (test)")
        elif path == "/raise-late":
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"half", "more_body": True})
            raise RuntimeError("app bug after the start (test)")
        elif path == "/empty":
            return
        elif path == "/nocontent":
            await send({"type": "http.response.start", "status": 204, "headers": []})
            await send({"type": "http.response.body", "body": b""})
        else:
            await answer(404, b"no such path")

    return app


@dataclass
class Served:
    server: HttpServer
    port: int
    rec: Recorder

    async def open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await asyncio.open_connection("127.0.0.1", self.port)


# --- peers --------------------------------------------------------------------------------------


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes
    raw_headers: list[tuple[bytes, bytes]]

    def json(self) -> Any:
        return json.loads(self.body)


async def read_until_closed(reader: asyncio.StreamReader, timeout: float = 10) -> bytes:
    return await asyncio.wait_for(reader.read(), timeout)


def parse_responses(data: bytes, methods: list[str]) -> list[Response]:
    """The responses in ``data`` (to requests with these methods, in order), parsed by h11."""
    conn = h11.Connection(h11.CLIENT)
    conn.receive_data(data)
    conn.receive_data(b"")
    out: list[Response] = []
    for method in methods:
        if conn.our_state is h11.DONE and conn.their_state is h11.DONE:
            conn.start_next_cycle()
        conn.send(h11.Request(method=method, target="/", headers=[("host", "t")]))
        conn.send(h11.EndOfMessage())
        out.append(_next_response(conn))
    return out


def _next_response(conn: h11.Connection) -> Response:
    head: h11.Response | None = None
    body = b""
    while True:
        event = conn.next_event()
        if isinstance(event, h11.InformationalResponse):
            continue
        if isinstance(event, h11.Response):
            head = event
        elif isinstance(event, h11.Data):
            body += event.data
        elif isinstance(event, h11.EndOfMessage):
            break
        else:
            raise AssertionError(f"incomplete response: {event!r}")
    assert head is not None
    raw = [(bytes(k), bytes(v)) for k, v in head.headers.raw_items()]
    headers = {k.decode().lower(): v.decode() for k, v in raw}
    return Response(head.status_code, headers, body, raw)


class H11Client:
    """One keep-alive connection driven by h11."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.conn = h11.Connection(h11.CLIENT)

    @classmethod
    async def connect(cls, served: Served) -> H11Client:
        return cls(*await served.open())

    async def request(
        self,
        method: str,
        target: str,
        body: bytes | list[bytes] = b"",
        headers: list[tuple[str, str]] | None = None,
        timeout: float = 10,
    ) -> Response:
        if self.conn.our_state is h11.DONE and self.conn.their_state is h11.DONE:
            self.conn.start_next_cycle()
        hdrs = [("host", "test"), *(headers or [])]
        if isinstance(body, bytes) and not any(k.lower() == "transfer-encoding" for k, _ in hdrs):
            if body or method in ("POST", "PUT"):
                hdrs.append(("content-length", str(len(body))))
        out = self.conn.send(h11.Request(method=method, target=target, headers=hdrs)) or b""
        for part in [body] if isinstance(body, bytes) else body:
            if part:
                out += self.conn.send(h11.Data(data=part)) or b""
        out += self.conn.send(h11.EndOfMessage()) or b""
        self.writer.write(out)
        await self.writer.drain()
        return await asyncio.wait_for(self._response(), timeout)

    async def _response(self) -> Response:
        while True:
            try:
                return _next_response_async(self.conn)
            except _NeedData:
                data = await self.reader.read(65536)
                self.conn.receive_data(data)

    async def closed_by_server(self, timeout: float = 5) -> bool:
        return await asyncio.wait_for(self.reader.read(), timeout) == b""

    def close(self) -> None:
        self.writer.close()


class _NeedData(Exception):
    pass


def _next_response_async(conn: h11.Connection) -> Response:
    # h11 keeps what it parsed; ask again until a whole response is there.
    state = getattr(conn, "_partial", None)
    head, body = state if state is not None else (None, b"")
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            conn._partial = (head, body)  # type: ignore[attr-defined]
            raise _NeedData
        if isinstance(event, h11.InformationalResponse):
            continue
        if isinstance(event, h11.Response):
            head = event
        elif isinstance(event, h11.Data):
            body += event.data
        elif isinstance(event, h11.EndOfMessage):
            conn._partial = None  # type: ignore[attr-defined]
            assert head is not None
            raw = [(bytes(k), bytes(v)) for k, v in head.headers.raw_items()]
            return Response(head.status_code, {k.decode().lower(): v.decode() for k, v in raw}, body, raw)
        elif isinstance(event, h11.ConnectionClosed):
            raise ConnectionError("closed before a whole response")


async def wait_for(predicate: Callable[[], object], timeout: float = 5) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)
