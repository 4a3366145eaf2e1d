"""The ``files`` config section: defaults, rejections naming the field, which store the default
picks (local unless the catch-all route goes to an Anthropic upstream), and where the metadata
goes (where batches go: their SQLite file, or their Redis with its url, prefix and timeout)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from sidecar.config import build_config
from sidecar.config.model import FilesConfig
from sidecar.errors import ConfigError
from sidecar.files import Files, RedisFileStore
from tests.inprocess import pipeline

MOCK = {"upstreams": {"m": {"provider": "mock"}}, "routes": [{"match": "*", "upstream": "m"}]}
ANTHROPIC = {"provider": "anthropic", "base_url": "http://127.0.0.1:9"}
OPENAI = {"provider": "openai", "base_url": "http://127.0.0.1:9"}


def test_defaults() -> None:
    got = build_config(MOCK).files
    assert got == FilesConfig()
    assert (got.store, got.dir, got.max_bytes) == (None, None, 500 * 1024 * 1024)


@pytest.mark.parametrize(
    ("section", "where"),
    [
        ({"store": "s3"}, "files.store: Invalid enum value 's3'"),
        ({"dir": " "}, "files.dir: must not be empty"),
        ({"max_bytes": 0}, "files.max_bytes: must be >= 1"),
        ({"size": 3}, "files: Object contains unknown field `size`"),
    ],
)
def test_rejections_name_the_field(section: dict[str, object], where: str) -> None:
    with pytest.raises(ConfigError) as info:
        build_config({**MOCK, "files": section})
    assert str(info.value).startswith(where)


@pytest.mark.parametrize(
    ("upstreams", "routes", "files", "local"),
    [
        ({"m": {"provider": "mock"}}, [{"match": "*", "upstream": "m"}], {}, True),
        ({"o": OPENAI}, [{"match": "*", "upstream": "o"}], {}, True),
        ({"a": ANTHROPIC}, [{"match": "*", "upstream": "a"}], {}, False),
        # Only the catch-all decides: an Anthropic route for some models does not.
        (
            {"a": ANTHROPIC, "o": OPENAI},
            [{"match": "claude-*", "upstream": "a"}, {"match": "*", "upstream": "o"}],
            {},
            True,
        ),
        ({"a": ANTHROPIC}, [{"match": "claude-*", "upstream": "a"}], {}, True),
        ({"a": ANTHROPIC}, [{"match": "*", "upstream": "a"}], {"store": "local"}, True),
        ({"m": {"provider": "mock"}}, [{"match": "*", "upstream": "m"}], {"store": "upstream"}, False),
    ],
)
def test_which_store(
    upstreams: dict[str, Any], routes: list[Any], files: dict[str, Any], local: bool
) -> None:
    p = pipeline({"upstreams": upstreams, "routes": routes, "files": files})
    assert p.files_local is local


async def test_the_metadata_goes_where_batches_go(tmp_path: Path) -> None:
    store = {"kind": "redis", "url": "redis://redis:6379/2", "key_prefix": "{b}:", "timeout": 3}
    config = build_config({**MOCK, "batches": {"dir": str(tmp_path), "store": store}})
    files = Files(config.files, database=tmp_path / "batches.sqlite3", batches_store=config.batches.store)
    redis = files._opened()
    assert isinstance(redis, RedisFileStore) and (redis.prefix, redis.timeout) == ("{b}:", 3)
    assert (redis.client.host, redis.client.port, redis.client.db) == ("redis", 6379, 2)
    await files.aclose()  # never connected
    sqlite = build_config({**MOCK, "batches": {"dir": str(tmp_path)}})
    files = Files(sqlite.files, database=tmp_path / "batches.sqlite3", batches_store=sqlite.batches.store)
    assert files._opened() is None  # SQLite, created at the first upload
