"""Other /v1/ endpoints relayed by the HTTP door: small bodies read whole, large ones (an upload
to the upstream's Files API, up to 500 MB) relayed as they arrive with the client's length."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable

import pytest

from sidecar.core import Answer, ForwardRequest
from sidecar.upstreams.handler import HandlerUpstream
from tests.inprocess import message_answer, running

CONFIG = {"upstreams": {"a": {"provider": "mock"}}, "routes": [{"match": "*", "upstream": "a"}]}


async def _post(port: int, body_parts: list[bytes], length: int) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        b"POST /v1/files HTTP/1.1\r\nhost: x\r\nx-api-key: k\r\ncontent-type: application/octet-stream\r\n"
        b"content-length: %d\r\n\r\n" % length
    )
    for part in body_parts:
        writer.write(part)
        await writer.drain()
        await asyncio.sleep(0.01)
    data = await reader.read(65536)
    writer.close()
    return data


@pytest.mark.parametrize("server", ["native", "uvicorn"])
async def test_a_large_body_reaches_the_upstream_in_pieces_with_its_length(server: str) -> None:
    """On both servers, the body arrives whole and in order (under uvicorn the app's disconnect
    watcher must not read ``receive`` while the body streams: ``_race(reads_body=True)``)."""
    seen: list[tuple[str, int | None, int, int]] = []

    async def forward(request: ForwardRequest) -> Answer:
        body = request.body
        if isinstance(body, AsyncIterable):
            pieces = [piece async for piece in body]
            assert b"".join(pieces) == b"".join(big)
            seen.append(("stream", request.length, len(pieces), sum(map(len, pieces))))
        else:
            seen.append(("whole", request.length, 1, len(body)))
        return Answer(raw=b'{"id": "file_1"}', headers=[("content-type", "application/json")])

    big = [bytes([65 + i]) * 600_000 for i in range(4)]

    upstream = HandlerUpstream("a", message_answer, forward=forward)
    async with running(CONFIG, server=server, a=upstream) as runtime:
        port = runtime.http_port
        assert b" 200 " in await _post(port, big, 2_400_000)
        assert b" 200 " in await _post(port, [b"y" * 1000], 1000)
    assert seen[0][0] == "stream" and seen[0][1] == 2_400_000 and seen[0][3] == 2_400_000
    assert seen[0][2] > 1  # it came as it arrived, not as one buffer
    assert seen[1] == ("whole", None, 1, 1000)
