"""Two sidecar processes share batches through one real redis-server (``batches.store: redis``):
either answers for a batch the other created, and when one is killed (SIGKILL) mid-batch the
other finishes the batch: its runner claims the dead one's entries once their leases expire.
Every entry ends with exactly one result; only the entries in flight at the kill may have been
sent upstream twice (the strict fake OpenAI server counts what each entry sent)."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import anthropic

from sidecar.admission.resp import RespClient
from tests.admission.conftest import RedisServer
from tests.conftest import SidecarProcess, start_sidecar, wait_until
from tests.fakes.openai_api import FakeOpenAI, Plan, Recorded, text_chunks

N = 16
CONCURRENCY = 2


def _redis(url: str, *args: Any) -> Any:
    """One command on a fresh connection (the test's own view of the store)."""

    async def call() -> Any:
        client = RespClient(url)
        try:
            return await client.call(*args)
        finally:
            await client.aclose()

    return asyncio.run(call())


def test_a_replica_killed_mid_batch_leaves_it_to_the_other(redis_server: RedisServer, tmp_path: Path) -> None:
    fake = FakeOpenAI()

    def slow(rec: Recorded) -> Plan:
        time.sleep(0.2)  # blocks the fake's loop: entries are answered one after another
        return Plan(chunks=text_chunks("done"))

    fake.reset(slow)
    fake.start()
    prefix = f"replicas:{uuid.uuid4().hex}:"
    config = tmp_path / "sidecar.yaml"
    config.write_text(
        f"""
upstreams:
  oa: {{provider: openai, base_url: "{fake.base_url}", api_key: sk-oa}}
routes:
  - {{match: "*", upstream: oa}}
batches:
  store: {{kind: redis, url: "{redis_server.url}", key_prefix: "{prefix}"}}
  concurrency: {CONCURRENCY}
  lease_seconds: 1
  poll_interval: 0.05
"""
    )
    first: SidecarProcess | None = None
    second: SidecarProcess | None = None
    try:
        first = start_sidecar("--config", str(config), "--no-grpc", expect_grpc=False)
        second = start_sidecar("--config", str(config), "--no-grpc", expect_grpc=False)
        one = anthropic.Anthropic(base_url=first.http_url, api_key="k", max_retries=0)
        two = anthropic.Anthropic(base_url=second.http_url, api_key="k", max_retries=0)
        requests = [
            {
                "custom_id": f"e{i}",
                "params": {
                    "model": "gpt-4o",
                    "max_tokens": 10,
                    "messages": [{"role": "user", "content": f"entry {i}"}],
                },
            }
            for i in range(N)
        ]
        batch = one.messages.batches.create(requests=requests)  # type: ignore[arg-type]
        # The other replica answers for it at once, and lists it.
        seen = two.messages.batches.retrieve(batch.id)
        assert seen.id == batch.id and seen.request_counts.processing + seen.request_counts.succeeded == N
        assert [b.id for b in two.messages.batches.list(limit=5).data] == [batch.id]

        results_key = f"{prefix}results:{batch.id}"
        workers_key = f"{prefix}workers:{batch.id}"
        mine = f":{first.proc.pid}:"

        def first_runs_entries() -> bool:
            done = _redis(redis_server.url, "HLEN", results_key)
            leases = _redis(redis_server.url, "HVALS", workers_key)
            return done >= 3 and any(mine in w for w in leases)

        assert wait_until(first_runs_entries, timeout=30)
        first.proc.kill()  # SIGKILL: no drain, no lease given back
        first.proc.wait(5)
        before = dict(zip(*[iter(_redis(redis_server.url, "HGETALL", results_key))] * 2, strict=True))
        assert 3 <= len(before) < N, "the kill came too late to test anything"
        sent_before = len(fake.requests)

        assert wait_until(
            lambda: two.messages.batches.retrieve(batch.id).processing_status == "ended", timeout=60
        )
        ended = two.messages.batches.retrieve(batch.id)
        assert ended.request_counts.succeeded == N and ended.request_counts.processing == 0
        results = list(two.messages.batches.results(batch.id))
    finally:
        for proc in (first, second):
            if proc is not None:
                proc.stop()
        fake.stop()
    ids = [r.custom_id for r in results]
    assert sorted(ids) == sorted(f"e{i}" for i in range(N)) and len(set(ids)) == N
    assert {r.result.type for r in results} == {"succeeded"}
    # Exactly one stored result per entry, and those stored before the kill are unchanged.
    after = dict(zip(*[iter(_redis(redis_server.url, "HGETALL", results_key))] * 2, strict=True))
    assert len(after) == N and all(after[idx] == result for idx, result in before.items())
    assert _redis(redis_server.url, "ZCARD", f"{prefix}open:{batch.id}") == 0
    # Every entry was sent at least once; only those the dead replica had in flight (at most its
    # concurrency) may have been sent twice.
    sent = Counter(json.loads(r.body)["messages"][-1]["content"] for r in fake.requests)
    assert set(sent) == {f"entry {i}" for i in range(N)}
    assert sum(n - 1 for n in sent.values()) <= CONCURRENCY
    assert len(fake.requests) > sent_before
