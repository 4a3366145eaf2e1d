"""Admission end to end: real sidecar processes, a real redis-server, the SDKs and raw HTTP.

1. Two sidecar processes sharing one Redis enforce one limit together (requests and concurrency).
2. Token limits reconcile to what a stream really used: a short answer to a large ``max_tokens``,
   and a client that disconnects mid-stream.
3. Bad, missing, doubled and garbage credentials on both doors are refused with 401/403 (never a
   5xx), and no key the clients sent appears in the process's output or its request log.

The limits use a long ``period`` (600 s) so that every number asserted is exact: a bucket refills
one unit every ``period / limit`` seconds (150 s for 4 requests, 6 s for 100 tokens), far longer
than any test takes on a loaded machine. Each scenario uses its own key, so tests never share a
bucket, and the Redis keys get a per-module ``key_prefix``.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anthropic
import grpc
import httpx
import pytest

from sidecar.client import Client, SidecarAPIError
from sidecar.core.sse import SSESplitter
from tests.admission.conftest import RedisServer
from tests.conftest import SidecarProcess, start_sidecar

MODEL = "claude-sonnet-4-6"
VERSION = {"anthropic-version": "2023-06-01"}
BODY: dict[str, Any] = {"model": MODEL, "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}
PERIOD = 600.0  # seconds in a rate-limit "minute" here: refills are far slower than the tests

# Keys of the shared (Redis) pair, one per scenario.
RPM_KEY = "sk-ant-e2e-rpm-0a1b2c"  # requests_per_minute: 4
SOLO_KEY = "sk-ant-e2e-solo-3d4e5f"  # concurrency: 1
# Keys of the token scenarios (on the Redis pair and on a memory-backed sidecar).
OUT_SHORT_KEY = "sk-ant-e2e-out-short-6a7b"  # output_tokens_per_minute: 100, concurrency: 1
OUT_CUT_KEY = "sk-ant-e2e-out-cut-8c9d"  # the same tier, another bucket
OUT_LATE_KEY = "sk-ant-e2e-out-late-0e1f"  # the same tier, another bucket
OUTPUT_LIMIT = 100


def _sha(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _write_config(path: Path, backend: str) -> Path:
    path.write_text(
        f"""
upstreams:
  m: {{provider: mock}}
routes:
  - {{match: "*", upstream: m}}
admission:
  period: {PERIOD}
  queue: {{max_wait: 0}}
  backend: {backend}
  tiers:
    rpm: {{requests_per_minute: 4}}
    solo: {{concurrency: 1}}
    out: {{output_tokens_per_minute: {OUTPUT_LIMIT}, concurrency: 1}}
  keys:
    - {{name: shared-rpm, sha256: {_sha(RPM_KEY)}, tier: rpm}}
    - {{name: shared-solo, sha256: {_sha(SOLO_KEY)}, tier: solo}}
    - {{name: out-short, sha256: {_sha(OUT_SHORT_KEY)}, tier: out}}
    - {{name: out-cut, sha256: {_sha(OUT_CUT_KEY)}, tier: out}}
    - {{name: out-late, sha256: {_sha(OUT_LATE_KEY)}, tier: out}}
""",
        encoding="utf-8",
    )
    return path


@pytest.fixture(scope="module")
def pair(
    redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[SidecarProcess, SidecarProcess]]:
    """Two sidecar processes, each with its own config file, sharing one redis-server.

    ``fail_open: false`` with a generous ``timeout``: a Redis call slowed down by a busy machine
    waits (up to 2 s) instead of silently admitting without limits, and an outage would show up
    as a 429 ``unavailable`` rather than as a test that passes by luck.
    """
    prefix = f"e2e-{uuid.uuid4().hex[:8]}:"
    backend = (
        f'{{kind: redis, url: "{redis_server.url}", key_prefix: "{prefix}", fail_open: false, timeout: 2.0}}'
    )
    base = tmp_path_factory.mktemp("e2e-pair")
    a = start_sidecar("--config", str(_write_config(base / "a.yaml", backend)))
    try:
        b = start_sidecar("--config", str(_write_config(base / "b.yaml", backend)))
    except BaseException:
        a.stop()
        raise
    yield a, b
    a.stop()
    b.stop()


@pytest.fixture(scope="module")
def memory_sidecar(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SidecarProcess]:
    """One sidecar with the same keys and limits kept in process (the memory backend)."""
    path = _write_config(tmp_path_factory.mktemp("e2e-memory") / "sidecar.yaml", "{kind: memory}")
    sp = start_sidecar("--config", str(path), "--no-grpc", expect_grpc=False)
    yield sp
    sp.stop()


def _headers(key: str) -> dict[str, str]:
    return {"x-api-key": key, **VERSION}


def _events(response: httpx.Response) -> Iterator[dict[str, Any]]:
    """The SSE events of a streamed response as they arrive (their JSON data)."""
    splitter = SSESplitter()
    for chunk in response.iter_raw():
        for event in splitter.feed(chunk):
            data: dict[str, Any] = event.data
            yield data


def _sse(text: str) -> list[dict[str, Any]]:
    """The events of a whole SSE body."""
    return [event.data for event in SSESplitter().feed(text.encode())]


def _rfc3339(value: str) -> float:
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()


# --- 1. one limit, two processes -------------------------------------------------------------


def test_requests_per_minute_is_shared_by_two_processes(pair: tuple[SidecarProcess, SidecarProcess]) -> None:
    a, b = pair
    clients = [anthropic.Anthropic(base_url=sp.http_url, api_key=RPM_KEY, max_retries=0) for sp in (a, b)]
    # 4 per 600 s: one request refills every 150 s, so within this test the bucket only drains.
    # Alternating A, B, A, B: the remaining count goes 3, 2, 1, 0 across both processes. Were the
    # limit per process, B's first answer would say 3 again.
    for i in range(4):
        raw = clients[i % 2].messages.with_raw_response.create(
            model=MODEL, max_tokens=8, messages=[{"role": "user", "content": "hi"}]
        )
        assert raw.http_response.status_code == 200
        assert raw.headers["anthropic-ratelimit-requests-limit"] == "4"
        assert raw.headers["anthropic-ratelimit-requests-remaining"] == str(3 - i)
        assert raw.parse().type == "message"
    # Each process has served only 2 of the 4, yet both refuse now: the 5th (on A) and the 6th (on B).
    for client in clients:
        before = time.time()
        with pytest.raises(anthropic.RateLimitError) as info:
            client.messages.create(model=MODEL, max_tokens=8, messages=[{"role": "user", "content": "hi"}])
        response = info.value.response
        assert response.status_code == 429
        assert response.json()["error"]["type"] == "rate_limit_error"
        assert response.headers["anthropic-ratelimit-requests-remaining"] == "0"
        assert response.headers["anthropic-ratelimit-requests-limit"] == "4"
        # The 5th fits once the first of the 4 has refilled: 150 s after it, less the little time
        # this test has taken so far (rounded up to whole seconds).
        assert 120 <= int(response.headers["retry-after"]) <= 150
        assert "x-should-retry" not in response.headers  # waiting helps
        # The bucket is full again 4 * 150 s after the first request (RFC 3339, whole seconds).
        reset = _rfc3339(response.headers["anthropic-ratelimit-requests-reset"])
        assert before + PERIOD - 60 <= reset <= before + PERIOD + 2


def test_concurrency_is_shared_by_two_processes(pair: tuple[SidecarProcess, SidecarProcess]) -> None:
    a, b = pair
    # 20 deltas 100 ms apart: the stream stays in flight about 2 s after its first delta, while
    # the refused requests below take milliseconds.
    slow = {
        **BODY,
        "max_tokens": 100,
        "stream": True,
        "messages": [{"role": "user", "content": "[mock words=20 words_per_delta=1 gap_ms=100] go"}],
    }
    with httpx.Client(timeout=30) as http:
        with http.stream(
            "POST", a.http_url + "/v1/messages", json=slow, headers=_headers(SOLO_KEY)
        ) as stream:
            assert stream.status_code == 200
            events = _events(stream)
            for event in events:
                if event["type"] == "content_block_delta":
                    break  # admitted and streaming: A holds the key's only slot
            for sp in (b, a):
                refused = http.post(sp.http_url + "/v1/messages", json=BODY, headers=_headers(SOLO_KEY))
                assert refused.status_code == 429
                assert refused.json()["error"]["type"] == "rate_limit_error"
                assert "in flight" in refused.json()["error"]["message"]
                assert refused.headers["retry-after"] == "1"  # a concurrency refusal's hint
            rest = list(events)  # to the end of the body
        # Nothing was cut: the whole stream arrived.
        assert rest[-1] == {"type": "message_stop"}
        assert len([e for e in rest if e["type"] == "content_block_delta"]) == 19
        # The slot is freed before the stream's body ends (the last chunk follows the release),
        # so B gets in at once.
        ok = http.post(b.http_url + "/v1/messages", json=BODY, headers=_headers(SOLO_KEY))
        assert ok.status_code == 200, ok.text
        assert ok.json()["type"] == "message"


# --- 2. token limits reconcile ---------------------------------------------------------------


@pytest.fixture(params=["memory", "redis"])
def token_sidecar(request: pytest.FixtureRequest) -> SidecarProcess:
    if request.param == "memory":
        sp: SidecarProcess = request.getfixturevalue("memory_sidecar")
        return sp
    pair_: tuple[SidecarProcess, SidecarProcess] = request.getfixturevalue("pair")
    return pair_[0]


def _output_remaining(http: httpx.Client, sp: SidecarProcess, key: str, *, wait: float = 10.0) -> int:
    """The key's ``output-tokens-remaining`` now, read from a count_tokens call.

    count_tokens goes through admission (it gets the headers) but charges no output tokens, so
    probing does not change what it measures. The keys have ``concurrency: 1``: while a stream
    still holds the slot the probe gets a 429, so the first 200 comes after the stream's release
    (and its reconciliation) and the number is final.
    """
    deadline = time.monotonic() + wait
    while True:
        r = http.post(
            sp.http_url + "/v1/messages/count_tokens",
            json={"model": MODEL, "messages": [{"role": "user", "content": "hi"}]},
            headers=_headers(key),
        )
        if r.status_code == 200:
            assert r.headers["anthropic-ratelimit-output-tokens-limit"] == str(OUTPUT_LIMIT)
            # Only output tokens are limited, so tokens-* describe that bucket too.
            assert (
                r.headers["anthropic-ratelimit-tokens-remaining"]
                == r.headers["anthropic-ratelimit-output-tokens-remaining"]
            )
            return int(r.headers["anthropic-ratelimit-output-tokens-remaining"])
        assert r.status_code == 429 and "in flight" in r.json()["error"]["message"], r.text
        assert time.monotonic() < deadline, "the stream's concurrency slot was never released"
        time.sleep(0.02)


def test_a_stream_that_ends_early_is_charged_what_it_used(token_sidecar: SidecarProcess) -> None:
    # 100 output tokens per 600 s: one token refills every 6 s. remaining = floor(100 - charged +
    # elapsed / 6 s), so any reading within 6 s of the charge is exactly 100 - charged.
    with httpx.Client(timeout=30) as http:
        assert _output_remaining(http, token_sidecar, OUT_SHORT_KEY) == OUTPUT_LIMIT
        body = {
            **BODY,
            "max_tokens": 4096,  # far above the limit itself: admission never charges max_tokens
            "stream": True,
            "messages": [{"role": "user", "content": "[mock words=3] hi"}],
        }
        # The whole body: the release and its reconciliation happen before its last chunk.
        r = http.post(token_sidecar.http_url + "/v1/messages", json=body, headers=_headers(OUT_SHORT_KEY))
        assert r.status_code == 200
        assert r.headers["anthropic-ratelimit-output-tokens-remaining"] == str(OUTPUT_LIMIT)
        events = _sse(r.text)
        assert events[-1] == {"type": "message_stop"}
        used = next(e for e in events if e["type"] == "message_delta")["usage"]["output_tokens"]
        assert used == 3  # one word, one token
        # Charged the 3 tokens it used, not max_tokens (which would leave 0).
        assert _output_remaining(http, token_sidecar, OUT_SHORT_KEY) == OUTPUT_LIMIT - used


def test_a_client_that_disconnects_is_charged_only_what_streamed(token_sidecar: SidecarProcess) -> None:
    body = {
        **BODY,
        "max_tokens": 4096,
        "stream": True,
        "messages": [{"role": "user", "content": "[mock words=50 words_per_delta=1 gap_ms=50] hi"}],
    }
    with httpx.Client(timeout=30) as http:
        assert _output_remaining(http, token_sidecar, OUT_CUT_KEY) == OUTPUT_LIMIT
        with http.stream(
            "POST", token_sidecar.http_url + "/v1/messages", json=body, headers=_headers(OUT_CUT_KEY)
        ) as stream:
            assert stream.status_code == 200
            for event in _events(stream):
                if event["type"] == "content_block_delta":
                    break  # one word (one token) received; leaving the block closes the connection
        # Waits for the release (the probe's 429s end when the slot is free), then reads the bucket.
        charged = OUTPUT_LIMIT - _output_remaining(http, token_sidecar, OUT_CUT_KEY)
    # The full answer would be 50 tokens (remaining 50). The stream is cancelled within a gap or
    # two of the disconnect, so it is charged a handful at most: today exactly 1, the
    # message_start usage's output_tokens, since the mock (like the API) reports output usage
    # only in the final message_delta, which never came.
    assert 1 <= charged <= 5, charged


def test_a_client_that_disconnects_late_is_charged_what_it_received(memory_sidecar: SidecarProcess) -> None:
    body = {
        **BODY,
        "max_tokens": 4096,
        "stream": True,
        "messages": [{"role": "user", "content": "[mock words=50 words_per_delta=1 gap_ms=20] hi"}],
    }
    received = 0
    with httpx.Client(timeout=30) as http:
        with http.stream(
            "POST", memory_sidecar.http_url + "/v1/messages", json=body, headers=_headers(OUT_LATE_KEY)
        ) as stream:
            for event in _events(stream):
                if event["type"] == "content_block_delta":
                    received += 1
                    if received == 40:
                        break  # 40 words (40 tokens) received, then the client goes away
        charged = OUTPUT_LIMIT - _output_remaining(http, memory_sidecar, OUT_LATE_KEY)
    # The API reports output usage only at the end, so the sidecar charges what it streamed by
    # the local estimate (about 4 characters a token; the mock's words run longer, about 1.6 tokens
    # each by that measure): at least the 40 tokens the client read, never the 4096 of max_tokens.
    assert 40 <= charged <= 40 * 1.8, charged


# --- 3. bad credentials, and no key in any log -----------------------------------------------

GOOD = "sk-ant-GOOD-e2e-4f1c9a"
REVOKED = "sk-ant-REVOKED-e2e-7b2d11"
NARROW = "sk-ant-NARROW-e2e-93ad5e"  # may use claude-haiku-* only
SECRETS = {
    "unknown": "sk-ant-SECRET-xyz123-unknown",
    "bearer": "sk-ant-SECRET-xyz123-bearer",
    "basic": "sk-ant-SECRET-xyz123-basic",
    "garbage": "sk-ant-SECRET-xyz123-garbage",
    "bad-with-good-bearer": "sk-ant-SECRET-xyz123-badfirst",
    "twice": "sk-ant-SECRET-xyz123-twice",
    "unicode": "sk-ant-SECRET-xyz123-ünïcødé",
    "unicode-bearer": "sk-ant-SECRET-xyz123-bëärer",
    "long": "sk-ant-SECRET-xyz123-long-" + "L" * 10 * 1024,
    "long-bearer": "sk-ant-SECRET-xyz123-longbearer-" + "B" * 10 * 1024,
    "grpc-unknown": "sk-ant-SECRET-xyz123-grpc",
    "grpc-bearer": "sk-ant-SECRET-xyz123-grpcbearer",
    "grpc-long": "sk-ant-SECRET-xyz123-grpclong-" + "G" * 2000,
}


def _stop_and_output(sp: SidecarProcess) -> str:
    """Stop the process and return everything it wrote (stdout and stderr, merged).

    ``start_sidecar`` drains the pipe on a daemon thread; after the process exits that thread
    reads to EOF, so join it before reading ``lines``.
    """
    sp.stop()
    for thread in threading.enumerate():
        args = getattr(thread, "_args", None)
        if isinstance(args, tuple) and args and args[0] is sp.proc:
            thread.join(10)
    return "".join(sp.lines)


def test_bad_credentials_are_refused_and_never_logged(tmp_path: Path) -> None:
    path = tmp_path / "keys.yaml"
    path.write_text(
        f"""
upstreams:
  m: {{provider: mock}}
routes:
  - {{match: "*", upstream: m}}
admission:
  tiers:
    open: {{models: ["claude-*"]}}
  keys:
    - {{name: good, sha256: {_sha(GOOD)}, tier: open}}
    - {{name: gone, sha256: {_sha(REVOKED)}, tier: open, revoked: true}}
    - {{name: narrow, sha256: {_sha(NARROW)}, tier: open, models: ["claude-haiku-*"]}}
""",
        encoding="utf-8",
    )
    # --request-log: one JSON line per request on stderr (merged into the captured output);
    # debug logging, so a key leaking into any log line at any level would show.
    sp = start_sidecar("--config", str(path), "--request-log", "--log-level", "debug")
    try:
        url = sp.http_url + "/v1/messages"
        version = [(b"anthropic-version", b"2023-06-01")]
        # (what is sent, expected status, a word of the expected message)
        cases: list[tuple[str, list[tuple[bytes, bytes]], int, str]] = [
            ("none", [], 401, "missing API key"),
            ("unknown x-api-key", [(b"x-api-key", SECRETS["unknown"].encode())], 401, "invalid API key"),
            (
                "unknown bearer",
                [(b"authorization", b"Bearer " + SECRETS["bearer"].encode())],
                401,
                "invalid API key",
            ),
            ("basic", [(b"authorization", b"Basic " + SECRETS["basic"].encode())], 401, "Bearer scheme"),
            ("empty bearer", [(b"authorization", b"Bearer")], 401, "malformed Bearer token"),
            ("empty authorization", [(b"authorization", b"")], 401, "Bearer scheme"),
            ("empty x-api-key", [(b"x-api-key", b"")], 401, "malformed"),
            # Both: x-api-key wins, even when authorization is garbage (as the real API does)...
            (
                "good key, garbage authorization",
                [(b"x-api-key", GOOD.encode()), (b"authorization", b"Digest " + SECRETS["garbage"].encode())],
                200,
                "",
            ),
            # ...and when x-api-key is bad, a good Bearer does not rescue it.
            (
                "bad key, good bearer",
                [
                    (b"x-api-key", SECRETS["bad-with-good-bearer"].encode()),
                    (b"authorization", b"Bearer " + GOOD.encode()),
                ],
                401,
                "invalid API key",
            ),
            # Sent twice, the good one first: refused ("invalid API key" today, as the door keeps the
            # last value only; see test_a_credential_sent_twice_is_refused_whatever_the_order).
            (
                "x-api-key twice",
                [(b"x-api-key", GOOD.encode()), (b"x-api-key", SECRETS["twice"].encode())],
                401,
                "",
            ),
            ("revoked", [(b"x-api-key", REVOKED.encode())], 401, "revoked"),
            ("revoked bearer", [(b"authorization", b"Bearer " + REVOKED.encode())], 401, "revoked"),
            ("narrow", [(b"x-api-key", NARROW.encode())], 403, MODEL),
            # Raw bytes outside ASCII (UTF-8 on the wire) and 10 KB values: 401, never a 5xx.
            ("unicode", [(b"x-api-key", SECRETS["unicode"].encode())], 401, "malformed"),
            (
                "unicode bearer",
                [(b"authorization", b"Bearer " + SECRETS["unicode-bearer"].encode())],
                401,
                "malformed",
            ),
            ("long", [(b"x-api-key", SECRETS["long"].encode())], 401, "malformed"),
            (
                "long bearer",
                [(b"authorization", b"Bearer " + SECRETS["long-bearer"].encode())],
                401,
                "malformed",
            ),
            ("good", [(b"x-api-key", GOOD.encode())], 200, ""),
            ("good bearer", [(b"authorization", b"Bearer " + GOOD.encode())], 200, ""),
        ]
        expected_types = {200: "", 401: "authentication_error", 403: "permission_error"}
        sent_http: dict[int, int] = {}
        with httpx.Client(timeout=30) as http:
            for name, headers, status, word in cases:
                r = http.post(url, json=BODY, headers=version + headers)
                assert r.status_code == status, (name, r.status_code, r.text)
                sent_http[status] = sent_http.get(status, 0) + 1
                if status == 200:
                    assert r.json()["type"] == "message", name
                    continue
                error = r.json()["error"]
                assert error["type"] == expected_types[status], name
                assert word in error["message"], (name, error["message"])
                everything = r.text + "".join(f"{k}: {v}\n" for k, v in r.headers.items())
                assert "sk-ant-" not in everything, (name, everything)

        # The gRPC door: the same checks on metadata.
        grpc_cases: list[tuple[str, dict[str, str], grpc.StatusCode, str]] = [
            ("unknown", {"api_key": SECRETS["grpc-unknown"]}, grpc.StatusCode.UNAUTHENTICATED, "invalid"),
            ("bearer", {"auth_token": SECRETS["grpc-bearer"]}, grpc.StatusCode.UNAUTHENTICATED, "invalid"),
            ("long", {"api_key": SECRETS["grpc-long"]}, grpc.StatusCode.UNAUTHENTICATED, "malformed"),
            ("revoked", {"api_key": REVOKED}, grpc.StatusCode.UNAUTHENTICATED, "revoked"),
            ("narrow", {"api_key": NARROW}, grpc.StatusCode.PERMISSION_DENIED, MODEL),
        ]
        grpc_types = {
            grpc.StatusCode.UNAUTHENTICATED: "authentication_error",
            grpc.StatusCode.PERMISSION_DENIED: "permission_error",
        }
        for name, credentials, code, word in grpc_cases:
            with Client(sp.grpc_target, timeout=30, **credentials) as client:
                with pytest.raises(SidecarAPIError) as info:
                    client.messages.create(
                        model=MODEL, max_tokens=8, messages=[{"role": "user", "content": "hi"}]
                    )
            assert info.value.code == code, name
            assert info.value.type == grpc_types[code], name
            assert word in info.value.message, (name, info.value.message)
            assert "sk-ant-" not in str(info.value), name
        with Client(sp.grpc_target, api_key=GOOD, timeout=30) as client:
            message = client.messages.create(
                model=MODEL, max_tokens=8, messages=[{"role": "user", "content": "hi"}]
            )
            assert message["type"] == "message"
    finally:
        output = _stop_and_output(sp)

    # Nothing any client sent as a key is in the output: not the unknown, malformed or long ones,
    # and not the valid, revoked and restricted keys either.
    leaked = [name for name, secret in SECRETS.items() if secret in output]
    leaked += [
        name for name, key in (("good", GOOD), ("revoked", REVOKED), ("narrow", NARROW)) if key in output
    ]
    assert not leaked, leaked
    assert "sk-ant-" not in output
    assert "SECRET" not in output
    assert "xyz123" not in output

    # The request log has one line per request, refusals included, with their status and type.
    records = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    requests = [r for r in records if "door" in r and "status" in r]
    http_lines = [r for r in requests if r["door"] == "http"]
    grpc_lines = [r for r in requests if r["door"] == "grpc"]
    assert len(http_lines) == len(cases), http_lines
    assert len(grpc_lines) == len(grpc_cases) + 1, grpc_lines
    statuses: dict[int, int] = {}
    for line in http_lines:
        statuses[line["status"]] = statuses.get(line["status"], 0) + 1
        assert line["error_type"] == expected_types[line["status"]], line
        assert line["outcome"] == ("success" if line["status"] == 200 else "client_error"), line
        # A refused request never went upstream.
        assert line["attempts"] == (1 if line["status"] == 200 else 0), line
    assert statuses == sent_http
    assert all(
        line["outcome"] == ("success" if line["status"] == "OK" else "client_error") for line in grpc_lines
    )
    grpc_statuses = sorted(line["status"] for line in grpc_lines)
    assert grpc_statuses == sorted(["OK", *(code.name for _, _, code, _ in grpc_cases)]), grpc_statuses


def test_a_credential_sent_twice_is_refused_whatever_the_order(memory_sidecar: SidecarProcess) -> None:
    # sidecar/admission/keys.py: "sent twice with different values" is malformed, a 401.
    for name in (b"x-api-key", b"authorization"):
        prefix = b"Bearer " if name == b"authorization" else b""
        headers = [
            (b"anthropic-version", b"2023-06-01"),
            (name, prefix + b"sk-ant-e2e-wrong"),
            (name, prefix + SOLO_KEY.encode()),
        ]
        r = httpx.post(memory_sidecar.http_url + "/v1/messages", json=BODY, headers=headers, timeout=30)
        assert r.status_code == 401, (name, r.status_code)
        assert "more than once" in r.json()["error"]["message"]
