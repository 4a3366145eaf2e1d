"""The bundled client's Message Batches (``client.messages.batches``) over a real socket: the same
JSON objects and results lines as the HTTP door, errors as ``SidecarAPIError``, sync and async.
(Its Messages API is tested with the gRPC door, tests/grpc/test_service.py.)"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest

from sidecar.client import AsyncClient, Client, SidecarAPIError
from tests.inprocess import ThreadedSidecar

MOCK = """
upstreams:
  m: {provider: mock}
routes:
  - {match: "*", upstream: m}
"""


def entry(custom_id: str, text: str = "hello") -> dict[str, Any]:
    return {
        "custom_id": custom_id,
        "params": {
            "model": "claude-sonnet-4-6",
            "max_tokens": 30,
            "messages": [{"role": "user", "content": text}],
        },
    }


@pytest.fixture(scope="module")
def sidecar(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThreadedSidecar]:
    tmp = tmp_path_factory.mktemp("client-batches")
    path = tmp / "sidecar.yaml"
    path.write_text(MOCK + f"batches: {{dir: '{tmp / 'state'}', poll_interval: 0.02, concurrency: 2}}\n")
    sc = ThreadedSidecar("--config", str(path))
    yield sc
    sc.stop()


@pytest.fixture()
def client(sidecar: ThreadedSidecar) -> Iterator[Client]:
    with Client(sidecar.grpc_target, api_key="k") as c:
        yield c


def http(sidecar: ThreadedSidecar, path: str) -> httpx.Response:
    return httpx.get(f"{sidecar.http_url}/v1/messages/batches{path}", headers={"x-api-key": "k"}, timeout=10)


def wait_ended(client: Client, batch_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        batch = client.messages.batches.retrieve(batch_id)
        if batch["processing_status"] == "ended":
            return batch
        time.sleep(0.05)
    raise AssertionError(f"batch {batch_id} did not end")


def test_create_retrieve_results_as_the_http_door(client: Client, sidecar: ThreadedSidecar) -> None:
    batches = client.messages.batches
    created = batches.create(requests=[entry("a", "[mock echo] one two"), entry("b")])
    assert created["id"].startswith("msgbatch_") and created["processing_status"] == "in_progress"
    assert created["results_url"] is None
    batch = wait_ended(client, created["id"])
    assert batch == http(sidecar, f"/{batch['id']}").json()
    assert batch["request_counts"]["succeeded"] == 2
    results = list(batches.results(batch["id"]))
    over_http = http(sidecar, f"/{batch['id']}/results")
    assert results == [json.loads(line) for line in over_http.text.splitlines()]
    by_id = {r["custom_id"]: r["result"] for r in results}
    assert by_id["a"]["type"] == "succeeded"
    assert by_id["a"]["message"]["content"][0]["text"] == "one two"


def test_list_pages(client: Client) -> None:
    batches = client.messages.batches
    ids = [batches.create(requests=[entry("x")])["id"] for _ in range(3)]
    first = batches.list(limit=2)
    assert [b["id"] for b in first["data"]] == ids[:0:-1] and first["has_more"]
    rest = batches.list(limit=2, after_id=first["last_id"])
    assert rest["data"][0]["id"] == ids[0]
    assert [b["id"] for b in batches.list(before_id=ids[0])["data"]] == ids[:0:-1]
    with pytest.raises(SidecarAPIError) as info:
        batches.list(limit=0)
    assert info.value.code == grpc.StatusCode.INVALID_ARGUMENT and info.value.message.startswith("limit:")


def test_cancel_then_delete_and_errors(client: Client) -> None:
    batches = client.messages.batches
    created = batches.create(requests=[entry(f"s{i}", "[mock ttft_ms=300] slow") for i in range(6)])
    # Running: no results yet, and no delete; each refusal carries the Anthropic error.
    with pytest.raises(SidecarAPIError) as info:
        list(batches.results(created["id"]))
    assert info.value.code == grpc.StatusCode.INVALID_ARGUMENT and "has not ended" in info.value.message
    with pytest.raises(SidecarAPIError) as info:
        batches.delete(created["id"])
    error = info.value
    assert (error.code, error.type) == (grpc.StatusCode.INVALID_ARGUMENT, "invalid_request_error")
    assert error.request_id and error.request_id.startswith("req_")
    canceling = batches.cancel(created["id"])
    assert canceling["processing_status"] == "canceling" and canceling["cancel_initiated_at"]
    counts = wait_ended(client, created["id"])["request_counts"]
    kinds = sorted(r["result"]["type"] for r in batches.results(created["id"]))
    assert kinds == sorted(["succeeded"] * counts["succeeded"] + ["canceled"] * counts["canceled"])
    assert batches.delete(created["id"]) == {"id": created["id"], "type": "message_batch_deleted"}
    with pytest.raises(SidecarAPIError) as info:
        batches.retrieve(created["id"])
    assert (info.value.code, info.value.type) == (grpc.StatusCode.NOT_FOUND, "not_found_error")
    with pytest.raises(SidecarAPIError) as info:
        batches.create(requests=[entry("a"), entry("a")])
    assert "requests.1.custom_id" in info.value.message
    with pytest.raises(TypeError, match="'limt'"):
        batches.retrieve(created["id"], limt=1)


def test_request_options_travel_as_metadata(tmp_path: Path) -> None:
    # With client keys, the key decides the owner: extra_headers replaces the client's key.
    sha = {k: hashlib.sha256(k.encode()).hexdigest() for k in ("sk-a", "sk-b")}
    path = tmp_path / "sidecar.yaml"
    path.write_text(
        MOCK
        + f"batches: {{dir: '{tmp_path / 'state'}', poll_interval: 0.02}}\n"
        + "admission:\n  tiers: {all: {}}\n  keys:\n"
        + "".join(f"    - {{name: {k[-1]}, sha256: {v}, tier: all}}\n" for k, v in sha.items())
    )
    sc = ThreadedSidecar("--config", str(path))
    try:
        with Client(sc.grpc_target, api_key="sk-a") as c:
            created = c.messages.batches.create(requests=[entry("a")])
            assert c.messages.batches.list()["data"][0]["id"] == created["id"]
            other = {"x-api-key": "sk-b"}
            assert c.messages.batches.list(extra_headers=other)["data"] == []
            with pytest.raises(SidecarAPIError) as info:
                c.messages.batches.retrieve(created["id"], extra_headers=other)
            assert info.value.code == grpc.StatusCode.NOT_FOUND
    finally:
        sc.stop()


async def test_async_client(sidecar: ThreadedSidecar) -> None:
    async with AsyncClient(sidecar.grpc_target, api_key="k") as c:
        batches = c.messages.batches
        created = await batches.create(requests=[entry("a", "[mock echo] async"), entry("b")])
        batch = created
        deadline = time.monotonic() + 20
        while batch["processing_status"] != "ended" and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
            batch = await batches.retrieve(created["id"])
        assert batch["results_url"] == f"{sidecar.http_url}/v1/messages/batches/{batch['id']}/results"
        listed = await batches.list(limit=1)
        assert listed["data"] == [batch]
        results = [r async for r in batches.results(batch["id"])]
        assert sorted(r["custom_id"] for r in results) == ["a", "b"]
        assert all(r["result"]["type"] == "succeeded" for r in results)
        with pytest.raises(SidecarAPIError) as info:
            await batches.cancel("msgbatch_unknown")
        assert info.value.code == grpc.StatusCode.NOT_FOUND
        with pytest.raises(SidecarAPIError) as info:
            [r async for r in batches.results("../x")]
        assert info.value.code == grpc.StatusCode.INVALID_ARGUMENT
        assert await batches.delete(batch["id"]) == {"id": batch["id"], "type": "message_batch_deleted"}
