"""The ``batches`` config section: defaults, and every rejection naming its field."""

from __future__ import annotations

import pytest

from sidecar.config import build_config
from sidecar.config.model import BatchesConfig, RedisBatchStore, SqliteBatchStore
from sidecar.errors import ConfigError

BASE = {"upstreams": {"m": {"provider": "mock"}}, "routes": [{"match": "*", "upstream": "m"}]}


def test_defaults() -> None:
    got = build_config(BASE).batches
    assert got == BatchesConfig()
    assert (got.dir, got.concurrency, got.retention_days, got.expiry_hours) == (None, 4, 29.0, 24.0)
    assert (got.max_requests, got.max_body_bytes) == (100_000, 256 * 1024 * 1024)


def test_set() -> None:
    got = build_config({**BASE, "batches": {"dir": "/var/lib/sidecar", "concurrency": 2}}).batches
    assert got.dir == "/var/lib/sidecar" and got.concurrency == 2


@pytest.mark.parametrize(
    ("section", "where"),
    [
        ({"concurrency": 0}, "batches.concurrency: must be >= 1"),
        ({"retention_days": 0}, "batches.retention_days: must be positive"),
        ({"lease_seconds": -1}, "batches.lease_seconds: must be positive"),
        ({"max_requests": 100_001}, "batches.max_requests: must be between 1 and 100000"),
        ({"dir": " "}, "batches.dir: must not be empty"),
        ({"workers": 3}, "batches: Object contains unknown field `workers`"),
        ({"store": {"kind": "redis"}}, "batches.store.url: required with kind redis"),
        ({"store": {"kind": "memcached"}}, "batches.store.kind: Invalid value 'memcached'"),
        ({"store": {"kind": "redis", "url": "http://r"}}, "batches.store.url: must start with redis://"),
        ({"store": {"kind": "redis", "url": "redis://r", "timeout": 0}}, "batches.store.timeout: must be"),
        (
            {"store": {"kind": "redis", "url": "redis://r", "dir": "/x"}},
            "batches.store: Object contains unknown",
        ),
    ],
)
def test_rejections_name_the_field(section: dict[str, object], where: str) -> None:
    with pytest.raises(ConfigError) as info:
        build_config({**BASE, "batches": section})
    assert str(info.value).startswith(where)


def test_store_defaults_to_sqlite_and_redis_shares_admissions_url() -> None:
    assert build_config(BASE).batches.store == SqliteBatchStore()
    own = build_config({**BASE, "batches": {"store": {"kind": "redis", "url": "redis://r:1/2"}}})
    assert own.batches.store == RedisBatchStore(url="redis://r:1/2")
    admission = {
        "tiers": {"t": {}},
        "keys": [{"name": "a", "sha256": "0" * 64, "tier": "t"}],
        "backend": {"kind": "redis", "url": "redis://shared:6379/0"},
    }
    shared = build_config({**BASE, "admission": admission, "batches": {"store": {"kind": "redis"}}})
    store = shared.batches.store
    assert isinstance(store, RedisBatchStore)
    assert (store.url, store.key_prefix, store.timeout) == ("redis://shared:6379/0", "sidecar:batches:", 5.0)
    # A memory admission backend has no Redis to share.
    admission["backend"] = {"kind": "memory"}
    with pytest.raises(ConfigError, match=r"batches\.store\.url: required"):
        build_config({**BASE, "admission": admission, "batches": {"store": {"kind": "redis"}}})
