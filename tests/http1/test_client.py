"""The upstream HTTP/1.1 client (``sidecar.http1.client``) against real sockets: h11 (an
independent HTTP/1.1 implementation) as the well-behaved server, raw scripts for what h11 would
never send. Framing, keep-alive and the pool, early closes, the stale-connection retry, malformed
answers, timeouts, cancellation in every phase, backpressure, TLS and proxies."""

from __future__ import annotations

import asyncio
import base64
import socket
import ssl
import struct
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from sidecar.http1.client import (
    ConnectFailed,
    ConnectionBroken,
    ConnectTimeout,
    HTTPClient,
    ProtocolError,
    ProxyRefused,
    ResponseTimeout,
    TLSFailed,
)
from tests.fakes.connect_proxy import ConnectProxy
from tests.fakes.tls import Certs, make_certs
from tests.http1.peers import H11Server, RawServer, Received, Reply, read_request

CLOSE_SOON = 2.0  # generous: how long a server may take to see a connection the client ended


@pytest.fixture
async def client() -> AsyncIterator[HTTPClient]:
    c = HTTPClient(connect_timeout=5, read_timeout=10)
    yield c
    await c.aclose()


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    return make_certs(tmp_path_factory.mktemp("pki"))


def raw(answer: bytes, *, close: bool = True) -> RawServer:
    """A server that reads each request and writes ``answer`` (then closes, by default)."""

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, number: int) -> None:
        while True:
            await read_request(reader)
            writer.write(answer)
            await writer.drain()
            if close:
                return

    return RawServer(script)


# ---- framing ------------------------------------------------------------------------------------


async def test_content_length_keep_alive_reuses_one_connection(client: HTTPClient) -> None:
    async with H11Server(lambda rec: Reply(body=b"answer " + rec.body)) as server:
        for i in range(50):
            resp = await client.request("POST", server.url + "/v1/x?n=1", body=b"%d" % i)
            assert resp.status == 200
            assert await resp.read() == b"answer %d" % i
            assert resp.at_eof
    assert server.connections == 1
    assert [r.body for r in server.requests] == [b"%d" % i for i in range(50)]
    first = server.requests[0]
    assert (first.method, first.target) == ("POST", "/v1/x?n=1")
    assert first.header("host") == f"127.0.0.1:{server.port}" and first.header("content-length") == "1"


async def test_chunked_answer_arrives_chunk_by_chunk(client: HTTPClient) -> None:
    async def handler(rec: Received) -> Reply:
        return Reply(body=[b"first", b"second"], gap=0.01)

    async with H11Server(handler) as server:
        resp = await client.request("GET", server.url + "/")
        assert resp.headers.get("transfer-encoding") == "chunked"
        got = [chunk async for chunk in resp.chunks()]
        assert b"".join(got) == b"firstsecond" and len(got) == 2
        assert resp.at_eof
        resp = await client.request("GET", server.url + "/")
        assert await resp.read() == b"firstsecond"
    assert server.connections == 1


async def test_chunk_extensions_and_trailers(client: HTTPClient) -> None:
    answer = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5;name=value\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: yes\r\n\r\n"
    )
    async with raw(answer, close=False) as server:
        for _ in range(3):
            resp = await client.request("GET", server.url + "/")
            assert await resp.read() == b"hello world"
    assert server.connections == 1


async def test_close_delimited_body_ends_with_the_connection(client: HTTPClient) -> None:
    answer = b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n\r\nuntil the end"
    async with raw(answer) as server:
        for _ in range(2):
            resp = await client.request("GET", server.url + "/")
            assert await resp.read() == b"until the end" and resp.at_eof
    assert server.connections == 2


async def test_http10_answer_is_not_reused(client: HTTPClient) -> None:
    async with raw(b"HTTP/1.0 200 OK\r\ncontent-length: 2\r\n\r\nok", close=False) as server:
        for _ in range(2):
            resp = await client.request("GET", server.url + "/")
            assert await resp.read() == b"ok"
    assert server.connections == 2


@pytest.mark.parametrize(("method", "status"), [("GET", 204), ("GET", 304), ("HEAD", 200)])
async def test_answers_without_a_body(client: HTTPClient, method: str, status: int) -> None:
    reply = Reply(status=status, headers=[("content-length", "42")] if status != 204 else [], body=b"")
    async with H11Server(lambda rec: Reply() if rec.header("x-last") else reply) as server:
        for _ in range(3):
            resp = await client.request(method, server.url + "/")
            assert resp.status == status
            assert await resp.read() == b"" and resp.at_eof
        resp = await client.request("GET", server.url + "/", headers={"x-last": "1"})
        assert await resp.read() == b'{"ok":true}'
    assert server.connections == 1  # each connection went back to the pool


async def test_connection_close_is_not_reused(client: HTTPClient) -> None:
    async with H11Server(lambda rec: Reply(close=True)) as server:
        for _ in range(3):
            resp = await client.request("GET", server.url + "/")
            assert await resp.read() == b'{"ok":true}'
    assert server.connections == 3


async def test_interim_answers_are_skipped(client: HTTPClient) -> None:
    answer = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nlink: </a>\r\n\r\n"
    answer += b"HTTP/1.1 201 Created\r\ncontent-length: 4\r\n\r\ndone"
    async with raw(answer) as server:
        resp = await client.request("POST", server.url + "/", body=b"{}")
        assert (resp.status, resp.reason) == (201, "Created")
        assert resp.headers.items() == [("content-length", "4")]
        assert await resp.read() == b"done"


async def test_headers_lower_case_and_repeated(client: HTTPClient) -> None:
    headers = [("Set-Cookie", "a=1"), ("X-Mixed-Case", "V"), ("set-cookie", "b=2")]
    async with H11Server(lambda rec: Reply(headers=headers, body=b"")) as server:
        resp = await client.request("GET", server.url + "/")
    assert resp.headers.getall("set-cookie") == ["a=1", "b=2"]
    assert resp.headers.get("X-MIXED-CASE") == "V" and "x-mixed-case" in resp.headers
    assert all(k == k.lower() for k, _ in resp.headers.items())


async def test_request_headers_and_framing_are_ours(client: HTTPClient) -> None:
    async with H11Server() as server:
        headers = {"x-api-key": "k", "Host": "evil", "content-length": "999", "connection": "close"}
        resp = await client.request("POST", server.url + "/", headers=headers, body=b"abc")
        await resp.read()
        with pytest.raises(ValueError, match="line break"):
            await client.request("GET", server.url + "/", headers={"x-bad": "a\r\nx-injected: 1"})
    (rec,) = server.requests
    assert rec.header("x-api-key") == "k" and rec.header("host") == f"127.0.0.1:{server.port}"
    assert rec.header("content-length") == "3" and rec.header("connection") is None and rec.body == b"abc"


async def test_streamed_request_body_is_chunked(client: HTTPClient) -> None:
    async def body() -> AsyncIterator[bytes]:
        for part in (b"one ", b"", b"two ", b"three"):
            await asyncio.sleep(0)
            yield part

    async with H11Server(lambda rec: Reply(body=rec.body)) as server:
        resp = await client.request("PUT", server.url + "/upload", body=body())
        assert await resp.read() == b"one two three"
        resp = await client.request("POST", server.url + "/", body=b"x" * 100_000)  # two writes
        assert len(await resp.read()) == 100_000
    assert server.requests[0].header("transfer-encoding") == "chunked"
    assert server.connections == 1


async def test_streamed_body_with_its_length_is_sent_as_is(client: HTTPClient) -> None:
    async def body() -> AsyncIterator[bytes]:
        for part in (b"one ", b"", b"two ", b"three"):
            await asyncio.sleep(0)
            yield part

    async with H11Server(lambda rec: Reply(body=rec.body)) as server:
        resp = await client.request("PUT", server.url + "/upload", body=body(), length=13)
        assert await resp.read() == b"one two three"
    request = server.requests[0]
    assert request.header("content-length") == "13" and request.header("transfer-encoding") is None


@pytest.mark.parametrize("length", [12, 14])
async def test_a_streamed_body_off_its_length_aborts_the_connection(client: HTTPClient, length: int) -> None:
    """Fewer or more bytes than the promised length would make the server misread what follows:
    the request fails and its connection is dropped, never reused."""

    async def body() -> AsyncIterator[bytes]:
        yield b"one two three"

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, number: int) -> None:
        await reader.read()  # until the client drops the connection

    async with RawServer(script) as server:
        with pytest.raises(ValueError, match="length"):
            await client.request("PUT", server.url + "/upload", body=body(), length=length)
        assert await server.wait_closed(1)
    assert client.connections() == (0, 0)


async def test_read_with_a_limit_leaves_the_rest(client: HTTPClient) -> None:
    async with H11Server(lambda rec: Reply(body=[b"0123456789", b"abcdef"])) as server:
        resp = await client.request("GET", server.url + "/")
        assert await resp.read(4) == b"0123"
        assert await resp.read() == b"456789abcdef"


# ---- the pool -----------------------------------------------------------------------------------


async def test_pool_bound_and_fifo_queue() -> None:
    client = HTTPClient(max_connections=2)
    async with H11Server(lambda rec: Reply(body=rec.body, delay=0.05)) as server:

        async def one(i: int) -> bytes:
            resp = await client.request("POST", server.url + "/", body=b"%d" % i)
            return await resp.read()

        tasks = []
        for i in range(8):
            tasks.append(asyncio.create_task(one(i)))
            await asyncio.sleep(0.002)  # submitted in order
        assert await asyncio.gather(*tasks) == [b"%d" % i for i in range(8)]
        await client.aclose()
    assert server.connections == 2
    # Two at a time, served in the order asked.
    assert [r.body for r in server.requests] == [b"%d" % i for i in range(8)]


async def test_unread_response_is_not_reused(client: HTTPClient) -> None:
    async with H11Server(lambda rec: Reply(body=[b"a" * 10, b"b" * 10], gap=0.05)) as server:
        resp = await client.request("GET", server.url + "/")
        resp.release()  # unread: the connection cannot carry another request
        assert await server.wait_closed(1, CLOSE_SOON)
        resp = await client.request("GET", server.url + "/")
        assert await resp.read() == b"a" * 10 + b"b" * 10
    assert server.connections == 2


async def test_idle_connections_expire() -> None:
    client = HTTPClient(keepalive=0.1)
    async with H11Server() as server:
        await (await client.request("GET", server.url + "/")).read()
        assert await server.wait_closed(1, CLOSE_SOON)
        await (await client.request("GET", server.url + "/")).read()
        await client.aclose()
    assert server.connections == 2


async def test_server_closing_an_idle_connection_is_noticed(client: HTTPClient) -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, number: int) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")  # keep-alive, then closed

    async with RawServer(script) as server:
        for _ in range(3):
            resp = await client.request("GET", server.url + "/")
            assert await resp.read() == b"ok"
            await asyncio.sleep(0.05)
    assert server.connections == 3


async def test_cancelled_waiters_leak_no_slot() -> None:
    client = HTTPClient(max_connections=1)
    release = asyncio.Event()

    async def handler(rec: Received) -> Reply:
        if rec.body == b"hold":
            await release.wait()
        return Reply(body=rec.body)

    async with H11Server(handler) as server:
        holder = await client.request("POST", server.url + "/", body=b"x")
        await holder.read()
        first = asyncio.create_task(client.request("POST", server.url + "/", body=b"hold"))
        await asyncio.sleep(0.05)
        waiting = [asyncio.create_task(client.request("GET", server.url + "/")) for _ in range(5)]
        await asyncio.sleep(0.05)
        for task in waiting:
            task.cancel()
        await asyncio.gather(*waiting, return_exceptions=True)
        release.set()
        assert await (await first).read() == b"hold"
        for _ in range(3):
            resp = await asyncio.wait_for(client.request("POST", server.url + "/", body=b"y"), 5)
            assert await resp.read() == b"y"
        await client.aclose()
    assert server.connections == 1


# ---- early closes -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("answer", "words"),
    [
        (b"", "closed the connection before answering"),
        (b"HTTP/1.1 200 OK\r\ncontent-le", "before the response headers ended"),
    ],
)
async def test_close_before_the_headers(client: HTTPClient, answer: bytes, words: str) -> None:
    async with raw(answer) as server:
        with pytest.raises(ConnectionBroken, match=words) as info:
            await client.request("POST", server.url + "/", body=b"{}")
    assert not info.value.headers_received and not info.value.retryable
    assert server.connections == 1  # never sent twice


@pytest.mark.parametrize(
    "answer",
    [
        b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n0123456789",
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\na\r\n0123456789\r\n",
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\na\r\n0123456789\r\n5\r\nab",
    ],
)
async def test_close_mid_body_delivers_what_arrived(client: HTTPClient, answer: bytes) -> None:
    async with raw(answer) as server:
        resp = await client.request("GET", server.url + "/")
        assert resp.status == 200
        await asyncio.sleep(0.05)  # the close has arrived too
        got = b""
        with pytest.raises(ConnectionBroken, match="before the body ended") as info:
            while True:
                got += await resp.read_chunk()
        assert got.startswith(b"0123456789") and info.value.headers_received
        with pytest.raises(ConnectionBroken):
            await resp.read()
        resp = await client.request("GET", server.url + "/")
        with pytest.raises(ConnectionBroken):
            await resp.read()


async def test_request_that_reached_the_server_is_never_sent_twice(client: HTTPClient) -> None:
    seen: list[bytes] = []

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, number: int) -> None:
        seen.append(await read_request(reader))
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
        seen.append(await read_request(reader))  # read the second request, then close (a FIN)

    async with RawServer(script) as server:
        assert await (await client.request("POST", server.url + "/", body=b"1")).read() == b"ok"
        with pytest.raises(ConnectionBroken, match="before answering") as info:
            await client.request("POST", server.url + "/", body=b"2")
    assert not info.value.retryable
    assert server.connections == 1 and len(seen) == 2


async def test_stale_connection_retried_once_when_the_request_was_refused(client: HTTPClient) -> None:
    processed: list[tuple[int, bytes]] = []

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, number: int) -> None:
        if number == 1:
            processed.append((number, await read_request(reader)))
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
            await reader.read(1)  # the next request arrives: refused unread, with a reset
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()
            return
        while True:
            processed.append((number, await read_request(reader)))
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nfresh")

    async with RawServer(script) as server:
        assert await (await client.request("POST", server.url + "/", body=b"1")).read() == b"ok"
        resp = await client.request("POST", server.url + "/", body=b"2")
        assert await resp.read() == b"fresh"
    assert [n for n, _ in processed] == [1, 2]  # the second request processed once, on a fresh one
    assert processed[1][1].endswith(b"2")


async def test_a_fresh_connection_is_never_retried(client: HTTPClient) -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, number: int) -> None:
        await reader.read(1)
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()

    async with RawServer(script) as server:
        with pytest.raises(ConnectionBroken):
            await client.request("POST", server.url + "/", body=b"x")
    assert server.connections == 1


# ---- malformed answers --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "answer",
    [
        b"HTTP/1.1 abc OK\r\ncontent-length: 0\r\n\r\n",
        b"garbage\r\n\r\n",
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-length: 3\r\n\r\nabc",
        b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n",
        b"HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: upgrade\r\n\r\n",
    ],
    ids=["status", "garbage", "chunk-size", "two-lengths", "length-and-chunked", "upgrade"],
)
async def test_malformed_answers_are_protocol_errors(client: HTTPClient, answer: bytes) -> None:
    async with raw(answer, close=False) as server:
        with pytest.raises(ProtocolError, match="malformed HTTP response"):
            resp = await client.request("GET", server.url + "/")
            await resp.read()
        assert await server.wait_closed(1, CLOSE_SOON)


async def test_answer_nobody_asked_for_ends_the_connection(client: HTTPClient) -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, number: int) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nno")
        await reader.read()

    async with RawServer(script) as server:
        assert await (await client.request("GET", server.url + "/")).read() == b"ok"
        assert await server.wait_closed(1, CLOSE_SOON)


# ---- timeouts -----------------------------------------------------------------------------------


@pytest.fixture()
def unanswered_port() -> Iterator[int]:
    """A loopback port whose TCP handshake never completes (a full backlog never accepted)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port: int = listener.getsockname()[1]
    fillers = []
    for _ in range(3):
        filler = socket.socket()
        filler.setblocking(False)
        filler.connect_ex(("127.0.0.1", port))
        fillers.append(filler)
    yield port
    for s in [*fillers, listener]:
        s.close()


async def test_connect_timeout(unanswered_port: int) -> None:
    client = HTTPClient(connect_timeout=5)
    with pytest.raises(ConnectTimeout, match=r"^no connection within 0.2 s$"):
        await client.request("GET", f"http://127.0.0.1:{unanswered_port}/", connect_timeout=0.2)
    await client.aclose()


async def test_connect_refused(client: HTTPClient) -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    with pytest.raises(ConnectFailed, match=f"cannot connect to 127.0.0.1:{port}"):
        await client.request("GET", f"http://127.0.0.1:{port}/")


async def test_first_byte_timeout() -> None:
    client = HTTPClient(first_byte_timeout=0.1, read_timeout=10)
    async with H11Server(lambda rec: Reply(hang=True)) as server:
        with pytest.raises(ResponseTimeout, match="no response headers within 0.1 s") as info:
            await client.request("GET", server.url + "/")
        assert info.value.phase == "first_byte"
        assert await server.wait_closed(1, CLOSE_SOON)
    await client.aclose()


async def test_read_timeout_waits_for_headers_too() -> None:
    client = HTTPClient(read_timeout=0.1)
    async with H11Server(lambda rec: Reply(hang=True)) as server:
        with pytest.raises(ResponseTimeout) as info:
            await client.request("GET", server.url + "/")
        assert info.value.phase == "read"
    await client.aclose()


async def test_read_timeout_mid_body() -> None:
    client = HTTPClient(read_timeout=0.1)
    async with H11Server(lambda rec: Reply(body=[b"a", b"b", b"c"], hang_after=1)) as server:
        resp = await client.request("GET", server.url + "/")
        assert await resp.read_chunk() == b"a"
        with pytest.raises(ResponseTimeout, match="no data within 0.1 s"):
            await resp.read_chunk()
        assert await server.wait_closed(1, CLOSE_SOON)
    await client.aclose()


async def test_total_timeout() -> None:
    client = HTTPClient(read_timeout=10, total_timeout=0.3)
    async with H11Server(lambda rec: Reply(body=[b"x"] * 100, gap=0.02)) as server:
        resp = await client.request("GET", server.url + "/")
        with pytest.raises(ResponseTimeout, match="no complete response within 0.3 s") as info:
            await resp.read()
        assert info.value.phase == "total"
        assert await server.wait_closed(1, CLOSE_SOON)
    await client.aclose()


async def test_read_chunk_survives_a_callers_timeout(client: HTTPClient) -> None:
    async with H11Server(lambda rec: Reply(body=[b"a", b"b"], gap=0.2)) as server:
        resp = await client.request("GET", server.url + "/")
        assert await resp.read_chunk() == b"a"
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.02):  # a ping timer, say
                await resp.read_chunk()
        assert await resp.read_chunk() == b"b"
        assert await resp.read_chunk() == b"" and resp.at_eof
        assert server.connections == 1 and 1 not in server.closed


# ---- cancellation: the upstream sees its connection end at once ------------------------------------


async def test_cancel_waiting_for_headers(client: HTTPClient) -> None:
    async with H11Server(lambda rec: Reply(hang=rec.method == "POST")) as server:
        task = asyncio.create_task(client.request("POST", server.url + "/", body=b"{}"))
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert await server.wait_closed(1, CLOSE_SOON)
        resp = await client.request("GET", server.url + "/", headers={"x": "after"})
        resp.close()
    assert len(server.requests) == 2


async def test_cancel_mid_body(client: HTTPClient) -> None:
    async with H11Server(lambda rec: Reply(body=[b"a", b"b"], hang_after=1)) as server:
        resp = await client.request("GET", server.url + "/")
        async for chunk in resp.chunks():
            assert chunk == b"a"
            break  # leaving the loop early closes the response
        assert await server.wait_closed(1, CLOSE_SOON)
        resp = await client.request("GET", server.url + "/")
        task = asyncio.create_task(resp.read())
        await asyncio.sleep(0.05)
        task.cancel()
        assert await server.wait_closed(2, CLOSE_SOON)
        resp = await client.request("GET", server.url + "/")
        assert await resp.read_chunk() == b"a"
        resp.close()
        assert await server.wait_closed(3, CLOSE_SOON)


async def test_cancel_while_sending(client: HTTPClient) -> None:
    stuck = asyncio.Event()

    async def body() -> AsyncIterator[bytes]:
        yield b"start"
        await stuck.wait()
        yield b"never"

    async with H11Server() as server:
        task = asyncio.create_task(client.request("POST", server.url + "/", body=body()))
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert await server.wait_closed(1, CLOSE_SOON)


async def test_cancel_during_the_tls_handshake(client: HTTPClient) -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, number: int) -> None:
        await reader.read()  # a ClientHello never answered

    async with RawServer(script) as server:
        url = f"https://127.0.0.1:{server.port}/"
        task = asyncio.create_task(client.request("GET", url))
        await asyncio.sleep(0.1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert await server.wait_closed(1, CLOSE_SOON)


async def test_cancel_in_the_proxy_tunnel(client: HTTPClient) -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, number: int) -> None:
        await reader.read()  # a proxy that never answers CONNECT

    async with RawServer(script) as proxy:
        tunneled = HTTPClient(proxy=proxy.url)
        task = asyncio.create_task(tunneled.request("GET", "https://127.0.0.1:1/"))
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert await proxy.wait_closed(1, CLOSE_SOON)
        await tunneled.aclose()


# ---- flow control -------------------------------------------------------------------------------


async def test_slow_consumer_backpressures_the_upstream() -> None:
    client = HTTPClient(read_buffer=64 * 1024)
    chunk = b"z" * 65536
    count = 512  # 32 MiB offered
    async with H11Server(lambda rec: Reply(body=[chunk] * count)) as server:
        resp = await client.request("GET", server.url + "/")
        first = await resp.read_chunk()
        await asyncio.sleep(0.3)  # the consumer does not read: the server's writes block
        assert server.written < 16 * 1024 * 1024, server.written
        assert resp._size <= 64 * 1024 + 256 * 1024
        rest = await resp.read()
        assert len(first) + len(rest) == len(chunk) * count
        again = await client.request("GET", server.url + "/")  # reading resumed: reusable
        again.close()
        await client.aclose()
    assert server.connections == 1


# ---- TLS and proxies ----------------------------------------------------------------------------


async def test_tls_refused_without_the_ca_and_served_with_it(certs: Certs) -> None:
    async with H11Server(tls=certs.server_context()) as server:
        plain = HTTPClient()
        with pytest.raises(TLSFailed, match="certificate verification failed") as info:
            await plain.request("GET", server.url + "/")
        assert info.value.verify_message
        await plain.aclose()
        trusting = HTTPClient(ssl=_trust(certs.ca))
        for _ in range(3):
            resp = await trusting.request("GET", server.url + "/")
            assert await resp.read() == b'{"ok":true}'
        await trusting.aclose()
    assert server.connections == 1  # the refused handshake never reached h11; then one kept alive


async def test_tls_name_is_verified(certs: Certs) -> None:
    async with H11Server(tls=certs.server_context()) as server:
        client = HTTPClient(ssl=_trust(certs.ca))
        resp = await client.request("GET", f"https://localhost:{server.port}/")  # SAN DNS:localhost
        assert resp.status == 200
        await client.aclose()


async def test_https_through_a_connect_tunnel(certs: Certs) -> None:
    async with H11Server(tls=certs.server_context()) as server, ConnectProxy() as proxy:
        client = HTTPClient(ssl=_trust(certs.ca), proxy=proxy.url.replace("http://", "http://me:p%40ss@"))
        for _ in range(2):
            resp = await client.request("POST", server.url + "/v1/messages", body=b"{}")
            assert await resp.read() == b'{"ok":true}'
        await client.aclose()
    ((request,),) = [proxy.requests]  # one tunnel, kept alive
    assert (request.method, request.target) == ("CONNECT", f"127.0.0.1:{server.port}")
    assert request.headers["proxy-authorization"] == "Basic " + base64.b64encode(b"me:p@ss").decode()
    assert all(rec.header("proxy-authorization") is None for rec in server.requests)
    assert server.requests[0].target == "/v1/messages"


async def test_http_through_a_proxy_is_absolute_form() -> None:
    async with H11Server() as server, ConnectProxy() as proxy:
        client = HTTPClient(proxy=proxy.url.replace("http://", "http://me:secret@"))
        resp = await client.request("GET", server.url + "/v1/models?limit=2")
        assert resp.status == 200
        await resp.read()
        await client.aclose()
    ((request,),) = [proxy.requests]
    assert request.target == f"{server.url}/v1/models?limit=2"
    assert request.headers["proxy-authorization"] == "Basic " + base64.b64encode(b"me:secret").decode()


async def test_proxy_refusing_the_tunnel() -> None:
    async with ConnectProxy() as proxy:
        client = HTTPClient(proxy=proxy.url)
        with pytest.raises(ProxyRefused, match="the proxy answered HTTP 403 Forbidden") as info:
            await client.request("GET", "https://localhost:9/")  # it only tunnels to 127.0.0.1
        assert info.value.status_code == 403
        await client.aclose()


def _trust(ca: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(ca))
