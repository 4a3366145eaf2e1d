"""``sidecar.upstreams.session``: both clients (``client: native``, the default, and
``client: aiohttp``) behind one response interface, and their failures named for the upstream
with the messages the adapters and the README promise. The adapters through the sidecar are
tested in test_anthropic.py / test_connection.py (on the default client)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest

from sidecar.config.model import AnthropicUpstreamConfig, Timeouts
from sidecar.core import Call, Target
from sidecar.errors import Timeout, UpstreamConnectError, UpstreamError
from sidecar.upstreams.anthropic import AnthropicUpstream
from sidecar.upstreams.session import ConnectionBroken, ResponseTimeout, UpstreamSession
from tests.fakes.tls import Certs, make_certs
from tests.http1.peers import H11Server, RawServer, Reply, read_request

CLIENTS = ["native", "aiohttp"]
BODY = {"model": "m", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}


def session(url: str, client: str, **timeouts: Any) -> UpstreamSession:
    config = AnthropicUpstreamConfig(
        base_url=url,
        client=client,  # type: ignore[arg-type]
        timeouts=Timeouts(**{"connect": 2.0, "read": 5.0, **timeouts}),
    )
    return UpstreamSession("u", config, url)


@pytest.fixture(params=CLIENTS)
def client(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    return make_certs(tmp_path_factory.mktemp("pki"))


async def test_one_interface(client: str) -> None:
    reply = Reply(
        headers=[("Content-Type", "text/plain"), ("X-Two", "1"), ("x-two", "2")], body=[b"ab", b"cd"]
    )
    async with H11Server(lambda rec: reply) as server:
        http = session(server.url, client)
        resp = await http.request("POST", server.url + "/v1/x", headers={"x-api-key": "k"}, data=b"{}")
        assert resp.status == 200
        assert resp.headers.get("content-type") == "text/plain"
        assert resp.headers.getall("x-two") == ["1", "2"]
        assert await resp.read(3) == b"abc"
        assert await resp.read() == b"d" and resp.at_eof
        resp.release()
        resp = await http.request("GET", server.url + "/", headers={})
        assert b"".join([chunk async for chunk in resp.chunks()]) == b"abcd"
        async with await http.request("GET", server.url + "/", headers={}) as resp:
            assert await resp.read_chunk()
        await http.aclose()
    assert server.requests[0].header("x-api-key") == "k" and server.requests[0].body == b"{}"


async def test_a_body_given_in_pieces_goes_chunked_as_they_come(client: str) -> None:
    sent: list[int] = []

    async def pieces() -> AsyncIterator[bytes]:
        for i in range(3):
            sent.append(i)
            yield b'{"piece":%d}' % i

    async with H11Server(lambda rec: Reply(body=b"{}")) as server:
        http = session(server.url, client)
        resp = await http.request("POST", server.url + "/v1/messages/batches", headers={}, data=pieces())
        assert resp.status == 200 and await resp.read() == b"{}"
        resp.release()
        await http.aclose()
    assert sent == [0, 1, 2]
    assert server.requests[0].header("transfer-encoding") == "chunked"
    assert server.requests[0].body == b'{"piece":0}{"piece":1}{"piece":2}'


async def test_pieces_with_their_length_go_as_a_content_length_body(client: str) -> None:
    """An upload relayed as it arrives keeps the client's content-length (the upstream sees
    the request as the client sent it, not re-framed as chunked)."""

    async def pieces() -> AsyncIterator[bytes]:
        for i in range(3):
            yield b"%d" % i * 1000

    async with H11Server(lambda rec: Reply(body=b"{}")) as server:
        http = session(server.url, client)
        resp = await http.request("POST", server.url + "/v1/files", headers={}, data=pieces(), length=3000)
        assert resp.status == 200 and await resp.read() == b"{}"
        resp.release()
        await http.aclose()
    request = server.requests[0]
    assert request.header("content-length") == "3000" and request.header("transfer-encoding") is None
    assert request.body == b"0" * 1000 + b"1" * 1000 + b"2" * 1000


async def test_a_break_mid_body_delivers_what_arrived_first(client: str) -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, number: int) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nfirst bytes")
        await writer.drain()
        await asyncio.sleep(0.05)

    async with RawServer(script) as server:
        http = session(server.url, client)
        resp = await http.request("GET", server.url + "/", headers={})
        await asyncio.sleep(0.1)
        got = b""
        with pytest.raises(ConnectionBroken):
            while True:
                got += await resp.read_chunk()
        assert got == b"first bytes"
        await http.aclose()


async def test_silence_mid_body_is_a_response_timeout(client: str) -> None:
    async with H11Server(lambda rec: Reply(body=[b"a", b"b"], hang_after=1)) as server:
        http = session(server.url, client, read=0.2)
        resp = await http.request("GET", server.url + "/", headers={})
        assert await resp.read_chunk() == b"a"
        with pytest.raises(ResponseTimeout):
            await resp.read_chunk()
        await http.aclose()


async def test_unreachable_and_unanswered(client: str) -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    sock.close()
    http = session(url, client)
    with pytest.raises(UpstreamConnectError, match="^upstream 'u' unreachable: "):
        await http.request("GET", url + "/", headers={})
    await http.aclose()
    async with H11Server(lambda rec: Reply(hang=True)) as server:
        http = session(server.url, client, read=0.2)
        with pytest.raises(Timeout, match="^upstream 'u' did not answer in time$"):
            await http.request("GET", server.url + "/", headers={})
        await http.aclose()


async def test_closed_before_answering(client: str) -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, number: int) -> None:
        await read_request(reader)

    async with RawServer(script) as server:
        http = session(server.url, client)
        with pytest.raises(UpstreamConnectError, match="^upstream 'u' "):
            await http.request("POST", server.url + "/", headers={}, data=b"{}")
        await http.aclose()
    assert server.connections == 1


async def test_certificate_refused_message(client: str, certs: Certs) -> None:
    async with H11Server(tls=certs.server_context()) as server:
        http = session(server.url, client)
        with pytest.raises(UpstreamConnectError) as info:
            await http.request("GET", server.url + "/", headers={})
        await http.aclose()
    message = info.value.message
    assert message.startswith("upstream 'u': TLS certificate verification failed: ")
    assert message.endswith("(an upstream with a private CA needs its ca_bundle)")


async def test_first_byte_and_total_timeouts() -> None:
    async with H11Server(lambda rec: Reply(hang=True)) as server:
        http = session(server.url, "native", first_byte=0.1, read=30)
        with pytest.raises(Timeout, match="^upstream 'u' did not answer in time$"):
            await http.request("GET", server.url + "/", headers={})
        await http.aclose()
    async with H11Server(lambda rec: Reply(body=[b"x"] * 50, gap=0.02)) as server:
        http = session(server.url, "native", total=0.2)
        resp = await http.request("GET", server.url + "/", headers={})
        with pytest.raises(ResponseTimeout) as info:
            await resp.read()
        assert (
            http.timeout(info.value, "went silent").message == "upstream 'u': no complete answer within 0.2 s"
        )
        await http.aclose()


async def test_anthropic_stream_cut_mid_event_on_both_clients(client: str) -> None:
    events = (
        b'event: message_start\ndata: {"type":"message_start","message":{"id":"m","type":"message",'
        b'"role":"assistant","model":"m","content":[],"stop_reason":null,"stop_sequence":null,'
        b'"usage":{"input_tokens":1,"output_tokens":0}}}\n\n'
        b'event: ping\ndata: {"type": "ping"}\n\nevent: content_block_st'
    )

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, number: int) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncontent-length: 10000\r\n\r\n")
        writer.write(events)
        await writer.drain()

    async with RawServer(script) as server:
        config = AnthropicUpstreamConfig(base_url=server.url, client=client)  # type: ignore[arg-type]
        upstream = AnthropicUpstream("u", config)
        call = Call(
            endpoint="messages",
            body=dict(BODY),
            raw=None,
            model="m",
            stream=True,
            request_id="r",
            door="http",
        )
        answer = await upstream.send(call, Target("u", "m"))
        assert answer.events is not None
        names: list[str] = []
        with pytest.raises(UpstreamError, match="closed the stream before it ended"):
            async for batch in _batches(answer.events.batches()):
                names += [e.name for e in batch]
        assert names == ["message_start", "ping"]
        await upstream.aclose()


async def _batches(source: AsyncIterator[Any]) -> AsyncIterator[Any]:
    async for batch in source:
        yield batch


def test_aiohttp_is_imported_only_by_an_upstream_that_chooses_it() -> None:
    """aiohttp and its dependencies are ~9 MB of resident memory: a sidecar on the native client
    must not load them (checked in a fresh interpreter; this one has them from other tests)."""
    import subprocess
    import sys

    probe = (
        "import sys\n"
        "from sidecar.config.load import build_config\n"
        "from sidecar.runtime import Runtime\n"
        "from sidecar.upstreams.session import UpstreamSession\n"
        "cfg = build_config({'upstreams': {'a': {'provider': 'anthropic', 'base_url': 'http://127.0.0.1:9',"
        " 'api_key': 'k'}}, 'routes': [{'match': '*', 'upstream': 'a'}]})\n"
        "UpstreamSession('a', cfg.upstreams['a'], 'http://127.0.0.1:9')\n"
        "assert 'aiohttp' not in sys.modules, 'aiohttp imported'\n"
        "aio = build_config({'upstreams': {'a': {'provider': 'anthropic', 'base_url': 'http://127.0.0.1:9',"
        " 'api_key': 'k', 'client': 'aiohttp'}}, 'routes': [{'match': '*', 'upstream': 'a'}]})\n"
        "UpstreamSession('a', aio.upstreams['a'], 'http://127.0.0.1:9')\n"
        "assert 'aiohttp' in sys.modules\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
