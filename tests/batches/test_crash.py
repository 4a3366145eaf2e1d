"""A sidecar killed with SIGKILL mid-batch resumes after a restart: every entry ends with exactly
one result, no entry that had finished runs again, and no result is lost (a real subprocess, the
strict fake OpenAI server counting what each entry sent)."""

from __future__ import annotations

import json
import sqlite3
import time
from collections import Counter
from pathlib import Path

import anthropic

from tests.conftest import start_sidecar, wait_until
from tests.fakes.openai_api import FakeOpenAI, Plan, Recorded, text_chunks

N = 12


def _finished(db: Path) -> dict[str, bytes]:
    """custom_id -> stored result, read beside the running sidecar (WAL lets a reader in)."""
    if not db.exists():
        return {}
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        rows = con.execute("SELECT custom_id, result FROM entries WHERE result_type IS NOT NULL").fetchall()
    finally:
        con.close()
    return dict(rows)


def test_kill_9_mid_batch_and_restart(tmp_path: Path) -> None:
    fake = FakeOpenAI()

    def slow(rec: Recorded) -> Plan:
        time.sleep(0.25)  # blocks the fake's loop: entries are answered one after another
        return Plan(chunks=text_chunks("done"))

    fake.reset(slow)
    fake.start()
    state = tmp_path / "state"
    config = tmp_path / "sidecar.yaml"
    config.write_text(
        f"""
upstreams:
  oa: {{provider: openai, base_url: "{fake.base_url}", api_key: sk-oa}}
routes:
  - {{match: "*", upstream: oa}}
batches: {{dir: "{state}", concurrency: 2, lease_seconds: 1, poll_interval: 0.05}}
"""
    )
    db = state / "batches.sqlite3"
    first = start_sidecar("--config", str(config), "--no-grpc", expect_grpc=False)
    try:
        client = anthropic.Anthropic(base_url=first.http_url, api_key="k", max_retries=0)
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
        batch = client.messages.batches.create(requests=requests)  # type: ignore[arg-type]
        assert wait_until(lambda: len(_finished(db)) >= 3, timeout=20)
        first.proc.kill()  # SIGKILL: no drain, no lease given back
        first.proc.wait(5)
    finally:
        first.stop()
    before = _finished(db)
    assert 3 <= len(before) < N, "the kill came too late to test anything"
    sent_before = len(fake.requests)

    second = start_sidecar("--config", str(config), "--no-grpc", expect_grpc=False)
    try:
        client = anthropic.Anthropic(base_url=second.http_url, api_key="k", max_retries=0)
        assert wait_until(
            lambda: client.messages.batches.retrieve(batch.id).processing_status == "ended", timeout=30
        )
        ended = client.messages.batches.retrieve(batch.id)
        assert ended.request_counts.succeeded == N and ended.request_counts.processing == 0
        results = list(client.messages.batches.results(batch.id))
    finally:
        second.stop()
        fake.stop()
    ids = [r.custom_id for r in results]
    assert sorted(ids) == sorted(f"e{i}" for i in range(N)) and len(set(ids)) == N
    assert {r.result.type for r in results} == {"succeeded"}
    # Results stored before the kill are the ones served after it, unchanged.
    after = _finished(db)
    assert all(after[cid] == result for cid, result in before.items())
    # An entry that had finished was never sent again; every entry was sent at least once.
    sent = Counter(json.loads(r.body)["messages"][-1]["content"] for r in fake.requests)
    assert set(sent) == {f"entry {i}" for i in range(N)}
    for cid in before:
        assert sent[f"entry {cid[1:]}"] == 1, cid
    # Only the entries in flight at the kill (at most `concurrency`) may have been sent twice.
    assert sum(n - 1 for n in sent.values()) <= 2
    assert len(fake.requests) > sent_before
