"""A create read as it arrives (``sidecar.batches.create``), driven by the official SDK through a
sidecar in process: a bad entry late in a large batch, one that would be forwarded, and a client
that leaves mid-body all leave no batch behind (nothing listed, no entry or staging row in the
SQLite file, nothing sent upstream), as does a chunked body past the size limit; a batch whose first entries could be forwarded and whose
last cannot runs locally with every entry, in order."""

from __future__ import annotations

import asyncio
import json
import socket
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import pytest

from sidecar.batches import Batches
from sidecar.config.load import build_config
from sidecar.http.app import HttpApp
from sidecar.lifecycle import Lifecycle
from sidecar.pipeline import Pipeline
from tests.batches.test_sdk import MOCK, entry, start, wait_ended
from tests.conftest import wait_until
from tests.fakes.anthropic_api import FakeAnthropic
from tests.inprocess import asgi_client

N = 3000  # three staged pieces of 1,000 before the bad entry


def leftovers(state: Path) -> tuple[int, int]:
    """(entries rows without a batch, staging rows) in the sidecar's SQLite file."""
    db = state / "batches.sqlite3"
    if not db.exists():
        return 0, 0
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        (orphans,) = con.execute(
            "SELECT COUNT(*) FROM entries WHERE batch_id NOT IN (SELECT id FROM batches)"
        ).fetchone()
        (staging,) = con.execute("SELECT COUNT(*) FROM staging").fetchone()
    finally:
        con.close()
    return orphans, staging


def many(n: int, bad_at: int, **extra: Any) -> list[Any]:
    requests = [entry(f"e{i}", f"entry {i} " + "x" * 200, **extra) for i in range(n)]
    requests[bad_at]["params"]["messages"] = [{"role": "user"}]
    return requests


async def test_over_asgi_too_the_body_is_read_by_the_create(tmp_path: Path) -> None:
    # Under another ASGI server (here httpx's ASGITransport) no watcher task reads the body
    # beside the create: it reads the body itself.
    config = build_config(
        {
            "upstreams": {"m": {"provider": "mock"}},
            "routes": [{"match": "*", "upstream": "m"}],
            "batches": {"dir": str(tmp_path), "poll_interval": 0.02},
        }
    )
    lifecycle = Lifecycle(Pipeline(config))
    batches = Batches(config.batches, lifecycle)
    app = HttpApp(
        lifecycle.current, max_body=1 << 20, ready=lambda: True, lifecycle=lifecycle, batches=batches
    )
    client = asgi_client(app)
    try:
        # A watcher reading the body too would leave the create waiting for it: a timeout.
        with pytest.raises(anthropic.BadRequestError) as info:
            async with asyncio.timeout(30):
                await client.messages.batches.create(requests=many(N, N - 1))
        assert f"requests.{N - 1}.params.messages.0.content" in str(info.value)
        assert (await client.messages.batches.list()).data == [] and leftovers(tmp_path) == (0, 0)
        created = await client.messages.batches.create(requests=[entry(f"e{i}") for i in range(N)])
        assert created.request_counts.processing == N
    finally:
        await batches.aclose()
        await lifecycle.current.aclose()


def test_a_bad_late_entry_leaves_no_batch(tmp_path: Path) -> None:
    sc = start(tmp_path, MOCK)
    try:
        client = anthropic.Anthropic(base_url=sc.http_url, api_key="k", max_retries=0)
        with pytest.raises(anthropic.BadRequestError) as info:
            client.messages.batches.create(requests=many(N, N - 5))
        assert f"requests.{N - 5}.params.messages.0.content" in str(info.value)
        assert info.value.body["error"]["type"] == "invalid_request_error"  # type: ignore[index]
        assert client.messages.batches.list().data == []
        assert leftovers(tmp_path / "state") == (0, 0)
        # The same batch, mended, is stored whole.
        created = client.messages.batches.create(requests=[entry(f"e{i}") for i in range(N)])
        assert created.request_counts.processing == N
        assert [b.id for b in client.messages.batches.list()] == [created.id]
    finally:
        sc.stop()


ANTHROPIC = """
upstreams:
  an: {{provider: anthropic, base_url: "{url}", api_key: sk-up}}
  m: {{provider: mock}}
routes:
  - {{match: claude-renamed, upstream: an, model: claude-real}}
  - {{match: mocked, upstream: m}}
  - {{match: "*", upstream: an}}
"""


def test_a_bad_late_entry_of_a_forwardable_batch_sends_nothing(
    tmp_path: Path, upstream: FakeAnthropic
) -> None:
    sc = start(tmp_path, ANTHROPIC.format(url=upstream.base_url))
    try:
        client = anthropic.Anthropic(base_url=sc.http_url, api_key="k", max_retries=0)
        with pytest.raises(anthropic.BadRequestError) as info:
            client.messages.batches.create(requests=many(N, N - 1, model="claude-renamed"))
        assert f"requests.{N - 1}.params.messages.0.content" in str(info.value)
        assert [r.path for r in upstream.requests] == []
        assert client.messages.batches.list().data == []
        assert leftovers(tmp_path / "state") == (0, 0)
        assert not list((tmp_path / "state").glob(".batch-create-*"))  # the spool is anonymous
    finally:
        sc.stop()


def test_a_forwarded_batch_is_sent_whole_from_the_spool(tmp_path: Path, upstream: FakeAnthropic) -> None:
    sc = start(tmp_path, ANTHROPIC.format(url=upstream.base_url))
    try:
        client = anthropic.Anthropic(base_url=sc.http_url, api_key="k", max_retries=0)
        models = ["claude-renamed", "claude-other"]
        requests = [entry(f"e{i}", f'entry {i} "quoted"\n[{i}]', model=models[i % 2]) for i in range(N)]
        client.messages.batches.create(requests=requests)
        sent = [r for r in upstream.requests if r.path == "/v1/messages/batches"]
        # With its content-length, as the SDK would send it (the renamed entries counted as sent).
        assert len(sent) == 1 and sent[0].headers.get("Transfer-Encoding") is None
        assert int(sent[0].headers["Content-Length"]) == len(sent[0].body)
        got = sent[0].json()["requests"]
        assert [e["custom_id"] for e in got] == [f"e{i}" for i in range(N)]
        assert [e["params"]["model"] for e in got[:3]] == ["claude-real", "claude-other", "claude-real"]
        assert got[7]["params"]["messages"] == requests[7]["params"]["messages"]
    finally:
        sc.stop()


def test_forwardable_entries_then_a_local_one_run_locally_in_order(
    tmp_path: Path, upstream: FakeAnthropic
) -> None:
    sc = start(tmp_path, ANTHROPIC.format(url=upstream.base_url))
    try:
        client = anthropic.Anthropic(base_url=sc.http_url, api_key="k", max_retries=0)
        requests = [entry(f"e{i}", model="claude-renamed") for i in range(1500)]
        requests.append(entry("last", "[mock echo] last", model="mocked"))
        created = client.messages.batches.create(requests=requests)
        assert not [r for r in upstream.requests if r.path == "/v1/messages/batches"]
        assert created.request_counts.processing == 1501
        db = sqlite3.connect(f"file:{tmp_path / 'state' / 'batches.sqlite3'}?mode=ro", uri=True)
        try:
            rows = db.execute("SELECT idx, custom_id FROM entries ORDER BY idx").fetchall()
        finally:
            db.close()
        assert rows == [(i, r["custom_id"]) for i, r in enumerate(requests)]
        batch = wait_ended(client, created.id, timeout=60)
        assert batch.request_counts.succeeded == 1501
        # Each ran as the client asked it: the route renamed it when it ran, not at create.
        calls = [r.json() for r in upstream.requests if r.path == "/v1/messages"]
        assert len(calls) == 1500 and {c["model"] for c in calls} == {"claude-real"}
        results = {r.custom_id: r.result for r in client.messages.batches.results(created.id)}
        assert results["last"].message.content[0].text == "last"  # type: ignore[union-attr]
    finally:
        sc.stop()


def test_a_chunked_body_past_the_limit_is_413_with_nothing_stored(tmp_path: Path) -> None:
    sc = start(tmp_path, MOCK, ", max_body_bytes: 65536")
    try:

        def body() -> Iterator[bytes]:  # no content-length: the limit is found while reading
            yield b'{"requests": ['
            for i in range(400):
                yield (b"," if i else b"") + json.dumps(entry(f"e{i}", "x" * 500)).encode()
            yield b"]}"

        r = httpx.post(sc.http_url + "/v1/messages/batches", content=body())
        assert r.status_code == 413 and r.json()["error"]["type"] == "request_too_large"
        assert "at most 65536 bytes" in r.json()["error"]["message"]
        assert httpx.get(sc.http_url + "/v1/messages/batches").json()["data"] == []
        assert leftovers(tmp_path / "state") == (0, 0)
    finally:
        sc.stop()


def test_a_client_that_leaves_mid_body_leaves_nothing(tmp_path: Path) -> None:
    sc = start(tmp_path, MOCK)
    state = tmp_path / "state"
    try:
        part = b'{"requests": [' + b",".join(json.dumps(entry(f"e{i}")).encode() for i in range(2500))
        host, port = sc.http_url.removeprefix("http://").rsplit(":", 1)
        with socket.create_connection((host, int(port))) as sock:
            sock.sendall(
                b"POST /v1/messages/batches HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
                b"content-length: %d\r\n\r\n%s" % (len(part) * 2, part)
            )
            # Its first entries are staged (written, invisible) before it leaves.
            assert wait_until(lambda: leftovers(state)[1] == 1 and leftovers(state)[0] >= 1000)
            time.sleep(0.1)
        assert wait_until(lambda: leftovers(state) == (0, 0))
        client = anthropic.Anthropic(base_url=sc.http_url, api_key="k", max_retries=0)
        assert client.messages.batches.list().data == []
    finally:
        sc.stop()
