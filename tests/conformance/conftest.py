"""Fixtures for the OpenAI-compatible upstream: the strict fake and a sidecar routed to it.

The sidecar's routes are the Grok2API model map from the seeds (exact names, a glob, upstream
names passed through, a default), so every conformance test also exercises model mapping.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes.openai_api import FakeOpenAI
from tests.inprocess import ThreadedSidecar

UPSTREAM_KEY = "sk-upstream-test"
PING_INTERVAL = 0.4
# The Grok2API table (seeds/003): Anthropic names -> Grok models, Grok names as they are.
MODEL_MAP = {
    "claude-3-5-sonnet-20241022": "grok-2-latest",
    "claude-3-5-sonnet-latest": "grok-2-latest",
    "claude-3-opus-20240229": "grok-2-latest",
    "claude-3-opus-latest": "grok-2-latest",
    "claude-3-sonnet-20240229": "grok-2-1212",
    "claude-3-haiku-20240307": "grok-2-1212",
}
DEFAULT_MODEL = "grok-2-latest"


def config_text(base_url: str, **options: object) -> str:
    extra = "".join(f"    {k}: {v}\n" for k, v in options.items())
    routes = "".join(f"  - {{match: '{k}', upstream: grok, model: {v}}}\n" for k, v in MODEL_MAP.items())
    return (
        "upstreams:\n"
        "  grok:\n"
        "    provider: openai\n"
        f"    base_url: {base_url}/v1\n"
        f"    api_key: {UPSTREAM_KEY}\n"
        f"    ping_interval: {PING_INTERVAL}\n"
        f"{extra}"
        "routes:\n"
        f"{routes}"
        "  - {match: 'claude-2.*', upstream: grok, model: grok-2}\n"
        "  - {match: 'grok-*', upstream: grok}\n"
        f"  - {{match: '*', upstream: grok, model: {DEFAULT_MODEL}}}\n"
    )


@pytest.fixture(scope="session")
def fake_openai() -> Iterator[FakeOpenAI]:
    fake = FakeOpenAI().start()
    yield fake
    fake.stop()


@pytest.fixture()
def openai_upstream(fake_openai: FakeOpenAI) -> Iterator[FakeOpenAI]:
    """The strict fake, reset for this test; the test fails if any request broke the schema."""
    fake_openai.reset()
    yield fake_openai
    rejected = fake_openai.rejected
    fake_openai.reset()
    assert not rejected, f"the fake OpenAI server rejected requests: {rejected}"


def start_openai_sidecar(path: Path, base_url: str, **options: object) -> ThreadedSidecar:
    path.write_text(config_text(base_url, **options))
    return ThreadedSidecar("--config", str(path))


@pytest.fixture(scope="session")
def openai_sidecar(
    fake_openai: FakeOpenAI, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ThreadedSidecar]:
    """A sidecar whose every route goes to the fake OpenAI server (Grok2API map). Pacing is off:
    these tests answer 429 with retry-after on purpose, and one sidecar serves them all
    (tests/admission/test_pacing*.py test pacing)."""
    sp = start_openai_sidecar(
        tmp_path_factory.mktemp("openai") / "sidecar.yaml", fake_openai.base_url, pacing="{enabled: false}"
    )
    yield sp
    sp.stop()
