"""Upstream connection settings (``sidecar.upstreams.session``), through the real pipeline and
HTTP app: a private CA (``ca_bundle``), egress proxies (``proxy`` and HTTPS_PROXY / HTTP_PROXY /
NO_PROXY) and a route policy's ``timeouts.connect``. Every server here is on 127.0.0.1."""

from __future__ import annotations

import base64
import socket
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import httpx2
import pytest

from sidecar.config import build_config
from sidecar.config.model import OpenAIUpstreamConfig
from sidecar.core import Call, Target
from sidecar.errors import ConfigError, Timeout
from sidecar.upstreams.openai import OpenAIUpstream
from sidecar.upstreams.session import env_proxy
from tests.fakes._server import ThreadedServer
from tests.fakes.anthropic_api import MESSAGE, FakeAnthropic
from tests.fakes.connect_proxy import ConnectProxy
from tests.fakes.openai_api import DEFAULT_TEXT, FakeOpenAI
from tests.fakes.tls import Certs, make_certs
from tests.inprocess import http_app, pipeline

BODY = {"model": "claude-sonnet-4-6", "max_tokens": 64, "messages": [{"role": "user", "content": "Hello"}]}
F = TypeVar("F", bound=ThreadedServer)
PROXY_VARIABLES = ("http_proxy", "https_proxy", "no_proxy", "all_proxy", "request_method")


@pytest.fixture(autouse=True)
def no_proxy_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts from an environment naming no proxy (and sets what it needs)."""
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    return make_certs(tmp_path_factory.mktemp("pki"))


def serve_tls(fake: F, certs: Certs) -> Iterator[F]:
    fake.tls = certs.server_context()
    yield fake.start()
    fake.stop()


@pytest.fixture(scope="module")
def tls_anthropic(certs: Certs) -> Iterator[FakeAnthropic]:
    yield from serve_tls(FakeAnthropic(), certs)


@pytest.fixture(scope="module")
def tls_openai(certs: Certs) -> Iterator[FakeOpenAI]:
    yield from serve_tls(FakeOpenAI(), certs)


@pytest.fixture()
def fake_openai_server() -> Iterator[FakeOpenAI]:
    fake = FakeOpenAI().start()
    yield fake
    fake.stop()


def one_upstream(routes: list[dict[str, Any]] | None = None, **upstream: Any) -> dict[str, Any]:
    upstream.setdefault("provider", "anthropic")
    return {"upstreams": {"u": upstream}, "routes": routes or [{"match": "*", "upstream": "u"}]}


@asynccontextmanager
async def sidecar(config: dict[str, Any]) -> AsyncIterator[httpx2.AsyncClient]:
    """The pipeline (real adapters) behind the HTTP app, and a client of that app."""
    p = pipeline(config)
    transport = httpx2.ASGITransport(app=http_app(p))
    client = httpx2.AsyncClient(transport=transport, base_url="http://sidecar.test", timeout=30)
    try:
        yield client
    finally:
        await client.aclose()
        await p.aclose()


async def post(client: httpx2.AsyncClient, body: dict[str, Any] = BODY) -> httpx2.Response:
    return await client.post("/v1/messages", json=body, headers={"x-api-key": "k"})


# ---- config: refused at load, naming the field ------------------------------------------------


@pytest.mark.parametrize("provider", ["anthropic", "openai"])
@pytest.mark.parametrize(
    ("bundle", "words"),
    [
        ("missing.pem", "cannot read"),
        ("garbage.pem", "holds no usable PEM certificate"),
        ("folder", "cannot read"),
    ],
)
def test_ca_bundle_is_checked_at_load(tmp_path: Path, provider: str, bundle: str, words: str) -> None:
    (tmp_path / "garbage.pem").write_text(
        "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n"
    )
    (tmp_path / "folder").mkdir()
    path = str(tmp_path / bundle)
    with pytest.raises(ConfigError) as info:
        build_config(one_upstream(provider=provider, base_url="https://gw.test", ca_bundle=path))
    assert str(info.value).startswith("upstreams.u.ca_bundle: "), str(info.value)
    assert words in str(info.value) and path in str(info.value)


def test_ca_bundle_needs_an_https_upstream(certs: Certs) -> None:
    with pytest.raises(ConfigError, match=r"^upstreams\.u\.ca_bundle: base_url is not https://"):
        build_config(one_upstream(base_url="http://gw.test", ca_bundle=str(certs.ca)))
    config = build_config(one_upstream(base_url="https://gw.test", ca_bundle=str(certs.ca)))
    assert config.upstreams["u"].ca_bundle == str(certs.ca)  # type: ignore[union-attr]


@pytest.mark.parametrize("provider", ["anthropic", "openai"])
@pytest.mark.parametrize(
    "proxy",
    ["https://proxy.test:3128", "socks5://proxy.test:1080", "proxy.test:3128", "http://:3128"]
    + ["http://proxy.test:port", "http://proxy.test:3128/path", "http://proxy.test:3128?q=1"],
)
def test_proxy_is_checked_at_load(provider: str, proxy: str) -> None:
    with pytest.raises(ConfigError) as info:
        build_config(one_upstream(provider=provider, proxy=proxy))
    assert str(info.value).startswith("upstreams.u.proxy: "), str(info.value)
    assert "secret" not in str(info.value)


def test_proxy_forms_accepted() -> None:
    for proxy in ("http://proxy.test:3128", "http://proxy.test", "http://user:secret@10.0.0.1:3128/"):
        assert build_config(one_upstream(proxy=proxy)).upstreams["u"].proxy == proxy  # type: ignore[union-attr]


# ---- ca_bundle: a private CA -------------------------------------------------------------------


async def test_private_ca_is_refused_without_its_bundle(tls_anthropic: FakeAnthropic) -> None:
    tls_anthropic.reset()
    async with sidecar(one_upstream(base_url=tls_anthropic.base_url)) as client:
        r = await post(client)
    assert r.status_code == 502
    envelope = r.json()
    assert envelope["type"] == "error" and envelope["error"]["type"] == "api_error"
    message = envelope["error"]["message"]
    assert "TLS certificate verification failed" in message and "ca_bundle" in message, message
    assert tls_anthropic.requests == []


async def test_private_ca_is_served_with_its_bundle(
    certs: Certs, tls_anthropic: FakeAnthropic, tls_openai: FakeOpenAI
) -> None:
    tls_anthropic.reset()
    tls_openai.reset()
    config = {
        "upstreams": {
            "a": {"provider": "anthropic", "base_url": tls_anthropic.base_url, "ca_bundle": str(certs.ca)},
            "o": {"provider": "openai", "base_url": tls_openai.base_url, "ca_bundle": str(certs.ca)},
        },
        "routes": [{"match": "gpt-*", "upstream": "o"}, {"match": "*", "upstream": "a"}],
    }
    async with sidecar(config) as client:
        r = await post(client)
        assert r.status_code == 200, r.text
        assert r.json()["content"] == MESSAGE["content"]
        r = await post(client, {**BODY, "model": "gpt-test"})
        assert r.status_code == 200, r.text
        assert r.json()["content"][0]["text"] == DEFAULT_TEXT
    assert [rec.path for rec in tls_anthropic.requests] == ["/v1/messages"]
    assert [rec.path for rec in tls_openai.requests] == ["/v1/chat/completions"]


# ---- proxy: the config's, or the environment's -------------------------------------------------


async def test_configured_proxy_tunnels_to_an_https_upstream(
    certs: Certs, tls_anthropic: FakeAnthropic
) -> None:
    tls_anthropic.reset()
    async with ConnectProxy() as proxy:
        url = proxy.url.replace("http://", "http://mesh:p%40ss@")
        config = one_upstream(base_url=tls_anthropic.base_url, ca_bundle=str(certs.ca), proxy=url)
        async with sidecar(config) as client:
            r = await post(client)
    assert r.status_code == 200, r.text
    ((request,),) = [proxy.requests]
    assert (request.method, request.target) == ("CONNECT", f"127.0.0.1:{tls_anthropic.port}")
    assert request.headers["proxy-authorization"] == "Basic " + base64.b64encode(b"mesh:p@ss").decode()
    (upstream_request,) = tls_anthropic.requests
    assert not any(k.lower().startswith("proxy-") for k in upstream_request.headers)


async def test_environment_proxy_gets_absolute_form_requests(
    monkeypatch: pytest.MonkeyPatch, fake_anthropic: FakeAnthropic
) -> None:
    fake_anthropic.reset()
    async with ConnectProxy() as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        # Loopback is not bypassed unless NO_PROXY names it (as with curl and the stdlib).
        async with sidecar(one_upstream(base_url=fake_anthropic.base_url)) as client:
            r = await post(client)
    assert r.status_code == 200, r.text
    ((request,),) = [proxy.requests]
    assert (request.method, request.target) == ("POST", f"{fake_anthropic.base_url}/v1/messages")
    assert [rec.path for rec in fake_anthropic.requests] == ["/v1/messages"]


@pytest.mark.parametrize("no_proxy", ["127.0.0.1", "localhost,127.0.0.1", "*"])
async def test_no_proxy_bypasses_the_environment_proxy(
    monkeypatch: pytest.MonkeyPatch, fake_anthropic: FakeAnthropic, no_proxy: str
) -> None:
    fake_anthropic.reset()
    async with ConnectProxy() as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        monkeypatch.setenv("NO_PROXY", no_proxy)
        async with sidecar(one_upstream(base_url=fake_anthropic.base_url)) as client:
            r = await post(client)
    assert r.status_code == 200, r.text
    assert proxy.requests == []
    assert len(fake_anthropic.requests) == 1


async def test_configured_proxy_wins_over_the_environment(
    monkeypatch: pytest.MonkeyPatch, certs: Certs, tls_anthropic: FakeAnthropic
) -> None:
    tls_anthropic.reset()
    async with ConnectProxy() as configured, ConnectProxy() as ambient:
        monkeypatch.setenv("HTTPS_PROXY", ambient.url)
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        config = one_upstream(base_url=tls_anthropic.base_url, ca_bundle=str(certs.ca), proxy=configured.url)
        async with sidecar(config) as client:
            r = await post(client)
    assert r.status_code == 200, r.text
    assert [q.method for q in configured.requests] == ["CONNECT"]
    assert ambient.requests == []


async def test_openai_upstream_goes_through_the_proxy(fake_openai_server: FakeOpenAI) -> None:
    async with ConnectProxy() as proxy:
        url = proxy.url.replace("http://", "http://mesh:secret@")
        config = one_upstream(provider="openai", base_url=fake_openai_server.base_url, proxy=url)
        async with sidecar(config) as client:
            r = await post(client)
    assert r.status_code == 200, r.text
    ((request,),) = [proxy.requests]
    assert request.target == f"{fake_openai_server.base_url}/v1/chat/completions"
    # No tunnel to an http upstream: the request itself carries the proxy's credentials.
    assert request.headers["proxy-authorization"] == "Basic " + base64.b64encode(b"mesh:secret").decode()


def test_env_proxy_rules(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://egress:3128")
    monkeypatch.setenv("HTTP_PROXY", "http://plain:3128")
    assert env_proxy("https://api.anthropic.com") == "http://egress:3128"
    assert env_proxy("http://vllm.internal:8000") == "http://plain:3128"
    monkeypatch.setenv("https_proxy", "http://lower:3128")  # lower-case names win
    assert env_proxy("https://api.anthropic.com") == "http://lower:3128"
    monkeypatch.setenv("NO_PROXY", ".internal, vllm:8000 ,127.0.0.1")
    assert env_proxy("http://vllm.internal:8000") is None  # a domain suffix
    assert env_proxy("http://vllm:8000") is None  # host:port
    assert env_proxy("http://vllm:9000") == "http://plain:3128"
    assert env_proxy("http://127.0.0.1:8000") is None
    assert env_proxy("http://127.0.0.2:8000") == "http://plain:3128"  # no CIDR ranges
    monkeypatch.setenv("https_proxy", "https://tls-proxy:3129")  # not supported: ignored
    assert env_proxy("https://api.anthropic.com") is None


# ---- a route policy's timeouts.connect ---------------------------------------------------------


@pytest.fixture()
def unanswered_port() -> Iterator[int]:
    """A loopback port whose TCP handshake never completes: a listener with a full backlog that
    never accepts (the kernel drops further SYNs)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port: int = listener.getsockname()[1]
    fillers = []
    for _ in range(3):
        filler = socket.socket()
        filler.setblocking(False)
        filler.connect_ex(("127.0.0.1", port))
        fillers.append(filler)
    time.sleep(0.05)
    yield port
    for s in [*fillers, listener]:
        s.close()


async def test_policy_connect_timeout_bounds_the_attempt(unanswered_port: int) -> None:
    policy = {
        "groups": [{"targets": [{"upstream": "u"}]}],
        "timeouts": {"connect": 0.2},
        "retry": {"max_attempts": 1},
        "breaker": {"enabled": False},
    }
    config = one_upstream(
        [{"match": "policy-*", "policy": policy}, {"match": "*", "upstream": "u"}],
        base_url=f"http://127.0.0.1:{unanswered_port}",
        timeouts={"connect": 2.0, "read": 30},
    )
    async with sidecar(config) as client:
        started = time.monotonic()
        r = await post(client, {**BODY, "model": "policy-model"})
        with_policy = time.monotonic() - started
        started = time.monotonic()
        plain = await post(client)
        without = time.monotonic() - started
    assert r.status_code == 504, r.text
    error = r.json()["error"]
    assert error["type"] == "timeout_error" and "no connection within 0.2 s" in error["message"]
    assert r.headers["x-sidecar-attempts"] == "1"
    assert with_policy < 1.5, with_policy
    # The same upstream without the policy waits its own timeouts.connect.
    assert plain.status_code == 504 and "no connection within 2 s" in plain.json()["error"]["message"]
    assert without >= 1.8, without


async def test_openai_adapter_applies_the_targets_connect_timeout(unanswered_port: int) -> None:
    config = OpenAIUpstreamConfig(base_url=f"http://127.0.0.1:{unanswered_port}")
    call = Call(
        endpoint="messages", body=dict(BODY), raw=None, model="m", stream=False, request_id="r", door="http"
    )
    async with OpenAIUpstream("o", config) as upstream:
        started = time.monotonic()
        with pytest.raises(Timeout, match="no connection within 0.2 s"):
            await upstream.send(call, Target("o", "m", connect_timeout=0.2))
    assert time.monotonic() - started < 1.5
