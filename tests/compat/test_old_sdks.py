"""Older anthropic SDK generations (0.40, 1.0: x-api-key, anthropic-version 2023-06-01, beta
count_tokens with ?beta=true) against the sidecar as `make run` starts it."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.inprocess import ThreadedSidecar

PROBE = Path(__file__).with_name("sdk_probe.py")
VERSIONS = ["0.40.0", "1.0.0"]


@pytest.mark.parametrize("version", VERSIONS)
def test_old_sdk_generation(mock_sidecar: ThreadedSidecar, version: str) -> None:
    python = ROOT / f".venv-sdk-{version}" / "bin" / "python"
    assert python.exists(), f"make test installs anthropic=={version} into {python.parent.parent.name}"
    r = subprocess.run(
        [str(python), str(PROBE), mock_sidecar.http_url], capture_output=True, text=True, timeout=120
    )
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(r.stdout)
    assert out["version"] == version
    create, final = out["create"], out["final"]
    assert create["type"] == "message" and create["content"][0]["text"]
    assert (
        final["content"] == create["content"]
        and final["usage"]["output_tokens"] == create["usage"]["output_tokens"]
    )
    assert out["text"] == create["content"][0]["text"]
    assert out["tool_use"][0]["name"] == "get_weather" and out["tool_use"][0]["input"] == {"city": "sample"}
    assert out["count"] == create["usage"]["input_tokens"]
    assert out["RateLimitError"] == ["RateLimitError", 429, "rate_limit_error"]
    assert out["BadRequestError"] == ["BadRequestError", 400, "invalid_request_error"]
