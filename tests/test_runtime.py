"""The runtime loads only what its config uses: no OpenTelemetry without a traces endpoint, no
admission gate, key store or limiters without an admission section, no YAML without a file, no
translation without an OpenAI upstream. Each case builds a Runtime in a fresh interpreter."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT

PROBE = """
import json, sys
from sidecar.cli import config_from_argv
from sidecar.runtime import Runtime
Runtime(config_from_argv(sys.argv[1:]))
print(json.dumps(sorted(sys.modules)))
"""
HEAVY = ("opentelemetry", "sidecar.admission.gate", "sidecar.admission.limiter", "yaml", "sidecar.translate")


def loaded(*args: str) -> set[str]:
    run = subprocess.run(
        [sys.executable, "-c", PROBE, *args], cwd=ROOT, capture_output=True, text=True, timeout=60, check=True
    )
    modules = set(json.loads(run.stdout))
    return {prefix for prefix in HEAVY if any(m == prefix or m.startswith(prefix + ".") for m in modules)}


def test_a_plain_upstream_loads_nothing_it_does_not_use() -> None:
    assert loaded("--upstream", "http://127.0.0.1:9") == set()
    assert loaded() == set()  # the mock


def test_what_a_config_names_is_loaded(tmp_path: Path) -> None:
    config = tmp_path / "sidecar.yaml"
    config.write_text(
        "upstreams: {o: {provider: openai, base_url: 'http://127.0.0.1:9/v1'}}\n"
        "routes: [{match: '*', upstream: o}]\n"
        "telemetry: {traces: {endpoint: 'http://127.0.0.1:9'}}\n"
        "admission: {tiers: {t: {}}, keys: [{name: a, sha256: '" + "0" * 64 + "', tier: t}]}\n"
    )
    assert loaded("--config", str(config)) == set(HEAVY)
