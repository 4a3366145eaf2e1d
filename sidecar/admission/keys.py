"""Client keys: a store of hashes, credential extraction from headers, and a hashing CLI.

The store never holds a key: only ``sha256(key)`` (or ``HMAC-SHA256(salt, key)`` when the store
has a salt), lower-case hex, each mapped to a ``KeyRecord`` (a name for logs, a tier's resolved
limits, allowed model globs, revoked). A presented key is hashed, the digest is looked up, and
the match is confirmed with ``hmac.compare_digest``; the lookup's timing depends only on the
digest, which an attacker cannot steer without a preimage, so nothing about stored keys leaks.

Credentials come from ``x-api-key`` or ``authorization: Bearer <key>``; ``x-api-key`` wins when
both are sent (as the real API does), even when the other one is malformed. Every failure is an
``AuthenticationFailed`` (401) whose message never contains what the client sent.

Hash a key for the config (the key is read from stdin, never from the command line)::

    printf %s "$KEY" | python -m sidecar.admission.keys hash [--salt-env ADMISSION_SALT]
"""

from __future__ import annotations

import argparse
import fnmatch
import hashlib
import hmac
import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from ..config.admission import AdmissionConfig, ClientKey, Limits, Tier, check_keys, load_keys_file
from ..errors import AuthenticationFailed, ConfigError, PermissionDenied

__all__ = [
    "MAX_KEY_LENGTH",
    "KeyRecord",
    "KeyStore",
    "extract_credential",
    "hash_key",
    "main",
]

MAX_KEY_LENGTH = 1024  # longer credential headers are refused as malformed

Headers = Mapping[str, str] | Iterable[tuple[str, str]]


def hash_key(key: str, salt: str = "") -> str:
    """The stored form of ``key``: hex sha256, or hex HMAC-SHA256 keyed by ``salt`` when set."""
    data = key.encode("utf-8")
    if salt:
        return hmac.new(salt.encode("utf-8"), data, hashlib.sha256).hexdigest()
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """What the store knows about one key. ``name`` is safe to log; there is no key here."""

    name: str
    tier: str
    limits: Limits  # the tier's limits with the key's overrides applied
    models: tuple[str, ...]  # fnmatch globs over the model name
    revoked: bool = False
    digest: str = ""  # the stored hash (hex), for the constant-time confirmation

    def allows(self, model: str) -> bool:
        """True when ``model`` matches one of the key's globs (case-sensitive)."""
        return any(fnmatch.fnmatchcase(model, glob) for glob in self.models)

    def check_model(self, model: str) -> None:
        """Raise ``PermissionDenied`` (403) when the key may not use ``model``."""
        if not self.allows(model):
            raise PermissionDenied(f"this API key may not use model {model!r}")


def _printable(value: str) -> bool:
    """Visible ASCII only (33..126): no spaces, no controls."""
    return value.isascii() and value.isprintable() and " " not in value


def _values(headers: Headers, name: str) -> list[str]:
    items = headers.items() if isinstance(headers, Mapping) else headers
    return [v for k, v in items if k.lower() == name]


def extract_credential(headers: Headers) -> str:
    """The client's key from ``x-api-key``, else from ``authorization: Bearer``.

    ``headers`` is a mapping or (name, value) pairs (gRPC metadata); names are compared
    case-insensitively. Raises ``AuthenticationFailed`` when no credential is sent, when the
    header that counts is malformed (empty, not visible ASCII, longer than ``MAX_KEY_LENGTH``,
    sent twice with different values, a scheme other than Bearer). Messages never echo the value.
    """
    api_keys = _values(headers, "x-api-key")
    if api_keys:
        # The doors combine a repeated header as "a, b" (RFC 9110); keys hold no spaces.
        if len(set(api_keys)) > 1 or ", " in api_keys[0]:
            raise AuthenticationFailed("x-api-key: sent more than once with different values")
        key = api_keys[0].strip()
        if not key or len(key) > MAX_KEY_LENGTH or not _printable(key):
            raise AuthenticationFailed("x-api-key: malformed header value")
        return key
    auths = _values(headers, "authorization")
    if auths:
        if len(set(auths)) > 1 or ", " in auths[0]:
            raise AuthenticationFailed("authorization: sent more than once with different values")
        scheme, _, token = auths[0].strip().partition(" ")
        if scheme.lower() != "bearer":
            raise AuthenticationFailed(
                "authorization: expected the Bearer scheme (authorization: Bearer <key>)"
            )
        token = token.strip()
        if not token or len(token) > MAX_KEY_LENGTH or not _printable(token):
            raise AuthenticationFailed("authorization: malformed Bearer token")
        return token
    raise AuthenticationFailed("missing API key: send x-api-key or authorization: Bearer <key>")


class KeyStore:
    """Hashes of client keys -> ``KeyRecord``. Immutable once built; build a new one to reload."""

    def __init__(self, records: Iterable[KeyRecord], *, salt: str = "") -> None:
        self.salt = salt
        self._by_digest: dict[str, KeyRecord] = {}
        for record in records:
            if record.digest in self._by_digest:
                raise ValueError(f"key {record.name!r}: the same key is listed twice")
            self._by_digest[record.digest] = record

    @classmethod
    def from_keys(cls, keys: Sequence[ClientKey], tiers: Mapping[str, Tier], *, salt: str = "") -> KeyStore:
        """Resolve each key's tier, overrides and models. Raises ``ValueError`` on unknown tiers."""
        check_keys(list(keys), dict(tiers), "keys")
        records = []
        for key in keys:
            tier = tiers[key.tier]
            base = Limits(**{name: getattr(tier, name) for name in Limits.__struct_fields__})
            models = key.models if key.models is not None else tier.models
            records.append(
                KeyRecord(
                    name=key.name,
                    tier=key.tier,
                    limits=base.merged(key.limits),
                    models=tuple(models),
                    revoked=key.revoked,
                    digest=key.sha256,
                )
            )
        return cls(records, salt=salt)

    @classmethod
    def from_config(cls, config: AdmissionConfig) -> KeyStore:
        """The inline ``keys`` plus those of ``keys_file`` (read now). Raises ``ConfigError``."""
        keys = list(config.keys)
        if config.keys_file is not None:
            keys.extend(load_keys_file(config.keys_file, config.tiers))
        try:
            return cls.from_keys(keys, config.tiers, salt=config.salt)
        except ValueError as exc:
            raise ConfigError(f"admission: {exc} (inline keys and keys_file together)") from None

    def __len__(self) -> int:
        return len(self._by_digest)

    def lookup(self, key: str) -> KeyRecord | None:
        """The record of ``key`` (revoked ones included), or None."""
        digest = hash_key(key, self.salt)
        record = self._by_digest.get(digest)
        if record is None or not hmac.compare_digest(record.digest.encode(), digest.encode()):
            return None
        return record

    def by_digest(self, digest: str) -> KeyRecord | None:
        """The record whose stored hash is ``digest`` (a batch's owner), or None."""
        return self._by_digest.get(digest)

    def authenticate(self, headers: Headers) -> KeyRecord:
        """The record of the credential in ``headers``; ``AuthenticationFailed`` when missing,
        malformed, unknown or revoked. The key itself is never logged nor echoed."""
        record = self.lookup(extract_credential(headers))
        if record is None:
            raise AuthenticationFailed("invalid API key")
        if record.revoked:
            raise AuthenticationFailed("this API key has been revoked")
        return record


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m sidecar.admission.keys hash [--salt-env NAME]``: print the hash of the key on
    stdin (one trailing newline is dropped), for the ``sha256`` field of a key."""
    parser = argparse.ArgumentParser(prog="python -m sidecar.admission.keys")
    sub = parser.add_subparsers(dest="command", required=True)
    cmd = sub.add_parser("hash", help="hash the key read from stdin")
    cmd.add_argument(
        "--salt-env", metavar="NAME", help="read the store's salt from this environment variable"
    )
    args = parser.parse_args(argv)
    salt = ""
    if args.salt_env:
        if args.salt_env not in os.environ:
            print(f"error: environment variable {args.salt_env} is not set", file=sys.stderr)
            return 2
        salt = os.environ[args.salt_env]
    key = sys.stdin.read()
    key = key[:-1] if key.endswith("\n") else key
    key = key[:-1] if key.endswith("\r") else key
    if not key or len(key) > MAX_KEY_LENGTH or not _printable(key):
        print("error: the key must be 1 to 1024 visible ASCII characters", file=sys.stderr)
        return 2
    print(hash_key(key, salt))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
