"""Client keys: hashes only, both credential headers, x-api-key wins, garbage, revoked, models."""

from __future__ import annotations

import hashlib
import hmac
import subprocess
import sys

import pytest

from sidecar.admission.keys import KeyStore, extract_credential, hash_key
from sidecar.config.admission import ClientKey, Limits, Tier
from sidecar.errors import AuthenticationFailed, PermissionDenied

TIERS = {
    "basic": Tier(requests_per_minute=50, tokens_per_minute=100_000, concurrency=10),
    "pro": Tier(requests_per_minute=200, tokens_per_minute=400_000, concurrency=40, models=("claude-*",)),
}
SECRET = "sk-live-0123456789abcdef"  # never appears in an error message


def store(salt: str = "") -> KeyStore:
    return KeyStore.from_keys(
        [
            ClientKey(name="ci-bot", sha256=hash_key(SECRET, salt), tier="basic"),
            ClientKey(
                name="research",
                sha256=hash_key("sk-pro", salt),
                tier="pro",
                models=("claude-sonnet-*", "claude-haiku-4-5"),
                limits=Limits(concurrency=80),
            ),
            ClientKey(name="old", sha256=hash_key("sk-old", salt), tier="pro", revoked=True),
        ],
        TIERS,
        salt=salt,
    )


def test_hash_is_sha256_hex_or_hmac_with_salt() -> None:
    assert hash_key("abc") == hashlib.sha256(b"abc").hexdigest()
    assert hash_key("abc", "pepper") == hmac.new(b"pepper", b"abc", hashlib.sha256).hexdigest()
    assert hash_key("abc", "pepper") != hash_key("abc")


def test_store_resolves_tiers_and_overrides() -> None:
    s = store()
    record = s.lookup(SECRET)
    assert record is not None and record.name == "ci-bot" and record.tier == "basic"
    assert record.limits == Limits(requests_per_minute=50, tokens_per_minute=100_000, concurrency=10)
    assert record.models == ("*",)
    research = s.lookup("sk-pro")
    assert research is not None
    assert research.limits.concurrency == 80 and research.limits.requests_per_minute == 200
    assert s.lookup("sk-unknown") is None
    assert len(s) == 3


def test_store_holds_no_key() -> None:
    s = store()
    assert SECRET not in repr(vars(s)) and all(SECRET not in repr(r) for r in vars(s)["_by_digest"].values())


def test_salted_store() -> None:
    s = store("pepper")
    assert s.lookup(SECRET) is not None
    assert store("other").lookup(SECRET) is not None  # each store hashes with its own salt
    unsalted = KeyStore.from_keys(
        [ClientKey(name="a", sha256=hash_key(SECRET), tier="basic")], TIERS, salt="x"
    )
    assert unsalted.lookup(SECRET) is None


@pytest.mark.parametrize(
    "headers",
    [
        {"x-api-key": SECRET},
        {"X-Api-Key": SECRET},
        {"authorization": f"Bearer {SECRET}"},
        {"Authorization": f"bearer   {SECRET}  "},
        [("x-api-key", SECRET), ("x-api-key", SECRET)],  # gRPC metadata pairs, a repeated same value
    ],
)
def test_both_headers_authenticate(headers: dict[str, str] | list[tuple[str, str]]) -> None:
    assert store().authenticate(headers).name == "ci-bot"


def test_x_api_key_wins_over_bearer() -> None:
    s = store()
    assert s.authenticate({"x-api-key": "sk-pro", "authorization": f"Bearer {SECRET}"}).name == "research"
    assert s.authenticate({"x-api-key": SECRET, "authorization": "Basic Zm9vOmJhcg=="}).name == "ci-bot"
    # x-api-key wins even when it is the bad one: no fallback to the bearer token
    with pytest.raises(AuthenticationFailed, match="invalid API key"):
        s.authenticate({"x-api-key": "sk-wrong", "authorization": f"Bearer {SECRET}"})


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({}, "missing API key"),
        ({"content-type": "application/json"}, "missing API key"),
        ({"x-api-key": ""}, "x-api-key: malformed"),
        ({"x-api-key": "   "}, "x-api-key: malformed"),
        ({"x-api-key": f"{SECRET}\x00"}, "x-api-key: malformed"),
        ({"x-api-key": "clé-secrète"}, "x-api-key: malformed"),
        ({"x-api-key": f"{SECRET} {SECRET}"}, "x-api-key: malformed"),
        ({"x-api-key": "k" * 1025}, "x-api-key: malformed"),
        ([("x-api-key", SECRET), ("x-api-key", "sk-other")], "x-api-key: sent more than once"),
        ({"authorization": SECRET}, "authorization: expected the Bearer scheme"),
        ({"authorization": f"Basic {SECRET}"}, "authorization: expected the Bearer scheme"),
        ({"authorization": "Bearer"}, "authorization: malformed Bearer token"),
        ({"authorization": "Bearer \t"}, "authorization: malformed Bearer token"),
        ({"authorization": f"Bearer {SECRET}\n"}, None),  # surrounding whitespace is trimmed
    ],
)
def test_garbage_is_401_without_echo(
    headers: dict[str, str] | list[tuple[str, str]], message: str | None
) -> None:
    if message is None:
        assert store().authenticate(headers).name == "ci-bot"
        return
    with pytest.raises(AuthenticationFailed) as info:
        store().authenticate(headers)
    assert info.value.status == 401 and info.value.error_type == "authentication_error"
    assert message in info.value.message
    assert SECRET not in info.value.message and "sk-other" not in info.value.message


def test_unknown_and_revoked_are_401() -> None:
    s = store()
    with pytest.raises(AuthenticationFailed, match="^invalid API key$"):
        s.authenticate({"x-api-key": "sk-unknown"})
    with pytest.raises(AuthenticationFailed, match="revoked"):
        s.authenticate({"authorization": "Bearer sk-old"})


def test_extract_credential_returns_the_key() -> None:
    assert extract_credential({"authorization": "Bearer abc"}) == "abc"
    assert extract_credential([("X-API-KEY", "xyz")]) == "xyz"


def test_allowed_models() -> None:
    s = store()
    research = s.authenticate({"x-api-key": "sk-pro"})
    assert research.allows("claude-sonnet-4-6") and research.allows("claude-haiku-4-5")
    assert not research.allows("claude-opus-4-1") and not research.allows("Claude-Sonnet-4-6")
    with pytest.raises(PermissionDenied) as info:
        research.check_model("claude-opus-4-1")
    assert info.value.status == 403 and info.value.error_type == "permission_error"
    assert "claude-opus-4-1" in info.value.message
    basic = s.authenticate({"x-api-key": SECRET})
    assert basic.allows("anything-at-all")


def test_hash_cli_reads_stdin() -> None:
    cmd = [sys.executable, "-m", "sidecar.admission.keys", "hash"]
    out = subprocess.run(cmd, input=f"{SECRET}\n", capture_output=True, text=True, check=True)
    assert out.stdout.strip() == hash_key(SECRET) and out.stderr == ""
    salted = subprocess.run(
        [*cmd, "--salt-env", "ADM_SALT"],
        input=SECRET,
        capture_output=True,
        text=True,
        check=True,
        env={"ADM_SALT": "pepper", "PATH": "/usr/bin:/bin"},
    )
    assert salted.stdout.strip() == hash_key(SECRET, "pepper")
    empty = subprocess.run(cmd, input="", capture_output=True, text=True)
    assert empty.returncode == 2 and "error:" in empty.stderr
