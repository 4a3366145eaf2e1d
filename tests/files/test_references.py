"""File references in the pipeline, per attempt: on a policy route whose first group is an
OpenAI-compatible upstream and whose fallback is Anthropic, an unknown id is refused before the
translated attempt and would go as it is to the Anthropic one; a stored file is inlined for
both; the Files store given to a Pipeline carries over a reload."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from sidecar.config.model import FilesConfig
from sidecar.core import Answer, Call, Target
from sidecar.errors import NotFound
from sidecar.files import FileRecord, Files, MemoryFileStore
from sidecar.pipeline import Pipeline
from sidecar.upstreams.handler import HandlerUpstream
from tests.inprocess import config_of

MESSAGE = {
    "id": "msg_1",
    "type": "message",
    "role": "assistant",
    "model": "m",
    "content": [{"type": "text", "text": "ok"}],
    "stop_reason": "end_turn",
    "stop_sequence": None,
    "usage": {"input_tokens": 1, "output_tokens": 1},
}


def setup(tmp: Path, seen: dict[str, list[dict[str, Any]]]) -> tuple[Pipeline, MemoryFileStore]:
    def handler(name: str) -> Any:
        async def answer(call: Call, target: Target) -> Answer:
            seen.setdefault(name, []).append(call.body)
            return Answer(message=dict(MESSAGE), upstream=name)

        return answer

    config = config_of(
        {
            "upstreams": {"oa": {"provider": "openai"}, "an": {"provider": "anthropic"}},
            "routes": [
                {"match": "policy", "policy": {"groups": [{"targets": [{"upstream": "oa"}]}]}},
                {"match": "*", "upstream": "an"},
            ],
            "files": {"store": "local"},
        }
    )
    store = MemoryFileStore()
    files = Files(FilesConfig(store="local"), database=tmp / "db.sqlite3", store=store)
    adapters = {
        "oa": HandlerUpstream("oa", handler("oa"), provider="openai"),
        "an": HandlerUpstream("an", handler("an")),
    }
    return Pipeline(config, adapters=adapters, files=files), store


def call(model: str, file_id: str) -> Call:
    body = {
        "model": model,
        "max_tokens": 5,
        "messages": [
            {
                "role": "user",
                "content": [{"type": "document", "source": {"type": "file", "file_id": file_id}}],
            }
        ],
    }
    return Call(
        endpoint="messages", body=body, raw=None, model=model, stream=False, request_id="r", door="http"
    )


async def test_per_attempt_and_after_a_reload(tmp_path: Path) -> None:
    seen: dict[str, list[dict[str, Any]]] = {}
    pipeline, store = setup(tmp_path, seen)
    (tmp_path / "files").mkdir()
    (tmp_path / "files" / "file_abc").write_bytes(b"some text")
    await store.create(
        FileRecord(
            id="file_abc", owner="", filename="a.txt", mime_type="text/plain", size_bytes=9, created_at=1.0
        )
    )
    with pytest.raises(NotFound, match="messages.0.content.0.source.file_id: File not found: file_nope"):
        await pipeline.messages(call("policy", "file_nope"))
    assert "oa" not in seen
    await pipeline.messages(call("policy", "file_abc"))
    assert seen["oa"][-1]["messages"][0]["content"][0]["source"] == {
        "type": "text",
        "media_type": "text/plain",
        "data": "some text",
    }
    await pipeline.messages(call("claude", "file_nope"))
    assert seen["an"][-1]["messages"][0]["content"][0]["source"]["file_id"] == "file_nope"
    reloaded = Pipeline(pipeline.config, previous=pipeline, adapters=dict(pipeline.upstreams))
    assert reloaded.files is pipeline.files
    await reloaded.messages(call("claude", "file_abc"))
    assert seen["an"][-1]["messages"][0]["content"][0]["source"]["type"] == "text"
