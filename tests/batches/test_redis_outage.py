"""A Redis that stops answering (``batches.store: redis``, so file metadata is there too): every
batch call, every Files call and a message that references a file is a 503 ``overloaded_error``
in the Anthropic envelope with ``retry-after: 1`` on the HTTP door (the official SDK raises its
ServiceUnavailableError, which it retries), and a Batches call is UNAVAILABLE with the same error
in the trailers on the gRPC door: never a 500. Once Redis is back, calls work again. The sidecar
runs in this process (``tests.inprocess.running``); its Redis is a real redis-server that the test
stops, or a port with nothing listening."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anthropic
import grpc
import pytest

from sidecar.messages.v1 import batches_pb2 as bpb
from sidecar.messages.v1 import batches_pb2_grpc as bpb_grpc
from sidecar.runtime import Runtime
from tests.admission.conftest import free_port, start_redis
from tests.conftest import stop_process
from tests.inprocess import running

KEY = (("x-api-key", "k"), ("anthropic-version", "2023-06-01"))
ENTRY: Any = {
    "custom_id": "a",
    "params": {
        "model": "claude-sonnet-4-6",
        "max_tokens": 10,
        "messages": [{"role": "user", "content": "hi"}],
    },
}


def on_disk(tmp: Path) -> list[str]:
    folder = tmp / "state" / "files"
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


@asynccontextmanager
async def sidecar(url: str, tmp: Path) -> AsyncIterator[tuple[Runtime, anthropic.AsyncAnthropic]]:
    config = {
        "upstreams": {"m": {"provider": "mock"}},
        "routes": [{"match": "*", "upstream": "m"}],
        "batches": {
            "dir": str(tmp / "state"),
            "store": {"kind": "redis", "url": url, "key_prefix": f"outage:{uuid.uuid4().hex}:", "timeout": 2},
        },
    }
    async with running(config) as runtime:
        client = anthropic.AsyncAnthropic(
            base_url=f"http://127.0.0.1:{runtime.http_port}", api_key="k", max_retries=0
        )
        async with client:
            yield runtime, client


async def assert_unavailable_over_http(client: anthropic.AsyncAnthropic) -> None:
    document: Any = {"type": "document", "source": {"type": "file", "file_id": "file_x"}}
    calls: dict[str, tuple[str, Callable[[], Awaitable[object]]]] = {
        "batches.create": ("batch", lambda: client.messages.batches.create(requests=[ENTRY])),
        "batches.list": ("batch", lambda: client.messages.batches.list()),
        "batches.retrieve": ("batch", lambda: client.messages.batches.retrieve("msgbatch_x")),
        "batches.cancel": ("batch", lambda: client.messages.batches.cancel("msgbatch_x")),
        "batches.delete": ("batch", lambda: client.messages.batches.delete("msgbatch_x")),
        "files.upload": ("file", lambda: client.files.upload(file=("a.txt", b"hi", "text/plain"))),
        "files.list": ("file", lambda: client.files.list()),
        "files.retrieve_metadata": ("file", lambda: client.files.retrieve_metadata("file_x")),
        "files.delete": ("file", lambda: client.files.delete("file_x")),
        "messages.create": (
            "file",
            lambda: client.messages.create(
                model="claude-sonnet-4-6", max_tokens=5, messages=[{"role": "user", "content": [document]}]
            ),
        ),
    }
    for name, (store, call) in calls.items():
        with pytest.raises(anthropic.ServiceUnavailableError) as info:
            await call()
        err = info.value
        envelope = err.response.json()
        assert err.status_code == 503 and envelope["type"] == "error", name
        assert envelope["error"]["type"] == "overloaded_error", name
        assert f"the {store} store (Redis)" in envelope["error"]["message"], name
        assert envelope["request_id"] == err.request_id and err.request_id, name
        assert err.response.headers["retry-after"] == "1", name


async def assert_unavailable_over_grpc(runtime: Runtime) -> None:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{runtime.grpc_port}") as channel:
        stub = bpb_grpc.BatchesStub(channel)
        calls = {
            "ListBatches": lambda: stub.ListBatches(bpb.ListBatchesRequest(), metadata=KEY),
            "GetBatch": lambda: stub.GetBatch(bpb.GetBatchRequest(batch_id="msgbatch_x"), metadata=KEY),
        }
        for name, call in calls.items():
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await call()
            err = info.value
            trailers = dict(err.trailing_metadata() or ())
            assert err.code() == grpc.StatusCode.UNAVAILABLE, name
            assert trailers["anthropic-error-type"] == "overloaded_error", name
            assert trailers["retry-after"] == "1", name
            assert "the batch store (Redis)" in (err.details() or ""), name


async def test_a_stopped_redis_is_503_over_http_and_unavailable_over_grpc_until_it_is_back(
    tmp_path: Path,
) -> None:
    server = start_redis()
    try:
        async with sidecar(server.url, tmp_path) as (runtime, client):
            created = await client.messages.batches.create(requests=[ENTRY])
            assert (await client.messages.batches.retrieve(created.id)).id == created.id
            uploaded = await client.files.upload(file=("a.txt", b"hi", "text/plain"))
            assert (await client.files.retrieve_metadata(uploaded.id)).id == uploaded.id
            stop_process(server.proc, 5)  # the connection in use breaks; new ones are refused
            await assert_unavailable_over_http(client)
            await assert_unavailable_over_grpc(runtime)
            # The upload refused meanwhile left nothing on disk.
            assert on_disk(tmp_path) == [uploaded.id]
            # Back (empty: it kept nothing), on the same port: the next calls connect again.
            server = start_redis(server.port)
            assert [b.id async for b in client.messages.batches.list()] == []
            assert [f.id async for f in client.files.list()] == []
    finally:
        stop_process(server.proc, 5)


async def test_a_redis_that_was_never_there_is_503_too(tmp_path: Path) -> None:
    async with sidecar(f"redis://127.0.0.1:{free_port()}/0", tmp_path) as (runtime, client):
        await assert_unavailable_over_http(client)
        await assert_unavailable_over_grpc(runtime)
        assert on_disk(tmp_path) == []
