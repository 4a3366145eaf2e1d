"""The ``batches`` config section: defaults, and every rejection naming its field."""

from __future__ import annotations

import pytest

from sidecar.config import build_config
from sidecar.config.model import BatchesConfig
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
    ],
)
def test_rejections_name_the_field(section: dict[str, object], where: str) -> None:
    with pytest.raises(ConfigError) as info:
        build_config({**BASE, "batches": section})
    assert str(info.value).startswith(where)
