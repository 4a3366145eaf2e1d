"""The official SDK drives messages.batches create / retrieve / list / cancel / delete / results
through the sidecar: run locally on the built-in mock and on the strict fake OpenAI server,
forwarded to an Anthropic upstream (renames applied), with client keys; and bad input refused
with 4xx envelopes, nothing stored half-way."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import pytest

from tests.fakes.anthropic_api import FakeAnthropic, Plan, Recorded
from tests.fakes.openai_api import FakeOpenAI
from tests.inprocess import ThreadedSidecar

USER = [{"role": "user", "content": "hello"}]


def entry(custom_id: str, text: str = "hello", model: str = "claude-sonnet-4-6", **extra: Any) -> Any:
    return {
        "custom_id": custom_id,
        "params": {
            "model": model,
            "max_tokens": 30,
            "messages": [{"role": "user", "content": text}],
            **extra,
        },
    }


def start(tmp: Path, config: str, *extra: str) -> ThreadedSidecar:
    path = tmp / "sidecar.yaml"
    path.write_text(config + f"\nbatches: {{dir: '{tmp / 'state'}', poll_interval: 0.02{''.join(extra)}}}\n")
    return ThreadedSidecar("--config", str(path), "--no-grpc")


def wait_ended(client: anthropic.Anthropic, batch_id: str, timeout: float = 20) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        batch = client.messages.batches.retrieve(batch_id)
        if batch.processing_status == "ended":
            return batch
        time.sleep(0.05)
    raise AssertionError(f"batch {batch_id} did not end")


MOCK = """
upstreams:
  m: {provider: mock}
routes:
  - {match: "*", upstream: m}
aliases: {sonnet: claude-sonnet-4-6}
"""


@pytest.fixture(scope="module")
def mock_batches(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThreadedSidecar]:
    sc = start(tmp_path_factory.mktemp("mock"), MOCK, ", concurrency: 2, max_requests: 50")
    yield sc
    sc.stop()


@pytest.fixture()
def client(mock_batches: ThreadedSidecar) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=mock_batches.http_url, api_key="any-key", max_retries=0)


def test_a_batch_runs_on_the_mock_from_create_to_results(
    client: anthropic.Anthropic, mock_batches: ThreadedSidecar
) -> None:
    created = client.messages.batches.create(
        requests=[
            entry("a", "[mock echo] one two three", model="sonnet"),
            entry("b", "[mock error=invalid_request_error] x"),
            entry("c"),
        ]
    )
    assert created.id.startswith("msgbatch_") and created.type == "message_batch"
    assert created.processing_status == "in_progress" and created.results_url is None
    assert created.request_counts.processing == 3 and created.request_counts.succeeded == 0
    assert (created.expires_at - created.created_at).total_seconds() == pytest.approx(86400)
    batch = wait_ended(client, created.id)
    counts = batch.request_counts
    assert (counts.processing, counts.succeeded, counts.errored, counts.canceled, counts.expired) == (
        0,
        2,
        1,
        0,
        0,
    )
    assert batch.ended_at is not None and batch.cancel_initiated_at is None
    assert batch.results_url == f"{mock_batches.http_url}/v1/messages/batches/{batch.id}/results"
    results = {r.custom_id: r.result for r in client.messages.batches.results(batch.id)}
    assert sorted(results) == ["a", "b", "c"]
    assert results["a"].type == "succeeded"
    assert results["a"].message.content[0].text == "one two three"  # type: ignore[union-attr]
    assert results["a"].message.model == "claude-sonnet-4-6"  # type: ignore[union-attr]
    assert results["b"].type == "errored"
    assert results["b"].error.error.type == "invalid_request_error"  # type: ignore[union-attr]
    # Ended: it can be deleted, and then it is gone.
    deleted = client.messages.batches.delete(batch.id)
    assert (deleted.id, deleted.type) == (batch.id, "message_batch_deleted")
    with pytest.raises(anthropic.NotFoundError):
        client.messages.batches.retrieve(batch.id)


async def test_the_async_client_and_cancel(mock_batches: ThreadedSidecar) -> None:
    aclient = anthropic.AsyncAnthropic(base_url=mock_batches.http_url, api_key="k", max_retries=0)
    slow = [entry(f"s{i}", "[mock ttft_ms=300] slow") for i in range(8)]
    created = await aclient.messages.batches.create(requests=slow)
    with pytest.raises(anthropic.BadRequestError) as info:
        await aclient.messages.batches.delete(created.id)  # still running
    assert "only ended batches can be deleted" in str(info.value)
    canceling = await aclient.messages.batches.cancel(created.id)
    assert canceling.processing_status == "canceling" and canceling.cancel_initiated_at is not None
    for _ in range(200):
        batch = await aclient.messages.batches.retrieve(created.id)
        if batch.processing_status == "ended":
            break
        time.sleep(0.05)
    counts = batch.request_counts
    assert batch.processing_status == "ended" and counts.canceled >= 6
    assert counts.succeeded + counts.canceled == 8
    kinds = [r.result.type async for r in await aclient.messages.batches.results(created.id)]
    assert sorted(kinds) == sorted(["succeeded"] * counts.succeeded + ["canceled"] * counts.canceled)
    await aclient.close()  # on this test's loop (left to the collector, a later test's loop would)


def test_list_pages_newest_first_both_ways(client: anthropic.Anthropic) -> None:
    ids = [client.messages.batches.create(requests=[entry("x")]).id for _ in range(3)]
    listed = [b.id for b in client.messages.batches.list(limit=2)]  # the SDK follows after_id
    assert listed[:3] == ids[::-1]
    first = client.messages.batches.list(limit=1)
    assert first.data[0].id == ids[-1] and first.has_more and first.last_id == ids[-1]
    older = client.messages.batches.list(limit=1, after_id=ids[-1])
    assert [b.id for b in older.data] == [ids[-2]]
    newer = client.messages.batches.list(limit=5, before_id=ids[0])
    assert [b.id for b in newer.data] == [ids[2], ids[1]] and not newer.has_more
    assert newer.first_id == ids[2]


@pytest.mark.parametrize(
    ("requests", "status", "says"),
    [
        ([entry("a"), entry("a")], 400, "requests.1.custom_id: 'a' is used by another request"),
        (
            [
                entry("a"),
                {"custom_id": "b", "params": {**entry("b")["params"], "messages": [{"role": "user"}]}},
            ],
            400,
            "requests.1.params.messages.0.content",
        ),
        ([entry("a", stream=True)], 400, "requests.0.params.stream"),
        ([entry("bad id!")], 400, "requests.0.custom_id"),
        ([{"custom_id": "a"}], 400, "requests.0.params: Field required"),
        ([entry(f"e{i}") for i in range(51)], 400, "at most 50 requests"),
        ([], 400, "requests: List should have at least 1 item"),
    ],
)
def test_bad_batches_are_refused_and_nothing_is_stored(
    client: anthropic.Anthropic, requests: list[Any], status: int, says: str
) -> None:
    before = [b.id for b in client.messages.batches.list(limit=100)]
    with pytest.raises(anthropic.APIStatusError) as info:
        client.messages.batches.create(requests=requests)
    assert info.value.status_code == status and says in str(info.value), str(info.value)
    assert info.value.body["type"] == "error"  # type: ignore[index]
    assert [b.id for b in client.messages.batches.list(limit=100)] == before


def test_malformed_bodies_unknown_ids_and_methods(mock_batches: ThreadedSidecar) -> None:
    url = mock_batches.http_url + "/v1/messages/batches"
    for body in (b"{", b"[]", b'{"requests": {}}', b'{"requests": [], "extra": 1}'):
        r = httpx.post(url, content=body, headers={"content-type": "application/json"})
        assert r.status_code == 400 and r.json()["error"]["type"] == "invalid_request_error", body
    assert httpx.get(url + "/msgbatch_unknown").status_code == 404
    assert httpx.get(url + "/msgbatch_unknown/results").status_code == 404
    assert httpx.put(url).status_code == 405


def test_too_large_is_413(tmp_path: Path) -> None:
    sc = start(tmp_path, MOCK, ", max_body_bytes: 2048")
    try:
        client = anthropic.Anthropic(base_url=sc.http_url, api_key="k", max_retries=0)
        with pytest.raises(anthropic.APIStatusError) as info:
            client.messages.batches.create(requests=[entry(f"e{i}", "x" * 100) for i in range(30)])
        assert info.value.status_code == 413
        assert client.messages.batches.list().data == []
    finally:
        sc.stop()


def test_on_the_strict_fake_openai_server(tmp_path: Path) -> None:
    fake = FakeOpenAI().start()
    config = f"""
upstreams:
  oa: {{provider: openai, base_url: "{fake.base_url}", api_key: sk-oa}}
routes:
  - {{match: "gpt-small", upstream: oa, model: gpt-4o-mini}}
  - {{match: "*", upstream: oa}}
"""
    sc = start(tmp_path, config)
    try:
        client = anthropic.Anthropic(base_url=sc.http_url, api_key="k", max_retries=0)
        created = client.messages.batches.create(
            requests=[entry("one", model="gpt-small"), entry("two", model="gpt-4o", system="Be brief.")]
        )
        batch = wait_ended(client, created.id)
        assert batch.request_counts.succeeded == 2
        results = {r.custom_id: r.result for r in client.messages.batches.results(batch.id)}
        assert {r.type for r in results.values()} == {"succeeded"}
        assert results["one"].message.model == "gpt-small"  # type: ignore[union-attr]
        assert fake.rejected == []
        sent = sorted(json.loads(r.body)["model"] for r in fake.requests)
        assert sent == ["gpt-4o", "gpt-4o-mini"]
        assert [b.id for b in client.messages.batches.list()] == [batch.id]
    finally:
        sc.stop()
        fake.stop()


def _sha(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def test_with_client_keys_a_key_sees_only_its_batches(tmp_path: Path) -> None:
    config = f"""
upstreams:
  m: {{provider: mock}}
routes:
  - {{match: "*", upstream: m}}
admission:
  tiers:
    all: {{tokens_per_minute: 100000, requests_per_minute: 1, concurrency: 1}}
    some: {{models: ["claude-haiku-*"]}}
  keys:
    - {{name: a, sha256: {_sha("sk-a")}, tier: all}}
    - {{name: b, sha256: {_sha("sk-b")}, tier: all}}
    - {{name: narrow, sha256: {_sha("sk-n")}, tier: some}}
"""
    sc = start(tmp_path, config)
    try:
        a = anthropic.Anthropic(base_url=sc.http_url, api_key="sk-a", max_retries=0)
        b = anthropic.Anthropic(base_url=sc.http_url, api_key="sk-b", max_retries=0)
        narrow = anthropic.Anthropic(base_url=sc.http_url, api_key="sk-n", max_retries=0)
        # Five entries although the key may send one request a minute, one at a time: entries
        # take tokens, not request or concurrency slots.
        created = a.messages.batches.create(requests=[entry(f"e{i}") for i in range(5)])
        assert wait_ended(a, created.id).request_counts.succeeded == 5
        with pytest.raises(anthropic.NotFoundError):
            b.messages.batches.retrieve(created.id)
        with pytest.raises(anthropic.NotFoundError):
            b.messages.batches.cancel(created.id)
        assert b.messages.batches.list().data == []
        assert [x.id for x in a.messages.batches.list()] == [created.id]
        with pytest.raises(anthropic.PermissionDeniedError) as info:
            narrow.messages.batches.create(requests=[entry("ok", model="claude-haiku-4-5"), entry("no")])
        assert "requests.1.params.model" in str(info.value)
        assert narrow.messages.batches.create(requests=[entry("ok", model="claude-haiku-4-5")]).id
        nokey = httpx.post(sc.http_url + "/v1/messages/batches", json={"requests": [entry("x")]})
        assert nokey.status_code == 401
    finally:
        sc.stop()


def test_one_anthropic_upstream_is_forwarded_with_renames(tmp_path: Path, upstream: FakeAnthropic) -> None:
    config = f"""
upstreams:
  an: {{provider: anthropic, base_url: "{upstream.base_url}", api_key: sk-up}}
  m: {{provider: mock}}
routes:
  - {{match: claude-renamed, upstream: an, model: claude-real}}
  - {{match: mocked, upstream: m}}
  - {{match: "*", upstream: an}}
"""
    batch = {
        "id": "msgbatch_up1",
        "type": "message_batch",
        "processing_status": "in_progress",
        "request_counts": {"processing": 2, "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0},
        "created_at": "2026-01-01T00:00:00Z",
        "expires_at": "2026-01-02T00:00:00Z",
        "ended_at": None,
        "cancel_initiated_at": None,
        "archived_at": None,
        "results_url": None,
    }

    def plan(rec: Recorded) -> Plan:
        if rec.path.startswith("/v1/messages/batches"):
            return Plan(body=json.dumps(batch).encode())
        return Plan()

    upstream.reset(plan)
    sc = start(tmp_path, config)
    try:
        client = anthropic.Anthropic(base_url=sc.http_url, api_key="k", max_retries=0)
        created = client.messages.batches.create(
            requests=[entry("a", model="claude-renamed"), entry("b", model="claude-other")]
        )
        assert created.id == "msgbatch_up1"
        sent = [r for r in upstream.requests if r.path == "/v1/messages/batches"]
        assert [e["params"]["model"] for e in sent[0].json()["requests"]] == ["claude-real", "claude-other"]
        assert client.messages.batches.retrieve("msgbatch_up1").id == "msgbatch_up1"
        assert upstream.requests[-1].path == "/v1/messages/batches/msgbatch_up1"
        # A batch with an entry elsewhere runs locally; list merges both, newest first.
        local = client.messages.batches.create(requests=[entry("a", model="mocked"), entry("b")])
        assert local.id != "msgbatch_up1" and wait_ended(client, local.id).request_counts.succeeded == 2
        # Its Anthropic entry went as a Messages call, with the sidecar's key.
        call = next(r for r in upstream.requests if r.path == "/v1/messages")
        seen = {k.lower(): v for k, v in call.headers.items()}
        assert call.json()["model"] == "claude-sonnet-4-6" and seen["x-api-key"] == "sk-up"
        assert [b.id for b in client.messages.batches.list()] == [local.id, "msgbatch_up1"]
    finally:
        sc.stop()
