"""The ``files`` config section: defaults, and rejections naming the field."""

from __future__ import annotations

import pytest

from sidecar.config import build_config
from sidecar.config.model import FilesConfig
from sidecar.errors import ConfigError

MOCK = {"upstreams": {"m": {"provider": "mock"}}, "routes": [{"match": "*", "upstream": "m"}]}


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
