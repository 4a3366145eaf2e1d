"""Conformance of our HTTP/1.1 server (``sidecar.http1.server``) against h11 and raw sockets:
framings both ways, keep-alive, pipelining, HTTP/1.0, 100-continue, early closes at every stage,
backpressure both ways, every limit and timeout, malformed input, overload, app failures and the
drain. Limits and timeouts are small so the cases run fast; nothing here asserts timings."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
from collections.abc import AsyncIterator, Iterator
from typing import Any

import h11
import pytest

from sidecar.http1.server import HttpServer, ServerLimits
from tests.http1.server_peers import (
    H11Client,
    Recorder,
    Served,
    make_app,
    parse_responses,
    read_until_closed,
    wait_for,
)

# --- fixtures -----------------------------------------------------------------------------------


@pytest.fixture
def limits() -> ServerLimits:
    return ServerLimits(header_timeout=2.0, body_timeout=2.0, keep_alive_timeout=5.0)


@pytest.fixture
def cancel_on_disconnect() -> bool:
    return True


@pytest.fixture
async def served(limits: ServerLimits, cancel_on_disconnect: bool) -> AsyncIterator[Served]:
    rec = Recorder()
    server = HttpServer(make_app(rec), limits, cancel_on_disconnect=cancel_on_disconnect)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    sock.setblocking(False)
    await server.start(sock)
    try:
        yield Served(server, sock.getsockname()[1], rec)
    finally:
        rec.release.set()
        await server.shutdown(0.5)


@pytest.fixture
def app_bug() -> None:
    """Requested by the tests that make the app fail on purpose: errors are logged then."""


@pytest.fixture(autouse=True)
def no_tracebacks(caplog: pytest.LogCaptureFixture, request: pytest.FixtureRequest) -> Iterator[None]:
    """No client mistake may log an error or a traceback."""
    caplog.set_level(logging.DEBUG, logger="sidecar.http1")
    yield
    if "app_bug" in request.fixturenames:
        return
    bad = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert not bad, [r.getMessage() for r in bad]


# --- framing ------------------------------------------------------------------------------------


async def test_content_length_body_and_json_answer(served: Served) -> None:
    client = await H11Client.connect(served)
    r = await client.request("POST", "/echo?x=1", b'{"a": 1}', [("content-type", "application/json")])
    assert r.status == 200
    assert r.headers["content-length"] == str(len(r.body))
    assert "transfer-encoding" not in r.headers
    assert "server" not in r.headers and "date" in r.headers
    data = r.json()
    assert (data["method"], data["path"], data["query"], data["body"]) == ("POST", "/echo", "x=1", '{"a": 1}')
    assert ["content-type", "application/json"] in data["headers"]  # names lowercased
    client.close()


async def test_chunked_request_body_from_h11(served: Served) -> None:
    client = await H11Client.connect(served)
    r = await client.request(
        "POST", "/echo", [b"hello ", b"chunked ", b"world"], [("transfer-encoding", "chunked")]
    )
    assert r.json()["body"] == "hello chunked world"
    client.close()


async def test_chunk_extensions_and_trailers_are_ignored(served: Served) -> None:
    reader, writer = await served.open()
    writer.write(
        b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        b"5;name=value;x\r\nhello\r\n1\r\n!\r\n0;last\r\nX-Trailer: yes\r\nX-Other: 1\r\n\r\n"
    )
    (r,) = parse_responses(await read_until_closed(reader), ["POST"])
    assert r.status == 200
    assert r.json()["body"] == "hello!"
    writer.close()


async def test_streamed_answer_is_chunked(served: Served) -> None:
    client = await H11Client.connect(served)
    r = await client.request("GET", "/stream?5")
    assert r.headers["transfer-encoding"] == "chunked"
    assert "content-length" not in r.headers
    assert r.body == b"".join(b"part %d\n" % i for i in range(5))
    r = await client.request("GET", "/echo")  # and the connection is reused after it
    assert r.status == 200
    client.close()


async def test_head_has_no_body_and_the_connection_stays_usable(served: Served) -> None:
    reader, writer = await served.open()
    writer.write(
        b"HEAD /echo HTTP/1.1\r\nHost: t\r\n\r\nGET /echo HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
    )
    data = await read_until_closed(reader)
    head, get = parse_responses(data, ["HEAD", "GET"])
    assert head.status == 200 and head.body == b""
    assert get.status == 200 and get.json()["method"] == "GET"
    assert data.count(b"HTTP/1.1 200") == 2
    writer.close()


async def test_no_content_has_no_body(served: Served) -> None:
    client = await H11Client.connect(served)
    r = await client.request("GET", "/nocontent")
    assert r.status == 204 and r.body == b""
    assert "content-length" not in r.headers and "transfer-encoding" not in r.headers
    assert (await client.request("GET", "/echo")).status == 200
    client.close()


async def test_keep_alive_serves_many_requests_on_one_connection(served: Served) -> None:
    client = await H11Client.connect(served)
    for i in range(200):
        r = await client.request("POST", f"/echo?{i}", b"x" * (i % 7))
        assert r.status == 200 and r.json()["query"] == str(i)
        assert "connection" not in r.headers
    assert len(served.server.connections) == 1
    client.close()


async def test_pipelined_requests_are_answered_in_order_one_at_a_time(served: Served) -> None:
    reader, writer = await served.open()
    writer.write(
        b"POST /wait?first HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\nab"
        b"GET /echo?second HTTP/1.1\r\nHost: t\r\n\r\n"
        b"POST /echo?third HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nxyz\r\n0\r\n\r\n"
        b"GET /stream?2 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
    )
    await wait_for(lambda: served.rec.started == ["first"])
    await asyncio.sleep(0.1)
    assert served.rec.started == ["first"]  # parsed, but not served before the first answer
    served.rec.release.set()
    data = await read_until_closed(reader)
    first, second, third, fourth = parse_responses(data, ["POST", "GET", "POST", "GET"])
    assert first.body == b"waited first"
    assert second.json()["query"] == "second"
    assert third.json()["body"] == "xyz"
    assert fourth.body == b"part 0\npart 1\n"
    assert served.rec.started == ["first", "second", "third", "2"]
    writer.close()


async def test_http10_closes_after_the_answer(served: Served) -> None:
    reader, writer = await served.open()
    writer.write(b"GET /echo HTTP/1.0\r\n\r\n")
    data = await read_until_closed(reader)
    assert data.startswith(b"HTTP/1.1 200 ")
    (r,) = parse_responses(data, ["GET"])
    assert r.json()["version"] == "1.0"
    assert r.headers["connection"] == "close"
    writer.close()


async def test_http10_keep_alive_when_asked(served: Served) -> None:
    reader, writer = await served.open()
    writer.write(b"GET /echo?a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    assert b"connection: keep-alive" in head.lower()
    length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
    await reader.readexactly(length)
    writer.write(b"GET /echo?b HTTP/1.0\r\n\r\n")
    (r,) = parse_responses(await read_until_closed(reader), ["GET"])
    assert r.json()["query"] == "b"
    writer.close()


async def test_http10_stream_is_delimited_by_the_close(served: Served) -> None:
    reader, writer = await served.open()
    writer.write(b"GET /stream?3 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
    data = await read_until_closed(reader)
    head, _, body = data.partition(b"\r\n\r\n")
    assert b"chunked" not in head.lower() and b"connection: close" in head.lower()
    assert body == b"part 0\npart 1\npart 2\n"
    writer.close()


async def test_expect_100_continue_is_sent_when_the_app_reads(served: Served) -> None:
    reader, writer = await served.open()
    writer.write(b"POST /slowread HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n")
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(reader.read(1), 0.2)  # nothing until the app reads
    served.rec.release.set()
    assert await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5) == b"HTTP/1.1 100 Continue\r\n\r\n"
    writer.write(b"body")
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    assert head.startswith(b"HTTP/1.1 200 ")
    assert await reader.readexactly(1) == b"4"
    writer.close()


async def test_expect_100_continue_without_reading_answers_and_closes(served: Served) -> None:
    reader, writer = await served.open()
    writer.write(b"POST /noread HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 100\r\n\r\n")
    data = await read_until_closed(reader)
    assert b"100 Continue" not in data
    (r,) = parse_responses(data, ["POST"])
    assert r.body == b"not read" and r.headers["connection"] == "close"
    writer.close()


async def test_h11_expect_100_continue(served: Served) -> None:
    client = await H11Client.connect(served)
    r = await client.request("POST", "/echo", b"payload", [("expect", "100-continue")])
    assert r.json()["body"] == "payload"
    client.close()


async def test_connection_close_from_the_client(served: Served) -> None:
    client = await H11Client.connect(served)
    r = await client.request("GET", "/echo", headers=[("connection", "close")])
    assert r.headers["connection"] == "close"
    assert await client.closed_by_server()
    client.close()


async def test_connection_close_from_the_app(served: Served) -> None:
    client = await H11Client.connect(served)
    r = await client.request("GET", "/close")
    assert r.body == b"bye" and r.headers["connection"] == "close"
    assert await client.closed_by_server()
    client.close()


async def test_an_early_answer_to_an_unread_body_closes(served: Served) -> None:
    reader, writer = await served.open()
    writer.write(b"POST /noread HTTP/1.1\r\nHost: t\r\nContent-Length: 1000000\r\n\r\n" + b"x" * 1000)
    data = await read_until_closed(reader)
    (r,) = parse_responses(data, ["POST"])
    assert r.status == 200 and r.headers["connection"] == "close"
    writer.close()


# --- early closes -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "sent",
    [b"", b"GET /echo HT", b"POST /echo HTTP/1.1\r\nHost: t\r\nX-A: b"],
    ids=["nothing", "mid-request-line", "mid-headers"],
)
async def test_close_before_the_headers_end_calls_no_app(served: Served, sent: bytes) -> None:
    reader, writer = await served.open()
    writer.write(sent)
    await writer.drain()
    writer.close()
    await wait_for(lambda: not served.server.connections)
    assert served.rec.calls == []


async def test_close_mid_body_tells_the_app(served: Served) -> None:
    reader, writer = await served.open()
    writer.write(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\nhalf")
    await wait_for(lambda: served.rec.calls == ["/echo"])
    writer.close()
    await wait_for(lambda: "/echo" in served.rec.ended)
    # Cancelled by the server (the extension) or told by receive(): either way it ended.
    assert served.rec.ended["/echo"] in ("cancelled", "disconnect")
    await wait_for(lambda: served.server.in_flight == 0)


@pytest.mark.parametrize("path", ["/hang", "/big?100000"])
async def test_close_before_or_mid_answer_cancels_the_app(served: Served, path: str) -> None:
    reader, writer = await served.open()
    writer.write(f"GET {path} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
    await wait_for(lambda: served.rec.calls)
    if path.startswith("/big"):
        await reader.readexactly(1000)  # the answer has started
    writer.close()
    await wait_for(lambda: served.rec.ended.get(path.split("?")[0]) == "cancelled")
    await wait_for(lambda: served.server.in_flight == 0)


@pytest.mark.parametrize("cancel_on_disconnect", [False])
async def test_without_the_extension_receive_says_disconnect(served: Served) -> None:
    reader, writer = await served.open()
    writer.write(b"GET /listen HTTP/1.1\r\nHost: t\r\n\r\n")
    await wait_for(lambda: served.rec.calls)
    assert "sidecar.cancel_on_disconnect" not in (served.server.extensions or {})
    writer.close()
    await wait_for(lambda: served.rec.ended.get("/listen") == "http.disconnect")


async def test_the_extension_is_in_the_scope(served: Served) -> None:
    seen: list[dict[str, Any]] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        seen.append(scope)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    served.server.app = app
    client = await H11Client.connect(served)
    await client.request("GET", "/x%20y?q=1")
    scope = seen[0]
    assert "sidecar.cancel_on_disconnect" in scope["extensions"]
    assert (scope["path"], scope["raw_path"], scope["query_string"]) == ("/x y", b"/x%20y", b"q=1")
    assert scope["client"][0] == "127.0.0.1" and scope["server"][1] == served.port
    client.close()


# --- backpressure -------------------------------------------------------------------------------


async def test_a_client_that_does_not_read_stops_the_app(served: Served) -> None:
    reader, writer = await _small_buffer(served, 65536)
    total = 2048  # 128 MiB if nothing stopped it
    writer.write(f"GET /big?{total} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
    # Wait until the app stops making progress: its send() is waiting for the client.
    last = -1
    while served.rec.sent != last:
        last = served.rec.sent
        await asyncio.sleep(0.3)
    assert served.rec.sent < total * 65536 // 4
    (conn,) = served.server.connections
    assert conn.transport.get_write_buffer_size() <= served.server.limits.write_high_water + 2 * 65536
    received = 0
    while True:
        data = await asyncio.wait_for(reader.read(1 << 20), 10)
        received += len(data)
        if data.endswith(b"0\r\n\r\n") or not data:
            break
    assert served.rec.sent == total * 65536
    writer.close()


async def _small_buffer(
    served: Served, rcvbuf: int, limit: int = 1 << 16
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A connection with a small receive buffer (and a reader buffering ``limit`` bytes)."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.connect(("127.0.0.1", served.port))
    sock.setblocking(False)
    return await asyncio.open_connection(sock=sock, limit=limit)


async def _not_reading(served: Served) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await _small_buffer(served, 16384, limit=4096)


async def _until_still(count: Any) -> None:
    last = -1
    while count() != last:
        last = count()
        await asyncio.sleep(0.3)


async def test_pipelined_answers_wait_while_the_client_does_not_read(served: Served) -> None:
    # Found by the HTTP fuzz campaign's slow clients: each pipelined request was served as soon
    # as the answer before it was handed to the transport, so a client that sent many and read
    # none had every answer pile up in the write buffer (500 x 32 KB in the sidecar).
    reader, writer = await _not_reading(served)
    n = 400  # 64 KiB answers: 25 MiB if nothing stopped them
    writer.write(b"GET /blob?64 HTTP/1.1\r\nHost: t\r\n\r\n" * n)
    await _until_still(lambda: len(served.rec.finished))
    assert len(served.rec.finished) < n // 4  # what the sockets' buffers hold (loopback: ~4 MB)
    (conn,) = served.server.connections
    assert conn.transport.get_write_buffer_size() <= served.server.limits.write_high_water + 64 * 1024
    data = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    size = len(data) + 64 * 1024  # every answer alike (a date is as long as any other)
    data += await asyncio.wait_for(reader.readexactly(n * size - len(data)), 20)
    answers = parse_responses(data, ["GET"] * n)
    assert [len(r.body) for r in answers] == [64 * 1024] * n
    writer.close()


async def test_a_half_closed_client_that_does_not_read_ends_its_call(served: Served) -> None:
    # Found by the HTTP fuzz campaign's slow clients: a half-close is taken as the client
    # leaving, but the transport closed only once its buffer was written, so the call of a
    # client that shut its side and read nothing waited for good.
    reader, writer = await _not_reading(served)
    writer.write(b"GET /big?2048 HTTP/1.1\r\nHost: t\r\n\r\n")
    await _until_still(lambda: served.rec.sent)
    assert 0 < served.rec.sent < 2048 * 65536
    writer.write_eof()
    await wait_for(lambda: served.rec.ended.get("/big") == "cancelled")
    await wait_for(lambda: not served.server.connections)
    writer.close()


@pytest.mark.parametrize("limits", [ServerLimits(send_timeout=0.5)])
async def test_a_client_that_reads_nothing_is_cut_after_the_send_timeout(served: Served) -> None:
    # Before send_timeout, a client that stopped reading held its connection and its call (and
    # the call's upstream stream) for as long as it stayed connected.
    reader, writer = await _not_reading(served)
    writer.write(b"GET /big?2048 HTTP/1.1\r\nHost: t\r\n\r\n")
    await wait_for(lambda: served.rec.ended.get("/big") == "cancelled")
    assert 0 < served.rec.sent < 2048 * 65536
    await wait_for(lambda: not served.server.connections)
    writer.close()


@pytest.mark.parametrize("limits", [ServerLimits(send_timeout=0.5)])
async def test_a_slow_reader_that_keeps_reading_is_not_cut(served: Served) -> None:
    reader, writer = await _small_buffer(served, 16384)
    total = 96  # 6 MiB, read in bites with a pause after each, each shorter than the timeout
    writer.write(f"GET /big?{total} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
    received = b""
    while not received.endswith(b"0\r\n\r\n"):
        data = await asyncio.wait_for(reader.read(1 << 20), 10)
        assert data, "cut while reading"
        received += data
        await asyncio.sleep(0.02)
    assert served.rec.sent == total * 65536
    assert served.rec.ended.get("/big") != "cancelled"
    writer.close()


async def test_reading_pauses_while_the_app_does_not_take_the_body(served: Served) -> None:
    reader, writer = await served.open()
    size = 16 * 1024 * 1024
    writer.write(f"POST /slowread HTTP/1.1\r\nHost: t\r\nContent-Length: {size}\r\n\r\n".encode())
    sending = asyncio.create_task(_send_body(writer, size))
    await wait_for(lambda: any(c.read_paused for c in served.server.connections))
    await asyncio.sleep(0.3)
    (conn,) = served.server.connections
    assert conn.read_paused
    cycle = conn.parsing
    assert cycle is not None
    assert cycle.body_size <= served.server.limits.read_buffer + 256 * 1024  # one read past the mark
    assert not sending.done()  # the client is held back by TCP
    served.rec.release.set()
    await asyncio.wait_for(sending, 20)
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 20)
    assert head.startswith(b"HTTP/1.1 200")
    assert await reader.readexactly(len(str(size))) == str(size).encode()
    writer.close()


async def _send_body(writer: asyncio.StreamWriter, size: int) -> None:
    chunk = b"y" * 65536
    for _ in range(size // len(chunk)):
        writer.write(chunk)
        await writer.drain()


@pytest.mark.parametrize("limits", [ServerLimits(body_timeout=1.0)])
async def test_a_slow_but_steady_writer_is_served(served: Served) -> None:
    reader, writer = await served.open()
    writer.write(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\nConnection: close\r\n\r\n")
    for ch in b"0123456789":
        writer.write(bytes([ch]))
        await asyncio.sleep(0.05)
    (r,) = parse_responses(await read_until_closed(reader), ["POST"])
    assert r.json()["body"] == "0123456789"
    writer.close()


# --- limits and timeouts ------------------------------------------------------------------------


def _envelope(r: Any, status: int, error_type: str) -> None:
    assert r.status == status
    body = r.json()
    assert body["type"] == "error" and body["error"]["type"] == error_type
    assert body["error"]["message"]
    assert r.headers["request-id"] == body["request_id"]
    assert r.headers["content-type"] == "application/json"


@pytest.mark.parametrize("limits", [ServerLimits(max_header_bytes=1024)])
@pytest.mark.parametrize("dripped", [False, True])
async def test_a_header_block_over_the_limit_gets_431(served: Served, dripped: bool) -> None:
    reader, writer = await served.open()
    request = b"GET /echo HTTP/1.1\r\nHost: t\r\nX-Big: " + b"a" * 2000 + b"\r\n\r\n"
    if dripped:
        for i in range(0, len(request), 100):
            writer.write(request[i : i + 100])
            await writer.drain()
            await asyncio.sleep(0.001)
    else:
        writer.write(request)
    (r,) = parse_responses(await read_until_closed(reader), ["GET"])
    _envelope(r, 431, "invalid_request_error")
    assert r.headers["connection"] == "close"
    assert served.rec.calls == []
    writer.close()


@pytest.mark.parametrize("limits", [ServerLimits(max_header_bytes=1024)])
async def test_many_small_headers_over_the_limit_get_431(served: Served) -> None:
    reader, writer = await served.open()
    headers = b"".join(b"X-H%d: v\r\n" % i for i in range(200))
    writer.write(b"GET /echo HTTP/1.1\r\nHost: t\r\n" + headers + b"\r\n")
    (r,) = parse_responses(await read_until_closed(reader), ["GET"])
    _envelope(r, 431, "invalid_request_error")
    writer.close()


@pytest.mark.parametrize("limits", [ServerLimits(header_timeout=0.3)])
async def test_a_client_dripping_its_headers_is_cut(served: Served) -> None:
    reader, writer = await served.open()
    writer.write(b"GET /echo HTTP/1.1\r\n")

    async def drip() -> None:
        for i in range(100):
            writer.write(b"X-%d: v\r\n" % i)
            await asyncio.sleep(0.05)

    dripping = asyncio.create_task(drip())
    data = await read_until_closed(reader, 5)
    dripping.cancel()
    (r,) = parse_responses(data, ["GET"])
    _envelope(r, 408, "invalid_request_error")
    assert served.rec.calls == []
    writer.close()


@pytest.mark.parametrize("limits", [ServerLimits(body_timeout=0.3)])
async def test_a_stalled_body_is_cut_and_the_app_told(served: Served) -> None:
    reader, writer = await served.open()
    writer.write(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nab")
    data = await read_until_closed(reader, 5)
    (r,) = parse_responses(data, ["POST"])
    _envelope(r, 408, "invalid_request_error")
    await wait_for(lambda: served.rec.ended.get("/echo") in ("cancelled", "disconnect"))
    writer.close()


@pytest.mark.parametrize("limits", [ServerLimits(keep_alive_timeout=0.3)])
async def test_an_idle_keep_alive_connection_is_closed(served: Served) -> None:
    client = await H11Client.connect(served)
    assert (await client.request("GET", "/echo")).status == 200
    assert await client.closed_by_server(5)
    client.close()


@pytest.mark.parametrize("limits", [ServerLimits(keep_alive_timeout=0.3)])
async def test_a_connection_that_never_sends_is_closed(served: Served) -> None:
    reader, writer = await served.open()
    assert await read_until_closed(reader, 5) == b""
    writer.close()


@pytest.mark.parametrize("limits", [ServerLimits(header_timeout=0.3, keep_alive_timeout=60)])
async def test_a_new_connection_gets_the_header_timeout_to_begin_its_request(served: Served) -> None:
    # Found by the HTTP fuzz campaign: a connection that sent nothing was kept for the keep-alive
    # timeout (75 s by default), so idle sockets could pile up; it now has the header timeout.
    reader, writer = await served.open()
    started = asyncio.get_running_loop().time()
    assert await read_until_closed(reader, 5) == b""
    assert asyncio.get_running_loop().time() - started < 3
    writer.close()


async def test_a_client_gone_before_its_call_started_leaves_nothing_in_flight(served: Served) -> None:
    # Found by the HTTP fuzz campaign: a request whose connection dropped in the same read as it
    # arrived had its task cancelled before its first step, so the count of calls in flight never
    # came down, and after enough of them every request got 529.
    reader, writer = await served.open()
    await wait_for(lambda: len(served.server.connections) == 1)
    (conn,) = served.server.connections
    # The request and the connection's loss in one turn of the loop, as one read can bring both.
    conn.data_received(b"GET /hang HTTP/1.1\r\nHost: t\r\n\r\n")
    assert served.server.in_flight == 1
    conn.connection_lost(None)
    writer.transport.abort()
    await wait_for(lambda: served.server.in_flight == 0)
    assert served.rec.calls == []  # the app never ran


@pytest.mark.parametrize("limits", [ServerLimits(max_body_bytes=1000)])
async def test_a_content_length_over_the_limit_gets_413_unread(served: Served) -> None:
    reader, writer = await served.open()
    writer.write(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 1001\r\n\r\n" + b"z" * 500)
    (r,) = parse_responses(await read_until_closed(reader), ["POST"])
    _envelope(r, 413, "request_too_large")
    assert served.rec.calls == []
    writer.close()


@pytest.mark.parametrize("limits", [ServerLimits(max_body_bytes=1000)])
async def test_a_chunked_body_over_the_limit_gets_413(served: Served) -> None:
    reader, writer = await served.open()
    writer.write(b"POST /slowread HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n")
    writer.write(b"400\r\n" + b"z" * 1024 + b"\r\n")
    (r,) = parse_responses(await read_until_closed(reader), ["POST"])
    _envelope(r, 413, "request_too_large")
    writer.close()


@pytest.mark.parametrize("limits", [ServerLimits(max_in_flight=1)])
async def test_overload_gets_529_with_retry_after_without_the_app(served: Served) -> None:
    busy = await H11Client.connect(served)
    waiting = asyncio.create_task(busy.request("GET", "/wait?one"))
    await wait_for(lambda: served.server.in_flight == 1)
    client = await H11Client.connect(served)
    r = await client.request("POST", "/echo", b"{}")
    _envelope(r, 529, "overloaded_error")
    assert r.headers["retry-after"] == "1"
    assert served.rec.calls == ["/wait"]
    served.rec.release.set()
    assert (await waiting).body == b"waited one"
    r = await client.request("POST", "/echo", b"{}")  # the refused connection is still usable
    assert r.status == 200
    busy.close()
    client.close()


# --- malformed input ----------------------------------------------------------------------------

MALFORMED = {
    "content-length and transfer-encoding": b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "two content-lengths": b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
    "content-length list": b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5, 5\r\n\r\nhello",
    "negative content-length": b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: -1\r\n\r\n",
    "transfer-encoding not ending in chunked": b"POST /echo HTTP/1.1\r\nHost: t\r\n"
    b"Transfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n",
    "transfer-encoding gzip": b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip\r\n\r\nabc",
    "two transfer-encodings": b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "transfer-encoding in HTTP/1.0": b"POST /echo HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "bad chunk size": b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n",
    "chunk size overflow": b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"ffffffffffffffffff\r\nabc\r\n0\r\n\r\n",
    "chunk without its CRLF": b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX0\r\n\r\n",
    "bare CR in a header": b"GET /echo HTTP/1.1\r\nHost: t\r\nX: a\rb\r\n\r\n",
    "bare LF line ends": b"GET /echo HTTP/1.1\nHost: t\n\n",
    "NUL in a header": b"GET /echo HTTP/1.1\r\nHost: t\x00x\r\n\r\n",
    "control character in a header": b"GET /echo HTTP/1.1\r\nHost: t\r\nX: a\x01b\r\n\r\n",
    "obs-fold": b"GET /echo HTTP/1.1\r\nHost: t\r\nX-A: b\r\n  c\r\n\r\n",
    "space before the colon": b"GET /echo HTTP/1.1\r\nHost : t\r\n\r\n",
    "empty header name": b"GET /echo HTTP/1.1\r\nHost: t\r\n: b\r\n\r\n",
    "whitespace before the first header": b"GET /echo HTTP/1.1\r\n Host: t\r\n\r\n",
    "invalid method": b"G@T /echo HTTP/1.1\r\nHost: t\r\n\r\n",
    "invalid version": b"GET /echo HTTP/9.9\r\nHost: t\r\n\r\n",
    "space in the target": b"GET /a b HTTP/1.1\r\nHost: t\r\n\r\n",
    "NUL in the target": b"GET /\x00 HTTP/1.1\r\nHost: t\r\n\r\n",
    "missing version": b"GET /echo\r\nHost: t\r\n\r\n",
    "HTTP/2 preface": b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
    "CONNECT": b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
    "binary garbage": b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
}


@pytest.mark.parametrize("request_bytes", list(MALFORMED.values()), ids=list(MALFORMED))
async def test_malformed_requests_get_400_and_a_close(served: Served, request_bytes: bytes) -> None:
    reader, writer = await served.open()
    writer.write(request_bytes)
    data = await read_until_closed(reader)
    (r,) = parse_responses(data, ["GET"])
    _envelope(r, 400, "invalid_request_error")
    assert r.headers["connection"] == "close"
    assert served.rec.calls == []
    writer.close()


async def test_a_malformed_request_after_good_ones_is_answered_in_turn(served: Served) -> None:
    reader, writer = await served.open()
    writer.write(
        b"POST /wait?good HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n"
        b"GET /echo HTTP/1.1\r\nHost: t\r\nX: a\x00\r\n\r\n"
    )
    await wait_for(lambda: served.rec.calls)
    served.rec.release.set()
    good, bad = parse_responses(await read_until_closed(reader), ["POST", "GET"])
    assert good.body == b"waited good"
    _envelope(bad, 400, "invalid_request_error")
    writer.close()


async def test_a_bad_chunk_mid_body_answers_400_and_tells_the_app(served: Served) -> None:
    reader, writer = await served.open()
    writer.write(b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n")
    await wait_for(lambda: served.rec.calls)
    writer.write(b"nothex\r\n")
    (r,) = parse_responses(await read_until_closed(reader), ["POST"])
    _envelope(r, 400, "invalid_request_error")
    await wait_for(lambda: served.rec.ended.get("/echo") in ("cancelled", "disconnect"))
    writer.close()


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"GET /echo HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        b"POST /echo HTTP/1.1\r\nHost: t\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n"
        b"HTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\nContent-Length: 5\r\n\r\nhello",
        b"POST /echo HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n2\r\nhe\r\n3\r\nllo\r\n0\r\n\r\n",
    ],
    ids=["websocket", "h2c with a body", "h2c chunked"],
)
async def test_upgrade_requests_get_a_plain_answer(served: Served, request_bytes: bytes) -> None:
    reader, writer = await served.open()
    writer.write(request_bytes + b"\x00\x01 whatever follows is not read")
    data = await read_until_closed(reader)
    assert data.startswith(b"HTTP/1.1 200 ")  # not 101
    (r,) = parse_responses(data, ["GET"])
    assert r.json()["body"] == ("hello" if b"POST" in request_bytes[:4] else "")
    assert r.headers["connection"] == "close"
    writer.close()


# --- app failures -------------------------------------------------------------------------------


@pytest.mark.usefixtures("app_bug")
@pytest.mark.parametrize("path", ["/raise", "/empty"])
async def test_an_app_failing_before_its_answer_gets_500(served: Served, path: str) -> None:
    client = await H11Client.connect(served)
    r = await client.request("GET", path)
    _envelope(r, 500, "api_error")
    assert await client.closed_by_server()
    client.close()


@pytest.mark.usefixtures("app_bug")
async def test_an_app_failing_mid_answer_closes_the_connection(served: Served) -> None:
    reader, writer = await served.open()
    writer.write(b"GET /raise-late HTTP/1.1\r\nHost: t\r\n\r\n")
    data = await read_until_closed(reader)
    assert data.startswith(b"HTTP/1.1 200 ") and b"half" in data
    assert not data.endswith(b"0\r\n\r\n")  # no clean end: the client sees a cut
    with pytest.raises(h11.RemoteProtocolError):
        parse_responses(data, ["GET"])
    writer.close()


# --- shutdown -----------------------------------------------------------------------------------


async def test_shutdown_closes_idle_connections_and_finishes_busy_ones(served: Served) -> None:
    idle = await H11Client.connect(served)
    assert (await idle.request("GET", "/echo")).status == 200
    busy = await H11Client.connect(served)
    waiting = asyncio.create_task(busy.request("GET", "/wait?last"))
    await wait_for(lambda: served.server.in_flight == 1)
    stopping = asyncio.create_task(served.server.shutdown(10))
    assert await idle.closed_by_server()  # at once
    with pytest.raises(OSError):
        await asyncio.open_connection("127.0.0.1", served.port)  # no longer accepting
    served.rec.release.set()
    r = await waiting
    assert r.body == b"waited last" and r.headers["connection"] == "close"
    await asyncio.wait_for(stopping, 5)
    idle.close()
    busy.close()


async def test_shutdown_cuts_what_remains_after_the_grace(served: Served) -> None:
    reader, writer = await served.open()
    writer.write(b"GET /hang HTTP/1.1\r\nHost: t\r\n\r\n")
    await wait_for(lambda: served.server.in_flight == 1)
    await asyncio.wait_for(served.server.shutdown(0.2), 5)
    assert served.rec.ended.get("/hang") == "cancelled"
    assert await read_until_closed(reader) == b""
    writer.close()


# --- the real app -------------------------------------------------------------------------------


async def test_the_real_app_on_the_mock_model() -> None:
    from tests.conftest import MOCK_CONFIG
    from tests.inprocess import http_app, pipeline

    p = pipeline(MOCK_CONFIG)
    server = HttpServer(http_app(p), cancel_on_disconnect=True)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    sock.setblocking(False)
    await server.start(sock)
    try:
        client = H11Client(*await asyncio.open_connection("127.0.0.1", sock.getsockname()[1]))
        body = {"model": "m", "max_tokens": 20, "messages": [{"role": "user", "content": "hi"}]}
        r = await client.request("POST", "/v1/messages", json.dumps(body).encode(), [("x-api-key", "k")])
        assert r.status == 200 and r.json()["type"] == "message"
        r = await client.request(
            "POST", "/v1/messages", json.dumps({**body, "stream": True}).encode(), [("x-api-key", "k")]
        )
        assert r.headers["transfer-encoding"] == "chunked"
        assert r.body.startswith(b"event: message_start") and b"event: message_stop" in r.body
        r = await client.request("POST", "/v1/messages", b"{not json", [("x-api-key", "k")])
        _envelope(r, 400, "invalid_request_error")
        client.close()
    finally:
        await server.shutdown(1)
        await p.aclose()


async def test_the_real_app_needs_no_watcher_task_under_the_extension() -> None:
    """A client gone mid-call ends the upstream call; the app spawned no task of its own."""
    from sidecar.core import Answer, Call, Target
    from tests.conftest import MOCK_CONFIG
    from tests.inprocess import http_app, pipeline

    entered = asyncio.Event()
    ended: list[str] = []

    async def hang(call: Call, target: Target) -> Answer:
        entered.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            ended.append("cancelled")
            raise
        raise AssertionError

    p = pipeline(MOCK_CONFIG, m=hang)
    server = HttpServer(http_app(p), cancel_on_disconnect=True)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    sock.setblocking(False)
    await server.start(sock)
    try:
        before = len(asyncio.all_tasks())
        reader, writer = await asyncio.open_connection("127.0.0.1", sock.getsockname()[1])
        body = json.dumps({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]})
        writer.write(
            b"POST /v1/messages HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n%s" % (len(body), body.encode())
        )
        await asyncio.wait_for(entered.wait(), 5)
        assert len(asyncio.all_tasks()) == before + 1  # the request's own task, no watcher
        writer.close()
        await wait_for(lambda: ended == ["cancelled"])
        await wait_for(lambda: server.in_flight == 0)
    finally:
        await server.shutdown(1)
        await p.aclose()


def test_make_app_paths_are_documented() -> None:
    assert make_app.__doc__ and "/echo" in make_app.__doc__


@pytest.mark.usefixtures("app_bug")
async def test_a_response_header_with_a_line_break_is_never_written(served: Served) -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": [(b"x-a", b"v\r\nx-b: evil")]})
        await send({"type": "http.response.body", "body": b""})

    served.server.app = app
    reader, writer = await served.open()
    writer.write(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
    data = await read_until_closed(reader)
    assert b"evil" not in data
    (r,) = parse_responses(data, ["GET"])
    _envelope(r, 500, "api_error")
    writer.close()


@pytest.mark.parametrize("limits", [ServerLimits(body_timeout=1.0)])
async def test_the_body_timeout_waits_for_100_continue(served: Served) -> None:
    reader, writer = await served.open()
    writer.write(b"POST /slowread HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n")
    await asyncio.sleep(1.5)  # the app has not read yet: the client is right to wait
    served.rec.release.set()
    assert await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5) == b"HTTP/1.1 100 Continue\r\n\r\n"
    writer.write(b"ok")
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    assert head.startswith(b"HTTP/1.1 200 ")
    writer.close()
