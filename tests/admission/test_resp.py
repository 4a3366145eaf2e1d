"""The limiter's Redis client: RESP parsing (whole and in pieces), and against a real redis-server:
pipelining, NOSCRIPT, databases, passwords, a hung server and a restart; what a store's client is
told of each way a call fails (``unavailable``)."""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
from collections.abc import Iterator

import pytest

from sidecar.admission.resp import RespClient, RespError, Script, encode_command, parse_reply, unavailable
from sidecar.errors import Unavailable

from .conftest import RedisServer, _wait_listening, free_port


def test_encode_command() -> None:
    assert encode_command(("EVALSHA", "ab", 1, "k", 2.5, b"\xff")) == (
        b"*6\r\n$7\r\nEVALSHA\r\n$2\r\nab\r\n$1\r\n1\r\n$1\r\nk\r\n$3\r\n2.5\r\n$1\r\n\xff\r\n"
    )


def test_parse_every_reply_type_and_every_split() -> None:
    wire = b"*5\r\n$3\r\nab\xc3\r\n:-7\r\n+OK\r\n$-1\r\n*2\r\n$0\r\n\r\n*0\r\n-NOSCRIPT no script\r\n"
    value, end = parse_reply(wire, 0)
    assert value == ["ab\ufffd", -7, "OK", None, ["", []]]
    error, after = parse_reply(wire, end)
    assert isinstance(error, RespError) and str(error) == "NOSCRIPT no script" and after == len(wire)
    # Any prefix is incomplete and consumes nothing.
    for cut in range(end):
        partial, pos = parse_reply(wire[:cut], 0)
        assert pos == 0 and not isinstance(partial, list)


@pytest.fixture
def silent_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield sock.getsockname()[1]


async def test_pipelined_calls_get_their_own_replies(redis_server: RedisServer) -> None:
    client = RespClient(redis_server.url)
    try:
        replies = await asyncio.gather(*(client.call("ECHO", f"m{i}") for i in range(200)))
        assert replies == [f"m{i}" for i in range(200)]
        with pytest.raises(RespError, match="unknown command"):
            await client.call("NOSUCHCOMMAND")
        assert await client.call("PING") == "PONG"  # the connection survives an error reply
    finally:
        await client.aclose()


async def test_evalsha_loads_an_unknown_script(redis_server: RedisServer) -> None:
    client = RespClient(redis_server.url)
    script = Script("return {KEYS[1], ARGV[1], tonumber(ARGV[2]) + 1}")
    try:
        await client.call("SCRIPT", "FLUSH")
        assert await client.evalsha(script, ["k"], ["v", 41]) == ["k", "v", 42]
        assert await client.call("SCRIPT", "EXISTS", script.sha) == [1]
    finally:
        await client.aclose()


async def test_database_from_the_url(redis_server: RedisServer) -> None:
    three, zero = RespClient(redis_server.url.replace("/0", "/3")), RespClient(redis_server.url)
    try:
        await three.call("SET", "resp-db-test", "x")
        assert await three.call("GET", "resp-db-test") == "x"
        assert await zero.call("GET", "resp-db-test") is None
    finally:
        await three.aclose()
        await zero.aclose()


async def test_password_from_the_url() -> None:
    binary = shutil.which("redis-server")
    assert binary is not None
    port = free_port()
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--requirepass", "s3cret"],
        stdout=subprocess.DEVNULL,
    )
    try:
        good = RespClient(f"redis://:s3cret@127.0.0.1:{port}/0")
        for _ in range(100):  # until the server listens
            try:
                assert await good.call("PING") == "PONG"
                break
            except OSError:
                await asyncio.sleep(0.05)
        else:
            pytest.fail("redis-server --requirepass did not start")
        await good.aclose()
        bad = RespClient(f"redis://:wrong@127.0.0.1:{port}/0")
        with pytest.raises(ConnectionError, match="refused the connection setup"):
            await bad.call("PING")
        await bad.aclose()
    finally:
        proc.terminate()
        proc.wait(5)


async def test_a_timeout_drops_the_connection_and_never_hangs(silent_port: int) -> None:
    client = RespClient(f"redis://127.0.0.1:{silent_port}/0")
    try:
        for _ in range(2):
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.1):
                    await client.call("PING")
    finally:
        await client.aclose()


async def test_reconnects_after_a_restart() -> None:
    binary = shutil.which("redis-server")
    assert binary is not None
    port = free_port()
    args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL)
    client = RespClient(f"redis://127.0.0.1:{port}/0")
    try:
        _wait_listening(port, proc)
        assert await client.call("PING") == "PONG"
        proc.terminate()
        proc.wait(5)
        with pytest.raises(ConnectionError):
            await client.call("PING")
        proc = subprocess.Popen(args, stdout=subprocess.DEVNULL)
        _wait_listening(port, proc)
        assert await client.call("PING") == "PONG"
    finally:
        await client.aclose()
        proc.terminate()
        proc.wait(5)


@pytest.mark.parametrize(
    ("failure", "says"),
    [
        (TimeoutError(), "did not answer in time"),  # an OSError too: the most specific wins
        (ConnectionRefusedError(111, "refused"), "cannot be reached"),
        (ConnectionError("Redis closed the connection"), "cannot be reached"),
        (RespError("READONLY You can't write against a read only replica."), "answered with an error"),
    ],
)
def test_every_redis_failure_is_unavailable(failure: Exception, says: str) -> None:
    with pytest.raises(Unavailable) as info, unavailable("the batch store"):
        raise failure
    err = info.value
    assert err.status == 503 and err.error_type == "overloaded_error"
    assert err.grpc_code.name == "UNAVAILABLE" and err.headers == [("retry-after", "1")]
    assert err.message == f"the batch store (Redis) {says} ({type(failure).__name__}); retry shortly"
    assert err.__cause__ is failure
    assert "read only" not in err.message  # Redis's own words stay out of the answer


def test_anything_else_is_not_a_redis_failure() -> None:
    with pytest.raises(ValueError), unavailable("the batch store"):
        raise ValueError("a bug")


async def test_a_refused_connection_and_a_hung_server_are_unavailable(silent_port: int) -> None:
    for url in (f"redis://127.0.0.1:{free_port()}/0", f"redis://127.0.0.1:{silent_port}/0"):
        client = RespClient(url)
        try:
            with pytest.raises(Unavailable), unavailable("the file store"):
                async with asyncio.timeout(0.2):
                    await client.call("PING")
        finally:
            await client.aclose()
