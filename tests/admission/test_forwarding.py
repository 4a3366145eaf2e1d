"""What reaches the upstream once client keys are on: the sidecar's credential, or the client's on
a ``forward_client_key`` route; model lists and forwarded endpoints behind the same keys; the
upstream's rate-limit headers renamed on errors too."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from sidecar.config import load_config
from sidecar.errors import ConfigError
from tests.conftest import SidecarProcess, start_sidecar
from tests.fakes.anthropic_api import FakeAnthropic, Plan, Recorded

ALL = "sk-all-models-1"
SOME = "sk-some-models-2"
BODY = {"model": "claude-sonnet-4-6", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}


def _sha(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@pytest.fixture(scope="module")
def keyed(
    fake_anthropic: FakeAnthropic, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SidecarProcess]:
    path: Path = tmp_path_factory.mktemp("fwd") / "sidecar.yaml"
    path.write_text(
        f"""
upstreams:
  peer: {{provider: anthropic, base_url: "{fake_anthropic.base_url}"}}
  own: {{provider: anthropic, base_url: "{fake_anthropic.base_url}", api_key: sk-sidecar-upstream}}
routes:
  - {{match: claude-peer, upstream: peer, forward_client_key: true}}
  - {{match: "*", upstream: own}}
admission:
  tiers:
    all: {{requests_per_minute: 1000}}
    some: {{requests_per_minute: 1000, models: ["claude-fake-1", "claude-peer"]}}
  keys:
    - {{name: everything, sha256: {_sha(ALL)}, tier: all}}
    - {{name: narrow, sha256: {_sha(SOME)}, tier: some}}
"""
    )
    sp = start_sidecar("--config", str(path), "--no-grpc", expect_grpc=False)
    yield sp
    sp.stop()


def _last(fake: FakeAnthropic) -> Recorded:
    return fake.requests[-1]


def test_the_client_key_goes_upstream_only_where_the_route_says(
    keyed: SidecarProcess, upstream: FakeAnthropic
) -> None:
    url = keyed.http_url + "/v1/messages"
    assert httpx.post(url, json=BODY, headers={"x-api-key": ALL}).status_code == 200
    seen = {k.lower(): v for k, v in _last(upstream).headers.items()}
    assert seen["x-api-key"] == "sk-sidecar-upstream" and "authorization" not in seen
    assert (
        httpx.post(url, json={**BODY, "model": "claude-peer"}, headers={"x-api-key": ALL}).status_code == 200
    )
    seen = {k.lower(): v for k, v in _last(upstream).headers.items()}
    assert seen["x-api-key"] == ALL
    bearer = {"authorization": f"Bearer {SOME}"}
    assert httpx.post(url, json={**BODY, "model": "claude-peer"}, headers=bearer).status_code == 200
    seen = {k.lower(): v for k, v in _last(upstream).headers.items()}
    assert seen["authorization"] == f"Bearer {SOME}" and "x-api-key" not in seen


def test_model_lists_need_a_key_and_show_what_it_may_use(
    keyed: SidecarProcess, upstream: FakeAnthropic
) -> None:
    url = keyed.http_url + "/v1/models"
    refused = httpx.get(url)
    assert refused.status_code == 401 and refused.json()["error"]["type"] == "authentication_error"
    everything = [m["id"] for m in httpx.get(url, headers={"x-api-key": ALL}).json()["data"]]
    assert {"claude-fake-0", "claude-fake-1", "claude-peer"} <= set(everything)
    narrow = [m["id"] for m in httpx.get(url, headers={"x-api-key": SOME}).json()["data"]]
    assert narrow == ["claude-fake-1", "claude-peer"]
    # The sidecar's own credential lists the upstream's models, never the client's key.
    assert all(
        {k.lower(): v for k, v in r.headers.items()}.get("x-api-key") != ALL
        for r in upstream.requests
        if r.path == "/v1/models"
    )
    assert httpx.get(url + "/claude-fake-0", headers={"x-api-key": SOME}).status_code == 404
    assert httpx.get(url + "/claude-fake-1", headers={"x-api-key": SOME}).status_code == 200


def test_forwarded_endpoints_need_a_key_that_may_use_every_model(
    keyed: SidecarProcess, upstream: FakeAnthropic
) -> None:
    url = keyed.http_url + "/v1/messages/batches"
    batch = {"requests": [{"custom_id": "a", "params": BODY}]}
    assert httpx.post(url, json=batch).status_code == 401
    narrow = httpx.post(url, json=batch, headers={"x-api-key": SOME})
    assert narrow.status_code == 403 and narrow.json()["error"]["type"] == "permission_error"
    assert not [r for r in upstream.requests if r.path == "/v1/messages/batches"]
    assert httpx.post(url, json=batch, headers={"x-api-key": ALL}).status_code == 200
    seen = {k.lower(): v for k, v in _last(upstream).headers.items()}
    assert _last(upstream).path == "/v1/messages/batches" and seen["x-api-key"] == "sk-sidecar-upstream"


def test_an_upstream_error_carries_the_keys_headers_and_the_upstreams_renamed(
    keyed: SidecarProcess, upstream: FakeAnthropic
) -> None:
    error = {"type": "error", "error": {"type": "rate_limit_error", "message": "org limit"}}

    def planner(rec: Recorded) -> Plan:
        return Plan(
            status=429,
            body=json.dumps(error).encode(),
            headers={
                "retry-after": "3",
                "anthropic-ratelimit-requests-limit": "4000",
                "anthropic-ratelimit-requests-remaining": "0",
            },
        )

    upstream.reset(planner)
    r = httpx.post(keyed.http_url + "/v1/messages", json=BODY, headers={"x-api-key": ALL})
    assert r.status_code == 429 and r.json()["error"]["message"] == "org limit"
    assert r.headers["retry-after"] == "3"
    assert r.headers["upstream-anthropic-ratelimit-requests-limit"] == "4000"
    assert r.headers["anthropic-ratelimit-requests-limit"] == "1000"  # the key's own


def test_forward_client_key_with_an_upstream_key_is_refused_at_load(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(
        """
upstreams:
  own: {provider: anthropic, api_key: sk-x}
routes:
  - {match: "*", upstream: own, forward_client_key: true}
"""
    )
    with pytest.raises(ConfigError, match=r"routes\.0\.forward_client_key: upstream 'own' sets api_key"):
        load_config(path)
