"""Typed configuration of admission: client keys, tiers of limits, the queue and the backend.

Frozen msgspec structs like ``sidecar.config.model``: unknown keys are errors, every default is
documented, every rule is checked at construction (``__post_init__``), so a bad section fails at
load time and requests only read it. ``build_admission_config`` turns a decoded YAML tree into an
``AdmissionConfig`` and raises one ``ConfigError`` whose message names the field, dict keys
included (``admission.tiers.basic.requests_per_minute: must be >= 1, got 0``).

The section in YAML (the name ``admission`` is the wiring step's choice)::

    admission:
      mode: enforce                # or shadow: evaluate and count, never refuse
      salt: ${ADMISSION_SALT:-}    # optional; hashes are then HMAC-SHA256(salt, key)
      keys_file: /etc/sidecar/keys.yaml   # optional: {keys: [...]} in the same shape as `keys`
      keys:
        - {name: ci-bot, sha256: 9f86d0..., tier: basic}
        - {name: research, sha256: 60303a..., tier: pro, models: ["claude-sonnet-*"],
           limits: {concurrency: 80}}
      tiers:                       # the MegaLLM table; configuration, never constants
        basic: {requests_per_minute: 50, tokens_per_minute: 100000, concurrency: 10}
        pro: {requests_per_minute: 200, tokens_per_minute: 400000, concurrency: 40}
      queue: {max_wait: 5, max_waiting: 64}
      backend: {kind: redis, url: "redis://redis:6379/0", fail_open: true, timeout: 0.25}

Key hashes are made with ``python -m sidecar.admission.keys hash`` (the key on stdin).
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any, Literal

import msgspec

from ..errors import ConfigError
from .convert import convert as _convert

__all__ = [
    "AdmissionConfig",
    "ClientKey",
    "KeysFile",
    "Limits",
    "MemoryBackend",
    "QueueConfig",
    "RedisBackend",
    "Tier",
    "build_admission_config",
    "load_keys_file",
]

_HEX64 = re.compile(r"^[0-9a-f]{64}$")


class _Base(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    pass


def _positive(name: str, value: float, *, zero: bool = False) -> None:
    if not math.isfinite(value) or value < 0 or (value == 0 and not zero):
        raise ValueError(f"{name}: must be {'>= 0' if zero else '> 0'}, got {value!r}")


class Limits(_Base, frozen=True):
    """Limits of one key; ``None`` is no limit in that dimension.

    Rates are per ``AdmissionConfig.period`` (60 s, a minute). ``input_tokens_per_minute`` counts
    the input estimate at admission, reconciled to ``input_tokens + cache_creation_input_tokens``
    when the answer ends (cache reads are free, as in the real API); ``output_tokens_per_minute``
    counts output tokens as they stream; ``tokens_per_minute`` counts both together. A request is
    admitted when every configured dimension has room for its cost (one request, its input
    estimate, and at least one output token); ``concurrency`` caps requests in flight.
    """

    requests_per_minute: int | None = None
    input_tokens_per_minute: int | None = None
    output_tokens_per_minute: int | None = None
    tokens_per_minute: int | None = None  # input + output together
    concurrency: int | None = None  # requests in flight (streams until their last event)

    def __post_init__(self) -> None:
        for name in _LIMIT_FIELDS:
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name}: must be >= 1, got {value}")

    def merged(self, overrides: Limits | None) -> Limits:
        """These limits with every dimension ``overrides`` sets replaced (a per-key override)."""
        if overrides is None:
            return self
        values = {
            name: getattr(overrides, name) if getattr(overrides, name) is not None else getattr(self, name)
            for name in _LIMIT_FIELDS
        }
        return Limits(**values)

    def any(self) -> bool:
        """True when at least one dimension is limited."""
        return any(getattr(self, name) is not None for name in _LIMIT_FIELDS)


_LIMIT_FIELDS = (
    "requests_per_minute",
    "input_tokens_per_minute",
    "output_tokens_per_minute",
    "tokens_per_minute",
    "concurrency",
)


class Tier(Limits, frozen=True):
    """A named set of limits keys refer to, plus the models its keys may use (globs)."""

    models: tuple[str, ...] = ("*",)  # fnmatch globs over the requested model name (after aliases)


class ClientKey(_Base, frozen=True):
    """One client key, by hash only. ``name`` appears in logs and metrics; the key never does."""

    name: str
    sha256: str  # lower-case hex of sha256(key), or of HMAC-SHA256(salt, key) with a salt
    tier: str  # a name under `tiers`
    limits: Limits | None = None  # per-key overrides of the tier's limits
    models: tuple[str, ...] | None = None  # globs; None: the tier's
    revoked: bool = False  # a revoked key gets 401 and says so

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("name: must not be empty")
        if not _HEX64.match(self.sha256):
            raise ValueError(
                "sha256: must be 64 lower-case hex digits (python -m sidecar.admission.keys hash)"
            )
        if not self.tier:
            raise ValueError("tier: must not be empty")


class KeysFile(_Base, frozen=True):
    """The shape of a mounted ``keys_file`` (YAML or JSON)."""

    keys: list[ClientKey] = []


class QueueConfig(_Base, frozen=True):
    """A request over a rate or concurrency limit waits this long for room before its 429."""

    # Seconds a request may wait; a wait the limiter knows would be longer is refused at once.
    # 0: refuse at once.
    max_wait: float = 5.0
    max_waiting: int = 64  # requests waiting per key (per replica); more are refused at once

    def __post_init__(self) -> None:
        _positive("max_wait", self.max_wait, zero=True)
        if self.max_waiting < 0:
            raise ValueError(f"max_waiting: must be >= 0, got {self.max_waiting}")


class MemoryBackend(_Base, frozen=True, tag_field="kind", tag="memory"):
    """Limits kept in this process: each replica enforces them on its own."""


class RedisBackend(_Base, frozen=True, tag_field="kind", tag="redis"):
    """Limits shared by every replica through one Redis (atomic Lua scripts, one round trip)."""

    url: str = "redis://127.0.0.1:6379/0"  # redis://, rediss:// (TLS) or unix://
    # Redis unreachable or slower than `timeout`: true admits (and counts it), false refuses
    # with 429 and retry-after. Either way nothing waits longer than `timeout`.
    fail_open: bool = True
    timeout: float = 0.25  # seconds for one script call (connect included)
    key_prefix: str = "sidecar:admission:"  # every Redis key starts with it
    # A lease (one in-flight request) expires this long after its last charge, so a replica
    # that dies mid-stream does not hold concurrency forever. Longer than the upstream read timeout.
    lease_ttl: float = 900.0
    charge_batch: int = 64  # streamed output tokens sent to Redis in batches of this many
    poll_interval: float = 0.05  # seconds between checks of a waiting request (no notifications)

    def __post_init__(self) -> None:
        if not self.url.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError(f"url: must start with redis://, rediss:// or unix://, got {self.url!r}")
        _positive("timeout", self.timeout)
        _positive("lease_ttl", self.lease_ttl)
        _positive("poll_interval", self.poll_interval)
        if self.charge_batch < 1:
            raise ValueError(f"charge_batch: must be >= 1, got {self.charge_batch}")


Backend = MemoryBackend | RedisBackend


class AdmissionConfig(_Base, frozen=True):
    """Client keys and their limits. Keys come from ``keys`` and/or ``keys_file``."""

    mode: Literal["enforce", "shadow"] = "enforce"  # shadow: evaluate and count, never refuse
    salt: str = ""  # when set, key hashes are HMAC-SHA256(salt, key) instead of sha256(key)
    keys_file: str | None = None  # YAML/JSON {keys: [...]}, read at start (and on reload)
    keys: list[ClientKey] = []
    tiers: dict[str, Tier] = {}
    period: float = 60.0  # seconds in a rate-limit "minute"; shorten only in tests
    queue: QueueConfig = QueueConfig()
    backend: Backend = MemoryBackend()

    def __post_init__(self) -> None:
        _positive("period", self.period)
        for name in self.tiers:
            if not name:
                raise ValueError("tiers: a tier name must not be empty")
        check_keys(self.keys, self.tiers, "keys")


def check_keys(keys: list[ClientKey], tiers: dict[str, Tier], where: str) -> None:
    """Cross-field rules of a key list: known tiers, unique names, unique hashes."""
    names: set[str] = set()
    hashes: set[str] = set()
    for i, key in enumerate(keys):
        if key.tier not in tiers:
            raise ValueError(f"{where}.{i}.tier: no tier named {key.tier!r}")
        if key.name in names:
            raise ValueError(f"{where}.{i}.name: {key.name!r} is used twice")
        if key.sha256 in hashes:
            raise ValueError(f"{where}.{i}.sha256: the same key is listed twice")
        names.add(key.name)
        hashes.add(key.sha256)


def build_admission_config(data: Any, prefix: str = "admission") -> AdmissionConfig:
    """Validate a decoded (env-substituted) tree into an ``AdmissionConfig``.

    Raises ``ConfigError`` naming the field, prefixed with ``prefix``; tiers are checked one by
    one first so an error names the tier (msgspec shows dict keys as ``[...]``).
    """
    if data is None:
        data = {}
    tiers = data.get("tiers") if isinstance(data, dict) else None
    if isinstance(tiers, dict):
        for name, value in tiers.items():
            _convert(value, Tier, f"{prefix}.tiers.{name}")
    config: AdmissionConfig = _convert(data, AdmissionConfig, prefix)
    return config


def load_keys_file(
    path: str | Path, tiers: dict[str, Tier], prefix: str = "admission.keys_file"
) -> list[ClientKey]:
    """Read a mounted keys file (YAML or JSON ``{keys: [...]}``) and check it against ``tiers``.

    Raises ``ConfigError`` naming the file's field (``admission.keys_file: keys.2.tier: ...``).
    """
    import yaml  # only a config or keys file needs it (start-up, memory)

    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{prefix}: cannot read {str(path)!r}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{prefix}: not valid YAML: {exc}") from None
    try:
        parsed: KeysFile = _convert(data if data is not None else {}, KeysFile, "")
        check_keys(parsed.keys, tiers, "keys")
    except (ConfigError, ValueError) as exc:
        raise ConfigError(f"{prefix}: {exc}") from None
    return parsed.keys
