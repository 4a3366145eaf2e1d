"""A sidecar killed with SIGKILL mid-batch resumes after a restart: every entry ends with exactly
one result, no entry that had finished runs again, and no result is lost (a real subprocess, the
strict fake OpenAI server counting what each entry sent). One killed mid-create leaves nothing
visible after the restart, and its staged entries go once they are STAGE_TTL old."""

from __future__ import annotations

import json
import socket
import sqlite3
import time
from collections import Counter
from pathlib import Path

import anthropic
import httpx

from sidecar.batches.sqlite import SqliteStore
from sidecar.batches.store import STAGE_TTL
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


def _staged(db: Path) -> tuple[int, int]:
    """(entries without a batch, staging rows)."""
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


async def test_kill_9_mid_create_leaves_nothing_visible(tmp_path: Path) -> None:
    state = tmp_path / "state"
    config = tmp_path / "sidecar.yaml"
    config.write_text(
        f"""
upstreams:
  m: {{provider: mock}}
routes:
  - {{match: "*", upstream: m}}
batches: {{dir: "{state}", poll_interval: 0.05}}
"""
    )
    db = state / "batches.sqlite3"
    entry = {
        "custom_id": "",
        "params": {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]},
    }
    part = b'{"requests": [' + b",".join(
        json.dumps({**entry, "custom_id": f"e{i}"}).encode() for i in range(2500)
    )
    first = start_sidecar("--config", str(config), "--no-grpc", expect_grpc=False)
    try:
        host, port = first.http_url.removeprefix("http://").rsplit(":", 1)
        with socket.create_connection((host, int(port))) as sock:
            sock.sendall(
                b"POST /v1/messages/batches HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
                b"content-length: %d\r\n\r\n%s" % (len(part) * 2, part)
            )
            assert wait_until(lambda: _staged(db)[0] >= 1000)  # written, not committed
            first.proc.kill()  # SIGKILL mid-body: no discard
            first.proc.wait(5)
    finally:
        first.stop()
    assert _staged(db)[1] == 1
    second = start_sidecar("--config", str(config), "--no-grpc", expect_grpc=False)
    try:
        listed = httpx.get(second.http_url + "/v1/messages/batches").json()
        assert listed["data"] == []
        time.sleep(0.3)  # a few runner turns: nothing of it is claimed or run
        assert _staged(db)[1] == 1 and _finished(db) == {}
    finally:
        second.stop()
    # Once STAGE_TTL has passed, the store's settle deletes what the killed create wrote.
    store = SqliteStore(db)
    try:
        await store.settle(time.time() + STAGE_TTL, retention=86400)
    finally:
        await store.aclose()
    assert _staged(db) == (0, 0)
