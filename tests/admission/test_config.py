"""AdmissionConfig: the seed's tiers as configuration, defaults, and errors that name the field."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest
import yaml

from sidecar.admission.keys import hash_key
from sidecar.config.admission import (
    AdmissionConfig,
    Limits,
    MemoryBackend,
    RedisBackend,
    build_admission_config,
    load_keys_file,
)
from sidecar.errors import ConfigError

SEED = """
tiers:
  basic: {requests_per_minute: 50, tokens_per_minute: 100000, concurrency: 10}
  pro: {requests_per_minute: 200, tokens_per_minute: 400000, concurrency: 40}
  enterprise: {requests_per_minute: 1000, input_tokens_per_minute: 2000000, output_tokens_per_minute: 400000}
keys:
  - {name: ci-bot, sha256: BASIC_HASH, tier: basic}
  - {name: research, sha256: PRO_HASH, tier: pro, models: ["claude-sonnet-*"], limits: {concurrency: 80}}
backend: {kind: redis, url: "redis://redis:6379/0", fail_open: false, timeout: 0.1}
""".replace("BASIC_HASH", hash_key("sk-basic")).replace("PRO_HASH", hash_key("sk-pro"))


def test_seed_tiers_load() -> None:
    config = build_admission_config(yaml.safe_load(SEED))
    assert config.tiers["basic"].requests_per_minute == 50
    assert config.tiers["pro"].tokens_per_minute == 400_000
    assert config.tiers["pro"].concurrency == 40
    assert config.keys[1].models == ("claude-sonnet-*",)
    assert config.keys[1].limits == Limits(concurrency=80)
    assert isinstance(config.backend, RedisBackend)
    assert config.backend.fail_open is False and config.backend.timeout == 0.1


def test_defaults() -> None:
    config = AdmissionConfig()
    assert config.mode == "enforce"
    assert config.period == 60.0
    assert config.queue.max_wait == 5.0 and config.queue.max_waiting == 64
    assert isinstance(config.backend, MemoryBackend)
    assert config.keys == [] and config.tiers == {}
    redis = RedisBackend()
    assert redis.fail_open is True and redis.timeout == 0.25


def test_limits_merge_overrides_only_what_they_set() -> None:
    base = Limits(requests_per_minute=50, tokens_per_minute=100_000, concurrency=10)
    assert base.merged(Limits(concurrency=2)) == Limits(
        requests_per_minute=50, tokens_per_minute=100_000, concurrency=2
    )
    assert base.merged(None) is base
    assert not Limits().any() and base.any()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {"tiers": {"basic": {"requests_per_minute": 0}}},
            "admission.tiers.basic.requests_per_minute: must be >= 1",
        ),
        ({"tiers": {"b": {"concurrency": "x"}}}, "admission.tiers.b.concurrency: Expected `int | null`"),
        (
            {"keys": [{"name": "a", "sha256": "0" * 64, "tier": "x"}]},
            "admission.keys.0.tier: no tier named 'x'",
        ),
        ({"keys": [{"name": "a", "sha256": "zz", "tier": "x"}]}, "admission.keys.0.sha256: must be 64"),
        (
            {"backend": {"kind": "redis", "url": "http://x"}},
            "admission.backend.url: must start with redis://",
        ),
        ({"backend": {"kind": "redis", "timeout": 0}}, "admission.backend.timeout: must be > 0"),
        ({"backend": {"kind": "etcd"}}, "admission.backend.kind: Invalid value 'etcd'"),
        ({"queue": {"max_wait": -1}}, "admission.queue.max_wait: must be >= 0"),
        ({"period": 0}, "admission.period: must be > 0"),
        ({"mode": "audit"}, "admission.mode: Invalid enum value 'audit'"),
        ({"bogus": 1}, "admission: Object contains unknown field `bogus`"),
    ],
)
def test_errors_name_the_field(data: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        build_admission_config(data)
    assert str(info.value).startswith(message), str(info.value)


def test_duplicate_names_and_keys_are_refused() -> None:
    tiers = {"t": {"requests_per_minute": 1}}
    one = {"name": "a", "sha256": hash_key("k1"), "tier": "t"}
    with pytest.raises(ConfigError, match=r"admission.keys.1.name: 'a' is used twice"):
        build_admission_config({"tiers": tiers, "keys": [one, {**one, "sha256": hash_key("k2")}]})
    with pytest.raises(ConfigError, match=r"admission.keys.1.sha256: the same key is listed twice"):
        build_admission_config({"tiers": tiers, "keys": [one, {**one, "name": "b"}]})


def test_structs_validate_when_built_directly() -> None:
    with pytest.raises(ValueError, match="concurrency: must be >= 1"):
        Limits(concurrency=0)
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert({"keys": [{"name": "a"}]}, AdmissionConfig)


def test_keys_file(tmp_path: Path) -> None:
    config = build_admission_config(yaml.safe_load(SEED))
    path = tmp_path / "keys.yaml"
    path.write_text(f"keys:\n  - {{name: extra, sha256: {hash_key('sk-extra')}, tier: pro, revoked: true}}\n")
    keys = load_keys_file(path, config.tiers)
    assert [k.name for k in keys] == ["extra"] and keys[0].revoked

    path.write_text(f"keys:\n  - {{name: extra, sha256: {hash_key('sk-extra')}, tier: gold}}\n")
    with pytest.raises(ConfigError, match=r"^admission.keys_file: keys.0.tier: no tier named 'gold'"):
        load_keys_file(path, config.tiers)
    path.write_text("keys:\n  - {name: extra, tier: pro}\n")
    with pytest.raises(
        ConfigError, match=r"^admission.keys_file: keys.0: Object missing required field `sha256`"
    ):
        load_keys_file(path, config.tiers)
    with pytest.raises(ConfigError, match=r"^admission.keys_file: cannot read"):
        load_keys_file(tmp_path / "missing.yaml", config.tiers)
